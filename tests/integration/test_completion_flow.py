"""Completion billing end to end through the real services as the real app role (issue 20): the advance at
acceptance, the contractor's invoices for approved tasks, the final payment with the last approval, and the
engagement completed with its invoices summing to its contract value exactly (DESIGN.md section 4, invariant 6)."""

from __future__ import annotations

import pytest
from kit.completion import (
    accept,
    approve_task,
    completion_draft,
    completion_engagement,
    completion_invoices,
    raise_invoice,
    send,
)
from kit.engagements import engagement_row
from kit.money import party

from backoffice.errors import ValidationError


def test_an_advance_a_task_invoice_and_the_final_payment_add_up_to_the_contract_value(act_as, admin_engine, world):
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="12", tasks=("3,000.00", "3,000.00", "2,800.00")
    )
    (advance,) = completion_invoices(admin_engine, engagement_id)
    assert (advance["kind"], advance["gross_minor"], advance["retainage_minor"], advance["net_minor"]) == (
        "advance",
        120_000,
        0,
        120_000,
    )
    assert advance["authorized_by"] == world.owner.id and advance["status"] == "approved"

    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    assert len(completion_invoices(admin_engine, engagement_id)) == 1  # approving a task authorizes nothing
    raised = raise_invoice(act_as, p, engagement_id, [tasks[0], tasks[1]])
    assert raised["gross_minor"] == 600_000

    approve_task(act_as, p, tasks[2])
    advance, task_invoice, final = completion_invoices(admin_engine, engagement_id)
    assert (task_invoice["kind"], task_invoice["gross_minor"], task_invoice["retainage_minor"]) == (
        "completion",
        600_000,
        60_000,
    )
    assert task_invoice["raised_by"] == world.contractor_x_user.id
    assert (final["kind"], final["gross_minor"], final["tasks"]) == ("final", 280_000, [tasks[2]])
    assert sum(i["gross_minor"] for i in (advance, task_invoice, final)) == 1_000_000
    assert engagement_row(admin_engine, engagement_id).status == "completed"


def test_sending_asks_the_owner_to_confirm_the_advance(act_as, admin_engine, world):
    p = party(world)
    engagement_id = completion_draft(act_as, p)
    with pytest.raises(ValidationError) as exc:
        send(act_as, p, engagement_id, confirm_advance=False)
    assert "Confirm the advance of $1,200.00" in exc.value.fields["confirm_advance"]
    assert engagement_row(admin_engine, engagement_id).status == "draft"
    send(act_as, p, engagement_id)
    accept(act_as, p, engagement_id)
    assert [i["kind"] for i in completion_invoices(admin_engine, engagement_id)] == ["advance"]


def _policy(act_as, world, minimum):
    from kit.engagements import sign_in

    from backoffice.services import approvals
    from backoffice.services.approvals import PolicyInput, StepInput

    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", minimum, [StepInput(role="finance")]))


def _decide_step(act_as, person, world, invoice_id, decision="approve", reason=""):
    from kit.engagements import sign_in

    from backoffice.services import approvals

    session, actor = sign_in(act_as, person, world.org_a)
    return approvals.decide_step(session, actor, invoice_id, decision, reason)


def test_a_final_payment_awaiting_approval_completes_the_engagement_when_its_last_step_approves(
    act_as, admin_engine, world
):
    _policy(act_as, world, "5,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="0", tasks=("4,000.00", "6,000.00")
    )
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    (final,) = completion_invoices(admin_engine, engagement_id)
    assert (final["kind"], final["gross_minor"], final["status"]) == ("final", 1_000_000, "pending_approval")
    assert engagement_row(admin_engine, engagement_id).status == "active"  # not until its payment is approved
    _decide_step(act_as, world.finance, world, final["id"])
    assert engagement_row(admin_engine, engagement_id).status == "completed"


def test_a_rejected_task_invoice_sends_its_tasks_back_and_they_are_invoiced_again_after_approval(
    act_as, admin_engine, world
):
    from kit.engagements import milestones_of

    _policy(act_as, world, "3,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="0", tasks=("4,000.00", "3,000.00", "3,000.00")
    )
    approve_task(act_as, p, tasks[0])
    raised = raise_invoice(act_as, p, engagement_id, [tasks[0]])
    _decide_step(act_as, world.finance, world, raised["id"], "reject", "The photos show the old cabinets.")
    assert {m.id: m.status for m in milestones_of(admin_engine, engagement_id)}[tasks[0]] == "planned"
    approve_task(act_as, p, tasks[0])
    again = raise_invoice(act_as, p, engagement_id, [tasks[0]])
    assert again["gross_minor"] == 400_000
    kinds = [(i["kind"], i["status"]) for i in completion_invoices(admin_engine, engagement_id)]
    assert kinds == [("completion", "void"), ("completion", "pending_approval")]


def test_a_rejected_advance_is_paid_with_the_final_payment(act_as, admin_engine, world):
    _policy(act_as, world, "1,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="12", tasks=("8,800.00",)
    )
    (advance,) = completion_invoices(admin_engine, engagement_id)
    assert advance["status"] == "pending_approval"
    _decide_step(act_as, world.finance, world, advance["id"], "reject", "No advances on this one.")
    approve_task(act_as, p, tasks[0])
    advance, final = completion_invoices(admin_engine, engagement_id)
    assert advance["status"] == "void" and final["gross_minor"] == 1_000_000  # the task and the advance never paid
    _decide_step(act_as, world.finance, world, final["id"])
    assert engagement_row(admin_engine, engagement_id).status == "completed"


def test_approving_the_last_task_waits_for_a_payment_awaiting_approval(act_as, admin_engine, world):
    from kit.engagements import owner_query
    from kit.money import decide_as

    from backoffice.errors import Conflict

    _policy(act_as, world, "3,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="0", tasks=("4,000.00", "6,000.00")
    )
    approve_task(act_as, p, tasks[0])
    raised = raise_invoice(act_as, p, engagement_id, [tasks[0]])
    with pytest.raises(Conflict) as exc:
        approve_task(act_as, p, tasks[1])
    assert raised["invoice_number"] in exc.value.message
    _decide_step(act_as, world.finance, world, raised["id"])
    (sub,) = owner_query(admin_engine, "select id from submissions where milestone_id = :m", m=tasks[1])
    decide_as(act_as, world.owner, world.org_a, tasks[1], sub["id"], "approve")
    kinds = [i["kind"] for i in completion_invoices(admin_engine, engagement_id)]
    assert kinds == ["completion", "final"]


def test_a_change_order_moves_the_contract_value_with_the_tasks_and_never_the_advance(act_as, admin_engine, world):
    from kit.engagements import owner_query, sign_in

    from backoffice.errors import ValidationError
    from backoffice.services import change_orders
    from backoffice.services.schedule import RowInput

    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="12", tasks=("4,400.00", "4,400.00")
    )
    session, actor = sign_in(act_as, world.owner, world.org_a)
    change_orders.issue_change_order(
        session,
        actor,
        engagement_id,
        change_orders.ChangeOrderInput(
            reason="Extra shelving",
            based_on=0,
            additions=[RowInput(title="Shelving", deliverable="Oak", amount="1,000.00", due_date="2030-05-01")],
        ),
    )
    (e,) = owner_query(admin_engine, "select * from engagements where id = :i", i=engagement_id)
    assert (e["contract_value_minor"], e["advance_minor"]) == (1_100_000, 120_000)
    (co,) = owner_query(admin_engine, "select * from change_orders where engagement_id = :i", i=engagement_id)
    assert (co["contract_value_before"], co["contract_value_after"]) == (1_000_000, 1_100_000)
    # Approving both original tasks leaves the new one open: no final yet; cancelling the last open task is refused.
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    new_task = owner_query(
        admin_engine, "select id from milestones where engagement_id = :i and title = 'Shelving'", i=engagement_id
    )[0]["id"]
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(ValidationError) as exc:
        change_orders.issue_change_order(
            session,
            actor,
            engagement_id,
            change_orders.ChangeOrderInput(
                reason="Not needed", based_on=1, changes=[change_orders.MilestoneChange(str(new_task), cancel=True)]
            ),
        )
    assert "no task open" in exc.value.fields["lines"]
    approve_task(act_as, p, new_task)
    invoices = completion_invoices(admin_engine, engagement_id)
    assert [i["kind"] for i in invoices] == ["advance", "final"]
    assert sum(i["gross_minor"] for i in invoices) == 1_100_000


def test_the_database_books_what_the_contractor_writes_with_the_same_lines_as_staffs(act_as, admin_engine, world):
    """The contractor's user may write no ledger line (sql/completion.sql): its advance and its task invoice are booked
    by invoices_contractor_ledger, with domain.invoices.authorization_lines' lines, in one balanced transaction."""
    from kit.engagements import owner_query

    from backoffice.domain.invoices import authorization_lines, milestone_amounts

    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="12", tasks=("3,000.00", "5,800.00"), service_fee="2.5"
    )
    approve_task(act_as, p, tasks[0])
    raised = raise_invoice(act_as, p, engagement_id, [tasks[0]])
    advance = completion_invoices(admin_engine, engagement_id)[0]
    for invoice_id, amounts in (
        (advance["id"], milestone_amounts(120_000, 0, 0)),
        (raised["id"], milestone_amounts(300_000, 1000, 250)),
    ):
        lines = owner_query(
            admin_engine,
            "select txn_id, event, account, amount_minor from ledger_entries where invoice_id = :i",
            i=invoice_id,
        )
        assert sorted((r["account"], r["amount_minor"]) for r in lines) == sorted(authorization_lines(amounts))
        assert {(r["txn_id"], r["event"]) for r in lines} == {(lines[0]["txn_id"], "authorized")}


def test_no_change_order_beside_a_final_payment_awaiting_approval(act_as, admin_engine, world):
    from kit.engagements import sign_in

    from backoffice.errors import InvalidTransition
    from backoffice.services import change_orders
    from backoffice.services.schedule import RowInput

    _policy(act_as, world, "5,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="0", tasks=("4,000.00", "6,000.00")
    )
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    (final,) = completion_invoices(admin_engine, engagement_id)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(InvalidTransition) as exc:
        change_orders.issue_change_order(
            session,
            actor,
            engagement_id,
            change_orders.ChangeOrderInput(
                reason="More shelving",
                based_on=0,
                additions=[RowInput(title="Shelving", deliverable="Oak", amount="1,000.00", due_date="2030-05-01")],
            ),
        )
    assert final["invoice_number"] in exc.value.message
    _decide_step(act_as, world.finance, world, final["id"])  # still completes the engagement
    assert engagement_row(admin_engine, engagement_id).status == "completed"


def test_a_work_request_confirmed_at_another_advance_is_not_sent(act_as, admin_engine, world):
    from kit.engagements import sign_in

    from backoffice.errors import Conflict
    from backoffice.services import engagements

    p = party(world)
    engagement_id = completion_draft(act_as, p)  # a $1,200.00 advance
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(Conflict) as exc:
        engagements.perform(session, actor, engagement_id, "send", confirm_advance=100_000)  # the page said $1,000.00
    assert "The advance changed since this page was loaded" in exc.value.message
    assert engagement_row(admin_engine, engagement_id).status == "draft"


def test_a_contract_value_too_small_for_its_advance_is_refused_at_its_field(act_as, world):
    from kit.engagements import sign_in

    from backoffice.services import engagements

    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(ValidationError) as exc:
        engagements.create_engagement(
            session,
            actor,
            engagements.EngagementInput(
                contractor_id=str(world.contractor_x),
                title="Tiny",
                billing_mode="completion",
                contract_value="0.01",
                advance="50",
            ),
        )
    assert exc.value.fields == {
        "contract_value": "The contract value is too small for this advance: nothing would be left for the tasks."
    }


def test_a_task_invoice_rejected_after_its_engagement_was_cancelled_is_not_invoiced_again(act_as, admin_engine, world):
    """As a milestone's: a rejection after the engagement was cancelled voids the payment and leaves the work where
    it is. Its tasks stay billed by the void invoice, so the contractor cannot undo the rejection by invoicing them
    again."""
    from kit.engagements import sign_in

    from backoffice.errors import Conflict
    from backoffice.services import engagements

    _policy(act_as, world, "3,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="0", tasks=("4,000.00", "6,000.00")
    )
    approve_task(act_as, p, tasks[0])
    raised = raise_invoice(act_as, p, engagement_id, [tasks[0]])  # awaits finance's approval
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.perform(session, actor, engagement_id, "cancel", "The client closed the site.")
    _decide_step(act_as, world.finance, world, raised["id"], "reject", "Not delivered as drawn.")
    (void,) = completion_invoices(admin_engine, engagement_id)
    assert (void["status"], void["tasks"]) == ("void", [tasks[0]])
    with pytest.raises(Conflict):
        raise_invoice(act_as, p, engagement_id, [tasks[0]])
    assert len(completion_invoices(admin_engine, engagement_id)) == 1
