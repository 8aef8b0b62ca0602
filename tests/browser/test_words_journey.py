"""Words, not codes (issue 22, item 8), in Chromium: the invitation's copy button appears with JavaScript and
copies the link, and the audit trail in sentences stays accessible."""

from __future__ import annotations

from kit.a11y import decide, submit_work
from kit.browser import sign_in
from kit.engagements import create_active, milestones_of
from playwright.sync_api import expect


def test_the_invitation_link_has_a_copy_button_that_copies_it(new_context, accessible, screenshots, world):
    context = new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    admin = context.new_page()
    sign_in(admin, world.admin)
    admin.goto("/admin/members")
    admin.get_by_label("Email").first.fill(f"copy-{world.suffix}@example.com")
    admin.get_by_label("Name").first.fill("Cora Copy")
    admin.get_by_role("button", name="Send invitation").click()
    box = admin.locator("article.invite-link")
    expect(box).to_contain_text("Email is not set up, so send this link yourself")
    link = admin.locator("#invite-link").input_value()
    assert "/invite/" in link
    button = box.get_by_role("button", name="Copy link")
    expect(button).to_be_visible()  # hidden in the HTML, shown by app.js
    button.click()
    expect(box.get_by_role("status")).to_have_text("Copied.")
    assert admin.evaluate("navigator.clipboard.readText()") == link
    screenshots.take(admin, "invitation link copied")
    accessible(admin, "admin: members with an invitation link")


def test_the_audit_trail_in_sentences_is_accessible(
    new_context, accessible, screenshots, app_sessions, admin_engine, world
):
    engagement_id = create_active(app_sessions, world)
    design = milestones_of(admin_engine, engagement_id)[0]
    submit_work(app_sessions, world, design.id, "Floor plans for all three levels.")
    decide(app_sessions, world, design.id, "approve")
    finance = new_context().new_page()
    sign_in(finance, world.finance)
    finance.goto("/audit/")
    expect(finance.locator("#audit-rows")).to_contain_text(f"{world.owner.name} approved {design.title}")
    screenshots.take(finance, "audit trail in sentences")
    accessible(finance, "finance: audit trail in sentences")
