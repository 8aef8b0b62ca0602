"""Engagements built through the services as the people who would build them: acting as a person in an
organization (``acting`` for a session of its own, ``sign_in`` on the ``act_as`` session), drafts, work
requests and active engagements, change orders, people racing each other; and their rows read as the
owner role (the ground truth, RLS bypassed)."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import date

from sqlalchemy import text

from backoffice.services import change_orders as co_service
from backoffice.services import engagements as service
from backoffice.services import schedule
from backoffice.services.schedule import RowInput, ScheduleInput
from kit.signin import actor_of

# Three milestones, $3,500.00 in all, due well in the future.
ROWS = (
    ("Design", "Floor plans", "1,000.00", "2030-01-15"),
    ("Build", "Structure complete", "2,000.00", "2030-03-01"),
    ("Handover", "Keys and snag list", "500.00", "2030-04-30"),
)


@contextmanager
def acting(app_sessions, person, org_id):
    """An app-role session acting as ``person`` in ``org_id``, and their actor."""
    with app_sessions() as session:
        actor = actor_of(session, person.id, org_id)
        assert actor is not None, f"{person.email} is not a member of {org_id}"
        yield session, actor


def create_draft(
    app_sessions,
    world,
    *,
    title="Kitchen renovation",
    by=None,
    org_id=None,
    contractor_id=None,
    owner_user_id="",
    rows=ROWS,
    mode="amounts",
    contract_value="",
    sow_reference="",
) -> uuid.UUID:
    """A draft created by ``by`` (the project owner by default) with ``rows`` saved as its schedule."""
    by = by or world.owner
    org_id = org_id or world.org_a
    contractor_id = contractor_id or world.contractor_x
    with acting(app_sessions, by, org_id) as (session, actor):
        e = service.create_engagement(
            session,
            actor,
            service.EngagementInput(
                contractor_id=str(contractor_id),
                title=title,
                owner_user_id=str(owner_user_id or ""),
                sow_reference=sow_reference,
            ),
        )
        if rows:
            schedule.save_schedule(
                session,
                actor,
                e.id,
                ScheduleInput(
                    rows=[RowInput(title=t, deliverable=d, amount=a, due_date=due) for t, d, a, due in rows],
                    mode=mode,
                    contract_value=contract_value,
                ),
            )
        return e.id


def perform(app_sessions, person, org_id, engagement_id, action: str, reason: str = "") -> None:
    with acting(app_sessions, person, org_id) as (session, actor):
        service.perform(session, actor, engagement_id, action, reason)


def contractor_user(world, contractor_id):
    return {
        world.contractor_x: world.contractor_x_user,
        world.contractor_y: world.contractor_y_user,
        world.contractor_z: world.contractor_z_user,
    }[contractor_id]


def create_sent(app_sessions, world, **kwargs) -> uuid.UUID:
    """A work request awaiting the contractor's answer."""
    eid = create_draft(app_sessions, world, **kwargs)
    perform(app_sessions, kwargs.get("by") or world.owner, kwargs.get("org_id") or world.org_a, eid, "send")
    return eid


def create_active(app_sessions, world, **kwargs) -> uuid.UUID:
    """An engagement its contractor has accepted: created, scheduled, sent by the owner, accepted."""
    eid = create_sent(app_sessions, world, **kwargs)
    contractor_id = kwargs.get("contractor_id") or world.contractor_x
    perform(app_sessions, contractor_user(world, contractor_id), kwargs.get("org_id") or world.org_a, eid, "accept")
    return eid


def issue_change_order(app_sessions, person, org_id, engagement_id, *, based_on: int, reason: str, additions=()) -> int:
    with acting(app_sessions, person, org_id) as (session, actor):
        co = co_service.issue_change_order(
            session,
            actor,
            engagement_id,
            co_service.ChangeOrderInput(
                reason=reason,
                based_on=based_on,
                additions=[RowInput(title=t, deliverable=d, amount=a, due_date=due) for t, d, a, due in additions],
            ),
        )
        return co.number


def sign_in(act_as, person, org_id):
    """(session, actor) for ``person`` in ``org_id``: the app-role session with that RLS context."""
    session = act_as(person.id, org_id)
    actor = actor_of(session, person.id, org_id)
    assert actor is not None, f"{person.email} is not a member of {org_id}"
    session.rollback()
    return act_as(person.id, org_id), actor


def race(app_sessions, org_id, people, call) -> list:
    """Run call(session, actor, i) for each person in its own thread and app-role session, all released
    at once. Returns each one's result or the exception it raised."""
    barrier = threading.Barrier(len(people))
    outcomes: list = [None] * len(people)

    def run(i, person):
        with app_sessions() as session:
            try:
                actor = actor_of(session, person.id, org_id)
                session.rollback()
                barrier.wait(timeout=60)
                outcomes[i] = call(session, actor, i)
            except Exception as exc:
                outcomes[i] = exc
                session.rollback()

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a contender never finished (deadlock?)"
    return outcomes


# --- the database, as the owner role sees it -------------------------------------------------------


def engagement_row(admin_engine, engagement_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, title, status, currency, retainage_bps, payment_terms_days, service_fee_bps, owner_user_id,"
                " contractor_id, sow_reference, decline_reason, cancel_reason, responded_by, sent_by"
                " from engagements where id = :id"
            ),
            {"id": engagement_id},
        ).one()


def engagements_of(admin_engine, org_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, title, status, owner_user_id, contractor_id from engagements"
                " where org_id = :o order by created_at"
            ),
            {"o": org_id},
        ).all()


def milestones_of(admin_engine, engagement_id):
    """The engagement's milestones in their order."""
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, seq, title, deliverable, amount_minor, due_date, status from milestones"
                " where engagement_id = :e order by seq"
            ),
            {"e": engagement_id},
        ).all()


def change_orders_of(admin_engine, engagement_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, number, reason, contract_value_before, contract_value_after from change_orders"
                " where engagement_id = :e order by number"
            ),
            {"e": engagement_id},
        ).all()


def set_due_date(admin_engine, milestone_id, due: date) -> None:
    """Move a milestone's due date as if time had passed (it is overdue now), without a change order on the
    pages. Once the work request is sent a milestone's terms change only by change order, for the owner role
    too, so the owner role lifts milestones_guard for this transaction only (DDL is transactional: no other
    session ever sees it off)."""
    with admin_engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '10s'"))  # an open reader of milestones fails this, not hangs it
        conn.execute(text("alter table milestones disable trigger milestones_guard"))
        conn.execute(text("update milestones set due_date = :d where id = :id"), {"d": due, "id": milestone_id})
        conn.execute(text("alter table milestones enable trigger milestones_guard"))


def owner_query(admin_engine, sql: str, **params) -> list[dict]:
    """Rows as the owner role sees them (RLS bypassed): the ground truth."""
    with admin_engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def milestone_rows(admin_engine, engagement_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from milestones where engagement_id = :id order by seq", id=engagement_id
    )
