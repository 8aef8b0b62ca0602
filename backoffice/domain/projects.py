"""Projects and proposals (DESIGN.md section 3, "Project and proposal"): an open call for proposals, the
contractors' offers, and the one award that turns an offer into a contract.

Each rule has its one name here. The database enforces the same rules again, whoever writes: the guards of
sql/project_guards.sql call their SQL twins, defined in sql/projects.sql (``project_move_roles``,
``proposal_move_roles``, ``project_takes_proposals``, ``project_allows_withdrawal``, ``proposal_refusal``,
``project_fixed_once_proposed``), and tests/integration/test_project_rule_parity.py enumerates every combination and
holds each copy equal to the Python here.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from backoffice.domain.completion import advance_amount, task_pool
from backoffice.domain.engagements import can_decide
from backoffice.domain.roles import MANAGERS, Role


class ProjectStatus(StrEnum):
    OPEN = "open"
    AWARDED = "awarded"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {"open": "Open for proposals"}.get(self.value, self.value.capitalize())


class ProposalStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Audience(StrEnum):
    """Who may propose on a project: the contractors invited to it, or every contractor of the organization."""

    INVITED = "invited"
    ALL = "all"

    @property
    def label(self) -> str:
        return {"invited": "Invited contractors only", "all": "Every contractor of the organization"}[self.value]


# The billing modes a project's contract may take (engagements.billing_mode; domain.completion).
BILLING_MODES = {
    "milestone": "Milestone billing: each approved milestone is paid",
    "completion": "Completion billing: an advance, invoices for approved tasks, the final payment at the end",
}

P = ProjectStatus
PROJECT_MOVES: dict[tuple[ProjectStatus, ProjectStatus], frozenset[str]] = {
    # the award: one proposal accepted, the contract created (services/awards.py)
    (P.OPEN, P.AWARDED): MANAGERS,
    (P.OPEN, P.CANCELLED): MANAGERS,
}

Q = ProposalStatus
PROPOSAL_MOVES: dict[tuple[ProposalStatus, ProposalStatus], frozenset[str]] = {
    # the contractor takes its offer back while the project is open
    (Q.SUBMITTED, Q.WITHDRAWN): frozenset({Role.CONTRACTOR}),
    # the award accepts one and declines every other; a cancelled project declines every one
    (Q.SUBMITTED, Q.ACCEPTED): MANAGERS,
    (Q.SUBMITTED, Q.DECLINED): MANAGERS,
}

# What a project asks, fixed once a contractor has proposed on it: the offers priced exactly this (changing it is a
# new project). The deadline, budget, invitations and owner may still change.
FIXED_ONCE_PROPOSED = ("title", "description", "currency", "billing_mode", "advance_bps")

# Where a project is edited, and a proposal edited or withdrawn.
EDITABLE_PROJECT = frozenset({P.OPEN})
EDITABLE_PROPOSAL = frozenset({Q.SUBMITTED})

MAX_PROPOSAL_MILESTONES = 50


class ProposalRefusal(StrEnum):
    """Why a contractor may not submit (or change) a proposal now; the SQL twin returns the same words."""

    CLOSED = "closed"  # the project is awarded or cancelled
    DEADLINE = "deadline"  # its deadline has passed
    NOT_INVITED = "not_invited"  # the project takes proposals from invited contractors only
    DUPLICATE = "duplicate"  # this contractor has proposed on it already

    @property
    def message(self) -> str:
        return {
            "closed": "This project is no longer open for proposals.",
            "deadline": "The deadline for proposals on this project has passed.",
            "not_invited": "This project takes proposals from invited contractors only.",
            "duplicate": "Your organization has already proposed on this project; edit that proposal instead.",
        }[self.value]


def takes_proposals(status: str, deadline: date, today: date) -> bool:
    """Whether a project accepts new proposals and changes to them: open, and its deadline day not yet over."""
    return status == ProjectStatus.OPEN and today <= deadline


def may_withdraw(project_status: str) -> bool:
    """Whether a contractor may still take its waiting proposal back: while the project is open, after the
    deadline too (the owner has not decided yet, and a contractor that can no longer do the work should say so).
    Changing a proposal's terms ends with the deadline (``takes_proposals``): nobody improves an offer late."""
    return project_status == ProjectStatus.OPEN


def proposal_refusal(
    status: str, deadline: date, today: date, audience: str, invited: bool, has_proposal: bool
) -> ProposalRefusal | None:
    """Why a contractor may not submit a new proposal on this project, or None if it may. ``has_proposal``:
    it has one already, in any status (one per project and contractor, withdrawn ones included)."""
    if status != ProjectStatus.OPEN:
        return ProposalRefusal.CLOSED
    if today > deadline:
        return ProposalRefusal.DEADLINE
    if audience != Audience.ALL and not invited:
        return ProposalRefusal.NOT_INVITED
    if has_proposal:
        return ProposalRefusal.DUPLICATE
    return None


def deadline_problem(deadline: date, today: date) -> str | None:
    """A new or changed deadline is today or later."""
    if deadline < today:
        return "The deadline for proposals cannot be in the past."
    return None


def can_run(role: str | None, user_id: object, owner_user_id: object) -> bool:
    """Whether this person runs the project (edits, cancels, awards it): an admin, or its project owner. The
    same rule as an engagement's (domain.engagements.can_decide), named once there."""
    return can_decide(role, user_id, owner_user_id)


def milestones_share_price(price: int, milestone_amounts: list[int], advance_bps: int | None = None) -> bool:
    """A proposal's milestones (at least one) share its price exactly, in minor units: what the award turns
    into the engagement's milestones, so the contract is worth what was offered. On a completion project
    (``advance_bps`` given) they share the price less the advance (domain.completion), as the contract's tasks do."""
    return bool(milestone_amounts) and sum(milestone_amounts) == proposal_task_pool(price, advance_bps)


def proposal_task_pool(price: int, advance_bps: int | None) -> int:
    """What a proposal's milestones share: its price, less the advance on a completion project."""
    return price if advance_bps is None else task_pool(price, advance_amount(price, advance_bps))
