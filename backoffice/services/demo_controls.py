"""Demo payment controls (issue 18), through the real services: a policy for payments of 10,000 USD or more (finance,
then an admin), a roof replacement's 12,800 USD milestone approved by its owner and by finance and waiting for an
admin at step 2, and its 2,400 USD gutters, approved at once (under the policy's amount) and held by finance until
the lien waiver arrives. (The kitchen's payments are left to the Stripe demo, which pays them.)"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.models import Invoice
from backoffice.services import approvals, holds
from backoffice.services import engagements as service
from backoffice.services.approvals import PolicyInput, StepInput
from backoffice.services.demo_engagements import _deliver, _draft, _row, schedule_milestones


def seed(session: Session, *, owner: Actor, contractor: Actor, finance: Actor, admin: Actor) -> None:
    approvals.create_policy(
        session,
        admin,
        PolicyInput(
            "Payments of $10,000 or more", "USD", "10,000.00", [StepInput(role="finance"), StepInput(role="admin")]
        ),
    )
    today = date.today()
    roof = _draft(
        session,
        owner,
        contractor.contractor_id,
        "Warehouse roof replacement",
        "SOW-2026-031",
        [
            _row("Tear-off and new membrane", "Old roof removed; new TPO membrane installed.", "12,800.00", today),
            _row("Gutters and flashing", "New gutters, downspouts and flashing on all four sides.", "2,400.00", today),
        ],
    )
    service.perform(session, owner, roof.id, "send")
    service.perform(session, contractor, roof.id, "accept")
    membrane, gutters = schedule_milestones(session, roof.id)
    _deliver(session, contractor, owner, membrane)
    _deliver(session, contractor, owner, gutters)
    roof_invoice = session.execute(select(Invoice).where(Invoice.milestone_id == membrane.id)).scalar_one()
    approvals.decide_step(session, finance, roof_invoice.id, "approve")
    held = session.execute(select(Invoice.id).where(Invoice.milestone_id == gutters.id)).scalar_one()
    holds.hold_invoice(
        session,
        finance,
        held,
        f"Lien waiver for the gutters not received yet; asked Northwind on {today - timedelta(days=2):%d %b}.",
    )
