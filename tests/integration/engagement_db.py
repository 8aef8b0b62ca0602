"""Shared by the engagement integration tests: acting as a person, and reading rows as the owner role."""
from __future__ import annotations

from sqlalchemy import text

from backoffice.queries.identity import actor_for


def sign_in(act_as, person, org_id):
    """(session, actor) for ``person`` in ``org_id``: the app-role session with that RLS context."""
    session = act_as(person.id, org_id)
    actor = actor_for(session, person.id, org_id)
    assert actor is not None, f"{person.email} is not a member of {org_id}"
    session.rollback()
    return act_as(person.id, org_id), actor


def owner_query(admin_engine, sql: str, **params) -> list[dict]:
    """Rows as the owner role sees them (RLS bypassed): the ground truth."""
    with admin_engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def milestone_rows(admin_engine, engagement_id) -> list[dict]:
    return owner_query(admin_engine, "select * from milestones where engagement_id = :id order by seq", id=engagement_id)
