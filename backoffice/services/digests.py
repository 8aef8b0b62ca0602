"""The daily digest (issue 22, item 10): a person who chose "one email a day" still gets every in-app notice at
once, but their emails are held in the outbox ("held for the daily digest": services/notifications.store_message)
and go as one email a day listing each held message's subject with its link.

When: at 08:00 on the person's own clock (domain.preferences.DIGEST_HOUR, their time zone), by an hourly job
(jobs/tasks.daily_digests): the first run at or after 08:00 of their day sends it; one a day, named by that day.
A message held after the day's digest went waits for the next day's. A person in two organizations gets each
organization's digest (the outbox, and who may read it, is an organization's).

Never lost, never twice: the digest is written and every message it lists marked ``digested`` (with the digest's
id) in one transaction; the held messages are locked first, so a second worker running the same digest waits, then
finds them digested and writes nothing; and the digest's key (day and person) is unique in the outbox.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.preferences import digest_due, zone
from backoffice.models import EmailMessage, User
from backoffice.services import links
from backoffice.services.notification_events import Notice, OrgVoice, Person, org_voice
from backoffice.services.notifications import render, store_message
from backoffice.services.preferences import preferences_of_people

EVENT = "notifications.digest"
SHOWN = 100  # a digest lists this many; the rest are counted, and every one is in the app's notifications


def send_daily_digests(session: Session, actor: Actor, now: datetime, *, base_url: str) -> int:
    """Each person of the organization with held messages whose 08:00 has come today (their clock) gets their
    digest. Commits; returns how many digests are new."""
    with unit_of_work(session):
        waiting = list(
            session.execute(
                select(EmailMessage.recipient_user_id)
                .where(EmailMessage.status == "held", EmailMessage.recipient_user_id.is_not(None))
                .distinct()
            ).scalars()
        )
        prefs = preferences_of_people(session, waiting)
        org = org_voice(session, actor.org_id)
        written = 0
        for user_id in waiting:
            due, day = digest_due(now, prefs[user_id].time_zone)
            if due:
                written += _digest(session, org, user_id, day, prefs[user_id].time_zone, base_url)
    return written


def _digest(session: Session, org: OrgVoice, user_id: uuid.UUID, day: str, time_zone: str, base_url: str) -> int:
    # Locked, oldest first: a concurrent digest of the same person waits here, then finds them digested.
    held = list(
        session.execute(
            select(EmailMessage)
            .where(EmailMessage.status == "held", EmailMessage.recipient_user_id == user_id)
            .order_by(EmailMessage.created_at, EmailMessage.id)
            .with_for_update()
        ).scalars()
    )
    if not held:
        return 0
    user = session.execute(select(User.email, User.name).where(User.id == user_id)).one()
    to = Person(user_id, user.email, user.name)
    tz = zone(time_zone)
    facts = tuple(
        (f"{m.created_at.astimezone(tz):%a %d %b, %H:%M} · {m.subject}", base_url + (m.link or "/"))
        for m in held[:SHOWN]
    )
    if len(held) > SHOWN:
        facts += (("And", f"{len(held) - SHOWN} more: every one is in your notifications"),)
    notice = Notice(
        EVENT,
        f"{EVENT}:{day}",
        (to,),
        subject=f"Your daily digest from {org.name}: {formatting.count(len(held), 'message')}",
        lead=f"What {org.name} told you since your last digest, each with its link. You chose one email a day; "
        "every notice was in the app at once.",
        facts=facts,
        path=links.notification_settings(),
        action="Open your notifications",
        entity=("user", str(user_id)),
        in_app=False,  # each notice is in the app already
        digestible=False,
    )
    digest_id = store_message(
        session,
        org_id=org.id,
        event=EVENT,
        to=to,
        email=render(notice, to, org.name, base_url, tz),
        key=f"{EVENT}:{day}:{user_id}",
        entity=notice.entity,
    )
    if digest_id is None:  # today's went already: these were held since, and wait for tomorrow's
        return 0
    session.execute(
        update(EmailMessage)
        .where(EmailMessage.id.in_([m.id for m in held]))
        .values(status="digested", digest_id=digest_id, updated_at=func.now())
    )
    return 1
