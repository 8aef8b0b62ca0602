"""The country codes a profile may hold are the ones the official CEN rules accept (BR-CL-14), read from the vendored
rules themselves, and a VAT number's prefix is held to BR-CO-09's list; what a party's profile lacks for an
e-invoice is said in words (domain.einvoice.missing_details)."""

from __future__ import annotations

import re

import pytest
from kit.peppol import HERE

from backoffice.domain.countries import COUNTRY_CODES, VAT_PREFIXES, vat_id_problem
from backoffice.domain.einvoice import Party, missing_details, party_problems

CEN = (HERE / "rules" / "CEN-EN16931-UBL.sch").read_text(encoding="utf-8")


def listed_by(rule: str) -> set[str]:
    (assertion,) = re.findall(rf'<assert id="{rule}"[^>]*test="([^"]*)"', CEN)
    (codes,) = re.findall(r"' (1A [A-Z0-9 ]+) '", assertion)
    return set(codes.split())


def test_the_countries_are_br_cl_14s_less_kosovos_1a_which_the_table_cannot_hold():
    assert listed_by("BR-CL-14") - {"1A"} == COUNTRY_CODES
    assert {"DE", "GB", "XI", "US"} <= COUNTRY_CODES and "EL" not in COUNTRY_CODES and "EU" not in COUNTRY_CODES


def test_a_vat_numbers_prefix_is_one_br_co_09_accepts():
    assert listed_by("BR-CO-09") - {"1A"} == VAT_PREFIXES


@pytest.mark.parametrize("vat_id", ["DE123456789", "EL123456789", "XI123456789", "NL123456789B01"])
def test_vat_numbers_with_a_country_prefix_are_fine(vat_id):
    assert vat_id_problem(vat_id) is None


@pytest.mark.parametrize("vat_id", ["123456789", "ZZ123", "de123456789", "D", "", "EU123456789"])
def test_vat_numbers_without_one_are_refused_in_words(vat_id):
    assert vat_id_problem(vat_id).startswith("A VAT number starts with its country's two letters")


def test_what_a_profile_lacks_is_said_in_words_and_party_problems_says_it_in_a_sentence():
    party = Party("Acme", " ", "Berlin", "", "", endpoint_scheme="0088", endpoint_id="")
    assert missing_details(party) == ["street", "country", "Peppol endpoint (scheme and id)"]
    assert party_problems(party, "Acme's e-invoicing details") == [
        "Missing street, country, Peppol endpoint (scheme and id) in Acme's e-invoicing details."
    ]
    whole = Party("Acme", "1 Main St", "Berlin", "", "DE", endpoint_scheme="0088", endpoint_id="123")
    assert missing_details(whole) == [] and party_problems(whole, "x") == []
