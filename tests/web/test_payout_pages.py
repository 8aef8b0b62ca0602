"""The payout account on the pages (issue 17, item 2): a contractor connects it from its Payments page and
comes back from Stripe's onboarding (the local fake's) to its readiness in words; an admin does it from the
contractor's page; the rail is turned on in Settings, which say what to set while the server has no keys."""

from __future__ import annotations

import dataclasses
import re

import pytest
import requests
from kit.money import set_org
from kit.web import csrf_token, flashes, signed_in, visible_text

from backoffice.dev.stripe_fake import StripeFake


@pytest.fixture
def fake():
    with StripeFake(auto_deliver=False) as running:
        yield running


@pytest.fixture
def configured(app, fake):
    settings = app.config["BACKOFFICE_SETTINGS"]
    app.config["BACKOFFICE_SETTINGS"] = dataclasses.replace(
        settings, stripe_secret_key="sk_test_pages", stripe_api_base=fake.url
    )
    yield fake
    app.config["BACKOFFICE_SETTINGS"] = settings


def test_a_contractor_connects_from_its_payments_page_and_comes_back_ready(app, login, world, admin_engine, configured):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    client = signed_in(app, login, world.contractor_x_user)
    page = client.get("/invoices/").get_data(as_text=True)
    assert "Payout account" in page and "Not connected" in visible_text(page)
    # The page lets its connect form lead to the onboarding's origin (CSP form-action holds redirects too).
    policy = client.get("/invoices/").headers["Content-Security-Policy"]
    assert f"form-action 'self' {configured.url}" in policy
    response = client.post(
        f"/payouts/{world.contractor_x}/connect", data={"csrf_token": csrf_token(client, "/invoices/")}
    )
    assert response.status_code == 303
    onboarding = response.headers["Location"]
    assert onboarding.startswith(configured.url + "/connect/onboarding/")
    # Stripe's onboarding (the fake's page): its button finishes it and sends the person back.
    form = requests.get(onboarding, timeout=5)
    action = re.search(r'<form[^>]*action="([^"]+)"', form.text).group(1)
    session = re.search(r'name="session" value="([^"]+)"', form.text).group(1)
    back = requests.post(
        configured.url + action, data={"session": session, "action": "complete"}, allow_redirects=False, timeout=5
    )
    assert back.status_code == 303
    return_url = back.headers["Location"]
    assert return_url.endswith(f"/payouts/{world.contractor_x}/return")
    came_back = client.get(return_url.split("127.0.0.1:5000", 1)[-1])
    assert came_back.status_code == 303 and came_back.headers["Location"] == "/invoices/"
    html = client.get("/invoices/").get_data(as_text=True)
    assert any(message.startswith("Payout account: ready to be paid. Stripe can send") for message in flashes(html))
    assert "Ready to be paid" in visible_text(html)


def test_without_the_rail_the_payments_page_says_nothing_of_payout_accounts(app, login, world, configured):
    response = signed_in(app, login, world.contractor_x_user).get("/invoices/")
    assert "Payout account" not in response.get_data(as_text=True)
    assert "form-action 'self';" in response.headers["Content-Security-Policy"]  # nowhere else to post to


def test_a_refused_connection_says_why_on_the_page(app, login, world, admin_engine, configured):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    configured.fail_next("/v1/accounts", "500", times=5)
    client = signed_in(app, login, world.contractor_x_user)
    response = client.post(
        f"/payouts/{world.contractor_x}/connect", data={"csrf_token": csrf_token(client, "/invoices/")}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/invoices/"
    html = client.get("/invoices/").get_data(as_text=True)
    assert "Stripe could not start the onboarding" in html


def test_an_admin_connects_a_contractor_from_its_page(app, login, world, admin_engine, configured):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    admin = signed_in(app, login, world.admin)
    page = admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True)
    assert "Connect a payout account" in page
    response = admin.post(
        f"/payouts/{world.contractor_x}/connect",
        data={"csrf_token": csrf_token(admin, f"/admin/contractors/{world.contractor_x}")},
    )
    assert response.status_code == 303 and response.headers["Location"].startswith(configured.url)


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_y_user"])
def test_nobody_else_connects_a_contractors_account(app, login, world, admin_engine, configured, who):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    client = signed_in(app, login, getattr(world, who))
    response = client.post(f"/payouts/{world.contractor_x}/connect", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code in (403, 404)
    assert configured.accounts() == []


def test_settings_turn_the_rail_on_and_say_what_to_set_without_keys(app, login, world, admin_engine):
    admin = signed_in(app, login, world.admin)
    html = admin.get("/admin/settings").get_data(as_text=True)
    assert "Pay contractors through Stripe Connect" in html
    assert "set STRIPE_SECRET_KEY" in html  # the test server has no Stripe keys


def test_the_refresh_link_renews_an_existing_account_only(app, login, world, admin_engine, configured):
    """Stripe's refresh URL is a GET: it creates nothing, so a link followed by mistake opens no account."""
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    client = signed_in(app, login, world.contractor_x_user)
    response = client.get(f"/payouts/{world.contractor_x}/again")
    assert response.status_code == 303 and response.headers["Location"] == "/invoices/"
    assert configured.accounts() == []
    assert "No payout account is connected yet" in client.get("/invoices/").get_data(as_text=True)
    client.post(f"/payouts/{world.contractor_x}/connect", data={"csrf_token": csrf_token(client, "/invoices/")})
    renewed = client.get(f"/payouts/{world.contractor_x}/again")
    assert renewed.status_code == 303 and renewed.headers["Location"].startswith(configured.url + "/connect/")
    assert len(configured.accounts()) == 1
