"""Paying by Stripe (issue 17, items 3-6): finance sends approved invoices, the worker makes one transfer each
through the real Stripe SDK against the local fake, and records the payment, or the refusal, in one transaction.
Pay-once holds across every rail, under contention and when a worker dies between Stripe's answer and the commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
import stripe
from kit.engagements import owner_query, race, sign_in
from kit.jobs import jobs, run_jobs
from kit.money import approved_invoices, export, ledger_of, party, pay, payments_of, set_org
from kit.stripe import KEY, SECRET
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.db import make_engine, make_session_factory
from backoffice.errors import Conflict
from backoffice.services import stripe_payouts, stripe_transfers
from backoffice.services.notifications import worker_actor
from backoffice.services.stripe_rail import RailUnavailable

CONTENDERS = 20


def send(act_as, world, invoice_ids, person=None):
    session, actor = sign_in(act_as, person or world.finance, world.org_a)
    return stripe_payouts.send(session, actor, [i for i in invoice_ids], configured=True)


def work(database, admin_engine, world):
    run_jobs(database, admin_engine, org_ids=[world.org_a])


def attempts(admin_engine, invoice_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from payout_attempts where invoice_id = :i order by requested_at", i=invoice_id
    )


def status(admin_engine, invoice_id) -> str:
    return owner_query(admin_engine, "select status from invoices where id = :i", i=invoice_id)[0]["status"]


def test_finance_sends_an_invoice_and_the_worker_pays_it_with_one_transfer(
    world, act_as, admin_engine, database, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    sent = send(act_as, world, [inv["id"]])
    assert (sent.attempts, sent.totals) == (1, {"USD": (1, inv["net_minor"])})
    assert status(admin_engine, inv["id"]) == "exported"
    (attempt,) = attempts(admin_engine, inv["id"])
    assert (attempt["status"], attempt["destination"], attempt["amount_minor"]) == ("pending", ready, inv["net_minor"])

    work(database, admin_engine, world)

    (transfer,) = configured.transfers()
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (inv["net_minor"], "usd", ready)
    assert transfer["transfer_group"] == f"engagement-{inv['engagement_id']}"
    assert transfer["metadata"]["invoice_number"] == inv["invoice_number"]
    (payment,) = payments_of(admin_engine, inv["id"])
    assert (payment["reference"], payment["method"], payment["source"]) == (transfer["id"], "stripe", "stripe")
    assert (payment["recorded_by"], payment["run_id"]) == (world.finance.id, sent.run_id)
    assert status(admin_engine, inv["id"]) == "paid"
    (attempt,) = attempts(admin_engine, inv["id"])
    assert (attempt["status"], attempt["transfer_id"], attempt["payment_id"]) == (
        "succeeded",
        transfer["id"],
        payment["id"],
    )
    paid = [r for r in ledger_of(admin_engine, inv["id"]) if r["event"] == "paid"]
    assert sorted(r["amount_minor"] for r in paid) == [-inv["net_minor"], inv["net_minor"]]
    assert configured.balance("usd") == 10_000_000 - inv["net_minor"]
    actions = [
        r["action"]
        for r in owner_query(
            admin_engine, "select action from audit_events where org_id = :o order by seq", o=world.org_a
        )
    ]
    assert [a for a in actions if a.startswith(("payout.", "payment."))] == ["payout.sent", "payment.recorded"]
    notices = owner_query(
        admin_engine,
        "select subject from email_messages where org_id = :o and event = 'payment.run'",
        o=world.org_a,
    )
    assert notices and all(inv["invoice_number"] in n["subject"] for n in notices)


def test_a_refusal_holds_the_invoice_with_stripes_reason_and_tells_finance_once_per_run(
    world, act_as, admin_engine, database, configured, ready
):
    _, invoices = approved_invoices(act_as, admin_engine, party(world))
    configured.set_balance("usd", 0)
    sent = send(act_as, world, [i["id"] for i in invoices])
    assert sent.attempts == 2

    work(database, admin_engine, world)

    assert configured.transfers() == []
    for inv in invoices:
        assert status(admin_engine, inv["id"]) == "on_hold"
        (attempt,) = attempts(admin_engine, inv["id"])
        assert attempt["status"] == "refused"
        assert attempt["failure_words"].startswith("the platform's Stripe balance is too low")
        assert payments_of(admin_engine, inv["id"]) == []
    told = owner_query(
        admin_engine,
        "select recipient, subject, text from email_messages where org_id = :o and event = 'payout.refused'",
        o=world.org_a,
    )
    assert {t["recipient"] for t in told} >= {world.finance.email}
    assert len([t for t in told if t["recipient"] == world.finance.email]) == 1  # once for the run, both listed
    assert told[0]["subject"] == "Stripe refused 2 payments; on hold"
    assert all(i["invoice_number"] in told[0]["text"] for i in invoices)


def test_a_released_hold_is_sent_again_with_a_new_attempt_and_paid_once(
    world, act_as, admin_engine, database, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    configured.fail_next("/v1/transfers", "insufficient_funds", method="POST")
    send(act_as, world, [inv["id"]])
    work(database, admin_engine, world)
    assert status(admin_engine, inv["id"]) == "on_hold"

    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict, match=r"Nothing was sent to Stripe\. ORGA-\d+: It is on hold\."):
        stripe_payouts.send(session, actor, [inv["id"]], configured=True)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    stripe_payouts.release_hold(session, actor, inv["id"])
    assert status(admin_engine, inv["id"]) == "approved"
    send(act_as, world, [inv["id"]])
    work(database, admin_engine, world)

    assert [a["status"] for a in attempts(admin_engine, inv["id"])] == ["refused", "succeeded"]
    assert len(configured.transfers()) == 1
    assert len(payments_of(admin_engine, inv["id"])) == 1 and status(admin_engine, inv["id"]) == "paid"


def test_an_account_stripe_restricted_after_the_send_is_refused_and_held(
    world, act_as, admin_engine, database, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    configured.restrict(ready)
    work(database, admin_engine, world)
    (attempt,) = attempts(admin_engine, inv["id"])
    assert (attempt["status"], attempt["failure_code"]) == ("refused", "insufficient_capabilities_for_transfer")
    assert "cannot receive transfers yet" in attempt["failure_words"]
    assert status(admin_engine, inv["id"]) == "on_hold"


@pytest.mark.parametrize("kind", ["500", "429", "timeout"])
def test_stripe_not_answering_is_retried_with_the_same_key_and_pays_once(
    world, act_as, admin_engine, database, configured, ready, kind
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    # More failures than the SDK's own two retries: the job itself fails and procrastinate tries it again.
    configured.fail_next("/v1/transfers", kind, times=3, method="POST", timeout_seconds=1)
    work(database, admin_engine, world)
    work(database, admin_engine, world)

    assert len(configured.transfers()) == 1
    (payment,) = payments_of(admin_engine, inv["id"])
    assert payment["reference"] == configured.transfers()[0]["id"]
    (job,) = jobs(admin_engine, task="pay_out", org_ids=[world.org_a])
    assert (job["status"], job["attempts"]) == ("succeeded", 2)  # the job itself was tried again
    assert attempts(admin_engine, inv["id"])[0]["tries"] == 2  # the try Stripe did not answer counts


def test_a_transfer_stripe_made_before_the_connection_broke_comes_back_on_retry(
    world, act_as, admin_engine, database, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    configured.accept_then_drop("/v1/transfers", times=3, method="POST")
    work(database, admin_engine, world)
    work(database, admin_engine, world)
    (transfer,) = configured.transfers()
    (payment,) = payments_of(admin_engine, inv["id"])
    assert payment["reference"] == transfer["id"]
    assert configured.balance("usd") == 10_000_000 - inv["net_minor"]


def test_twenty_concurrent_sends_of_one_invoice_make_one_transfer_and_one_payment(
    world, act_as, admin_engine, database, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    act_as(None, None)
    engine = make_engine(database.app_url, pool_size=CONTENDERS + 5, max_overflow=0)
    try:
        outcomes = race(
            make_session_factory(engine),
            world.org_a,
            [world.finance if i % 2 else world.admin for i in range(CONTENDERS)],
            lambda session, actor, i: stripe_payouts.send(session, actor, [inv["id"]], configured=True),
        )
    finally:
        engine.dispose()
    wins = [o for o in outcomes if isinstance(o, stripe_payouts.Sent)]
    losses = [o for o in outcomes if not isinstance(o, stripe_payouts.Sent)]
    assert (len(wins), len(losses)) == (1, CONTENDERS - 1), outcomes
    assert all(isinstance(o, Conflict) and "Stripe is paying it already" in o.message for o in losses), losses
    work(database, admin_engine, world)
    assert len(configured.transfers()) == 1
    assert len(payments_of(admin_engine, inv["id"])) == 1
    assert len(attempts(admin_engine, inv["id"])) == 1


CRASH = textwrap.dedent(
    """
    import os, sys, uuid
    from backoffice.config import load_settings
    from backoffice.jobs import runtime
    from backoffice.services import stripe_transfers
    from backoffice.services.notifications import worker_actor
    from backoffice.services.stripe_rail import client_for

    def die(*args, **kwargs):  # Stripe has answered with the transfer; the worker dies before its commit
        os._exit(9)

    stripe_transfers._succeed = die
    settings = load_settings()
    runtime.configure(sys.argv[1], settings)
    org, attempt = uuid.UUID(sys.argv[2]), uuid.UUID(sys.argv[3])
    with runtime.worker_session(org) as session:
        stripe_transfers.pay_out(session, worker_actor(org), attempt, rail=client_for(settings))
    """
)


def test_a_worker_killed_after_stripe_accepted_and_before_commit_is_resumed_with_the_same_transfer(
    world, act_as, admin_engine, database, configured, ready, as_worker
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    (attempt,) = attempts(admin_engine, inv["id"])
    with admin_engine.begin() as conn:  # the job is taken by the worker that dies
        conn.execute(text("delete from procrastinate.procrastinate_jobs where task_name = 'pay_out'"))
    child = subprocess.run(
        [sys.executable, "-c", CRASH, database.worker_url, str(world.org_a), str(attempt["id"])],
        env=os.environ.copy(),
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == 9, child.stderr.decode()[-2000:]
    (transfer,) = configured.transfers()  # Stripe made it ...
    assert payments_of(admin_engine, inv["id"]) == []  # ... and nothing was recorded
    assert attempts(admin_engine, inv["id"])[0]["status"] == "pending"

    # The sweep (or a retried job) runs the attempt again, as the worker.
    session = as_worker(world.org_a)
    rail = configured.client(KEY)  # the worker's key: Stripe keeps idempotency keys per API key
    outcome = stripe_transfers.pay_out(session, worker_actor(world.org_a), attempt["id"], rail=rail)
    assert outcome == f"paid: {transfer['id']}"
    assert len(configured.transfers()) == 1
    (payment,) = payments_of(admin_engine, inv["id"])
    assert payment["reference"] == transfer["id"]
    assert configured.balance("usd") == 10_000_000 - inv["net_minor"]


def test_an_invoice_in_a_live_batch_cannot_be_sent_and_one_in_flight_cannot_be_exported_or_recorded(
    world, act_as, admin_engine, database, configured, ready
):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    export(act_as, world.finance, world.org_a, [a["id"]])
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict, match="AP export batch"):
        stripe_payouts.send(session, actor, [a["id"]], configured=True)

    send(act_as, world, [b["id"]])
    with pytest.raises(Conflict, match=r"\(ORGA-\d+ is being paid through Stripe\)\. Nothing was exported"):
        export(act_as, world.finance, world.org_a, [b["id"]])
    with pytest.raises(Conflict, match="being paid through Stripe"):
        pay(act_as, world.finance, world.org_a, b["id"])
    # And the database says so whatever the code does: a manual payment row for it is refused.
    with admin_engine.connect() as conn, pytest.raises(DBAPIError, match="being paid through Stripe"):
        conn.execute(
            text(
                "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference,"
                " method, source, recorded_by) values (:o, :c, :i, :n, 'USD', current_date, 'ACH 1', 'ach', 'manual',"
                " :u)"
            ),
            {"o": world.org_a, "c": world.contractor_x, "i": b["id"], "n": b["net_minor"], "u": world.finance.id},
        )
    work(database, admin_engine, world)
    assert status(admin_engine, b["id"]) == "paid"


def test_segregation_of_duties_the_approver_cannot_send_the_payment(
    world, act_as, admin_engine, database, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world), approver=world.admin)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    with pytest.raises(Conflict, match="Segregation of duties"):
        stripe_payouts.send(session, actor, [inv["id"]], configured=True)
    assert attempts(admin_engine, inv["id"]) == []


def test_a_reversed_transfer_reverses_the_payment_and_holds_the_invoice(
    world, act_as, admin_engine, database, configured, ready, client
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    work(database, admin_engine, world)
    (transfer,) = configured.transfers()
    configured.client().v1.transfers.reversals.create(transfer["id"])
    (event,) = configured.events("transfer.reversed")
    for delivered in (event, event):  # Stripe sends it again until answered: the repeat changes nothing
        response = _post(client, delivered)
        assert response.status_code == 200
    work(database, admin_engine, world)

    (payment,) = payments_of(admin_engine, inv["id"])
    assert payment["reversed_at"] is not None and payment["reversal_reference"].startswith("trr_")
    assert status(admin_engine, inv["id"]) == "on_hold"
    assert attempts(admin_engine, inv["id"])[0]["status"] == "reversed"
    lines = ledger_of(admin_engine, inv["id"])
    assert sorted(r["amount_minor"] for r in lines if r["event"] == "reversed") == [-inv["net_minor"], inv["net_minor"]]
    assert {r["account"]: r["amount_minor"] for r in lines if r["event"] == "reversed"} == {
        "cash": inv["net_minor"],
        "accounts_payable": -inv["net_minor"],
    }
    told = owner_query(
        admin_engine,
        "select recipient from email_messages where org_id = :o and event = 'payment.reversed'",
        o=world.org_a,
    )
    assert {t["recipient"] for t in told} >= {world.finance.email, world.contractor_x_user.email}
    assert len(owner_query(admin_engine, "select 1 from rail_events where type = 'transfer.reversed'")) >= 1

    # Paid again after the hold is released: a new attempt and transfer; one payment stands.
    session, actor = sign_in(act_as, world.finance, world.org_a)
    stripe_payouts.release_hold(session, actor, inv["id"])
    send(act_as, world, [inv["id"]])
    work(database, admin_engine, world)
    standing = [p for p in payments_of(admin_engine, inv["id"]) if p["reversed_at"] is None]
    assert len(standing) == 1 and len(configured.transfers()) == 2


def _post(client, event):
    payload = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
    return client.post(
        "/webhooks/stripe", data=payload, headers={"Content-Type": "application/json", "Stripe-Signature": signature}
    )


def test_automatic_payment_pays_only_what_is_due_for_ready_accounts(
    world, act_as, admin_engine, database, configured, ready, as_worker
):
    _, (due,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",), terms="0")  # pay on approval
    _, (later,) = approved_invoices(act_as, admin_engine, party(world), ("2,000.00",), terms="30")
    _, (other,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("3,000.00",), terms="0")  # no account
    assert later["due_date"] > due["due_date"] == datetime.now(UTC).date()
    set_org(admin_engine, world.org_a, auto_pay_enabled=True, auto_pay_by=world.admin.id)
    session = as_worker(world.org_a)
    sent = stripe_payouts.pay_due(session, worker_actor(world.org_a), datetime.now(UTC).date(), configured=True)
    assert sent is not None and sent.attempts == 1
    work(database, admin_engine, world)
    assert status(admin_engine, due["id"]) == "paid"
    assert (status(admin_engine, later["id"]), status(admin_engine, other["id"])) == ("approved", "approved")
    (payment,) = payments_of(admin_engine, due["id"])
    assert payment["recorded_by"] == world.admin.id
    assert attempts(admin_engine, due["id"])[0]["automatic"] is True


def test_a_reversal_that_arrives_before_its_payment_is_recorded_is_applied_after_it(
    world, act_as, admin_engine, database, configured, ready, client, as_worker
):
    """Out of order: Stripe made the transfer (its answer never reached the worker) and reversed it, and the
    reversal's event arrives while the attempt is still in flight. It waits for the payment, then reverses it."""
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    (attempt,) = attempts(admin_engine, inv["id"])
    with admin_engine.begin() as conn:  # the worker takes the job itself, below
        conn.execute(text("delete from procrastinate.procrastinate_jobs where task_name = 'pay_out'"))
    rail = configured.client(KEY, max_network_retries=0)
    configured.accept_then_drop("/v1/transfers", method="POST")
    with pytest.raises(RailUnavailable):  # Stripe made it; the answer was lost
        stripe_transfers.pay_out(as_worker(world.org_a), worker_actor(world.org_a), attempt["id"], rail=rail)
    (transfer,) = configured.transfers()
    configured.client().v1.transfers.reversals.create(transfer["id"])
    (event,) = configured.events("transfer.reversed")
    assert _post(client, event).status_code == 200
    run_jobs(database, admin_engine, org_ids=[world.org_a], due_now=False)
    (job,) = jobs(admin_engine, task="apply_rail_event", org_ids=[world.org_a])
    assert (job["status"], job["attempts"]) == ("todo", 1)  # waiting for the payment
    assert payments_of(admin_engine, inv["id"]) == []

    outcome = stripe_transfers.pay_out(as_worker(world.org_a), worker_actor(world.org_a), attempt["id"], rail=rail)
    assert outcome == f"paid: {transfer['id']}"  # the same transfer, by its idempotency key
    work(database, admin_engine, world)

    (payment,) = payments_of(admin_engine, inv["id"])
    assert payment["reversed_at"] is not None and status(admin_engine, inv["id"]) == "on_hold"
    assert len(configured.transfers()) == 1


def test_terms_of_zero_days_pay_on_approval_where_the_organization_pays_automatically(
    world, act_as, admin_engine, database, configured, ready
):
    set_org(admin_engine, world.org_a, auto_pay_enabled=True, auto_pay_by=world.admin.id)
    _, (now,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",), terms="0")
    _, (later,) = approved_invoices(act_as, admin_engine, party(world), ("2,000.00",), terms="7")
    assert [j["args"]["invoice_id"] for j in jobs(admin_engine, task="pay_on_approval", org_ids=[world.org_a])] == [
        str(now["id"])
    ]
    work(database, admin_engine, world)
    assert (status(admin_engine, now["id"]), status(admin_engine, later["id"])) == ("paid", "approved")
    (payment,) = payments_of(admin_engine, now["id"])
    assert (payment["source"], payment["recorded_by"]) == ("stripe", world.admin.id)


def test_terms_of_zero_days_wait_for_finance_where_the_organization_does_not_pay_automatically(
    world, act_as, admin_engine, database, configured, ready
):
    _, (now,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",), terms="0")
    work(database, admin_engine, world)
    assert status(admin_engine, now["id"]) == "approved" and attempts(admin_engine, now["id"]) == []


def test_twenty_people_paying_one_invoice_by_stripe_and_by_hand_at_once_pay_it_once(
    world, act_as, admin_engine, database, configured, ready
):
    """Across rails: half send the invoice to Stripe, half record it as paid by hand, all at once. One of them
    wins; every other is told why; whatever the winner's rail, one payment stands and Stripe moved money once or
    not at all."""
    from backoffice.services import payments

    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    act_as(None, None)
    engine = make_engine(database.app_url, pool_size=CONTENDERS + 5, max_overflow=0)

    def pay_somehow(session, actor, i):
        if i % 2:
            return stripe_payouts.send(session, actor, [inv["id"]], configured=True)
        return payments.record_payment(
            session, actor, inv["id"], payments.PaymentInput(datetime.now(UTC).date().isoformat(), f"ACH {i}", "ach")
        )

    try:
        outcomes = race(make_session_factory(engine), world.org_a, [world.finance] * CONTENDERS, pay_somehow)
    finally:
        engine.dispose()
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert (len(wins), len(losses)) == (1, CONTENDERS - 1), outcomes
    assert all(isinstance(o, Conflict) for o in losses), [repr(o) for o in losses]
    work(database, admin_engine, world)
    (payment,) = payments_of(admin_engine, inv["id"])
    by_stripe = isinstance(wins[0], stripe_payouts.Sent)
    assert payment["source"] == ("stripe" if by_stripe else "manual")
    assert len(configured.transfers()) == (1 if by_stripe else 0)
    assert status(admin_engine, inv["id"]) == "paid"


def test_a_transfer_made_is_recorded_even_if_segregation_of_duties_was_turned_on_since_it_was_sent(
    world, act_as, admin_engine, database, configured, ready
):
    """Segregation of duties is held when a payment is sent; the transfer Stripe makes after is recorded whatever the
    setting says by then, or it would be stranded unrecorded."""
    set_org(admin_engine, world.org_a, segregation_of_duties=False)
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world), approver=world.admin)
    send(act_as, world, [inv["id"]], person=world.admin)
    set_org(admin_engine, world.org_a, segregation_of_duties=True)
    work(database, admin_engine, world)
    (payment,) = payments_of(admin_engine, inv["id"])
    assert (payment["recorded_by"], status(admin_engine, inv["id"])) == (world.admin.id, "paid")


def test_stripe_refusing_the_key_is_retried_not_taken_for_a_refusal_of_the_payment(
    world, act_as, admin_engine, configured, ready, as_worker
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    (attempt,) = attempts(admin_engine, inv["id"])
    wrong_key = configured.client("rk_live_rotated_away", max_network_retries=0)  # Stripe answers 401
    with pytest.raises(RailUnavailable):
        stripe_transfers.pay_out(as_worker(world.org_a), worker_actor(world.org_a), attempt["id"], rail=wrong_key)
    assert (status(admin_engine, inv["id"]), attempts(admin_engine, inv["id"])[0]["status"]) == ("exported", "pending")


def test_what_the_review_page_says_can_be_sent_is_what_the_database_accepts(
    world, act_as, admin_engine, database, configured, ready
):
    """One rule, two copies: stripe_payouts.plan (the review page's "cannot be sent now, because …") and
    payout_attempts_guard (sql/rails.sql). For an invoice in each situation, plan says ready exactly when the guard
    accepts the attempt."""
    _, (fine, in_batch) = approved_invoices(act_as, admin_engine, party(world))
    _, (paid_by_hand, held) = approved_invoices(act_as, admin_engine, party(world))
    _, (in_flight, _) = approved_invoices(act_as, admin_engine, party(world))
    _, (own, _) = approved_invoices(act_as, admin_engine, party(world), approver=world.admin)
    _, (no_account, _) = approved_invoices(act_as, admin_engine, party(world, "y"))
    export(act_as, world.finance, world.org_a, [in_batch["id"]])
    pay(act_as, world.finance, world.org_a, paid_by_hand["id"])
    configured.fail_next("/v1/transfers", "insufficient_funds", method="POST")
    send(act_as, world, [held["id"]])
    work(database, admin_engine, world)
    send(act_as, world, [in_flight["id"]])
    situations = {
        "authorized, account ready": (fine, True),
        "in a live AP batch": (in_batch, False),
        "paid by hand": (paid_by_hand, False),
        "on hold": (held, False),
        "handed to Stripe already": (in_flight, False),
        "authorized by the sender": (own, False),
        "no payout account": (no_account, False),
    }
    accounts = {
        r["contractor_id"]: r["external_id"] for r in owner_query(admin_engine, "select * from payout_accounts")
    }
    for what, (invoice, expected) in situations.items():
        session, actor = sign_in(act_as, world.admin, world.org_a)
        planned = stripe_payouts.plan(session, actor, [invoice["id"]])
        session.rollback()
        session, actor = sign_in(act_as, world.admin, world.org_a)
        try:
            with session.begin_nested():
                session.execute(
                    text(
                        "insert into payout_attempts (org_id, run_id, invoice_id, contractor_id, rail, destination,"
                        " amount_minor, currency, requested_by) values (:o, gen_random_uuid(), :i, :c, 'stripe', :d,"
                        " :n, :cur, :u)"
                    ),
                    {
                        "o": world.org_a,
                        "i": invoice["id"],
                        "c": invoice["contractor_id"],
                        "d": accounts.get(invoice["contractor_id"], "acct_none"),
                        "n": invoice["net_minor"],
                        "cur": invoice["currency"],
                        "u": world.admin.id,
                    },
                )
            accepted = True
        except DBAPIError:
            accepted = False
        session.rollback()
        assert (bool(planned.ready), accepted) == (expected, expected), (what, planned.blocked)
