"""A contractor without a W-9 is blocked until it fills one in (issue 18), in a real browser: the organization
requires a tax form; finance selects the contractor's authorized payment and the export is refused with the words
why; the contractor's user sees on its home page that its payments wait for its tax form, fills in a W-9 (a bad
TIN first, refused at its field), and sees the TIN as its last four only; finance then exports the payment.

Each step is checked as the person sees it, screenshotted, and checked with axe; the end state as the owner role
reads it from the database."""

from __future__ import annotations

import re

from kit.browser import sign_in
from kit.engagements import owner_query
from kit.money import set_org
from kit.money_pages import active_engagement, approve, invoice_row, milestone_ids
from playwright.sync_api import Page, expect

MISSING = "Tax form missing: no W-9 on file"


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def test_a_contractor_without_a_w9_is_blocked_until_it_fills_one_in(
    new_context, screenshots, accessible, app_sessions, admin_engine, world
):
    set_org(admin_engine, world.org_a, tax_form_required=True)
    engagement_id = active_engagement(
        app_sessions, world, title="Signage", rows=(("Sign", "Installed sign", "2,400.00", "2030-01-15"),)
    )
    (milestone,) = milestone_ids(admin_engine, engagement_id)
    invoice = dict(invoice_row(admin_engine, approve(app_sessions, world, milestone)))

    errors: list[str] = []
    dialogs: list[str] = []
    finance = new_context().new_page()
    finance.on("pageerror", lambda exc: errors.append(str(exc)))
    finance.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))

    # Finance cannot select the payment for export: the queue says why, and so does the invoice's page.
    sign_in(finance, world.finance)
    nav(finance, "Payments")
    row = finance.get_by_role("row").filter(has_text=invoice["invoice_number"])
    expect(row).to_contain_text(MISSING)
    expect(finance.get_by_label(f"Select {invoice['invoice_number']}")).to_have_count(0)
    screenshots.take(finance, "finance cannot export a contractor without a W-9")
    row.get_by_role("link", name=invoice["invoice_number"]).click()
    expect(finance.locator("#why")).to_contain_text(MISSING)
    assert invoice_row(admin_engine, invoice["id"])["status"] == "approved"

    # The contractor's user is told on its home page, and fills in its W-9.
    xena = new_context().new_page()
    xena.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(xena, world.contractor_x_user)
    expect(xena.get_by_role("note").filter(has_text=MISSING)).to_be_visible()
    screenshots.take(xena, "the contractor's home says its payments wait for its tax form")
    accessible(xena, "contractor: home with the tax form banner")
    xena.get_by_role("link", name="Fill in your tax form").click()
    expect(xena.get_by_role("heading", level=1)).to_have_text("Tax form")
    accessible(xena, "contractor: tax form")
    xena.get_by_label("W-9: a US person").check()
    xena.get_by_label("Name (as shown on your income tax return)").fill("Xena X")
    xena.get_by_label("Federal tax classification (W-9 only)").select_option("individual")
    xena.get_by_label("SSN", exact=True).check()
    xena.get_by_label("SSN or EIN").fill("666-12-3456")
    xena.get_by_label("Street address").fill("1 Main St")
    xena.get_by_label("City").fill("Springfield")
    xena.get_by_label("State (W-9) or state / province").fill("IL")
    xena.get_by_label("ZIP code (W-9) or postal code").fill("62701")
    xena.get_by_label(re.compile("Under penalties of perjury")).check()
    xena.get_by_role("button", name="Save tax form").click()
    expect(xena.locator("#tin-error")).to_have_text(
        "That is not a valid SSN: check the number on the Social Security card."
    )
    screenshots.take(xena, "a bad SSN is refused at its field")
    accessible(xena, "contractor: tax form with an error")
    assert owner_query(admin_engine, "select * from tax_profiles where contractor_id = :c", c=world.contractor_x) == []
    xena.get_by_label("SSN or EIN").fill("401-23-6789")
    xena.get_by_label(re.compile("Under penalties of perjury")).check()
    xena.get_by_role("button", name="Save tax form").click()
    expect(xena.get_by_role("status")).to_contain_text("Tax form saved.")
    expect(xena.locator(".tax-status")).to_contain_text("Complete")
    expect(xena.locator(".tax-status")).to_contain_text("SSN •••• 6789")
    assert "401-23-6789" not in xena.content()
    screenshots.take(xena, "the contractor's W-9 is on file, its TIN shown by its last four")
    nav(xena, "Home")
    expect(xena.get_by_text(MISSING)).to_have_count(0)

    # Finance exports the payment now.
    nav(finance, "Payments")
    finance.get_by_label(f"Select {invoice['invoice_number']}").check()
    finance.get_by_role("button", name="Export selected").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text(re.compile(r"Batch \d+"))
    screenshots.take(finance, "finance exports the payment once the W-9 is on file")
    assert invoice_row(admin_engine, invoice["id"])["status"] == "exported"
    assert errors == []
