"""What completion billing's events tell whom (DESIGN.md section 6, "Completion billing's notices"; issue 20).
Builders like those of services/notification_events, registered there with @builds (which imports this module last).

Which event carries which notice, so that nobody hears the same thing twice or two contradictory things:

- ``invoice.advance_authorized`` (the engagement became active): the contractor's people ("Engagement X is active.
  Advance $A authorized. N tasks to complete."), the owner ("Engagement X started. Advance $A authorized. N tasks
  defined.") and, when the advance is payable at once, finance (one awaiting approval steps is its approvers' news
  first: ``invoice.approval_waiting``, then ``invoice.approval_completed`` tells finance).
- ``milestone.approved`` on a task (and ``milestone.partially_approved`` when a split approved part of it): the
  contractor may invoice it ("Task T approved; you can invoice it"), unless that approval authorized the final
  payment, which the final payment's notices cover.
- ``invoice.completion_raised``: the owner and finance, who raised it, its tasks and the amount.
- ``invoice.final_authorized``: finance, when it is payable at once; and, when it awaits approval steps (the
  engagement is not completed yet), the contractor's people and the owner hear it waits.
- ``engagement.completed_by_final``: the contractor's people and the owner, "Engagement X completed. Final payment
  $F authorized." — whether the final payment completed it at once or when its last approval step approved it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from backoffice import formatting
from backoffice.domain.completion import task_word
from backoffice.domain.invoices import InvoiceKind
from backoffice.domain.percent import format_bps
from backoffice.models import Engagement, Invoice, InvoiceTask, Milestone, Review
from backoffice.services import links
from backoffice.services.notification_events import (
    Notice,
    OrgVoice,
    Person,
    _amount_facts,
    _engagement_facts,
    _user_name,
    builds,
    contractor_name,
    contractor_people,
    finance_people,
    person,
)
from backoffice.services.validation import get_visible


@dataclass(frozen=True)
class BilledTask:
    title: str
    amount_minor: int


def billed_tasks(session, invoice_id) -> list[BilledTask]:
    """The tasks a task or final invoice bills (voided ones too: a rejected invoice's notice names what it billed),
    in the engagement's order."""
    rows = session.execute(
        select(Milestone.title, InvoiceTask.amount_minor)
        .join(Milestone, Milestone.id == InvoiceTask.milestone_id)
        .where(InvoiceTask.invoice_id == invoice_id)
        .order_by(Milestone.seq)
    ).all()
    return [BilledTask(r.title, r.amount_minor) for r in rows]


def _task_count(session, engagement_id) -> int:
    return session.execute(
        select(func.count()).where(Milestone.engagement_id == engagement_id, Milestone.status != "cancelled")
    ).scalar_one()


def _awaits_steps(invoice: Invoice) -> bool:
    """Whether the authorization started waiting for an approval policy's steps (services/invoices.awaiting_approval):
    what it was when the event happened, whatever the steps have decided since."""
    return invoice.approval_policy_id is not None


def _not_in(people: tuple[Person, ...], *told: tuple[Person, ...]) -> tuple[Person, ...]:
    """``people`` but anyone already told by another notice of the same event: one notice per person per event."""
    seen = {p.user_id for group in told for p in group}
    return tuple(p for p in people if p.user_id not in seen)


def _task_facts(org: OrgVoice, invoice: Invoice, tasks: list[BilledTask]) -> tuple[tuple[str, str], ...]:
    return tuple((f"Task “{t.title}”", org.money(t.amount_minor, invoice.currency)) for t in tasks)


def _kind(invoice: Invoice) -> str:
    return InvoiceKind(invoice.kind).label.lower()


def _payable(
    org: OrgVoice, invoice: Invoice, e: Engagement, event: str, finance: tuple[Person, ...], lead: str, facts
) -> list[Notice]:
    """Finance's notice that a payment is in the payment queue, for one approved at once; nothing for one that
    waits for approval steps (its approvers hear now, finance when the last step approves it)."""
    if _awaits_steps(invoice) or not finance:
        return []
    return [
        Notice(
            event,
            f"{event}:{invoice.id}:finance",
            finance,
            subject=f"Payable: {invoice.invoice_number} — {_kind(invoice)} "
            f"{org.money(invoice.net_minor, invoice.currency)} on {e.title}",
            lead=lead,
            facts=facts,
            path=links.invoice(invoice.id),
            action="See the payment",
            entity=("invoice", str(invoice.id)),
        )
    ]


def _waits_words(org: OrgVoice, invoice: Invoice) -> str:
    if _awaits_steps(invoice):
        return (
            f" Payments of this size need more approvals at {org.name} before finance pays them; it is payable once "
            "they are given."
        )
    return f" It is in {org.name}'s payment queue."


# --- the advance --------------------------------------------------------------------------------------------------


@builds("invoice.advance_authorized")
def _advance(session, org, invoice_id, event):
    invoice = get_visible(session, Invoice, invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    amount = org.money(invoice.gross_minor, invoice.currency)
    n = _task_count(session, e.id)
    tasks = formatting.count(n, task_word(e.billing_mode))
    contractor = contractor_name(session, e.contractor_id)
    facts = (
        *_engagement_facts(e),
        ("Contract value", org.money(e.contract_value_minor, e.currency)),
        ("Advance", f"{amount} ({format_bps(e.advance_bps)}% of the contract value)"),
        ("Invoice", invoice.invoice_number),
        ("Retainage withheld", "none: an advance pays ahead of the work"),
        ("Due", org.day(invoice.due_date)),
        ("Tasks", str(n)),
        ("Confirmed by", _user_name(session, e.advance_confirmed_by)),
    )
    workers = contractor_people(session, e.contractor_id)
    owner = _not_in(person(session, e.owner_user_id), workers)
    finance = _not_in(finance_people(session), workers, owner)
    notices = [
        Notice(
            event,
            f"{event}:{invoice.id}:contractor",
            workers,
            subject=f"Engagement {e.title} is active — advance {amount} authorized",
            lead=f"Engagement “{e.title}” is active. Advance {amount} authorized. {tasks} to complete."
            + _waits_words(org, invoice),
            facts=facts,
            path=links.engagement(e.id),
            action="Open the engagement",
            entity=("invoice", str(invoice.id)),
        ),
        Notice(
            event,
            f"{event}:{invoice.id}:owner",
            owner,
            subject=f"Engagement {e.title} started — advance {amount} authorized",
            lead=f"Engagement “{e.title}” started. Advance {amount} authorized. {tasks} defined."
            + _waits_words(org, invoice),
            facts=(*facts, ("Contractor", contractor)),
            path=links.engagement(e.id),
            action="Open the engagement",
            entity=("invoice", str(invoice.id)),
        ),
    ]
    notices += _payable(
        org,
        invoice,
        e,
        event,
        finance,
        f"The advance on “{e.title}” to {contractor} is authorized and in the payment queue: {amount}, paid ahead of "
        "the work, nothing withheld.",
        (*_engagement_facts(e), ("Contractor", contractor), *_amount_facts(org, invoice)),
    )
    return [n for n in notices if n.recipients]


# --- a task approved ----------------------------------------------------------------------------------------------


def task_decided(session, org: OrgVoice, review: Review, m: Milestone, e: Engagement, event: str) -> list[Notice]:
    """A task approved (in full, or the part a split partial approval approved): the contractor's people may invoice
    it. Nothing when this approval authorized the final payment (the final payment's notices say it)."""
    final = session.execute(
        select(Invoice.id)
        .join(InvoiceTask, InvoiceTask.invoice_id == Invoice.id)
        .where(
            Invoice.engagement_id == e.id,
            Invoice.kind == InvoiceKind.FINAL.value,
            InvoiceTask.milestone_id == m.id,
            Invoice.authorized_at == review.reviewed_at,  # both the approving transaction's now()
        )
    ).first()
    if final is not None:
        return []
    amount = org.money(review.approved_amount_minor or m.amount_minor, e.currency)
    if review.decision == "approve":
        subject = f"Task {m.title} approved; you can invoice it"
        lead = (
            f"Task “{m.title}” approved; you can invoice it ({amount}), alone or with other approved tasks, "
            "when you choose."
        )
    else:
        subject = f"Task {m.title} partly approved; you can invoice {amount}"
        lead = (
            f"{org.name} approved part of the task “{m.title}”: {amount}, which you can invoice when you choose. "
            "The remainder is a new task."
        )
    return [
        Notice(
            event,
            f"{event}:{review.id}",
            contractor_people(session, m.contractor_id),
            subject=subject,
            lead=lead,
            facts=(
                *_engagement_facts(e),
                ("Task", m.title),
                ("Amount", amount),
                ("Decided by", _user_name(session, review.reviewed_by)),
            ),
            quote=review.reason or None,
            path=links.invoice_tasks(e.id),
            action="Invoice approved tasks",
            entity=("milestone", str(m.id)),
        )
    ]


# --- a task invoice raised ----------------------------------------------------------------------------------------


@builds("invoice.completion_raised")
def _raised(session, org, invoice_id, event):
    invoice = get_visible(session, Invoice, invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    contractor = contractor_name(session, e.contractor_id)
    raiser = _user_name(session, invoice.raised_by)
    tasks = billed_tasks(session, invoice.id)
    amount = org.money(invoice.gross_minor, invoice.currency)
    count = formatting.count(len(tasks), "approved task")
    owner = person(session, e.owner_user_id)
    people = owner + _not_in(finance_people(session), owner)
    return [
        Notice(
            event,
            f"{event}:{invoice.id}",
            people,
            subject=f"Invoice {invoice.invoice_number} from {contractor}: {count} — {amount}",
            lead=f"{raiser} of {contractor} invoiced {count} of “{e.title}”: "
            + ", ".join(f"“{t.title}”" for t in tasks)
            + f", {amount} in all."
            + _waits_words(org, invoice),
            facts=(
                *_engagement_facts(e),
                ("Raised by", f"{raiser} ({contractor})"),
                *_task_facts(org, invoice, tasks),
                *_amount_facts(org, invoice),
            ),
            path=links.invoice(invoice.id),
            action="See the invoice",
            entity=("invoice", str(invoice.id)),
        )
    ]


# --- the final payment --------------------------------------------------------------------------------------------


def _final_facts(session, org: OrgVoice, e: Engagement, invoice: Invoice) -> tuple[tuple[str, str], ...]:
    tasks = billed_tasks(session, invoice.id)
    rest = invoice.gross_minor - sum(t.amount_minor for t in tasks)
    return (
        *_engagement_facts(e),
        ("Contract value", org.money(e.contract_value_minor, e.currency)),
        *_task_facts(org, invoice, tasks),
        *((("Advance, paid with the final payment", org.money(rest, invoice.currency)),) if rest else ()),
        *_amount_facts(org, invoice),
    )


@builds("invoice.final_authorized")
def _final(session, org, invoice_id, event):
    """Finance hears of a final payment payable at once; one that waits for approval steps tells both sides it
    waits (the engagement completes when it is approved: ``engagement.completed_by_final`` says so)."""
    invoice = get_visible(session, Invoice, invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    contractor = contractor_name(session, e.contractor_id)
    amount = org.money(invoice.gross_minor, invoice.currency)
    facts = _final_facts(session, org, e, invoice)
    if not _awaits_steps(invoice):
        return _payable(
            org,
            invoice,
            e,
            event,
            finance_people(session),
            f"Every task of “{e.title}” is approved: the final payment to {contractor}, {amount}, is authorized and in "
            f"the payment queue ({org.money(invoice.net_minor, invoice.currency)} payable after retainage).",
            (*facts[:1], ("Contractor", contractor), *facts[1:]),
        )
    workers = contractor_people(session, e.contractor_id)
    lead = (
        f"Every task of “{e.title}” is approved. Final payment {amount} authorized; it waits for more approvals at "
        f"{org.name} before finance pays it, and the engagement is completed once they are given."
    )
    return [
        Notice(
            event,
            f"{event}:{invoice.id}:{who}",
            people,
            subject=f"Final payment {amount} on {e.title} waits for its approvals",
            lead=lead,
            facts=facts,
            path=path,
            action=action,
            entity=("invoice", str(invoice.id)),
        )
        for who, people, path, action in (
            ("contractor", workers, links.invoice(invoice.id), "See the payment"),
            (
                "owner",
                _not_in(person(session, e.owner_user_id), workers),
                links.engagement(e.id),
                "Open the engagement",
            ),
        )
        if people
    ]


@builds("engagement.completed_by_final")
def _completed(session, org, engagement_id, event):
    e = get_visible(session, Engagement, engagement_id)
    invoice = session.execute(
        select(Invoice).where(
            Invoice.engagement_id == e.id, Invoice.kind == InvoiceKind.FINAL.value, Invoice.voided_at.is_(None)
        )
    ).scalar_one()
    amount = org.money(invoice.gross_minor, invoice.currency)
    words = f"Engagement “{e.title}” completed. Final payment {amount} authorized."
    facts = _final_facts(session, org, e, invoice)
    workers = contractor_people(session, e.contractor_id)
    owner = _not_in(person(session, e.owner_user_id), workers)
    return [
        Notice(
            event,
            f"{event}:{e.id}:{who}",
            people,
            subject=f"Engagement {e.title} completed — final payment {amount} authorized",
            lead=words + tail,
            facts=facts,
            path=path,
            action=action,
            entity=("engagement", str(e.id)),
        )
        for who, people, tail, path, action in (
            (
                "contractor",
                workers,
                f" It is in {org.name}'s payment queue; you hear when it is paid.",
                links.invoice(invoice.id),
                "See the payment",
            ),
            (
                "owner",
                owner,
                f" Every task is approved and the contract value, {org.money(e.contract_value_minor, e.currency)}, "
                "is invoiced in full.",
                links.engagement(e.id),
                "Open the engagement",
            ),
        )
        if people
    ]
