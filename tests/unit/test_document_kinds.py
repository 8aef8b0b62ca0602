"""The data room's kinds of document, named as a reader knows them (domain/documents.py), and how a verdict of
`backoffice verify` names one document (services/verification.IssuedDocument)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backoffice.domain.documents import DocumentKind
from backoffice.services.verification import IssuedDocument, shown_name


def test_every_kind_the_database_allows_has_its_words():
    # The kinds of documents_kind_check (revision 0031), written out.
    assert {k.value: k.label for k in DocumentKind} == {
        "self_billed_invoice": "Self-billed invoice",
        "einvoice": "E-invoice (UBL)",
        "credit_note": "Credit note (UBL)",
        "remittance_advice": "Remittance advice",
    }


def document(kind: str, invoice_number: str | None, issued_at=datetime(2026, 12, 5, 14, 3, 59, tzinfo=UTC)):
    return IssuedDocument(
        id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        org_name="Acme",
        kind=kind,
        title="Payment run of 5 Dec 2026",
        filename="x",
        transaction_id="TX-0123456789ABCDEF0123",
        invoice_number=invoice_number,
        issued_at=issued_at,
        sha256="0" * 64,
        audit_head_seq=1,
        audit_head_hash="0" * 64,
    )


@pytest.mark.parametrize(
    ("kind", "number", "name"),
    [
        ("self_billed_invoice", "ACME-000001", "Self-billed invoice ACME-000001"),
        ("einvoice", "ACME-000001", "E-invoice (UBL) ACME-000001"),
        ("credit_note", "ACME-000001", "Credit note (UBL) crediting ACME-000001"),
        ("remittance_advice", None, "Remittance advice “Payment run of 5 Dec 2026”"),
    ],
)
def test_a_verdict_names_a_document_by_its_kind_and_invoice_or_title(kind, number, name):
    assert document(kind, number).name == name


def test_a_verdict_writes_the_issue_moment_in_utc_to_the_minute_whatever_the_zone_it_was_read_in():
    berlin = timezone(timedelta(hours=1))
    assert (
        document("einvoice", "A-1", datetime(2026, 12, 5, 15, 3, 59, tzinfo=berlin)).issued_on == "2026-12-05 14:03 UTC"
    )


@pytest.mark.parametrize(
    ("uploaded", "shown"),
    [
        ("self-billed-invoice-ACME-000001.pdf", "self-billed-invoice-ACME-000001.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override would show it as "invoiceexe.pdf"
        ("a\x00b\r\n.xml", "ab.xml"),
        ("\x00\u200b", "the file"),
        ("x" * 300, "x" * 200),
    ],
)
def test_a_verdict_shows_the_files_name_without_hidden_characters(uploaded, shown):
    assert shown_name(uploaded) == shown
