"""The RLS context (app.user_id, app.org_id) follows a session across transactions and never leaks.

backoffice.db sets the context with set_config(..., true): transaction-local. The session's
``after_begin`` listener re-applies it at the start of every transaction, so a commit must not lose
it, and a pooled connection handed to another session must not carry it.
"""

from __future__ import annotations

import pytest
from kit.signin import act
from sqlalchemy import text
from sqlalchemy.exc import DataError

from backoffice.db import make_engine, make_session_factory


def contractors_of(session, org_id) -> set:
    return set(session.execute(text("select id from contractors where org_id = :org"), {"org": org_id}).scalars())


def visible_contractors(session) -> int:
    return session.execute(text("select count(*) from contractors")).scalar_one()


def settings_of(session) -> tuple[str | None, str | None]:
    return tuple(
        session.execute(text("select current_setting('app.user_id', true), current_setting('app.org_id', true)")).one()
    )


def empty(value) -> bool:
    return value in (None, "")


@pytest.fixture
def one_connection_sessions(database):
    """A session factory over a pool of exactly one connection, so the next session surely reuses it."""
    engine = make_engine(database.app_url, pool_size=1, max_overflow=0)
    yield make_session_factory(engine)
    engine.dispose()


# --- across transactions of one session -----------------------------------------------------------------


def test_context_set_before_a_transaction_applies_once_it_begins(world, app_session):
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert not app_session.in_transaction()  # nothing to apply it to yet: after_begin will
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}


def test_context_survives_a_commit_and_applies_to_the_next_transaction(world, app_session):
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}
    app_session.commit()
    assert not app_session.in_transaction()
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}
    assert settings_of(app_session) == (str(world.admin.id), str(world.org_a))


def test_context_survives_a_rollback_and_a_failed_statement(world, app_session):
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    app_session.rollback()
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}
    with pytest.raises(DataError):  # division by zero
        app_session.execute(text("select 1 / 0"))
    app_session.rollback()
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}


def test_context_set_inside_an_open_transaction_applies_at_once(world, app_session):
    assert visible_contractors(app_session) == 0  # the transaction is open, without context
    assert app_session.in_transaction()
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}


def test_switching_context_mid_session_takes_effect_in_the_same_transaction(world, app_session):
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert contractors_of(app_session, world.org_a) == {world.contractor_x, world.contractor_y}
    act(app_session, user_id=world.admin_b.id, org_id=world.org_b)
    assert contractors_of(app_session, world.org_a) == set()
    assert contractors_of(app_session, world.org_b) == {world.contractor_z}
    app_session.commit()
    # and the switched context is the one the next transaction carries
    assert contractors_of(app_session, world.org_a) == set()
    assert contractors_of(app_session, world.org_b) == {world.contractor_z}


def test_switching_to_a_contractor_mid_session_narrows_at_once(world, app_session):
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert visible_contractors(app_session) == 2
    act(app_session, user_id=world.contractor_x_user.id, org_id=world.org_a)
    assert app_session.execute(text("select id from contractors")).scalars().all() == [world.contractor_x]


def test_clearing_the_context_mid_session_hides_everything(world, app_session):
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert visible_contractors(app_session) == 2
    act(app_session, user_id=None, org_id=None)
    assert visible_contractors(app_session) == 0
    app_session.commit()
    assert visible_contractors(app_session) == 0


# --- between sessions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["commit", "rollback", "close_mid_transaction", "error"])
def test_context_does_not_leak_to_the_next_session_on_the_same_connection(world, one_connection_sessions, ending):
    with one_connection_sessions() as first:
        act(first, user_id=world.admin.id, org_id=world.org_a)
        assert visible_contractors(first) == 2
        pid = first.execute(text("select pg_backend_pid()")).scalar_one()
        if ending == "commit":
            first.commit()
        elif ending == "rollback":
            first.rollback()
        elif ending == "error":
            with pytest.raises(DataError):  # division by zero
                first.execute(text("select 1 / 0"))
        # close_mid_transaction: leave it open; closing the session returns the connection
    with one_connection_sessions() as second:
        assert second.execute(text("select pg_backend_pid()")).scalar_one() == pid  # really the same connection
        assert visible_contractors(second) == 0
        assert all(empty(v) for v in settings_of(second))
        assert second.execute(text("select count(*) from organizations")).scalar_one() == 0


def test_context_does_not_leak_through_the_shared_pool(world, app_sessions):
    with app_sessions() as first:
        act(first, user_id=world.admin.id, org_id=world.org_a)
        assert visible_contractors(first) == 2
        first.commit()
    with app_sessions() as fresh:
        assert visible_contractors(fresh) == 0
        assert all(empty(v) for v in settings_of(fresh))


def test_two_open_sessions_keep_their_own_contexts(world, app_sessions):
    with app_sessions() as a, app_sessions() as b:
        act(a, user_id=world.admin.id, org_id=world.org_a)
        act(b, user_id=world.admin_b.id, org_id=world.org_b)
        assert contractors_of(a, world.org_a) == {world.contractor_x, world.contractor_y}
        assert contractors_of(b, world.org_b) == {world.contractor_z}
        assert contractors_of(a, world.org_b) == set()
        assert contractors_of(b, world.org_a) == set()


# --- within one Flask request -----------------------------------------------------------------------------


def test_context_in_a_flask_request_survives_a_commit(world, app):
    from backoffice.web.context import db

    with app.test_request_context():
        session = db()
        assert visible_contractors(session) == 0
        act(session, user_id=world.admin.id, org_id=world.org_a)
        assert contractors_of(session, world.org_a) == {world.contractor_x, world.contractor_y}
        session.commit()
        assert db() is session  # one session per request
        assert contractors_of(db(), world.org_a) == {world.contractor_x, world.contractor_y}
        assert settings_of(db()) == (str(world.admin.id), str(world.org_a))


def test_context_of_one_flask_request_does_not_reach_the_next(world, app):
    from backoffice.web.context import db

    with app.test_request_context():
        act(db(), user_id=world.admin.id, org_id=world.org_a)
        assert visible_contractors(db()) == 2
        db().commit()
        assert visible_contractors(db()) == 2  # the request ends with a transaction open
    with app.test_request_context():
        assert visible_contractors(db()) == 0
        assert all(empty(v) for v in settings_of(db()))
