"""Approval policies through the real services as the real app role (issue 18; DESIGN.md sections 3 and 4):
an authorization at or above a policy's amount waits for its steps, in order, each decided once by a distinct
person (or their delegate, for them); the last approval makes it payable, a rejection voids it and sends the work
back. Holds stop exports and payments. The database refuses the same by raw SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kit.engagements import owner_query, race, sign_in
from kit.jobs import run_jobs
from kit.money import (
    active_engagement,
    approve,
    decide_as,
    export,
    invoice,
    invoice_of_milestone,
    ledger_of,
    money_state,
    party,
    pay,
    submit,
    today,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.errors import Conflict, DomainError, Forbidden, InvalidTransition, ValidationError
from backoffice.services import approvals, engagements, holds
from backoffice.services.approvals import PolicyInput, StepInput

FINANCE_STEP = (StepInput(role="finance"),)


def set_policy(act_as, world, minimum="10,000.00", steps=FINANCE_STEP, currency="USD", name="Large"):
    session, actor = sign_in(act_as, world.admin, world.org_a)
    return approvals.create_policy(session, actor, PolicyInput(name, currency, minimum, list(steps)))


def decide(act_as, person, world, invoice_id, decision="approve", reason=""):
    session, actor = sign_in(act_as, person, world.org_a)
    return approvals.decide_step(session, actor, invoice_id, decision, reason)


def steps_of(admin_engine, invoice_id):
    return owner_query(
        admin_engine, "select * from invoice_approvals where invoice_id = :i order by step", i=invoice_id
    )


def test_an_authorization_at_or_above_the_amount_waits_for_its_steps_and_one_below_is_approved_at_once(
    act_as, admin_engine, world
):
    set_policy(act_as, world, "10,000.00")
    p = party(world)
    _, (small, exact, large) = active_engagement(act_as, admin_engine, p, ("9,999.99", "10,000.00", "12,800.00"))
    assert approve(act_as, admin_engine, p, small)["status"] == "approved"
    waiting = approve(act_as, admin_engine, p, exact)
    assert waiting["status"] == "pending_approval"
    assert [(s["step"], s["approver_role"], s["status"]) for s in steps_of(admin_engine, waiting["id"])] == [
        (1, "finance", "waiting")
    ]
    assert approve(act_as, admin_engine, p, large)["status"] == "pending_approval"


def test_the_highest_policy_that_applies_wins(act_as, admin_engine, world):
    set_policy(act_as, world, "1,000.00", [StepInput(role="finance")], name="Medium")
    set_policy(act_as, world, "5,000.00", [StepInput(role="finance"), StepInput(role="admin")], name="Large")
    p = party(world)
    _, (m1, m2) = active_engagement(act_as, admin_engine, p, ("2,000.00", "6,000.00"))
    assert len(steps_of(admin_engine, approve(act_as, admin_engine, p, m1)["id"])) == 1
    assert len(steps_of(admin_engine, approve(act_as, admin_engine, p, m2)["id"])) == 2


def test_finance_approves_the_last_step_and_only_then_it_can_be_exported_and_paid(act_as, admin_engine, world):
    set_policy(act_as, world)
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    with pytest.raises(DomainError):
        export(act_as, world.finance, world.org_a, [inv["id"]])
    decide(act_as, world.finance, world, inv["id"])
    assert invoice(admin_engine, inv["id"])["status"] == "approved"
    (step,) = steps_of(admin_engine, inv["id"])
    assert (step["status"], step["decided_by"]) == ("approved", world.finance.id)
    # Segregation of duties (on by default): finance approved it, so finance may not pay it; the admin may.
    with pytest.raises(Forbidden):
        pay(act_as, world.finance, world.org_a, inv["id"])
    pay(act_as, world.admin, world.org_a, inv["id"])
    assert invoice(admin_engine, inv["id"])["status"] == "paid"


def test_a_policy_changed_later_does_not_change_what_is_pending(act_as, admin_engine, world):
    policy = set_policy(act_as, world)
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(
        session,
        actor,
        PolicyInput("Large", "USD", "10,000.00", [StepInput(role="admin"), StepInput(role="owner")]),
        replaces=policy.id,
    )
    assert [s["approver_role"] for s in steps_of(admin_engine, inv["id"])] == ["finance"]
    with pytest.raises(Forbidden):
        decide(act_as, world.admin, world, inv["id"])
    decide(act_as, world.finance, world, inv["id"])
    assert invoice(admin_engine, inv["id"])["status"] == "approved"


def test_a_rejection_voids_the_authorization_and_sends_the_work_back_to_the_contractor(act_as, admin_engine, world):
    set_policy(act_as, world)
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    with pytest.raises(ValidationError) as exc:
        decide(act_as, world.finance, world, inv["id"], "reject", "  ")
    assert "reason" in exc.value.fields
    decide(act_as, world.finance, world, inv["id"], "reject", "The photos show the old roof.")
    voided = invoice(admin_engine, inv["id"])
    assert voided["status"] == "void" and voided["voided_at"] is not None
    ledger = ledger_of(admin_engine, inv["id"])
    assert sum(r["amount_minor"] for r in ledger) == 0
    assert {r["event"] for r in ledger} == {"authorized", "authorization_voided"}
    (milestone,) = owner_query(admin_engine, "select status from milestones where id = :m", m=m)
    assert milestone["status"] == "planned"
    (held,) = owner_query(
        admin_engine, "select withheld_minor from retainage_totals where engagement_id = :e", e=voided["engagement_id"]
    )
    assert held["withheld_minor"] == 0
    # The contractor revises and submits again; the next approval authorizes it anew (pay-once counts live ones).
    again = approve(act_as, admin_engine, p, m)
    assert again["id"] != inv["id"] and again["status"] == "pending_approval"
    decide(act_as, world.finance, world, again["id"])
    assert invoice(admin_engine, again["id"])["status"] == "approved"


def test_approvers_are_distinct_people_and_never_the_reviewer_or_a_contractor(act_as, admin_engine, world):
    set_policy(act_as, world, steps=[StepInput(role="finance"), StepInput(people=[str(world.finance.id)])])
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    decide(act_as, world.finance, world, inv["id"])
    with pytest.raises(Forbidden, match="earlier step"):
        decide(act_as, world.finance, world, inv["id"])
    assert invoice(admin_engine, inv["id"])["status"] == "pending_approval"
    with pytest.raises(Forbidden):
        decide(act_as, world.contractor_x_user, world, inv["id"])
    # The reviewer (the owner, step 0) may not approve a later step, even where the step names the role.
    set_policy(act_as, world, "20,000.00", [StepInput(role="owner")], name="Huge")
    _, (m2,) = active_engagement(act_as, admin_engine, p, ("25,000.00",), title="Porch")
    inv2 = approve(act_as, admin_engine, p, m2)
    with pytest.raises(Forbidden, match="reviewer"):
        decide(act_as, world.owner, world, inv2["id"])


def test_a_delegate_decides_for_the_approver_and_says_so(act_as, admin_engine, world):
    set_policy(act_as, world, steps=[StepInput(people=[str(world.finance.id)])])
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    with pytest.raises(Forbidden):
        decide(act_as, world.admin, world, inv["id"])
    session, actor = sign_in(act_as, world.finance, world.org_a)
    today = datetime.now(UTC).date()
    approvals.delegate(session, actor, str(world.admin.id), today.isoformat(), (today + timedelta(days=7)).isoformat())
    decide(act_as, world.admin, world, inv["id"])
    (step,) = steps_of(admin_engine, inv["id"])
    assert (step["decided_by"], step["on_behalf_of"]) == (world.admin.id, world.finance.id)
    assert invoice(admin_engine, inv["id"])["status"] == "approved"


def test_two_approvers_racing_on_the_last_step_decide_it_once(act_as, app_sessions, admin_engine, world):
    set_policy(act_as, world, steps=[StepInput(people=[str(world.admin.id), str(world.finance.id)])])
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)

    def call(session, actor, i):
        return approvals.decide_step(session, actor, inv["id"], "approve")

    outcomes = race(app_sessions, world.org_a, [world.admin, world.finance], call)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    (loser,) = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(loser, Conflict | InvalidTransition), loser
    (step,) = steps_of(admin_engine, inv["id"])
    assert step["status"] == "approved"
    events = owner_query(
        admin_engine, "select * from audit_events where org_id = :o and action = 'invoice.step_approved'", o=world.org_a
    )
    assert len(events) == 1


# --- holds --------------------------------------------------------------------------------------------------


def test_a_held_invoice_is_neither_exported_nor_paid_until_released(act_as, admin_engine, world):
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    inv = approve(act_as, admin_engine, p, m1)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(ValidationError):
        holds.hold_invoice(session, actor, inv["id"], "")
    hold = holds.hold_invoice(session, actor, inv["id"], "Lien waiver missing")
    before = money_state(admin_engine, world.org_a)
    with pytest.raises(DomainError):
        export(act_as, world.finance, world.org_a, [inv["id"]])
    with pytest.raises(DomainError):
        pay(act_as, world.admin, world.org_a, inv["id"])
    assert money_state(admin_engine, world.org_a) == before
    session, actor = sign_in(act_as, world.finance, world.org_a)
    holds.release(session, actor, hold.id, "Waiver received")
    export(act_as, world.finance, world.org_a, [inv["id"]])
    assert invoice(admin_engine, inv["id"])["status"] == "exported"
    released = owner_query(admin_engine, "select * from holds where id = :h", h=hold.id)[0]
    assert (released["released_by"], released["release_note"]) == (world.finance.id, "Waiver received")


def test_a_contractor_hold_stops_every_payment_to_it(act_as, admin_engine, world):
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    inv = approve(act_as, admin_engine, p, m1)
    session, actor = sign_in(act_as, world.admin, world.org_a)
    holds.hold_contractor(session, actor, p.contractor_id, "Bank details being verified")
    with pytest.raises(DomainError):
        export(act_as, world.finance, world.org_a, [inv["id"]])
    with pytest.raises(DomainError):
        pay(act_as, world.admin, world.org_a, inv["id"])
    assert invoice(admin_engine, inv["id"])["status"] == "approved"


def test_only_finance_and_admins_hold_and_a_second_hold_is_refused(act_as, admin_engine, world):
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    inv = approve(act_as, admin_engine, p, m1)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(Forbidden):
        holds.hold_invoice(session, actor, inv["id"], "Mine")
    session, actor = sign_in(act_as, world.finance, world.org_a)
    holds.hold_invoice(session, actor, inv["id"], "First")
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict):
        holds.hold_invoice(session, actor, inv["id"], "Second")


# --- the database's own refusals, by raw SQL as the app role ------------------------------------------------


def raw(act_as, person, world, sql, **params):
    session = act_as(person.id, world.org_a)
    try:
        session.execute(text(sql), params)
        session.commit()
    finally:
        session.rollback()


def test_raw_sql_cannot_approve_an_invoice_while_steps_remain(act_as, admin_engine, world):
    set_policy(act_as, world, steps=[StepInput(role="finance"), StepInput(role="admin")])
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    with pytest.raises(DBAPIError, match="every step"):
        raw(act_as, world.admin, world, "update invoices set status = 'approved' where id = :i", i=inv["id"])
    # Step 2 before step 1: refused.
    with pytest.raises(DBAPIError, match="in order"):
        raw(
            act_as,
            world.admin,
            world,
            "update invoice_approvals set status = 'approved', decided_by = :u where invoice_id = :i and step = 2",
            u=world.admin.id,
            i=inv["id"],
        )
    # Nobody writes the steps but the database itself.
    with pytest.raises(DBAPIError, match="permission denied"):
        raw(act_as, world.admin, world, "delete from invoice_approvals where invoice_id = :i", i=inv["id"])
    # The same person twice: refused at the database too.
    raw(
        act_as,
        world.finance,
        world,
        "update invoice_approvals set status = 'approved', decided_by = :u where invoice_id = :i and step = 1",
        u=world.finance.id,
        i=inv["id"],
    )
    with pytest.raises(DBAPIError, match=r"not yours|distinct"):
        raw(
            act_as,
            world.finance,
            world,
            "update invoice_approvals set status = 'approved', decided_by = :u where invoice_id = :i and step = 2",
            u=world.finance.id,
            i=inv["id"],
        )
    assert invoice(admin_engine, inv["id"])["status"] == "pending_approval"


def test_raw_sql_cannot_insert_an_invoice_that_skips_its_policy(act_as, admin_engine, world):
    set_policy(act_as, world)
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    sub = submit(act_as, p, m)
    with pytest.raises(DBAPIError, match="approval policies changed"):
        from backoffice.services import invoices as invoice_service

        original = invoice_service.awaiting_approval
        invoice_service.awaiting_approval = lambda *a: {"status": "approved", "approval_policy_id": None}
        try:
            decide_as(act_as, world.owner, world.org_a, m, sub.id, "approve")
        finally:
            invoice_service.awaiting_approval = original
    assert invoice_of_milestone(admin_engine, m) is None


def test_raw_sql_cannot_release_a_hold_in_someone_elses_name_or_hold_as_an_owner(act_as, admin_engine, world):
    p = party(world)
    _, (m1,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    inv = approve(act_as, admin_engine, p, m1)
    with pytest.raises(DBAPIError):
        raw(
            act_as,
            world.owner,
            world,
            "insert into holds (org_id, invoice_id, reason, held_by) values (:o, :i, 'x', :u)",
            o=world.org_a,
            i=inv["id"],
            u=world.owner.id,
        )
    session, actor = sign_in(act_as, world.finance, world.org_a)
    hold = holds.hold_invoice(session, actor, inv["id"], "Check")
    with pytest.raises(DBAPIError, match="in the name of"):
        raw(
            act_as,
            world.admin,
            world,
            "update holds set released_at = now(), released_by = :u where id = :h",
            u=world.finance.id,
            h=hold.id,
        )


# --- who hears what -----------------------------------------------------------------------------------------


def mails(admin_engine, org_id):
    return owner_query(
        admin_engine, "select recipient, subject from email_messages where org_id = :o order by created_at", o=org_id
    )


def test_approvers_hear_what_waits_finance_hears_it_is_payable_and_the_contractor_hears_of_a_rejection(
    act_as, admin_engine, database, world
):
    set_policy(act_as, world)
    p = party(world)
    _, (m1, m2) = active_engagement(act_as, admin_engine, p, ("12,800.00", "15,000.00"))
    first = approve(act_as, admin_engine, p, m1)
    second = approve(act_as, admin_engine, p, m2)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    waiting = [m for m in mails(admin_engine, world.org_a) if m["subject"].startswith("Approval needed")]
    assert {m["recipient"] for m in waiting} == {world.finance.email}
    assert any(first["invoice_number"] in m["subject"] and "$12,800.00" in m["subject"] for m in waiting)
    contractor = [m["subject"] for m in mails(admin_engine, world.org_a) if m["recipient"] == p.contractor_user.email]
    assert any("waiting for its approvals" in s for s in contractor), contractor
    decide(act_as, world.finance, world, first["id"])
    decide(act_as, world.finance, world, second["id"], "reject", "Not what the SOW describes.")
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    subjects = {(m["recipient"], m["subject"]) for m in mails(admin_engine, world.org_a)}
    assert (world.finance.email, f"Payable: {first['invoice_number']} — $11,520.00 approved") in subjects
    assert (p.contractor_user.email, "Sent back: Roof part 2") in subjects
    assert (world.owner.email, f"Rejected: {second['invoice_number']} — “Roof part 2”") in subjects


def test_an_engagement_is_not_completed_while_a_payment_awaits_approval(act_as, admin_engine, world):
    set_policy(act_as, world)
    p = party(world)
    engagement_id, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(InvalidTransition, match="awaits approval"):
        engagements.perform(session, actor, engagement_id, "complete")
    decide(act_as, world.finance, world, inv["id"])
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.perform(session, actor, engagement_id, "complete")


def test_a_rejection_after_the_engagement_was_cancelled_voids_the_payment_and_leaves_the_work(
    act_as, admin_engine, world
):
    set_policy(act_as, world)
    p = party(world)
    engagement_id, (m,) = active_engagement(act_as, admin_engine, p, ("12,800.00",))
    inv = approve(act_as, admin_engine, p, m)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.perform(session, actor, engagement_id, "cancel", "Client cancelled the project.")
    decide(act_as, world.finance, world, inv["id"], "reject", "Not needed any more.")
    assert invoice(admin_engine, inv["id"])["status"] == "void"
    (milestone,) = owner_query(admin_engine, "select status from milestones where id = :m", m=m)
    assert milestone["status"] == "approved"


def test_exporting_everything_due_leaves_held_payments_out(act_as, admin_engine, world):
    p = party(world)
    _, (m1, m2, m3) = active_engagement(act_as, admin_engine, p, ("1,000.00", "2,000.00", "3,000.00"), terms="0")
    first, second, third = (approve(act_as, admin_engine, p, m) for m in (m1, m2, m3))
    session, actor = sign_in(act_as, world.finance, world.org_a)
    holds.hold_invoice(session, actor, second["id"], "Disputed quantity")
    export(act_as, world.finance, world.org_a, due_by=today(), currency="USD")
    assert [invoice(admin_engine, i["id"])["status"] for i in (first, second, third)] == [
        "exported",
        "approved",
        "exported",
    ]
    # A held contractor's payments stay out too.
    _, (m4,) = active_engagement(act_as, admin_engine, p, ("4,000.00",), title="Porch", terms="0")
    fourth = approve(act_as, admin_engine, p, m4)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    holds.hold_contractor(session, actor, p.contractor_id, "Bank details being checked")
    with pytest.raises(ValidationError):
        export(act_as, world.finance, world.org_a, due_by=today(), currency="USD")
    assert invoice(admin_engine, fourth["id"])["status"] == "approved"
