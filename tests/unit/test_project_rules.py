"""Projects and proposals (DESIGN.md section 3, "Project and proposal"): which moves exist and who makes them, when a
project takes proposals, and why a contractor may not propose. Expected answers are written out here, never read
from the tables under test."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.domain.projects import (
    PROJECT_MOVES,
    PROPOSAL_MOVES,
    ProjectStatus,
    ProposalRefusal,
    ProposalStatus,
    can_run,
    deadline_problem,
    may_withdraw,
    milestones_share_price,
    proposal_refusal,
    takes_proposals,
)

DEADLINE = date(2026, 12, 10)
BEFORE, ON, AFTER = date(2026, 12, 9), date(2026, 12, 10), date(2026, 12, 11)


def test_the_project_moves_are_exactly_award_and_cancel_by_its_runners():
    assert {(a.value, b.value): sorted(r) for (a, b), r in PROJECT_MOVES.items()} == {
        ("open", "awarded"): ["admin", "owner"],
        ("open", "cancelled"): ["admin", "owner"],
    }


def test_the_proposal_moves_are_withdraw_by_its_contractor_and_accept_or_decline_by_the_runners():
    assert {(a.value, b.value): sorted(r) for (a, b), r in PROPOSAL_MOVES.items()} == {
        ("submitted", "withdrawn"): ["contractor"],
        ("submitted", "accepted"): ["admin", "owner"],
        ("submitted", "declined"): ["admin", "owner"],
    }


@pytest.mark.parametrize(
    ("status", "today", "expected"),
    [
        ("open", BEFORE, True),
        ("open", ON, True),  # the deadline day is the last day proposals are taken
        ("open", AFTER, False),
        ("awarded", BEFORE, False),
        ("cancelled", BEFORE, False),
    ],
)
def test_a_project_takes_proposals_while_open_until_the_end_of_its_deadline_day(status, today, expected):
    assert takes_proposals(status, DEADLINE, today) is expected


@pytest.mark.parametrize(
    ("status", "today", "audience", "invited", "has_proposal", "expected"),
    [
        ("open", ON, "invited", True, False, None),
        ("open", ON, "all", False, False, None),
        ("open", ON, "invited", False, False, "not_invited"),
        ("open", ON, "invited", True, True, "duplicate"),
        ("open", ON, "all", False, True, "duplicate"),
        ("open", AFTER, "invited", True, False, "deadline"),
        ("open", AFTER, "invited", False, True, "deadline"),  # the deadline is said before the rest
        ("awarded", BEFORE, "all", True, False, "closed"),
        ("cancelled", AFTER, "invited", False, True, "closed"),  # a closed project is said first
    ],
)
def test_why_a_contractor_may_not_propose(status, today, audience, invited, has_proposal, expected):
    refusal = proposal_refusal(status, DEADLINE, today, audience, invited, has_proposal)
    assert (refusal.value if refusal else None) == expected


def test_every_refusal_says_what_happened_in_words():
    assert {r.value: r.message for r in ProposalRefusal} == {
        "closed": "This project is no longer open for proposals.",
        "deadline": "The deadline for proposals on this project has passed.",
        "not_invited": "This project takes proposals from invited contractors only.",
        "duplicate": "Your organization has already proposed on this project; edit that proposal instead.",
    }


def test_a_deadline_is_today_or_later():
    assert deadline_problem(ON, ON) is None
    assert deadline_problem(AFTER, ON) is None
    assert deadline_problem(BEFORE, ON) == "The deadline for proposals cannot be in the past."


def test_an_admin_or_the_projects_own_owner_runs_it():
    owner, other = object(), object()
    table = {
        (role, who): can_run(role, who, owner)
        for role, who in itertools.product(("admin", "owner", "finance", "contractor", None), (owner, other))
    }
    assert {k for k, v in table.items() if v} == {("admin", owner), ("admin", other), ("owner", owner)}


def test_the_status_labels_are_words():
    assert [s.label for s in ProjectStatus] == ["Open for proposals", "Awarded", "Cancelled"]
    assert [s.label for s in ProposalStatus] == ["Submitted", "Accepted", "Declined", "Withdrawn"]


@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=50), st.integers(-3, 3))
def test_milestones_share_a_price_only_when_they_add_up_to_it_exactly(amounts, delta):
    assert milestones_share_price(sum(amounts) + delta, amounts) is (delta == 0)


def test_a_proposal_without_milestones_shares_no_price():
    assert milestones_share_price(0, []) is False


def test_a_waiting_proposal_may_be_withdrawn_while_its_project_is_open_deadline_or_not():
    assert {s.value: may_withdraw(s.value) for s in ProjectStatus} == {
        "open": True,
        "awarded": False,
        "cancelled": False,
    }
