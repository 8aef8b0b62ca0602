"""Reconciling a payment rail with the payments recorded here (issue 17, item 5; DESIGN.md section 7): what
Stripe's transfers and an organization's payments and payout attempts say of each other, and each difference in
words finance acts on. Standard library only: services/reconciliation.py gathers both sides and keeps what
``compare`` finds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from backoffice.domain.invoices import InvoiceStatus
from backoffice.domain.money import format_amount

# An attempt in flight for longer than this is a finding: the pay_out job answers within seconds, and the sweep
# (every ten minutes) takes over an attempt whose job died.
IN_FLIGHT_TOO_LONG = timedelta(hours=1)


class FindingKind(StrEnum):
    TRANSFER_WITHOUT_PAYMENT = "transfer_without_payment"
    PAYMENT_WITHOUT_TRANSFER = "payment_without_transfer"
    AMOUNT_DIFFERS = "amount_differs"
    REVERSAL_DIFFERS = "reversal_differs"
    ATTEMPT_IN_FLIGHT = "attempt_in_flight"

    @property
    def label(self) -> str:
        return {
            FindingKind.TRANSFER_WITHOUT_PAYMENT: "Transfer without its payment",
            FindingKind.PAYMENT_WITHOUT_TRANSFER: "Payment without its transfer",
            FindingKind.AMOUNT_DIFFERS: "Amounts differ",
            FindingKind.REVERSAL_DIFFERS: "Reversed on one side only",
            FindingKind.ATTEMPT_IN_FLIGHT: "Payment in flight for over an hour",
        }[self]


class Missing(StrEnum):
    """Why a payment's transfer is not among this organization's at Stripe."""

    ABSENT = "absent"  # Stripe has no transfer with that id
    FOREIGN = "foreign"  # Stripe has it, made for another organization (its metadata says so)


@dataclass(frozen=True)
class Transfer:
    """Stripe's copy of a transfer whose metadata names this organization."""

    id: str
    amount_minor: int
    currency: str  # upper case, as here
    reversed_minor: int
    created: datetime
    destination: str
    invoice_id: str = ""  # the metadata's, as Stripe keeps it ('' when there is none)
    invoice_number: str = ""
    attempt_id: str = ""


@dataclass(frozen=True)
class RecordedPayment:
    """A payment recorded here (any method) whose reference is a transfer's id, or a Stripe payment of the window."""

    id: uuid.UUID
    invoice_id: uuid.UUID
    invoice_number: str
    amount_minor: int
    currency: str
    paid_on: date
    reference: str
    reversed: bool


@dataclass(frozen=True)
class Attempt:
    """A payout attempt here: one a transfer's metadata names, or one still in flight."""

    id: uuid.UUID
    invoice_id: uuid.UUID
    invoice_number: str
    invoice_status: str
    status: str
    requested_at: datetime
    amount_minor: int
    currency: str
    failure_words: str = ""


@dataclass(frozen=True)
class InvoiceRef:
    """The invoice a transfer's metadata names, and how it was paid here if it was (e.g. "ach ACH-0042")."""

    id: uuid.UUID
    number: str
    paid_by: str = ""


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    words: str
    transfer_id: str | None = None
    payment_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    attempt_id: uuid.UUID | None = None
    currency: str | None = None
    stripe_amount_minor: int | None = None
    recorded_amount_minor: int | None = None

    @property
    def key(self) -> tuple:
        """The same difference found again by a later run has the same key."""
        return (self.kind.value, self.transfer_id, self.payment_id, self.attempt_id)


def compare(
    *,
    transfers: Iterable[Transfer],
    payments: Iterable[RecordedPayment],
    attempts: Iterable[Attempt],
    invoices: Mapping[str, InvoiceRef],
    missing: Mapping[str, Missing],
    now: datetime,
) -> list[Finding]:
    """Every difference between Stripe's ``transfers`` and the ``payments`` and ``attempts`` recorded here.

    ``invoices``: the invoices transfers' metadata name (by the metadata's id); ``missing``: the references of
    payments whose transfer is not among ``transfers``, with why. A transfer whose attempt is in flight for less
    than IN_FLIGHT_TOO_LONG is being recorded now, not a finding. Transfers come first (oldest first), then the
    attempts in flight, then the payments without a transfer."""
    payments = list(payments)
    by_reference: dict[str, list[RecordedPayment]] = {}
    for p in payments:
        by_reference.setdefault(p.reference, []).append(p)
    attempt_of = {str(a.id): a for a in attempts}
    named: set[uuid.UUID] = set()
    findings: list[Finding] = []
    for t in sorted(transfers, key=lambda t: (t.created, t.id)):
        attempt = attempt_of.get(t.attempt_id)
        if attempt is not None:
            named.add(attempt.id)
        recorded = by_reference.get(t.id, [])
        if recorded:
            for p in recorded:
                findings.extend(_differences(t, p))
        elif not (attempt and attempt.status == "pending" and now - attempt.requested_at <= IN_FLIGHT_TOO_LONG):
            findings.append(_unrecorded(t, attempt, invoices.get(t.invoice_id)))
    for a in sorted(attempt_of.values(), key=lambda a: (a.requested_at, str(a.id))):
        if a.status == "pending" and a.id not in named and now - a.requested_at > IN_FLIGHT_TOO_LONG:
            findings.append(_in_flight(a))
    for p in sorted(payments, key=lambda p: (p.paid_on, p.reference)):
        if p.reference in missing:
            findings.append(_without_transfer(p, missing[p.reference]))
    return findings


# --- in words -------------------------------------------------------------------------------------------------


def _money(minor: int, currency: str) -> str:
    return format_amount(minor, currency)


def _day(value: datetime | date) -> str:
    return (value.astimezone(UTC).date() if isinstance(value, datetime) else value).isoformat()


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _unrecorded(t: Transfer, attempt: Attempt | None, invoice: InvoiceRef | None) -> Finding:
    made = f"Stripe made transfer {t.id} of {_money(t.amount_minor, t.currency)} on {_day(t.created)}"
    number = attempt.invoice_number if attempt else (invoice.number if invoice else t.invoice_number)
    invoice_id = attempt.invoice_id if attempt else (invoice.id if invoice else None)
    if attempt and attempt.status == "pending":
        words = (
            f"{made} for {number}, but no payment is recorded here: its payout attempt has been in flight since "
            f"{_moment(attempt.requested_at)}. The worker records it when it next looks the attempt up at Stripe "
            "(every ten minutes); if this stays, the worker is not running or cannot reach Stripe."
        )
    elif attempt and attempt.status == "refused":
        status = InvoiceStatus(attempt.invoice_status).label.lower()
        words = (
            f"{made} for {number}, but here its payout attempt was refused ({attempt.failure_words.rstrip('.')}) and "
            f"the invoice is {status}: the contractor has been paid. Do not send it again: release the hold and "
            f"record the payment by hand with reference {t.id}, or reverse the transfer at Stripe."
        )
    elif invoice and invoice.paid_by and not attempt:
        words = (
            f"{made} for {number}, which is recorded as paid here by {invoice.paid_by}: the contractor may have "
            "been paid twice. Reverse the transfer at Stripe, or recover the other payment."
        )
    else:
        about = f" for {number}" if number else f" to {t.destination}"
        state = f" (its payout attempt here is {attempt.status})" if attempt else ""
        words = (
            f"{made}{about} naming this organization, but no payment here records it{state}. Find out who made it: "
            f"if it paid an invoice, record that payment with reference {t.id}; if not, reverse it at Stripe."
        )
    return Finding(
        FindingKind.TRANSFER_WITHOUT_PAYMENT,
        words,
        transfer_id=t.id,
        invoice_id=invoice_id,
        attempt_id=attempt.id if attempt else None,
        currency=t.currency,
        stripe_amount_minor=t.amount_minor,
    )


def _differences(t: Transfer, p: RecordedPayment) -> list[Finding]:
    found = []
    theirs, ours = _money(t.amount_minor, t.currency), _money(p.amount_minor, p.currency)
    about = {
        "transfer_id": t.id,
        "payment_id": p.id,
        "invoice_id": p.invoice_id,
        "currency": p.currency,
        # Stripe's amount beside the payment's only in the payment's currency (the words give both).
        "stripe_amount_minor": t.amount_minor if t.currency == p.currency else None,
        "recorded_amount_minor": p.amount_minor,
    }
    if (t.amount_minor, t.currency) != (p.amount_minor, p.currency):
        found.append(
            Finding(
                FindingKind.AMOUNT_DIFFERS,
                f"The payment of {p.invoice_number} records {ours}, but Stripe's transfer {t.id} is {theirs}. Find "
                "out which is right, settle the difference with the contractor and correct the record.",
                **about,
            )
        )
    if t.reversed_minor > 0 and not p.reversed:
        if t.reversed_minor >= t.amount_minor:
            words = (
                f"Stripe reversed transfer {t.id} ({theirs}) in full, but the payment of {p.invoice_number} still "
                "stands here: the invoice counts as paid though the contractor no longer has the money. The "
                "reversal's webhook was not applied here: check the webhook endpoint's deliveries at Stripe and "
                "send the transfer.reversed event again."
            )
        else:
            kept = _money(t.amount_minor - t.reversed_minor, t.currency)
            words = (
                f"Stripe reversed {_money(t.reversed_minor, t.currency)} of transfer {t.id} ({theirs}); the payment "
                f"of {p.invoice_number} still stands here for {ours}. The contractor kept {kept}: settle the "
                "difference with the contractor by hand."
            )
        found.append(Finding(FindingKind.REVERSAL_DIFFERS, words, **about))
    elif p.reversed and t.reversed_minor == 0:
        found.append(
            Finding(
                FindingKind.REVERSAL_DIFFERS,
                f"The payment of {p.invoice_number} is reversed here, but Stripe shows transfer {t.id} ({theirs}) "
                f"not reversed: the contractor still has the money. Check with Stripe before paying "
                f"{p.invoice_number} again.",
                **about,
            )
        )
    return found


def _in_flight(a: Attempt) -> Finding:
    return Finding(
        FindingKind.ATTEMPT_IN_FLIGHT,
        f"The Stripe payment of {a.invoice_number} ({_money(a.amount_minor, a.currency)}) has been in flight since "
        f"{_moment(a.requested_at)}, more than an hour, and Stripe has no transfer for it. The worker tries it again "
        "every ten minutes with the same key and gives up after a day (the invoice then goes on hold); if this "
        "stays, the worker is not running or cannot reach Stripe.",
        invoice_id=a.invoice_id,
        attempt_id=a.id,
        currency=a.currency,
        recorded_amount_minor=a.amount_minor,
    )


def _without_transfer(p: RecordedPayment, why: Missing) -> Finding:
    which = "Stripe does not have" if why is Missing.ABSENT else "was not made for this organization"
    return Finding(
        FindingKind.PAYMENT_WITHOUT_TRANSFER,
        f"The payment of {p.invoice_number} ({_money(p.amount_minor, p.currency)}, paid {_day(p.paid_on)}) names "
        f"Stripe transfer {p.reference}, which {which}. The invoice counts as paid here, but Stripe did not pay "
        "the contractor with it: find out how it was paid, and have an admin correct the record if it was not.",
        transfer_id=p.reference,
        payment_id=p.id,
        invoice_id=p.invoice_id,
        currency=p.currency,
        recorded_amount_minor=p.amount_minor,
    )
