"""Row-level security for engagements, milestones, change orders and their lines, with raw SQL as the
app role (DESIGN.md section 5).

Every statement the tests judge is plain ``text()`` SQL run by the app role, so only the database stands
between a tenant (or a contractor) and another's rows: table privileges first, then the policies, then the
composite foreign keys that carry ``contractor_id`` down from the engagement. The owner role
(``admin_engine``, BYPASSRLS) seeds the rows and is the ground truth the app role is compared with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

TABLES = ["engagements", "milestones", "change_orders", "change_order_lines"]

RLS_VIOLATION = "violates row-level security policy"
PERMISSION_DENIED = "permission denied"


# --- seeding (owner role) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """One active engagement with two milestones, a change order and a line, for one contractor."""

    org_id: uuid.UUID
    contractor_id: uuid.UUID
    engagement: uuid.UUID
    milestones: tuple[uuid.UUID, uuid.UUID]
    change_order: uuid.UUID
    line: uuid.UUID


def seed_engagement(conn, *, org_id, contractor_id, owner_id, staff_id, responder_id, title: str) -> Seeded:
    """Build an engagement the legal way, as the owner role: a draft with its milestones, sent, accepted,
    then a change order with one line. The guards check every move, so this is also what they allow."""
    engagement = conn.execute(
        text(
            "insert into engagements (org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
            " payment_terms_days, created_by)"
            " values (:org, :c, :owner, :title, 'USD', 1000, 30, :staff) returning id"
        ),
        {"org": org_id, "c": contractor_id, "owner": owner_id, "title": title, "staff": staff_id},
    ).scalar_one()
    milestones = tuple(
        conn.execute(
            text(
                "insert into milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date)"
                " values (:org, :c, :e, :seq, :title, :amount, date '2030-01-01' + :seq) returning id"
            ),
            {
                "org": org_id,
                "c": contractor_id,
                "e": engagement,
                "seq": seq,
                "title": f"{title} part {seq}",
                "amount": 100_000 * seq,
            },
        ).scalar_one()
        for seq in (1, 2)
    )
    conn.execute(
        text("update engagements set status = 'awaiting_acceptance', sent_at = now(), sent_by = :staff where id = :e"),
        {"e": engagement, "staff": staff_id},
    )
    conn.execute(
        text("update engagements set status = 'active', responded_at = now(), responded_by = :who where id = :e"),
        {"e": engagement, "who": responder_id},
    )
    change_order = conn.execute(
        text(
            "insert into change_orders (org_id, contractor_id, engagement_id, number, reason, contract_value_before,"
            " contract_value_after, created_by)"
            " values (:org, :c, :e, 1, 'More work', 300000, 320000, :staff) returning id"
        ),
        {"org": org_id, "c": contractor_id, "e": engagement, "staff": staff_id},
    ).scalar_one()
    # The line first: milestones_guard changes a sent engagement's milestone only as a line records it.
    line = conn.execute(
        text(
            "insert into change_order_lines"
            " (org_id, contractor_id, change_order_id, line_no, kind, milestone_id, before, after)"
            " values (:org, :c, :co, 1, 'adjust', :m, '{\"amount_minor\": 100000}', '{\"amount_minor\": 120000}')"
            " returning id"
        ),
        {"org": org_id, "c": contractor_id, "co": change_order, "m": milestones[0]},
    ).scalar_one()
    conn.execute(text("update milestones set amount_minor = 120000 where id = :m"), {"m": milestones[0]})
    return Seeded(org_id, contractor_id, engagement, milestones, change_order, line)


@pytest.fixture
def seeded(world, admin_engine) -> dict[str, Seeded]:
    """Engagements for contractor X and contractor Y in org A, and for contractor Z in org B, each with
    milestones, a change order and a line: {"x": ..., "y": ..., "z": ...}."""
    with admin_engine.begin() as conn:
        return {
            "x": seed_engagement(
                conn,
                org_id=world.org_a,
                contractor_id=world.contractor_x,
                owner_id=world.owner.id,
                staff_id=world.admin.id,
                responder_id=world.contractor_x_user.id,
                title="X work",
            ),
            "y": seed_engagement(
                conn,
                org_id=world.org_a,
                contractor_id=world.contractor_y,
                owner_id=world.owner.id,
                staff_id=world.admin.id,
                responder_id=world.contractor_y_user.id,
                title="Y work",
            ),
            "z": seed_engagement(
                conn,
                org_id=world.org_b,
                contractor_id=world.contractor_z,
                owner_id=world.admin_b.id,
                staff_id=world.admin_b.id,
                responder_id=world.contractor_z_user.id,
                title="Z work",
            ),
        }


# --- helpers --------------------------------------------------------------------------------------------


def truth(admin_engine, table: str, where: str = "true", **params) -> list[dict]:
    """Rows of ``table`` matching ``where``, as the owner role sees them (RLS bypassed)."""
    with admin_engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(text(f"select * from {table} where {where} order by id"), params).mappings()
        ]


def org_snapshot(admin_engine, org_id) -> dict[str, list[dict]]:
    return {table: truth(admin_engine, table, "org_id = :org", org=org_id) for table in TABLES}


def visible_ids(session, table: str, where: str = "true", **params) -> set:
    return set(session.execute(text(f"select id from {table} where {where}"), params).scalars())


def refused(session, sql: str, params: dict, reason: str, sqlstate: str = "42501") -> str:
    """Run ``sql`` expecting the database to refuse it with ``sqlstate`` and ``reason`` in the message."""
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
    session.rollback()
    message = str(exc.value.orig)
    assert exc.value.orig.sqlstate == sqlstate, message
    assert reason in message, message
    return message


def insert_sql(table: str) -> str:
    """An INSERT of one plausible row into ``table`` in org :org for contractor :c, under engagement :e,
    change order :co and milestone :m, by user :me."""
    return {
        "engagements": (
            "insert into engagements (org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
            " payment_terms_days, created_by) values (:org, :c, :me, 'Planted engagement', 'USD', 0, 0, :me)"
        ),
        "milestones": (
            "insert into milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date)"
            " values (:org, :c, :e, 99, 'Planted milestone', 1, date '2030-06-01')"
        ),
        "change_orders": (
            "insert into change_orders (org_id, contractor_id, engagement_id, number, reason, contract_value_before,"
            " contract_value_after, created_by) values (:org, :c, :e, 99, 'Planted', 1, 2, :me)"
        ),
        "change_order_lines": (
            "insert into change_order_lines"
            " (org_id, contractor_id, change_order_id, line_no, kind, milestone_id, before, after)"
            ' values (:org, :c, :co, 99, \'adjust\', :m, \'{"title": "a"}\', \'{"title": "b"}\')'
        ),
    }[table]


def insert_params(seed: Seeded, me) -> dict:
    return {
        "org": seed.org_id,
        "c": seed.contractor_id,
        "e": seed.engagement,
        "co": seed.change_order,
        "m": seed.milestones[1],
        "me": me,
    }


# Statements the app role holds the privilege for (engagements: UPDATE; milestones: UPDATE and DELETE).
UPDATES = {
    "engagements": "update engagements set title = 'Taken over', owner_user_id = :me where {where}",
    "milestones": "update milestones set title = 'Taken over', amount_minor = 999999999 where {where}",
}
DELETES = {
    "milestones": "delete from milestones where {where}",
}
# Statements the app role holds no privilege for at all: refused before any policy is consulted.
UNGRANTED = {
    "engagements: delete": "delete from engagements where {where}",
    "change_orders: update": "update change_orders set reason = 'Rewritten', contract_value_after = 1 where {where}",
    "change_orders: delete": "delete from change_orders where {where}",
    "change_order_lines: update": "update change_order_lines set after = '{{\"amount_minor\": 1}}' where {where}",
    "change_order_lines: delete": "delete from change_order_lines where {where}",
}


# --- (a) no context, no membership ----------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_a_session_without_context_sees_no_engagement_rows(world, seeded, app_session, admin_engine, table):
    assert truth(admin_engine, table, "org_id = :org", org=world.org_a)  # there is something to hide
    assert app_session.execute(text(f"select count(*) from {table}")).scalar_one() == 0


@pytest.mark.parametrize("table", TABLES)
def test_a_session_with_an_empty_context_sees_no_engagement_rows(world, seeded, act_as, table):
    s = act_as(None, None)
    assert s.execute(text(f"select count(*) from {table}")).scalar_one() == 0


@pytest.mark.parametrize(
    ("who", "org"),
    [("outsider", "org_a"), ("outsider", None), ("admin_b", "org_a"), ("contractor_z_user", "org_a"), ("admin", None)],
)
@pytest.mark.parametrize("table", TABLES)
def test_a_user_without_a_membership_in_the_named_org_sees_no_engagement_rows(world, seeded, act_as, who, org, table):
    s = act_as(getattr(world, who).id, getattr(world, org) if org else None)
    assert s.execute(text(f"select count(*) from {table}")).scalar_one() == 0


@pytest.mark.parametrize("table", TABLES)
def test_a_user_without_a_membership_cannot_insert_into_org_a(world, seeded, act_as, admin_engine, table):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.outsider.id, world.org_a)
    message = refused(s, insert_sql(table), insert_params(seeded["x"], world.outsider.id), RLS_VIOLATION)
    assert f'table "{table}"' in message
    assert org_snapshot(admin_engine, world.org_a) == before


# --- (b) org B's admin against org A --------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_admin_of_org_a_sees_every_org_a_row(world, seeded, act_as, admin_engine, table):
    """The control for the tests below: org A's rows exist and are all visible to their own admin."""
    expected = {r["id"] for r in truth(admin_engine, table, "org_id = :org", org=world.org_a)}
    assert len(expected) >= 2
    s = act_as(world.admin.id, world.org_a)
    assert visible_ids(s, table) == expected


@pytest.mark.parametrize("table", TABLES)
def test_admin_of_org_b_sees_none_of_org_a_rows_only_its_own(world, seeded, act_as, admin_engine, table):
    s = act_as(world.admin_b.id, world.org_b)
    assert visible_ids(s, table, "org_id = :org", org=world.org_a) == set()
    own = {r["id"] for r in truth(admin_engine, table, "org_id = :org", org=world.org_b)}
    assert own and visible_ids(s, table) == own


@pytest.mark.parametrize("table", TABLES)
def test_admin_of_org_b_cannot_look_org_a_rows_up_by_id(world, seeded, act_as, table):
    x = seeded["x"]
    ids = {
        "engagements": x.engagement,
        "milestones": x.milestones[0],
        "change_orders": x.change_order,
        "change_order_lines": x.line,
    }
    s = act_as(world.admin_b.id, world.org_b)
    assert visible_ids(s, table, "id = :id", id=ids[table]) == set()


@pytest.mark.parametrize("table", TABLES)
def test_admin_of_org_b_cannot_insert_a_row_carrying_org_a_org_id(world, seeded, act_as, admin_engine, table):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    message = refused(s, insert_sql(table), insert_params(seeded["x"], world.admin_b.id), RLS_VIOLATION)
    assert f'table "{table}"' in message
    assert org_snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize("table", ["milestones", "change_orders"])
def test_admin_of_org_b_cannot_hang_its_own_rows_under_an_org_a_engagement(world, seeded, act_as, admin_engine, table):
    """org_id says B, but the engagement is A's: the composite foreign key finds no (B, Z, A's engagement)."""
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    params = insert_params(seeded["z"], world.admin_b.id) | {"e": seeded["x"].engagement}
    refused(s, insert_sql(table), params, "foreign key", sqlstate="23503")
    assert org_snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize("table", list(UPDATES))
def test_admin_of_org_b_updating_org_a_rows_changes_nothing(world, seeded, act_as, admin_engine, table):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    result = s.execute(text(UPDATES[table].format(where="org_id = :org")), {"org": world.org_a, "me": world.admin_b.id})
    assert result.rowcount == 0
    s.commit()
    assert org_snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize("table", list(DELETES))
def test_admin_of_org_b_deleting_org_a_rows_changes_nothing(world, seeded, act_as, admin_engine, table):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.admin_b.id, world.org_b)
    assert s.execute(text(DELETES[table].format(where="org_id = :org")), {"org": world.org_a}).rowcount == 0
    s.commit()
    assert org_snapshot(admin_engine, world.org_a) == before


def test_admin_of_org_b_cannot_move_its_rows_into_org_a(world, seeded, act_as, admin_engine):
    """An UPDATE that rewrites org_id to A is refused before any row is read: the app role may update
    neither table's org_id (column grants). Behind that, the org scope's WITH CHECK and milestones_guard
    (a milestone stays with its engagement) would refuse it too."""
    before = org_snapshot(admin_engine, world.org_a)
    for sql in (
        "update engagements set org_id = :org where id = :e",
        "update milestones set org_id = :org where engagement_id = :e",
    ):
        s = act_as(world.admin_b.id, world.org_b)
        refused(s, sql, {"org": world.org_a, "e": seeded["z"].engagement}, PERMISSION_DENIED)
    assert org_snapshot(admin_engine, world.org_a) == before


# --- (c) privileges the app role does not hold ----------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "admin_b", "owner"])
@pytest.mark.parametrize("what", list(UNGRANTED))
def test_app_role_has_no_privilege_to_delete_engagements_or_change_change_orders(
    world, seeded, act_as, admin_engine, who, what
):
    """Change orders and their lines are written once and never changed; engagements are cancelled, not
    deleted. Not a matter of tenancy: refused even to an admin in its own org."""
    table = what.split(":")[0]
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(getattr(world, who).id, world.org_b if who == "admin_b" else world.org_a)
    if who != "admin_b":
        assert visible_ids(s, table)  # the rows are visible, so only the privilege stands in the way
    refused(s, UNGRANTED[what].format(where="org_id = :org"), {"org": world.org_a}, PERMISSION_DENIED)
    assert org_snapshot(admin_engine, world.org_a) == before


# --- (d) contractors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "own", "other"), [("contractor_x_user", "x", "y"), ("contractor_y_user", "y", "x")])
@pytest.mark.parametrize("table", TABLES)
def test_contractor_sees_its_own_rows_and_none_of_another_contractors(
    world, seeded, act_as, admin_engine, who, own, other, table
):
    mine = {
        r["id"]
        for r in truth(
            admin_engine, table, "org_id = :org and contractor_id = :c", org=world.org_a, c=seeded[own].contractor_id
        )
    }
    theirs = {r["id"] for r in truth(admin_engine, table, "contractor_id = :c", c=seeded[other].contractor_id)}
    assert mine and theirs
    s = act_as(getattr(world, who).id, world.org_a)
    assert visible_ids(s, table) == mine
    assert visible_ids(s, table, "id = any(:ids)", ids=list(theirs)) == set()


def test_contractor_cannot_reach_another_contractors_rows_through_a_join(world, seeded, act_as):
    s = act_as(world.contractor_y_user.id, world.org_a)
    rows = s.execute(
        text(
            "select l.id from change_order_lines l join milestones m on m.id = l.milestone_id"
            " join engagements e on e.id = m.engagement_id where e.contractor_id = :x"
        ),
        {"x": world.contractor_x},
    ).all()
    assert rows == []


@pytest.mark.parametrize("table", TABLES)
def test_contractor_cannot_insert_engagement_rows_even_for_itself(world, seeded, act_as, admin_engine, table):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.contractor_x_user.id, world.org_a)
    message = refused(s, insert_sql(table), insert_params(seeded["x"], world.contractor_x_user.id), RLS_VIOLATION)
    assert f'table "{table}"' in message
    assert org_snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "sql",
    [
        "update milestones set amount_minor = 999999999 where id = :m",
        "update milestones set status = 'submitted' where id = :m",
        "update milestones set title = 'Renamed' where engagement_id = :e",
        "delete from milestones where engagement_id = :e",
    ],
)
def test_contractor_cannot_change_its_own_milestones(world, seeded, act_as, admin_engine, sql):
    """The contractor's only write to a milestone is marking it submitted with a submission (the guard
    refuses anything else, with an error); deleting is not even visible to it (no rows)."""
    x = seeded["x"]
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert visible_ids(s, "milestones", "engagement_id = :e", e=x.engagement)  # it sees them
    try:
        changed = s.execute(text(sql), {"m": x.milestones[1], "e": x.engagement}).rowcount
        s.commit()
    except DBAPIError:
        s.rollback()
        changed = 0
    assert changed == 0
    assert org_snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "sql",
    [
        "update engagements set title = 'Taken over' where id = :e",
        "update engagements set status = 'cancelled', cancelled_at = now() where id = :e",
        "update engagements set status = 'paused' where id = :e",
        "update engagements set owner_user_id = :me where contractor_id = :c",
    ],
)
def test_contractor_cannot_update_another_contractors_engagement(world, seeded, act_as, admin_engine, sql):
    y = seeded["y"]
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert (
        s.execute(text(sql), {"e": y.engagement, "c": y.contractor_id, "me": world.contractor_x_user.id}).rowcount == 0
    )
    s.commit()
    assert org_snapshot(admin_engine, world.org_a) == before


def test_contractor_cannot_accept_another_contractors_work_request(world, act_as, admin_engine):
    with admin_engine.begin() as conn:
        e = conn.execute(
            text(
                "insert into engagements (org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
                " payment_terms_days, created_by) values (:org, :c, :owner, 'For Y', 'USD', 0, 30, :owner) returning id"
            ),
            {"org": world.org_a, "c": world.contractor_y, "owner": world.owner.id},
        ).scalar_one()
        conn.execute(
            text(
                "update engagements set status = 'awaiting_acceptance', sent_at = now(), sent_by = :owner where id = :e"
            ),
            {"e": e, "owner": world.owner.id},
        )
    s = act_as(world.contractor_x_user.id, world.org_a)
    result = s.execute(
        text("update engagements set status = 'active', responded_at = now(), responded_by = :me where id = :e"),
        {"e": e, "me": world.contractor_x_user.id},
    )
    assert result.rowcount == 0
    s.commit()
    assert truth(admin_engine, "engagements", "id = :e", e=e)[0]["status"] == "awaiting_acceptance"
    # the control: its own contractor's user may
    s = act_as(world.contractor_y_user.id, world.org_a)
    result = s.execute(
        text("update engagements set status = 'active', responded_at = now(), responded_by = :me where id = :e"),
        {"e": e, "me": world.contractor_y_user.id},
    )
    assert result.rowcount == 1
    s.rollback()


def test_contractor_z_in_org_b_sees_only_its_own_rows(world, seeded, act_as, admin_engine):
    s = act_as(world.contractor_z_user.id, world.org_b)
    for table in TABLES:
        expected = {r["id"] for r in truth(admin_engine, table, "contractor_id = :c", c=world.contractor_z)}
        assert expected and visible_ids(s, table) == expected, table


# --- (e) finance ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_finance_sees_every_row_of_its_org(world, seeded, act_as, admin_engine, table):
    expected = {r["id"] for r in truth(admin_engine, table, "org_id = :org", org=world.org_a)}
    s = act_as(world.finance.id, world.org_a)
    assert expected and visible_ids(s, table) == expected


@pytest.mark.parametrize("table", TABLES)
def test_finance_cannot_insert_engagement_rows(world, seeded, act_as, admin_engine, table):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.finance.id, world.org_a)
    message = refused(s, insert_sql(table), insert_params(seeded["x"], world.finance.id), RLS_VIOLATION)
    assert f'table "{table}"' in message
    assert org_snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "sql",
    [
        UPDATES["engagements"].format(where="org_id = :org"),
        "update engagements set status = 'paused' where org_id = :org",
        UPDATES["milestones"].format(where="org_id = :org"),
        "update milestones set status = 'submitted' where org_id = :org",
        DELETES["milestones"].format(where="org_id = :org"),
    ],
)
def test_finance_cannot_update_engagements_or_milestones(world, seeded, act_as, admin_engine, sql):
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.finance.id, world.org_a)
    assert s.execute(text(sql), {"org": world.org_a, "me": world.finance.id}).rowcount == 0
    s.commit()
    assert org_snapshot(admin_engine, world.org_a) == before


# --- (f) staff writes (the controls) and the composite foreign keys -------------------------------------


@pytest.mark.parametrize("who", ["admin", "owner"])
@pytest.mark.parametrize("table", TABLES)
def test_staff_may_insert_rows_in_their_own_org(world, seeded, act_as, admin_engine, who, table):
    """The control for the refusals above: the same statements succeed for an admin or a project owner."""
    before = org_snapshot(admin_engine, world.org_a)
    me = getattr(world, who).id
    s = act_as(me, world.org_a)
    s.execute(text(insert_sql(table)), insert_params(seeded["x"], me))
    s.rollback()
    assert org_snapshot(admin_engine, world.org_a) == before


def test_staff_may_update_engagements_and_milestones_in_their_own_org(world, seeded, act_as):
    s = act_as(world.owner.id, world.org_a)
    assert (
        s.execute(
            text(UPDATES["engagements"].format(where="org_id = :org")), {"org": world.org_a, "me": world.owner.id}
        ).rowcount
        == 2
    )
    # A sent engagement's milestone changes its terms only as a change order line of the same transaction
    # records it (milestones_guard), so the control writes a change order first, as the service would.
    s.execute(
        text(
            "insert into change_orders (org_id, contractor_id, engagement_id, number, reason, contract_value_before,"
            " contract_value_after, created_by)"
            " select org_id, contractor_id, id, 2, 'Control', 0, 0, :me from engagements where org_id = :org"
        ),
        {"org": world.org_a, "me": world.owner.id},
    )
    s.execute(
        text(
            "insert into change_order_lines"
            " (org_id, contractor_id, change_order_id, line_no, kind, milestone_id, before, after)"
            " select m.org_id, m.contractor_id, c.id, m.seq, 'adjust', m.id,"
            "        jsonb_build_object('title', m.title, 'amount_minor', m.amount_minor),"
            '        \'{"title": "Taken over", "amount_minor": 999999999}\''
            "   from milestones m join change_orders c on c.engagement_id = m.engagement_id and c.number = 2"
            "  where m.org_id = :org"
        ),
        {"org": world.org_a},
    )
    assert s.execute(text(UPDATES["milestones"].format(where="org_id = :org")), {"org": world.org_a}).rowcount == 4
    s.rollback()


@pytest.mark.parametrize(
    ("table", "params"),
    [
        # a milestone naming contractor Y under contractor X's engagement
        ("milestones", lambda w, s: insert_params(s["x"], w.admin.id) | {"c": w.contractor_y}),
        # a change order naming contractor Y under contractor X's engagement
        ("change_orders", lambda w, s: insert_params(s["x"], w.admin.id) | {"c": w.contractor_y}),
        # a line of X's change order about Y's milestone
        ("change_order_lines", lambda w, s: insert_params(s["x"], w.admin.id) | {"m": s["y"].milestones[0]}),
        # a line of Y's change order (as Y's) about X's milestone
        ("change_order_lines", lambda w, s: insert_params(s["y"], w.admin.id) | {"m": s["x"].milestones[0]}),
    ],
)
def test_rows_below_an_engagement_cannot_name_another_contractor(world, seeded, act_as, admin_engine, table, params):
    """contractor_id is carried down by composite foreign keys: a row cannot drift to another contractor,
    which would show it to that contractor's user."""
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.admin.id, world.org_a)
    refused(s, insert_sql(table), params(world, seeded), "foreign key", sqlstate="23503")
    assert org_snapshot(admin_engine, world.org_a) == before


def test_a_milestone_cannot_be_moved_to_another_contractor_by_update(world, seeded, act_as, admin_engine):
    """The app role may not update a milestone's contractor_id (column grants); the owner role, which may,
    is stopped by the composite foreign key."""
    before = org_snapshot(admin_engine, world.org_a)
    s = act_as(world.admin.id, world.org_a)
    refused(
        s,
        "update milestones set contractor_id = :c where id = :m",
        {"c": world.contractor_y, "m": seeded["x"].milestones[1]},
        PERMISSION_DENIED,
    )
    with admin_engine.connect() as conn:
        refused(
            conn,
            "update milestones set contractor_id = :c where id = :m",
            {"c": world.contractor_y, "m": seeded["x"].milestones[1]},
            "foreign key",
            sqlstate="23503",
        )
    assert org_snapshot(admin_engine, world.org_a) == before
