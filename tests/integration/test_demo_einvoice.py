"""The demo's e-invoicing (issue 21, done-when; services/demo_einvoicing): the demo's first authorized invoice makes a
UBL e-invoice that the official Peppol BIS Self-Billing 3.0 and CEN EN 16931 rules accept with zero errors, as the
worker would issue it (its facts read as Acme's worker); Bluebird, which has no self-billing agreement, gets none and
its invoice says why. Nothing is written: the demo database is shared with other tests."""

from __future__ import annotations

from kit.peppol import validate
from sqlalchemy import text

from backoffice.services import audit, einvoices


def _first_authorized(admin_engine, org_id, contractor: str) -> dict:
    with admin_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "select i.id, i.invoice_number, i.net_minor from invoices i"
                    " join contractors c on c.id = i.contractor_id and c.org_id = i.org_id"
                    " where i.org_id = :org and c.legal_name = :name and i.status <> 'void' order by i.number limit 1"
                ),
                {"org": org_id, "name": contractor},
            )
            .one()
            ._mapping
        )


def test_the_demos_first_authorized_invoice_makes_an_e_invoice_the_official_rules_accept(
    admin_engine, demo_data, as_worker
):
    invoice = _first_authorized(admin_engine, demo_data.acme, "Northwind Design Ltd")
    session = as_worker(demo_data.acme)
    facts = einvoices.facts_of(session, invoice["id"])
    assert einvoices.einvoice_problems(facts) == []
    head = audit.current_head(session, demo_data.acme)
    xml = einvoices.ubl.render(einvoices.build(facts, document_id="TX-0123456789ABCDEF0123", head=head))
    assert validate(xml) == []
    assert f"<cbc:ID>{invoice['invoice_number']}</cbc:ID>".encode() in xml
    assert b"<cbc:InvoiceTypeCode>389</cbc:InvoiceTypeCode>" in xml
    assert b"Document TX-0123456789ABCDEF0123" in xml and head.line.encode() in xml


def test_an_invoice_of_a_contractor_without_a_self_billing_agreement_says_what_stops_its_e_invoice(
    admin_engine, demo_data, as_worker
):
    invoice = _first_authorized(admin_engine, demo_data.acme, "Bluebird Electrical LLC")
    problems = einvoices.problems_for(as_worker(demo_data.acme), invoice["id"])
    assert any("No self-billing agreement with Bluebird Electrical LLC" in p for p in problems)
    assert any("Peppol endpoint" in p for p in problems)
