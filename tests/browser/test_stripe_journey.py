"""Paying through Stripe Connect in a real browser (issue 17), against the local fake of Stripe served on
127.0.0.1 and an app served for this test with the Stripe keys set:

the contractor's user connects a payout account on its Payments page, goes through the fake's hosted onboarding
page and comes back to "Ready to be paid"; finance selects the approved payment in the queue, reviews the count and
total, confirms, and the worker makes the transfer; finance sees it paid with the transfer's reference; the
contractor sees it paid on "Your payments" and downloads the remittance advice (a PDF, as stored in the data room).

Each step is checked as the person sees it, photographed, and checked with axe; the end state as the owner role and
the fake see it."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading

import pytest
from kit.browser import CHROMIUM, CHROMIUM_ARGS, run_jobs_aside, sign_in
from kit.engagements import owner_query
from kit.money import set_org
from kit.money_pages import active_engagement, approve, invoice_row, milestone_ids, payments_of
from playwright.sync_api import Page, expect

from backoffice.dev.stripe_fake import StripeFake

SECRET = "whsec_test_journey"
KEY = "sk_test_journey"


def money(minor: int) -> str:
    return f"${minor / 100:,.2f}"


@pytest.fixture
def stripe_site(database, monkeypatch):
    """The app on a free local port with the Stripe rail configured, and the fake Stripe its webhooks come from."""
    from werkzeug.serving import make_server

    from backoffice import create_app

    app = create_app(database.app_url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    fake = StripeFake(webhook_url=f"{base}/webhooks/stripe", webhook_secret=SECRET).start()
    fake.set_balance("usd", 10_000_000)
    app.config["BASE_URL"] = base
    app.config["BACKOFFICE_SETTINGS"] = dataclasses.replace(
        app.config["BACKOFFICE_SETTINGS"],
        base_url=base,
        stripe_secret_key=KEY,
        stripe_webhook_secret=SECRET,
        stripe_api_base=fake.url,
    )
    for name, value in (("STRIPE_SECRET_KEY", KEY), ("STRIPE_API_BASE", fake.url), ("STRIPE_WEBHOOK_SECRET", SECRET)):
        monkeypatch.setenv(name, value)  # the worker's (kit.jobs.run_jobs reads the environment)
    thread = threading.Thread(target=server.serve_forever, name="stripe-site", daemon=True)
    thread.start()
    try:
        yield base, fake
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        fake.stop()
        app.extensions["backoffice.engine"].dispose()


@pytest.fixture
def stripe_browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def page_for(browser, base: str) -> Page:
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    return context.new_page()


def test_a_contractor_connects_finance_pays_by_stripe_and_the_contractor_sees_it_paid(
    stripe_site, stripe_browser, screenshots, accessible, app_sessions, admin_engine, database, world
):
    base, fake = stripe_site
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    engagement_id = active_engagement(app_sessions, world, title="Harbor deck")
    invoice = dict(
        invoice_row(admin_engine, approve(app_sessions, world, milestone_ids(admin_engine, engagement_id)[0]))
    )
    errors: list[str] = []

    # The contractor connects a payout account at (the fake's) Stripe and comes back ready.
    contractor = page_for(stripe_browser, base)
    contractor.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(contractor, world.contractor_x_user)
    contractor.goto("/invoices/")
    expect(contractor.get_by_role("heading", name="Payout account")).to_be_visible()
    screenshots.take(contractor, "the contractor's payments page offers to connect a payout account")
    accessible(contractor, "contractor: payments with the payout account to connect")
    contractor.get_by_role("button", name="Connect a payout account").click()
    expect(contractor).to_have_url(re.compile(re.escape(fake.url) + "/connect/onboarding/"))
    screenshots.take(contractor, "the contractor at Stripe's onboarding")
    contractor.get_by_role("button", name=re.compile("Complete onboarding")).click()
    expect(contractor).to_have_url(re.compile(re.escape(base) + "/invoices/"))
    expect(contractor.locator(".payout-account")).to_contain_text("Ready to be paid")
    screenshots.take(contractor, "the contractor is back and ready to be paid")

    # Finance pays the authorized payment by Stripe from the queue, after reviewing the count and total.
    dialogs: list[str] = []
    finance = page_for(stripe_browser, base)
    finance.on("pageerror", lambda exc: errors.append(str(exc)))
    finance.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    sign_in(finance, world.finance)
    finance.goto("/payments/")
    finance.get_by_label(f"Select {invoice['invoice_number']}").check()
    finance.get_by_role("button", name="Pay selected by Stripe…").click()
    expect(finance.get_by_role("heading", level=1)).to_have_text("Send 1 payment by Stripe")
    expect(finance.locator(".totals-per-currency")).to_contain_text(money(invoice["net_minor"]))
    screenshots.take(finance, "finance reviews the payment to send by Stripe")
    accessible(finance, "finance: review of a Stripe payment run")
    finance.get_by_role("button", name=f"Send 1 payment: {money(invoice['net_minor'])}").click()
    assert dialogs[-1].startswith(f"Send 1 payment by Stripe: {money(invoice['net_minor'])}?")
    expect(finance.locator(".flash-success")).to_contain_text("Sent 1 payment to Stripe")
    run_jobs_aside(database, admin_engine, world.org_a)  # the worker makes the transfer

    (transfer,) = fake.transfers()
    (payment,) = payments_of(admin_engine, invoice["id"])
    assert (payment["reference"], payment["source"], payment["amount_minor"]) == (
        transfer["id"],
        "stripe",
        invoice["net_minor"],
    )
    finance.goto(f"/invoices/{invoice['id']}")
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Paid")
    expect(finance.locator("ul.timeline")).to_contain_text(f"Stripe transfer · reference {transfer['id']}")
    screenshots.take(finance, "finance sees it paid by Stripe")
    accessible(finance, "finance: invoice paid by Stripe")

    # The contractor sees it paid.
    contractor.goto("/invoices/")
    row = contractor.locator("table tbody tr").filter(
        has=contractor.get_by_role("link", name=invoice["invoice_number"])
    )
    expect(row).to_contain_text("Paid")
    screenshots.take(contractor, "the contractor sees it paid")
    accessible(contractor, "contractor: payments with a Stripe payment and its remittance advice")

    # ... and downloads the remittance advice of the payment run, once the worker has issued it.
    run_jobs_aside(database, admin_engine, world.org_a)
    contractor.reload()
    advice = contractor.locator(".remittance-advices").get_by_role("link").first
    expect(advice).to_be_visible()
    with contractor.expect_download() as download:
        advice.click()
    pdf = download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF-")
    (document,) = owner_query(
        admin_engine,
        "select sha256, run_id from documents where kind = 'remittance_advice' and contractor_id = :c",
        c=world.contractor_x,
    )
    assert hashlib.sha256(pdf).hexdigest() == document["sha256"] and document["run_id"] == payment["run_id"]
    screenshots.take(contractor, "the contractor downloads the remittance advice")
    assert errors == []
