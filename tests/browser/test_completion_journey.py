"""Completion billing in a real browser (issue 20, item 8): the owner sets up and sends a completion engagement,
confirming its advance; the contractor accepts (the advance is authorized); two tasks are approved and the contractor
invoices them; the last task's approval authorizes the final payment and completes the engagement; finance exports
all three payments and records them paid. Every amount on screen and in the exported file is checked to the cent.

The contract: $10,000.00 with a 12% advance ($1,200.00, nothing withheld) and three tasks sharing $8,800.00
($3,000.00, $3,000.00, $2,800.00); 10% retainage. The task invoice: $6,000.00 gross, $600.00 withheld, $5,400.00 net;
the final payment: $2,800.00 gross, $280.00 withheld, $2,520.00 net. Net paid in all: $9,120.00; $880.00 retainage."""

from __future__ import annotations

import csv
import io
import re

from kit.browser import sign_in
from kit.engagements import owner_query
from playwright.sync_api import Page, expect

TITLE = "Staff kitchen refit"
TASKS = (
    ("Demolition", "Old units out, walls made good", "3,000.00", "2030-02-01"),
    ("Units and worktops", "Units fitted, worktops sealed", "3,000.00", "2030-03-01"),
    ("Appliances and handover", "Appliances tested, keys handed over", "2,800.00", "2030-04-01"),
)


def yes_to_every_question(page: Page) -> list[str]:
    """Answer every data-confirm question yes, and keep what was asked."""
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    return asked


def figures(page: Page, selector: str) -> dict[str, str]:
    """A definition list's terms and values, as shown."""
    block = page.locator(selector)
    terms = [t.strip() for t in block.locator("dt").all_inner_texts()]
    values = [v.strip() for v in block.locator("dd").all_inner_texts()]
    return dict(zip(terms, values, strict=True))


def submit_task(contractor: Page, engagement_url: str, title: str) -> None:
    contractor.goto(engagement_url)
    contractor.get_by_role("link", name=title, exact=True).first.click()
    contractor.get_by_label("What did you deliver?").fill(f"{title}: done, photos in the folder.")
    contractor.get_by_label("Links (optional").fill("https://example.com/photos/kitchen")
    contractor.get_by_role("button", name="Submit for review").click()
    expect(contractor.get_by_text("Revision 1 submitted.")).to_be_visible()


def approve_task(owner: Page, engagement_url: str, title: str, *, expect_text: str) -> None:
    owner.goto(engagement_url)
    owner.get_by_role("link", name=title, exact=True).first.click()
    decision = owner.locator("#decision")
    expect(decision).to_contain_text(expect_text)
    decision.get_by_role("button", name="Approve").click()
    expect(decision.get_by_role("heading", name="Approved")).to_be_visible()


def test_an_advance_two_tasks_invoiced_and_the_final_payment_paid_to_the_cent(
    new_context, screenshots, accessible, admin_engine, world
):
    # --- The owner sets up the engagement: completion billing, $10,000.00, a 12% advance, three tasks. ----------
    owner = new_context().new_page()
    yes_to_every_question(owner)
    sign_in(owner, world.owner)
    owner.goto("/engagements/new")
    # (By id: the billing modes' hints and the advance's name words other labels use.)
    owner.locator("#title").fill(TITLE)
    owner.locator("#contractor_id").select_option(label=f"Contractor X {world.suffix}")
    owner.locator("#retainage").fill("10")
    owner.get_by_role("radio", name=re.compile("^Completion billing")).check()
    owner.locator("#contract_value").fill("10,000.00")
    owner.locator("#advance").fill("12")
    screenshots.take(owner, "owner sets up a completion engagement")
    accessible(owner, "owner: new completion engagement")
    owner.get_by_role("button", name="Create draft and add milestones").click()
    expect(owner.get_by_text("Tasks share $8,800.00")).to_be_visible()
    for number, (title, deliverable, amount, due) in enumerate(TASKS, start=1):
        if not owner.get_by_label(f"Title of task {number}").count():
            owner.get_by_role("button", name="+ Add a task").click()
        expect(owner.get_by_label(f"Title of task {number}")).to_be_visible()
        owner.get_by_label(f"Title of task {number}").fill(title)
        owner.get_by_label(f"Deliverable of task {number}").fill(deliverable)
        owner.get_by_label(f"Amount of task {number} in USD").fill(amount)
        owner.get_by_label(f"Due date of task {number}").fill(due)
    screenshots.take(owner, "owner types the tasks")
    accessible(owner, "owner: task editor")
    owner.get_by_role("button", name="Save tasks").click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text(TITLE)
    engagement_url = owner.url
    (engagement,) = owner_query(
        admin_engine, "select id from engagements where title = :t and org_id = :o", t=TITLE, o=world.org_a
    )

    # Sending shows the advance, the tasks and the final payment, and asks for the advance to be confirmed.
    owner.get_by_role("button", name="Send the work request…").click()
    send = owner.locator("form").filter(has=owner.locator("#confirm_advance"))
    expect(send).to_contain_text("$10,000.00")
    expect(send).to_contain_text("$1,200.00")
    expect(send).to_contain_text("$8,800.00")
    expect(send).to_contain_text("The final payment is authorized automatically when the last task is approved")
    screenshots.take(owner, "owner confirms the advance before sending")
    accessible(owner, "owner: send with the advance")
    expect(send).to_contain_text(
        "I confirm the advance of $1,200.00 is authorized for payment when the contractor accepts"
    )
    send.locator("#confirm_advance").check()
    send.get_by_role("button", name="Send the work request").click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text("Awaiting acceptance")

    # --- The contractor reads the request, with the advance, and accepts: the advance is authorized. ----------
    contractor = new_context().new_page()
    asked = yes_to_every_question(contractor)
    sign_in(contractor, world.contractor_x_user)
    contractor.goto(engagement_url)
    expect(contractor.locator("main")).to_contain_text("$1,200.00")
    screenshots.take(contractor, "contractor reads the completion work request")
    accessible(contractor, "contractor: completion work request")
    contractor.get_by_role("button", name="Accept the work request").click()
    expect(contractor.get_by_text("Work request accepted. Advance $1,200.00 authorized.")).to_be_visible()
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Active")
    (advance,) = owner_query(
        admin_engine, "select * from invoices where engagement_id = :e order by number", e=engagement["id"]
    )
    assert (advance["kind"], advance["gross_minor"], advance["retainage_minor"], advance["net_minor"]) == (
        "advance",
        120_000,
        0,
        120_000,
    )

    # --- Two tasks are delivered and approved; approving them authorizes nothing by itself. ----------------------
    for title, *_ in TASKS[:2]:
        submit_task(contractor, engagement_url, title)
        approve_task(owner, engagement_url, title, expect_text="Approving a task authorizes no payment by itself")
    assert len(owner_query(admin_engine, "select id from invoices where engagement_id = :e", e=engagement["id"])) == 1
    screenshots.take(owner, "owner approved two tasks")

    # The contractor's home says what it can invoice; it raises one invoice for both tasks, after a confirmation.
    contractor.goto("/")
    expect(contractor.locator("main")).to_contain_text("2 approved tasks")
    expect(contractor.locator("main")).to_contain_text("$6,000.00")
    screenshots.take(contractor, "contractor home: tasks to invoice")
    accessible(contractor, "contractor: home with tasks to invoice")
    contractor.goto(engagement_url)
    contractor.get_by_role("link", name="Raise invoice").first.click()
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Invoice approved tasks")
    expect(contractor.locator("main")).to_contain_text("$600.00")
    expect(contractor.locator("main")).to_contain_text("$5,400.00")
    screenshots.take(contractor, "contractor raises an invoice for two tasks")
    accessible(contractor, "contractor: raise an invoice")
    contractor.get_by_role("button", name="Raise invoice for $6,000.00").click()
    assert asked and asked[-1].startswith("Raise an invoice for $6,000.00 for 2 tasks"), asked
    expect(contractor.locator("main")).to_contain_text(re.compile(r"-000002"))

    # --- The last task: its review screen names the final payment; approving completes the engagement. ----------
    submit_task(contractor, engagement_url, TASKS[2][0])
    approve_task(
        owner,
        engagement_url,
        TASKS[2][0],
        expect_text="This is the last open task. Approving it authorizes the final payment of $2,800.00",
    )
    owner.goto(engagement_url)
    expect(owner.get_by_role("heading", level=1)).to_contain_text("Completed")
    panel = owner.locator("#completion")
    expect(panel).to_contain_text("$10,000.00")
    screenshots.take(owner, "owner sees the completed engagement's schedule")
    accessible(owner, "owner: completed completion engagement")
    invoices = owner_query(
        admin_engine, "select * from invoices where engagement_id = :e order by number", e=engagement["id"]
    )
    assert [(i["kind"], i["gross_minor"], i["retainage_minor"], i["net_minor"]) for i in invoices] == [
        ("advance", 120_000, 0, 120_000),
        ("completion", 600_000, 60_000, 540_000),
        ("final", 280_000, 28_000, 252_000),
    ]
    assert sum(i["gross_minor"] for i in invoices) == 1_000_000  # invariant 6: = the contract value, completed
    numbers = [i["invoice_number"] for i in invoices]

    # --- Finance exports all three and records the run as paid. -----------------------------------------------
    finance = new_context().new_page()
    yes_to_every_question(finance)
    sign_in(finance, world.finance)
    finance.goto("/payments/")
    expect(finance.get_by_role("heading", name="Payment queue")).to_be_visible()
    for number, net in zip(numbers, ("$1,200.00", "$5,400.00", "$2,520.00"), strict=True):
        row = finance.get_by_role("row").filter(has_text=number)
        expect(row).to_contain_text(net)
        row.get_by_role("checkbox").check()
    expect(finance.get_by_role("row").filter(has_text=numbers[0])).to_contain_text("Advance")
    screenshots.take(finance, "finance selects the advance, the task invoice and the final payment")
    accessible(finance, "finance: payment queue with completion payments")
    export = finance.locator("#export-selected")
    export.get_by_label("Layout").select_option(label="Generic CSV")
    export.get_by_role("button", name="Export selected").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Batch")
    with finance.expect_download() as downloaded:
        finance.get_by_role("button", name="Download the CSV").click()
    rows = list(csv.DictReader(io.StringIO(downloaded.value.path().read_bytes().decode("utf-8-sig"))))
    assert [(r["Invoice number"], r["Type"], r["Gross"], r["Retainage"], r["Net payable"]) for r in rows] == [
        (numbers[0], "Advance", "1200.00", "0.00", "1200.00"),
        (numbers[1], "Completed tasks", "6000.00", "600.00", "5400.00"),
        (numbers[2], "Final payment", "2800.00", "280.00", "2520.00"),
    ], rows
    finance.get_by_label("Reference").fill("RUN-KITCHEN-1")
    finance.get_by_role("button", name="Record batch as paid").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Paid")
    screenshots.take(finance, "finance recorded the run")
    paid = owner_query(
        admin_engine,
        "select i.invoice_number, p.amount_minor from invoices i join payments p on p.invoice_id = i.id"
        " where i.engagement_id = :e order by i.number",
        e=engagement["id"],
    )
    assert [(p["invoice_number"], p["amount_minor"]) for p in paid] == list(
        zip(numbers, (120_000, 540_000, 252_000), strict=True)
    )

    # The contractor sees all three paid, and what remains held: the retainage.
    contractor.goto("/invoices/")
    for number, net in zip(numbers, ("$1,200.00", "$5,400.00", "$2,520.00"), strict=True):
        row = contractor.get_by_role("row").filter(has_text=number)
        expect(row).to_contain_text("Paid")
        expect(row).to_contain_text(net)
    screenshots.take(contractor, "contractor sees the three payments paid")
