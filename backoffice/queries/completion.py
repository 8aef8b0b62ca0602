"""Read side of completion billing (DESIGN.md section 4, "Completion billing"): an engagement's schedule as its page
shows it (the contract value, the advance, each task and the invoice that bills it, what is invoiced and what
remains, the final payment), and what a contractor can invoice now. Row-level security scopes both: the
organization's staff see any engagement's, a contractor's user its own contractor's only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.domain.completion import COMPLETION_KINDS, BillingMode, Schedule, TaskLine
from backoffice.domain.engagements import MilestoneStatus
from backoffice.domain.invoices import InvoiceKind, InvoiceStatus
from backoffice.queries.latest_review import latest_review_join

# The engagement, its live advance and final invoices and Σ gross of its live completion-kind invoices: one statement
# (the invoices by the (org_id, engagement_id) indexes; a completion engagement has a handful).
_HEAD = """
select e.org_id, e.status, e.contract_value_minor, e.advance_bps, e.advance_minor,
       a.id as advance_id, a.invoice_number as advance_number, a.status as advance_status,
       f.id as final_id, f.invoice_number as final_number, f.status as final_status, f.gross_minor as final_gross,
       (select coalesce(sum(i.gross_minor), 0) from invoices i
         where i.org_id = e.org_id and i.engagement_id = e.id and i.kind = any(:kinds) and i.voided_at is null
       )::bigint as billed
  from engagements e
  left join invoices a on a.org_id = e.org_id and a.engagement_id = e.id and a.kind = 'advance'
                      and a.voided_at is null
  left join invoices f on f.org_id = e.org_id and f.engagement_id = e.id and f.kind = 'final'
                      and f.voided_at is null
 where e.id = :id and e.billing_mode = :completion
"""

# Each task in order with the live invoice that bills it, if any (invoice_tasks_billed_once: at most one).
# The latest revision's review gives the words of its status (domain/milestone_status).
_TASKS = f"""
select m.id, m.seq, m.title, m.amount_minor, m.status,
       i.id as invoice_id, i.invoice_number, i.kind as invoice_kind, i.status as invoice_status,
       lr.decision, lr.partial_policy
  from milestones m{latest_review_join("m", org_id=True)}
  left join invoice_tasks t on t.org_id = m.org_id and t.milestone_id = m.id and t.voided_at is null
  left join invoices i on i.org_id = t.org_id and i.id = t.invoice_id
 where m.engagement_id = :id and m.org_id = :org_id
 order by m.seq
"""

# Before acceptance the advance is still to come (authorized as the engagement becomes active).
_BEFORE_ACCEPTANCE = ("draft", "awaiting_acceptance")


def schedule(session: Session, engagement_id) -> Schedule | None:
    """The completion schedule of an engagement, or None when it is billed per milestone, or RLS hides it. Two
    statements whatever the number of tasks."""
    head = (
        session.execute(
            text(_HEAD),
            {"id": engagement_id, "kinds": sorted(COMPLETION_KINDS), "completion": BillingMode.COMPLETION.value},
        )
        .mappings()
        .first()
    )
    if head is None:
        return None
    tasks = tuple(
        TaskLine(
            milestone_id=r["id"],
            seq=r["seq"],
            title=r["title"],
            amount=r["amount_minor"],
            status=MilestoneStatus(r["status"]),
            invoice_number=r["invoice_number"],
            invoice_id=r["invoice_id"],
            invoice_kind=_maybe(InvoiceKind, r["invoice_kind"]),
            invoice_status=_maybe(InvoiceStatus, r["invoice_status"]),
            decision=r["decision"],
            partial_policy=r["partial_policy"],
        )
        for r in session.execute(text(_TASKS), {"id": engagement_id, "org_id": head["org_id"]}).mappings()
    )
    return Schedule(
        value=head["contract_value_minor"] or 0,
        advance_bps=head["advance_bps"],
        advance=head["advance_minor"],
        advance_invoice=head["advance_number"],
        tasks=tasks,
        billed=int(head["billed"]),
        final_invoice=head["final_number"],
        advance_invoice_id=head["advance_id"],
        advance_status=_maybe(InvoiceStatus, head["advance_status"]),
        advance_due=head["advance_minor"] > 0 and head["status"] in _BEFORE_ACCEPTANCE,
        final_invoice_id=head["final_id"],
        final_status=_maybe(InvoiceStatus, head["final_status"]),
        final_gross=head["final_gross"],
    )


def _maybe(enum, value):
    """The value as its enum (its words on pages: .label), or None."""
    return None if value is None else enum(value)


@dataclass(frozen=True)
class Invoiceable:
    """One engagement's approved tasks that no live invoice bills yet: what its contractor can invoice now."""

    engagement_id: uuid.UUID
    engagement_title: str
    currency: str
    tasks: int
    total_minor: int
    titles: tuple[str, ...]


_INVOICEABLE = """
select e.id as engagement_id, e.title as engagement_title, e.currency, count(*) as tasks,
       sum(m.amount_minor)::bigint as total_minor, array_agg(m.title order by m.seq) as titles
  from milestones m
  join engagements e on e.org_id = m.org_id and e.id = m.engagement_id
 where m.contractor_id = :contractor and m.status = 'approved' and e.billing_mode = :completion
   and not exists (select 1 from invoice_tasks t
                    where t.org_id = m.org_id and t.milestone_id = m.id and t.voided_at is null)
 group by e.org_id, e.id
 order by e.title, e.id
"""


def invoiceable_for_contractor(session: Session, contractor_id) -> list[Invoiceable]:
    """Per completion engagement of the contractor, its approved tasks not yet invoiced and their total (what one
    invoice for all of them would bill). RLS keeps it to the contractor; naming it walks its own tasks."""
    return [
        Invoiceable(**{**r, "titles": tuple(r["titles"])})
        for r in session.execute(
            text(_INVOICEABLE), {"contractor": contractor_id, "completion": BillingMode.COMPLETION.value}
        ).mappings()
    ]
