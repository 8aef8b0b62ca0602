"""Engagements for the web tests: built through the services as the people who would build them, read
back as the owner role, and pages read as a browser shows them."""

from __future__ import annotations

import html as html_lib
import re
import uuid
from contextlib import contextmanager
from datetime import date

from milestone_moves import walk_milestone
from sqlalchemy import text
from testkit import csrf_token

from backoffice.queries.identity import actor_for
from backoffice.services import change_orders as co_service
from backoffice.services import engagements as service
from backoffice.services import schedule
from backoffice.services.schedule import RowInput, ScheduleInput

HTMX = {"HX-Request": "true"}

# Three milestones, $3,500.00 in all, due well in the future.
ROWS = (
    ("Design", "Floor plans", "1,000.00", "2030-01-15"),
    ("Build", "Structure complete", "2,000.00", "2030-03-01"),
    ("Handover", "Keys and snag list", "500.00", "2030-04-30"),
)


def signed_in(app, login, person):
    """A fresh browser signed in as ``person``."""
    c = app.test_client()
    assert login(c, person).status_code == 303
    return c


@contextmanager
def acting(app_sessions, person, org_id):
    """An app-role session acting as ``person`` in ``org_id``, and their actor."""
    with app_sessions() as session:
        actor = actor_for(session, person.id, org_id)
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
                "select id, title, status, owner_user_id, contractor_id from engagements where org_id = :o order by created_at"
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


def move_milestone(admin_engine, milestone_id, *statuses: str) -> None:
    """Walk a milestone along its legal path as the owner role (the database guard checks each step)."""
    with admin_engine.begin() as conn:
        walk_milestone(conn, milestone_id, *statuses)


def set_due_date(admin_engine, milestone_id, due: date) -> None:
    with admin_engine.begin() as conn:
        conn.execute(text("update milestones set due_date = :d where id = :id"), {"d": due, "id": milestone_id})


# --- pages -----------------------------------------------------------------------------------------


def post(client, path: str, data: dict, *, token_from: str | None = None, **kwargs):
    """POST a form with the CSRF token a browser would have read from ``token_from`` (default: ``path``)."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_from or path)}, **kwargs)


def htmx_post(client, path: str, data: dict, *, token_from: str):
    """POST as htmx does: HX-Request set, the CSRF token in the X-CSRFToken header."""
    token = csrf_token(client, token_from)
    return client.post(path, data=data, headers={**HTMX, "X-CSRFToken": token})


def actions_offered(html: str, engagement_id) -> set[str]:
    """The state changes the page offers as forms posting to /engagements/<id>/<action>."""
    return set(re.findall(rf'<form\b[^>]*action="/engagements/{engagement_id}/([a-z]+)"', html))


def table_row(html: str, needle: str) -> str:
    """The first table row containing ``needle`` (fails when there is none)."""
    for row in re.findall(r"<tr\b.*?</tr>", html, re.DOTALL):
        if needle in html_lib.unescape(row):
            return html_lib.unescape(row)
    raise AssertionError(f"no table row with {needle!r}")


def visible_text(fragment: str) -> str:
    """The text of an HTML fragment, tags removed and whitespace collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def textarea_value(html: str, field: str) -> str | None:
    match = re.search(rf'<textarea\b[^>]*\bname="{field}"[^>]*>(.*?)</textarea>', html, re.DOTALL)
    return html_lib.unescape(match.group(1)) if match else None
