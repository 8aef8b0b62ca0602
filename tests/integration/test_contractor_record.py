"""Contractors' track records (queries/contractor_record.py) over history built through the real services, read
as the real app role by the organization's staff: exact counts, the organization's own rows only, and zeros
(no rates) for a contractor without history.
"""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

from kit.engagements import owner_query, set_due_date, sign_in
from kit.money import active_engagement, approve, complete, decide_as, party, set_org, submit
from sqlalchemy import event, text

from backoffice.db import make_session_factory
from backoffice.queries.contractor_record import ContractorRecord, contractor_records
from backoffice.services import approvals, bootstrap, engagements
from backoffice.services.approvals import PolicyInput, StepInput

# --- history, through the services ------------------------------------------------------------------------


def submitted_on(admin_engine, submission_id):
    """The UTC date the database stamped on the submission."""
    (row,) = owner_query(admin_engine, "select submitted_at from submissions where id = :s", s=submission_id)
    return row["submitted_at"].astimezone(UTC).date()


def dispute(act_as, p, milestone_id) -> None:
    sub = submit(act_as, p, milestone_id)
    decide_as(act_as, p.staff, p.org_id, milestone_id, sub.id, "dispute", "The photos do not show the work.")


def perform(act_as, p, engagement_id, action, reason="") -> None:
    session, actor = sign_in(act_as, p.staff, p.org_id)
    engagements.perform(session, actor, engagement_id, action, reason)


def clean_record(act_as, admin_engine, world) -> None:
    """Contractor X: a completed engagement with two milestones approved at the first submission; an active one
    with one approved at the first submission on its very due date and one awaiting review."""
    p = party(world, "x")
    done, milestones = active_engagement(act_as, admin_engine, p, ("1,000.00", "2,000.00"), title="Kitchen")
    for m in milestones:
        approve(act_as, admin_engine, p, m)
    complete(act_as, p, done)
    _, (on_the_day, waiting) = active_engagement(act_as, admin_engine, p, ("700.00", "300.00"), title="Bathroom")
    sub = submit(act_as, p, on_the_day)
    set_due_date(admin_engine, on_the_day, submitted_on(admin_engine, sub.id))
    decide_as(act_as, p.staff, p.org_id, on_the_day, sub.id, "approve")
    submit(act_as, p, waiting)


def disputed_and_late_record(act_as, admin_engine, world) -> None:
    """Contractor Y: a paused engagement where one milestone was approved after a dispute, one at the first
    submission made the day after its due date, one after two disputes, and one is back with the contractor
    after a dispute; and a cancelled engagement."""
    p = party(world, "y")
    paused, (redone, late, twice, returned) = active_engagement(
        act_as, admin_engine, p, ("500.00", "500.00", "500.00", "500.00"), title="Garage"
    )
    dispute(act_as, p, redone)
    approve(act_as, admin_engine, p, redone)
    sub = submit(act_as, p, late)
    set_due_date(admin_engine, late, submitted_on(admin_engine, sub.id) - timedelta(days=1))
    decide_as(act_as, p.staff, p.org_id, late, sub.id, "approve")
    dispute(act_as, p, twice)
    dispute(act_as, p, twice)
    approve(act_as, admin_engine, p, twice)
    dispute(act_as, p, returned)
    perform(act_as, p, paused, "pause")
    cancelled, _ = active_engagement(act_as, admin_engine, p, ("900.00",), title="Shed")
    perform(act_as, p, cancelled, "cancel", "The shed is not needed.")


def other_org_record(act_as, admin_engine, world) -> None:
    """Contractor Z of org B: a completed engagement whose one milestone was approved after a dispute."""
    p = party(world, "z")
    done, (m,) = active_engagement(act_as, admin_engine, p, ("800.00",), title="Attic")
    dispute(act_as, p, m)
    approve(act_as, admin_engine, p, m)
    complete(act_as, p, done)


def records(act_as, person, org_id, ids) -> dict:
    session, _actor = sign_in(act_as, person, org_id)
    return contractor_records(session, ids)


def zeros(contractor_id) -> ContractorRecord:
    return ContractorRecord(contractor_id, 0, 0, 0, 0, 0, 0)


# --- the figures --------------------------------------------------------------------------------------------


def test_each_contractors_record_counts_its_engagements_approvals_disputes_and_timeliness(act_as, admin_engine, world):
    clean_record(act_as, admin_engine, world)
    disputed_and_late_record(act_as, admin_engine, world)
    for person in (world.owner, world.admin, world.finance):
        got = records(act_as, person, world.org_a, [world.contractor_x, world.contractor_y])
        assert got == {
            world.contractor_x: ContractorRecord(
                contractor_id=world.contractor_x,
                engagements_completed=1,
                engagements_active=1,
                milestones_approved=3,
                approved_first_time=3,
                disputes=0,
                on_time=3,
            ),
            world.contractor_y: ContractorRecord(
                contractor_id=world.contractor_y,
                engagements_completed=0,
                engagements_active=1,
                milestones_approved=3,
                approved_first_time=1,
                disputes=4,
                on_time=2,
            ),
        }, person.name
    x, y = got[world.contractor_x], got[world.contractor_y]
    assert (x.first_time_rate, x.on_time_rate) == (10000, 10000)
    assert (y.first_time_rate, y.on_time_rate) == (3333, 6667)  # 1/3 and 2/3, rounded half up


def test_an_approval_voided_by_a_rejected_payment_step_is_not_approved_first_time(act_as, admin_engine, world):
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", "10,000.00", [StepInput(role="finance")]))
    p = party(world, "x")
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    for decision, reason in (("reject", "The photos show the old roof."), ("approve", "")):
        waiting = approve(act_as, admin_engine, p, m)
        session, actor = sign_in(act_as, world.finance, world.org_a)
        approvals.decide_step(session, actor, waiting["id"], decision, reason)
    (record,) = records(act_as, world.owner, world.org_a, [world.contractor_x]).values()
    assert record == ContractorRecord(world.contractor_x, 0, 1, 1, 0, 0, 1)
    assert (record.first_time_rate, record.on_time_rate) == (0, 10000)


def test_a_split_partial_approves_the_milestone_but_not_first_time(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, partial_policy="split")
    p = party(world, "x")
    _, (m,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    sub = submit(act_as, p, m)
    decide_as(act_as, p.staff, p.org_id, m, sub.id, "partial", "Only the south slope.", approved_amount="400.00")
    (record,) = records(act_as, world.owner, world.org_a, [world.contractor_x]).values()
    # The remainder is a new milestone, planned: neither approved nor disputed.
    assert record == ContractorRecord(world.contractor_x, 0, 1, 1, 0, 0, 1)


def test_a_partial_sent_back_under_route_back_is_not_a_dispute(act_as, admin_engine, world):
    set_org(admin_engine, world.org_a, partial_policy="route_back")
    p = party(world, "x")
    _, (m,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    sub = submit(act_as, p, m)
    decide_as(act_as, p.staff, p.org_id, m, sub.id, "partial", "Only the south slope.")
    (record,) = records(act_as, world.owner, world.org_a, [world.contractor_x]).values()
    assert record == ContractorRecord(world.contractor_x, 0, 1, 0, 0, 0, 0)
    assert (record.first_time_rate, record.on_time_rate) == (None, None)


# --- the organization's rows only ---------------------------------------------------------------------------


def test_another_organizations_history_is_not_counted(act_as, admin_engine, world):
    clean_record(act_as, admin_engine, world)
    other_org_record(act_as, admin_engine, world)
    in_a = records(act_as, world.owner, world.org_a, [world.contractor_x, world.contractor_z])
    assert in_a == {
        world.contractor_x: ContractorRecord(world.contractor_x, 1, 1, 3, 3, 0, 3),
        world.contractor_z: zeros(world.contractor_z),
    }
    in_b = records(act_as, world.admin_b, world.org_b, [world.contractor_x, world.contractor_z])
    assert in_b == {
        world.contractor_x: zeros(world.contractor_x),
        world.contractor_z: ContractorRecord(world.contractor_z, 1, 0, 1, 0, 1, 1),
    }
    assert (in_b[world.contractor_z].first_time_rate, in_b[world.contractor_z].on_time_rate) == (0, 10000)


def test_a_contractor_without_history_gets_zeros_and_no_rates(act_as, admin_engine, world):
    with make_session_factory(admin_engine)() as session:
        newcomer = bootstrap.create_contractor(
            session, world.org_a, f"Contractor W {world.suffix}", f"w-{world.suffix}@example.com"
        ).id
        session.commit()
    # A draft cancelled before it was sent counts nowhere.
    p = party(world, "x")
    session, actor = sign_in(act_as, p.staff, p.org_id)
    draft = engagements.create_engagement(
        session, actor, engagements.EngagementInput(contractor_id=str(p.contractor_id), title="Porch")
    )
    perform(act_as, p, draft.id, "cancel", "Not this year.")
    nobody = uuid.uuid4()
    got = records(act_as, world.owner, world.org_a, [newcomer, world.contractor_x, nobody, newcomer])
    assert got == {newcomer: zeros(newcomer), world.contractor_x: zeros(world.contractor_x), nobody: zeros(nobody)}
    assert (got[newcomer].first_time_rate, got[newcomer].on_time_rate) == (None, None)
    assert records(act_as, world.owner, world.org_a, []) == {}


def test_the_records_take_three_statements_for_one_contractor_or_many(act_as, app_engine, admin_engine, world):
    clean_record(act_as, admin_engine, world)
    session, _actor = sign_in(act_as, world.owner, world.org_a)
    session.execute(text("select 1"))  # the transaction (and its RLS settings) begins before the count
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(app_engine, "before_cursor_execute", record)
    try:
        contractor_records(session, [world.contractor_x])
        one = len(statements)
        contractor_records(session, [world.contractor_x, world.contractor_y, world.contractor_z, uuid.uuid4()])
    finally:
        event.remove(app_engine, "before_cursor_execute", record)
    assert (one, len(statements) - one) == (3, 3)
