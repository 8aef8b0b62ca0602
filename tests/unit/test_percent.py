import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.domain.percent import format_bps, parse_percent_to_bps


@pytest.mark.parametrize(
    "typed, bps",
    [("10", 1000), ("12.5", 1250), ("0.25%", 25), (" 7.50 ", 750), ("0", 0), ("100", 10000), ("100.00", 10000)],
)
def test_percentages_parse_exactly_to_basis_points(typed, bps):
    assert parse_percent_to_bps(typed) == bps


@pytest.mark.parametrize("typed", ["", "abc", "12.345", "-5", "1e2", "10,5", "100.01", "150"])
def test_bad_percentages_are_refused_with_a_message(typed):
    with pytest.raises(ValueError) as exc:
        parse_percent_to_bps(typed)
    assert str(exc.value)


@given(st.integers(min_value=0, max_value=10000))
def test_formatting_round_trips_every_basis_point_value(bps):
    assert parse_percent_to_bps(format_bps(bps)) == bps
