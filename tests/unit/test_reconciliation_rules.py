"""What a reconciliation finds (domain/reconciliation.py), without a database or Stripe: each side written out."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from backoffice.domain.reconciliation import (
    Attempt,
    FindingKind,
    InvoiceRef,
    Missing,
    RecordedPayment,
    Transfer,
    compare,
)

NOW = datetime(2030, 5, 10, 12, 0, tzinfo=UTC)
PAYMENT = uuid.UUID("00000000-0000-0000-0000-00000000000a")
INVOICE = uuid.UUID("00000000-0000-0000-0000-00000000000b")
ATTEMPT = uuid.UUID("00000000-0000-0000-0000-00000000000c")


def transfer(**changes) -> Transfer:
    values = {
        "id": "tr_1Abc",
        "amount_minor": 90_000,
        "currency": "USD",
        "reversed_minor": 0,
        "created": datetime(2030, 5, 1, 9, 30, tzinfo=UTC),
        "destination": "acct_1Xyz",
        "invoice_id": str(INVOICE),
        "invoice_number": "ORGA-000007",
        "attempt_id": str(ATTEMPT),
    }
    return Transfer(**{**values, **changes})


def payment(**changes) -> RecordedPayment:
    values = {
        "id": PAYMENT,
        "invoice_id": INVOICE,
        "invoice_number": "ORGA-000007",
        "amount_minor": 90_000,
        "currency": "USD",
        "paid_on": date(2030, 5, 1),
        "reference": "tr_1Abc",
        "reversed": False,
    }
    return RecordedPayment(**{**values, **changes})


def attempt(**changes) -> Attempt:
    values = {
        "id": ATTEMPT,
        "invoice_id": INVOICE,
        "invoice_number": "ORGA-000007",
        "invoice_status": "exported",
        "status": "pending",
        "requested_at": NOW - timedelta(minutes=5),
        "amount_minor": 90_000,
        "currency": "USD",
    }
    return Attempt(**{**values, **changes})


def found(transfers=(), payments=(), attempts=(), invoices=None, missing=None):
    return compare(
        transfers=transfers,
        payments=payments,
        attempts=attempts,
        invoices=invoices or {},
        missing=missing or {},
        now=NOW,
    )


def test_a_transfer_and_its_payment_that_agree_find_nothing():
    assert found([transfer()], [payment()], [attempt(status="succeeded")]) == []


def test_a_transfer_whose_attempt_is_in_flight_for_less_than_an_hour_is_not_a_finding():
    assert found([transfer()], [], [attempt(requested_at=NOW - timedelta(minutes=59))]) == []


def test_a_transfer_whose_attempt_is_in_flight_for_over_an_hour_is_one_finding_not_two():
    (f,) = found([transfer()], [], [attempt(requested_at=datetime(2030, 5, 10, 10, 0, tzinfo=UTC))])
    assert (f.kind, f.transfer_id, f.attempt_id, f.invoice_id) == (
        FindingKind.TRANSFER_WITHOUT_PAYMENT,
        "tr_1Abc",
        ATTEMPT,
        INVOICE,
    )
    assert f.words == (
        "Stripe made transfer tr_1Abc of $900.00 on 2030-05-01 for ORGA-000007, but no payment is recorded here: its "
        "payout attempt has been in flight since 2030-05-10 10:00 UTC. The worker records it when it next looks the "
        "attempt up at Stripe (every ten minutes); if this stays, the worker is not running or cannot reach Stripe."
    )


def test_an_attempt_in_flight_for_over_an_hour_without_a_transfer():
    (f,) = found([], [], [attempt(requested_at=NOW - timedelta(hours=2))])
    assert (f.kind, f.transfer_id, f.recorded_amount_minor) == (FindingKind.ATTEMPT_IN_FLIGHT, None, 90_000)
    assert f.words.startswith("The Stripe payment of ORGA-000007 ($900.00) has been in flight since 2030-05-10 10:00")


def test_a_transfer_nobody_here_made_names_its_destination_when_no_invoice_is_named():
    (f,) = found([transfer(invoice_id="", invoice_number="", attempt_id="")])
    assert f.words.startswith("Stripe made transfer tr_1Abc of $900.00 on 2030-05-01 to acct_1Xyz naming this")


def test_a_transfer_for_an_invoice_paid_another_way():
    invoices = {str(INVOICE): InvoiceRef(INVOICE, "ORGA-000007", "wire W-1")}
    (f,) = found([transfer(attempt_id="")], invoices=invoices)
    assert "for ORGA-000007, which is recorded as paid here by wire W-1: the contractor may have been" in f.words


def test_amounts_that_differ():
    (f,) = found([transfer(amount_minor=90_001)], [payment()])
    assert (f.kind, f.stripe_amount_minor, f.recorded_amount_minor) == (FindingKind.AMOUNT_DIFFERS, 90_001, 90_000)
    assert f.words.startswith("The payment of ORGA-000007 records $900.00, but Stripe's transfer tr_1Abc is $900.01.")


def test_currencies_that_differ_show_stripes_amount_only_in_words():
    (f,) = found([transfer(currency="EUR")], [payment()])
    assert f.kind is FindingKind.AMOUNT_DIFFERS and f.stripe_amount_minor is None
    assert "but Stripe's transfer tr_1Abc is €900.00" in f.words


def test_a_reversal_at_stripe_only_in_full_and_in_part():
    (full,) = found([transfer(reversed_minor=90_000)], [payment()])
    (part,) = found([transfer(reversed_minor=1)], [payment()])
    assert full.kind is part.kind is FindingKind.REVERSAL_DIFFERS
    assert "in full, but the payment of ORGA-000007 still stands here" in full.words
    assert part.words.startswith("Stripe reversed $0.01 of transfer tr_1Abc ($900.00); ")
    assert "The contractor kept $899.99" in part.words
    assert found([transfer(reversed_minor=90_000)], [payment(reversed=True)]) == []


def test_a_reversal_here_only():
    (f,) = found([transfer()], [payment(reversed=True)])
    assert f.kind is FindingKind.REVERSAL_DIFFERS
    assert "is reversed here, but Stripe shows transfer tr_1Abc ($900.00) not reversed" in f.words


def test_a_payment_whose_transfer_is_missing_says_which_way():
    absent, foreign = found(
        [],
        [payment(reference="tr_1Gone", paid_on=date(2030, 4, 2)), payment(reference="tr_1Theirs")],
        missing={"tr_1Gone": Missing.ABSENT, "tr_1Theirs": Missing.FOREIGN},
    )
    assert absent.kind is foreign.kind is FindingKind.PAYMENT_WITHOUT_TRANSFER
    assert absent.words.startswith(
        "The payment of ORGA-000007 ($900.00, paid 2030-04-02) names Stripe transfer tr_1Gone, which Stripe does not"
        " have."
    )
    assert "names Stripe transfer tr_1Theirs, which was not made for this organization." in foreign.words


def test_findings_of_the_same_difference_have_the_same_key_run_after_run():
    first = found([transfer(attempt_id="")])
    again = found([transfer(attempt_id="", invoice_number="renamed")])
    assert [f.key for f in first] == [f.key for f in again] == [("transfer_without_payment", "tr_1Abc", None, None)]
