"""Demo money, through the real services: the completed engagement's retainage released, its payments
exported to QuickBooks Online and the payment run recorded; the active engagement's approvals were
exported once in the wrong layout and that batch voided by the admin, so they wait in the payment queue
again."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.models import Engagement, Invoice
from backoffice.services import ap_export, invoices, payments


def seed(session: Session, *, owner: Actor, finance: Actor, admin: Actor) -> None:
    lobby = session.execute(
        select(Engagement).where(Engagement.org_id == owner.org_id, Engagement.title == "Lobby refresh")
    ).scalar_one()
    invoices.release_retainage(session, owner, lobby.id, "")
    lobby_invoices = (
        session.execute(select(Invoice.id).where(Invoice.engagement_id == lobby.id).order_by(Invoice.number))
        .scalars()
        .all()
    )
    batch = ap_export.create_batch(
        session,
        finance,
        ap_export.Selection(invoice_ids=tuple(str(i) for i in lobby_invoices[:2]), preset="quickbooks_online"),
    )
    payments.record_batch_payment(
        session, finance, batch.id, payments.PaymentInput(date.today().isoformat(), "ACH run 2026-114", "ach")
    )
    kitchen = session.execute(
        select(Engagement).where(Engagement.org_id == owner.org_id, Engagement.title == "Kitchen renovation, 14 Elm St")
    ).scalar_one()
    kitchen_invoices = (
        session.execute(select(Invoice.id).where(Invoice.engagement_id == kitchen.id).order_by(Invoice.number))
        .scalars()
        .all()
    )
    wrong = ap_export.create_batch(
        session, finance, ap_export.Selection(invoice_ids=tuple(str(i) for i in kitchen_invoices), preset="generic")
    )
    ap_export.void_batch(
        session, admin, wrong.id, "Exported in the generic layout by mistake; our books import QuickBooks Online bills."
    )
