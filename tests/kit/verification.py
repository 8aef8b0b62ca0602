"""Documents to verify (services/verification), issued the way the app issues them: a self-billed invoice's PDF
rendered and stored by services/receipts as the organization's worker, and a UBL-like e-invoice filed through
data_room.file_document with the chain head and the audit event every document gets. Read back as the owner role."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text

from backoffice.db import unit_of_work
from backoffice.services import audit, data_room, receipts
from backoffice.services.notifications import worker_actor
from kit.engagements import owner_query
from kit.money import approved_invoices, party


@dataclass(frozen=True)
class Issued:
    invoice: dict
    pdf: dict  # the documents row of the self-billed invoice (content as bytes)
    xml: dict  # the documents row of the e-invoice


def document(admin_engine, document_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from documents where id = :d", d=document_id)
    return {**row, "content": bytes(row["content"])}


def recorded_at(admin_engine, doc: dict) -> int:
    """The seq of the event that recorded the document's sha256."""
    (row,) = owner_query(
        admin_engine,
        "select seq from audit_events where org_id = :o and data ->> 'document_id' = :d and data ->> 'sha256' = :s",
        o=doc["org_id"],
        d=str(doc["id"]),
        s=doc["sha256"],
    )
    return row["seq"]


def ubl_like(transaction_id: str, invoice_number: str) -> bytes:
    """An e-invoice's shape as far as verification cares: XML naming its document id in its first note."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"'
        ' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
        f"  <cbc:ID>{invoice_number}</cbc:ID>\n"
        f"  <cbc:Note>Document {transaction_id}. Łódź Dachdecker GmbH bills roof work.</cbc:Note>\n"
        "</Invoice>\n"
    ).encode()


def file_einvoice(session, org_id, invoice: dict):
    """File a UBL-like e-invoice for ``invoice`` as the organization's worker (a worker-role session): its id."""
    with unit_of_work(session):
        head = audit.current_head(session, org_id)
        transaction_id = data_room.new_transaction_id()
        document_id = data_room.file_document(
            session,
            worker_actor(org_id),
            ubl_like(transaction_id, invoice["invoice_number"]),
            head=head,
            issued_at=session.execute(text("select now()")).scalar_one(),
            transaction_id=transaction_id,
            audited=("document.issued", "invoice", invoice["id"]),
            facts={"kind": "einvoice", "invoice_number": invoice["invoice_number"]},
            org_id=org_id,
            kind="einvoice",
            invoice_id=invoice["id"],
            title=f"E-invoice {invoice['invoice_number']} (UBL) — {invoice['description']}",
            filename=f"einvoice-{invoice['invoice_number']}.xml",
            content_type="application/xml",
            contractor_id=invoice["contractor_id"],
            engagement_id=invoice["engagement_id"],
        )
    assert document_id is not None, "the invoice has an e-invoice already"
    return document_id


def issue_documents(act_as, as_worker, admin_engine, world) -> Issued:
    """One approved milestone of contractor X in org A, its self-billed invoice issued (PDF) and an e-invoice filed."""
    _, (invoice,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",))
    pdf = receipts.issue_receipt(as_worker(world.org_a), worker_actor(world.org_a), invoice["id"])
    assert pdf is not None
    xml_id = file_einvoice(as_worker(world.org_a), world.org_a, invoice)
    return Issued(invoice, document(admin_engine, pdf.id), document(admin_engine, xml_id))


def one_byte_changed(content: bytes) -> bytes:
    """The same bytes with one changed, a third of the way in and outside every document id: a copy someone edited."""
    ids = [m.span() for m in re.finditer(rb"TX-[0-9A-F]{20}", content)]
    at = len(content) // 3
    while any(start - 1 <= at <= end for start, end in ids):
        at += 1
    return content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1 :]
