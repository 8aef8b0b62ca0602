"""Background jobs run as the worker role (DESIGN.md sections 5 and 6; app_membership() in
sql/rls_policies.sql): a session whose login role is the worker role, naming an organization in
app.org_id (no app.user_id), has an admin's reach inside that organization and nothing outside it. The
web role can never be that: the old worker identity (app.user_id = app.org_id), a forged user id, another
organization's id as user id, an organization named without a user, all get nothing, and the web role
cannot become the worker role or list the organizations. An account message (a password reset) is sent
with app.user_id naming the one account it is for.

Each statement judged here is raw SQL, in the real ``jobs.runtime.worker_session`` (the worker role) or
in a session of the web role; the owner role is the ground truth. Two organizations hold rows of every
kind the worker reads: invoices from approvals, messages and receipts written by the real worker.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from kit import signin
from kit.auth import write_reset_emails
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, jobs, run_jobs
from kit.money import approved_invoices, party
from kit.signin import open_sign_in
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from backoffice.config import load_settings
from backoffice.jobs import queue, runtime
from backoffice.services import members, password_resets

TABLES = ["invoices", "email_messages", "documents", "milestones", "engagements", "reviews"]


@dataclasses.dataclass(frozen=True)
class TwoOrgs:
    world: object
    invoices_a: list[dict]
    invoices_b: list[dict]


@pytest.fixture
def worker(database):
    """jobs.runtime configured as the worker process configures it (the worker role)."""
    return runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))


@pytest.fixture
def two_orgs(world, act_as, admin_engine, database, worker) -> TwoOrgs:
    _, a = approved_invoices(act_as, admin_engine, party(world, "x"), ("100.00", "200.00"))
    _, b = approved_invoices(act_as, admin_engine, party(world, "z"), ("300.00",))
    run_jobs(database, admin_engine, org_ids=[world.org_a, world.org_b])  # messages, notifications, receipts
    runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))
    return TwoOrgs(world, a, b)


def truth(admin_engine, table: str, org_id) -> set:
    return {r["id"] for r in owner_query(admin_engine, f"select id from {table} where org_id = :o", o=org_id)}


def seen(session, table: str) -> set:
    rows = set(session.execute(text(f"select id from {table}")).scalars())
    session.rollback()
    return rows


def members_of(admin_engine, org_id) -> set:
    return {
        r["user_id"]
        for r in owner_query(
            admin_engine, "select user_id from memberships where org_id = :o and accepted_at is not null", o=org_id
        )
    }


# --- a worker sees its organization -----------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_an_organizations_worker_sees_all_of_its_rows_and_none_of_anothers(two_orgs, admin_engine, table):
    w = two_orgs.world
    mine, theirs = truth(admin_engine, table, w.org_a), truth(admin_engine, table, w.org_b)
    assert mine and theirs, f"the fixture should give both organizations {table}"
    with runtime.worker_session(w.org_a) as session:
        assert seen(session, table) == mine


def test_the_worker_sees_the_people_of_its_organization_only(two_orgs, admin_engine):
    w = two_orgs.world
    with runtime.worker_session(w.org_a) as session:
        people = seen(session, "users")
    assert people == members_of(admin_engine, w.org_a)
    assert w.admin_b.id not in people and w.contractor_z_user.id not in people and w.outsider.id not in people


def test_the_worker_acts_with_an_admins_reach_in_its_organization_as_no_user(two_orgs, database):
    w = two_orgs.world
    with runtime.worker_session(w.org_a) as session:
        row = session.execute(text("select app_org_id(), app_role(), app_contractor_id(), app_user_id()")).one()
        role = session.execute(text("select session_user::text")).scalar_one()
    assert tuple(row) == (w.org_a, "admin", None, None)
    assert role == make_url(database.worker_url).username != make_url(database.app_url).username


def test_the_workers_audit_events_name_no_user(two_orgs, admin_engine):
    w = two_orgs.world
    events = owner_query(
        admin_engine,
        "select actor_user_id from audit_events where org_id = :o and action = 'document.issued'",
        o=w.org_a,
    )
    assert events, "the self-billed invoices the worker issued are audited"
    assert {e["actor_user_id"] for e in events} == {None}


def test_the_worker_writes_notifications_but_reads_nobodys(two_orgs, admin_engine):
    """It is nobody's user, so the policy would show it none; and since revision 0010 it holds no SELECT on
    them at all (no job reads a notification back)."""
    w = two_orgs.world
    assert truth(admin_engine, "notifications", w.org_a)
    with runtime.worker_session(w.org_a) as session, pytest.raises(DBAPIError) as raised:
        seen(session, "notifications")
    assert raised.value.orig.sqlstate == "42501"


def test_the_worker_cannot_read_password_hashes(two_orgs):
    with runtime.worker_session(two_orgs.world.org_a) as session, pytest.raises(DBAPIError) as raised:
        session.execute(text("select password_hash from users"))
    assert raised.value.orig.sqlstate == "42501"


# --- the web role is never the worker ---------------------------------------------------------------

# What a session of the web role might claim, as (user id, org id, the sign-in it presents), each from what
# the world knows. The sign-in is the only identity the database believes from the web role: a user id
# named without one (org A's admin's included) is nobody.
CLAIMS = {
    "the old worker identity": lambda w: (w.org_a, w.org_a, None),
    "the old worker identity naming another organization": lambda w: (w.org_b, w.org_a, None),
    "an organization without a user (the worker's context)": lambda w: (None, w.org_a, None),
    "a forged user id": lambda w: (uuid.uuid4(), w.org_a, None),
    "another organization's admin, signed in": lambda w: (w.admin_b.id, w.org_a, open_sign_in(w.admin_b.id)),
    "a member of no organization, signed in": lambda w: (w.outsider.id, w.org_a, open_sign_in(w.outsider.id)),
    "org A's admin, named without a sign-in": lambda w: (w.admin.id, w.org_a, None),
    "org A's admin, named beside org B's admin's sign-in": lambda w: (w.admin.id, w.org_a, open_sign_in(w.admin_b.id)),
    "org A's admin, with an ended sign-in": lambda w: (w.admin.id, w.org_a, open_sign_in(w.admin.id, ended=True)),
    "org A's admin, with an expired sign-in": lambda w: (w.admin.id, w.org_a, open_sign_in(w.admin.id, expired=True)),
    "org A's admin, with a made-up token": lambda w: (w.admin.id, w.org_a, "0" * 64),
}


def web_session(app_sessions, user_id, org_id, token):
    session = app_sessions()
    signin.claim(session, user_id=user_id, org_id=org_id, token=token)
    return session


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("table", [*TABLES, "notifications", "memberships", "contractors", "organizations"])
def test_the_web_role_claiming_a_worker_or_a_stranger_sees_nothing(two_orgs, app_sessions, admin_engine, claim, table):
    w = two_orgs.world
    assert truth(admin_engine, table if table != "organizations" else "memberships", w.org_a)
    with web_session(app_sessions, *CLAIMS[claim](w)) as session:
        assert session.execute(text("select app_org_id(), app_role(), app_contractor_id()")).one() == (None,) * 3
        assert seen(session, table) == set()


@pytest.mark.parametrize("claim", CLAIMS)
def test_the_web_role_claiming_a_worker_or_a_stranger_cannot_write_or_enqueue(
    two_orgs, app_sessions, admin_engine, claim
):
    w = two_orgs.world
    before = {t: truth(admin_engine, t, w.org_a) for t in ("email_messages", "notifications")}
    queued = len(jobs(admin_engine))
    with web_session(app_sessions, *CLAIMS[claim](w)) as session:
        for statement, params in (
            (
                "insert into email_messages"
                " (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
                " values (:o, 'milestone.approved', :u, :e, 'Approved', '<p>x</p>', 'x', :k)",
                {"o": w.org_a, "u": w.admin.id, "e": w.admin.email, "k": f"forged:{uuid.uuid4()}"},
            ),
            (
                "insert into notifications (org_id, user_id, event, title, url, dedupe_key)"
                " values (:o, :u, 'milestone.approved', 'Approved', '/', :k)",
                {"o": w.org_a, "u": w.admin.id, "k": f"forged:{uuid.uuid4()}"},
            ),
        ):
            with pytest.raises(DBAPIError) as raised:
                session.execute(text(statement), params)
            assert raised.value.orig.sqlstate == "42501", claim
            session.rollback()
        with pytest.raises(DBAPIError) as raised:
            queue.issue_receipt(session, w.org_a, two_orgs.invoices_a[0]["id"])
        assert raised.value.orig.sqlstate == "42501", claim
        session.rollback()
        changed = session.execute(
            text("update email_messages set status = 'failed' where org_id = :o"), {"o": w.org_a}
        ).rowcount
        session.rollback()
    assert changed == 0
    assert {t: truth(admin_engine, t, w.org_a) for t in before} == before
    assert len(jobs(admin_engine)) == queued


def test_the_web_role_cannot_become_the_worker_role(app_sessions, database):
    worker_role = make_url(database.worker_url).username
    with app_sessions() as session:
        for statement in (f'set role "{worker_role}"', f'set session authorization "{worker_role}"'):
            with pytest.raises(DBAPIError) as raised:
                session.execute(text(statement))
            assert raised.value.orig.sqlstate == "42501", statement
            session.rollback()
        member = session.execute(text("select pg_has_role(current_user, :r, 'MEMBER')"), {"r": worker_role})
        assert member.scalar_one() is False


def test_only_the_worker_role_lists_the_organizations(two_orgs, app_sessions, act_as, database):
    w = two_orgs.world
    for session in (app_sessions(), act_as(w.admin.id, w.org_a)):
        with pytest.raises(DBAPIError) as raised:
            session.execute(text("select job_org_ids()"))
        assert raised.value.orig.sqlstate == "42501"
        session.rollback()
    with runtime.current().sessions() as session:  # the worker role, without a context: the periodic jobs' list
        org_ids = set(session.execute(text("select job_org_ids()")).scalars())
    assert {w.org_a, w.org_b} <= org_ids


def test_a_worker_cannot_write_into_another_organization_from_its_own_context(two_orgs, admin_engine):
    w = two_orgs.world
    with runtime.worker_session(w.org_a) as session:
        with pytest.raises(DBAPIError) as raised:
            session.execute(
                text(
                    "insert into notifications (org_id, user_id, event, title, url, dedupe_key)"
                    " values (:o, :u, 'milestone.approved', 'Approved', '/', :k)"
                ),
                {"o": w.org_b, "u": w.admin_b.id, "k": f"forged:{uuid.uuid4()}"},
            )
        session.rollback()
    assert raised.value.orig.sqlstate == "42501"


# --- jobs whose ids point across organizations do nothing -----------------------------------------


def messages_about(admin_engine, entity_ids) -> list[dict]:
    return owner_query(
        admin_engine, "select * from email_messages where entity_id = any(:e)", e=[str(e) for e in entity_ids]
    )


def test_a_notify_job_naming_another_organizations_review_tells_nobody(two_orgs, act_as, admin_engine, database):
    w = two_orgs.world
    review_b = two_orgs.invoices_b[0]["review_id"]
    milestone_b = two_orgs.invoices_b[0]["milestone_id"]
    messages_before = owner_query(admin_engine, "select id from email_messages")
    notices_before = owner_query(admin_engine, "select id from notifications")
    session = act_as(w.admin.id, w.org_a)  # org A's admin names org B's review in org A's job
    queue.notify(session, w.org_a, "milestone.approved", review_b)
    queue.notify(session, w.org_a, "payment.run", uuid.uuid4())  # and one whose rows do not exist at all
    session.commit()

    run_jobs(database, admin_engine, org_ids=[w.org_a])

    assert owner_query(admin_engine, "select id from email_messages") == messages_before
    assert owner_query(admin_engine, "select id from notifications") == notices_before
    assert [m["org_id"] for m in messages_about(admin_engine, [milestone_b]) if m["event"] == "milestone.approved"] == [
        w.org_b
    ]
    notify_jobs = [
        j for j in jobs(admin_engine, task="notify", org_ids=[w.org_a]) if j["args"]["entity_id"] == str(review_b)
    ]
    assert [j["status"] for j in notify_jobs] == ["succeeded"]  # a finished job, not one retried forever


def test_a_receipt_job_naming_another_organizations_invoice_issues_nothing(two_orgs, act_as, admin_engine, database):
    w = two_orgs.world
    invoice_b = two_orgs.invoices_b[0]["id"]
    documents_before = owner_query(admin_engine, "select id, org_id, invoice_id from documents order by id")
    session = act_as(w.admin.id, w.org_a)
    queue.issue_receipt(session, w.org_a, invoice_b)
    session.commit()

    run_jobs(database, admin_engine, org_ids=[w.org_a])

    assert owner_query(admin_engine, "select id, org_id, invoice_id from documents order by id") == documents_before


# --- account messages: the one account they are for ----------------------------------------------


@pytest.fixture
def resets(world, app_sessions, admin_engine, database) -> dict:
    """A password reset message for finance and one for the owner, written by the worker and not sent yet:
    user id -> message id."""
    out = {}
    for who in (world.finance, world.owner):
        with app_sessions() as session:
            password_resets.request_reset(session, who.email)
        write_reset_emails(database, admin_engine, who.id)
        (row,) = owner_query(admin_engine, "select id from account_messages where recipient_user_id = :u", u=who.id)
        out[who.id] = row["id"]
    return out


def test_an_account_context_sees_only_that_accounts_messages(world, resets, worker, admin_engine, act_as):
    session, actor = sign_in(act_as, world.admin, world.org_a)  # an org message exists too: an invitation
    members.invite_member(
        session, actor, email=f"new-{world.suffix}@example.com", name="Nia New", role="owner", base_url=BASE_URL
    )
    assert owner_query(admin_engine, "select id from email_messages where org_id = :o", o=world.org_a)

    with runtime.worker_session(None, user_id=world.finance.id) as session:
        assert seen(session, "account_messages") == {resets[world.finance.id]}
        assert seen(session, "email_messages") == set()
        for table in ("invoices", "documents", "milestones"):  # notifications: no SELECT at all
            assert seen(session, table) == set()


def test_an_account_message_is_sent_by_the_worker_as_that_account(world, resets, admin_engine, database):
    run_jobs(database, admin_engine, user_ids=[world.finance.id])
    statuses = {
        r["id"]: r["status"]
        for r in owner_query(
            admin_engine, "select id, status from account_messages where id = any(:i)", i=list(resets.values())
        )
    }
    assert statuses[resets[world.finance.id]] == "kept"
    assert statuses[resets[world.owner.id]] == "queued"  # its job was not run: it is not this account's


def test_an_account_context_cannot_write_a_message_for_someone_else(world, worker):
    with runtime.worker_session(None, user_id=world.finance.id) as session:
        with pytest.raises(DBAPIError) as raised:
            session.execute(
                text(
                    "insert into account_messages"
                    " (event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
                    " values ('password_reset', :u, :e, 'Reset', '<p>x</p>', 'x', :k)"
                ),
                {"u": world.owner.id, "e": world.owner.email, "k": f"forged:{uuid.uuid4()}"},
            )
        session.rollback()
    assert raised.value.orig.sqlstate == "42501"
