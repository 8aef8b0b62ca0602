"""Secrets are never chosen by the caller (issue 16, item 4; DESIGN.md section 5), with raw SQL as the web role.

A reset token is made by the database, kept hashed, and reaches the person only in the email the worker
writes; the web role can neither choose one, nor read one, nor queue the job that mails it. The login
throttle's limits are the server's (table login_settings, written at upgrade), never the caller's.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from kit import PASSWORD
from kit.auth import login_limits
from kit.engagements import owner_query
from kit.jobs import jobs, run_jobs
from kit.web import csrf_token
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services.auth import PASSWORD_METHOD, candidate_hash, token_hash

INSUFFICIENT_PRIVILEGE = "42501"
UNDEFINED_FUNCTION = "42883"


def refused(session, sql: str, **params) -> str:
    """The SQLSTATE the statement is refused with (it must be refused)."""
    with pytest.raises(DBAPIError) as raised:
        session.execute(text(sql), params)
    session.rollback()
    return raised.value.orig.sqlstate


def rows(session, sql: str, **params) -> list:
    found = session.execute(text(sql), params).all()
    session.rollback()
    return found


def ask_as_web(act_as, email: str) -> None:
    """What the forgot-password page runs, as raw SQL of the web role (no context)."""
    session = act_as(None, None)
    assert session.execute(text("select password_reset_start(:e)"), {"e": email}).scalar_one() in (None, "")  # void
    session.commit()


def reset_emails(admin_engine, user_id) -> list:
    return owner_query(
        admin_engine,
        "select id, text, status from account_messages where recipient_user_id = :u order by created_at, id",
        u=user_id,
    )


def link_token(message) -> str:
    match = re.search(r"/password/reset/([A-Za-z0-9_\-]+)\n", message["text"])
    assert match, message["text"]
    return match.group(1)


# --- reset tokens -------------------------------------------------------------------------------------


def test_the_two_argument_reset_function_that_took_the_callers_hash_is_gone(world, act_as):
    session = act_as(None, None)
    forged = token_hash("a token the caller knows")
    sql = "select password_reset_start(:e, :h)"
    assert refused(session, sql, e=world.owner.email, h=forged) == UNDEFINED_FUNCTION
    (found,) = rows(session, "select count(*) from pg_proc where proname = 'password_reset_start'")
    assert found[0] == 1


def test_after_a_request_the_web_role_reads_neither_the_reset_nor_its_email_nor_its_token(
    world, act_as, admin_engine, database
):
    ask_as_web(act_as, world.owner.email)
    run_jobs(database, admin_engine, user_ids=[world.owner.id])
    (message,) = reset_emails(admin_engine, world.owner.id)
    token = link_token(message)
    for user_id, org_id in (
        (None, None),
        (world.owner.id, None),
        (world.owner.id, world.org_a),
        (world.admin.id, world.org_a),
    ):
        session = act_as(user_id, org_id)
        assert refused(session, "select * from password_resets") == INSUFFICIENT_PRIVILEGE
        assert refused(session, "select id from account_messages") == INSUFFICIENT_PRIVILEGE
        assert rows(session, "select id from email_messages where id = :i", i=message["id"]) == []
        assert refused(session, "select * from password_reset_token(:i)", i=uuid.uuid4()) == INSUFFICIENT_PRIVILEGE
        assert refused(session, "select * from procrastinate.procrastinate_jobs") == INSUFFICIENT_PRIVILEGE
    # and the token is in no job: the job names the reset, the worker takes the token from the database
    assert token not in json.dumps([j["args"] for j in jobs(admin_engine)])
    (kept,) = owner_query(
        admin_engine, "select token, token_hash from password_resets where user_id = :u", u=world.owner.id
    )
    assert kept["token"] is None  # mailed: the email is the only place it is in
    assert kept["token_hash"] == token_hash(token)


def test_the_worker_mails_a_link_whose_token_verifies_and_the_page_sets_the_password(
    world, act_as, admin_engine, database, app
):
    ask_as_web(act_as, world.owner.email)
    assert reset_emails(admin_engine, world.owner.id) == []  # nothing until the worker runs
    run_jobs(database, admin_engine, user_ids=[world.owner.id])
    (message,) = reset_emails(admin_engine, world.owner.id)
    assert message["status"] == "kept"  # written and sent (kept: no API key in tests)
    token = link_token(message)
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    session = act_as(None, None)
    assert rows(session, "select password_reset_email(:h)", h=token_hash(token))[0][0] == world.owner.email

    client = app.test_client()
    assert client.get(f"/password/reset/{token}").status_code == 200
    response = client.post(
        f"/password/reset/{token}",
        data={
            "password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    fresh = app.test_client()
    signed_in = fresh.post(
        "/login",
        data={
            "email": world.owner.email,
            "password": "a brand new passphrase",
            "csrf_token": csrf_token(fresh, "/login"),
        },
    )
    assert signed_in.status_code == 303


def test_two_requests_make_two_different_tokens_and_only_the_newest_works(world, act_as, admin_engine, database):
    tokens = []
    for _ in range(2):
        ask_as_web(act_as, world.finance.email)
        run_jobs(database, admin_engine, user_ids=[world.finance.id])
        tokens.append(link_token(reset_emails(admin_engine, world.finance.id)[-1]))
    assert tokens[0] != tokens[1]
    session = act_as(None, None)
    assert [rows(session, "select password_reset_email(:h)", h=token_hash(t))[0][0] for t in tokens] == [
        None,
        world.finance.email,
    ]


def test_an_unknown_address_and_one_without_a_password_get_the_same_nothing_and_no_job(world, act_as, admin_engine):
    before = len(jobs(admin_engine, task="send_password_reset"))
    ask_as_web(act_as, f"nobody-{world.suffix}@example.com")
    assert len(jobs(admin_engine, task="send_password_reset")) == before


def test_the_web_role_cannot_enqueue_the_reset_email_job_itself(world, act_as, admin_engine):
    ask_as_web(act_as, world.owner.email)
    (job,) = [j for j in jobs(admin_engine, task="send_password_reset") if j["args"]["user_id"] == str(world.owner.id)]
    before = len(jobs(admin_engine, task="send_password_reset"))
    for user_id, org_id in ((None, None), (world.owner.id, None), (world.admin.id, world.org_a)):
        for args in (job["args"], {**job["args"], "org_id": str(world.org_a)}):
            session = act_as(user_id, org_id)
            sql = "select enqueue_job('send_password_reset', cast(:a as jsonb))"
            assert refused(session, sql, a=json.dumps(args)) == INSUFFICIENT_PRIVILEGE
    assert len(jobs(admin_engine, task="send_password_reset")) == before


# --- the login throttle ---------------------------------------------------------------------------------


def locked_until(admin_engine, email: str):
    (row,) = owner_query(
        admin_engine,
        "select (select locked_until from login_throttle where email_key = :k) as until",
        k=token_hash(email.lower()),
    )
    return row["until"]


def wrong_password(session, email: str):
    """auth_sign_in with a hash of the wrong password, as raw SQL of the web role: the lock's end, if any."""
    row = session.execute(text("select * from auth_sign_in(:e, :c)"), {"e": email, "c": "scrypt:1$x$00"}).one()
    assert row.outcome in ("refused", "locked") and row.user_id is None and row.session_token is None
    return row.locked_until


def right_password(session, email: str):
    """What sign-in runs for the right password, as raw SQL of the web role: auth_sign_in's row."""
    (salt,) = rows(session, "select method_and_salt from auth_password_salt(:e, :m)", e=email, m=PASSWORD_METHOD)
    return session.execute(
        text("select * from auth_sign_in(:e, :c)"), {"e": email, "c": candidate_hash(salt[0], PASSWORD)}
    ).one()


def test_the_throttle_functions_take_no_limits_from_the_caller(world, act_as):
    session = act_as(None, None)
    sql = "select auth_record_failure(:e, 1, 5256000)"  # a ten-year lock at the first failure
    assert refused(session, sql, e=world.owner.email) == UNDEFINED_FUNCTION
    (found,) = rows(
        session, "select pg_get_function_identity_arguments(oid) from pg_proc where proname = 'auth_record_failure'"
    )
    assert found[0] == "p_email text"


@pytest.mark.parametrize(
    "sql",
    [
        "select auth_record_failure(:e)",  # would lock any address, failure by failure
        "select auth_record_success(:u)",  # would forget any address's failures
        "select auth_open_session(:u)",  # would sign in as anyone
    ],
)
def test_the_throttles_bookkeeping_and_opening_a_session_are_the_sign_in_functions_own(world, act_as, sql):
    session = act_as(world.admin.id, world.org_a)
    assert refused(session, sql, e=world.owner.email, u=world.owner.id) == INSUFFICIENT_PRIVILEGE


def test_a_caller_cannot_lock_an_address_for_longer_than_the_servers_setting(world, act_as, admin_engine):
    with login_limits(admin_engine, max_failures=3, lock_minutes=15):
        session = act_as(None, None)
        ends = [wrong_password(session, world.owner.email) for _ in range(50)]
        session.commit()
        assert ends[:2] == [None, None]
        assert ends[2] is not None and all(
            end == ends[2] for end in ends[2:]
        )  # failures during a lock do not extend it
        (window,) = rows(session, "select :end - now() <= interval '15 minutes'", end=ends[2])
        assert window[0] is True
    assert locked_until(admin_engine, world.owner.email) == ends[2]


def test_the_right_password_during_a_lock_is_refused_and_a_finished_reset_lifts_the_lock(
    world, act_as, admin_engine, database, app
):
    with login_limits(admin_engine, max_failures=2, lock_minutes=15):
        session = act_as(None, None)
        for _ in range(2):
            wrong_password(session, world.finance.email)
        session.commit()
    assert locked_until(admin_engine, world.finance.email) is not None
    session = act_as(None, None)
    during = right_password(session, world.finance.email)
    session.commit()
    assert (during.outcome, during.user_id, during.session_token) == ("locked", None, None)
    assert locked_until(admin_engine, world.finance.email) is not None
    client = app.test_client()
    refused_login = client.post(
        "/login", data={"email": world.finance.email, "password": PASSWORD, "csrf_token": csrf_token(client, "/login")}
    )
    assert refused_login.status_code == 429

    ask_as_web(act_as, world.finance.email)
    run_jobs(database, admin_engine, user_ids=[world.finance.id])
    token = link_token(reset_emails(admin_engine, world.finance.id)[-1])
    session = act_as(None, None)
    from backoffice.services.auth import hash_password

    assert (
        session.execute(
            text("select password_reset_finish(:h, :pw)"),
            {"h": token_hash(token), "pw": hash_password("another passphrase!")},
        ).scalar_one()
        == world.finance.id
    )
    session.commit()
    assert locked_until(admin_engine, world.finance.email) is None


def test_a_sign_in_forgets_the_failures_counted_before_it(world, act_as, admin_engine):
    session = act_as(None, None)
    wrong_password(session, world.admin.email)
    signed = right_password(session, world.admin.email)
    session.commit()
    assert (signed.outcome, signed.user_id) == ("signed_in", world.admin.id)
    assert (
        owner_query(
            admin_engine, "select 1 from login_throttle where email_key = :k", k=token_hash(world.admin.email.lower())
        )
        == []
    )


@pytest.mark.parametrize("role", ["web", "worker"])
def test_the_login_settings_are_neither_readable_nor_writable_by_the_web_or_worker_role(world, act_as, as_worker, role):
    session = act_as(world.admin.id, world.org_a) if role == "web" else as_worker(world.org_a)
    for sql in (
        "select * from login_settings",
        "update login_settings set max_failures = 1000000, lock_minutes = 5256000",
        "insert into login_settings (id, max_failures, lock_minutes) values (false, 1, 5256000)",
        "delete from login_settings",
    ):
        assert refused(session, sql) == INSUFFICIENT_PRIVILEGE, sql


def test_the_set_up_writes_the_limits_and_refuses_ones_out_of_range(monkeypatch):
    from backoffice import schema

    monkeypatch.setenv("BACKOFFICE_LOGIN_MAX_FAILURES", "7")
    monkeypatch.setenv("BACKOFFICE_LOGIN_LOCK_MINUTES", "30")
    monkeypatch.setenv("BACKOFFICE_SESSION_HOURS", "8")
    assert schema.login_limits() == {"max_failures": 7, "lock_minutes": 30, "session_hours": 8}
    for variable, value in (
        ("BACKOFFICE_LOGIN_MAX_FAILURES", "0"),
        ("BACKOFFICE_LOGIN_MAX_FAILURES", "many"),
        ("BACKOFFICE_LOGIN_LOCK_MINUTES", "5256000"),
        ("BACKOFFICE_SESSION_HOURS", "0"),
        ("BACKOFFICE_SESSION_HOURS", "8760"),
    ):
        monkeypatch.setenv(variable, value)
        with pytest.raises(SystemExit, match=f"{variable} must be a whole number from 1 to"):
            schema.login_limits()
        monkeypatch.delenv(variable)


def test_upgrade_writes_the_limits_into_the_database_as_the_owner(database, admin_engine, monkeypatch):
    from backoffice import schema

    monkeypatch.setenv("BACKOFFICE_LOGIN_MAX_FAILURES", "4")
    monkeypatch.setenv("BACKOFFICE_LOGIN_LOCK_MINUTES", "20")
    try:
        schema.upgrade(database.admin_url, database.app_url, database.worker_url)
        (row,) = owner_query(admin_engine, "select max_failures, lock_minutes from login_settings")
        assert (row["max_failures"], row["lock_minutes"]) == (4, 20)
    finally:
        monkeypatch.delenv("BACKOFFICE_LOGIN_MAX_FAILURES")
        monkeypatch.delenv("BACKOFFICE_LOGIN_LOCK_MINUTES")
        schema.upgrade(database.admin_url, database.app_url, database.worker_url)
    (row,) = owner_query(admin_engine, "select max_failures, lock_minutes from login_settings")
    assert (row["max_failures"], row["lock_minutes"]) == (5, 15)


# --- sign-in: the database compares, the caller never sees a hash or another account's id -------------------


def test_the_salt_answer_carries_no_hash_and_does_not_tell_whether_an_account_exists(world, act_as, admin_engine):
    session = act_as(None, None)
    (stored,) = owner_query(admin_engine, "select password_hash from users where id = :u", u=world.finance.id)
    known = rows(session, "select * from auth_password_salt(:e, :m)", e=world.finance.email, m=PASSWORD_METHOD)
    assert known[0].method_and_salt == stored["password_hash"].rpartition("$")[0]  # method and salt, no digest
    unknown = [
        rows(session, "select * from auth_password_salt(:e, :m)", e="nobody-here@example.com", m=PASSWORD_METHOD)[0]
        for _ in range(2)
    ]
    assert unknown[0] == unknown[1]  # the same made-up salt every time, like a real account's
    method, _, salt = unknown[0].method_and_salt.partition("$")
    assert method == PASSWORD_METHOD and re.fullmatch(r"[A-Za-z0-9]{16}", salt)
    other = rows(session, "select * from auth_password_salt(:e, :m)", e="someone-else@example.com", m=PASSWORD_METHOD)
    assert other[0].method_and_salt != unknown[0].method_and_salt


def test_signing_in_with_the_stored_hash_itself_is_not_possible_without_reading_it(world, act_as):
    """The web role cannot read password_hash (column grants), and a made-up candidate is refused."""
    session = act_as(None, None)
    assert refused(session, "select password_hash from users") == INSUFFICIENT_PRIVILEGE
    signed = session.execute(
        text("select * from auth_sign_in(:e, :c)"), {"e": world.admin.email, "c": f"{PASSWORD_METHOD}$x$" + "0" * 64}
    ).one()
    session.commit()
    assert (signed.outcome, signed.user_id, signed.session_token) == ("refused", None, None)
