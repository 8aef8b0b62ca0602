"""The Stripe client the payout rail calls (DESIGN.md section 7). One place builds it from the settings, so a
test or the offline demo points it at a local fake (STRIPE_API_BASE; backoffice.dev.stripe_fake) the same way
production points it at Stripe. No global SDK state: each caller gets its own ``StripeClient``."""

from __future__ import annotations

import stripe

from backoffice.config import Settings
from backoffice.errors import Conflict

NOT_CONFIGURED = (
    "The Stripe payout rail is not configured: set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET for its events)"
    " in the server's environment and restart it."
)


def client_for(settings: Settings) -> stripe.StripeClient:
    """A Stripe client for these settings; Conflict (saying what to set) when the rail is not configured."""
    if not settings.stripe_configured:
        raise Conflict(NOT_CONFIGURED)
    base = settings.stripe_api_base
    addresses = {"api": base, "connect": base, "files": base} if base else None
    # Retries keep the request's idempotency key (the SDK sends the same one again).
    return stripe.StripeClient(settings.stripe_secret_key, base_addresses=addresses, max_network_retries=2)


def refusal(error: stripe.StripeError) -> str:
    """What Stripe said, for a page: its own message when it gave one."""
    return getattr(error, "user_message", None) or str(error) or "Stripe refused the request."


class RailUnavailable(Exception):
    """Stripe did not answer as it should (a timeout, a 5xx, a 429 once the SDK's own retries are spent): the job
    is tried again later, a transfer with the same idempotency key."""
