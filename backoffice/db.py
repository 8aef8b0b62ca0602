"""Engines, sessions and the row-level-security context.

Every transaction a session begins carries ``app.user_id``, ``app.org_id`` and ``app.session`` (the
sign-in session's token, which is what names the person for the web role: ``present_sign_in``) from
``session.info``, set with ``set_config(name, value, true)`` (transaction-local, so a pooled connection
never leaks a tenant). The policies in ``sql/rls_policies.sql`` read them through membership-checking
helpers, so a session without a context, or naming an org its user is not a member of, sees no tenant
rows at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

_SET_CONTEXT = text(
    "select set_config('app.user_id', :user_id, true), set_config('app.org_id', :org_id, true),"
    " set_config('app.session', :session_token, true)"
)


def sqlalchemy_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


# The job queue lives in its own schema (migration 0005): enqueuing in the caller's transaction runs
# procrastinate's SQL on our connection, which names its types without a schema.
SEARCH_PATH_OPTION = "-c search_path=public,procrastinate"


def make_engine(url: str, **kwargs) -> Engine:
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {}).setdefault("options", SEARCH_PATH_OPTION)
    return create_engine(sqlalchemy_url(url), **kwargs)


@dataclass(frozen=True)
class RlsContext:
    user_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None


def set_context(session: Session, *, user_id: uuid.UUID | None, org_id: uuid.UUID | None) -> None:
    """Act as ``user_id`` in ``org_id`` from the next transaction on (and in the current one, if any)."""
    ctx = RlsContext(user_id=user_id, org_id=org_id)
    session.info["rls"] = ctx
    if session.in_transaction():
        _apply(session.connection(), ctx, session.info.get(_SESSION_TOKEN))


_SESSION_TOKEN = "backoffice.session_token"


def present_sign_in(session: Session, token: str | None) -> None:
    """Present this sign-in session's token (from ``auth_sign_in``) on every transaction of ``session``
    from now on (and in the current one, if any); None presents none.

    For the web role the database believes no other identity: ``app.user_id`` names the person only
    for the worker and the owner role, and the helpers in ``sql/rls_policies.sql`` take the web role's
    person from the sign-in session whose token arrives in ``app.session``. ``set_context`` says
    which organization to act in; it leaves the token alone."""
    session.info[_SESSION_TOKEN] = token
    if session.in_transaction():
        _apply(session.connection(), session.info.get("rls") or RlsContext(), token)


def presented_sign_in(session: Session) -> str | None:
    """The sign-in session token ``session`` presents, if any."""
    return session.info.get(_SESSION_TOKEN)


def _apply(connection: Connection, ctx: RlsContext, token: str | None) -> None:
    connection.execute(
        _SET_CONTEXT,
        {
            "user_id": str(ctx.user_id) if ctx.user_id else "",
            "org_id": str(ctx.org_id) if ctx.org_id else "",
            "session_token": token or "",
        },
    )


def _after_begin(session: Session, transaction, connection: Connection) -> None:
    if transaction.nested:
        return  # a savepoint: the settings of the transaction around it hold (set_config(..., true) is per transaction)
    ctx = session.info.get("rls")
    token = session.info.get(_SESSION_TOKEN)
    if ctx is not None or token is not None:
        _apply(connection, ctx or RlsContext(), token)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_begin", _after_begin)
    return factory


# --- the unit of work -------------------------------------------------------------------------------------

_IN_UNIT_OF_WORK = "backoffice.unit_of_work"


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One business transaction: commit when the block ends normally (a ``return`` inside it included),
    roll back on any exception and re-raise it. Services are written as ``with unit_of_work(session):
    check → write → announce`` and never call commit or rollback themselves.

    Nesting joins: inside another unit of work on the same session (a service called by a service, the
    demo seeding, a CLI command) the block neither commits nor rolls back; the outermost one does, so an
    inner service never commits its caller's half-done work, and an exception leaving the inner block
    undoes everything when it leaves the outer one. A caller that wants to catch a failure and go on
    wraps the attempt in ``session.begin_nested()`` (a savepoint) instead.
    """
    if session.info.get(_IN_UNIT_OF_WORK):
        yield session
        return
    session.info[_IN_UNIT_OF_WORK] = True
    try:
        yield session
        session.commit()  # inside the try: a commit-time failure (a deferred check) rolls back too
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(_IN_UNIT_OF_WORK, None)


def end_read(session: Session) -> None:
    """End a read-only transaction (a lookup before a form is shown, a verification pass), so that no
    transaction is left open holding a snapshot. Nothing was written, so this is not a unit of work;
    inside one it does nothing, and the unit of work ends the transaction."""
    if not session.info.get(_IN_UNIT_OF_WORK):
        session.rollback()
