"""Payout accounts on the Stripe rail (issue 17, item 2): connect one (Stripe's onboarding), come back from it,
and read how ready it is. The contractor's own user does it from its Payments page, an admin from the
contractor's page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, make_response, redirect, url_for
from flask_login import login_required

from backoffice.domain.payouts import AccountState, Readiness
from backoffice.domain.roles import Role
from backoffice.errors import Conflict
from backoffice.services import organizations, payout_accounts
from backoffice.services.stripe_rail import NOT_CONFIGURED, client_for
from backoffice.services.validation import parse_id
from backoffice.web import CONTENT_SECURITY_POLICY
from backoffice.web.context import actor, db

bp = Blueprint("payouts", __name__, url_prefix="/payouts")


@dataclass(frozen=True)
class PayoutView:
    """What payouts/_account.html shows of a contractor's payout account."""

    contractor_id: uuid.UUID
    shown: bool  # the organization pays through Stripe, or the contractor has an account already
    readiness: Readiness
    state: AccountState | None
    can_connect: bool
    note: str | None


def payout_view(contractor_id: uuid.UUID) -> PayoutView:
    me = actor()
    org = organizations.current_organization(db(), me)
    account = payout_accounts.payout_account(db(), contractor_id)
    configured = current_app.config["BACKOFFICE_SETTINGS"].stripe_configured
    may = me.role == Role.ADMIN or (me.role == Role.CONTRACTOR and me.contractor_id == contractor_id)
    note = None
    if org.stripe_rail_enabled and not configured:
        note = NOT_CONFIGURED if me.role == Role.ADMIN else "Connecting a payout account is not available yet."
    return PayoutView(
        contractor_id=contractor_id,
        shown=org.stripe_rail_enabled or account is not None,
        readiness=payout_accounts.readiness_of(account),
        state=payout_accounts.state_of(account),
        can_connect=may and org.stripe_rail_enabled and configured,
        note=note,
    )


# Where Stripe's hosted onboarding lives (an Account Link's URL), unless STRIPE_API_BASE points elsewhere.
STRIPE_ONBOARDING = "https://connect.stripe.com"


def onboarding_origin() -> str:
    base = current_app.config["BACKOFFICE_SETTINGS"].stripe_api_base
    if not base:
        return STRIPE_ONBOARDING
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def with_onboarding(rendered, payout: PayoutView):
    """A page with the connect button lets that form lead on to Stripe's onboarding: the browser holds a form's
    whole redirect chain to the page's CSP form-action ('self' everywhere else: web/__init__.py)."""
    response = make_response(rendered)
    if payout.can_connect:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {onboarding_origin()}"
        )
    return response


def _home(contractor_id) -> str:
    """Where the person came from: a contractor's Payments page, or the contractor's page for staff."""
    if actor().role == Role.CONTRACTOR:
        return url_for("payments.mine")
    return url_for("admin.contractor", contractor_id=contractor_id)


def _absolute(endpoint: str, **values) -> str:
    # Stripe sends the person back here: the configured base URL, never the Host header of this request.
    return current_app.config["BASE_URL"] + url_for(endpoint, **values)


@bp.route("/<contractor_id>/connect", methods=["POST"])
@login_required
def connect(contractor_id):
    return _onboard(contractor_id, create=True)


@bp.route("/<contractor_id>/again")
@login_required
def again(contractor_id):
    """Stripe's refresh URL: the link expired or was used; a new one, at once. A GET, as Stripe sends it, so it
    only renews the link of an account that exists: creating one takes the page's POST (and its CSRF token)."""
    return _onboard(contractor_id, create=False)


def _onboard(contractor_id, *, create: bool):
    contractor_id = parse_id(contractor_id) or contractor_id
    try:
        url = payout_accounts.start_onboarding(
            db(),
            actor(),
            contractor_id,
            rail=client_for(current_app.config["BACKOFFICE_SETTINGS"]),
            return_url=_absolute("payouts.came_back", contractor_id=contractor_id),
            refresh_url=_absolute("payouts.again", contractor_id=contractor_id),
            create=create,
        )
    except Conflict as refused:
        flash(str(refused), "error")
        return redirect(_home(contractor_id), code=303)
    return redirect(url, code=303)


@bp.route("/<contractor_id>/return")
@login_required
def came_back(contractor_id):
    """Stripe's return URL: ask Stripe how the account stands now and say it."""
    contractor_id = parse_id(contractor_id) or contractor_id
    try:
        state = payout_accounts.refresh_readiness(
            db(), actor(), contractor_id, rail=client_for(current_app.config["BACKOFFICE_SETTINGS"])
        )
    except Conflict as refused:
        flash(str(refused), "error")
    else:
        ready = state.readiness is Readiness.READY
        flash(f"Payout account: {state.readiness.label.lower()}. {state.sentence()}", "success" if ready else "info")
    return redirect(_home(contractor_id), code=303)
