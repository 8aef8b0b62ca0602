"""The finance home's cash-out chart in a real browser: an image named by its title, described by a table of
the same figures that a screen reader reaches, naming every bar's amount; and the figure cards stack into one
column on a phone without sideways scrolling."""

from __future__ import annotations

from kit.browser import sign_in
from kit.money_pages import approved_engagement, date_back
from playwright.sync_api import expect


def test_the_cash_out_chart_is_an_image_whose_text_equivalent_names_every_value(
    new_context, accessible, app_sessions, admin_engine, world
):
    _, (design, _build) = approved_engagement(app_sessions, admin_engine, world, retainage="10", terms="30")
    date_back(admin_engine, [design], 40)  # $1,111.09 net, ten days overdue
    page = new_context().new_page()
    sign_in(page, world.finance)

    chart = page.get_by_role("img", name="Cash out by week, USD: net amounts due")
    expect(chart).to_be_visible()
    described_by = chart.get_attribute("aria-describedby")
    table = page.locator(f"#{described_by}")
    expect(table.locator("tbody tr")).to_have_count(9)  # overdue, this week and the seven after it
    expect(table.get_by_role("row").nth(1)).to_have_accessible_name("Overdue $1,111.09")
    cells = table.locator("tbody td").all_inner_texts()
    assert cells.count("$1,111.09") == 1 and cells.count("$1,800.04") == 1 and cells.count("$0.00") == 7
    # The bars the picture draws are the amounts above zero, the overdue one first and marked.
    expect(chart.locator("rect")).to_have_count(2)
    expect(chart.locator("rect.chart-bar-alert")).to_have_count(1)
    accessible(page, "finance home with a chart")


def test_the_figure_cards_stack_on_a_phone_without_sideways_scrolling(new_context, app_sessions, admin_engine, world):
    approved_engagement(app_sessions, admin_engine, world)
    context = new_context()
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, world.finance)
    expect(page.get_by_role("img", name="Cash out by week, USD: net amounts due")).to_be_visible()
    boxes = page.locator(".figure-card, .chart-card").evaluate_all(
        "cards => cards.map(c => [Math.round(c.getBoundingClientRect().left), c.getBoundingClientRect().right])"
    )
    assert len({left for left, _ in boxes}) == 1, boxes  # one column
    assert all(right <= 390 for _, right in boxes), boxes  # nothing of them beyond the screen's edge
