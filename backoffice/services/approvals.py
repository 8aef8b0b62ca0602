"""Approval policies and the steps a payment passes before it is payable (issue 18; DESIGN.md sections 3, 4).

An admin sets policies: at or above an amount in a currency, these steps in order, each "any one of" a role or
named members. An authorization the owner's review writes under a policy waits (``pending_approval``) with the
policy's steps copied onto it; each step is decided once, in order, by a distinct person, who may be standing in
for someone (a delegation). The last approval makes it payable; a rejection (with a reason) voids it and sends the
work back to the contractor. The database decides the same again (sql/controls.sql) and does the invoice's move.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import approvals as rules
from backoffice.domain.completion import COMPLETION_KINDS
from backoffice.domain.currency import is_currency
from backoffice.domain.money import AmountError, format_amount, parse_amount
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import (
    ApprovalDelegation,
    ApprovalPolicy,
    ApprovalPolicyStep,
    Engagement,
    Invoice,
    InvoiceApproval,
    User,
)
from backoffice.queries.approvals import describe_step, staff, standing_in_for
from backoffice.services import audit
from backoffice.services.validation import clean_date, clean_text, get_visible, parse_id

# --- policies -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepInput:
    role: str = ""  # admin, owner or finance: anyone with that role...
    people: list[str] = field(default_factory=list)  # ...or any one of these members (user ids)


@dataclass(frozen=True)
class PolicyInput:
    name: str
    currency: str
    min_amount: str
    steps: list[StepInput]


def live_policies(session: Session, org_id: uuid.UUID, currency: str | None = None) -> list[rules.Policy]:
    """The organization's policies in force (in ``currency``, if given), with their steps (RLS: staff only)."""
    rows = _live(session, org_id, currency)
    steps: dict[uuid.UUID, list[rules.Step]] = {}
    if rows:
        for s in session.execute(
            select(ApprovalPolicyStep)
            .where(ApprovalPolicyStep.org_id == org_id, ApprovalPolicyStep.policy_id.in_([p.id for p in rows]))
            .order_by(ApprovalPolicyStep.policy_id, ApprovalPolicyStep.step)
        ).scalars():
            steps.setdefault(s.policy_id, []).append(rules.Step(s.approver_role, frozenset(s.approver_ids)))
    return [rules.Policy(p.id, p.currency, p.min_amount_minor, tuple(steps.get(p.id, ()))) for p in rows]


def _live(session: Session, org_id: uuid.UUID, currency: str | None) -> list[ApprovalPolicy]:
    query = select(ApprovalPolicy).where(ApprovalPolicy.org_id == org_id, ApprovalPolicy.archived_at.is_(None))
    if currency is not None:
        query = query.where(ApprovalPolicy.currency == currency)
    return list(session.execute(query).scalars())


def policy_for(
    session: Session, org_id: uuid.UUID, currency: str, gross: int, *, with_steps: bool = False
) -> rules.Policy | None:
    """The policy an authorization of ``gross`` starts under now (domain.approvals.applicable_policy). One statement
    unless ``with_steps`` (an approval asks it: tests/web/test_request_cost.py counts them)."""
    if with_steps:
        candidates = live_policies(session, org_id, currency)
    else:
        candidates = [rules.Policy(p.id, p.currency, p.min_amount_minor) for p in _live(session, org_id, currency)]
    return rules.applicable_policy(candidates, currency, rules.policy_amount(gross))


def create_policy(session: Session, actor: Actor, data: PolicyInput, *, replaces=None) -> ApprovalPolicy:
    """Write a policy in force now, replacing ``replaces`` (switched off in the same transaction) when given.
    Admins only. Raises ValidationError with a message per field (``name``, ``currency``, ``min_amount``,
    ``step-N``), Conflict when another live policy has the same amount."""
    if actor.role != Role.ADMIN:
        raise Forbidden("Only an admin sets approval policies.")
    errors: dict[str, str] = {}
    name = clean_text(data.name, "name", errors, label="policy's name", required=True, max_len=200)
    currency = (data.currency or "").strip().upper()
    if not is_currency(currency):
        errors["currency"] = "Choose the currency the rule applies to."
    minimum = None
    if is_currency(currency):
        try:
            minimum = parse_amount(data.min_amount, currency)
        except AmountError as exc:
            errors["min_amount"] = str(exc)
    members = staff(session, actor.org_id)
    steps: list[rules.Step] = []
    for n, raw in enumerate([s for s in data.steps if s.role or s.people], start=1):
        people = [parse_id(p) for p in raw.people if p]
        if raw.role and people:
            errors[f"step-{n}"] = "Choose a role or people for this step, not both."
        elif raw.role and raw.role not in {r.value for r in rules.APPROVER_ROLES}:
            errors[f"step-{n}"] = "A step's role is admin, project owner or finance."
        elif any(p is None or p not in members for p in people):
            errors[f"step-{n}"] = "Name admins, project owners or finance members of this organization."
        elif len(people) > rules.MAX_NAMED:
            errors[f"step-{n}"] = f"Name at most {rules.MAX_NAMED} people in one step."
        else:
            steps.append(rules.Step(raw.role or None, frozenset(people)))
    if not steps and not any(k.startswith("step-") for k in errors):
        errors["step-1"] = "Add at least one approval step after the reviewer's."
    if len(steps) > rules.MAX_STEPS:
        errors["step-1"] = f"A policy has at most {rules.MAX_STEPS} steps."
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        if replaces is not None:
            _archive(session, actor, replaces)
        clash = session.execute(
            select(ApprovalPolicy.name).where(
                ApprovalPolicy.org_id == actor.org_id,
                ApprovalPolicy.archived_at.is_(None),
                ApprovalPolicy.currency == currency,
                ApprovalPolicy.min_amount_minor == minimum,
            )
        ).scalar_one_or_none()
        if clash is not None:
            raise ValidationError({"min_amount": f"“{clash}” already applies from this amount; change that one."})
        policy = ApprovalPolicy(
            org_id=actor.org_id, name=name, currency=currency, min_amount_minor=minimum, created_by=actor.user_id
        )
        session.add(policy)
        session.flush()
        for n, step in enumerate(steps, start=1):
            session.add(
                ApprovalPolicyStep(
                    org_id=actor.org_id,
                    policy_id=policy.id,
                    step=n,
                    approver_role=step.role,
                    approver_ids=sorted(step.user_ids),
                )
            )
        session.flush()
        audit.record(
            session,
            actor,
            "approval_policy.created",
            "approval_policy",
            policy.id,
            {
                "name": name,
                "min_amount": format_amount(minimum, currency),
                "steps": [describe_step(s.role, s.user_ids, members) for s in steps],
                "replaces": str(replaces) if replaces else None,
            },
        )
    return policy


def archive_policy(session: Session, actor: Actor, policy_id) -> None:
    """Switch a policy off: authorizations from now on no longer start under it; those pending keep its steps."""
    if actor.role != Role.ADMIN:
        raise Forbidden("Only an admin changes approval policies.")
    with unit_of_work(session):
        _archive(session, actor, policy_id)


def _archive(session: Session, actor: Actor, policy_id) -> None:
    policy = get_visible(session, ApprovalPolicy, policy_id)
    if policy.archived_at is not None:
        raise Conflict(f"“{policy.name}” was switched off already.")
    session.execute(
        update(ApprovalPolicy)
        .where(ApprovalPolicy.id == policy.id, ApprovalPolicy.org_id == policy.org_id)
        .values(archived_at=datetime.now(UTC), archived_by=actor.user_id)
    )
    audit.record(session, actor, "approval_policy.archived", "approval_policy", policy.id, {"name": policy.name})


# --- deciding a step ------------------------------------------------------------------------------------------


def deciding_as(
    session: Session, actor: Actor, step: InvoiceApproval, today: date, excluded: frozenset = frozenset()
) -> uuid.UUID | bool | None:
    """Whom ``actor`` would decide ``step`` for: None (themselves), a person they stand in for, or False (nobody:
    the step is not theirs). Standing in for several people the step names, the first by id who has not approved
    the invoice already (``excluded``): the same answer every time."""
    if rules.may_approve(step.approver_role, step.approver_ids, actor.role, actor.user_id):
        return None
    members = staff(session, actor.org_id)
    eligible = sorted(
        (
            p
            for p in standing_in_for(session, actor, today)
            if rules.may_approve(step.approver_role, step.approver_ids, members.get(p, (None, None))[1], p)
        ),
        key=str,
    )
    return next((p for p in eligible if p not in excluded), eligible[0] if eligible else False)


def waiting_step(session: Session, invoice_id: uuid.UUID) -> InvoiceApproval | None:
    return session.execute(
        select(InvoiceApproval)
        .where(InvoiceApproval.invoice_id == invoice_id, InvoiceApproval.status == "waiting")
        .order_by(InvoiceApproval.step)
        .limit(1)
    ).scalar_one_or_none()


def decide_step(session: Session, actor: Actor, invoice_id, decision: str, reason: str = "") -> InvoiceApproval:
    """Approve or reject the step of ``invoice_id`` that waits, as ``actor`` (or for the person they stand in for).
    The last approval makes the invoice payable; a rejection voids it and, for a milestone, sends the work back to
    the contractor with ``reason``. Raises Forbidden (not yours), Conflict (decided meanwhile: who and when),
    ValidationError (``reason`` missing on a rejection) or InvalidTransition (not waiting for approval)."""
    if actor.role not in rules.APPROVER_ROLES:
        raise Forbidden("Only an admin, a project owner or a finance member approves payments.")
    if decision not in ("approve", "reject"):
        raise ValidationError({"decision": "Choose Approve or Reject."})
    errors: dict[str, str] = {}
    cleaned = clean_text(
        reason,
        "reason",
        errors,
        label="reason for rejecting",
        required=decision == "reject",
        max_len=2000,
        multiline=True,
    )
    if errors:
        raise ValidationError(errors)
    today = datetime.now(UTC).date()
    with unit_of_work(session):
        invoice = get_visible(session, Invoice, invoice_id)
        step = waiting_step(session, invoice.id)
        if invoice.status != "pending_approval" or step is None:
            raise InvalidTransition(f"{invoice.invoice_number} is not waiting for approval.")
        earlier = [
            p
            for row in session.execute(
                select(InvoiceApproval.decided_by, InvoiceApproval.on_behalf_of).where(
                    InvoiceApproval.invoice_id == invoice.id, InvoiceApproval.status != "waiting"
                )
            )
            for p in row
            if p is not None
        ]
        principal = deciding_as(session, actor, step, today, frozenset({invoice.authorized_by, *earlier}))
        if principal is False:
            raise Forbidden(f"Step {step.step} of {invoice.invoice_number} is not yours to approve.")
        refusal = rules.distinct_people_refusal(actor.user_id, principal, invoice.authorized_by, earlier)
        if refusal:
            raise Forbidden(refusal)
        try:
            decided = session.execute(
                update(InvoiceApproval)
                .where(
                    InvoiceApproval.org_id == invoice.org_id,
                    InvoiceApproval.invoice_id == invoice.id,
                    InvoiceApproval.step == step.step,
                    InvoiceApproval.status == "waiting",
                )
                .values(
                    status="approved" if decision == "approve" else "rejected",
                    decided_by=actor.user_id,
                    on_behalf_of=principal,
                    decided_at=datetime.now(UTC),
                    reason=cleaned,
                )
                .returning(InvoiceApproval)
                .execution_options(populate_existing=True)
            ).scalar_one_or_none()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in ("23514", "42501", "23505"):
                raise Conflict(_guard_words(exc)) from None
            raise
        if decided is None:
            raise Conflict(_decided_meanwhile(session, invoice, step.step))
        session.refresh(invoice)
        audit.record(
            session,
            actor,
            "invoice.step_approved" if decision == "approve" else "invoice.step_rejected",
            "invoice",
            invoice.id,
            {
                "invoice_number": invoice.invoice_number,
                "step": step.step,
                "on_behalf_of": str(principal) if principal else None,
                "reason": cleaned,
                "status_after": invoice.status,
            },
        )
        if decision == "reject":
            queue.notify(session, invoice.org_id, "invoice.approval_rejected", invoice.id)
            # A void after issue is credited: the job issues the e-invoice's credit note (services/einvoices).
            queue.issue_receipt(session, invoice.org_id, invoice.id)
        elif invoice.status == "approved":
            queue.notify(session, invoice.org_id, "invoice.approval_completed", invoice.id)
            _completed_by_approval(session, actor, invoice)
            if invoice.due_date <= invoice.issued_on:
                # Payment terms of 0 days pay on approval: now that the last step approved it.
                queue.enqueue(session, "pay_on_approval", org_id=str(invoice.org_id), invoice_id=str(invoice.id))
        else:
            queue.notify(session, invoice.org_id, "invoice.approval_waiting", invoice.id)
    return decided


def _completed_by_approval(session: Session, actor: Actor, invoice: Invoice) -> None:
    """A completion engagement its payment's last approval step completed just now (the database's completion_close,
    run by the step's trigger: sql/controls.sql) is audited and announced as when its final payment completes it at
    once (services/completion.record_completed)."""
    from backoffice.services import completion

    if invoice.kind not in COMPLETION_KINDS:
        return
    closed_now = session.execute(
        text("select status = 'completed' and completed_at = now() from engagements where id = :id"),
        {"id": invoice.engagement_id},
    ).scalar_one()
    if closed_now:
        engagement = session.get(Engagement, invoice.engagement_id, populate_existing=True)
        completion.record_completed(session, actor, engagement)


def _guard_words(exc: DBAPIError) -> str:
    text = str((getattr(exc.orig, "diag", None) and exc.orig.diag.message_primary) or exc.orig)
    return text[:1].upper() + text[1:] + "."


def _decided_meanwhile(session: Session, invoice: Invoice, step: int) -> str:
    row = session.execute(
        select(InvoiceApproval.status, InvoiceApproval.decided_at, User.name)
        .join(User, User.id == InvoiceApproval.decided_by)
        .where(InvoiceApproval.invoice_id == invoice.id, InvoiceApproval.step == step)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        return f"Step {step} of {invoice.invoice_number} was decided meanwhile."
    return f"{row.name} {row.status} step {step} of {invoice.invoice_number} at {row.decided_at:%H:%M} already."


# --- delegation -----------------------------------------------------------------------------------------------


def delegate(session: Session, actor: Actor, delegate_id, starts_on: str, ends_on: str) -> ApprovalDelegation:
    """Name a stand-in who decides ``actor``'s approval steps, for them, from ``starts_on`` to ``ends_on``
    (inclusive). Raises ValidationError per field (``delegate_id``, ``starts_on``, ``ends_on``)."""
    if actor.role not in rules.APPROVER_ROLES:
        raise Forbidden("Only an approver delegates approvals.")
    errors: dict[str, str] = {}
    who = parse_id(delegate_id)
    members = staff(session, actor.org_id)
    if who is None or who not in members:
        errors["delegate_id"] = "Choose an admin, project owner or finance member to stand in for you."
    elif who == actor.user_id:
        errors["delegate_id"] = "Choose someone other than yourself."
    start = clean_date(starts_on, "starts_on", errors, label="first day")
    end = clean_date(ends_on, "ends_on", errors, label="last day")
    today = datetime.now(UTC).date()
    if start and end and "starts_on" not in errors and "ends_on" not in errors:
        if end < start:
            errors["ends_on"] = "The last day is on or after the first day."
        elif end < today:
            errors["ends_on"] = "The last day is today or later."
        elif (end - start).days > 366:
            errors["ends_on"] = "A delegation lasts at most a year."
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        row = ApprovalDelegation(
            org_id=actor.org_id, user_id=actor.user_id, delegate_id=who, starts_on=start, ends_on=end
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "approval.delegated",
            "approval_delegation",
            row.id,
            {"delegate": members[who][0], "starts_on": start.isoformat(), "ends_on": end.isoformat()},
        )
    return row


def revoke_delegation(session: Session, actor: Actor, delegation_id) -> None:
    with unit_of_work(session):
        row = get_visible(session, ApprovalDelegation, delegation_id)
        if row.user_id != actor.user_id and actor.role != Role.ADMIN:
            raise NotFound()
        if row.revoked_at is not None:
            raise Conflict("This delegation was ended already.")
        session.execute(
            update(ApprovalDelegation)
            .where(ApprovalDelegation.id == row.id, ApprovalDelegation.org_id == row.org_id)
            .values(revoked_at=datetime.now(UTC))
        )
        audit.record(session, actor, "approval.delegation_ended", "approval_delegation", row.id, {})
