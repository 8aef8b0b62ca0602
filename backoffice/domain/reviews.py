"""Review decisions (DESIGN.md section 3) and what an approval authorizes (section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from backoffice.domain.invoices import due_date, milestone_amounts
from backoffice.domain.money import percent_of


class Decision(StrEnum):
    APPROVE = "approve"
    PARTIAL = "partial"
    DISPUTE = "dispute"

    @property
    def label(self) -> str:
        return {"approve": "Approved", "partial": "Partially approved", "dispute": "Disputed"}[self.value]


class PartialPolicy(StrEnum):
    ROUTE_BACK = "route_back"  # back to the contractor with the reason; nothing is paid
    SPLIT = "split"  # the approved part is approved; the remainder becomes a new milestone


# New organizations pay the approved part (issue 22): under route_back "Partial" paid nothing, like a dispute.
# The database column's default says the same (migration 0032_partial_split_default).
DEFAULT_PARTIAL_POLICY = PartialPolicy.SPLIT


def returns_to_contractor(decision: Decision, policy: PartialPolicy | None) -> bool:
    """Whether the milestone goes back to the contractor (planned) rather than being approved."""
    return decision == Decision.DISPUTE or (decision == Decision.PARTIAL and policy == PartialPolicy.ROUTE_BACK)


@dataclass(frozen=True)
class Authorization:
    """What approving a milestone authorizes: gross, the retainage withheld from it, the net payable,
    the service fee and total billed, and the due date under the engagement's payment terms."""

    gross: int
    retainage: int
    net: int
    due_date: date
    fee: int = 0
    total: int = 0


def authorization(
    gross: int, retainage_bps: int, terms_days: int, approved_on: date, fee_bps: int = 0
) -> Authorization:
    amounts = milestone_amounts(gross, retainage_bps, fee_bps)
    return Authorization(
        amounts.gross, amounts.retainage, amounts.net, due_date(approved_on, terms_days), amounts.fee, amounts.total
    )


def split_part(amount: int, *, part: int | None = None, bps: int | None = None) -> int:
    """The approved part of ``amount`` under a split: given in minor units or as a percentage (basis
    points, rounded half up). Raises ValueError unless it leaves something on both sides."""
    value = part if part is not None else percent_of(amount, bps or 0)
    if not 0 < value < amount:
        raise ValueError("The approved part must be more than nothing and less than the milestone's amount.")
    return value
