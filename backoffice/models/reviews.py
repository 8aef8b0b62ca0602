"""Evidence and review: a contractor's submission, its files (bytes in evidence_chunks), its review."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class Submission(Base):
    """A revision of "this milestone is done": immutable once written (no UPDATE grant)."""

    __tablename__ = "submissions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    milestone_id: Mapped[uuid.UUID]
    revision: Mapped[int]
    note: Mapped[str] = mapped_column(Text)
    links: Mapped[list] = mapped_column(JSONB, default=list)
    submitted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(server_default=func.now())


class EvidenceFile(Base):
    __tablename__ = "evidence_files"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    submission_id: Mapped[uuid.UUID]
    position: Mapped[int]
    file_name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class EvidenceChunk(Base):
    __tablename__ = "evidence_chunks"

    file_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chunk_no: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Review(Base):
    """The one decision on a submission."""

    __tablename__ = "reviews"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    milestone_id: Mapped[uuid.UUID]
    submission_id: Mapped[uuid.UUID]
    decision: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    partial_policy: Mapped[str | None] = mapped_column(Text)
    milestone_amount_minor: Mapped[int]
    approved_amount_minor: Mapped[int | None]
    evidence_sha256: Mapped[list[str]] = mapped_column(ARRAY(Text))
    reviewed_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime] = mapped_column(server_default=func.now())
