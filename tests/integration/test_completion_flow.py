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
