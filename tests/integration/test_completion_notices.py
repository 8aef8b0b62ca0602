"""Completion billing's notices and receipts (DESIGN.md section 6, "Completion billing's notices"; issue 20).

Each event is caused by the real services (kit/completion.py), the real worker runs its jobs, and what it wrote is
read back as the owner role: who got one email and the same notice in the app, the exact words and amounts, where
the link leads; and the self-billed invoice (PDF) of each payment, its text extracted as an auditor reads it. Nobody
hears the same event twice, and a task whose approval authorized the final payment is not also "yours to invoice".
"""

from __future__ import annotations

import hashlib
import io

import pytest
from kit.completion import (
    approve_task,
    completion_draft,
    completion_engagement,
    completion_invoices,
    raise_invoice,
    send,
)
from kit.engagements import engagement_row, owner_query, sign_in
from kit.jobs import BASE_URL, run_jobs
from kit.money import decide_as, events, party, set_org, submit
from pypdf import PdfReader

from backoffice.services import approvals
from backoffice.services.approvals import PolicyInput, StepInput
from backoffice.services.evidence import UploadedFile
from backoffice.services.submissions import SubmissionInput, submit_work

REPORT = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
NOTES = b"Fit-out notes: partitions up, sockets tested.\n"


# --- reading back what the worker wrote -----------------------------------------------------------------------


def run(database, admin_engine, world) -> None:
    run_jobs(database, admin_engine, org_ids=[world.org_a])


def messages(admin_engine, world, event: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = :e order by recipient",
        o=world.org_a,
        e=event,
    )


def told(admin_engine, world, event: str, people, *, path: str, key_part: str = "") -> dict[str, dict]:
    """Exactly ``people`` got one email each about ``event`` (among those whose key names ``key_part``), linking to
    ``path``, and the same notice in the app; the messages by recipient address."""
    rows = [r for r in messages(admin_engine, world, event) if key_part in r["dedupe_key"]]
    assert sorted(r["recipient"] for r in rows) == sorted(p.email for p in people)
    url = BASE_URL + path
    in_app = {
        n["user_id"]: n
        for n in owner_query(
            admin_engine, "select * from notifications where org_id = :o and event = :e", o=world.org_a, e=event
        )
    }
    for r in rows:
        assert f'href="{url}"' in r["html"] and url in r["text"]
        n = in_app[r["recipient_user_id"]]
        assert (n["url"], n["title"]) == (path, r["subject"])
    return {r["recipient"]: r for r in rows}


def one_each(admin_engine, world, event: str) -> None:
    """Nobody got two messages about one event."""
    rows = messages(admin_engine, world, event)
    recipients = [(r["entity_id"], r["recipient"]) for r in rows]
    assert len(recipients) == len(set(recipients)), recipients


def finance_policy(act_as, world, minimum: str) -> None:
    """Payments of ``minimum`` or more wait for a finance member's approval (issue 18)."""
    session, actor = sign_in(act_as, world.admin, world.org_a)
    approvals.create_policy(session, actor, PolicyInput("Large", "USD", minimum, [StepInput(role="finance")]))


def decide_step(act_as, person, world, invoice_id, decision="approve", reason=""):
    session, actor = sign_in(act_as, person, world.org_a)
    return approvals.decide_step(session, actor, invoice_id, decision, reason)


def submit_files(act_as, p, task_id, files):
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    return submit_work(
        session,
        actor,
        task_id,
        SubmissionInput(note="Done.", links="", files=[UploadedFile.from_bytes(n, d) for n, d in files]),
    )


def approve_with_files(act_as, p, task_id, files) -> None:
    sub = submit_files(act_as, p, task_id, files)
    decide_as(act_as, p.staff, p.org_id, task_id, sub.id, "approve")


def pdf_text(content) -> str:
    pages = PdfReader(io.BytesIO(bytes(content))).pages
    return " ".join(" ".join(page.extract_text() for page in pages).replace("\u202f", " ").replace("\xa0", " ").split())


def receipt_text(admin_engine, invoice_id) -> str:
    (doc,) = owner_query(admin_engine, "select content from documents where invoice_id = :i", i=invoice_id)
    return pdf_text(doc["content"])


@pytest.fixture
def fit_out(act_as, admin_engine, world):
    """An active completion engagement of contractor X owned by world.owner: $10,000.00, a 12% advance ($1,200.00),
    three tasks ($3,000.00, $3,000.00, $2,800.00), 10% retainage: (id, its task ids)."""
    return completion_engagement(
        act_as, admin_engine, party(world), value="10,000.00", advance="12", tasks=("3,000.00", "3,000.00", "2,800.00")
    )


# --- the work request and activation: the advance ---------------------------------------------------------------


def test_a_completion_work_request_tells_the_contractor_the_value_the_advance_and_the_tasks(
    act_as, admin_engine, database, world
):
    p = party(world)
    engagement_id = completion_draft(act_as, p, value="10,000.00", advance="12", tasks=("4,400.00", "4,400.00"))
    send(act_as, p, engagement_id)
    run(database, admin_engine, world)

    (r,) = messages(admin_engine, world, "engagement.work_request_sent")
    assert "Review the tasks and terms, then accept or decline." in r["text"]
    for words in (
        "Billing: Completion billing",
        "Tasks: 2, $8,800.00 in all",
        "Contract value: $10,000.00",
        "Advance: $1,200.00 (12%), when you accept",
    ):
        assert words in r["text"], r["text"]
    assert "Milestones" not in r["text"]


def test_activation_tells_the_contractor_the_owner_and_finance_of_the_advance_each_in_their_words(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, _ = fit_out
    (advance,) = completion_invoices(admin_engine, engagement_id)
    run(database, admin_engine, world)

    event, page = "invoice.advance_authorized", f"/engagements/{engagement_id}"
    contractor = told(admin_engine, world, event, [world.contractor_x_user], path=page, key_part=":contractor")
    r = contractor[world.contractor_x_user.email]
    assert r["subject"] == "Engagement Fit-out is active — advance $1,200.00 authorized"
    assert "Engagement “Fit-out” is active. Advance $1,200.00 authorized. 3 tasks to complete." in r["text"]
    assert "Advance: $1,200.00 (12% of the contract value)" in r["text"]
    assert "Contract value: $10,000.00" in r["text"]

    owner = told(admin_engine, world, event, [world.owner], path=page, key_part=":owner")
    r = owner[world.owner.email]
    assert r["subject"] == "Engagement Fit-out started — advance $1,200.00 authorized"
    assert "Engagement “Fit-out” started. Advance $1,200.00 authorized. 3 tasks defined." in r["text"]
    assert "Confirmed by: Omar Owner" in r["text"]

    finance = told(admin_engine, world, event, [world.finance], path=f"/invoices/{advance['id']}", key_part=":finance")
    r = finance[world.finance.email]
    assert r["subject"] == f"Payable: {advance['invoice_number']} — advance $1,200.00 on Fit-out"
    assert f"Invoice: {advance['invoice_number']} (Advance)" in r["text"]
    assert "Net payable: $1,200.00" in r["text"] and "Retainage withheld: $0.00" in r["text"]
    assert len(messages(admin_engine, world, event)) == 3


# --- a task approved --------------------------------------------------------------------------------------------


def test_a_task_approved_tells_the_contractor_it_can_invoice_it_not_that_it_is_queued(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, tasks = fit_out
    approve_task(act_as, party(world), tasks[0])
    run(database, admin_engine, world)

    rows = told(
        admin_engine,
        world,
        "milestone.approved",
        [world.contractor_x_user],
        path=f"/engagements/{engagement_id}/invoice-tasks",
    )
    r = rows[world.contractor_x_user.email]
    assert r["subject"] == "Task Fit-out task 1 approved; you can invoice it"
    assert "Task “Fit-out task 1” approved; you can invoice it ($3,000.00)" in r["text"]
    assert "queued for payment" not in r["text"] and "Net payable" not in r["text"]
    assert "Decided by: Omar Owner" in r["text"]


def test_a_task_partly_approved_by_a_split_tells_the_contractor_the_part_it_can_invoice(
    act_as, admin_engine, database, world, fit_out
):
    set_org(admin_engine, world.org_a, partial_policy="split")
    engagement_id, tasks = fit_out
    p = party(world)
    sub = submit(act_as, p, tasks[0])
    decide_as(
        act_as,
        world.owner,
        world.org_a,
        tasks[0],
        sub.id,
        "partial",
        reason="Doors next week.",
        approved_amount="1,000.00",
    )
    run(database, admin_engine, world)

    rows = told(
        admin_engine,
        world,
        "milestone.partially_approved",
        [world.contractor_x_user],
        path=f"/engagements/{engagement_id}/invoice-tasks",
    )
    r = rows[world.contractor_x_user.email]
    assert r["subject"] == "Task Fit-out task 1 partly approved; you can invoice $1,000.00"
    assert "The remainder is a new task." in r["text"] and "Doors next week." in r["text"]
    assert "queued for payment" not in r["text"]


# --- a task invoice raised ----------------------------------------------------------------------------------------


def test_a_task_invoice_tells_the_owner_and_finance_who_raised_it_its_tasks_and_the_amount(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, tasks = fit_out
    p = party(world)
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    raised = raise_invoice(act_as, p, engagement_id, tasks[:2])
    run(database, admin_engine, world)

    rows = told(
        admin_engine, world, "invoice.completion_raised", [world.owner, world.finance], path=f"/invoices/{raised['id']}"
    )
    for r in rows.values():
        assert (
            r["subject"]
            == f"Invoice {raised['invoice_number']} from Contractor X {world.suffix}: 2 approved tasks — $6,000.00"
        )
        assert (
            f"Xena X of Contractor X {world.suffix} invoiced 2 approved tasks of “Fit-out”: “Fit-out task 1”, "
            "“Fit-out task 2”, $6,000.00 in all." in r["text"]
        )
        assert "Task “Fit-out task 1”: $3,000.00" in r["text"] and "Task “Fit-out task 2”: $3,000.00" in r["text"]
        assert f"Invoice: {raised['invoice_number']} (Completed tasks)" in r["text"]
        assert "Retainage withheld: $600.00 (10%)" in r["text"] and "Net payable: $5,400.00" in r["text"]
        assert f"Raised by: Xena X (Contractor X {world.suffix})" in r["text"]


# --- the final payment ----------------------------------------------------------------------------------------


def test_the_last_approval_tells_both_sides_the_engagement_completed_with_its_final_payment_once(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, tasks = fit_out
    p = party(world)
    approve_task(act_as, p, tasks[0])
    raise_invoice(act_as, p, engagement_id, tasks[:1])
    approve_task(act_as, p, tasks[1])
    approve_task(act_as, p, tasks[2])  # the last: the final payment bills tasks 2 and 3
    assert engagement_row(admin_engine, engagement_id).status == "completed"
    *_, final = completion_invoices(admin_engine, engagement_id)
    run(database, admin_engine, world)

    words = "Engagement “Fit-out” completed. Final payment $5,800.00 authorized."
    event = "engagement.completed_by_final"
    contractor = told(
        admin_engine, world, event, [world.contractor_x_user], path=f"/invoices/{final['id']}", key_part=":contractor"
    )
    owner = told(admin_engine, world, event, [world.owner], path=f"/engagements/{engagement_id}", key_part=":owner")
    for r in (*contractor.values(), *owner.values()):
        assert r["subject"] == "Engagement Fit-out completed — final payment $5,800.00 authorized"
        assert words in r["text"]
        assert "Task “Fit-out task 2”: $3,000.00" in r["text"] and "Task “Fit-out task 3”: $2,800.00" in r["text"]
        assert f"Invoice: {final['invoice_number']} (Final payment)" in r["text"]
        assert "Retainage withheld: $580.00 (10%)" in r["text"] and "Net payable: $5,220.00" in r["text"]
    assert len(messages(admin_engine, world, event)) == 2

    # Finance hears it is payable; the contractor and the owner hear nothing more of the final payment.
    finance = told(admin_engine, world, "invoice.final_authorized", [world.finance], path=f"/invoices/{final['id']}")
    assert finance[world.finance.email]["subject"] == (
        f"Payable: {final['invoice_number']} — final payment $5,220.00 on Fit-out"
    )
    # The last task's approval is the final payment's news: only the first two tasks were "yours to invoice".
    approved = messages(admin_engine, world, "milestone.approved")
    assert sorted(r["subject"] for r in approved) == [
        "Task Fit-out task 1 approved; you can invoice it",
        "Task Fit-out task 2 approved; you can invoice it",
    ]
    for e in ("invoice.advance_authorized", "milestone.approved", "invoice.completion_raised", event):
        one_each(admin_engine, world, e)


def test_a_final_payment_waiting_for_approval_completes_and_tells_both_sides_when_approved(
    act_as, admin_engine, database, world
):
    finance_policy(act_as, world, "5,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="12", tasks=("4,400.00", "4,400.00")
    )
    approve_task(act_as, p, tasks[0])
    approve_task(act_as, p, tasks[1])
    _, final = completion_invoices(admin_engine, engagement_id)
    assert (final["status"], engagement_row(admin_engine, engagement_id).status) == ("pending_approval", "active")
    run(database, admin_engine, world)

    rows = messages(admin_engine, world, "invoice.final_authorized")
    assert sorted(r["recipient"] for r in rows) == sorted([world.contractor_x_user.email, world.owner.email])
    for r in rows:
        assert r["subject"] == "Final payment $8,800.00 on Fit-out waits for its approvals"
        assert "Every task of “Fit-out” is approved. Final payment $8,800.00 authorized; it waits" in r["text"]
    assert messages(admin_engine, world, "engagement.completed_by_final") == []

    decide_step(act_as, world.finance, world, final["id"])
    assert engagement_row(admin_engine, engagement_id).status == "completed"
    (completed,) = events(admin_engine, world.org_a, "engagement.completed")
    assert completed["entity_id"] == str(engagement_id) and completed["actor_user_id"] == world.finance.id
    run(database, admin_engine, world)

    rows = messages(admin_engine, world, "engagement.completed_by_final")
    assert sorted(r["recipient"] for r in rows) == sorted([world.contractor_x_user.email, world.owner.email])
    for r in rows:
        assert "Engagement “Fit-out” completed. Final payment $8,800.00 authorized." in r["text"]


def test_a_rejected_final_payment_tells_the_contractor_its_tasks_came_back(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, tasks = fit_out
    p = party(world)
    finance_policy(act_as, world, "5,000.00")
    for task in tasks:
        approve_task(act_as, p, task)
    _, final = completion_invoices(admin_engine, engagement_id)
    decide_step(act_as, world.finance, world, final["id"], "reject", "The partitions are not on the drawing.")
    run(database, admin_engine, world)

    rows = told(
        admin_engine,
        world,
        "invoice.approval_rejected",
        [world.contractor_x_user],
        path=f"/engagements/{engagement_id}",
        key_part=":contractor",
    )
    r = rows[world.contractor_x_user.email]
    assert r["subject"] == f"Sent back: {final['invoice_number']} — 3 tasks"
    assert (
        f"did not approve {final['invoice_number']} (final payment) and sent its tasks back to you: “Fit-out task 1”, "
        "“Fit-out task 2”, “Fit-out task 3”." in r["text"]
    )
    assert "The partitions are not on the drawing." in r["text"]
    (owner,) = [r for r in messages(admin_engine, world, "invoice.approval_rejected") if ":owner" in r["dedupe_key"]]
    assert owner["recipient"] == world.owner.email
    assert "the authorization is void and the work went back to the contractor." in owner["text"]
    assert messages(admin_engine, world, "engagement.completed_by_final") == []


def test_an_advance_awaiting_approval_tells_its_approvers_and_a_rejected_one_says_it_comes_with_the_final(
    act_as, admin_engine, database, world
):
    finance_policy(act_as, world, "1,000.00")
    p = party(world)
    engagement_id, tasks = completion_engagement(
        act_as, admin_engine, p, value="10,000.00", advance="12", tasks=("8,800.00",)
    )
    (advance,) = completion_invoices(admin_engine, engagement_id)
    assert advance["status"] == "pending_approval"  # the contractor's accept started it under the policy
    run(database, admin_engine, world)
    waiting = messages(admin_engine, world, "invoice.approval_waiting")
    assert [r["recipient"] for r in waiting] == [world.finance.email]

    decide_step(act_as, world.finance, world, advance["id"], "reject", "No advances on this one.")
    run(database, admin_engine, world)
    rejected = {r["recipient"]: r for r in messages(admin_engine, world, "invoice.approval_rejected")}
    assert (
        "did not approve the advance of “Fit-out” ($1,200.00); it is paid with the final payment instead."
        in (rejected[world.contractor_x_user.email]["text"])
    )
    assert rejected[world.owner.email]["subject"] == f"Rejected: {advance['invoice_number']} — the advance"
    approve_task(act_as, p, tasks[0])
    _, final = completion_invoices(admin_engine, engagement_id)
    assert final["gross_minor"] == 1_000_000  # the task and the advance never paid
    decide_step(act_as, world.finance, world, final["id"])
    run(database, admin_engine, world)
    assert "1,200.00" in receipt_text(admin_engine, final["id"])  # its receipt names the advance it carries


# --- receipts --------------------------------------------------------------------------------------------------


def test_the_advances_receipt_names_it_an_advance_without_retainage_or_milestone(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, _ = fit_out
    (advance,) = completion_invoices(admin_engine, engagement_id)
    run(database, admin_engine, world)

    said = receipt_text(admin_engine, advance["id"])
    for words in (
        "Self-billed invoice — Advance",
        "Payment for Advance: a payment ahead of the work, authorized when the engagement became active",
        "Gross $1,200.00",
        "Retainage withheld none: an advance pays ahead of the work",
        "Amount due to the supplier $1,200.00",
        f"Approved by Omar Owner <{world.owner.email}>",
        advance["invoice_number"],
    ):
        assert words in said, f"{words!r} not in the self-billed invoice: {said}"
    assert "Milestone" not in said and "Deliverable" not in said and "Retainage withheld (" not in said


def test_a_task_invoice_and_the_final_payments_receipts_list_their_tasks_amounts_and_evidence(
    act_as, admin_engine, database, world, fit_out
):
    engagement_id, tasks = fit_out
    p = party(world)
    approve_with_files(act_as, p, tasks[0], (("report.pdf", REPORT),))
    raised = raise_invoice(act_as, p, engagement_id, tasks[:1])
    approve_with_files(act_as, p, tasks[1], (("notes.txt", NOTES),))
    approve_task(act_as, p, tasks[2])  # no files: its approval rests on the note and links
    *_, final = completion_invoices(admin_engine, engagement_id)
    run(database, admin_engine, world)

    said = receipt_text(admin_engine, raised["id"])
    for words in (
        "Self-billed invoice — Completed tasks",
        "Payment for Completed tasks: 1 task",
        f"Invoiced by Xena X (Contractor X {world.suffix})",
        "Task Fit-out task 1 Deliverable 1 $3,000.00",
        "Gross $3,000.00",
        "Amount due to the supplier $2,700.00",
        f"Fit-out task 1: report.pdf sha256 {hashlib.sha256(REPORT).hexdigest()}",
    ):
        assert words in said, f"{words!r} not in the self-billed invoice: {said}"
    assert "Retainage withheld (10%), invoiced when released -$300.00" in said
    assert "Fit-out task 2" not in said and "Milestone" not in said

    said = receipt_text(admin_engine, final["id"])
    for words in (
        "Self-billed invoice — Final payment",
        "Payment for Final payment: 2 tasks",
        "Task Fit-out task 2 Deliverable 2 $3,000.00",
        "Task Fit-out task 3 Deliverable 3 $2,800.00",
        "Gross $5,800.00",
        "Retainage withheld (10%), invoiced when released -$580.00",
        "Amount due to the supplier $5,220.00",
        f"Fit-out task 2: notes.txt sha256 {hashlib.sha256(NOTES).hexdigest()}",
    ):
        assert words in said, f"{words!r} not in the self-billed invoice: {said}"
    assert "Fit-out task 1" not in said and "report.pdf" not in said and "Advance, not paid" not in said
