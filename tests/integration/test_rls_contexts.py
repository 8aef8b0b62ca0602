"""Every table the web role can read, in every schema, under every context a hostile caller could set
(DESIGN.md section 5, issue 16): raw SQL as the app role sees nothing of organization A unless the context
is a real, accepted, active member of A.

The tables come from the catalog, not from a list here: a table added later is covered the day it is
created. For each one with an organization column, a context that is not entitled to A must count zero
of A's rows; the entitled control (A's admin) must count every row the owner role counts, so the test
cannot pass by reading nothing. The same holds for the users table (A's members are visible only to
people who share an organization with them).
"""

from __future__ import annotations

import uuid

import pytest
from kit.signin import act, claim, open_sign_in
from sqlalchemy import text

# Tables the app role may SELECT, in any schema but the catalogs', with the column naming their
# organization (none: the table has no organization column).
_READABLE = text(
    """
    select n.nspname as schema, c.relname as name,
           (select a.attname from pg_attribute a
             where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
               and a.attname in ('org_id', 'organization_id')
             limit 1) as org_column,
           c.relrowsecurity as rls, c.relforcerowsecurity as forced
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p', 'v', 'm')
       and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
       and (has_table_privilege(current_user, c.oid, 'SELECT')
            or has_any_column_privilege(current_user, c.oid, 'SELECT'))
     order by 1, 2
    """
)


@pytest.fixture
def readable(app_engine):
    with app_engine.connect() as conn:
        return [dict(r) for r in conn.execute(_READABLE).mappings()]


@pytest.fixture
def strangers(world, admin_engine):
    """People with some claim near org A but no right to it: a pending invitee (membership not accepted),
    and a member of A whose account was deactivated."""
    with admin_engine.begin() as conn:
        pending = conn.execute(
            text("insert into users (email, name) values (:e, 'Pat Pending') returning id"),
            {"e": f"pending-ctx-{world.suffix}@example.com"},
        ).scalar_one()
        conn.execute(
            text("insert into memberships (org_id, user_id, role) values (:org, :user, 'admin')"),
            {"org": world.org_a, "user": pending},
        )
        conn.execute(text("update users set is_active = false where id = :u"), {"u": world.finance.id})
    return {"pending": pending, "inactive": world.finance.id}


def hostile_contexts(world, strangers) -> dict[str, tuple[uuid.UUID | None, uuid.UUID | None, str | None]]:
    """(app.user_id, app.org_id, the sign-in presented) that must not reach org A. The database believes only
    the sign-in: a user id named beside none, or beside someone else's, is not that user."""
    return {
        "no context": (None, None, None),
        "org A without a user": (None, world.org_a, None),
        "a forged user id in org A": (uuid.UUID(int=0xBAD), world.org_a, None),
        "org A's id as the user (the old worker identity)": (world.org_a, world.org_a, None),
        "org B's id as the user, naming org A": (world.org_b, world.org_a, None),
        "org B's admin, signed in, naming org A": (world.admin_b.id, world.org_a, open_sign_in(world.admin_b.id)),
        "org B's contractor, signed in, naming org A": (
            world.contractor_z_user.id,
            world.org_a,
            open_sign_in(world.contractor_z_user.id),
        ),
        "someone in no organization, signed in, naming org A": (
            world.outsider.id,
            world.org_a,
            open_sign_in(world.outsider.id),
        ),
        "a pending invitee of org A, signed in": (
            strangers["pending"],
            world.org_a,
            open_sign_in(strangers["pending"]),
        ),
        "a deactivated member of org A, signed in before": (
            strangers["inactive"],
            world.org_a,
            open_sign_in(strangers["inactive"]),
        ),
        "org A's admin, named without a sign-in": (world.admin.id, world.org_a, None),
        "org A's admin, named beside org B's admin's sign-in": (
            world.admin.id,
            world.org_a,
            open_sign_in(world.admin_b.id),
        ),
        "org A's admin, with a sign-in that was ended": (
            world.admin.id,
            world.org_a,
            open_sign_in(world.admin.id, ended=True),
        ),
        "org A's admin, with a sign-in that expired": (
            world.admin.id,
            world.org_a,
            open_sign_in(world.admin.id, expired=True),
        ),
        "org A's admin, with a made-up token": (world.admin.id, world.org_a, "f" * 64),
    }


def count_of_org(session, table: dict, org_id) -> int:
    column = table["org_column"] if table["name"] != "organizations" else "id"
    return session.execute(
        text(f'select count(*) from "{table["schema"]}"."{table["name"]}" where {column} = :org'), {"org": org_id}
    ).scalar_one()


def test_every_table_the_web_role_can_read_has_row_level_security_forced(readable):
    assert readable, "the app role can read nothing at all: the catalog query is wrong"
    unprotected = [f"{t['schema']}.{t['name']}" for t in readable if not (t["rls"] and t["forced"])]
    assert unprotected == []


def test_the_web_role_can_read_nothing_outside_public(readable):
    # The job queue (procrastinate) and anything else is reached through functions, never read directly.
    assert sorted({t["schema"] for t in readable}) == ["public"]


def test_no_hostile_context_sees_a_row_of_another_organization(world, strangers, readable, app_sessions, admin_engine):
    org_tables = [t for t in readable if t["org_column"] or t["name"] == "organizations"]
    assert {"organizations", "engagements", "invoices", "audit_events"} <= {t["name"] for t in org_tables}
    with admin_engine.connect() as owner:
        truth = {t["name"]: count_of_org(owner, t, world.org_a) for t in org_tables}
    assert truth["organizations"] == 1 and truth["memberships"] >= 5  # A has rows to leak
    leaks = []
    with app_sessions() as session:
        for label, (user_id, org_id, token) in hostile_contexts(world, strangers).items():
            session.rollback()
            claim(session, user_id=user_id, org_id=org_id, token=token)
            for table in org_tables:
                if seen := count_of_org(session, table, world.org_a):
                    leaks.append(f"{label}: {seen} row(s) of {table['name']}")
        # The control: A's admin sees every row of A the owner role sees in the tables an admin reads.
        session.rollback()
        act(session, user_id=world.admin.id, org_id=world.org_a)
        assert (
            count_of_org(session, next(t for t in org_tables if t["name"] == "memberships"), world.org_a)
            == (truth["memberships"])
        )
        assert count_of_org(session, next(t for t in org_tables if t["name"] == "organizations"), world.org_a) == 1
    assert leaks == []


def test_no_hostile_context_sees_the_members_of_another_organization(world, strangers, app_sessions):
    members_of_a = [world.admin.id, world.owner.id, world.contractor_x_user.id, world.contractor_y_user.id]
    with app_sessions() as session:
        for label, (user_id, org_id, token) in hostile_contexts(world, strangers).items():
            session.rollback()
            claim(session, user_id=user_id, org_id=org_id, token=token)
            seen = session.execute(
                text("select count(*) from users where id = any(:ids)"), {"ids": members_of_a}
            ).scalar_one()
            assert seen == 0, label
        session.rollback()
        act(session, user_id=world.admin.id, org_id=world.org_a)
        assert (
            session.execute(text("select count(*) from users where id = any(:ids)"), {"ids": members_of_a}).scalar_one()
            == 4
        )
