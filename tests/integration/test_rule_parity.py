"""Each rule the database enforces again has one source in backoffice/domain; its SQL copy in sql/rules.sql
must say the same for every combination of its arguments. These tests enumerate them all (every status,
role and move; amounts over a dense grid and random draws up to the column ceiling) in one query each,
as the role that calls it in production, and compare with the Python: the app role for those its own
statements and the guards running as the caller call, the owner role for those only SECURITY DEFINER
guards call (is_manager, milestone_amounts, withheld_bps: the app role may not execute them). The guards'
use of these functions is checked through the triggers themselves in test_engagement_guards.py and
test_review_guards.py."""

from __future__ import annotations

import itertools
import uuid

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backoffice.domain import engagements as rules
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.invoices import InvoiceStatus, can_move, milestone_amounts, withheld_bps
from backoffice.domain.roles import MANAGERS

ROLES = ["admin", "owner", "finance", "contractor", None]  # None: the system itself (no person)
ENGAGEMENT_STATUSES = [s.value for s in EngagementStatus]
MILESTONE_STATUSES = [s.value for s in MilestoneStatus]
MAX_AMOUNT = 10**15  # the amount columns' ceiling


def rows(engine, sql: str, params: dict):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_the_combinations_cover_every_status_of_the_domain():
    # A status added to the domain must show up here, so that the SQL copies below are checked for it.
    assert set(ENGAGEMENT_STATUSES) == {
        "draft",
        "awaiting_acceptance",
        "active",
        "paused",
        "completed",
        "declined",
        "cancelled",
    }
    assert set(MILESTONE_STATUSES) == {"planned", "submitted", "approved", "cancelled"}


def test_who_may_run_an_engagement_is_the_same_in_sql_and_python(admin_engine):
    got = dict(rows(admin_engine, "select r, is_manager(r) from unnest(cast(:r as text[])) as t(r)", {"r": ROLES}))
    assert got == {r: r in MANAGERS for r in ROLES}
    assert {r for r, ok in got.items() if ok} == {"admin", "owner"}


def test_who_decides_is_the_same_in_sql_and_python(app_engine):
    owner, other = uuid.uuid4(), uuid.uuid4()
    people = [owner, other, None]
    combos = list(itertools.product(ROLES, people, [owner, None]))
    got = rows(
        app_engine,
        "select r, u, o, can_decide(r, u, o) from unnest(cast(:roles as text[]), cast(:users as uuid[]),"
        " cast(:owners as uuid[])) as t(r, u, o)",
        {"roles": [c[0] for c in combos], "users": [c[1] for c in combos], "owners": [c[2] for c in combos]},
    )
    assert len(got) == len(combos) == 5 * 3 * 2
    for role, user, owner_id, decides in got:
        assert decides == rules.can_decide(role, user, owner_id), (role, user, owner_id)
    # And what that means, written out: an admin always, the engagement's own owner, nobody else.
    assert {(r, u) for r, u, o, d in got if d and o == owner} == {
        ("admin", owner),
        ("admin", other),
        ("admin", None),
        ("owner", owner),
    }


def test_where_work_is_reviewed_is_the_same_in_sql_and_python(app_engine):
    statuses = [*ENGAGEMENT_STATUSES, None, "nonsense"]
    got = dict(rows(app_engine, "select s, reviewable(s) from unnest(cast(:s as text[])) as t(s)", {"s": statuses}))
    assert got == {s: s in rules.REVIEWABLE for s in statuses}
    assert {s for s, ok in got.items() if ok} == {"active", "paused"}


def test_engagement_moves_and_who_makes_them_are_the_same_in_sql_and_python(app_engine):
    pairs = list(itertools.product(ENGAGEMENT_STATUSES, repeat=2))
    got = rows(
        app_engine,
        "select a, b, engagement_move_roles(a, b) from unnest(cast(:a as text[]), cast(:b as text[])) as t(a, b)",
        {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]},
    )
    assert len(got) == 49
    for source, target, roles in got:
        assert set(roles) == set(rules.engagement_move_roles(source, target)), (source, target)
    assert sum(1 for *_, roles in got if roles) == 10  # send, accept, decline, pause, resume, complete, 4 cancels


def test_milestone_moves_are_refused_alike_in_sql_and_python(app_engine):
    combos = list(itertools.product(MILESTONE_STATUSES, MILESTONE_STATUSES, ROLES, [*ENGAGEMENT_STATUSES, None]))
    got = rows(
        app_engine,
        "select a, b, r, e, milestone_move_refusal(a, b, r, e)"
        " from unnest(cast(:a as text[]), cast(:b as text[]), cast(:r as text[]), cast(:e as text[])) as t(a, b, r, e)",
        {k: [c[i] for c in combos] for i, k in enumerate("abre")},
    )
    assert len(got) == 4 * 4 * 5 * 8 == 640
    for source, target, role, engagement_status, refusal in got:
        expected = rules.milestone_move_refusal(source, target, role, engagement_status)
        assert refusal == (expected.value if expected else None), (source, target, role, engagement_status)
    allowed = {(a, b, r, e) for a, b, r, e, refusal in got if refusal is None and r is not None}
    assert allowed == {
        ("planned", "submitted", "contractor", "active"),
        *{
            ("submitted", to, r, e)
            for to in ("planned", "approved")
            for r in ("admin", "owner")
            for e in ("active", "paused")
        },
        *{("planned", "cancelled", r, e) for r in ("admin", "owner") for e in ("active", "paused")},
        # a later step of its payment's approval rejected it (issue 18): any approver's role
        *{("approved", "planned", r, e) for r in ("admin", "owner", "finance") for e in ("active", "paused")},
    }


def test_invoice_moves_are_the_same_in_sql_and_python(app_engine):
    statuses = [s.value for s in InvoiceStatus]
    assert set(statuses) == {"pending_approval", "approved", "exported", "paid", "void", "on_hold"}
    pairs = list(itertools.product(statuses, repeat=2))
    got = rows(
        app_engine,
        "select a, b, invoice_move_allowed(a, b) from unnest(cast(:a as text[]), cast(:b as text[])) as t(a, b)",
        {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]},
    )
    assert len(got) == 36
    for source, target, allowed in got:
        assert allowed == can_move(InvoiceStatus(source), InvoiceStatus(target)), (source, target)
    assert {(a, b) for a, b, ok in got if ok} == {
        ("pending_approval", "approved"),
        ("pending_approval", "void"),
        ("approved", "exported"),
        ("exported", "approved"),
        ("approved", "paid"),
        ("exported", "paid"),
        ("exported", "on_hold"),
        ("paid", "on_hold"),
        ("on_hold", "approved"),
    }


GRID_BPS = [0, 1, 333, 999, 1000, 1250, 2500, 4999, 5000, 5001, 9999, 10_000]


def test_an_approvals_amounts_are_the_same_in_sql_and_python_over_a_dense_grid(admin_engine):
    got = rows(
        admin_engine,
        "select g, r, f, (milestone_amounts(g, r, f)).* from generate_series(1, 2000) g,"
        " unnest(cast(:bps as int[])) r, unnest(cast(:bps as int[])) f",
        {"bps": GRID_BPS},
    )
    assert len(got) == 2000 * len(GRID_BPS) ** 2
    for gross, r_bps, f_bps, retainage, net, fee, total in got:
        a = milestone_amounts(gross, r_bps, f_bps)
        assert (retainage, net, fee, total) == (a.retainage, a.net, a.fee, a.total), (gross, r_bps, f_bps)


@settings(max_examples=150, deadline=None)
@given(
    gross=st.integers(min_value=1, max_value=MAX_AMOUNT),
    retainage=st.integers(min_value=0, max_value=10_000),
    fee=st.integers(min_value=0, max_value=10_000),
    released=st.booleans(),
)
@example(gross=MAX_AMOUNT, retainage=10_000, fee=10_000, released=False)
@example(gross=5, retainage=1000, fee=1000, released=True)
def test_an_approvals_amounts_are_the_same_in_sql_and_python_up_to_the_ceiling(
    admin_engine, gross, retainage, fee, released
):
    with admin_engine.connect() as conn:
        sql = conn.execute(
            text(
                "select (milestone_amounts(:g, cast(:r as int), cast(:f as int))).*,"
                " withheld_bps(cast(:r as int), :rel)"
            ),
            {"g": gross, "r": retainage, "f": fee, "rel": released},
        ).one()
    a = milestone_amounts(gross, retainage, fee)
    assert tuple(sql) == (a.retainage, a.net, a.fee, a.total, withheld_bps(retainage, released=released))
