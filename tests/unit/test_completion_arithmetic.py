"""Completion billing's arithmetic (DESIGN.md section 4, "Completion billing", invariant 6), checked against exact
fractions for any contract value from one minor unit to 10^11 (a billion major units of a two-decimal currency), any
advance from 0% to 50% and up to 200 tasks: the advance is round_half_up(V × a / 10000); the tasks share V − advance
exactly and fairly; however the contractor groups approved tasks into invoices, the final payment leaves the
contract billed at exactly its value; retainage and the fee reconcile on every work invoice and never touch the
advance; and a proposal's milestones share the same pool the contract's tasks will."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backoffice.domain.completion import (
    ADVANCE_MAX_BPS,
    COMPLETION_KINDS,
    DEFAULT_ADVANCE_BPS,
    WORK_KINDS,
    Schedule,
    TaskLine,
    advance_amount,
    billed_problem,
    final_amount,
    schedule_problem,
    split_tasks,
    task_pool,
    withholds,
)
from backoffice.domain.invoices import InvoiceKind, advance_amounts, milestone_amounts, release_amounts
from backoffice.domain.money import MAX_MAJOR
from backoffice.domain.projects import milestones_share_price, proposal_task_pool

MAX_VALUE = MAX_MAJOR * 100  # 10^11 minor units
values = st.one_of(
    st.integers(min_value=1, max_value=100),  # a few minor units: rounding at its sharpest
    st.integers(min_value=1, max_value=MAX_VALUE),
    st.just(MAX_VALUE),
)
advance_rates = st.one_of(
    st.integers(min_value=0, max_value=ADVANCE_MAX_BPS),
    st.sampled_from([0, 1, 5_000, DEFAULT_ADVANCE_BPS, 3_333, 4_999]),
)
counts = st.integers(min_value=1, max_value=200)
retainage_rates = st.integers(min_value=0, max_value=2_500)
fee_rates = st.integers(min_value=0, max_value=500)


def exact_advance(value: int, bps: int) -> int:
    """round_half_up(value × bps / 10000), from the exact fraction."""
    return math.floor(Fraction(value * bps, 10_000) + Fraction(1, 2))


@st.composite
def bps_lists(draw, max_size: int = 200):
    """Percentages in basis points adding up to exactly 100% (10000), as the schedule form's percent rows do."""
    count = draw(st.integers(min_value=1, max_value=max_size))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=10_000), min_size=count - 1, max_size=count - 1)))
    return [b - a for a, b in itertools.pairwise([0, *cuts, 10_000])]


weights_lists = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=200).filter(
    lambda w: sum(w) > 0
)


def assert_fair(pool: int, weights: list[int], parts: list[int]) -> None:
    """The parts sum to the pool exactly and each is within one minor unit of its exact share."""
    assert len(parts) == len(weights)
    assert sum(parts) == pool
    assert all(p >= 0 for p in parts)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(pool * weight, sum(weights))) < 1


@st.composite
def contracts(draw):
    """A contract: its value, its advance rate, and its tasks (an equal split, percentages, or any weights) as the
    owner's schedule would share value − advance."""
    value, bps = draw(values), draw(advance_rates)
    how = draw(st.sampled_from(["count", "percent", "weights"]))
    if how == "count":
        tasks = split_tasks(value, bps, count=draw(counts))
    else:
        tasks = split_tasks(value, bps, weights=draw(bps_lists() if how == "percent" else weights_lists))
    return value, bps, tasks


# --- the advance --------------------------------------------------------------------------------------------


@given(values, advance_rates)
def test_the_advance_is_the_value_times_the_rate_rounded_half_up(value, bps):
    advance = advance_amount(value, bps)
    assert advance == exact_advance(value, bps)
    assert abs(advance - Fraction(value * bps, 10_000)) <= Fraction(1, 2)
    assert 0 <= advance <= value // 2 + 1  # never more than half the value (and its rounding)
    assert task_pool(value, advance) == value - advance >= 0


def test_advance_examples():
    assert advance_amount(1_000_000, DEFAULT_ADVANCE_BPS) == 120_000  # 12% of $10,000.00
    assert advance_amount(1, 5_000) == 1  # half a cent rounds up
    assert advance_amount(1, 4_999) == 0
    assert advance_amount(3, 5_000) == 2  # 1.5 rounds up
    assert advance_amount(10**11, 5_000) == 5 * 10**10
    assert advance_amount(12_345, 0) == 0


@pytest.mark.parametrize("value, bps", [(0, 1_200), (-1, 1_200), (100, -1), (100, ADVANCE_MAX_BPS + 1), (100, 10_000)])
def test_an_advance_of_nothing_or_beyond_half_is_refused(value, bps):
    with pytest.raises(ValueError):
        advance_amount(value, bps)


# --- the tasks share the value less the advance ----------------------------------------------------------------


@given(values, advance_rates, counts)
def test_an_equal_split_of_the_tasks_is_exact_and_fair(value, bps, count):
    advance = advance_amount(value, bps)
    tasks = split_tasks(value, bps, count=count)
    assert_fair(value - advance, [1] * count, tasks)
    assert max(tasks) - min(tasks) <= 1 and tasks == sorted(tasks, reverse=True)
    assert advance + sum(tasks) == value


@given(values, advance_rates, bps_lists())
def test_tasks_given_as_percentages_share_the_value_less_the_advance(value, bps, percentages):
    advance = advance_amount(value, bps)
    tasks = split_tasks(value, bps, weights=percentages)
    assert_fair(value - advance, percentages, tasks)
    assert advance + sum(tasks) == value


@given(values, advance_rates, weights_lists)
def test_tasks_given_as_any_weights_share_the_value_less_the_advance(value, bps, weights):
    advance = advance_amount(value, bps)
    tasks = split_tasks(value, bps, weights=weights)
    assert_fair(value - advance, weights, tasks)
    assert advance + sum(tasks) == value


def test_tasks_need_a_count_or_weights():
    with pytest.raises(ValueError):
        split_tasks(1_000_000, 1_200)
    assert split_tasks(1_000_000, 1_200, count=3) == [293_334, 293_333, 293_333]
    assert split_tasks(1_000_000, 1_200, weights=[5_000, 5_000]) == [440_000, 440_000]


# --- the schedule's check ------------------------------------------------------------------------------------


@given(contracts())
def test_tasks_that_share_the_pool_exactly_have_no_problem(contract):
    value, bps, tasks = contract
    assert schedule_problem(value, advance_amount(value, bps), tasks) is None


@given(contracts(), st.data(), st.sampled_from([-1, 1]))
def test_tasks_one_minor_unit_off_either_way_are_refused_naming_both_sums(contract, data, delta):
    value, bps, tasks = contract
    advance = advance_amount(value, bps)
    k = data.draw(st.integers(min_value=0, max_value=len(tasks) - 1))
    assume(tasks[k] + delta >= 0)
    off = [*tasks[:k], tasks[k] + delta, *tasks[k + 1 :]]
    problem = schedule_problem(value, advance, off)
    assert problem is not None
    assert str(sum(off)) in problem and str(value - advance) in problem
    # So is the advance misremembered by one unit either way with the tasks as they are.
    assert schedule_problem(value, advance + delta, tasks) is not None


@pytest.mark.parametrize("value", [None, 0, -5])
def test_a_schedule_without_a_contract_value_asks_for_it(value):
    assert schedule_problem(value, 0, [100]) == "Enter the contract value."


def test_a_schedule_without_tasks_asks_for_one():
    assert schedule_problem(1_000, 120, []) == "Add at least one task."


# --- invoicing: any grouping of tasks, then the final payment ------------------------------------------------------


@st.composite
def invoicing(draw):
    """A contract, the tasks the contractor invoices before the last approval grouped into invoices (any subset, any
    grouping, in any order), and whether the advance was paid or rejected (a rejected advance is paid with the
    final payment)."""
    value, bps, tasks = draw(contracts())
    order = draw(st.permutations(range(len(tasks))))
    invoiced = order[: draw(st.integers(min_value=0, max_value=len(tasks) - 1))]  # the last approval is never invoiced
    groups, rest = [], list(invoiced)
    while rest:
        size = draw(st.integers(min_value=1, max_value=len(rest)))
        groups.append(rest[:size])
        rest = rest[size:]
    return value, bps, tasks, groups, draw(st.booleans())


@given(invoicing())
def test_the_final_payment_leaves_the_contract_billed_at_exactly_its_value(plan):
    value, bps, tasks, groups, advance_paid = plan
    advance = advance_amount(value, bps)
    billed = advance if advance_paid else 0
    assert billed_problem(value, billed, completed=False) is None
    for group in groups:  # each task invoice is the exact sum of its tasks (never a re-division of what is left)
        billed += sum(tasks[k] for k in group)
        assert billed_problem(value, billed, completed=False) is None
    final = final_amount(value, billed)
    invoiced = {k for g in groups for k in g}
    assert final == sum(t for k, t in enumerate(tasks) if k not in invoiced) + (0 if advance_paid else advance)
    assert final >= 0
    assert billed + final == value
    assert billed_problem(value, billed + final, completed=True) is None


@given(values, st.integers(min_value=0, max_value=MAX_VALUE), st.booleans())
def test_invariant_six_is_billed_at_most_the_value_and_exactly_it_once_completed(value, billed, completed):
    problem = billed_problem(value, billed, completed=completed)
    if billed > value:
        assert problem == "its invoices would exceed the contract value"
    elif completed and billed != value:
        assert problem == "a completed engagement's invoices add up to its contract value"
    else:
        assert problem is None


@given(values, st.booleans())
def test_one_minor_unit_off_the_value_either_way_is_a_problem(value, completed):
    assert billed_problem(value, value + 1, completed=completed) is not None
    assert billed_problem(value, value, completed=completed) is None
    assert (billed_problem(value, value - 1, completed=completed) is not None) == completed
    assert final_amount(value, value) == 0
    assert final_amount(value, value - 1) == 1


# --- retainage and the fee ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, withheld",
    [("milestone", True), ("completion", True), ("final", True), ("advance", False), ("retainage_release", False)],
)
def test_retainage_and_the_fee_apply_to_work_invoices_never_to_the_advance_or_a_release(kind, withheld):
    assert withholds(kind) is withheld
    assert InvoiceKind(kind).withholds is withheld
    assert (kind in WORK_KINDS) is withheld


def test_every_kind_is_known_and_completion_kinds_are_the_three():
    assert {k.value for k in InvoiceKind} == {"milestone", "retainage_release", "advance", "completion", "final"}
    assert {"advance", "completion", "final"} == COMPLETION_KINDS
    assert {"completion", "final"} == COMPLETION_KINDS & WORK_KINDS
    assert all(InvoiceKind(k).label.strip() for k in COMPLETION_KINDS)
    assert withholds("anything else") is False


@given(invoicing(), retainage_rates, fee_rates)
def test_retainage_and_the_fee_reconcile_on_every_task_and_final_invoice(plan, retainage_bps, fee_bps):
    """Each work invoice: net + retainage = gross, total = gross + fee, each half-up of the gross. Over the contract:
    the advance pays its gross in full, and the nets plus one release of everything withheld are the contract value
    (invariant 3, generalised to completion billing)."""
    value, bps, tasks, groups, _ = plan
    advance = advance_amount(value, bps)
    invoiced = {k for g in groups for k in g}
    grosses = [sum(tasks[k] for k in g) for g in groups]
    grosses.append(final_amount(value, advance + sum(grosses)))
    work = [milestone_amounts(g, retainage_bps, fee_bps) for g in grosses if g > 0]
    for a in work:
        assert a.net + a.retainage == a.gross and a.total == a.gross + a.fee
        assert a.retainage == exact_advance(a.gross, retainage_bps)  # the same half-up rule
        assert a.fee == exact_advance(a.gross, fee_bps)
    assert grosses[-1] == sum(t for k, t in enumerate(tasks) if k not in invoiced)
    paid_ahead = advance_amounts(advance) if advance else None
    if paid_ahead is not None:
        assert (paid_ahead.gross, paid_ahead.net, paid_ahead.total, paid_ahead.retainage, paid_ahead.fee) == (
            advance,
            advance,
            advance,
            0,
            0,
        )
    withheld = sum(a.retainage for a in work)
    release = release_amounts(withheld).net if withheld else 0
    assert sum(a.net for a in work) + release == sum(a.gross for a in work)
    assert advance + sum(a.net for a in work) + release == value


def test_an_advance_of_nothing_is_no_invoice():
    with pytest.raises(ValueError):
        advance_amounts(0)


# --- the page's schedule ---------------------------------------------------------------------------------------


@given(invoicing())
def test_the_schedule_shows_what_remains_as_the_projected_final_payment(plan):
    value, bps, tasks, groups, advance_paid = plan
    advance = advance_amount(value, bps)
    invoiced = {k: f"INV-{n}" for n, g in enumerate(groups, start=1) for k in g}
    lines = tuple(
        TaskLine(milestone_id=k, seq=k + 1, title=f"Task {k + 1}", amount=t, status="approved", invoice_number=None)
        if k not in invoiced
        else TaskLine(k, k + 1, f"Task {k + 1}", t, "approved", invoiced[k])
        for k, t in enumerate(tasks)
    )
    billed = (advance if advance_paid else 0) + sum(tasks[k] for k in invoiced)
    schedule = Schedule(
        value=value,
        advance_bps=bps,
        advance=advance,
        advance_invoice="INV-0" if advance_paid else None,
        tasks=lines,
        billed=billed,
        final_invoice=None,
    )
    assert schedule.projected_final == schedule.remaining == final_amount(value, billed)
    assert schedule.invoiceable_total == sum(t for k, t in enumerate(tasks) if k not in invoiced)
    assert {t.milestone_id for t in schedule.invoiceable} == set(range(len(tasks))) - set(invoiced)
    assert schedule.open_tasks == ()


# --- proposals on a completion project ----------------------------------------------------------------------------


@given(values, advance_rates, counts)
def test_a_proposals_milestones_share_the_price_less_the_advance_as_the_contracts_tasks_will(price, bps, count):
    pool = proposal_task_pool(price, bps)
    assert pool == task_pool(price, advance_amount(price, bps)) == price - exact_advance(price, bps)
    milestones = split_tasks(price, bps, count=count)
    assert milestones_share_price(price, milestones, bps)
    assert schedule_problem(price, advance_amount(price, bps), milestones) is None
    for delta in (-1, 1):
        off = [milestones[0] + delta, *milestones[1:]]
        assert not milestones_share_price(price, off, bps)
    # The price in full, without the advance, is no longer what they share (unless the advance rounds to nothing).
    assert milestones_share_price(price, [price], bps) is (advance_amount(price, bps) == 0)


@given(values)
def test_a_proposal_on_a_milestone_project_shares_the_whole_price(price):
    assert proposal_task_pool(price, None) == price
    assert milestones_share_price(price, [price], None)
    assert not milestones_share_price(price, [], None)
    assert proposal_task_pool(price, 0) == price
