"""Engagement and milestone state machines (DESIGN.md section 3), and who runs an engagement.

This is where each rule has its one name. The database enforces the same rules again, whoever writes:
the guards in sql/engagements.sql and sql/reviews.sql call the SQL copies in sql/rules.sql, and
tests/integration/test_rule_parity.py enumerates every combination and holds each copy equal to the
Python here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backoffice.domain.roles import MANAGERS, STAFF_ROLES, Role


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


# Who sends, pauses, completes and cancels an engagement and decides on its work: roles.MANAGERS (admins,
# and the project owner named on it: see ``can_decide``); the contractor answers the work request.

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("send", frozenset({S.DRAFT}), S.AWAITING_ACCEPTANCE, MANAGERS, "Send the work request"),
        Action(
            "accept",
            frozenset({S.AWAITING_ACCEPTANCE}),
            S.ACTIVE,
            frozenset({Role.CONTRACTOR}),
            "Accept the work request",
        ),
        Action("decline", frozenset({S.AWAITING_ACCEPTANCE}), S.DECLINED, frozenset({Role.CONTRACTOR}), "Decline"),
        Action("pause", frozenset({S.ACTIVE}), S.PAUSED, MANAGERS, "Pause"),
        Action("resume", frozenset({S.PAUSED}), S.ACTIVE, MANAGERS, "Resume"),
        Action("complete", frozenset({S.ACTIVE}), S.COMPLETED, MANAGERS, "Mark completed"),
        Action(
            "cancel",
            frozenset({S.DRAFT, S.AWAITING_ACCEPTANCE, S.ACTIVE, S.PAUSED}),
            S.CANCELLED,
            MANAGERS,
            "Cancel the engagement",
        ),
    )
}

# Where the schedule may be edited directly (a draft), and where only a change order may change it.
EDITABLE = frozenset({S.DRAFT})
CHANGE_ORDERS_ALLOWED = frozenset({S.ACTIVE, S.PAUSED})
# Where submitted work is reviewed (decided on): a paused engagement still takes decisions.
REVIEWABLE = frozenset({S.ACTIVE, S.PAUSED})
# Where a contractor submits work.
SUBMITTABLE = frozenset({S.ACTIVE})

# A change order may adjust these; approved and cancelled milestones are final.
ADJUSTABLE = frozenset({MilestoneStatus.PLANNED, MilestoneStatus.SUBMITTED})
CANCELLABLE = frozenset({MilestoneStatus.PLANNED})


def can_decide(role: str | None, user_id: object, owner_user_id: object) -> bool:
    """Whether this person runs the engagement and decides on its submitted work: an admin, or the
    project owner named on the engagement. Never a contractor, never finance, never another owner."""
    return role == Role.ADMIN or (role == Role.OWNER and user_id is not None and user_id == owner_user_id)


def engagement_move_roles(source: str, target: str) -> frozenset[str]:
    """The roles that may move an engagement from ``source`` to ``target`` (empty: no such move)."""
    return frozenset(role for a in ACTIONS.values() if a.target == target and source in a.sources for role in a.roles)


@dataclass(frozen=True)
class MilestoneMove:
    """A legal milestone move: who makes it, and in which engagement statuses."""

    roles: frozenset[str]
    engagement_statuses: frozenset[EngagementStatus]


M = MilestoneStatus
MILESTONE_MOVES: dict[tuple[MilestoneStatus, MilestoneStatus], MilestoneMove] = {
    # The contractor marks complete, with evidence.
    (M.PLANNED, M.SUBMITTED): MilestoneMove(frozenset({Role.CONTRACTOR}), SUBMITTABLE),
    # A decision: back to the contractor with the reason (disputed, or partial routed back), or approved.
    (M.SUBMITTED, M.PLANNED): MilestoneMove(MANAGERS, REVIEWABLE),
    (M.SUBMITTED, M.APPROVED): MilestoneMove(MANAGERS, REVIEWABLE),
    # A change order cancels a planned milestone.
    (M.PLANNED, M.CANCELLED): MilestoneMove(MANAGERS, CHANGE_ORDERS_ALLOWED),
    # A later step of its payment's approval policy rejected it: back to the contractor like a dispute (issue 18).
    (M.APPROVED, M.PLANNED): MilestoneMove(STAFF_ROLES, REVIEWABLE),
}


class MoveRefusal(StrEnum):
    """Why a milestone may not move: the SQL copy returns the same words."""

    ILLEGAL = "illegal"  # no such move
    ROLE = "role"  # not this person's move
    ENGAGEMENT = "engagement"  # not while the engagement is in this status


def milestone_move_refusal(source: str, target: str, role: str | None, engagement_status: str) -> MoveRefusal | None:
    """Why a milestone may not move from ``source`` to ``target`` now, or None if it may. ``role`` None is
    the system itself (migrations, set-up), which no role rule binds."""
    move = MILESTONE_MOVES.get((source, target))
    if move is None:
        return MoveRefusal.ILLEGAL
    if role is not None and role not in move.roles:
        return MoveRefusal.ROLE
    if engagement_status not in move.engagement_statuses:
        return MoveRefusal.ENGAGEMENT
    return None


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
