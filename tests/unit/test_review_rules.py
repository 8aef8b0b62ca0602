"""Review decisions and what approval authorizes (backoffice.domain.reviews)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.domain.reviews import Decision, PartialPolicy, authorization, returns_to_contractor, split_part


def test_approval_authorizes_gross_less_retainage_due_after_the_terms():
    a = authorization(1_280_000, 1000, 30, date(2026, 11, 21))
    assert (a.gross, a.retainage, a.net, a.due_date) == (1_280_000, 128_000, 1_152_000, date(2026, 12, 21))


def test_half_a_minor_unit_of_retainage_rounds_up_and_zero_terms_pay_on_approval():
    a = authorization(5, 1000, 0, date(2026, 2, 28))  # 0.5 of a cent withheld -> 1
    assert (a.retainage, a.net, a.due_date) == (1, 4, date(2026, 2, 28))


@given(st.integers(1, 10**15), st.integers(0, 10_000))
def test_retainage_and_net_always_add_up_to_the_gross(gross, bps):
    a = authorization(gross, bps, 30, date(2026, 1, 1))
    assert a.retainage + a.net == gross and 0 <= a.retainage <= gross


def test_only_dispute_and_a_route_back_partial_return_the_work():
    assert returns_to_contractor(Decision.DISPUTE, PartialPolicy.SPLIT)
    assert returns_to_contractor(Decision.PARTIAL, PartialPolicy.ROUTE_BACK)
    assert not returns_to_contractor(Decision.PARTIAL, PartialPolicy.SPLIT)
    assert not returns_to_contractor(Decision.APPROVE, PartialPolicy.ROUTE_BACK)


def test_split_part_as_amount_or_percentage():
    assert split_part(100_000, part=25_000) == 25_000
    assert split_part(100_001, bps=5000) == 50_001  # half of an odd amount rounds up
    for kwargs in ({"part": 0}, {"part": 100_000}, {"part": 100_001}, {"bps": 0}, {"bps": 10_000}):
        with pytest.raises(ValueError, match="less than the milestone's amount"):
            split_part(100_000, **kwargs)


@given(st.integers(2, 10**12), st.integers(1, 9_999))
def test_a_split_leaves_something_on_both_sides_or_is_refused(amount, bps):
    try:
        part = split_part(amount, bps=bps)
    except ValueError:
        return
    assert 0 < part < amount
