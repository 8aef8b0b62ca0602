"""Least privilege (issue 16; revision 0011): what the web role and the worker role no longer hold, refused as
raw SQL in a session of each, and what they kept still doing its job.

tests/integration/test_privileges.py holds each role to its full allow-list; this file shows that each
narrowing refuses the statement it is about with "permission denied" (the grant, not a policy or a guard,
stands in the way), in the role's own organization, where the policies would have let it through. Where
the web role lost a privilege that another file's tests exercise, the test is there: DELETE on contractors in
test_rls_matrix, INSERT on notifications and documents in test_notifications_rls.
"""

from __future__ import annotations

import uuid

import pytest
from kit.engagements import create_active, owner_query
from kit.money import approved_invoices, party
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from test_privileges import WEB_ROLE, WORKER_ROLE, check

from backoffice import schema


def denied(session, sql: str, **params) -> None:
    """``sql`` is refused for want of a privilege (SQLSTATE 42501, "permission denied"), not by a policy."""
    with pytest.raises(DBAPIError) as raised:
        session.execute(text(sql), params)
    session.rollback()
    assert raised.value.orig.sqlstate == "42501", str(raised.value.orig)
    assert "permission denied" in str(raised.value.orig), str(raised.value.orig)


# --- the web role ------------------------------------------------------------------------------------

NEW_CHANGE_ORDER = (
    "insert into change_orders (org_id, contractor_id, engagement_id, number, reason, contract_value_before,"
    " contract_value_after, created_by{extra_columns}) values (:o, :c, :e, 1, 'Scope grew.', 100000, 100000, :me"
    "{extra_values}) returning created_at = now()"
)


def test_a_change_order_is_dated_by_the_database_never_by_its_writer(world, app_sessions, act_as, admin_engine):
    """milestones_guard takes a change order with created_at = now() for one issued in this transaction, and the
    engagement's history shows when each was issued: the writer does not get to say. The same row without
    created_at goes in, dated now()."""
    engagement = create_active(app_sessions, world)
    session = act_as(world.owner.id, world.org_a)
    params = {"o": world.org_a, "c": world.contractor_x, "e": engagement, "me": world.owner.id}
    for dated in ("timestamptz '2020-01-01 09:00Z'", "now() + interval '1 day'", "now()"):
        denied(session, NEW_CHANGE_ORDER.format(extra_columns=", created_at", extra_values=f", {dated}"), **params)
    session = act_as(world.owner.id, world.org_a)
    assert session.execute(text(NEW_CHANGE_ORDER.format(extra_columns="", extra_values="")), params).scalar_one()
    session.rollback()
    assert owner_query(admin_engine, "select id from change_orders where engagement_id = :e", e=engagement) == []


OUTBOX_INVITATION = (
    "insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key{extra})"
    " values (:o, 'member.invited', :u, :e, 'You are invited', '<p>x</p>', 'x', :k{values})"
)
DELIVERY_CLAIMS = {
    "sent, with a provider id": (", status, provider_id, sent_at", ", 'sent', 're_forged', now()"),
    "a delivery error": (", last_error", ", 'Resend answered 422'"),
    "backdated": (", created_at, updated_at", ", now() - interval '1 year', now() - interval '1 year'"),
}


@pytest.mark.parametrize("claim", DELIVERY_CLAIMS)
def test_a_web_request_cannot_write_an_outbox_message_as_delivered(world, act_as, claim):
    """An admin's invitation is written by the request, with the columns store_message writes; how and when a
    message was delivered is the worker's to record (services/email_delivery)."""
    columns, values = DELIVERY_CLAIMS[claim]
    session = act_as(world.admin.id, world.org_a)
    params = {"o": world.org_a, "u": world.owner.id, "e": world.owner.email, "k": f"forged:{uuid.uuid4()}"}
    denied(session, OUTBOX_INVITATION.format(extra=columns, values=values), **params)
    # the control: the message as store_message writes it is accepted
    session = act_as(world.admin.id, world.org_a)
    assert session.execute(text(OUTBOX_INVITATION.format(extra="", values="")), params).rowcount == 1
    session.rollback()


# The rules of sql/rules.sql that only SECURITY DEFINER guards call (as the owner): pages compute with their
# Python twins, so the web role's statements never call them.
GUARDS_ONLY_RULES = [
    "select money_percent_of(100000, 1000)",
    "select (milestone_amounts(100000, 1000, 250)).*",
    "select withheld_bps(1000, false)",
    "select is_manager('owner')",
]


@pytest.mark.parametrize("sql", GUARDS_ONLY_RULES)
def test_the_web_role_cannot_execute_a_rule_only_the_guards_call(world, act_as, sql):
    denied(act_as(world.admin.id, world.org_a), sql)


# --- the worker role ---------------------------------------------------------------------------------


def test_the_worker_reads_a_payees_name_never_its_payout_details(world, as_worker, admin_engine):
    session = as_worker(world.org_a)
    names = set(session.execute(text("select legal_name from contractors")).scalars())
    session.rollback()
    assert names == {
        r["legal_name"]
        for r in owner_query(admin_engine, "select legal_name from contractors where org_id = :o", o=world.org_a)
    }
    for sql in ("select payout_details from contractors", "select * from contractors"):
        denied(session, sql)


def test_the_worker_reads_of_people_only_whom_to_write_to(world, as_worker):
    session = as_worker(world.org_a)
    assert session.execute(text("select count(*) from users where is_active and email <> ''")).scalar_one() > 0
    session.rollback()
    for column in ("last_login_at", "created_at", "password_hash"):
        denied(session, f"select {column} from users")


# What no job reads: invitations and their token hashes, the ledger, AP export files, evidence bytes, change
# order lines, and notifications (the worker is nobody's user; it writes them and never reads one back).
@pytest.mark.parametrize(
    "table", ["invites", "ledger_entries", "ap_export_chunks", "evidence_chunks", "change_order_lines", "notifications"]
)
def test_the_worker_reads_nothing_no_job_reads(world, as_worker, table):
    denied(as_worker(world.org_a), f"select count(*) from {table}")


# What the pages write and no job does. Each would touch rows of the worker's own organization, where it has an
# admin's reach: only the missing privilege stands in the way.
PAGE_WRITES = {
    "organization settings": "update organizations set name = 'Taken over' where id = :o",
    "a contractor's payout details": "update contractors set payout_details = 'attacker IBAN' where org_id = :o",
    "a new contractor": "insert into contractors (org_id, legal_name, email) values (:o, 'Planted', 'p@example.com')",
    "removing a contractor": "delete from contractors where org_id = :o",
    "a member's role": "update memberships set role = 'admin' where org_id = :o",
    "removing a member": "delete from memberships where org_id = :o",
    "a new member": "insert into memberships (org_id, user_id, role) values (:o, gen_random_uuid(), 'admin')",
    "an invitation's link": "update invites set used_at = null where org_id = :o",
    "deactivating someone": "update users set is_active = false",
    "signing someone out": "update user_sessions set ended_at = now()",
    "a new engagement": "insert into engagements (org_id) values (:o)",
    "an engagement's terms": "update engagements set title = 'Taken over' where org_id = :o",
    "a milestone's amount": "update milestones set amount_minor = 1 where org_id = :o",
    "removing a milestone": "delete from milestones where org_id = :o",
    "a change order": "insert into change_orders (org_id) values (:o)",
    "a submission": "insert into submissions (org_id) values (:o)",
    "a review": "insert into reviews (org_id) values (:o)",
    "an invoice": "insert into invoices (org_id) values (:o)",
    # (Since revision 0024 the worker moves an invoice's status and records a Stripe payment and its ledger lines:
    # the guards and policies hold it to a rail's, test_the_worker_records_only_what_a_payment_rail_did below.)
    "an invoice's batch": "update invoices set batch_id = null where org_id = :o",
    "an invoice's amounts": "update invoices set net_minor = 1 where org_id = :o",
    "an AP export batch": "insert into ap_export_batches (org_id) values (:o)",
    "voiding a batch": "update ap_export_batches set status = 'voided' where org_id = :o",
    "a ledger line changed": "update ledger_entries set amount_minor = 1 where org_id = :o",
    "reading someone's notifications": "update notifications set read_at = now() where org_id = :o",
    "a notification already read": (
        "insert into notifications (org_id, user_id, event, title, url, dedupe_key, read_at)"
        " values (:o, gen_random_uuid(), 'milestone.approved', 'x', '/', 'forged', now())"
    ),
    "a message's words": "update email_messages set subject = 'Pay here instead' where org_id = :o",
    "a message written as sent": (
        "insert into email_messages (org_id, event, recipient, subject, html, text, dedupe_key, status, provider_id)"
        " values (:o, 'milestone.approved', 'p@example.com', 'x', 'x', 'x', 'forged', 'sent', 're_forged')"
    ),
}


@pytest.mark.parametrize("what", PAGE_WRITES)
def test_the_worker_writes_nothing_a_page_writes(world, as_worker, what):
    denied(as_worker(world.org_a), PAGE_WRITES[what], o=world.org_a)


def test_the_worker_records_only_what_a_payment_rail_did(world, as_worker, act_as, admin_engine):
    """The worker holds INSERT on payments and ledger lines and UPDATE of an invoice's status for the Stripe rail
    (revision 0024); the guards refuse it anything else: a hand-recorded payment, a move no rail made, ledger lines
    of no rail's payment, releasing a hold."""
    _, (invoice, _) = approved_invoices(act_as, admin_engine, party(world))
    session = as_worker(world.org_a)
    attempts = {
        "a payment recorded by hand": (
            "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference,"
            " method, source, recorded_by) values (:o, :c, :i, :n, 'USD', current_date, 'ACH 1', 'ach', 'manual', :u)",
            "payments are recorded by finance or an admin, in their own name",
        ),
        "a Stripe payment no attempt asked for": (
            "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference,"
            " method, source, recorded_by) values (:o, :c, :i, :n, 'USD', current_date, 'tr_forged', 'stripe',"
            " 'stripe', :u)",
            "a Stripe payment is for an invoice handed to Stripe",
        ),
        "an invoice paid with no payment": (
            "update invoices set status = 'paid', paid_at = current_date where id = :i",
            "an invoice is paid with its payment record",
        ),
        "an invoice handed to no rail": (
            "update invoices set status = 'exported', exported_at = now() where id = :i",
            "an invoice is handed to a payment rail with a payout attempt made in the same transaction",
        ),
        "ledger lines of no rail's payment": (
            "insert into ledger_entries (org_id, txn_id, event, invoice_id, account, amount_minor, currency)"
            " values (:o, gen_random_uuid(), 'paid', :i, 'cash', 1, 'USD')",
            "row-level security policy",
        ),
    }
    params = {
        "o": world.org_a,
        "c": world.contractor_x,
        "i": invoice["id"],
        "n": invoice["net_minor"],
        "u": world.finance.id,
    }
    for what, (sql, words) in attempts.items():
        with pytest.raises(DBAPIError) as raised:
            session.execute(text(sql), params)
            session.flush()
        session.rollback()
        assert words in str(raised.value.orig), (what, str(raised.value.orig))


# ap_csv_text is the AP export's (the web role's); the rules are the guards' and the web role's.
@pytest.mark.parametrize(
    "sql",
    [
        "select ap_csv_text('=1+1')",
        "select can_decide('admin', null, null)",
        "select reviewable('active')",
        "select milestone_move_refusal('planned', 'submitted', 'contractor', 'active')",
        *GUARDS_ONLY_RULES,
    ],
)
def test_the_worker_calls_no_export_or_rule_function(world, as_worker, sql):
    denied(as_worker(world.org_a), sql)


# --- the migration -----------------------------------------------------------------------------------


def test_upgrading_a_database_from_0010_takes_back_what_the_roles_held_before(database, admin_engine, app_engine):
    """A database at revision 0010 holds the wider grants (a sample of each kind, put back by hand here); its
    upgrade to 0011 re-applies the SQL files, which revoke every table privilege before granting, and leaves
    each role exactly its allow-list. (Only to 0011: the database's tables are the newest revision's already,
    and a later revision that changes tables, as 0015 does its keys, cannot run again on its own result. The
    revision is put back to the newest afterwards, as the database is.)"""
    app, worker = make_url(database.app_url).username, make_url(database.worker_url).username
    (head,) = schema.head_revisions()
    with admin_engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '0010_sign_in_sessions'"))
        for sql in (
            f'grant delete on contractors to "{app}", "{worker}"',
            f'grant insert on notifications, documents, change_orders, email_messages to "{app}", "{worker}"',
            f'grant select on invites, ledger_entries, evidence_chunks, notifications to "{worker}"',
            f'grant update (title, status) on engagements to "{worker}"',
            f'grant select, update (payout_details) on contractors to "{worker}"',
            f'grant execute on function money_percent_of(bigint, integer), is_manager(text) to "{app}"',
            "grant execute on function ap_csv_text(text) to public",
        ):
            conn.execute(text(sql))
    try:
        schema.upgrade(database.admin_url, database.app_url, database.worker_url, revision="0011_least_privilege")
        assert {r["version_num"] for r in owner_query(admin_engine, "select version_num from alembic_version")} == {
            "0011_least_privilege"
        }
        with app_engine.connect() as conn:
            check(conn, app, WEB_ROLE, "the web role")
            check(conn, worker, WORKER_ROLE, "the worker role")
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("update alembic_version set version_num = :head"), {"head": head})
