"""Engagements (one statement of work with one contractor), their milestones and change orders."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class Engagement(Base):
    __tablename__ = "engagements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    contractor_id: Mapped[uuid.UUID]
    owner_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(Text)
    sow_reference: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text)
    retainage_bps: Mapped[int]
    payment_terms_days: Mapped[int]
    service_fee_bps: Mapped[int] = mapped_column(default=0)
    billing_mode: Mapped[str] = mapped_column(Text, default="milestone")
    status: Mapped[str] = mapped_column(Text, default="draft")
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    sent_by: Mapped[uuid.UUID | None]
    responded_at: Mapped[datetime | None]
    responded_by: Mapped[uuid.UUID | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    proposal_id: Mapped[uuid.UUID | None]  # the proposal an award made this contract from (revision 0029)
    # Completion billing (revision 0030, domain.completion): the contract value, the advance, who confirmed it.
    contract_value_minor: Mapped[int | None]
    advance_bps: Mapped[int] = mapped_column(default=0)
    advance_minor: Mapped[int] = mapped_column(default=0)
    advance_confirmed_by: Mapped[uuid.UUID | None]
    advance_confirmed_at: Mapped[datetime | None]


class Milestone(Base):
    __tablename__ = "milestones"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    engagement_id: Mapped[uuid.UUID]
    seq: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    deliverable: Mapped[str] = mapped_column(Text, default="")
    amount_minor: Mapped[int]
    due_date: Mapped[date]
    status: Mapped[str] = mapped_column(Text, default="planned")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ChangeOrder(Base):
    __tablename__ = "change_orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    engagement_id: Mapped[uuid.UUID]
    number: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    contract_value_before: Mapped[int]
    contract_value_after: Mapped[int]
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ChangeOrderLine(Base):
    __tablename__ = "change_order_lines"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    change_order_id: Mapped[uuid.UUID]
    line_no: Mapped[int]
    kind: Mapped[str] = mapped_column(Text)
    milestone_id: Mapped[uuid.UUID]
    before: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    after: Mapped[dict] = mapped_column(JSONB)
