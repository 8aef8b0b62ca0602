"""Self-billed e-invoices (DESIGN.md section 7b; issue 21): every payment authorization's UBL 2.1 invoice per Peppol
BIS Self-Billing 3.0, and the UBL credit note (type 261) when the authorization is voided after its e-invoice was
issued. Each is stored once in the data room with its sha256, audited, and carries its document id and the
organization's audit chain head at issue, as the PDF self-billed invoice does (services/receipts).

The worker issues them with the PDF (``issue_invoice_documents``, the ``issue_receipt`` job): after the
authorization commits, and again when an approval step voids it. An e-invoice is issued only when nothing stands in
its way (``einvoice_problems``: both parties' e-invoicing details, the contractor's VAT category, a self-billing
agreement the contractor confirmed, amounts EN 16931 can write); until then the invoice's page says what is missing
and finance can issue it once it is fixed. Its figures are the PDF's (domain.einvoice.totals of the same items).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import einvoice as rules
from backoffice.domain.einvoice import Party
from backoffice.errors import Conflict, NotFound
from backoffice.jobs import queue
from backoffice.models import Document, Invoice, Organization
from backoffice.queries.notifications import receipt_of
from backoffice.services import audit, data_room, receipts, ubl
from backoffice.services import einvoice_profiles as profiles
from backoffice.services.einvoice_profiles import ORG_DETAILS

_AGREEMENT = text(
    """
    select agreed_on, confirmed_at from self_billing_agreements
     where org_id = :org and contractor_id = :contractor
     order by recorded_at desc, id desc limit 1
    """
)


@dataclass(frozen=True)
class InvoiceKeys:
    """The invoice's row as the e-invoice needs it (plain values: facts outlive their transaction)."""

    id: uuid.UUID
    org_id: uuid.UUID
    contractor_id: uuid.UUID
    engagement_id: uuid.UUID
    status: str
    issued_on: date
    voided_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Facts:
    """What an invoice's e-invoice is made of, read once."""

    invoice: InvoiceKeys
    data: receipts.ReceiptData
    buyer: Party | None
    seller: Party | None
    vat_category: str
    vat_bps: int
    agreed_on: date | None  # the self-billing agreement in force, if its contractor confirmed it
    agreement_recorded: bool

    @property
    def seller_details(self) -> str:
        return f"{self.data.contractor_name}'s e-invoicing details"


def facts_of(session: Session, invoice_id) -> Facts:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound()
    data = receipts.receipt_data(session, invoice.id)
    seller_profile = profiles.profile_of(session, invoice.contractor_id, org_id=invoice.org_id)
    seller = profiles.party_of(seller_profile)
    vat = (seller_profile.vat_category, seller_profile.vat_bps) if seller_profile else ("", 0)
    pdf = receipt_of(session, invoice.id)
    if pdf is not None and pdf.vat_category:
        # The self-billed invoice stated its VAT when it was issued: its e-invoice states the same, whatever the
        # contractor's details say since (a PDF that stated none leaves it to the details).
        vat = (pdf.vat_category, pdf.vat_bps)
    agreement = session.execute(_AGREEMENT, {"org": invoice.org_id, "contractor": invoice.contractor_id}).one_or_none()
    keys = InvoiceKeys(
        invoice.id,
        invoice.org_id,
        invoice.contractor_id,
        invoice.engagement_id,
        invoice.status,
        invoice.issued_on,
        invoice.voided_at,
        invoice.updated_at,
    )
    return Facts(
        keys,
        data,
        profiles.party_of(profiles.profile_of(session, None, org_id=invoice.org_id)),
        dataclasses.replace(seller, email=data.contractor_email) if seller else None,
        *vat,
        agreement.agreed_on if agreement and agreement.confirmed_at else None,
        agreement is not None,
    )


def einvoice_problems(facts: Facts) -> list[str]:
    """What stands between the invoice and its e-invoice, each in words that say what to fix and where; empty when
    it can be issued."""
    found = rules.party_problems(facts.buyer, ORG_DETAILS) + rules.party_problems(facts.seller, facts.seller_details)
    if facts.buyer and facts.seller:
        found += rules.vat_problems(
            facts.seller, facts.buyer, facts.vat_category, facts.vat_bps, facts.seller_details, ORG_DETAILS
        )
    if not facts.agreement_recorded:
        found.append(
            f"No self-billing agreement with {facts.data.contractor_name}: an admin records one on the contractor's"
            " page, and the contractor confirms it."
        )
    elif facts.agreed_on is None:
        found.append(f"{facts.data.contractor_name} has not confirmed the self-billing agreement yet.")
    elif facts.agreed_on > facts.invoice.issued_on:
        found.append(
            f"The self-billing agreement with {facts.data.contractor_name} dates from {facts.agreed_on.isoformat()},"
            f" after this invoice ({facts.invoice.issued_on.isoformat()}): self-billing needs the agreement first"
            " (EU VAT Directive art. 224), so this authorization keeps its PDF and gets no e-invoice."
        )
    items = receipts.items_of(facts.data)
    decimals = rules.decimals_problem(
        facts.data.currency, [i.amount_minor for i in items] + [facts.data.retainage_minor]
    )
    if decimals:
        found.append(decimals)
    return found


def build(facts: Facts, *, document_id: str, head: audit.ChainHead) -> ubl.EInvoice:
    """The e-invoice of ``facts``, carrying its document id and the audit chain head at issue in its note."""
    data = facts.data
    totals = rules.totals(
        receipts.items_of(data), data.retainage_minor, facts.vat_category, facts.vat_bps, data.currency
    )
    note = (
        f"Self-billing: {data.org_name} issues this self-billed invoice on behalf of {data.contractor_name} under"
        f" their self-billing agreement of {facts.agreed_on.isoformat()}. Document {document_id}. Audit chain head"
        f" at issue: {head.line}."
    )
    if data.retainage_minor:
        terms = (
            f"Due {data.due_date.isoformat()}. Retainage of {data.bps(data.retainage_bps)}% is withheld and invoiced"
            " when released."
        )
    else:
        terms = f"Due {data.due_date.isoformat()}."
    return ubl.EInvoice(
        number=data.invoice_number,
        issue_date=facts.invoice.issued_on,
        due_date=data.due_date,
        currency=data.currency,
        buyer_reference=(data.sow_reference or data.engagement_title)[:200],
        note=note,
        seller=facts.seller,
        buyer=facts.buyer,
        category=facts.vat_category,
        vat_bps=facts.vat_bps,
        totals=totals,
        payment_terms=terms,
    )


def _file_ubl(session: Session, actor: Actor, invoice, kind: str, number: str, render, **facts) -> uuid.UUID | None:
    """File one UBL document of ``invoice`` (an e-invoice or its credit note) in the data room, audited:
    ``render(document_id, head, issued_at)`` makes its bytes, which state its id and the chain head at issue."""
    issued_at = session.execute(text("select now()")).scalar_one()
    transaction_id = data_room.new_transaction_id()
    head = audit.current_head(session, invoice.org_id)
    words, stem = {"einvoice": ("E-invoice", "einvoice"), "credit_note": ("Credit note", "credit-note")}[kind]
    return data_room.file_document(
        session,
        actor,
        render(transaction_id, head, issued_at),
        head=head,
        issued_at=issued_at,
        transaction_id=transaction_id,
        audited=("document.issued", "invoice", invoice.id),
        facts={"kind": kind, "invoice_number": number, **facts},
        org_id=invoice.org_id,
        kind=kind,
        invoice_id=invoice.id,
        title=f"{words} {number} (UBL) — {invoice.description}"[:300],
        filename=f"{stem}-{number}.xml",
        content_type="application/xml",
        contractor_id=invoice.contractor_id,
        engagement_id=invoice.engagement_id,
    )


def _issue(session: Session, actor: Actor, facts: Facts) -> uuid.UUID | None:
    return _file_ubl(
        session,
        actor,
        session.get(Invoice, facts.invoice.id),
        "einvoice",
        facts.data.invoice_number,
        lambda document_id, head, _issued_at: ubl.render(build(facts, document_id=document_id, head=head)),
    )


def _lock(session: Session, invoice_id) -> None:
    """One documents job per invoice at a time (a worker may run several jobs at once): an e-invoice committed by one
    job is seen by the credit-note check of the next, and a void seen by one is seen by the other."""
    session.execute(
        text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"invoice-documents:{invoice_id}"}
    )


def issue_einvoice(session: Session, actor: Actor, invoice_id) -> Document | None:
    """Issue the invoice's e-invoice if it has none and nothing stands in its way; commit. None when it has one, or
    when it is void (a voided authorization gets none after the fact). Conflict, naming what is missing, when its
    problems stop it."""
    with unit_of_work(session):
        _lock(session, invoice_id)
        if receipt_of(session, invoice_id, "einvoice") is not None:
            return None
        facts = facts_of(session, invoice_id)
        if facts.invoice.status == "void":
            return None
        problems = einvoice_problems(facts)
        document_id = None if problems else _issue(session, actor, facts)
    # Refused after the transaction (which wrote nothing) ended normally: raised inside it, its rollback would expire
    # every object of the session, the PDF issue_invoice_documents issued just before included, which its job then
    # reads after the session is closed (DetachedInstanceError, and the job retried).
    if problems:
        raise Conflict("The e-invoice cannot be issued yet: " + " ".join(problems))
    return session.get(Document, document_id) if document_id else None


def issue_credit_note(session: Session, actor: Actor, invoice_id) -> Document | None:
    """Credit a void invoice's e-invoice in full, once; commit. None when there is nothing to credit (no e-invoice
    was issued, or the invoice is not void) or it is credited already. The credit note is made from the stored
    e-invoice itself (services/ubl.credit_note_of): its parties, VAT and figures are the ones it cancels, whatever
    the details or the agreement say since."""
    with unit_of_work(session):
        _lock(session, invoice_id)
        invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            raise NotFound()
        stored = receipt_of(session, invoice_id, "einvoice")
        if invoice.status != "void" or stored is None or receipt_of(session, invoice_id, "credit_note") is not None:
            return None
        org_name = session.execute(select(Organization.name).where(Organization.id == invoice.org_id)).scalar_one()
        number = rules.credit_note_number(invoice.invoice_number)
        document_id = _file_ubl(
            session,
            actor,
            invoice,
            "credit_note",
            number,
            lambda document_id, head, issued_at: ubl.credit_note_of(
                stored.content,
                number=number,
                issue_date=(invoice.voided_at or issued_at).date(),
                note=(
                    f"Self-billing: {org_name} issues this self-billed credit note, cancelling self-billed invoice"
                    f" {invoice.invoice_number} in full. Document {document_id}. Audit chain head at issue:"
                    f" {head.line}."
                ),
                terms=f"Credits self-billed invoice {invoice.invoice_number} in full: its authorization was voided.",
            ),
            credits=stored.transaction_id,
        )
    return session.get(Document, document_id) if document_id else None


def issue_invoice_documents(session: Session, actor: Actor, invoice_id) -> list[Document]:
    """Everything the invoice should have and lacks, in order: its self-billed invoice (PDF), its e-invoice when
    nothing stands in the way, and its credit note when it was voided after its e-invoice was issued. Each is its
    own transaction; what exists is never issued again."""
    issued = [receipts.issue_receipt(session, actor, invoice_id)]
    with contextlib.suppress(Conflict):  # the invoice's page says what is missing; finance issues it once fixed
        issued.append(issue_einvoice(session, actor, invoice_id))
    issued.append(issue_credit_note(session, actor, invoice_id))
    return [d for d in issued if d is not None]


def problems_for(session: Session, invoice_id) -> list[str]:
    """What stands between the invoice and its e-invoice now (read-only; for its page)."""
    return einvoice_problems(facts_of(session, invoice_id))


def request_einvoice(session: Session, actor: Actor, invoice_id) -> None:
    """Finance asks for an invoice's e-invoice once what stopped it is fixed: the worker issues it (only the worker
    writes documents). Conflict naming what is still missing; nothing queued twice matters (the job issues once)."""
    with unit_of_work(session):
        facts = facts_of(session, invoice_id)
        if facts.invoice.status == "void":
            raise Conflict(f"{facts.data.invoice_number} is void: a voided authorization gets no e-invoice.")
        problems = einvoice_problems(facts)
        if problems:
            raise Conflict("The e-invoice cannot be issued yet: " + " ".join(problems))
        queue.issue_receipt(session, facts.invoice.org_id, facts.invoice.id)
        audit.record(
            session,
            actor,
            "einvoice.requested",
            "invoice",
            facts.invoice.id,
            {"invoice_number": facts.data.invoice_number},
        )
