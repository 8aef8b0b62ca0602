"""UBL 2.1 documents per Peppol BIS Self-Billing 3.0 (DESIGN.md section 7b): a self-billed invoice (type 389),
written from an ``EInvoice`` with the standard library's ElementTree, and the self-billed credit note (type 261)
that cancels a stored one, made from that document itself.

Nothing here decides an amount: domain.einvoice.totals does, and this module writes its figures in the order the
UBL 2.1 schema wants each element. tests/integration/test_einvoice_validation.py runs the official rules on what it
writes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date

from backoffice.domain.einvoice import (
    CREDIT_NOTE_TYPE_CODE,
    CUSTOMIZATION_ID,
    INVOICE_TYPE_CODE,
    PROFILE_ID,
    Party,
    Totals,
    VatCategory,
    to_decimal,
    to_percent,
)

_NS = {
    "": "urn:oasis:names:specification:ubl:schema:xsd:{root}-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
ET.register_namespace("cac", _NS["cac"])
ET.register_namespace("cbc", _NS["cbc"])


@dataclass(frozen=True)
class EInvoice:
    """Everything a self-billed invoice or credit note says, amounts already worked out (domain.einvoice.totals)."""

    number: str
    issue_date: date
    due_date: date | None
    currency: str
    buyer_reference: str
    note: str  # the document's id and the audit chain head at issue, and what it bills
    seller: Party  # the contractor
    buyer: Party  # the organization
    category: str  # domain.einvoice.VatCategory
    vat_bps: int
    totals: Totals
    allowance_reason: str = "Retainage withheld, invoiced when released"
    payment_terms: str = ""


def _cbc(parent: ET.Element, name: str, text: str, **attrs) -> ET.Element:
    element = ET.SubElement(parent, f"{{{_NS['cbc']}}}{name}", attrs)
    element.text = text
    return element


def _cac(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{_NS['cac']}}}{name}")


def _amount(parent: ET.Element, name: str, amount: int, currency: str) -> None:
    _cbc(parent, name, to_decimal(amount, currency), currencyID=currency)


def _party(parent: ET.Element, role: str, party: Party, *, vat_ids: bool) -> None:
    element = _cac(_cac(parent, role), "Party")
    _cbc(element, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    # The endpoint identifies the party too (BT-29/BT-46): a not-subject seller, which names no VAT id, is still
    # identified (BR-CO-26).
    # Only an ISO 6523 scheme (0xxx) names the identification's scheme (BR-CL-10); Peppol's own (99xx) stay unnamed.
    identification = {"schemeID": party.endpoint_scheme} if party.endpoint_scheme.startswith("0") else {}
    _cbc(_cac(element, "PartyIdentification"), "ID", party.endpoint_id, **identification)
    _cbc(_cac(element, "PartyName"), "Name", party.legal_name)
    address = _cac(element, "PostalAddress")
    _cbc(address, "StreetName", party.street)
    _cbc(address, "CityName", party.city)
    if party.postal_code:
        _cbc(address, "PostalZone", party.postal_code)
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country)
    # A VAT id only where the category allows one (BR-O-02: a not-subject invoice names none); another tax
    # registration id (scheme TAX) the seller may always give (BT-32).
    if party.tax_id and (party.tax_scheme != "VAT" or vat_ids):
        scheme = _cac(element, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", party.tax_id)
        _cbc(_cac(scheme, "TaxScheme"), "ID", party.tax_scheme)
    _cbc(_cac(element, "PartyLegalEntity"), "RegistrationName", party.legal_name)
    if party.email:
        _cbc(_cac(element, "Contact"), "ElectronicMail", party.email)


def _tax_category(parent: ET.Element, name: str, category: VatCategory, vat_bps: int, *, reason: bool) -> None:
    element = _cac(parent, name)
    _cbc(element, "ID", category.value)
    if category.states_rate:
        _cbc(element, "Percent", to_percent(vat_bps if category.charges_vat else 0))
    if reason and category.exemption:
        code, words = category.exemption
        _cbc(element, "TaxExemptionReasonCode", code)
        _cbc(element, "TaxExemptionReason", words)
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")


def render(doc: EInvoice) -> bytes:
    """The self-billed invoice as UTF-8 XML bytes (its credit note: ``credit_note_of``)."""
    root = ET.Element(f"{{{_NS[''].format(root='Invoice')}}}Invoice")
    category, cur, t = VatCategory(doc.category), doc.currency, doc.totals
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", doc.issue_date.isoformat())
    if doc.due_date:
        _cbc(root, "DueDate", doc.due_date.isoformat())
    _cbc(root, "InvoiceTypeCode", INVOICE_TYPE_CODE)
    _cbc(root, "Note", doc.note)
    _cbc(root, "DocumentCurrencyCode", cur)
    _cbc(root, "BuyerReference", doc.buyer_reference)
    vat_ids = category is not VatCategory.NOT_SUBJECT
    _party(root, "AccountingSupplierParty", doc.seller, vat_ids=vat_ids)
    _party(root, "AccountingCustomerParty", doc.buyer, vat_ids=vat_ids)
    if doc.payment_terms:
        _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment_terms)
    if t.allowance:
        allowance = _cac(root, "AllowanceCharge")
        _cbc(allowance, "ChargeIndicator", "false")
        _cbc(allowance, "AllowanceChargeReason", doc.allowance_reason)
        _amount(allowance, "Amount", t.allowance, cur)
        _tax_category(allowance, "TaxCategory", category, doc.vat_bps, reason=False)
    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", t.vat, cur)
    subtotal = _cac(tax_total, "TaxSubtotal")
    _amount(subtotal, "TaxableAmount", t.taxable, cur)
    _amount(subtotal, "TaxAmount", t.vat, cur)
    _tax_category(subtotal, "TaxCategory", category, doc.vat_bps, reason=True)
    money = _cac(root, "LegalMonetaryTotal")
    _amount(money, "LineExtensionAmount", t.line_total, cur)
    _amount(money, "TaxExclusiveAmount", t.taxable, cur)
    _amount(money, "TaxInclusiveAmount", t.tax_inclusive, cur)
    if t.allowance:
        _amount(money, "AllowanceTotalAmount", t.allowance, cur)
    if t.rounding:
        _amount(money, "PayableRoundingAmount", t.rounding, cur)
    _amount(money, "PayableAmount", t.payable, cur)
    for number, line in enumerate(t.lines, start=1):
        element = _cac(root, "InvoiceLine")
        _cbc(element, "ID", str(number))
        _cbc(element, "InvoicedQuantity", "1", unitCode="C62")
        _amount(element, "LineExtensionAmount", line.amount, cur)
        item = _cac(element, "Item")
        if line.description:
            _cbc(item, "Description", line.description)
        _cbc(item, "Name", line.name)
        _tax_category(item, "ClassifiedTaxCategory", category, doc.vat_bps, reason=False)
        _amount(_cac(element, "Price"), "PriceAmount", line.amount, cur)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def credit_note_of(invoice: bytes, *, number: str, issue_date: date, note: str, terms: str) -> bytes:
    """The self-billed credit note (type 261) that cancels the stored e-invoice ``invoice`` in full: its parties, VAT,
    lines and totals exactly as that document states them (whatever the profiles say since), under its own number,
    date and note, referring to the invoice it credits."""
    source = ET.fromstring(invoice)
    invoice_ns = _NS[""].format(root="Invoice")
    if source.tag != f"{{{invoice_ns}}}Invoice":
        raise ValueError("a credit note credits a UBL Invoice")
    cbc, cac = _NS["cbc"], _NS["cac"]
    root = ET.Element(f"{{{_NS[''].format(root='CreditNote')}}}CreditNote")
    original_number = source.findtext(f"{{{cbc}}}ID")
    original_date = source.findtext(f"{{{cbc}}}IssueDate")
    renamed = {
        f"{{{cac}}}InvoiceLine": f"{{{cac}}}CreditNoteLine",
        f"{{{cbc}}}InvoicedQuantity": f"{{{cbc}}}CreditedQuantity",
    }
    for child in source:
        tag = child.tag
        if tag == f"{{{cbc}}}ID":
            _cbc(root, "ID", number)
        elif tag == f"{{{cbc}}}IssueDate":
            _cbc(root, "IssueDate", issue_date.isoformat())
        elif tag == f"{{{cbc}}}DueDate":
            continue  # a credit note falls due on nothing
        elif tag == f"{{{cbc}}}InvoiceTypeCode":
            _cbc(root, "CreditNoteTypeCode", CREDIT_NOTE_TYPE_CODE)
        elif tag == f"{{{cbc}}}Note":
            _cbc(root, "Note", note)
        elif tag == f"{{{cac}}}PaymentTerms":
            _cbc(_cac(root, "PaymentTerms"), "Note", terms)
        else:
            root.append(child)
            if tag == f"{{{cbc}}}BuyerReference":
                reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
                _cbc(reference, "ID", original_number)
                _cbc(reference, "IssueDate", original_date)
            for element in child.iter():
                element.tag = renamed.get(element.tag, element.tag)
            child.tag = renamed.get(child.tag, child.tag)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)
