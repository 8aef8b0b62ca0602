"""Completion billing under concurrency (issue 20), through the real services on their own connections as the web
role: two users of one contractor invoicing the same tasks, the contractor invoicing a task while the owner approves
the last one (whose final payment would bill it too), and two approvers deciding at once.

Whatever the order, each task is billed by exactly one live invoice, the engagement's invoices never add up to more
than its contract value (and to exactly that once it is completed), and whoever loses is told so in words (a
Conflict), never a 500. Races released at once (kit.engagements.race) are repeated, so either order may win; the
interleavings that matter are also forced one at a time: one transaction is paused inside its service, and the other
is let go at the point named (once the database shows it waiting for a lock, where it must wait).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from kit.completion import approve_task, completion_engagement, completion_invoices
from kit.engagements import acting, owner_query, race
from kit.money import party, submit

from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.errors import Conflict
from backoffice.models import Invoice, Review
from backoffice.services import bootstrap, completion
from backoffice.services.reviews import DecisionInput, decide

ROUNDS = 4
VALUE = 1_000_000  # 10,000.00: an advance of 1,200.00 and three tasks of 3,000.00, 3,000.00 and 2,800.00


def engagement(act_as, admin_engine, world):
    return completion_engagement(
        act_as, admin_engine, party(world), value="10,000.00", tasks=("3,000.00", "3,000.00", "2,800.00")
    )


def live_bills(admin_engine, engagement_id) -> dict:
    """task id -> the numbers of the live invoices that bill it."""
    bills: dict = {}
    for r in owner_query(
        admin_engine,
        "select t.milestone_id, i.invoice_number from invoice_tasks t join invoices i on i.id = t.invoice_id"
        " where t.engagement_id = :e and t.voided_at is null and i.voided_at is null order by i.number",
        e=engagement_id,
    ):
        bills.setdefault(r["milestone_id"], []).append(r["invoice_number"])
    return bills


def settled(admin_engine, engagement_id) -> tuple[str, int]:
    """(the engagement's status, Σ gross of its live advance, task and final invoices)."""
    (row,) = owner_query(
        admin_engine,
        "select e.status, (select coalesce(sum(i.gross_minor), 0) from invoices i where i.engagement_id = e.id"
        " and i.kind in ('advance', 'completion', 'final') and i.voided_at is null) as billed"
        " from engagements e where e.id = :e",
        e=engagement_id,
    )
    return row["status"], row["billed"]


def latest_submission(admin_engine, task_id):
    (row,) = owner_query(
        admin_engine, "select id from submissions where milestone_id = :m order by revision desc limit 1", m=task_id
    )
    return row["id"]


def approving(admin_engine, task_id):
    """decide(...) approving the task's latest revision, for race() or a thread."""
    submission = str(latest_submission(admin_engine, task_id))

    def call(session, actor, _i=0) -> Review:
        return decide(session, actor, task_id, DecisionInput(submission_id=submission, decision="approve"))

    return call


def invoicing(engagement_id, task_ids):
    def call(session, actor, _i=0) -> Invoice:
        return completion.raise_invoice(session, actor, engagement_id, [str(t) for t in task_ids])

    return call


def kinds(admin_engine, engagement_id) -> list[str]:
    return [i["kind"] for i in completion_invoices(admin_engine, engagement_id)]


@pytest.fixture
def second_x_user(admin_engine, world, password_hash):
    """Another user of contractor X (its office manager, say), signed in on its own."""
    with make_session_factory(admin_engine)() as session:
        user = bootstrap.create_user(
            session,
            email=f"xuser2-{world.suffix}@example.com",
            name="Xavier X",
            password_hash=password_hash,
            org_id=world.org_a,
            role=Role.CONTRACTOR,
            contractor_id=world.contractor_x,
        )
        session.commit()
        return type(world.contractor_x_user)(user.id, user.email, user.name)


# --- released at once ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_users_of_one_contractor_invoicing_the_same_tasks_at_once_make_one_invoice(
    act_as, app_sessions, admin_engine, world, second_x_user, round_
):
    engagement_id, tasks = engagement(act_as, admin_engine, world)
    for task in tasks[:2]:
        approve_task(act_as, party(world), task)

    outcomes = race(
        app_sessions, world.org_a, [world.contractor_x_user, second_x_user], invoicing(engagement_id, tasks[:2])
    )

    won = [o for o in outcomes if isinstance(o, Invoice)]
    lost = [o for o in outcomes if not isinstance(o, Invoice)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict), repr(lost[0])
    assert "no longer waiting to be invoiced" in str(lost[0]) or "invoiced meanwhile" in str(lost[0]), str(lost[0])
    assert kinds(admin_engine, engagement_id) == ["advance", "completion"]
    assert live_bills(admin_engine, engagement_id) == {t: [won[0].invoice_number] for t in tasks[:2]}
    assert settled(admin_engine, engagement_id) == ("active", 120_000 + 600_000)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_the_contractor_invoicing_a_task_while_the_owner_approves_the_last_one_bills_it_once(
    act_as, app_sessions, admin_engine, world, round_
):
    """Task 1 approved, tasks 2 and 3 submitted, task 2 approved: approving task 3 is the last approval, whose final
    payment bills every task not yet invoiced, task 1 among them unless the contractor's invoice came first."""
    engagement_id, tasks = engagement(act_as, admin_engine, world)
    p = party(world)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    submit(act_as, p, tasks[2])
    calls = [invoicing(engagement_id, tasks[:1]), approving(admin_engine, tasks[2])]

    outcomes = race(app_sessions, world.org_a, [world.contractor_x_user, world.owner], lambda s, a, i: calls[i](s, a))

    assert isinstance(outcomes[1], Review), repr(outcomes[1])  # the approval always goes through
    bills = live_bills(admin_engine, engagement_id)
    assert sorted(len(b) for b in bills.values()) == [1, 1, 1], bills  # each task billed by one live invoice
    if isinstance(outcomes[0], Invoice):  # the contractor's invoice came first: the final bills tasks 2 and 3
        assert kinds(admin_engine, engagement_id) == ["advance", "completion", "final"]
        assert bills[tasks[0]] == [outcomes[0].invoice_number]
    else:  # the final payment came first and billed task 1 too; the contractor was told
        assert isinstance(outcomes[0], Conflict), repr(outcomes[0])
        assert kinds(admin_engine, engagement_id) == ["advance", "final"]
    assert settled(admin_engine, engagement_id) == ("completed", VALUE)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_approvers_deciding_the_last_task_at_once_make_one_final_payment(
    act_as, app_sessions, admin_engine, world, round_
):
    engagement_id, tasks = engagement(act_as, admin_engine, world)
    p = party(world)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    submit(act_as, p, tasks[2])

    outcomes = race(app_sessions, world.org_a, [world.owner, world.admin], approving(admin_engine, tasks[2]))

    won = [o for o in outcomes if isinstance(o, Review)]
    lost = [o for o in outcomes if not isinstance(o, Review)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict) and "Already decided by" in str(lost[0]), repr(lost[0])
    assert kinds(admin_engine, engagement_id) == ["advance", "final"]
    assert settled(admin_engine, engagement_id) == ("completed", VALUE)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_approvers_approving_the_two_last_tasks_at_once_make_one_final_payment(
    act_as, app_sessions, admin_engine, world, round_
):
    """Each approval is the last for all it could see; the engagement's lock makes one of them the last."""
    engagement_id, tasks = engagement(act_as, admin_engine, world)
    p = party(world)
    approve_task(act_as, p, tasks[0])
    submit(act_as, p, tasks[1])
    submit(act_as, p, tasks[2])
    calls = [approving(admin_engine, tasks[1]), approving(admin_engine, tasks[2])]

    outcomes = race(app_sessions, world.org_a, [world.owner, world.admin], lambda s, a, i: calls[i](s, a))

    assert all(isinstance(o, Review) for o in outcomes), outcomes
    assert kinds(admin_engine, engagement_id) == ["advance", "final"]
    assert sorted(live_bills(admin_engine, engagement_id)) == sorted(tasks)
    assert settled(admin_engine, engagement_id) == ("completed", VALUE)


# --- one order forced at a time --------------------------------------------------------------------------------------


class Pause:
    """Wraps a function of a service module: its first call does its work (``after``) or not yet (before), then
    signals ``reached`` and waits for ``go``; later calls (the other transaction's) pass straight through."""

    def __init__(self, original, *, after: bool):
        self.original, self.after = original, after
        self.reached, self.go = threading.Event(), threading.Event()
        self.first = threading.Lock()

    def __call__(self, *args, **kwargs):
        if not self.first.acquire(blocking=False):
            return self.original(*args, **kwargs)
        result = self.original(*args, **kwargs) if self.after else None
        self.reached.set()
        assert self.go.wait(timeout=60), "never released"
        return result if self.after else self.original(*args, **kwargs)


@contextmanager
def in_thread(fn):
    """Run ``fn`` in a thread; yields a dict that holds its "result" or "error" once joined."""
    out: dict = {}

    def run():
        try:
            out["result"] = fn()
        except Exception as exc:  # the outcome under test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield out
    finally:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a transaction never finished (deadlock?)"


def wait_for_lock(admin_engine) -> None:
    """Until a transaction waits for a lock (pg_locks). Nothing else runs on this test process's server meanwhile."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if owner_query(admin_engine, "select count(*) as n from pg_locks where not granted")[0]["n"]:
            return
        time.sleep(0.02)
    raise AssertionError("nobody waited for a lock")


def as_person(app_sessions, person, org_id, call):
    def run():
        with acting(app_sessions, person, org_id) as (session, actor):
            return call(session, actor)

    return run


@pytest.fixture
def last_submitted(act_as, admin_engine, world):
    """Tasks 1 and 2 approved, task 3 submitted: (engagement id, tasks)."""
    engagement_id, tasks = engagement(act_as, admin_engine, world)
    p = party(world)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    submit(act_as, p, tasks[2])
    return engagement_id, tasks


def test_an_invoice_read_before_the_final_payment_committed_is_refused_in_words(
    app_sessions, admin_engine, world, monkeypatch, last_submitted
):
    """The contractor chose task 1 while it was still invoiceable; the owner's approval of the last task then billed
    it in the final payment and committed; the contractor's invoice, written after, is a Conflict."""
    engagement_id, tasks = last_submitted
    pause = Pause(completion._last_approver, after=False)  # the tasks are chosen; nothing is written yet
    monkeypatch.setattr(completion, "_last_approver", pause)
    invoice = as_person(app_sessions, world.contractor_x_user, world.org_a, invoicing(engagement_id, tasks[:2]))
    approval = as_person(app_sessions, world.owner, world.org_a, approving(admin_engine, tasks[2]))

    with in_thread(invoice) as invoiced:
        assert pause.reached.wait(timeout=30)
        with in_thread(approval) as approved:
            pass  # the approval takes no lock the contractor holds: it commits at once
        assert "error" not in approved, approved
        pause.go.set()

    assert isinstance(invoiced.get("error"), Conflict), invoiced
    assert kinds(admin_engine, engagement_id) == ["advance", "final"]
    assert sorted(live_bills(admin_engine, engagement_id)) == sorted(tasks)
    assert settled(admin_engine, engagement_id) == ("completed", VALUE)


def test_an_invoice_written_before_the_last_approval_leaves_the_final_payment_the_rest(
    app_sessions, admin_engine, world, monkeypatch, last_submitted
):
    """The contractor's invoice for tasks 1 and 2 is written, not committed; the approval of task 3 waits for the
    engagement it holds, then bills task 3 alone."""
    engagement_id, tasks = last_submitted
    pause = Pause(completion._bill, after=True)
    monkeypatch.setattr(completion, "_bill", pause)
    invoice = as_person(app_sessions, world.contractor_x_user, world.org_a, invoicing(engagement_id, tasks[:2]))
    approval = as_person(app_sessions, world.owner, world.org_a, approving(admin_engine, tasks[2]))

    with in_thread(invoice) as invoiced:
        assert pause.reached.wait(timeout=30)
        with in_thread(approval) as approved:
            wait_for_lock(admin_engine)  # the approval waits for the engagement
            pause.go.set()

    assert "error" not in invoiced and "error" not in approved, (invoiced, approved)
    assert kinds(admin_engine, engagement_id) == ["advance", "completion", "final"]
    final = completion_invoices(admin_engine, engagement_id)[2]
    assert (final["gross_minor"], final["tasks"]) == (280_000, [tasks[2]])
    assert settled(admin_engine, engagement_id) == ("completed", VALUE)


def test_an_invoice_written_while_the_final_payment_holds_the_engagement_is_refused_in_words(
    app_sessions, admin_engine, world, monkeypatch, last_submitted
):
    """The approval of task 3 holds the engagement and has read what was billed; the contractor's invoice for task 1
    waits for the engagement, then finds it completed, task 1 billed by the final payment: a Conflict."""
    engagement_id, tasks = last_submitted
    pause = Pause(completion.billed_total, after=True)  # the final payment is being worked out
    monkeypatch.setattr(completion, "billed_total", pause)
    invoice = as_person(app_sessions, world.contractor_x_user, world.org_a, invoicing(engagement_id, tasks[:1]))
    approval = as_person(app_sessions, world.owner, world.org_a, approving(admin_engine, tasks[2]))

    with in_thread(approval) as approved:
        assert pause.reached.wait(timeout=30)
        with in_thread(invoice) as invoiced:
            wait_for_lock(admin_engine)  # the invoice waits for the engagement
            pause.go.set()

    assert "error" not in approved, approved
    assert isinstance(invoiced.get("error"), Conflict), invoiced
    assert kinds(admin_engine, engagement_id) == ["advance", "final"]
    assert sorted(live_bills(admin_engine, engagement_id)) == sorted(tasks)
    assert settled(admin_engine, engagement_id) == ("completed", VALUE)
