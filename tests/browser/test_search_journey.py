"""The header's search in a browser (issue 22, item 6): the owner types the beginning of a word, suggestions grouped
by kind appear under the box and the live region says what was found; the arrow keys reach them and Enter opens
one; Escape closes them; Enter in the box opens the results page."""

from __future__ import annotations

import re

from kit import PASSWORD
from kit.a11y import sign_in_as
from kit.money import approved_invoices, party
from playwright.sync_api import expect


def test_owner_finds_an_engagement_from_the_header_with_the_keyboard(
    new_context, screenshots, world, act_as, admin_engine
):
    s = world.suffix
    engagement_id, _ = approved_invoices(act_as, admin_engine, party(world, "x"), title=f"Lighthouse{s} restoration")
    page = new_context().new_page()
    sign_in_as(page, world.owner.email, PASSWORD, world.owner.name)

    box = page.get_by_role("searchbox", name="Search", exact=True)
    box.fill("lighthou")
    suggestions = page.locator("#header-search-results")
    expect(suggestions.get_by_role("link", name=f"Lighthouse{s} restoration", exact=True)).to_be_visible()
    expect(page.locator("#header-search-status")).to_have_text("Found 1 engagement, 2 milestones, 2 invoices.")
    screenshots.take(page, "suggestions under the header's box")

    box.press("Escape")
    expect(suggestions.locator("a")).to_have_count(0)
    expect(box).to_be_focused()

    box.fill("lighthouse")
    expect(suggestions.get_by_role("link", name=f"Lighthouse{s} restoration", exact=True)).to_be_visible()
    box.press("ArrowDown")
    expect(suggestions.get_by_role("link", name=f"Lighthouse{s} restoration", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/engagements/{engagement_id}$"))

    box = page.get_by_role("searchbox", name="Search", exact=True)
    box.fill(f"lighthouse{s} resto")
    box.press("Enter")
    expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Milestones")).to_be_visible()
    expect(page.get_by_role("link", name=f"Lighthouse{s} restoration part 2")).to_be_visible()
    screenshots.take(page, "the results page")


def test_on_a_phone_the_search_link_opens_the_search_page_and_on_a_narrow_window_suggestions_stay_in_view(
    new_context, world, act_as, admin_engine
):
    s = world.suffix
    approved_invoices(act_as, admin_engine, party(world, "x"), title=f"Lantern{s} repair")
    page = new_context().new_page()
    sign_in_as(page, world.owner.email, PASSWORD, world.owner.name)

    page.set_viewport_size({"width": 700, "height": 900})  # the header's box, the window hardly wider than a phone
    page.get_by_role("searchbox", name="Search", exact=True).fill("lanter")
    suggestions = page.locator("#header-search-results")
    expect(suggestions.get_by_role("link", name=f"Lantern{s} repair", exact=True)).to_be_visible()
    box = suggestions.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 700, box

    page.set_viewport_size({"width": 390, "height": 844})
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("searchbox", name="Search")).to_be_hidden()
    nav.get_by_role("link", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
    page.get_by_role("searchbox", name="Search for").fill(f"lantern{s}")
    page.get_by_role("searchbox", name="Search for").press("Enter")  # (typed before htmx took the new page: Enter)
    expect(page.get_by_role("link", name=f"Lantern{s} repair", exact=True)).to_be_visible()
