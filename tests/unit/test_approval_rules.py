"""Payment controls' rules (backoffice.domain.approvals, issue 18): which policy an authorization starts under,
who may decide a step, who may not because they approved already, and "why isn't this payable yet". Every
expected value is written out here, never read from the module under test."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from backoffice.domain.approvals import (
    Blocker,
    Policy,
    Step,
    applicable_policy,
    blockers,
    delegation_covers,
    distinct_people_refusal,
    may_approve,
    policy_amount,
    step_words,
    stops_payment,
)

ADA, OMAR, FIONA, XENA = (uuid.UUID(int=n) for n in (1, 2, 3, 4))  # admin, owner, finance, a contractor's user
SMALL = Policy(uuid.UUID(int=100), "USD", 100_000)  # $1,000.00
LARGE = Policy(uuid.UUID(int=101), "USD", 1_000_000)  # $10,000.00
HUGE = Policy(uuid.UUID(int=102), "USD", 5_000_000)  # $50,000.00
EURO = Policy(uuid.UUID(int=103), "EUR", 10_000)  # €100.00
POLICIES = [LARGE, EURO, HUGE, SMALL]  # not in order: the rule must not depend on it


# --- which policy applies -------------------------------------------------------------------------------------


def test_the_amount_a_minimum_is_compared_with_is_the_gross():
    assert policy_amount(1_280_000) == 1_280_000


@pytest.mark.parametrize(
    ("currency", "gross", "expected"),
    [
        ("USD", 99_999, None),  # below every minimum in its currency
        ("USD", 100_000, SMALL),  # exactly at a minimum: it applies
        ("USD", 999_999, SMALL),
        ("USD", 1_000_000, LARGE),  # two reached: the highest minimum wins
        ("USD", 4_999_999, LARGE),
        ("USD", 5_000_000, HUGE),
        ("USD", 10**15, HUGE),
        ("EUR", 9_999, None),
        ("EUR", 10_000, EURO),
        ("EUR", 10**15, EURO),  # USD policies with higher minimums are not EUR's
        ("GBP", 10**15, None),  # no policy in that currency
    ],
)
def test_the_policy_that_applies_is_the_highest_minimum_reached_in_the_same_currency(currency, gross, expected):
    assert applicable_policy(POLICIES, currency, gross) == expected


def test_no_policies_means_none_applies():
    assert applicable_policy([], "USD", 10**15) is None


def test_a_currency_is_matched_exactly():
    assert applicable_policy([SMALL], "usd", 10**15) is None


# --- steps ------------------------------------------------------------------------------------------------------


def test_a_step_names_a_staff_role_or_people_never_both_nor_neither():
    assert Step("finance").role == "finance"
    assert Step(user_ids=frozenset({ADA})).user_ids == {ADA}
    for bad in ({}, {"role": "admin", "user_ids": frozenset({ADA})}):
        with pytest.raises(ValueError, match="a role or people, not both"):
            Step(**bad)
    with pytest.raises(ValueError, match="admin, owner or finance"):
        Step("contractor")
    Step(user_ids=frozenset(uuid.UUID(int=n) for n in range(20)))
    with pytest.raises(ValueError, match="at most 20 people"):
        Step(user_ids=frozenset(uuid.UUID(int=n) for n in range(21)))


# --- who may decide a step --------------------------------------------------------------------------------------

# (step's role, step's people) -> who, by role, may decide it when they are not named; and when named.
STEPS = {
    "admin": ("admin", ()),
    "owner": ("owner", ()),
    "finance": ("finance", ()),
    "named": (None, (ADA, OMAR, FIONA, XENA)),  # a contractor's user named by a forged step still may not
}
BY_ROLE = {  # step -> roles that may decide it as anyone with the role (the person not named)
    "admin": {"admin"},
    "owner": {"owner"},
    "finance": {"finance"},
    "named": set(),
}
ROLES = ["admin", "owner", "finance", "contractor", None]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("role", ROLES)
def test_a_step_is_decided_by_its_role_or_by_the_people_it_names_never_a_contractor(step, role):
    step_role, named = STEPS[step]
    outsider = uuid.UUID(int=999)  # a person the step does not name
    assert may_approve(step_role, named, role, outsider) is (role in BY_ROLE[step])
    person = {"admin": ADA, "owner": OMAR, "finance": FIONA, "contractor": XENA, None: XENA}[role]
    named_too = (*named, person)
    assert may_approve(step_role, named_too, role, person) is (role in ("admin", "owner", "finance"))


def test_a_named_person_decides_whatever_their_role_and_an_unnamed_one_does_not():
    assert may_approve(None, [FIONA], "admin", FIONA)
    assert not may_approve(None, [FIONA], "admin", ADA)
    assert not may_approve(None, [FIONA], "finance", ADA)  # the right role is not enough for a step of people
    assert may_approve("finance", [], "finance", uuid.uuid4())


def test_nobody_without_a_user_decides_a_step():
    for role in ("admin", "owner", "finance"):
        assert not may_approve(role, [], role, None)
        assert not may_approve(None, [None], role, None)


def test_a_step_of_people_reads_any_iterable_of_ids():
    assert may_approve(None, iter([OMAR]), "owner", OMAR)
    assert may_approve(None, frozenset({OMAR}), "owner", OMAR)


# --- distinct people ----------------------------------------------------------------------------------------

REVIEWER = "You approved this work as its reviewer; another person approves the next step."
EARLIER = "You approved an earlier step of this payment; another person approves this one."


def test_a_new_person_may_decide_the_next_step():
    assert distinct_people_refusal(FIONA, None, OMAR, []) is None
    assert distinct_people_refusal(FIONA, None, OMAR, [ADA]) is None


def test_the_reviewer_never_approves_a_later_step_of_their_own_authorization():
    assert distinct_people_refusal(OMAR, None, OMAR, []) == REVIEWER
    assert distinct_people_refusal(OMAR, None, OMAR, [FIONA]) == REVIEWER


def test_an_earlier_approver_does_not_approve_again():
    assert distinct_people_refusal(FIONA, None, OMAR, [FIONA]) == EARLIER
    assert distinct_people_refusal(FIONA, None, OMAR, [ADA, FIONA]) == EARLIER


def test_a_delegate_standing_in_for_the_reviewer_or_an_earlier_approver_is_refused_too():
    assert distinct_people_refusal(ADA, OMAR, OMAR, []) == REVIEWER
    assert distinct_people_refusal(ADA, FIONA, OMAR, [FIONA]) == EARLIER
    # The delegate themselves approved earlier, deciding now for someone new: still the same person.
    assert distinct_people_refusal(ADA, FIONA, OMAR, [ADA]) == EARLIER
    assert distinct_people_refusal(ADA, FIONA, OMAR, []) is None


# --- delegation -------------------------------------------------------------------------------------------------


def test_a_delegation_covers_its_first_and_last_day_and_nothing_outside():
    start, end = date(2026, 3, 2), date(2026, 3, 6)
    assert [delegation_covers(start, end, date(2026, 3, d)) for d in range(1, 8)] == [
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]


# --- why isn't this payable yet -------------------------------------------------------------------------------

TODAY = date(2026, 3, 5)


def test_everything_that_stands_in_the_way_in_the_order_a_person_clears_it():
    found = blockers(
        "pending_approval",
        steps_left=["Step 1 of 2: anyone in finance", "Step 2 of 2: any admin"],
        invoice_hold="Lien waiver missing",
        contractor_hold="Bank details being verified",
        tax_form="The contractor's W-9 is missing.",
        due_date=date(2026, 4, 4),
        today=TODAY,
        rail="Stripe refused the transfer: account closed.",
    )
    assert found == [
        Blocker("approval", "Waiting for approval — Step 1 of 2: anyone in finance"),
        Blocker("approval", "Waiting for approval — Step 2 of 2: any admin"),
        Blocker("hold", "On hold: Lien waiver missing"),
        Blocker("contractor_hold", "The contractor is on hold: Bank details being verified"),
        Blocker("tax_form", "The contractor's W-9 is missing."),
        Blocker("rail", "Stripe refused the transfer: account closed."),
        Blocker("due_date", "Not due until 04 Apr 2026"),
    ]
    assert stops_payment(found)


def test_a_due_date_ahead_is_shown_but_does_not_stop_a_payment():
    found = blockers("approved", due_date=date(2026, 3, 6), today=TODAY)
    assert found == [Blocker("due_date", "Not due until 06 Mar 2026")]
    assert not stops_payment(found)


def test_a_due_date_today_or_past_is_not_a_blocker():
    assert blockers("approved", due_date=TODAY, today=TODAY) == []
    assert blockers("approved", due_date=date(2026, 3, 4), today=TODAY) == []
    assert blockers("approved", due_date=date(2030, 1, 1)) == []  # no today: nothing to compare with
    assert not stops_payment([])


def test_a_due_date_is_not_news_once_the_invoice_is_exported_or_held():
    assert blockers("exported", due_date=date(2026, 4, 4), today=TODAY) == []
    assert blockers("on_hold", due_date=date(2026, 4, 4), today=TODAY) == []


def test_steps_left_count_only_while_the_invoice_waits_for_approval():
    assert blockers("approved", steps_left=["Step 1 of 1: any admin"]) == []


@pytest.mark.parametrize("status", ["paid", "void"])
def test_a_paid_or_void_invoice_has_nothing_in_its_way(status):
    assert (
        blockers(
            status,
            steps_left=["Step 1 of 1: any admin"],
            invoice_hold="x",
            contractor_hold="y",
            tax_form="z",
            due_date=date(2026, 4, 4),
            today=TODAY,
            rail="r",
        )
        == []
    )


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"invoice_hold": "Check the photos"}, "hold"),
        ({"contractor_hold": "Under review"}, "contractor_hold"),
        ({"tax_form": "The W-8BEN expired."}, "tax_form"),
        ({"rail": "The bank returned it."}, "rail"),
    ],
)
def test_each_blocker_but_the_due_date_stops_a_payment_on_its_own(kwargs, kind):
    found = blockers("approved", **kwargs)
    assert [b.kind for b in found] == [kind]
    assert stops_payment(found)


def test_an_approval_step_left_stops_a_payment():
    found = blockers("pending_approval", steps_left=["Step 1 of 1: Ada Admin"])
    assert found == [Blocker("approval", "Waiting for approval — Step 1 of 1: Ada Admin")]
    assert stops_payment(found)


# --- a step in words -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "names", "words"),
    [
        ("admin", [], "any admin"),
        ("owner", [], "any project owner"),
        ("finance", [], "anyone in finance"),
        ("finance", ["Ignored Name"], "anyone in finance"),
        (None, ["Ada Admin"], "Ada Admin"),
        (None, ["Ada Admin", "Fiona Finance"], "Ada Admin or Fiona Finance"),
        (None, ["Ada Admin", "Fiona Finance", "Omar Owner"], "Ada Admin, Fiona Finance or Omar Owner"),
    ],
)
def test_a_step_reads_as_who_may_decide_it(role, names, words):
    assert step_words(role, names) == words
