"""The validator of self-billed e-invoices is wired right (issue 21, item 3): OpenPEPPOL's own self-billing examples
pass the UBL 2.1 schema, the Peppol BIS Self-Billing 3.0 rules and the CEN EN 16931 rules with zero fatal or error
findings, every rule set actually fires on them, and the same documents with one business fact broken are refused by
the rule that owns it (so a pass means something)."""

from __future__ import annotations

import re

import pytest
from kit.peppol import HERE, RULES, fired, validate

EXAMPLES = sorted((HERE / "examples").glob("*.xml"))


def test_the_official_examples_are_all_here():
    assert len(EXAMPLES) == 9
    assert any(p.name == "SB-base-creditnote-correction.xml" for p in EXAMPLES)  # a credit note among them


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_each_official_self_billing_example_passes_the_schema_and_both_rule_sets(example):
    xml = example.read_bytes()
    assert validate(xml) == []
    for name in RULES:
        assert fired(xml, name) > 10, name  # the rules ran over the document, not past it


def test_a_document_with_a_wrong_profile_is_refused_by_the_peppol_rules():
    xml = (HERE / "examples" / "SB-base-example.xml").read_text()
    wrong = re.sub(
        r"<cbc:CustomizationID>.*?</cbc:CustomizationID>", "<cbc:CustomizationID>urn:x</cbc:CustomizationID>", xml
    )
    assert wrong != xml
    assert "PEPPOL-EN16931-R004" in {f.rule for f in validate(wrong)}


def test_a_document_whose_total_does_not_add_up_is_refused_by_the_cen_rules():
    xml = (HERE / "examples" / "SB-base-example.xml").read_text()
    wrong = re.sub(
        r'(<cbc:PayableAmount currencyID="\w+">)[\d.]+(</cbc:PayableAmount>)', r"\g<1>999.99\g<2>", xml, count=1
    )
    assert wrong != xml
    assert "BR-CO-16" in {f.rule for f in validate(wrong)}


def test_a_document_the_schema_refuses_is_refused():
    xml = (HERE / "examples" / "SB-base-example.xml").read_text()
    wrong = xml.replace("<cbc:IssueDate>", "<cbc:IssueDate>not-a-date", 1)
    assert wrong != xml
    assert "XSD" in {f.rule for f in validate(wrong)}
