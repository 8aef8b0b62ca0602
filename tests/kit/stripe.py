"""The Stripe rail in tests: the local fake of Stripe (backoffice.dev.stripe_fake) used through the real SDK, the
app and the worker pointed at it, and a contractor's payout account made ready the way a person would (onboarding,
then the return page's refresh)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from backoffice.dev.stripe_fake import StripeFake
from backoffice.services import payout_accounts
from kit.engagements import sign_in
from kit.money import party, set_org

BALANCE = 10_000_000  # the platform's available balance in each test's fake, in cents
KEY = "sk_test_suite"  # the worker's and the app's key (Stripe keeps idempotency keys per API key)
SECRET = "whsec_test_suite"  # the webhook endpoint's signing secret


@contextmanager
def running_fake(secret: str = "whsec_test_fake", *, balance: int = BALANCE) -> Iterator[StripeFake]:
    """A fake Stripe on 127.0.0.1 that sends webhooks only when a test delivers them."""
    with StripeFake(webhook_secret=secret, auto_deliver=False) as fake:
        fake.set_balance("usd", balance)
        yield fake


@contextmanager
def pointed_at(app, fake: StripeFake, monkeypatch, *, key: str = KEY, secret: str = SECRET) -> Iterator[StripeFake]:
    """The app's settings and the worker's environment (kit.jobs.run_jobs reads it) pointed at ``fake``."""
    settings = app.config["BACKOFFICE_SETTINGS"]
    app.config["BACKOFFICE_SETTINGS"] = dataclasses.replace(
        settings, stripe_secret_key=key, stripe_webhook_secret=secret, stripe_api_base=fake.url
    )
    monkeypatch.setenv("STRIPE_SECRET_KEY", key)
    monkeypatch.setenv("STRIPE_API_BASE", fake.url)
    try:
        yield fake
    finally:
        app.config["BACKOFFICE_SETTINGS"] = settings


def connect(act_as, world, fake: StripeFake, which: str = "x") -> str:
    """The contractor's user connects a payout account (onboarding not finished; the organization's Stripe rail
    must be on): its acct id."""
    p = party(world, which)
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    payout_accounts.start_onboarding(
        session, actor, p.contractor_id, rail=fake.client(), return_url="http://x/r", refresh_url="http://x/f"
    )
    return fake.accounts()[-1]["id"]


def ready_account(act_as, admin_engine, world, fake: StripeFake, which: str = "x") -> str:
    """The organization pays by Stripe and the contractor's connected account is ready (as after onboarding and
    the return page): its acct id."""
    p = party(world, which)
    set_org(admin_engine, p.org_id, stripe_rail_enabled=True)
    account = connect(act_as, world, fake, which)
    fake.make_ready(account)
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    payout_accounts.refresh_readiness(session, actor, p.contractor_id, rail=fake.client())
    return account


# The fixtures (tests/conftest.py loads this module as a plugin): the fake, the app and the worker pointed at it, and
# contractor X's account made ready in org A, which pays by Stripe.


@pytest.fixture
def fake():
    with running_fake(SECRET) as running:
        yield running


@pytest.fixture
def configured(app, fake, monkeypatch):
    with pointed_at(app, fake, monkeypatch):
        yield fake


@pytest.fixture
def ready(world, act_as, admin_engine, configured):
    """Org A pays by Stripe; contractor X has a connected account that Stripe made ready: its acct id."""
    return ready_account(act_as, admin_engine, world, configured)
