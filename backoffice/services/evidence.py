"""Evidence files: what an upload is, whether it is acceptable, and storing its bytes in PostgreSQL.

Files reach this module already spooled to disk with their size and sha256 (the web layer computes
both while the upload streams in; ``UploadedFile.from_bytes`` does it for callers holding bytes).
Bytes go to ``evidence_chunks`` one 1 MiB piece at a time, so memory never holds a whole file.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import magic
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from backoffice.domain import evidence as rules
from backoffice.models import EvidenceChunk, EvidenceFile, Organization

CHUNK_BYTES = 1024 * 1024
SNIFF_BYTES = 64 * 1024


@dataclass
class UploadedFile:
    """An uploaded file: its name as sent, a readable binary stream, and what was measured of it."""

    name: str
    stream: BinaryIO
    size: int
    sha256: str

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> UploadedFile:
        return cls(name, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class CheckedFile:
    upload: UploadedFile
    content_type: str


def limits_of(session: Session, org_id) -> rules.Limits:
    org = session.execute(select(Organization).where(Organization.id == org_id)).scalar_one()
    return limits_for(org)


def limits_for(org: Organization) -> rules.Limits:
    return rules.Limits.from_megabytes(org.evidence_max_files, org.evidence_max_file_mb, org.evidence_max_submission_mb)


def sniff(stream: BinaryIO) -> str:
    """The MIME type libmagic reads from the first bytes of the content."""
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    return magic.from_buffer(head, mime=True)


def check_files(files: list[UploadedFile], limits: rules.Limits) -> tuple[list[CheckedFile], list[str]]:
    """The acceptable files with their types, and one sentence per problem naming the file."""
    problems: list[str] = []
    checked: list[CheckedFile] = []
    if len(files) > limits.max_files:
        problems.append(f"Attach at most {limits.max_files} files to one submission (you chose {len(files)}).")
    for f in files:
        label = f"“{f.name[:100]}”" if f.name.strip() else "A file"
        problem = rules.name_problem(f.name)
        if problem is None and f.size == 0:
            problem = "is empty"
        if problem is None and f.size > limits.max_file_bytes:
            problem = (
                f"is {_over(f.size, limits.max_file_bytes)}, more than the {rules.human_size(limits.max_file_bytes)} "
                "allowed per file"
            )
        ctype = None
        if problem is None:
            ctype, problem = rules.accepted_type(sniff(f.stream), f.name)
        if problem:
            problems.append(f"{label} {problem}.")
        else:
            checked.append(CheckedFile(f, ctype))
    total = sum(f.size for f in files)
    if total > limits.max_submission_bytes:
        problems.append(
            f"The files add up to {_over(total, limits.max_submission_bytes)}; one submission can carry at most "
            f"{rules.human_size(limits.max_submission_bytes)}."
        )
    return checked, problems


def _over(size: int, limit: int) -> str:
    """A size shown next to a limit it exceeds: exact bytes where rounding would make them look equal."""
    shown = rules.human_size(size)
    return f"{size:,} bytes" if shown == rules.human_size(limit) else shown


def store(session: Session, *, org_id, contractor_id, submission_id, position: int, item: CheckedFile) -> EvidenceFile:
    """Write the file's row and its bytes in the caller's transaction."""
    f = item.upload
    row = EvidenceFile(
        org_id=org_id,
        contractor_id=contractor_id,
        submission_id=submission_id,
        position=position,
        file_name=f.name.strip(),
        content_type=item.content_type,
        size_bytes=f.size,
        sha256=f.sha256,
    )
    session.add(row)
    session.flush()
    f.stream.seek(0)
    chunk_no = 0
    written = 0
    statement = insert(EvidenceChunk.__table__)
    while chunk := f.stream.read(CHUNK_BYTES):
        session.execute(
            statement,
            {"org_id": org_id, "contractor_id": contractor_id, "file_id": row.id, "chunk_no": chunk_no, "data": chunk},
        )
        chunk_no += 1
        written += len(chunk)
    if written != f.size:  # the spool changed under us: never keep bytes that are not what was hashed
        raise RuntimeError(f"{f.name}: read {written} bytes, expected {f.size}")
    return row


def read_chunks(session: Session, file_id) -> Iterator[bytes]:
    """The file's bytes, one chunk per query, so a download never holds the file in memory."""
    chunk_no = 0
    while True:
        data = session.execute(
            select(EvidenceChunk.data).where(EvidenceChunk.file_id == file_id, EvidenceChunk.chunk_no == chunk_no)
        ).scalar_one_or_none()
        if data is None:
            return
        yield bytes(data)
        chunk_no += 1
