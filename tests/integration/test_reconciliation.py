"""Reconciling Stripe with the payments recorded here (issue 17, item 5): the worker lists the platform's transfers
through the real SDK against the local fake, compares an organization's with its payments and payout attempts, and
keeps the run and its findings, which finance and admins alone read (raw SQL as the app role)."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, jobs, run_jobs
from kit.money import approved_invoices, party, pay, payments_of, set_org
from kit.stripe import KEY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.config import load_settings
from backoffice.domain.reconciliation import FindingKind
from backoffice.errors import Conflict, Forbidden
from backoffice.jobs import runtime, tasks
from backoffice.services import reconciliation, stripe_payouts
from backoffice.services.notifications import worker_actor


def paid_by_stripe(world, act_as, admin_engine, database, amounts=("1,000.00", "2,000.00")) -> list[dict]:
    """Approved invoices of contractor X, sent by finance and paid by the worker's transfers."""
    _, invoices = approved_invoices(act_as, admin_engine, party(world), amounts)
    send(act_as, world, invoices)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    return invoices


def send(act_as, world, invoices) -> None:
    session, actor = sign_in(act_as, world.finance, world.org_a)
    stripe_payouts.send(session, actor, [i["id"] for i in invoices], configured=True)


def reconcile(as_worker, fake, org_id) -> reconciliation.Outcome | None:
    """One run for ``org_id``, as the worker does it: Stripe listed first, then compared."""
    rail = fake.client(KEY)
    listing = reconciliation.list_transfers(rail)
    return reconciliation.reconcile(as_worker(org_id), worker_actor(org_id), listing, rail=rail)


def kinds(outcome) -> list[str]:
    return [f.kind.value for f in outcome.findings]


def stored(admin_engine, run_id) -> tuple[dict, list[dict]]:
    (run,) = owner_query(admin_engine, "select * from rail_reconciliations where id = :r", r=run_id)
    findings = owner_query(
        admin_engine, "select * from rail_reconciliation_findings where reconciliation_id = :r order by seq", r=run_id
    )
    return run, findings


def notify_jobs(admin_engine, world) -> list[dict]:
    return [
        j
        for j in jobs(admin_engine, task="notify", org_ids=[world.org_a])
        if j["args"]["event"] == "reconciliation.findings"
    ]


def stray_transfer(fake, account, world, org_id=None, amount=12_345, **metadata) -> dict:
    """A transfer made at Stripe (the dashboard, another program, a worker that died) naming an organization."""
    created = fake.client().v1.transfers.create(
        {
            "amount": amount,
            "currency": "usd",
            "destination": account,
            "metadata": {"org_id": str(org_id or world.org_a), **metadata},
        }
    )
    return created.to_dict()


def owner_sql(admin_engine, *statements, **params) -> None:
    """Alter rows as the owner role (a guard trigger named 'disable trigger …' is off for the transaction only)."""
    with admin_engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


# --- what a run finds ---------------------------------------------------------------------------------------


def test_a_clean_run_finds_nothing_and_keeps_what_it_compared(
    world, act_as, admin_engine, database, as_worker, configured, ready
):
    paid_by_stripe(world, act_as, admin_engine, database)
    stray_transfer(configured, ready, world, org_id=world.org_b)  # another organization's: not org A's to compare
    outcome = reconcile(as_worker, configured, world.org_a)
    assert outcome is not None
    assert (outcome.transfers, outcome.payments, outcome.findings) == (2, 2, [])
    run, findings = stored(admin_engine, outcome.run_id)
    assert (run["transfers_compared"], run["payments_compared"], run["findings"], run["requested"]) == (2, 2, 0, False)
    assert (run["window_to"] - run["window_from"]).days == 35
    assert findings == []
    assert notify_jobs(admin_engine, world) == []


def test_an_organization_not_paying_by_stripe_is_not_reconciled(world, admin_engine, as_worker, configured, ready):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=False)
    assert reconcile(as_worker, configured, world.org_a) is None
    assert owner_query(admin_engine, "select 1 from rail_reconciliations where org_id = :o", o=world.org_a) == []


def test_a_transfer_made_at_stripe_without_its_payment_here_is_found_and_told(
    world, act_as, admin_engine, database, as_worker, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    transfer = stray_transfer(
        configured, ready, world, invoice_id=str(inv["id"]), invoice_number=inv["invoice_number"], amount=45_600
    )

    outcome = reconcile(as_worker, configured, world.org_a)

    (finding,) = outcome.findings
    assert finding.kind is FindingKind.TRANSFER_WITHOUT_PAYMENT
    assert (finding.transfer_id, finding.invoice_id, finding.stripe_amount_minor) == (transfer["id"], inv["id"], 45_600)
    assert finding.words.startswith(f"Stripe made transfer {transfer['id']} of $456.00 on ")
    assert f"for {inv['invoice_number']} naming this organization, but no payment here records it" in finding.words
    assert f"record that payment with reference {transfer['id']}; if not, reverse it at Stripe" in finding.words
    run, (row,) = stored(admin_engine, outcome.run_id)
    assert (run["transfers_compared"], run["findings"]) == (1, 1)
    assert (row["kind"], row["transfer_id"], row["invoice_id"], row["words"]) == (
        "transfer_without_payment",
        transfer["id"],
        inv["id"],
        finding.words,
    )
    # Finance and admins are told, once: the next run finds nothing new.
    assert len(notify_jobs(admin_engine, world)) == 1
    reconcile(as_worker, configured, world.org_a)
    assert len(notify_jobs(admin_engine, world)) == 1
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    told = owner_query(
        admin_engine,
        "select recipient, subject, text from email_messages where org_id = :o and event = 'reconciliation.findings'",
        o=world.org_a,
    )
    assert {t["recipient"] for t in told} == {world.finance.email, world.admin.email}
    assert told[0]["subject"] == "Stripe and the payments recorded here differ: 1 finding"
    assert transfer["id"] in told[0]["text"] and "/payments/reconciliation" in told[0]["text"]


def test_a_transfer_recorded_as_paid_another_way_says_the_contractor_may_be_paid_twice(
    world, act_as, admin_engine, as_worker, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    pay(act_as, world.finance, world.org_a, inv["id"], reference="ACH 0042")
    transfer = stray_transfer(configured, ready, world, invoice_id=str(inv["id"]), amount=inv["net_minor"])
    (finding,) = reconcile(as_worker, configured, world.org_a).findings
    assert finding.kind is FindingKind.TRANSFER_WITHOUT_PAYMENT and finding.transfer_id == transfer["id"]
    assert "which is recorded as paid here by ach ACH 0042: the contractor may have been paid twice" in finding.words


def backdate_attempt(admin_engine, attempt_id, hours: int) -> None:
    # The guard keeps requested_at as the database set it; the owner turns it off for this one change.
    owner_sql(
        admin_engine,
        "alter table payout_attempts disable trigger payout_attempts_guard",
        "update payout_attempts set requested_at = requested_at - make_interval(hours => :h) where id = :a",
        "alter table payout_attempts enable trigger payout_attempts_guard",
        h=hours,
        a=attempt_id,
    )


def test_a_transfer_whose_worker_died_is_in_flight_for_an_hour_before_it_is_a_finding(
    world, act_as, admin_engine, as_worker, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv])  # its pay_out job is never run: the worker died after Stripe made the transfer
    (attempt,) = owner_query(admin_engine, "select * from payout_attempts where invoice_id = :i", i=inv["id"])
    transfer = stray_transfer(
        configured, ready, world, invoice_id=str(inv["id"]), payout_attempt=str(attempt["id"]), amount=inv["net_minor"]
    )
    assert reconcile(as_worker, configured, world.org_a).findings == []  # being recorded now

    backdate_attempt(admin_engine, attempt["id"], 2)
    (finding,) = reconcile(as_worker, configured, world.org_a).findings
    assert finding.kind is FindingKind.TRANSFER_WITHOUT_PAYMENT
    assert (finding.transfer_id, finding.attempt_id, finding.invoice_id) == (transfer["id"], attempt["id"], inv["id"])
    assert "but no payment is recorded here: its payout attempt has been in flight since " in finding.words


def test_an_attempt_in_flight_for_over_an_hour_without_a_transfer_is_a_finding(
    world, act_as, admin_engine, as_worker, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv])
    (attempt,) = owner_query(admin_engine, "select * from payout_attempts where invoice_id = :i", i=inv["id"])
    backdate_attempt(admin_engine, attempt["id"], 3)
    (finding,) = reconcile(as_worker, configured, world.org_a).findings
    assert finding.kind is FindingKind.ATTEMPT_IN_FLIGHT
    assert (finding.attempt_id, finding.invoice_id, finding.recorded_amount_minor) == (
        attempt["id"],
        inv["id"],
        inv["net_minor"],
    )
    assert finding.words.startswith(f"The Stripe payment of {inv['invoice_number']} ($900.00) has been in flight")


def test_an_attempt_refused_though_stripe_made_its_transfer_says_the_contractor_was_paid(
    world, act_as, admin_engine, database, as_worker, configured, ready
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv])
    (attempt,) = owner_query(admin_engine, "select * from payout_attempts where invoice_id = :i", i=inv["id"])
    transfer = stray_transfer(
        configured, ready, world, invoice_id=str(inv["id"]), payout_attempt=str(attempt["id"]), amount=inv["net_minor"]
    )
    configured.fail_next("/v1/transfers", "insufficient_funds", method="POST")
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert owner_query(admin_engine, "select status from payout_attempts where id = :a", a=attempt["id"]) == [
        {"status": "refused"}
    ]

    (finding,) = reconcile(as_worker, configured, world.org_a).findings
    assert finding.kind is FindingKind.TRANSFER_WITHOUT_PAYMENT and finding.transfer_id == transfer["id"]
    assert "but here its payout attempt was refused (the platform's Stripe balance is too low" in finding.words
    assert "and the invoice is on hold: the contractor has been paid. Do not send it again" in finding.words


def test_a_payment_whose_transfer_stripe_does_not_have_is_found(
    world, act_as, admin_engine, database, as_worker, configured, ready
):
    inv, _ = paid_by_stripe(world, act_as, admin_engine, database)
    (payment,) = payments_of(admin_engine, inv["id"])
    owner_sql(
        admin_engine,
        "alter table payments disable trigger payments_reversal_guard",
        "update payments set reference = 'tr_1NoSuchTransfer0' where id = :p",
        "alter table payments enable trigger payments_reversal_guard",
        p=payment["id"],
    )

    outcome = reconcile(as_worker, configured, world.org_a)

    assert sorted(kinds(outcome)) == ["payment_without_transfer", "transfer_without_payment"]
    (missing,) = [f for f in outcome.findings if f.kind is FindingKind.PAYMENT_WITHOUT_TRANSFER]
    assert (missing.transfer_id, missing.payment_id, missing.invoice_id) == (
        "tr_1NoSuchTransfer0",
        payment["id"],
        inv["id"],
    )
    assert missing.words.startswith(f"The payment of {inv['invoice_number']} ($900.00, paid ")
    assert "names Stripe transfer tr_1NoSuchTransfer0, which Stripe does not have." in missing.words
    # The real transfer, which no payment names any more, is the other finding.
    (unnamed,) = [f for f in outcome.findings if f.kind is FindingKind.TRANSFER_WITHOUT_PAYMENT]
    assert unnamed.transfer_id == payment["reference"]
    assert "(its payout attempt here is succeeded)" in unnamed.words


def test_a_payment_naming_another_organizations_transfer_is_found_without_saying_more(
    world, act_as, admin_engine, database, as_worker, configured, ready
):
    inv, _ = paid_by_stripe(world, act_as, admin_engine, database)
    (payment,) = payments_of(admin_engine, inv["id"])
    theirs = stray_transfer(configured, ready, world, org_id=world.org_b, amount=77_777)
    owner_sql(
        admin_engine,
        "alter table payments disable trigger payments_reversal_guard",
        "update payments set reference = :t where id = :p",
        "alter table payments enable trigger payments_reversal_guard",
        t=theirs["id"],
        p=payment["id"],
    )
    (missing,) = [
        f
        for f in reconcile(as_worker, configured, world.org_a).findings
        if f.kind is FindingKind.PAYMENT_WITHOUT_TRANSFER
    ]
    assert f"names Stripe transfer {theirs['id']}, which was not made for this organization." in missing.words
    assert "777.77" not in missing.words and missing.stripe_amount_minor is None


@pytest.mark.parametrize(("reversed_minor", "words"), [(None, "in full"), (10_000, "partly")])
def test_a_transfer_reversed_at_stripe_whose_payment_still_stands_is_found(
    world, act_as, admin_engine, database, as_worker, configured, ready, reversed_minor, words
):
    inv, _ = paid_by_stripe(world, act_as, admin_engine, database)
    (payment,) = payments_of(admin_engine, inv["id"])
    # Stripe reverses it; its webhook never arrives here.
    configured.client().v1.transfers.reversals.create(
        payment["reference"], {"amount": reversed_minor} if reversed_minor else None
    )

    (finding,) = reconcile(as_worker, configured, world.org_a).findings

    assert finding.kind is FindingKind.REVERSAL_DIFFERS
    assert (finding.transfer_id, finding.payment_id, finding.invoice_id) == (
        payment["reference"],
        payment["id"],
        inv["id"],
    )
    if words == "in full":
        assert finding.words.startswith(f"Stripe reversed transfer {payment['reference']} ($900.00) in full, but the")
        assert "send the transfer.reversed event again" in finding.words
    else:
        assert finding.words.startswith(f"Stripe reversed $100.00 of transfer {payment['reference']} ($900.00); ")
        assert "The contractor kept $800.00: settle the difference with the contractor by hand." in finding.words


# --- the jobs and "Check now" ---------------------------------------------------------------------------------


def test_the_daily_job_reconciles_every_organization_paying_by_stripe(
    world, act_as, admin_engine, database, configured, ready
):
    paid_by_stripe(world, act_as, admin_engine, database)
    runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))

    tasks.reconcile_stripe_daily(timestamp=int(datetime.now(UTC).timestamp()))

    (a,) = owner_query(admin_engine, "select * from rail_reconciliations where org_id = :o", o=world.org_a)
    assert (a["transfers_compared"], a["payments_compared"], a["findings"], a["requested"]) == (2, 2, 0, False)
    assert owner_query(admin_engine, "select 1 from rail_reconciliations where org_id = :o", o=world.org_b) == []


def test_check_now_queues_one_run_for_the_organization_and_the_worker_keeps_it(
    world, act_as, admin_engine, database, configured, ready
):
    paid_by_stripe(world, act_as, admin_engine, database, ("1,000.00",))
    session, actor = sign_in(act_as, world.finance, world.org_a)
    reconciliation.request_check(session, actor, configured=True)
    (job,) = jobs(admin_engine, task="reconcile_stripe", org_ids=[world.org_a])
    assert job["args"] == {"org_id": str(world.org_a)}
    (asked,) = owner_query(
        admin_engine,
        "select actor_user_id from audit_events where action = 'reconciliation.requested' and org_id = :o",
        o=world.org_a,
    )
    assert asked["actor_user_id"] == world.finance.id
    session, actor = sign_in(act_as, world.admin, world.org_a)
    with pytest.raises(Conflict, match="asked for a moment ago and has not run yet"):
        reconciliation.request_check(session, actor, configured=True)

    run_jobs(database, admin_engine, org_ids=[world.org_a])

    (run,) = owner_query(admin_engine, "select * from rail_reconciliations where org_id = :o", o=world.org_a)
    assert (run["requested"], run["transfers_compared"], run["payments_compared"]) == (True, 1, 1)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    reconciliation.request_check(session, actor, configured=True)  # it ran: asking again is fine


def test_check_now_is_refused_without_the_rail_and_for_people_outside_finance(world, act_as, admin_engine, configured):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict, match="Paying through Stripe is off"):
        reconciliation.request_check(session, actor, configured=True)
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict, match="not configured"):
        reconciliation.request_check(session, actor, configured=False)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(Forbidden, match="Only finance and admins"):
        reconciliation.request_check(session, actor, configured=True)
    assert jobs(admin_engine, task="reconcile_stripe", org_ids=[world.org_a]) == []


# --- who reads them: raw SQL as the app role ------------------------------------------------------------------


def plant_run(admin_engine, org_id, invoice_id=None) -> uuid.UUID:
    """A run with one finding, written as the owner role."""
    run_id = uuid.uuid4()
    owner_sql(
        admin_engine,
        "insert into rail_reconciliations (org_id, id, rail, started_at, window_from, window_to, transfers_compared,"
        " payments_compared, findings) values (:o, :r, 'stripe', now(), now() - interval '35 days', now(), 1, 0, 1)",
        "insert into rail_reconciliation_findings (org_id, reconciliation_id, seq, kind, transfer_id, invoice_id,"
        " currency, stripe_amount_minor, words) values (:o, :r, 1, 'transfer_without_payment', 'tr_1Planted', :i,"
        " 'USD', 100, 'Stripe made transfer tr_1Planted.')",
        o=org_id,
        r=run_id,
        i=invoice_id,
    )
    return run_id


COUNTS = "select (select count(*) from rail_reconciliations), (select count(*) from rail_reconciliation_findings)"


@pytest.mark.parametrize(
    ("who", "seen"), [("finance", (1, 1)), ("admin", (1, 1)), ("owner", (0, 0)), ("contractor_x_user", (0, 0))]
)
def test_only_finance_and_admins_read_the_runs_of_their_own_organization(world, act_as, admin_engine, who, seen):
    plant_run(admin_engine, world.org_a)
    plant_run(admin_engine, world.org_b)
    s = act_as(getattr(world, who).id, world.org_a)
    assert tuple(s.execute(text(COUNTS)).one()) == seen
    s = act_as(getattr(world, who).id, world.org_b)  # naming an organization it is no member of
    assert tuple(s.execute(text(COUNTS)).one()) == (0, 0)
    s = act_as(world.admin_b.id, world.org_b)
    assert tuple(s.execute(text(COUNTS)).one()) == (1, 1)


@pytest.mark.parametrize(
    "sql",
    [
        "insert into rail_reconciliations (org_id, rail, started_at, window_from, window_to, transfers_compared,"
        " payments_compared, findings) values (:o, 'stripe', now(), now() - interval '1 day', now(), 0, 0, 0)",
        "update rail_reconciliations set findings = 0 where org_id = :o",
        "delete from rail_reconciliation_findings where org_id = :o",
    ],
)
def test_the_web_role_cannot_write_a_run_even_as_an_admin(world, act_as, admin_engine, sql):
    plant_run(admin_engine, world.org_a)
    s = act_as(world.admin.id, world.org_a)
    with pytest.raises(DBAPIError, match="permission denied"):
        s.execute(text(sql), {"o": world.org_a})
    s.rollback()


def test_the_worker_writes_runs_only_of_the_organization_it_acts_for(world, as_worker):
    s = as_worker(world.org_a)
    with pytest.raises(DBAPIError, match="row-level security"):
        s.execute(
            text(
                "insert into rail_reconciliations (org_id, rail, started_at, window_from, window_to,"
                " transfers_compared, payments_compared, findings)"
                " values (:o, 'stripe', now(), now() - interval '1 day', now(), 0, 0, 0)"
            ),
            {"o": world.org_b},
        )
    s.rollback()


def test_the_kinds_the_database_accepts_are_the_domains(admin_engine):
    (row,) = owner_query(
        admin_engine,
        "select pg_get_constraintdef(c.oid) as definition from pg_constraint c"
        " where c.conrelid = 'rail_reconciliation_findings'::regclass and c.contype = 'c'"
        " and pg_get_constraintdef(c.oid) like '%kind%'",
    )
    listed = set(re.findall(r"'([a-z_]+)'::text", row["definition"]))
    assert (
        listed
        == {k.value for k in FindingKind}
        == {
            "transfer_without_payment",
            "payment_without_transfer",
            "amount_differs",
            "reversal_differs",
            "attempt_in_flight",
        }
    )
