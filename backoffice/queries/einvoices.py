"""An invoice's documents in the data room (issue 21): its self-billed invoice (PDF), its e-invoice (UBL) and its
credit note, as the reader's policies let them be seen (finance, admins and the invoice's contractor)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from backoffice.models import Document

KIND_WORDS = {
    "self_billed_invoice": "Self-billed invoice (PDF)",
    "einvoice": "E-invoice (UBL, Peppol BIS Self-Billing 3.0)",
    "credit_note": "Credit note (UBL)",
    "remittance_advice": "Remittance advice (PDF)",
}


@dataclass(frozen=True)
class InvoiceDocuments:
    pdf: Document | None
    einvoice: Document | None
    credit_note: Document | None

    @property
    def issued(self) -> list[tuple[str, Document]]:
        """The documents issued, with their names in words, in the order they were issued."""
        found = [
            (KIND_WORDS[k], d)
            for k, d in (
                ("self_billed_invoice", self.pdf),
                ("einvoice", self.einvoice),
                ("credit_note", self.credit_note),
            )
            if d is not None
        ]
        return found


def invoice_documents(session: Session, invoice_id: uuid.UUID) -> InvoiceDocuments:
    rows = {
        d.kind: d
        for d in session.execute(
            select(Document).options(defer(Document.content)).where(Document.invoice_id == invoice_id)
        ).scalars()
    }
    return InvoiceDocuments(rows.get("self_billed_invoice"), rows.get("einvoice"), rows.get("credit_note"))
