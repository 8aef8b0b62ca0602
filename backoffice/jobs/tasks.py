"""The jobs the worker runs. Each is small: it opens its organization's worker session and calls one
service, which commits. Arguments are ids (JSON), never secrets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from procrastinate import JobContext, RetryStrategy
from sqlalchemy.orm import Session

from backoffice.db import end_read
from backoffice.errors import NotFound
from backoffice.jobs.queue import procrastinate_app
from backoffice.jobs.runtime import current, log, worker_session
from backoffice.queries.notifications import job_org_ids
from backoffice.services import (
    digests,
    einvoices,
    email_delivery,
    notifications,
    password_resets,
    rail_events,
    reconciliation,
    remittance_advice,
    stripe_payouts,
    stripe_transfers,
)
from backoffice.services.stripe_rail import RailUnavailable, client_for

# Timeouts, 5xx and 429 from Resend: 8 attempts over about 53 minutes. procrastinate waits
# wait + exponential_wait ** (attempts + 1) seconds: 13 s, 19 s, 37 s, 91 s, 253 s, 739 s, 2197 s.
EMAIL_RETRY = RetryStrategy(
    max_attempts=8, wait=10, exponential_wait=3, retry_exceptions={email_delivery.TransientEmailError}
)
# A database hiccup (a serialization failure, a restart): try the job again a little later.
DEFAULT_RETRY = RetryStrategy(max_attempts=5, exponential_wait=5)


def _id(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


@procrastinate_app.task(name="notify", retry=DEFAULT_RETRY)
def notify(org_id: str, event: str, entity_id: str) -> None:
    org = uuid.UUID(org_id)
    with worker_session(org) as session:
        written = notifications.notify(
            session, notifications.worker_actor(org), event, entity_id, base_url=current().base_url
        )
    log.info("notify %s %s: %d message(s)", event, entity_id, written)


@procrastinate_app.task(name="send_email", retry=EMAIL_RETRY, pass_context=True)
def send_email(context: JobContext, message_id: str, org_id: str | None = None, user_id: str | None = None) -> None:
    last = context.job.attempts + 1 >= EMAIL_RETRY.max_attempts
    with worker_session(_id(org_id), user_id=_id(user_id)) as session:
        outcome = email_delivery.deliver(
            session, uuid.UUID(message_id), current().mailer, account=org_id is None, last_attempt=last
        )
    log.info("email %s: %s", message_id, outcome.value)


# Queued by password_reset_start() (sql/auth.sql) as the database's owner, never by the web role: the token
# is not in the job, the worker takes it from the database (once) and mails it as the account's message.
@procrastinate_app.task(name="send_password_reset", retry=DEFAULT_RETRY)
def send_password_reset(reset_id: str, user_id: str) -> None:
    with worker_session(None, user_id=uuid.UUID(user_id)) as session:
        mailed = password_resets.mail_reset(session, uuid.UUID(reset_id), base_url=current().base_url)
    log.info("password reset %s: %s", reset_id, "queued for sending" if mailed else "nothing to mail")


@procrastinate_app.task(name="issue_receipt", retry=DEFAULT_RETRY)
def issue_receipt(org_id: str, invoice_id: str) -> None:
    """An invoice's documents: its self-billed invoice (PDF), its e-invoice and credit note (services/einvoices)."""
    org = uuid.UUID(org_id)
    with worker_session(org) as session:
        try:
            documents = einvoices.issue_invoice_documents(session, notifications.worker_actor(org), invoice_id)
        except NotFound:  # not this organization's invoice (or gone): nothing to issue, nothing to retry
            log.warning("documents of invoice %s: no such invoice in organization %s", invoice_id, org)
            return
    issued = ", ".join(d.filename for d in documents) or "nothing new"
    log.info("documents of invoice %s: %s", invoice_id, issued)


# Queued with a payment run's notice, one per contractor the run paid (services/remittance_advice.announce_run).
@procrastinate_app.task(name="issue_remittance_advice", retry=DEFAULT_RETRY)
def issue_remittance_advice(org_id: str, run_id: str, contractor_id: str) -> None:
    org = uuid.UUID(org_id)
    with worker_session(org) as session:
        try:
            document = remittance_advice.issue_remittance_advice(
                session, notifications.worker_actor(org), run_id, contractor_id
            )
        except NotFound:  # no payment of this run to this contractor here: nothing to issue, nothing to retry
            log.warning("remittance advice of run %s to %s: nothing paid here (%s)", run_id, contractor_id, org)
            return
    outcome = document.filename if document else "issued already"
    log.info("remittance advice of run %s to %s: %s", run_id, contractor_id, outcome)


# Stripe did not answer (a timeout, a 5xx, a 429): the event is applied later, the SDK having retried already.
RAIL_RETRY = RetryStrategy(max_attempts=8, wait=10, exponential_wait=3, retry_exceptions={RailUnavailable})


@procrastinate_app.task(name="apply_rail_event", retry=RAIL_RETRY)
def apply_rail_event(org_id: str, rail_event_id: str) -> None:
    """Queued by rail_event_receive() (sql/rails.sql) when a webhook event arrives, never by the web role."""
    org = uuid.UUID(org_id)
    settings = current().settings
    rail = client_for(settings) if settings is not None and settings.stripe_configured else None
    with worker_session(org) as session:
        outcome = rail_events.apply(session, notifications.worker_actor(org), uuid.UUID(rail_event_id), rail=rail)
    log.info("rail event %s: %s", rail_event_id, outcome)


def _rail():
    settings = current().settings
    return client_for(settings) if settings is not None and settings.stripe_configured else None


# Queued by stripe_payouts.send with the payment run's attempts. A timeout, 5xx or 429 is retried with backoff, the
# transfer with the same idempotency key; the sweep below takes over an attempt whose retries ran out.
@procrastinate_app.task(name="pay_out", retry=RAIL_RETRY)
def pay_out(org_id: str, attempt_id: str) -> None:
    org = uuid.UUID(org_id)
    rail = _rail()
    if rail is None:
        raise RailUnavailable("the Stripe rail is not configured on this worker")
    with worker_session(org) as session:
        outcome = stripe_transfers.pay_out(session, notifications.worker_actor(org), uuid.UUID(attempt_id), rail=rail)
    log.info("payout attempt %s: %s", attempt_id, outcome)


# Every ten minutes: a payout attempt still in flight after ten minutes lost its job (a worker killed between
# Stripe's answer and the commit, or retries spent while Stripe was away). It is run again: its transfer is looked up
# at Stripe first, then made with the same idempotency key, so the retry gets the same transfer back.
@procrastinate_app.periodic(cron="*/10 * * * *")
@procrastinate_app.task(name="resume_payouts", queueing_lock="resume_payouts")
def resume_payouts(timestamp: int) -> None:
    rail = _rail()
    if rail is None:
        return

    def resume(session: Session, org: uuid.UUID) -> None:
        stale = stripe_transfers.pending_attempts(session, older_than=stripe_transfers.LOOK_UP_AFTER)
        end_read(session)
        for attempt_id in stale:  # one attempt Stripe still does not answer holds up none of the others
            try:
                outcome = stripe_transfers.pay_out(session, notifications.worker_actor(org), attempt_id, rail=rail)
            except Exception:
                log.exception("payout attempt %s could not be resumed; it is tried again at the next sweep", attempt_id)
                continue
            log.info("payout attempt %s resumed: %s", attempt_id, outcome)

    _for_every_org("resuming payouts", resume)


# Daily: with "pay automatically on the due date" on, every authorized invoice due today or earlier whose
# contractor's payout account is ready is sent to Stripe, in the name of the admin who turned it on.
@procrastinate_app.periodic(cron="0 6 * * *")  # daily, 06:00 UTC, before the digests
@procrastinate_app.task(name="pay_due_invoices", queueing_lock="pay_due_invoices")
def pay_due_invoices(timestamp: int) -> None:
    day = datetime.fromtimestamp(timestamp, tz=UTC).date()
    configured = _rail() is not None
    _for_every_org(
        "automatic payment",
        lambda session, org: stripe_payouts.pay_due(
            session, notifications.worker_actor(org), day, configured=configured
        ),
    )


# Queued with an invoice approved under payment terms of 0 days: paid on approval where the organization pays
# automatically (nothing happens where it does not, or the contractor's account is not ready).
@procrastinate_app.task(name="pay_on_approval", retry=DEFAULT_RETRY)
def pay_on_approval(org_id: str, invoice_id: str) -> None:
    org = uuid.UUID(org_id)
    configured = _rail() is not None
    with worker_session(org) as session:
        sent = stripe_payouts.pay_due(
            session,
            notifications.worker_actor(org),
            datetime.now(UTC).date(),
            configured=configured,
            invoice_ids=[uuid.UUID(invoice_id)],
        )
    log.info("pay on approval %s: %s", invoice_id, "sent to Stripe" if sent else "not sent automatically")


def _for_every_org(what: str, work: Callable[[Session, uuid.UUID], object]) -> None:
    """Run ``work`` once per organization, each in its own worker session and transaction. One
    organization's failure does not stop the others; the job fails afterwards (and is retried) if any did."""
    with current().sessions() as session:
        org_ids = job_org_ids(session)
        end_read(session)
    failed = []
    for org in org_ids:
        try:
            with worker_session(org) as session:
                work(session, org)
        except Exception:
            log.exception("%s failed for organization %s", what, org)
            failed.append(org)
    if failed:
        raise RuntimeError(f"{what} failed for {len(failed)} of {len(org_ids)} organization(s)")


@procrastinate_app.periodic(cron="7 * * * *")  # hourly: a reminder goes out within the hour the SLA passes
@procrastinate_app.task(name="remind_overdue_reviews", queueing_lock="remind_overdue_reviews")
def remind_overdue_reviews(timestamp: int) -> None:
    _for_every_org(
        "the review reminder",
        lambda session, org: notifications.remind_overdue_reviews(
            session, notifications.worker_actor(org), base_url=current().base_url
        ),
    )


@procrastinate_app.periodic(cron="0 7 * * *")  # daily, 07:00 UTC
@procrastinate_app.task(name="finance_digest", queueing_lock="finance_digest")
def finance_digest(timestamp: int) -> None:
    day = datetime.fromtimestamp(timestamp, tz=UTC).date()
    _for_every_org(
        "the finance digest",
        lambda session, org: notifications.send_finance_digest(
            session, notifications.worker_actor(org), day, base_url=current().base_url
        ),
    )


# Every day, quiet or not, unlike the finance digest: the organization's chain head leaves the database
# daily in its admins' mailboxes, so a trail cut short at its newest end is noticed (DESIGN.md section 6).
@procrastinate_app.periodic(cron="0 7 * * *")  # daily, 07:00 UTC
@procrastinate_app.task(name="admin_digest", queueing_lock="admin_digest")
def admin_digest(timestamp: int) -> None:
    day = datetime.fromtimestamp(timestamp, tz=UTC).date()
    _for_every_org(
        "the admins' digest",
        lambda session, org: notifications.send_admin_digest(
            session, notifications.worker_actor(org), day, base_url=current().base_url
        ),
    )


# Hourly: each person who chose one email a day gets their digest at the first run at or after 08:00 on their own
# clock (services/digests), so every zone's 08:00 is met within the hour; a run missed is made up by the next.
@procrastinate_app.periodic(cron="20 * * * *")
@procrastinate_app.task(name="daily_digests", queueing_lock="daily_digests")
def daily_digests(timestamp: int) -> None:
    now = datetime.fromtimestamp(timestamp, tz=UTC)
    _for_every_org(
        "the daily digests",
        lambda session, org: digests.send_daily_digests(
            session, notifications.worker_actor(org), now, base_url=current().base_url
        ),
    )


# --- reconciling Stripe with the payments recorded here (issue 17, item 5; services/reconciliation) ----------------


# Queued by finance's "Check now" (reconciliation.request_check) for its organization. Stripe's transfers are
# listed first, then compared; Stripe not answering is retried like a payout.
@procrastinate_app.task(name="reconcile_stripe", retry=RAIL_RETRY)
def reconcile_stripe(org_id: str) -> None:
    org = uuid.UUID(org_id)
    rail = _rail()
    if rail is None:
        log.warning("reconciliation for organization %s: the Stripe rail is not configured on this worker", org)
        return
    listing = reconciliation.list_transfers(rail)
    with worker_session(org) as session:
        outcome = reconciliation.reconcile(session, notifications.worker_actor(org), listing, rail=rail, requested=True)
    log.info("reconciliation for organization %s: %s", org, _reconciled(outcome))


# Daily, before automatic payment (06:00) and the digests (07:00): one listing of the platform's transfers (one
# Stripe key serves every organization), compared with each organization's payments where the rail is on.
@procrastinate_app.periodic(cron="30 5 * * *")  # daily, 05:30 UTC
@procrastinate_app.task(name="reconcile_stripe_daily", queueing_lock="reconcile_stripe_daily")
def reconcile_stripe_daily(timestamp: int) -> None:
    rail = _rail()
    if rail is None:
        return
    listing = reconciliation.list_transfers(rail)

    def reconcile(session: Session, org: uuid.UUID) -> None:
        outcome = reconciliation.reconcile(session, notifications.worker_actor(org), listing, rail=rail)
        if outcome is not None:
            log.info("reconciliation for organization %s: %s", org, _reconciled(outcome))

    _for_every_org("the Stripe reconciliation", reconcile)


def _reconciled(outcome: reconciliation.Outcome | None) -> str:
    if outcome is None:
        return "the organization does not pay through Stripe"
    return f"{outcome.transfers} transfer(s), {outcome.payments} payment(s), {len(outcome.findings)} finding(s)"
