"""Who sees and writes completion billing's rows (issue 20; DESIGN.md section 5): the tasks each invoice bills
(invoice_tasks) and the advance, task and final invoices, proved with raw SQL as the web role signed in as each
person (``act_as``) and as the worker role (``as_worker``), never through a page.

A contractor's user sees its own contractor's billed tasks and invoices only, never another contractor's, not even by
naming their ids; staff read every one of their organization (finance without writing them); another organization
sees nothing; the worker reads one organization's at a time. A contractor's user writes only the two kinds it may (an
advance as it accepts, an invoice for its approved tasks) for its own contractor, and no ledger line at all: the
database books those two invoices itself (invoices_contractor_ledger). The owner role is the ground truth: after
each refusal, the organization's money rows are exactly as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from kit.completion import approve_task, completion_engagement, completion_invoices, raise_invoice
from kit.engagements import owner_query
from kit.money import money_state, party
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

INSUFFICIENT_PRIVILEGE = "42501"
KINDS = ("advance", "completion", "final")


@dataclass(frozen=True)
class Billed:
    """Engagements of two tasks each. Org A: X's completed (advance, a task invoice for task 1, the final payment for
    task 2) and Y's under way (advance, a task invoice for task 1); org B: Z's under way (advance, a task invoice for
    task 1). Each: the engagement's id."""

    x: object
    y: object
    z: object


@pytest.fixture
def billed(world, act_as, admin_engine) -> Billed:
    px, py, pz = party(world, "x"), party(world, "y"), party(world, "z")
    x, x_tasks = completion_engagement(act_as, admin_engine, px, title="X's fit-out")
    approve_task(act_as, px, x_tasks[0])
    raise_invoice(act_as, px, x, [x_tasks[0]])
    approve_task(act_as, px, x_tasks[1])
    y, y_tasks = completion_engagement(act_as, admin_engine, py, title="Y's fit-out")
    approve_task(act_as, py, y_tasks[0])
    raise_invoice(act_as, py, y, [y_tasks[0]])
    z, z_tasks = completion_engagement(act_as, admin_engine, pz, title="Z's fit-out")
    approve_task(act_as, pz, z_tasks[0])
    raise_invoice(act_as, pz, z, [z_tasks[0]])
    assert [i["kind"] for i in completion_invoices(admin_engine, x)] == ["advance", "completion", "final"]
    return Billed(x, y, z)


def truth(admin_engine, table: str, **where) -> set:
    clause = " and ".join(f"{column} = :{column}" for column in where) or "true"
    return {r["id"] for r in owner_query(admin_engine, f"select id from {table} where {clause}", **where)}


def seen(session, sql: str, **params) -> set:
    rows = set(session.execute(text(sql), params).scalars())
    session.rollback()
    return rows


def invoices_of(admin_engine, engagement_id) -> set:
    return truth(admin_engine, "invoices", engagement_id=engagement_id)


def tasks_billed(admin_engine, engagement_id) -> set:
    return truth(admin_engine, "invoice_tasks", engagement_id=engagement_id)


# --- reading ---------------------------------------------------------------------------------------------------------


def test_a_contractor_sees_its_own_billed_tasks_and_invoices_only(world, act_as, admin_engine, billed):
    x_tasks, y_tasks = tasks_billed(admin_engine, billed.x), tasks_billed(admin_engine, billed.y)
    x_invoices, y_invoices = invoices_of(admin_engine, billed.x), invoices_of(admin_engine, billed.y)
    assert (len(x_tasks), len(y_tasks), len(x_invoices), len(y_invoices)) == (2, 1, 3, 2)
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert seen(session, "select id from invoice_tasks") == x_tasks
    assert seen(session, "select id from invoices where kind = any(:k)", k=list(KINDS)) == x_invoices
    # not by naming the other's ids, nor in a sum
    assert seen(session, "select id from invoice_tasks where id = any(:i)", i=list(y_tasks)) == set()
    assert seen(session, "select id from invoices where id = any(:i)", i=list(y_invoices)) == set()
    assert seen(
        session, "select coalesce(sum(amount_minor), 0) from invoice_tasks where engagement_id = :e", e=billed.y
    ) == {0}
    session = act_as(world.contractor_y_user.id, world.org_a)
    assert seen(session, "select id from invoice_tasks") == y_tasks
    assert seen(session, "select id from invoices where kind = any(:k)", k=list(KINDS)) == y_invoices


@pytest.mark.parametrize("who", ["admin", "owner", "finance"])
def test_staff_read_every_billed_task_and_invoice_of_their_organization(world, act_as, admin_engine, billed, who):
    session = act_as(getattr(world, who).id, world.org_a)
    assert seen(session, "select id from invoice_tasks") == truth(admin_engine, "invoice_tasks", org_id=world.org_a)
    assert seen(session, "select id from invoices where kind = any(:k)", k=list(KINDS)) == (
        invoices_of(admin_engine, billed.x) | invoices_of(admin_engine, billed.y)
    )


def test_another_organization_sees_none_of_them(world, act_as, admin_engine, billed):
    a_tasks = truth(admin_engine, "invoice_tasks", org_id=world.org_a)
    for person in (world.admin_b, world.contractor_z_user):
        session = act_as(person.id, world.org_b)
        assert seen(session, "select id from invoice_tasks") == tasks_billed(admin_engine, billed.z), person.name
        assert seen(session, "select id from invoice_tasks where id = any(:i)", i=list(a_tasks)) == set()
        # naming org A, where they are no members
        session = act_as(person.id, world.org_a)
        assert seen(session, "select id from invoice_tasks") == set(), person.name
        assert seen(session, "select id from invoices") == set(), person.name


def test_the_worker_reads_the_billed_tasks_of_one_organization_at_a_time(world, as_worker, admin_engine, billed):
    a, b = (
        truth(admin_engine, "invoice_tasks", org_id=world.org_a),
        truth(admin_engine, "invoice_tasks", org_id=world.org_b),
    )
    assert a and b
    assert seen(as_worker(world.org_a), "select id from invoice_tasks") == a
    assert seen(as_worker(world.org_b), "select id from invoice_tasks") == b
    assert seen(as_worker(None), "select id from invoice_tasks") == set()


def test_the_worker_writes_no_billed_task(world, as_worker, admin_engine, billed):
    before = money_state(admin_engine, world.org_a)
    for sql in (
        "insert into invoice_tasks (org_id, invoice_id, milestone_id, engagement_id, contractor_id, amount_minor)"
        " select org_id, invoice_id, milestone_id, engagement_id, contractor_id, amount_minor from invoice_tasks",
        "update invoice_tasks set voided_at = now()",
        "delete from invoice_tasks",
    ):
        session = as_worker(world.org_a)
        with pytest.raises(DBAPIError) as exc:
            session.execute(text(sql))
        session.rollback()
        assert exc.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, str(exc.value.orig)
    assert money_state(admin_engine, world.org_a) == before


# --- a contractor's writes -------------------------------------------------------------------------------------------


def refused(session, sql: str, params: dict) -> str:
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
        session.commit()
    session.rollback()
    assert exc.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, str(exc.value.orig)
    return str(exc.value.orig)


NEW_INVOICE = (
    "insert into invoices (org_id, contractor_id, engagement_id, kind, milestone_id, review_id, description, currency,"
    " gross_minor, retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor, total_minor, authorized_by,"
    " raised_by)"
    " select e.org_id, e.contractor_id, e.id, :kind, :milestone, :review, 'Raw', e.currency, :gross, 0, 0, :gross, 0,"
    " 0, :gross, :authorized_by, :raised_by from engagements e where e.id = :e"
)


@pytest.mark.parametrize("kind", ["final", "milestone", "retainage_release"])
def test_a_contractor_writes_no_invoice_of_the_kinds_staff_authorize(world, act_as, admin_engine, billed, kind):
    """The final payment comes with the owner's approval of the last task, a milestone invoice with a milestone's, a
    release of retainage with the owner's decision: none is the contractor's to write (here on Y's engagement, which
    Y's user can see)."""
    (task,) = owner_query(
        admin_engine,
        "select m.id, r.id as review from milestones m join reviews r on r.milestone_id = m.id"
        " where m.engagement_id = :e",
        e=billed.y,
    )
    before = money_state(admin_engine, world.org_a)
    me = world.contractor_y_user.id
    message = refused(
        act_as(me, world.org_a),
        NEW_INVOICE,
        {
            "e": billed.y,
            "kind": kind,
            "milestone": task["id"] if kind == "milestone" else None,
            "review": task["review"] if kind == "milestone" else None,
            "gross": 100_000,
            "authorized_by": world.owner.id,
            "raised_by": me if kind == "completion" else None,
        },
    )
    assert "a payment is authorized by the engagement's project owner or an admin, in their own name" in message
    assert money_state(admin_engine, world.org_a) == before


def test_a_contractor_writes_no_invoice_for_another_contractor(world, act_as, admin_engine, billed):
    (row,) = owner_query(admin_engine, "select contractor_id, currency from engagements where id = :e", e=billed.x)
    before = money_state(admin_engine, world.org_a)
    me = world.contractor_y_user.id
    for kind in ("advance", "completion"):
        # X's engagement, in X's name (the select below sees no engagement of X's, so the values are given)
        message = refused(
            act_as(me, world.org_a),
            "insert into invoices (org_id, contractor_id, engagement_id, kind, description, currency, gross_minor,"
            " retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor, total_minor, authorized_by, raised_by)"
            " values (:org, :contractor, :e, :kind, 'Raw', :currency, 100000, 0, 0, 100000, 0, 0, 100000, :who, :me)",
            {
                "org": world.org_a,
                "contractor": row["contractor_id"],
                "e": billed.x,
                "kind": kind,
                "currency": row["currency"],
                "who": world.owner.id,
                "me": me if kind == "completion" else None,
            },
        )
        assert "in their own name" in message
    assert money_state(admin_engine, world.org_a) == before


LEDGER_LINES = (
    "insert into ledger_entries (id, org_id, txn_id, event, invoice_id, account, amount_minor, currency)"
    " values (:a, :org, :txn, 'authorized', :invoice, 'work_expense', 100, 'USD'),"
    "        (:b, :org, :txn, 'authorized', :invoice, 'accounts_payable', -100, 'USD')"
)


def test_a_contractor_writes_no_ledger_line(world, act_as, admin_engine, billed):
    y_task_invoice = next(i for i in completion_invoices(admin_engine, billed.y) if i["kind"] == "completion")
    x_task_invoice = next(i for i in completion_invoices(admin_engine, billed.x) if i["kind"] == "completion")
    before = money_state(admin_engine, world.org_a)
    me = world.contractor_x_user.id
    for invoice in (y_task_invoice, x_task_invoice):  # another contractor's; its own, written in another transaction
        message = refused(
            act_as(me, world.org_a),
            LEDGER_LINES,
            {"a": uuid.uuid4(), "b": uuid.uuid4(), "org": world.org_a, "txn": uuid.uuid4(), "invoice": invoice["id"]},
        )
        assert "row-level security policy" in message and "ledger_entries" in message
    assert money_state(admin_engine, world.org_a) == before
