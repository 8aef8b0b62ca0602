"""Demo preferences (issue 22, item 10): Omar reads his times in New York and is emailed each event; Nina reads hers
in Los Angeles and chose the daily digest, so her emails show in the outbox as held for the daily digest until the
digest job sends them, at 08:00 her time."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.db import unit_of_work
from backoffice.models import UserPreference


def seed(session: Session, *, omar: uuid.UUID, nina: uuid.UUID) -> None:
    with unit_of_work(session):
        for user_id, time_zone, notify in ((omar, "America/New_York", "each"), (nina, "America/Los_Angeles", "daily")):
            session.execute(
                insert(UserPreference)
                .values(user_id=user_id, time_zone=time_zone, notify=notify)
                .on_conflict_do_nothing()
            )
