"""Tax forms and the 1099-NEC year end (domain/tax.py): the thresholds, TIN rules and W-9 completeness. Expected
values are written out here, never read from the table under test."""

from __future__ import annotations

import pytest

from backoffice.domain.tax import (
    NO_FORM,
    FormKind,
    ProfileFacts,
    blocked_words,
    format_tin,
    is_reportable,
    mask_tin,
    nec_threshold,
    parse_tin,
    tax_form_problem,
)


@pytest.mark.parametrize(
    ("year", "cents"),
    [(2020, 60_000), (2021, 60_000), (2024, 60_000), (2025, 60_000), (2026, 200_000), (2027, 200_000), (2040, 200_000)],
)
def test_the_reporting_threshold_is_600_dollars_through_2025_and_2000_from_2026(year, cents):
    assert nec_threshold(year) == cents


@pytest.mark.parametrize("year", [2019, 1999, 0, -1])
def test_there_is_no_1099_nec_threshold_before_2020(year):
    with pytest.raises(ValueError, match="2020 and later"):
        nec_threshold(year)


@pytest.mark.parametrize("year", ["2026", 2026.0, True, None])
def test_a_year_is_a_whole_number(year):
    with pytest.raises(ValueError):
        nec_threshold(year)


def test_reportable_means_at_least_the_threshold():
    assert is_reportable(60_000, 2025)
    assert not is_reportable(59_999, 2025)
    assert not is_reportable(199_999, 2026)
    assert is_reportable(200_000, 2026)


@pytest.mark.parametrize(
    ("raw", "kind", "digits"),
    [
        ("123-45-6789", "ssn", "123456789"),
        (" 123 45 6789 ", "ssn", "123456789"),
        ("123456789", "ssn", "123456789"),
        ("12-3456789", "ein", "123456789"),
        ("98-7654321", "ein", "987654321"),
    ],
)
def test_a_tin_is_nine_digits_with_optional_dashes_and_spaces(raw, kind, digits):
    assert parse_tin(raw, kind) == digits


@pytest.mark.parametrize(
    ("raw", "kind", "words"),
    [
        ("", "ssn", "nine digits, like 123-45-6789"),
        ("12345678", "ssn", "nine digits"),
        ("1234567890", "ssn", "nine digits"),
        ("123-45-678x", "ssn", "nine digits"),
        ("１２３４５６７８９", "ssn", "nine digits"),  # full-width digits are not digits here
        ("123\x0045\x006789", "ssn", "nine digits"),
        ("12-3456789.", "ein", "nine digits, like 12-3456789"),
        ("000-12-3456", "ssn", "not a valid SSN"),
        ("666-12-3456", "ssn", "not a valid SSN"),
        ("912-34-5678", "ssn", "not a valid SSN"),
        ("123-00-4567", "ssn", "not a valid SSN"),
        ("123-45-0000", "ssn", "not a valid SSN"),
        ("00-1234567", "ein", "not a valid EIN"),
        ("07-1234567", "ein", "not a valid EIN"),
        ("89-1234567", "ein", "not a valid EIN"),
    ],
)
def test_a_bad_tin_is_refused_in_words(raw, kind, words):
    with pytest.raises(ValueError, match=words):
        parse_tin(raw, kind)


def test_an_unknown_tin_type_is_refused():
    with pytest.raises(ValueError):
        parse_tin("123456789", "itin")


def test_a_tin_is_written_as_the_irs_writes_it_and_shown_by_its_last_four_only():
    assert format_tin("123456789", "ssn") == "123-45-6789"
    assert format_tin("123456789", "ein") == "12-3456789"
    assert mask_tin("6789") == "•••• 6789"
    assert mask_tin(None) == "—"


COMPLETE_W9 = ProfileFacts(
    kind="w9",
    name="Nina Northwind",
    classification="individual",
    has_tin=True,
    address_line1="1 Main St",
    city="Springfield",
    region="IL",
    postal_code="62701",
    country="US",
)


def test_a_complete_w9_has_no_problem():
    assert tax_form_problem(COMPLETE_W9) is None


def test_no_form_on_file():
    assert tax_form_problem(ProfileFacts(kind=None)) == "No W-9 on file"
    assert NO_FORM == "No W-9 on file"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": "  "}, "W-9 is missing the name on the tax return"),
        ({"classification": ""}, "W-9 is missing the federal tax classification"),
        ({"has_tin": False}, "W-9 is missing the TIN"),
        ({"address_line1": ""}, "W-9 is missing the address"),
        ({"city": ""}, "W-9 is missing the address"),
        ({"region": ""}, "W-9 is missing the address"),
        ({"postal_code": " "}, "W-9 is missing the address"),
    ],
)
def test_an_incomplete_w9_says_what_is_missing(change, problem):
    facts = ProfileFacts(**{**COMPLETE_W9.__dict__, **change})
    assert tax_form_problem(facts) == problem


def test_a_w8_is_complete_with_a_name_and_a_foreign_country():
    assert tax_form_problem(ProfileFacts(kind="w8ben", name="Klaus Kestrel", country="DE")) is None
    assert tax_form_problem(ProfileFacts(kind="w8ben_e", name="Kestrel GmbH", country="DE")) is None
    assert tax_form_problem(ProfileFacts(kind="w8ben", country="DE")) == "W-8BEN is missing the name"
    assert tax_form_problem(ProfileFacts(kind="w8ben_e", name="K")) == "W-8BEN-E is missing the country"
    assert (
        tax_form_problem(ProfileFacts(kind="w8ben", name="K", country="us"))
        == "W-8BEN names the United States: a US person files a W-9"
    )


def test_form_kinds_and_who_gets_a_1099():
    assert [(k.value, k.label, k.us_person) for k in FormKind] == [
        ("w9", "W-9", True),
        ("w8ben", "W-8BEN", False),
        ("w8ben_e", "W-8BEN-E", False),
    ]


def test_the_words_of_a_block():
    assert blocked_words("No W-9 on file") == "Tax form missing: no W-9 on file"
    assert blocked_words("W-9 is missing the TIN") == "Tax form incomplete: W-9 is missing the TIN"


def test_a_w9_state_is_one_of_the_fifty_states_dc_and_five_territories():
    from backoffice.domain.tax import US_STATES

    assert len(US_STATES) == 56
    assert {"CA", "NY", "DC", "PR", "GU"} <= US_STATES and not {"ZZ", "", "ca"} & US_STATES
