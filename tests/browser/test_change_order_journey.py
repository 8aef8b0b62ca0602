"""The change order journey in a real browser: the project owner opens an active engagement whose first
milestone is approved and paid, starts a change order, is stopped at the field by a negative amount (nothing
changes), then raises one milestone's amount and moves its due date, cancels another, adds a new one, gives a
reason and issues CO-1; the engagement shows the new contract value and CO-1 with its lines. The
contractor's user is notified, follows the notification and reads the same change order.

Each step is checked as the person sees it (roles, labels, text), screenshotted, and checked with axe; the
end state as the owner role reads it from the database."""

from __future__ import annotations

import re

from kit.browser import run_jobs_aside, sign_in
from kit.engagements import change_orders_of, create_active, milestones_of
from kit.money_pages import approve, pay_as
from playwright.sync_api import Page, expect
from sqlalchemy import text

TITLE = "Loft conversion"
REASON = "The client wants a stronger structure; their own staff hand over, and we add a snagging visit."


def lines_of(admin_engine, change_order_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select l.line_no, l.kind, m.title, l.before, l.after from change_order_lines l"
                "  join milestones m on m.id = l.milestone_id where l.change_order_id = :c order by l.line_no"
            ),
            {"c": change_order_id},
        ).all()


def figure(page: Page, name: str):
    """A figure of the engagement's totals (Contract value, Approved, Paid ...)."""
    return (
        page.locator("dl.figures > div")
        .filter(has=page.locator("dt", has_text=re.compile(f"^{name}$")))
        .locator("dd")
        .first
    )


def milestone_row(page: Page, seq: int):
    """The editable row of milestone ``seq`` on the change order form."""
    return page.get_by_role("row").filter(has=page.get_by_label(f"Title of milestone {seq}", exact=True))


def test_owner_issues_a_change_order_and_the_contractor_sees_it(
    new_context, screenshots, accessible, app_sessions, admin_engine, database, world
):
    engagement_id = create_active(app_sessions, world, title=TITLE)
    design, build, handover = milestones_of(admin_engine, engagement_id)
    assert [(m.title, m.amount_minor) for m in (design, build, handover)] == [
        ("Design", 100000),
        ("Build", 200000),
        ("Handover", 50000),
    ]
    invoice_id = approve(app_sessions, world, design.id)
    pay_as(app_sessions, world.finance, world.org_a, invoice_id, reference="ACH 7001")
    before = milestones_of(admin_engine, engagement_id)
    assert [m.status for m in before] == ["approved", "planned", "planned"]

    page_errors: list[str] = []
    owner = new_context().new_page()
    owner.on("pageerror", lambda exc: page_errors.append(str(exc)))
    owner.on("dialog", lambda d: d.accept())  # any data-confirm question is answered yes

    # The owner opens the engagement from the list.
    sign_in(owner, world.owner)
    owner.get_by_role("navigation", name="Main").get_by_role("link", name="Engagements").click()
    owner.get_by_role("link", name=TITLE).click()
    expect(owner.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(figure(owner, "Contract value")).to_have_text("$3,500.00")
    screenshots.take(owner, "owner opens the engagement")
    accessible(owner, "owner: engagement before the change order")

    # The change order form: the approved milestone is final, the planned ones are editable.
    owner.get_by_role("button", name="New change order").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Change order CO-1")
    expect(owner.get_by_label("Amount of milestone 1", exact=True)).to_have_count(0)
    final_row = owner.locator("tr.row-final")
    expect(final_row).to_have_count(1)
    expect(final_row).to_contain_text("Design")
    expect(final_row).to_contain_text("Approved")
    expect(final_row).to_contain_text("Final")
    expect(owner.get_by_label("Amount of milestone 2", exact=True)).to_have_value("2,000.00")
    expect(owner.get_by_label("Amount of milestone 3", exact=True)).to_have_value("500.00")
    expect(milestone_row(owner, 2).get_by_label("Cancel")).to_be_visible()
    expect(milestone_row(owner, 3).get_by_label("Cancel")).to_be_visible()
    screenshots.take(owner, "owner opens the change order form")
    accessible(owner, "owner: change order form")

    # A negative amount is refused at its field, and nothing changes.
    owner.get_by_label("Reason for the change").fill(REASON)
    owner.get_by_label("Amount of milestone 2", exact=True).fill("-2,400.00")
    owner.get_by_role("button", name="Issue CO-1").click()
    amount = owner.get_by_label("Amount of milestone 2", exact=True)
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(owner.locator(f"#ms-{build.id}-amount-error")).to_have_text("Enter an amount greater than zero.")
    expect(owner.locator("#change-order-form").get_by_role("alert")).to_contain_text(
        "Nothing was changed. Correct the fields marked below."
    )
    expect(owner.get_by_label("Reason for the change")).to_have_value(REASON)
    expect(amount).to_have_value("-2,400.00")
    screenshots.take(owner, "owner is stopped by a negative amount")
    accessible(owner, "owner: change order form with an error")
    assert change_orders_of(admin_engine, engagement_id) == []
    assert milestones_of(admin_engine, engagement_id) == before

    # The owner corrects it, moves the due date, cancels the handover and adds a milestone.
    amount.fill("2,400.00")
    owner.get_by_label("Due date of milestone 2", exact=True).fill("2030-03-15")
    milestone_row(owner, 3).get_by_label("Cancel").check()
    owner.get_by_role("button", name="+ Add a milestone").click()
    expect(owner.get_by_label("Title of new milestone 1")).to_be_visible()
    # the form came back with everything typed so far
    expect(owner.get_by_label("Amount of milestone 2", exact=True)).to_have_value("2,400.00")
    expect(owner.get_by_label("Due date of milestone 2", exact=True)).to_have_value("2030-03-15")
    expect(milestone_row(owner, 3).get_by_label("Cancel")).to_be_checked()
    expect(owner.get_by_label("Reason for the change")).to_have_value(REASON)
    owner.get_by_label("Title of new milestone 1").fill("Snagging")
    owner.get_by_label("Deliverable of new milestone 1").fill("Snag list closed")
    owner.get_by_label("Amount of new milestone 1").fill("150.00")
    owner.get_by_label("Due date of new milestone 1").fill("2030-05-15")
    screenshots.take(owner, "owner fills in the change order")
    accessible(owner, "owner: change order form filled in")
    owner.get_by_role("button", name="Issue CO-1").click()

    # Back on the engagement: the new contract value and CO-1 with its three lines.
    expect(owner.get_by_text("CO-1 issued and applied. The contractor sees it on the engagement.")).to_be_visible()
    expect(owner.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(figure(owner, "Contract value")).to_have_text("$3,550.00")
    co = owner.locator("#co-1")
    expect(co).to_contain_text("CO-1")
    expect(co).to_contain_text(REASON)
    expect(co).to_contain_text("$3,500.00 → $3,550.00")
    co_rows = co.locator("tbody tr")
    expect(co_rows).to_have_count(3)
    expect(co_rows.nth(0)).to_contain_text("Adjusted")
    expect(co_rows.nth(0)).to_contain_text("Build")
    expect(co_rows.nth(0)).to_contain_text("$2,000.00")
    expect(co_rows.nth(0)).to_contain_text("$2,400.00")
    expect(co_rows.nth(1)).to_contain_text("Cancelled")
    expect(co_rows.nth(1)).to_contain_text("Handover")
    expect(co_rows.nth(2)).to_contain_text("Added")
    expect(co_rows.nth(2)).to_contain_text("Snagging")
    expect(co_rows.nth(2)).to_contain_text("$150.00")
    milestones = owner.locator("table.milestones tbody tr")
    expect(milestones).to_have_count(4)
    expect(milestones.filter(has_text="Build")).to_contain_text("$2,400.00")
    expect(milestones.filter(has_text="Handover")).to_contain_text("Cancelled")
    expect(milestones.filter(has_text="Snagging")).to_contain_text("Planned")
    expect(milestones.filter(has_text="Design")).to_contain_text("Approved")
    screenshots.take(owner, "owner sees CO-1 on the engagement")
    accessible(owner, "owner: engagement with a change order")

    # The database agrees: one change order, its lines, the milestones as changed.
    [stored] = change_orders_of(admin_engine, engagement_id)
    assert (stored.number, stored.reason, stored.contract_value_before, stored.contract_value_after) == (
        1,
        REASON,
        350000,
        355000,
    )
    assert [(c.line_no, c.kind, c.title, c.before, c.after) for c in lines_of(admin_engine, stored.id)] == [
        (
            1,
            "adjust",
            "Build",
            {"amount_minor": 200000, "due_date": "2030-03-01"},
            {"amount_minor": 240000, "due_date": "2030-03-15"},
        ),
        (2, "cancel", "Handover", {"status": "planned"}, {"status": "cancelled"}),
        (
            3,
            "add",
            "Snagging",
            None,
            {"title": "Snagging", "deliverable": "Snag list closed", "amount_minor": 15000, "due_date": "2030-05-15"},
        ),
    ]
    after = milestones_of(admin_engine, engagement_id)
    assert [(m.seq, m.title, m.amount_minor, m.due_date.isoformat(), m.status) for m in after] == [
        (1, "Design", 100000, design.due_date.isoformat(), "approved"),
        (2, "Build", 240000, "2030-03-15", "planned"),
        (3, "Handover", 50000, handover.due_date.isoformat(), "cancelled"),
        (4, "Snagging", 15000, "2030-05-15", "planned"),
    ]

    # The contractor's user is notified, follows the notification and reads CO-1.
    run_jobs_aside(database, admin_engine, world.org_a)
    contractor = new_context().new_page()
    contractor.on("pageerror", lambda exc: page_errors.append(str(exc)))
    sign_in(contractor, world.contractor_x_user)
    expect(contractor.locator("#bell .badge-count")).to_be_visible()
    contractor.locator("#bell").click()
    expect(contractor.get_by_role("heading", level=1)).to_have_text("Notifications")
    notice = contractor.get_by_role("button", name=f"Change order CO-1 on {TITLE}")
    expect(notice).to_be_visible()
    screenshots.take(contractor, "contractor sees the notification")
    accessible(contractor, "contractor: notifications with a change order")
    notice.click()
    expect(contractor.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(figure(contractor, "Contract value")).to_have_text("$3,550.00")
    co = contractor.locator("#co-1")
    expect(co).to_contain_text(REASON)
    expect(co).to_contain_text("$3,500.00 → $3,550.00")
    expect(co.locator("tbody tr")).to_have_count(3)
    expect(contractor.get_by_role("button", name="New change order")).to_have_count(0)
    screenshots.take(contractor, "contractor reads CO-1 on the engagement")
    accessible(contractor, "contractor: engagement with a change order")

    assert page_errors == []
