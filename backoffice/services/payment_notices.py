"""What the payments' events tell whom (DESIGN.md section 6; issue 17): a payment run on any rail, a connected
account's payouts, the payments Stripe refused or reversed, and what the reconciliation found. Builders like those of
services/notification_events, registered there with @builds (which imports this module last)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from backoffice import formatting
from backoffice.domain.payouts import payout_failure_words
from backoffice.models import Invoice, Payment, PayoutAccount, RailEvent
from backoffice.services import links
from backoffice.services.notification_events import (
    Notice,
    OrgVoice,
    admin_people,
    builds,
    contractor_name,
    contractor_people,
    finance_people,
    person,
)
from backoffice.services.validation import get_visible


@builds("payment.run")
def _payment_run(session, org, run_id, event):
    """A payment run, whatever its rail (services/remittance_advice): each contractor paid hears once, every invoice
    paid to it listed, with the link to its remittance advice; each engagement owner once, about their engagements'."""
    from backoffice.services.remittance_advice import Remittance, remittances

    run_id = uuid.UUID(str(run_id))
    paid = remittances(session, run_id)
    notices = [_paid_to_contractor(session, org, event, r) for r in paid]
    by_owner: dict[uuid.UUID, list] = {}
    for r in paid:
        name = contractor_name(session, r.contractor_id)
        for line in r.lines:
            by_owner.setdefault(line.owner_user_id, []).append((name, line))
    for owner_id, named in by_owner.items():
        if owner := person(session, owner_id):
            lines = Remittance(run_id, None, tuple(line for _, line in named))
            notices.append(_paid_on_engagements(org, event, owner, [name for name, _ in named], lines))
    return notices


def _paid_line(r, line, amounts: str) -> tuple[str, str]:
    """An invoice the run paid, as a fact: its number, then what it was for and the amounts (and its own reference,
    when the run's payments have one each)."""
    return line.invoice_number, f"{line.description}: {amounts}" + (
        "" if r.reference else f" (reference {line.reference})"
    )


def _total_paid(org: OrgVoice, r) -> str:
    return ", ".join(org.money(net, currency) for currency, (_, _, net) in r.totals().items())


def _run_facts(org: OrgVoice, r) -> tuple[tuple[str, str], ...]:
    first, last = r.paid_on
    return (
        ("Total paid", _total_paid(org, r)),
        ("Paid on", org.day(first) if first == last else f"{org.day(first)} to {org.day(last)}"),
        ("Reference", r.reference or "each invoice's, above"),
        ("Paid by", r.paid_by),
    )


def _paid_to_contractor(session, org, event, r):
    total, n = _total_paid(org, r), len(r.lines)

    def amounts(line) -> str:
        c = line.currency
        return (
            f"gross {org.money(line.gross_minor, c)}, retainage {org.money(line.retainage_minor, c)}, "
            f"net {org.money(line.net_minor, c)}"
        )

    return Notice(
        event,
        f"{event}:{r.run_id}:{r.contractor_id}",
        contractor_people(session, r.contractor_id),
        subject=f"Paid: {r.lines[0].invoice_number if n == 1 else formatting.count(n, 'invoice')} — {total}",
        lead=f"{org.name} paid you {total} for {formatting.count(n, 'invoice')}. The remittance advice lists each "
        "invoice's gross, retainage withheld and net paid.",
        facts=(*(_paid_line(r, line, amounts(line)) for line in r.lines), *_run_facts(org, r)),
        path=links.remittance_advice(r.run_id, r.contractor_id),
        action="Download the remittance advice",
        entity=("payment_run", str(r.run_id)),
    )


def _paid_on_engagements(org, event, owner, names, r):
    """An engagement owner's notice: the run's payments on their engagements (``r``), to whichever contractors."""
    total, first, n = _total_paid(org, r), r.lines[0], len(r.lines)
    if n == 1:
        subject = f"Paid: {first.invoice_number} to {names[0]} — {total}"
        lead = f"{first.invoice_number} to {names[0]} for “{first.engagement_title}” is paid ({r.paid_by})."
        path, action = links.invoice(first.invoice_id), "See the payment"
    else:
        subject = f"Paid: {formatting.count(n, 'invoice')} on your engagements — {total}"
        lead = f"{formatting.count(n, 'invoice')} on your engagements are paid ({r.paid_by})."
        if len({line.engagement_id for line in r.lines}) == 1:
            path, action = links.engagement(first.engagement_id), "Open the engagement"
        else:
            path, action = links.invoice(first.invoice_id), "See the first payment"
    return Notice(
        event,
        f"{event}:{r.run_id}:owner",
        owner,
        subject=subject,
        lead=lead,
        facts=(
            *(
                _paid_line(r, line, f"{org.money(line.net_minor, line.currency)} to {name}")
                for name, line in zip(names, r.lines, strict=True)
            ),
            *_run_facts(org, r),
        ),
        path=path,
        action=action,
        entity=("payment_run", str(r.run_id)),
    )


@builds("payout.paid", "payout.failed")
def _payout(session, org, rail_event_id, event):
    """A connected account's payout to its bank (Stripe's payout.paid or payout.failed, issue 17): its contractor's
    people are told the money reached the bank, or why it did not."""
    rail_event = session.execute(select(RailEvent).where(RailEvent.id == rail_event_id)).scalar_one()
    payout = (rail_event.payload.get("data") or {}).get("object") or {}
    account = session.execute(
        select(PayoutAccount).where(
            PayoutAccount.rail == rail_event.rail, PayoutAccount.external_id == rail_event.account
        )
    ).scalar_one()
    currency = str(payout.get("currency") or "usd").upper()
    amount = org.money(int(payout.get("amount") or 0), currency)
    arrival = payout.get("arrival_date")
    arrival_day = datetime.fromtimestamp(int(arrival), UTC).date() if arrival else None
    facts = [("Amount", amount), ("Stripe payout", str(payout.get("id") or "—"))]
    if event == "payout.paid":
        subject = f"{amount} paid out to your bank"
        lead = f"Stripe paid {amount} from your Stripe balance out to your bank account."
        if arrival_day:
            facts.append(("Expected in your bank by", org.day(arrival_day)))
    else:
        reason = payout_failure_words(payout.get("failure_code"))
        subject = f"A payout of {amount} to your bank failed"
        lead = (
            f"Stripe could not pay {amount} out to your bank: {reason}. The money stays in your Stripe balance; "
            "update your bank details at Stripe from your Payments page."
        )
        facts.append(("Why", reason))
    return [
        Notice(
            event,
            f"{event}:{payout.get('id') or rail_event.event_id}",
            contractor_people(session, account.contractor_id),
            subject=subject,
            lead=lead,
            facts=tuple(facts),
            path=links.my_payments(),
            action="See your payout account",
            entity=("contractor", str(account.contractor_id)),
        )
    ]


@builds("payout.refused")
def _payout_refused(session, org, run_id, event):
    """Finance hears once per payment run, when its last attempt ended, of every payment Stripe refused and why."""
    from backoffice.services.stripe_transfers import refused_in_run

    refused = refused_in_run(session, uuid.UUID(str(run_id)))
    if not refused:
        return []
    count = len(refused)
    facts = tuple((number, f"{org.money(amount, currency)}: {why}") for number, currency, amount, why in refused[:20])
    if count > 20:
        facts += (("And", f"{count - 20} more"),)
    return [
        Notice(
            event,
            f"{event}:{run_id}",
            finance_people(session) + admin_people(session),
            subject=f"Stripe refused {count} payment{'' if count == 1 else 's'}; on hold",
            lead=f"Stripe did not make {'this transfer' if count == 1 else 'these transfers'}. Each invoice is on hold "
            "with the reason; once it is fixed, release the hold and send it again (or pay it another way).",
            facts=facts,
            path=links.payments_on_hold(),
            action="See the payments on hold",
            entity=("payout_run", str(run_id)),
        )
    ]


@builds("payment.reversed")
def _reversed(session, org, payment_id, event):
    """Stripe reversed a transfer: the contractor and finance hear that the payment no longer stands."""
    p = get_visible(session, Payment, payment_id)
    invoice = session.get(Invoice, p.invoice_id)
    contractor = contractor_name(session, p.contractor_id)
    amount = org.money(p.amount_minor, p.currency)
    facts = (
        ("Invoice", invoice.invoice_number),
        ("Amount", amount),
        ("Stripe transfer", p.reference),
        ("Reversal", p.reversal_reference or "—"),
    )
    return [
        Notice(
            event,
            f"{event}:{p.id}",
            contractor_people(session, p.contractor_id),
            subject=f"Payment reversed: {invoice.invoice_number} — {amount}",
            lead=f"The transfer of {amount} for {invoice.invoice_number} was reversed at Stripe, so it no longer "
            f"counts as paid. {org.name}'s finance team has it on hold and will be in touch.",
            facts=facts,
            path=links.invoice(invoice.id),
            action="See the invoice",
            entity=("invoice", str(invoice.id)),
        ),
        Notice(
            event,
            f"{event}:{p.id}",
            finance_people(session) + admin_people(session),
            subject=f"Stripe reversed {invoice.invoice_number} to {contractor} — {amount}",
            lead=f"The transfer paying {invoice.invoice_number} to {contractor} was reversed at Stripe: the payment is "
            "reversed in the ledger and the invoice is on hold. Release the hold to pay it again.",
            facts=facts,
            path=links.invoice(invoice.id),
            action="See the invoice",
            entity=("invoice", str(invoice.id)),
        ),
    ]


@builds("reconciliation.findings")
def _reconciliation_findings(session, org, run_id, event):
    """Finance and admins hear when a reconciliation with Stripe finds something the run before did not."""
    from backoffice.queries.reconciliation import findings_of

    rows = findings_of(session, uuid.UUID(str(run_id)))
    if not rows:
        return []
    count = len(rows)
    facts = tuple((r.finding.kind.label, r.finding.words) for r in rows[:10])
    if count > 10:
        facts += (("And", f"{count - 10} more on the reconciliation page"),)
    return [
        Notice(
            event,
            f"{event}:{run_id}",
            finance_people(session) + admin_people(session),
            subject=f"Stripe and the payments recorded here differ: {formatting.count(count, 'finding')}",
            lead="The reconciliation of Stripe's transfers with the payments recorded here found "
            f"{'a difference' if count == 1 else 'differences'} to look at; each says what to do.",
            facts=facts,
            path=links.reconciliation(),
            action="Open the reconciliation",
            entity=("rail_reconciliation", str(run_id)),
        )
    ]
