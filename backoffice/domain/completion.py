"""Completion billing (DESIGN.md section 4, "Completion billing", invariant 6).

An engagement billed on completion has a contract value ``V`` and an advance of ``a`` basis points. The advance
``A = round_half_up(V × a / 10000)`` is authorized when the engagement becomes active, with no retainage and no fee.
The tasks (the engagement's milestones) share ``V − A`` exactly. Approving a task authorizes nothing by itself: the
contractor invoices approved tasks when it chooses (an invoice of kind ``completion``, the exact sum of their
amounts), and approving the last open task authorizes the ``final`` invoice for the rest. Nothing here re-divides
a remainder by the tasks left (seed ARTISH's drift): every amount is a task's own, or an exact difference.

This is where each rule has its one name; sql/completion.sql holds the SQL twins the guards call, and
tests/integration/test_completion_rule_parity.py holds each equal to the Python here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backoffice.domain.milestone_status import ShownStatus, shown_status
from backoffice.domain.money import allocate, percent_of, split_equally
from backoffice.domain.percent import format_bps


class BillingMode(StrEnum):
    MILESTONE = "milestone"  # each approved milestone is its own payment
    COMPLETION = "completion"  # an advance, invoices for approved tasks, the final payment when all are approved

    @property
    def label(self) -> str:
        return {
            "milestone": "Milestone billing",
            "completion": "Completion billing",
        }[self.value]

    @property
    def hint(self) -> str:
        return {
            "milestone": "Each milestone is paid when its work is approved.",
            "completion": "An advance when the contractor accepts, invoices for approved tasks when the contractor "
            "chooses, and the final payment when the last task is approved.",
        }[self.value]


# The advance an engagement may take, in basis points: up to half the contract value (DESIGN.md section 4).
ADVANCE_MAX_BPS = 5_000
# A new organization's default advance (12%, seed ARTISH's); an organization can switch advances off.
DEFAULT_ADVANCE_BPS = 1_200

# Milestones are called tasks under completion billing, on every page.
TASK_WORD = {BillingMode.MILESTONE: "milestone", BillingMode.COMPLETION: "task"}


def task_word(billing_mode: str, *, plural: bool = False, capital: bool = False) -> str:
    word = TASK_WORD[BillingMode(billing_mode)] + ("s" if plural else "")
    return word.capitalize() if capital else word


def advance_amount(value: int, advance_bps: int) -> int:
    """The advance of a contract of ``value`` minor units: round_half_up(value × bps / 10000)."""
    if value <= 0:
        raise ValueError("a contract value is greater than zero")
    if not 0 <= advance_bps <= ADVANCE_MAX_BPS:
        raise ValueError("an advance is between 0% and 50% of the contract value")
    return percent_of(value, advance_bps)


def advance_problem(advance_bps: int, advances_enabled: bool) -> str | None:
    """Why an advance of ``advance_bps`` may not be asked, or None: at most ADVANCE_MAX_BPS, and none at all in an
    organization that pays no advances (its settings)."""
    if advance_bps > ADVANCE_MAX_BPS:
        return f"An advance is at most {format_bps(ADVANCE_MAX_BPS)}% of the contract value."
    if advance_bps and not advances_enabled:
        return "This organization pays no advances (Settings); enter 0."
    return None


def value_problem(value: int, advance_bps: int) -> str | None:
    """Why a contract value cannot take this advance, or None: the tasks must share something (the table's CHECK
    engagements_billing_terms holds advance < value)."""
    if task_pool(value, advance_amount(value, advance_bps)) <= 0:
        return "The contract value is too small for this advance: nothing would be left for the tasks."
    return None


def task_pool(value: int, advance: int) -> int:
    """What the tasks share: the contract value less the advance."""
    return value - advance


def split_tasks(
    value: int, advance_bps: int, *, count: int | None = None, weights: list[int] | None = None
) -> list[int]:
    """The tasks' amounts for a contract of ``value`` with an advance of ``advance_bps``: an equal split into
    ``count`` parts, or shares in proportion to ``weights`` (percentages in basis points, or any amounts), by the
    largest remainder. They sum exactly to ``value − advance``."""
    pool = task_pool(value, advance_amount(value, advance_bps))
    if count is not None:
        return split_equally(pool, count)
    if weights is None:
        raise ValueError("give a count or weights")
    return allocate(pool, weights)


def schedule_problem(value: int | None, advance: int, task_amounts: list[int]) -> str | None:
    """Why a completion engagement's tasks do not share its contract value less the advance, or None if they do.
    The SQL twin, completion_schedule_problem(), returns the same words."""
    if value is None or value <= 0:
        return "Enter the contract value."
    if not task_amounts:
        return "Add at least one task."
    pool = task_pool(value, advance)
    total = sum(task_amounts)
    if total != pool:
        return f"the tasks add up to {total} but must add up to the contract value less the advance, {pool}"
    return None


# Which invoice kinds are billed under which mode, and which withhold retainage and charge the service fee.
COMPLETION_KINDS = frozenset({"advance", "completion", "final"})
# Kinds that pay for approved work: retainage is withheld from them and the service fee charged on them; the
# advance (ahead of work) and a release of retainage do neither.
WORK_KINDS = frozenset({"milestone", "completion", "final"})


def withholds(kind: str) -> bool:
    """Whether an invoice of this kind withholds the engagement's retainage and charges its service fee."""
    return kind in WORK_KINDS


def final_amount(value: int, billed: int) -> int:
    """The final payment: what the contract value leaves after every live advance and task invoice. With every task
    approved it is exactly the tasks not yet invoiced, plus the advance if that was never paid (a rejected
    advance is paid at the end, with the work). That part is then paid as work delivered, not ahead of it, so the final
    payment's retainage and fee apply to the whole of it (the advance's exemption is for money paid ahead of work);
    every invoice keeps the one rule retainage = round_half_up(gross × rate)."""
    return value - billed


def billed_problem(value: int, billed: int, *, completed: bool) -> str | None:
    """Invariant 6: a completion engagement's live advance, task and final invoices never sum to more than its
    contract value, and to exactly that when it is completed. The SQL twin, completion_billed_problem(), returns the
    same words."""
    if billed > value:
        return "its invoices would exceed the contract value"
    if completed and billed != value:
        return "a completed engagement's invoices add up to its contract value"
    return None


@dataclass(frozen=True)
class TaskLine:
    """One task of a completion schedule, as the engagement page shows it."""

    milestone_id: object
    seq: int
    title: str
    amount: int
    status: str  # the milestone's status
    invoice_number: str | None  # the live invoice that bills it, if any
    invoice_id: object | None = None
    invoice_kind: str | None = None  # "completion" (the contractor's invoice) or "final"
    invoice_status: str | None = None
    decision: str | None = None  # the latest revision's review, if it has one
    partial_policy: str | None = None

    @property
    def shown(self) -> ShownStatus:
        return shown_status(self.status, self.decision, self.partial_policy)

    @property
    def invoiced(self) -> bool:
        return self.invoice_number is not None

    @property
    def invoiceable(self) -> bool:
        """Approved and not yet invoiced: the contractor may raise an invoice for it."""
        return self.status == "approved" and not self.invoiced


@dataclass(frozen=True)
class Schedule:
    """A completion engagement's money at a glance: the contract value, the advance (and whether it is
    authorized), each task, what has been invoiced and what remains, and the final payment."""

    value: int
    advance_bps: int
    advance: int
    advance_invoice: str | None  # the advance's invoice number once authorized
    tasks: tuple[TaskLine, ...]
    billed: int  # Σ gross of live advance, completion and final invoices
    final_invoice: str | None
    advance_invoice_id: object | None = None
    advance_status: str | None = None  # the live advance invoice's status
    advance_due: bool = False  # the advance is still to be authorized: when the contractor accepts
    final_invoice_id: object | None = None
    final_status: str | None = None
    final_gross: int | None = None

    @property
    def remaining(self) -> int:
        return self.value - self.billed

    def invoiceable_among(self, task_ids) -> tuple[TaskLine, ...]:
        """The invoiceable tasks among ``task_ids`` (any spelling of their ids), in order; the rest are ignored."""
        wanted = {str(i) for i in task_ids}
        return tuple(t for t in self.invoiceable if str(t.milestone_id) in wanted)

    @property
    def invoiceable(self) -> tuple[TaskLine, ...]:
        return tuple(t for t in self.tasks if t.invoiceable)

    @property
    def invoiceable_total(self) -> int:
        return sum(t.amount for t in self.invoiceable)

    @property
    def open_tasks(self) -> tuple[TaskLine, ...]:
        return tuple(t for t in self.tasks if t.status in ("planned", "submitted"))

    @property
    def projected_final(self) -> int:
        """What the final payment will be if nothing else is invoiced first: the tasks not yet invoiced plus an
        advance that was never paid (one still due at acceptance is not: it will have been paid by then)."""
        return self.remaining - (self.advance if self.advance_due else 0)


def invoice_gross(tasks) -> int:
    """What an invoice for these tasks bills: the exact sum of their amounts (never a remainder re-divided)."""
    return sum(t.amount for t in tasks)
