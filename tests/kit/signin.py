"""Acting as a person from a test: a real sign-in session, opened by the database.

For the web role the database believes no ``app.user_id``: the person is the one whose sign-in session
the connection presents in ``app.session`` (sql/rls_policies.sql, sql/auth.sql). A test that acts as
someone therefore opens a sign-in for them as the owner role (``auth_open_session``, which only the
sign-in functions reach in production) and presents its token, the way a request presents its cookie's.
Hostile contexts (a user id named without a sign-in, an ended or expired one) are built with
``open_sign_in`` and raw settings in the tests that need them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import present_sign_in, set_context
from backoffice.queries.identity import actor_for

_owner: list[Engine] = []  # the owner role's engine of this test process's database (conftest: admin_engine)


def use_owner_engine(engine: Engine | None) -> None:
    _owner[:] = [engine] if engine is not None else []


def open_sign_in(user_id: uuid.UUID, *, ended: bool = False, expired: bool = False) -> str:
    """A new sign-in session's token for ``user_id`` (ended, or already expired, when asked)."""
    with _owner[0].begin() as conn:
        token = conn.execute(text("select auth_open_session(:u)"), {"u": user_id}).scalar_one()
        if ended or expired:
            conn.execute(
                text(
                    "update user_sessions set ended_at = case when :ended then now() end,"
                    " created_at = case when :expired then now() - interval '2 days' else created_at end,"
                    " expires_at = case when :expired then now() - interval '1 day' else expires_at end"
                    " where token_hash = encode(sha256(convert_to(:t, 'UTF8')), 'hex')"
                ),
                {"t": token, "ended": ended, "expired": expired},
            )
    return token


def present(session: Session, user_id: uuid.UUID | None) -> None:
    """Present a fresh sign-in of ``user_id`` on ``session`` (none for None)."""
    present_sign_in(session, open_sign_in(user_id) if user_id is not None else None)


def act(session: Session, *, user_id: uuid.UUID | None, org_id: uuid.UUID | None) -> Session:
    """``session`` signed in as ``user_id`` and acting in ``org_id``: ``set_context`` with a real sign-in."""
    present(session, user_id)
    set_context(session, user_id=user_id, org_id=org_id)
    return session


def actor_of(session: Session, user_id: uuid.UUID, org_id: uuid.UUID | None) -> Actor | None:
    """``actor_for`` on a session signed in as ``user_id``."""
    present(session, user_id)
    return actor_for(session, user_id, org_id)


def claim(
    session: Session, *, user_id: uuid.UUID | None, org_id: uuid.UUID | None, token: str | None = None
) -> Session:
    """What SQL run as the web role can do to name someone: set ``app.user_id`` and ``app.org_id`` by hand,
    presenting ``token`` (someone's sign-in, an ended or expired one, or none). The database believes only
    the sign-in."""
    present_sign_in(session, token)
    set_context(session, user_id=user_id, org_id=org_id)
    return session
