"""An e-invoice's arithmetic (domain.einvoice.totals; DESIGN.md section 7b), checked against exact fractions for any
items, any retainage withheld up to their sum, every VAT category and any standard rate, in currencies of 0, 2 and 3
decimals (JPY, EUR, KWD, the last with amounts whose third decimal is 0): the amount due is exactly what the
authorization pays; taxable amount, VAT and rounding add up to it; the lines less the retainage are the taxable
amount; the VAT is the taxable amount's rate rounded half up (EN 16931 BR-CO-17); and the rounding is at most one
unit of the document's last decimal. How amounts and rates are written in the XML is held to literal tables."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.domain.einvoice import (
    Item,
    VatCategory,
    decimals_problem,
    document_scale,
    to_decimal,
    to_percent,
    totals,
)

# Minor units per unit of the document's last decimal, written out here rather than read from the code under test.
SCALE = {"JPY": 1, "EUR": 1, "KWD": 10}


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


@st.composite
def invoices(draw):
    """(items' amounts in minor units, withheld, category, rate in bps, currency): amounts a currency can write."""
    currency = draw(st.sampled_from(sorted(SCALE)))
    scale = SCALE[currency]
    amounts = draw(
        st.lists(
            st.one_of(st.integers(0, 100), st.integers(0, 10**11 // scale)).map(lambda a: a * scale),
            min_size=1,
            max_size=20,
        )
    )
    withheld = draw(st.integers(0, sum(amounts) // scale)) * scale
    category = draw(st.sampled_from(list(VatCategory)))
    rate = draw(st.one_of(st.sampled_from([2000, 770, 1, 10_000]), st.integers(1, 10_000))) if category == "S" else 0
    return amounts, withheld, category, rate, currency


@given(invoices())
def test_the_figures_add_up_to_exactly_what_the_authorization_pays(case):
    amounts, withheld, category, rate, currency = case
    scale = SCALE[currency]
    t = totals([Item(f"Item {n}", a) for n, a in enumerate(amounts)], withheld, category, rate, currency)

    assert t.payable * scale == sum(amounts) - withheld
    assert t.taxable + t.vat + t.rounding == t.payable
    assert t.tax_inclusive + t.rounding == t.payable
    assert t.line_total - t.allowance == t.taxable
    assert t.vat == half_up(Fraction(t.taxable * rate, 10_000))
    assert abs(t.rounding) <= 1
    assert len(t.lines) == len(amounts) and all(line.amount >= 0 for line in t.lines)
    assert t.allowance >= 0
    if category == "S":
        # the taxable amount is what is paid without its VAT, rounded half up
        assert t.taxable == half_up(Fraction(t.payable * 10_000, 10_000 + rate))
    else:
        assert (t.taxable, t.vat, t.rounding, t.allowance) == (t.payable, 0, 0, withheld // scale)


@given(invoices())
def test_each_line_is_its_items_share_of_the_gross_without_vat(case):
    amounts, withheld, category, rate, currency = case
    scale = SCALE[currency]
    t = totals([Item(f"Item {n}", a) for n, a in enumerate(amounts)], withheld, category, rate, currency)
    gross = sum(amounts) // scale
    assert t.line_total == (half_up(Fraction(gross * 10_000, 10_000 + rate)) if category == "S" else gross)
    for line, a in zip(t.lines, amounts, strict=True):
        exact = Fraction(t.line_total * (a // scale), gross) if gross else Fraction(0)
        assert abs(line.amount - exact) < 1


@pytest.mark.parametrize(
    ("amounts", "withheld", "category", "rate", "currency", "expected"),
    [
        # (lines, allowance, taxable, vat, rounding, payable), worked by hand in the comments
        # 1,111.09 / 1.2 = 925.908 → 925.91; × 0.2 = 185.182 → 185.18; 1,234.55 / 1.2 = 1,028.79
        ([123_455], 12_346, "S", 2000, "EUR", (102_879, 10_288, 92_591, 18_518, 0, 111_109)),
        # 1,000.00 / 1.077 = 928.505 → 928.51; × 0.077 = 71.495 → 71.50; 1,000.01 is one cent over
        ([100_000], 0, "S", 770, "EUR", (92_851, 0, 92_851, 7_150, -1, 100_000)),
        # KWD in hundredths: 1,111.05 / 1.2 = 925.875 → 925.88; × 0.2 = 185.176 → 185.18; 1,111.06 is 0.01 over
        ([1_234_500], 123_450, "S", 2000, "KWD", (102_875, 10_287, 92_588, 18_518, -1, 111_105)),
        # no VAT: the amount itself; yen have no decimals
        ([300_000, 300_001], 60_000, "AE", 0, "JPY", (600_001, 60_000, 540_001, 0, 0, 540_001)),
        ([250_010], 25_001, "O", 0, "EUR", (250_010, 25_001, 225_009, 0, 0, 225_009)),
    ],
)
def test_figures_worked_by_hand(amounts, withheld, category, rate, currency, expected):
    t = totals([Item("Work", a) for a in amounts], withheld, category, rate, currency)
    assert (t.line_total, t.allowance, t.taxable, t.vat, t.rounding, t.payable) == expected


def test_a_third_decimal_is_refused_with_words_and_totals_will_not_write_it():
    assert decimals_problem("KWD", [1_234_500, 123_450]) is None
    assert decimals_problem("EUR", [123_457]) is None  # two decimals are always writable
    said = decimals_problem("KWD", [1_234_567])
    assert said is not None and "at most 2 decimals" in said and "KWD" in said
    with pytest.raises(ValueError):
        totals([Item("Work", 1_234_567)], 0, "S", 2000, "KWD")
    with pytest.raises(ValueError):
        totals([Item("Work", 1_234_500)], 5, "S", 2000, "KWD")  # the withheld amount too


@pytest.mark.parametrize(
    ("amounts", "withheld"),
    [([], 0), ([-1], 0), ([100], 101), ([100], -1)],
)
def test_nothing_billed_a_negative_amount_or_more_withheld_than_billed_is_refused(amounts, withheld):
    with pytest.raises(ValueError):
        totals([Item("Work", a) for a in amounts], withheld, "S", 2000, "EUR")


@pytest.mark.parametrize(
    ("currency", "scale"), [("JPY", 1), ("EUR", 1), ("USD", 1), ("KWD", 10), ("BHD", 10), ("OMR", 10)]
)
def test_the_document_writes_a_three_decimal_currency_in_hundredths(currency, scale):
    assert document_scale(currency) == scale


@pytest.mark.parametrize(
    ("amount", "currency", "written"),
    [
        (123_455, "EUR", "1234.55"),
        (5, "EUR", "0.05"),
        (0, "EUR", "0.00"),
        (-1, "EUR", "-0.01"),
        (-100_001, "USD", "-1000.01"),
        (123_455, "JPY", "123455"),
        (0, "JPY", "0"),
        (-1, "JPY", "-1"),
        (111_105, "KWD", "1111.05"),  # in hundredths: the document's units
        (-1, "KWD", "-0.01"),
        (10**11, "EUR", "1000000000.00"),
    ],
)
def test_amounts_are_written_with_the_documents_decimals(amount, currency, written):
    assert to_decimal(amount, currency) == written


@pytest.mark.parametrize(
    ("bps", "written"),
    [(2000, "20"), (770, "7.7"), (825, "8.25"), (0, "0"), (10_000, "100"), (1, "0.01"), (50, "0.5"), (1550, "15.5")],
)
def test_rates_are_written_as_percentages_without_trailing_zeros(bps, written):
    assert to_percent(bps) == written
