"""The data room's shelf (DESIGN.md section 6): how a generated document is made and filed once. PDFs are rendered
from templates/documents/ by xhtml2pdf in the vendored fonts; every document (a self-billed invoice's PDF, its UBL
e-invoice and credit note, a remittance advice) is stored with its sha256 and the audit chain head it carries, under
a document id (``TX-`` and 20 hex digits) that it states, and its issue is audited. Only the worker files one."""

from __future__ import annotations

import hashlib
import io
import secrets
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.models import Document
from backoffice.services import audit


def new_transaction_id() -> str:
    return "TX-" + secrets.token_hex(10).upper()


FONTS = Path(__file__).resolve().parent.parent / "static" / "vendor" / "fonts"
_fonts_registered = False


def _register_fonts() -> None:
    """DejaVu Sans (vendored, 2.37) instead of the PDF base fonts, which only know Windows-1252: a payee
    called Łódź or Дмитрий, or an amount in zł or ₹, is written as named. Registered with ReportLab once
    per process, so no render parses the font files again."""
    global _fonts_registered
    if _fonts_registered:
        return
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from xhtml2pdf import default

    for name, file in (
        ("DejaVuSans", "DejaVuSans-2.37.ttf"),
        ("DejaVuSans-Bold", "DejaVuSans-Bold-2.37.ttf"),
        ("DejaVuSansMono", "DejaVuSansMono-2.37.ttf"),
    ):
        pdfmetrics.registerFont(TTFont(name, str(FONTS / file)))
    for bold, italic in ((0, 0), (0, 1), (1, 0), (1, 1)):
        addMapping("DejaVuSans", bold, italic, "DejaVuSans-Bold" if bold else "DejaVuSans")
        addMapping("DejaVuSansMono", bold, italic, "DejaVuSansMono")
    default.DEFAULT_FONT.update({"dejavusans": "DejaVuSans", "dejavusansmono": "DejaVuSansMono"})
    _fonts_registered = True


def html_to_pdf(html: str, what: str) -> bytes:
    """A document of the data room (templates/documents/) as PDF bytes, in the vendored fonts."""
    from xhtml2pdf import pisa  # imported here: the web process never renders PDFs

    _register_fonts()
    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if result.err:
        raise RuntimeError(f"xhtml2pdf could not render {what} ({result.err} error(s))")
    return out.getvalue()


def file_document(
    session: Session,
    actor: Actor,
    pdf: bytes,
    *,
    head,
    issued_at: datetime,
    transaction_id: str,
    audited: tuple[str, str, uuid.UUID],
    facts: dict,
    **columns,
) -> uuid.UUID | None:
    """Store a generated PDF in the data room once (receipts, remittance advices) with the audit chain head it
    carries, and audit its sha256 under ``audited`` (action, entity type, id) with ``facts``. None when another job
    stored it first. In the caller's transaction; the database checks the bytes hash to the sha256 given."""
    digest = hashlib.sha256(pdf).hexdigest()
    document_id = session.execute(
        insert(Document)
        .values(
            transaction_id=transaction_id,
            content=pdf,
            size_bytes=len(pdf),
            sha256=digest,
            issued_at=issued_at,
            audit_head_seq=head.seq,
            audit_head_hash=head.hash,
            **columns,
        )
        .on_conflict_do_nothing()
        .returning(Document.id)
    ).scalar_one_or_none()
    if document_id is None:
        return None
    action, entity_type, entity_id = audited
    audit.record(
        session,
        actor,
        action,
        entity_type,
        entity_id,
        {
            "document_id": str(document_id),
            "filename": columns["filename"],
            "sha256": digest,
            "size_bytes": len(pdf),
            "transaction_id": transaction_id,
            **facts,
            "audit_head": {"seq": head.seq, "hash": head.hash},
        },
    )
    return document_id
