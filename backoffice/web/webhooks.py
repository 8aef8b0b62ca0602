"""Webhooks from payment rails (issue 17, item 4): ``POST /webhooks/stripe``. No session and no CSRF token (Stripe
signs instead): the signature is verified with the SDK against STRIPE_WEBHOOK_SECRET, five minutes' tolerance;
a bad, missing or stale one is a 400 and nothing is stored. A verified event is stored once by its id and
applied by a job (services/rail_events.py); a repeat is a 200 that changes nothing."""

from __future__ import annotations

import stripe
from flask import Blueprint, current_app, request

from backoffice import csrf
from backoffice.services import rail_events
from backoffice.web.context import db

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

TOLERANCE_SECONDS = 300


@bp.route("/stripe", methods=["POST"])
@csrf.exempt
def stripe_events():
    secret = current_app.config["BACKOFFICE_SETTINGS"].stripe_webhook_secret
    if not secret:
        return "Stripe webhooks are not configured here: set STRIPE_WEBHOOK_SECRET.\n", 503, _TEXT
    payload = request.get_data()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("Stripe-Signature", ""), secret, tolerance=TOLERANCE_SECONDS
        )
    except (ValueError, stripe.SignatureVerificationError):
        return "The signature does not verify.\n", 400, _TEXT
    outcome = rail_events.receive(db(), event.to_dict())
    return f"{outcome}\n", 200, _TEXT


_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
