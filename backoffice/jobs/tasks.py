"""The jobs the worker runs. Each is small: it opens its organization's worker session and calls one
service, which commits. Arguments are ids (JSON), never secrets."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from procrastinate import JobContext, RetryStrategy
from sqlalchemy import text

from backoffice.jobs.queue import procrastinate_app
from backoffice.jobs.runtime import current, log, worker_session
from backoffice.services import email_delivery, notifications, receipts

# Timeouts and 5xx from Resend: 6 attempts over about 20 minutes (10 s, 40 s, 90 s, 160 s, 250 s ...).
EMAIL_RETRY = RetryStrategy(max_attempts=6, linear_wait=0, exponential_wait=10,
                            retry_exceptions={email_delivery.TransientEmailError})
# A database hiccup (a serialization failure, a restart): try the job again a little later.
DEFAULT_RETRY = RetryStrategy(max_attempts=5, exponential_wait=5)


def _id(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


@procrastinate_app.task(name="notify", retry=DEFAULT_RETRY)
def notify(org_id: str, event: str, entity_id: str) -> None:
    org = uuid.UUID(org_id)
    with worker_session(org) as session:
        written = notifications.notify(session, notifications.worker_actor(org), event, entity_id,
                                       base_url=current().base_url)
    log.info("notify %s %s: %d message(s)", event, entity_id, written)


@procrastinate_app.task(name="send_email", retry=EMAIL_RETRY, pass_context=True)
def send_email(context: JobContext, message_id: str, org_id: str | None = None, user_id: str | None = None) -> None:
    last = context.job.attempts + 1 >= EMAIL_RETRY.max_attempts
    with worker_session(_id(org_id), user_id=_id(user_id)) as session:
        outcome = email_delivery.deliver(session, uuid.UUID(message_id), current().mailer, last_attempt=last)
    log.info("email %s: %s", message_id, outcome.value)


@procrastinate_app.task(name="issue_receipt", retry=DEFAULT_RETRY)
def issue_receipt(org_id: str, invoice_id: str) -> None:
    org = uuid.UUID(org_id)
    with worker_session(org) as session:
        document = receipts.issue_receipt(session, notifications.worker_actor(org), invoice_id)
    log.info("receipt for invoice %s: %s", invoice_id, document.filename if document else "issued already")


def _org_ids() -> list[uuid.UUID]:
    with current().sessions() as session:
        ids = list(session.execute(text("select job_org_ids()")).scalars())
        session.rollback()
    return ids


@procrastinate_app.periodic(cron="7 * * * *")  # hourly: a reminder goes out within the hour the SLA passes
@procrastinate_app.task(name="remind_overdue_reviews", queueing_lock="remind_overdue_reviews")
def remind_overdue_reviews(timestamp: int) -> None:
    for org in _org_ids():
        with worker_session(org) as session:
            notifications.remind_overdue_reviews(session, notifications.worker_actor(org), base_url=current().base_url)


@procrastinate_app.periodic(cron="0 7 * * *")  # daily, 07:00 UTC
@procrastinate_app.task(name="finance_digest", queueing_lock="finance_digest")
def finance_digest(timestamp: int) -> None:
    day = datetime.fromtimestamp(timestamp, tz=timezone.utc).date()
    for org in _org_ids():
        with worker_session(org) as session:
            notifications.send_finance_digest(session, notifications.worker_actor(org), day, base_url=current().base_url)
