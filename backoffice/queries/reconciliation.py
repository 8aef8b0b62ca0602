"""The reconciliation page's reads: the latest run of the Stripe reconciliation, its findings, and whether a check
finance asked for is still waiting for the worker. As RLS lets the caller see them (finance and admins)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.domain.payouts import Rail
from backoffice.domain.reconciliation import Finding, FindingKind
from backoffice.models import AuditEvent, Invoice, RailFinding, RailReconciliation

# "Check now" is recorded in the audit trail under these (services/reconciliation.request_check).
REQUESTED = "reconciliation.requested"
ENTITY = "rail_reconciliation"


@dataclass(frozen=True)
class Run:
    id: uuid.UUID
    requested: bool
    started_at: datetime
    finished_at: datetime
    window_from: datetime
    window_to: datetime
    transfers_compared: int
    payments_compared: int
    findings: int


@dataclass(frozen=True)
class FindingRow:
    finding: Finding
    invoice_number: str | None  # the invoice it concerns, to link to


def latest_run(session: Session) -> Run | None:
    row = session.execute(
        select(RailReconciliation)
        .where(RailReconciliation.rail == Rail.STRIPE.value)
        .order_by(RailReconciliation.started_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    return Run(
        row.id,
        row.requested,
        row.started_at,
        row.finished_at,
        row.window_from,
        row.window_to,
        row.transfers_compared,
        row.payments_compared,
        row.findings,
    )


def findings_of(session: Session, run_id: uuid.UUID) -> list[FindingRow]:
    rows = session.execute(
        select(RailFinding, Invoice.invoice_number)
        .outerjoin(Invoice, (Invoice.org_id == RailFinding.org_id) & (Invoice.id == RailFinding.invoice_id))
        .where(RailFinding.reconciliation_id == run_id)
        .order_by(RailFinding.seq)
    ).all()
    return [
        FindingRow(
            Finding(
                FindingKind(f.kind),
                f.words,
                transfer_id=f.transfer_id,
                payment_id=f.payment_id,
                invoice_id=f.invoice_id,
                attempt_id=f.attempt_id,
                currency=f.currency,
                stripe_amount_minor=f.stripe_amount_minor,
                recorded_amount_minor=f.recorded_amount_minor,
            ),
            number,
        )
        for f, number in rows
    ]


def waiting_since(session: Session) -> datetime | None:
    """When finance last asked for a check that has not run yet (no run started since), or None."""
    asked = session.execute(
        select(func.max(AuditEvent.occurred_at)).where(AuditEvent.entity_type == ENTITY, AuditEvent.action == REQUESTED)
    ).scalar_one()
    if asked is None:
        return None
    ran = session.execute(
        select(func.max(RailReconciliation.started_at)).where(RailReconciliation.rail == Rail.STRIPE.value)
    ).scalar_one()
    return asked if ran is None or asked > ran else None
