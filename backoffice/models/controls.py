"""Payment controls (issue 18, revision 0027): approval policies, each invoice's approval steps, delegations,
holds. Their rules: backoffice/domain/approvals.py and sql/controls.sql."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class ApprovalPolicy(Base):
    __tablename__ = "approval_policies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)  # (org_id, id) in the database
    org_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text)
    min_amount_minor: Mapped[int]
    created_by: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    archived_at: Mapped[datetime | None]
    archived_by: Mapped[uuid.UUID | None]


class ApprovalPolicyStep(Base):
    __tablename__ = "approval_policy_steps"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    policy_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)
    approver_role: Mapped[str | None] = mapped_column(Text)
    approver_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), default=list)


class InvoiceApproval(Base):
    __tablename__ = "invoice_approvals"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[uuid.UUID]
    approver_role: Mapped[str | None] = mapped_column(Text)
    approver_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), default=list)
    status: Mapped[str] = mapped_column(Text, default="waiting")
    decided_by: Mapped[uuid.UUID | None]
    on_behalf_of: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reminded_at: Mapped[datetime | None]


class ApprovalDelegation(Base):
    __tablename__ = "approval_delegations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)  # (org_id, id) in the database
    org_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    delegate_id: Mapped[uuid.UUID]
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class Hold(Base):
    __tablename__ = "holds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)  # (org_id, id) in the database
    org_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID | None]
    contractor_id: Mapped[uuid.UUID | None]
    reason: Mapped[str] = mapped_column(Text)
    held_by: Mapped[uuid.UUID]
    held_at: Mapped[datetime] = mapped_column(server_default=func.now())
    released_by: Mapped[uuid.UUID | None]
    released_at: Mapped[datetime | None]
    release_note: Mapped[str | None] = mapped_column(Text)
