"""Tax forms and the 1099-NEC year end (issue 18, items 5 and 6): which form a contractor files, when it is
complete, what its taxpayer identification number (TIN) may look like, and the reporting threshold of each year.

The completeness rule is written once here (``tax_form_problem``) and once in SQL for the guard that refuses to
pay a contractor without a complete form (sql/tax.sql: ``tax_form_problem()``); tests/integration/test_tax_rls.py
holds the two equal over every combination of facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# The 1099-NEC reporting threshold, in US cents, by the first tax year it applies to: a payee paid at least this
# much in a calendar year gets a 1099-NEC. Form 1099-NEC came back for tax year 2020 at the $600 of 1099-MISC box 7;
# the One Big Beautiful Bill Act (Pub. L. 119-21, section 70433) raises it to $2,000 for payments made after
# December 31, 2025 (indexed for inflation after 2026: a new year's row goes here when the IRS publishes it).
NEC_THRESHOLDS: dict[int, int] = {
    2020: 60_000,
    2026: 200_000,
}
FIRST_NEC_YEAR = min(NEC_THRESHOLDS)
NEC_CURRENCY = "USD"


def nec_threshold(year: int) -> int:
    """The reporting threshold of tax year ``year`` in US cents. ValueError before 1099-NEC existed (2020)."""
    if not isinstance(year, int) or isinstance(year, bool) or year < FIRST_NEC_YEAR:
        raise ValueError(f"Form 1099-NEC is filed for {FIRST_NEC_YEAR} and later years.")
    return NEC_THRESHOLDS[max(first for first in NEC_THRESHOLDS if first <= year)]


def is_reportable(total_minor: int, year: int) -> bool:
    """Whether payments of ``total_minor`` US cents in ``year`` call for a 1099-NEC ("$600 or more")."""
    return total_minor >= nec_threshold(year)


class FormKind(StrEnum):
    W9 = "w9"  # a US person: the 1099 is filed with its TIN
    W8BEN = "w8ben"  # a foreign individual: no 1099
    W8BEN_E = "w8ben_e"  # a foreign entity: no 1099

    @property
    def label(self) -> str:
        return {"w9": "W-9", "w8ben": "W-8BEN", "w8ben_e": "W-8BEN-E"}[self.value]

    @property
    def us_person(self) -> bool:
        return self is FormKind.W9


class TinType(StrEnum):
    SSN = "ssn"
    EIN = "ein"

    @property
    def label(self) -> str:
        return {"ssn": "SSN", "ein": "EIN"}[self.value]


# Line 3a of Form W-9 (Rev. March 2024).
CLASSIFICATIONS: dict[str, str] = {
    "individual": "Individual / sole proprietor",
    "c_corporation": "C corporation",
    "s_corporation": "S corporation",
    "partnership": "Partnership",
    "trust_estate": "Trust / estate",
    "llc_c": "LLC taxed as a C corporation",
    "llc_s": "LLC taxed as an S corporation",
    "llc_p": "LLC taxed as a partnership",
    "other": "Other",
}

# US states, DC and the territories a W-9 address may name (USPS codes).
US_STATES = frozenset(
    # A string split, not a 56-line literal: the list reads as the USPS writes it.
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "  # noqa: SIM905
    "OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI".split()
)

NO_FORM = "No W-9 on file"

_DIGITS = re.compile(r"[0-9]{9}", re.ASCII)
_TIN_PUNCTUATION = re.compile(r"[\s-]", re.ASCII)
# EIN prefixes the IRS has never assigned (its "How EINs are assigned" list).
_UNASSIGNED_EIN_PREFIXES = frozenset(
    {"00", "07", "08", "09", "17", "18", "19", "28", "29", "49", "69", "70", "78", "79", "89", "96", "97"}
)


def parse_tin(raw: str, tin_type: TinType | str) -> str:
    """The nine digits of an SSN ("123-45-6789") or an EIN ("12-3456789"), spaces and dashes allowed. ValueError
    with words a person acts on for anything else, including numbers the IRS never issues."""
    kind = TinType(tin_type)
    cleaned = _TIN_PUNCTUATION.sub("", raw or "")
    if not _DIGITS.fullmatch(cleaned):
        example = "123-45-6789" if kind is TinType.SSN else "12-3456789"
        raise ValueError(f"Enter the {kind.label} as nine digits, like {example}.")
    if kind is TinType.SSN:
        area, group, serial = cleaned[:3], cleaned[3:5], cleaned[5:]
        if area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000":
            raise ValueError("That is not a valid SSN: check the number on the Social Security card.")
    elif cleaned[:2] in _UNASSIGNED_EIN_PREFIXES:
        raise ValueError("That is not a valid EIN: check the number on the IRS letter that assigned it.")
    return cleaned


def format_tin(digits: str, tin_type: TinType | str) -> str:
    """How the number is written: 123-45-6789 (SSN), 12-3456789 (EIN)."""
    if TinType(tin_type) is TinType.SSN:
        return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
    return f"{digits[:2]}-{digits[2:]}"


def mask_tin(last4: str | None) -> str:
    """All that is ever shown of a TIN on a page: its last four digits."""
    return f"•••• {last4}" if last4 else "—"


@dataclass(frozen=True)
class ProfileFacts:
    """What completeness depends on, as stored: the form's kind (None: no form on file) and which of its fields
    are filled. Blank strings count as missing."""

    kind: str | None
    name: str = ""  # the W-9's line 1 (name on the tax return), the W-8's name of the person or organization
    classification: str = ""  # W-9 only
    has_tin: bool = False  # W-9 only
    address_line1: str = ""
    city: str = ""
    region: str = ""  # a W-9's state
    postal_code: str = ""  # a W-9's ZIP code
    country: str = ""  # ISO 3166 alpha-2; a W-8's country of residence, US for a W-9


def _blank(value: str | None) -> bool:
    return not (value or "").strip()


def tax_form_problem(facts: ProfileFacts) -> str | None:
    """None when the contractor's tax form is complete; otherwise what is missing, in words a person acts on."""
    if facts.kind is None:
        return NO_FORM
    kind = FormKind(facts.kind)
    if kind is FormKind.W9:
        if _blank(facts.name):
            return "W-9 is missing the name on the tax return"
        if _blank(facts.classification):
            return "W-9 is missing the federal tax classification"
        if not facts.has_tin:
            return "W-9 is missing the TIN"
        if any(_blank(v) for v in (facts.address_line1, facts.city, facts.region, facts.postal_code)):
            return "W-9 is missing the address"
        return None
    if _blank(facts.name):
        return f"{kind.label} is missing the name"
    if _blank(facts.country):
        return f"{kind.label} is missing the country"
    if facts.country.strip().upper() == "US":
        return f"{kind.label} names the United States: a US person files a W-9"
    return None


def blocked_words(problem: str) -> str:
    """Why a contractor is not paid while its organization requires a tax form (the invoice page, the queue)."""
    if problem == NO_FORM:
        return "Tax form missing: no W-9 on file"
    return f"Tax form incomplete: {problem}"
