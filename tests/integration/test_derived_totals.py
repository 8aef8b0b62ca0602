"""The derived totals pages read (revision 0014: invoice_totals, ap_batch_paid, retainage_totals; 0020:
contractor_retainage_totals), with raw SQL
as the app role: who reads which rows, that nobody but their trigger writes them, and that they are the
invoices' own sums (recomputed here from the rows; tests/integration/test_money_state_machine.py recomputes
them after every step of random operation sequences too)."""

from __future__ import annotations

import pytest
from kit.completion import approve_task, completion_engagement, raise_invoice
from kit.engagements import owner_query, sign_in
from kit.money import approved_invoices, export, party, pay, set_org
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import approvals

DERIVED = ("invoice_totals", "ap_batch_paid", "retainage_totals", "contractor_retainage_totals")
# The kinds that withhold retainage (DESIGN.md section 4): a milestone's invoice and, under completion billing
# (revision 0030), a task invoice and the final payment; never the advance or a release.
WITHHOLDING = "'milestone', 'completion', 'final'"

RECOMPUTED = {
    "invoice_totals": (
        "select org_id, status, currency, due_date, count(*) as invoices, sum(net_minor) as net_minor"
        " from invoices group by 1, 2, 3, 4",
        "select org_id, status, currency, due_date, invoices, net_minor from invoice_totals where invoices <> 0",
    ),
    "ap_batch_paid": (
        "select org_id, batch_id, count(*) as invoices from invoices"
        " where status = 'paid' and batch_id is not null group by 1, 2",
        "select org_id, batch_id, invoices from ap_batch_paid where invoices <> 0",
    ),
    "retainage_totals": (
        "select org_id, contractor_id, engagement_id, min(currency) as currency,"
        f" coalesce(sum(retainage_minor) filter (where kind in ({WITHHOLDING}) and voided_at is null), 0)"
        " as withheld_minor,"
        " coalesce(sum(gross_minor) filter (where kind = 'retainage_release' and voided_at is null), 0)"
        " as released_minor"
        " from invoices group by 1, 2, 3",
        "select org_id, contractor_id, engagement_id, currency, withheld_minor, released_minor from retainage_totals",
    ),
    "contractor_retainage_totals": (
        "select org_id, contractor_id, currency,"
        f" coalesce(sum(retainage_minor) filter (where kind in ({WITHHOLDING}) and voided_at is null), 0)"
        " as withheld_minor,"
        " coalesce(sum(gross_minor) filter (where kind = 'retainage_release' and voided_at is null), 0)"
        " as released_minor"
        " from invoices group by 1, 2, 3",
        "select org_id, contractor_id, currency, withheld_minor, released_minor from contractor_retainage_totals",
    ),
}


@pytest.fixture
def money(world, act_as, admin_engine):
    _, x = approved_invoices(act_as, admin_engine, party(world, "x"), ("100.00", "200.00", "300.00"))
    _, y = approved_invoices(act_as, admin_engine, party(world, "y"), ("400.00",))
    batch = export(act_as, world.finance, world.org_a, [x[0]["id"], x[1]["id"]]).id
    pay(act_as, world.finance, world.org_a, x[0]["id"])
    pay(act_as, world.finance, world.org_a, y[0]["id"])
    set_org(admin_engine, world.org_b, segregation_of_duties=False)
    _, z = approved_invoices(act_as, admin_engine, party(world, "z"), ("500.00",))
    # Completion billing (issue 20): X's advance (nothing withheld), a task invoice and the final payment (10% each).
    px = party(world, "x")
    completed, tasks = completion_engagement(act_as, admin_engine, px, value="1,000.00", tasks=("440.00", "440.00"))
    approve_task(act_as, px, tasks[0])
    raise_invoice(act_as, px, completed, [tasks[0]])
    approve_task(act_as, px, tasks[1])
    # Issue 18: one awaiting approval, one voided by a rejected step (its engagement's retainage back to zero).
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(
        session, actor, approvals.PolicyInput("Big", "USD", "1,000.00", [approvals.StepInput("finance")])
    )
    _, (waiting,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("1,500.00",))
    _, (rejected,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("2,500.00",))
    session, actor = sign_in(act_as, world.finance, world.org_a)
    approvals.decide_step(session, actor, rejected["id"], "reject", "Not as specified.")
    return {"x": x, "y": y, "z": z, "batch": batch, "waiting": waiting, "rejected": rejected, "completed": completed}


def rows(admin_engine, sql: str) -> list[tuple]:
    return sorted(tuple(str(v) for v in r.values()) for r in owner_query(admin_engine, sql))


@pytest.mark.parametrize("table", DERIVED)
def test_each_derived_table_holds_the_invoices_own_sums(money, admin_engine, table):
    recomputed, stored = RECOMPUTED[table]
    assert rows(admin_engine, stored) == rows(admin_engine, recomputed)
    assert rows(admin_engine, stored), "the seeded money fills it"


def test_the_batches_paid_count_and_the_queue_totals_follow_a_payment(world, money, act_as, admin_engine):
    def paid_in_batch() -> int:
        return owner_query(admin_engine, "select invoices from ap_batch_paid where batch_id = :b", b=money["batch"])[0][
            "invoices"
        ]

    assert paid_in_batch() == 1
    pay(act_as, world.finance, world.org_a, money["x"][1]["id"])
    assert paid_in_batch() == 2
    recomputed, stored = RECOMPUTED["invoice_totals"]
    assert rows(admin_engine, stored) == rows(admin_engine, recomputed)


def test_rebuilding_gives_what_the_triggers_kept(money, admin_engine):
    before = {t: rows(admin_engine, RECOMPUTED[t][1]) for t in DERIVED}
    with admin_engine.begin() as conn:
        conn.execute(text("select rebuild_invoice_totals()"))
    assert {t: rows(admin_engine, RECOMPUTED[t][1]) for t in DERIVED} == before


@pytest.mark.parametrize("who", ["admin", "finance"])
def test_finance_and_admins_read_their_organizations_queue_and_batch_totals_only(world, money, act_as, who):
    s = act_as(getattr(world, who).id, world.org_a)
    for table in ("invoice_totals", "ap_batch_paid"):
        orgs = set(s.execute(text(f"select distinct org_id from {table}")).scalars())
        assert orgs == {world.org_a}, table
    s.rollback()


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_read_no_queue_or_batch_totals(world, money, act_as, who):
    s = act_as(getattr(world, who).id, world.org_a)
    for table in ("invoice_totals", "ap_batch_paid"):
        assert s.execute(text(f"select count(*) from {table}")).scalar_one() == 0, table
    s.rollback()


@pytest.mark.parametrize("table", ["retainage_totals", "contractor_retainage_totals"])
def test_a_contractor_reads_only_its_own_retainage(world, money, act_as, table):
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert set(s.execute(text(f"select contractor_id from {table}")).scalars()) == {world.contractor_x}
    s.rollback()
    s = act_as(world.owner.id, world.org_a)
    assert set(s.execute(text(f"select contractor_id from {table}")).scalars()) == {
        world.contractor_x,
        world.contractor_y,
    }
    s.rollback()


@pytest.mark.parametrize("table", DERIVED)
@pytest.mark.parametrize(
    "sql",
    [
        "update {table} set org_id = org_id",
        "delete from {table}",
        "truncate {table}",
    ],
)
def test_nobody_on_the_web_writes_a_derived_total(world, money, act_as, table, sql):
    s = act_as(world.admin.id, world.org_a)
    with pytest.raises(DBAPIError) as exc:
        s.execute(text(sql.format(table=table)))
    s.rollback()
    assert exc.value.orig.sqlstate == "42501", str(exc.value.orig)


def test_nobody_on_the_web_inserts_a_total_or_rebuilds_them(world, money, act_as):
    s = act_as(world.finance.id, world.org_a)
    for sql in (
        "insert into invoice_totals values (:o, 'approved', 'USD', current_date, 1, 100)",
        "select rebuild_invoice_totals()",
    ):
        with pytest.raises(DBAPIError) as exc:
            s.execute(text(sql), {"o": world.org_a})
        s.rollback()
        assert exc.value.orig.sqlstate == "42501", sql


def test_a_completion_engagements_task_and_final_invoices_withhold_retainage_and_its_advance_none(money, admin_engine):
    """Revision 0030: 10% of the task invoice (440.00) and of the final payment (440.00), nothing of the advance."""
    (row,) = owner_query(
        admin_engine,
        "select withheld_minor, released_minor from retainage_totals where engagement_id = :e",
        e=money["completed"],
    )
    assert row == {"withheld_minor": 4_400 + 4_400, "released_minor": 0}
