"""The demo's Stripe rail, for ``backoffice serve --stripe-fake``: the demo organization pays through Stripe,
Northwind Design (nina@northwind.example) has connected a payout account that Stripe made ready, and its oldest
authorized invoice was paid by a transfer (reference ``tr_…``); its other authorized invoices stay for a visitor
to send. All of it through the services a person and the worker use: the admin's settings, the contractor's
onboarding and its return page, finance's send and the worker's ``pay_out``."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import set_context
from backoffice.domain.invoices import InvoiceStatus
from backoffice.domain.payouts import Rail, Readiness
from backoffice.domain.roles import Role
from backoffice.models import Invoice, Membership, Organization, PayoutAccount, PayoutAttempt, User
from backoffice.services import links, organizations, payout_accounts, stripe_payouts, stripe_transfers
from backoffice.services.demo import DEMO_ORG
from backoffice.services.notifications import worker_actor

ADMIN = "admin@acme.example"
FINANCE = "finance@acme.example"
CONTRACTOR = "nina@northwind.example"


@dataclass(frozen=True)
class StripeDemo:
    contractor: str  # the contractor user's email
    account_id: str  # acct_…
    invoice_number: str | None  # the invoice paid through Stripe (None: none was authorized and unpaid)
    transfer_id: str | None  # tr_…, the payment's reference


def seed(
    session: Session,
    *,
    worker: Session,
    rail: stripe.StripeClient,
    complete_onboarding: Callable[[str], object],
    base_url: str,
) -> StripeDemo | None:
    """Seed the demo's Stripe rail: ``session`` is the owner role's (as for the rest of the demo), ``worker`` a
    session of the worker role, which makes the transfer as the ``pay_out`` job would; both commit through the
    services. ``complete_onboarding(acct_id)`` does what the contractor would do on Stripe's onboarding pages (the
    fake's ``make_ready``). Once per demo: None, doing nothing, when there is no demo organization or its
    contractor has a payout account already."""
    org = session.execute(select(Organization).where(Organization.name == DEMO_ORG)).scalar_one_or_none()
    if org is None:
        return None
    admin, finance, nina = (_member(session, org.id, email) for email in (ADMIN, FINANCE, CONTRACTOR))
    if payout_accounts.payout_account(session, nina.contractor_id) is not None:
        return None
    if not org.stripe_rail_enabled:
        current = {f.name: getattr(org, f.name) for f in dataclasses.fields(organizations.OrgSettings)}
        organizations.update_settings(
            session, admin, organizations.OrgSettings(**current | {"stripe_rail_enabled": True})
        )

    # Nobody follows the onboarding link: complete_onboarding stands for the contractor's visit, and the return
    # page's service then asks Stripe how the account stands (its account.updated webhook finds no app yet).
    back = f"{base_url}{links.my_payments()}"
    payout_accounts.start_onboarding(session, nina, nina.contractor_id, rail=rail, return_url=back, refresh_url=back)
    account_id = payout_accounts.payout_account(session, nina.contractor_id).external_id
    complete_onboarding(account_id)
    state = payout_accounts.refresh_readiness(session, nina, nina.contractor_id, rail=rail)
    if state.readiness is not Readiness.READY:
        raise RuntimeError(f"the demo's payout account {account_id} is not ready: {state.sentence()}")

    # What finance would see as payable by Stripe now, most due first: the first is paid, the others stay.
    authorized = session.execute(
        select(Invoice.id).where(
            Invoice.org_id == org.id,
            Invoice.contractor_id == nina.contractor_id,
            Invoice.status == InvoiceStatus.APPROVED.value,
        )
    ).scalars()
    ready = stripe_payouts.plan(session, finance, list(authorized)).ready
    if not ready:
        return StripeDemo(CONTRACTOR, account_id, None, None)
    invoice_number = ready[0].invoice_number
    sent = stripe_payouts.send(session, finance, [ready[0].invoice_id], configured=True)
    # The worker's job, run here as the worker role so the demo opens with the payment made; the job the send
    # queued then finds it done.
    attempt_id = session.execute(
        select(PayoutAttempt.id).where(PayoutAttempt.org_id == org.id, PayoutAttempt.run_id == sent.run_id)
    ).scalar_one()
    set_context(worker, user_id=None, org_id=org.id)
    outcome = stripe_transfers.pay_out(worker, worker_actor(org.id), attempt_id, rail=rail)
    if not outcome.startswith("paid: "):
        raise RuntimeError(f"the demo's payment of {invoice_number} through Stripe failed: {outcome}")
    return StripeDemo(CONTRACTOR, account_id, invoice_number, outcome.removeprefix("paid: "))


def accounts_named(session: Session) -> set[str]:
    """Every Stripe account id the database names (owner role: every organization's)."""
    return set(
        session.execute(select(PayoutAccount.external_id).where(PayoutAccount.rail == Rail.STRIPE.value)).scalars()
    )


def _member(session: Session, org_id: uuid.UUID, email: str) -> Actor:
    user, membership = session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, User.email == email)
    ).one()
    return Actor(user.id, org_id, Role(membership.role), user.email, user.name, contractor_id=membership.contractor_id)
