"""Change orders (DESIGN.md sections 2-4) through the real service, as the real app role.

A change order is numbered CO-1, CO-2, ... per engagement, stores each line's before and after, moves the
contract value, and applies all of its lines or none. Outcomes are read back as the owner role
(``admin_engine``, which bypasses RLS); a refused change order must leave every row as it was.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from kit.engagements import milestone_rows, owner_query, sign_in
from kit.engagements import race as race_people
from kit.milestones import move_milestone

from backoffice.domain.money import format_amount
from backoffice.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from backoffice.queries import engagements as queries
from backoffice.services import engagements, schedule
from backoffice.services.change_orders import (
    ChangeOrderInput,
    MilestoneChange,
    issue_change_order,
    latest_number,
)
from backoffice.services.engagements import EngagementInput
from backoffice.services.schedule import RowInput, ScheduleInput

AMOUNTS = ("1,000.00", "2,000.00", "3,000.00")  # 6,000.00 in all
DUE = ("2027-01-31", "2027-02-28", "2027-03-31")
REASON = "Client asked for a larger first phase."


# --- helpers ------------------------------------------------------------------------------------------


def change_order_rows(admin_engine, engagement_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from change_orders where engagement_id = :id order by number", id=engagement_id
    )


def line_rows(admin_engine, change_order_id) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from change_order_lines where change_order_id = :id order by line_no",
        id=change_order_id,
    )


def snapshot(admin_engine, engagement_id) -> dict:
    """Everything a refused change order must leave untouched."""
    return {
        "engagement": owner_query(admin_engine, "select * from engagements where id = :id", id=engagement_id),
        "milestones": milestone_rows(admin_engine, engagement_id),
        "change_orders": change_order_rows(admin_engine, engagement_id),
        "lines": owner_query(
            admin_engine,
            "select l.* from change_order_lines l join change_orders co"
            " on co.id = l.change_order_id where co.engagement_id = :id order by co.number, l.line_no",
            id=engagement_id,
        ),
        "events": owner_query(
            admin_engine,
            "select seq, action, data from audit_events where entity_id = :id order by seq",
            id=str(engagement_id),
        ),
    }


def set_statuses(act_as, admin_engine, *moves) -> None:
    """(milestone id, status, ...) moved through the services, one legal step at a time."""
    for milestone_id, *path in moves:
        move_milestone(act_as, admin_engine, milestone_id, *path)


def new_engagement(act_as, world, *, by=None, owner=None, amounts=AMOUNTS, currency="") -> uuid.UUID:
    by = by or world.owner
    session, actor = sign_in(act_as, by, world.org_a)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(
            contractor_id=str(world.contractor_x),
            title="Warehouse fit-out",
            owner_user_id=str(owner.id) if owner else "",
            currency=currency,
        ),
    )
    rows = [
        RowInput(title=f"Phase {i}", deliverable=f"Deliverable {i}", amount=a, due_date=DUE[(i - 1) % 3])
        for i, a in enumerate(amounts, start=1)
    ]
    schedule.save_schedule(session, actor, e.id, ScheduleInput(rows=rows))
    return e.id


def engagement_in(status: str, act_as, admin_engine, world, *, by=None, owner=None, amounts=AMOUNTS) -> uuid.UUID:
    eid = new_engagement(act_as, world, by=by, owner=owner, amounts=amounts)
    staff = by or world.owner
    if status == "draft":
        return eid
    session, actor = sign_in(act_as, staff, world.org_a)
    engagements.perform(session, actor, eid, "send")
    if status == "awaiting_acceptance":
        return eid
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    if status == "declined":
        engagements.perform(session, actor, eid, "decline", "Too busy.")
        return eid
    engagements.perform(session, actor, eid, "accept")
    session, actor = sign_in(act_as, staff, world.org_a)
    if status == "active":
        return eid
    if status == "paused":
        engagements.perform(session, actor, eid, "pause")
    elif status == "cancelled":
        engagements.perform(session, actor, eid, "cancel", "Budget withdrawn.")
    elif status == "completed":
        set_statuses(
            act_as, admin_engine, *((m["id"], "submitted", "approved") for m in milestone_rows(admin_engine, eid))
        )
        session, actor = sign_in(act_as, staff, world.org_a)
        engagements.perform(session, actor, eid, "complete")
    else:
        raise AssertionError(status)
    return eid


def as_typed(m: dict, currency: str = "USD", **changes) -> MilestoneChange:
    """The milestone as the change-order form shows it, with ``changes`` typed over it."""
    values = {
        "title": m["title"],
        "deliverable": m["deliverable"],
        "amount": format_amount(m["amount_minor"], currency, symbol=False),
        "due_date": m["due_date"].isoformat(),
    }
    return MilestoneChange(milestone_id=str(m["id"]), **(values | changes))


def issue(act_as, person, org_id, engagement_id, *, reason=REASON, based_on=0, changes=(), additions=()):
    session, actor = sign_in(act_as, person, org_id)
    return issue_change_order(
        session,
        actor,
        engagement_id,
        ChangeOrderInput(reason=reason, based_on=based_on, changes=list(changes), additions=list(additions)),
    )


def detail_as(act_as, person, org_id, engagement_id):
    session, _actor = sign_in(act_as, person, org_id)
    detail = queries.engagement_detail(session, engagement_id)
    session.rollback()
    return detail


# --- numbering ----------------------------------------------------------------------------------------


def test_change_orders_are_numbered_co_1_co_2_per_engagement_independently(act_as, admin_engine, world):
    first = engagement_in("active", act_as, admin_engine, world)
    second = engagement_in("active", act_as, admin_engine, world)
    m1 = milestone_rows(admin_engine, first)[0]

    co1 = issue(act_as, world.owner, world.org_a, first, changes=[as_typed(m1, title="Phase 1 (revised)")])
    co2 = issue(act_as, world.admin, world.org_a, first, based_on=1, changes=[as_typed(m1, title="Phase 1 (final)")])
    other = issue(
        act_as,
        world.owner,
        world.org_a,
        second,
        additions=[RowInput(title="Extra", amount="10.00", due_date="2027-06-30")],
    )

    assert (co1.number, co2.number, other.number) == (1, 2, 1)
    assert [c["number"] for c in change_order_rows(admin_engine, first)] == [1, 2]
    assert [c["number"] for c in change_order_rows(admin_engine, second)] == [1]
    session, _ = sign_in(act_as, world.owner, world.org_a)
    assert (latest_number(session, first), latest_number(session, second)) == (2, 1)
    session.rollback()
    detail = detail_as(act_as, world.owner, world.org_a, first)
    assert [c.number for c in detail.change_orders] == [2, 1]  # newest first
    assert max(co.number for co in detail.change_orders) == 2


def test_a_new_engagement_has_no_change_order_yet(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    session, _ = sign_in(act_as, world.owner, world.org_a)
    assert latest_number(session, eid) == 0
    session.rollback()
    assert detail_as(act_as, world.owner, world.org_a, eid).change_orders == []


# --- lines --------------------------------------------------------------------------------------------


def test_adjusting_a_milestone_stores_each_changed_fields_before_and_after(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, m3 = milestone_rows(admin_engine, eid)

    co = issue(
        act_as,
        world.owner,
        world.org_a,
        eid,
        changes=[
            as_typed(
                m1, title="Phase 1: design", deliverable="Drawings, revised", amount="1,500.50", due_date="2027-02-15"
            ),
            as_typed(m2, amount="1,800.00"),
            as_typed(m3),  # unchanged: no line
        ],
    )

    after = {m["id"]: m for m in milestone_rows(admin_engine, eid)}
    assert (
        after[m1["id"]]["title"],
        after[m1["id"]]["deliverable"],
        after[m1["id"]]["amount_minor"],
        after[m1["id"]]["due_date"],
    ) == ("Phase 1: design", "Drawings, revised", 150050, date(2027, 2, 15))
    assert after[m2["id"]]["amount_minor"] == 180000 and after[m2["id"]]["title"] == "Phase 2"
    assert after[m3["id"]] == m3
    assert [after[m]["status"] for m in after] == ["planned"] * 3

    (row,) = change_order_rows(admin_engine, eid)
    assert (row["id"], row["number"], row["reason"], row["created_by"]) == (co.id, 1, REASON, world.owner.id)
    assert (row["contract_value_before"], row["contract_value_after"]) == (600000, 600000 + 50050 - 20000)
    lines = line_rows(admin_engine, co.id)
    assert [(line["line_no"], line["kind"], line["milestone_id"]) for line in lines] == [
        (1, "adjust", m1["id"]),
        (2, "adjust", m2["id"]),
    ]
    assert lines[0]["before"] == {
        "title": "Phase 1",
        "deliverable": "Deliverable 1",
        "amount_minor": 100000,
        "due_date": "2027-01-31",
    }
    assert lines[0]["after"] == {
        "title": "Phase 1: design",
        "deliverable": "Drawings, revised",
        "amount_minor": 150050,
        "due_date": "2027-02-15",
    }
    assert (lines[1]["before"], lines[1]["after"]) == ({"amount_minor": 200000}, {"amount_minor": 180000})
    assert {(line["org_id"], line["contractor_id"]) for line in lines} == {(world.org_a, world.contractor_x)}

    (event,) = owner_query(
        admin_engine,
        "select actor_user_id, data from audit_events where action = 'change_order.issued' and entity_id = :id",
        id=str(eid),
    )
    assert event["actor_user_id"] == world.owner.id
    assert event["data"]["change_order"] == "CO-1" and event["data"]["reason"] == REASON
    assert [line["kind"] for line in event["data"]["lines"]] == ["adjust", "adjust"]


def test_cancelling_a_planned_milestone_keeps_it_as_cancelled_with_a_line(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, m3 = milestone_rows(admin_engine, eid)

    co = issue(act_as, world.owner, world.org_a, eid, changes=[MilestoneChange(str(m2["id"]), cancel=True)])

    statuses = [(m["id"], m["status"]) for m in milestone_rows(admin_engine, eid)]
    assert statuses == [(m1["id"], "planned"), (m2["id"], "cancelled"), (m3["id"], "planned")]
    (line,) = line_rows(admin_engine, co.id)
    assert (line["kind"], line["milestone_id"], line["before"], line["after"]) == (
        "cancel",
        m2["id"],
        {"status": "planned"},
        {"status": "cancelled"},
    )
    (row,) = change_order_rows(admin_engine, eid)
    assert (row["contract_value_before"], row["contract_value_after"]) == (600000, 400000)


def test_adding_a_milestone_puts_it_after_the_last_one_as_planned(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    co = issue(
        act_as,
        world.admin,
        world.org_a,
        eid,
        additions=[
            RowInput(),  # a blank row of the form is ignored
            RowInput(
                title="Phase 4: snagging", deliverable="Punch list closed", amount="750.25", due_date="2027-04-30"
            ),
        ],
    )

    rows = milestone_rows(admin_engine, eid)
    assert [m["seq"] for m in rows] == [1, 2, 3, 4]
    new = rows[-1]
    assert (new["title"], new["deliverable"], new["amount_minor"], new["due_date"], new["status"]) == (
        "Phase 4: snagging",
        "Punch list closed",
        75025,
        date(2027, 4, 30),
        "planned",
    )
    assert (new["org_id"], new["contractor_id"]) == (world.org_a, world.contractor_x)
    (line,) = line_rows(admin_engine, co.id)
    assert (line["kind"], line["milestone_id"], line["before"]) == ("add", new["id"], None)
    assert line["after"] == {
        "title": "Phase 4: snagging",
        "deliverable": "Punch list closed",
        "amount_minor": 75025,
        "due_date": "2027-04-30",
    }
    (row,) = change_order_rows(admin_engine, eid)
    assert (row["contract_value_before"], row["contract_value_after"], row["created_by"]) == (
        600000,
        675025,
        world.admin.id,
    )


def test_the_contract_value_and_the_engagement_total_follow_each_change_order(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, m3 = milestone_rows(admin_engine, eid)
    assert detail_as(act_as, world.owner, world.org_a, eid).totals.contract_value == 600000

    issue(
        act_as,
        world.owner,
        world.org_a,
        eid,
        changes=[as_typed(m1, amount="1,500.00"), MilestoneChange(str(m3["id"]), cancel=True)],
        additions=[RowInput(title="Phase 4", amount="1,000.00", due_date="2027-05-31")],
    )
    issue(act_as, world.owner, world.org_a, eid, based_on=1, changes=[as_typed(m2, amount="2,250.00")])

    cos = change_order_rows(admin_engine, eid)
    assert [(c["contract_value_before"], c["contract_value_after"]) for c in cos] == [
        (600000, 450000),
        (450000, 475000),
    ]
    assert sum(m["amount_minor"] for m in milestone_rows(admin_engine, eid) if m["status"] != "cancelled") == 475000

    detail = detail_as(act_as, world.owner, world.org_a, eid)
    assert detail.totals.contract_value == 475000
    assert detail.totals.approved == 0 and detail.totals.remaining == 475000
    assert [(m.title, m.status.value) for m in detail.milestones] == [
        ("Phase 1", "planned"),
        ("Phase 2", "planned"),
        ("Phase 3", "cancelled"),
        ("Phase 4", "planned"),
    ]
    assert [(c.number, c.contract_value_before, c.contract_value_after) for c in detail.change_orders] == [
        (2, 450000, 475000),
        (1, 600000, 450000),
    ]
    assert [(line.line_no, line.kind, line.milestone_title) for line in detail.change_orders[1].lines] == [
        (1, "adjust", "Phase 1"),
        (2, "cancel", "Phase 3"),
        (3, "add", "Phase 4"),
    ]

    session, _ = sign_in(act_as, world.owner, world.org_a)
    (listed,) = [r for r in queries.engagement_list(session, per_page=100).rows if r.id == eid]
    session.rollback()
    assert (listed.totals.contract_value, listed.milestones) == (475000, 3)


def test_adjusting_a_submitted_milestone_is_allowed_but_cancelling_it_is_not(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    set_statuses(act_as, admin_engine, (m1["id"], "submitted"))
    before = snapshot(admin_engine, eid)

    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, changes=[MilestoneChange(str(m1["id"]), cancel=True)])
    assert set(exc.value.fields) == {f"ms-{m1['id']}-cancel"}
    assert snapshot(admin_engine, eid) == before

    issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(m1, due_date="2027-02-10")])
    assert milestone_rows(admin_engine, eid)[0]["due_date"] == date(2027, 2, 10)
    assert milestone_rows(admin_engine, eid)[0]["status"] == "submitted"


@pytest.mark.parametrize("field", ["title", "deliverable", "amount", "due_date"])
def test_an_approved_milestone_cannot_be_adjusted(act_as, admin_engine, world, field):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    set_statuses(act_as, admin_engine, (m1["id"], "submitted", "approved"))
    before = snapshot(admin_engine, eid)
    typed = {"title": "New title", "deliverable": "New deliverable", "amount": "999.00", "due_date": "2028-01-01"}[
        field
    ]
    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(m1, **{field: typed})])
    assert set(exc.value.fields) == {f"ms-{m1['id']}-title"}
    assert "approved" in exc.value.fields[f"ms-{m1['id']}-title"]
    assert snapshot(admin_engine, eid) == before


def test_an_approved_milestone_shown_unchanged_on_the_form_is_no_error(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, _ = milestone_rows(admin_engine, eid)
    set_statuses(act_as, admin_engine, (m1["id"], "submitted", "approved"))
    issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(m1), as_typed(m2, amount="2,100.00")])
    assert [m["amount_minor"] for m in milestone_rows(admin_engine, eid)] == [100000, 210000, 300000]


@pytest.mark.parametrize("status_path", [("submitted", "approved"), ("submitted",)], ids=["approved", "submitted"])
def test_only_a_planned_milestone_can_be_cancelled(act_as, admin_engine, world, status_path):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    set_statuses(act_as, admin_engine, (m1["id"], *status_path))
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, changes=[MilestoneChange(str(m1["id"]), cancel=True)])
    assert set(exc.value.fields) == {f"ms-{m1['id']}-cancel"}
    assert snapshot(admin_engine, eid) == before


def test_a_cancelled_milestone_cannot_be_brought_back_or_changed(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    _, _, m3 = milestone_rows(admin_engine, eid)
    issue(act_as, world.owner, world.org_a, eid, changes=[MilestoneChange(str(m3["id"]), cancel=True)])
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, based_on=1, changes=[as_typed(m3, amount="1.00")])
    assert set(exc.value.fields) == {f"ms-{m3['id']}-title"}
    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, based_on=1, changes=[MilestoneChange(str(m3["id"]), cancel=True)])
    assert set(exc.value.fields) == {f"ms-{m3['id']}-cancel"}
    assert snapshot(admin_engine, eid) == before


# --- refusals -----------------------------------------------------------------------------------------


def test_a_change_order_that_changes_nothing_is_refused(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    rows = milestone_rows(admin_engine, eid)
    before = snapshot(admin_engine, eid)
    for changes, additions in (
        ([], []),
        ([as_typed(m) for m in rows], []),
        ([], [RowInput(), RowInput(title="  ", amount=" ")]),
        ([as_typed(rows[0], amount="1000")], []),  # the same amount typed another way
    ):
        with pytest.raises(ValidationError) as exc:
            issue(act_as, world.owner, world.org_a, eid, changes=changes, additions=additions)
        assert set(exc.value.fields) == {"lines"}
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_a_change_order_needs_a_reason(act_as, admin_engine, world, reason):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, reason=reason, changes=[as_typed(m1, amount="1,100.00")])
    assert set(exc.value.fields) == {"reason"}
    assert snapshot(admin_engine, eid) == before


def test_a_change_order_cannot_cancel_every_live_milestone(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        issue(
            act_as,
            world.owner,
            world.org_a,
            eid,
            changes=[MilestoneChange(str(m["id"]), cancel=True) for m in milestone_rows(admin_engine, eid)],
        )
    assert set(exc.value.fields) == {"lines"}
    assert snapshot(admin_engine, eid) == before


def test_a_milestone_of_another_engagement_is_refused_at_its_line(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    other = engagement_in("active", act_as, admin_engine, world)
    foreign = milestone_rows(admin_engine, other)[0]
    before, before_other = snapshot(admin_engine, eid), snapshot(admin_engine, other)
    with pytest.raises(ValidationError) as exc:
        issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(foreign, amount="1.00")])
    assert set(exc.value.fields) == {f"ms-{foreign['id']}-title"}
    assert snapshot(admin_engine, eid) == before and snapshot(admin_engine, other) == before_other


@pytest.mark.parametrize("stale", [0, 2, -1])
def test_a_change_order_based_on_a_stale_number_is_a_conflict(act_as, admin_engine, world, stale):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, _ = milestone_rows(admin_engine, eid)
    issue(act_as, world.admin, world.org_a, eid, changes=[as_typed(m1, amount="1,200.00")])
    before = snapshot(admin_engine, eid)
    with pytest.raises(Conflict) as exc:
        issue(act_as, world.owner, world.org_a, eid, based_on=stale, changes=[as_typed(m2, amount="2,200.00")])
    assert "CO-1" in exc.value.message
    assert snapshot(admin_engine, eid) == before


@pytest.mark.parametrize("status", ["draft", "awaiting_acceptance", "completed", "cancelled", "declined"])
def test_change_orders_are_refused_unless_the_engagement_is_active_or_paused(act_as, admin_engine, world, status):
    eid = engagement_in(status, act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    before = snapshot(admin_engine, eid)
    with pytest.raises(InvalidTransition):
        issue(
            act_as,
            world.admin,
            world.org_a,
            eid,
            changes=[as_typed(m1, title="Changed")],
            additions=[RowInput(title="More", amount="1.00", due_date="2027-01-01")],
        )
    assert snapshot(admin_engine, eid) == before


def test_a_paused_engagement_takes_change_orders(act_as, admin_engine, world):
    eid = engagement_in("paused", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    co = issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(m1, amount="900.00")])
    assert co.number == 1
    assert milestone_rows(admin_engine, eid)[0]["amount_minor"] == 90000


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_a_contractor_or_finance_cannot_issue_a_change_order(act_as, admin_engine, world, who):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    before = snapshot(admin_engine, eid)
    with pytest.raises(Forbidden):
        issue(act_as, getattr(world, who), world.org_a, eid, changes=[as_typed(m1, amount="5,000.00")])
    assert snapshot(admin_engine, eid) == before


def test_only_the_engagements_own_project_owner_or_an_admin_issues_a_change_order(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world, by=world.admin, owner=world.admin)
    m1, *_ = milestone_rows(admin_engine, eid)
    before = snapshot(admin_engine, eid)
    with pytest.raises(Forbidden):
        issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(m1, amount="5,000.00")])
    assert snapshot(admin_engine, eid) == before

    co = issue(act_as, world.admin, world.org_a, eid, changes=[as_typed(m1, amount="5,000.00")])
    assert change_order_rows(admin_engine, eid)[0]["created_by"] == world.admin.id and co.number == 1


@pytest.mark.parametrize("who", ["contractor_y_user", "admin_b"])
def test_people_who_cannot_see_the_engagement_cannot_find_it_to_change_it(act_as, admin_engine, world, who):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    org = world.org_b if who == "admin_b" else world.org_a
    before = snapshot(admin_engine, eid)
    with pytest.raises(NotFound):
        issue(act_as, getattr(world, who), org, eid, changes=[as_typed(m1, amount="5,000.00")])
    assert snapshot(admin_engine, eid) == before


# --- all or nothing -----------------------------------------------------------------------------------


def test_one_bad_line_means_no_milestone_changes_and_no_change_order(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, m3 = milestone_rows(admin_engine, eid)
    set_statuses(act_as, admin_engine, (m3["id"], "submitted", "approved"))
    before = snapshot(admin_engine, eid)
    good_adjust = as_typed(m1, amount="1,111.11", title="Renamed")
    good_cancel = MilestoneChange(str(m2["id"]), cancel=True)
    good_add = RowInput(title="Phase 4", amount="10.00", due_date="2027-09-30")
    cases = [
        ([good_adjust, good_cancel, as_typed(m3, amount="1.00")], [good_add], {f"ms-{m3['id']}-title"}),
        (
            [good_adjust, good_cancel],
            [good_add, RowInput(title="Phase 5", amount="ten", due_date="2027-09-30")],
            {"new-1-amount"},
        ),
        (
            [good_adjust],
            [good_add, RowInput(title="Phase 5", amount="10.00", due_date="30/09/2027")],
            {"new-1-due_date"},
        ),
        ([good_adjust, as_typed(m2, amount="-5.00")], [good_add], {f"ms-{m2['id']}-amount"}),
        ([good_adjust, as_typed(m2, title="")], [], {f"ms-{m2['id']}-title"}),
        ([good_cancel, as_typed(m1, amount="1,000.001")], [], {f"ms-{m1['id']}-amount"}),
        ([good_adjust, MilestoneChange(str(m3["id"]), cancel=True)], [good_add], {f"ms-{m3['id']}-cancel"}),
    ]
    for changes, additions, fields in cases:
        with pytest.raises(ValidationError) as exc:
            issue(act_as, world.owner, world.org_a, eid, changes=changes, additions=additions)
        assert set(exc.value.fields) == fields
        assert snapshot(admin_engine, eid) == before


def test_every_bad_field_is_reported_at_once(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, _ = milestone_rows(admin_engine, eid)
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        issue(
            act_as,
            world.owner,
            world.org_a,
            eid,
            reason="",
            changes=[as_typed(m1, amount="abc"), as_typed(m2, due_date="2027-02-30")],
            additions=[RowInput(deliverable="no title", amount="5.00", due_date="2027-01-01")],
        )
    assert set(exc.value.fields) == {"reason", f"ms-{m1['id']}-amount", f"ms-{m2['id']}-due_date", "new-0-title"}
    assert snapshot(admin_engine, eid) == before


# --- reading ------------------------------------------------------------------------------------------


def test_the_contractors_user_reads_the_change_orders_of_their_engagement(act_as, admin_engine, world):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, m2, _ = milestone_rows(admin_engine, eid)
    issue(
        act_as,
        world.owner,
        world.org_a,
        eid,
        changes=[as_typed(m1, amount="1,250.00"), MilestoneChange(str(m2["id"]), cancel=True)],
    )
    issue(
        act_as,
        world.owner,
        world.org_a,
        eid,
        based_on=1,
        additions=[RowInput(title="Phase 4", amount="400.00", due_date="2027-07-01")],
    )

    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    seen = queries.change_orders(session, eid)
    session.rollback()
    assert [(c.number, c.reason, c.contract_value_before, c.contract_value_after, c.created_by_name) for c in seen] == [
        (2, REASON, 425000, 465000, world.owner.name),
        (1, REASON, 600000, 425000, world.owner.name),
    ]
    assert [(line.kind, line.milestone_title, line.before, line.after) for line in seen[1].lines] == [
        ("adjust", "Phase 1", {"amount_minor": 100000}, {"amount_minor": 125000}),
        ("cancel", "Phase 2", {"status": "planned"}, {"status": "cancelled"}),
    ]
    assert [(line.kind, line.milestone_title, line.before) for line in seen[0].lines] == [("add", "Phase 4", None)]
    detail = detail_as(act_as, world.contractor_x_user, world.org_a, eid)
    assert detail is not None and detail.totals.contract_value == 465000
    assert [c.number for c in detail.change_orders] == [2, 1]


@pytest.mark.parametrize("who", ["contractor_y_user", "admin_b", "contractor_z_user"])
def test_nobody_outside_the_engagement_reads_its_change_orders(act_as, admin_engine, world, who):
    eid = engagement_in("active", act_as, admin_engine, world)
    m1, *_ = milestone_rows(admin_engine, eid)
    issue(act_as, world.owner, world.org_a, eid, changes=[as_typed(m1, amount="1,250.00")])
    org = world.org_a if who == "contractor_y_user" else world.org_b
    session, _ = sign_in(act_as, getattr(world, who), org)
    assert queries.change_orders(session, eid) == []
    assert queries.engagement_detail(session, eid) is None
    session.rollback()


# --- races --------------------------------------------------------------------------------------------


def race(app_sessions, org_id, engagement_id, contenders) -> list:
    """Issue each (person, ChangeOrderInput) at once; each outcome is the change order's number or the exception."""
    return race_people(
        app_sessions,
        org_id,
        [person for person, _ in contenders],
        lambda session, actor, i: issue_change_order(session, actor, engagement_id, contenders[i][1]).number,
    )


def test_two_change_orders_from_the_same_schedule_at_once_exactly_one_is_issued(
    act_as, app_sessions, admin_engine, world
):
    for _round in range(3):
        eid = engagement_in("active", act_as, admin_engine, world)
        m1, m2, _ = milestone_rows(admin_engine, eid)
        contenders = [
            (
                world.owner,
                ChangeOrderInput(reason="Owner's change", based_on=0, changes=[as_typed(m1, amount="1,100.00")]),
            ),
            (
                world.admin,
                ChangeOrderInput(
                    reason="Admin's change",
                    based_on=0,
                    changes=[as_typed(m2, amount="2,200.00")],
                    additions=[RowInput(title="Phase 4", amount="10.00", due_date="2027-08-01")],
                ),
            ),
        ]
        outcomes = race(app_sessions, world.org_a, eid, contenders)

        winners = [i for i, o in enumerate(outcomes) if o == 1]
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert isinstance(losers[0], Conflict), outcomes
        (co,) = change_order_rows(admin_engine, eid)
        assert co["number"] == 1 and co["reason"] == contenders[winners[0]][1].reason
        amounts = [m["amount_minor"] for m in milestone_rows(admin_engine, eid)]
        assert amounts == ([110000, 200000, 300000] if winners[0] == 0 else [100000, 220000, 300000, 1000])
