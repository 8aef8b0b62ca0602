"""What the payment controls' events tell whom (issue 18): a payment waiting at an approver's step, its last step
approved (payable now), a step's rejection (the work back to the contractor). Builders like those of
services/notification_events, registered there with @builds (which imports this module last)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select

from backoffice import formatting
from backoffice.domain.approvals import may_approve
from backoffice.domain.invoices import InvoiceKind
from backoffice.models import ApprovalDelegation, Engagement, Invoice, InvoiceApproval, Membership, Milestone, User
from backoffice.services import links
from backoffice.services.notification_events import (
    Notice,
    Person,
    _amount_facts,
    _engagement_facts,
    _user_name,
    builds,
    contractor_people,
    finance_people,
    person,
)
from backoffice.services.validation import get_visible


def _steps(session, invoice_id) -> list[InvoiceApproval]:
    return list(
        session.execute(
            select(InvoiceApproval).where(InvoiceApproval.invoice_id == invoice_id).order_by(InvoiceApproval.step)
        ).scalars()
    )


def approvers_for(session, step: InvoiceApproval, excluded: set) -> tuple[Person, ...]:
    """Everyone who may decide ``step`` (by role or by name), but those who approved the invoice already."""
    rows = session.execute(
        select(User.id, User.email, User.name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.accepted_at.is_not(None), User.is_active)
        .order_by(User.email)
    ).all()
    return tuple(
        Person(r.id, r.email, r.name)
        for r in rows
        if r.id not in excluded and may_approve(step.approver_role, step.approver_ids, r.role, r.id)
    )


def _done_by(invoice: Invoice, steps: list[InvoiceApproval]) -> set:
    return {invoice.authorized_by} | {p for s in steps for p in (s.decided_by, s.on_behalf_of) if p}


def waiting_notice(session, org, invoice: Invoice, steps: list[InvoiceApproval], event: str) -> list[Notice]:
    """The approvers of the step that waits now."""
    waiting = next((s for s in steps if s.status == "waiting"), None)
    if waiting is None:
        return []
    e = session.get(Engagement, invoice.engagement_id)
    return [
        Notice(
            event,
            f"invoice.approval_waiting:{invoice.id}:{waiting.step}",
            approvers_for(session, waiting, _done_by(invoice, steps)),
            subject=f"Approval needed: {invoice.invoice_number} — {org.money(invoice.gross_minor, invoice.currency)}",
            lead=f"{invoice.invoice_number} waits for step {waiting.step} of {len(steps)} of its approval before "
            "finance can pay it. Look at what was delivered and the evidence, then approve or reject it.",
            facts=(*_engagement_facts(e), *_amount_facts(org, invoice)),
            path=links.approvals(),
            action="Open your approvals",
            entity=("invoice", str(invoice.id)),
        )
    ]


@builds("invoice.approval_waiting")
def _waiting(session, org, invoice_id, event):
    invoice = get_visible(session, Invoice, invoice_id)
    return waiting_notice(session, org, invoice, _steps(session, invoice.id), event)


@builds("invoice.approval_completed")
def _completed(session, org, invoice_id, event):
    invoice = get_visible(session, Invoice, invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    return [
        Notice(
            event,
            f"invoice.approval_completed:{invoice.id}",
            finance_people(session),
            subject=f"Payable: {invoice.invoice_number} — {org.money(invoice.net_minor, invoice.currency)} approved",
            lead=f"Every approval step of {invoice.invoice_number} is done; it is in the payment queue.",
            facts=(*_engagement_facts(e), *_amount_facts(org, invoice)),
            path=links.invoice(invoice.id),
            action="See the payment",
            entity=("invoice", str(invoice.id)),
        )
    ]


@builds("invoice.approval_rejected")
def _rejected(session, org, invoice_id, event):
    invoice = get_visible(session, Invoice, invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    rejected = next((s for s in _steps(session, invoice.id) if s.status == "rejected"), None)
    who = _user_name(session, rejected.decided_by) if rejected else "someone"
    reason = rejected.reason if rejected else None
    from backoffice.services.completion_notices import billed_tasks

    m = session.get(Milestone, invoice.milestone_id) if invoice.milestone_id else None
    # A task or final invoice (completion billing) sends its tasks back to the contractor as a milestone's does.
    tasks = [t.title for t in billed_tasks(session, invoice.id)]
    # What was rejected, in words: the milestone, or else the kind of payment (an advance, completed tasks...).
    what = f"“{m.title}”" if m else f"the {InvoiceKind(invoice.kind).label.lower()}"
    notices = [
        Notice(
            event,
            f"invoice.approval_rejected:{invoice.id}:owner",
            person(session, invoice.authorized_by),
            subject=f"Rejected: {invoice.invoice_number} — {what}",
            lead=f"{who} rejected the payment of {what} at its approval; the authorization is void"
            + (" and the work went back to the contractor." if m or tasks else "."),
            facts=(*_engagement_facts(e), ("Rejected by", who)),
            quote=reason,
            path=links.invoice(invoice.id),
            action="See the payment",
            entity=("invoice", str(invoice.id)),
        )
    ]
    if m is not None:
        notices.append(
            Notice(
                event,
                f"invoice.approval_rejected:{invoice.id}:contractor",
                contractor_people(session, invoice.contractor_id),
                subject=f"Sent back: {m.title}",
                lead=f"{org.name} did not approve the payment of “{m.title}” and sent the work back to you. "
                "Read the reason, then submit again.",
                facts=(*_engagement_facts(e), ("Milestone", m.title)),
                quote=reason,
                path=links.milestone(m.id),
                action="Open the milestone",
                entity=("milestone", str(m.id)),
            )
        )
    if tasks:
        named = ", ".join(f"“{t}”" for t in tasks)
        notices.append(
            Notice(
                event,
                f"invoice.approval_rejected:{invoice.id}:contractor",
                contractor_people(session, invoice.contractor_id),
                subject=f"Sent back: {invoice.invoice_number} — {formatting.count(len(tasks), 'task')}",
                lead=f"{org.name} did not approve {invoice.invoice_number} ({InvoiceKind(invoice.kind).label.lower()}) "
                f"and sent its tasks back to you: {named}. Read the reason, then submit them again.",
                facts=(*_engagement_facts(e), *(("Task", t) for t in tasks)),
                quote=reason,
                path=links.engagement(e.id),
                action="Open the engagement",
                entity=("invoice", str(invoice.id)),
            )
        )
    elif invoice.kind == InvoiceKind.ADVANCE:
        notices.append(
            Notice(
                event,
                f"invoice.approval_rejected:{invoice.id}:contractor",
                contractor_people(session, invoice.contractor_id),
                subject=f"Advance not approved: {invoice.invoice_number} on {e.title}",
                lead=f"{org.name} did not approve the advance of “{e.title}” "
                f"({org.money(invoice.gross_minor, invoice.currency)}); it is paid with the final payment instead.",
                facts=(*_engagement_facts(e), ("Invoice", invoice.invoice_number)),
                quote=reason,
                path=links.engagement(e.id),
                action="Open the engagement",
                entity=("invoice", str(invoice.id)),
            )
        )
    return notices


@builds("invoice.approval_overdue")
def _overdue(session, org, invoice_id, event):
    """A step waiting longer than the organization's review time: its approvers (and whoever stands in for one of
    them today) are reminded, once per step."""
    invoice = get_visible(session, Invoice, invoice_id)
    steps = _steps(session, invoice.id)
    waiting = next((s for s in steps if s.status == "waiting"), None)
    if waiting is None or invoice.status != "pending_approval":
        return []
    (notice,) = waiting_notice(session, org, invoice, steps, event) or [None]
    if notice is None:
        return []
    stand_ins = _stand_ins(session, {p.user_id for p in notice.recipients}, _done_by(invoice, steps))
    return [
        replace(
            notice,
            key=f"invoice.approval_overdue:{invoice.id}:{waiting.step}",
            recipients=notice.recipients + stand_ins,
            subject=f"Still waiting for approval: {invoice.invoice_number} — "
            f"{org.money(invoice.gross_minor, invoice.currency)}",
            lead=f"{invoice.invoice_number} has waited at step {waiting.step} of {len(steps)} longer than the review "
            f"time {org.name} aims for. The contractor is not paid until it is approved.",
        )
    ]


def _stand_ins(session, principals: set, excluded: set) -> tuple[Person, ...]:
    today = datetime.now(UTC).date()
    rows = session.execute(
        select(User.id, User.email, User.name)
        .join(ApprovalDelegation, ApprovalDelegation.delegate_id == User.id)
        .where(
            ApprovalDelegation.user_id.in_(principals),
            ApprovalDelegation.revoked_at.is_(None),
            ApprovalDelegation.starts_on <= today,
            ApprovalDelegation.ends_on >= today,
        )
        .order_by(User.email)
    ).all()
    return tuple(dict.fromkeys(Person(r.id, r.email, r.name) for r in rows if r.id not in excluded | principals))
