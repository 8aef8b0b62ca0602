"""Payment authorizations: the invoice an approval writes, and the release of retainage.

Approval is the only door money leaves by (DESIGN.md section 3): ``authorize_milestone`` runs inside
the decision's transaction and never commits on its own, so a decision and its invoice are kept or
lost together. The database numbers the invoice (gapless per organization), dates it, and checks
every amount against the engagement's terms again.
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.engagements import EngagementStatus
from backoffice.domain.invoices import (
    Amounts,
    InvoiceKind,
    InvoiceStatus,
    authorization_lines,
    milestone_amounts,
    release_amounts,
    release_lines,
    withheld_bps,
)
from backoffice.domain.money import format_amount
from backoffice.domain.roles import MANAGERS
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Engagement, Invoice, LedgerEntry, Milestone, Review
from backoffice.queries.money import engagement_retainage
from backoffice.services import approvals, audit
from backoffice.services.engagements import can_decide, get_engagement
from backoffice.services.validation import clean_text, get_visible


def release_of(session: Session, engagement_id: uuid.UUID) -> Invoice | None:
    return session.execute(
        select(Invoice).where(
            Invoice.engagement_id == engagement_id,
            Invoice.kind == InvoiceKind.RETAINAGE_RELEASE.value,
            Invoice.voided_at.is_(None),
        )
    ).scalar_one_or_none()


def approval_amounts(session: Session, engagement: Engagement, gross: int) -> Amounts:
    """What approving ``gross`` authorizes now under the engagement's terms."""
    bps = withheld_bps(engagement.retainage_bps, released=release_of(session, engagement.id) is not None)
    return milestone_amounts(gross, bps, engagement.service_fee_bps)


def authorize_milestone(
    session: Session, actor: Actor, engagement: Engagement, milestone: Milestone, review: Review
) -> Invoice:
    """Write the milestone's invoice and its ledger lines in the caller's transaction (no commit). The
    caller holds the engagement and milestone locks. Raises Conflict if the milestone has one already."""
    gross = review.approved_amount_minor or review.milestone_amount_minor
    amounts = approval_amounts(session, engagement, gross)
    # No savepoint: a duplicate aborts the transaction, which the caller's unit of work rolls back anyway;
    # RETURNING brings the row back as the database numbered and dated it (no second read).
    try:
        invoice = session.execute(
            insert(Invoice)
            .values(
                org_id=milestone.org_id,
                contractor_id=milestone.contractor_id,
                engagement_id=engagement.id,
                kind=InvoiceKind.MILESTONE.value,
                milestone_id=milestone.id,
                review_id=review.id,
                description=f"{engagement.title} — {milestone.title}"[:500],
                currency=engagement.currency,
                authorized_by=actor.user_id,
                **awaiting_approval(session, engagement.org_id, engagement.currency, amounts.gross),
                **amounts.as_dict(),
            )
            .returning(Invoice),
            execution_options={"populate_existing": True},
        ).scalar_one()
    except IntegrityError as exc:
        # Unreachable through decide() (it holds the milestone's lock); here for any writer that skipped it.
        if getattr(exc.orig.diag, "constraint_name", None) in ("invoices_one_per_milestone", "invoices_one_per_review"):
            raise Conflict(f"“{milestone.title}” already has its payment authorization; it pays once.") from None
        raise
    write_ledger(session, invoice, "authorized", authorization_lines(amounts))
    audit.record(
        session, actor, "invoice.authorized", "invoice", invoice.id, _audit_data(invoice, review_id=str(review.id))
    )
    queue.issue_receipt(session, invoice.org_id, invoice.id)
    _pay_on_approval(session, engagement, invoice)
    return invoice


def awaiting_approval(session: Session, org_id, currency: str, gross: int) -> dict:
    """An authorization's start under the organization's approval policies (issue 18): at or above a policy's
    amount it awaits that policy's steps (the database copies them onto it and checks this is the policy that
    applies); otherwise it is approved at once."""
    policy = approvals.policy_for(session, org_id, currency, gross)
    if policy is None:
        return {"status": InvoiceStatus.APPROVED.value, "approval_policy_id": None}
    return {"status": InvoiceStatus.PENDING_APPROVAL.value, "approval_policy_id": policy.id}


def _pay_on_approval(session: Session, engagement: Engagement, invoice: Invoice) -> None:
    """Payment terms of 0 days pay on approval: where the organization pays automatically by Stripe, the worker
    sends it at once (services/stripe_payouts.pay_due; it does nothing when automatic payment is off). One awaiting
    its approval steps is sent when its last step approves it (services/approvals.decide_step)."""
    if invoice.status == InvoiceStatus.PENDING_APPROVAL:
        queue.notify(session, invoice.org_id, "invoice.approval_waiting", invoice.id)
        return
    if engagement.payment_terms_days == 0 and invoice.status == InvoiceStatus.APPROVED:
        queue.enqueue(session, "pay_on_approval", org_id=str(invoice.org_id), invoice_id=str(invoice.id))


def release_retainage(session: Session, actor: Actor, engagement_id, reason: str = "") -> Invoice:
    """Authorize paying out the retainage the engagement holds: once per engagement, by its project owner
    or an admin, once the engagement is completed or earlier with a reason. Raises Forbidden, Conflict
    (released already, or one of its payments awaits approval), InvalidTransition (nothing held) or
    ValidationError for ``reason``."""
    if actor.role not in MANAGERS:
        raise Forbidden("Only the engagement's project owner or an admin releases its retainage.")
    with unit_of_work(session):
        engagement = get_engagement(session, engagement_id, lock=True)
        if not can_decide(actor, engagement):
            raise Forbidden("Only this engagement's project owner or an admin releases its retainage.")
        earlier = release_of(session, engagement.id)
        if earlier is not None:
            raise Conflict(
                f"This engagement's retainage was released on {earlier.issued_on:%d %b %Y} "
                f"({earlier.invoice_number}); it is released once."
            )
        # The release pays what every live authorization withheld; one still awaiting its approval steps may yet be
        # rejected (void, withholding nothing), and the release would then pay more than was withheld (invariant 3),
        # part of it from a payment its policy never let through. So it waits for those decisions.
        waiting = (
            session.execute(
                select(Invoice.invoice_number)
                .where(
                    Invoice.org_id == engagement.org_id,
                    Invoice.engagement_id == engagement.id,
                    # every payment for work withholds (a milestone's; a task invoice and the final payment under
                    # completion billing), and an advance rejected is paid with the final payment, which withholds
                    Invoice.kind != InvoiceKind.RETAINAGE_RELEASE.value,
                    Invoice.status == InvoiceStatus.PENDING_APPROVAL.value,
                )
                .order_by(Invoice.number)
            )
            .scalars()
            .all()
        )
        if waiting:
            raise Conflict(
                f"{', '.join(waiting[:5])}{' and more' if len(waiting) > 5 else ''} of this engagement "
                f"{'awaits' if len(waiting) == 1 else 'await'} approval; its retainage is released once every "
                "payment it holds back from is approved or rejected."
            )
        held = engagement_retainage(session, engagement.id).held
        if held <= 0:
            raise InvalidTransition("This engagement holds no retainage: no approved milestone has withheld any.")
        errors: dict[str, str] = {}
        completed = engagement.status == EngagementStatus.COMPLETED
        cleaned = clean_text(
            reason,
            "reason",
            errors,
            required=not completed,
            max_len=2000,
            multiline=True,
            label="reason for releasing retainage before the engagement is completed",
        )
        if errors:
            raise ValidationError(errors)
        amounts = release_amounts(held)
        invoice_id = session.execute(
            insert(Invoice)
            .values(
                org_id=engagement.org_id,
                contractor_id=engagement.contractor_id,
                engagement_id=engagement.id,
                kind=InvoiceKind.RETAINAGE_RELEASE.value,
                description=f"{engagement.title} — retainage release"[:500],
                currency=engagement.currency,
                authorized_by=actor.user_id,
                release_reason=cleaned,
                **awaiting_approval(session, engagement.org_id, engagement.currency, amounts.gross),
                **amounts.as_dict(),
            )
            .returning(Invoice.id)
        ).scalar_one()
        invoice = session.get(Invoice, invoice_id)
        write_ledger(session, invoice, "retainage_released", release_lines(held))
        audit.record(
            session,
            actor,
            "retainage.released",
            "invoice",
            invoice.id,
            _audit_data(
                invoice,
                engagement=engagement.title,
                reason=cleaned,
                early=not completed,
                held=format_amount(held, engagement.currency),
            ),
        )
        queue.issue_receipt(session, invoice.org_id, invoice.id)
        queue.notify(session, invoice.org_id, "retainage.released", invoice.id)
        _pay_on_approval(session, engagement, invoice)
    return invoice


def get_invoice(session: Session, invoice_id, *, lock: bool = False) -> Invoice:
    """The invoice as RLS lets the caller see it, or NotFound. With ``lock``, FOR UPDATE (held to the
    update policy, so only finance and admins can lock one)."""
    invoice = get_visible(session, Invoice, invoice_id)
    if lock:
        locked = session.execute(
            select(Invoice).where(Invoice.id == invoice.id).with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if locked is None:
            raise NotFound()
        return locked
    return invoice


def write_ledger(session: Session, invoice: Invoice, event: str, lines: list[tuple[str, int]]) -> None:
    if not lines:
        return
    txn = uuid.uuid4()
    # Core insert without RETURNING: an owner writes the lines of an approval but may not read the ledger.
    session.execute(
        insert(LedgerEntry.__table__),
        [
            {
                "id": uuid.uuid4(),
                "org_id": invoice.org_id,
                "txn_id": txn,
                "event": event,
                "invoice_id": invoice.id,
                "account": account,
                "amount_minor": amount,
                "currency": invoice.currency,
            }
            for account, amount in lines
        ],
    )


def _audit_data(invoice: Invoice, **extra) -> dict:
    return {
        "invoice_number": invoice.invoice_number,
        "kind": invoice.kind,
        "currency": invoice.currency,
        "gross_minor": invoice.gross_minor,
        "retainage_minor": invoice.retainage_minor,
        "net_minor": invoice.net_minor,
        "fee_minor": invoice.fee_minor,
        "total_minor": invoice.total_minor,
        "due_date": invoice.due_date.isoformat(),
        "milestone_id": str(invoice.milestone_id) if invoice.milestone_id else None,
        **extra,
    }
