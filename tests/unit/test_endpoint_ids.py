"""A Peppol endpoint id the official rules refuse is refused where it is typed and stops an e-invoice being issued
(issue 21; review finding 10). OpenPEPPOL's Self-Billing rules check the format and check digits of six schemes
(PEPPOL-COMMON-R040 to R050): GLN (0088), Norway's (0192), Denmark's DIGSTORG (0184), Belgium's (0208) and Sweden's
(0007) organization numbers and Australia's ABN (0151). domain.endpoint_ids restates them; here the rules themselves
(kit.peppol) are run on an e-invoice naming each id, and they agree with it both ways.

The valid ids are the official examples' GLNs and public registrations (Brønnøysund, Belgian, Swedish and Australian
companies, the ATO's own ABN example); each invalid one differs from a valid one by a digit, its length or its form.
"""

from __future__ import annotations

from datetime import date

import pytest
from kit.peppol import validate

from backoffice.domain.einvoice import (
    VALID_ENDPOINT,
    Item,
    Party,
    endpoint_problem,
    missing_details,
    party_problems,
    totals,
)
from backoffice.services.ubl import EInvoice, render

VALID = [
    ("0088", "7300010000001"),  # the official self-billing examples' buyer
    ("0088", "9482348239847239874"),  # the official base example's: the rules ask no length of a GLN
    ("0088", "5790000435951"),
    ("0192", "974760673"),
    ("0192", "923609016"),
    ("0184", "DK12345678"),
    ("0208", "0403170701"),
    ("0208", "0202239951"),
    ("0007", "5560360793"),
    ("0007", "5560125790"),
    ("0151", "51824753556"),
    ("0151", "53004085616"),
]
INVALID = [
    ("0088", "1234567890123", "This GLN's last digit is not its GS1 check digit"),
    ("0088", "7300010000002", "This GLN's last digit is not its GS1 check digit"),
    ("0088", "73000100000A1", "A GLN is digits only"),
    ("0192", "974760672", "This organization number's last digit is not its check digit"),
    ("0192", "97476067", "A Norwegian organization number is 9 digits"),
    ("0192", "000000000", "This organization number's last digit is not its check digit"),
    ("0184", "12345678", "A DIGSTORG endpoint is DK and the 8 digits of the CVR number"),
    ("0184", "dk12345678", "A DIGSTORG endpoint is DK and the 8 digits of the CVR number"),
    ("0184", "DK1234567", "A DIGSTORG endpoint is DK and the 8 digits of the CVR number"),
    ("0208", "0403170702", "This enterprise number's last two digits are not its check digits"),
    ("0208", "BE0403170701", "A Belgian enterprise number is 10 digits"),
    ("0007", "5560360794", "This organization number's last digit is not its check digit"),
    ("0007", "556036-0793", "A Swedish organization number is 10 digits, without the dash"),
    # Python's \d and str.isdigit take Arabic-Indic digits; the rules' [0-9] and number() do not.
    ("0007", "٥٥٦٠٣٦٠٧٩٣", "A Swedish organization number is 10 digits"),
    ("0192", "٩٧٤٧٦٠٦٧٣", "A Norwegian organization number is 9 digits"),
    ("0151", "51824753557", "This ABN's digits do not add up to a valid ABN"),
    ("0151", "5182475355", "An Australian Business Number is 11 digits"),
]
# Schemes without a rule, and no id yet (missing_details says that one is missing).
OTHER_SCHEMES = [("0002", "FR23342"), ("0106", "12345678"), ("9930", "DE123456789"), ("0088", ""), ("0184", " ")]
GLN = "7300010000001"


@pytest.mark.parametrize(("scheme", "identifier"), VALID)
def test_a_valid_id_of_each_checked_scheme_is_accepted(scheme, identifier):
    assert endpoint_problem(scheme, identifier) is None


@pytest.mark.parametrize(("scheme", "identifier", "words"), INVALID)
def test_an_invalid_id_is_refused_in_words_that_say_what_to_fix(scheme, identifier, words):
    assert endpoint_problem(scheme, identifier).startswith(words)


@pytest.mark.parametrize(("scheme", "identifier"), OTHER_SCHEMES)
def test_schemes_the_rules_check_nothing_of_and_blank_ids_are_left_alone(scheme, identifier):
    assert endpoint_problem(scheme, identifier) is None


def party(scheme: str = "0088", identifier: str = GLN, **kwargs) -> Party:
    fields = {"legal_name": "Acme AB", "street": "Storgatan 1", "city": "Stockholm", "country": "SE", **kwargs}
    return Party(endpoint_scheme=scheme, endpoint_id=identifier, postal_code="11122", **fields)


def test_a_saved_profile_with_a_refused_endpoint_says_so_and_no_e_invoice_is_issued_for_it():
    bad = party("0007", "5560360794")
    assert missing_details(bad) == [VALID_ENDPOINT]
    assert party_problems(bad, "Acme's e-invoicing details") == [
        "The Peppol endpoint id 5560360794 in Acme's e-invoicing details is one the Peppol rules refuse."
        " This organization number's last digit is not its check digit: check the number."
    ]
    assert party_problems(party("0007", "5560360793"), "x") == []


def test_a_profile_lacking_other_details_says_both_in_separate_sentences():
    bad = party("0088", "1234567890123", street="")
    assert missing_details(bad) == ["street", VALID_ENDPOINT]
    missing, refused = party_problems(bad, "x")
    assert missing == "Missing street in x." and refused.startswith("The Peppol endpoint id 1234567890123 in x")


# --- parity with the official rules ----------------------------------------------------------------------


def e_invoice(seller: Party) -> bytes:
    """A self-billed invoice of 100.00 EUR from ``seller`` (not subject to VAT: no tax ids needed) to a buyer whose
    endpoint is the official examples' GLN. The writer names each party by its endpoint in EndpointID and
    PartyIdentification, both of which the rules check."""
    buyer = Party(
        "Nordbau Projekte GmbH", "Hauptstraße 1", "Berlin", "10115", "DE", endpoint_scheme="0088", endpoint_id=GLN
    )
    return render(
        EInvoice(
            number="ACME-000001",
            issue_date=date(2026, 3, 2),
            due_date=date(2026, 3, 16),
            currency="EUR",
            buyer_reference="PO-1",
            note="Document TX-0123456789ABCDEF0123",
            seller=seller,
            buyer=buyer,
            category="O",
            vat_bps=0,
            totals=totals([Item("Milestone 1", 10_000)], 0, "O", 0, "EUR"),
        )
    )


RULE = {"0088": "R040", "0192": "R041", "0184": "R042", "0208": "R043", "0007": "R049", "0151": "R050"}


@pytest.mark.parametrize(("scheme", "identifier"), VALID + [(s, i) for s, i, _ in INVALID])
def test_the_official_rules_refuse_exactly_the_ids_endpoint_problem_refuses(scheme, identifier):
    # The rest of the document is valid: whatever the rules refuse is the seller's endpoint id, once as its
    # EndpointID and once as its PartyIdentification.
    refused = sorted(f.rule for f in validate(e_invoice(party(scheme, identifier))))
    if endpoint_problem(scheme, identifier) is None:
        assert refused == []
    else:
        assert refused == [f"PEPPOL-COMMON-{RULE[scheme]}"] * 2
