"""Who is told what, per event (DESIGN.md section 6; services/notification_events.py).

Each event is caused by the real service (engagements, submissions, reviews, change orders, AP export,
payments, retainage), its ``notify`` job is run by the real worker, and what it wrote is read back as
the owner role: one email per person told (exactly these people), the subject and the words that
matter, amounts in the organization's locale, the link into the app, and an in-app notification with
the same link for each of them. Contractor X has a second user and a pending invitee here, so "the
contractor's people" is a set, and only accepted members are in it.
"""

from __future__ import annotations

import html
import re

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, jobs, run_jobs
from kit.money import (
    active_engagement,
    approve,
    approved_invoices,
    complete,
    decide_as,
    export,
    party,
    pay,
    payments_of,
    set_org,
    submit,
)

from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.jobs import queue
from backoffice.services import bootstrap, engagements, invoices, members, schedule
from backoffice.services.change_orders import ChangeOrderInput, issue_change_order
from backoffice.services.engagements import EngagementInput
from backoffice.services.notification_events import BUILDERS
from backoffice.services.schedule import RowInput, ScheduleInput

NBSP = "\xa0"


# --- reading what the worker wrote ------------------------------------------------------------------


def messages(admin_engine, org_id, event: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = :e order by recipient",
        o=org_id,
        e=event,
    )


def notices(admin_engine, org_id, event: str) -> list[dict]:
    return owner_query(admin_engine, "select * from notifications where org_id = :o and event = :e", o=org_id, e=event)


def told(admin_engine, org_id, event: str, people, *, path: str) -> dict[str, dict]:
    """Assert exactly ``people`` got one email each about ``event`` linking to ``path``, and the same
    notice in the app; return the messages by recipient address."""
    rows = messages(admin_engine, org_id, event)
    assert sorted(r["recipient"] for r in rows) == sorted(p.email for p in people)
    ids = {p.email: p.id for p in people}
    url = BASE_URL + path
    for r in rows:
        assert r["recipient_user_id"] == ids[r["recipient"]]
        assert f'href="{url}"' in r["html"], "the email's button leads into the app"
        assert url in r["text"]
    in_app = {n["user_id"]: n for n in notices(admin_engine, org_id, event)}
    assert set(in_app) == {p.id for p in people}
    for r in rows:
        n = in_app[r["recipient_user_id"]]
        assert n["url"] == path
        assert n["title"] == r["subject"]
        assert n["read_at"] is None
    return {r["recipient"]: r for r in rows}


def only(rows: dict[str, dict]) -> dict:
    (row,) = rows.values()
    return row


def run(database, admin_engine, org_id) -> None:
    run_jobs(database, admin_engine, org_ids=[org_id])


def org_name(world) -> str:
    return f"Org A {world.suffix}"


def contractor_x(world) -> str:
    return f"Contractor X {world.suffix}"


# --- the world, with more people for contractor X ---------------------------------------------------


@pytest.fixture
def x_people(world, admin_engine, password_hash, act_as):
    """Contractor X's accepted users (two); a third person invited for X has not accepted yet."""
    with make_session_factory(admin_engine)() as session:
        second = bootstrap.create_user(
            session,
            email=f"xuser2-{world.suffix}@example.com",
            name="Xavier X",
            password_hash=password_hash,
            org_id=world.org_a,
            role=Role.CONTRACTOR,
            contractor_id=world.contractor_x,
        )
        session.commit()
        second = type(world.contractor_x_user)(second.id, second.email, second.name)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    members.invite_member(
        session,
        actor,
        email=f"xpending-{world.suffix}@example.com",
        name="Pending X",
        role="contractor",
        contractor_id=str(world.contractor_x),
        base_url=BASE_URL,
    )
    return (world.contractor_x_user, second)


def sent_work_request(act_as, world, *, title="Deck") -> object:
    session, actor = sign_in(act_as, world.owner, world.org_a)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(contractor_id=str(world.contractor_x), title=title, owner_user_id=str(world.owner.id)),
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(title=f"{title} boards", deliverable="Boards laid", amount="1,250.00", due_date="2030-01-15"),
                RowInput(title=f"{title} rails", amount="750.00", due_date="2030-02-15"),
            ]
        ),
    )
    engagements.perform(session, actor, e.id, "send")
    return e.id


# --- engagements ------------------------------------------------------------------------------------


def test_a_work_request_tells_each_accepted_user_of_the_contractor(world, act_as, admin_engine, database, x_people):
    engagement_id = sent_work_request(act_as, world)
    run(database, admin_engine, world.org_a)

    rows = told(
        admin_engine, world.org_a, "engagement.work_request_sent", x_people, path=f"/engagements/{engagement_id}"
    )
    for person in x_people:
        r = rows[person.email]
        assert r["subject"] == f"{org_name(world)} sent you a work request: Deck"
        assert f"Hello {person.name}," in r["text"]
        assert "Contract value: $2,000.00" in r["text"]
        assert "Milestones: 2" in r["text"]
        assert "Sent by: Omar Owner" in r["text"]
        assert r["entity_type"] == "engagement" and r["entity_id"] == str(engagement_id)


def test_an_accepted_work_request_tells_the_engagements_owner(world, act_as, admin_engine, database):
    engagement_id, _ = active_engagement(act_as, admin_engine, party(world))
    run(database, admin_engine, world.org_a)

    r = only(
        told(
            admin_engine,
            world.org_a,
            "engagement.work_request_accepted",
            [world.owner],
            path=f"/engagements/{engagement_id}",
        )
    )
    assert r["subject"] == f"{contractor_x(world)} accepted the work request: Roof"
    assert "Answered by: Xena X" in r["text"]


def test_a_declined_work_request_tells_the_owner_and_quotes_the_reason(world, act_as, admin_engine, database):
    engagement_id = sent_work_request(act_as, world)
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    engagements.perform(session, actor, engagement_id, "decline", reason="Booked until <May> & short of crew.")
    run(database, admin_engine, world.org_a)

    r = only(
        told(
            admin_engine,
            world.org_a,
            "engagement.work_request_declined",
            [world.owner],
            path=f"/engagements/{engagement_id}",
        )
    )
    assert r["subject"] == f"{contractor_x(world)} declined the work request: Deck"
    assert "Booked until <May> & short of crew." in r["text"]
    assert "Booked until &lt;May&gt; &amp; short of crew." in r["html"]
    assert "<May>" not in r["html"]


# --- submissions and decisions ----------------------------------------------------------------------


def test_submitted_work_tells_the_owner_with_the_contractors_note(world, act_as, admin_engine, database):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    submit(act_as, p, m1, note="Stripped and checked.\nPhotos in the album.")
    run(database, admin_engine, world.org_a)

    r = only(told(admin_engine, world.org_a, "milestone.submitted", [world.owner], path=f"/milestones/{m1}"))
    assert r["subject"] == f"Ready for review: Roof part 1 ({contractor_x(world)})"
    assert "Amount: $1,000.00" in r["text"]
    assert "Note from the contractor:" in r["text"]
    assert "  Stripped and checked.\n  Photos in the album." in r["text"]


def test_an_approval_tells_the_contractors_people_what_is_queued_for_payment(
    world, act_as, admin_engine, database, x_people
):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    invoice = approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world.org_a)

    rows = told(admin_engine, world.org_a, "milestone.approved", x_people, path=f"/invoices/{invoice['id']}")
    for r in rows.values():
        assert r["subject"] == "Approved: Roof part 1 — $900.00 queued for payment"
        assert f"Invoice: {invoice['invoice_number']}" in r["text"]
        assert "Gross: $1,000.00" in r["text"]
        assert "Retainage withheld: $100.00" in r["text"]
        assert "Net payable: $900.00" in r["text"]
        assert "Decided by: Omar Owner" in r["text"]
    assert messages(admin_engine, world.org_a, "milestone.approved")[0]["entity_id"] == str(m1)


def test_emails_write_the_retainage_rate_as_a_percentage(world, act_as, admin_engine, database):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world.org_a)

    (request,) = messages(admin_engine, world.org_a, "engagement.work_request_sent")
    assert "Retainage: 10%" in request["text"]
    (approval,) = messages(admin_engine, world.org_a, "milestone.approved")
    assert "Retainage withheld: $100.00 (10%)" in approval["text"]


def test_a_partial_sent_back_tells_the_contractor_why(world, act_as, admin_engine, database):
    set_org(admin_engine, world.org_a, partial_policy="route_back")
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    decide_as(act_as, world.owner, world.org_a, m1, sub.id, "partial", reason="Ridge caps still missing.")
    run(database, admin_engine, world.org_a)

    r = only(
        told(
            admin_engine,
            world.org_a,
            "milestone.partially_approved",
            [world.contractor_x_user],
            path=f"/milestones/{m1}",
        )
    )
    # The words every page shows for it: nothing was approved, so it does not read "Partly approved".
    assert r["subject"] == "Changes requested: Roof part 1"
    assert "requested changes to “Roof part 1” and sent it back to you" in r["text"]
    assert "Reason:\n  Ridge caps still missing." in r["text"]
    assert "Net payable" not in r["text"]  # nothing is paid yet


def test_a_split_partial_tells_the_contractor_the_part_queued_for_payment(world, act_as, admin_engine, database):
    set_org(admin_engine, world.org_a, partial_policy="split")
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    decide_as(
        act_as,
        world.owner,
        world.org_a,
        m1,
        sub.id,
        "partial",
        reason="Ridge caps still missing.",
        approved_amount="400.00",
    )
    run(database, admin_engine, world.org_a)

    r = only(
        told(
            admin_engine,
            world.org_a,
            "milestone.partially_approved",
            [world.contractor_x_user],
            path=f"/milestones/{m1}",
        )
    )
    assert r["subject"] == "Partly approved: Roof part 1"
    assert "$400.00 is queued for payment and the remainder is a new milestone" in r["text"]
    assert "Gross: $400.00" in r["text"] and "Net payable: $360.00" in r["text"]
    assert "Ridge caps still missing." in r["text"]


def test_a_dispute_quotes_the_reason_escaped_in_html_and_verbatim_in_text(
    world, act_as, admin_engine, database, x_people
):
    reason = 'Tiles <b>cracked</b> & "loose" near the <script>alert(1)</script> vent.'
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    decide_as(act_as, world.owner, world.org_a, m1, sub.id, "dispute", reason=reason)
    run(database, admin_engine, world.org_a)

    rows = told(admin_engine, world.org_a, "milestone.disputed", x_people, path=f"/milestones/{m1}")
    for r in rows.values():
        assert r["subject"] == "Disputed: Roof part 1"
        assert reason in r["text"]
        assert "<script>" not in r["html"] and "<b>cracked" not in r["html"]
        assert html.escape(reason, quote=False) in r["html"].replace("&#34;", '"').replace("&#39;", "'")


# --- change orders, exports, payments, retainage -----------------------------------------------------


def test_a_change_order_tells_the_contractors_people_what_changed(world, act_as, admin_engine, database, x_people):
    engagement_id, _ = active_engagement(act_as, admin_engine, party(world))
    session, actor = sign_in(act_as, world.owner, world.org_a)
    issue_change_order(
        session,
        actor,
        engagement_id,
        ChangeOrderInput(
            reason="Gutters were added to the scope.",
            based_on=0,
            additions=[RowInput(title="Gutters", amount="300.00", due_date="2030-03-01")],
        ),
    )
    run(database, admin_engine, world.org_a)

    rows = told(admin_engine, world.org_a, "change_order.issued", x_people, path=f"/engagements/{engagement_id}")
    for r in rows.values():
        assert r["subject"] == "Change order CO-1 on Roof"
        assert "Contract value before: $3,000.00" in r["text"]
        assert "Contract value after: $3,300.00" in r["text"]
        assert "Gutters were added to the scope." in r["text"]


def test_an_export_tells_finance_and_nobody_else(world, act_as, admin_engine, database):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    batch = export(act_as, world.finance, world.org_a, [inv["id"]])
    run(database, admin_engine, world.org_a)

    r = only(told(admin_engine, world.org_a, "batch.exported", [world.finance], path=f"/batches/{batch.id}"))
    assert r["subject"] == f"AP export batch {batch.number}: 1 payment, $900.00"
    assert f"SHA-256: {batch.sha256}" in r["text"]
    assert "Exported by: Fiona Finance" in r["text"]


def test_a_payment_tells_the_contractors_people_and_the_engagements_owner_once_per_run(
    world, act_as, admin_engine, database, x_people
):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    pay(act_as, world.finance, world.org_a, inv["id"], reference="ACH 7781")
    run(database, admin_engine, world.org_a)

    (payment,) = payments_of(admin_engine, inv["id"])
    assert payment["amount_minor"] == 90000
    number = inv["invoice_number"]
    rows = {r["recipient"]: r for r in messages(admin_engine, world.org_a, "payment.run")}
    assert sorted(rows) == sorted(p.email for p in [*x_people, world.owner])
    advice = f"/documents/remittance-advice/{payment['run_id']}/{world.contractor_x}"
    for person in x_people:
        r = rows[person.email]
        assert r["subject"] == f"Paid: {number} — $900.00"
        assert f'href="{BASE_URL}{advice}"' in r["html"]
        assert f"{number}: Roof — Roof part 1: gross $1,000.00, retainage $100.00, net $900.00" in r["text"]
        assert "Total paid: $900.00" in r["text"] and "Reference: ACH 7781" in r["text"]
        assert "Paid by: ACH / bank transfer" in r["text"]
    owner = rows[world.owner.email]
    assert owner["subject"] == f"Paid: {number} to {contractor_x(world)} — $900.00"
    assert f'href="{BASE_URL}/invoices/{inv["id"]}"' in owner["html"]
    assert f"{number}: Roof — Roof part 1: $900.00 to {contractor_x(world)}" in owner["text"]
    assert "Reference: ACH 7781" in owner["text"] and "Paid by: ACH / bank transfer" in owner["text"]
    in_app = {n["user_id"]: n["url"] for n in notices(admin_engine, world.org_a, "payment.run")}
    assert in_app == {**{p.id: advice for p in x_people}, world.owner.id: f"/invoices/{inv['id']}"}


def test_a_retainage_release_tells_the_contractors_people_the_amount_released(
    world, act_as, admin_engine, database, x_people
):
    p = party(world)
    engagement_id, _ = approved_invoices(act_as, admin_engine, p)
    complete(act_as, p, engagement_id)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    release = invoices.release_retainage(session, actor, engagement_id, "Warranty bond lodged.")
    run(database, admin_engine, world.org_a)

    rows = told(admin_engine, world.org_a, "retainage.released", x_people, path=f"/invoices/{release.id}")
    for r in rows.values():
        assert r["subject"] == "Retainage released: $300.00 on Roof"
        assert "Amount released: $300.00" in r["text"]
        assert "Released by: Omar Owner" in r["text"]
        assert "Warranty bond lodged." in r["text"]


# --- amounts and dates in the organization's locale --------------------------------------------------


def test_amounts_and_dates_are_written_in_the_organizations_locale(world, act_as, admin_engine, database):
    set_org(admin_engine, world.org_a, locale="de_DE")
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("2,000.00",))
    invoice = approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world.org_a)

    r = only(
        told(
            admin_engine,
            world.org_a,
            "milestone.approved",
            [world.contractor_x_user],
            path=f"/invoices/{invoice['id']}",
        )
    )
    assert r["subject"] == f"Approved: Roof part 1 — 1.800,00{NBSP}$ queued for payment"
    assert f"Gross: 2.000,00{NBSP}$" in r["text"]
    assert f"Retainage withheld: 200,00{NBSP}$" in r["text"]
    due = invoice["due_date"]
    assert f"Due: {due:%d.%m.%Y}" in r["text"]
    assert f"1.800,00{NBSP}$" in r["html"]


def test_a_kwd_engagement_is_written_with_three_decimals(world, act_as, admin_engine, database):
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,234.567",), currency="KWD")
    invoice = approve(act_as, admin_engine, p, m1)
    run(database, admin_engine, world.org_a)

    r = only(
        told(
            admin_engine,
            world.org_a,
            "milestone.approved",
            [world.contractor_x_user],
            path=f"/invoices/{invoice['id']}",
        )
    )
    assert "Gross: KWD1,234.567" in r["text"]
    net = invoice["net_minor"]
    assert f"Net payable: KWD{net // 1000:,}.{net % 1000:03d}" in r["text"]


# --- once, however often the job runs ----------------------------------------------------------------


def test_running_the_same_notify_job_twice_tells_nobody_twice(world, act_as, admin_engine, database, x_people):
    p = party(world)
    _, (m1, _) = active_engagement(act_as, admin_engine, p)
    sub = submit(act_as, p, m1)
    review = decide_as(act_as, world.owner, world.org_a, m1, sub.id, "dispute", reason="Photos missing.")
    run(database, admin_engine, world.org_a)
    before = (
        messages(admin_engine, world.org_a, "milestone.disputed"),
        notices(admin_engine, world.org_a, "milestone.disputed"),
        len(jobs(admin_engine, task="send_email", org_ids=[world.org_a])),
    )
    assert len(before[0]) == 2

    session = act_as(world.admin.id, world.org_a)  # the same job, enqueued again by an admin
    queue.notify(session, world.org_a, "milestone.disputed", review.id)
    session.commit()
    run(database, admin_engine, world.org_a)

    after = (
        messages(admin_engine, world.org_a, "milestone.disputed"),
        notices(admin_engine, world.org_a, "milestone.disputed"),
        len(jobs(admin_engine, task="send_email", org_ids=[world.org_a])),
    )
    assert [m["id"] for m in after[0]] == [m["id"] for m in before[0]]
    assert {n["id"] for n in after[1]} == {n["id"] for n in before[1]}
    assert after[2] == before[2]


# --- invitations ------------------------------------------------------------------------------------


def test_an_invitation_is_emailed_with_its_link_and_is_not_an_in_app_notice(world, act_as, admin_engine, database):
    session, actor = sign_in(act_as, world.admin, world.org_a)
    address = f"newbie-{world.suffix}@example.com"
    invite = members.invite_member(session, actor, email=address, name="Nia Newbie", role="finance", base_url=BASE_URL)
    run(database, admin_engine, world.org_a)

    (r,) = messages(admin_engine, world.org_a, "invite")
    assert r["recipient"] == address and r["recipient_user_id"] == invite.user_id
    assert r["subject"] == f"Ada Admin invited you to {org_name(world)} on backoffice"
    link = f"{BASE_URL}/invite/{invite.token}"
    assert f'href="{link}"' in r["html"] and link in r["text"]
    assert "as a member of the finance team" in r["text"]
    assert r["status"] == "kept"  # sent by the worker (offline here), like every other message
    assert owner_query(admin_engine, "select id from notifications where user_id = :u", u=invite.user_id) == []


# --- every event is covered here ---------------------------------------------------------------------

COVERED = {
    "engagement.work_request_sent",
    "engagement.work_request_accepted",
    "engagement.work_request_declined",
    "milestone.submitted",
    "milestone.approved",
    "milestone.partially_approved",
    "milestone.disputed",
    "change_order.issued",
    "batch.exported",
    "payment.run",  # and per rail: tests/integration/test_remittance_advice.py
    "retainage.released",
    "review.overdue",  # tests/integration/test_periodic_jobs.py
    "payout.paid",  # tests/web/test_stripe_webhooks.py (a Stripe event's job queues it)
    "payout.failed",  # likewise
    "payout.refused",  # tests/integration/test_stripe_payouts.py (the run's last refusal queues it)
    "payment.reversed",  # tests/integration/test_stripe_payouts.py (transfer.reversed)
    "reconciliation.findings",  # tests/integration/test_reconciliation.py (a run with new findings)
    "invoice.approval_waiting",  # tests/integration/test_approval_policies.py (issue 18)
    "invoice.approval_completed",  # likewise
    "invoice.approval_rejected",  # likewise
    "invoice.approval_overdue",  # tests/integration/test_periodic_jobs.py
    "project.opened",  # tests/integration/test_project_notices.py (issue 19)
    "proposal.submitted",  # likewise
    "proposal.withdrawn",  # likewise
    "project.awarded",  # likewise
    "project.cancelled",  # likewise
    "invoice.advance_authorized",  # tests/integration/test_completion_notices.py (issue 20)
    "invoice.completion_raised",  # likewise
    "invoice.final_authorized",  # likewise
    "engagement.completed_by_final",  # likewise
    "self_billing.agreement_recorded",  # tests/integration/test_self_billing_agreement.py (issue 21)
    "self_billing.invoice_rejected",  # tests/integration/test_self_billing_flow.py
}


def test_every_event_that_tells_someone_has_a_test_here():
    assert set(BUILDERS) == COVERED


def test_no_message_links_outside_the_app(world, act_as, admin_engine, database):
    p = party(world)
    _, (m1, m2) = active_engagement(act_as, admin_engine, p)
    approve(act_as, admin_engine, p, m1)
    sub = submit(act_as, p, m2)
    decide_as(act_as, world.owner, world.org_a, m2, sub.id, "dispute", reason="See https://evil.example/x")
    run(database, admin_engine, world.org_a)
    for r in owner_query(admin_engine, "select html from email_messages where org_id = :o", o=world.org_a):
        hrefs = re.findall(r'href="([^"]+)"', r["html"])
        assert hrefs and all(h.startswith(BASE_URL + "/") for h in hrefs)
