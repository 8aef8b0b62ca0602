"""The periodic jobs (DESIGN.md section 6; jobs/tasks.py): the overdue-review reminder and finance's
daily digest of payments due.

The services are called as the organization's worker (``jobs.runtime.worker_session``), and the
procrastinate task functions themselves are called the way the worker calls them, to show they visit
every organization (``job_org_ids()``). Time is moved by backdating rows as the owner role, never by
waiting.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL
from kit.money import active_engagement, approve, approved_invoices, decide_as, export, party, set_org, submit
from sqlalchemy import create_engine, text

from backoffice.config import load_settings
from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.jobs import runtime, tasks
from backoffice.services import approvals, bootstrap, notifications
from backoffice.services.notifications import worker_actor


@pytest.fixture
def worker(database):
    return runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))


def backdate(admin_engine, submission_id, days: float) -> None:
    with admin_engine.begin() as conn:
        conn.execute(
            text("update submissions set submitted_at = now() - make_interval(secs => :s) where id = :i"),
            {"s": days * 86400, "i": submission_id},
        )


def remind(org_id) -> int:
    with runtime.worker_session(org_id) as session:
        return notifications.remind_overdue_reviews(session, worker_actor(org_id), base_url=BASE_URL)


def digest(org_id, day: date) -> int:
    with runtime.worker_session(org_id) as session:
        return notifications.send_finance_digest(session, worker_actor(org_id), day, base_url=BASE_URL)


def messages(admin_engine, org_id, event: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = :e order by created_at",
        o=org_id,
        e=event,
    )


def notices(admin_engine, org_id, event: str) -> list[dict]:
    return owner_query(admin_engine, "select * from notifications where org_id = :o and event = :e", o=org_id, e=event)


def send_jobs_for(admin_engine, message_ids) -> list[dict]:
    ids = {str(i) for i in message_ids}
    return owner_query(
        admin_engine,
        "select args from procrastinate.procrastinate_jobs where task_name = 'send_email'"
        " and args->>'message_id' = any(:ids)",
        ids=list(ids),
    )


def timestamp_of(day: date) -> int:
    return int(datetime.combine(day, time(7, 0), tzinfo=UTC).timestamp())


# Every call of remind_overdue_reviews raises before reading a row, so the hourly job fails in the first
# organization it visits and nobody is ever reminded.
# --- the overdue-review reminder --------------------------------------------------------------------


def test_a_submission_waiting_longer_than_the_sla_reminds_the_engagements_owner_once(
    world, act_as, admin_engine, worker
):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    backdate(admin_engine, sub.id, 3.5)  # the organization's review time is 3 days unless changed

    assert remind(world.org_a) == 1

    (r,) = messages(admin_engine, world.org_a, "review.overdue")
    assert r["recipient"] == world.owner.email and r["recipient_user_id"] == world.owner.id
    assert r["subject"] == f"Waiting for your review: Roof part 1 (Contractor X {world.suffix})"
    assert "more than 3 day(s)" in r["text"]
    assert f"{BASE_URL}/milestones/{m1}" in r["text"] and f'href="{BASE_URL}/milestones/{m1}"' in r["html"]
    (n,) = notices(admin_engine, world.org_a, "review.overdue")
    assert (n["user_id"], n["url"], n["title"]) == (world.owner.id, f"/milestones/{m1}", r["subject"])
    assert len(send_jobs_for(admin_engine, [r["id"]])) == 1

    assert remind(world.org_a) == 0  # the next hour's run
    assert len(messages(admin_engine, world.org_a, "review.overdue")) == 1
    assert len(notices(admin_engine, world.org_a, "review.overdue")) == 1


def test_a_submission_within_the_sla_is_not_reminded(world, act_as, admin_engine, worker):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    backdate(admin_engine, sub.id, 2.5)

    assert remind(world.org_a) == 0
    assert messages(admin_engine, world.org_a, "review.overdue") == []


def test_the_reminder_follows_the_organizations_own_review_time(world, act_as, admin_engine, worker):
    set_org(admin_engine, world.org_a, review_sla_days=1)
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    backdate(admin_engine, sub.id, 1.5)

    assert remind(world.org_a) == 1
    (r,) = messages(admin_engine, world.org_a, "review.overdue")
    assert "more than 1 day(s)" in r["text"]


def test_decided_work_is_not_reminded(world, act_as, admin_engine, worker):
    p = party(world)
    _, (m1, m2) = active_engagement(act_as, admin_engine, p)
    approved = submit(act_as, p, m1)
    decide_as(act_as, world.owner, world.org_a, m1, approved.id, "approve")
    disputed = submit(act_as, p, m2)
    decide_as(act_as, world.owner, world.org_a, m2, disputed.id, "dispute", reason="Photos missing.")
    backdate(admin_engine, approved.id, 10)
    backdate(admin_engine, disputed.id, 10)

    assert remind(world.org_a) == 0
    assert messages(admin_engine, world.org_a, "review.overdue") == []


def test_only_the_newest_revision_counts_for_the_reminder(world, act_as, admin_engine, worker):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    first = submit(act_as, p, m1)
    decide_as(act_as, world.owner, world.org_a, m1, first.id, "dispute", reason="Photos missing.")
    backdate(admin_engine, first.id, 10)
    second = submit(act_as, p, m1, note="Photos added.")

    assert remind(world.org_a) == 0

    backdate(admin_engine, second.id, 4)
    assert remind(world.org_a) == 1
    (r,) = messages(admin_engine, world.org_a, "review.overdue")
    assert r["entity_id"] == str(m1)
    assert r["dedupe_key"] == f"review.overdue:{second.id}:{world.owner.id}"


def test_a_removed_owner_is_not_reminded(world, act_as, admin_engine, worker):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    backdate(admin_engine, sub.id, 5)
    with admin_engine.begin() as conn:
        conn.execute(text("update users set is_active = false where id = :u"), {"u": world.owner.id})

    remind(world.org_a)

    assert messages(admin_engine, world.org_a, "review.overdue") == []


def test_the_hourly_task_reminds_in_every_organization(world, act_as, admin_engine, worker):
    pa, pz = party(world, "x"), party(world, "z")
    _, (ma, _) = active_engagement(act_as, admin_engine, pa)
    _, (mz, _) = active_engagement(act_as, admin_engine, pz)
    backdate(admin_engine, submit(act_as, pa, ma).id, 4)
    backdate(admin_engine, submit(act_as, pz, mz).id, 4)
    ids = [r["id"] for r in owner_query(admin_engine, "select job_org_ids() as id")]
    assert world.org_a in ids and world.org_b in ids

    tasks.remind_overdue_reviews(timestamp=int(datetime.now(UTC).timestamp()))

    assert [r["recipient"] for r in messages(admin_engine, world.org_a, "review.overdue")] == [world.owner.email]
    assert [r["recipient"] for r in messages(admin_engine, world.org_b, "review.overdue")] == [world.admin_b.email]


# --- the finance digest -----------------------------------------------------------------------------


@pytest.fixture
def due(world, act_as, admin_engine):
    """Three authorized payments for contractor X (net 90.00, 180.00, 270.00), due in 30 days."""
    _, invoices = approved_invoices(act_as, admin_engine, party(world), ("100.00", "200.00", "300.00"))
    return invoices


def test_finance_gets_one_digest_of_the_payments_due_within_a_week(world, due, admin_engine, worker):
    day = due[0]["due_date"] - timedelta(days=3)

    assert digest(world.org_a, day) == 1

    (r,) = messages(admin_engine, world.org_a, "finance.digest")
    assert r["recipient"] == world.finance.email  # finance only: not the admin, the owner or a contractor
    assert r["subject"].startswith("3 payments due by ")
    assert r["subject"].endswith(": $540.00")
    for invoice, net in zip(due, ("$90.00", "$180.00", "$270.00"), strict=True):
        assert invoice["invoice_number"] in r["text"]
        assert net in r["text"]
    assert "overdue" not in r["text"].split("\n\n")[2]  # the lead: none is late yet
    path = f"/payments/?due_before={(day + timedelta(days=7)).isoformat()}"
    assert f"{BASE_URL}{path}" in r["text"]
    (n,) = notices(admin_engine, world.org_a, "finance.digest")
    assert (n["user_id"], n["url"]) == (world.finance.id, path)


def test_the_digest_marks_overdue_payments(world, due, admin_engine, worker):
    day = due[0]["due_date"] + timedelta(days=2)
    assert digest(world.org_a, day) == 1
    (r,) = messages(admin_engine, world.org_a, "finance.digest")
    assert "3 of them overdue" in r["text"]
    assert r["text"].count("(overdue)") == 3


def test_no_digest_when_nothing_is_due(world, due, admin_engine, worker):
    day = due[0]["due_date"] - timedelta(days=20)
    assert digest(world.org_a, day) == 0
    assert messages(admin_engine, world.org_a, "finance.digest") == []


def test_one_digest_per_day_however_often_it_runs(world, due, admin_engine, worker):
    day = due[0]["due_date"] - timedelta(days=1)
    assert digest(world.org_a, day) == 1
    assert digest(world.org_a, day) == 0
    assert len(messages(admin_engine, world.org_a, "finance.digest")) == 1
    assert digest(world.org_a, day + timedelta(days=1)) == 1  # the next day has its own
    assert len(messages(admin_engine, world.org_a, "finance.digest")) == 2


def test_exported_payments_are_not_in_the_digest(world, due, act_as, admin_engine, worker):
    export(act_as, world.finance, world.org_a, [due[0]["id"], due[1]["id"]])
    day = due[0]["due_date"] - timedelta(days=1)
    assert digest(world.org_a, day) == 1
    (r,) = messages(admin_engine, world.org_a, "finance.digest")
    assert r["subject"].startswith("1 payment due by ") and r["subject"].endswith(": $270.00")
    assert due[0]["invoice_number"] not in r["text"] and due[1]["invoice_number"] not in r["text"]


def test_the_daily_task_sends_each_organizations_digest_with_its_own_payments(
    world, due, act_as, admin_engine, worker, password_hash
):
    set_org(admin_engine, world.org_b, segregation_of_duties=False)
    _, z_invoices = approved_invoices(act_as, admin_engine, party(world, "z"), ("500.00",))
    with make_session_factory(admin_engine)() as session:
        finance_b = bootstrap.create_user(
            session,
            email=f"financeb-{world.suffix}@example.com",
            name="Finn B",
            password_hash=password_hash,
            org_id=world.org_b,
            role=Role.FINANCE,
        )
        session.commit()
        finance_b_email = finance_b.email
    day = due[0]["due_date"] - timedelta(days=1)

    tasks.finance_digest(timestamp=timestamp_of(day))

    (a,) = messages(admin_engine, world.org_a, "finance.digest")
    (b,) = messages(admin_engine, world.org_b, "finance.digest")
    assert a["recipient"] == world.finance.email and b["recipient"] == finance_b_email
    assert z_invoices[0]["invoice_number"] not in a["text"]
    assert due[0]["invoice_number"] not in b["text"]
    assert z_invoices[0]["invoice_number"] in b["text"]
    assert a["dedupe_key"] == f"finance.digest:{day.isoformat()}:{world.finance.id}"


# --- payments waiting at an approval step (issue 18) -----------------------------------------------------------


def backdate_steps(database, invoice_id, days: float) -> None:
    """As a superuser with triggers off: nobody else may move when a step began waiting."""
    engine = create_engine(database.superuser_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("set local session_replication_role = replica"))
            conn.execute(
                text(
                    "update invoice_approvals set created_at = now() - make_interval(secs => :s) where invoice_id = :i"
                ),
                {"s": days * 86400, "i": invoice_id},
            )
    finally:
        engine.dispose()


def test_an_approver_is_reminded_once_of_a_payment_waiting_longer_than_the_review_time(
    act_as, admin_engine, database, world, worker
):
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(
        session, actor, approvals.PolicyInput("Large", "USD", "1,000.00", [approvals.StepInput(role="finance")])
    )
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("2,500.00",))
    inv = approve(act_as, admin_engine, p, m)
    assert remind(world.org_a) == 0  # waiting for less than the review time (3 days)
    backdate_steps(database, inv["id"], 3.5)
    assert remind(world.org_a) == 1
    assert remind(world.org_a) == 0  # once per step
    (mail,) = messages(admin_engine, world.org_a, "invoice.approval_overdue")
    assert mail["recipient"] == world.finance.email
    assert mail["subject"] == f"Still waiting for approval: {inv['invoice_number']} — $2,500.00"
