"""Engagement and milestone state machines (DESIGN.md section 3): who may do what, from where."""

from __future__ import annotations

import itertools

import pytest

from backoffice.domain.engagements import (
    ACTIONS,
    ADJUSTABLE,
    CANCELLABLE,
    CHANGE_ORDERS_ALLOWED,
    EDITABLE,
    MILESTONE_MOVES,
    REVIEWABLE,
    EngagementStatus,
    MilestoneStatus,
    MoveRefusal,
    available,
    can_decide,
    engagement_move_roles,
    milestone_move_refusal,
    refusal,
)

S = EngagementStatus
M = MilestoneStatus

ROLES = ("admin", "owner", "finance", "contractor")
STAFF = {"admin", "owner"}
CONTRACTOR = {"contractor"}
STATUSES = list(EngagementStatus)

# The rules written out independently of the code: action -> (source statuses, target, roles).
EXPECTED = {
    "send": ({S.DRAFT}, S.AWAITING_ACCEPTANCE, STAFF),
    "accept": ({S.AWAITING_ACCEPTANCE}, S.ACTIVE, CONTRACTOR),
    "decline": ({S.AWAITING_ACCEPTANCE}, S.DECLINED, CONTRACTOR),
    "pause": ({S.ACTIVE}, S.PAUSED, STAFF),
    "resume": ({S.PAUSED}, S.ACTIVE, STAFF),
    "complete": ({S.ACTIVE}, S.COMPLETED, STAFF),
    "cancel": ({S.DRAFT, S.AWAITING_ACCEPTANCE, S.ACTIVE, S.PAUSED}, S.CANCELLED, STAFF),
}

ALL_COMBINATIONS = list(itertools.product(EXPECTED, STATUSES, ROLES))


def _allowed(action: str, status: S, role: str) -> bool:
    sources, _target, roles = EXPECTED[action]
    return status in sources and role in roles


# --- the table of actions ------------------------------------------------------------------------


def test_the_engagement_actions_are_exactly_the_designed_ones():
    assert set(ACTIONS) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_action_starts_from_the_designed_statuses_leads_to_its_target_and_names_its_roles(name):
    sources, target, roles = EXPECTED[name]
    action = ACTIONS[name]
    assert (set(action.sources), action.target, set(action.roles)) == (sources, target, roles)
    assert action.name == name and action.label.strip()


def test_the_engagement_graph_matches_the_design():
    edges = {(source, a.target) for a in ACTIONS.values() for source in a.sources}
    assert edges == {
        (S.DRAFT, S.AWAITING_ACCEPTANCE),
        (S.AWAITING_ACCEPTANCE, S.ACTIVE),
        (S.AWAITING_ACCEPTANCE, S.DECLINED),
        (S.ACTIVE, S.PAUSED),
        (S.PAUSED, S.ACTIVE),
        (S.ACTIVE, S.COMPLETED),
        (S.DRAFT, S.CANCELLED),
        (S.AWAITING_ACCEPTANCE, S.CANCELLED),
        (S.ACTIVE, S.CANCELLED),
        (S.PAUSED, S.CANCELLED),
    }


@pytest.mark.parametrize("status", [S.COMPLETED, S.DECLINED, S.CANCELLED])
def test_completed_declined_and_cancelled_engagements_are_final(status):
    assert not any(status in a.sources for a in ACTIONS.values())
    for role in ROLES:
        assert available(status, role) == []


def test_no_action_leads_back_to_draft():
    assert all(a.target != S.DRAFT for a in ACTIONS.values())


# --- refusal -------------------------------------------------------------------------------------


@pytest.mark.parametrize("action, status, role", ALL_COMBINATIONS)
def test_refusal_allows_exactly_the_designed_role_and_status_pairs(action, status, role):
    reason = refusal(action, status.value, role)
    if _allowed(action, status, role):
        assert reason is None
    else:
        assert isinstance(reason, str) and reason.strip()


@pytest.mark.parametrize("action, status, role", [c for c in ALL_COMBINATIONS if not _allowed(*c)])
def test_every_refusal_is_a_readable_sentence(action, status, role):
    reason = refusal(action, status.value, role)
    assert reason[0].isupper() and reason.endswith(".")
    assert "_" not in reason and "EngagementStatus" not in reason and "frozenset" not in reason


@pytest.mark.parametrize("action", ["accept", "decline"])
@pytest.mark.parametrize("role", ["admin", "owner", "finance"])
def test_only_the_contractor_may_accept_or_decline(action, role):
    assert refusal(action, "awaiting_acceptance", "contractor") is None
    reason = refusal(action, "awaiting_acceptance", role)
    assert reason is not None and "Only" in reason and "contractor" in reason and action in reason


@pytest.mark.parametrize(
    "action, status",
    [("send", "draft"), ("pause", "active"), ("resume", "paused"), ("complete", "active"), ("cancel", "active")],
)
@pytest.mark.parametrize("role", ["contractor", "finance"])
def test_only_admins_or_project_owners_may_send_pause_resume_complete_or_cancel(action, status, role):
    assert refusal(action, status, "admin") is None
    assert refusal(action, status, "owner") is None
    reason = refusal(action, status, role)
    assert reason is not None
    assert "Only" in reason and "admins" in reason and "project owners" in reason and action in reason


@pytest.mark.parametrize("status", ["draft", "awaiting_acceptance", "active", "paused"])
def test_an_engagement_that_is_not_finished_can_be_cancelled(status):
    assert refusal("cancel", status, "owner") is None
    assert refusal("cancel", status, "admin") is None


@pytest.mark.parametrize("status", ["completed", "declined", "cancelled"])
def test_a_completed_declined_or_cancelled_engagement_cannot_be_cancelled(status):
    reason = refusal("cancel", status, "owner")
    assert reason is not None and "cannot be cancelled" in reason and status in reason


@pytest.mark.parametrize(
    "action, status, role, words",
    [
        ("send", "active", "owner", ["active", "cannot be sent"]),
        ("accept", "draft", "contractor", ["draft", "cannot be accepted"]),
        ("decline", "active", "contractor", ["active", "cannot be declined"]),
        ("pause", "paused", "admin", ["paused", "cannot be paused"]),
        ("resume", "active", "owner", ["active", "cannot be resumed"]),
        ("complete", "paused", "owner", ["paused", "cannot be completed"]),
        ("complete", "awaiting_acceptance", "admin", ["awaiting acceptance", "cannot be completed"]),
    ],
)
def test_a_wrong_state_refusal_names_the_current_state_and_the_action(action, status, role, words):
    reason = refusal(action, status, role)
    assert reason is not None
    for word in words:
        assert word in reason
    assert "Only" not in reason


@pytest.mark.parametrize(
    "action, status, role",
    [("accept", "awaiting_acceptance", "owner"), ("pause", "active", "contractor"), ("send", "draft", "finance")],
)
def test_a_wrong_role_refusal_says_who_may_and_not_the_state(action, status, role):
    reason = refusal(action, status, role)
    assert reason is not None and reason.startswith("Only") and "cannot be" not in reason


def test_wrong_role_and_wrong_state_messages_differ():
    assert refusal("pause", "active", "contractor") != refusal("pause", "draft", "owner")


def test_an_unknown_action_is_refused_with_a_message():
    reason = refusal("delete", "draft", "admin")
    assert reason is not None and reason.strip()


# --- available buttons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, role, names",
    [
        ("draft", "admin", ["send", "cancel"]),
        ("draft", "owner", ["send", "cancel"]),
        ("draft", "contractor", []),
        ("awaiting_acceptance", "owner", ["cancel"]),
        ("awaiting_acceptance", "contractor", ["accept", "decline"]),
        ("active", "owner", ["pause", "complete", "cancel"]),
        ("active", "admin", ["pause", "complete", "cancel"]),
        ("active", "contractor", []),
        ("paused", "owner", ["resume", "cancel"]),
        ("paused", "contractor", []),
        ("completed", "owner", []),
        ("declined", "admin", []),
        ("cancelled", "owner", []),
    ],
)
def test_available_lists_the_right_buttons_in_order(status, role, names):
    assert [a.name for a in available(status, role)] == names


@pytest.mark.parametrize("status", STATUSES)
def test_finance_has_no_engagement_buttons(status):
    assert available(status.value, "finance") == []


@pytest.mark.parametrize("status, role", list(itertools.product(STATUSES, ROLES)))
def test_available_agrees_with_refusal(status, role):
    offered = {a.name for a in available(status.value, role)}
    assert offered == {name for name in ACTIONS if refusal(name, status.value, role) is None}


# --- schedule editing ----------------------------------------------------------------------------


def test_only_a_draft_schedule_is_edited_directly():
    assert set(EDITABLE) == {S.DRAFT}


def test_change_orders_are_allowed_on_active_and_paused_engagements_only():
    assert set(CHANGE_ORDERS_ALLOWED) == {S.ACTIVE, S.PAUSED}
    assert not (set(EDITABLE) & set(CHANGE_ORDERS_ALLOWED))


# --- milestones ----------------------------------------------------------------------------------


# The milestone moves written out independently of the code: (source, target) -> (roles, engagement statuses).
EXPECTED_MILESTONE_MOVES = {
    (M.PLANNED, M.SUBMITTED): ({"contractor"}, {S.ACTIVE}),
    (M.SUBMITTED, M.APPROVED): (STAFF, {S.ACTIVE, S.PAUSED}),
    (M.SUBMITTED, M.PLANNED): (STAFF, {S.ACTIVE, S.PAUSED}),  # partial or disputed: back with the reason
    (M.PLANNED, M.CANCELLED): (STAFF, {S.ACTIVE, S.PAUSED}),  # change order only
    # a later step of its payment's approval policy rejected it (issue 18): any approver's role
    (M.APPROVED, M.PLANNED): ({"admin", "owner", "finance"}, {S.ACTIVE, S.PAUSED}),
}


def test_milestone_moves_match_the_design():
    assert {k: (set(v.roles), set(v.engagement_statuses)) for k, v in MILESTONE_MOVES.items()} == (
        EXPECTED_MILESTONE_MOVES
    )


def test_a_cancelled_milestone_is_final_and_an_approved_one_goes_back_only_when_its_payment_is_rejected():
    assert not any(source == M.CANCELLED for source, _ in MILESTONE_MOVES)
    assert [target for source, target in MILESTONE_MOVES if source == M.APPROVED] == [M.PLANNED]


@pytest.mark.parametrize(
    "source, target", [(M.SUBMITTED, M.CANCELLED), (M.PLANNED, M.APPROVED), (M.APPROVED, M.CANCELLED)]
)
def test_a_milestone_cannot_skip_review_or_be_cancelled_after_submission(source, target):
    assert milestone_move_refusal(source, target, None, S.ACTIVE) == MoveRefusal.ILLEGAL


@pytest.mark.parametrize("source", list(M))
@pytest.mark.parametrize("target", list(M))
@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize("engagement", STATUSES)
def test_a_milestone_move_is_refused_for_the_first_reason_that_applies(source, target, role, engagement):
    expected = EXPECTED_MILESTONE_MOVES.get((source, target))
    if expected is None:
        want = MoveRefusal.ILLEGAL
    elif role is not None and role not in expected[0]:
        want = MoveRefusal.ROLE
    elif engagement not in expected[1]:
        want = MoveRefusal.ENGAGEMENT
    else:
        want = None
    assert milestone_move_refusal(source, target, role, engagement) == want


def test_work_is_reviewed_on_an_active_or_paused_engagement():
    assert set(REVIEWABLE) == {S.ACTIVE, S.PAUSED}


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_the_roles_of_an_engagement_move_are_those_of_its_action(source, target):
    want = set().union(*(roles for sources, to, roles in EXPECTED.values() if to == target and source in sources))
    assert set(engagement_move_roles(source, target)) == want


def test_an_admin_or_the_engagements_own_owner_decides_and_nobody_else():
    me, someone = object(), object()
    assert can_decide("admin", me, someone) and can_decide("admin", None, None)
    assert can_decide("owner", me, me)
    assert not can_decide("owner", me, someone)
    assert not can_decide("owner", None, None)  # no person is nobody's owner
    assert not any(can_decide(role, me, me) for role in ("finance", "contractor", None))


@pytest.mark.parametrize(
    "status, adjustable, cancellable",
    [
        (M.PLANNED, True, True),
        (M.SUBMITTED, True, False),
        (M.APPROVED, False, False),
        (M.CANCELLED, False, False),
    ],
)
def test_which_milestones_a_change_order_may_adjust_or_cancel(status, adjustable, cancellable):
    assert (status in ADJUSTABLE, status in CANCELLABLE) == (adjustable, cancellable)


def test_every_cancellable_milestone_can_actually_move_to_cancelled():
    assert {s for s in M if (s, M.CANCELLED) in MILESTONE_MOVES} == set(CANCELLABLE)


def test_status_labels_are_readable():
    assert S.AWAITING_ACCEPTANCE.label == "Awaiting acceptance"
    assert S.ACTIVE.label == "Active"
    assert M.SUBMITTED.label == "Submitted"
