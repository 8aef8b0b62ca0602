"""An invoice's documents on its page (issue 21, items 2, 3 and 5): the self-billed invoice (PDF), its e-invoice (UBL)
and, once voided after issue, its credit note, issued by the real worker and listed for finance, admins and the
invoice's own contractor, who download them as stored; what stops the e-invoice, in words, with links to fix it; and
finance's "Issue the e-invoice" once it is fixed. Owners see none of it; another contractor gets a 404."""

from __future__ import annotations

import re

import pytest
from kit.einvoicing import agree, ready_for_einvoicing, save_details
from kit.jobs import run_jobs
from kit.money_pages import approved_engagement
from kit.peppol import validate
from kit.web import post, signed_in, visible_text
from sqlalchemy import text

ONE_ROW = (("Design", "Floor plans", "1,234.55", "2030-01-15"),)


def documents_of(admin_engine, invoice_id) -> dict[str, dict]:
    with admin_engine.connect() as conn:
        rows = conn.execute(text("select * from documents where invoice_id = :i"), {"i": invoice_id}).mappings()
        return {r["kind"]: dict(r) for r in rows}


def section(html: str) -> str:
    match = re.search(r'<section id="documents".*?</section>', html, re.DOTALL)
    return match.group(0) if match else ""


@pytest.fixture
def issued(app_sessions, admin_engine, world, database) -> dict:
    """An approved invoice of contractor X whose self-billed invoice and e-invoice the worker issued."""
    ready_for_einvoicing(admin_engine, world)
    _, (invoice_id,) = approved_engagement(app_sessions, admin_engine, world, title="Kitchen renovation", rows=ONE_ROW)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    return {"id": invoice_id, **documents_of(admin_engine, invoice_id)}


@pytest.mark.parametrize("who", ["finance", "admin", "contractor_x_user"])
def test_finance_admins_and_its_contractor_see_and_download_the_self_billed_invoice_and_its_e_invoice(
    app, login, world, issued, who
):
    client = signed_in(app, login, getattr(world, who))
    said = section(client.get(f"/invoices/{issued['id']}").get_data(as_text=True))
    assert "Self-billed invoice (PDF)" in said and "E-invoice (UBL, Peppol BIS Self-Billing 3.0)" in said
    assert issued["einvoice"]["transaction_id"] in said
    response = client.get(f"/documents/{issued['einvoice']['id']}/download")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.data == bytes(issued["einvoice"]["content"])
    assert validate(response.data) == []
    pdf = client.get(f"/documents/{issued['self_billed_invoice']['id']}/download")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert 'filename="self-billed-invoice-' in pdf.headers["Content-Disposition"]


def test_another_contractor_gets_a_404_for_the_documents_and_owners_see_no_section(app, login, world, issued):
    other = signed_in(app, login, world.contractor_y_user)
    assert other.get(f"/documents/{issued['einvoice']['id']}/download").status_code == 404
    owner = signed_in(app, login, world.owner)
    assert section(owner.get(f"/invoices/{issued['id']}").get_data(as_text=True)) == ""
    assert owner.get(f"/documents/{issued['einvoice']['id']}/download").status_code == 404


def test_finance_is_told_what_stops_the_e_invoice_and_where_to_fix_it(
    app, app_sessions, admin_engine, login, world, database
):
    save_details(admin_engine, world.org_a, None, world.admin.id, endpoint_id="", endpoint_scheme="")
    _, (invoice_id,) = approved_engagement(app_sessions, admin_engine, world, title="Garden wall", rows=ONE_ROW)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert set(documents_of(admin_engine, invoice_id)) == {"self_billed_invoice"}  # the PDF, and no e-invoice
    said = visible_text(section(signed_in(app, login, world.finance).get(f"/invoices/{invoice_id}").get_data(True)))
    assert "No e-invoice yet." in said
    assert (
        "Missing Peppol endpoint (scheme and id) in the organization's e-invoicing details (Settings → E-invoicing)."
        in said
    )
    assert f"No e-invoicing details yet: add Contractor X {world.suffix}'s e-invoicing details." in said
    assert f"No self-billing agreement with Contractor X {world.suffix}" in said
    assert "Issue the e-invoice" not in said
    client = signed_in(app, login, world.finance)
    refused = post(client, f"/invoices/{invoice_id}/einvoice", {}, token_from=f"/invoices/{invoice_id}")
    assert refused.status_code == 409


def test_once_fixed_finance_has_the_e_invoice_issued_and_the_worker_issues_it(
    app, app_sessions, admin_engine, login, world, database
):
    _, (invoice_id,) = approved_engagement(app_sessions, admin_engine, world, title="Garden wall", rows=ONE_ROW)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    save_details(admin_engine, world.org_a, None, world.admin.id)
    save_details(admin_engine, world.org_a, world.contractor_x, world.admin.id)
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id, world.contractor_x_user.id)
    client = signed_in(app, login, world.finance)
    page = client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert "Nothing stops the e-invoice any more." in visible_text(section(page))
    response = post(client, f"/invoices/{invoice_id}/einvoice", {}, token_from=f"/invoices/{invoice_id}")
    assert response.status_code == 303
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert set(documents_of(admin_engine, invoice_id)) == {"self_billed_invoice", "einvoice"}
    assert validate(bytes(documents_of(admin_engine, invoice_id)["einvoice"]["content"])) == []


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_only_finance_and_admins_may_ask_for_an_e_invoice(app, login, world, issued, who):
    client = signed_in(app, login, getattr(world, who))
    response = post(client, f"/invoices/{issued['id']}/einvoice", {}, token_from=f"/invoices/{issued['id']}")
    assert response.status_code == 403
