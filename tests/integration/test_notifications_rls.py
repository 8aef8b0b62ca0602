"""Row-level security for the outbox, the in-app notifications, the data room and password resets
(DESIGN.md sections 5 and 6), with raw SQL as the app role.

Rows are written the way the app writes them: events through the services and the real worker
(messages, notifications, receipts), invitations and password resets through their services. Each
statement judged here is plain ``text()`` SQL run by the app role as one person in one organization;
the owner role is the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, run_jobs
from kit.money import approved_invoices, export, party, set_org
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import members, password_resets

INSUFFICIENT_PRIVILEGE = "42501"
ORG_A_PEOPLE = ["admin", "owner", "finance", "contractor_x_user", "contractor_y_user"]


@dataclass(frozen=True)
class Rows:
    world: object
    resets: dict  # user id -> that account's password-reset message id


@pytest.fixture
def rows(world, act_as, admin_engine, app_sessions, database) -> Rows:
    _, xa = approved_invoices(act_as, admin_engine, party(world, "x"), ("100.00", "200.00"))
    export(act_as, world.finance, world.org_a, [xa[0]["id"]])
    set_org(admin_engine, world.org_b, segregation_of_duties=False)
    approved_invoices(act_as, admin_engine, party(world, "z"), ("300.00",))
    session, actor = sign_in(act_as, world.admin, world.org_a)
    members.invite_member(
        session, actor, email=f"newbie-{world.suffix}@example.com", name="Nia Newbie", role="owner", base_url=BASE_URL
    )
    run_jobs(database, admin_engine, org_ids=[world.org_a, world.org_b])
    resets = {}
    for who in (world.finance, world.owner):
        with app_sessions() as s:
            password_resets.request_reset(s, who.email)
        run_jobs(database, admin_engine, user_ids=[who.id])  # the worker writes the reset email
        (m,) = owner_query(admin_engine, "select id from account_messages where recipient_user_id = :u", u=who.id)
        resets[who.id] = m["id"]
    return Rows(world, resets)


def person(world, who: str):
    return getattr(world, who)


def org_of(world, who: str):
    return world.org_b if who in ("admin_b", "contractor_z_user") else world.org_a


def as_(act_as, world, who: str):
    return act_as(person(world, who).id, org_of(world, who))


def ids(session, sql: str, **params) -> set:
    found = set(session.execute(text(sql), params).scalars())
    session.rollback()
    return found


def truth(admin_engine, sql: str, **params) -> set:
    return {r["id"] for r in owner_query(admin_engine, sql, **params)}


def refused(session, sql: str, **params) -> str:
    """The SQLSTATE the statement is refused with (it must be refused)."""
    with pytest.raises(DBAPIError) as raised:
        session.execute(text(sql), params)
    session.rollback()
    return raised.value.orig.sqlstate


# --- email_messages: admins of the organization only ------------------------------------------------


def test_an_admin_reads_every_message_of_the_organization_and_no_other(rows, act_as, admin_engine):
    w = rows.world
    org_messages = truth(admin_engine, "select id from email_messages where org_id = :o", o=w.org_a)
    assert len(org_messages) >= 5  # work request, accepted, submitted x2, approved x2, batch, invitation
    assert ids(as_(act_as, w, "admin"), "select id from email_messages") == org_messages
    assert ids(as_(act_as, w, "admin_b"), "select id from email_messages") == truth(
        admin_engine, "select id from email_messages where org_id = :o", o=w.org_b
    )


def test_nobody_but_an_admin_reads_the_organizations_messages(rows, act_as):
    w = rows.world
    for who in ("owner", "finance", "contractor_x_user", "contractor_y_user", "contractor_z_user"):
        assert ids(as_(act_as, w, who), "select id from email_messages where org_id is not null") == set(), who


def test_the_messages_recipient_cannot_read_it_either(rows, act_as, admin_engine):
    # An invitation carries a sign-in link: only an admin may see it, not even the people it names.
    w = rows.world
    to_x = truth(
        admin_engine,
        "select id from email_messages where recipient_user_id = :u and org_id = :o",
        u=w.contractor_x_user.id,
        o=w.org_a,
    )
    assert to_x
    assert (
        ids(as_(act_as, w, "contractor_x_user"), "select id from email_messages where id = any(:i)", i=list(to_x))
        == set()
    )


def test_nobody_but_an_admin_writes_an_organizations_message(rows, act_as):
    w = rows.world
    for who in ("owner", "finance", "contractor_x_user"):
        assert (
            refused(
                as_(act_as, w, who),
                "insert into email_messages"
                " (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
                " values (:o, 'milestone.approved', :u, :e, 'Approved', '<p>x</p>', 'x', 'forged')",
                o=w.org_a,
                u=w.owner.id,
                e=w.owner.email,
            )
            == INSUFFICIENT_PRIVILEGE
        ), who


def test_nobody_but_the_organizations_admin_changes_a_messages_status(rows, act_as, admin_engine):
    w = rows.world
    before = owner_query(
        admin_engine, "select id, status, updated_at from email_messages where org_id = :o order by id", o=w.org_a
    )
    for who in ("owner", "finance", "contractor_x_user", "admin_b"):
        session = as_(act_as, w, who)
        changed = session.execute(
            text("update email_messages set status = 'failed' where org_id = :o"), {"o": w.org_a}
        ).rowcount
        session.commit()
        assert changed == 0, who
    assert (
        owner_query(
            admin_engine, "select id, status, updated_at from email_messages where org_id = :o order by id", o=w.org_a
        )
        == before
    )


def test_a_messages_words_and_recipient_are_never_changed_even_by_an_admin(rows, act_as, admin_engine):
    w = rows.world
    session = as_(act_as, w, "admin")
    assert (
        refused(
            session,
            "update email_messages set html = '<a href=\"https://evil.example\">x</a>' where org_id = :o",
            o=w.org_a,
        )
        == INSUFFICIENT_PRIVILEGE
    )
    assert (
        refused(session, "update email_messages set recipient = 'thief@example.com' where org_id = :o", o=w.org_a)
        == INSUFFICIENT_PRIVILEGE
    )
    assert refused(session, "delete from email_messages where org_id = :o", o=w.org_a) == INSUFFICIENT_PRIVILEGE


# --- account messages (account_messages since revision 0015): the worker's alone -------------------------


def test_the_web_role_reads_no_account_message_even_in_that_accounts_context(rows, act_as):
    # A web request can name any account in app.user_id: a reset link readable there would be anyone's.
    w = rows.world
    assert ids(act_as(w.finance.id, None), "select id from email_messages") == set()
    assert ids(act_as(w.owner.id, None), "select id from email_messages") == set()
    for org in (None, w.org_a):
        assert refused(act_as(w.finance.id, org), "select id from account_messages") == INSUFFICIENT_PRIVILEGE


def test_no_admin_or_anyone_else_reads_someone_elses_account_message(rows, act_as):
    w = rows.world
    for who in ("admin", "admin_b", "contractor_x_user"):
        assert refused(as_(act_as, w, who), "select id from account_messages") == INSUFFICIENT_PRIVILEGE, who
        assert ids(as_(act_as, w, who), "select id from email_messages") & set(rows.resets.values()) == set(), who


def test_without_any_context_no_message_is_visible(rows, act_as):
    assert ids(act_as(None, None), "select id from email_messages") == set()


def test_an_account_cannot_write_an_account_message_for_another_or_of_another_kind(rows, act_as):
    w = rows.world
    session = act_as(w.finance.id, None)
    assert (
        refused(
            session,
            "insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
            " values (null, 'password_reset', :u, :e, 'Reset', '<p>x</p>', 'x', 'forged-1')",
            u=w.owner.id,
            e=w.owner.email,
        )
        == INSUFFICIENT_PRIVILEGE
    )
    assert (
        refused(
            session,
            "insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
            " values (null, 'invite', :u, :e, 'Hi', '<p>x</p>', 'x', 'forged-2')",
            u=w.finance.id,
            e=w.finance.email,
        )
        == INSUFFICIENT_PRIVILEGE
    )
    assert (
        refused(
            session,
            "insert into account_messages (event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
            " values ('password_reset', :u, :e, 'Reset', '<p>x</p>', 'x', 'forged-3')",
            u=w.finance.id,
            e=w.finance.email,
        )
        == INSUFFICIENT_PRIVILEGE
    )


# --- notifications: each person their own ----------------------------------------------------------


def test_each_person_reads_only_their_own_notifications(rows, act_as, admin_engine):
    w = rows.world
    for who in [*ORG_A_PEOPLE, "admin_b", "contractor_z_user"]:
        me = person(w, who)
        mine = truth(
            admin_engine, "select id from notifications where user_id = :u and org_id = :o", u=me.id, o=org_of(w, who)
        )
        assert ids(as_(act_as, w, who), "select id from notifications") == mine, who


def test_the_fixture_gives_several_people_notifications(rows, admin_engine):
    w = rows.world
    people = {
        r["user_id"]
        for r in owner_query(admin_engine, "select user_id from notifications where org_id = :o", o=w.org_a)
    }
    assert {w.owner.id, w.finance.id, w.contractor_x_user.id} <= people


def test_nobody_marks_someone_elses_notification_read(rows, act_as, admin_engine):
    w = rows.world
    owners = truth(admin_engine, "select id from notifications where user_id = :u", u=w.owner.id)
    for who in ("admin", "finance", "contractor_x_user"):
        session = as_(act_as, w, who)
        changed = session.execute(
            text("update notifications set read_at = now() where id = any(:i)"), {"i": list(owners)}
        ).rowcount
        session.commit()
        assert changed == 0, who
    assert {
        r["read_at"]
        for r in owner_query(admin_engine, "select read_at from notifications where id = any(:i)", i=list(owners))
    } == {None}


def test_a_person_marks_their_own_notifications_read(rows, act_as, admin_engine):
    w = rows.world
    mine = truth(admin_engine, "select id from notifications where user_id = :u", u=w.owner.id)
    session = as_(act_as, w, "owner")
    changed = session.execute(text("update notifications set read_at = now()")).rowcount
    session.commit()
    assert changed == len(mine)
    others_unread = owner_query(
        admin_engine,
        "select id from notifications where org_id = :o and user_id <> :u and read_at is null",
        o=w.org_a,
        u=w.owner.id,
    )
    assert others_unread, "the others' stay unread"


def test_a_notifications_words_and_link_are_never_changed(rows, act_as):
    w = rows.world
    session = as_(act_as, w, "owner")
    assert refused(session, "update notifications set url = '/evil', title = 'x'") == INSUFFICIENT_PRIVILEGE
    assert refused(session, "delete from notifications") == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize("into", ["own organization", "another organization"])
def test_only_the_worker_writes_a_notification_no_web_request_not_even_an_admins(rows, act_as, into):
    """No page writes one (the worker's notify job does): since revision 0010 the web role holds no INSERT on
    notifications at all, so an admin no longer can either, in its organization or another (the worker's own
    reach is held to its organization in test_worker_rls)."""
    w = rows.world
    for who in ("admin", "owner", "finance", "contractor_x_user"):
        target = (w.org_a, person(w, who).id) if into == "own organization" else (w.org_b, w.admin_b.id)
        assert (
            refused(
                as_(act_as, w, who),
                "insert into notifications (org_id, user_id, event, title, url, dedupe_key)"
                " values (:o, :u, 'milestone.approved', 'Approved', '/', 'forged')",
                o=target[0],
                u=target[1],
            )
            == INSUFFICIENT_PRIVILEGE
        ), who


# --- documents: finance and admins; never changed --------------------------------------------------


def test_finance_and_admins_read_the_organizations_receipts(rows, act_as, admin_engine):
    w = rows.world
    receipts = truth(admin_engine, "select id from documents where org_id = :o", o=w.org_a)
    assert len(receipts) == 2
    for who in ("admin", "finance"):
        assert ids(as_(act_as, w, who), "select id from documents") == receipts, who


def test_owners_read_no_document_and_contractors_only_their_own_contractors(rows, act_as, admin_engine):
    w = rows.world
    xs = truth(admin_engine, "select id from documents where org_id = :o", o=w.org_a)  # contractor X's two
    assert len(xs) == 2
    assert ids(as_(act_as, w, "contractor_x_user"), "select id from documents") == xs
    for who in ("owner", "contractor_y_user"):
        assert ids(as_(act_as, w, who), "select id from documents") == set(), who


def test_another_organizations_admin_reads_only_its_own_receipts(rows, act_as, admin_engine):
    w = rows.world
    assert ids(as_(act_as, w, "admin_b"), "select id from documents") == truth(
        admin_engine, "select id from documents where org_id = :o", o=w.org_b
    )


def test_nobody_changes_or_deletes_a_receipt_as_the_app(rows, act_as, admin_engine):
    w = rows.world
    before = owner_query(
        admin_engine, "select id, sha256, title from documents where org_id = :o order by id", o=w.org_a
    )
    for who in ("admin", "finance"):
        session = as_(act_as, w, who)
        assert refused(session, "update documents set title = 'Void'") == INSUFFICIENT_PRIVILEGE, who
        assert refused(session, "delete from documents") == INSUFFICIENT_PRIVILEGE, who
    assert (
        owner_query(admin_engine, "select id, sha256, title from documents where org_id = :o order by id", o=w.org_a)
        == before
    )


def test_not_even_the_owner_role_changes_deletes_or_truncates_a_receipt(rows, admin_engine):
    w = rows.world
    before = owner_query(
        admin_engine, "select id, sha256, content from documents where org_id = :o order by id", o=w.org_a
    )
    for sql in (
        "update documents set title = 'Void' where org_id = :o",
        "delete from documents where org_id = :o",
        "truncate documents",
    ):
        with pytest.raises(DBAPIError) as raised, admin_engine.begin() as conn:
            conn.execute(text(sql), {"o": w.org_a})
        assert raised.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, sql
        assert "kept as issued" in str(raised.value.orig)
    assert (
        owner_query(admin_engine, "select id, sha256, content from documents where org_id = :o order by id", o=w.org_a)
        == before
    )


FILE_A_RECEIPT = (
    "insert into documents (org_id, kind, invoice_id, transaction_id, title, filename, content, size_bytes, sha256,"
    "                       contractor_id, engagement_id)"
    " values (:o, 'self_billed_invoice', :i, 'TX-0123456789ABCDEF0123', 'Fake', 'fake.pdf', '\\x25504446'::bytea, 4,"
    "         encode(sha256('\\x25504446'::bytea), 'hex'), :c, :e)"
)


def test_only_the_worker_files_a_document_no_web_request_not_even_finances(rows, act_as, admin_engine):
    """Self-billed invoices are the issue_receipt job's (services/receipts): since revision 0010 the web role holds
    no INSERT on documents, so finance and admins, who read the data room, no longer file into it either."""
    w = rows.world
    (invoice,) = owner_query(
        admin_engine,
        "select * from invoices where org_id = :o and contractor_id = :c order by number limit 1",
        o=w.org_a,
        c=w.contractor_x,
    )
    for who in ("admin", "finance", "owner", "contractor_x_user"):
        assert (
            refused(
                as_(act_as, w, who),
                FILE_A_RECEIPT,
                o=w.org_a,
                i=invoice["id"],
                c=invoice["contractor_id"],
                e=invoice["engagement_id"],
            )
            == INSUFFICIENT_PRIVILEGE
        ), who


# --- password_resets: no privilege at all ----------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "select * from password_resets",
        "select count(*) from password_resets",
        "insert into password_resets (user_id, token_hash) values (:u, 'forged')",
        "update password_resets set used_at = null",
        "delete from password_resets",
    ],
)
@pytest.mark.parametrize("context", ["admin", "account", "none"])
def test_the_app_role_has_no_privilege_on_password_resets(world, act_as, sql, context):
    w = world
    session = {
        "admin": lambda: as_(act_as, w, "admin"),
        "account": lambda: act_as(w.finance.id, None),
        "none": lambda: act_as(None, None),
    }[context]()
    assert refused(session, sql, u=w.finance.id) == INSUFFICIENT_PRIVILEGE


def test_the_app_role_holds_no_privilege_of_any_kind_on_password_resets(app_engine):
    with app_engine.connect() as conn:
        held = (
            conn.execute(
                text(
                    "select p"
                    "  from unnest(array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p"
                    " where has_table_privilege(current_user, 'public.password_resets', p)"
                    "    or (p in ('SELECT','INSERT','UPDATE','REFERENCES')"
                    "        and has_any_column_privilege(current_user, 'public.password_resets', p))"
                )
            )
            .scalars()
            .all()
        )
    assert held == []
