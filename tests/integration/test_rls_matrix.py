"""Row-level security, table by table, with raw SQL as the app role (DESIGN.md section 5).

Every statement here is plain ``text()`` SQL run by the app role, so the only thing standing between
a tenant and another tenant's rows is the database: table privileges first, then the policies. What
the owner role sees (``admin_engine``, BYPASSRLS) is the ground truth the app role is compared with.
"""

from __future__ import annotations

import secrets
import string
import uuid

import pytest
from kit.signin import open_sign_in
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.db import set_context

# The tenant tables and the column naming their organization.
ORG_COLUMN = {
    "organizations": "id",
    "memberships": "org_id",
    "contractors": "org_id",
    "invites": "org_id",
    "audit_events": "org_id",
}
TENANT_TABLES = list(ORG_COLUMN)
ALL_TABLES = [*TENANT_TABLES, "users"]

RLS_VIOLATION = "violates row-level security policy"
PERMISSION_DENIED = "permission denied"


# --- helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def invites(world, admin_engine):
    """An unused invite in each org (the world has none), created by the owner role. expires_at is
    left to the database (now() + 72 hours)."""
    ids = {}
    with admin_engine.begin() as conn:
        for org, user, by in (
            (world.org_a, world.contractor_y_user, world.admin.id),
            (world.org_b, world.contractor_z_user, world.admin_b.id),
        ):
            ids[org] = conn.execute(
                text(
                    "insert into invites (org_id, user_id, email, name, token_hash, created_by)"
                    " values (:org, :user, :email, :name, :hash, :by) returning id"
                ),
                {
                    "org": org,
                    "user": user.id,
                    "email": user.email,
                    "name": user.name,
                    "hash": secrets.token_hex(32),
                    "by": by,
                },
            ).scalar_one()
    return ids


@pytest.fixture
def pending(world, admin_engine):
    """Two people invited to org A who have not accepted (memberships with accepted_at NULL), written
    by the owner role: a new account without a password, and org B's admin, whose account is accepted
    in org B. Returns {"newcomer": user id, "admin_b": user id}."""
    with admin_engine.begin() as conn:
        newcomer = conn.execute(
            text("insert into users (email, name) values (:email, 'Pat Pending') returning id"),
            {"email": f"pending-{world.suffix}@example.com"},
        ).scalar_one()
        for user_id, role in ((newcomer, "admin"), (world.admin_b.id, "finance")):
            conn.execute(
                text("insert into memberships (org_id, user_id, role) values (:org, :user, :role)"),
                {"org": world.org_a, "user": user_id, "role": role},
            )
            assert (
                conn.execute(
                    text("select accepted_at from memberships where org_id = :org and user_id = :user"),
                    {"org": world.org_a, "user": user_id},
                ).scalar_one()
                is None
            )
    return {"newcomer": newcomer, "admin_b": world.admin_b.id}


def org_rows(admin_engine, table: str, org_id) -> list[dict]:
    """Every row of ``table`` belonging to ``org_id``, as the owner sees them (RLS bypassed)."""
    col = ORG_COLUMN.get(table, "org_id")
    with admin_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(f"select * from {table} where {col} = :org order by id"), {"org": org_id}
            ).mappings()
        ]


def count(session, table: str, where: str = "true", **params) -> int:
    return session.execute(text(f"select count(*) from {table} where {where}"), params).scalar_one()


def refused(session, sql: str, params: dict, reason: str) -> str:
    """Run ``sql`` expecting the database to refuse it with SQLSTATE 42501 and ``reason`` in the message."""
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
    session.rollback()
    message = str(exc.value.orig)
    assert exc.value.orig.sqlstate == "42501", message
    assert reason in message, message
    return message


def insert_sql(table: str) -> str:
    """An INSERT of one plausible row into ``table`` for org :org, by user :me, about user :user."""
    return {
        "organizations": "insert into organizations (id, name) values (:org, 'Planted org')",
        "memberships": "insert into memberships (org_id, user_id, role) values (:org, :user, 'admin')",
        "contractors": (
            "insert into contractors (org_id, legal_name, email) values (:org, 'Planted Ltd', 'planted@example.com')"
        ),
        "invites": (
            "insert into invites (org_id, user_id, email, name, token_hash, created_by)"
            " values (:org, :user, 'planted@example.com', 'Planted', :token_hash, :me)"
        ),
        "audit_events": (
            "insert into audit_events (org_id, actor_user_id, actor_label, action, entity_type)"
            " values (:org, :me, 'planted', 'test.planted', 'test')"
        ),
    }[table]


def insert_params(org, me, user) -> dict:
    return {"org": org, "me": me, "user": user, "token_hash": secrets.token_hex(32)}


# --- (a) no context ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ALL_TABLES)
def test_a_session_without_context_sees_no_rows_at_all(world, invites, app_session, admin_engine, table):
    with admin_engine.connect() as conn:
        assert conn.execute(text(f"select count(*) from {table}")).scalar_one() > 0  # there is something to hide
    assert app_session.execute(text(f"select count(*) from {table}")).scalar_one() == 0


def test_a_session_with_an_empty_context_sees_no_rows(world, act_as):
    s = act_as(None, None)
    for table in ALL_TABLES:
        assert count(s, table) == 0, table


def test_a_user_without_an_org_sees_only_itself_and_no_tenant_rows(world, act_as):
    s = act_as(world.admin.id, None)
    for table in TENANT_TABLES:
        assert count(s, table) == 0, table
    assert s.execute(text("select id from users")).scalars().all() == [world.admin.id]


# --- (b) org B's admin against org A ------------------------------------------------------------------


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_admin_of_org_a_sees_org_a_rows_of_every_table(world, invites, act_as, table):
    """The control for the tests below: org A's rows exist and are visible to their own admin."""
    s = act_as(world.admin.id, world.org_a)
    assert count(s, table, f"{ORG_COLUMN[table]} = :org", org=world.org_a) > 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_admin_of_org_b_sees_no_rows_of_org_a(world, invites, act_as, table):
    s = act_as(world.admin_b.id, world.org_b)
    assert count(s, table, f"{ORG_COLUMN[table]} = :org", org=world.org_a) == 0
    assert count(s, table, f"{ORG_COLUMN[table]} = :org", org=world.org_b) > 0  # its own org is visible
    assert count(s, table, f"{ORG_COLUMN[table]} <> :org", org=world.org_b) == 0


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ("organizations", PERMISSION_DENIED),  # the app role cannot create organizations at all
        ("memberships", RLS_VIOLATION),
        ("contractors", RLS_VIOLATION),
        ("invites", RLS_VIOLATION),
        ("audit_events", RLS_VIOLATION),
    ],
)
def test_admin_of_org_b_cannot_insert_a_row_into_org_a(world, invites, act_as, admin_engine, table, reason):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    org_a = uuid.uuid4() if table == "organizations" else world.org_a
    message = refused(s, insert_sql(table), insert_params(org_a, world.admin_b.id, world.admin_b.id), reason)
    if reason == RLS_VIOLATION:
        assert f'table "{table}"' in message
    assert org_rows(admin_engine, table, world.org_a) == before


# Statements the app role holds the privilege for: RLS must make them touch nothing in org A.
UPDATES = {
    "organizations": "update organizations set name = 'Taken over', payment_terms_days = 1 where id = :org",
    "memberships": "update memberships set role = 'admin', contractor_id = null where org_id = :org",
    "contractors": (
        "update contractors set legal_name = 'Taken over', payout_details = 'attacker IBAN' where org_id = :org"
    ),
    "invites": "update invites set used_at = now() where org_id = :org",  # used_at is the one column it may update
}
DELETES = {
    "memberships": "delete from memberships where org_id = :org",
}
# Statements the app role holds no privilege for at all: refused before any policy is consulted.
UNGRANTED_WRITES = {
    # No page removes a contractor (services/contractors creates and edits them): revision 0010 took the grant
    # back, so not even an admin in its own organization can, whatever the foreign keys would have allowed.
    "contractors: delete": (
        "delete from contractors where org_id = :org"
        " and id not in (select contractor_id from memberships where contractor_id is not null)"
    ),
    "invites: delete": "delete from invites where org_id = :org",
    "invites: extend expires_at": "update invites set expires_at = now() + interval '1 year' where org_id = :org",
    "invites: swap token_hash": "update invites set token_hash = repeat('a', 64) where org_id = :org",
    "invites: redirect to another user": "update invites set user_id = :me where org_id = :org",
    "memberships: accept": "update memberships set accepted_at = now() where org_id = :org",
}


@pytest.mark.parametrize("table", list(UPDATES))
def test_admin_of_org_b_updating_org_a_rows_changes_nothing(world, invites, act_as, admin_engine, table):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    result = s.execute(text(UPDATES[table]), {"org": world.org_a})
    assert result.rowcount == 0
    s.commit()
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize("table", list(DELETES))
def test_admin_of_org_b_deleting_org_a_rows_changes_nothing(world, invites, act_as, admin_engine, table):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    result = s.execute(text(DELETES[table]), {"org": world.org_a})
    assert result.rowcount == 0
    s.commit()
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize("what", list(UNGRANTED_WRITES))
def test_admin_of_org_b_is_refused_ungranted_writes_to_org_a(world, invites, pending, act_as, admin_engine, what):
    table = what.split(":")[0]
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    refused(s, UNGRANTED_WRITES[what], {"org": world.org_a, "me": world.admin_b.id}, PERMISSION_DENIED)
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize("what", list(UNGRANTED_WRITES))
def test_admin_is_refused_ungranted_writes_even_in_its_own_org(world, invites, pending, act_as, admin_engine, what):
    """Not a matter of tenancy: no admin may delete or re-aim an invite, or accept a membership."""
    table = what.split(":")[0]
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.admin.id, world.org_a)
    assert count(s, table) > 0  # the rows are visible to this admin, so only the privilege stands in the way
    refused(s, UNGRANTED_WRITES[what], {"org": world.org_a, "me": world.admin.id}, PERMISSION_DENIED)
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize(
    "sql",
    [
        "insert into memberships (org_id, user_id, role, accepted_at) values (:org, :user, 'owner', now())",
        "insert into memberships (org_id, user_id, role, created_at)"
        " values (:org, :user, 'owner', now() - interval '1 year')",
        "insert into invites (org_id, user_id, email, name, token_hash, created_by, expires_at)"
        " values (:org, :user, 'o@example.com', 'O', repeat('b', 64), :me, now() + interval '1 hour')",
        "insert into invites (org_id, user_id, email, name, token_hash, created_by, created_at)"
        " values (:org, :user, 'o@example.com', 'O', repeat('b', 64), :me, now() + interval '1 year')",
        "insert into invites (org_id, user_id, email, name, token_hash, created_by, used_at)"
        " values (:org, :user, 'o@example.com', 'O', repeat('b', 64), :me, null)",
    ],
)
def test_admin_cannot_write_the_columns_only_the_database_sets(world, act_as, admin_engine, sql):
    """accepted_at (only accept_invite sets it) and the invite's clock columns are not the app role's to write."""
    before = {t: org_rows(admin_engine, t, world.org_a) for t in ("memberships", "invites")}
    s = act_as(world.admin.id, world.org_a)
    refused(s, sql, {"org": world.org_a, "user": world.outsider.id, "me": world.admin.id}, PERMISSION_DENIED)
    assert {t: org_rows(admin_engine, t, world.org_a) for t in ("memberships", "invites")} == before


def test_an_admin_writes_invites_only_in_its_own_name(world, act_as, admin_engine):
    before = org_rows(admin_engine, "invites", world.org_a)
    s = act_as(world.admin.id, world.org_a)
    params = insert_params(world.org_a, world.owner.id, world.outsider.id)  # created_by: the owner, not the admin
    message = refused(s, insert_sql("invites"), params, RLS_VIOLATION)
    assert 'table "invites"' in message
    assert org_rows(admin_engine, "invites", world.org_a) == before
    # the control: the same row in the admin's own name is accepted
    s = act_as(world.admin.id, world.org_a)
    s.execute(text(insert_sql("invites")), insert_params(world.org_a, world.admin.id, world.outsider.id))
    assert count(s, "invites", "user_id = :u", u=world.outsider.id) == 1
    s.rollback()
    assert org_rows(admin_engine, "invites", world.org_a) == before


def test_a_membership_an_admin_writes_with_raw_sql_is_pending_and_grants_nothing(world, act_as, admin_engine):
    s = act_as(world.admin.id, world.org_a)
    s.execute(text(insert_sql("memberships")), insert_params(world.org_a, world.admin.id, world.outsider.id))
    s.commit()
    (row,) = [r for r in org_rows(admin_engine, "memberships", world.org_a) if r["user_id"] == world.outsider.id]
    assert row["role"] == "admin" and row["accepted_at"] is None
    s = act_as(world.outsider.id, world.org_a)
    assert s.execute(text("select app_org_id(), app_role(), app_contractor_id()")).one() == (None, None, None)
    for table in TENANT_TABLES:
        assert count(s, table) == 0, table


@pytest.mark.parametrize(
    "sql",
    [
        "delete from organizations where id = :org",
        "update audit_events set actor_label = 'rewritten' where org_id = :org",
        "delete from audit_events where org_id = :org",
    ],
)
def test_app_role_has_no_privilege_for_destructive_statements_on_organizations_and_audit_events(world, act_as, sql):
    s = act_as(world.admin_b.id, world.org_b)
    refused(s, sql, {"org": world.org_a}, PERMISSION_DENIED)
    # Not even in its own organization:
    s = act_as(world.admin_b.id, world.org_b)
    refused(s, sql, {"org": world.org_b}, PERMISSION_DENIED)


def open_sign_ins(admin_engine, user_ids) -> dict:
    with admin_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "select user_id, count(*) from user_sessions where user_id = any(:ids) and ended_at is null"
                    " group by user_id"
                ),
                {"ids": list(user_ids)},
            ).all()
        )


def test_signing_out_ends_only_the_signed_in_persons_own_sessions(world, act_as, admin_engine):
    """The web role has no grant on user_sessions and no UPDATE on users: auth_sign_out() ends the sign-ins
    of the person whose sign-in the connection presents, whoever app.user_id names."""
    people = [world.admin.id, world.finance.id, world.admin_b.id]
    for person in people:
        open_sign_in(person)
    s = act_as(world.admin_b.id, world.org_b)
    for sql in (
        "update users set is_active = false where id = :id",
        "select * from user_sessions",
        "update user_sessions set ended_at = now() where user_id = :id",
    ):
        refused(s, sql, {"id": world.admin.id}, PERMISSION_DENIED)
    before = open_sign_ins(admin_engine, people)
    s = act_as(world.admin_b.id, world.org_b)
    set_context(s, user_id=world.admin.id, org_id=world.org_a)  # naming org A's admin, signed in as B's
    s.execute(text("select auth_sign_out()"))
    s.commit()
    after = open_sign_ins(admin_engine, people)
    assert world.admin_b.id not in after  # every sign-in of org B's admin ended, this one's included
    assert after[world.admin.id] == before[world.admin.id] and after[world.finance.id] == before[world.finance.id]


# --- (c) a contractor user of org A ---------------------------------------------------------------------


def test_contractor_sees_only_its_own_contractor_row(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert s.execute(text("select id from contractors")).scalars().all() == [world.contractor_x]


def test_contractor_cannot_see_other_contractors_rows(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert count(s, "contractors", "id = :id", id=world.contractor_y) == 0
    assert count(s, "memberships", "contractor_id = :id", id=world.contractor_y) == 0
    assert count(s, "users", "id = :id", id=world.contractor_y_user.id) == 0


def test_contractor_sees_only_its_own_membership(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    rows = s.execute(text("select user_id, role, contractor_id from memberships")).all()
    assert [tuple(r) for r in rows] == [(world.contractor_x_user.id, "contractor", world.contractor_x)]


def test_contractor_sees_its_organization_but_no_invites(world, invites, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert s.execute(text("select id from organizations")).scalars().all() == [world.org_a]
    assert count(s, "invites") == 0


@pytest.mark.parametrize("table", ["contractors", "memberships", "invites"])
def test_contractor_cannot_insert_into_admin_tables(world, act_as, admin_engine, table):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.contractor_x_user.id, world.org_a)
    # memberships: make the outsider an admin of org A; invites: an invitation link for a colleague.
    params = insert_params(
        world.org_a,
        world.contractor_x_user.id,
        world.outsider.id if table == "memberships" else world.contractor_y_user.id,
    )
    refused(s, insert_sql(table), params, RLS_VIOLATION)
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("contractors", "update contractors set payout_details = 'attacker IBAN' where id = :own"),
        ("contractors", "update contractors set payout_details = 'attacker IBAN' where org_id = :org"),
        ("memberships", "update memberships set role = 'admin', contractor_id = null where user_id = :me"),
        ("invites", "update invites set used_at = now() where org_id = :org"),
        ("memberships", "delete from memberships where user_id = :me"),
    ],
)
def test_contractor_cannot_update_or_delete_admin_tables(world, invites, act_as, admin_engine, table, sql):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.contractor_x_user.id, world.org_a)
    params = {
        "own": world.contractor_x,
        "other": world.contractor_y,
        "org": world.org_a,
        "me": world.contractor_x_user.id,
    }
    assert s.execute(text(sql), params).rowcount == 0
    s.commit()
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("invites", "update invites set expires_at = now() + interval '1 year' where org_id = :org"),
        ("invites", "delete from invites where org_id = :org"),
        ("memberships", "update memberships set accepted_at = now() where user_id = :me"),
        ("contractors", "delete from contractors where id = :other"),
    ],
)
def test_contractor_is_refused_writes_the_app_role_has_no_privilege_for(
    world, invites, act_as, admin_engine, table, sql
):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.contractor_x_user.id, world.org_a)
    params = {"org": world.org_a, "me": world.contractor_x_user.id, "other": world.contractor_y}
    refused(s, sql, params, PERMISSION_DENIED)
    assert org_rows(admin_engine, table, world.org_a) == before


def test_contractor_cannot_read_audit_events(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert count(s, "audit_events") == 0


# --- (d) naming an org the user is not a member of -------------------------------------------------------


@pytest.mark.parametrize("who", ["outsider", "admin_b", "contractor_z_user"])
@pytest.mark.parametrize("table", TENANT_TABLES)
def test_a_user_naming_an_org_it_is_not_a_member_of_sees_no_rows(world, invites, act_as, who, table):
    s = act_as(getattr(world, who).id, world.org_a)
    assert count(s, table) == 0


@pytest.mark.parametrize("who", ["outsider", "admin_b"])
def test_a_user_naming_a_foreign_org_sees_only_itself_in_users(world, act_as, who):
    me = getattr(world, who).id
    s = act_as(me, world.org_a)
    assert s.execute(text("select id from users")).scalars().all() == [me]


@pytest.mark.parametrize("table", ["memberships", "contractors", "invites", "audit_events"])
def test_a_user_naming_a_foreign_org_cannot_insert_into_it(world, act_as, admin_engine, table):
    before = org_rows(admin_engine, table, world.org_a)
    s = act_as(world.outsider.id, world.org_a)
    refused(s, insert_sql(table), insert_params(world.org_a, world.outsider.id, world.outsider.id), RLS_VIOLATION)
    assert org_rows(admin_engine, table, world.org_a) == before


@pytest.mark.parametrize("who", ["newcomer", "admin_b"])
@pytest.mark.parametrize("table", [*TENANT_TABLES, "users"])
def test_a_person_invited_but_not_accepted_sees_nothing_of_the_org(
    world, invites, pending, act_as, admin_engine, who, table
):
    with admin_engine.connect() as conn:  # there is something to see, and a membership naming them
        assert (
            conn.execute(
                text("select count(*) from memberships where org_id = :org and user_id = :u and accepted_at is null"),
                {"org": world.org_a, "u": pending[who]},
            ).scalar_one()
            == 1
        )
    s = act_as(pending[who], world.org_a)
    if table == "users":
        assert s.execute(text("select id from users")).scalars().all() == [pending[who]]
    else:
        assert count(s, table) == 0


@pytest.mark.parametrize("who", ["newcomer", "admin_b"])
def test_a_pending_membership_gives_no_org_role_or_switcher_entry(world, pending, act_as, who):
    s = act_as(pending[who], world.org_a)
    assert s.execute(text("select app_org_id(), app_role(), app_contractor_id()")).one() == (None, None, None)
    orgs = s.execute(text("select org_id from my_memberships()")).scalars().all()
    assert orgs == ([world.org_b] if who == "admin_b" else [])


def test_a_context_naming_someone_elses_membership_is_not_honoured(world, act_as):
    """app.user_id of one user with app.org_id of another user's org: membership is checked as a pair."""
    s = act_as(world.contractor_z_user.id, world.org_a)
    assert count(s, "contractors") == 0
    assert s.execute(text("select app_org_id(), app_role(), app_contractor_id()")).one() == (None, None, None)


# --- (e) users ------------------------------------------------------------------------------------------


def test_a_user_sees_itself_and_the_members_of_the_current_org_only(world, act_as):
    s = act_as(world.admin.id, world.org_a)
    seen = set(s.execute(text("select id from users")).scalars())
    assert seen == {
        world.admin.id,
        world.owner.id,
        world.finance.id,
        world.contractor_x_user.id,
        world.contractor_y_user.id,
    }
    s = act_as(world.admin_b.id, world.org_b)
    assert set(s.execute(text("select id from users")).scalars()) == {world.admin_b.id, world.contractor_z_user.id}


def test_the_inviting_org_sees_the_pending_membership_but_not_the_invitees_account(world, pending, act_as):
    s = act_as(world.admin.id, world.org_a)
    assert {pending["newcomer"], pending["admin_b"]} <= set(
        s.execute(text("select user_id from memberships")).scalars()
    )
    seen = set(s.execute(text("select id from users")).scalars())
    assert seen == {
        world.admin.id,
        world.owner.id,
        world.finance.id,
        world.contractor_x_user.id,
        world.contractor_y_user.id,
    }
    visible = set(s.execute(text("select unnest(app_visible_user_ids())")).scalars())
    assert pending["newcomer"] not in visible and world.finance.id in visible


def test_a_contractor_sees_itself_but_no_user_of_another_org_or_contractor(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    seen = set(s.execute(text("select id from users")).scalars())
    assert world.contractor_x_user.id in seen
    assert seen.isdisjoint(
        {world.contractor_y_user.id, world.admin_b.id, world.contractor_z_user.id, world.outsider.id}
    )


@pytest.mark.parametrize(
    "sql",
    [
        "select password_hash from users",
        "select * from users",
        "select count(*) from users where password_hash is not null",
        "update users set password_hash = 'x' where id = :me",
        "update users set email = 'taken@example.com' where id = :me",
        "update users set name = 'Renamed' where id = :me",  # no page renames a user
        "update users set is_active = true where id = :me",
        "update users set last_login_at = null where id = :me",
        "insert into users (email, name) values ('planted@example.com', 'Planted')",
        "delete from users where id = :me",
    ],
)
def test_password_hashes_and_identities_are_out_of_reach_of_the_app_role(world, act_as, sql):
    s = act_as(world.admin.id, world.org_a)
    refused(s, sql, {"me": world.admin.id}, PERMISSION_DENIED)


@pytest.mark.parametrize(
    ("who", "org"),
    [
        ("owner", "org_a"),
        ("finance", "org_a"),
        ("contractor_x_user", "org_a"),
        ("outsider", "org_a"),
        ("admin_b", "org_a"),
        ("outsider", None),
    ],
)
def test_only_an_admin_of_the_current_org_may_create_accounts(world, act_as, admin_engine, who, org):
    email = f"conjured-{secrets.token_hex(4)}@example.com"
    s = act_as(getattr(world, who).id, getattr(world, org) if org else None)
    refused(s, "select invite_user_account(:email, 'Conjured')", {"email": email}, "only an admin")
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from users where email = :e"), {"e": email}).scalar_one() == 0
    # the control: org A's admin may
    s = act_as(world.admin.id, world.org_a)
    assert s.execute(text("select invite_user_account(:email, 'Conjured')"), {"email": email}).scalar_one() is not None
    s.rollback()


# --- (f) audit_events -----------------------------------------------------------------------------------


def _event_params(world, actor_id, org=None):
    return {
        "org": org or world.org_a,
        "actor": actor_id,
        "action": "test.event_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(12)),
    }


_INSERT_EVENT = (
    "insert into audit_events (org_id, actor_user_id, actor_label, action, entity_type)"
    " values (:org, :actor, 'label', :action, 'test')"
)


@pytest.mark.parametrize("actor", ["owner", "contractor_x_user", "admin_b", None])
def test_audit_event_claiming_another_actor_is_recorded_as_the_real_one(world, act_as, admin_engine, actor):
    s = act_as(world.admin.id, world.org_a)
    params = _event_params(world, getattr(world, actor).id if actor else None)
    s.execute(text(_INSERT_EVENT), params)  # the chain trigger sets who acted (sql/audit.sql)
    s.commit()
    with admin_engine.connect() as conn:
        row = conn.execute(
            text("select actor_user_id, actor_label from audit_events where org_id = :org and action = :action"),
            {"org": world.org_a, "action": params["action"]},
        ).one()
    assert (row.actor_user_id, row.actor_label) == (world.admin.id, world.admin.email)


@pytest.mark.parametrize("who", ["admin", "owner", "finance", "contractor_x_user"])
def test_any_member_can_record_an_audit_event_as_itself(world, act_as, admin_engine, who):
    me = getattr(world, who).id
    s = act_as(me, world.org_a)
    params = _event_params(world, me)
    s.execute(text(_INSERT_EVENT), params)  # no RETURNING: not every role may read the row back
    s.commit()
    with admin_engine.connect() as conn:
        row = conn.execute(
            text("select actor_user_id, seq, hash from audit_events where org_id = :org and action = :action"),
            {"org": world.org_a, "action": params["action"]},
        ).one()
    assert row.actor_user_id == me
    assert row.seq > 1 and len(row.hash) == 64


@pytest.mark.parametrize(
    ("who", "reads"), [("admin", True), ("finance", True), ("owner", False), ("contractor_x_user", False)]
)
def test_only_admins_and_finance_read_the_audit_trail(world, act_as, admin_engine, who, reads):
    with admin_engine.connect() as conn:
        total = conn.execute(
            text("select count(*) from audit_events where org_id = :org"), {"org": world.org_a}
        ).scalar_one()
    s = act_as(getattr(world, who).id, world.org_a)
    assert count(s, "audit_events") == (total if reads else 0)


def test_contractor_can_record_an_event_but_not_read_it_back(world, act_as, admin_engine):
    me = world.contractor_x_user.id
    s = act_as(me, world.org_a)
    params = _event_params(world, me)
    s.execute(text(_INSERT_EVENT), params)
    s.commit()
    assert count(s, "audit_events", "action = :action", action=params["action"]) == 0
    with admin_engine.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from audit_events where action = :a"), {"a": params["action"]}
            ).scalar_one()
            == 1
        )


@pytest.mark.parametrize(
    "sql",
    [
        "update audit_events set data = '{\"rewritten\": true}' where org_id = :org",
        "delete from audit_events where org_id = :org",
    ],
)
def test_audit_events_are_append_only_even_for_the_owner_role(world, admin_engine, sql):
    before = org_rows(admin_engine, "audit_events", world.org_a)
    with admin_engine.connect() as conn:
        with pytest.raises(DBAPIError) as exc:
            conn.execute(text(sql), {"org": world.org_a})
        conn.rollback()
    assert exc.value.orig.sqlstate == "42501"
    assert "append-only" in str(exc.value.orig)
    assert org_rows(admin_engine, "audit_events", world.org_a) == before


def test_audit_events_cannot_be_truncated_even_by_the_owner_role(world, admin_engine):
    before = org_rows(admin_engine, "audit_events", world.org_a)
    with admin_engine.connect() as conn:
        conn.execute(text("set local lock_timeout = '5s'"))
        try:
            with pytest.raises(DBAPIError) as exc:
                conn.execute(text("truncate audit_events"))
        finally:
            conn.rollback()  # TRUNCATE is transactional: should the trigger ever fail, nothing is lost
    assert "append-only" in str(exc.value.orig)
    assert org_rows(admin_engine, "audit_events", world.org_a) == before
