"""What each event tells whom (DESIGN.md section 6): the notices one event produces.

A builder reads the event's rows as the organization's worker and returns a Notice per group of people
told the same thing; ``notifications.notify`` turns each into an email and an in-app notification per
person. The words are here, the layout is in ``templates/email/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.domain.payouts import payout_failure_words
from backoffice.domain.percent import format_bps
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
    Payment,
    PayoutAccount,
    RailEvent,
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
class Notice:
    event: str
    key: str  # the event's own key: one message per key and person, however often the job runs
    recipients: tuple[Person, ...]
    subject: str
    lead: str
    path: str  # where the link leads, inside the app
    action: str
    facts: tuple[tuple[str, str], ...] = ()
    quote: str | None = None  # a person's own words: a reason
    quote_label: str = "Reason"
    entity: tuple[str, str] = ("", "")
    in_app: bool = True  # also a notification in the app (not for invitations and password resets)
    per_person_path: dict[uuid.UUID, str] = field(default_factory=dict)
    audit_head: str | None = None  # the org's chain head (audit_chain.head_line), kept outside the database

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


def _contractor_name(session: Session, contractor_id: uuid.UUID) -> str:
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
    return [
        Notice(
            "engagement.work_request_sent",
            f"engagement.sent:{e.id}",
            contractor_people(session, e.contractor_id),
            subject=f"{org.name} sent you a work request: {e.title}",
            lead=f"{org.name} would like you to take on “{e.title}”. "
            "Review the milestones and terms, then accept or decline.",
            facts=(
                *_engagement_facts(e),
                ("Milestones", str(count)),
                ("Contract value", org.money(value, e.currency)),
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
    contractor = _contractor_name(session, e.contractor_id)
    accepted = event == "engagement.work_request_accepted"
    verb = "accepted" if accepted else "declined"
    return [
        Notice(
            f"engagement.work_request_{verb}",
            f"engagement.{verb}:{e.id}",
            person(session, e.owner_user_id),
            subject=f"{contractor} {verb} the work request: {e.title}",
            lead=(
                f"{contractor} accepted “{e.title}”. Work can start; you will hear when a milestone is submitted."
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
    contractor = _contractor_name(session, m.contractor_id)
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
                ("Milestone", m.title),
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
    return (
        ("Invoice", invoice.invoice_number),
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
    reviewer = _user_name(session, r.reviewed_by)
    people = contractor_people(session, m.contractor_id)
    base = (*_engagement_facts(e), ("Milestone", m.title), ("Decided by", reviewer))
    if r.decision == "approve":
        return [
            Notice(
                "milestone.approved",
                f"milestone.approved:{r.id}",
                people,
                subject=f"Approved: {m.title} — {org.money(invoice.net_minor, invoice.currency)} queued for payment",
                lead=f"{org.name} approved “{m.title}”. "
                "The payment is authorized and waiting in the finance team's queue.",
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
            else f"{org.name} approved part of “{m.title}” and sent it back to you. Read the reason, then submit again."
        )
        return [
            Notice(
                "milestone.partially_approved",
                f"milestone.partial:{r.id}",
                people,
                subject=f"Partly approved: {m.title}",
                lead=lead,
                facts=base + (_amount_facts(org, invoice) if invoice is not None else ()),
                quote=r.reason,
                path=links.milestone(m.id),
                action="Open the milestone",
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
            action="Open the milestone",
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
            lead=f"{org.name} changed the milestones of “{e.title}”. The engagement page shows every change.",
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


@builds("payment.run")
def _payment_run(session, org, run_id, event):
    """A payment run, whatever its rail (services/remittance_advice): each contractor paid hears once, every invoice
    paid to it listed, with the link to its remittance advice; each engagement owner once, about their engagements'."""
    from backoffice.services.remittance_advice import Remittance, remittances

    run_id = uuid.UUID(str(run_id))
    paid = remittances(session, run_id)
    notices = [_paid_to_contractor(session, org, event, r) for r in paid]
    by_owner: dict[uuid.UUID, list] = {}
    for r in paid:
        name = _contractor_name(session, r.contractor_id)
        for line in r.lines:
            by_owner.setdefault(line.owner_user_id, []).append((name, line))
    for owner_id, named in by_owner.items():
        if owner := person(session, owner_id):
            lines = Remittance(run_id, None, tuple(line for _, line in named))
            notices.append(_paid_on_engagements(org, event, owner, [name for name, _ in named], lines))
    return notices


def _paid_line(r, line, amounts: str) -> tuple[str, str]:
    """An invoice the run paid, as a fact: its number, then what it was for and the amounts (and its own reference,
    when the run's payments have one each)."""
    return line.invoice_number, f"{line.description}: {amounts}" + (
        "" if r.reference else f" (reference {line.reference})"
    )


def _total_paid(org: OrgVoice, r) -> str:
    return ", ".join(org.money(net, currency) for currency, (_, _, net) in r.totals().items())


def _run_facts(org: OrgVoice, r) -> tuple[tuple[str, str], ...]:
    first, last = r.paid_on
    return (
        ("Total paid", _total_paid(org, r)),
        ("Paid on", org.day(first) if first == last else f"{org.day(first)} to {org.day(last)}"),
        ("Reference", r.reference or "each invoice's, above"),
        ("Paid by", r.paid_by),
    )


def _paid_to_contractor(session, org, event, r):
    total, n = _total_paid(org, r), len(r.lines)

    def amounts(line) -> str:
        c = line.currency
        return (
            f"gross {org.money(line.gross_minor, c)}, retainage {org.money(line.retainage_minor, c)}, "
            f"net {org.money(line.net_minor, c)}"
        )

    return Notice(
        event,
        f"{event}:{r.run_id}:{r.contractor_id}",
        contractor_people(session, r.contractor_id),
        subject=f"Paid: {r.lines[0].invoice_number if n == 1 else formatting.count(n, 'invoice')} — {total}",
        lead=f"{org.name} paid you {total} for {formatting.count(n, 'invoice')}. The remittance advice lists each "
        "invoice's gross, retainage withheld and net paid.",
        facts=(*(_paid_line(r, line, amounts(line)) for line in r.lines), *_run_facts(org, r)),
        path=links.remittance_advice(r.run_id, r.contractor_id),
        action="Download the remittance advice",
        entity=("payment_run", str(r.run_id)),
    )


def _paid_on_engagements(org, event, owner, names, r):
    """An engagement owner's notice: the run's payments on their engagements (``r``), to whichever contractors."""
    total, first, n = _total_paid(org, r), r.lines[0], len(r.lines)
    if n == 1:
        subject = f"Paid: {first.invoice_number} to {names[0]} — {total}"
        lead = f"{first.invoice_number} to {names[0]} for “{first.engagement_title}” is paid ({r.paid_by})."
        path, action = links.invoice(first.invoice_id), "See the payment"
    else:
        subject = f"Paid: {formatting.count(n, 'invoice')} on your engagements — {total}"
        lead = f"{formatting.count(n, 'invoice')} on your engagements are paid ({r.paid_by})."
        if len({line.engagement_id for line in r.lines}) == 1:
            path, action = links.engagement(first.engagement_id), "Open the engagement"
        else:
            path, action = links.invoice(first.invoice_id), "See the first payment"
    return Notice(
        event,
        f"{event}:{r.run_id}:owner",
        owner,
        subject=subject,
        lead=lead,
        facts=(
            *(
                _paid_line(r, line, f"{org.money(line.net_minor, line.currency)} to {name}")
                for name, line in zip(names, r.lines, strict=True)
            ),
            *_run_facts(org, r),
        ),
        path=path,
        action=action,
        entity=("payment_run", str(r.run_id)),
    )


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


@builds("payout.paid", "payout.failed")
def _payout(session, org, rail_event_id, event):
    """A connected account's payout to its bank (Stripe's payout.paid or payout.failed, issue 17): its contractor's
    people are told the money reached the bank, or why it did not."""
    rail_event = session.execute(select(RailEvent).where(RailEvent.id == rail_event_id)).scalar_one()
    payout = (rail_event.payload.get("data") or {}).get("object") or {}
    account = session.execute(
        select(PayoutAccount).where(
            PayoutAccount.rail == rail_event.rail, PayoutAccount.external_id == rail_event.account
        )
    ).scalar_one()
    currency = str(payout.get("currency") or "usd").upper()
    amount = org.money(int(payout.get("amount") or 0), currency)
    arrival = payout.get("arrival_date")
    arrival_day = datetime.fromtimestamp(int(arrival), UTC).date() if arrival else None
    facts = [("Amount", amount), ("Stripe payout", str(payout.get("id") or "—"))]
    if event == "payout.paid":
        subject = f"{amount} paid out to your bank"
        lead = f"Stripe paid {amount} from your Stripe balance out to your bank account."
        if arrival_day:
            facts.append(("Expected in your bank by", org.day(arrival_day)))
    else:
        reason = payout_failure_words(payout.get("failure_code"))
        subject = f"A payout of {amount} to your bank failed"
        lead = (
            f"Stripe could not pay {amount} out to your bank: {reason}. The money stays in your Stripe balance; "
            "update your bank details at Stripe from your Payments page."
        )
        facts.append(("Why", reason))
    return [
        Notice(
            event,
            f"{event}:{payout.get('id') or rail_event.event_id}",
            contractor_people(session, account.contractor_id),
            subject=subject,
            lead=lead,
            facts=tuple(facts),
            path=links.my_payments(),
            action="See your payout account",
            entity=("contractor", str(account.contractor_id)),
        )
    ]


@builds("payout.refused")
def _payout_refused(session, org, run_id, event):
    """Finance hears once per payment run, when its last attempt ended, of every payment Stripe refused and why."""
    from backoffice.services.stripe_transfers import refused_in_run

    refused = refused_in_run(session, uuid.UUID(str(run_id)))
    if not refused:
        return []
    count = len(refused)
    facts = tuple((number, f"{org.money(amount, currency)}: {why}") for number, currency, amount, why in refused[:20])
    if count > 20:
        facts += (("And", f"{count - 20} more"),)
    return [
        Notice(
            event,
            f"{event}:{run_id}",
            finance_people(session) + admin_people(session),
            subject=f"Stripe refused {count} payment{'' if count == 1 else 's'}; on hold",
            lead=f"Stripe did not make {'this transfer' if count == 1 else 'these transfers'}. Each invoice is on hold "
            "with the reason; once it is fixed, release the hold and send it again (or pay it another way).",
            facts=facts,
            path=links.payments_on_hold(),
            action="See the payments on hold",
            entity=("payout_run", str(run_id)),
        )
    ]


@builds("payment.reversed")
def _reversed(session, org, payment_id, event):
    """Stripe reversed a transfer: the contractor and finance hear that the payment no longer stands."""
    p = get_visible(session, Payment, payment_id)
    invoice = session.get(Invoice, p.invoice_id)
    contractor = _contractor_name(session, p.contractor_id)
    amount = org.money(p.amount_minor, p.currency)
    facts = (
        ("Invoice", invoice.invoice_number),
        ("Amount", amount),
        ("Stripe transfer", p.reference),
        ("Reversal", p.reversal_reference or "—"),
    )
    return [
        Notice(
            event,
            f"{event}:{p.id}",
            contractor_people(session, p.contractor_id),
            subject=f"Payment reversed: {invoice.invoice_number} — {amount}",
            lead=f"The transfer of {amount} for {invoice.invoice_number} was reversed at Stripe, so it no longer "
            f"counts as paid. {org.name}'s finance team has it on hold and will be in touch.",
            facts=facts,
            path=links.invoice(invoice.id),
            action="See the invoice",
            entity=("invoice", str(invoice.id)),
        ),
        Notice(
            event,
            f"{event}:{p.id}",
            finance_people(session) + admin_people(session),
            subject=f"Stripe reversed {invoice.invoice_number} to {contractor} — {amount}",
            lead=f"The transfer paying {invoice.invoice_number} to {contractor} was reversed at Stripe: the payment is "
            "reversed in the ledger and the invoice is on hold. Release the hold to pay it again.",
            facts=facts,
            path=links.invoice(invoice.id),
            action="See the invoice",
            entity=("invoice", str(invoice.id)),
        ),
    ]


@builds("review.overdue")
def _overdue(session, org, submission_id, event):
    s = get_visible(session, Submission, submission_id)
    m = session.get(Milestone, s.milestone_id)
    e = session.get(Engagement, m.engagement_id)
    sla = session.execute(select(Organization.review_sla_days).where(Organization.id == org.id)).scalar_one()
    contractor = _contractor_name(session, m.contractor_id)
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
                ("Milestone", m.title),
                ("Amount", org.money(m.amount_minor, e.currency)),
                ("Submitted", formatting.moment(s.submitted_at, org.locale)),
                ("Review time", f"{sla} day(s)"),
            ),
            path=links.milestone(m.id),
            action="Review it now",
            entity=("milestone", str(m.id)),
        )
    ]


@builds("reconciliation.findings")
def _reconciliation_findings(session, org, run_id, event):
    """Finance and admins hear when a reconciliation with Stripe finds something the run before did not."""
    from backoffice.queries.reconciliation import findings_of

    rows = findings_of(session, uuid.UUID(str(run_id)))
    if not rows:
        return []
    count = len(rows)
    facts = tuple((r.finding.kind.label, r.finding.words) for r in rows[:10])
    if count > 10:
        facts += (("And", f"{count - 10} more on the reconciliation page"),)
    return [
        Notice(
            event,
            f"{event}:{run_id}",
            finance_people(session) + admin_people(session),
            subject=f"Stripe and the payments recorded here differ: {formatting.count(count, 'finding')}",
            lead="The reconciliation of Stripe's transfers with the payments recorded here found "
            f"{'a difference' if count == 1 else 'differences'} to look at; each says what to do.",
            facts=facts,
            path=links.reconciliation(),
            action="Open the reconciliation",
            entity=("rail_reconciliation", str(run_id)),
        )
    ]
