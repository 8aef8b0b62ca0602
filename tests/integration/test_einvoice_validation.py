"""Every self-billed e-invoice the product issues passes the official rules (issue 21, item 3; DESIGN.md section 7b).

Invoices of every kind are authorized through the real services (a milestone, a retainage release, a completion
engagement's advance, task invoice and final payment), the real worker issues their documents, and the UBL stored in
the data room is run through the UBL 2.1 schema, Peppol BIS Self-Billing 3.0 and CEN EN 16931 (kit.peppol): zero
fatal or error findings. A voided one's credit note too. Across currencies of 0, 2 and 3 decimals, every VAT category,
and parties named outside ASCII. The figures are checked against the invoice (what it pays), the arithmetic worked by
hand for two cases, and the PDF self-billed invoice, which must state the same VAT.

The parties' e-invoicing details and the self-billing agreement are written as the owner role with raw SQL: their
forms are another part of issue 21; here they are only the facts an e-invoice is made of.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from kit.completion import approve_task, completion_engagement, completion_invoices, raise_invoice
from kit.engagements import owner_query, sign_in
from kit.jobs import jobs, run_jobs
from kit.money import active_engagement, approve, invoice, party
from kit.peppol import RULES, fired, validate
from pypdf import PdfReader
from sqlalchemy import text

from backoffice.domain import einvoice
from backoffice.domain.currency import minor_units
from backoffice.errors import Conflict
from backoffice.services import approvals, einvoices, invoices
from backoffice.services.approvals import PolicyInput, StepInput
from backoffice.services.notifications import worker_actor

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
# The organization (the buyer): a German company, its Peppol endpoint a GLN (the official examples' own, whose check
# digit PEPPOL-COMMON-R040 verifies).
BUYER = {
    "legal_name": "Nordbau Projekte GmbH",
    "street": "Hauptstraße 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "tax_id": "DE123456789",
    "tax_scheme": "VAT",
    "endpoint_scheme": "0088",
    "endpoint_id": "7300010000001",
}


# --- the facts an e-invoice is made of ---------------------------------------------------------------


def _profile(admin_engine, world, contractor_id, fields: dict) -> None:
    row = {"street": "", "city": "", "postal_code": "", "tax_id": "", "tax_scheme": "VAT", **fields}
    row.setdefault("vat_category", "")
    row.setdefault("vat_bps", 0)
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into einvoice_profiles (org_id, contractor_id, legal_name, street, city, postal_code, country,"
                " tax_id, tax_scheme, endpoint_scheme, endpoint_id, vat_category, vat_bps, updated_by)"
                " values (:org, :contractor, :legal_name, :street, :city, :postal_code, :country, :tax_id,"
                " :tax_scheme, :endpoint_scheme, :endpoint_id, :vat_category, :vat_bps, :by)"
            ),
            {"org": world.org_a, "contractor": contractor_id, "by": world.admin.id, **row},
        )


def e_invoicing(admin_engine, world, which="x", *, name, country, category, bps=0, tax_id="", tax_scheme="VAT"):
    """Org A's details as the buyer (once), and contractor X's or Y's as a seller named ``name``, with a confirmed
    self-billing agreement: nothing stands in the way of its e-invoices."""
    contractor, user = {
        "x": (world.contractor_x, world.contractor_x_user),
        "y": (world.contractor_y, world.contractor_y_user),
    }[which]
    if not owner_query(
        admin_engine, "select 1 from einvoice_profiles where org_id = :o and contractor_id is null", o=world.org_a
    ):
        _profile(admin_engine, world, None, BUYER)
    with admin_engine.begin() as conn:
        conn.execute(text("update contractors set legal_name = :n where id = :c"), {"n": name, "c": contractor})
    _profile(
        admin_engine,
        world,
        contractor,
        {
            "legal_name": name,
            "street": "ul. Długa 5",
            "city": "Kraków",
            "postal_code": "31-147",
            "country": country,
            "tax_id": tax_id,
            "tax_scheme": tax_scheme,
            "endpoint_scheme": "0002",  # SIRENE: no check digit, as in the official examples
            "endpoint_id": f"SELLER{which.upper()}{world.suffix}",
            "vat_category": category,
            "vat_bps": bps,
        },
    )
    with admin_engine.begin() as conn:
        agreement = conn.execute(
            text(
                "insert into self_billing_agreements (org_id, contractor_id, agreed_on, terms, recorded_by)"
                " values (:o, :c, date '2026-01-05', 'We issue your invoices; you accept or reject each.', :by)"
                " returning id"
            ),
            {"o": world.org_a, "c": contractor, "by": world.admin.id},
        ).scalar_one()
        conn.execute(
            text("update self_billing_agreements set confirmed_by = :u where id = :a"), {"u": user.id, "a": agreement}
        )


# --- reading what was issued ------------------------------------------------------------------------


def document(admin_engine, invoice_id, kind: str) -> dict | None:
    rows = owner_query(
        admin_engine, "select * from documents where invoice_id = :i and kind = :k", i=invoice_id, k=kind
    )
    return rows[0] if rows else None


def pdf_text(content) -> str:
    pages = PdfReader(io.BytesIO(bytes(content))).pages
    return " ".join(" ".join(page.extract_text() for page in pages).replace("\u202f", " ").replace("\xa0", " ").split())


def amount(root: ET.Element, path: str) -> Decimal:
    (found,) = root.findall(path, NS)
    return Decimal(found.text)


def figures(root: ET.Element) -> dict[str, Decimal]:
    money = "cac:LegalMonetaryTotal/cbc:"
    return {
        "lines": amount(root, money + "LineExtensionAmount"),
        "taxable": amount(root, money + "TaxExclusiveAmount"),
        "vat": amount(root, "cac:TaxTotal/cbc:TaxAmount"),
        "inclusive": amount(root, money + "TaxInclusiveAmount"),
        "payable": amount(root, money + "PayableAmount"),
        "rounding": optional(root, money + "PayableRoundingAmount"),
        "allowance": optional(root, money + "AllowanceTotalAmount"),
    }


def optional(root: ET.Element, path: str) -> Decimal:
    """An amount the document leaves out when it is zero (BT-107, BT-114)."""
    found = root.find(path, NS)
    return Decimal(0) if found is None else Decimal(found.text)


def major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_units(currency))


def stated_vat(said: str, label: str) -> Decimal:
    """The VAT the PDF states on its line ``label`` ("VAT 20%", "VAT: exempt from vat"), as a number."""
    found = re.search(re.escape(label) + r" [^\d]*([\d,]+(?:\.\d+)?)", said)
    assert found, f"no {label!r} line in the self-billed invoice: {said}"
    return Decimal(found.group(1).replace(",", ""))


def issued_einvoice(admin_engine, inv: dict, category: str, bps: int) -> ET.Element:
    """The invoice's e-invoice, once it passes the official rules with figures that add up to what it pays, names
    its document id and the audit chain head at issue, and states the VAT its PDF states: its root."""
    doc = document(admin_engine, inv["id"], "einvoice")
    assert doc is not None, f"no e-invoice for {inv['invoice_number']}"
    assert (doc["content_type"], doc["filename"]) == ("application/xml", f"einvoice-{inv['invoice_number']}.xml")
    content = bytes(doc["content"])
    assert validate(content) == []
    root = ET.fromstring(content)
    assert root.findtext("cbc:ID", namespaces=NS) == inv["invoice_number"]
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "389"
    got, cur = figures(root), inv["currency"]
    assert got["payable"] == major(inv["net_minor"], cur)
    # domain.einvoice.totals depends on the amounts only through their sum: one item of the gross is the same VAT.
    expected = einvoice.totals([einvoice.Item("all", inv["gross_minor"])], inv["retainage_minor"], category, bps, cur)
    scale = einvoice.document_scale(cur)
    assert got["vat"] == major(expected.vat * scale, cur)
    assert got["inclusive"] == major(expected.tax_inclusive * scale, cur)
    assert got["inclusive"] + got["rounding"] == got["payable"]
    note = root.findtext("cbc:Note", namespaces=NS)
    assert f"Document {doc['transaction_id']}." in note
    assert f"{inv['org_id']} {doc['audit_head_seq']} {doc['audit_head_hash']}" in note
    pdf = document(admin_engine, inv["id"], "self_billed_invoice")
    label = (
        f"VAT {einvoice.to_percent(bps)}%"
        if category == "S"
        else f"VAT: {einvoice.VatCategory(category).label.lower()}"
    )
    assert stated_vat(pdf_text(pdf["content"]), label) == got["vat"]
    return root


def run(database, admin_engine, world) -> None:
    run_jobs(database, admin_engine, org_ids=[world.org_a])


# --- kinds, rates, hand-worked figures ---------------------------------------------------------------


def test_a_milestone_and_its_retainage_release_at_20_percent_vat_pass_with_the_figures_worked_by_hand(
    act_as, admin_engine, world, database
):
    name = "Łukasz Żółć Usługi"
    e_invoicing(admin_engine, world, name=name, country="PL", category="S", bps=2000, tax_id="PL5260250995")
    p = party(world)
    engagement_id, (m1, _) = active_engagement(act_as, admin_engine, p, ("1,234.55", "2,000.00"))
    milestone = approve(act_as, admin_engine, p, m1)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    release = invoices.release_retainage(session, actor, engagement_id, "Roof inspected early.")
    run(database, admin_engine, world)

    # $1,234.55 less 10% retainage ($123.455 → $123.46) pays $1,111.09, VAT included: taxable 1,111.09 / 1.2 =
    # 925.908 → 925.91, VAT 20% of it 185.182 → 185.18, 925.91 + 185.18 = 1,111.09 (no rounding). The lines are
    # the gross without VAT, 1,234.55 / 1.2 = 1,028.79, less the retainage's part 1,028.79 − 925.91 = 102.88.
    root = issued_einvoice(admin_engine, milestone, "S", 2000)
    assert {k: str(v) for k, v in figures(root).items()} == {
        "lines": "1028.79",
        "allowance": "102.88",
        "taxable": "925.91",
        "vat": "185.18",
        "inclusive": "1111.09",
        "rounding": "0",
        "payable": "1111.09",
    }
    content = bytes(document(admin_engine, milestone["id"], "einvoice")["content"])
    for rules in RULES:
        assert fired(content, rules) > 10, rules  # the rules ran over this document, not past it
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert seller.findtext("cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS) == name
    said = pdf_text(document(admin_engine, milestone["id"], "self_billed_invoice")["content"])
    assert "Taxable amount $925.91 VAT 20% $185.18 Amount due to the supplier $1,111.09" in said
    assert name in said

    # The release pays the $123.46 withheld: 123.46 / 1.2 = 102.883 → 102.88, VAT 20.576 → 20.58, no rounding.
    release = invoice(admin_engine, release.id)
    root = issued_einvoice(admin_engine, release, "S", 2000)
    assert (figures(root)["taxable"], figures(root)["vat"], figures(root)["payable"]) == (
        Decimal("102.88"),
        Decimal("20.58"),
        Decimal("123.46"),
    )
    assert "Retainage released" in root.findtext("cac:InvoiceLine/cac:Item/cbc:Name", namespaces=NS)


def test_a_7_7_percent_vat_inclusive_split_states_its_rounding_amount_and_passes(act_as, admin_engine, world, database):
    name = "ООО «Кровля Дмитрия»"
    e_invoicing(admin_engine, world, "y", name=name, country="CH", category="S", bps=770, tax_id="CHE123456789")
    p = party(world, "y")
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,000.00",), retainage="0", currency="CHF")
    inv = approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world)

    # 1,000.00 / 1.077 = 928.505… → 928.51; VAT 7.7% of it 71.495… → 71.50; 928.51 + 71.50 = 1,000.01, so the
    # rounding amount is −0.01 and exactly 1,000.00 is due.
    root = issued_einvoice(admin_engine, inv, "S", 770)
    got = figures(root)
    assert (got["taxable"], got["vat"], got["inclusive"], got["rounding"], got["payable"]) == (
        Decimal("928.51"),
        Decimal("71.50"),
        Decimal("1000.01"),
        Decimal("-0.01"),
        Decimal("1000.00"),
    )
    assert root.findtext("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", namespaces=NS) == "7.7"
    said = pdf_text(document(admin_engine, inv["id"], "self_billed_invoice")["content"])
    assert (
        "Taxable amount CHF928.51 VAT 7.7% CHF71.50 Rounding -CHF0.01 Amount due to the supplier CHF1,000.00" in said
    ), said
    assert name in said
    assert name == root.findtext("cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name", namespaces=NS)


def test_an_advance_a_task_invoice_and_a_final_payment_in_yen_under_reverse_charge_pass(
    act_as, admin_engine, world, database
):
    e_invoicing(admin_engine, world, name="Hiroshi Builders KK", country="FR", category="AE", tax_id="FR12345678901")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as,
        admin_engine,
        p,
        value="1,000,001",
        advance="12",
        tasks=("300,000", "300,001", "280,000"),
        currency="JPY",
    )
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    raise_invoice(act_as, p, engagement_id, tasks[:2])
    approve_task(act_as, p, tasks[2])
    run(database, admin_engine, world)

    issued = completion_invoices(admin_engine, engagement_id)
    assert [i["kind"] for i in issued] == ["advance", "completion", "final"]
    for inv in issued:
        root = issued_einvoice(admin_engine, inv, "AE", 0)
        assert figures(root)["vat"] == 0
        assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == "JPY"
        assert "." not in root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS)
    task_invoice = issued[1]
    assert figures(ET.fromstring(bytes(document(admin_engine, task_invoice["id"], "einvoice")["content"])))[
        "payable"
    ] == Decimal(600_001 - 60_000)  # ¥60,000.1 withheld, rounded half up to ¥60,000


@pytest.mark.parametrize(
    ("category", "tax_id", "tax_scheme"),
    [("Z", "PL5260250995", "VAT"), ("E", "PL5260250995", "VAT"), ("O", "", "VAT"), ("O", "123-45-678", "TAX")],
)
def test_a_contractor_charging_no_vat_gets_an_e_invoice_that_passes(
    act_as, admin_engine, world, database, category, tax_id, tax_scheme
):
    e_invoicing(
        admin_engine,
        world,
        name="Łukasz Żółć Usługi",
        country="PL",
        category=category,
        tax_id=tax_id,
        tax_scheme=tax_scheme,
    )
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("2,500.10",), currency="EUR")
    inv = approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world)

    root = issued_einvoice(admin_engine, inv, category, 0)
    got = figures(root)
    assert (got["taxable"], got["vat"], got["payable"]) == (Decimal("2250.09"), 0, Decimal("2250.09"))
    assert root.findtext("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", namespaces=NS) == category


# --- three decimals -----------------------------------------------------------------------------------


def test_kuwaiti_dinar_amounts_whose_third_decimal_is_zero_pass(act_as, admin_engine, world, database):
    e_invoicing(
        admin_engine, world, name="Gulf Roofing WLL", country="PL", category="S", bps=2000, tax_id="PL5260250995"
    )
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,234.500",), currency="KWD")
    inv = approve(act_as, admin_engine, p, m1)
    assert (inv["gross_minor"], inv["retainage_minor"], inv["net_minor"]) == (1_234_500, 123_450, 1_111_050)
    run(database, admin_engine, world)

    # 1,111.05 / 1.2 = 925.875 → 925.88; VAT 185.176 → 185.18; 925.88 + 185.18 = 1,111.06, rounding −0.01.
    root = issued_einvoice(admin_engine, inv, "S", 2000)
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) == "1111.05"
    got = figures(root)
    assert (got["taxable"], got["vat"], got["rounding"]) == (Decimal("925.88"), Decimal("185.18"), Decimal("-0.01"))


def test_a_kuwaiti_dinar_amount_with_a_third_decimal_gets_a_clear_problem_and_no_e_invoice(
    act_as, as_worker, admin_engine, world, database
):
    e_invoicing(
        admin_engine, world, name="Gulf Roofing WLL", country="PL", category="S", bps=2000, tax_id="PL5260250995"
    )
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,234.567",), retainage="0", currency="KWD")
    inv = approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world)

    assert document(admin_engine, inv["id"], "self_billed_invoice") is not None  # the PDF stands
    # and its job succeeded at once: what stops the e-invoice is no failure to retry
    assert [(j["status"], j["attempts"]) for j in jobs(admin_engine, task="issue_receipt", org_ids=[world.org_a])] == [
        ("succeeded", 1)
    ]
    assert document(admin_engine, inv["id"], "einvoice") is None
    session = as_worker(world.org_a)
    (problem,) = einvoices.einvoice_problems(einvoices.facts_of(session, inv["id"]))
    assert "at most 2 decimals" in problem and "KWD" in problem and "cannot be issued as a Peppol e-invoice" in problem
    with pytest.raises(Conflict, match="at most 2 decimals"):
        einvoices.issue_einvoice(as_worker(world.org_a), worker_actor(world.org_a), inv["id"])
    assert document(admin_engine, inv["id"], "einvoice") is None


# --- the credit note ----------------------------------------------------------------------------------


def test_an_invoice_voided_after_its_e_invoice_was_issued_is_credited_by_a_credit_note_that_passes(
    act_as, admin_engine, world, database
):
    e_invoicing(
        admin_engine, world, name="Łukasz Żółć Usługi", country="PL", category="S", bps=2000, tax_id="PL5260250995"
    )
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", "1,000.00", [StepInput(role="finance")]))
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,234.55",))
    inv = approve(act_as, admin_engine, p, m1)
    assert inv["status"] == "pending_approval"
    run(database, admin_engine, world)
    issued = issued_einvoice(admin_engine, inv, "S", 2000)
    assert document(admin_engine, inv["id"], "credit_note") is None

    session, actor = sign_in(act_as, world.finance, world.org_a)
    approvals.decide_step(session, actor, inv["id"], "reject", "The photos show the old roof.")
    run(database, admin_engine, world)

    voided = invoice(admin_engine, inv["id"])
    assert voided["status"] == "void"
    doc = document(admin_engine, inv["id"], "credit_note")
    assert doc is not None
    number = f"{inv['invoice_number']}-CN"
    assert (doc["content_type"], doc["filename"]) == ("application/xml", f"credit-note-{number}.xml")
    content = bytes(doc["content"])
    assert validate(content) == []
    root = ET.fromstring(content)
    assert root.tag.endswith("}CreditNote")
    assert root.findtext("cbc:ID", namespaces=NS) == number
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "261"
    assert root.findtext("cbc:IssueDate", namespaces=NS) == voided["voided_at"].date().isoformat()
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert reference.findtext("cbc:ID", namespaces=NS) == inv["invoice_number"]
    assert reference.findtext("cbc:IssueDate", namespaces=NS) == inv["issued_on"].isoformat()
    assert figures(root) == figures(issued)  # it credits the invoice in full
    note = root.findtext("cbc:Note", namespaces=NS)
    assert f"Document {doc['transaction_id']}." in note
    assert f"{inv['org_id']} {doc['audit_head_seq']} {doc['audit_head_hash']}" in note

    run(database, admin_engine, world)  # credited once
    assert len(owner_query(admin_engine, "select 1 from documents where invoice_id = :i", i=inv["id"])) == 3
