"""The official rules a self-billed e-invoice must pass (issue 21; DESIGN.md section 7b), run as the rules' owners
publish them: the UBL 2.1 schema (OASIS), and OpenPEPPOL's Peppol BIS Self-Billing 3.0 schematron with the CEN
EN 16931 UBL schematron it pairs with, each compiled to XSLT by SchXslt and run with Saxon (saxonche). The files are
vendored under tests/peppol/ (README.md there: sources, versions, licences); nothing here restates a rule.

``validate(xml)`` gives the schema's errors and every failed assertion of either schematron flagged fatal or error;
an empty result is a document the rules accept."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "peppol"
RULES = ("PEPPOL-EN16931-UBL-SB", "CEN-EN16931-UBL")
SCHEMAS = {
    "Invoice": HERE / "ubl-2.1" / "maindoc" / "UBL-Invoice-2.1.xsd",
    "CreditNote": HERE / "ubl-2.1" / "maindoc" / "UBL-CreditNote-2.1.xsd",
}
_FAILED = re.compile(r"<svrl:failed-assert\b(?P<attrs>[^>]*)>(?P<body>.*?)</svrl:failed-assert>", re.DOTALL)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TEXT = re.compile(r"<svrl:text>(.*?)</svrl:text>", re.DOTALL)


@dataclass(frozen=True)
class Finding:
    source: str  # "UBL 2.1 schema", or the schematron's name
    rule: str  # the rule's id (BR-CO-16, PEPPOL-EN16931-R004 ...), or "XSD"
    flag: str  # fatal | error
    text: str


@functools.cache
def _processor():
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@functools.cache
def _compiled(name: str):
    """The schematron compiled by SchXslt's pipeline for SVRL (once per run), as an executable stylesheet."""
    xslt = _processor().new_xslt30_processor()
    pipeline = xslt.compile_stylesheet(stylesheet_file=str(HERE / "schxslt" / "2.0" / "pipeline-for-svrl.xsl"))
    stylesheet = pipeline.transform_to_string(source_file=str(HERE / "rules" / f"{name}.sch"))
    return xslt.compile_stylesheet(stylesheet_text=stylesheet)


@functools.cache
def _schema(root: str):
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMAS[root]))


def validate(xml: bytes | str) -> list[Finding]:
    """Every fatal or error finding of the schema and both schematrons on this document; [] when they accept it."""
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    root = re.search(r"<(?:\w+:)?(Invoice|CreditNote)\b", text)
    assert root, "not a UBL Invoice or CreditNote"
    findings = [Finding("UBL 2.1 schema", "XSD", "fatal", str(e)) for e in _schema(root.group(1)).iter_errors(text)]
    node = _processor().parse_xml(xml_text=text)
    for name in RULES:
        svrl = _compiled(name).transform_to_string(xdm_node=node)
        for m in _FAILED.finditer(svrl):
            attrs = dict(_ATTR.findall(m.group("attrs")))
            if attrs.get("flag") in ("fatal", "error"):
                said = _TEXT.search(m.group("body"))
                findings.append(
                    Finding(name, attrs.get("id", "?"), attrs["flag"], said.group(1).strip() if said else "")
                )
    return findings


def fired(xml: bytes | str, name: str) -> int:
    """How many rules of the schematron fired on the document: a validator that fires none has checked nothing."""
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    return _compiled(name).transform_to_string(xdm_node=_processor().parse_xml(xml_text=text)).count("<svrl:fired-rule")
