"""The engagement state machine (DESIGN.md section 3) through the real service, as the real app role.

Every move goes through ``services.engagements.perform`` in a session acting as a real member, so RLS
and the database guards apply exactly as in production. Outcomes are read back as the owner role
(``admin_engine``, which bypasses RLS): a refused move must leave the row and the audit trail as they
were, and an allowed one must record who moved it, when, and an audit event.
"""

from __future__ import annotations

import uuid

import pytest
from kit.engagements import milestone_rows, owner_query, sign_in
from kit.engagements import race as race_people
from kit.milestones import move_milestone
from sqlalchemy import text

from backoffice.errors import (
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from backoffice.services import engagements, schedule
from backoffice.services.change_orders import (
    ChangeOrderInput,
    MilestoneChange,
    issue_change_order,
)
from backoffice.services.engagements import EngagementInput
from backoffice.services.schedule import RowInput, ScheduleInput

DUE = "2027-03-31"
REASON = "The client postponed the project."

# DESIGN.md section 3, written out independently of backoffice.domain.engagements.
ALL_STATUSES = ("draft", "awaiting_acceptance", "active", "paused", "completed", "declined", "cancelled")
ALL_ACTIONS = ("send", "accept", "decline", "pause", "resume", "complete", "cancel")
ALLOWED = {
    ("draft", "send"): "awaiting_acceptance",
    ("awaiting_acceptance", "accept"): "active",
    ("awaiting_acceptance", "decline"): "declined",
    ("active", "pause"): "paused",
    ("paused", "resume"): "active",
    ("active", "complete"): "completed",
    ("draft", "cancel"): "cancelled",
    ("awaiting_acceptance", "cancel"): "cancelled",
    ("active", "cancel"): "cancelled",
    ("paused", "cancel"): "cancelled",
}
EVENT = {
    "send": "engagement.work_request_sent",
    "accept": "engagement.work_request_accepted",
    "decline": "engagement.work_request_declined",
    "pause": "engagement.paused",
    "resume": "engagement.resumed",
    "complete": "engagement.completed",
    "cancel": "engagement.cancelled",
}


# --- helpers ------------------------------------------------------------------------------------------


def engagement_row(admin_engine, engagement_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from engagements where id = :id", id=engagement_id)
    return row


def events_of(admin_engine, engagement_id, action: str | None = None) -> list[dict]:
    sql = (
        "select org_id, actor_user_id, action, entity_type, entity_id, data from audit_events"
        " where entity_type = 'engagement' and entity_id = :id"
    )
    if action:
        sql += " and action = :action"
    return owner_query(admin_engine, sql + " order by seq", id=str(engagement_id), action=action)


def snapshot(admin_engine, engagement_id) -> dict:
    """Everything a refused move must leave untouched."""
    return {
        "engagement": engagement_row(admin_engine, engagement_id),
        "milestones": milestone_rows(admin_engine, engagement_id),
        "events": events_of(admin_engine, engagement_id),
    }


def new_engagement(act_as, world, *, by=None, owner=None, milestones: int = 2, **terms) -> uuid.UUID:
    """A draft with contractor X in org A and ``milestones`` milestones of 1,000.00 each. Set up by
    ``by`` (default: the project owner) and owned by ``owner`` (default: whoever sets it up, if an owner)."""
    by = by or world.owner
    session, actor = sign_in(act_as, by, world.org_a)
    data = EngagementInput(
        contractor_id=str(world.contractor_x),
        title=terms.pop("title", "Kitchen remodel"),
        owner_user_id=str(owner.id) if owner else "",
        **terms,
    )
    engagement = engagements.create_engagement(session, actor, data)
    if milestones:
        rows = [RowInput(title=f"Milestone {i}", amount="1,000.00", due_date=DUE) for i in range(1, milestones + 1)]
        schedule.save_schedule(session, actor, engagement.id, ScheduleInput(rows=rows))
    return engagement.id


def move(act_as, person, org_id, engagement_id, action: str, reason: str = ""):
    session, actor = sign_in(act_as, person, org_id)
    return engagements.perform(session, actor, engagement_id, action, reason)


def approve_every_live_milestone(act_as, admin_engine, engagement_id) -> None:
    """The legal path planned -> submitted -> approved, through the services."""
    for m in owner_query(
        admin_engine,
        "select id, status from milestones where engagement_id = :e and status in ('planned', 'submitted')",
        e=engagement_id,
    ):
        path = ["submitted", "approved"] if m["status"] == "planned" else ["approved"]
        move_milestone(act_as, admin_engine, m["id"], *path)


def engagement_in(status: str, act_as, admin_engine, world, *, milestones: int = 2) -> uuid.UUID:
    """A fresh engagement of the project owner's with contractor X, brought to ``status`` the legal way."""
    eid = new_engagement(act_as, world, milestones=milestones)
    org = world.org_a
    if status == "draft":
        return eid
    move(act_as, world.owner, org, eid, "send")
    if status == "awaiting_acceptance":
        return eid
    if status == "cancelled":  # cancelled after sending; cancelling a draft has its own tests
        move(act_as, world.owner, org, eid, "cancel", REASON)
        return eid
    if status == "declined":
        move(act_as, world.contractor_x_user, org, eid, "decline", "Fully booked this quarter.")
        return eid
    move(act_as, world.contractor_x_user, org, eid, "accept")
    if status == "active":
        return eid
    if status == "paused":
        move(act_as, world.owner, org, eid, "pause")
        return eid
    assert status == "completed", status
    approve_every_live_milestone(act_as, admin_engine, eid)
    move(act_as, world.owner, org, eid, "complete")
    return eid


# --- the whole matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_every_move_from_every_status_is_allowed_exactly_as_the_design_says(
    act_as, admin_engine, world, status, action
):
    eid = engagement_in(status, act_as, admin_engine, world)
    if (status, action) == ("active", "complete"):
        approve_every_live_milestone(act_as, admin_engine, eid)
    person = world.contractor_x_user if action in ("accept", "decline") else world.admin
    before = snapshot(admin_engine, eid)
    target = ALLOWED.get((status, action))
    if target is None:
        # A draft is invisible to its contractor until sent, so answering one finds nothing.
        refusal = NotFound if (status == "draft" and person == world.contractor_x_user) else InvalidTransition
        with pytest.raises(refusal):
            move(act_as, person, world.org_a, eid, action, REASON)
        assert snapshot(admin_engine, eid) == before
    else:
        result = move(act_as, person, world.org_a, eid, action, REASON)
        assert result.status == target
        assert engagement_row(admin_engine, eid)["status"] == target
        new_events = events_of(admin_engine, eid)[len(before["events"]) :]
        assert [e["action"] for e in new_events] == [EVENT[action]]
        assert new_events[0]["actor_user_id"] == person.id
        assert new_events[0]["data"]["from"] == status and new_events[0]["data"]["to"] == target


def test_an_unknown_action_is_not_found_and_changes_nothing(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(NotFound):
        move(act_as, world.admin, world.org_a, eid, "delete")
    assert snapshot(admin_engine, eid) == before


# --- send ---------------------------------------------------------------------------------------------


def test_sending_a_draft_awaits_acceptance_and_records_who_sent_it_and_when(act_as, admin_engine, world):
    eid = new_engagement(act_as, world)
    result = move(act_as, world.owner, world.org_a, eid, "send")

    assert result.status == "awaiting_acceptance"
    row = engagement_row(admin_engine, eid)
    assert row["status"] == "awaiting_acceptance"
    assert row["sent_by"] == world.owner.id
    assert row["sent_at"] is not None and row["sent_at"] >= row["created_at"]
    assert row["updated_at"] >= row["sent_at"]
    assert (row["responded_at"], row["responded_by"], row["cancelled_at"], row["completed_at"]) == (
        None,
        None,
        None,
        None,
    )
    (event,) = events_of(admin_engine, eid, "engagement.work_request_sent")
    assert event["org_id"] == world.org_a and event["actor_user_id"] == world.owner.id
    assert event["data"] == {"from": "draft", "to": "awaiting_acceptance"}


def test_sending_a_draft_without_milestones_is_refused_and_changes_nothing(act_as, admin_engine, world):
    eid = new_engagement(act_as, world, milestones=0)
    before = snapshot(admin_engine, eid)
    with pytest.raises(InvalidTransition) as exc:
        move(act_as, world.owner, world.org_a, eid, "send")
    assert "milestone" in exc.value.message
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_sending_is_forbidden_for_a_contractor_and_for_finance(act_as, admin_engine, world, who):
    eid = new_engagement(act_as, world)
    before = snapshot(admin_engine, eid)
    # Finance sees the draft but may not move it; to its contractor an unsent draft does not exist yet.
    with pytest.raises(NotFound if who == "contractor_x_user" else Forbidden):
        move(act_as, getattr(world, who), world.org_a, eid, "send")
    assert snapshot(admin_engine, eid) == before


def test_a_project_owner_cannot_send_an_engagement_another_person_owns_but_an_admin_can(act_as, admin_engine, world):
    eid = new_engagement(act_as, world, by=world.admin, owner=world.admin)
    assert engagement_row(admin_engine, eid)["owner_user_id"] == world.admin.id
    before = snapshot(admin_engine, eid)
    with pytest.raises(Forbidden):
        move(act_as, world.owner, world.org_a, eid, "send")
    assert snapshot(admin_engine, eid) == before

    move(act_as, world.admin, world.org_a, eid, "send")
    assert engagement_row(admin_engine, eid)["sent_by"] == world.admin.id


def test_an_admin_can_send_an_engagement_a_project_owner_owns(act_as, admin_engine, world):
    eid = new_engagement(act_as, world)
    move(act_as, world.admin, world.org_a, eid, "send")
    row = engagement_row(admin_engine, eid)
    assert (row["status"], row["owner_user_id"], row["sent_by"]) == (
        "awaiting_acceptance",
        world.owner.id,
        world.admin.id,
    )


def test_another_orgs_admin_cannot_even_find_the_engagement(act_as, admin_engine, world):
    eid = new_engagement(act_as, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(NotFound):
        move(act_as, world.admin_b, world.org_b, eid, "send")
    assert snapshot(admin_engine, eid) == before


# --- accept and decline -------------------------------------------------------------------------------


def test_the_contractors_user_accepts_and_who_and_when_are_recorded(act_as, admin_engine, world):
    eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
    result = move(act_as, world.contractor_x_user, world.org_a, eid, "accept")

    assert result.status == "active"
    row = engagement_row(admin_engine, eid)
    assert row["status"] == "active"
    assert row["responded_by"] == world.contractor_x_user.id
    assert row["responded_at"] is not None and row["responded_at"] >= row["sent_at"]
    assert row["decline_reason"] is None
    (event,) = events_of(admin_engine, eid, "engagement.work_request_accepted")
    assert event["actor_user_id"] == world.contractor_x_user.id
    assert event["data"] == {"from": "awaiting_acceptance", "to": "active"}


def test_the_contractors_user_declines_with_a_reason_that_is_kept(act_as, admin_engine, world):
    eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
    move(act_as, world.contractor_x_user, world.org_a, eid, "decline", "  Fully booked until March.  ")

    row = engagement_row(admin_engine, eid)
    assert row["status"] == "declined"
    assert row["decline_reason"] == "Fully booked until March."
    assert row["responded_by"] == world.contractor_x_user.id and row["responded_at"] is not None
    (event,) = events_of(admin_engine, eid, "engagement.work_request_declined")
    assert event["actor_user_id"] == world.contractor_x_user.id
    assert event["data"] == {"from": "awaiting_acceptance", "to": "declined", "reason": "Fully booked until March."}


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_another_contractors_user_cannot_find_the_work_request(act_as, admin_engine, world, action):
    eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(NotFound):
        move(act_as, world.contractor_y_user, world.org_a, eid, action, REASON)
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("action", ["accept", "decline"])
@pytest.mark.parametrize("who", ["admin", "owner"])
def test_staff_cannot_answer_the_work_request_for_the_contractor(act_as, admin_engine, world, action, who):
    eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(Forbidden):
        move(act_as, getattr(world, who), world.org_a, eid, action, REASON)
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_declining_needs_a_reason(act_as, admin_engine, world, reason):
    eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        move(act_as, world.contractor_x_user, world.org_a, eid, "decline", reason)
    assert set(exc.value.fields) == {"reason"}
    assert snapshot(admin_engine, eid) == before


def test_a_contractor_cannot_send_pause_resume_complete_or_cancel(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    for action in ("pause", "resume", "complete", "cancel", "send"):
        with pytest.raises(Forbidden):
            move(act_as, world.contractor_x_user, world.org_a, eid, action, REASON)
    assert snapshot(admin_engine, eid) == before


# --- pause and resume ---------------------------------------------------------------------------------


def test_pausing_and_resuming_moves_between_active_and_paused_with_an_event_each(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    assert move(act_as, world.owner, world.org_a, eid, "pause").status == "paused"
    assert engagement_row(admin_engine, eid)["status"] == "paused"
    assert move(act_as, world.admin, world.org_a, eid, "resume").status == "active"
    assert engagement_row(admin_engine, eid)["status"] == "active"

    moves = [
        (e["action"], e["actor_user_id"], e["data"])
        for e in events_of(admin_engine, eid)
        if e["action"] in ("engagement.paused", "engagement.resumed")
    ]
    assert moves == [
        ("engagement.paused", world.owner.id, {"from": "active", "to": "paused"}),
        ("engagement.resumed", world.admin.id, {"from": "paused", "to": "active"}),
    ]


@pytest.mark.parametrize("action", ["pause", "resume", "complete", "cancel"])
def test_finance_cannot_run_an_engagement(act_as, admin_engine, world, action):
    eid = engagement_in("paused" if action == "resume" else "active", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(Forbidden):
        move(act_as, world.finance, world.org_a, eid, action, REASON)
    assert snapshot(admin_engine, eid) == before


def test_a_project_owner_cannot_pause_an_engagement_another_person_owns(act_as, admin_engine, world):
    eid = new_engagement(act_as, world, by=world.admin, owner=world.admin)
    move(act_as, world.admin, world.org_a, eid, "send")
    move(act_as, world.contractor_x_user, world.org_a, eid, "accept")
    before = snapshot(admin_engine, eid)
    for action in ("pause", "cancel", "complete"):
        with pytest.raises(Forbidden):
            move(act_as, world.owner, world.org_a, eid, action, REASON)
    assert snapshot(admin_engine, eid) == before


# --- complete -----------------------------------------------------------------------------------------


def test_completing_is_refused_while_a_milestone_is_planned_or_submitted(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world, milestones=3)
    first, second, _third = (m["id"] for m in milestone_rows(admin_engine, eid))
    move_milestone(act_as, admin_engine, first, "submitted", "approved")
    move_milestone(act_as, admin_engine, second, "submitted")
    # one approved, one submitted, one planned
    before = snapshot(admin_engine, eid)
    with pytest.raises(InvalidTransition) as exc:
        move(act_as, world.owner, world.org_a, eid, "complete")
    assert "2" in exc.value.message
    assert snapshot(admin_engine, eid) == before

    move_milestone(act_as, admin_engine, second, "approved")
    before = snapshot(admin_engine, eid)
    with pytest.raises(InvalidTransition):
        move(act_as, world.owner, world.org_a, eid, "complete")
    assert snapshot(admin_engine, eid) == before


def test_completing_once_every_milestone_is_approved_records_when(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world, milestones=3)
    approve_every_live_milestone(act_as, admin_engine, eid)
    assert move(act_as, world.owner, world.org_a, eid, "complete").status == "completed"

    row = engagement_row(admin_engine, eid)
    assert row["status"] == "completed"
    assert row["completed_at"] is not None and row["completed_at"] >= row["responded_at"]
    (event,) = events_of(admin_engine, eid, "engagement.completed")
    assert event["actor_user_id"] == world.owner.id and event["data"] == {"from": "active", "to": "completed"}


def test_a_milestone_cancelled_by_change_order_does_not_hold_up_completion(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world, milestones=3)
    last = milestone_rows(admin_engine, eid)[-1]
    session, actor = sign_in(act_as, world.owner, world.org_a)
    issue_change_order(
        session,
        actor,
        eid,
        ChangeOrderInput(
            reason="Dropped from scope", based_on=0, changes=[MilestoneChange(str(last["id"]), cancel=True)]
        ),
    )
    approve_every_live_milestone(act_as, admin_engine, eid)
    assert [m["status"] for m in milestone_rows(admin_engine, eid)] == ["approved", "approved", "cancelled"]

    assert move(act_as, world.admin, world.org_a, eid, "complete").status == "completed"


# --- cancel -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["draft", "awaiting_acceptance", "active", "paused"])
def test_cancelling_with_a_reason_works_from_every_open_status_and_records_when_and_why(
    act_as, admin_engine, world, status
):
    eid = engagement_in(status, act_as, admin_engine, world)
    result = move(act_as, world.owner, world.org_a, eid, "cancel", "  Budget withdrawn.  ")

    assert result.status == "cancelled"
    row = engagement_row(admin_engine, eid)
    assert row["status"] == "cancelled"
    assert row["cancel_reason"] == "Budget withdrawn."
    assert row["cancelled_at"] is not None and row["cancelled_at"] >= row["created_at"]
    (event,) = events_of(admin_engine, eid, "engagement.cancelled")
    assert event["actor_user_id"] == world.owner.id
    assert event["data"] == {"from": status, "to": "cancelled", "reason": "Budget withdrawn."}


@pytest.mark.parametrize("status", ["completed", "declined", "cancelled"])
def test_a_closed_engagement_can_never_be_cancelled(act_as, admin_engine, world, status):
    eid = engagement_in(status, act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(InvalidTransition):
        move(act_as, world.admin, world.org_a, eid, "cancel", REASON)
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("reason", ["", "   "])
@pytest.mark.parametrize("status", ["draft", "active"])
def test_cancelling_needs_a_reason(act_as, admin_engine, world, status, reason):
    eid = engagement_in(status, act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        move(act_as, world.owner, world.org_a, eid, "cancel", reason)
    assert set(exc.value.fields) == {"reason"}
    assert snapshot(admin_engine, eid) == before


def test_a_cancel_reason_longer_than_2000_characters_is_refused_at_the_field(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        move(act_as, world.owner, world.org_a, eid, "cancel", "x" * 2001)
    assert set(exc.value.fields) == {"reason"}
    assert snapshot(admin_engine, eid) == before


# --- terms --------------------------------------------------------------------------------------------


def test_terms_left_empty_take_the_organizations_defaults(act_as, admin_engine, world):
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "update organizations set default_currency = 'GBP', default_retainage_bps = 750,"
                " payment_terms_days = 14 where id = :id"
            ),
            {"id": world.org_a},
        )
    eid = new_engagement(act_as, world, milestones=0)
    row = engagement_row(admin_engine, eid)
    assert (row["currency"], row["retainage_bps"], row["payment_terms_days"], row["service_fee_bps"]) == (
        "GBP",
        750,
        14,
        0,
    )
    assert (row["status"], row["owner_user_id"], row["created_by"]) == ("draft", world.owner.id, world.owner.id)
    (event,) = events_of(admin_engine, eid, "engagement.created")
    assert event["data"]["currency"] == "GBP" and event["data"]["retainage_bps"] == 750


def test_another_orgs_defaults_are_its_own(act_as, admin_engine, world):
    session, actor = sign_in(act_as, world.admin_b, world.org_b)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(
            contractor_id=str(world.contractor_z), title="Berlin office", owner_user_id=str(world.admin_b.id)
        ),
    )
    org = owner_query(admin_engine, "select * from organizations where id = :id", id=world.org_b)[0]
    row = engagement_row(admin_engine, e.id)
    assert (row["currency"], row["retainage_bps"], row["payment_terms_days"]) == (
        "EUR",
        org["default_retainage_bps"],
        org["payment_terms_days"],
    )
    assert row["org_id"] == world.org_b


def test_terms_typed_in_override_the_defaults(act_as, admin_engine, world):
    eid = new_engagement(
        act_as, world, milestones=0, currency="jpy", retainage="5", payment_terms_days="0", service_fee="2.5"
    )
    row = engagement_row(admin_engine, eid)
    assert (row["currency"], row["retainage_bps"], row["payment_terms_days"], row["service_fee_bps"]) == (
        "JPY",
        500,
        0,
        250,
    )


def test_a_drafts_terms_can_be_updated_with_before_and_after_audited(act_as, admin_engine, world):
    eid = new_engagement(act_as, world)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.update_terms(
        session,
        actor,
        eid,
        EngagementInput(
            contractor_id=str(world.contractor_y),
            title="Kitchen and bath",
            currency="USD",
            retainage="0",
            payment_terms_days="45",
        ),
    )

    row = engagement_row(admin_engine, eid)
    assert (row["title"], row["currency"], row["retainage_bps"], row["payment_terms_days"], row["contractor_id"]) == (
        "Kitchen and bath",
        "USD",
        0,
        45,
        world.contractor_y,
    )
    # the milestones follow the contractor (composite key, on update cascade)
    assert {m["contractor_id"] for m in milestone_rows(admin_engine, eid)} == {world.contractor_y}
    (event,) = events_of(admin_engine, eid, "engagement.updated")
    assert event["data"]["title"] == {"before": "Kitchen remodel", "after": "Kitchen and bath"}
    assert "currency" not in event["data"]
    assert event["data"]["retainage_bps"] == {"before": 1000, "after": 0}
    assert event["data"]["contractor_id"] == {"before": str(world.contractor_x), "after": str(world.contractor_y)}
    assert "owner_user_id" not in event["data"]


def test_updating_a_draft_with_the_same_terms_records_nothing(act_as, admin_engine, world):
    eid = new_engagement(act_as, world)
    before = snapshot(admin_engine, eid)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.update_terms(
        session, actor, eid, EngagementInput(contractor_id=str(world.contractor_x), title="Kitchen remodel")
    )
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("status", ["awaiting_acceptance", "active", "paused", "completed", "declined", "cancelled"])
def test_terms_are_fixed_once_the_work_request_is_sent(act_as, admin_engine, world, status):
    eid = engagement_in(status, act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    with pytest.raises(InvalidTransition):
        engagements.update_terms(
            session,
            actor,
            eid,
            EngagementInput(
                contractor_id=str(world.contractor_x), title="Renamed", owner_user_id=str(world.owner.id), retainage="0"
            ),
        )
    assert snapshot(admin_engine, eid) == before


def test_bad_terms_are_refused_at_their_fields_and_change_nothing(act_as, admin_engine, world):
    eid = new_engagement(act_as, world)
    before = snapshot(admin_engine, eid)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(ValidationError) as exc:
        engagements.update_terms(
            session,
            actor,
            eid,
            EngagementInput(
                contractor_id=str(world.contractor_z),
                title="  ",
                currency="XYZ",
                retainage="101",
                payment_terms_days="366",
            ),
        )
    assert set(exc.value.fields) == {"contractor_id", "title", "currency", "retainage", "payment_terms_days"}
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_only_staff_update_a_drafts_terms(act_as, admin_engine, world, who):
    eid = new_engagement(act_as, world)
    before = snapshot(admin_engine, eid)
    session, actor = sign_in(act_as, getattr(world, who), world.org_a)
    with pytest.raises(
        NotFound if who == "contractor_x_user" else Forbidden
    ):  # an unsent draft is hidden from its contractor
        engagements.update_terms(
            session, actor, eid, EngagementInput(contractor_id=str(world.contractor_x), title="Mine now")
        )
    assert snapshot(admin_engine, eid) == before


# --- races --------------------------------------------------------------------------------------------


def race(app_sessions, org_id, engagement_id, contenders) -> list:
    """Run each (person, action, reason) at once; each outcome is the engagement's new status or the exception."""
    return race_people(
        app_sessions,
        org_id,
        [c[0] for c in contenders],
        lambda session, actor, i: engagements.perform(session, actor, engagement_id, *contenders[i][1:]).status,
    )


def moves_after_sending(admin_engine, engagement_id) -> list[dict]:
    setup = ("engagement.created", "engagement.schedule_saved", "engagement.work_request_sent")
    return [e for e in events_of(admin_engine, engagement_id) if e["action"] not in setup]


@pytest.mark.parametrize(
    "first, second",
    [
        (("contractor_x_user", "decline"), ("admin", "cancel")),
        (("contractor_x_user", "accept"), ("contractor_x_user", "decline")),
        (("contractor_x_user", "accept"), ("contractor_x_user", "accept")),
        (("owner", "cancel"), ("admin", "cancel")),
    ],
    ids=["decline-vs-cancel", "accept-vs-decline", "accept-twice", "cancel-twice"],
)
def test_two_people_moving_the_same_work_request_at_once_exactly_one_wins(
    act_as, app_sessions, admin_engine, world, first, second
):
    """Each pair leaves no legal second move once the first has happened, so exactly one may succeed."""
    for _round in range(3):
        eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
        contenders = [(getattr(world, who), action, REASON) for who, action in (first, second)]
        outcomes = race(app_sessions, world.org_a, eid, contenders)

        winners = [o for o in outcomes if isinstance(o, str)]
        losers = [o for o in outcomes if not isinstance(o, str)]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1 and isinstance(losers[0], InvalidTransition), outcomes
        row = engagement_row(admin_engine, eid)
        assert row["status"] == winners[0]
        (event,) = moves_after_sending(admin_engine, eid)
        assert event["data"]["from"] == "awaiting_acceptance" and event["data"]["to"] == winners[0]
        if winners[0] == "cancelled":
            assert row["responded_at"] is None and row["cancelled_at"] is not None
        else:
            assert row["responded_at"] is not None and row["cancelled_at"] is None


def test_accepting_and_cancelling_at_once_ends_as_one_of_the_two_orders_never_a_mix(
    act_as, app_sessions, admin_engine, world
):
    """Accept-then-cancel is legal (active -> cancelled) and cancel-then-accept is not, so the race has two
    correct endings: the accept refused, or both applied one after the other. Either way the engagement
    ends cancelled, and each move's audit event names the status it really started from."""
    for _round in range(3):
        eid = engagement_in("awaiting_acceptance", act_as, admin_engine, world)
        accept, cancel = race(
            app_sessions, world.org_a, eid, [(world.contractor_x_user, "accept", ""), (world.owner, "cancel", REASON)]
        )
        assert cancel == "cancelled", (accept, cancel)
        row = engagement_row(admin_engine, eid)
        assert row["status"] == "cancelled" and row["cancel_reason"] == REASON
        moves = [(e["action"], e["data"]["from"], e["data"]["to"]) for e in moves_after_sending(admin_engine, eid)]
        if isinstance(accept, Exception):
            assert isinstance(accept, InvalidTransition), accept
            assert row["responded_at"] is None
            assert moves == [("engagement.cancelled", "awaiting_acceptance", "cancelled")]
        else:
            assert accept == "active"
            assert row["responded_by"] == world.contractor_x_user.id
            assert moves == [
                ("engagement.work_request_accepted", "awaiting_acceptance", "active"),
                ("engagement.cancelled", "active", "cancelled"),
            ]


def test_losing_a_race_is_a_clear_domain_error_not_a_database_error(act_as, app_sessions, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    outcomes = race(app_sessions, world.org_a, eid, [(world.owner, "pause", ""), (world.admin, "cancel", REASON)])
    assert sorted(type(o).__name__ for o in outcomes) in (["InvalidTransition", "str"], ["str", "str"])
    assert all(isinstance(o, (str, DomainError)) for o in outcomes)
    # pause then cancel is legal (paused -> cancelled), cancel then pause is not
    final = engagement_row(admin_engine, eid)["status"]
    assert final in ("paused", "cancelled")
    if all(isinstance(o, str) for o in outcomes):
        assert final == "cancelled"


def test_a_drafts_currency_changes_only_while_it_has_no_milestones(act_as, admin_engine, world):
    """Amounts are minor units of the currency: $1,250.00 would silently become ¥125,000."""
    eid = new_engagement(act_as, world)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        engagements.update_terms(
            session,
            actor,
            eid,
            EngagementInput(contractor_id=str(world.contractor_x), title="Kitchen remodel", currency="JPY"),
        )
    assert "currency" in exc.value.fields
    assert snapshot(admin_engine, eid) == before
    empty = new_engagement(act_as, world, milestones=0)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.update_terms(
        session,
        actor,
        empty,
        EngagementInput(contractor_id=str(world.contractor_x), title="Kitchen remodel", currency="JPY"),
    )
    assert engagement_row(admin_engine, empty)["currency"] == "JPY"
