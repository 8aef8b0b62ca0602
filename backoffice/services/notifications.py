"""Telling people: emails in the outbox and in-app notifications (DESIGN.md section 6).

Services enqueue ``notify`` in the transaction that changes the state; the worker runs ``notify`` as the
organization's worker, which writes one ``email_messages`` row and one ``notifications`` row per person
and enqueues each message's sending. Every row carries a key (event, entity, person) that is unique, so
a job that runs twice writes nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from backoffice import formatting
from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.preferences import zone
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, NotFound
from backoffice.jobs import queue
from backoffice.models import AccountMessage, EmailMessage, Invoice, Milestone, Notification, Organization, Submission
from backoffice.queries.notifications import outbox_message
from backoffice.services import audit, links
from backoffice.services.notification_events import (
    Moment,
    Notice,
    OrgVoice,
    Person,
    admin_people,
    finance_people,
    notices_for,
    org_voice,
)
from backoffice.services.preferences import preferences_of_people
from backoffice.services.reviews import EVENTS as DECISION_EVENTS
from backoffice.services.validation import get_visible

WORKER_LABEL = "backoffice (automated)"

_emails = Environment(
    loader=PackageLoader("backoffice", "templates/email"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def worker_actor(org_id: uuid.UUID) -> Actor:
    """The organization's worker: the worker role acting in that organization only, as no user (see
    app_membership() in sql/rls_policies.sql)."""
    return Actor(user_id=None, org_id=org_id, role=Role.ADMIN, label=WORKER_LABEL, name="backoffice")


@dataclass(frozen=True)
class Email:
    subject: str
    html: str
    text: str


def render(notice: Notice, to: Person, org_name: str, base_url: str, tz=None) -> Email:
    """The notice's email to one person; the moments it states on their clock (``tz``: their time zone)."""
    if any(isinstance(value, Moment) for _, value in notice.facts):
        notice = replace(notice, facts=tuple((k, v.on(tz) if isinstance(v, Moment) else v) for k, v in notice.facts))
    context = {
        "notice": notice,
        "to": to,
        "org_name": org_name,
        "url": base_url + notice.path_for(to),
        "settings_url": base_url + links.notification_settings(),
        "preferences_url": base_url + links.preferences(),
    }
    return Email(
        notice.subject,
        _emails.get_template("message.html").render(context),
        _emails.get_template("message.txt").render(context),
    )


def store_message(
    session: Session,
    *,
    org_id: uuid.UUID | None,
    event: str,
    to: Person,
    email: Email,
    key: str,
    entity: tuple[str, str] = ("", ""),
    held_for: str | None = None,
) -> uuid.UUID | None:
    """Keep one message in the outbox (an organization's; without ``org_id`` an account's own, in
    account_messages) and enqueue its sending, in the caller's transaction. Returns its id, or None when a
    message with this key exists already (nothing is written or sent twice). With ``held_for`` (the link it leads
    to) it is kept ``held`` for its reader's daily digest instead, and not sent (services/digests)."""
    message = {
        "event": event,
        "recipient_user_id": to.user_id,
        "recipient": to.email,
        "subject": email.subject[:300],
        "html": email.html,
        "text": email.text,
        "dedupe_key": key,
        "entity_type": entity[0] or None,
        "entity_id": entity[1] or None,
    }
    if held_for is not None and org_id:
        message |= {"status": "held", "link": held_for}
    table, values = (EmailMessage, {"org_id": org_id, **message}) if org_id else (AccountMessage, message)
    message_id = session.execute(
        insert(table).values(**values).on_conflict_do_nothing().returning(table.id)
    ).scalar_one_or_none()
    if message_id is not None and held_for is None:
        queue.send_email(session, message_id, org_id=org_id, user_id=None if org_id else to.user_id)
    return message_id


def _store_notice(session: Session, org: OrgVoice, notice: Notice, base_url: str) -> int:
    written = 0
    # Each reader's time zone and email choice (their preferences, issue 22): one read for the notice's people.
    prefs = preferences_of_people(session, (to.user_id for to in notice.recipients))
    for to in notice.recipients:
        key = f"{notice.key}:{to.user_id}"
        mine = prefs[to.user_id]
        held = notice.in_app and notice.digestible and mine.daily
        if (
            store_message(
                session,
                org_id=org.id,
                event=notice.event,
                to=to,
                email=render(notice, to, org.name, base_url, zone(mine.time_zone)),
                key=key,
                entity=notice.entity,
                held_for=notice.path_for(to) if held else None,
            )
            is not None
        ):
            written += 1
        if not notice.in_app:
            continue
        session.execute(
            insert(Notification)
            .values(
                org_id=org.id,
                user_id=to.user_id,
                event=notice.event,
                title=notice.subject[:300],
                body=notice.lead,
                url=notice.path_for(to),
                dedupe_key=key,
            )
            .on_conflict_do_nothing()
        )
    return written


def notify(session: Session, actor: Actor, event: str, entity_id, *, base_url: str) -> int:
    """Write the event's messages and notifications; commit. Returns how many messages are new. An event
    whose row is gone (NotFound) tells nobody."""
    try:
        with unit_of_work(session):
            org = org_voice(session, actor.org_id)
            notices = notices_for(session, org, event, entity_id)
            written = sum(_store_notice(session, org, n, base_url) for n in notices)
    except NotFound:  # rolled back: nothing of the event is written
        return 0
    return written


# --- periodic: overdue reviews, the finance digest and the admins' digest -------------------------------


def remind_overdue_reviews(session: Session, actor: Actor, *, base_url: str) -> int:
    """Remind owners of each submission waiting longer than the organization's review SLA; once per
    submission. Commits; returns how many reminders are new."""
    with unit_of_work(session):
        sla = session.execute(select(Organization.review_sla_days).where(Organization.id == actor.org_id)).scalar_one()
        newer = aliased(Submission)
        waiting = (
            session.execute(
                select(Submission.id)
                .join(Milestone, Milestone.id == Submission.milestone_id)
                .where(
                    Milestone.status == "submitted",
                    ~select(newer.id)
                    .where(newer.milestone_id == Submission.milestone_id, newer.revision > Submission.revision)
                    .exists(),
                    Submission.submitted_at < func.now() - timedelta(days=sla),
                )
                .order_by(Submission.submitted_at)
            )
            .scalars()
            .all()
        )
        org = org_voice(session, actor.org_id)
        written = sum(
            _store_notice(session, org, n, base_url)
            for s in waiting
            for n in notices_for(session, org, "review.overdue", s)
        )
        # Payments waiting at an approval step longer than the same review time (issue 18), once per step.
        steps = session.execute(text(_OVERDUE_STEPS), {"days": sla}).all()
        written += sum(
            _store_notice(session, org, n, base_url)
            for invoice_id, _ in steps
            for n in notices_for(session, org, "invoice.approval_overdue", invoice_id)
        )
        if steps:
            session.execute(
                text(
                    "update invoice_approvals set reminded_at = now()"
                    " where (invoice_id, step) in (select * from unnest(cast(:ids as uuid[]), cast(:steps as int[])))"
                ),
                {"ids": [i for i, _ in steps], "steps": [n for _, n in steps]},
            )
    return written


# The step each payment awaiting approval waits at, waiting since its previous step was decided (the first: since
# the invoice was authorized) for longer than the review time, and not reminded of since.
_OVERDUE_STEPS = """
select a.invoice_id, a.step
  from invoice_approvals a
  join invoices i on i.id = a.invoice_id and i.org_id = a.org_id and i.status = 'pending_approval'
 where a.status = 'waiting' and a.reminded_at is null
   and not exists (select 1 from invoice_approvals b where b.org_id = a.org_id and b.invoice_id = a.invoice_id
                                                       and b.step < a.step and b.status = 'waiting')
   and coalesce((select p.decided_at from invoice_approvals p
                  where p.org_id = a.org_id and p.invoice_id = a.invoice_id and p.step = a.step - 1),
                a.created_at) < now() - make_interval(days => :days)
 order by a.created_at
"""


DIGEST_HORIZON_DAYS = 7


def send_finance_digest(session: Session, actor: Actor, day: date, *, base_url: str) -> int:
    """One email per finance member listing authorized payments overdue or due within a week; none
    when nothing is due. Once per day and person. Each carries the organization's audit chain head, so
    the trail leaves the database daily in people's mailboxes. Commits; returns how many digests are new."""
    with unit_of_work(session):
        rows = session.execute(
            select(Invoice.invoice_number, Invoice.description, Invoice.currency, Invoice.net_minor, Invoice.due_date)
            .where(Invoice.status == "approved", Invoice.due_date <= day + timedelta(days=DIGEST_HORIZON_DAYS))
            .order_by(Invoice.due_date, Invoice.number)
        ).all()
        if not rows:
            return 0
        org = org_voice(session, actor.org_id)
        totals: dict[str, int] = {}
        for r in rows:
            totals[r.currency] = totals.get(r.currency, 0) + r.net_minor
        overdue = sum(1 for r in rows if r.due_date < day)
        shown = rows[:50]
        facts = tuple(
            (
                f"{r.invoice_number} · due {org.day(r.due_date)}{' (overdue)' if r.due_date < day else ''}",
                f"{org.money(r.net_minor, r.currency)} — {r.description}",
            )
            for r in shown
        )
        if len(rows) > len(shown):
            facts += (("…", f"and {len(rows) - len(shown)} more in the payment queue"),)
        total_text = ", ".join(org.money(t, c) for c, t in sorted(totals.items()))
        notice = Notice(
            "finance.digest",
            f"finance.digest:{day.isoformat()}",
            finance_people(session),
            subject=f"{formatting.count(len(rows), 'payment')} due by "
            f"{org.day(day + timedelta(days=DIGEST_HORIZON_DAYS))}: {total_text}",
            lead=(
                f"{formatting.count(len(rows), 'authorized payment')} {'is' if len(rows) == 1 else 'are'} "
                f"due within {DIGEST_HORIZON_DAYS} days"
                + (f", {overdue} of them overdue" if overdue else "")
                + f". Total: {total_text}."
            ),
            facts=facts,
            path=links.payments_due_before(day + timedelta(days=DIGEST_HORIZON_DAYS)),
            action="Open the payment queue",
            entity=("organization", str(org.id)),
            audit_head=audit.current_head(session, actor.org_id).line,
            digestible=False,
        )
        written = _store_notice(session, org, notice, base_url)
    return written


# What the admins' digest counts in yesterday's trail: the review decisions (their audit actions and
# labels are the reviews service's), the payment authorizations (an approval's, a retainage release's)
# and the payments recorded.
AUTHORIZED = ("invoice.authorized", "retainage.released")
PAID = ("payment.recorded",)


def _tally_text(org: OrgVoice, tallies: list[audit.Tally], actions) -> str:
    """'2 — $270.00, €45.00' (how many, then the total per currency), or 'none'."""
    n = sum(t.events for t in tallies if t.action in actions)
    totals: dict[str, int] = {}
    for t in tallies:
        if t.action in actions and t.currency:
            totals[t.currency] = totals.get(t.currency, 0) + t.amount_minor
    if not n:
        return "none"
    return (f"{n} — " + ", ".join(org.money(m, c) for c, m in sorted(totals.items()))) if totals else str(n)


def send_admin_digest(session: Session, actor: Actor, day: date, *, base_url: str) -> int:
    """One email (and notification) per active admin, every day, quiet or not: the organization's audit
    chain head as it is sent, with what it is for, and what the trail recorded yesterday (UTC): how many
    events, the review decisions, the payments authorized and recorded (totals per currency). Once per
    day and person. Commits; returns how many digests are new."""
    with unit_of_work(session):
        org = org_voice(session, actor.org_id)
        head = audit.current_head(session, actor.org_id)
        yesterday = day - timedelta(days=1)
        tallies = audit.recorded_between(
            session,
            actor.org_id,
            datetime.combine(yesterday, time.min, tzinfo=UTC),
            datetime.combine(day, time.min, tzinfo=UTC),
        )
        events = sum(t.events for t in tallies)
        decided = [(d, sum(t.events for t in tallies if t.action == action)) for d, action in DECISION_EVENTS.items()]
        reviewed = ", ".join(f"{n} {d.label.lower()}" for d, n in decided) if any(n for _, n in decided) else "none"
        said = f"{org.day(yesterday)} (UTC)"
        notice = Notice(
            "admin.digest",
            f"admin.digest:{day.isoformat()}",
            admin_people(session),
            subject=f"Daily digest, {org.day(day)}: {formatting.count(events, 'audit event')} yesterday, "
            f"trail head #{head.seq}",
            lead=(
                f"Keep this email. It carries {org.name}'s audit trail head as it was sent: event #{head.seq}, "
                "in the line at the bottom. Later, pasting that line under “Verify the chain” on the audit page (or "
                "“backoffice audit verify --heads FILE”) checks that the trail still holds this event: if anyone "
                "cut the newest events from the trail, the check fails and names this head. "
                + (
                    f"Yesterday, {said}, the trail recorded {formatting.count(events, 'event')}."
                    if events
                    else f"Nothing was recorded in the trail yesterday, {said}: a quiet day."
                )
            ),
            facts=(
                ("Yesterday", said),
                ("Audit events recorded", str(events)),
                ("Work reviewed", reviewed),
                ("Payments authorized", _tally_text(org, tallies, AUTHORIZED)),
                ("Payments recorded", _tally_text(org, tallies, PAID)),
            ),
            path=links.audit_trail(),
            action="Open the audit trail",
            entity=("organization", str(org.id)),
            audit_head=head.line,
            digestible=False,
        )
        written = _store_notice(session, org, notice, base_url)
    return written


# --- in the app: the bell -------------------------------------------------------------------------------


def mark_read(session: Session, actor: Actor, notification_id) -> Notification:
    """Mark one of the actor's notifications read (RLS: nobody else's is visible). Commits."""
    with unit_of_work(session):
        notification = get_visible(session, Notification, notification_id)
        if notification.read_at is None:
            notification.read_at = func.now()
    return notification


def mark_all_read(session: Session, actor: Actor) -> int:
    with unit_of_work(session):
        count = session.execute(
            update(Notification)
            .where(
                Notification.org_id == actor.org_id,
                Notification.user_id == actor.user_id,
                Notification.read_at.is_(None),
            )
            .values(read_at=func.now())
        ).rowcount
    return count


# --- the outbox -----------------------------------------------------------------------------------------


def requeue(session: Session, actor: Actor, message_id) -> EmailMessage:
    """Send a message that was kept or failed again (admins). A sent message is never sent twice
    (Conflict). Commits."""
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        message = outbox_message(session, actor, message_id)
        session.refresh(message, with_for_update=True)
        if message.status == "sent":
            raise Conflict(f"This message was sent already ({message.provider_id}); it is never sent twice.")
        if message.status in ("queued", "retrying"):
            raise Conflict("This message is waiting to be sent already.")
        if message.status in ("held", "digested"):
            raise Conflict(
                "This message is held for its reader's daily digest, which lists it with its link; it is not sent "
                "on its own."
            )
        message.status, message.updated_at = "queued", func.now()
        queue.send_email(session, message.id, org_id=message.org_id)
        audit.record(
            session,
            actor,
            "email.requeued",
            "email_message",
            message.id,
            {"event": message.event, "recipient": message.recipient, "was": message.last_error},
        )
    return message
