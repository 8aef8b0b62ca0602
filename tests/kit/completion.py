"""Completion engagements built through the services as the people who would build them (issue 20): the owner sets
the contract value and the advance, shares it among tasks and sends the work request confirming the advance; the
contractor accepts (the advance is authorized), submits tasks, and invoices approved ones; the owner approves them
(the last one authorizes the final payment). Rows are read as the owner role (the ground truth)."""

from __future__ import annotations

import uuid

from backoffice.services import completion, engagements, schedule
from backoffice.services.engagements import EngagementInput
from backoffice.services.schedule import RowInput, ScheduleInput
from kit.engagements import owner_query, sign_in
from kit.money import Party, decide_as, submit


def completion_draft(
    act_as,
    p: Party,
    *,
    value="10,000.00",
    advance="12",
    tasks=("4,400.00", "4,400.00"),
    title="Fit-out",
    retainage="",
    service_fee="",
    terms="",
    currency="",
) -> uuid.UUID:
    """A draft billed on completion whose tasks (typed amounts) should share the value less the advance."""
    session, actor = sign_in(act_as, p.staff, p.org_id)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(
            contractor_id=str(p.contractor_id),
            title=title,
            owner_user_id=str(p.staff.id),
            retainage=retainage,
            service_fee=service_fee,
            payment_terms_days=terms,
            currency=currency,
            billing_mode="completion",
            contract_value=value,
            advance=advance,
        ),
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(title=f"{title} task {n}", deliverable=f"Deliverable {n}", amount=a, due_date="2030-01-15")
                for n, a in enumerate(tasks, start=1)
            ]
        ),
    )
    return e.id


def send(act_as, p: Party, engagement_id, *, confirm_advance=True) -> None:
    """Send the work request, confirming the advance as shown (its amount) unless told not to."""
    session, actor = sign_in(act_as, p.staff, p.org_id)
    amount = engagements.get_engagement(session, engagement_id).advance_minor if confirm_advance else None
    engagements.perform(session, actor, engagement_id, "send", confirm_advance=amount)


def accept(act_as, p: Party, engagement_id) -> None:
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    engagements.perform(session, actor, engagement_id, "accept")


def completion_engagement(act_as, admin_engine, p: Party, **kwargs) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An active completion engagement (sent with its advance confirmed, accepted): (id, its task ids in order)."""
    engagement_id = completion_draft(act_as, p, **kwargs)
    send(act_as, p, engagement_id)
    accept(act_as, p, engagement_id)
    return engagement_id, task_ids(admin_engine, engagement_id)


def task_ids(admin_engine, engagement_id) -> list[uuid.UUID]:
    return [
        r["id"]
        for r in owner_query(
            admin_engine,
            "select id from milestones where engagement_id = :e and status <> 'cancelled' order by seq",
            e=engagement_id,
        )
    ]


def approve_task(act_as, p: Party, task_id, approver=None):
    """Submit the task as the contractor's user and approve it (the engagement's owner unless told)."""
    sub = submit(act_as, p, task_id)
    return decide_as(act_as, approver or p.staff, p.org_id, task_id, sub.id, "approve")


def raise_invoice(act_as, p: Party, engagement_id, task_ids_) -> dict:
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    invoice = completion.raise_invoice(session, actor, engagement_id, [str(t) for t in task_ids_])
    return {"id": invoice.id, "invoice_number": invoice.invoice_number, "gross_minor": invoice.gross_minor}


def completion_invoices(admin_engine, engagement_id) -> list[dict]:
    """The engagement's invoices, oldest first, with the tasks each bills."""
    return owner_query(
        admin_engine,
        "select i.*,"
        " array(select t.milestone_id from invoice_tasks t where t.invoice_id = i.id order by t.milestone_id) as tasks"
        " from invoices i where i.engagement_id = :e order by i.number",
        e=engagement_id,
    )
