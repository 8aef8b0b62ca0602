"""Payment authorizations (invoices), their amounts and their ledger lines (DESIGN.md sections 3 and 4).

Everything here is integer arithmetic in minor units with the one rounding rule of domain.money:
retainage and the service fee are round_half_up(gross × bps / 10000), net = gross − retainage,
total = gross + fee. A release of retainage pays exactly what the milestone invoices withheld.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from backoffice.domain.completion import withholds
from backoffice.domain.money import percent_of


class InvoiceKind(StrEnum):
    MILESTONE = "milestone"
    RETAINAGE_RELEASE = "retainage_release"
    # Completion billing (domain.completion): the advance at activation, the contractor's invoice for approved
    # tasks, and the final payment when the last task is approved.
    ADVANCE = "advance"
    COMPLETION = "completion"
    FINAL = "final"

    @property
    def label(self) -> str:
        return {
            "milestone": "Milestone",
            "retainage_release": "Retainage release",
            "advance": "Advance",
            "completion": "Completed tasks",
            "final": "Final payment",
        }[self.value]

    @property
    def pays_for(self) -> str:
        """What its gross pays for, as the invoice's page says it."""
        return {
            "milestone": "approved work",
            "retainage_release": "retainage held",
            "advance": "paid ahead of work",
            "completion": "approved tasks",
            "final": "the tasks left",
        }[self.value]

    @property
    def withholds(self) -> bool:
        """Whether it withholds retainage and charges the service fee: the kinds that pay for approved work
        (domain.completion.withholds)."""
        return withholds(self.value)


class InvoiceStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"  # authorized by the reviewer; later steps of an approval policy remain
    APPROVED = "approved"  # payment authorized, waiting for finance
    EXPORTED = "exported"  # in a live AP export batch, or handed to a payment rail (a payout attempt in flight)
    PAID = "paid"
    VOID = "void"
    ON_HOLD = "on_hold"

    @property
    def label(self) -> str:
        return {
            "pending_approval": "Awaiting approval",
            "approved": "Authorized",
            "exported": "Exported",
            "paid": "Paid",
            "void": "Void",
            "on_hold": "On hold",
        }[self.value]

    @property
    def payable(self) -> bool:
        """Whether a payment may be recorded against it."""
        return can_move(self, InvoiceStatus.PAID)


def handed_to_rail(status: InvoiceStatus | str, *, in_batch: bool) -> bool:
    """Exported in no AP batch: handed to a payment rail, a payout attempt in flight (sql/rails.sql). Nothing else
    pays it meanwhile."""
    return InvoiceStatus(status) == InvoiceStatus.EXPORTED and not in_batch


def status_label(status: InvoiceStatus, *, in_batch: bool, held: bool = False) -> str:
    """An invoice's status in words: an exported one in no AP batch was handed to a payment rail; an authorized one
    that a hold (on it, or on its contractor) stops is on hold (issue 18)."""
    if handed_to_rail(status, in_batch=in_batch):
        return "Paying by Stripe"
    return shown_status(status, held=held).label


def shown_status(status: InvoiceStatus, *, held: bool) -> InvoiceStatus:
    """The status a badge shows: an authorized invoice a person's hold stops shows as on hold, which it is in every
    way that matters to whoever pays it (nothing exports or pays it), though its row stays authorized so that
    releasing the hold needs no move (DESIGN.md section 3)."""
    return InvoiceStatus.ON_HOLD if held and InvoiceStatus(status) == InvoiceStatus.APPROVED else InvoiceStatus(status)


# The moves of the invoice state machine this release supports; the database refuses every other.
MOVES = {
    (InvoiceStatus.PENDING_APPROVAL, InvoiceStatus.APPROVED),  # the last step of its approval policy approved it
    (InvoiceStatus.PENDING_APPROVAL, InvoiceStatus.VOID),  # a step rejected it: the work went back to the contractor
    (InvoiceStatus.APPROVED, InvoiceStatus.EXPORTED),
    (InvoiceStatus.EXPORTED, InvoiceStatus.APPROVED),  # its batch was voided
    (InvoiceStatus.APPROVED, InvoiceStatus.PAID),
    (InvoiceStatus.EXPORTED, InvoiceStatus.PAID),
    (InvoiceStatus.EXPORTED, InvoiceStatus.ON_HOLD),  # a payment rail refused it
    (InvoiceStatus.PAID, InvoiceStatus.ON_HOLD),  # a payment rail reversed its payment
    (InvoiceStatus.ON_HOLD, InvoiceStatus.APPROVED),  # finance released the hold: payable again
}


def can_move(current: InvoiceStatus, target: InvoiceStatus) -> bool:
    return (current, target) in MOVES


@dataclass(frozen=True)
class Amounts:
    gross: int
    retainage_bps: int
    retainage: int
    net: int  # what the contractor is paid now
    fee_bps: int
    fee: int
    total: int  # what the organization is billed: gross + fee

    def as_dict(self) -> dict[str, int]:
        return {
            "gross_minor": self.gross,
            "retainage_bps": self.retainage_bps,
            "retainage_minor": self.retainage,
            "net_minor": self.net,
            "fee_bps": self.fee_bps,
            "fee_minor": self.fee,
            "total_minor": self.total,
        }


def milestone_amounts(gross: int, retainage_bps: int, fee_bps: int = 0) -> Amounts:
    """What approving ``gross`` authorizes under the engagement's retainage and service fee."""
    if gross <= 0:
        raise ValueError("an approved amount is greater than zero")
    if not (0 <= retainage_bps <= 10_000 and 0 <= fee_bps <= 10_000):
        raise ValueError("retainage and fee are between 0% and 100%")
    retainage, fee = percent_of(gross, retainage_bps), percent_of(gross, fee_bps)
    return Amounts(gross, retainage_bps, retainage, gross - retainage, fee_bps, fee, gross + fee)


def advance_amounts(advance: int) -> Amounts:
    """An advance pays ahead of work: nothing withheld and no fee (DESIGN.md section 4)."""
    if advance <= 0:
        raise ValueError("an advance is greater than zero")
    return Amounts(advance, 0, 0, advance, 0, 0, advance)


def release_amounts(held: int) -> Amounts:
    """A release of retainage pays everything held, with nothing withheld and no fee (the fee was
    charged on the milestones' gross, which included the retainage)."""
    if held <= 0:
        raise ValueError("there is no retainage held to release")
    return Amounts(held, 0, 0, held, 0, 0, held)


def withheld_bps(retainage_bps: int, *, released: bool) -> int:
    """The retainage an approval withholds: the engagement's rate, or none once its retainage has been
    released (the one release per engagement could never pay it back; DESIGN.md section 4, invariant 3)."""
    return 0 if released else retainage_bps


def due_date(issued_on: date, terms_days: int) -> date:
    """Payment terms: due ``terms_days`` after approval (0 pays on approval)."""
    return issued_on + timedelta(days=terms_days)


@dataclass(frozen=True)
class RetainageState:
    withheld: int
    released: int

    @property
    def held(self) -> int:
        return self.withheld - self.released


# Ledger accounts. Debits are positive, credits negative; each money event's lines sum to zero.
WORK_EXPENSE = "work_expense"
ACCOUNTS_PAYABLE = "accounts_payable"
RETAINAGE_PAYABLE = "retainage_payable"
FEE_EXPENSE = "service_fee_expense"
FEES_PAYABLE = "service_fees_payable"
CASH = "cash"


def authorization_lines(amounts: Amounts) -> list[tuple[str, int]]:
    """Approval: the work is an expense; the net is owed to the contractor now, the retainage later;
    a service fee is its own expense and payable."""
    lines = [
        (WORK_EXPENSE, amounts.gross),
        (ACCOUNTS_PAYABLE, -amounts.net),
        (RETAINAGE_PAYABLE, -amounts.retainage),
        (FEE_EXPENSE, amounts.fee),
        (FEES_PAYABLE, -amounts.fee),
    ]
    return _balanced([line for line in lines if line[1]])


def release_lines(held: int) -> list[tuple[str, int]]:
    """Release: the retainage held becomes payable to the contractor now."""
    return _balanced([(RETAINAGE_PAYABLE, held), (ACCOUNTS_PAYABLE, -held)])


# How a payment was made (payments.method), in words, whatever its rail: finance records all but the last by hand
# (services/payments.METHODS); a Stripe transfer is recorded by the worker (services/stripe_payouts).
PAID_BY = {
    "ach": "ACH / bank transfer",
    "wire": "Wire",
    "check": "Check",
    "card": "Card",
    "other": "Other",
    "stripe": "Stripe transfer",
}


def payment_lines(net: int) -> list[tuple[str, int]]:
    """Payment: what was owed to the contractor leaves the bank."""
    return _balanced([line for line in [(ACCOUNTS_PAYABLE, net), (CASH, -net)] if line[1]])


def reversal_lines(net: int) -> list[tuple[str, int]]:
    """A reversed payment (the rail took the transfer back): the money is back in the bank and owed again."""
    return _balanced([line for line in [(CASH, net), (ACCOUNTS_PAYABLE, -net)] if line[1]])


def _balanced(lines: list[tuple[str, int]]) -> list[tuple[str, int]]:
    if sum(amount for _, amount in lines) != 0:
        raise AssertionError(f"unbalanced ledger lines: {lines}")
    return lines


def invoice_prefix_for(org_name: str) -> str:
    """A default invoice-number prefix from the organization's name: its first four letters or digits,
    upper-cased ("Acme Renovations" -> ACME); INV when the name has fewer than two."""
    letters = "".join(ch for ch in org_name if ch.isascii() and ch.isalnum()).upper()[:4]
    return letters if len(letters) >= 2 else "INV"
