"""The self-billed invoice's PDF: one per authorized payment, written once into the data room (DESIGN.md sections 6
and 7b). It is the human-readable form of the self-billed invoice the organization issues for its contractor (its
UBL is services/einvoices; both say the same figures); a receipt or remittance advice exists only once paid
(services/remittance_advice). The module keeps the name it had when this PDF was called a receipt.

The worker issues it after the approval (or the retainage release) commits. It is rendered with
xhtml2pdf from ``templates/documents/receipt.html``, stored in ``documents`` with its sha256 (the
database checks the hash against the bytes), and the hash is written to the audit log with the evidence
hashes the approval was based on. It carries the organization's audit chain head when it was issued (in
its text, in the document's row and in its audit event), so a trail later cut short behind it is noticed
by `backoffice audit verify --from-documents` and by whoever kept the PDF. It is never regenerated:
a second job finds it and stops, and the unique index on the invoice backs that up; the table refuses
updates and deletes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import einvoice
from backoffice.domain.invoices import InvoiceKind
from backoffice.domain.percent import format_bps
from backoffice.errors import NotFound
from backoffice.models import (
    Contractor,
    Document,
    Engagement,
    EvidenceFile,
    Invoice,
    InvoiceTask,
    Milestone,
    Organization,
    Review,
    User,
)
from backoffice.queries.notifications import receipt_of
from backoffice.services import audit, data_room

_documents = Environment(
    loader=PackageLoader("backoffice", "templates/documents"), autoescape=select_autoescape(["html"])
)


@dataclass(frozen=True)
class EvidenceLine:
    name: str
    sha256: str
    task: str | None = None  # on a task or final invoice's receipt, the task whose approved submission it is


@dataclass(frozen=True)
class BilledTask:
    """A task a completion or final invoice bills (invoice_tasks), as the receipt lists it."""

    title: str
    deliverable: str | None
    amount_minor: int


@dataclass(frozen=True)
class ReceiptData:
    org_name: str
    locale: str
    contractor_name: str
    contractor_email: str
    contractor_vendor_id: str | None
    engagement_title: str
    sow_reference: str | None
    kind: str  # domain.invoices.InvoiceKind: milestone, retainage_release, advance, completion, final
    milestone_title: str | None
    deliverable: str | None
    invoice_number: str
    description: str
    currency: str
    gross_minor: int
    retainage_bps: int
    retainage_minor: int
    net_minor: int
    fee_bps: int
    fee_minor: int
    total_minor: int
    due_date: object
    approved_at: datetime
    approver: str
    evidence: tuple[EvidenceLine, ...]
    release_reason: str | None
    tasks: tuple[BilledTask, ...] = ()  # a completion or final invoice's tasks, in the engagement's order
    raised_by: str | None = None  # the contractor's user who raised a completion invoice
    # The contractor's VAT category and rate (its e-invoicing details; '' when it has none yet): the PDF shows the
    # e-invoice's VAT figures from them (domain.einvoice.totals), the same the UBL states.
    vat_category: str = ""
    vat_bps: int = 0

    @property
    def vat(self) -> einvoice.Totals | None:
        """The e-invoice's figures of this invoice (None when the contractor has no VAT category yet, or its
        currency's amounts need a third decimal)."""
        items = items_of(self)
        if not self.vat_category or einvoice.decimals_problem(
            self.currency, [i.amount_minor for i in items] + [self.retainage_minor]
        ):
            return None
        return einvoice.totals(items, self.retainage_minor, self.vat_category, self.vat_bps, self.currency)

    @property
    def vat_label(self) -> str:
        category = einvoice.VatCategory(self.vat_category)
        return f"VAT {self.bps(self.vat_bps)}%" if category.charges_vat else f"VAT: {category.label.lower()}"

    def document_money(self, units: int) -> str:
        """An e-invoice figure (domain.einvoice.Totals, in the document's units) in the organization's format."""
        return self.money(units * einvoice.document_scale(self.currency))

    @property
    def kind_label(self) -> str:
        return InvoiceKind(self.kind).label

    @property
    def balance_minor(self) -> int:
        """What a final payment pays beyond its tasks: an advance never paid before (domain.completion.final_amount).
        Zero for every other kind."""
        return self.gross_minor - sum(t.amount_minor for t in self.tasks) if self.tasks else 0

    def money(self, minor: int) -> str:
        # CLDR's Japanese locale writes the fullwidth yen (U+FFE5), which the receipt's font lacks; the
        # ordinary yen sign (U+00A5) reads the same.
        return formatting.money(minor, self.currency, self.locale).replace("\uffe5", "\u00a5")

    def bps(self, value: int) -> str:
        return format_bps(value)


def receipt_data(session: Session, invoice_id: uuid.UUID) -> ReceiptData:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound()
    org = session.get(Organization, invoice.org_id)
    # The payee's name, email and vendor id, never its payout details: the worker role may not read them.
    contractor = session.execute(
        select(Contractor.legal_name, Contractor.email, Contractor.ap_vendor_id).where(
            Contractor.id == invoice.contractor_id
        )
    ).one()
    engagement = session.get(Engagement, invoice.engagement_id)
    milestone = session.get(Milestone, invoice.milestone_id) if invoice.milestone_id else None
    approver = session.execute(select(User.name, User.email).where(User.id == invoice.authorized_by)).one_or_none()
    evidence: tuple[EvidenceLine, ...] = ()
    if invoice.review_id:
        review = session.get(Review, invoice.review_id)
        evidence = _evidence(session, review.submission_id)
    tasks = billed_tasks(session, invoice)
    if tasks:
        evidence = tuple(line for task in tasks for line in _evidence(session, task.submission_id, task.title))
    raiser = session.execute(select(User.name).where(User.id == invoice.raised_by)).scalar_one_or_none()
    vat = session.execute(
        text("select vat_category, vat_bps from einvoice_profiles where org_id = :org and contractor_id = :contractor"),
        {"org": invoice.org_id, "contractor": invoice.contractor_id},
    ).one_or_none()
    return ReceiptData(
        org_name=org.name,
        locale=org.locale,
        contractor_name=contractor.legal_name,
        contractor_email=contractor.email,
        contractor_vendor_id=contractor.ap_vendor_id,
        engagement_title=engagement.title,
        sow_reference=engagement.sow_reference,
        kind=invoice.kind,
        milestone_title=milestone.title if milestone else None,
        deliverable=milestone.deliverable if milestone else None,
        invoice_number=invoice.invoice_number,
        description=invoice.description,
        currency=invoice.currency,
        gross_minor=invoice.gross_minor,
        retainage_bps=invoice.retainage_bps,
        retainage_minor=invoice.retainage_minor,
        net_minor=invoice.net_minor,
        fee_bps=invoice.fee_bps,
        fee_minor=invoice.fee_minor,
        total_minor=invoice.total_minor,
        due_date=invoice.due_date,
        approved_at=invoice.authorized_at,
        approver=f"{approver.name} <{approver.email}>" if approver else "a former member",
        evidence=evidence,
        release_reason=invoice.release_reason,
        tasks=tuple(BilledTask(t.title, t.deliverable, t.amount_minor) for t in tasks),
        raised_by=f"{raiser} ({contractor.legal_name})" if raiser else None,
        vat_category=vat.vat_category if vat else "",
        vat_bps=vat.vat_bps if vat else 0,
    )


def items_of(data: ReceiptData) -> list[einvoice.Item]:
    """What the self-billed invoice bills, VAT included where charged: the milestone, the tasks (and an advance
    never paid before, which a final payment pays), the retainage released, or the advance."""
    if data.tasks:
        items = [einvoice.Item(t.title, t.amount_minor, t.deliverable or "") for t in data.tasks]
        if data.balance_minor:
            items.append(einvoice.Item("Advance not paid before, paid with the final payment", data.balance_minor))
        return items
    name = {
        "milestone": data.milestone_title or data.description,
        "retainage_release": f"Retainage released — {data.engagement_title}",
        "advance": f"Advance — {data.engagement_title}",
    }.get(data.kind, data.description)
    return [einvoice.Item(name[:200], data.gross_minor, (data.deliverable or "") if data.kind == "milestone" else "")]


def _evidence(session: Session, submission_id, task: str | None = None) -> tuple[EvidenceLine, ...]:
    return tuple(
        EvidenceLine(f.file_name, f.sha256, task)
        for f in session.execute(
            select(EvidenceFile).where(EvidenceFile.submission_id == submission_id).order_by(EvidenceFile.position)
        ).scalars()
    )


def billed_tasks(session: Session, invoice: Invoice) -> list:
    """The tasks a completion or final invoice bills, in the engagement's order, each with the submission its
    approval was based on (the last review approving it before the invoice, in full or in the part a split
    approved)."""
    approving = (
        select(Review.submission_id)
        .where(
            Review.milestone_id == Milestone.id,
            Review.reviewed_at <= invoice.authorized_at,
            (Review.decision == "approve") | ((Review.decision == "partial") & (Review.partial_policy == "split")),
        )
        .order_by(Review.reviewed_at.desc(), Review.id.desc())
        .limit(1)
        .correlate(Milestone)
        .scalar_subquery()
    )
    return list(
        session.execute(
            select(Milestone.title, Milestone.deliverable, InvoiceTask.amount_minor, approving.label("submission_id"))
            .join(Milestone, Milestone.id == InvoiceTask.milestone_id)
            .where(InvoiceTask.invoice_id == invoice.id)
            .order_by(Milestone.seq)
        ).all()
    )


def render_pdf(
    data: ReceiptData, *, issued_at: datetime, transaction_id: str, audit_head: audit.ChainHead | None = None
) -> bytes:
    """The receipt as PDF bytes (xhtml2pdf), saying the audit chain head it was issued at. Without a head
    (bench/receipts.py times the render alone) that section is left out; issue_receipt always gives one."""
    html = _documents.get_template("receipt.html").render(
        r=data,
        issued_at=formatting.moment(issued_at, data.locale),
        transaction_id=transaction_id,
        audit_head=audit_head,
        approved_at=formatting.moment(data.approved_at, data.locale),
        due_date=formatting.day(data.due_date, data.locale),
    )
    return data_room.html_to_pdf(html, "the self-billed invoice")


def filename_for(invoice_number: str) -> str:
    return f"self-billed-invoice-{invoice_number}.pdf"


def issue_receipt(session: Session, actor: Actor, invoice_id) -> Document | None:
    """Render and store the invoice's self-billed invoice (PDF), and audit its hash; commit. Returns None, writing
    nothing, when the invoice has it already (it is never regenerated) or is void."""
    with unit_of_work(session):
        if receipt_of(session, invoice_id) is not None:
            return None
        if session.execute(select(Invoice.status).where(Invoice.id == invoice_id)).scalar_one_or_none() == "void":
            # Voided before it was issued (an approval step rejected it first): no self-billed invoice, nothing to
            # credit; its page says it is void.
            return None
        data = receipt_data(session, invoice_id)
        issued_at = session.execute(text("select now()")).scalar_one()  # the database's clock, as stored below
        transaction_id = data_room.new_transaction_id()
        invoice = session.get(Invoice, invoice_id)
        # Any head the trail held is one it must keep holding: no lock, the render does not hold up the
        # organization's other writers. The database refuses a head that is not in the trail.
        head = audit.current_head(session, invoice.org_id)
        pdf = render_pdf(data, issued_at=issued_at, transaction_id=transaction_id, audit_head=head)
        document_id = data_room.file_document(
            session,
            actor,
            pdf,
            head=head,
            issued_at=issued_at,
            transaction_id=transaction_id,
            audited=("document.issued", "invoice", invoice.id),
            facts={
                "kind": "self_billed_invoice",
                "invoice_number": data.invoice_number,
                "evidence": [{"name": e.name, "sha256": e.sha256} for e in data.evidence],
            },
            org_id=invoice.org_id,
            kind="self_billed_invoice",
            vat_category=data.vat_category,
            vat_bps=data.vat_bps,
            invoice_id=invoice.id,
            title=f"Self-billed invoice {data.invoice_number} — {data.description}"[:300],
            filename=filename_for(data.invoice_number),
            contractor_id=invoice.contractor_id,
            engagement_id=invoice.engagement_id,
        )
        if document_id is None:  # another job stored it first, between our check and our insert
            return None
    return session.get(Document, document_id)
