"""The milestone schedule editor and the change-order editor (issue 22, item 9) on a 1366 px screen: nothing scrolls
sideways, the total follows the amounts as they are typed (read the way the server reads them; the server's total is
shown again after each post), and a due date has one format: a date picker without a contradicting hint, and the
saved day shown as every page shows days. On the tests' own engagements."""

from __future__ import annotations

from kit.browser import sign_in
from kit.engagements import create_active, create_draft
from playwright.sync_api import Page, expect

WIDE = {"width": 1366, "height": 900}

# How far the page, and the editor's table in its scrolling box, reach past their width.
_SIDEWAYS = """
() => ({
  page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  boxes: Array.from(document.querySelectorAll(".table-scroll")).map((el) => el.scrollWidth - el.clientWidth),
})
"""


def owner_page(new_context, world) -> Page:
    page = new_context().new_page()
    page.set_viewport_size(WIDE)
    sign_in(page, world.owner)
    return page


def assert_fits(page: Page) -> None:
    found = page.evaluate(_SIDEWAYS)
    assert found["page"] <= 0, f"the page scrolls sideways by {found['page']} px"
    assert all(over <= 1 for over in found["boxes"]), f"the editor's table scrolls sideways: {found['boxes']}"


def test_the_schedule_editor_fits_1366_px_and_its_total_follows_what_is_typed(
    new_context, app_sessions, world, screenshots, accessible
):
    engagement_id = create_draft(app_sessions, world, title="Porch rebuild")  # 1,000.00 + 2,000.00 + 500.00
    page = owner_page(new_context, world)
    page.goto(f"/engagements/{engagement_id}/milestones")
    expect(page.get_by_role("heading", level=1)).to_have_text("Milestones")
    assert_fits(page)
    total = page.locator("#schedule-form [data-live-total]")
    expect(total.locator("[data-total]")).to_have_text("$3,500.00")

    amount = page.get_by_label("Amount of milestone 2 in USD")
    amount.fill("2,500.50")
    expect(total.locator("[data-total]")).to_have_text("$4,000.50")
    expect(total.locator("[data-total-note]")).to_have_text("as typed")
    amount.fill("USD 2500.5")  # the currency's code and no thousands separator: the server reads it too
    expect(total.locator("[data-total]")).to_have_text("$4,000.50")
    amount.fill("2.500,50")  # a comma before the decimals: refused by the server, so not counted
    expect(total.locator("[data-total]")).to_have_text("$1,500.00")
    expect(total.locator("[data-total-note]")).to_have_text(
        "as typed; 1 amount is not counted until written like 1,250.00"
    )
    screenshots.take(page, "schedule editor with an amount it cannot read")

    amount.fill("2,500.50")
    page.get_by_role("button", name="+ Add a milestone").click()  # the server re-renders: its total
    expect(page.get_by_label("Title of milestone 4")).to_be_visible()
    expect(total.locator("[data-total]")).to_have_text("$4,000.50")
    expect(total.locator("[data-total-note]")).to_have_text("total")
    assert_fits(page)
    accessible(page, "owner: schedule editor at 1366 px")


def test_the_schedule_editor_has_one_date_format_from_picker_to_saved_day(new_context, app_sessions, world):
    engagement_id = create_draft(app_sessions, world, title="Garden wall")
    page = owner_page(new_context, world)
    page.goto(f"/engagements/{engagement_id}/milestones")
    form = page.locator("#schedule-form")
    expect(form).not_to_contain_text("YYYY-MM-DD")  # no hint that contradicts the picker's order
    due = page.get_by_label("Due date of milestone 1")
    expect(due).to_have_attribute("type", "date")
    due.fill("2030-02-20")
    page.get_by_role("button", name="Save milestones").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Garden wall")
    first = page.locator("table.milestones tbody tr").first
    expect(first.locator("td[data-label='Due'] time")).to_have_text("20 Feb 2030")
    expect(first.locator("td[data-label='Due'] time")).to_have_attribute("datetime", "2030-02-20")
    page.goto(f"/engagements/{engagement_id}/milestones")
    expect(page.get_by_label("Due date of milestone 1")).to_have_value("2030-02-20")


def test_the_change_order_editor_fits_1366_px_and_its_total_follows_amounts_and_cancellations(
    new_context, app_sessions, world, screenshots, accessible
):
    engagement_id = create_active(app_sessions, world, title="Attic insulation")  # 1,000.00 + 2,000.00 + 500.00
    page = owner_page(new_context, world)
    page.goto(f"/engagements/{engagement_id}/change-orders/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Change order CO-1")
    assert_fits(page)
    total = page.locator("#co-total")
    expect(total.locator("[data-total]")).to_have_text("$3,500.00")
    expect(page.locator("#change-order-form tfoot")).to_contain_text("Now $3,500.00")

    page.get_by_label("Amount of milestone 2", exact=True).fill("2,400.00")
    expect(total.locator("[data-total]")).to_have_text("$3,900.00")
    expect(total.locator("[data-total-note]")).to_have_text("after it, as typed")
    page.get_by_role("row").filter(has=page.get_by_label("Title of milestone 3", exact=True)).get_by_label(
        "Cancel"
    ).check()
    expect(total.locator("[data-total]")).to_have_text("$3,400.00")

    page.get_by_label("Reason for the change").fill("A stronger beam; no handover visit.")
    page.get_by_role("button", name="+ Add a milestone").click()  # the server's total of what is typed
    expect(page.get_by_label("Title of new milestone 1")).to_be_visible()
    expect(total.locator("[data-total]")).to_have_text("$3,400.00")
    expect(total.locator("[data-total-note]")).to_have_text("total after this change order")
    page.get_by_label("Amount of new milestone 1").fill("150.00")
    expect(total.locator("[data-total]")).to_have_text("$3,550.00")
    expect(page.get_by_label("Due date of new milestone 1")).to_have_attribute("type", "date")
    expect(page.locator("#change-order-form")).not_to_contain_text("YYYY-MM-DD")
    assert_fits(page)
    screenshots.take(page, "change order editor at 1366 px")
    accessible(page, "owner: change order editor at 1366 px")
