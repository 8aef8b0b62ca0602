"""Phones (issue 22, item 7): every contractor page and the owner's review screen at 390 px wide. Nothing a person
needs scrolls sideways (not the page, not a table inside it: tables stack into one card a row, each value after its
column's name), the navigation folds under "Menu" and opens from it, with the brand, the bell and the account in
view. The demo's pages are only read. axe at 390 px is in test_accessibility.py."""

from __future__ import annotations

import re

import pytest
from kit.a11y import NAME_OF, PHONE_PAGES, PHONE_WIDTH, MainPage, demo_ids, open_page, sign_in_as
from playwright.sync_api import Page, expect

_cookies: dict[str, list] = {}

# How far the page and each scrolling box inside it reach past their width; the elements that stick out.
_SIDEWAYS = """
() => {
  const width = document.documentElement.clientWidth;
  const boxes = [];
  for (const el of document.querySelectorAll(".table-scroll, table")) {
    if (el.scrollWidth > el.clientWidth + 1 && el.getBoundingClientRect().width) {
      boxes.push(`${el.tagName.toLowerCase()}.${el.className} (${el.scrollWidth} > ${el.clientWidth})`);
    }
  }
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !el.closest("details:not([open])")) {
      wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className} (${Math.round(box.right)} px)`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, boxes, wide: wide.slice(0, 8)};
}
"""

# The label each stacked table's first labelled cell shows before its value (what CSS draws from data-label).
_STACK_LABELS = """
() => Array.from(document.querySelectorAll("table.stack")).filter((t) => t.getBoundingClientRect().width).map((t) => {
  const cell = t.querySelector("tbody td[data-label]:not([data-label=''])");
  const head = t.querySelector("thead");
  return {
    attr: cell && cell.getAttribute("data-label"),
    shown: cell && getComputedStyle(cell, "::before").content,
    display: cell && getComputedStyle(cell.closest("tr")).display,
    headHeight: head ? head.getBoundingClientRect().height : 0,
  };
})
"""


# The top of each item of the main navigation's rows (brand, links and menus, bell, account).
_NAV_ROWS = """
() => Array.from(document.querySelectorAll("nav.main-nav > ul > li"))
  .filter((li) => li.getBoundingClientRect().width)
  .map((li) => Math.round(li.getBoundingClientRect().top))
"""

# Each item of the header's rows that is shown: its top, its right edge and what it is.
_HEADER_ITEMS = """
() => Array.from(document.querySelectorAll("nav.main-nav > ul > li"))
  .filter((li) => li.getBoundingClientRect().width)
  .map((li) => ({top: Math.round(li.getBoundingClientRect().top), right: Math.round(li.getBoundingClientRect().right),
                 what: li.className || li.textContent.trim().slice(0, 20)}))
"""


@pytest.fixture(scope="module")
def demo_rows(admin_engine, demo_data) -> dict[str, str]:
    return demo_ids(admin_engine, demo_data.acme)


@pytest.fixture
def phone_as(new_context, demo_data):
    """phone_as(who) -> a page 390 px wide in a fresh profile, signed in as that demo person."""

    def _open(who: str) -> Page:
        context = new_context()
        page = context.new_page()
        if who not in _cookies:
            sign_in_as(page, who, demo_data.password, NAME_OF[who])
            _cookies[who] = context.cookies()
        else:
            context.add_cookies(_cookies[who])
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        return page

    return _open


@pytest.mark.parametrize("main_page", PHONE_PAGES, ids=lambda p: p.label)
def test_a_phone_shows_the_page_without_sideways_scrolling(main_page: MainPage, phone_as, demo_rows, screenshots):
    page = phone_as(main_page.who)
    open_page(page, main_page.path.format(**demo_rows))
    screenshots.take(page, f"{main_page.label} at 390 px")
    found = page.evaluate(_SIDEWAYS)
    assert found["scrollWidth"] <= PHONE_WIDTH, f"the page scrolls sideways: {found['wide']}"
    assert found["boxes"] == [], f"a box inside the page scrolls sideways: {found['boxes']}"
    for table in page.evaluate(_STACK_LABELS):
        if table["attr"] is None:
            continue  # a table without a labelled row (an empty list)
        assert table["display"] == "block", "a stacked table's row is a card"
        assert table["shown"] == f'"{table["attr"]}"', "each value follows its column's name"
        assert table["headHeight"] <= 1, "the header row is left to screen readers"


@pytest.mark.parametrize("main_page", PHONE_PAGES, ids=lambda p: p.label)
def test_the_navigation_folds_under_menu_and_opens_from_it(main_page: MainPage, phone_as, demo_rows):
    page = phone_as(main_page.who)
    open_page(page, main_page.path.format(**demo_rows))
    nav = page.get_by_role("navigation", name="Main")
    menu = nav.get_by_role("button", name="Menu")
    links = nav.locator("#nav-links")
    expect(nav.locator(".brand")).to_be_visible()
    expect(nav.locator("#bell")).to_be_visible()
    expect(nav.locator("details.nav-account summary")).to_be_visible()
    expect(links).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    search = nav.get_by_role("link", name="Search", exact=True)
    expect(search).to_be_visible()  # the box gives way to a link to the search page
    expect(nav.locator("#header-search-q")).to_be_hidden()
    items = page.evaluate(_HEADER_ITEMS)
    tops = [item["top"] for item in items]
    assert len(items) == 5, f"brand, Menu, search, bell, account: {items}"
    assert max(tops) - min(tops) <= 8, f"the folded header is one row: {items}"
    assert max(item["right"] for item in items) <= PHONE_WIDTH, f"the header reaches past the screen: {items}"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(links.get_by_role("link", name="Home", exact=True)).to_be_visible()
    expect(links.get_by_role("link", name="Engagements", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH

    page.keyboard.press("Escape")  # the focus is on the button: Escape folds the menu again
    expect(links).to_be_hidden()
    expect(menu).to_be_focused()


def test_a_link_of_the_open_menu_leads_to_its_page_and_the_menu_folds_again(phone_as, demo_rows):
    page = phone_as("nina@northwind.example")
    open_page(page, "/")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Menu").click()
    nav.get_by_role("link", name="Payments", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your payments")
    expect(nav.locator("#nav-links")).to_be_hidden()
    nav.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Payments", exact=True)).to_have_attribute("aria-current", "page")


@pytest.mark.parametrize(
    ("who", "menu", "link", "heading"),
    [("admin@acme.example", "Admin", "Settings", "Settings"), ("finance@acme.example", "Records", "Audit trail", None)],
)
def test_a_link_of_a_sub_menu_in_the_open_menu_can_be_tapped(phone_as, demo_rows, who, menu, link, heading):
    """The last link of the admin's and finance's sub-menus: Pico's close-on-outside-click layer once covered them."""
    page = phone_as(who)
    open_page(page, "/")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Menu").click()
    nav.locator("summary", has_text=re.compile(f"^{menu}$")).click()
    nav.get_by_role("link", name=link, exact=True).click(timeout=5000)
    expect(page).to_have_url(re.compile(r"/(admin/settings|audit/)$"))


def test_the_evidence_table_of_a_milestone_stacks_on_a_phone_with_each_files_facts_labelled(phone_as, demo_rows):
    page = phone_as("nina@northwind.example")
    open_page(page, f"/milestones/{demo_rows['cabinetry']}")
    files = page.locator("table.files.stack").first
    row = files.locator("tbody tr").first
    expect(row.locator("td[data-label='File'] a")).to_be_visible()
    for label in ("File", "Type", "Size", "SHA-256"):
        cell = row.locator(f"td[data-label='{label}']")
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, label


@pytest.mark.parametrize(
    "who", ["owner@acme.example", "finance@acme.example", "admin@acme.example", "nina@northwind.example"]
)
def test_the_navigation_is_one_row_at_1366_px(who, phone_as, demo_rows):
    page = phone_as(who)
    page.set_viewport_size({"width": 1366, "height": 900})
    open_page(page, "/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("button", name="Menu")).to_be_hidden()
    tops = page.evaluate(_NAV_ROWS)
    assert len(tops) >= 6 and max(tops) - min(tops) <= 8, f"the navigation wraps: item tops {tops}"


def test_finance_reaches_its_records_from_one_menu_that_says_where_they_are(phone_as, demo_rows):
    page = phone_as("finance@acme.example")
    page.set_viewport_size({"width": 1366, "height": 900})
    open_page(page, "/")
    nav = page.get_by_role("navigation", name="Main")
    records = nav.locator("details.nav-records")
    expect(records.get_by_role("link", name="Audit trail")).to_be_hidden()
    records.locator("summary").click()
    for name in ("1099 year end", "E-invoicing", "Data room", "Audit trail"):
        expect(records.get_by_role("link", name=name, exact=True)).to_be_visible()
    records.get_by_role("link", name="Data room", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Data room")
    expect(nav.locator("details.nav-records > summary")).to_have_attribute("aria-current", "page")
    link = nav.locator("details.nav-records").get_by_role("link", name="Data room", include_hidden=True)
    expect(link).to_have_attribute("aria-current", "page")
