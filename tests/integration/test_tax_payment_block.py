"""An organization that requires a tax form pays no contractor without a complete one (issue 18, item 5): its
invoices are neither exported (AP file or Stripe) nor recorded as paid, with the words why; the database refuses
the same moves (sql/tax.sql) when a service does not ask; what was handed over before is still paid and recorded
(a Stripe transfer that happened is always recorded); and once the form is in, the contractor is paid."""

from __future__ import annotations

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import run_jobs
from kit.money import approved_invoices, export, money_state, party, pay, set_org
from kit.tax import fill_in

from backoffice.errors import Conflict
from backoffice.queries.tax import tax_form_blocks
from backoffice.services import ap_export, payments, stripe_payouts

MISSING = "Tax form missing: no W-9 on file"


@pytest.fixture
def required(world, admin_engine):
    set_org(admin_engine, world.org_a, tax_form_required=True)


def status(admin_engine, invoice_id) -> str:
    return owner_query(admin_engine, "select status from invoices where id = :i", i=invoice_id)[0]["status"]


def test_blocks_are_told_to_any_staff_member_and_only_when_the_org_requires_a_form(world, act_as, admin_engine):
    both = [world.contractor_x, world.contractor_y]
    session, _ = sign_in(act_as, world.owner, world.org_a)
    assert tax_form_blocks(session, both) == {}
    set_org(admin_engine, world.org_a, tax_form_required=True)
    fill_in(act_as, world.contractor_y_user, world.org_a)
    for person in (world.owner, world.finance, world.admin):
        session, _ = sign_in(act_as, person, world.org_a)
        assert tax_form_blocks(session, both) == {world.contractor_x: MISSING}
        assert tax_form_blocks(session, [str(world.contractor_x)]) == {world.contractor_x: MISSING}
        assert tax_form_blocks(session, []) == {}
    session, _ = sign_in(act_as, world.admin_b, world.org_b)
    assert tax_form_blocks(session, both) == {}  # another organization's contractors: nothing at all


def test_an_incomplete_w9_blocks_with_what_is_missing(world, act_as, admin_engine, required):
    fill_in(act_as, world.contractor_x_user, world.org_a)
    with admin_engine.begin() as conn:  # a profile from before the form asked for the address (owner role)
        conn.exec_driver_sql("update tax_profiles set city = '' where contractor_id = %s", (world.contractor_x,))
    session, _ = sign_in(act_as, world.owner, world.org_a)
    assert tax_form_blocks(session, [world.contractor_x]) == {
        world.contractor_x: "Tax form incomplete: W-9 is missing the address"
    }


def test_without_a_form_an_invoice_is_neither_recorded_as_paid_nor_exported(world, act_as, admin_engine, required):
    _, (inv, other) = approved_invoices(act_as, admin_engine, party(world))
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Conflict, match=f"{inv['invoice_number']} cannot be paid: {MISSING}"):
        pay(act_as, world.finance, world.org_a, inv["id"])
    with pytest.raises(Conflict, match=f"{inv['invoice_number']} cannot be exported: {MISSING}"):
        export(act_as, world.finance, world.org_a, [inv["id"], other["id"]])
    assert money_state(admin_engine, world.org_a) == before


def test_an_export_of_everything_due_leaves_a_blocked_contractor_out(world, act_as, admin_engine, required):
    fill_in(act_as, world.contractor_y_user, world.org_a)
    _, (blocked,) = approved_invoices(act_as, admin_engine, party(world, "x"), ("1,000.00",), terms="0")
    _, (payable,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("2,000.00",), terms="0")
    session, actor = sign_in(act_as, world.finance, world.org_a)
    batch = ap_export.create_batch(session, actor, ap_export.Selection(due_by="2030-12-31", currency="USD"))
    assert batch.row_count == 1
    assert (status(admin_engine, blocked["id"]), status(admin_engine, payable["id"])) == ("approved", "exported")


def test_the_database_refuses_the_moves_when_a_service_does_not_ask(world, act_as, admin_engine, required, monkeypatch):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    before = money_state(admin_engine, world.org_a)
    monkeypatch.setattr(payments, "tax_form_blocks", lambda *a: {})
    monkeypatch.setattr(ap_export, "tax_form_blocks", lambda *a: {})
    # The guard's words, as a Conflict (services/ap_export.payment_refusal): never a raw database error, a page's 500.
    refused = f"^Invoice {inv['invoice_number']} cannot be exported or paid: {MISSING}"
    with pytest.raises(Conflict, match=refused):
        pay(act_as, world.finance, world.org_a, inv["id"])
    with pytest.raises(Conflict, match=refused):
        export(act_as, world.finance, world.org_a, [inv["id"]])
    assert money_state(admin_engine, world.org_a) == before


def test_an_invoice_exported_before_the_rule_is_still_recorded_as_paid(world, act_as, admin_engine):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    batch = export(act_as, world.finance, world.org_a, [inv["id"]])
    set_org(admin_engine, world.org_a, tax_form_required=True)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.record_batch_payment(
        session, actor, batch.id, payments.PaymentInput(batch.created_at.date().isoformat(), "ACH 7", "ach")
    )
    assert status(admin_engine, inv["id"]) == "paid"


def test_once_the_form_is_in_the_contractor_is_paid(world, act_as, admin_engine, required):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    fill_in(act_as, world.contractor_x_user, world.org_a)
    pay(act_as, world.finance, world.org_a, inv["id"])
    assert status(admin_engine, inv["id"]) == "paid"


# --- Stripe ---------------------------------------------------------------------------------------------------


def send(act_as, world, invoice_ids):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    return stripe_payouts.send(session, actor, list(invoice_ids), configured=True)


def test_stripe_sends_nothing_to_a_blocked_contractor_and_says_why(world, act_as, admin_engine, ready, required):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    with pytest.raises(Conflict, match=f"{inv['invoice_number']}: {MISSING}"):
        send(act_as, world, [inv["id"]])
    assert status(admin_engine, inv["id"]) == "approved"


def test_the_database_refuses_a_payout_attempt_for_a_blocked_contractor(
    world, act_as, admin_engine, ready, required, monkeypatch
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    monkeypatch.setattr(stripe_payouts, "tax_blocks", lambda *a: {})
    with pytest.raises(Conflict, match=f"this contractor cannot be paid: {MISSING}"):
        send(act_as, world, [inv["id"]])
    assert owner_query(admin_engine, "select * from payout_attempts where invoice_id = :i", i=inv["id"]) == []


def test_a_transfer_sent_before_the_rule_is_recorded_by_the_worker(world, act_as, admin_engine, database, ready):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    send(act_as, world, [inv["id"]])
    set_org(admin_engine, world.org_a, tax_form_required=True)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert status(admin_engine, inv["id"]) == "paid"
