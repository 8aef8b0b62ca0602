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
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def einvoicing_settings(page: Page) -> None:
    sign_in(page, "admin@acme.example")
    page.locator("details.nav-admin summary").click()
    page.get_by_role("link", name="Settings", exact=True).click()
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


def preferences(page: Page) -> None:
    """Issue 22: Nina's preferences, reached from the account menu: her time zone and the daily digest."""
    sign_in(page, "nina@northwind.example")
    page.locator("details.nav-account summary").click()
    page.get_by_role("link", name="Preferences").click()
    expect(page.get_by_label("Time zone")).to_be_visible()


WIDE, PHONE = 1366, 390
# file name -> (how the page is reached, the window's width)
SHOTS = {
    "review-screen.png": (review_screen, 1280),
    "payment-queue.png": (payment_queue, 1280),
    "engagement-page.png": (engagement_page, 1280),
    "contractor-milestone.png": (contractor_milestone, 1280),
    "contractor-home.png": (contractor_home, 1280),
    "contractor-payments.png": (contractor_payments, 1280),
    "ap-export-batch.png": (batch_page, 1280),
}
for _name, _reach in {
    "e-invoicing-settings": einvoicing_settings,
    "contractor-e-invoicing-details": contractor_einvoicing,
    "self-billing-agreement": self_billing_agreement,
    "self-billed-invoice": self_billed_invoice,
    "verify-document": verify_document,
    "preferences": preferences,
}.items():
    SHOTS[f"{_name}.png"] = (_reach, WIDE)
    SHOTS[f"{_name}-phone.png"] = (_reach, PHONE)


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
