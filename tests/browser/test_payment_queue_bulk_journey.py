"""Bulk work on the payment queue in a real browser (issue 22, item 5): finance ticks every payment of the page with
the header box and sees the selection's total follow, per currency; the export asks with the count and the total;
"select every payment that matches the filter" selects them on the server, whose question names its own total. At
390 px the queue is a column of payments, nothing scrolling sideways."""

from __future__ import annotations

import pytest
from kit.browser import sign_in
from kit.money_pages import active_engagement, approve_milestones, milestone_ids
from playwright.sync_api import expect


@pytest.fixture
def queue(world, app_sessions, admin_engine) -> None:
    """Contractor X's kitchen (USD, net $1,111.09 + $1,800.04) and contractor Y's loft (EUR, net €450.00)."""
    kitchen = active_engagement(app_sessions, world, title="Kitchen renovation", terms="30")
    loft = active_engagement(
        app_sessions,
        world,
        title="Loft conversion",
        contractor_id=world.contractor_y,
        currency="EUR",
        terms="14",
        rows=(("Survey", "Measured survey", "500.00", "2030-02-01"),),
    )
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, kitchen))
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, loft))


def finance_page(new_context, world, **options):
    context = new_context()
    page = context.new_page()
    if options:
        page.set_viewport_size(options["viewport"])
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    sign_in(page, world.finance)
    return page, dialogs


def test_the_header_box_selects_the_page_the_total_follows_and_the_export_asks_with_it(
    new_context, screenshots, world, queue
):
    finance, dialogs = finance_page(new_context, world)
    finance.goto("/payments/")
    selection = finance.locator("[data-selection-total]")
    expect(selection).to_have_text("Tick payments to select them.")
    finance.get_by_label("Select all payments on this page").check()
    expect(selection).to_have_text("3 payments selected, €450.00 and $2,911.13 total.")
    finance.get_by_label("Select all payments on this page").uncheck()
    expect(selection).to_have_text("Tick payments to select them.")

    # One currency a batch: the filter keeps the dollars, the header box takes them, the question names their total.
    finance.locator("form.filters").get_by_label("Currency").select_option("USD")
    expect(finance.get_by_role("row")).to_have_count(3)  # the header and two payments
    finance.get_by_label("Select all payments on this page").check()
    expect(finance.locator("[data-selection-total]")).to_have_text("2 payments selected, $2,911.13 total.")
    screenshots.take(finance, "finance selected the page")
    finance.locator("#export-selected").get_by_role("button", name="Export selected").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Batch")
    assert dialogs == ["Export 2 payments, $2,911.13, to a new AP batch?"]
    expect(finance.get_by_text("2 payments, $2,911.13. Download the file below")).to_be_visible()


def test_every_payment_matching_the_filter_is_selected_on_the_server_and_exported_after_its_question(
    new_context, screenshots, accessible, world, queue
):
    finance, dialogs = finance_page(new_context, world)
    finance.goto("/payments/?currency=USD")
    finance.get_by_role("link", name="Select every payment that matches the filter").click()
    expect(finance.locator("#bulk-selection")).to_contain_text("All 2 matching payments selected, $2,911.13 total.")
    expect(finance.get_by_label("Select all payments on this page")).to_be_checked()
    screenshots.take(finance, "finance selected every matching payment")
    accessible(finance, "finance: payment queue, every matching payment selected")
    finance.locator("#export-selected").get_by_role("button", name="Export selected").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Batch")
    assert dialogs == ["Export all 2 matching payments, $2,911.13, to a new AP batch?"]


def test_at_390_px_each_payment_is_a_block_with_contractor_amount_due_and_status_first(
    new_context, screenshots, accessible, world, queue
):
    finance, _ = finance_page(new_context, world, viewport={"width": 390, "height": 844})
    finance.goto("/payments/")
    expect(finance.get_by_role("heading", name="Payment queue")).to_be_visible()
    assert finance.evaluate("document.documentElement.scrollWidth") <= 390
    row = finance.get_by_role("row").filter(has_text="Loft conversion")
    tops = [
        row.locator(f"td.cell-{name}").bounding_box()["y"]
        for name in ("contractor", "net", "due", "status", "invoice", "for")
    ]
    assert tops == sorted(tops), tops  # read top to bottom in that order
    label = row.locator("td.cell-net").evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Net payable: "'
    expect(row.locator("td.cell-net")).to_contain_text("€450.00")
    box = row.locator("td.cell-net").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    screenshots.take(finance, "the payment queue at 390 px")
    accessible(finance, "finance: payment queue at 390 px")
