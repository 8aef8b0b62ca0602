"""Sign-in and password-reset helpers: the throttle's server-side limits, and the worker's half of a reset.

The throttle's limits live in the database (table login_settings, which only the owner role writes;
backoffice.schema.upgrade writes it from the environment); a reset's token is made by the database and
mailed by the worker (job send_password_reset), so a test reads a link from the email the worker wrote.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from backoffice.config import load_settings
from backoffice.jobs import runtime
from backoffice.services import password_resets

BASE_URL = "http://backoffice.test"


@contextmanager
def login_limits(admin_engine, *, max_failures: int, lock_minutes: int) -> Iterator[None]:
    """The server's throttle limits set to these (as the owner role) for the block, then put back."""
    with admin_engine.begin() as conn:
        before = conn.execute(text("select max_failures, lock_minutes from login_settings")).one()
        conn.execute(
            text("update login_settings set max_failures = :m, lock_minutes = :n"),
            {"m": max_failures, "n": lock_minutes},
        )
    try:
        yield
    finally:
        with admin_engine.begin() as conn:
            conn.execute(
                text("update login_settings set max_failures = :m, lock_minutes = :n"),
                {"m": before.max_failures, "n": before.lock_minutes},
            )


def waiting_resets(admin_engine, user_id) -> list[uuid.UUID]:
    """The reset ids of the account's send_password_reset jobs still waiting (as the owner role), oldest first."""
    with admin_engine.connect() as conn:
        return [
            uuid.UUID(r)
            for r in conn.execute(
                text(
                    "select args->>'reset_id' from procrastinate.procrastinate_jobs"
                    " where task_name = 'send_password_reset' and status = 'todo' and args->>'user_id' = :u order by id"
                ),
                {"u": str(user_id)},
            ).scalars()
        ]


def write_reset_emails(database, admin_engine, user_id) -> None:
    """The worker's first half only, as the worker role: write the account's waiting reset emails into the
    outbox (their sending stays queued). The jobs themselves stay too: run later, they find nothing to mail."""
    runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))
    for reset_id in waiting_resets(admin_engine, user_id):
        with runtime.worker_session(None, user_id=uuid.UUID(str(user_id))) as session:
            password_resets.mail_reset(session, reset_id, base_url=BASE_URL)
