"""Side effects are jobs enqueued in the transaction that changes the state (DESIGN.md section 6):
a rollback enqueues nothing, a commit enqueues exactly what the change calls for, and a job carries
ids only, never a secret.

The state changes go through the real services as the app role; the queue (procrastinate's table in
its own schema) is read as the owner role, so an uncommitted job row is invisible to it exactly as it
is to the worker.
"""

from __future__ import annotations

import json
import uuid

import pytest
from kit.auth import write_reset_emails
from kit.engagements import owner_query, sign_in
from kit.jobs import jobs
from kit.money import active_engagement, approved_invoices, complete, decide_as, export, party, pay, payments_of, submit

from backoffice.errors import Conflict, InvalidTransition, ValidationError
from backoffice.jobs import queue
from backoffice.services import (
    engagements,
    invoices,
    members,
    password_resets,
    schedule,
)
from backoffice.services.change_orders import ChangeOrderInput, issue_change_order
from backoffice.services.engagements import EngagementInput
from backoffice.services.notification_events import BUILDERS
from backoffice.services.schedule import RowInput, ScheduleInput


def queue_ids(admin_engine, org_id) -> set[int]:
    return {j["id"] for j in jobs(admin_engine, org_ids=[org_id])}


def added_since(admin_engine, org_id, before: set[int]) -> list[tuple[str, dict]]:
    return sorted(
        ((j["task_name"], j["args"]) for j in jobs(admin_engine, org_ids=[org_id]) if j["id"] not in before),
        key=lambda t: (t[0], json.dumps(t[1], sort_keys=True)),
    )


def notify_job(org_id, event: str, entity_id) -> tuple[str, dict]:
    return "notify", {"org_id": str(org_id), "event": event, "entity_id": str(entity_id)}


def receipt_job(org_id, invoice_id) -> tuple[str, dict]:
    return "issue_receipt", {"org_id": str(org_id), "invoice_id": str(invoice_id)}


def advice_job(org_id, run_id, contractor_id) -> tuple[str, dict]:
    args = {"org_id": str(org_id), "run_id": str(run_id), "contractor_id": str(contractor_id)}
    return "issue_remittance_advice", args


def expect(*pairs) -> list[tuple[str, dict]]:
    return sorted(pairs, key=lambda t: (t[0], json.dumps(t[1], sort_keys=True)))


def draft_with_milestone(act_as, world):
    session, actor = sign_in(act_as, world.owner, world.org_a)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(contractor_id=str(world.contractor_x), title="Deck", owner_user_id=str(world.owner.id)),
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[RowInput(title="Deck boards", deliverable="Boards laid", amount="500.00", due_date="2030-01-15")]
        ),
    )
    return e.id


# --- a rollback enqueues nothing ---------------------------------------------------------------------


def test_a_job_enqueued_and_rolled_back_is_never_queued(world, act_as, admin_engine):
    before = queue_ids(admin_engine, world.org_a)
    session = act_as(world.admin.id, world.org_a)
    queue.notify(session, world.org_a, "milestone.submitted", uuid.uuid4())
    session.rollback()
    assert added_since(admin_engine, world.org_a, before) == []


def test_an_enqueued_job_is_invisible_until_the_transaction_commits(world, act_as, admin_engine):
    before = queue_ids(admin_engine, world.org_a)
    entity = uuid.uuid4()
    session = act_as(world.admin.id, world.org_a)
    queue.notify(session, world.org_a, "milestone.submitted", entity)
    assert added_since(admin_engine, world.org_a, before) == []  # the worker cannot take it yet
    session.commit()
    assert added_since(admin_engine, world.org_a, before) == [notify_job(world.org_a, "milestone.submitted", entity)]


def test_a_dispute_without_a_reason_enqueues_nothing(world, act_as, admin_engine):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    before = queue_ids(admin_engine, world.org_a)
    with pytest.raises(ValidationError):
        decide_as(act_as, world.owner, world.org_a, m1, sub.id, "dispute", reason="  ")
    assert added_since(admin_engine, world.org_a, before) == []


def test_a_second_decision_on_the_same_work_enqueues_nothing_more(world, act_as, admin_engine):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    decide_as(act_as, world.owner, world.org_a, m1, sub.id, "approve")
    before = queue_ids(admin_engine, world.org_a)
    with pytest.raises(Conflict):
        decide_as(act_as, world.admin, world.org_a, m1, sub.id, "dispute", reason="Late.")
    assert added_since(admin_engine, world.org_a, before) == []


def test_sending_a_work_request_without_milestones_enqueues_nothing(world, act_as, admin_engine):
    session, actor = sign_in(act_as, world.owner, world.org_a)
    e = engagements.create_engagement(
        session, actor, EngagementInput(contractor_id=str(world.contractor_x), title="Empty")
    )
    before = queue_ids(admin_engine, world.org_a)
    with pytest.raises((InvalidTransition, ValidationError)):
        engagements.perform(session, actor, e.id, "send")
    assert added_since(admin_engine, world.org_a, before) == []


def test_a_change_order_without_a_reason_enqueues_nothing(world, act_as, admin_engine):
    p = party(world)
    engagement_id, _ = active_engagement(act_as, admin_engine, p)
    before = queue_ids(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(ValidationError):
        issue_change_order(
            session,
            actor,
            engagement_id,
            ChangeOrderInput(
                reason="", based_on=0, additions=[RowInput(title="Extra", amount="100.00", due_date="2030-03-01")]
            ),
        )
    assert added_since(admin_engine, world.org_a, before) == []


# --- a commit enqueues exactly what the change calls for -------------------------------------------


def test_sending_accepting_and_declining_a_work_request_each_enqueue_their_notice(world, act_as, admin_engine):
    before = queue_ids(admin_engine, world.org_a)
    p = party(world)
    engagement_id, _ = active_engagement(act_as, admin_engine, p)
    assert added_since(admin_engine, world.org_a, before) == expect(
        notify_job(world.org_a, "engagement.work_request_sent", engagement_id),
        notify_job(world.org_a, "engagement.work_request_accepted", engagement_id),
    )

    declined = draft_with_milestone(act_as, world)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.perform(session, actor, declined, "send")
    before = queue_ids(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    engagements.perform(session, actor, declined, "decline", reason="Fully booked until spring.")
    assert added_since(admin_engine, world.org_a, before) == [
        notify_job(world.org_a, "engagement.work_request_declined", declined)
    ]


def test_submitting_work_enqueues_one_notice_for_the_submission(world, act_as, admin_engine):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    before = queue_ids(admin_engine, world.org_a)
    sub = submit(act_as, p, m1)
    assert added_since(admin_engine, world.org_a, before) == [notify_job(world.org_a, "milestone.submitted", sub.id)]


def test_an_approval_enqueues_its_notice_and_the_invoices_receipt(world, act_as, admin_engine):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    before = queue_ids(admin_engine, world.org_a)
    review = decide_as(act_as, world.owner, world.org_a, m1, sub.id, "approve")
    (invoice,) = owner_query(admin_engine, "select id from invoices where review_id = :r", r=review.id)
    assert added_since(admin_engine, world.org_a, before) == expect(
        notify_job(world.org_a, "milestone.approved", review.id), receipt_job(world.org_a, invoice["id"])
    )


def test_a_dispute_enqueues_its_notice_and_no_receipt(world, act_as, admin_engine):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    before = queue_ids(admin_engine, world.org_a)
    review = decide_as(act_as, world.owner, world.org_a, m1, sub.id, "dispute", reason="Photos missing.")
    assert added_since(admin_engine, world.org_a, before) == [notify_job(world.org_a, "milestone.disputed", review.id)]


def test_a_change_order_enqueues_its_notice(world, act_as, admin_engine):
    p = party(world)
    engagement_id, _ = active_engagement(act_as, admin_engine, p)
    before = queue_ids(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    co = issue_change_order(
        session,
        actor,
        engagement_id,
        ChangeOrderInput(
            reason="Gutters too.",
            based_on=0,
            additions=[RowInput(title="Gutters", amount="300.00", due_date="2030-03-01")],
        ),
    )
    assert added_since(admin_engine, world.org_a, before) == [notify_job(world.org_a, "change_order.issued", co.id)]


def test_an_export_and_a_payment_each_enqueue_their_notice_and_a_payment_its_remittance_advice(
    world, act_as, admin_engine
):
    p = party(world)
    _, (inv, _) = approved_invoices(act_as, admin_engine, p)
    before = queue_ids(admin_engine, world.org_a)
    batch = export(act_as, world.finance, world.org_a, [inv["id"]])
    assert added_since(admin_engine, world.org_a, before) == [notify_job(world.org_a, "batch.exported", batch.id)]

    before = queue_ids(admin_engine, world.org_a)
    pay(act_as, world.finance, world.org_a, inv["id"])
    (payment,) = payments_of(admin_engine, inv["id"])
    assert added_since(admin_engine, world.org_a, before) == expect(
        notify_job(world.org_a, "payment.run", payment["run_id"]),
        advice_job(world.org_a, payment["run_id"], world.contractor_x),
    )


def test_releasing_retainage_enqueues_its_receipt_and_its_notice(world, act_as, admin_engine):
    p = party(world)
    engagement_id, _ = approved_invoices(act_as, admin_engine, p)
    complete(act_as, p, engagement_id)
    before = queue_ids(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    release = invoices.release_retainage(session, actor, engagement_id)
    assert added_since(admin_engine, world.org_a, before) == expect(
        receipt_job(world.org_a, release.id), notify_job(world.org_a, "retainage.released", release.id)
    )


# --- ids only, never secrets --------------------------------------------------------------------------


def test_an_invitations_token_is_in_no_job(world, act_as, admin_engine):
    before = queue_ids(admin_engine, world.org_a)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    invite = members.invite_member(
        session,
        actor,
        email=f"newbie-{world.suffix}@example.com",
        name="Nia Newbie",
        role="owner",
        base_url="http://backoffice.test",
    )
    added = added_since(admin_engine, world.org_a, before)
    (message,) = owner_query(
        admin_engine, "select id from email_messages where org_id = :o and event = 'invite'", o=world.org_a
    )
    assert added == [("send_email", {"message_id": str(message["id"]), "org_id": str(world.org_a), "user_id": None})]
    every_job = json.dumps([j["args"] for j in jobs(admin_engine)])
    assert invite.token not in every_job


def test_a_password_resets_token_is_in_no_job(world, app_sessions, admin_engine, database):
    with app_sessions() as session:
        password_resets.request_reset(session, world.finance.email)
    (reset,) = [
        j for j in jobs(admin_engine, task="send_password_reset") if j["args"]["user_id"] == str(world.finance.id)
    ]
    assert reset["args"] == {"reset_id": reset["args"]["reset_id"], "user_id": str(world.finance.id)}
    write_reset_emails(database, admin_engine, world.finance.id)
    (message,) = owner_query(
        admin_engine,
        "select id, html from account_messages where recipient_user_id = :u",
        u=world.finance.id,
    )
    token = message["html"].split("/password/reset/")[1].split('"')[0]
    assert len(token) >= 32
    mine = [j for j in jobs(admin_engine, task="send_email") if j["args"]["message_id"] == str(message["id"])]
    assert [j["args"] for j in mine] == [
        {"message_id": str(message["id"]), "org_id": None, "user_id": str(world.finance.id)}
    ]
    assert token not in json.dumps([j["args"] for j in jobs(admin_engine)])


def test_every_job_carries_only_ids_and_event_names(world, act_as, admin_engine, app_sessions):
    p = party(world)
    _, (inv, _) = approved_invoices(act_as, admin_engine, p)
    export(act_as, world.finance, world.org_a, [inv["id"]])
    session, actor = sign_in(act_as, world.admin, world.org_a)
    members.invite_member(
        session,
        actor,
        email=f"newbie-{world.suffix}@example.com",
        name="Nia Newbie",
        role="owner",
        base_url="http://backoffice.test",
    )
    with app_sessions() as s:
        password_resets.request_reset(s, world.owner.email)
    mine = [
        j
        for j in jobs(admin_engine)
        if str(world.org_a) in json.dumps(j["args"]) or str(world.owner.id) in json.dumps(j["args"])
    ]
    assert {j["task_name"] for j in mine} == {"notify", "issue_receipt", "send_email", "send_password_reset"}
    for job in mine:
        for key, value in job["args"].items():
            if key == "event":
                assert value in BUILDERS, job
            else:
                assert key.endswith("_id"), job
                assert value is None or uuid.UUID(value), job
