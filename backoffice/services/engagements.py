"""Engagements: set-up of the terms, and every move of the state machine (DESIGN.md section 3).

Staff (admins, and the project owner named on the engagement) set up and run an engagement; the
contractor's user answers the work request. Every move locks the engagement row, checks the move in
the domain layer, records who and when, and audits it, all in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import completion
from backoffice.domain import engagements as rules
from backoffice.domain.completion import BillingMode
from backoffice.domain.currency import is_currency
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.invoices import InvoiceStatus
from backoffice.domain.money import AmountError, format_amount, parse_amount
from backoffice.domain.roles import MANAGERS, Role
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import (
    Contractor,
    Engagement,
    Invoice,
    Membership,
    Milestone,
    Organization,
)
from backoffice.services import audit
from backoffice.services.validation import (
    clean_days,
    clean_percent,
    clean_text,
    get_visible,
    parse_id,
)


@dataclass(frozen=True)
class EngagementInput:
    """The terms as typed. Empty currency, retainage and payment terms take the organization's defaults;
    an empty owner means the acting project owner."""

    contractor_id: str
    title: str
    owner_user_id: str = ""
    sow_reference: str = ""
    currency: str = ""
    retainage: str = ""
    payment_terms_days: str = ""
    service_fee: str = ""
    # Completion billing (domain.completion): the contract value and the advance (empty: the organization's default).
    billing_mode: str = "milestone"
    contract_value: str = ""
    advance: str = ""


def _clean(session: Session, actor: Actor, data: EngagementInput) -> dict:
    org = session.execute(select(Organization).where(Organization.id == actor.org_id)).scalar_one()
    errors: dict[str, str] = {}
    contractor_id = parse_id(data.contractor_id)
    if contractor_id is None or session.get(Contractor, contractor_id) is None:
        errors["contractor_id"] = "Choose the contractor this statement of work is with."
    owner_id = (
        parse_id(data.owner_user_id) if data.owner_user_id else (actor.user_id if actor.role == Role.OWNER else None)
    )
    if owner_id is None or not is_manager_member(session, owner_id, actor.org_id):
        errors["owner_user_id"] = "Choose the project owner who will review this work."
    elif actor.role == Role.OWNER and owner_id != actor.user_id:
        errors["owner_user_id"] = "A project owner sets up engagements they own; an admin can assign another owner."
    currency = (data.currency or "").strip().upper() or org.default_currency
    if not is_currency(currency):
        errors["currency"] = "Choose a three-letter ISO 4217 currency code, such as USD or EUR."
    values = {
        "contractor_id": contractor_id,
        "owner_user_id": owner_id,
        "title": clean_text(data.title, "title", errors, label="title", required=True, max_len=200),
        "sow_reference": clean_text(
            data.sow_reference, "sow_reference", errors, label="SOW reference", required=False, max_len=100
        ),
        "currency": currency,
        "retainage_bps": clean_percent(data.retainage, "retainage", errors, default=org.default_retainage_bps),
        "payment_terms_days": clean_days(
            data.payment_terms_days, "payment_terms_days", errors, default=org.payment_terms_days
        ),
        "service_fee_bps": clean_percent(data.service_fee, "service_fee", errors, default=0),
    }
    values.update(_billing_terms(org, data, currency if "currency" not in errors else None, errors))
    if errors:
        raise ValidationError(errors)
    return values


def _billing_terms(org: Organization, data: EngagementInput, currency: str | None, errors: dict[str, str]) -> dict:
    """The billing mode and, under completion billing, the contract value and the advance (domain.completion)."""
    try:
        mode = BillingMode((data.billing_mode or "milestone").strip())
    except ValueError:
        errors["billing_mode"] = "Choose milestone billing or completion billing."
        return {}
    if mode == BillingMode.MILESTONE:
        return {"billing_mode": mode.value, "contract_value_minor": None, "advance_bps": 0, "advance_minor": 0}
    value = None
    if currency is not None:
        try:
            value = parse_amount(data.contract_value, currency)
        except AmountError as exc:
            errors["contract_value"] = str(exc)
    default = org.default_advance_bps if org.advances_enabled else 0
    bps = clean_percent(data.advance, "advance", errors, default=default)
    if bps is not None and (problem := completion.advance_problem(bps, org.advances_enabled)):
        errors["advance"] = problem
    if value is None or bps is None or "advance" in errors:
        return {"billing_mode": mode.value}
    if problem := completion.value_problem(value, bps):
        errors["contract_value"] = problem
        return {"billing_mode": mode.value}
    return {
        "billing_mode": mode.value,
        "contract_value_minor": value,
        "advance_bps": bps,
        "advance_minor": completion.advance_amount(value, bps),
    }


def is_manager_member(session: Session, user_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    """An accepted admin or project owner of ``org_id`` (named, not left to RLS: the CLI and the demo's seeding
    run as the owner role, which RLS does not bind)."""
    return (
        session.execute(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.org_id == org_id,
                Membership.user_id == user_id,
                Membership.role.in_([r.value for r in MANAGERS]),
                Membership.accepted_at.is_not(None),
            )
        ).scalar_one()
        > 0
    )


def get_engagement(session: Session, engagement_id, *, lock: bool = False) -> Engagement:
    """The engagement as RLS lets the caller see it, or NotFound (another org's or contractor's looks missing)."""
    if lock:
        row_id = parse_id(engagement_id)
        row = (
            row_id
            and session.execute(
                select(Engagement)
                .where(Engagement.id == row_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalar_one_or_none()
        )
        if row is None:
            # FOR UPDATE is held to the write policies, so a reader who may not change the engagement
            # (finance) finds nothing to lock: tell them it is not theirs to change, not that it is gone.
            if row_id and session.get(Engagement, row_id) is not None:
                raise Forbidden("Only admins and project owners change engagements.")
            raise NotFound()
        return row
    return get_visible(session, Engagement, engagement_id)


def can_decide(actor: Actor, engagement) -> bool:
    """Whether ``actor`` runs this engagement and decides on its work: the domain's rule
    (domain.engagements.can_decide), asked with the actor's role and the engagement's owner."""
    return rules.can_decide(actor.role, actor.user_id, engagement.owner_user_id)


def require_manager(actor: Actor, engagement) -> None:
    """Forbidden unless ``actor`` runs this engagement (``can_decide``)."""
    if not can_decide(actor, engagement):
        raise Forbidden("Only this engagement's project owner or an admin can change it.")


def create_engagement(session: Session, actor: Actor, data: EngagementInput) -> Engagement:
    """A new engagement in ``draft``, with the organization's defaults for terms left empty."""
    actor.require(*MANAGERS)
    with unit_of_work(session):
        values = _clean(session, actor, data)
        engagement = Engagement(
            org_id=actor.org_id, created_by=actor.user_id, status=EngagementStatus.DRAFT.value, **values
        )
        session.add(engagement)
        session.flush()
        audit.record(session, actor, "engagement.created", "engagement", engagement.id, _jsonable(values))
    return engagement


def update_terms(session: Session, actor: Actor, engagement_id, data: EngagementInput) -> Engagement:
    """Change a draft's terms. Once the work request is sent, the terms are what the contractor saw."""
    with unit_of_work(session):
        engagement = get_engagement(session, engagement_id, lock=True)
        require_manager(actor, engagement)
        if engagement.status not in rules.EDITABLE:
            raise InvalidTransition(
                "The terms are fixed once the work request is sent; use a change order to adjust milestones."
            )
        values = _clean(session, actor, data)
        if (
            values["currency"] != engagement.currency
            and session.execute(
                select(func.count()).select_from(Milestone).where(Milestone.engagement_id == engagement.id)
            ).scalar_one()
        ):
            raise ValidationError(
                {
                    "currency": f"The milestones are already in {engagement.currency}. Keep the currency, or remove "
                    "the milestones first (their amounts would otherwise mean something else)."
                }
            )
        changes = {
            k: {"before": _jsonable_value(getattr(engagement, k)), "after": _jsonable_value(v)}
            for k, v in values.items()
            if getattr(engagement, k) != v
        }
        if changes:
            for key, value in values.items():
                setattr(engagement, key, value)
            engagement.updated_at = func.now()
            session.flush()
            audit.record(session, actor, "engagement.updated", "engagement", engagement.id, changes)
    return engagement


def perform(
    session: Session,
    actor: Actor,
    engagement_id,
    action: str,
    reason: str = "",
    *,
    confirm_advance: int | None = None,
) -> Engagement:
    """Move the engagement by ``action`` (send, accept, decline, pause, resume, complete, cancel).

    Raises Forbidden for the wrong person, InvalidTransition for the wrong state, ValidationError for a
    missing reason (decline and cancel need one) or, sending a completion engagement with an advance, for an
    advance not confirmed (``confirm_advance``: the advance in minor units as the sender was shown it; a different
    one, the draft changed since, is a Conflict). Records who and when, and audits the move. Accepting a completion
    engagement authorizes its advance in the same transaction (services/completion.authorize_advance).
    """
    with unit_of_work(session):
        engagement = get_engagement(session, engagement_id, lock=True)
        _check_allowed(actor, engagement, action)
        reason_text = _reason(action, reason)
        _check_preconditions(session, engagement, action)
        before = engagement.status
        target = rules.ACTIONS[action].target
        engagement.status = target.value
        engagement.updated_at = func.now()
        if action == "send":
            engagement.sent_at, engagement.sent_by = func.now(), actor.user_id
            if engagement.billing_mode == BillingMode.COMPLETION and engagement.advance_minor > 0:
                if confirm_advance and confirm_advance != engagement.advance_minor:
                    raise Conflict(
                        "The advance changed since this page was loaded (the terms were edited): it is now "
                        f"{format_amount(engagement.advance_minor, engagement.currency)}. Nothing was sent; read the "
                        "terms again and confirm the advance as it is."
                    )
                if not confirm_advance:
                    raise ValidationError(
                        {
                            "confirm_advance": "Confirm the advance of "
                            f"{format_amount(engagement.advance_minor, engagement.currency)}: it is authorized for "
                            "payment, ahead of any work, as soon as the contractor accepts."
                        }
                    )
                engagement.advance_confirmed_by = actor.user_id
        elif action in ("accept", "decline"):
            engagement.responded_at, engagement.responded_by = func.now(), actor.user_id
            if action == "decline":
                engagement.decline_reason = reason_text
        elif action == "complete":
            engagement.completed_at = func.now()
        elif action == "cancel":
            engagement.cancelled_at, engagement.cancel_reason = func.now(), reason_text
        session.flush()
        data = {"from": before, "to": target.value}
        if reason_text:
            data["reason"] = reason_text
        if action == "send" and engagement.advance_confirmed_by is not None:
            data["advance_minor"] = engagement.advance_minor
            data["advance_confirmed"] = True
        audit.record(session, actor, f"engagement.{_event(action)}", "engagement", engagement.id, data)
        if action == "accept":
            # (Imported here: services.completion builds on this module.)
            from backoffice.services.completion import authorize_advance

            authorize_advance(session, actor, engagement)
        if action in ("send", "accept", "decline"):
            queue.notify(session, engagement.org_id, f"engagement.{_event(action)}", engagement.id)
    return engagement


def _check_allowed(actor: Actor, engagement: Engagement, action: str) -> None:
    if action not in rules.ACTIONS:
        raise NotFound()
    if actor.role not in rules.ACTIONS[action].roles:
        raise Forbidden(rules.refusal(action, engagement.status, actor.role.value))
    if actor.role == Role.CONTRACTOR and engagement.contractor_id != actor.contractor_id:
        raise NotFound()
    if actor.role != Role.CONTRACTOR:
        require_manager(actor, engagement)
    if (why := rules.refusal(action, engagement.status, actor.role.value)) is not None:
        raise InvalidTransition(why)


def _reason(action: str, reason: str) -> str | None:
    if action not in ("decline", "cancel"):
        return None
    errors: dict[str, str] = {}
    label = "reason for declining" if action == "decline" else "reason for cancelling"
    text = clean_text(reason, "reason", errors, label=label, required=True, max_len=2000, multiline=True)
    if errors:
        raise ValidationError(errors)
    return text


def _check_preconditions(session: Session, engagement: Engagement, action: str) -> None:
    statuses = session.execute(select(Milestone.status).where(Milestone.engagement_id == engagement.id)).scalars().all()
    live = [s for s in statuses if s != MilestoneStatus.CANCELLED]
    if action == "send" and not live:
        raise InvalidTransition("Add at least one milestone before sending the work request.")
    if engagement.billing_mode == BillingMode.COMPLETION:
        if action == "send":
            amounts = (
                session.execute(
                    select(Milestone.amount_minor).where(
                        Milestone.engagement_id == engagement.id, Milestone.status != MilestoneStatus.CANCELLED
                    )
                )
                .scalars()
                .all()
            )
            problem = completion_schedule_problem(engagement, list(amounts))
            if problem:
                raise InvalidTransition(problem)
        if action == "complete":
            raise InvalidTransition(
                "An engagement billed on completion completes itself: approving its last task authorizes the final "
                "payment and completes it."
            )
    if action == "complete":
        waiting = [s for s in live if s != MilestoneStatus.APPROVED]
        if not live or waiting:
            raise InvalidTransition(
                f"An engagement is completed once every milestone is approved; {len(waiting)} still "
                f"{'is' if len(waiting) == 1 else 'are'} not. "
                "Cancel the rest by change order, or wait for their review."
            )
        awaiting = session.execute(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.engagement_id == engagement.id, Invoice.status == InvoiceStatus.PENDING_APPROVAL.value)
        ).scalar_one()
        if awaiting:
            # A rejection sends work back to the contractor, which a completed engagement no longer takes (issue 18).
            raise InvalidTransition(
                f"{awaiting} payment{'s' if awaiting > 1 else ''} of this engagement still "
                f"{'await' if awaiting > 1 else 'awaits'} approval; complete it once "
                f"{'they are' if awaiting > 1 else 'it is'} approved or rejected."
            )


def _event(action: str) -> str:
    return {
        "send": "work_request_sent",
        "accept": "work_request_accepted",
        "decline": "work_request_declined",
        "pause": "paused",
        "resume": "resumed",
        "complete": "completed",
        "cancel": "cancelled",
    }[action]


def _jsonable_value(v):
    return str(v) if isinstance(v, uuid.UUID) else v


def _jsonable(values: dict) -> dict:
    return {k: _jsonable_value(v) for k, v in values.items()}


def completion_schedule_problem(engagement, task_amounts: list[int]) -> str | None:
    """Why a completion engagement's tasks cannot be sent as they are, in words for the page (domain.completion's
    rule, with the amounts formatted), or None."""
    value, advance = engagement.contract_value_minor, engagement.advance_minor
    problem = completion.schedule_problem(value, advance, task_amounts)
    if problem is None or value is None:
        return problem
    pool = completion.task_pool(value, advance)
    return (
        f"The tasks add up to {format_amount(sum(task_amounts), engagement.currency)}; they must add up to "
        f"{format_amount(pool, engagement.currency)}, the contract value "
        f"{format_amount(value, engagement.currency)} less the advance "
        f"{format_amount(advance, engagement.currency)}. Edit the tasks or the terms."
        if task_amounts
        else "Add at least one task before sending the work request."
    )
