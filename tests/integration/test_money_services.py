"""Money through the real services, as the real app role (DESIGN.md sections 3, 4 and 7): the invoice an
approval writes, retainage release, AP export batches and their files, payments per invoice, per batch
and by remittance import.

Outcomes are read back as the owner role. A refused call must leave every money row of the
organizations exactly as it was, the per-organization counters included.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, timedelta

import pytest
from kit.engagements import owner_query, sign_in
from kit.money import (
    active_engagement,
    approve,
    approved_invoices,
    complete,
    decide_as,
    events,
    export,
    invoice,
    invoices_of,
    ledger_of,
    money_state,
    numbered,
    party,
    pay,
    payments_of,
    set_org,
    submit,
    today,
)

from backoffice.errors import Conflict, Forbidden, InvalidTransition, ValidationError
from backoffice.services import ap_export, invoices, payments
from backoffice.services.payments import PaymentInput


def release(act_as, person, org_id, engagement_id, reason=""):
    session, actor = sign_in(act_as, person, org_id)
    return invoices.release_retainage(session, actor, engagement_id, reason)


def void(act_as, world, batch_id, reason="Wrong bank file."):
    session, actor = sign_in(act_as, world.admin, world.org_a)
    return ap_export.void_batch(session, actor, batch_id, reason)


def lines(admin_engine, invoice_id, event) -> dict[str, int]:
    rows = [r for r in ledger_of(admin_engine, invoice_id) if r["event"] == event]
    assert len({r["txn_id"] for r in rows}) == 1, rows
    return {r["account"]: r["amount_minor"] for r in rows}


# --- authorizing at approval ----------------------------------------------------------------------------


def test_approving_writes_one_invoice_with_the_engagements_retainage_fee_and_terms(act_as, admin_engine, world):
    p = party(world)
    engagement_id, (m,) = active_engagement(
        act_as, admin_engine, p, ("1,000.10",), retainage="5", service_fee="2.5", terms="14"
    )
    sub = submit(act_as, p, m)
    review = decide_as(act_as, world.owner, world.org_a, m, sub.id, "approve")
    (inv,) = invoices_of(admin_engine, engagement_id)
    # 5% of 1,000.10 is 50.005 -> 50.01 (half up); 2.5% is 25.0025 -> 25.00
    assert (inv["gross_minor"], inv["retainage_bps"], inv["retainage_minor"], inv["net_minor"]) == (
        100_010,
        500,
        5_001,
        95_009,
    )
    assert (inv["fee_bps"], inv["fee_minor"], inv["total_minor"]) == (250, 2_500, 102_510)
    (reviewed,) = owner_query(admin_engine, "select reviewed_at from reviews where id = :r", r=review.id)
    issued = reviewed["reviewed_at"].astimezone(UTC).date()
    assert (inv["issued_on"], inv["due_date"]) == (issued, issued + timedelta(days=14))
    assert (inv["kind"], inv["status"], inv["milestone_id"], inv["review_id"], inv["authorized_by"]) == (
        "milestone",
        "approved",
        m,
        review.id,
        world.owner.id,
    )
    first = numbered(admin_engine, world.org_a, 1)
    assert (inv["invoice_number"], inv["currency"], inv["batch_id"], inv["paid_at"]) == (first, "USD", None, None)
    assert lines(admin_engine, inv["id"], "authorized") == {
        "work_expense": 100_010,
        "accounts_payable": -95_009,
        "retainage_payable": -5_001,
        "service_fee_expense": 2_500,
        "service_fees_payable": -2_500,
    }
    (event,) = events(admin_engine, world.org_a, "invoice.authorized")
    assert event["entity_id"] == str(inv["id"]) and event["actor_user_id"] == world.owner.id
    assert {
        k: event["data"][k]
        for k in (
            "invoice_number",
            "gross_minor",
            "retainage_minor",
            "net_minor",
            "fee_minor",
            "total_minor",
            "due_date",
            "review_id",
        )
    } == {
        "invoice_number": first,
        "gross_minor": 100_010,
        "retainage_minor": 5_001,
        "net_minor": 95_009,
        "fee_minor": 2_500,
        "total_minor": 102_510,
        "due_date": inv["due_date"].isoformat(),
        "review_id": str(review.id),
    }
    assert events(admin_engine, world.org_a, "milestone.approved")[0]["data"]["invoice_number"] == first


def test_payment_terms_of_zero_days_make_the_invoice_due_on_approval(act_as, admin_engine, world):
    _, (inv,) = approved_invoices(act_as, admin_engine, party(world), ("500.00",), terms="0", retainage="0")
    assert inv["due_date"] == inv["issued_on"]
    assert (inv["retainage_minor"], inv["net_minor"], inv["fee_minor"], inv["total_minor"]) == (0, 50_000, 0, 50_000)
    assert lines(admin_engine, inv["id"], "authorized") == {"work_expense": 50_000, "accounts_payable": -50_000}


def test_a_split_partial_invoices_only_the_approved_part_and_adds_a_remainder_milestone(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, partial_policy="split")
    p = party(world)
    engagement_id, (m, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m)
    decide_as(act_as, world.owner, world.org_a, m, sub.id, "partial", "South slope only.", approved_amount="400.00")
    (inv,) = invoices_of(admin_engine, engagement_id)
    assert (inv["milestone_id"], inv["gross_minor"], inv["retainage_minor"], inv["net_minor"]) == (
        m,
        40_000,
        4_000,
        36_000,
    )
    rows = owner_query(
        admin_engine,
        "select id, amount_minor, status from milestones where engagement_id = :e order by seq",
        e=engagement_id,
    )
    assert [(r["amount_minor"], r["status"]) for r in rows] == [
        (40_000, "approved"),
        (200_000, "planned"),
        (60_000, "planned"),
    ]
    assert sum(lines(admin_engine, inv["id"], "authorized").values()) == 0


@pytest.mark.parametrize(
    ("decision", "policy"), [("dispute", "route_back"), ("partial", "route_back"), ("dispute", "split")]
)
def test_a_decision_that_returns_the_work_authorizes_no_payment(act_as, admin_engine, world, decision, policy):
    set_org(admin_engine, world.org_a, partial_policy=policy)
    p = party(world)
    engagement_id, (m, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m)
    decide_as(act_as, world.owner, world.org_a, m, sub.id, decision, "Not finished.")
    assert invoices_of(admin_engine, engagement_id) == []
    assert owner_query(admin_engine, "select * from ledger_entries where org_id = :o", o=world.org_a) == []
    assert events(admin_engine, world.org_a, "invoice.authorized") == []


# --- retainage ------------------------------------------------------------------------------------------


def test_releasing_retainage_of_a_completed_engagement_pays_everything_withheld(act_as, admin_engine, world):
    p = party(world)
    engagement_id, _ = approved_invoices(act_as, admin_engine, p)
    complete(act_as, p, engagement_id)
    released = release(act_as, world.owner, world.org_a, engagement_id)
    inv = invoice(admin_engine, released.id)
    assert (
        inv["kind"],
        inv["gross_minor"],
        inv["retainage_minor"],
        inv["net_minor"],
        inv["fee_minor"],
        inv["total_minor"],
    ) == ("retainage_release", 30_000, 0, 30_000, 0, 30_000)
    assert (inv["release_reason"], inv["milestone_id"]) == (None, None)
    assert inv["invoice_number"] == numbered(admin_engine, world.org_a, 3)
    assert lines(admin_engine, inv["id"], "retainage_released") == {
        "retainage_payable": 30_000,
        "accounts_payable": -30_000,
    }
    (event,) = events(admin_engine, world.org_a, "retainage.released")
    assert (event["data"]["early"], event["data"]["gross_minor"]) == (False, 30_000)


def test_retainage_is_released_early_only_with_a_reason(act_as, admin_engine, world):
    p = party(world)
    engagement_id, (m1, _) = active_engagement(act_as, admin_engine, p)
    approve(act_as, admin_engine, p, m1)
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as exc:
        release(act_as, world.owner, world.org_a, engagement_id, "   ")
    assert "reason" in exc.value.fields, exc.value.fields
    assert money_state(admin_engine, world.org_a) == before
    released = release(act_as, world.admin, world.org_a, engagement_id, "Contractor needs the cash.")
    inv = invoice(admin_engine, released.id)
    assert (inv["gross_minor"], inv["release_reason"], inv["authorized_by"]) == (
        10_000,
        "Contractor needs the cash.",
        world.admin.id,
    )
    assert events(admin_engine, world.org_a, "retainage.released")[0]["data"]["early"] is True


def test_retainage_is_released_once_and_later_approvals_withhold_none(act_as, admin_engine, world):
    p = party(world)
    engagement_id, (m1, m2) = active_engagement(act_as, admin_engine, p)
    approve(act_as, admin_engine, p, m1)
    release(act_as, world.owner, world.org_a, engagement_id, "Early, by agreement.")
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Conflict) as exc:
        release(act_as, world.owner, world.org_a, engagement_id, "Again.")
    assert "it is released once" in exc.value.message, exc.value.message
    assert numbered(admin_engine, world.org_a, 2) in exc.value.message, exc.value.message
    assert money_state(admin_engine, world.org_a) == before
    later = approve(act_as, admin_engine, p, m2)
    assert (later["retainage_bps"], later["retainage_minor"], later["net_minor"]) == (0, 0, 200_000)
    assert lines(admin_engine, later["id"], "authorized") == {"work_expense": 200_000, "accounts_payable": -200_000}


def test_an_engagement_without_retainage_has_none_to_release(act_as, admin_engine, world):
    p = party(world)
    engagement_id, _ = approved_invoices(act_as, admin_engine, p, ("100.00",), retainage="0")
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(InvalidTransition):
        release(act_as, world.owner, world.org_a, engagement_id, "Why not.")
    assert money_state(admin_engine, world.org_a) == before


# --- AP export ------------------------------------------------------------------------------------------


def test_a_batch_of_selected_invoices_exports_exactly_those(act_as, admin_engine, world):
    _, (a, b, c) = approved_invoices(act_as, admin_engine, party(world), ("100.00", "200.00", "300.00"))
    batch = export(act_as, world.finance, world.org_a, [c["id"], a["id"]])
    assert (batch.number, batch.status, batch.currency, batch.row_count) == (1, "live", "USD", 2)
    assert (batch.total_minor, batch.invoice_ids) == (a["net_minor"] + c["net_minor"], [a["id"], c["id"]])
    assert [invoice(admin_engine, i["id"])["status"] for i in (a, b, c)] == ["exported", "approved", "exported"]
    assert invoice(admin_engine, a["id"])["batch_id"] == batch.id and invoice(admin_engine, a["id"])["exported_at"]
    (event,) = events(admin_engine, world.org_a, "ap_export.created")
    assert (event["data"]["rows"], event["data"]["sha256"]) == (2, batch.sha256)


def test_a_batch_by_due_date_takes_the_currencys_authorized_invoices_due_by_then(act_as, admin_engine, world):
    _, due = approved_invoices(act_as, admin_engine, party(world), ("100.00", "200.00"), terms="0", title="Now")
    _, (later,) = approved_invoices(act_as, admin_engine, party(world), ("300.00",), terms="30", title="Later")
    _, (euro,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("400.00",), terms="0", currency="EUR")
    batch = export(act_as, world.admin, world.org_a, due_by=today(), currency="usd")
    assert sorted(batch.invoice_ids) == sorted(i["id"] for i in due)
    assert [invoice(admin_engine, i["id"])["status"] for i in (*due, later, euro)] == [
        "exported",
        "exported",
        "approved",
        "approved",
    ]
    assert batch.selection == {"mode": "due_by", "due_by": today(), "currency": "USD"}


@pytest.mark.parametrize("case", ["mixed currencies", "none due", "no currency", "bad date"])
def test_an_export_that_cannot_be_one_file_is_refused_and_changes_nothing(act_as, admin_engine, world, case):
    _, (usd,) = approved_invoices(act_as, admin_engine, party(world), ("100.00",), terms="30")
    _, (eur,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("100.00",), currency="EUR")
    selection, field = {
        "mixed currencies": ({"invoice_ids": [usd["id"], eur["id"]]}, "invoice_ids"),
        "none due": ({"due_by": today(), "currency": "USD"}, "due_by"),
        "no currency": ({"due_by": today(), "currency": ""}, "currency"),
        "bad date": ({"due_by": "31/12/2030", "currency": "USD"}, "due_by"),
    }[case]
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as exc:
        export(act_as, world.finance, world.org_a, **selection)
    assert field in exc.value.fields, exc.value.fields
    if case == "mixed currencies":
        assert "EUR, USD" in exc.value.fields[field]
    assert money_state(admin_engine, world.org_a) == before


def test_exporting_an_invoice_already_in_a_batch_is_a_conflict_naming_it_and_exports_nothing(
    act_as, admin_engine, world
):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    export(act_as, world.finance, world.org_a, [a["id"]])
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Conflict) as exc:
        export(act_as, world.admin, world.org_a, [a["id"], b["id"]])
    assert f"{a['invoice_number']} is in batch 1" in exc.value.message, exc.value.message
    assert money_state(admin_engine, world.org_a) == before
    assert export(act_as, world.admin, world.org_a, [b["id"]]).number == 2  # the refused export gave its number back


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_only_finance_and_admins_export(act_as, admin_engine, world, who):
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world))
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Forbidden):
        export(act_as, getattr(world, who), world.org_a, [a["id"]])
    assert money_state(admin_engine, world.org_a) == before


def test_a_batch_file_reads_back_byte_identical_with_its_sha256(act_as, admin_engine, world):
    _, invs = approved_invoices(act_as, admin_engine, party(world), ("1,234.56", "0.05"))
    batch = export(act_as, world.finance, world.org_a, [i["id"] for i in invs], preset="generic")
    session, _actor = sign_in(act_as, world.finance, world.org_a)
    first = b"".join(ap_export.read_file(session, ap_export.get_batch(session, batch.id)))
    second = b"".join(ap_export.read_file(session, ap_export.get_batch(session, batch.id)))
    session.rollback()
    assert first == second and len(first) == batch.size_bytes
    assert hashlib.sha256(first).hexdigest() == batch.sha256
    assert first.startswith(b"\xef\xbb\xbf")  # the generic layout's byte-order mark for Excel, on by default
    rows = list(csv.reader(io.StringIO(first.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Invoice number", "Contractor"] and len(rows) == 3
    assert [(r[0], r[13]) for r in rows[1:]] == [
        (invs[0]["invoice_number"], "1111.10"),
        (invs[1]["invoice_number"], "0.04"),
    ]


def test_voiding_a_batch_returns_its_invoices_to_approved_for_a_new_export(act_as, admin_engine, world):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    batch = export(act_as, world.finance, world.org_a, [a["id"], b["id"]])
    voided = void(act_as, world, batch.id)
    assert (voided.status, voided.void_reason, voided.voided_by) == ("voided", "Wrong bank file.", world.admin.id)
    assert [(invoice(admin_engine, i["id"])["status"], invoice(admin_engine, i["id"])["batch_id"]) for i in (a, b)] == [
        ("approved", None),
        ("approved", None),
    ]
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(InvalidTransition):
        payments.record_batch_payment(session, actor, batch.id, PaymentInput(today(), "Run 1", "ach"))
    again = export(act_as, world.finance, world.org_a, [a["id"], b["id"]])
    assert (again.number, sorted(again.invoice_ids)) == (2, sorted([a["id"], b["id"]]))


def test_a_voided_batch_is_not_voided_again_and_a_paid_one_not_at_all(act_as, admin_engine, world):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    first = export(act_as, world.finance, world.org_a, [a["id"]])
    void(act_as, world, first.id)
    second = export(act_as, world.finance, world.org_a, [a["id"], b["id"]])
    pay(act_as, world.finance, world.org_a, b["id"])
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Conflict) as exc:
        void(act_as, world, first.id, "Twice.")
    assert "already voided" in exc.value.message
    with pytest.raises(InvalidTransition) as exc:
        void(act_as, world, second.id, "Too late.")
    assert b["invoice_number"] in exc.value.message and "is paid" in exc.value.message, exc.value.message
    assert money_state(admin_engine, world.org_a) == before


# --- payments -------------------------------------------------------------------------------------------


def test_recording_a_payment_pays_the_net_and_marks_the_invoice_paid(act_as, admin_engine, world):
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world))
    payment = pay(act_as, world.finance, world.org_a, a["id"], reference="ACH 77", method="wire")
    (row,) = payments_of(admin_engine, a["id"])
    assert (row["id"], row["amount_minor"], row["currency"], row["paid_at"].isoformat()) == (
        payment.id,
        90_000,
        "USD",
        today(),
    )
    assert (row["reference"], row["method"], row["source"], row["recorded_by"]) == (
        "ACH 77",
        "wire",
        "manual",
        world.finance.id,
    )
    assert (invoice(admin_engine, a["id"])["status"], invoice(admin_engine, a["id"])["paid_at"]) == (
        "paid",
        row["paid_at"],
    )
    assert lines(admin_engine, a["id"], "paid") == {"accounts_payable": 90_000, "cash": -90_000}
    assert events(admin_engine, world.org_a, "payment.recorded")[0]["data"]["reference"] == "ACH 77"


def test_recording_a_payment_twice_is_a_conflict_naming_the_first(act_as, admin_engine, world):
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world))
    pay(act_as, world.finance, world.org_a, a["id"], reference="ACH 1")
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Conflict) as exc:
        pay(act_as, world.admin, world.org_a, a["id"], reference="ACH 2")
    assert "already paid" in exc.value.message and "ACH 1" in exc.value.message and "Fiona Finance" in exc.value.message
    assert money_state(admin_engine, world.org_a) == before


def test_whoever_approved_cannot_record_the_payment_unless_the_org_allows_it(act_as, admin_engine, world):
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world), approver=world.admin)
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(Forbidden) as exc:
        pay(act_as, world.admin, world.org_a, a["id"])
    assert "Segregation of duties" in exc.value.message and a["invoice_number"] in exc.value.message
    assert money_state(admin_engine, world.org_a) == before
    set_org(admin_engine, world.org_a, segregation_of_duties=False)
    pay(act_as, world.admin, world.org_a, a["id"])
    assert payments_of(admin_engine, a["id"])[0]["recorded_by"] == world.admin.id


BAD_PAYMENTS = {
    "future date": ({"paid_at": (date.today() + timedelta(days=3)).isoformat()}, "paid_at", "in the future"),
    "before approval": ({"paid_at": "2020-01-01"}, "paid_at", "cannot predate"),
    "not a date": ({"paid_at": "2026-02-30"}, "paid_at", "not a date on the calendar"),
    "us date": ({"paid_at": "03/04/2026"}, "paid_at", "YYYY-MM-DD"),
    "no reference": ({"reference": "  "}, "reference", ""),
    "unknown method": ({"method": "bitcoin"}, "method", ""),
}


@pytest.mark.parametrize("case", BAD_PAYMENTS)
def test_a_bad_payment_is_refused_at_its_field_and_changes_nothing(act_as, admin_engine, world, case):
    given, field, words = BAD_PAYMENTS[case]
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world))
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as exc:
        pay(act_as, world.finance, world.org_a, a["id"], **given)
    assert words in exc.value.fields.get(field, "!"), exc.value.fields
    assert money_state(admin_engine, world.org_a) == before


def test_a_batch_payment_pays_every_invoice_of_the_batch(act_as, admin_engine, world):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    batch = export(act_as, world.finance, world.org_a, [a["id"], b["id"]])
    session, actor = sign_in(act_as, world.finance, world.org_a)
    paid = payments.record_batch_payment(session, actor, batch.id, PaymentInput(today(), "Run 12", "ach"))
    assert len(paid) == 2
    for i in (a, b):
        (row,) = payments_of(admin_engine, i["id"])
        assert (row["source"], row["batch_id"], row["amount_minor"]) == ("batch", batch.id, i["net_minor"])
        assert invoice(admin_engine, i["id"])["status"] == "paid"
    before = money_state(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict):
        payments.record_batch_payment(session, actor, batch.id, PaymentInput(today(), "Run 13", "ach"))
    assert money_state(admin_engine, world.org_a) == before


# --- remittance import ----------------------------------------------------------------------------------


def remittance(*rows: str) -> bytes:
    return ("Invoice number,Amount,Paid date,Reference\n" + "".join(r + "\n" for r in rows)).encode()


def row(inv: dict, *, amount: int | None = None, paid_at: str | None = None, reference: str = "BANK-1") -> str:
    minor = amount if amount is not None else inv["net_minor"]
    return f"{inv['invoice_number']},{minor / 100:.2f},{paid_at or today()},{reference}"


def remit(act_as, world, content: bytes, *, preview: bool):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    if preview:
        result = payments.preview_remittance(session, actor, content, "ach")
        session.rollback()
        return result
    return payments.import_remittance(session, actor, content, "ach")


def test_a_remittance_file_is_previewed_without_writing_and_then_imported_whole(act_as, admin_engine, world):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    content = remittance(row(a, reference="BANK-1"), row(b, reference="BANK-2"))
    before = money_state(admin_engine, world.org_a)
    preview = remit(act_as, world, content, preview=True)
    assert preview.ok and [r.invoice.id for r in preview.rows] == [a["id"], b["id"]], [r.problems for r in preview.rows]
    assert preview.totals() == {"USD": a["net_minor"] + b["net_minor"]}
    assert money_state(admin_engine, world.org_a) == before
    recorded = remit(act_as, world, content, preview=False)
    assert len(recorded) == 2
    for inv, ref in ((a, "BANK-1"), (b, "BANK-2")):
        (p,) = payments_of(admin_engine, inv["id"])
        assert (p["source"], p["reference"], p["method"], p["amount_minor"]) == (
            "remittance",
            ref,
            "ach",
            inv["net_minor"],
        )
        assert invoice(admin_engine, inv["id"])["status"] == "paid"
    assert events(admin_engine, world.org_a, "remittance.imported")[0]["data"]["rows"] == 2


BAD_ROWS = {
    "unknown number": (
        lambda a, b, z: "INV-999999,900.00,{today},BANK-2",
        "No invoice INV-999999 in this organization.",
    ),
    "another org's number": (lambda a, b, z: row(z), "No invoice BORG-000001 in this organization."),
    "amount mismatch": (lambda a, b, z: row(b, amount=b["net_minor"] - 1), "does not match the net payable"),
    "amount not a number": (lambda a, b, z: row(b).replace("1800.00", "lots"), "Amount:"),
    "already paid": (lambda a, b, z: row(b), "was already paid on"),
    "duplicate in the file": (lambda a, b, z: row(a, reference="BANK-9"), "is also on line 2"),
    "bad date": (lambda a, b, z: row(b, paid_at="2026-02-30"), "is not a date on the calendar"),
    "future date": (lambda a, b, z: row(b, paid_at=(date.today() + timedelta(days=3)).isoformat()), "in the future"),
    "before approval": (lambda a, b, z: row(b, paid_at="2020-01-01"), "cannot predate"),
    "no reference": (lambda a, b, z: row(b, reference=""), "Enter the payment reference"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_one_bad_remittance_row_refuses_the_whole_file(act_as, admin_engine, world, case):
    make, words = BAD_ROWS[case]
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    set_org(admin_engine, world.org_b, invoice_prefix="BORG")
    _, (z,) = approved_invoices(act_as, admin_engine, party(world, "z"), ("100.00",))
    if case == "already paid":
        pay(act_as, world.finance, world.org_a, b["id"])
    content = remittance(row(a), make(a, b, z).replace("{today}", today()))
    before = money_state(admin_engine, world.org_a, world.org_b)
    preview = remit(act_as, world, content, preview=True)
    assert not preview.ok and preview.rows[0].ok and preview.problem_count == 1, [r.problems for r in preview.rows]
    assert any(words in problem for problem in preview.rows[1].problems), preview.rows[1].problems
    with pytest.raises(ValidationError) as exc:
        remit(act_as, world, content, preview=False)
    message = exc.value.fields["file"]
    assert (
        message.startswith("Nothing was imported.")
        and "line 3" in message
        and "line 2" not in message.replace("also on line 2", "")
    ), message
    assert money_state(admin_engine, world.org_a, world.org_b) == before
