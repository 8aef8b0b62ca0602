"""Reconciling Stripe with the payments recorded here (issue 17, item 5; DESIGN.md section 7).

Daily (and when finance asks: "Check now"), the worker lists the platform's transfers of the last 35 days
(``list_transfers``: once per job, since one Stripe key serves every organization and its list holds all of
theirs; each transfer's metadata names its organization) and, per organization (``reconcile``), compares them
with its payments and payout attempts: a transfer without its payment, a payment without its transfer, amounts
or currencies that differ, a reversal on one side only, an attempt in flight for over an hour
(domain/reconciliation.py says each in words). Each run is kept with its findings for the reconciliation page,
and finance and admins are told when a run finds something the run before did not.

Stripe is listed before the payments are read: a transfer made after the listing has no payment yet that could
look unmatched, and a payment recorded after it is matched by looking its transfer up at Stripe by id (as is a
payment whose transfer is older than the window), so work in flight is never a finding.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe
from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import reconciliation as rules
from backoffice.domain.payouts import Rail
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import Conflict, Forbidden
from backoffice.jobs import queue
from backoffice.models import Invoice, Organization, Payment, PayoutAttempt, RailFinding, RailReconciliation
from backoffice.queries import reconciliation as queries
from backoffice.services import audit
from backoffice.services.stripe_payouts import rail_problem
from backoffice.services.stripe_rail import RailUnavailable

WINDOW = timedelta(days=35)
# A "Check now" not yet run after this long (no worker, say) no longer stops finance asking again.
REQUEST_WAITS = timedelta(minutes=15)


# ---------------------------------------------------------------------------------------------
# Stripe's side: the platform's transfers, per organization.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """The platform's transfers created in [window_from, window_to], grouped by the organization their metadata
    names (transfers naming none are nobody's here)."""

    window_from: datetime
    window_to: datetime
    by_org: dict[str, list[rules.Transfer]]

    def of(self, org_id: uuid.UUID) -> list[rules.Transfer]:
        return self.by_org.get(str(org_id), [])


def list_transfers(rail: stripe.StripeClient, *, window: timedelta = WINDOW) -> Listing:
    """Every transfer the platform made over the last ``window``, page after page. RailUnavailable when Stripe
    does not answer (the job is tried again)."""
    now = datetime.now(UTC)
    since = now - window
    by_org: dict[str, list[rules.Transfer]] = {}
    try:
        pages = rail.v1.transfers.list({"created": {"gte": int(since.timestamp())}, "limit": 100})
        for transfer in pages.auto_paging_iter():
            found = transfer.to_dict()
            org = (found.get("metadata") or {}).get("org_id")
            if org:
                by_org.setdefault(org, []).append(_transfer(found))
    except stripe.StripeError as error:
        raise RailUnavailable(str(error)) from None
    return Listing(since, now, by_org)


def _transfer(found: dict) -> rules.Transfer:
    metadata = found.get("metadata") or {}
    return rules.Transfer(
        id=found["id"],
        amount_minor=int(found["amount"]),
        currency=str(found["currency"]).upper(),
        reversed_minor=int(found.get("amount_reversed") or 0),
        created=datetime.fromtimestamp(int(found["created"]), tz=UTC),
        destination=str(found.get("destination") or ""),
        invoice_id=str(metadata.get("invoice_id") or ""),
        invoice_number=str(metadata.get("invoice_number") or ""),
        attempt_id=str(metadata.get("payout_attempt") or ""),
    )


def _uuids(values) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except (TypeError, ValueError):  # metadata is anyone's to write at Stripe: not ours unless it parses
            continue
    return out


# ---------------------------------------------------------------------------------------------
# One organization's run (the worker).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    run_id: uuid.UUID
    transfers: int
    payments: int
    findings: list[rules.Finding]


def reconcile(
    session: Session, actor: Actor, listing: Listing, *, rail: stripe.StripeClient, requested: bool = False
) -> Outcome | None:
    """Compare ``listing``'s transfers for ``actor``'s organization with its payments and payout attempts, and
    keep the run and its findings (one transaction). None when the organization does not pay through Stripe.
    RailUnavailable when Stripe does not answer a look-up (nothing is kept; the job is tried again)."""
    org_id = actor.org_id
    transfers = listing.of(org_id)
    with unit_of_work(session):
        enabled = session.execute(
            select(Organization.stripe_rail_enabled).where(Organization.id == org_id)
        ).scalar_one_or_none()
        if not enabled:
            return None
        payments = _payments(session, [t.id for t in transfers], listing.window_from)
        attempts = _attempts(session, _uuids(t.attempt_id for t in transfers))
        matched = {p.reference for p in payments}
        invoices = _invoices(session, _uuids(t.invoice_id for t in transfers if t.id not in matched))
        now = session.execute(select(func.now())).scalar_one()

    listed = {t.id for t in transfers}
    looked_up, missing = _look_up(rail, org_id, sorted({p.reference for p in payments} - listed))
    findings = rules.compare(
        transfers=[*transfers, *looked_up],
        payments=payments,
        attempts=attempts,
        invoices=invoices,
        missing=missing,
        now=now,
    )

    with unit_of_work(session):
        before = queries.latest_run(session)
        known = {r.finding.key for r in queries.findings_of(session, before.id)} if before else set()
        run_id = uuid.uuid4()
        session.execute(
            insert(RailReconciliation).values(
                org_id=org_id,
                id=run_id,
                rail=Rail.STRIPE.value,
                requested=requested,
                started_at=listing.window_to,
                window_from=listing.window_from,
                window_to=listing.window_to,
                transfers_compared=len(transfers) + len(looked_up),
                payments_compared=len(payments),
                findings=len(findings),
            )
        )
        if findings:
            session.execute(
                insert(RailFinding),
                [
                    {
                        "org_id": org_id,
                        "reconciliation_id": run_id,
                        "seq": seq,
                        "kind": f.kind.value,
                        "transfer_id": f.transfer_id,
                        "payment_id": f.payment_id,
                        "invoice_id": f.invoice_id,
                        "attempt_id": f.attempt_id,
                        "currency": f.currency,
                        "stripe_amount_minor": f.stripe_amount_minor,
                        "recorded_amount_minor": f.recorded_amount_minor,
                        "words": f.words[:2000],
                    }
                    for seq, f in enumerate(findings, start=1)
                ],
            )
        if {f.key for f in findings} - known:
            queue.notify(session, org_id, "reconciliation.findings", run_id)
    return Outcome(run_id, len(transfers) + len(looked_up), len(payments), findings)


def _payments(session: Session, references: list[str], since: datetime) -> list[rules.RecordedPayment]:
    """The payments naming one of ``references`` (by any method: finance may record a transfer's payment by hand),
    and every Stripe payment of the window."""
    rows = session.execute(
        select(Payment, Invoice.invoice_number)
        .join(Invoice, (Invoice.org_id == Payment.org_id) & (Invoice.id == Payment.invoice_id))
        .where(
            or_(
                Payment.reference.in_(references),
                (Payment.source == "stripe") & (Payment.paid_at >= since.date()),
            )
        )
        .order_by(Payment.paid_at, Payment.reference)
    ).all()
    return [
        rules.RecordedPayment(
            id=p.id,
            invoice_id=p.invoice_id,
            invoice_number=number,
            amount_minor=p.amount_minor,
            currency=p.currency,
            paid_on=p.paid_at,
            reference=p.reference,
            reversed=p.reversed_at is not None,
        )
        for p, number in rows
    ]


def _attempts(session: Session, named: list[uuid.UUID]) -> list[rules.Attempt]:
    """The attempts transfers name, and every one in flight."""
    rows = session.execute(
        select(PayoutAttempt, Invoice.invoice_number, Invoice.status)
        .join(Invoice, (Invoice.org_id == PayoutAttempt.org_id) & (Invoice.id == PayoutAttempt.invoice_id))
        .where(or_(PayoutAttempt.id.in_(named), PayoutAttempt.status == "pending"))
    ).all()
    return [
        rules.Attempt(
            id=a.id,
            invoice_id=a.invoice_id,
            invoice_number=number,
            invoice_status=status,
            status=a.status,
            requested_at=a.requested_at,
            amount_minor=a.amount_minor,
            currency=a.currency,
            failure_words=a.failure_words or "",
        )
        for a, number, status in rows
    ]


def _invoices(session: Session, ids: list[uuid.UUID]) -> dict[str, rules.InvoiceRef]:
    """The invoices unmatched transfers name (this organization's only: RLS), and how each was paid if it was."""
    if not ids:
        return {}
    standing = {
        p.invoice_id: f"{p.method} {p.reference}"
        for p in session.execute(
            select(Payment).where(Payment.invoice_id.in_(ids), Payment.reversed_at.is_(None))
        ).scalars()
    }
    return {
        str(i.id): rules.InvoiceRef(i.id, i.invoice_number, standing.get(i.id, ""))
        for i in session.execute(select(Invoice).where(Invoice.id.in_(ids))).scalars()
    }


def _look_up(
    rail: stripe.StripeClient, org_id: uuid.UUID, references: list[str]
) -> tuple[list[rules.Transfer], dict[str, rules.Missing]]:
    """The transfers of payments not in the listing, one by one: this organization's (older than the window, or
    made after the listing), or why there is none."""
    found: list[rules.Transfer] = []
    missing: dict[str, rules.Missing] = {}
    for reference in references:
        try:
            transfer = rail.v1.transfers.retrieve(reference).to_dict()
        except stripe.InvalidRequestError as error:
            if getattr(error, "http_status", None) != 404:
                raise RailUnavailable(str(error)) from None
            missing[reference] = rules.Missing.ABSENT
            continue
        except stripe.StripeError as error:
            raise RailUnavailable(str(error)) from None
        if (transfer.get("metadata") or {}).get("org_id") != str(org_id):
            missing[reference] = rules.Missing.FOREIGN
        else:
            found.append(_transfer(transfer))
    return found, missing


# ---------------------------------------------------------------------------------------------
# Finance asks for a run now.
# ---------------------------------------------------------------------------------------------


def request_check(session: Session, actor: Actor, *, configured: bool) -> None:
    """Queue a run for the current organization ("Check now"), audited in the asker's name. Conflict when the
    organization does not pay through Stripe, or one asked for lately has not run yet."""
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance and admins reconcile payments.")
    with unit_of_work(session):
        problem = rail_problem(session, actor.org_id, configured=configured)
        if problem:
            raise Conflict(problem)
        waiting = queries.waiting_since(session)
        if waiting is not None and waiting > datetime.now(UTC) - REQUEST_WAITS:
            raise Conflict("A check with Stripe was asked for a moment ago and has not run yet; its result shows here.")
        audit.record(session, actor, queries.REQUESTED, queries.ENTITY, None, {"rail": Rail.STRIPE.value})
        queue.enqueue(session, "reconcile_stripe", org_id=str(actor.org_id))
