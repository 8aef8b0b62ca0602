"""Paying approved work through Stripe Connect, finance's side (issue 17, items 3, 5 and 6; DESIGN.md section 7).

Finance reviews what a send would do (``plan``: the invoices that can go, per currency, and those that cannot, with
why) and sends one invoice, a selection, or everything due (``send``): in one transaction each payable invoice gets a
payout attempt, moves to ``exported`` (handed to the rail, in no AP batch) and queues the ``pay_out`` job, whose
transfer and its outcome are services/stripe_transfers. ``pay_due`` is the same for automatic payment on the due date
(and terms of 0 days: on approval), in the name of the admin who turned it on. ``release_hold`` makes an invoice
Stripe refused or reversed payable again. The database holds each of these (sql/rails.sql, sql/money.sql): one
attempt in flight or succeeded per invoice, one standing payment per invoice whatever the rail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.invoices import InvoiceStatus, handed_to_rail
from backoffice.domain.payouts import Rail
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import Conflict, Forbidden, ValidationError
from backoffice.jobs import queue
from backoffice.models import Invoice, Organization, PayoutAccount, PayoutAttempt
from backoffice.queries.payability import approvers_of, holds_on, tax_blocks
from backoffice.services import audit
from backoffice.services.stripe_rail import NOT_CONFIGURED

# How many invoices one request may send (the queue's selection is at most this many too).
MAX_PER_RUN = 500
# ---------------------------------------------------------------------------------------------
# Finance sends invoices to Stripe.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    invoice_id: uuid.UUID
    invoice_number: str
    contractor_name: str
    currency: str
    net_minor: int
    due_date: date
    problem: str = ""  # why it cannot be sent by Stripe now; empty when it can


@dataclass
class Plan:
    """What a send would do: the invoices that go, per currency, and those that cannot, with why."""

    ready: list[Candidate] = field(default_factory=list)
    blocked: list[Candidate] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per currency: (count, total net)."""
        out: dict[str, tuple[int, int]] = {}
        for c in self.ready:
            n, total = out.get(c.currency, (0, 0))
            out[c.currency] = (n + 1, total + c.net_minor)
        return dict(sorted(out.items()))


def rail_problem(session: Session, org_id: uuid.UUID, *, configured: bool) -> str:
    """Why nothing can be paid by Stripe in this organization now; empty when the rail is open."""
    if not configured:
        return NOT_CONFIGURED
    enabled = session.execute(select(Organization.stripe_rail_enabled).where(Organization.id == org_id)).scalar_one()
    if not enabled:
        return "Paying through Stripe is off for this organization; an admin turns it on in Settings."
    return ""


def plan(
    session: Session,
    actor: Actor,
    invoice_ids: list[uuid.UUID] | None,
    *,
    due_by: date | None = None,
    automatic: bool = False,
) -> Plan:
    """The invoices named (or, with ``invoice_ids`` None, every authorized one due by ``due_by``), split into those
    Stripe can be asked to pay now and those it cannot, each with its reason. Writes nothing."""
    _require_finance(actor)
    query = (
        select(Invoice, Organization.segregation_of_duties)
        .join(Organization, Organization.id == Invoice.org_id)
        .order_by(Invoice.due_date, Invoice.number)
    )
    if invoice_ids is not None:
        query = query.where(Invoice.id.in_(invoice_ids[: MAX_PER_RUN + 1]))
    else:
        query = query.where(Invoice.status == InvoiceStatus.APPROVED.value, Invoice.due_date <= (due_by or _today()))
        query = query.limit(MAX_PER_RUN)
    rows = session.execute(query).all()
    if invoice_ids is not None and len(rows) > MAX_PER_RUN:
        raise ValidationError({"invoice_ids": f"Send at most {MAX_PER_RUN} payments at once."})
    contractor_ids = {r.Invoice.contractor_id for r in rows}
    accounts = {
        a.contractor_id: a
        for a in session.execute(
            select(PayoutAccount).where(
                PayoutAccount.rail == Rail.STRIPE.value, PayoutAccount.contractor_id.in_(contractor_ids)
            )
        ).scalars()
    }
    names = dict(
        session.execute(
            text("select id, legal_name from contractors where id = any(:ids)"), {"ids": list(contractor_ids)}
        ).all()
    )
    invoices = [r.Invoice for r in rows]
    approved, held, untaxed = (
        approvers_of(session, invoices),
        holds_on(session, invoices),
        tax_blocks(session, list(contractor_ids)),
    )
    result = Plan()
    for invoice, segregation in rows:
        problem = _problem(
            invoice, accounts.get(invoice.contractor_id), segregation, actor, approved.get(invoice.id, set())
        )
        if invoice.status == InvoiceStatus.APPROVED.value:
            # What the payment controls stop (issue 18) comes first: a hold, a missing tax form.
            problem = held.get(invoice.id) or untaxed.get(invoice.contractor_id) or problem
        if not problem and automatic and invoice.due_date > _today():
            problem = f"It is due on {invoice.due_date:%d %b %Y}; automatic payment never pays before."
        candidate = Candidate(
            invoice.id,
            invoice.invoice_number,
            names.get(invoice.contractor_id, ""),
            invoice.currency,
            invoice.net_minor,
            invoice.due_date,
            problem,
        )
        (result.blocked if problem else result.ready).append(candidate)
    return result


def _problem(
    invoice: Invoice, account: PayoutAccount | None, segregation: bool, actor: Actor | None, approvers: set
) -> str:
    status = InvoiceStatus(invoice.status)
    if handed_to_rail(status, in_batch=invoice.batch_id is not None):
        return "Stripe is paying it already."
    if status == InvoiceStatus.EXPORTED:
        return "It is in an AP export batch; record its payment from the batch, or void the batch first."
    if status != InvoiceStatus.APPROVED:
        return f"It is {status.label.lower()}."
    if invoice.net_minor <= 0:
        return "Its net payable is zero; there is nothing to transfer."
    if account is None:
        return "The contractor has not connected a Stripe payout account."
    if not (account.transfers_active and account.payouts_enabled):
        return "The contractor's Stripe account is not ready to be paid yet."
    if actor is not None and segregation and actor.user_id in approvers:
        return "Segregation of duties: you approved it, so someone else in finance must send it."
    return ""


@dataclass(frozen=True)
class Sent:
    run_id: uuid.UUID
    attempts: int
    totals: dict[str, tuple[int, int]]
    skipped: list[Candidate]


def send(
    session: Session,
    actor: Actor,
    invoice_ids: list[uuid.UUID] | None,
    *,
    configured: bool,
    due_by: date | None = None,
    automatic: bool = False,
) -> Sent:
    """Hand the payable invoices of ``invoice_ids`` (None: every authorized one due by ``due_by``) to Stripe, as one
    payment run. Those that cannot go are skipped and listed; Conflict when none can."""
    if not automatic:
        _require_finance(actor)
    with unit_of_work(session):
        problem = rail_problem(session, actor.org_id, configured=configured)
        if problem:
            raise Conflict(problem)
        requested_by = actor.user_id
        if automatic:
            org = session.get(Organization, actor.org_id)
            if not org.auto_pay_enabled or org.auto_pay_by is None:
                raise Conflict("Automatic payment is off for this organization.")
            requested_by = org.auto_pay_by
        # Lock the invoices first, in one order (two runs over the same invoices take turns, never deadlock),
        # then plan from what is locked: a concurrent send that got there first has made them exported.
        ids = invoice_ids
        if ids is None:
            # Everything due whose contractor can be paid: a blocked invoice never crowds a payable one out.
            ids = list(
                session.execute(
                    select(Invoice.id)
                    .join(
                        PayoutAccount,
                        (PayoutAccount.org_id == Invoice.org_id)
                        & (PayoutAccount.contractor_id == Invoice.contractor_id)
                        & (PayoutAccount.rail == Rail.STRIPE.value),
                    )
                    .where(
                        Invoice.status == InvoiceStatus.APPROVED.value,
                        Invoice.batch_id.is_(None),
                        Invoice.due_date <= (due_by or _today()),
                        Invoice.net_minor > 0,
                        PayoutAccount.transfers_active,
                        PayoutAccount.payouts_enabled,
                    )
                    .order_by(Invoice.due_date, Invoice.number)
                    .limit(MAX_PER_RUN)
                ).scalars()
            )
        if not ids:
            raise Conflict("No authorized payment is due; nothing was sent.")
        session.execute(select(Invoice.id).where(Invoice.id.in_(ids)).order_by(Invoice.id).with_for_update()).all()
        chosen = plan(session, _as_requester(actor, requested_by), list(ids), automatic=automatic)
        if not chosen.ready:
            reasons = "; ".join(f"{c.invoice_number}: {c.problem}" for c in chosen.blocked[:5])
            raise Conflict(f"Nothing was sent to Stripe. {reasons}")
        run_id = uuid.uuid4()
        invoices = {
            i.id: i
            for i in session.execute(
                select(Invoice).where(Invoice.id.in_([c.invoice_id for c in chosen.ready]))
            ).scalars()
        }
        accounts = {
            a.contractor_id: a.external_id
            for a in session.execute(select(PayoutAccount).where(PayoutAccount.rail == Rail.STRIPE.value)).scalars()
        }
        for candidate in chosen.ready:
            invoice = invoices[candidate.invoice_id]
            attempt_id = uuid.uuid4()
            try:
                with session.begin_nested():
                    session.execute(
                        insert(PayoutAttempt).values(
                            org_id=invoice.org_id,
                            id=attempt_id,
                            run_id=run_id,
                            invoice_id=invoice.id,
                            contractor_id=invoice.contractor_id,
                            rail=Rail.STRIPE.value,
                            destination=accounts[invoice.contractor_id],
                            amount_minor=invoice.net_minor,
                            currency=invoice.currency,
                            automatic=automatic,
                            requested_by=requested_by,
                        )
                    )
            except DBAPIError as exc:
                # One in flight already (the locks make it unreachable for the app; it backs up a writer that skipped
                # them), or what changed since the plan (the contractor's account restricted by an account.updated a
                # moment ago, a setting): the guard's refusal, in its words, and nothing sent.
                if getattr(exc.orig.diag, "constraint_name", None) == "payout_attempts_one_live":
                    raise Conflict(f"{invoice.invoice_number} is being paid through Stripe already.") from None
                if getattr(exc.orig, "sqlstate", None) in ("23514", "42501"):
                    why = exc.orig.diag.message_primary
                    raise Conflict(f"{invoice.invoice_number} could not be sent: {why}. Nothing was sent.") from None
                raise
            session.execute(
                update(Invoice)
                .where(Invoice.org_id == invoice.org_id, Invoice.id == invoice.id)
                .values(status=InvoiceStatus.EXPORTED.value, exported_at=func.now())
            )
            queue.enqueue(session, "pay_out", org_id=str(invoice.org_id), attempt_id=str(attempt_id))
        totals = chosen.totals()
        audit.record(
            session,
            actor,
            "payout.sent",
            "payout_run",
            run_id,
            {
                "rail": Rail.STRIPE.value,
                "automatic": automatic,
                "invoices": [c.invoice_number for c in chosen.ready],
                "totals": {currency: total for currency, (_, total) in totals.items()},
                "skipped": {c.invoice_number: c.problem for c in chosen.blocked},
            },
        )
    return Sent(run_id, len(chosen.ready), totals, chosen.blocked)


def pay_due(
    session: Session, actor: Actor, day: date, *, configured: bool, invoice_ids: list[uuid.UUID] | None = None
) -> Sent | None:
    """Automatic payment (the worker): with "pay automatically on the due date" on, send every authorized invoice
    due by ``day`` whose contractor's account is ready (the daily job), or just ``invoice_ids`` (one approved with
    terms of 0 days: paid on approval). None when there is nothing to do."""
    with unit_of_work(session):
        enabled = session.execute(
            select(Organization.auto_pay_enabled, Organization.stripe_rail_enabled).where(
                Organization.id == actor.org_id
            )
        ).one()
    if not (configured and enabled.auto_pay_enabled and enabled.stripe_rail_enabled):
        return None
    try:
        return send(session, actor, invoice_ids, configured=configured, due_by=day, automatic=True)
    except Conflict:
        return None


def _as_requester(actor: Actor, requested_by: uuid.UUID | None) -> Actor:
    """Segregation of duties is about whoever the payment is sent in the name of (automatic: the admin who
    turned it on)."""
    if requested_by == actor.user_id:
        return actor
    return Actor(requested_by, actor.org_id, actor.role, actor.label, actor.name)


def _require_finance(actor: Actor) -> None:
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance and admins send payments.")


def _today() -> date:
    return datetime.now(UTC).date()


# ---------------------------------------------------------------------------------------------
# Finance releases a hold: the invoice is payable again.
# ---------------------------------------------------------------------------------------------


def release_hold(session: Session, actor: Actor, invoice_id) -> Invoice:
    """An invoice a rail refused or reversed goes back to the queue as authorized (to be sent again, exported, or
    recorded as paid another way), once whatever was wrong is fixed."""
    from backoffice.services.invoices import get_invoice

    _require_finance(actor)
    with unit_of_work(session):
        invoice = get_invoice(session, invoice_id, lock=True)
        if invoice.status != InvoiceStatus.ON_HOLD.value:
            raise Conflict(f"{invoice.invoice_number} is not on hold; nothing was changed.")
        session.execute(
            update(Invoice)
            .where(Invoice.org_id == invoice.org_id, Invoice.id == invoice.id)
            .values(status=InvoiceStatus.APPROVED.value)
        )
        audit.record(
            session, actor, "invoice.hold_released", "invoice", invoice.id, {"invoice_number": invoice.invoice_number}
        )
    session.refresh(invoice)
    return invoice
