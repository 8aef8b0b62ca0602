"""A contractor connects a payout account on the Stripe rail (issue 17, item 2; DESIGN.md section 7).

An Express connected account with the ``transfers`` capability (metadata: organization and contractor), then a
one-time Account Link for Stripe's onboarding. The contractor's own user or an admin connects it; staff and the
contractor read how ready it is, in words. Stripe is called outside the database transaction (a network call
never holds a lock), with an idempotency key per organization and contractor, so two clicks at once, or a retry
after a lost answer, get one account back and the database one row (its unique key decides)."""

from __future__ import annotations

import uuid

import stripe
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.payouts import AccountState, Rail, Readiness
from backoffice.domain.roles import STAFF_ROLES, Role
from backoffice.errors import Conflict, Forbidden
from backoffice.models import Contractor, Organization, PayoutAccount
from backoffice.services import audit
from backoffice.services.stripe_rail import refusal
from backoffice.services.validation import get_visible


def payout_account(session: Session, contractor_id: uuid.UUID) -> PayoutAccount | None:
    """The contractor's Stripe account, as RLS lets the caller see it."""
    return session.execute(
        select(PayoutAccount).where(PayoutAccount.contractor_id == contractor_id, PayoutAccount.rail == Rail.STRIPE)
    ).scalar_one_or_none()


def state_of(account: PayoutAccount | None) -> AccountState | None:
    if account is None:
        return None
    return AccountState(
        account.transfers_active, account.payouts_enabled, account.details_submitted, tuple(account.currently_due)
    )


def readiness_of(account: PayoutAccount | None) -> Readiness:
    state = state_of(account)
    return state.readiness if state else Readiness.NOT_CONNECTED


def _contractor_for(session: Session, actor: Actor, contractor_id) -> Contractor:
    """The contractor whose account ``actor`` may connect: its own user, or an admin. Another's is not found."""
    contractor = get_visible(session, Contractor, contractor_id)
    if actor.role == Role.CONTRACTOR and actor.contractor_id == contractor.id:
        return contractor
    if actor.role == Role.ADMIN:
        return contractor
    raise Forbidden("A payout account is connected by the contractor's own user or an admin.")


def start_onboarding(
    session: Session,
    actor: Actor,
    contractor_id,
    *,
    rail: stripe.StripeClient,
    return_url: str,
    refresh_url: str,
    create: bool = True,
) -> str:
    """The URL of a one-time Stripe onboarding link for the contractor's account, creating the account first if
    it has none (unless ``create`` is false: Stripe's refresh URL, a GET, only renews a link). Raises NotFound,
    Forbidden, or Conflict (the rail is off in Settings; no account and not to create one; Stripe refused)."""
    with unit_of_work(session):
        contractor = _contractor_for(session, actor, contractor_id)
        org = session.get(Organization, actor.org_id)
        if not org.stripe_rail_enabled:
            raise Conflict("Payments through Stripe are turned off for this organization (an admin turns them on).")
        account = payout_account(session, contractor.id)
        external_id = account.external_id if account else None
        # The contractor's id as the database has it, whatever form the caller gave: the idempotency key and the
        # metadata must be the same for two clicks.
        contractor_id, email, name = contractor.id, contractor.email, contractor.legal_name
        if external_id is None and not create:
            raise Conflict("No payout account is connected yet: connect it with the button on this page.")
    try:
        if external_id is None:
            created = rail.v1.accounts.create(
                params={
                    "type": "express",
                    "email": email,
                    "capabilities": {"transfers": {"requested": True}},
                    "business_profile": {"name": name},
                    "metadata": {"org_id": str(actor.org_id), "contractor_id": str(contractor_id)},
                },
                options={"idempotency_key": f"payout-account:{actor.org_id}:{contractor_id}"},
            )
            external_id = created.id
            _record_account(session, actor, contractor_id, created)
        link = rail.v1.account_links.create(
            params={
                "account": external_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    except stripe.StripeError as error:
        raise Conflict(f"Stripe could not start the onboarding: {refusal(error)}") from None
    return link.url


def _record_account(session: Session, actor: Actor, contractor_id, created) -> None:
    with unit_of_work(session):
        state = state_from_stripe(created)
        inserted = session.execute(
            insert(PayoutAccount)
            .values(
                org_id=actor.org_id,
                contractor_id=contractor_id,
                rail=Rail.STRIPE.value,
                external_id=created.id,
                transfers_active=state.transfers_active,
                payouts_enabled=state.payouts_enabled,
                details_submitted=state.details_submitted,
                currently_due=list(state.currently_due),
                connected_by=actor.user_id,
            )
            .on_conflict_do_nothing(index_elements=["org_id", "contractor_id", "rail"])
            .returning(PayoutAccount.id)
        ).scalar_one_or_none()
        # None: a click at the same moment recorded the same account first (one account, one row, one event).
        if inserted is not None:
            audit.record(
                session,
                actor,
                "payout_account.connected",
                "contractor",
                contractor_id,
                {"rail": Rail.STRIPE.value, "account": created.id},
            )


def refresh_readiness(session: Session, actor: Actor, contractor_id, *, rail: stripe.StripeClient) -> AccountState:
    """Ask Stripe how ready the contractor's account is now and keep it (the onboarding's return page). The
    contractor's own user or staff. Raises NotFound (no account, or not theirs) or Conflict (Stripe refused)."""
    with unit_of_work(session):
        contractor = get_visible(session, Contractor, contractor_id)
        if actor.role not in STAFF_ROLES and actor.contractor_id != contractor.id:
            raise Forbidden()
        account = payout_account(session, contractor.id)
        if account is None:
            raise Conflict("This contractor has not connected a payout account yet.")
        external_id = account.external_id
    try:
        retrieved = rail.v1.accounts.retrieve(external_id)
    except stripe.StripeError as error:
        raise Conflict(f"Stripe could not say how the account stands: {refusal(error)}") from None
    state = state_from_stripe(retrieved)
    store_state(session, actor, contractor.id, external_id, state)
    return state


def store_state(session: Session, actor: Actor, contractor_id, external_id: str, state: AccountState) -> bool:
    """Keep what Stripe says of the account now (the return page; the worker applying account.updated), with an
    audit event when it changed. Returns whether it changed."""
    with unit_of_work(session):
        account = session.execute(
            select(PayoutAccount)
            .where(PayoutAccount.contractor_id == contractor_id, PayoutAccount.rail == Rail.STRIPE)
            .with_for_update()
        ).scalar_one()
        if state_of(account) == state:
            return False
        account.transfers_active = state.transfers_active
        account.payouts_enabled = state.payouts_enabled
        account.details_submitted = state.details_submitted
        account.currently_due = list(state.currently_due)
        account.updated_at = func.now()
        session.flush()
        audit.record(
            session,
            actor,
            "payout_account.updated",
            "contractor",
            contractor_id,
            {
                "rail": Rail.STRIPE.value,
                "account": external_id,
                "readiness": state.readiness.value,
                "currently_due": list(state.currently_due),
            },
        )
    return True


def state_from_stripe(account) -> AccountState:
    data = account.to_dict()  # the SDK's objects are not dicts (v16)
    capabilities = data.get("capabilities") or {}
    requirements = data.get("requirements") or {}
    return AccountState(
        transfers_active=capabilities.get("transfers") == "active",
        payouts_enabled=bool(data.get("payouts_enabled")),
        details_submitted=bool(data.get("details_submitted")),
        currently_due=tuple(requirements.get("currently_due") or ())[:200],
    )
