"""Change orders: numbered, reasoned changes to an active engagement's milestones, applied atomically.

The owner edits the schedule as it should become; the service turns the differences into lines (add a
milestone; adjust a milestone's title, deliverable, amount or due date; cancel a milestone), each with
its before and after, numbers the change order CO-1, CO-2, … per engagement, and applies it in one
transaction. Approved and cancelled milestones are final; only planned milestones can be cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import engagements as rules
from backoffice.domain.completion import BillingMode
from backoffice.domain.engagements import MilestoneStatus
from backoffice.domain.invoices import InvoiceKind
from backoffice.errors import Conflict, InvalidTransition, ValidationError
from backoffice.jobs import queue
from backoffice.models import ChangeOrder, ChangeOrderLine, Engagement, Invoice, Milestone
from backoffice.services import audit
from backoffice.services.engagements import get_engagement, require_manager
from backoffice.services.schedule import MAX_MILESTONES, RowInput, check_row
from backoffice.services.validation import clean_text

EDITABLE_FIELDS = ("title", "deliverable", "amount_minor", "due_date")


@dataclass(frozen=True)
class MilestoneChange:
    """An existing milestone as the owner wants it: its fields as typed, or cancelled."""

    milestone_id: str
    title: str = ""
    deliverable: str = ""
    amount: str = ""
    due_date: str = ""
    cancel: bool = False


@dataclass(frozen=True)
class ChangeOrderInput:
    reason: str
    based_on: int  # the number of the newest change order when the form was opened (0: none yet)
    changes: list[MilestoneChange] = field(default_factory=list)
    additions: list[RowInput] = field(default_factory=list)


def latest_number(session: Session, engagement_id) -> int:
    return session.execute(
        select(func.coalesce(func.max(ChangeOrder.number), 0)).where(ChangeOrder.engagement_id == engagement_id)
    ).scalar_one()


def issue_change_order(session: Session, actor: Actor, engagement_id, data: ChangeOrderInput) -> ChangeOrder:
    """Apply the change order, or nothing. Errors name the field (``reason``, ``ms-<id>-<field>``,
    ``new-<n>-<field>``, or ``lines`` when it changes nothing); a change order issued by someone else
    since the form was opened is a Conflict, so nobody overwrites a change they have not seen."""
    with unit_of_work(session):
        engagement = get_engagement(session, engagement_id, lock=True)  # serializes numbering per engagement
        require_manager(actor, engagement)
        if engagement.status not in rules.CHANGE_ORDERS_ALLOWED:
            raise InvalidTransition(
                "Change orders apply to active or paused engagements; a draft's milestones are edited directly."
            )
        if engagement.billing_mode == BillingMode.COMPLETION:
            # Its final payment, once authorized, bills the contract value to the end: adding, changing or cancelling a
            # task then would leave it completed short of (or beyond) its value (invariant 6).
            final = session.execute(
                select(Invoice.invoice_number).where(
                    Invoice.engagement_id == engagement.id,
                    Invoice.kind == InvoiceKind.FINAL.value,
                    Invoice.voided_at.is_(None),
                )
            ).scalar_one_or_none()
            if final is not None:
                raise InvalidTransition(
                    f"Every task is approved and the final payment, {final}, is authorized: the tasks change no more. "
                    "If the work is not finished, reject the final payment at its approval step first."
                )
        number = latest_number(session, engagement.id)
        if number != data.based_on:
            raise Conflict(
                f"CO-{number} was issued while you were editing. "
                "Reload the page to start from the schedule as it is now."
            )
        milestones = {
            str(m.id): m
            for m in session.execute(
                select(Milestone).where(Milestone.engagement_id == engagement.id).order_by(Milestone.seq)
            ).scalars()
        }
        lines, errors = _lines(data, milestones, engagement.currency)
        reason = clean_text(
            data.reason, "reason", errors, label="reason for the change", required=True, max_len=2000, multiline=True
        )
        if not lines and not errors:
            errors["lines"] = "This change order changes nothing: adjust, cancel or add at least one milestone."
        live_after = [
            m
            for m in milestones.values()
            if m.status != MilestoneStatus.CANCELLED
            and not any(line["kind"] == "cancel" and line["milestone"] is m for line in lines)
        ]
        if not errors and not live_after and not any(line["kind"] == "add" for line in lines):
            errors["lines"] = "A change order cannot cancel every milestone; cancel the engagement instead."
        if (
            not errors
            and engagement.billing_mode == BillingMode.COMPLETION
            and not any(line["kind"] == "add" for line in lines)
            and not any(m.status in rules.ADJUSTABLE for m in live_after)
        ):
            # The final payment comes with the last task's approval (domain.completion): a change order that left no
            # task open would leave the contract with no way to finish.
            errors["lines"] = (
                "This would leave no task open, and the final payment is authorized when the last open task is "
                "approved. Keep a task, or add one; to stop the work, cancel the engagement."
            )
        if len(milestones) + sum(line["kind"] == "add" for line in lines) > MAX_MILESTONES:
            errors["lines"] = f"An engagement can have at most {MAX_MILESTONES} milestones."
        if errors:
            raise ValidationError(errors)
        co = _write(session, actor, engagement, milestones, lines, reason, number + 1)
        queue.notify(session, engagement.org_id, "change_order.issued", co.id)
    return co


def split_milestone(
    session: Session, actor: Actor, engagement: Engagement, milestone: Milestone, part: int, reason: str
) -> ChangeOrder:
    """The system change order of a split partial approval: the milestone keeps the approved ``part``
    and a new planned milestone carries the remainder, so each still pays once. In the caller's
    transaction (the review that decided it); the caller holds the engagement's milestones steady."""
    milestones = {
        str(m.id): m
        for m in session.execute(
            select(Milestone).where(Milestone.engagement_id == engagement.id).order_by(Milestone.seq)
        ).scalars()
    }
    if len(milestones) >= MAX_MILESTONES:
        raise ValidationError(
            {
                "approved_amount": f"This engagement has the most milestones it can ({MAX_MILESTONES}), so the "
                "remainder cannot become a new one. Approve or dispute instead."
            }
        )
    title = milestone.title.removesuffix(" (remainder)")
    remainder = {
        "title": f"{title[:188]} (remainder)",
        "deliverable": milestone.deliverable,
        "amount_minor": milestone.amount_minor - part,
        "due_date": milestone.due_date,
    }
    lines = [
        {
            "kind": "adjust",
            "milestone": milestone,
            "before": {"amount_minor": milestone.amount_minor},
            "after": {"amount_minor": part},
        },
        {"kind": "add", "milestone": None, "before": None, "after": remainder},
    ]
    return _write(session, actor, engagement, milestones, lines, reason, latest_number(session, engagement.id) + 1)


def _write(
    session: Session,
    actor: Actor,
    engagement: Engagement,
    milestones: dict,
    lines: list[dict],
    reason: str,
    number: int,
) -> ChangeOrder:
    # Under completion billing the contract value is the advance and the tasks: the tasks keep sharing the value less
    # the advance, which never changes once authorized, so the value moves with them (domain.completion).
    value_before = engagement.advance_minor + _contract_value(milestones.values())
    co = ChangeOrder(
        org_id=engagement.org_id,
        contractor_id=engagement.contractor_id,
        engagement_id=engagement.id,
        number=number,
        reason=reason,
        created_by=actor.user_id,
        contract_value_before=value_before,
        contract_value_after=value_before + _delta(lines),
    )
    session.add(co)
    session.flush()
    next_seq = max((m.seq for m in milestones.values()), default=0)
    for line_no, line in enumerate(lines, start=1):
        if line["kind"] == "add":
            next_seq += 1
            line["milestone"] = Milestone(
                org_id=engagement.org_id,
                contractor_id=engagement.contractor_id,
                engagement_id=engagement.id,
                seq=next_seq,
                **line["after"],
            )
            session.add(line["milestone"])
            session.flush()
        # The line is written before the milestone changes: milestones_guard lets an engagement's milestone
        # change its terms only as a line of a change order of the same transaction records it.
        session.add(
            ChangeOrderLine(
                org_id=engagement.org_id,
                contractor_id=engagement.contractor_id,
                change_order_id=co.id,
                line_no=line_no,
                kind=line["kind"],
                milestone_id=line["milestone"].id,
                before=_json(line["before"]),
                after=_json(line["after"]),
            )
        )
        session.flush()
        if line["kind"] != "add":
            values = {"status": MilestoneStatus.CANCELLED.value} if line["kind"] == "cancel" else line["after"]
            session.execute(
                update(Milestone).where(Milestone.id == line["milestone"].id).values(**values, updated_at=func.now())
            )
    if engagement.billing_mode == BillingMode.COMPLETION and co.contract_value_after != value_before:
        # The database holds them together at commit (sql/completion.sql, completion_engagement_check).
        session.execute(
            update(Engagement)
            .where(Engagement.id == engagement.id)
            .values(contract_value_minor=co.contract_value_after, updated_at=func.now())
        )
    session.flush()
    audit.record(
        session,
        actor,
        "change_order.issued",
        "engagement",
        engagement.id,
        {
            "change_order": f"CO-{co.number}",
            "change_order_id": str(co.id),
            "reason": reason,
            "contract_value_before": value_before,
            "contract_value_after": co.contract_value_after,
            "lines": [
                {
                    "kind": line["kind"],
                    "milestone_id": str(line["milestone"].id) if line["milestone"] else None,
                    "before": _json(line["before"]),
                    "after": _json(line["after"]),
                }
                for line in lines
            ],
        },
    )
    return co


def _lines(data: ChangeOrderInput, milestones: dict, currency: str) -> tuple[list[dict], dict[str, str]]:
    lines: list[dict] = []
    errors: dict[str, str] = {}
    for change in data.changes:
        m = milestones.get(change.milestone_id)
        prefix = f"ms-{change.milestone_id}"
        if m is None:
            errors[f"{prefix}-title"] = "This milestone is not part of the engagement any more; reload the page."
            continue
        status = MilestoneStatus(m.status)
        if change.cancel:
            if status not in rules.CANCELLABLE:
                errors[f"{prefix}-cancel"] = f"“{m.title}” is {status.label.lower()} and can no longer be cancelled."
            else:
                lines.append(
                    {"kind": "cancel", "milestone": m, "before": {"status": m.status}, "after": {"status": "cancelled"}}
                )
            continue
        row = RowInput(
            title=change.title, deliverable=change.deliverable, amount=change.amount, due_date=change.due_date
        )
        title, deliverable, amount, due = check_row(row, prefix, currency, errors)
        if any(k.startswith(prefix + "-") for k in errors):
            continue
        wanted = {"title": title, "deliverable": deliverable, "amount_minor": amount, "due_date": due}
        changed = {k: v for k, v in wanted.items() if getattr(m, k) != v}
        if not changed:
            continue
        if status not in rules.ADJUSTABLE:
            errors[f"{prefix}-title"] = f"“{m.title}” is {status.label.lower()} and cannot be changed."
            continue
        lines.append(
            {"kind": "adjust", "milestone": m, "before": {k: getattr(m, k) for k in changed}, "after": changed}
        )
    for n, row in enumerate(data.additions):
        if row.is_blank():
            continue
        title, deliverable, amount, due = check_row(row, f"new-{n}", currency, errors)
        if not any(k.startswith(f"new-{n}-") for k in errors):
            lines.append(
                {
                    "kind": "add",
                    "milestone": None,
                    "before": None,
                    "after": {"title": title, "deliverable": deliverable, "amount_minor": amount, "due_date": due},
                }
            )
    return lines, errors


def _delta(lines: list[dict]) -> int:
    """How much the change order moves the contract value."""
    delta = 0
    for line in lines:
        if line["kind"] == "add":
            delta += line["after"]["amount_minor"]
        elif line["kind"] == "cancel":
            delta -= line["milestone"].amount_minor
        elif "amount_minor" in line["after"]:
            delta += line["after"]["amount_minor"] - line["milestone"].amount_minor
    return delta


def schedule_totals(milestones, data: ChangeOrderInput | None, currency: str) -> tuple[int, int | None]:
    """The schedule's total now (its milestones that are not cancelled) and as it would be once ``data`` applies:
    what the change-order form shows. The second is None without ``data`` or while a typed row cannot be read
    (its field says why on issuing). Reads only; ``milestones`` are anything with the fields of a Milestone."""
    now = _contract_value(milestones)
    if data is None:
        return now, None
    lines, errors = _lines(data, {str(m.id): m for m in milestones}, currency)
    return now, None if errors else now + _delta(lines)


def _contract_value(milestones) -> int:
    return sum(m.amount_minor for m in milestones if m.status != MilestoneStatus.CANCELLED)


def _json(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}
