"""What an invoice's documents keep once issued (issue 21): a credit note cancels the e-invoice as it was issued, not
as the contractor's details or agreement read today; the e-invoice states the VAT its PDF stated; a void authorization
gets no self-billed invoice at all; and an agreement dated after an invoice gives it no e-invoice (art. 224 wants the
agreement first). Invoices are authorized through the services and the real worker issues the documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from kit.einvoicing import agree, save_details
from kit.engagements import owner_query, sign_in
from kit.jobs import run_jobs
from kit.money import active_engagement, approve, invoice, party
from kit.money_pages import date_back
from kit.peppol import validate
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backoffice.services import approvals, einvoices
from backoffice.services.approvals import PolicyInput, StepInput

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
STANDARD = {"vat_category": "S", "vat_bps": 2000, "country": "PL", "tax_id": "PL5260250995"}


def documents(admin_engine, invoice_id) -> dict[str, dict]:
    rows = owner_query(admin_engine, "select * from documents where invoice_id = :i", i=invoice_id)
    return {r["kind"]: r for r in rows}


def vat_of(content) -> tuple[str, str]:
    """The VAT amount and rate a UBL states."""
    root = ET.fromstring(bytes(content))
    return (
        root.findtext("cac:TaxTotal/cbc:TaxAmount", namespaces=NS),
        root.findtext("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", namespaces=NS),
    )


def set_vat(admin_engine, world, category: str, bps: int) -> None:
    with admin_engine.begin() as conn:
        conn.execute(
            text("update einvoice_profiles set vat_category = :c, vat_bps = :b where contractor_id = :x"),
            {"c": category, "b": bps, "x": world.contractor_x},
        )


def pending_invoice(act_as, admin_engine, world, amount="1,234.55") -> dict:
    """An invoice of contractor X awaiting a finance step (a policy from $1,000.00), its details at 20% VAT."""
    save_details(admin_engine, world.org_a, None, world.admin.id)
    save_details(admin_engine, world.org_a, world.contractor_x, world.admin.id, **STANDARD)
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id, world.contractor_x_user.id)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", "1,000.00", [StepInput(role="finance")]))
    p = party(world)
    _, (milestone,) = active_engagement(act_as, admin_engine, p, (amount,))
    issued = approve(act_as, admin_engine, p, milestone)
    assert issued["status"] == "pending_approval"
    return issued


def void(act_as, world, inv) -> None:
    session, actor = sign_in(act_as, world.finance, world.org_a)
    approvals.decide_step(session, actor, inv["id"], "reject", "Not this month.")


def test_a_credit_note_cancels_the_e_invoice_as_issued_whatever_the_details_say_since(
    act_as, admin_engine, world, database
):
    inv = pending_invoice(act_as, admin_engine, world)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    issued = documents(admin_engine, inv["id"])["einvoice"]
    # 1,234.55 less 10% retainage (123.46) = 1,111.09 paid, VAT included: 925.91 taxable + 185.18 VAT
    assert vat_of(issued["content"]) == ("185.18", "20")
    set_vat(admin_engine, world, "", 0)  # the contractor's details changed since: no VAT category at all
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id)  # and a new agreement, not yet confirmed
    void(act_as, world, inv)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    credit = documents(admin_engine, inv["id"])["credit_note"]
    assert vat_of(credit["content"]) == vat_of(issued["content"])
    assert validate(bytes(credit["content"])) == []
    root = ET.fromstring(bytes(credit["content"]))
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "261"
    assert (
        root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS)
        == (inv["invoice_number"])
    )
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) == "1111.09"
    assert f"Document {credit['transaction_id']}." in root.findtext("cbc:Note", namespaces=NS)


def test_the_e_invoice_states_the_vat_its_pdf_stated_when_it_is_issued_later(act_as, admin_engine, world, database):
    save_details(admin_engine, world.org_a, None, world.admin.id)
    save_details(admin_engine, world.org_a, world.contractor_x, world.admin.id, **STANDARD)
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id)  # not confirmed: no e-invoice yet
    p = party(world)
    _, (milestone,) = active_engagement(act_as, admin_engine, p, ("1,200.00",))
    inv = approve(act_as, admin_engine, p, milestone)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert set(documents(admin_engine, inv["id"])) == {"self_billed_invoice"}
    assert documents(admin_engine, inv["id"])["self_billed_invoice"]["vat_bps"] == 2000
    set_vat(admin_engine, world, "S", 800)
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id, world.contractor_x_user.id)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    einvoices.request_einvoice(session, actor, inv["id"])
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    # 1,200.00 less 10% = 1,080.00 paid, VAT included at the PDF's 20%: 900.00 + 180.00
    assert vat_of(documents(admin_engine, inv["id"])["einvoice"]["content"]) == ("180.00", "20")


def test_an_authorization_voided_before_the_worker_runs_gets_no_self_billed_invoice(
    act_as, admin_engine, world, database
):
    inv = pending_invoice(act_as, admin_engine, world)
    void(act_as, world, inv)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert invoice(admin_engine, inv["id"])["status"] == "void"
    assert documents(admin_engine, inv["id"]) == {}


def test_an_agreement_dated_after_the_invoice_gives_it_no_e_invoice(act_as, admin_engine, world, database):
    save_details(admin_engine, world.org_a, None, world.admin.id)
    save_details(admin_engine, world.org_a, world.contractor_x, world.admin.id, **STANDARD)
    p = party(world)
    _, (milestone,) = active_engagement(act_as, admin_engine, p, ("500.00",))
    inv = approve(act_as, admin_engine, p, milestone)
    date_back(admin_engine, [inv["id"]], 7)  # authorized a week before the agreement of today
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id, world.contractor_x_user.id)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert set(documents(admin_engine, inv["id"])) == {"self_billed_invoice"}
    (problem,) = einvoices.problems_for(sign_in(act_as, world.finance, world.org_a)[0], inv["id"])
    assert "after this invoice" in problem and "art. 224" in problem


def test_an_invoices_document_is_its_own_contractors_and_no_other(act_as, admin_engine, world):
    # Contractors read their own contractor's documents: the database holds a document to its invoice's contractor.
    p = party(world)
    _, (milestone,) = active_engagement(act_as, admin_engine, p, ("500.00",))
    inv = approve(act_as, admin_engine, p, milestone)
    with admin_engine.connect() as conn, pytest.raises(IntegrityError, match="documents_invoice_contractor_fkey"):
        conn.execute(
            text(
                "insert into documents (org_id, kind, invoice_id, transaction_id, title, filename, content, size_bytes,"
                " sha256, contractor_id, engagement_id)"
                " select org_id, 'self_billed_invoice', id, 'TX-00000000000000000001', 'x', 'x.pdf', '%PDF'::bytea, 4,"
                " encode(sha256('%PDF'::bytea), 'hex'), :other, engagement_id from invoices where id = :i"
            ),
            {"i": inv["id"], "other": world.contractor_y},
        )
