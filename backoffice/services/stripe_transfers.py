"""The worker's side of paying through Stripe (issue 17, items 3 and 4; DESIGN.md section 7): one transfer per payout
attempt, and what Stripe answered recorded in the transaction that closes the attempt.

``pay_out`` (the ``pay_out`` job, and the sweep that resumes an attempt whose job died) makes one ``Transfer`` of the
attempt's net amount to the contractor's connected account, with the engagement as ``transfer_group`` and the
attempt as its idempotency key, holding the attempt's row lock while Stripe answers:

- a transfer: the payment (method Stripe, reference ``tr_…``), the invoice paid, its ledger lines and audit event
  (payments.mark_paid), the attempt succeeded;
- a refusal (insufficient platform balance, an account not ready, any other 4xx): the attempt refused with Stripe's
  reason in words and the invoice ``on_hold``;
- no answer (a timeout, a 5xx, a 429): nothing; the job is tried again with the same key, so a transfer Stripe made
  before the connection broke (or before a worker died) comes back, not a second one.

When a run's last attempt ends, the run is told once (``_run_step``). ``reverse`` applies ``transfer.reversed``
(services/rail_events): the payment stops standing, the ledger gets the reversal's lines, the invoice goes on hold.
Finance's side (what to send, sending it, releasing a hold) is services/stripe_payouts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import stripe
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.invoices import InvoiceStatus, handed_to_rail, reversal_lines
from backoffice.domain.payouts import transfer_refusal_words
from backoffice.jobs import queue
from backoffice.models import Invoice, Payment, PayoutAttempt
from backoffice.queries.payability import holds_on
from backoffice.services import audit, payments
from backoffice.services.invoices import write_ledger
from backoffice.services.remittance_advice import announce_run
from backoffice.services.stripe_rail import RailUnavailable

# An attempt Stripe has not answered for this long is looked up at Stripe before it is tried again, and one
# older than a day is not tried at all: Stripe keeps an idempotency key for 24 hours.
LOOK_UP_AFTER = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(hours=23)


def idempotency_key(attempt: PayoutAttempt) -> str:
    """The transfer's idempotency key: the attempt's organization and id (an id is one organization's)."""
    return f"payout-{attempt.org_id}-{attempt.id}"


def _today() -> date:
    return datetime.now(UTC).date()


def is_transient(error: stripe.StripeError) -> bool:
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    # 401/403: Stripe refused our key (rotated, or the wrong one), not the transfer: fix the key, the retry pays.
    status = getattr(error, "http_status", None)
    return status is None or status >= 500 or status in (401, 403, 409, 429)


def pay_out(session: Session, actor: Actor, attempt_id: uuid.UUID, *, rail: stripe.StripeClient) -> str:
    """Make the attempt's transfer (once) and record the outcome in one transaction; returns what happened.
    Raises RailUnavailable when Stripe did not answer: nothing is recorded and the job is tried again."""
    with unit_of_work(session):  # each try counts, also one Stripe does not answer (rolled back below)
        counted = session.execute(
            update(PayoutAttempt)
            .where(
                PayoutAttempt.org_id == actor.org_id, PayoutAttempt.id == attempt_id, PayoutAttempt.status == "pending"
            )
            .values(tries=PayoutAttempt.tries + 1)
        ).rowcount
    if not counted:
        with unit_of_work(session):
            status = session.execute(
                select(PayoutAttempt.status).where(PayoutAttempt.org_id == actor.org_id, PayoutAttempt.id == attempt_id)
            ).scalar_one_or_none()
        return f"already {status}" if status else "no such payout attempt"
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
        invoice = session.execute(
            select(Invoice).where(Invoice.org_id == attempt.org_id, Invoice.id == attempt.invoice_id)
        ).scalar_one()
        if not handed_to_rail(invoice.status, in_batch=invoice.batch_id is not None):
            # Never: the attempt's invoice is handed over in its transaction (payout_attempts_handed_over) and only
            # this attempt moves it on. Asked anyway, before any money moves.
            attempt.status, attempt.failure_words = "refused", "The invoice was no longer waiting for Stripe."
            session.flush()
            return "refused: the invoice was no longer waiting for Stripe; nothing sent"
        held = holds_on(session, [invoice]).get(invoice.id) if attempt.tries <= 1 else None
        if held:
            # Held after it was sent and before Stripe was ever asked (issue 18): nothing moves. Once asked, the
            # transfer may exist, so the same idempotency key finishes the job whatever was held since.
            _refuse(session, actor, attempt, invoice, "held", f"Held before Stripe was asked. {held}")
            return f"refused: {held}"
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
        reference = reversals[0]["id"] if reversals else None  # Stripe lists the newest first
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


def refused_in_run(session: Session, run_id: uuid.UUID) -> list[tuple[str, str, int, str]]:
    """A run's refused attempts: (invoice number, currency, net, why), in invoice-number order."""
    rows = session.execute(
        select(Invoice.invoice_number, PayoutAttempt.amount_minor, PayoutAttempt.currency, PayoutAttempt.failure_words)
        .join(Invoice, (Invoice.org_id == PayoutAttempt.org_id) & (Invoice.id == PayoutAttempt.invoice_id))
        .where(PayoutAttempt.run_id == run_id, PayoutAttempt.status == "refused")
        .order_by(Invoice.number)
    ).all()
    return [(r.invoice_number, r.currency, r.amount_minor, r.failure_words) for r in rows]
