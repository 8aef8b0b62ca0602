"""Remittance advice (issue 17, item 7; DESIGN.md section 6): after a payment run, on any rail, each contractor paid
hears once, every invoice paid to it listed, and gets a PDF of the same in the data room.

A payment run is what one act of paying recorded (``payments.run_id``): one manual payment, one AP batch's payments,
one remittance file, one Stripe run (its payout attempts share the run's id). Whatever records a run calls
``announce_run`` once, in the run's own transaction: the run's notice (``payment.run``, built by
services/notification_events) and, per contractor paid, the ``issue_remittance_advice`` job. A Stripe run is
announced when its last attempt ends (services/stripe_transfers._run_step), with what Stripe paid.

The advice is rendered like a receipt (xhtml2pdf, services/receipts), stored once per (run, contractor) in
``documents`` (a unique index backs the job's check) with its sha256 and the audit chain head it was issued at, and
its hash is audited. Finance, admins and the contractor's own users may download it (sql/data_room.sql).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.invoices import PAID_BY
from backoffice.errors import NotFound
from backoffice.jobs import queue
from backoffice.models import Contractor, Document, Engagement, Invoice, Organization, Payment
from backoffice.queries.notifications import remittance_advice
from backoffice.services import audit
from backoffice.services.data_room import file_document, html_to_pdf, new_transaction_id

RUN_EVENT = "payment.run"

_documents = Environment(
    loader=PackageLoader("backoffice", "templates/documents"), autoescape=select_autoescape(["html"])
)


def announce_run(session: Session, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """Queue, in the caller's transaction, the run's one notice and each paid contractor's remittance advice. Call
    it once per run, after its payments are written (a second call queues jobs that find their work done)."""
    contractors = session.execute(
        select(Payment.contractor_id)
        .where(Payment.org_id == org_id, Payment.run_id == run_id, Payment.reversed_at.is_(None))
        .distinct()
        .order_by(Payment.contractor_id)
    ).scalars()
    queue.notify(session, org_id, RUN_EVENT, run_id)
    for contractor_id in contractors:
        queue.issue_remittance_advice(session, org_id, run_id, contractor_id)


# ---------------------------------------------------------------------------------------------
# What a run paid, per contractor: the notice's and the advice's one source.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidLine:
    """One invoice a run paid: its amounts as authorized, and its payment's date, reference and method."""

    invoice_id: uuid.UUID
    invoice_number: str
    description: str
    engagement_id: uuid.UUID
    engagement_title: str
    owner_user_id: uuid.UUID
    currency: str
    gross_minor: int
    retainage_minor: int
    net_minor: int
    paid_at: date
    reference: str
    method: str


@dataclass(frozen=True)
class Remittance:
    """What one payment run paid one contractor, in invoice-number order (``contractor_id`` None: lines of several
    contractors, an engagement owner's view of the run)."""

    run_id: uuid.UUID
    contractor_id: uuid.UUID | None
    lines: tuple[PaidLine, ...]

    @property
    def paid_on(self) -> tuple[date, date]:
        """The first and last payment dates (one date but for a remittance file or a Stripe run across midnight)."""
        days = [line.paid_at for line in self.lines]
        return min(days), max(days)

    @property
    def reference(self) -> str | None:
        """The run's one reference; None when its payments have their own (a remittance file, Stripe's transfers)."""
        references = {line.reference for line in self.lines}
        return references.pop() if len(references) == 1 else None

    @property
    def paid_by(self) -> str:
        """The rail, in words: "ACH / bank transfer", "Stripe transfer" ..."""
        return ", ".join(dict.fromkeys(PAID_BY.get(line.method, line.method) for line in self.lines))

    def totals(self) -> dict[str, tuple[int, int, int]]:
        """Per currency: (gross, retainage withheld, net paid)."""
        out: dict[str, tuple[int, int, int]] = {}
        for line in self.lines:
            gross, retainage, net = out.get(line.currency, (0, 0, 0))
            out[line.currency] = (gross + line.gross_minor, retainage + line.retainage_minor, net + line.net_minor)
        return dict(sorted(out.items()))


def remittances(session: Session, run_id: uuid.UUID, contractor_id: uuid.UUID | None = None) -> list[Remittance]:
    """What the run paid each contractor (only ``contractor_id``, when named), as RLS lets the caller see it. Only
    payments that stand count: one a rail reversed was not paid."""
    query = (
        select(
            Payment.contractor_id,
            Invoice.id.label("invoice_id"),
            Invoice.invoice_number,
            Invoice.description,
            Invoice.engagement_id,
            Engagement.title.label("engagement_title"),
            Engagement.owner_user_id,
            Invoice.currency,
            Invoice.gross_minor,
            Invoice.retainage_minor,
            Invoice.net_minor,
            Payment.paid_at,
            Payment.reference,
            Payment.method,
        )
        .join(Invoice, (Invoice.org_id == Payment.org_id) & (Invoice.id == Payment.invoice_id))
        .join(Engagement, (Engagement.org_id == Invoice.org_id) & (Engagement.id == Invoice.engagement_id))
        .where(Payment.run_id == run_id, Payment.reversed_at.is_(None))
        .order_by(Payment.contractor_id, Invoice.number)
    )
    if contractor_id is not None:
        query = query.where(Payment.contractor_id == contractor_id)
    by_contractor: dict[uuid.UUID, list[PaidLine]] = {}
    for row in session.execute(query).mappings():
        values = dict(row)
        by_contractor.setdefault(values.pop("contractor_id"), []).append(PaidLine(**values))
    return [Remittance(run_id, c, tuple(lines)) for c, lines in by_contractor.items()]


# ---------------------------------------------------------------------------------------------
# The PDF, issued by the worker (the issue_remittance_advice job).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdviceData:
    org_name: str
    locale: str
    contractor_name: str
    contractor_email: str
    contractor_vendor_id: str | None
    remittance: Remittance

    def money(self, minor: int, currency: str) -> str:
        # The fullwidth yen of CLDR's Japanese locale is not in the font; the ordinary yen sign reads the same.
        return formatting.money(minor, currency, self.locale).replace("\uffe5", "\u00a5")

    def day(self, value: date) -> str:
        return formatting.day(value, self.locale)

    @property
    def paid_on(self) -> str:
        first, last = self.remittance.paid_on
        return self.day(first) if first == last else f"{self.day(first)} to {self.day(last)}"


def advice_data(session: Session, org_id: uuid.UUID, remittance: Remittance) -> AdviceData:
    org = session.execute(select(Organization.name, Organization.locale).where(Organization.id == org_id)).one()
    # The payee's name, email and vendor id, never its payout details: the worker role may not read them.
    contractor = session.execute(
        select(Contractor.legal_name, Contractor.email, Contractor.ap_vendor_id).where(
            Contractor.id == remittance.contractor_id
        )
    ).one()
    return AdviceData(
        org.name, org.locale, contractor.legal_name, contractor.email, contractor.ap_vendor_id, remittance
    )


def render_pdf(data: AdviceData, *, issued_at: datetime, transaction_id: str, audit_head: audit.ChainHead) -> bytes:
    html = _documents.get_template("remittance_advice.html").render(
        a=data,
        r=data.remittance,
        issued_at=formatting.moment(issued_at, data.locale),
        transaction_id=transaction_id,
        audit_head=audit_head,
    )
    return html_to_pdf(html, "the remittance advice")


def filename_for(remittance: Remittance) -> str:
    return f"remittance-advice-{remittance.paid_on[0]:%Y-%m-%d}-{str(remittance.run_id)[:8]}.pdf"


def title_for(data: AdviceData) -> str:
    r = data.remittance
    paid = ", ".join(data.money(net, currency) for currency, (_, _, net) in r.totals().items())
    return f"Remittance advice {data.paid_on} — {formatting.count(len(r.lines), 'invoice')}, {paid}"[:300]


def issue_remittance_advice(session: Session, actor: Actor, run_id, contractor_id) -> Document | None:
    """Render and store what the run paid the contractor, and audit its hash; commit. Returns None, writing nothing,
    when the advice exists already (it is never regenerated). NotFound when the run paid the contractor nothing
    (here: not this organization's run, or every payment of it reversed before the job ran)."""
    run_id, contractor_id = uuid.UUID(str(run_id)), uuid.UUID(str(contractor_id))
    with unit_of_work(session):
        if remittance_advice(session, run_id, contractor_id) is not None:
            return None
        found = remittances(session, run_id, contractor_id)
        if not found:
            raise NotFound()
        data = advice_data(session, actor.org_id, found[0])
        issued_at = session.execute(text("select now()")).scalar_one()  # the database's clock, as stored below
        transaction_id = new_transaction_id()
        head = audit.current_head(session, actor.org_id)
        pdf = render_pdf(data, issued_at=issued_at, transaction_id=transaction_id, audit_head=head)
        document_id = file_document(
            session,
            actor,
            pdf,
            head=head,
            issued_at=issued_at,
            transaction_id=transaction_id,
            audited=("document.remittance_advice_issued", "payment_run", run_id),
            facts={
                "contractor_id": str(contractor_id),
                "invoices": [line.invoice_number for line in data.remittance.lines],
                "net_minor": {currency: net for currency, (_, _, net) in data.remittance.totals().items()},
            },
            org_id=actor.org_id,
            kind="remittance_advice",
            run_id=run_id,
            contractor_id=contractor_id,
            title=title_for(data),
            filename=filename_for(data.remittance),
        )
        if document_id is None:  # another job stored it first, between our check and our insert
            return None
    return session.get(Document, document_id)
