"""Self-billed e-invoices (revision 0031; DESIGN.md section 7b): the parties' profiles, the self-billing agreement
with each contractor, and the contractor's answer to each self-billed invoice. Policies and guards:
sql/self_billing.sql."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Integer, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.models.base import Base, new_id


class EInvoiceProfile(Base):
    """What an e-invoice says of a party: the organization's own (``contractor_id`` None, the buyer) or a
    contractor's (the seller, with its VAT category and rate). One per party; never deleted."""

    __tablename__ = "einvoice_profiles"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contractor_id: Mapped[uuid.UUID | None]
    legal_name: Mapped[str] = mapped_column(Text, default="")
    street: Mapped[str] = mapped_column(Text, default="")
    city: Mapped[str] = mapped_column(Text, default="")
    postal_code: Mapped[str] = mapped_column(Text, default="")
    country: Mapped[str] = mapped_column(Text, default="")  # ISO 3166-1 alpha-2, or '' while unknown
    tax_id: Mapped[str] = mapped_column(Text, default="")
    tax_scheme: Mapped[str] = mapped_column(Text, default="VAT")  # VAT | TAX
    endpoint_scheme: Mapped[str] = mapped_column(Text, default="")  # a Peppol EAS code (4 digits), or ''
    endpoint_id: Mapped[str] = mapped_column(Text, default="")
    vat_category: Mapped[str] = mapped_column(Text, default="")  # '' | S | Z | E | AE | O: the contractor's only
    vat_bps: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())  # the guard sets it


class SelfBillingAgreement(Base):
    """The prior agreement (EU VAT Directive art. 224) with a contractor: recorded by an admin, confirmed once by
    the contractor's user. The latest recorded is the one in force."""

    __tablename__ = "self_billing_agreements"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contractor_id: Mapped[uuid.UUID]
    agreed_on: Mapped[date]
    terms: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())  # the guard sets it
    confirmed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None]  # the guard sets it with confirmed_by


class InvoiceAcceptance(Base):
    """The contractor's answer to a self-billed invoice: accepted, or rejected with a reason. Append-only."""

    __tablename__ = "invoice_acceptances"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    invoice_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    decision: Mapped[str] = mapped_column(Text)  # accepted | rejected
    reason: Mapped[str | None] = mapped_column(Text)  # required iff rejected
    decided_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(server_default=func.now())  # the guard sets it
