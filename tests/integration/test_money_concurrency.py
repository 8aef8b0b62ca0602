"""Pay-once under contention (DESIGN.md sections 3, 4 and 7): twenty people approving the same work,
recording the same payment or exporting overlapping selections at the same moment, each in their own
thread and app-role session, released together by a barrier.

Whatever the interleaving, money leaves once: one invoice per approval, one payment per invoice, each
invoice in at most one live batch, and every loser is told why with a Conflict. Counters stay gapless.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from kit.engagements import owner_query, race
from kit.money import active_engagement, approved_invoices, complete, events, export, numbered, party, submit, today
from kit.signin import actor_of
from sqlalchemy import text

from backoffice.db import make_engine, make_session_factory
from backoffice.errors import Conflict, InvalidTransition
from backoffice.services import ap_export, invoices, payments
from backoffice.services.reviews import DecisionInput, decide

CONTENDERS = 20


@pytest.fixture(scope="module")
def crowd(database):
    """App-role sessions with a connection for every contender, so all twenty really run at once."""
    engine = make_engine(database.app_url, pool_size=CONTENDERS + 5, max_overflow=0)
    yield make_session_factory(engine)
    engine.dispose()


def split(outcomes) -> tuple[list, list]:
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(o, Conflict) for o in losses), [repr(o) for o in losses if not isinstance(o, Conflict)]
    return wins, losses


def counter(admin_engine, org_id, name: str) -> int | None:
    rows = owner_query(
        admin_engine, "select last_value from org_counters where org_id = :o and counter = :c", o=org_id, c=name
    )
    return rows[0]["last_value"] if rows else None


def test_twenty_reviewers_approving_the_same_submission_at_once_authorize_one_payment(
    act_as, crowd, admin_engine, world
):
    p = party(world)
    engagement_id, (m, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m)
    act_as(None, None)  # the fixture's session holds nothing while the contenders run
    people = [world.owner if i % 2 else world.admin for i in range(CONTENDERS)]
    outcomes = race(
        crowd,
        world.org_a,
        people,
        lambda session, actor, i: decide(
            session, actor, m, DecisionInput(submission_id=str(sub.id), decision="approve")
        ),
    )

    wins, losses = split(outcomes)
    assert (len(wins), len(losses)) == (1, CONTENDERS - 1), outcomes
    (review,) = owner_query(admin_engine, "select * from reviews where milestone_id = :m", m=m)
    winner = "Ada Admin" if review["reviewed_by"] == world.admin.id else "Omar Owner"
    assert review["id"] == wins[0].id
    assert all(o.message.startswith(f"Already decided by {winner} at ") for o in losses), [o.message for o in losses]
    (inv,) = owner_query(admin_engine, "select * from invoices where engagement_id = :e", e=engagement_id)
    assert (inv["review_id"], inv["authorized_by"]) == (review["id"], review["reviewed_by"])
    assert inv["invoice_number"] == numbered(admin_engine, world.org_a, 1)
    assert counter(admin_engine, world.org_a, "invoice") == 1  # no loser took a number
    ledger = owner_query(admin_engine, "select * from ledger_entries where invoice_id = :i", i=inv["id"])
    assert len({r["txn_id"] for r in ledger}) == 1 and sum(r["amount_minor"] for r in ledger) == 0
    assert len(events(admin_engine, world.org_a, "invoice.authorized")) == 1


def test_twenty_finance_sessions_recording_the_same_payment_at_once_record_one(act_as, crowd, admin_engine, world):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    act_as(None, None)
    outcomes = race(
        crowd,
        world.org_a,
        [world.finance] * CONTENDERS,
        lambda session, actor, i: payments.record_payment(
            session, actor, inv["id"], payments.PaymentInput(today(), f"ACH {i:04d}", "ach")
        ),
    )

    wins, losses = split(outcomes)
    assert (len(wins), len(losses)) == (1, CONTENDERS - 1), outcomes
    (payment,) = owner_query(admin_engine, "select * from payments where invoice_id = :i", i=inv["id"])
    assert (payment["id"], payment["amount_minor"]) == (wins[0].id, inv["net_minor"])
    assert all(
        f"{inv['invoice_number']} was already paid on" in o.message and payment["reference"] in o.message
        for o in losses
    ), [o.message for o in losses]
    (row,) = owner_query(admin_engine, "select status, paid_at from invoices where id = :i", i=inv["id"])
    assert (row["status"], row["paid_at"]) == ("paid", payment["paid_at"])
    paid_lines = owner_query(
        admin_engine, "select * from ledger_entries where invoice_id = :i and event = 'paid'", i=inv["id"]
    )
    assert sorted(r["amount_minor"] for r in paid_lines) == [-inv["net_minor"], inv["net_minor"]]
    assert len(events(admin_engine, world.org_a, "payment.recorded")) == 1


def test_twenty_staff_releasing_the_same_retainage_at_once_release_it_once(act_as, crowd, admin_engine, world):
    p = party(world)
    engagement_id, _ = approved_invoices(act_as, admin_engine, p)
    complete(act_as, p, engagement_id)
    act_as(None, None)
    people = [world.owner if i % 2 else world.admin for i in range(CONTENDERS)]
    outcomes = race(
        crowd, world.org_a, people, lambda session, actor, i: invoices.release_retainage(session, actor, engagement_id)
    )

    wins, losses = split(outcomes)
    assert (len(wins), len(losses)) == (1, CONTENDERS - 1), outcomes
    (release,) = owner_query(
        admin_engine, "select * from invoices where engagement_id = :e and kind = 'retainage_release'", e=engagement_id
    )
    assert (release["id"], release["gross_minor"]) == (wins[0].id, 30_000)
    assert all("it is released once" in o.message and release["invoice_number"] in o.message for o in losses), [
        o.message for o in losses
    ]
    assert counter(admin_engine, world.org_a, "invoice") == 3


SELECTIONS = {
    # thread i takes four consecutive invoices from position i % 5: windows that overlap, two that do not
    "overlapping windows": lambda i: range(i % 5, i % 5 + 4),
    "the same eight": lambda i: range(8),
}


@pytest.mark.parametrize("case", SELECTIONS)
def test_twenty_exports_of_overlapping_selections_at_once_put_each_invoice_in_one_batch(
    act_as, crowd, admin_engine, world, case
):
    amounts = tuple(f"{100 * (n + 1)}.00" for n in range(8))
    _, approved = approved_invoices(act_as, admin_engine, party(world), amounts)
    chosen = [[approved[k] for k in SELECTIONS[case](i)] for i in range(CONTENDERS)]
    act_as(None, None)
    people = [world.finance if i % 2 else world.admin for i in range(CONTENDERS)]
    outcomes = race(
        crowd,
        world.org_a,
        people,
        lambda session, actor, i: ap_export.create_batch(
            session, actor, ap_export.Selection(invoice_ids=tuple(str(inv["id"]) for inv in chosen[i]))
        ),
    )

    wins, losses = split(outcomes)
    # at most two of the windows are disjoint (0-3 and 4-7); every other export overlaps a winner
    assert 1 <= len(wins) <= (1 if case == "the same eight" else 2) and len(losses) == CONTENDERS - len(wins), outcomes
    batches = owner_query(
        admin_engine, "select * from ap_export_batches where org_id = :o order by number", o=world.org_a
    )
    assert {b["id"] for b in batches} == {w.id for w in wins}
    assert len(batches) == len(wins) and all(b["status"] == "live" for b in batches)
    assert [b["number"] for b in batches] == list(range(1, len(wins) + 1))
    assert counter(admin_engine, world.org_a, "ap_batch") == len(wins)  # refused exports gave their numbers back
    # Each winner's batch holds exactly what it selected (as stored: the returned batch's session is closed, and
    # it loads its list of ids only when asked); no invoice is in two batches.
    stored = {b["id"]: b["invoice_ids"] for b in batches}
    for i, outcome in enumerate(outcomes):
        if not isinstance(outcome, Exception):
            assert sorted(stored[outcome.id]) == sorted(inv["id"] for inv in chosen[i])
    held = [i for b in batches for i in b["invoice_ids"]]
    assert len(held) == len(set(held))
    rows = owner_query(admin_engine, "select id, status, batch_id from invoices where org_id = :o", o=world.org_a)
    in_batch = {r["batch_id"]: set() for r in rows}
    for r in rows:
        in_batch[r["batch_id"]].add(r["id"])
        assert (r["status"] == "exported") == (r["id"] in held), r
    assert all(in_batch.get(b["id"]) == set(b["invoice_ids"]) for b in batches)
    # Every loser is told which of its invoices another batch took.
    numbers = {inv["id"]: inv["invoice_number"] for inv in approved}
    batch_of = {i: b["number"] for b in batches for i in b["invoice_ids"]}
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Exception):
            named = re.findall(r"([A-Z0-9]{2,8}-\d{6}) is in batch (\d+)", outcome.message)
            assert named, outcome.message
            mine = {numbers[inv["id"]]: batch_of.get(inv["id"]) for inv in chosen[i]}
            assert all(mine.get(n) == int(b) for n, b in named), (outcome.message, mine)


# --- a payment and a void crossing ----------------------------------------------------------------------


def blocked_by(admin_engine, pid: int, thread: threading.Thread) -> int | None:
    """The backend waiting on a lock ``pid`` holds, once there is one (None if ``thread`` ended first).
    A condition on the database, polled; no timing is asserted."""
    deadline = time.monotonic() + 60
    while thread.is_alive() and time.monotonic() < deadline:
        rows = owner_query(
            admin_engine, "select pid from pg_stat_activity where :p = any(pg_blocking_pids(pid))", p=pid
        )
        if rows:
            return rows[0]["pid"]
    return None


def in_thread(sessions, person, org_id, call, outcome: dict, key: str) -> threading.Thread:
    def run():
        with sessions() as session:
            try:
                actor = actor_of(session, person.id, org_id)
                session.rollback()
                outcome[key] = call(session, actor)
            except Exception as exc:
                outcome[key] = exc
                session.rollback()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_batch_voided_while_one_of_its_payments_is_being_recorded_is_refused_clearly(
    act_as, crowd, admin_engine, world
):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    batch = export(act_as, world.finance, world.org_a, [a["id"], b["id"]]).id
    act_as(None, None)
    outcome: dict = {}
    # Hold the organization's audit-chain lock: the payment below does all its writes, then waits at its
    # audit event, uncommitted, while the void runs up against the invoice it locked.
    with admin_engine.connect() as gate:
        gate.begin()
        gate.execute(
            text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"audit_events:{world.org_a}"}
        )
        gate_pid = gate.execute(text("select pg_backend_pid()")).scalar_one()
        payer = in_thread(
            crowd,
            world.finance,
            world.org_a,
            lambda s, actor: payments.record_payment(s, actor, a["id"], payments.PaymentInput(today(), "ACH 1", "ach")),
            outcome,
            "payment",
        )
        payer_pid = blocked_by(admin_engine, gate_pid, payer)
        assert payer_pid, outcome
        voider = in_thread(
            crowd,
            world.admin,
            world.org_a,
            lambda s, actor: ap_export.void_batch(s, actor, batch, "Wrong bank file."),
            outcome,
            "void",
        )
        assert blocked_by(admin_engine, payer_pid, voider), outcome
        gate.commit()
    payer.join(60)
    voider.join(60)
    assert not isinstance(outcome["payment"], Exception), repr(outcome["payment"])
    assert isinstance(outcome["void"], InvalidTransition), repr(outcome["void"])
    assert a["invoice_number"] in outcome["void"].message
    (row,) = owner_query(admin_engine, "select status from ap_export_batches where id = :b", b=batch)
    assert row["status"] == "live"
    assert [
        r["status"]
        for r in owner_query(admin_engine, "select status from invoices where batch_id = :b order by number", b=batch)
    ] == ["paid", "exported"]
