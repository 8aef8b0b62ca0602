"""Why isn't this payable yet (issue 18): for any set of invoices, what stands between each and its payment (approval
steps left, a hold on it or its contractor, a missing tax form, a due date ahead), asked in a handful of queries;
and what the payment doors (AP export, recording a payment, Stripe) ask of the controls: who approved an invoice,
which holds stop it. Also the holds page's list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.domain import approvals as rules
from backoffice.domain.invoices import shown_status, status_label
from backoffice.models import Contractor, Hold
from backoffice.queries.approvals import StepView, approval_steps, steps_left


@dataclass(frozen=True)
class Payability:
    blockers: list[rules.Blocker]
    steps: list[StepView]
    invoice_hold: Hold | None
    contractor_hold: Hold | None

    @property
    def blocked(self) -> bool:
        return rules.stops_payment(self.blockers)

    @property
    def held(self) -> bool:
        return self.invoice_hold is not None or self.contractor_hold is not None

    def badge(self, row) -> tuple[str, str]:
        """The status badge of ``row`` (an InvoiceRow): its status, or on hold while a hold stops it."""
        held = self.held
        return (
            shown_status(row.status, held=held).value,
            status_label(row.status, in_batch=row.batch_id is not None, held=held),
        )


def payability(session: Session, invoices, today: date, *, history: bool = False) -> dict[uuid.UUID, Payability]:
    """Why each of ``invoices`` (rows with id, status, contractor_id, due_date) is not payable yet, asked of every
    control in a handful of queries whatever their number: its approval steps, a hold on it or its contractor,
    its contractor's tax form where the organization requires one (queries/tax). Steps are read for the invoices
    awaiting approval only, or for all with ``history`` (an invoice's page shows who approved which step)."""
    invoices = list(invoices)
    if not invoices:
        return {}
    ids = [i.id for i in invoices]
    contractors = list({i.contractor_id for i in invoices})
    steps = approval_steps(session, ids if history else [i.id for i in invoices if i.status == "pending_approval"])
    holds = session.execute(
        select(Hold).where(
            Hold.released_at.is_(None), (Hold.invoice_id.in_(ids)) | (Hold.contractor_id.in_(contractors))
        )
    ).scalars()
    by_invoice: dict[uuid.UUID, Hold] = {}
    by_contractor: dict[uuid.UUID, Hold] = {}
    for h in holds:
        (by_invoice if h.invoice_id else by_contractor)[h.invoice_id or h.contractor_id] = h
    tax = tax_blocks(session, contractors)
    answered = acceptance_blocks(session, [i.id for i in invoices if i.status not in ("paid", "void")])
    found = {}
    for i in invoices:
        held, contractor_held = by_invoice.get(i.id), by_contractor.get(i.contractor_id)
        own = steps.get(i.id, [])
        found[i.id] = Payability(
            rules.blockers(
                str(i.status),
                steps_left=steps_left(own),
                invoice_hold=held.reason if held else None,
                contractor_hold=contractor_held.reason if contractor_held else None,
                tax_form=tax.get(i.contractor_id),
                acceptance=answered.get(i.id),
                due_date=i.due_date,
                today=today,
            ),
            own,
            held,
            contractor_held,
        )
    return found


def tax_blocks(session: Session, contractor_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The contractors among ``contractor_ids`` whose missing tax form stops their payments (queries/tax, where the
    organization requires one), with the words why."""
    try:
        from backoffice.queries.tax import tax_form_blocks
    except ImportError:  # the tax profiles land separately
        return {}
    return tax_form_blocks(session, contractor_ids)


@dataclass(frozen=True)
class HoldView:
    id: uuid.UUID
    invoice_id: uuid.UUID | None
    invoice_number: str | None
    contractor_id: uuid.UUID | None
    contractor_name: str | None
    reason: str
    held_by_name: str
    held_at: datetime


def live_holds(session: Session) -> list[HoldView]:
    rows = session.execute(
        text(
            "select h.id, h.invoice_id, i.invoice_number, h.contractor_id, c.legal_name as contractor_name, h.reason,"
            "       u.name as held_by_name, h.held_at"
            "  from holds h left join invoices i on i.id = h.invoice_id and i.org_id = h.org_id"
            "  left join contractors c on c.id = h.contractor_id and c.org_id = h.org_id"
            "  left join users u on u.id = h.held_by"
            " where h.released_at is null order by h.held_at desc limit 500"
        )
    ).mappings()
    return [HoldView(**r) for r in rows]


def contractor_choices(session: Session) -> list[tuple[uuid.UUID, str]]:
    return list(session.execute(select(Contractor.id, Contractor.legal_name).order_by(Contractor.legal_name)).all())


# --- what the payment doors ask -----------------------------------------------------------------------------


def approvers_of(session: Session, invoices) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Everyone who approved each invoice: its reviewer (step 0), whoever approved each task a task or final invoice
    bills (completion billing), and each step's decider and the person they decided for. With segregation of duties
    on, none of them records or sends its payment (sql/controls.sql, invoice_approvers(), says the same to the
    database)."""
    invoices = list(invoices)
    found = {i.id: {i.authorized_by} for i in invoices}
    if not invoices:
        return found
    billing_tasks = [i.id for i in invoices if getattr(i, "kind", None) in ("completion", "final")]
    if billing_tasks:
        for invoice_id, reviewed_by in session.execute(
            text(
                "select t.invoice_id, r.reviewed_by from invoice_tasks t"
                " join reviews r on r.org_id = t.org_id and r.milestone_id = t.milestone_id"
                " where t.invoice_id = any(:ids)"
                " and (r.decision = 'approve' or (r.decision = 'partial' and r.partial_policy = 'split'))"
            ),
            {"ids": billing_tasks},
        ):
            found[invoice_id].add(reviewed_by)
    for invoice_id, decided_by, on_behalf_of in session.execute(
        text(
            "select invoice_id, decided_by, on_behalf_of from invoice_approvals"
            " where invoice_id = any(:ids) and status = 'approved'"
        ),
        {"ids": [i.id for i in invoices]},
    ):
        found[invoice_id] |= {p for p in (decided_by, on_behalf_of) if p is not None}
    return found


ACCEPTANCE_WORDS = {
    "rejected": "The contractor rejected its self-billed invoice",
    "awaiting": "It awaits the contractor's acceptance of its self-billed invoice",
    "not_issued": "Its self-billed invoice has not been issued yet, so the contractor has not accepted it",
}


def acceptance_block_states(session: Session, invoice_ids: list[uuid.UUID] | None) -> dict[uuid.UUID, str]:
    """The invoices among ``invoice_ids`` (None: every open one) whose contractor's answer stops their payment
    (domain.self_billing.stops_payment: a rejection; or no acceptance yet where the organization requires one), with
    the state of that answer (domain.self_billing.Acceptance's values). Not an exported invoice: once exported its
    payment may have gone out, and a payment that went out is recorded whatever the answer. The payment doors ask
    this; the database refuses the same (sql/self_billing.sql)."""
    if invoice_ids is not None and not invoice_ids:
        return {}
    rows = session.execute(
        text("select invoice_id, state from acceptance_blocks(cast(:ids as uuid[]))"),
        {"ids": None if invoice_ids is None else list(invoice_ids)},
    ).all()
    return {r.invoice_id: r.state for r in rows}


def acceptance_blocks(session: Session, invoice_ids: list[uuid.UUID] | None) -> dict[uuid.UUID, str]:
    """``acceptance_block_states``, with the words why."""
    return {
        i: ACCEPTANCE_WORDS.get(state, ACCEPTANCE_WORDS["awaiting"])
        for i, state in acceptance_block_states(session, invoice_ids).items()
    }


def holds_on(session: Session, invoices) -> dict[uuid.UUID, str]:
    """The invoices among ``invoices`` that a live hold stops (on it, or on its contractor), or the contractor's answer
    to its self-billed invoice (``acceptance_blocks``), with the words why: what every payment door refuses."""
    invoices = list(invoices)
    if not invoices:
        return {}
    answered = acceptance_blocks(session, [i.id for i in invoices])
    ids = [i.id for i in invoices]
    contractors = list({i.contractor_id for i in invoices})
    on_invoice: dict[uuid.UUID, str] = {}
    on_contractor: dict[uuid.UUID, str] = {}
    for h in session.execute(
        select(Hold).where(Hold.released_at.is_(None), Hold.invoice_id.in_(ids) | Hold.contractor_id.in_(contractors))
    ).scalars():
        if h.invoice_id:
            on_invoice[h.invoice_id] = f"It is on hold: {h.reason}"
        else:
            on_contractor[h.contractor_id] = f"The contractor is on hold: {h.reason}"
    return {
        i.id: on_invoice.get(i.id) or on_contractor.get(i.contractor_id) or answered[i.id]
        for i in invoices
        if i.id in on_invoice or i.contractor_id in on_contractor or i.id in answered
    }
