"""What each event tells whom (DESIGN.md section 6): the notices one event produces.

A builder reads the event's rows as the organization's worker and returns a Notice per group of people
told the same thing; ``notifications.notify`` turns each into an email and an in-app notification per
person. The words are here, the layout is in ``templates/email/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.domain.completion import BillingMode, task_word
from backoffice.domain.invoices import InvoiceKind
from backoffice.domain.milestone_status import decision_status
from backoffice.domain.percent import format_bps
from backoffice.domain.reviews import Decision, PartialPolicy, returns_to_contractor
from backoffice.domain.roles import Role
from backoffice.models import (
    ApExportBatch,
    ChangeOrder,
    Contractor,
    Engagement,
    EvidenceFile,
    Invoice,
    Membership,
    Milestone,
    Organization,
    Review,
    Submission,
    User,
)
from backoffice.services import links
from backoffice.services.validation import get_visible


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    email: str
    name: str


@dataclass(frozen=True)
class OrgVoice:
    """Whose voice the message speaks in, and how it writes amounts and dates."""

    id: uuid.UUID
    name: str
    locale: str

    def money(self, minor: int, currency: str) -> str:
        return formatting.money(minor, currency, self.locale)

    def day(self, value: date) -> str:
        return formatting.day(value, self.locale)


@dataclass(frozen=True)
class Moment:
    """A moment a notice states, written on each reader's clock when their email is rendered (their time zone:
    issue 22); in UTC wherever no reader is known (``str``)."""

    value: datetime
    locale: str

    def on(self, tz) -> str:
        return formatting.moment(self.value, self.locale, tz)

    def __str__(self) -> str:
        return formatting.moment(self.value, self.locale)


@dataclass(frozen=True)
class Notice:
    event: str
    key: str  # the event's own key: one message per key and person, however often the job runs
    recipients: tuple[Person, ...]
    subject: str
    lead: str
    path: str  # where the link leads, inside the app
    action: str
    facts: tuple[tuple[str, str | Moment], ...] = ()
    quote: str | None = None  # a person's own words: a reason
    quote_label: str = "Reason"
    entity: tuple[str, str] = ("", "")
    in_app: bool = True  # also a notification in the app (not for invitations and password resets)
    per_person_path: dict[uuid.UUID, str] = field(default_factory=dict)
    audit_head: str | None = None  # the org's chain head (audit_chain.head_line), kept outside the database
    # Held for the daily digest of a person who chose it (services/digests). Not a digest itself: the finance and
    # admins' digests are one email a day already, and the admins' carries the chain head, which must leave daily.
    digestible: bool = True

    def path_for(self, person: Person) -> str:
        return self.per_person_path.get(person.user_id, self.path)


def org_voice(session: Session, org_id: uuid.UUID) -> OrgVoice:
    org = session.get(Organization, org_id)
    return OrgVoice(org.id, org.name, org.locale)


# --- who ----------------------------------------------------------------------------------------------


def _people(session: Session, *where) -> tuple[Person, ...]:
    rows = session.execute(
        select(User.id, User.email, User.name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.accepted_at.is_not(None), User.is_active, *where)
        .order_by(User.email)
    ).all()
    return tuple(Person(r.id, r.email, r.name) for r in rows)


def contractor_people(session: Session, contractor_id: uuid.UUID) -> tuple[Person, ...]:
    return _people(session, Membership.role == Role.CONTRACTOR.value, Membership.contractor_id == contractor_id)


def finance_people(session: Session) -> tuple[Person, ...]:
    return _people(session, Membership.role == Role.FINANCE.value)


def admin_people(session: Session) -> tuple[Person, ...]:
    return _people(session, Membership.role == Role.ADMIN.value)


def person(session: Session, user_id: uuid.UUID) -> tuple[Person, ...]:
    """The one person, while they still belong to the organization (else nobody)."""
    return _people(session, User.id == user_id)


def contractor_name(session: Session, contractor_id: uuid.UUID) -> str:
    return session.execute(select(Contractor.legal_name).where(Contractor.id == contractor_id)).scalar_one()


def _user_name(session: Session, user_id: uuid.UUID | None) -> str:
    if user_id is None:
        return "someone"
    return session.execute(select(User.name).where(User.id == user_id)).scalar_one_or_none() or "a former member"


def _engagement_facts(engagement: Engagement) -> tuple[tuple[str, str], ...]:
    facts = (("Engagement", engagement.title),)
    return facts + ((("SOW reference", engagement.sow_reference),) if engagement.sow_reference else ())


# --- events -------------------------------------------------------------------------------------------

Builder = Callable[[Session, OrgVoice, uuid.UUID, str], list[Notice]]
BUILDERS: dict[str, Builder] = {}


def builds(*events: str):
    def register(fn: Builder) -> Builder:
        for event in events:
            BUILDERS[event] = fn
        return fn

    return register


def notices_for(session: Session, org: OrgVoice, event: str, entity_id: uuid.UUID) -> list[Notice]:
    return BUILDERS[event](session, org, entity_id, event)


@builds("engagement.work_request_sent")
def _work_request_sent(session, org, engagement_id, event):
    e = get_visible(session, Engagement, engagement_id)
    count, value = session.execute(
        select(func.count(), func.coalesce(func.sum(Milestone.amount_minor), 0)).where(
            Milestone.engagement_id == e.id, Milestone.status != "cancelled"
        )
    ).one()
    tasks = task_word(e.billing_mode, plural=True)
    terms: tuple[tuple[str, str], ...] = (
        (tasks.capitalize(), str(count)),
        ("Contract value", org.money(value, e.currency)),
    )
    if e.billing_mode == BillingMode.COMPLETION:
        # The contract value is the engagement's own; the tasks share it less the advance, paid when you accept.
        terms = (
            ("Billing", BillingMode.COMPLETION.label),
            (tasks.capitalize(), f"{count}, {org.money(value, e.currency)} in all"),
            ("Contract value", org.money(e.contract_value_minor, e.currency)),
            ("Advance", f"{org.money(e.advance_minor, e.currency)} ({format_bps(e.advance_bps)}%), when you accept"),
        )
    return [
        Notice(
            "engagement.work_request_sent",
            f"engagement.sent:{e.id}",
            contractor_people(session, e.contractor_id),
            subject=f"{org.name} sent you a work request: {e.title}",
            lead=f"{org.name} would like you to take on “{e.title}”. "
            f"Review the {tasks} and terms, then accept or decline.",
            facts=(
                *_engagement_facts(e),
                *terms,
                ("Retainage", f"{format_bps(e.retainage_bps)}%"),
                ("Payment terms", f"{e.payment_terms_days} days"),
                ("Sent by", _user_name(session, e.sent_by)),
            ),
            path=links.engagement(e.id),
            action="Review the work request",
            entity=("engagement", str(e.id)),
        )
    ]


@builds("engagement.work_request_accepted", "engagement.work_request_declined")
def _work_request_answered(session, org, engagement_id, event):
    e = get_visible(session, Engagement, engagement_id)
    contractor = contractor_name(session, e.contractor_id)
    accepted = event == "engagement.work_request_accepted"
    verb = "accepted" if accepted else "declined"
    return [
        Notice(
            f"engagement.work_request_{verb}",
            f"engagement.{verb}:{e.id}",
            person(session, e.owner_user_id),
            subject=f"{contractor} {verb} the work request: {e.title}",
            lead=(
                f"{contractor} accepted “{e.title}”. Work can start; you will hear when a "
                f"{task_word(e.billing_mode)} is submitted."
                if accepted
                else f"{contractor} declined “{e.title}”. You can change the terms and send it again, or cancel it."
            ),
            facts=(
                *_engagement_facts(e),
                ("Contractor", contractor),
                ("Answered by", _user_name(session, e.responded_by)),
            ),
            quote=None if accepted else e.decline_reason,
            path=links.engagement(e.id),
            action="Open the engagement",
            entity=("engagement", str(e.id)),
        )
    ]


@builds("milestone.submitted")
def _submitted(session, org, submission_id, event):
    s = get_visible(session, Submission, submission_id)
    m = session.get(Milestone, s.milestone_id)
    e = session.get(Engagement, m.engagement_id)
    files = session.execute(select(func.count()).where(EvidenceFile.submission_id == s.id)).scalar_one()
    contractor = contractor_name(session, m.contractor_id)
    return [
        Notice(
            "milestone.submitted",
            f"milestone.submitted:{s.id}",
            person(session, e.owner_user_id),
            subject=f"Ready for review: {m.title} ({contractor})",
            lead=f"{contractor} marked “{m.title}” complete and sent evidence. "
            "Approve it, approve part of it, or dispute it.",
            facts=(
                *_engagement_facts(e),
                (task_word(e.billing_mode, capital=True), m.title),
                ("Amount", org.money(m.amount_minor, e.currency)),
                ("Revision", str(s.revision)),
                ("Evidence", f"{files} file(s), {len(s.links)} link(s)"),
                ("Submitted by", _user_name(session, s.submitted_by)),
            ),
            quote=s.note or None,
            quote_label="Note from the contractor",
            path=links.milestone(m.id),
            action="Review the submission",
            entity=("milestone", str(m.id)),
        )
    ]


def _amount_facts(org: OrgVoice, invoice: Invoice) -> tuple[tuple[str, str], ...]:
    c = invoice.currency
    kind = InvoiceKind(invoice.kind)
    return (
        # A milestone's invoice is named by its milestone; any other kind says what it pays for (an advance, ...).
        (
            "Invoice",
            invoice.invoice_number if kind == InvoiceKind.MILESTONE else f"{invoice.invoice_number} ({kind.label})",
        ),
        ("Gross", org.money(invoice.gross_minor, c)),
        ("Retainage withheld", f"{org.money(invoice.retainage_minor, c)} ({format_bps(invoice.retainage_bps)}%)"),
        ("Net payable", org.money(invoice.net_minor, c)),
        ("Due", org.day(invoice.due_date)),
    )


@builds("milestone.approved", "milestone.partially_approved", "milestone.disputed")
def _decided(session, org, review_id, event):
    r = get_visible(session, Review, review_id)
    m = session.get(Milestone, r.milestone_id)
    e = session.get(Engagement, m.engagement_id)
    invoice = session.execute(select(Invoice).where(Invoice.review_id == r.id)).scalar_one_or_none()
    policy = PartialPolicy(r.partial_policy) if r.partial_policy else None
    if e.billing_mode == BillingMode.COMPLETION and not returns_to_contractor(Decision(r.decision), policy):
        # A task approved authorizes nothing by itself: the contractor may invoice it (services/completion_notices).
        return completion_notices.task_decided(session, org, r, m, e, event)
    reviewer = _user_name(session, r.reviewed_by)
    people = contractor_people(session, m.contractor_id)
    word = task_word(e.billing_mode)
    base = (*_engagement_facts(e), (word.capitalize(), m.title), ("Decided by", reviewer))
    if r.decision == "approve":
        return [
            Notice(
                "milestone.approved",
                f"milestone.approved:{r.id}",
                people,
                subject=f"Approved: {m.title} — {org.money(invoice.net_minor, invoice.currency)} "
                + ("waiting for its approvals" if invoice.status == "pending_approval" else "queued for payment"),
                lead=f"{org.name} approved “{m.title}”. "
                + (
                    "Payments of this size need more approvals at "
                    f"{org.name} before finance pays them; you hear when it is payable or if it comes back."
                    if invoice.status == "pending_approval"
                    else "The payment is authorized and waiting in the finance team's queue."
                ),
                facts=base + _amount_facts(org, invoice),
                path=links.invoice(invoice.id),
                action="See the payment",
                entity=("milestone", str(m.id)),
            )
        ]
    if r.decision == "partial":
        lead = (
            f"{org.name} approved part of “{m.title}”: {org.money(r.approved_amount_minor, e.currency)} is queued for "
            "payment and the remainder is a new milestone."
            if invoice is not None
            else f"{org.name} requested changes to “{m.title}” and sent it back to you. Read the reason, then submit "
            "again."
        )
        return [
            Notice(
                "milestone.partially_approved",
                f"milestone.partial:{r.id}",
                people,
                # The words every page uses for this decision: a route-back partial is "Changes requested".
                subject=f"{decision_status(r.decision, r.partial_policy).words}: {m.title}",
                lead=lead,
                facts=base + (_amount_facts(org, invoice) if invoice is not None else ()),
                quote=r.reason,
                path=links.milestone(m.id),
                action=f"Open the {word}",
                entity=("milestone", str(m.id)),
            )
        ]
    return [
        Notice(
            "milestone.disputed",
            f"milestone.disputed:{r.id}",
            people,
            subject=f"Disputed: {m.title}",
            lead=f"{org.name} disputed “{m.title}” and sent it back to you. Read the reason, then submit again.",
            facts=base,
            quote=r.reason,
            path=links.milestone(m.id),
            action=f"Open the {word}",
            entity=("milestone", str(m.id)),
        )
    ]


@builds("change_order.issued")
def _change_order(session, org, change_order_id, event):
    co = get_visible(session, ChangeOrder, change_order_id)
    e = session.get(Engagement, co.engagement_id)
    return [
        Notice(
            "change_order.issued",
            f"change_order.issued:{co.id}",
            contractor_people(session, e.contractor_id),
            subject=f"Change order CO-{co.number} on {e.title}",
            lead=f"{org.name} changed the {task_word(e.billing_mode, plural=True)} of “{e.title}”. "
            "The engagement page shows every change.",
            facts=(
                *_engagement_facts(e),
                ("Change order", f"CO-{co.number}"),
                ("Contract value before", org.money(co.contract_value_before, e.currency)),
                ("Contract value after", org.money(co.contract_value_after, e.currency)),
                ("Issued by", _user_name(session, co.created_by)),
            ),
            quote=co.reason,
            path=links.engagement(e.id),
            action="See the change order",
            entity=("engagement", str(e.id)),
        )
    ]


@builds("batch.exported")
def _batch_exported(session, org, batch_id, event):
    b = get_visible(session, ApExportBatch, batch_id)
    return [
        Notice(
            "batch.exported",
            f"batch.exported:{b.id}",
            finance_people(session),
            subject=f"AP export batch {b.number}: {formatting.count(b.row_count, 'payment')}, "
            f"{org.money(b.total_minor, b.currency)}",
            lead=f"Batch {b.number} is ready to import into your accounting system. "
            "Record its payment once the run is made.",
            facts=(
                ("Batch", str(b.number)),
                ("Payments", str(b.row_count)),
                ("Total", org.money(b.total_minor, b.currency)),
                ("Layout", b.preset.replace("_", " ").title()),
                ("SHA-256", b.sha256),
                ("Exported by", _user_name(session, b.created_by)),
            ),
            path=links.batch(b.id),
            action="Open the batch",
            entity=("ap_export_batch", str(b.id)),
        )
    ]


@builds("retainage.released")
def _released(session, org, invoice_id, event):
    invoice = get_visible(session, Invoice, invoice_id)
    e = session.get(Engagement, invoice.engagement_id)
    return [
        Notice(
            "retainage.released",
            f"retainage.released:{invoice.id}",
            contractor_people(session, e.contractor_id),
            subject=f"Retainage released: {org.money(invoice.net_minor, invoice.currency)} on {e.title}",
            lead=f"{org.name} released the retainage it held on “{e.title}”. The payment is authorized and queued.",
            facts=(
                *_engagement_facts(e),
                ("Invoice", invoice.invoice_number),
                ("Amount released", org.money(invoice.net_minor, invoice.currency)),
                ("Due", org.day(invoice.due_date)),
                ("Released by", _user_name(session, invoice.authorized_by)),
            ),
            quote=invoice.release_reason,
            path=links.invoice(invoice.id),
            action="See the payment",
            entity=("invoice", str(invoice.id)),
        )
    ]


@builds("review.overdue")
def _overdue(session, org, submission_id, event):
    s = get_visible(session, Submission, submission_id)
    m = session.get(Milestone, s.milestone_id)
    e = session.get(Engagement, m.engagement_id)
    sla = session.execute(select(Organization.review_sla_days).where(Organization.id == org.id)).scalar_one()
    contractor = contractor_name(session, m.contractor_id)
    return [
        Notice(
            "review.overdue",
            f"review.overdue:{s.id}",
            person(session, e.owner_user_id),
            subject=f"Waiting for your review: {m.title} ({contractor})",
            lead=f"“{m.title}” has waited for a decision for more than {sla} day(s), "
            f"the review time {org.name} aims for. {contractor} is not paid until you decide.",
            facts=(
                *_engagement_facts(e),
                (task_word(e.billing_mode, capital=True), m.title),
                ("Amount", org.money(m.amount_minor, e.currency)),
                ("Submitted", Moment(s.submitted_at, org.locale)),
                ("Review time", f"{sla} day(s)"),
            ),
            path=links.milestone(m.id),
            action="Review it now",
            entity=("milestone", str(m.id)),
        )
    ]


# The payments' notices (a payment run, the Stripe rail's events, the reconciliation), the payment controls' (issue 18),
# the award flow's (issue 19), completion billing's (issue 20) and self-billing's (issue 21) are in their own modules,
# which register them here with @builds: imported last, once every name they use from this one is defined.
from backoffice.services import (  # noqa: E402, F401
    approval_notices,
    completion_notices,
    payment_notices,
    project_notices,
    self_billing_notices,
)
