"""Paying approved work through Stripe Connect (issue 17, items 3, 4 and 5; DESIGN.md section 7).

Finance sends one invoice, a selection, or everything due (``send``): in one transaction each payable invoice
gets a payout attempt (its organization and id are the transfer's idempotency key), moves to ``exported`` (handed
to the rail, in no AP batch) and queues the ``pay_out`` job. The job (``pay_out``) makes one ``Transfer`` of the
net amount to the contractor's connected account with the engagement as ``transfer_group``, holding the attempt's
row lock while Stripe answers, and in the same transaction records what came back:

- a transfer: the payment (method Stripe, reference ``tr_…``, the run's id), the invoice paid, its ledger lines,
  the audit event, the attempt succeeded; the contractors paid hear once per payment run, when its last attempt
  ends, with a remittance advice each (services/remittance_advice);
- a refusal (insufficient platform balance, an account not ready, any other 4xx): the attempt refused with
  Stripe's reason in words and the invoice ``on_hold``; finance is told once per payment run, when its last
  attempt ends;
- no answer (a timeout, a 5xx, a 429): nothing; the job is tried again with the same key, so a transfer Stripe
  made before the connection broke (or before a worker died) comes back, not a second one.

``transfer.reversed`` (a webhook, applied by the worker: services/rail_events) reverses the payment: the payment
stops standing, the ledger gets the reversal's lines, the invoice goes on hold, finance and the contractor are
told. The database holds each of these (sql/rails.sql, sql/money.sql): one attempt in flight or succeeded per
invoice, one standing payment per invoice whatever the rail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import stripe
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.invoices import InvoiceStatus, reversal_lines
from backoffice.domain.payouts import Rail, transfer_refusal_words
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import Conflict, Forbidden, ValidationError
from backoffice.jobs import queue
from backoffice.models import Invoice, Organization, Payment, PayoutAccount, PayoutAttempt
from backoffice.services import audit, payments
from backoffice.services.invoices import write_ledger
from backoffice.services.remittance_advice import announce_run
from backoffice.services.stripe_rail import NOT_CONFIGURED, RailUnavailable

# How many invoices one request may send (the queue's selection is at most this many too).
MAX_PER_RUN = 500
# An attempt Stripe has not answered for this long is looked up at Stripe before it is tried again, and one
# older than a day is not tried at all: Stripe keeps an idempotency key for 24 hours.
LOOK_UP_AFTER = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(hours=23)


def idempotency_key(attempt: PayoutAttempt) -> str:
    """The transfer's idempotency key: the attempt's organization and id (an id is one organization's)."""
    return f"payout-{attempt.org_id}-{attempt.id}"


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
    result = Plan()
    for invoice, segregation in rows:
        problem = _problem(invoice, accounts.get(invoice.contractor_id), segregation, actor)
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


def _problem(invoice: Invoice, account: PayoutAccount | None, segregation: bool, actor: Actor | None) -> str:
    status = InvoiceStatus(invoice.status)
    if status == InvoiceStatus.EXPORTED and invoice.batch_id is None:
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
    if actor is not None and segregation and invoice.authorized_by == actor.user_id:
        return "Segregation of duties: you authorized it, so someone else in finance must send it."
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
            except IntegrityError as exc:
                # The locks make this unreachable for the app; it backs up a writer that skipped them.
                if getattr(exc.orig.diag, "constraint_name", None) == "payout_attempts_one_live":
                    raise Conflict(f"{invoice.invoice_number} is being paid through Stripe already.") from None
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
# The worker makes the transfer and records what Stripe answered.
# ---------------------------------------------------------------------------------------------


def is_transient(error: stripe.StripeError) -> bool:
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    status = getattr(error, "http_status", None)
    return status is None or status >= 500 or status in (409, 429)


def pay_out(session: Session, actor: Actor, attempt_id: uuid.UUID, *, rail: stripe.StripeClient) -> str:
    """Make the attempt's transfer (once) and record the outcome in one transaction; returns what happened.
    Raises RailUnavailable when Stripe did not answer: nothing is recorded and the job is tried again."""
    with unit_of_work(session):
        # The attempt's row lock is held while Stripe answers: a second run of the same attempt (a retried job, the
        # sweep) waits, then finds it closed.
        attempt = session.execute(
            select(PayoutAttempt)
            .where(PayoutAttempt.org_id == actor.org_id, PayoutAttempt.id == attempt_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if attempt is None:
            return "no such payout attempt"
        if attempt.status != "pending":
            return f"already {attempt.status}"
        attempt.tries += 1
        session.flush()
        invoice = session.execute(
            select(Invoice).where(Invoice.org_id == attempt.org_id, Invoice.id == attempt.invoice_id)
        ).scalar_one()
        try:
            transfer = _transfer(session, attempt, invoice, rail)
        except stripe.StripeError as error:
            if is_transient(error):
                raise RailUnavailable(str(error)) from None
            code = getattr(error, "code", None) or ""
            words = transfer_refusal_words(code, getattr(error, "user_message", None) or str(error))
            _refuse(session, actor, attempt, invoice, code, words)
            return f"refused: {words}"
        if transfer is None:
            words = "Stripe did not answer for a day; see the reconciliation page before sending it again."
            _refuse(session, actor, attempt, invoice, "no_answer", words)
            return f"refused: {words}"
        _succeed(session, actor, attempt, invoice, transfer)
        return f"paid: {transfer['id']}"


def _transfer(session: Session, attempt: PayoutAttempt, invoice: Invoice, rail: stripe.StripeClient):
    """The attempt's transfer: made now, or (an attempt left in flight a while: a worker died) found at Stripe.
    None when it is too old to be tried safely."""
    age = datetime.now(UTC) - attempt.requested_at
    if age > LOOK_UP_AFTER:
        found = _find_transfer(attempt, rail)
        if found is not None:
            return found
        if age > GIVE_UP_AFTER:
            return None
    created = rail.v1.transfers.create(
        {
            "amount": attempt.amount_minor,
            "currency": attempt.currency.lower(),
            "destination": attempt.destination,
            "transfer_group": f"engagement-{invoice.engagement_id}",
            "description": f"{invoice.invoice_number}: {invoice.description}"[:350],
            "metadata": {
                "invoice_number": invoice.invoice_number,
                "invoice_id": str(invoice.id),
                "org_id": str(attempt.org_id),
                "payout_attempt": str(attempt.id),
            },
        },
        options={"idempotency_key": idempotency_key(attempt)},
    )
    return created.to_dict()


def _find_transfer(attempt: PayoutAttempt, rail: stripe.StripeClient):
    since = int(attempt.requested_at.timestamp()) - 60
    for transfer in rail.v1.transfers.list(
        {"destination": attempt.destination, "created": {"gte": since}, "limit": 100}
    ).auto_paging_iter():
        found = transfer.to_dict()
        if (found.get("metadata") or {}).get("payout_attempt") == str(attempt.id):
            return found
    return None


def _succeed(session: Session, actor: Actor, attempt: PayoutAttempt, invoice: Invoice, transfer) -> None:
    if int(transfer["amount"]) != attempt.amount_minor or str(transfer["currency"]).upper() != attempt.currency:
        raise RuntimeError(f"Stripe's transfer {transfer['id']} is not the attempt's amount")  # never: the key says so
    paid_at = _today()
    payment_id = uuid.uuid4()
    session.execute(
        insert(Payment).values(
            org_id=invoice.org_id,
            id=payment_id,
            contractor_id=invoice.contractor_id,
            invoice_id=invoice.id,
            amount_minor=invoice.net_minor,
            currency=invoice.currency,
            paid_at=paid_at,
            reference=transfer["id"],
            method="stripe",
            source="stripe",
            batch_id=None,
            recorded_by=attempt.requested_by,
            run_id=attempt.run_id,
        )
    )
    attempt.status, attempt.transfer_id, attempt.payment_id = "succeeded", transfer["id"], payment_id
    session.flush()
    payments.mark_paid(
        session,
        actor,
        invoice,
        paid_at=paid_at,
        reference=transfer["id"],
        method="stripe",
        source="stripe",
        payout_attempt=str(attempt.id),
        automatic=attempt.automatic,
    )
    _run_step(session, attempt)


def _refuse(session: Session, actor: Actor, attempt: PayoutAttempt, invoice: Invoice, code: str, words: str) -> None:
    attempt.status, attempt.failure_code, attempt.failure_words = "refused", (code or None), words[:1000]
    session.flush()
    session.execute(
        update(Invoice)
        .where(Invoice.org_id == invoice.org_id, Invoice.id == invoice.id)
        .values(status=InvoiceStatus.ON_HOLD.value)
    )
    audit.record(
        session,
        actor,
        "payout.refused",
        "invoice",
        invoice.id,
        {"invoice_number": invoice.invoice_number, "payout_attempt": str(attempt.id), "code": code, "why": words},
    )
    _run_step(session, attempt)


def _run_step(session: Session, attempt: PayoutAttempt) -> None:
    """When the run's last attempt ends, the run is told once: each contractor paid hears of every invoice Stripe
    paid it, with its remittance advice (remittance_advice.announce_run), and finance of every refusal, with why.
    The run's attempts end in separate transactions, so each takes the run's lock first: the last one to commit
    sees the others' outcomes."""
    session.execute(text("select pg_advisory_xact_lock(hashtextextended(:run, 17))"), {"run": str(attempt.run_id)})
    pending, succeeded, refused = session.execute(
        select(
            func.count().filter(PayoutAttempt.status == "pending"),
            func.count().filter(PayoutAttempt.status == "succeeded"),
            func.count().filter(PayoutAttempt.status == "refused"),
        ).where(PayoutAttempt.org_id == attempt.org_id, PayoutAttempt.run_id == attempt.run_id)
    ).one()
    if pending == 0 and succeeded:
        announce_run(session, attempt.org_id, attempt.run_id)
    if pending == 0 and refused:
        queue.notify(session, attempt.org_id, "payout.refused", attempt.run_id)


def pending_attempts(session: Session, *, older_than: timedelta) -> list[uuid.UUID]:
    """The attempts still in flight after ``older_than``: a job that died with its worker, or one whose retries
    ran out while Stripe was away. The sweep runs them again (same key)."""
    cutoff = datetime.now(UTC) - older_than
    return list(
        session.execute(
            select(PayoutAttempt.id)
            .where(PayoutAttempt.status == "pending", PayoutAttempt.requested_at < cutoff)
            .order_by(PayoutAttempt.requested_at)
            .limit(200)
        ).scalars()
    )


# ---------------------------------------------------------------------------------------------
# transfer.reversed: Stripe took a transfer back.
# ---------------------------------------------------------------------------------------------


def reverse(session: Session, actor: Actor, transfer_id: str, *, rail: stripe.StripeClient) -> str:
    """Apply a transfer's reversal as Stripe's own copy of the transfer tells it (never the webhook's body): a
    full reversal reverses the payment (ledger lines, audit), holds the invoice and tells finance and the
    contractor. A partial one is left for finance to settle by hand (the page says so); returns what was done.
    Raises RailUnavailable (the event's job is tried again) when Stripe did not answer, or when the transfer's
    attempt is still in flight: its payment is reversed once it is recorded."""
    try:
        transfer = rail.v1.transfers.retrieve(transfer_id).to_dict()
    except stripe.InvalidRequestError:
        return "transfer.reversed: Stripe has no such transfer; nothing done"
    except stripe.StripeError as error:
        raise RailUnavailable(str(error)) from None
    with unit_of_work(session):
        attempt = session.execute(
            select(PayoutAttempt)
            .where(PayoutAttempt.org_id == actor.org_id, PayoutAttempt.transfer_id == transfer_id)
            .with_for_update()
        ).scalar_one_or_none()
        if attempt is None:
            # Made for an attempt still in flight (Stripe's answer was lost, or its job is recording it right now):
            # there is no payment to reverse yet. Applied once the attempt has recorded it, never dropped, or that
            # payment would stand for money Stripe took back.
            if _in_flight(session, actor.org_id, (transfer.get("metadata") or {}).get("payout_attempt")):
                raise RailUnavailable("the payment this transfer made is not recorded yet; the reversal waits for it")
            return "transfer.reversed: no payment here was made by this transfer"
        if attempt.status == "reversed":
            return "transfer.reversed: reversed already"
        reversed_amount = int(transfer.get("amount_reversed") or 0)
        if reversed_amount == 0:
            return "transfer.reversed: Stripe's transfer shows no reversal; nothing done"
        if reversed_amount < int(transfer["amount"]):
            audit.record(
                session,
                actor,
                "payment.partially_reversed",
                "invoice",
                attempt.invoice_id,
                {"transfer": transfer_id, "reversed_minor": reversed_amount, "amount_minor": int(transfer["amount"])},
            )
            return f"transfer.reversed: partly ({reversed_amount} of {transfer['amount']}); finance settles it by hand"
        reversals = (transfer.get("reversals") or {}).get("data") or []
        reference = reversals[-1]["id"] if reversals else None
        if not reference:
            raise RailUnavailable("Stripe's transfer lists no reversal yet")
        invoice = session.execute(
            select(Invoice)
            .where(Invoice.org_id == attempt.org_id, Invoice.id == attempt.invoice_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        session.execute(
            update(Payment)
            .where(Payment.org_id == attempt.org_id, Payment.id == attempt.payment_id)
            .values(reversed_at=func.now(), reversal_reference=reference)
        )
        session.execute(
            update(Invoice)
            .where(Invoice.org_id == invoice.org_id, Invoice.id == invoice.id)
            .values(status=InvoiceStatus.ON_HOLD.value)
        )
        write_ledger(session, invoice, "reversed", reversal_lines(invoice.net_minor))
        attempt.status = "reversed"
        session.flush()
        audit.record(
            session,
            actor,
            "payment.reversed",
            "invoice",
            invoice.id,
            {
                "invoice_number": invoice.invoice_number,
                "amount_minor": invoice.net_minor,
                "currency": invoice.currency,
                "transfer": transfer_id,
                "reversal": reference,
            },
        )
        queue.notify(session, invoice.org_id, "payment.reversed", attempt.payment_id)
    return f"transfer.reversed: payment of {invoice.invoice_number} reversed; the invoice is on hold"


def _in_flight(session: Session, org_id: uuid.UUID, attempt_id: str | None) -> bool:
    """Whether ``attempt_id`` (a transfer's metadata) names a payout attempt of this organization still pending."""
    try:
        named = uuid.UUID(str(attempt_id))
    except ValueError:
        return False
    return (
        session.execute(
            select(PayoutAttempt.id).where(
                PayoutAttempt.org_id == org_id, PayoutAttempt.id == named, PayoutAttempt.status == "pending"
            )
        ).first()
        is not None
    )


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


@dataclass(frozen=True)
class AttemptView:
    status: str
    requested_at: datetime
    finished_at: datetime | None
    transfer_id: str | None
    failure_words: str | None
    automatic: bool
    tries: int


def attempts_of(session: Session, invoice_id: uuid.UUID) -> list[AttemptView]:
    """An invoice's payout attempts, newest first, as RLS lets the caller see them."""
    return [
        AttemptView(a.status, a.requested_at, a.finished_at, a.transfer_id, a.failure_words, a.automatic, a.tries)
        for a in session.execute(
            select(PayoutAttempt)
            .where(PayoutAttempt.invoice_id == invoice_id)
            .order_by(PayoutAttempt.requested_at.desc())
        ).scalars()
    ]


def refused_in_run(session: Session, run_id: uuid.UUID) -> list[tuple[str, str, int, str]]:
    """A run's refused attempts: (invoice number, currency, net, why), in invoice-number order."""
    rows = session.execute(
        select(Invoice.invoice_number, PayoutAttempt.amount_minor, PayoutAttempt.currency, PayoutAttempt.failure_words)
        .join(Invoice, (Invoice.org_id == PayoutAttempt.org_id) & (Invoice.id == PayoutAttempt.invoice_id))
        .where(PayoutAttempt.run_id == run_id, PayoutAttempt.status == "refused")
        .order_by(Invoice.number)
    ).all()
    return [(r.invoice_number, r.currency, r.amount_minor, r.failure_words) for r in rows]
