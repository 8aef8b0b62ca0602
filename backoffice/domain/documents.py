"""The kinds of document the data room keeps (documents.kind), named as a reader knows them."""

from __future__ import annotations

from enum import StrEnum


class DocumentKind(StrEnum):
    SELF_BILLED_INVOICE = "self_billed_invoice"  # the PDF made at authorization
    EINVOICE = "einvoice"  # the same invoice as UBL 2.1 (Peppol BIS Self-Billing 3.0)
    CREDIT_NOTE = "credit_note"  # UBL, when an authorization is voided after issue
    REMITTANCE_ADVICE = "remittance_advice"  # what one payment run paid one contractor

    @property
    def label(self) -> str:
        return {
            "self_billed_invoice": "Self-billed invoice",
            "einvoice": "E-invoice (UBL)",
            "credit_note": "Credit note (UBL)",
            "remittance_advice": "Remittance advice",
        }[self.value]
