"""A person's preferences (issue 22, item 10): their time zone and how they want emails. Their own row in
``user_preferences`` (sql/preferences.sql: the web role reads and writes only its own person's; the worker reads its
organization's members'). A person with no row has the defaults: UTC, each email as it happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.preferences import Preferences, notify_problem, zone_problem
from backoffice.errors import Forbidden, ValidationError
from backoffice.models import UserPreference


def preferences_of(session: Session, user_id: uuid.UUID | None) -> Preferences:
    """The person's preferences, or the defaults (no row yet, or no person: the worker)."""
    if user_id is None:
        return Preferences()
    row = session.execute(
        select(UserPreference.time_zone, UserPreference.notify).where(UserPreference.user_id == user_id)
    ).one_or_none()
    return Preferences(row.time_zone, row.notify) if row else Preferences()


def preferences_of_people(session: Session, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Preferences]:
    """Each person's preferences (the worker: its organization's members), the defaults for those with no row."""
    ids = list(dict.fromkeys(user_ids))
    rows = session.execute(
        select(UserPreference.user_id, UserPreference.time_zone, UserPreference.notify).where(
            UserPreference.user_id.in_(ids)
        )
    ).all()
    found = {r.user_id: Preferences(r.time_zone, r.notify) for r in rows}
    return {i: found.get(i, Preferences()) for i in ids}


def save_preferences(session: Session, actor: Actor, *, time_zone: str, notify: str) -> Preferences:
    """Keep the signed-in person's time zone and email choice; commit. ValidationError at the field for a zone this
    server does not know or a choice that is not offered (nothing is saved)."""
    if actor.user_id is None:
        raise Forbidden("Only a person has preferences.")
    time_zone, notify = (time_zone or "").strip(), (notify or "").strip()
    errors = {
        field: problem
        for field, problem in (("time_zone", zone_problem(time_zone)), ("notify", notify_problem(notify)))
        if problem
    }
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        session.execute(
            insert(UserPreference)
            .values(user_id=actor.user_id, time_zone=time_zone, notify=notify)
            .on_conflict_do_update(
                index_elements=[UserPreference.user_id],
                set_={"time_zone": time_zone, "notify": notify, "updated_at": func.now()},
            )
        )
    return Preferences(time_zone, notify)
