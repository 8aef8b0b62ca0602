"""The job queue is out of the web role's reach (DESIGN.md section 5, issue 16): procrastinate's tables have
no row-level security, so the web role has no privilege on anything in its schema and enqueues only
through enqueue_job() (sql/jobs.sql), which takes the web's job kinds (notify, send_email, issue_receipt, ...)
with their exact arguments, for the current organization of a real membership, or an account's own
message; the worker role takes jobs and may enqueue its follow-ups the same way.

Everything here is raw SQL as the web role (or the worker role); the queue is read as the owner role.
"""

from __future__ import annotations

import json
import uuid

import pytest
from kit import signin
from kit.engagements import owner_query
from kit.jobs import jobs
from kit.signin import act, open_sign_in
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

INSUFFICIENT_PRIVILEGE = "42501"

QUEUE_STATEMENTS = {
    "read jobs": "select * from procrastinate.procrastinate_jobs",
    "read events": "select * from procrastinate.procrastinate_events",
    "read periodic defers": "select * from procrastinate.procrastinate_periodic_defers",
    "read workers": "select * from procrastinate.procrastinate_workers",
    "update jobs": "update procrastinate.procrastinate_jobs set args = '{}'",
    "delete jobs": "delete from procrastinate.procrastinate_jobs",
    "insert a job": "insert into procrastinate.procrastinate_jobs (queue_name, task_name, args)"
    " values ('default', 'notify', '{}')",
    "take a sequence number": "select nextval('procrastinate.procrastinate_jobs_id_seq')",
    "defer through procrastinate": "select procrastinate.procrastinate_defer_jobs_v1("
    "array[row('default', 'notify', 0, null, null, '{}'::jsonb, null)]::procrastinate.procrastinate_job_to_defer_v1[])",
    "fetch a job": "select * from procrastinate.procrastinate_fetch_job_v2(array['default']::varchar[], null)",
    "finish a job": "select procrastinate.procrastinate_finish_job_v1(1, 'succeeded', true)",
}


def refused(session, statement: str, params=None) -> str | None:
    """The SQLSTATE ``statement`` fails with (the transaction is rolled back), or None if it succeeded."""
    try:
        session.execute(text(statement), params or {})
    except DBAPIError as error:
        session.rollback()
        return error.orig.sqlstate
    session.rollback()
    return None


def enqueue(session, task: str, args: dict) -> str | None:
    return refused(session, "select enqueue_job(:t, cast(:a as jsonb))", {"t": task, "a": json.dumps(args)})


def notify_args(org_id, entity_id=None) -> dict:
    return {"org_id": str(org_id), "event": "milestone.submitted", "entity_id": str(entity_id or uuid.uuid4())}


@pytest.fixture
def queued_job(world, act_as, admin_engine):
    """One committed job of org A's, enqueued by its admin through the web's way in."""
    session = act_as(world.admin.id, world.org_a)
    entity = uuid.uuid4()
    session.execute(
        text("select enqueue_job('notify', cast(:a as jsonb))"), {"a": json.dumps(notify_args(world.org_a, entity))}
    )
    session.commit()
    (job,) = [j for j in jobs(admin_engine, task="notify") if j["args"]["entity_id"] == str(entity)]
    return job


# --- the web role has nothing in the queue's schema ---------------------------------------------------


@pytest.mark.parametrize("what", QUEUE_STATEMENTS)
@pytest.mark.parametrize("who", ["admin", "contractor", "nobody"])
def test_the_web_role_cannot_touch_the_queue(world, act_as, admin_engine, queued_job, what, who):
    session = {
        "admin": lambda: act_as(world.admin.id, world.org_a),
        "contractor": lambda: act_as(world.contractor_x_user.id, world.org_a),
        "nobody": lambda: act_as(None, None),
    }[who]()
    assert refused(session, QUEUE_STATEMENTS[what]) == INSUFFICIENT_PRIVILEGE
    (after,) = [j for j in jobs(admin_engine) if j["id"] == queued_job["id"]]
    assert after == queued_job


def test_the_web_role_holds_no_privilege_on_any_object_of_the_queue(app_engine):
    with app_engine.connect() as conn:
        opened = conn.execute(
            text(
                """
                select c.oid::regclass::text from pg_class c
                 where c.relnamespace = 'procrastinate'::regnamespace
                   and (has_table_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
                        or (c.relkind = 'S' and has_sequence_privilege(current_user, c.oid, 'USAGE, SELECT, UPDATE')))
                union all
                select p.oid::regprocedure::text from pg_proc p
                 where p.pronamespace = 'procrastinate'::regnamespace
                   and has_function_privilege(current_user, p.oid, 'EXECUTE')
                union all
                select 'schema' where has_schema_privilege(current_user, 'procrastinate', 'USAGE')
                """
            )
        ).scalars()
        assert list(opened) == []


# --- enqueue_job(): the web's job kinds, for the current organization -----------------------------


def test_any_member_enqueues_the_webs_job_kinds_for_their_organization(world, act_as, admin_engine):
    entity = uuid.uuid4()
    assert enqueue(act_as(world.contractor_x_user.id, world.org_a), "notify", notify_args(world.org_a)) is None
    session = act_as(world.contractor_x_user.id, world.org_a)
    session.execute(
        text("select enqueue_job('notify', cast(:a as jsonb))"), {"a": json.dumps(notify_args(world.org_a, entity))}
    )
    session.commit()
    (job,) = [j for j in jobs(admin_engine, task="notify") if j["args"]["entity_id"] == str(entity)]
    assert (job["status"], job["args"]) == ("todo", notify_args(world.org_a, entity))
    (row,) = owner_query(
        admin_engine,
        "select queue_name, priority, lock, queueing_lock from procrastinate.procrastinate_jobs where id = :i",
        i=job["id"],
    )
    assert row == {"queue_name": "default", "priority": 0, "lock": None, "queueing_lock": None}


@pytest.mark.parametrize(
    ("task", "args"),
    [
        ("notify", lambda w: notify_args(w.org_b)),  # another organization
        ("issue_receipt", lambda w: {"org_id": str(w.org_b), "invoice_id": str(uuid.uuid4())}),
        (
            "issue_remittance_advice",
            lambda w: {"org_id": str(w.org_b), "run_id": str(uuid.uuid4()), "contractor_id": str(w.contractor_z)},
        ),
        ("send_email", lambda w: {"message_id": str(uuid.uuid4()), "org_id": str(w.org_b), "user_id": None}),
        ("finance_digest", lambda w: {"timestamp": 0}),  # the worker's own periodic jobs
        ("remind_overdue_reviews", lambda w: {"timestamp": 0}),
        ("admin_digest", lambda w: {"timestamp": 0}),
        ("daily_digests", lambda w: {"timestamp": 0}),  # issue 22: the people's daily digests
        ("finance_digest", lambda w: {"org_id": str(w.org_a)}),
        ("delete_old_jobs", lambda w: {"org_id": str(w.org_a)}),  # procrastinate's builtin
        ("notify", lambda w: {**notify_args(w.org_a), "token": "s3cret"}),  # anything but the job's arguments
        ("notify", lambda w: {**notify_args(w.org_a), "entity_id": "not an id"}),
        ("notify", lambda w: {**notify_args(w.org_a), "event": "Drop Table"}),
        ("notify", lambda w: {**notify_args(w.org_a), "entity_id": {"id": 1}}),
        ("notify", lambda w: {k: v for k, v in notify_args(w.org_a).items() if k != "org_id"}),
        ("send_email", lambda w: {"message_id": str(uuid.uuid4()), "org_id": str(w.org_a), "user_id": str(w.admin.id)}),
        # an account message: only an existing one of the account the request acts as (here: nobody's)
        ("send_email", lambda w: {"message_id": str(uuid.uuid4()), "org_id": None, "user_id": str(w.admin.id)}),
        ("send_email", lambda w: {"message_id": str(uuid.uuid4()), "org_id": None, "user_id": str(w.admin_b.id)}),
        ("notify", lambda w: {**notify_args(w.org_a), "org_id": None}),
    ],
)
def test_an_admin_cannot_enqueue_for_another_organization_or_a_forbidden_job(world, act_as, admin_engine, task, args):
    before = len(jobs(admin_engine))
    assert enqueue(act_as(world.admin.id, world.org_a), task, args(world)) == INSUFFICIENT_PRIVILEGE
    assert len(jobs(admin_engine)) == before


@pytest.mark.parametrize(
    "claim",
    [
        lambda w: (w.org_a, w.org_a, None),  # the old worker identity
        lambda w: (None, w.org_a, None),  # the worker's context, as the web role
        lambda w: (uuid.uuid4(), w.org_a, None),  # a forged user id
        lambda w: (w.admin_b.id, w.org_a, open_sign_in(w.admin_b.id)),  # a member of another organization
        lambda w: (w.outsider.id, w.org_a, open_sign_in(w.outsider.id)),
        lambda w: (None, None, None),
        lambda w: (w.admin.id, w.org_a, None),  # org A's admin, named without a sign-in
        lambda w: (w.admin.id, w.org_a, open_sign_in(w.admin_b.id)),  # ... beside someone else's sign-in
    ],
)
def test_nobody_without_a_membership_enqueues_for_an_organization(world, app_session, admin_engine, claim):
    before = len(jobs(admin_engine))
    user_id, org_id, token = claim(world)
    session = signin.claim(app_session, user_id=user_id, org_id=org_id, token=token)
    assert enqueue(session, "notify", notify_args(world.org_a)) == INSUFFICIENT_PRIVILEGE
    assert len(jobs(admin_engine)) == before


def test_an_account_message_is_enqueued_only_for_the_account_the_request_acts_as(
    world, app_sessions, admin_engine, database
):
    from kit.auth import write_reset_emails

    from backoffice.services import password_resets

    with app_sessions() as session:
        password_resets.request_reset(session, world.finance.email)
    write_reset_emails(database, admin_engine, world.finance.id)  # the worker writes the message
    (message,) = owner_query(
        admin_engine,
        "select id from account_messages where recipient_user_id = :u",
        u=world.finance.id,
    )
    args = {"message_id": str(message["id"]), "org_id": None, "user_id": str(world.finance.id)}
    with app_sessions() as session:
        act(session, user_id=world.owner.id, org_id=None)  # someone else's account
        assert enqueue(session, "send_email", args) == INSUFFICIENT_PRIVILEGE
        act(session, user_id=world.owner.id, org_id=None)
        assert enqueue(session, "send_email", {**args, "user_id": str(world.owner.id)}) == INSUFFICIENT_PRIVILEGE
        act(session, user_id=world.finance.id, org_id=None)
        assert enqueue(session, "send_email", args) is None


# --- in the caller's transaction ----------------------------------------------------------------------


def test_a_job_enqueued_in_a_rolled_back_transaction_is_never_queued(world, act_as, admin_engine):
    entity = uuid.uuid4()
    session = act_as(world.admin.id, world.org_a)
    session.execute(
        text("select enqueue_job('notify', cast(:a as jsonb))"), {"a": json.dumps(notify_args(world.org_a, entity))}
    )
    session.rollback()
    assert [j for j in jobs(admin_engine) if j["args"].get("entity_id") == str(entity)] == []


# --- the worker role ----------------------------------------------------------------------------------


def test_the_worker_enqueues_its_follow_ups_for_its_organization_only(world, as_worker, admin_engine):
    entity = uuid.uuid4()
    assert enqueue(as_worker(world.org_a), "notify", notify_args(world.org_b)) == INSUFFICIENT_PRIVILEGE
    session = as_worker(world.org_a)
    session.execute(
        text("select enqueue_job('notify', cast(:a as jsonb))"), {"a": json.dumps(notify_args(world.org_a, entity))}
    )
    session.commit()
    assert [j["args"] for j in jobs(admin_engine) if j["args"].get("entity_id") == str(entity)] == [
        notify_args(world.org_a, entity)
    ]


def test_the_worker_role_reads_and_takes_jobs(world, worker_engine, queued_job):
    with worker_engine.connect() as conn:
        assert (
            conn.execute(
                text("select task_name from procrastinate.procrastinate_jobs where id = :i"), {"i": queued_job["id"]}
            ).scalar_one()
            == "notify"
        )
        conn.rollback()
