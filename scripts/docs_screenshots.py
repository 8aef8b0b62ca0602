"""Pictures of the main pages for docs/screenshots/, taken in headless Chromium from a running demo.

    .venv/bin/backoffice serve &                     # the demo, on http://127.0.0.1:5000
    .venv/bin/python scripts/docs_screenshots.py [--base-url URL] [--out docs/screenshots]

Needs the test extra (Playwright) and Debian's chromium at /usr/bin/chromium. Each page is reached the way
its person would reach it, from a link, and photographed whole: at 1280 px wide, or for the self-billing pages
(issue 21) at 1366 px and again at a phone's 390 px (``…-phone.png``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "backoffice-demo"


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("details.nav-account summary")).to_be_visible()


def review_screen(page: Page) -> None:
    sign_in(page, "owner@acme.example")
    page.goto("/reviews/")
    page.get_by_role("link", name="Cabinetry and countertops").click()
    expect(page.locator("#decision")).to_contain_text("Your decision")


def payment_queue(page: Page) -> None:
    sign_in(page, "finance@acme.example")
    page.goto("/payments/")
    expect(page.get_by_role("heading", name="Payment queue")).to_be_visible()


def payment_queue_selected(page: Page) -> None:
    """Issue 22: the page's payments ticked with the header box (the live total above the table), or on a phone, where
    the header is not shown, every payment the filter matches (the server's count and total)."""
    payment_queue(page)
    select_page = page.get_by_label("Select all payments on this page")
    if select_page.is_visible():
        select_page.check()
        expect(page.locator("[data-selection-total]")).to_contain_text("selected")
    else:
        page.get_by_role("link", name="Select every payment that matches the filter").click()
        expect(page.locator("#bulk-selection")).to_contain_text("matching")


def engagement_page(page: Page) -> None:
    sign_in(page, "owner@acme.example")
    page.goto("/engagements")
    page.get_by_role("link", name="Kitchen renovation, 14 Elm St").click()
    expect(page.get_by_role("heading", name="Milestones")).to_be_visible()


def contractor_milestone(page: Page) -> None:
    sign_in(page, "nina@northwind.example")
    page.goto("/engagements")
    page.get_by_role("link", name="Kitchen renovation, 14 Elm St").click()
    page.get_by_role("link", name="Under-cabinet lighting").first.click()
    expect(page.locator("#returned")).to_be_visible()


def contractor_home(page: Page) -> None:
    sign_in(page, "nina@northwind.example")
    expect(page.get_by_role("heading", name="Sent back to you")).to_be_visible()


def contractor_payments(page: Page) -> None:
    sign_in(page, "nina@northwind.example")
    page.goto("/invoices/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def batch_page(page: Page) -> None:
    sign_in(page, "finance@acme.example")
    page.goto("/batches/")
    page.get_by_role("link", name="Batch 1", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Batch 1")


def main_nav(page: Page, name: str) -> None:
    """Follow a link of the main navigation, opening its menu first (finance's Records, the admin's Admin)."""
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True, include_hidden=True)
    phone_menu = page.get_by_role("button", name="Menu", exact=True)
    if not link.is_visible() and phone_menu.is_visible():  # on a phone the links fold under Menu
        phone_menu.click()
    if not link.is_visible():
        menu = page.locator("header details.dropdown").filter(
            has=page.get_by_role("link", name=name, exact=True, include_hidden=True)
        )
        menu.locator("summary").click()
    link.click()


def einvoicing_settings(page: Page) -> None:
    sign_in(page, "admin@acme.example")
    main_nav(page, "Settings")
    page.get_by_role("button", name="E-invoicing").click()  # a link drawn as a button
    expect(page.get_by_role("heading", name="The contractor's acceptance")).to_be_visible()


def contractor_einvoicing(page: Page) -> None:
    sign_in(page, "nina@northwind.example")
    main_nav(page, "E-invoicing")
    expect(page.get_by_role("heading", name="Who issues your invoices")).to_be_visible()


def self_billing_agreement(page: Page) -> None:
    sign_in(page, "nina@northwind.example")
    main_nav(page, "Self-billing")
    expect(page.locator(".agreement-state")).to_contain_text("Confirmed")


def self_billed_invoice(page: Page) -> None:
    """The demo's first authorized invoice as Nina sees it: its self-billed invoice and e-invoice, and her answer."""
    sign_in(page, "nina@northwind.example")
    main_nav(page, "Payments")
    page.get_by_role("link", name="ACME-000001", exact=True).click()
    expect(page.locator("#documents").get_by_role("link", name=re.compile(r"^E-invoice"))).to_be_visible()
    expect(page.get_by_role("button", name="Accept the self-billed invoice")).to_be_visible()


def verify_document(page: Page) -> None:
    """Finance downloads the first invoice's self-billed invoice and checks the file on the verify page."""
    sign_in(page, "finance@acme.example")
    page.goto("/payments/")
    page.get_by_role("link", name="ACME-000001", exact=True).first.click()
    with page.expect_download() as download:
        page.locator("#documents").get_by_role("link", name="Self-billed invoice (PDF)").click()
    pdf = download.value.path().read_bytes()
    main_nav(page, "Data room")
    page.get_by_role("link", name="Verify a document").click()
    page.get_by_label("The file to check (PDF or XML)").set_input_files(
        {"name": download.value.suggested_filename, "mimeType": "application/pdf", "buffer": pdf}
    )
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.locator("#verdict-heading")).to_contain_text("Verified")


def engagement_list(page: Page) -> None:
    """Issue 22: every list has a Download CSV link beside its filters."""
    sign_in(page, "owner@acme.example")
    page.goto("/engagements?status=active")
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()


def export_layout_settings(page: Page) -> None:
    """Issue 22: the AP export layout's byte-order mark for Excel."""
    sign_in(page, "admin@acme.example")
    page.goto("/admin/settings/export")
    expect(page.get_by_label("UTF-8 with byte-order mark (for Excel)")).to_be_checked()


def schedule_editor(page: Page) -> None:
    """The draft's milestone editor (issue 22): it fits the screen and its total follows the typing."""
    sign_in(page, "owner@acme.example")
    page.goto("/engagements")
    page.get_by_role("link", name="Showroom signage").click()
    page.get_by_role("button", name="Edit milestones").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Milestones")


def change_order_editor(page: Page) -> None:
    """A change order being written: an amount raised, the total after it recounted as typed."""
    sign_in(page, "owner@acme.example")
    page.goto("/engagements")
    page.get_by_role("link", name="Kitchen renovation, 14 Elm St").click()
    page.get_by_role("button", name="New change order").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Change order CO-")
    page.get_by_label("Reason for the change").fill("The client chose a larger island; lighting moves a week.")
    page.get_by_label("Amount of milestone 3", exact=True).fill("13,400.00")


def _search_box(page: Page):
    """The header's search box; on a phone, where a link to the search page stands for it, the page's own box."""
    if page.viewport_size["width"] <= 640:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Search", exact=True).click()
        return page.get_by_role("searchbox", name="Search for")
    return page.get_by_role("searchbox", name="Search", exact=True)


def search_suggestions(page: Page) -> None:
    """The owner types the beginning of a word in the header's search box: suggestions grouped by kind (issue 22);
    on a phone, the results under the search page's box."""
    sign_in(page, "owner@acme.example")
    _search_box(page).fill("kit")
    expect(page.locator("#header-search-results .search-hits, #search-results .search-hits").first).to_be_visible()


def search_results(page: Page) -> None:
    """Finance searches an invoice number's beginning and presses Enter: the results page (issue 22)."""
    sign_in(page, "finance@acme.example")
    _search_box(page).fill("ACME-00000")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()


def owner_home(page: Page) -> None:
    sign_in(page, "owner@acme.example")
    expect(page.get_by_role("heading", name="Reviews waiting")).to_be_visible()


def finance_home(page: Page) -> None:
    sign_in(page, "finance@acme.example")
    expect(page.get_by_role("heading", name="Cash out by week")).to_be_visible()


def admin_home(page: Page) -> None:
    sign_in(page, "admin@acme.example")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()


def preferences(page: Page) -> None:
    """Issue 22: Nina's preferences, reached from the account menu: her time zone and the daily digest."""
    sign_in(page, "nina@northwind.example")
    page.locator("details.nav-account summary").click()
    page.get_by_role("link", name="Preferences").click()
    expect(page.get_by_label("Time zone")).to_be_visible()


WIDE, PHONE = 1366, 390
# file name -> (how the page is reached, the window's width)
SHOTS = {
    "review-screen.png": (review_screen, WIDE),
    "payment-queue.png": (payment_queue, WIDE),
    "engagement-page.png": (engagement_page, WIDE),
    "contractor-milestone.png": (contractor_milestone, WIDE),
    "contractor-home.png": (contractor_home, WIDE),
    "contractor-payments.png": (contractor_payments, WIDE),
    "ap-export-batch.png": (batch_page, WIDE),
}
for _name, _reach in {
    "e-invoicing-settings": einvoicing_settings,
    "contractor-e-invoicing-details": contractor_einvoicing,
    "self-billing-agreement": self_billing_agreement,
    "self-billed-invoice": self_billed_invoice,
    "verify-document": verify_document,
    "engagement-list-download": engagement_list,  # issue 22: csv
    "ap-export-layout-settings": export_layout_settings,  # issue 22: csv
    # Issue 22: the editors at 1366 px; the contractor's pages and the review screen on a phone too.
    "schedule-editor": schedule_editor,
    "change-order-editor": change_order_editor,
    "search-suggestions": search_suggestions,
    "search-results": search_results,
    "preferences": preferences,
}.items():
    SHOTS[f"{_name}.png"] = (_reach, WIDE)
    SHOTS[f"{_name}-phone.png"] = (_reach, PHONE)
for _name, _reach in {
    "contractor-milestone": contractor_milestone,
    "contractor-home": contractor_home,
    "contractor-payments": contractor_payments,
    "review-screen": review_screen,
}.items():
    SHOTS[f"{_name}-phone.png"] = (_reach, PHONE)


def review_queue(page: Page) -> None:
    sign_in(page, "owner@acme.example")
    page.goto("/reviews/")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()


# The review queue (issue 22: keyboard shortcuts), both widths.
SHOTS["review-queue.png"] = (review_queue, WIDE)
SHOTS["review-queue-phone.png"] = (review_queue, PHONE)


# issue 22, words: the audit trail in sentences, the outbox in plain words, the invitation box, the Due page's
# status words.
def audit_trail(page: Page) -> None:
    sign_in(page, "finance@acme.example")
    page.goto("/audit/")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()


def outbox_list(page: Page) -> None:
    sign_in(page, "admin@acme.example")
    page.goto("/admin/outbox/")
    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()


def outbox_message(page: Page) -> None:
    outbox_list(page)
    page.locator("table tbody a").first.click()
    expect(page.locator("dl.facts")).to_be_visible()


def invitation_link(page: Page) -> None:
    sign_in(page, "admin@acme.example")
    page.goto("/admin/members")
    page.get_by_label("Email").first.fill(f"new-{page.viewport_size['width']}@acme.example")
    page.get_by_label("Name").first.fill("Nora New")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invite-link")).to_be_visible()


def due_page(page: Page) -> None:
    sign_in(page, "owner@acme.example")
    page.goto("/engagements/due")


for _name, _reach in {
    "audit-trail": audit_trail,
    "outbox": outbox_list,
    "outbox-message": outbox_message,
    "invitation-link": invitation_link,
    "due-page": due_page,
    "owner-home": owner_home,  # issue 22: the home pages' figures
    "finance-home": finance_home,
    "admin-home": admin_home,
}.items():
    SHOTS[f"{_name}.png"] = (_reach, WIDE)
    SHOTS[f"{_name}-phone.png"] = (_reach, PHONE)
# Issue 22, bulk work: the payment queue with a selection, and the queue and a batch on a phone.
SHOTS["payment-queue-selected.png"] = (payment_queue_selected, WIDE)
SHOTS["payment-queue-selected-phone.png"] = (payment_queue_selected, PHONE)
SHOTS["payment-queue-phone.png"] = (payment_queue, PHONE)
SHOTS["ap-export-batch-phone.png"] = (batch_page, PHONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for name, (reach, width) in SHOTS.items():
            height = 844 if width == PHONE else 900
            context = browser.new_context(base_url=args.base_url, viewport={"width": width, "height": height})
            page = context.new_page()
            reach(page)
            page.wait_for_load_state("networkidle")  # evidence previews load in their frames
            page.screenshot(path=str(args.out / name), full_page=True)
            print(args.out / name)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
