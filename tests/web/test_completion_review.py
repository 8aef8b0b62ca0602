"""The review screen of a task under completion billing (issue 20): approving a task authorizes nothing by itself,
and the screen says so, with what invoicing it would authorize; on the last open task it says that approving
authorizes the final payment, with its amount, and completes the engagement. Every amount to the cent."""

from __future__ import annotations

import re

from kit.completion import approve_task, completion_engagement, completion_invoices
from kit.money import party, submit
from kit.web import htmx_post, signed_in, visible_text

TASKS = ("3,000.00", "3,000.00", "2,800.00")  # $10,000.00 less a 12% advance of $1,200.00


def decision(client, milestone_id) -> str:
    response = client.get(f"/milestones/{milestone_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return visible_text(re.search(r'<section id="decision".*?</section>', html, re.DOTALL).group(0))


def test_a_task_that_is_not_the_last_says_approving_it_authorizes_no_payment(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    submit(act_as, p, tasks[0])
    text = decision(signed_in(app, login, world.owner), tasks[0])
    assert "Approving a task authorizes no payment by itself" in text
    assert "$3,000.00" in text and "$300.00" in text and "$2,700.00" in text  # gross, 10% retainage, net
    assert "Approve accepts the work; the contractor invoices it when it chooses." in text
    approve_task(act_as, p, tasks[1])  # another task: still no payment
    assert [i["kind"] for i in completion_invoices(admin_engine, engagement_id)] == ["advance"]


def test_the_last_open_task_says_it_authorizes_the_final_payment(app, login, world, act_as, admin_engine):
    p = party(world)
    _, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    submit(act_as, p, tasks[2])
    client = signed_in(app, login, world.owner)
    text = decision(client, tasks[2])
    # The final payment: the three tasks not yet invoiced, $8,800.00, less 10% retainage.
    assert "This is the last open task. Approving it authorizes the final payment of $8,800.00" in text
    assert "$880.00" in text and "$7,920.00" in text


def test_approving_a_task_on_the_page_says_the_contractor_can_invoice_it(app, login, world, act_as, admin_engine):
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    sub = submit(act_as, p, tasks[0])
    client = signed_in(app, login, world.owner)
    response = htmx_post(
        client,
        f"/milestones/{tasks[0]}/decide",
        {"submission_id": str(sub.id), "decision": "approve", "amount_minor": "300000", "reason": ""},
        token_from=f"/milestones/{tasks[0]}",
    )
    assert response.status_code == 200
    text = visible_text(response.get_data(as_text=True))
    assert f"Contractor X {world.suffix} can invoice it now ($3,000.00)" in text
    assert [i["kind"] for i in completion_invoices(admin_engine, engagement_id)] == ["advance"]


def test_the_last_task_names_the_payment_it_waits_for(app, login, world, act_as, admin_engine):
    from kit.completion import raise_invoice
    from kit.engagements import sign_in

    from backoffice.services import approvals
    from backoffice.services.approvals import PolicyInput, StepInput

    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", "2,000.00", [StepInput(role="finance")]))
    p = party(world)
    engagement_id, tasks = completion_engagement(act_as, admin_engine, p, advance="0", tasks=("4,000.00", "6,000.00"))
    approve_task(act_as, p, tasks[0])
    raised = raise_invoice(act_as, p, engagement_id, [tasks[0]])  # $4,000.00: awaits finance's approval
    submit(act_as, p, tasks[1])
    text = decision(signed_in(app, login, world.owner), tasks[1])
    assert f"First decide {raised['invoice_number']}" in text
    assert "which awaits approval ( Approvals ): until then approving this task is refused." in text


def test_a_change_order_on_a_completion_engagement_speaks_of_tasks_and_the_contract_value(
    app, login, world, act_as, admin_engine
):
    p = party(world)
    engagement_id, _ = completion_engagement(act_as, admin_engine, p, tasks=TASKS)
    response = signed_in(app, login, world.owner).get(f"/engagements/{engagement_id}/change-orders/new")
    assert response.status_code == 200
    text = visible_text(response.get_data(as_text=True))
    assert "Approved and cancelled tasks are final." in text
    assert "the contract value moves with them, and the advance never changes" in text
    assert "+ Add a task" in text
