"""The tenant and its people: organizations, users, memberships, contractors, invites, audit events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.domain.completion import DEFAULT_ADVANCE_BPS
from backoffice.domain.reviews import DEFAULT_PARTIAL_POLICY
from backoffice.domain.self_billing import DEFAULT_ACCEPTANCE_DAYS
from backoffice.models.base import Base, new_id


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    default_currency: Mapped[str] = mapped_column(Text, default="USD")
    default_retainage_bps: Mapped[int] = mapped_column(default=1000)
    payment_terms_days: Mapped[int] = mapped_column(default=30)
    partial_policy: Mapped[str] = mapped_column(Text, default=DEFAULT_PARTIAL_POLICY.value)
    ap_export_preset: Mapped[str] = mapped_column(Text, default="generic")
    ap_export_columns: Mapped[list] = mapped_column(JSONB, default=list)
    evidence_max_files: Mapped[int] = mapped_column(default=20)
    evidence_max_file_mb: Mapped[int] = mapped_column(default=25)
    evidence_max_submission_mb: Mapped[int] = mapped_column(default=100)
    invoice_prefix: Mapped[str] = mapped_column(Text, default="INV")
    segregation_of_duties: Mapped[bool] = mapped_column(default=True)
    ap_expense_account: Mapped[str] = mapped_column(Text, default="Contract labor")
    ap_export_date_format: Mapped[str] = mapped_column(Text, default="iso")
    ap_export_bom: Mapped[bool] = mapped_column(default=True)  # generic and custom files for Excel (revision 0035)
    review_sla_days: Mapped[int] = mapped_column(default=3)
    locale: Mapped[str] = mapped_column(Text, default="en_US")
    stripe_rail_enabled: Mapped[bool] = mapped_column(default=False)
    auto_pay_enabled: Mapped[bool] = mapped_column(default=False)  # pay by Stripe on the due date (revision 0024)
    auto_pay_by: Mapped[uuid.UUID | None]  # the admin who turned it on, in whose name those payments go
    tax_form_required: Mapped[bool] = mapped_column(default=False)  # no payment without a tax form (revision 0028)
    advances_enabled: Mapped[bool] = mapped_column(default=True)  # completion billing's advance (revision 0030)
    default_advance_bps: Mapped[int] = mapped_column(default=DEFAULT_ADVANCE_BPS)
    acceptance_days: Mapped[int] = mapped_column(default=DEFAULT_ACCEPTANCE_DAYS)  # silence = acceptance (0031)
    acceptance_required: Mapped[bool] = mapped_column(default=False)  # pay only what the contractor accepted
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class User(Base):
    """A person. The app role can read these columns but never password_hash (column grants)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[datetime | None]


class Contractor(Base):
    __tablename__ = "contractors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    legal_name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    ap_vendor_id: Mapped[str | None] = mapped_column(Text)
    payout_details: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PayoutAccount(Base):
    """A contractor's account on a payment rail (revision 0022) and what the rail last said of it."""

    __tablename__ = "payout_accounts"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contractor_id: Mapped[uuid.UUID]
    rail: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    transfers_active: Mapped[bool] = mapped_column(default=False)
    payouts_enabled: Mapped[bool] = mapped_column(default=False)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    currently_due: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    connected_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RailEvent(Base):
    """A payment rail's webhook event, stored once (revision 0023) and applied by the worker."""

    __tablename__ = "rail_events"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rail: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    applied_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)


class Membership(Base):
    __tablename__ = "memberships"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(Text)
    contractor_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    accepted_at: Mapped[datetime | None]  # NULL while the invitation is pending


class Invite(Base):
    """A one-time set-password link; only the sha256 of its token is stored."""

    __tablename__ = "invites"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]  # set by the database: created_at + 72 hours
    used_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only; seq, occurred_at, prev_hash and hash are set by the database trigger."""

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    seq: Mapped[int]
    occurred_at: Mapped[datetime]
    actor_user_id: Mapped[uuid.UUID | None]
    actor_label: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONB, default=dict)
    prev_hash: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text)


class TaxProfile(Base):
    """A contractor's tax form (revision 0028): a W-9 or a W-8BEN(-E). Its TIN is a row of tax_tins; the database
    copies that row's type and last four digits here (sql/tax.sql)."""

    __tablename__ = "tax_profiles"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contractor_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, default="")
    business_name: Mapped[str] = mapped_column(Text, default="")
    classification: Mapped[str] = mapped_column(Text, default="")
    tin_id: Mapped[uuid.UUID | None]
    tin_type: Mapped[str | None] = mapped_column(Text)
    tin_last4: Mapped[str | None] = mapped_column(Text)
    address_line1: Mapped[str] = mapped_column(Text, default="")
    address_line2: Mapped[str] = mapped_column(Text, default="")
    city: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(Text, default="")
    postal_code: Mapped[str] = mapped_column(Text, default="")
    country: Mapped[str] = mapped_column(Text, default="")
    certified_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    certified_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TaxYearFiling(Base):
    """A year's 1099-NEC export (revision 0028): the file as written, its totals, and its lock until reopened."""

    __tablename__ = "tax_year_filings"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    year: Mapped[int]
    filename: Mapped[str] = mapped_column(Text)
    content: Mapped[bytes]
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(Text)
    threshold_minor: Mapped[int]
    row_count: Mapped[int]
    total_minor: Mapped[int]
    totals: Mapped[dict] = mapped_column(JSONB)
    exported_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    exported_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reopened_by: Mapped[uuid.UUID | None]
    reopened_at: Mapped[datetime | None]
    reopen_reason: Mapped[str | None] = mapped_column(Text)
