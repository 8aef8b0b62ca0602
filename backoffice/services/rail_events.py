"""A payment rail's webhook events (issue 17, item 4): received once by their id, applied by the worker.

The web verifies an event's signature (web/webhooks.py) and hands it to ``receive``, which stores it for the
organization whose payout account it concerns and queues its application in the same transaction
(``rail_event_receive()``, sql/rails.sql): a repeat is answered and changes nothing. ``apply`` is the worker's:
an ``account.updated`` asks Stripe how the account stands *now* and keeps that, so duplicate and out-of-order
events converge on Stripe's current word; a connected account's ``payout.paid`` or ``payout.failed`` tells its
contractor the money reached the bank, or why not; a ``transfer.reversed`` reverses the payment the transfer made
(services/stripe_transfers.reverse, from Stripe's own copy of the transfer). Other types are recorded with what was
done about them."""

from __future__ import annotations

import json
import re
import uuid

import stripe
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.payouts import Rail
from backoffice.jobs import queue
from backoffice.models import PayoutAccount, RailEvent
from backoffice.services import payout_accounts, stripe_transfers
from backoffice.services.stripe_rail import RailUnavailable, refusal


def account_of(event: dict) -> str | None:
    """The connected account an event is about: Connect events name it; an account's own events are it."""
    if event.get("account"):
        return event["account"]
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") == "account":
        return obj.get("id")
    if obj.get("object") == "transfer":
        return obj.get("destination")
    return None


# What rail_events' CHECKs accept (revision 0023): an event of another shape is answered, never stored.
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9]{1,64}")
_TYPE = re.compile(r"[a-z_.]{3,100}")
_ACCOUNT = re.compile(r"acct_[A-Za-z0-9]{1,64}")


def receive(session: Session, event: dict) -> str:
    """Store a verified Stripe event once and queue its application: 'stored', 'repeat', 'unknown' (no payout
    account here is the one it concerns) or 'ignored' (not an event this app keeps, e.g. a v2 event type);
    nothing is kept for the last two."""
    if not (_EVENT_ID.fullmatch(str(event.get("id", ""))) and _TYPE.fullmatch(str(event.get("type", "")))):
        return "ignored"
    account = account_of(event)
    if not account or not _ACCOUNT.fullmatch(str(account)):
        return "unknown"
    with unit_of_work(session):
        return session.execute(
            text("select rail_event_receive(:rail, :event_id, :type, :account, cast(:payload as jsonb))"),
            {
                "rail": Rail.STRIPE.value,
                "event_id": event["id"],
                "type": event["type"],
                "account": account,
                "payload": json.dumps(event),
            },
        ).scalar_one()


def apply(session: Session, actor: Actor, rail_event_id: uuid.UUID, *, rail: stripe.StripeClient | None) -> str:
    """Apply one stored event (the worker, in its organization); returns what was done, also kept on the event.
    Applied once: a retry of the job finds it applied and does nothing."""
    with unit_of_work(session):
        event = session.get(RailEvent, (actor.org_id, rail_event_id))
        if event is None:
            return "no such event"
        if event.applied_at is not None:
            return event.outcome
        kind, account_id = event.type, event.account
    if kind == "account.updated":
        outcome = _account_updated(session, actor, account_id, rail)
    elif kind in ("payout.paid", "payout.failed"):
        outcome = _payout(session, actor, rail_event_id, kind, rail)
    elif kind == "transfer.reversed":
        outcome = _transfer_reversed(session, actor, rail_event_id, rail)
    else:
        outcome = f"{kind}: recorded; nothing in this release acts on it"
    with unit_of_work(session):
        event = session.execute(
            select(RailEvent).where(RailEvent.org_id == actor.org_id, RailEvent.id == rail_event_id).with_for_update()
        ).scalar_one()
        if event.applied_at is None:
            event.applied_at = func.now()
            event.outcome = outcome[:500]
        return event.outcome


def _account_updated(session: Session, actor: Actor, account_id: str, rail: stripe.StripeClient | None) -> str:
    with unit_of_work(session):
        account = session.execute(
            select(PayoutAccount).where(PayoutAccount.rail == Rail.STRIPE, PayoutAccount.external_id == account_id)
        ).scalar_one_or_none()
        contractor_id = account.contractor_id if account else None
    if contractor_id is None:
        return "account.updated: no payout account with this id"
    if rail is None:
        return "account.updated: the Stripe rail is not configured here; not asked"
    try:
        retrieved = rail.v1.accounts.retrieve(account_id)
    except stripe.StripeError as error:
        raise RailUnavailable(refusal(error)) from None
    state = payout_accounts.state_from_stripe(retrieved)
    changed = payout_accounts.store_state(session, actor, contractor_id, account_id, state)
    return f"account.updated: {state.readiness.label.lower()}{'' if changed else ' (unchanged)'}"


def _payout(
    session: Session, actor: Actor, rail_event_id: uuid.UUID, kind: str, rail: stripe.StripeClient | None
) -> str:
    """The contractor is told, once (the notice is keyed by the payout: notification_events._payout), what
    Stripe's own copy of the event says: rail_event_receive() stores whatever it is given, and its words reach a
    person, so the event is read back from Stripe first and told only if Stripe's copy says the same."""
    with unit_of_work(session):
        event = session.execute(
            select(RailEvent).where(RailEvent.org_id == actor.org_id, RailEvent.id == rail_event_id)
        ).scalar_one()
        event_id, account, told = event.event_id, event.account, _payout_facts(event.payload)
    if rail is None:
        return f"{kind}: the Stripe rail is not configured here; not told"
    try:
        original = rail.v1.events.retrieve(event_id, options={"stripe_account": account}).to_dict()
    except stripe.InvalidRequestError:
        return f"{kind}: Stripe has no such event for this account; not told"
    except stripe.StripeError as error:
        raise RailUnavailable(refusal(error)) from None
    if original.get("type") != kind or _payout_facts(original) != told:
        return f"{kind}: what was received differs from Stripe's copy; not told"
    with unit_of_work(session):
        queue.notify(session, actor.org_id, kind, rail_event_id)
    return f"{kind}: the contractor is told"


def _transfer_reversed(
    session: Session, actor: Actor, rail_event_id: uuid.UUID, rail: stripe.StripeClient | None
) -> str:
    with unit_of_work(session):
        event = session.execute(
            select(RailEvent).where(RailEvent.org_id == actor.org_id, RailEvent.id == rail_event_id)
        ).scalar_one()
        transfer_id = ((event.payload.get("data") or {}).get("object") or {}).get("id")
    if not isinstance(transfer_id, str) or not transfer_id.startswith("tr_"):
        return "transfer.reversed: names no transfer; nothing done"
    if rail is None:
        return "transfer.reversed: the Stripe rail is not configured here; not applied"
    return stripe_transfers.reverse(session, actor, transfer_id, rail=rail)


def _payout_facts(event: dict) -> tuple:
    payout = (event.get("data") or {}).get("object") or {}
    return tuple(payout.get(k) for k in ("id", "amount", "currency", "arrival_date", "status", "failure_code"))
