"""Every payment door against the contractor's answer to its self-billed invoice (issue 21, item 4): "all due by"
export, a batch's payment, a remittance file, Stripe sent by hand and automatically. Before export a rejection stops
payment, and where the organization requires acceptance so does no acceptance yet; each door refuses in words and
writes nothing. Once exported, a payment that really went out is recorded whatever the answer. Where only the database
refuses (a door skipped, or a rejection committed while a door waited on the invoice's lock), the door still refuses in
the guard's words, never with a raw database error. The one-invoice payment and selected export: test_self_billing_flow.
"""

from __future__ import annotations

import threading
import time

import pytest
from kit import signin
from kit.engagements import owner_query, sign_in
from kit.money import approved_invoices, export, money_state, party, pay, payments_of, set_org, today
from kit.self_billing import answer, file_self_billed, issued_invoices
from sqlalchemy import text

from backoffice.errors import Conflict, ValidationError
from backoffice.services import ap_export, payments, stripe_payouts

REJECTION = "The retainage is 5% in our contract, not 10%."
FAR = "2100-01-01"  # an "all due by" date past every due date


def status(admin_engine, invoice_id) -> str:
    return owner_query(admin_engine, "select status from invoices where id = :i", i=invoice_id)[0]["status"]


def waiting_and_rejected(act_as, admin_engine, world) -> tuple[dict, dict]:
    """Contractor X's two approved invoices with self-billed invoices issued: one awaiting its answer, one rejected."""
    waiting, rejected = issued_invoices(act_as, admin_engine, world, ("100.00", "150.00"))
    answer(act_as, world.contractor_x_user, world.org_a, rejected["id"], "rejected", REJECTION)
    return waiting, rejected


def remittance(*invoices) -> bytes:
    lines = ["invoice number,amount,paid date,reference"]
    lines += [
        f"{i['invoice_number']},{i['net_minor'] // 100}.{i['net_minor'] % 100:02d},{today()},R{n}"
        for n, i in enumerate(invoices, 1)
    ]
    return ("\n".join(lines) + "\n").encode()


def import_file(act_as, world, content: bytes):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    return payments.import_remittance(session, actor, content, "ach")


# --- who learns what stops a payment ----------------------------------------------------------------------------------


def test_what_the_answers_stop_is_told_to_each_member_of_its_own_organization_and_contractor_only(
    act_as, admin_engine, world
):
    (x,) = issued_invoices(act_as, admin_engine, world)
    (y,) = issued_invoices(act_as, admin_engine, world, which="y")
    answer(act_as, world.contractor_x_user, world.org_a, x["id"], "rejected", REJECTION)
    answer(act_as, world.contractor_y_user, world.org_a, y["id"], "rejected", REJECTION)
    blocks = text("select invoice_id from acceptance_blocks(null)")
    for person, org_id, expected in (
        (world.finance, world.org_a, {x["id"], y["id"]}),
        (world.owner, world.org_a, {x["id"], y["id"]}),
        (world.contractor_x_user, world.org_a, {x["id"]}),
        (world.contractor_y_user, world.org_a, {y["id"]}),
        (world.admin_b, world.org_b, set()),
        (world.contractor_z_user, world.org_b, set()),
    ):
        session, _ = sign_in(act_as, person, org_id)
        assert set(session.execute(blocks).scalars()) == expected, person.email
        session.rollback()


# --- before export: each door refuses what the answer stops -----------------------------------------------------------


def test_all_due_by_leaves_out_what_the_answers_stop_and_says_so_when_nothing_else_is_due(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, acceptance_required=True)
    waiting, rejected = waiting_and_rejected(act_as, admin_engine, world)
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as refused:
        export(act_as, world.finance, world.org_a, due_by=FAR, currency="USD")
    assert refused.value.fields == {
        "due_by": "2 authorized payments in USD are due by that date, but none can be exported now: 1 is waiting"
        " for the contractor's acceptance of its self-billed invoice; 1 is rejected by the contractor."
        " Nothing was exported."
    }
    assert money_state(admin_engine, world.org_a) == before

    answer(act_as, world.contractor_x_user, world.org_a, waiting["id"], "accepted")
    batch = export(act_as, world.finance, world.org_a, due_by=FAR, currency="USD")
    assert batch.row_count == 1
    assert (status(admin_engine, waiting["id"]), status(admin_engine, rejected["id"])) == ("exported", "approved")


def test_all_due_by_still_says_when_nothing_is_due(act_as, admin_engine, world):
    waiting_and_rejected(act_as, admin_engine, world)
    with pytest.raises(ValidationError) as refused:
        export(act_as, world.finance, world.org_a, due_by="2000-01-01", currency="USD")
    assert refused.value.fields == {"due_by": "No authorized payment in USD is due by that date; nothing was exported."}


def test_a_remittance_file_paying_what_the_answers_stop_is_refused_line_by_line(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, acceptance_required=True)
    waiting, rejected = waiting_and_rejected(act_as, admin_engine, world)
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as refused:
        import_file(act_as, world, remittance(waiting, rejected))
    assert refused.value.fields == {
        "file": f"Nothing was imported. line 2: {waiting['invoice_number']} cannot be paid: it awaits the contractor's"
        f" acceptance of its self-billed invoice; line 3: {rejected['invoice_number']} cannot be paid: the contractor"
        " rejected its self-billed invoice"
    }
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("automatic", [False, True])
def test_stripe_sends_nothing_the_answers_stop(act_as, admin_engine, world, configured, ready, automatic):
    set_org(admin_engine, world.org_a, acceptance_required=True, auto_pay_enabled=True, auto_pay_by=world.admin.id)
    _, (waiting, rejected) = approved_invoices(act_as, admin_engine, party(world), ("100.00", "150.00"), terms="0")
    for invoice in (waiting, rejected):
        file_self_billed(admin_engine, invoice["id"])
    answer(act_as, world.contractor_x_user, world.org_a, rejected["id"], "rejected", REJECTION)
    before = money_state(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.admin if automatic else world.finance, world.org_a)
    with pytest.raises(Conflict) as refused:
        if automatic:
            stripe_payouts.send(session, actor, None, configured=True, automatic=True, due_by=None)
        else:
            stripe_payouts.send(session, actor, [waiting["id"], rejected["id"]], configured=True)
    assert refused.value.message == (
        f"Nothing was sent to Stripe. {waiting['invoice_number']}: It awaits the contractor's acceptance of its"
        f" self-billed invoice; {rejected['invoice_number']}: The contractor rejected its self-billed invoice"
    )
    assert money_state(admin_engine, world.org_a) == before
    assert owner_query(admin_engine, "select * from payout_attempts where org_id = :o", o=world.org_a) == []


# --- after export: a payment that went out is recorded ----------------------------------------------------------------


@pytest.mark.parametrize("door", ["batch", "remittance", "one payment"])
def test_a_payment_of_an_invoice_rejected_after_its_export_is_recorded(act_as, admin_engine, world, door):
    (invoice,) = issued_invoices(act_as, admin_engine, world, ("100.00",))
    batch = export(act_as, world.finance, world.org_a, [invoice["id"]])
    # The bank runs the file; meanwhile the contractor rejects. The money has gone: its payment is recorded.
    answer(act_as, world.contractor_x_user, world.org_a, invoice["id"], "rejected", REJECTION)
    session, _ = sign_in(act_as, world.finance, world.org_a)
    assert session.execute(text("select invoice_id from acceptance_blocks(null)")).all() == []
    session.rollback()
    if door == "batch":
        session, actor = sign_in(act_as, world.finance, world.org_a)
        payments.record_batch_payment(session, actor, batch.id, payments.PaymentInput(today(), "ACH 1", "ach"))
    elif door == "remittance":
        import_file(act_as, world, remittance(invoice))
    else:
        pay(act_as, world.finance, world.org_a, invoice["id"])
    assert status(admin_engine, invoice["id"]) == "paid" and len(payments_of(admin_engine, invoice["id"])) == 1


# --- where only the database refuses ----------------------------------------------------------------------------------

# The guards' words (sql/self_billing.sql), with their hints: a rejection's whatever the organization requires.
DB_REJECTED = (
    "{number} cannot be exported or paid: the contractor rejected its self-billed invoice. A rejected self-billed"
    " invoice is not paid until the contractor accepts it."
)
DB_NOT_ACCEPTED = (
    "{number} cannot be exported or paid: the contractor has not accepted its self-billed invoice yet. The"
    " organization requires the contractor's acceptance before payment."
)


def skip_the_doors(monkeypatch):
    """A query gone wrong: the doors learn of no answer at all, so only the database refuses."""
    monkeypatch.setattr("backoffice.queries.payability.acceptance_blocks", lambda session, ids: {})
    monkeypatch.setattr("backoffice.services.ap_export.acceptance_blocks", lambda session, ids: {})


@pytest.mark.parametrize("required", [False, True])
def test_where_only_the_database_refuses_every_door_says_so_in_the_guards_words(
    act_as, admin_engine, world, monkeypatch, required
):
    skip_the_doors(monkeypatch)
    set_org(admin_engine, world.org_a, acceptance_required=required)
    waiting, rejected = waiting_and_rejected(act_as, admin_engine, world)
    refused = [(rejected, DB_REJECTED)] + ([(waiting, DB_NOT_ACCEPTED)] if required else [])
    before = money_state(admin_engine, world.org_a)
    for invoice, words in refused:
        said = words.format(number=f"Invoice {invoice['invoice_number']}")
        doors = {
            "one payment": (lambda i=invoice: pay(act_as, world.finance, world.org_a, i["id"]), "recorded"),
            "selected export": (lambda i=invoice: export(act_as, world.finance, world.org_a, [i["id"]]), "exported"),
            "remittance": (lambda i=invoice: import_file(act_as, world, remittance(i)), "recorded"),
        }
        for door, (call, what) in doors.items():
            with pytest.raises(Conflict) as conflict:
                call()
            assert conflict.value.message == f"{said} Nothing was {what}.", door
    if required:  # "all due by" moves both, and the guard names the first it refuses
        with pytest.raises(Conflict) as conflict:
            export(act_as, world.finance, world.org_a, due_by=FAR, currency="USD")
        assert conflict.value.message == DB_NOT_ACCEPTED.format(number=f"Invoice {waiting['invoice_number']}") + (
            " Nothing was exported."
        )
    assert money_state(admin_engine, world.org_a) == before


def test_a_stripe_payout_the_doors_let_through_is_refused_by_the_database_in_words(
    act_as, admin_engine, world, configured, ready, monkeypatch
):
    skip_the_doors(monkeypatch)
    (rejected,) = issued_invoices(act_as, admin_engine, world, ("150.00",))
    answer(act_as, world.contractor_x_user, world.org_a, rejected["id"], "rejected", REJECTION)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict) as refused:
        stripe_payouts.send(session, actor, [rejected["id"]], configured=True)
    assert refused.value.message == (
        f"{rejected['invoice_number']} could not be sent: this invoice cannot be paid: the contractor rejected its"
        " self-billed invoice. Nothing was sent."
    )
    assert status(admin_engine, rejected["id"]) == "approved"


def test_a_rejection_committed_while_an_export_waits_is_refused_in_words(act_as, admin_engine, world, app_sessions):
    """The export asked first and found the invoice payable; the contractor's rejection, not yet committed, held the
    invoice's lock. Once it commits the export's move goes on, and the guard refuses it: a Conflict, not a 500."""
    (invoice,) = issued_invoices(act_as, admin_engine, world, ("100.00",))
    contractor_user = world.contractor_x_user
    contractor = signin.act(app_sessions(), user_id=contractor_user.id, org_id=world.org_a)
    contractor.execute(
        text(
            "insert into invoice_acceptances (org_id, invoice_id, contractor_id, decision, reason, decided_by)"
            " values (:o, :i, :c, 'rejected', :r, :me)"
        ),
        {
            "o": world.org_a,
            "i": invoice["id"],
            "c": world.contractor_x,
            "r": REJECTION,
            "me": world.contractor_x_user.id,
        },
    )
    outcome = {}

    def run_export():
        with app_sessions() as session:
            actor = signin.actor_of(session, world.finance.id, world.org_a)
            signin.act(session, user_id=world.finance.id, org_id=world.org_a)
            try:
                ap_export.create_batch(session, actor, ap_export.Selection(invoice_ids=(str(invoice["id"]),)))
                outcome["export"] = "exported"
            except Exception as exc:
                outcome["export"] = exc

    exporting = threading.Thread(target=run_export)
    exporting.start()
    waited = 0.0
    while waited < 20 and not owner_query(
        admin_engine,
        "select 1 from pg_locks where not granted and locktype in ('transactionid', 'tuple')",
    ):
        time.sleep(0.1)
        waited += 0.1
    assert waited < 20, "the export never waited on the invoice's lock"
    contractor.commit()
    contractor.close()
    exporting.join(30)
    assert isinstance(outcome["export"], Conflict), outcome
    assert outcome["export"].message == (
        DB_REJECTED.format(number=f"Invoice {invoice['invoice_number']}") + " Nothing was exported."
    )
    assert status(admin_engine, invoice["id"]) == "approved"
