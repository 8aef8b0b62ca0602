"""Enqueue jobs in the caller's transaction.

The job row is inserted on the session's own connection (procrastinate's ``connection=`` option), so it
commits or rolls back with the state change that asked for it. Only task names cross this module:
services import it without importing the tasks (which import the services).
"""

from __future__ import annotations

import uuid

from procrastinate import App, PsycopgConnector, SyncPsycopgConnector
from sqlalchemy.orm import Session

# The worker's app: its connector is replaced with a real one where a worker runs (runtime.run_worker).
procrastinate_app = App(connector=PsycopgConnector(), import_paths=["backoffice.jobs.tasks"])
# Deferring goes through a synchronous app that never opens a pool of its own: every job is inserted on
# the caller's connection, including from inside a job (where the worker's connector is asynchronous).
_deferring = App(connector=SyncPsycopgConnector())


def enqueue(session: Session, task: str, **args) -> None:
    """Defer ``task`` with ``args`` (JSON values) in ``session``'s current transaction."""
    connection = session.connection().connection.driver_connection
    _deferring.configure_task(task, connection=connection).defer(**args)


def notify(session: Session, org_id: uuid.UUID, event: str, entity_id: uuid.UUID | str) -> None:
    """Tell the people an event concerns, by email and in the app, once the transaction commits."""
    enqueue(session, "notify", org_id=str(org_id), event=event, entity_id=str(entity_id))


def send_email(
    session: Session, message_id: uuid.UUID, *, org_id: uuid.UUID | None, user_id: uuid.UUID | None = None
) -> None:
    """Send one ``email_messages`` row. ``user_id`` names the account for an account message (no org)."""
    enqueue(
        session,
        "send_email",
        message_id=str(message_id),
        org_id=str(org_id) if org_id else None,
        user_id=str(user_id) if user_id else None,
    )


def issue_receipt(session: Session, org_id: uuid.UUID, invoice_id: uuid.UUID) -> None:
    enqueue(session, "issue_receipt", org_id=str(org_id), invoice_id=str(invoice_id))
