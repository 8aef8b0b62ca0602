"""The review screen with the keyboard only: the project owner signs in, reaches the review queue and the
submission, goes through its evidence, disputes one milestone (first without a reason, which is refused at
the field) and approves another, pressing Tab, Shift+Tab, Enter and typing, never clicking. Wherever the
focus is, it shows; after each in-place swap of the decision panel it lands where the next step is (the
refused field, the outcome's heading), never lost to <body>, and the outcome is in a status region."""

from __future__ import annotations

import re

from kit import PASSWORD
from kit.a11y import focused, has_visible_focus, submit_work, tab_to
from kit.engagements import create_active, milestones_of
from playwright.sync_api import Page, expect

REASON = "The floor plans show no dimensions for the utility room."


def press(page: Page, key: str, on: dict) -> None:
    """Press ``key`` on the focused element, having checked that a person can see where the focus is."""
    assert has_visible_focus(on), f"the focus does not show on {on}"
    page.keyboard.press(key)


def is_link(text: str | re.Pattern, href: str | re.Pattern | None = None):
    def match(f: dict) -> bool:
        if f["tag"] != "a":
            return False
        if not (re.search(text, f["text"]) if isinstance(text, re.Pattern) else f["text"] == text):
            return False
        return href is None or bool(
            re.search(href, f["href"] or "") if isinstance(href, re.Pattern) else f["href"] == href
        )

    return match


def is_button(text: str):
    return lambda f: f["tag"] == "button" and f["text"] == text


def expect_focus_lands(page: Page, what: str) -> dict:
    """Wait until something other than <body> has the focus; what it is."""
    page.wait_for_function("() => document.activeElement && document.activeElement !== document.body", timeout=10_000)
    now = focused(page)
    assert now is not None, f"the focus is lost to <body> after {what}"
    return now


def test_owner_reviews_disputes_and_approves_with_the_keyboard_only(
    new_context, screenshots, app_sessions, admin_engine, world
):
    engagement_id = create_active(app_sessions, world)
    design, build, _ = milestones_of(admin_engine, engagement_id)
    submit_work(app_sessions, world, design.id, "Floor plans for all three levels.")
    submit_work(app_sessions, world, build.id, "The structure is complete; the engineer's report is attached.")
    page = new_context().new_page()
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))  # Enter on a decision, then OK

    # Sign in: the email field has the focus; type, Tab, type, Enter.
    page.goto("/login")
    email = expect_focus_lands(page, "opening the login page")
    assert email["name"] == "email", email
    page.keyboard.type(world.owner.email)
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("details.nav-account summary")).to_have_text(world.owner.name)

    # The navigation's Reviews link, then the submission in the queue.
    reviews = tab_to(page, is_link(re.compile(r"^Reviews"), "/reviews/"))
    screenshots.take(page, "the Reviews link has the focus")
    press(page, "Enter", reviews)
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    row = tab_to(page, is_link("Design", f"/milestones/{design.id}"))
    press(page, "Enter", row)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Design")
    panel = page.locator("#decision")
    expect(panel.get_by_role("heading", name="Your decision on revision 1")).to_be_visible()

    # The evidence: the link, the download and each preview can be reached and used from the keyboard.
    link = tab_to(page, is_link("https://drive.example.com/site-photos"))
    assert has_visible_focus(link), link
    download = tab_to(page, is_link("site-report.pdf", re.compile(r"^/evidence/")))
    with page.expect_download() as downloaded:
        press(page, "Enter", download)
    assert downloaded.value.suggested_filename == "site-report.pdf"
    expect(page.locator("details.preview").filter(has_text="Preview site-photo.png")).to_have_attribute("open", "")
    photo_preview = page.locator("details.preview").filter(has_text="Preview site-photo-west.png")
    expect(photo_preview).not_to_have_attribute("open", "")
    summary = tab_to(page, lambda f: f["tag"] == "summary" and f["text"] == "Preview site-photo-west.png")
    press(page, "Enter", summary)
    expect(photo_preview).to_have_attribute("open", "")
    expect(photo_preview.locator("img")).to_be_visible()
    screenshots.take(page, "the photo preview opened with Enter")

    # On to the decision, after the evidence: Dispute without a reason is refused at the field, which gets the focus.
    reason = tab_to(page, lambda f: f["id"] == "reason")
    assert has_visible_focus(reason), reason
    dispute = tab_to(page, is_button("Dispute and send back"))
    press(page, "Enter", dispute)
    reason_field = page.get_by_label("Reason")
    expect(reason_field).to_have_attribute("aria-invalid", "true")
    expect(panel.locator("#reason-error")).to_contain_text("reason")
    expect(reason_field).to_be_focused()
    now = expect_focus_lands(page, "the refused dispute")
    assert now["id"] == "reason" and has_visible_focus(now), now
    screenshots.take(page, "dispute refused, the focus at the reason")

    # Type the reason where the focus already is, Tab to Dispute, Enter.
    page.keyboard.type(REASON)
    dispute = tab_to(page, is_button("Dispute and send back"))
    press(page, "Enter", dispute)
    outcome = panel.get_by_role("heading", name="Disputed")
    expect(outcome).to_be_visible()
    expect(outcome).to_be_focused()
    now = expect_focus_lands(page, "disputing")
    assert "decision" in now["inside"] and has_visible_focus(now), now
    expect(panel.get_by_role("status")).to_contain_text("It is back with the contractor.")
    expect(panel.get_by_role("status").locator("blockquote")).to_have_text(REASON)
    expect(page.locator("#revision-1")).to_contain_text("Disputed")
    screenshots.take(page, "disputed, the focus on the outcome")

    # On to the next submission: back to the queue from the outcome, then Approve.
    back = tab_to(page, is_link("Back to the review queue"))
    press(page, "Enter", back)
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.get_by_role("link", name="Design")).to_have_count(0)
    row = tab_to(page, is_link("Build", f"/milestones/{build.id}"))
    press(page, "Enter", row)
    expect(panel.get_by_role("heading", name="Your decision on revision 1")).to_be_visible()
    approve = tab_to(page, is_button("Approve and authorize $2,000.00"))
    screenshots.take(page, "the Approve button has the focus")
    press(page, "Enter", approve)
    outcome = panel.get_by_role("heading", name="Approved")
    expect(outcome).to_be_focused()
    assert asked[-1].startswith("Authorize $2,000.00 gross, $1,800.00 net to Contractor X "), asked
    now = expect_focus_lands(page, "approving")
    assert "decision" in now["inside"] and has_visible_focus(now), now
    expect(panel.get_by_role("status")).to_contain_text(
        re.compile(r"The payment is authorized as \S+-000001 for \$2,000\.00 gross\.")
    )
    screenshots.take(page, "approved, the focus on the outcome")

    # The invoice the approval authorized is the next stop of the Tab key.
    invoice = tab_to(page, is_link(re.compile(r"-000001$"), re.compile(r"^/invoices/")), limit=5)
    press(page, "Enter", invoice)
    expect(page.get_by_role("heading", level=1)).to_contain_text("-000001")
    expect(page.get_by_text("$2,000.00").first).to_be_visible()
    assert [m.status for m in milestones_of(admin_engine, engagement_id)][:2] == ["planned", "approved"]
