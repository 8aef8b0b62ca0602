"""Read side of engagements: the filtered, paginated list with totals, and one engagement's page.

The app relies on RLS alone to scope these to the organization (and to the contractor for a
contractor's user). ``org_id=`` adds an explicit WHERE org_id = … to every table instead: only the
benchmark uses it, to compare the two (bench/rls_overhead.py).

Totals are derived here, never stored (DESIGN.md section 2): approved from the milestones, paid and
retainage held from the invoices (withheld by milestone invoices minus the release).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.domain.completion import COMPLETION_KINDS, BillingMode, Schedule
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.invoices import InvoiceKind, InvoiceStatus, RetainageState
from backoffice.domain.milestone_status import ShownStatus, sent_back_by, shown_status
from backoffice.domain.money import percent_of
from backoffice.queries import completion, money
from backoffice.queries.latest_review import latest_review_join
from backoffice.queries.paging import Cursor, Keyset, KeysetPage

PER_PAGE = 25


@dataclass(frozen=True)
class Totals:
    contract_value: int
    approved: int
    paid: int
    retainage_held: int

    @property
    def remaining(self) -> int:
        """Contract value not yet approved."""
        return self.contract_value - self.approved

    def bar(self) -> list[tuple[str, str, int, float]]:
        """Segments of the totals bar: (css key, label, amount, share of the contract value in %)."""
        parts = [
            ("paid", "Paid", self.paid),
            ("approved", "Approved, not yet paid", self.approved - self.paid),
            ("remaining", "Not yet approved", self.remaining),
        ]
        whole = self.contract_value or 1
        return [(key, label, amount, round(100 * amount / whole, 2)) for key, label, amount in parts]


@dataclass(frozen=True)
class EngagementRow:
    id: uuid.UUID
    title: str
    sow_reference: str | None
    status: EngagementStatus
    currency: str
    contractor_id: uuid.UUID
    contractor_name: str
    owner_user_id: uuid.UUID
    owner_name: str | None
    created_at: datetime
    milestones: int
    overdue: int
    next_due: date | None
    totals: Totals
    billing_mode: str = "milestone"


def _scope(alias: str, org_id) -> str:
    return f" and {alias}.org_id = :org_id" if org_id else ""


def _filters(status, contractor_id, owner_id) -> str:
    return "".join(
        [
            " and e.status = :status" if status else "",
            " and e.contractor_id = :contractor_id" if contractor_id else "",
            " and e.owner_user_id = :owner_id" if owner_id else "",
        ]
    )


_COMPLETION_KINDS = ", ".join(f"'{kind}'" for kind in sorted(COMPLETION_KINDS))

# Newest first; the (org_id, created_at desc, id desc) index walks it.
LIST_KEYSET = Keyset(("e.created_at", "e.id"), (datetime, uuid.UUID), descending=True)


def list_where(org_id=None, *, status=None, contractor_id=None, owner_id=None, condition: str = "true") -> str:
    """Which engagements the list shows, over ``engagements e``: also what the home's commitments sum."""
    return f"{condition}{_scope('e', org_id)}{_filters(status, contractor_id, owner_id)}"


# An engagement's money, shared by the list (per row) and the home's commitments (summed): its milestones' sums
# (t), its invoices' sums (v), and from them its contract value and what was approved for payment. Billed on
# completion, approved for payment is the approved tasks and the advance (or what was invoiced, when the final
# payment took in an advance never paid), as on the engagement's page.
MILESTONE_SUMS = """
               coalesce(sum(m.amount_minor) filter (where m.status <> 'cancelled'), 0)::bigint as contract_value,
               coalesce(sum(m.amount_minor) filter (where m.status = 'approved'), 0)::bigint as approved"""
INVOICE_SUMS = f"""
               coalesce(sum(i.gross_minor) filter (where i.kind <> 'retainage_release' and i.status = 'paid'),
                        0)::bigint as paid,
               coalesce(sum(i.gross_minor) filter (where i.kind = 'advance' and i.voided_at is null), 0)::bigint
                 as advance,
               coalesce(sum(i.gross_minor) filter (where i.kind in ({_COMPLETION_KINDS}) and i.voided_at is null),
                        0)::bigint as billed"""
CONTRACT_VALUE = "t.contract_value + e.advance_minor"
APPROVED = "case when e.billing_mode = 'completion' then greatest(t.approved + v.advance, v.billed) else t.approved end"


def list_sql(
    org_id=None,
    *,
    status=None,
    contractor_id=None,
    owner_id=None,
    condition: str = "true",
    order: str = "e.created_at desc, e.id desc",
) -> str:
    # The page of engagements is chosen first, from engagements alone, so the planner walks the
    # (org_id, created_at desc, id desc) index and stops after one page; totals are computed for that page
    # only. (Joined up front, RLS's unknown-until-run org made it total every engagement, then sort.) Keyset
    # paged and uncounted: counting the organization's engagements for "of N" cost 2 ms at 10,000.
    return f"""
    with page as (
      select e.* from engagements e
       where {list_where(org_id, status=status, contractor_id=contractor_id, owner_id=owner_id, condition=condition)}
       order by {order}
       limit :limit
    )
    select e.id, e.title, e.sow_reference, e.status, e.billing_mode, e.currency, e.contractor_id,
           c.legal_name as contractor_name,
           e.owner_user_id, u.name as owner_name, e.created_at,
           t.milestones, t.overdue, t.next_due, {CONTRACT_VALUE} as contract_value, {APPROVED} as approved,
           v.paid, v.retainage_held
      from page e
      join contractors c on c.id = e.contractor_id{_scope("c", org_id)}
      left join users u on u.id = e.owner_user_id
      cross join lateral (
        select count(*) filter (where m.status <> 'cancelled') as milestones,
               count(*) filter (where m.status in ('planned', 'submitted') and m.due_date < current_date) as overdue,
               min(m.due_date) filter (where m.status in ('planned', 'submitted')) as next_due,{MILESTONE_SUMS}
          from milestones m
         where m.engagement_id = e.id{_scope("m", org_id)}
      ) t
      cross join lateral (
        select (coalesce(sum(i.retainage_minor) filter (where i.kind <> 'retainage_release' and i.voided_at is null), 0)
                - coalesce(sum(i.gross_minor) filter (where i.kind = 'retainage_release' and i.voided_at is null), 0)
               )::bigint as retainage_held,{INVOICE_SUMS}
          from invoices i
         where i.engagement_id = e.id{_scope("i", org_id)}
      ) v
     order by {order}
    """


def engagement_list(
    session: Session,
    *,
    status: str | None = None,
    contractor_id=None,
    owner_id=None,
    cursor: Cursor | None = None,
    per_page: int = PER_PAGE,
    org_id=None,
) -> KeysetPage:
    """One page of engagements, newest first, with each one's totals. Filters are optional."""
    if status is not None and status not in EngagementStatus.__members__.values():
        status = None
    filters = dict(status=status, contractor_id=contractor_id, owner_id=owner_id)
    params = {k: v for k, v in filters.items() if v} | {"org_id": org_id}
    condition, order, key_params = LIST_KEYSET.clause(cursor)
    rows = session.execute(
        text(list_sql(org_id, **filters, condition=condition, order=order)),
        params | key_params | {"limit": per_page + 1},
    ).mappings()
    return KeysetPage.build([_row(r) for r in rows], cursor, per_page, key=lambda r: (r.created_at, r.id))


def _row(r) -> EngagementRow:
    return EngagementRow(
        id=r["id"],
        title=r["title"],
        sow_reference=r["sow_reference"],
        status=EngagementStatus(r["status"]),
        currency=r["currency"],
        contractor_id=r["contractor_id"],
        contractor_name=r["contractor_name"],
        owner_user_id=r["owner_user_id"],
        owner_name=r["owner_name"],
        created_at=r["created_at"],
        milestones=r["milestones"],
        overdue=r["overdue"],
        next_due=r["next_due"],
        totals=Totals(r["contract_value"], r["approved"], r["paid"], r["retainage_held"]),
        billing_mode=r["billing_mode"],
    )


@dataclass(frozen=True)
class MilestoneView:
    id: uuid.UUID
    seq: int
    title: str
    deliverable: str
    amount_minor: int
    due_date: date
    status: MilestoneStatus
    overdue: bool
    retainage_minor: int
    decision: str | None = None  # the latest revision's review, if it has one
    partial_policy: str | None = None

    @property
    def returned(self) -> str | None:
        """'dispute' or 'partial' while the work is back with the contractor."""
        return sent_back_by(self.status, self.decision)

    @property
    def shown(self) -> ShownStatus:
        return shown_status(self.status, self.decision, self.partial_policy)


def milestones_sql(org_id=None) -> str:
    return f"""
    select m.id, m.seq, m.title, m.deliverable, m.amount_minor, m.due_date, m.status,
           m.status in ('planned', 'submitted') and m.due_date < current_date as overdue,
           lr.decision, lr.partial_policy
      from milestones m{latest_review_join("m", org_id)}
     where m.engagement_id = :engagement_id{_scope("m", org_id)}
     order by m.seq
    """


def milestone_list(session: Session, engagement_id, *, retainage_bps: int = 0, org_id=None) -> list[MilestoneView]:
    """The engagement's milestones in order; each one's retainage at ``retainage_bps`` (the engagement's)."""
    rows = session.execute(text(milestones_sql(org_id)), {"engagement_id": engagement_id, "org_id": org_id}).mappings()
    return [
        MilestoneView(
            **{
                **r,
                "status": MilestoneStatus(r["status"]),
                "retainage_minor": percent_of(r["amount_minor"], retainage_bps),
            }
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DueRow:
    id: uuid.UUID
    title: str
    amount_minor: int
    due_date: date
    status: MilestoneStatus
    overdue: bool
    engagement_id: uuid.UUID
    engagement_title: str
    currency: str
    contractor_name: str
    decision: str | None = None  # the latest revision's review, if it has one
    partial_policy: str | None = None

    @property
    def shown(self) -> ShownStatus:
        return shown_status(self.status, self.decision, self.partial_policy)


OPEN_STATUSES = ("planned", "submitted")


# Soonest due first (overdue on top), then by id; the partial (org_id, due_date, id) index of open
# milestones walks it.
DUE_KEYSET = Keyset(("m.due_date", "m.id"), (date, uuid.UUID))


DUE_ORDER = "m.due_date, m.id"


def due_where(org_id=None, *, status=None, condition: str = "true", contractor_id=None) -> str:
    """Which milestones the Due list shows, over ``milestones m``: also what the home's due figures count."""
    statuses = "m.status = :status" if status else "m.status in ('planned', 'submitted')"
    # A contractor's user sees its own milestones only (RLS); named too, its page walks the contractor's own
    # open milestones (milestones_contractor_due_idx) instead of the organization's, skipping others' by policy.
    if contractor_id:
        condition = f"m.contractor_id = :contractor_id and {condition}"
    return f"""{statuses}{_scope("m", org_id)} and {condition}
         and (select e.status from engagements e where e.id = m.engagement_id and e.org_id = m.org_id)
             in ('active', 'paused')"""


def due_sql(org_id=None, *, status=None, condition: str = "true", order: str = DUE_ORDER, contractor_id=None) -> str:
    # The page is picked first, walking the open milestones in order and asking each one's engagement (a
    # subquery, so the walk stops after one page); names are joined to its rows only. The web names the
    # organization outright (org_id): compared with RLS's run-time value only, the planner guesses a 200th
    # of the rows and sorts the whole organization's open milestones (57 ms at 31,000) instead.
    return f"""
    with page as materialized (
      select m.id, m.org_id, m.title, m.amount_minor, m.due_date, m.status, m.engagement_id, m.contractor_id
        from milestones m
       where {due_where(org_id, status=status, condition=condition, contractor_id=contractor_id)}
       order by {order}
       limit :limit)
    select m.id, m.title, m.amount_minor, m.due_date, m.status, m.due_date < current_date as overdue,
           m.engagement_id, e.title as engagement_title, e.currency, c.legal_name as contractor_name,
           lr.decision, lr.partial_policy
      from page m
      join engagements e on e.id = m.engagement_id and e.org_id = m.org_id
      join contractors c on c.id = m.contractor_id and c.org_id = m.org_id{latest_review_join("m", org_id)}
     order by {order}
    """


def due_milestones(
    session: Session,
    *,
    status: str | None = None,
    cursor: Cursor | None = None,
    per_page: int = 50,
    org_id=None,
    contractor_id=None,
) -> KeysetPage:
    """Open milestones of running engagements across the organization (or of one contractor), soonest due
    first (overdue on top), a page at a time: what owners should expect to review and contractors to
    deliver."""
    if status not in OPEN_STATUSES:
        status = None
    condition, order, key_params = DUE_KEYSET.clause(cursor)
    rows = session.execute(
        text(due_sql(org_id, status=status, condition=condition, order=order, contractor_id=contractor_id)),
        {"status": status, "org_id": org_id, "contractor_id": contractor_id, "limit": per_page + 1} | key_params,
    ).mappings()
    fetched = [DueRow(**{**r, "status": MilestoneStatus(r["status"])}) for r in rows]
    return KeysetPage.build(fetched, cursor, per_page, key=lambda r: (r.due_date, r.id))


@dataclass(frozen=True)
class ChangeOrderLineView:
    line_no: int
    kind: str
    milestone_title: str
    before: dict | None
    after: dict


@dataclass(frozen=True)
class ChangeOrderView:
    id: uuid.UUID
    number: int
    reason: str
    created_at: datetime
    created_by_name: str | None
    contract_value_before: int
    contract_value_after: int
    lines: list[ChangeOrderLineView]


def change_orders(session: Session, engagement_id) -> list[ChangeOrderView]:
    """Every change order of the engagement, newest first, each line with its before and after."""
    rows = session.execute(
        text(
            """
            select co.id, co.number, co.reason, co.created_at, u.name as created_by_name,
                   co.contract_value_before, co.contract_value_after,
                   l.line_no, l.kind, m.title as milestone_title, l.before, l.after
              from change_orders co
              left join users u on u.id = co.created_by
              join change_order_lines l on l.change_order_id = co.id
              join milestones m on m.id = l.milestone_id
             where co.engagement_id = :engagement_id
             order by co.number desc, l.line_no
            """
        ),
        {"engagement_id": engagement_id},
    ).mappings()
    result: dict[uuid.UUID, ChangeOrderView] = {}
    for r in rows:
        co = result.get(r["id"])
        if co is None:
            co = result[r["id"]] = ChangeOrderView(
                r["id"],
                r["number"],
                r["reason"],
                r["created_at"],
                r["created_by_name"],
                r["contract_value_before"],
                r["contract_value_after"],
                [],
            )
        co.lines.append(
            ChangeOrderLineView(
                r["line_no"], r["kind"], r["milestone_title"], _ordered(r["before"]), _ordered(r["after"])
            )
        )
    return list(result.values())


_FIELD_ORDER = ("title", "deliverable", "amount_minor", "due_date", "status")


def _ordered(values: dict | None) -> dict | None:
    """A line's fields in the order the schedule shows them (jsonb keeps its own order)."""
    if values is None:
        return None
    return {k: values[k] for k in sorted(values, key=lambda k: _FIELD_ORDER.index(k) if k in _FIELD_ORDER else 99)}


@dataclass(frozen=True)
class EngagementDetail:
    id: uuid.UUID
    title: str
    sow_reference: str | None
    status: EngagementStatus
    currency: str
    retainage_bps: int
    payment_terms_days: int
    service_fee_bps: int
    billing_mode: str
    contractor_id: uuid.UUID
    contractor_name: str
    contractor_has_user: bool
    owner_user_id: uuid.UUID
    owner_name: str | None
    created_at: datetime
    sent_at: datetime | None
    responded_at: datetime | None
    responded_by_name: str | None
    decline_reason: str | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    milestones: list[MilestoneView]
    totals: Totals
    change_orders: list[ChangeOrderView]
    invoices: list[money.InvoiceRow]
    retainage: RetainageState
    # The award that created it (issue 19), if one did: the project and when the proposal was made.
    proposal_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    project_title: str | None = None
    proposal_submitted_at: datetime | None = None
    # Billed on completion (issue 20): the schedule its page shows (queries.completion.schedule); None per milestone.
    completion: Schedule | None = None

    @property
    def release(self) -> money.InvoiceRow | None:
        return next((i for i in self.invoices if i.kind == InvoiceKind.RETAINAGE_RELEASE), None)

    @property
    def schedule_total(self) -> int:
        """The live milestones' (tasks') amounts: the contract value, or under completion billing the value less the
        advance."""
        return sum(m.amount_minor for m in self.milestones if m.status != MilestoneStatus.CANCELLED)

    @property
    def ready_to_complete(self) -> bool:
        if self.completion is not None:
            return False  # completed by its final payment, never by hand
        live = [m for m in self.milestones if m.status != MilestoneStatus.CANCELLED]
        return bool(live) and all(m.status == MilestoneStatus.APPROVED for m in live)


def engagement_detail(session: Session, engagement_id: uuid.UUID) -> EngagementDetail | None:
    """Everything the engagement page shows, or None when RLS hides it (or it does not exist)."""
    r = (
        session.execute(
            text(
                """
            select e.*, c.legal_name as contractor_name, o.name as owner_name, rb.name as responded_by_name,
                   exists (select 1 from memberships mm
                            where mm.contractor_id = e.contractor_id and mm.role = 'contractor'
                                   and mm.accepted_at is not null) as contractor_has_user,
                   pr.project_id, pj.title as project_title, pr.submitted_at as proposal_submitted_at
              from engagements e
              join contractors c on c.id = e.contractor_id
              left join users o on o.id = e.owner_user_id
              left join users rb on rb.id = e.responded_by
              left join proposals pr on pr.org_id = e.org_id and pr.id = e.proposal_id
              left join projects pj on pj.org_id = pr.org_id and pj.id = pr.project_id
             where e.id = :id
            """
            ),
            {"id": engagement_id},
        )
        .mappings()
        .first()
    )
    if r is None:
        return None
    milestones = milestone_list(session, engagement_id, retainage_bps=r["retainage_bps"])
    live = [m for m in milestones if m.status != MilestoneStatus.CANCELLED]
    approved = [m for m in live if m.status == MilestoneStatus.APPROVED]
    invoices = money.engagement_invoices(session, engagement_id)
    retainage = money.engagement_retainage(session, engagement_id)
    paid = sum(i.gross_minor for i in invoices if i.kind == InvoiceKind.MILESTONE and i.status == InvoiceStatus.PAID)
    totals = Totals(sum(m.amount_minor for m in live), sum(m.amount_minor for m in approved), paid, retainage.held)
    schedule = completion.schedule(session, engagement_id) if r["billing_mode"] == BillingMode.COMPLETION else None
    if schedule is not None:
        # The contract value includes the advance; what is approved for payment is what was invoiced (the advance
        # among it) and the approved tasks waiting to be; paid counts every payment of the contract.
        paid = sum(i.gross_minor for i in invoices if i.kind in COMPLETION_KINDS and i.status == InvoiceStatus.PAID)
        totals = Totals(schedule.value, schedule.billed + schedule.invoiceable_total, paid, retainage.held)
    fields = {
        k: r[k]
        for k in (
            "id",
            "title",
            "sow_reference",
            "currency",
            "retainage_bps",
            "payment_terms_days",
            "service_fee_bps",
            "billing_mode",
            "contractor_id",
            "contractor_name",
            "contractor_has_user",
            "owner_user_id",
            "owner_name",
            "created_at",
            "sent_at",
            "responded_at",
            "responded_by_name",
            "decline_reason",
            "completed_at",
            "cancelled_at",
            "cancel_reason",
            "proposal_id",
            "project_id",
            "project_title",
            "proposal_submitted_at",
        )
    }
    return EngagementDetail(
        **fields,
        status=EngagementStatus(r["status"]),
        milestones=milestones,
        totals=totals,
        change_orders=change_orders(session, engagement_id),
        invoices=invoices,
        retainage=retainage,
        completion=schedule,
    )


@dataclass(frozen=True)
class Choice:
    id: uuid.UUID
    name: str


def contractor_choices(session: Session) -> list[Choice]:
    rows = session.execute(text("select id, legal_name from contractors order by lower(legal_name), id")).all()
    return [Choice(r.id, r.legal_name) for r in rows]


def owner_choices(session: Session) -> list[Choice]:
    """People who can own an engagement: the organization's accepted admins and project owners."""
    rows = session.execute(
        text(
            """
            select u.id, u.name from memberships m join users u on u.id = m.user_id
             where m.role in ('admin', 'owner') and m.accepted_at is not null
             order by lower(u.name), u.id
            """
        )
    ).all()
    return [Choice(r.id, r.name) for r in rows]
