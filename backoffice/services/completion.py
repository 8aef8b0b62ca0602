"""Completion billing (DESIGN.md section 4, "Completion billing"; the rules: domain/completion.py).

Three payments, each in the transaction of the event that calls for it, never on its own:

- ``authorize_advance``: the advance, as the engagement becomes active (the contractor accepts the work request, or
  an owner awards a project). The owner confirmed it when sending the work request (or awarding); it is
  authorized in that person's name.
- ``raise_invoice``: the contractor's user invoices approved tasks not yet invoiced, when it chooses: the exact sum of
  their amounts, with retainage and the service fee.
- ``after_task_approved``: approving a task authorizes nothing by itself, but approving the last open one authorizes
  the final payment for every approved task not yet invoiced (and an advance never paid) and, once that payment is
  approved by every step its policy asks, completes the engagement.

The database checks every amount again (sql/completion.sql), whoever writes.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import completion as rules
from backoffice.domain.completion import BillingMode
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.invoices import (
    InvoiceKind,
    InvoiceStatus,
    advance_amounts,
    authorization_lines,
)
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Engagement, Invoice, InvoiceTask, Milestone, Review
from backoffice.services import audit
from backoffice.services.engagements import get_engagement
from backoffice.services.invoices import (
    _audit_data,
    _pay_on_approval,
    approval_amounts,
    awaiting_approval,
    write_ledger,
)
from backoffice.services.validation import parse_id


def is_completion(engagement) -> bool:
    return engagement.billing_mode == BillingMode.COMPLETION


def authorize_advance(session: Session, actor: Actor, engagement: Engagement) -> Invoice | None:
    """The advance, in the transaction that makes ``engagement`` active (the caller holds its lock and has flushed the
    move). None when it takes no advance. Authorized in the name of whoever confirmed it with the work request."""
    if not is_completion(engagement) or engagement.advance_minor <= 0:
        return None
    amounts = advance_amounts(engagement.advance_minor)
    invoice = _write(
        session,
        actor,
        engagement,
        InvoiceKind.ADVANCE,
        "advance",
        amounts,
        authorized_by=engagement.advance_confirmed_by,
    )
    # The same lines as any authorization: the work it pays ahead for is expensed now, and owed (nothing withheld).
    # Written by the database when the contractor's acceptance authorizes it (invoices_contractor_ledger).
    if actor.role != Role.CONTRACTOR:
        write_ledger(session, invoice, "authorized", authorization_lines(amounts))
    audit.record(
        session,
        actor,
        "invoice.advance_authorized",
        "invoice",
        invoice.id,
        _audit_data(
            invoice,
            engagement=engagement.title,
            advance_bps=engagement.advance_bps,
            confirmed_by=str(engagement.advance_confirmed_by),
        ),
    )
    queue.issue_receipt(session, invoice.org_id, invoice.id)
    queue.notify(session, invoice.org_id, "invoice.advance_authorized", invoice.id)
    _pay_on_approval(session, engagement, invoice)
    return invoice


def _write(
    session: Session, actor: Actor, engagement: Engagement, kind: InvoiceKind, what: str, amounts, **who
) -> Invoice:
    """Write one of the engagement's completion invoices (``what`` it is for, after the engagement's title), read back
    as the database numbered, dated and started it."""
    return session.execute(
        insert(Invoice)
        .values(
            org_id=engagement.org_id,
            contractor_id=engagement.contractor_id,
            engagement_id=engagement.id,
            kind=kind.value,
            description=f"{engagement.title} — {what}"[:500],
            currency=engagement.currency,
            **who,
            **_start(session, actor, engagement, amounts.gross),
            **amounts.as_dict(),
        )
        .returning(Invoice),
        execution_options={"populate_existing": True},
    ).scalar_one()


def _start(session: Session, actor: Actor, engagement: Engagement, gross: int) -> dict:
    """The status an authorization starts in under the organization's approval policies. A contractor's user may not
    read them: the database sets it for what that user writes (invoices_guard); staff ask, and the guard checks."""
    if actor.role == Role.CONTRACTOR:
        return {"status": InvoiceStatus.APPROVED.value, "approval_policy_id": None}
    return awaiting_approval(session, engagement.org_id, engagement.currency, gross)


def invoiceable_tasks(session: Session, engagement_id) -> list[Milestone]:
    """The approved tasks of an engagement that no live invoice bills yet, in order."""
    billed = select(InvoiceTask.milestone_id).where(
        InvoiceTask.engagement_id == engagement_id, InvoiceTask.voided_at.is_(None)
    )
    return list(
        session.execute(
            select(Milestone)
            .where(
                Milestone.engagement_id == engagement_id,
                Milestone.status == MilestoneStatus.APPROVED.value,
                Milestone.id.not_in(billed),
            )
            .order_by(Milestone.seq)
        ).scalars()
    )


def raise_invoice(session: Session, actor: Actor, engagement_id, task_ids: list[str]) -> Invoice:
    """The contractor's user invoices these approved, not yet invoiced tasks of its engagement: one invoice of kind
    ``completion`` for the exact sum of their amounts, with retainage withheld and the service fee charged. The owner
    and finance are told. Raises Forbidden (not the contractor's user), NotFound, InvalidTransition (not a completion
    engagement), ValidationError (``tasks``: none chosen, or one not invoiceable) or Conflict (invoiced meanwhile)."""
    if actor.role != Role.CONTRACTOR:
        raise Forbidden("The contractor's user raises invoices for its approved tasks.")
    with unit_of_work(session):
        engagement = _lock_for_invoicing(session, actor, engagement_id)
        if not is_completion(engagement):
            raise InvalidTransition(
                "This engagement is billed per milestone: each approved milestone is paid as it is."
            )
        open_ = {t.id: t for t in invoiceable_tasks(session, engagement.id)}
        chosen = []
        for raw in dict.fromkeys(task_ids):
            task_id = parse_id(raw)
            if task_id is None or not _task_of(session, engagement.id, task_id):
                # Not a task of this engagement at all (a made-up or malformed id): the form's input is wrong.
                raise ValidationError({"tasks": "Choose among the approved tasks listed on this page."})
            if task_id not in open_:
                raise Conflict(
                    "One of the tasks you chose is no longer waiting to be invoiced (invoiced meanwhile, or its "
                    "payment was rejected). Reload the page to see what you can invoice now."
                )
            chosen.append(open_[task_id])
        if not chosen:
            raise ValidationError({"tasks": "Choose at least one approved task to invoice."})
        chosen.sort(key=lambda t: t.seq)
        gross = sum(t.amount_minor for t in chosen)
        amounts = approval_amounts(session, engagement, gross)
        approver = _last_approver(session, [t.id for t in chosen])
        names = ", ".join(t.title for t in chosen)
        try:
            invoice = _write(
                session,
                actor,
                engagement,
                InvoiceKind.COMPLETION,
                names,
                amounts,
                authorized_by=approver,
                raised_by=actor.user_id,
            )
            _bill(session, invoice, chosen)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in ("23505", "23514"):
                raise Conflict(
                    "These tasks were invoiced meanwhile, or one of them is no longer approved. Reload the page to "
                    "see what you can invoice now."
                ) from None
            raise
        # (Its ledger lines: the database's, for what a contractor's user writes: invoices_contractor_ledger.)
        audit.record(
            session,
            actor,
            "invoice.completion_raised",
            "invoice",
            invoice.id,
            _audit_data(
                invoice, tasks=[{"id": str(t.id), "title": t.title, "amount_minor": t.amount_minor} for t in chosen]
            ),
        )
        queue.issue_receipt(session, invoice.org_id, invoice.id)
        queue.notify(session, invoice.org_id, "invoice.completion_raised", invoice.id)
        _pay_on_approval(session, engagement, invoice)
    return invoice


def _lock_for_invoicing(session: Session, actor: Actor, engagement_id) -> Engagement:
    """The contractor's engagement, locked against the final payment and another invoice of the same tasks. A
    contractor's user may not lock engagements (FOR UPDATE is held to the write policies): the database's
    advisory lock on the engagement serves, and the unique index on billed tasks backs it up."""
    engagement = get_engagement(session, engagement_id)
    if engagement.contractor_id != actor.contractor_id:
        raise NotFound()
    session.execute(
        text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"invoice:{engagement.id}"}
    )
    return engagement


def _task_of(session: Session, engagement_id, task_id) -> bool:
    return (
        session.execute(
            select(func.count())
            .select_from(Milestone)
            .where(Milestone.id == task_id, Milestone.engagement_id == engagement_id)
        ).scalar_one()
        > 0
    )


def _last_approver(session: Session, task_ids) -> object:
    return session.execute(
        select(Review.reviewed_by)
        .where(
            Review.milestone_id.in_(task_ids),
            (Review.decision == "approve") | ((Review.decision == "partial") & (Review.partial_policy == "split")),
        )
        .order_by(Review.reviewed_at.desc(), Review.id)
        .limit(1)
    ).scalar_one()


def _bill(session: Session, invoice: Invoice, tasks: list[Milestone]) -> None:
    session.execute(
        insert(InvoiceTask),
        [
            {
                "org_id": invoice.org_id,
                "invoice_id": invoice.id,
                "milestone_id": t.id,
                "engagement_id": invoice.engagement_id,
                "contractor_id": invoice.contractor_id,
                "amount_minor": t.amount_minor,
            }
            for t in tasks
        ],
    )


def after_task_approved(session: Session, actor: Actor, engagement: Engagement) -> Invoice | None:
    """In the transaction of a task's approval (the caller holds the engagement's lock and has moved the task): the
    final payment when no task is left open, and the engagement completed once it is settled; otherwise nothing is
    authorized and the contractor is told it may invoice the task. Raises Conflict when the last task is approved
    while a payment of the engagement awaits approval (its rejection would send work back to a finished contract)."""
    open_left = session.execute(
        select(func.count())
        .select_from(Milestone)
        .where(
            Milestone.engagement_id == engagement.id,
            Milestone.status.in_([MilestoneStatus.PLANNED.value, MilestoneStatus.SUBMITTED.value]),
        )
    ).scalar_one()
    if open_left:
        return None
    waiting = (
        session.execute(
            select(Invoice.invoice_number)
            .where(Invoice.engagement_id == engagement.id, Invoice.status == InvoiceStatus.PENDING_APPROVAL.value)
            .order_by(Invoice.number)
        )
        .scalars()
        .all()
    )
    if waiting:
        raise Conflict(
            f"This is the last open task, and approving it authorizes the final payment; {', '.join(waiting)} of this "
            f"engagement {'awaits' if len(waiting) == 1 else 'await'} approval first. Decide "
            f"{'it' if len(waiting) == 1 else 'them'} (Approvals), then approve this task. Nothing was changed."
        )
    try:
        return authorize_final(session, actor, engagement)
    except IntegrityError as exc:
        if getattr(exc.orig.diag, "constraint_name", None) in (
            "invoice_tasks_billed_once",
            "invoices_one_final_per_engagement",
        ):
            raise Conflict(
                "The contractor invoiced approved tasks of this engagement just now, so the final payment could not be "
                "worked out as shown. Nothing was changed; reload the page and approve again."
            ) from None
        raise


def authorize_final(session: Session, actor: Actor, engagement: Engagement) -> Invoice:
    tasks = invoiceable_tasks(session, engagement.id)
    billed = billed_total(session, engagement.id)
    gross = rules.final_amount(engagement.contract_value_minor, billed)
    amounts = approval_amounts(session, engagement, gross)
    invoice = _write(
        session, actor, engagement, InvoiceKind.FINAL, "final payment", amounts, authorized_by=actor.user_id
    )
    _bill(session, invoice, tasks)
    write_ledger(session, invoice, "authorized", authorization_lines(amounts))
    audit.record(
        session,
        actor,
        "invoice.final_authorized",
        "invoice",
        invoice.id,
        _audit_data(
            invoice,
            engagement=engagement.title,
            contract_value_minor=engagement.contract_value_minor,
            billed_before_minor=billed,
            tasks=[{"id": str(t.id), "title": t.title, "amount_minor": t.amount_minor} for t in tasks],
        ),
    )
    queue.issue_receipt(session, invoice.org_id, invoice.id)
    queue.notify(session, invoice.org_id, "invoice.final_authorized", invoice.id)
    _pay_on_approval(session, engagement, invoice)
    close_if_settled(session, actor, engagement)
    return invoice


def billed_total(session: Session, engagement_id) -> int:
    """Σ gross of the engagement's live advance, task and final invoices (invariant 6's left side)."""
    return int(
        session.execute(
            select(func.coalesce(func.sum(Invoice.gross_minor), 0)).where(
                Invoice.engagement_id == engagement_id,
                Invoice.kind.in_(sorted(rules.COMPLETION_KINDS)),
                Invoice.voided_at.is_(None),
            )
        ).scalar_one()
    )


def close_if_settled(session: Session, actor: Actor, engagement: Engagement) -> bool:
    """Complete the engagement if its final payment is authorized and approved, with no payment waiting (the
    database's completion_close, which an approval step's last decision also runs). Audits the move."""
    closed = session.execute(
        text("select completion_close(:org, :id)"), {"org": engagement.org_id, "id": engagement.id}
    ).scalar_one()
    if closed:
        session.refresh(engagement)
        record_completed(session, actor, engagement)
    return bool(closed)


def record_completed(session: Session, actor: Actor, engagement: Engagement) -> None:
    """The audit event and notices of a completion engagement completed by its final payment."""
    audit.record(
        session,
        actor,
        "engagement.completed",
        "engagement",
        engagement.id,
        {"from": "active", "to": EngagementStatus.COMPLETED.value, "by": "final payment"},
    )
    queue.notify(session, engagement.org_id, "engagement.completed_by_final", engagement.id)
