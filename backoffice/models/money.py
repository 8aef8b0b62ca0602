"""Money: payment authorizations (invoices), payments, AP export batches (file in chunks), the ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, LargeBinary, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class Invoice(Base):
    """A payment authorization. Number, issue and due dates are set by the database's guard."""

    __tablename__ = "invoices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    engagement_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(Text)
    milestone_id: Mapped[uuid.UUID | None]
    review_id: Mapped[uuid.UUID | None]
    number: Mapped[int]
    invoice_number: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text)
    gross_minor: Mapped[int]
    retainage_bps: Mapped[int]
    retainage_minor: Mapped[int]
    net_minor: Mapped[int]
    fee_bps: Mapped[int]
    fee_minor: Mapped[int]
    total_minor: Mapped[int]
    issued_on: Mapped[date]
    due_date: Mapped[date]
    status: Mapped[str] = mapped_column(Text, default="approved")
    authorized_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    authorized_at: Mapped[datetime] = mapped_column(server_default=func.now())
    release_reason: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[uuid.UUID | None]
    exported_at: Mapped[datetime | None]
    paid_at: Mapped[date | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    approval_policy_id: Mapped[uuid.UUID | None]  # the approval policy it started under (revision 0027)
    voided_at: Mapped[datetime | None]  # a step of its approval rejected it
    raised_by: Mapped[uuid.UUID | None]  # the contractor's user who raised a completion invoice (revision 0030)


class InvoiceTask(Base):
    """A task a completion or final invoice bills (revision 0030); voided with its invoice."""

    __tablename__ = "invoice_tasks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID]
    milestone_id: Mapped[uuid.UUID]
    engagement_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    amount_minor: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    voided_at: Mapped[datetime | None]


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID]
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Text)
    paid_at: Mapped[date]
    reference: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    batch_id: Mapped[uuid.UUID | None]
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    run_id: Mapped[uuid.UUID] = mapped_column(default=new_id)  # the payment run it was part of (revision 0024)
    reversed_at: Mapped[datetime | None]  # a payment rail took it back (transfer.reversed): it no longer stands
    reversal_reference: Mapped[str | None] = mapped_column(Text)


class PayoutAttempt(Base):
    """One call to a payment rail for an invoice (revision 0024); its id is the transfer's idempotency key."""

    __tablename__ = "payout_attempts"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    rail: Mapped[str] = mapped_column(Text)
    destination: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Text)
    automatic: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(Text, default="pending")
    transfer_id: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[uuid.UUID | None]
    failure_code: Mapped[str | None] = mapped_column(Text)
    failure_words: Mapped[str | None] = mapped_column(Text)
    tries: Mapped[int] = mapped_column(default=0)
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]


class RailReconciliation(Base):
    """One comparison of a payment rail's transfers with the payments recorded here (revision 0026); the worker's."""

    __tablename__ = "rail_reconciliations"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rail: Mapped[str] = mapped_column(Text)
    requested: Mapped[bool] = mapped_column(default=False)  # finance asked for it ("Check now"); else the daily run
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime] = mapped_column(server_default=func.now())
    window_from: Mapped[datetime]
    window_to: Mapped[datetime]
    transfers_compared: Mapped[int]
    payments_compared: Mapped[int]
    findings: Mapped[int]


class RailFinding(Base):
    """What a reconciliation found, in words finance acts on (revision 0026)."""

    __tablename__ = "rail_reconciliation_findings"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reconciliation_id: Mapped[uuid.UUID]
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(Text)
    transfer_id: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[uuid.UUID | None]
    invoice_id: Mapped[uuid.UUID | None]
    attempt_id: Mapped[uuid.UUID | None]
    currency: Mapped[str | None] = mapped_column(Text)
    stripe_amount_minor: Mapped[int | None]
    recorded_amount_minor: Mapped[int | None]
    words: Mapped[str] = mapped_column(Text)


class ApExportBatch(Base):
    """An exported file: written, sealed (size, sha256, rows, total) and never changed; only voided."""

    __tablename__ = "ap_export_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    number: Mapped[int]
    currency: Mapped[str] = mapped_column(Text)
    preset: Mapped[str] = mapped_column(Text)
    layout: Mapped[dict] = mapped_column(JSONB)
    selection: Mapped[dict] = mapped_column(JSONB)
    size_bytes: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None]
    total_minor: Mapped[int | None]
    # Up to 100,000 ids: loaded when read, not with every batch the export or a page loads (the export's own
    # load of them cost 15% of its time under bench/ap_export.py); pages read the list in SQL.
    invoice_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)), deferred=True)
    status: Mapped[str] = mapped_column(Text, default="live")
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    voided_by: Mapped[uuid.UUID | None]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)


class ApExportChunk(Base):
    __tablename__ = "ap_export_chunks"

    batch_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chunk_no: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID]
    txn_id: Mapped[uuid.UUID]
    event: Mapped[str] = mapped_column(Text)
    invoice_id: Mapped[uuid.UUID]
    account: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
