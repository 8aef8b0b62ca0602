"""Self-billing (EU VAT Directive 2006/112/EC art. 224; DESIGN.md section 7b; issue 21): the contractor's answer to
each self-billed invoice the organization issues for it.

The contractor accepts or rejects (with a reason) each one. Silence for the organization's ``acceptance_days``
after the self-billed invoice was issued counts as acceptance, and the invoice says so. A rejected invoice may still
be accepted later (the two sides sorted it out); an accepted one, by answer or by silence, is accepted for good.
An organization may require acceptance before payment (``acceptance_required``): then only an accepted invoice is
exported or paid. A rejection always stops payment: nobody pays a document its supplier says is wrong.

The rule is written here and once in SQL for the guards that refuse to pay (sql/self_billing.sql:
``acceptance_state()``); tests/integration/test_self_billing_rules.py holds the two equal.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_ACCEPTANCE_DAYS = 14
ACCEPTANCE_DAYS_RANGE = (1, 90)


class Acceptance(StrEnum):
    NOT_ISSUED = "not_issued"  # no self-billed invoice yet: nothing to answer
    VOID = "void"  # the authorization is void: nothing to answer, whatever was answered before
    AWAITING = "awaiting"
    ACCEPTED = "accepted"
    ACCEPTED_BY_SILENCE = "accepted_by_silence"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return {
            "not_issued": "Not issued yet",
            "void": "Void: nothing to answer",
            "awaiting": "Awaiting the contractor's acceptance",
            "accepted": "Accepted by the contractor",
            "accepted_by_silence": "Accepted by silence",
            "rejected": "Rejected by the contractor",
        }[self.value]

    @property
    def accepted(self) -> bool:
        return self in (Acceptance.ACCEPTED, Acceptance.ACCEPTED_BY_SILENCE)


def silence_ends(issued_at: datetime, days: int) -> datetime:
    """When silence about a self-billed invoice issued at ``issued_at`` becomes acceptance."""
    return issued_at + timedelta(days=days)


def acceptance_state(
    issued_at: datetime | None, last_decision: str | None, days: int, now: datetime, *, voided: bool = False
) -> Acceptance:
    """Where the contractor's answer stands: ``last_decision`` is its latest answer ('accepted', 'rejected' or None),
    ``issued_at`` when the self-billed invoice was issued (None: not yet), ``now`` the database's clock. Void comes
    first: an answer given before the void stands for nothing, and none is taken after it."""
    if voided:
        return Acceptance.VOID
    if last_decision == "accepted":
        return Acceptance.ACCEPTED
    if last_decision == "rejected":
        return Acceptance.REJECTED
    if issued_at is None:
        return Acceptance.NOT_ISSUED
    if now >= silence_ends(issued_at, days):
        return Acceptance.ACCEPTED_BY_SILENCE
    return Acceptance.AWAITING


def stops_payment(state: Acceptance, *, required: bool) -> bool:
    """Whether the contractor's answer stands between the invoice and its payment."""
    return state is Acceptance.REJECTED or (required and not state.accepted)


def answer_problem(state: Acceptance, decision: str, reason: str) -> str | None:
    """Why the contractor may not give this answer now; None when it may. sql/self_billing.sql's answer guard refuses
    the same (a reason's emptiness is the table's CHECK)."""
    if decision not in ("accepted", "rejected"):
        return "Choose accept or reject."
    if state is Acceptance.VOID:
        return "This authorization is void: there is nothing to answer."
    if state is Acceptance.NOT_ISSUED:
        return "This self-billed invoice has not been issued yet: there is nothing to answer."
    if state.accepted:
        return "This self-billed invoice is accepted already" + (
            " (silence counted as acceptance)." if state is Acceptance.ACCEPTED_BY_SILENCE else "."
        )
    if decision == "rejected" and state is Acceptance.REJECTED:
        return "You rejected this self-billed invoice already."
    if decision == "rejected" and not reason.strip():
        return "Say why you reject it: the organization reads your reason."
    return None
