"""Enqueue jobs in the caller's transaction.

A job goes in through ``enqueue_job()`` (sql/jobs.sql), a SECURITY DEFINER function, on the session's own
connection, so it commits or rolls back with the state change that asked for it. The web role has no
privilege on the queue's tables: the function accepts only the job kinds below, for the current
organization (or, for an account message, the account the transaction acts as). The worker's own
follow-up jobs (a notice's emails) go in the same way. Only task names cross this module: services import
it without importing the tasks (which import the services).
"""

from __future__ import annotations

import json
import uuid

from procrastinate import App, PsycopgConnector
from sqlalchemy import text
from sqlalchemy.orm import Session

# The worker's app: its connector is replaced with a real one, as the worker role, where a worker runs
# (runtime.run_worker).
procrastinate_app = App(connector=PsycopgConnector(), import_paths=["backoffice.jobs.tasks"])

_ENQUEUE = text("select enqueue_job(:task, cast(:args as jsonb))")


def enqueue(session: Session, task: str, **args) -> None:
    """Defer ``task`` with ``args`` (ids and event names) in ``session``'s current transaction."""
    session.execute(_ENQUEUE, {"task": task, "args": json.dumps(args)})


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
    """Issue what the invoice's documents lack: its self-billed invoice (PDF), its e-invoice (UBL) and, once void,
    its credit note (services/einvoices.issue_invoice_documents). The job keeps the name it had when the PDF was
    called a receipt: the queue's door (sql/jobs.sql) and jobs queued before knew it by that name."""
    enqueue(session, "issue_receipt", org_id=str(org_id), invoice_id=str(invoice_id))


def issue_remittance_advice(session: Session, org_id: uuid.UUID, run_id: uuid.UUID, contractor_id: uuid.UUID) -> None:
    enqueue(
        session, "issue_remittance_advice", org_id=str(org_id), run_id=str(run_id), contractor_id=str(contractor_id)
    )
