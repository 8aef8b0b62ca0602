"""Demo money, through the real services: the completed engagement's retainage released, its payments
exported to QuickBooks Online and the payment run recorded; the active engagement's approvals wait in
the payment queue."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.models import Engagement, Invoice
from backoffice.services import ap_export, invoices, payments


def seed(session: Session, *, owner: Actor, finance: Actor) -> None:
    lobby = session.execute(select(Engagement).where(Engagement.org_id == owner.org_id,
                                                     Engagement.title == "Lobby refresh")).scalar_one()
    invoices.release_retainage(session, owner, lobby.id, "")
    lobby_invoices = session.execute(select(Invoice.id).where(Invoice.engagement_id == lobby.id)
                                     .order_by(Invoice.number)).scalars().all()
    batch = ap_export.create_batch(session, finance, ap_export.Selection(
        invoice_ids=tuple(str(i) for i in lobby_invoices[:2]), preset="quickbooks_online"))
    payments.record_batch_payment(session, finance, batch.id, payments.PaymentInput(
        date.today().isoformat(), "ACH run 2026-114", "ach"))
