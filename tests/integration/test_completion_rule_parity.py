"""Completion billing's rules in backoffice/domain/completion.py and their SQL twins in sql/completion.sql say the same
for every combination of their arguments (issue 20; DESIGN.md section 4). The guards call the twins; the services and
pages call the Python. Each is compared over an enumerated grid and random draws up to the amount columns' ceiling,
and held to a few answers written out here (STYLE.md: expected values come from outside the code under test).

The twins are the owner's, called only by the SECURITY DEFINER guards, so they are called here as the owner role
(the web role may not execute them: test_privileges.py); proposal_task_pool, which the proposals' commit checks call as
the contractor's user, is called as the owner role over a generated set of projects and as the web role on one.
"""

from __future__ import annotations

import itertools
import uuid

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backoffice.domain import completion as rules
from backoffice.domain import projects as project_rules
from backoffice.domain.invoices import InvoiceKind

MAX_AMOUNT = 10**15  # the amount columns' ceiling
GRID_BPS = [0, 1, 333, 999, 1000, 1200, 1250, 2500, 3333, 4999, 5000]


def rows(engine, sql: str, params: dict):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


# --- the advance ------------------------------------------------------------------------------------------------------


def test_the_advance_is_the_same_in_sql_and_python_over_a_dense_grid(admin_engine):
    got = rows(
        admin_engine,
        "select v, b, completion_advance(v, b) from generate_series(cast(1 as bigint), 3000) v,"
        " unnest(cast(:bps as int[])) b",
        {"bps": GRID_BPS},
    )
    assert len(got) == 3000 * len(GRID_BPS)
    mismatches = [(v, b, a) for v, b, a in got if a != rules.advance_amount(v, b)]
    assert mismatches == []


def test_the_advance_rounds_half_up_as_written_out(admin_engine):
    # value, rate (bps) -> advance: 12% of 10,000.00; half a cent up; just under half down; the limits
    written_out = {
        (1_000_000, 1200): 120_000,
        (1, 5000): 1,  # 0.5 -> 1
        (3, 1667): 1,  # 0.5001 -> 1
        (2, 2499): 0,  # 0.4998 -> 0
        (99_999, 1250): 12_500,  # 12,499.875 -> 12,500
        (10_001, 5000): 5_001,  # 5,000.5 -> 5,001
        (MAX_AMOUNT, 5000): MAX_AMOUNT // 2,
        (123_456, 0): 0,
    }
    combos = list(written_out)
    got = rows(
        admin_engine,
        "select completion_advance(v, b) from unnest(cast(:v as bigint[]), cast(:b as int[])) with ordinality"
        " as t(v, b, n) order by n",
        {"v": [v for v, _ in combos], "b": [b for _, b in combos]},
    )
    assert {c: a for c, (a,) in zip(combos, got, strict=True)} == written_out
    assert {(v, b): rules.advance_amount(v, b) for v, b in combos} == written_out


@settings(max_examples=200, deadline=None)
@given(
    value=st.integers(min_value=1, max_value=MAX_AMOUNT), bps=st.integers(min_value=0, max_value=rules.ADVANCE_MAX_BPS)
)
@example(value=MAX_AMOUNT, bps=rules.ADVANCE_MAX_BPS)
@example(value=1, bps=1)
def test_the_advance_is_the_same_in_sql_and_python_up_to_the_ceiling(admin_engine, value, bps):
    (got,) = rows(admin_engine, "select completion_advance(:v, cast(:b as int))", {"v": value, "b": bps})[0]
    assert got == rules.advance_amount(value, bps)
    # and what the tasks share is never negative, and never more than the value
    assert 0 < value - got <= value


# --- which kinds withhold retainage and charge the fee ----------------------------------------------------------------

WITHHOLDS_WRITTEN_OUT = {
    "milestone": True,
    "retainage_release": False,
    "advance": False,
    "completion": True,
    "final": True,
}


def test_which_kinds_withhold_is_the_same_in_sql_and_python(admin_engine):
    kinds = [k.value for k in InvoiceKind]
    assert sorted(kinds) == sorted(WITHHOLDS_WRITTEN_OUT)  # a kind added to the domain shows up here
    probes = [*kinds, None, "nonsense", "Completion"]
    got = dict(
        rows(admin_engine, "select k, invoice_kind_withholds(k) from unnest(cast(:k as text[])) k", {"k": probes})
    )
    expected = {**WITHHOLDS_WRITTEN_OUT, None: False, "nonsense": False, "Completion": False}
    assert got == expected
    assert {k: rules.withholds(k) for k in probes} == expected


# --- the final payment and invariant 6 -------------------------------------------------------------------------------

AMOUNTS = [0, 1, 2, 99, 100, 119_999, 120_000, 120_001, 999_999, 1_000_000, 1_000_001, MAX_AMOUNT]


def test_the_final_payment_is_the_same_in_sql_and_python(admin_engine):
    combos = list(itertools.product(AMOUNTS, AMOUNTS))
    got = rows(
        admin_engine,
        "select v, b, completion_final_amount(v, b) from unnest(cast(:v as bigint[]), cast(:b as bigint[])) as t(v, b)",
        {"v": [v for v, _ in combos], "b": [b for _, b in combos]},
    )
    assert len(got) == len(combos)
    assert [(v, b, f) for v, b, f in got if f != rules.final_amount(v, b)] == []
    assert rules.final_amount(1_000_000, 720_000) == 280_000  # 10,000.00 less an advance and a task invoice


def test_invariant_6_is_judged_alike_in_sql_and_python(admin_engine):
    combos = list(itertools.product(AMOUNTS, AMOUNTS, [False, True]))
    got = rows(
        admin_engine,
        "select completion_billed_problem(v, b, c) from unnest(cast(:v as bigint[]), cast(:b as bigint[]),"
        " cast(:c as boolean[])) with ordinality as t(v, b, c, n) order by n",
        {"v": [c[0] for c in combos], "b": [c[1] for c in combos], "c": [c[2] for c in combos]},
    )
    in_sql = {combo: problem for combo, (problem,) in zip(combos, got, strict=True)}
    in_python = {(v, b, c): rules.billed_problem(v, b, completed=c) for v, b, c in combos}
    assert in_sql == in_python
    # written out: under way, at most the value; completed, exactly the value
    assert {in_sql[(1_000_000, b, c)] for b in (0, 999_999, 1_000_000) for c in (False,)} == {None}
    assert in_sql[(1_000_000, 1_000_001, False)] == "its invoices would exceed the contract value"
    assert in_sql[(1_000_000, 1_000_001, True)] == "its invoices would exceed the contract value"
    assert in_sql[(1_000_000, 999_999, True)] == "a completed engagement's invoices add up to its contract value"
    assert in_sql[(1_000_000, 1_000_000, True)] is None


# --- the schedule -----------------------------------------------------------------------------------------------------

VALUES = [None, -1, 0, 1, 1_000_000, MAX_AMOUNT]
ADVANCES = [0, 1, 120_000]
TASK_LISTS = [
    [],
    [1],
    [880_000],
    [440_000, 440_000],
    [300_000, 300_000, 280_000],
    [300_000, 300_000, 280_001],
    [1_000_000],
    [999_999],
    [MAX_AMOUNT - 120_000],
]


def test_whether_the_tasks_share_the_value_less_the_advance_is_said_alike_in_sql_and_python(admin_engine):
    combos = list(itertools.product(VALUES, ADVANCES, range(len(TASK_LISTS))))
    got = rows(
        admin_engine,
        "select completion_schedule_problem(v, a, n, t) from unnest(cast(:v as bigint[]), cast(:a as bigint[]),"
        " cast(:n as int[]), cast(:t as bigint[])) with ordinality as x(v, a, n, t, i) order by i",
        {
            "v": [c[0] for c in combos],
            "a": [c[1] for c in combos],
            "n": [len(TASK_LISTS[c[2]]) for c in combos],
            "t": [sum(TASK_LISTS[c[2]]) for c in combos],
        },
    )
    in_sql = {combo: problem for combo, (problem,) in zip(combos, got, strict=True)}
    in_python = {(v, a, i): rules.schedule_problem(v, a, TASK_LISTS[i]) for v, a, i in combos}
    assert in_sql == in_python
    # written out: the value, the advance and the task list (by its index) that share it exactly
    assert {c for c, p in in_sql.items() if p is None} == {
        (1_000_000, 120_000, 2),
        (1_000_000, 120_000, 3),
        (1_000_000, 120_000, 4),
        (1_000_000, 0, 6),
        (1_000_000, 1, 7),
        (MAX_AMOUNT, 120_000, 8),
        (1, 0, 1),  # a contract of one cent, no advance, one task of one cent
    }
    assert in_sql[(1_000_000, 120_000, 5)] == (
        "the tasks add up to 880001 but must add up to the contract value less the advance, 880000"
    )
    assert in_sql[(None, 0, 1)] == in_sql[(0, 0, 1)] == "Enter the contract value."
    assert in_sql[(1_000_000, 0, 0)] == "Add at least one task."
    # the SQL is given the count and the total, the Python the list: the NULL sum of no task counts as none
    (none,) = rows(admin_engine, "select completion_schedule_problem(1000000, 0, null, null)", {})[0]
    assert none == rules.schedule_problem(1_000_000, 0, []) == "Add at least one task."


# --- what a proposal's milestones share ------------------------------------------------------------------------------

PRICES = [1, 2, 3, 7, 99, 100, 101, 12_345, 99_999, 1_000_000, 1_000_001, MAX_AMOUNT]
PROJECT_BPS = [None, *GRID_BPS]  # None: a milestone project, which takes no advance


def test_what_a_proposals_milestones_share_is_the_same_in_sql_and_python(admin_engine, world):
    """One project per rate (None: billed per milestone) with a proposal per price, written and read in one
    transaction of the owner role and rolled back."""
    combos = list(itertools.product(PROJECT_BPS, PRICES))
    with admin_engine.connect() as conn:
        conn.begin()
        category = conn.execute(
            text("insert into project_categories (org_id, name) values (:o, 'Parity') returning id"), {"o": world.org_a}
        ).scalar_one()
        in_sql = {}
        for bps in PROJECT_BPS:
            project = conn.execute(
                text(
                    "insert into projects (org_id, title, category_id, currency, deadline, owner_user_id, created_by,"
                    " billing_mode, advance_bps, audience)"
                    " values (:o, 'Parity', :c, 'USD', current_date + 30, :me, :me, :mode, :bps, 'all') returning id"
                ),
                {
                    "o": world.org_a,
                    "c": category,
                    "me": world.owner.id,
                    "bps": bps,
                    "mode": "milestone" if bps is None else "completion",
                },
            ).scalar_one()
            for price in PRICES:
                # one proposal per contractor and project: a contractor of its own for each price
                contractor = conn.execute(
                    text("insert into contractors (org_id, legal_name, email) values (:o, :n, :e) returning id"),
                    {"o": world.org_a, "n": f"Parity {bps} {price}", "e": f"parity-{uuid.uuid4().hex[:8]}@example.com"},
                ).scalar_one()
                proposal = conn.execute(
                    text(
                        "insert into proposals (org_id, project_id, contractor_id, price_minor, currency, submitted_by)"
                        " values (:o, :p, :c, :price, 'USD', :me) returning id"
                    ),
                    {"o": world.org_a, "p": project, "c": contractor, "price": price, "me": world.contractor_x_user.id},
                ).scalar_one()
                in_sql[(bps, price)] = conn.execute(
                    text("select proposal_task_pool(:o, :q)"), {"o": world.org_a, "q": proposal}
                ).scalar_one()
        conn.rollback()
    assert len(in_sql) == len(combos)
    in_python = {(bps, price): project_rules.proposal_task_pool(price, bps) for bps, price in combos}
    assert in_sql == in_python
    # written out: a milestone project shares the price; 10,000.00 at 12% shares 8,800.00
    assert in_sql[(None, 1_000_000)] == 1_000_000
    assert in_sql[(1200, 1_000_000)] == 880_000
    assert in_sql[(5000, 3)] == 1  # 1.5 rounds up to an advance of 2


def test_a_proposals_share_is_read_in_the_callers_organization_only(admin_engine, act_as, world):
    """As the proposals' commit checks call it: as the web role, for a proposal of the caller's organization; naming
    another organization's proposal, it answers nothing (it reads past the caller's policies, as the owner)."""
    with admin_engine.begin() as conn:
        category = conn.execute(
            text("insert into project_categories (org_id, name) values (:o, 'Parity') returning id"), {"o": world.org_a}
        ).scalar_one()
        project = conn.execute(
            text(
                "insert into projects (org_id, title, category_id, currency, deadline, owner_user_id, created_by,"
                " billing_mode, advance_bps, audience)"
                " values (:o, 'Fit-out', :c, 'USD', current_date + 30, :me, :me, 'completion', 1200, 'all')"
                " returning id"
            ),
            {"o": world.org_a, "c": category, "me": world.owner.id},
        ).scalar_one()
        proposal = conn.execute(
            text(
                "insert into proposals (org_id, project_id, contractor_id, price_minor, currency, submitted_by)"
                " values (:o, :p, :c, 1000000, 'USD', :me) returning id"
            ),
            {"o": world.org_a, "p": project, "c": world.contractor_x, "me": world.contractor_x_user.id},
        ).scalar_one()
        conn.execute(
            text(
                "insert into proposal_milestones (org_id, proposal_id, contractor_id, seq, title, amount_minor,"
                " due_date) values (:o, :q, :c, 1, 'All of it', 880000, '2030-01-01')"
            ),
            {"o": world.org_a, "q": proposal, "c": world.contractor_x},
        )
    share = "select proposal_task_pool(:o, :q)"
    for person in (world.contractor_x_user, world.owner):
        session = act_as(person.id, world.org_a)
        assert session.execute(text(share), {"o": world.org_a, "q": proposal}).scalar_one() == 880_000
        session.rollback()
    assert project_rules.proposal_task_pool(1_000_000, 1200) == 880_000
    for person in (world.admin_b, world.contractor_z_user):
        session = act_as(person.id, world.org_b)
        assert session.execute(text(share), {"o": world.org_a, "q": proposal}).scalar_one() is None, person.name
        session.rollback()


# --- the books of what a contractor's user writes ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    gross=st.integers(min_value=1, max_value=10**12),
    retainage_bps=st.integers(min_value=0, max_value=10_000),
    fee_bps=st.integers(min_value=0, max_value=10_000),
)
@example(gross=1_000_000, retainage_bps=1000, fee_bps=0)
@example(gross=120_000, retainage_bps=0, fee_bps=0)  # an advance: nothing withheld, no fee
def test_an_authorizations_ledger_lines_are_the_same_in_sql_and_python(admin_engine, gross, retainage_bps, fee_bps):
    """invoices_contractor_ledger books a contractor's advance and task invoice with authorization_ledger_lines, the
    twin of domain.invoices.authorization_lines that staff's authorizations are booked with."""
    from backoffice.domain.invoices import authorization_lines, milestone_amounts

    a = milestone_amounts(gross, retainage_bps, fee_bps)
    got = rows(
        admin_engine,
        "select account, amount_minor from authorization_ledger_lines(:g, :r, :n, :f)",
        {"g": a.gross, "r": a.retainage, "n": a.net, "f": a.fee},
    )
    assert [tuple(r) for r in got] == authorization_lines(a)


def test_the_tables_defaults_and_limits_are_the_domains(admin_engine):
    """Revision 0030 writes the default advance (12%) and the 0–50% limit into the schema; they are the domain's."""
    (default,) = rows(
        admin_engine,
        "select column_default from information_schema.columns"
        " where table_name = 'organizations' and column_name = 'default_advance_bps'",
        {},
    )
    assert default == (str(rules.DEFAULT_ADVANCE_BPS),)
    checks = [
        r[0]
        for r in rows(
            admin_engine,
            "select pg_get_constraintdef(c.oid) from pg_constraint c"
            " where c.conrelid in ('organizations'::regclass, 'engagements'::regclass, 'projects'::regclass)"
            " and pg_get_constraintdef(c.oid) like '%advance_bps%'",
            {},
        )
    ]
    assert len(checks) >= 3
    for check in checks:
        if "BETWEEN" in check or "<=" in check:
            assert str(rules.ADVANCE_MAX_BPS) in check, check
