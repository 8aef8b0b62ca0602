"""Accessibility of every main page of the journey, as each demo person sees it: axe-core finds no serious
or critical violation (every result is in axe-report.json), and every form control has an accessible name.
The review screen is checked again after each of its htmx swaps (a refused dispute, a dispute, an
approval), and the pages that list emails, notifications and receipts with rows in them, on the tests' own
engagements (the demo's state is only read)."""

from __future__ import annotations

import pytest
from kit.a11y import (
    MAIN_PAGES,
    NAME_OF,
    PHONE_PAGES,
    PHONE_WIDTH,
    ROLE_OF,
    MainPage,
    decide,
    demo_ids,
    open_page,
    sign_in_as,
    submit_work,
    unnamed_controls,
)
from kit.browser import run_jobs_aside, sign_in
from kit.engagements import create_active, milestones_of
from playwright.sync_api import Page, expect

# The session cookie of each demo person, signed in once per run: each page opens in a fresh profile.
_cookies: dict[str, list] = {}


@pytest.fixture(scope="module")
def demo_rows(admin_engine, demo_data) -> dict[str, str]:
    return demo_ids(admin_engine, demo_data.acme)


@pytest.fixture
def open_as(new_context, demo_data):
    """open_as(who) -> a page in a fresh profile, signed in as that demo person (None: signed out)."""

    def _open(who: str | None) -> Page:
        context = new_context()
        page = context.new_page()
        if who is None:
            return page
        if who not in _cookies:
            sign_in_as(page, who, demo_data.password, NAME_OF[who])
            _cookies[who] = context.cookies()
        else:
            context.add_cookies(_cookies[who])
        return page

    return _open


@pytest.mark.parametrize("main_page", MAIN_PAGES, ids=lambda p: p.label)
def test_main_page_has_no_serious_or_critical_violations(
    main_page: MainPage, open_as, demo_rows, accessible, screenshots
):
    page = open_as(main_page.who)
    open_page(page, main_page.path.format(**demo_rows))
    screenshots.take(page, main_page.label)
    accessible(page, main_page.label)


@pytest.mark.parametrize("main_page", PHONE_PAGES, ids=lambda p: f"{p.label} at 390 px")
def test_phone_page_has_no_serious_or_critical_violations(
    main_page: MainPage, open_as, demo_rows, accessible, screenshots
):
    """The contractor's pages and the review screen as a phone shows them: stacked tables, the folded menu."""
    page = open_as(main_page.who)
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    open_page(page, main_page.path.format(**demo_rows))
    screenshots.take(page, f"{main_page.label} at 390 px")
    accessible(page, f"{main_page.label} (390 px)")


@pytest.mark.parametrize("who", [None, *ROLE_OF], ids=lambda who: ROLE_OF.get(who, "signed out"))
def test_every_form_control_on_the_main_pages_has_an_accessible_name(who, open_as, demo_rows):
    page = open_as(who)
    offenders = {}
    for main_page in (p for p in MAIN_PAGES if p.who == who):
        open_page(page, main_page.path.format(**demo_rows))
        if unnamed := unnamed_controls(page):
            offenders[main_page.label] = unnamed
    assert not offenders, "form controls without an accessible name:\n" + "\n".join(
        f"{label}:\n    " + "\n    ".join(controls) for label, controls in offenders.items()
    )


# --- the review screen after htmx swaps, on a fresh engagement ---------------------------------------------


def test_review_screen_stays_accessible_through_its_htmx_swaps(
    new_context, accessible, screenshots, app_sessions, admin_engine, world
):
    engagement_id = create_active(app_sessions, world)
    design, build, _ = milestones_of(admin_engine, engagement_id)
    submit_work(app_sessions, world, design.id, "Floor plans for all three levels.")
    submit_work(app_sessions, world, build.id, "The structure is complete; the engineer's report is attached.")
    page = new_context().new_page()
    page.on("dialog", lambda d: d.accept())  # each decision asks first (data-confirm)
    sign_in(page, world.owner)
    page.goto(f"/milestones/{design.id}")
    panel = page.locator("#decision")
    expect(panel.get_by_role("heading", name="Your decision on revision 1")).to_be_visible()
    screenshots.take(page, "review screen before deciding")
    accessible(page, "owner: review screen (own engagement, before deciding)")
    assert unnamed_controls(page) == []

    # Dispute without a reason: the panel comes back with the message at the field.
    page.get_by_role("button", name="Dispute").click()
    reason = page.get_by_label("Reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(panel.locator("#reason-error")).to_be_visible()
    screenshots.take(page, "dispute refused without a reason")
    accessible(page, "owner: review screen, dispute refused without a reason")
    assert unnamed_controls(page) == []

    reason.fill("The plans show no dimensions for the utility room.")
    page.get_by_role("button", name="Dispute").click()
    expect(panel.get_by_role("heading", name="Disputed")).to_be_visible()
    screenshots.take(page, "decision panel after disputing")
    accessible(page, "owner: decision panel after disputing")

    page.goto(f"/milestones/{build.id}")
    page.get_by_role("button", name="Approve").click()
    expect(panel.get_by_role("heading", name="Approved")).to_be_visible()
    expect(panel.get_by_role("link", name="-000001")).to_be_visible()
    screenshots.take(page, "decision panel after approving")
    accessible(page, "owner: decision panel after approving")


def test_submit_form_refused_in_place_is_accessible_and_focuses_the_field(
    new_context, accessible, screenshots, app_sessions, admin_engine, world
):
    engagement_id = create_active(app_sessions, world)
    design = milestones_of(admin_engine, engagement_id)[0]
    page = new_context().new_page()
    sign_in(page, world.contractor_x_user)
    page.goto(f"/milestones/{design.id}")
    page.get_by_role("button", name="Submit for review").click()
    note = page.get_by_label("What did you deliver?")
    expect(note).to_have_attribute("aria-invalid", "true")
    expect(note).to_be_focused()  # the button went with the form: the focus is at the field to fill in
    screenshots.take(page, "submit form refused without a note")
    accessible(page, "contractor: milestone page, submit form refused without a note")
    assert unnamed_controls(page) == []


# --- pages with emails, notifications and receipts in them, on a fresh engagement --------------------------


def test_outbox_notifications_and_data_room_with_rows_are_accessible(
    new_context, accessible, screenshots, app_sessions, admin_engine, database, world
):
    engagement_id = create_active(app_sessions, world)
    design = milestones_of(admin_engine, engagement_id)[0]
    submit_work(app_sessions, world, design.id, "Floor plans for all three levels.")
    decide(app_sessions, world, design.id, "approve")
    run_jobs_aside(database, admin_engine, world.org_a)  # the emails, the notifications, the receipt

    admin = new_context().new_page()
    sign_in(admin, world.admin)
    open_page(admin, "/admin/outbox/")
    screenshots.take(admin, "outbox with messages")
    accessible(admin, "admin: outbox list (with messages)")
    assert unnamed_controls(admin) == []
    admin.get_by_role("table").get_by_role("link").first.click()
    expect(admin.locator("iframe, pre").first).to_be_visible()
    # The HTML preview has loaded when its body is there (waiting for "networkidle" instead timed out once
    # on a busy machine: the bell's polling keeps the network from ever being idle for long).
    expect(admin.frame_locator("iframe").first.locator("body")).to_be_visible()
    screenshots.take(admin, "outbox message")
    accessible(admin, "admin: outbox message")

    owner = new_context().new_page()
    sign_in(owner, world.owner)
    open_page(owner, "/notifications/")
    expect(owner.locator("ul.notifications li").first).to_be_visible()
    screenshots.take(owner, "notifications with items")
    accessible(owner, "owner: notifications (with items)")

    finance = new_context().new_page()
    sign_in(finance, world.finance)
    open_page(finance, "/documents/")
    expect(finance.get_by_role("table")).to_be_visible()
    screenshots.take(finance, "data room with a receipt")
    accessible(finance, "finance: data room (with a receipt)")
    assert unnamed_controls(finance) == []
