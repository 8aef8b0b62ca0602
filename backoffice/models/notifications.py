"""The outbox, in-app notices and documents (migration 0005)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class _Message:
    """One email, as the outbox keeps it until it is sent (services/email_delivery)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str | None] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


class EmailMessage(_Message, Base):
    """An organization's message: its outbox, which its admins read."""

    __tablename__ = "email_messages"

    org_id: Mapped[uuid.UUID]
    recipient_user_id: Mapped[uuid.UUID | None]
    digest_id: Mapped[uuid.UUID | None]  # status 'digested': the daily digest that carried it (migration 0034)
    link: Mapped[str | None] = mapped_column(Text)  # status 'held': where its notice leads, for the digest


class AccountMessage(_Message, Base):
    """An account's own message (a password reset), in no organization: the worker role's alone (migration 0015
    moved these out of email_messages, whose every row is one organization's)."""

    __tablename__ = "account_messages"

    recipient_user_id: Mapped[uuid.UUID]


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    event: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[datetime | None]


class Document(Base):
    """A file of the data room, kept as issued: a receipt (one invoice's) or a remittance advice (what one payment
    run paid one contractor: ``run_id``, no invoice or engagement; revision 0025)."""

    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[uuid.UUID | None]
    transaction_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text, default="application/pdf")
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(Text)
    contractor_id: Mapped[uuid.UUID]
    engagement_id: Mapped[uuid.UUID | None]
    run_id: Mapped[uuid.UUID | None]
    issued_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The organization's audit chain head when the document was made (sql/audit.sql checks it is real).
    audit_head_seq: Mapped[int | None]
    audit_head_hash: Mapped[str | None] = mapped_column(Text)
    # A self-billed invoice's terms as issued (revision 0031): the VAT it states, which its e-invoice and credit
    # note state too, and the days of silence that make it accepted (the database copies the organization's).
    vat_category: Mapped[str | None] = mapped_column(Text)
    vat_bps: Mapped[int | None]
    acceptance_days: Mapped[int | None]


class UserPreference(Base):
    """A person's time zone and how they want emails (migration 0034): their own row, whichever organization."""

    __tablename__ = "user_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    time_zone: Mapped[str] = mapped_column(Text, default="UTC")
    notify: Mapped[str] = mapped_column(Text, default="each")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
