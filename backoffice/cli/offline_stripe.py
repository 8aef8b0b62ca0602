"""`serve --stripe-fake`: the Stripe rail tried offline. The local Stripe fake (backoffice.dev.stripe_fake) runs
inside `serve`, on a free port of 127.0.0.1; the web processes and the job worker reach it through STRIPE_API_BASE
and the other STRIPE_* variables, set here before they start; its webhooks go to the app's /webhooks/stripe. Its
state is kept in the data directory (SavedStripeFake), beside the database that names the accounts and transfers
it made: a fake that forgot them at each restart would refuse to pay the demo's contractor."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy.orm import Session

from backoffice.db import make_engine, make_session_factory
from backoffice.dev.stripe_fake import DEFAULT_API_KEY, SavedStripeFake
from backoffice.services import demo_stripe
from backoffice.services.demo_stripe import StripeDemo

STATE_FILE = "stripe_fake.json"
# The platform's balance in a new fake, per currency (cents): room for the demo's payments and a visitor's.
OPENING_BALANCE = 10_000_000
VARIABLES = ("STRIPE_API_BASE", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")


@dataclass
class OfflineStripe:
    fake: SavedStripeFake
    overridden: tuple[str, ...]  # STRIPE_* variables the environment had, which the fake's replace
    seeded: StripeDemo | None = None  # what this start seeded of the demo's Stripe rail
    unknown: set[str] = field(default_factory=set)  # accounts the database names that the fake does not know


@contextmanager
def running_fake(data_dir: Path, app_url: str) -> Iterator[OfflineStripe]:
    """The fake, started (its saved state restored, or a new one with money in its balance) and named in this
    process's environment, which the web processes and the job worker inherit; stopped on the way out."""
    overridden = tuple(name for name in VARIABLES if os.environ.get(name))
    data_dir.mkdir(parents=True, exist_ok=True)
    fake = SavedStripeFake(data_dir / STATE_FILE, f"{app_url}/webhooks/stripe", f"whsec_{secrets.token_hex(24)}")
    fake.start()
    started_by = os.getpid()
    try:
        if not fake.restored:
            for currency in ("usd", "eur"):
                fake.set_balance(currency, OPENING_BALANCE)
        os.environ |= {
            "STRIPE_API_BASE": fake.url,
            "STRIPE_SECRET_KEY": DEFAULT_API_KEY,
            "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
        }
        yield OfflineStripe(fake, overridden)
    finally:
        # gunicorn's web processes are forks of this one and unwind through here too; only this one runs the fake.
        if os.getpid() == started_by:
            fake.stop()


def prepare(offline: OfflineStripe, session: Session, worker_url: str, base_url: str, *, demo: bool) -> None:
    """With the demo, seed its Stripe rail (services/demo_stripe.py; once per database), then find the Stripe
    accounts the database names that the fake does not know. ``session``: the owner role's."""
    fake = offline.fake
    if demo:
        engine = make_engine(worker_url)
        try:
            with make_session_factory(engine)() as worker:
                offline.seeded = demo_stripe.seed(
                    session, worker=worker, rail=fake.client(), complete_onboarding=fake.make_ready, base_url=base_url
                )
        finally:
            engine.dispose()
    offline.unknown = demo_stripe.accounts_named(session) - {account["id"] for account in fake.accounts()}


def say(offline: OfflineStripe) -> None:
    fake, seeded, unknown = offline.fake, offline.seeded, offline.unknown
    click.echo(
        f"Stripe: a local fake at {fake.url} (--stripe-fake), its state kept in {fake.state_file}; "
        f"its webhooks go to {fake.webhook_url}."
        + (f" {', '.join(offline.overridden)} from the environment not used." if offline.overridden else "")
    )
    if seeded is not None:
        paid = f"; {seeded.invoice_number} was paid by Stripe ({seeded.transfer_id})" if seeded.transfer_id else ""
        click.echo(f"  {seeded.contractor} has a ready Stripe payout account ({seeded.account_id}){paid}.")
    if unknown:
        click.echo(
            f"Warning: the database names {len(unknown)} Stripe account(s) the fake does not know "
            f"({', '.join(sorted(unknown)[:3])}): {fake.state_file} was removed or belongs to another database. "
            "Payments to them will be refused; start with a new BACKOFFICE_DATA_DIR to try the rail afresh.",
            err=True,
        )
