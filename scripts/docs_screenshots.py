"""Pictures of the main pages for docs/screenshots/, taken in headless Chromium from a running demo.

    .venv/bin/backoffice serve &                     # the demo, on http://127.0.0.1:5000
    .venv/bin/python scripts/docs_screenshots.py [--base-url URL] [--out docs/screenshots]

Needs the test extra (Playwright) and Debian's chromium at /usr/bin/chromium. Each page is reached the way
its person would reach it, from a link, and photographed whole at 1280 px wide."""

from __future__ import annotations

import argparse
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


SHOTS = {
    "review-screen.png": review_screen,
    "payment-queue.png": payment_queue,
    "engagement-page.png": engagement_page,
    "contractor-milestone.png": contractor_milestone,
    "contractor-home.png": contractor_home,
    "contractor-payments.png": contractor_payments,
    "ap-export-batch.png": batch_page,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for name, reach in SHOTS.items():
            context = browser.new_context(base_url=args.base_url, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            reach(page)
            page.wait_for_load_state("networkidle")  # evidence previews load in their frames
            page.screenshot(path=str(args.out / name), full_page=True)
            print(args.out / name)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
