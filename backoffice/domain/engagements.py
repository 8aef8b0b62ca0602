"""Engagement and milestone state machines (DESIGN.md section 3). The database enforces the same pairs
(sql/rls_policies.sql, engagements_guard and milestones_guard); this is where the app decides."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EngagementStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {"awaiting_acceptance": "Awaiting acceptance"}.get(self.value, self.value.capitalize())


class MilestoneStatus(StrEnum):
    PLANNED = "planned"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.capitalize()


S = EngagementStatus


@dataclass(frozen=True)
class Action:
    """Something a person does to an engagement: which statuses it starts from, where it leads, who may."""

    name: str
    sources: frozenset[EngagementStatus]
    target: EngagementStatus
    roles: frozenset[str]
    label: str


_STAFF = frozenset({"admin", "owner"})

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("send", frozenset({S.DRAFT}), S.AWAITING_ACCEPTANCE, _STAFF, "Send the work request"),
        Action(
            "accept", frozenset({S.AWAITING_ACCEPTANCE}), S.ACTIVE, frozenset({"contractor"}), "Accept the work request"
        ),
        Action("decline", frozenset({S.AWAITING_ACCEPTANCE}), S.DECLINED, frozenset({"contractor"}), "Decline"),
        Action("pause", frozenset({S.ACTIVE}), S.PAUSED, _STAFF, "Pause"),
        Action("resume", frozenset({S.PAUSED}), S.ACTIVE, _STAFF, "Resume"),
        Action("complete", frozenset({S.ACTIVE}), S.COMPLETED, _STAFF, "Mark completed"),
        Action(
            "cancel",
            frozenset({S.DRAFT, S.AWAITING_ACCEPTANCE, S.ACTIVE, S.PAUSED}),
            S.CANCELLED,
            _STAFF,
            "Cancel the engagement",
        ),
    )
}

# Where the schedule may be edited directly (a draft), and where only a change order may change it.
EDITABLE = frozenset({S.DRAFT})
CHANGE_ORDERS_ALLOWED = frozenset({S.ACTIVE, S.PAUSED})

MILESTONE_TRANSITIONS = frozenset(
    {
        (MilestoneStatus.PLANNED, MilestoneStatus.SUBMITTED),
        (MilestoneStatus.SUBMITTED, MilestoneStatus.PLANNED),  # partial or disputed: back with the reason
        (MilestoneStatus.SUBMITTED, MilestoneStatus.APPROVED),
        (MilestoneStatus.PLANNED, MilestoneStatus.CANCELLED),  # change order only
    }
)
# A change order may adjust these; approved and cancelled milestones are final.
ADJUSTABLE = frozenset({MilestoneStatus.PLANNED, MilestoneStatus.SUBMITTED})
CANCELLABLE = frozenset({MilestoneStatus.PLANNED})


def refusal(action_name: str, status: str, role: str) -> str | None:
    """Why ``role`` may not do ``action_name`` to an engagement in ``status``, or None if it may."""
    action = ACTIONS.get(action_name)
    if action is None:
        return "That is not something you can do to an engagement."
    if role not in action.roles:
        return f"Only {' or '.join(_role_names(action.roles))} can {action.name} an engagement."
    if EngagementStatus(status) not in action.sources:
        return f"An engagement that is {EngagementStatus(status).label.lower()} cannot be {_past(action.name)}."
    return None


def available(status: str, role: str) -> list[Action]:
    """The actions this role can take on an engagement in this status, in a sensible order for buttons."""
    return [a for a in ACTIONS.values() if role in a.roles and EngagementStatus(status) in a.sources]


def _role_names(roles: frozenset[str]) -> list[str]:
    names = {"admin": "admins", "owner": "project owners", "contractor": "the contractor", "finance": "finance"}
    return [names[r] for r in sorted(roles)]


def _past(verb: str) -> str:
    return {
        "send": "sent",
        "accept": "accepted",
        "decline": "declined",
        "pause": "paused",
        "resume": "resumed",
        "complete": "completed",
        "cancel": "cancelled",
    }[verb]
