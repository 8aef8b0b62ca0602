"""One payment run, one email and one notice per person told (issue 22, item 10): "One payment run of 4 invoices sent
the contractor 4 emails and 4 notices."

A run of four invoices to one contractor is recorded through each door that makes a run — a batch marked paid,
several payments recorded at once, a remittance file, a Stripe run — with the real services and the real worker,
and what each person was told by the run is counted: the rows of ``email_messages`` and ``notifications`` written
after the run, per recipient, whatever their event. The contractor's one email lists every invoice, and so does the
engagement owner's; a single payment recorded alone still tells each of them once.
"""

from __future__ import annotations

from collections import Counter

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import run_jobs
from kit.money import approved_invoices, export, party, pay, today

from backoffice.services import payments, stripe_payouts

FOUR = ("100.00", "200.00", "300.00", "400.00")


def told(admin_engine, org_id) -> tuple[Counter, Counter, set, set]:
    """(emails per recipient, notices per recipient, the emails' ids, the notices' ids) of the organization."""
    emails = owner_query(admin_engine, "select id, recipient from email_messages where org_id = :o", o=org_id)
    notices = owner_query(
        admin_engine,
        "select n.id, u.email from notifications n join users u on u.id = n.user_id where n.org_id = :o",
        o=org_id,
    )
    return (
        Counter(e["recipient"] for e in emails),
        Counter(n["email"] for n in notices),
        {e["id"] for e in emails},
        {n["id"] for n in notices},
    )


@pytest.fixture
def four(world, act_as, admin_engine, database):
    """Contractor X's four approved invoices, every job of their approval run already (those emails are not the
    run's)."""
    _, invoices = approved_invoices(act_as, admin_engine, party(world), FOUR)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    return invoices


@pytest.fixture
def four_exported(world, act_as, admin_engine, database, four):
    """The four exported in one AP batch, finance told of the export already."""
    batch = export(act_as, world.finance, world.org_a, [i["id"] for i in four])
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    return [i | {"batch_id": batch.id} for i in four]


def told_by(world, admin_engine, database, record) -> tuple[Counter, Counter, list[dict]]:
    """What recording the run (``record()``) told whom: emails and notices per recipient, and the emails."""
    before_emails, before_notices, email_ids, _ = told(admin_engine, world.org_a)
    record()
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    after_emails, after_notices, _, _ = told(admin_engine, world.org_a)
    new = [
        m
        for m in owner_query(admin_engine, "select * from email_messages where org_id = :o", o=world.org_a)
        if m["id"] not in email_ids
    ]
    return after_emails - before_emails, after_notices - before_notices, new


def by_batch(world, act_as, invoices):
    # The batch was exported (finance told of it) before the run: see the fixture ``four``'s parameter.
    (batch_id,) = {i["batch_id"] for i in invoices}
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.record_batch_payment(session, actor, batch_id, payments.PaymentInput(today(), "ACH run 7", "ach"))


def at_once(world, act_as, invoices):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.record_payments(
        session, actor, [i["id"] for i in invoices], payments.PaymentInput(today(), "Wire 2026-12", "wire")
    )


def by_remittance_file(world, act_as, invoices):
    content = "Invoice number,Amount,Paid date,Reference\n" + "".join(
        f"{i['invoice_number']},{i['net_minor'] / 100:.2f},{today()},BANK-{n}\n" for n, i in enumerate(invoices)
    )
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.import_remittance(session, actor, content.encode(), "ach")


def by_stripe(world, act_as, invoices):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    stripe_payouts.send(session, actor, [i["id"] for i in invoices], configured=True)


DOORS = {
    "several payments recorded at once": at_once,
    "a remittance file": by_remittance_file,
}


def assert_told_once(world, emails, notices, new, invoices):
    contractor, owner = world.contractor_x_user.email, world.owner.email
    assert emails == Counter({contractor: 1, owner: 1}), emails
    assert notices == Counter({contractor: 1, owner: 1}), notices
    (to_contractor,) = [m for m in new if m["recipient"] == contractor]
    (to_owner,) = [m for m in new if m["recipient"] == owner]
    assert to_contractor["subject"] == "Paid: 4 invoices — $900.00"
    assert to_owner["subject"] == "Paid: 4 invoices on your engagements — $900.00"
    for message in (to_contractor, to_owner):
        assert all(i["invoice_number"] in message["text"] for i in invoices), message["text"]


@pytest.mark.parametrize("door", sorted(DOORS))
def test_a_run_of_four_invoices_tells_the_contractor_and_the_owner_once_each(
    world, act_as, admin_engine, database, four, door
):
    emails, notices, new = told_by(world, admin_engine, database, lambda: DOORS[door](world, act_as, four))
    assert_told_once(world, emails, notices, new, four)


def test_a_batch_of_four_marked_paid_tells_the_contractor_and_the_owner_once_each(
    world, act_as, admin_engine, database, four_exported
):
    emails, notices, new = told_by(world, admin_engine, database, lambda: by_batch(world, act_as, four_exported))
    assert_told_once(world, emails, notices, new, four_exported)


def test_a_stripe_run_of_four_invoices_tells_the_contractor_and_the_owner_once_each(
    world, act_as, admin_engine, database, four, configured, ready
):
    emails, notices, new = told_by(world, admin_engine, database, lambda: by_stripe(world, act_as, four))
    assert_told_once(world, emails, notices, new, four)


def test_four_payments_recorded_one_by_one_are_four_runs_and_tell_four_times(
    world, act_as, admin_engine, database, four
):
    """The report's four emails: a payment recorded alone is its own run. Recording the four one by one (the
    payment queue had no other way to record several) tells each person four times; ``record_payments`` above
    records them as one run."""

    def one_by_one():
        for invoice in four:
            pay(act_as, world.finance, world.org_a, invoice["id"])

    emails, notices, _ = told_by(world, admin_engine, database, one_by_one)
    assert emails == Counter({world.contractor_x_user.email: 4, world.owner.email: 4})
    assert notices == Counter({world.contractor_x_user.email: 4, world.owner.email: 4})


def test_a_single_payment_recorded_alone_still_tells_the_contractor_and_the_owner_once(
    world, act_as, admin_engine, database, four
):
    emails, notices, new = told_by(
        world, admin_engine, database, lambda: pay(act_as, world.finance, world.org_a, four[0]["id"])
    )
    assert emails == Counter({world.contractor_x_user.email: 1, world.owner.email: 1})
    assert notices == Counter({world.contractor_x_user.email: 1, world.owner.email: 1})
    (to_contractor,) = [m for m in new if m["recipient"] == world.contractor_x_user.email]
    assert to_contractor["subject"] == f"Paid: {four[0]['invoice_number']} — $90.00"


def test_the_runs_messages_keep_one_key_per_run_and_person(world, act_as, admin_engine, database, four):
    """The outbox's dedupe key names the event, the run and the person: a job that runs twice writes nothing
    twice, and two runs to the same person are two messages."""
    _, _, first = told_by(world, admin_engine, database, lambda: at_once(world, act_as, four[:2]))
    _, _, second = told_by(world, admin_engine, database, lambda: at_once(world, act_as, four[2:]))
    keys = {m["dedupe_key"] for m in first + second}
    assert len(keys) == 4
    for m in first + second:
        event, run_id, whose, user_id = m["dedupe_key"].split(":")
        assert event == "payment.run" and run_id == m["entity_id"] and whose in ("owner", str(world.contractor_x))
        assert user_id == str(m["recipient_user_id"])


def test_recording_several_at_once_is_all_or_nothing_when_one_is_paid_already(
    world, act_as, admin_engine, database, four
):
    from backoffice.errors import Conflict

    pay(act_as, world.finance, world.org_a, four[1]["id"])
    with pytest.raises(Conflict, match=f"{four[1]['invoice_number']} was already paid"):
        at_once(world, act_as, four)
    paid = owner_query(
        admin_engine, "select invoice_id from payments where org_id = :o and reversed_at is null", o=world.org_a
    )
    assert [p["invoice_id"] for p in paid] == [four[1]["id"]]
