"""The review flow in a real browser (issue 22): Approve asks first, naming gross, net and the contractor, and a
cancelled question sends nothing; "Then open the next one" goes on in the queue's order and says when nothing
is left; the keyboard shortcuts of the queue and the review screen work, and do nothing while a person types."""

from __future__ import annotations

import re

from kit.a11y import submit_work
from kit.browser import sign_in
from kit.engagements import create_active, milestones_of
from playwright.sync_api import Page, expect
from sqlalchemy import text


def three_waiting(app_sessions, admin_engine, world):
    """Design ($1,000.00), Build ($2,000.00), Handover ($500.00), submitted in that order: the queue's order."""
    engagement_id = create_active(app_sessions, world)
    design, build, handover = milestones_of(admin_engine, engagement_id)
    for m in (design, build, handover):
        submit_work(app_sessions, world, m.id, f"{m.title}: done as specified.", with_files=False)
    return engagement_id, design, build, handover


def statuses(admin_engine, engagement_id) -> list[str]:
    return [m.status for m in milestones_of(admin_engine, engagement_id)]


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def settled(page: Page) -> None:
    """Wait until htmx has settled a boosted navigation: it wires the new page's forms while settling, so a key
    pressed before that would submit a form the plain way."""
    page.wait_for_function("() => !document.querySelector('.htmx-settling, .htmx-swapping, .htmx-request')")


def test_approve_asks_with_the_amounts_and_the_contractor_and_a_no_sends_nothing(
    new_context, screenshots, app_sessions, admin_engine, world
):
    engagement_id, _, build, _ = three_waiting(app_sessions, admin_engine, world)
    page = new_context().new_page()
    answers = iter([False, True])
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept() if next(answers) else d.dismiss()))
    sign_in(page, world.owner)
    page.goto(f"/milestones/{build.id}")
    approve = page.get_by_role("button", name="Approve and authorize $2,000.00")
    expect(approve).to_be_visible()
    screenshots.take(page, "the review screen: evidence first, the decision beside it")

    approve.click()
    assert asked == [f"Authorize $2,000.00 gross, $1,800.00 net to Contractor X {world.suffix}?"]
    expect(page.locator("#decision").get_by_role("heading", name="Your decision on revision 1")).to_be_visible()
    assert statuses(admin_engine, engagement_id) == ["submitted", "submitted", "submitted"]

    approve.click()
    expect(page.locator("#decision").get_by_role("heading", name="Approved")).to_be_visible()
    assert len(asked) == 2
    assert statuses(admin_engine, engagement_id) == ["submitted", "approved", "submitted"]


def test_decide_and_open_the_next_one_follows_the_queue_and_says_when_it_is_empty(
    new_context, screenshots, app_sessions, admin_engine, world
):
    engagement_id, design, build, handover = three_waiting(app_sessions, admin_engine, world)
    page = new_context().new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, world.owner)

    # Build is second in the queue: the next one is Handover, then (wrapping to work skipped) Design.
    page.goto(f"/milestones/{build.id}")
    page.get_by_label("Then open the next one in the queue").check()
    page.get_by_role("button", name="Approve and authorize $2,000.00").click()
    expect(heading(page)).to_contain_text("Handover")
    assert page.url.endswith(f"/milestones/{handover.id}?then=next")
    expect(page.locator(".flash")).to_have_text("Approved.")

    # The box stays ticked on the way through the queue: each next one is one decision (and its question).
    expect(page.get_by_label("Then open the next one in the queue")).to_be_checked()
    page.get_by_label("Reason").fill("The snag list is missing.")
    page.get_by_role("button", name="Dispute and send back").click()
    expect(heading(page)).to_contain_text("Design")
    assert page.url.endswith(f"/milestones/{design.id}?then=next")

    expect(page.get_by_label("Then open the next one in the queue")).to_be_checked()
    page.get_by_role("button", name="Approve and authorize $1,000.00").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.get_by_text("Nothing else is waiting for your review.")).to_be_visible()
    screenshots.take(page, "the queue is empty after deciding the last one")
    assert statuses(admin_engine, engagement_id) == ["approved", "approved", "planned"]


def test_keyboard_shortcuts_move_through_the_queue_and_decide_but_not_while_typing(
    new_context, screenshots, app_sessions, admin_engine, world
):
    engagement_id, _, build, _ = three_waiting(app_sessions, admin_engine, world)
    page = new_context().new_page()
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    sign_in(page, world.owner)

    # The queue: j and k move between the submissions, o opens the chosen one.
    page.goto("/reviews/")
    expect(page.locator("details.shortcuts summary")).to_have_text("Keyboard shortcuts")
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Design", exact=True)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Handover", exact=True)).to_be_focused()
    page.keyboard.press("k")
    expect(page.get_by_role("link", name="Build", exact=True)).to_be_focused()
    page.keyboard.press("o")
    expect(heading(page)).to_contain_text("Build")
    settled(page)

    # The review screen: d with no reason goes to the reason; typing there never triggers a shortcut.
    page.locator("details.shortcuts summary").click()
    expect(page.locator("details.shortcuts")).to_contain_text("skip to the next one in the queue")
    page.locator("h1").click()  # the focus off any control
    page.keyboard.press("d")
    reason = page.get_by_label("Reason")
    expect(reason).to_be_focused()
    page.keyboard.type("Needs a handrail; do not approve and send on")
    expect(reason).to_have_value("Needs a handrail; do not approve and send on")
    assert asked == []
    assert page.url.endswith(f"/milestones/{build.id}")
    assert statuses(admin_engine, engagement_id) == ["submitted", "submitted", "submitted"]
    screenshots.take(page, "typing the reason: the keys type")

    # Out of the field, d disputes (asking first).
    page.locator("h1").click()
    page.keyboard.press("d")
    expect(page.locator("#decision").get_by_role("heading", name="Disputed")).to_be_visible()
    assert asked == [
        f"Dispute “Build” and send it back to Contractor X {world.suffix} unpaid? Nothing is paid; "
        f"Contractor X {world.suffix} sees your reason."
    ]

    # n opens the next one in the queue's order; a approves it, asking with the amounts first.
    page.keyboard.press("n")
    expect(heading(page)).to_contain_text("Handover")
    settled(page)
    page.keyboard.press("a")
    expect(page.locator("#decision").get_by_role("heading", name="Approved")).to_be_visible()
    assert re.fullmatch(r"Authorize \$500\.00 gross, \$450\.00 net to Contractor X \S+\?", asked[-1]), asked
    assert statuses(admin_engine, engagement_id) == ["submitted", "planned", "approved"]


def test_a_split_partial_shows_what_is_paid_now_and_what_becomes_a_new_milestone_before_authorizing(
    new_context, screenshots, accessible, app_sessions, admin_engine, world
):
    with admin_engine.begin() as conn:
        conn.execute(text("update organizations set partial_policy = 'split' where id = :o"), {"o": world.org_a})
    engagement_id, _, build, _ = three_waiting(app_sessions, admin_engine, world)
    page = new_context().new_page()
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    sign_in(page, world.owner)
    page.goto(f"/milestones/{build.id}")

    page.get_by_label("Reason").fill("The handrail is missing; the stairs are otherwise done.")
    page.get_by_label("Amount (USD)").fill("1,500.00")
    page.get_by_role("button", name="Authorize part…").click()
    panel = page.locator(".split-confirm")
    expect(panel.get_by_role("heading", name="Confirm the partial approval")).to_be_focused()
    expect(panel).to_contain_text(
        f"Approve $1,500.00 of $2,000.00 now: this authorizes $1,500.00 gross, $1,350.00 net to Contractor X "
        f"{world.suffix}. The remaining $500.00 becomes a new milestone"
    )
    assert asked == []  # the server's answer asks; nothing was authorized yet
    assert statuses(admin_engine, engagement_id) == ["submitted", "submitted", "submitted"]
    screenshots.take(page, "the split partial asks with its amounts")
    accessible(page, "owner: review screen, confirming a split partial")

    panel.get_by_role("button", name="Authorize $1,500.00 now").click()
    expect(page.locator("#decision").get_by_role("heading", name="Partly approved")).to_be_visible()
    after = milestones_of(admin_engine, engagement_id)
    assert [(m.title, m.status) for m in after][:3] == [
        ("Design", "submitted"),
        ("Build", "approved"),
        ("Handover", "submitted"),
    ]
    assert len(after) == 4 and after[3].status == "planned"
