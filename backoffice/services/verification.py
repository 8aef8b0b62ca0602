"""Whether a file is a document the organization issued, unchanged, and whether the audit chain still holds the head
the document states (issue 21, item 6): `backoffice verify FILE…` and the data room's verification page.

Every document of the data room is stored once as issued with its sha256 (the database checks the hash against the
bytes and refuses changes); the event that recorded its issue carries that sha256; the document carries its id
(TX-…, in a PDF's title and text, in a UBL's note) and the organization's audit chain head when it was issued. So a
file is verified when a document with exactly its sha256 exists, the trail still records that sha256 for it, and
the trail still holds the head the document states, its chain linking up through the head and that record.

What the session can see is what counts: the command runs as the owner role and looks in every organization; the
page runs as a signed-in finance user or admin, whose organization's documents are all that row-level security
lets it find. A file of another organization is then, to them, not one this organization issued.
"""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.db import end_read
from backoffice.domain.audit_chain import ChainBreak, KeptHead
from backoffice.domain.documents import DocumentKind
from backoffice.domain.einvoice import document_ids_in
from backoffice.models import Document, Invoice, Organization
from backoffice.services import audit

# The largest file the page takes (web/uploads.py): a self-billed invoice's PDF is tens of kilobytes, its UBL less;
# a remittance advice listing many invoices stays far below this.
MAX_VERIFY_BYTES = 20 * 1024 * 1024
# The document ids of a file not issued as it is that are looked up (and named in the verdict): the first few.
IDS_LOOKED_UP = 5


@dataclass(frozen=True)
class IssuedDocument:
    """A document of the data room, as a verdict names it."""

    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str
    kind: str  # domain.documents.DocumentKind
    title: str
    filename: str
    transaction_id: str
    invoice_number: str | None  # None for a remittance advice
    issued_at: datetime
    sha256: str
    audit_head_seq: int | None  # None for a document issued before documents carried the head
    audit_head_hash: str | None

    @property
    def kind_label(self) -> str:
        return DocumentKind(self.kind).label

    @property
    def name(self) -> str:
        """The document in words: its kind and invoice number ("Credit note (UBL) crediting ACME-000001"), or a
        remittance advice's title."""
        if self.invoice_number is None:
            return f"{self.kind_label} “{self.title}”"
        crediting = "crediting " if self.kind == DocumentKind.CREDIT_NOTE else ""
        return f"{self.kind_label} {crediting}{self.invoice_number}"

    @property
    def issued_on(self) -> str:
        return moment(self.issued_at)


def moment(value: datetime) -> str:
    """A moment as the verdicts write it, the same for every reader: "2026-12-05 14:03 UTC"."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Verdict:
    """What a file is. ``issued``: a document with exactly its bytes exists; ``unchanged``: and the trail still
    records that sha256 for it, linking up through that record; ``head_holds``: the trail still holds the chain
    head the document states and links up through it (None: it states none). ``document`` is the document whose
    bytes the file is or, when they differ, the one it names."""

    filename: str
    sha256: str  # the file's
    size_bytes: int
    issued: bool
    unchanged: bool
    head_holds: bool | None
    document: IssuedDocument | None
    recorded_at: int | None  # the seq of the event that recorded the document's sha256
    summary: str
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.issued and self.unchanged and self.head_holds is not False


def verify_file(session: Session, content: bytes, filename: str, *, issuer: str = "this organization") -> Verdict:
    """The verdict on a file's bytes, against the documents the session can see. ``issuer`` names, in the words of
    a refusal, whose documents those are ("not a document this organization issued"). Read-only."""
    filename = shown_name(filename)
    digest = hashlib.sha256(content).hexdigest()
    document = _document(session, Document.sha256 == digest)
    if document is None:
        return _not_issued(session, content, filename, digest, issuer)
    recorded_at = audit.document_event(session, document.org_id, document.id)
    head = document.audit_head_seq
    # One read of the chain through the later of the head and the record: a break before either undoes it.
    through = max(head or 0, recorded_at or 0)
    broken = audit.first_break_through(session, document.org_id, through) if through else None
    lost = (
        audit.lost_heads(
            session, [KeptHead(str(document.org_id), head, document.audit_head_hash, f"document {document.filename}")]
        )
        if head is not None
        else []
    )
    end_read(session)

    lines = []
    unchanged = recorded_at is not None and (broken is None or broken.seq > recorded_at)
    if recorded_at is None:
        lines.append(
            f"its bytes are the ones issued (sha256 {digest}), but the audit trail no longer holds the event that"
            " recorded them"
        )
    elif not unchanged:
        lines.append(
            f"its bytes are the ones issued (sha256 {digest}), recorded at event #{recorded_at}, but the audit chain"
            f" does not link up through that record: {_break(broken)}"
        )
    else:
        lines.append(f"unchanged: sha256 {digest}, recorded in the audit trail at event #{recorded_at}")

    if head is None:
        head_holds = None
        lines.append("it states no audit chain head: it was issued before documents carried one")
    else:
        head_holds = not lost and (broken is None or broken.seq > head)
        stated = f"#{head} {document.audit_head_hash}"
        if head_holds:
            lines.append(f"the audit chain still holds the head it states ({stated}) and links up through it")
        elif lost:
            lines.append(f"the audit chain no longer holds the head it states ({stated}): {lost[0].reason}")
        else:
            lines.append(f"the audit chain does not link up through the head it states ({stated}): {_break(broken)}")

    verdict = "" if unchanged and head_holds is not False else ", but the audit trail does not back it"
    return Verdict(
        filename=filename,
        sha256=digest,
        size_bytes=len(content),
        issued=True,
        unchanged=unchanged,
        head_holds=head_holds,
        document=document,
        recorded_at=recorded_at,
        summary=f"{document.name} issued by {document.org_name} on {document.issued_on}"
        f" (document {document.transaction_id}){verdict}",
        lines=tuple(lines),
    )


def shown_name(filename: str) -> str:
    """The file's name as a verdict shows it: without control and invisible characters (a right-to-left override
    can make one name read as another), at most 200 characters."""
    shown = "".join(c for c in filename if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")).strip()
    return shown[:200] or "the file"


def _not_issued(session: Session, content: bytes, filename: str, digest: str, issuer: str) -> Verdict:
    named_ids = document_ids_in(content)
    # Its own id comes first (a PDF's title, a UBL's first note), so a few are enough to find the document a changed
    # copy claims to be; a file of a million ids is answered with one lookup of those few, not a million.
    looked_up = named_ids[:IDS_LOOKED_UP]
    found: dict[str, IssuedDocument] = {}
    for document in _documents(session, Document.transaction_id.in_(looked_up)) if looked_up else []:
        found.setdefault(document.transaction_id, document)  # the oldest, as _document takes
    named = next((found[t] for t in looked_up if t in found), None)
    end_read(session)
    if named is not None:
        summary = (
            f"this file names document {named.transaction_id} ({named.name}, issued by {named.org_name} on"
            f" {named.issued_on}), but its bytes differ from what was issued"
        )
        lines = (f"this file's sha256: {digest} ({len(content):,} bytes)", f"the sha256 issued: {named.sha256}")
    else:
        summary = f"not a document {issuer} issued"
        lines = (f"no document has its sha256 ({digest})", _ids_named(looked_up, len(named_ids) - len(looked_up)))
    return Verdict(
        filename=filename,
        sha256=digest,
        size_bytes=len(content),
        issued=False,
        unchanged=False,
        head_holds=None,
        document=named,
        recorded_at=None,
        summary=summary,
        lines=lines,
    )


def _ids_named(looked_up: list[str], more: int) -> str:
    if not looked_up:
        return "it names no document id"
    if more:
        return (
            f"it names {', '.join(looked_up)} and {more:,} more: none of the first {len(looked_up)} is one either"
            " (a document names its own id first; the rest were not looked up)"
        )
    if len(looked_up) == 1:
        return f"it names {looked_up[0]}, which is not one either"
    return f"it names {', '.join(looked_up)}, none of which is one either"


def _document(session: Session, where) -> IssuedDocument | None:
    found = _documents(session, where, limit=1)
    return found[0] if found else None


def _documents(session: Session, where, *, limit: int | None = None) -> list[IssuedDocument]:
    # The oldest first if two matched: two documents cannot have the same bytes (each carries its own random TX id),
    # and a TX id is unique in its organization, drawn from 2^80 values.
    rows = session.execute(
        select(
            Document.id,
            Document.org_id,
            Organization.name.label("org_name"),
            Document.kind,
            Document.title,
            Document.filename,
            Document.transaction_id,
            Invoice.invoice_number,
            Document.issued_at,
            Document.sha256,
            Document.audit_head_seq,
            Document.audit_head_hash,
        )
        .join(Organization, Organization.id == Document.org_id)
        .outerjoin(Invoice, (Invoice.org_id == Document.org_id) & (Invoice.id == Document.invoice_id))
        .where(where)
        .order_by(Document.issued_at, Document.id)
        .limit(limit)
    ).all()
    return [IssuedDocument(**row._mapping) for row in rows]


def _break(broken: ChainBreak) -> str:
    return f"event #{broken.seq}: {broken.reason}"
