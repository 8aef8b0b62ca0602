"""Projects and proposals (revision 0029): an open call for proposals, contractors' offers, one award."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import LargeBinary, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class ProjectCategory(Base):
    __tablename__ = "project_categories"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(Text)
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[uuid.UUID]
    currency: Mapped[str] = mapped_column(Text)
    budget_minor: Mapped[int | None]
    deadline: Mapped[date]
    billing_mode: Mapped[str] = mapped_column(Text, default="milestone")
    advance_bps: Mapped[int | None]  # a completion project's advance (revision 0030)
    audience: Mapped[str] = mapped_column(Text, default="invited")
    owner_user_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(Text, default="open")
    created_by: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    awarded_by: Mapped[uuid.UUID | None]
    awarded_at: Mapped[datetime | None]
    cancelled_by: Mapped[uuid.UUID | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class ProjectInvitation(Base):
    __tablename__ = "project_invitations"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    contractor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    invited_by: Mapped[uuid.UUID]
    invited_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Proposal(Base):
    __tablename__ = "proposals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    project_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    price_minor: Mapped[int]
    currency: Mapped[str | None] = mapped_column(Text)  # the project's, filled by proposals_guard when omitted
    timeline: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(Text, default="submitted")
    submitted_by: Mapped[uuid.UUID]
    submitted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    withdrawn_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]


class ProposalMilestone(Base):
    __tablename__ = "proposal_milestones"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    proposal_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    seq: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    deliverable: Mapped[str] = mapped_column(Text, default="")
    amount_minor: Mapped[int]
    due_date: Mapped[date]


class ProposalFile(Base):
    __tablename__ = "proposal_files"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    proposal_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    position: Mapped[int]
    file_name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(Text)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
