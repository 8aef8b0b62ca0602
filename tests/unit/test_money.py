"""Money rules (DESIGN.md section 4): parsing what people type, formatting, half-up rounding, allocation."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.domain.currency import minor_units
from backoffice.domain.money import (
    MAX_MAJOR,
    AmountError,
    allocate,
    allocate_by_percent,
    example,
    format_amount,
    parse_amount,
    percent_of,
    round_half_up,
    split_equally,
)

CURRENCIES = ["USD", "JPY", "KWD", "EUR"]


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, currency, minor",
    [
        ("1,250.00", "USD", 125_000),
        ("1250", "USD", 125_000),
        ("$1,250.5", "USD", 125_050),
        ("USD 1,250.00", "USD", 125_000),
        ("1,250.00 USD", "USD", 125_000),
        ("usd 1,250.00", "USD", 125_000),
        ("  1,250.00  ", "USD", 125_000),
        ("0.01", "USD", 1),
        ("1,234,567.89", "USD", 123_456_789),
        ("1,250", "JPY", 1_250),
        ("¥1,250", "JPY", 1_250),
        ("1.250", "KWD", 1_250),
        ("KWD 1.250", "KWD", 1_250),
        ("1,250.000", "KWD", 1_250_000),
        ("0.005", "KWD", 5),
        ("€1,250.00", "EUR", 125_000),
    ],
)
def test_typed_amounts_parse_exactly_to_minor_units(typed, currency, minor):
    assert parse_amount(typed, currency) == minor


def test_a_point_means_decimals_never_thousands():
    # "1.250" is one and a quarter, never one thousand two hundred and fifty.
    assert parse_amount("1.25", "USD") == 125
    assert parse_amount("1.250", "KWD") == 1_250
    assert parse_amount("1.250", "KWD") != 1_250 * 10 ** minor_units("KWD")


def _refusal(typed, currency) -> str:
    with pytest.raises(AmountError) as exc:
        parse_amount(typed, currency)
    message = str(exc.value)
    assert message.strip(), "a refusal must say what to fix"
    return message


def test_a_european_comma_decimal_is_refused_with_how_to_write_it():
    message = _refusal("€1.250,00", "EUR")
    assert "point" in message and "decimals" in message
    assert "1,250.00" in message


def test_another_currencys_sign_is_refused_naming_the_engagement_currency():
    message = _refusal("€1.250,00", "USD")
    assert "USD" in message and "€" in message and "without" in message


def test_a_comma_before_two_decimals_is_refused_as_a_comma_decimal():
    message = _refusal("12,50", "USD")
    assert "point" in message and "decimals" in message and "1,250.00" in message


def test_more_decimals_than_the_currency_has_are_refused():
    message = _refusal("1.255", "USD")
    assert "USD" in message and "at most 2 decimals" in message


def test_decimals_in_a_currency_without_minor_units_are_refused():
    message = _refusal("1.5", "JPY")
    assert "JPY" in message and "no decimals" in message and "whole number" in message


@pytest.mark.parametrize("typed", ["0", "0.00", "-5", "-1,250.00", "−5", "(5.00)"])
def test_zero_and_negative_amounts_are_refused(typed):
    assert "greater than zero" in _refusal(typed, "USD")


@pytest.mark.parametrize("typed", ["", "   ", None])
def test_a_missing_amount_is_refused(typed):
    assert "Enter an amount" in _refusal(typed, "USD")


@pytest.mark.parametrize("typed", ["abc", "1,25,000", "12.5.0", "1 250", "1e3", "USD", "EUR 1,250.00"])
def test_unreadable_amounts_are_refused_with_an_example(typed):
    message = _refusal(typed, "USD")
    assert "1,250.00" in message and "digits" in message


def test_the_example_follows_the_currencys_minor_units():
    assert (example("USD"), example("JPY"), example("KWD")) == ("1,250.00", "1,250", "1,250.000")
    assert "1,250" in _refusal("abc", "JPY") and "1,250." not in _refusal("abc", "JPY")


@pytest.mark.parametrize("currency", CURRENCIES)
def test_every_example_amount_is_itself_accepted(currency):
    assert parse_amount(example(currency), currency) == 1_250 * 10 ** minor_units(currency)


@pytest.mark.parametrize("currency", CURRENCIES)
def test_the_largest_amount_is_accepted_and_one_minor_unit_more_is_refused(currency):
    top = MAX_MAJOR * 10 ** minor_units(currency)
    assert parse_amount(format_amount(top, currency, symbol=False), currency) == top
    message = _refusal(format_amount(top + 1, currency, symbol=False), currency)
    assert "at most" in message and format_amount(top, currency, symbol=False) in message


@given(st.sampled_from(CURRENCIES), st.integers(min_value=1, max_value=10**6))
def test_amounts_above_the_maximum_are_always_refused(currency, excess):
    typed = format_amount(MAX_MAJOR * 10 ** minor_units(currency) + excess, currency, symbol=False)
    with pytest.raises(AmountError, match="at most"):
        parse_amount(typed, currency)


# --- formatting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "minor, currency, symbol, shown",
    [
        (125_050, "USD", True, "$1,250.50"),
        (125_050, "USD", False, "1,250.50"),
        (1_250, "JPY", True, "¥1,250"),
        (5, "KWD", True, "KWD 0.005"),
        (5, "KWD", False, "0.005"),
        (100, "EUR", True, "€1.00"),
        (7, "USD", True, "$0.07"),
        (-125_050, "USD", True, "-$1,250.50"),
    ],
)
def test_amounts_are_formatted_with_grouping_and_the_currencys_decimals(minor, currency, symbol, shown):
    assert format_amount(minor, currency, symbol=symbol) == shown


@st.composite
def _currency_and_amount(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    minor = draw(st.integers(min_value=1, max_value=MAX_MAJOR * 10 ** minor_units(currency)))
    return currency, minor


@given(_currency_and_amount())
def test_a_formatted_number_parses_back_to_the_same_amount(pair):
    currency, minor = pair
    assert parse_amount(format_amount(minor, currency, symbol=False), currency) == minor


@given(_currency_and_amount())
def test_a_formatted_amount_with_its_symbol_parses_back_to_the_same_amount(pair):
    currency, minor = pair
    assert parse_amount(format_amount(minor, currency, symbol=True), currency) == minor


# --- rounding and percentages --------------------------------------------------------------------


def _half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def test_an_exact_half_rounds_up():
    assert percent_of(5, 1000) == 1  # 0.5
    assert percent_of(4, 1000) == 0  # 0.4
    assert percent_of(15, 1000) == 2  # 1.5 (banker's rounding agrees here)
    assert percent_of(25, 1000) == 3  # 2.5 rounds up, not to the even 2
    assert round_half_up(1, 2) == 1
    assert round_half_up(3, 2) == 2
    assert round_half_up(5, 2) == 3


def test_just_below_a_half_rounds_down():
    assert round_half_up(49, 100) == 0
    assert round_half_up(149, 100) == 1


def test_ten_percent_retainage_on_a_milestone():
    assert percent_of(125_050, 1000) == 12_505
    assert percent_of(125_055, 1000) == 12_506  # 12505.5 rounds up


@given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=1, max_value=10**9))
def test_round_half_up_matches_exact_fraction_arithmetic(numerator, denominator):
    assert round_half_up(numerator, denominator) == _half_up(Fraction(numerator, denominator))


@given(st.integers(min_value=0, max_value=MAX_MAJOR * 1000), st.integers(min_value=0, max_value=10_000))
def test_percent_of_matches_exact_fraction_arithmetic(amount, bps):
    assert percent_of(amount, bps) == _half_up(Fraction(amount * bps, 10_000))


@given(st.integers(min_value=0, max_value=MAX_MAJOR * 1000))
def test_all_or_nothing_percentages_are_exact(amount):
    assert percent_of(amount, 10_000) == amount
    assert percent_of(amount, 0) == 0


@pytest.mark.parametrize("numerator, denominator", [(-1, 2), (1, 0), (1, -2)])
def test_round_half_up_refuses_negative_amounts_and_non_positive_denominators(numerator, denominator):
    with pytest.raises(ValueError):
        round_half_up(numerator, denominator)


# --- allocation ----------------------------------------------------------------------------------

_totals = st.integers(min_value=0, max_value=MAX_MAJOR * 1000)
_weights = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@st.composite
def _bps_lists(draw):
    """Lists of non-negative basis points adding up to exactly 10000."""
    count = draw(st.integers(min_value=1, max_value=20))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=10_000), min_size=count - 1, max_size=count - 1)))
    edges = [0, *cuts, 10_000]
    return [b - a for a, b in itertools.pairwise(edges)]


def _assert_fair(total: int, weights: list[int], parts: list[int]) -> None:
    assert len(parts) == len(weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, weight_sum)) < 1


def _largest_remainder_reference(total: int, weights: list[int]) -> list[int]:
    shares = [Fraction(total * w, sum(weights)) for w in weights]
    parts = [math.floor(s) for s in shares]
    order = sorted(range(len(weights)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


@given(_totals, _weights)
def test_allocation_always_sums_to_the_whole(total, weights):
    assert sum(allocate(total, weights)) == total


@given(_totals, _weights)
def test_every_allocated_part_is_within_one_minor_unit_of_its_exact_share(total, weights):
    _assert_fair(total, weights, allocate(total, weights))


@given(_totals, _weights)
def test_allocation_gives_the_leftover_units_to_the_largest_remainders(total, weights):
    assert allocate(total, weights) == _largest_remainder_reference(total, weights)


@given(_totals, _weights)
def test_allocation_is_deterministic(total, weights):
    assert allocate(total, list(weights)) == allocate(total, list(weights))


@given(_totals, _weights)
def test_a_larger_weight_never_gets_a_smaller_part(total, weights):
    parts = allocate(total, weights)
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert parts[i] >= parts[j]


@given(_totals, _weights)
def test_a_zero_weight_gets_nothing(total, weights):
    parts = allocate(total, weights)
    assert all(p == 0 for p, w in zip(parts, weights, strict=True) if w == 0)


def test_allocation_examples():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [1, 2]) == [3, 7]
    assert allocate(0, [1, 2, 3]) == [0, 0, 0]
    assert allocate(7, [0, 5]) == [0, 7]


def test_ties_for_a_leftover_unit_go_to_the_earlier_part():
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(1, [1, 1]) == [1, 0]


@pytest.mark.parametrize(
    "total, weights",
    [(-1, [1]), (100, [1, -1, 1]), (100, [0, 0]), (100, [])],
)
def test_allocation_refuses_negative_totals_negative_weights_and_zero_weight_sums(total, weights):
    with pytest.raises(ValueError):
        allocate(total, weights)


@given(_totals, st.integers(min_value=1, max_value=50))
def test_an_equal_split_sums_to_the_whole_and_parts_differ_by_at_most_one(total, count):
    parts = split_equally(total, count)
    assert len(parts) == count
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1
    _assert_fair(total, [1] * count, parts)


@given(_totals, st.integers(min_value=1, max_value=50))
def test_an_equal_split_puts_the_larger_parts_first(total, count):
    parts = split_equally(total, count)
    assert parts == sorted(parts, reverse=True)


def test_equal_split_examples():
    assert split_equally(100_000, 3) == [33_334, 33_333, 33_333]
    assert split_equally(5, 3) == [2, 2, 1]


@pytest.mark.parametrize("count", [0, -1])
def test_an_equal_split_into_no_parts_is_refused(count):
    with pytest.raises(ValueError):
        split_equally(100, count)


@given(_totals, _bps_lists())
def test_allocation_by_percent_sums_to_the_whole_and_is_fair(total, bps):
    parts = allocate_by_percent(total, bps)
    _assert_fair(total, bps, parts)
    assert parts == allocate_by_percent(total, list(bps))


def test_allocation_by_percent_examples():
    assert allocate_by_percent(100_000, [3333, 3333, 3334]) == [33_330, 33_330, 33_340]
    assert allocate_by_percent(10, [2500, 2500, 2500, 2500]) == [3, 3, 2, 2]
    assert allocate_by_percent(1_000_001, [5000, 5000]) == [500_001, 500_000]


@given(
    _totals,
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=10).filter(lambda b: sum(b) != 10_000),
)
def test_allocation_by_percent_refuses_percentages_not_adding_up_to_a_hundred(total, bps):
    with pytest.raises(ValueError):
        allocate_by_percent(total, bps)


@pytest.mark.parametrize("bps", [[9999], [10_001], [5000, 5001], [12_000, -2_000], []])
def test_allocation_by_percent_refuses_bad_percentage_lists(bps):
    with pytest.raises(ValueError):
        allocate_by_percent(100, bps)
