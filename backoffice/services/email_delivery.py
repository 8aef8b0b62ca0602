"""Sending one outbox message through Resend, exactly once.

- The message row is locked for the whole attempt: a second job for the same message waits, then finds
  it sent and does nothing.
- Resend gets the message's id as its ``Idempotency-Key``: if a worker dies after Resend accepted the
  message but before the commit, the retry is answered with the same email, not a second one.
- A timeout, a 5xx or a 429 is worth retrying: the attempt and the error are recorded (status
  ``retrying``) and ``TransientEmailError`` tells the job to run again with backoff. Any other 4xx is
  final: status ``failed`` with Resend's reason, no retry.
- Without an API key nothing is sent: the message is ``kept`` in the outbox, where admins see it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

import resend
from resend.exceptions import ResendError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.db import unit_of_work
from backoffice.models import AccountMessage, EmailMessage

NO_API_KEY = "Not sent: email is not set up yet, so messages are kept here instead."


@dataclass(frozen=True)
class Mailer:
    api_key: str | None
    sender: str
    timeout_seconds: int = 10


class Outcome(Enum):
    SENT = "sent"
    KEPT = "kept"
    FAILED = "failed"
    RETRY = "retry"
    NOTHING_TO_DO = "nothing to do"  # sent or given up already, or not visible in this context


class TransientEmailError(Exception):
    """Resend could not take the message now (timeout, 5xx, 429): try again later."""


def _retryable(error: ResendError) -> bool:
    try:
        code = int(error.code)
    except (TypeError, ValueError):
        return True
    return code >= 500 or code == 429 or error.error_type == "HttpClientError"


def _describe(error: ResendError) -> str:
    return f"Resend answered {error.code} ({error.error_type}): {error.message}"[:1000]


def deliver(
    session: Session, message_id: uuid.UUID, mailer: Mailer, *, account: bool = False, last_attempt: bool = False
) -> Outcome:
    """Send the message once (an organization's, or with ``account`` an account's own); commit what happened.
    Raises TransientEmailError to ask for a retry (unless ``last_attempt``, when the message is marked failed
    instead)."""
    retry: TransientEmailError | None = None
    table = AccountMessage if account else EmailMessage
    with unit_of_work(session):
        message = session.execute(select(table).where(table.id == message_id).with_for_update()).scalar_one_or_none()
        # Held for a daily digest (or carried by one): never sent on its own (services/digests).
        if message is None or message.status in ("sent", "failed", "held", "digested"):
            return Outcome.NOTHING_TO_DO
        message.updated_at = func.now()
        if not mailer.api_key:
            message.status, message.last_error = "kept", NO_API_KEY
            return Outcome.KEPT
        message.attempts += 1
        resend.api_key = mailer.api_key
        resend.default_http_client = resend.RequestsClient(timeout=mailer.timeout_seconds)
        try:
            sent = resend.Emails.send(
                {
                    "from": mailer.sender,
                    "to": [message.recipient],
                    "subject": message.subject,
                    "html": message.html,
                    "text": message.text,
                    "tags": [{"name": "event", "value": message.event.replace(".", "_")}],
                },
                {"idempotency_key": f"email-message/{message.id}"},
            )
        except ResendError as error:
            message.last_error = _describe(error)
            if _retryable(error) and not last_attempt:
                message.status = "retrying"
                retry = TransientEmailError(message.last_error)
            else:
                if _retryable(error):
                    message.last_error = f"Gave up after {message.attempts} attempts. {message.last_error}"[:1000]
                message.status = "failed"
                return Outcome.FAILED
        else:
            message.status, message.provider_id, message.sent_at = "sent", sent["id"], func.now()
            message.last_error = None
            return Outcome.SENT
    raise retry  # after the unit of work: the attempt and its error are kept for the retry to read
