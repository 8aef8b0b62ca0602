"""The audit trail in words (issue 22, item 8): each event as a sentence, its data as labelled values.

"Omar Owner approved Cabinetry and countertops — $12,800.00" instead of ``milestone.approved`` and
``{"amount_minor": 1280000}``. Amounts are money in the organization's locale and the event's currency (or the
engagement's, or the organization's), dates are formatted, and ids are names where the page resolved them
(queries/audit_names.py, one query per kind for the page's 50 events). Every event type the services write has a
sentence here (tests/unit/test_audit_words.py finds them in the code); an unknown one still reads as a sentence.
No database and no Flask: the page, a CSV or a digest can describe the same events the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from babel.numbers import format_decimal

from backoffice import formatting
from backoffice.domain.evidence import human_size
from backoffice.domain.milestone_status import PARTIAL, SPLIT, decision_status
from backoffice.domain.percent import format_bps

# action -> (sentence, the data key holding its amount). "{who}" is the person, "{entity}" the thing acted on by
# name; other placeholders are the event's data. "[ — {amount}]" is left out when the amount is unknown.
SENTENCES: dict[str, tuple[str, str | None]] = {
    "ap_export.created": ("{who} exported AP batch {number}[ — {amount}]", "total_minor"),
    "ap_export.voided": ("{who} voided AP batch {number}", None),
    "approval.delegated": ("{who} handed their approvals to {delegate}", None),
    "approval.delegation_ended": ("{who} ended a hand-over of approvals", None),
    "approval_policy.archived": ("{who} archived the approval policy “{name}”", None),
    "approval_policy.created": ("{who} created the approval policy “{name}”", None),
    "auth.signed_in": ("{who} signed in", None),
    "auth.signed_out": ("{who} signed out", None),
    "auth.switched_organization": ("{who} switched to this organization", None),
    "change_order.issued": ("{who} issued change order {change_order} on {entity}", None),
    "contractor.created": ("{who} added the contractor {entity}", None),
    "contractor.held": ("{who} put payments to {entity} on hold", None),
    "contractor.hold_released": ("{who} released the hold on payments to {entity}", None),
    "contractor.updated": ("{who} updated the contractor {entity}", None),
    "document.issued": ("{who} issued the document {filename}", None),
    "document.remittance_advice_issued": ("{who} issued the remittance advice {filename}", None),
    "einvoice.requested": ("{who} asked for the e-invoice of payment {invoice_number}", None),
    "einvoice_profile.saved": ("{who} saved the e-invoice details of {entity}", None),
    "email.requeued": ("{who} queued the email to {recipient} to be sent again", None),
    "engagement.cancelled": ("{who} cancelled the engagement {entity}", None),
    "engagement.completed": ("{who} completed the engagement {entity}", None),
    "engagement.created": ("{who} created the engagement {entity}[ — {amount}]", "contract_value_minor"),
    "engagement.milestones_imported": ("{who} imported {count} milestones into {entity}[ — {amount}]", "total_minor"),
    "engagement.paused": ("{who} paused the engagement {entity}", None),
    "engagement.resumed": ("{who} resumed the engagement {entity}", None),
    "engagement.schedule_saved": ("{who} saved the milestones of {entity}", None),
    "engagement.updated": ("{who} edited the draft engagement {entity}", None),
    "engagement.work_request_accepted": ("{who} accepted the work request {entity}", None),
    "engagement.work_request_declined": ("{who} declined the work request {entity}", None),
    "engagement.work_request_sent": ("{who} sent the work request {entity}", None),
    "invoice.advance_authorized": ("{who} authorized the advance {invoice_number}[ — {amount}]", "gross_minor"),
    "invoice.authorized": ("{who} authorized payment {invoice_number}[ — {amount}]", "gross_minor"),
    "invoice.completion_raised": ("{who} invoiced completed tasks as {invoice_number}[ — {amount}]", "gross_minor"),
    "invoice.final_authorized": ("{who} authorized the final payment {invoice_number}[ — {amount}]", "gross_minor"),
    "invoice.held": ("{who} put payment {entity} on hold", None),
    "invoice.hold_released": ("{who} released the hold on payment {entity}", None),
    "invoice.step_approved": ("{who} approved step {step} of payment {entity}", None),
    "invoice.step_rejected": ("{who} rejected step {step} of payment {entity}", None),
    "member.created": ("{who} added {email} as {role}", None),
    "member.invite_reissued": ("{who} sent {email} a new invitation link", None),
    "member.invited": ("{who} invited {email} as {role}", None),
    "member.joined": ("{who} joined as {role}", None),
    "member.removed": ("{who} removed {email} ({role})", None),
    "member.role_changed": ("{who} changed the role of {entity}", None),
    "milestone.approved": ("{who} approved {entity}[ — {amount}]", "amount_minor"),
    "milestone.disputed": ("{who} disputed {entity}", None),
    "milestone.submitted": ("{who} submitted {entity} for review (revision {revision})", None),
    "organization.created": ("{who} created the organization {name}", None),
    "organization.export_layout_changed": ("{who} changed the AP export layout", None),
    "organization.settings_changed": ("{who} changed the organization's settings", None),
    "payment.partially_reversed": ("Part of a Stripe transfer was reversed[ — {amount}]", "reversed_minor"),
    "payment.recorded": ("{who} recorded the payment of {invoice_number}[ — {amount}]", "amount_minor"),
    "payment.reversed": ("The payment of {invoice_number} was reversed[ — {amount}]", "amount_minor"),
    "payout.refused": ("Stripe refused to pay {invoice_number}", None),
    "payout.sent": ("{who} sent payments through Stripe", None),
    "payout_account.connected": ("{who} connected a Stripe payout account for {entity}", None),
    "payout_account.updated": ("The Stripe payout account of {entity} changed", None),
    "project.awarded": ("{who} awarded the project {entity} to {contractor}[ — {amount}]", "price_minor"),
    "project.cancelled": ("{who} cancelled the project {entity}", None),
    "project.opened": ("{who} opened the project {entity}", None),
    "project.updated": ("{who} edited the project {entity}", None),
    "project_category.added": ("{who} added the project category “{name}”", None),
    "project_category.archived": ("{who} archived the project category “{name}”", None),
    "project_category.restored": ("{who} brought back the project category “{name}”", None),
    "proposal.submitted": ("{who} made a proposal for {project_id}[ — {amount}]", "price_minor"),
    "proposal.updated": ("{who} changed their proposal for {entity}", None),
    "proposal.withdrawn": ("{who} withdrew their proposal for {entity}", None),
    "reconciliation.requested": ("{who} asked Stripe which payments it made, to check them", None),
    "remittance.imported": ("{who} imported a remittance file of {rows} payments", None),
    "retainage.released": ("{who} released the retainage of {engagement}[ — {amount}]", "gross_minor"),
    "self_billing.agreement_confirmed": ("{who} confirmed the self-billing agreement for {entity}", None),
    "self_billing.agreement_recorded": ("{who} recorded a self-billing agreement with {entity}", None),
    "self_billing.invoice_accepted": ("{who} accepted the self-billed invoice {invoice_number}", None),
    "self_billing.invoice_rejected": ("{who} rejected the self-billed invoice {invoice_number}", None),
    "tax_profile.saved": ("{who} saved the tax form of {entity}", None),
    "tax_year.exported": ("{who} exported the tax-year file for {year}", None),
    "tax_year.reopened": ("{who} reopened tax year {year}", None),
}

# A partial approval reads as what it did, in the words every page uses (domain/milestone_status): under
# route_back nothing was approved ("Changes requested"), under split the approved part was ("Partly approved").
_ROUTE_BACK = "route_back"
_PARTIAL = {
    SPLIT: (
        f"{{who}} reviewed {{entity}}: {decision_status(PARTIAL, SPLIT).words.lower()}[ — {{amount}}]",
        "approved_amount_minor",
    ),
    _ROUTE_BACK: (f"{{who}} reviewed {{entity}}: {decision_status(PARTIAL, _ROUTE_BACK).words.lower()}", None),
}
SENTENCES["milestone.partially_approved"] = _PARTIAL["split"]

# A check of the chain (services/audit.record_check) reads as what it found: {"intact": bool, "events": n}.
_CHAIN_CHECK = {
    True: ("{who} checked the audit trail's chain: intact, {events}", None),
    False: ("{who} checked the audit trail's chain: broken, {events}", None),
}
SENTENCES["audit.chain_checked"] = _CHAIN_CHECK[True]

LABELS = {
    "amount_minor": "Amount",
    "approved_amount_minor": "Approved part",
    "contract_value_minor": "Contract value",
    "contract_value_before": "Contract value before",
    "contract_value_after": "Contract value after",
    "contract_value": "Contract value",
    "gross_minor": "Gross",
    "net_minor": "Net",
    "retainage_minor": "Retainage",
    "fee_minor": "Service fee",
    "total_minor": "Total",
    "price_minor": "Price",
    "reversed_minor": "Reversed",
    "billed_before_minor": "Billed before",
    "due_date": "Due",
    "paid_at": "Paid on",
    "agreed_on": "Agreed on",
    "starts_on": "From",
    "ends_on": "Until",
    "invoice_number": "Payment",
    "milestone_id": "Milestone",
    "contractor_id": "Contractor",
    "engagement_id": "Engagement",
    "project_id": "Project",
    "from_proposal": "From the proposal",
    "on_behalf_of": "On behalf of",
    "confirmed_by": "Confirmed by",
    "advance_bps": "Advance",
    "partial_policy": "Partial approvals",
    "sha256": "SHA-256",
    "size_bytes": "Size",
    "rows": "Rows",
    "status_after": "Status after",
    "was": "Last error",
    "why": "Why",
    "tin_last4": "TIN ending",
    "new_tin": "New TIN given",
    "missing_w9": "Without a W-9",
    "terms_chars": "Terms (characters)",
    "audit_head": "Chain head",
    "owner_user_id": "Owner",
    "sow_reference": "SOW reference",
    "payment_terms_days": "Payment terms (days)",
    "retainage_bps": "Retainage",
    "service_fee_bps": "Service fee",
    "advance_minor": "Advance amount",
    "billing_mode": "Billing",
    "kind": "Kind",
}

# Internal references that name nothing a reader can use: the sentence and the resolved names say it better.
HIDDEN = {
    "submission_id",
    "review_id",
    "answer_id",
    "hold_id",
    "agreement_id",
    "document_id",
    "transaction_id",
    "payout_attempt",
    "change_order_id",
    "proposal_id",
    "selection",
    "decision",
}

WORDS = {
    _ROUTE_BACK: f"sent back ({decision_status(PARTIAL, _ROUTE_BACK).words.lower()})",
    "split": "approved part paid",
    "self_billed_invoice": "self-billed invoice",
    "einvoice": "e-invoice",
    "quickbooks_online": "QuickBooks Online",
    "w9": "W-9",
    "w8ben": "W-8BEN",
    "admin": "admin",
    "owner": "owner",
    "finance": "finance",
    "contractor": "contractor",
}

_NOUNS = {
    "milestone": "a milestone",
    "invoice": "a payment",
    "engagement": "an engagement",
    "contractor": "a contractor",
    "organization": "the organization",
    "membership": "a member",
    "user": "a person",
    "project": "a project",
    "proposal": "a proposal",
    "ap_export_batch": "an AP batch",
    "audit_trail": "the audit trail",
}
_SYSTEM = {"system": "The system", "background job": "A background job"}
_CODE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")  # a stored code such as awaiting_acceptance: read with spaces
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_FIELD = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Names:
    """What the page could name: ids (as text) to names, entities to their currency, the org's format."""

    names: Mapping[str, str] = field(default_factory=dict)
    currencies: Mapping[str, str] = field(default_factory=dict)
    locale: str = formatting.DEFAULT_LOCALE
    currency: str = "USD"


@dataclass(frozen=True)
class Described:
    sentence: str
    details: list[tuple[str, str]]
    known: bool  # False: the generic sentence of an event type this module has no sentence for


def describe(
    action: str,
    entity_type: str,
    entity_id: str | None,
    data: Mapping | None,
    *,
    who: str,
    names: Names,
) -> Described:
    """One event in words: a sentence and its details as (label, value) pairs, amounts as money."""
    data = dict(data or {})
    who = _SYSTEM.get(who, who)
    currency = data.get("currency") if isinstance(data.get("currency"), str) else None
    currency = currency or names.currencies.get(entity_id or "") or names.currency
    known = action in SENTENCES
    template, amount_key = SENTENCES.get(action, (None, None))
    if action == "milestone.partially_approved":
        template, amount_key = _PARTIAL.get(data.get("partial_policy") or "split", _PARTIAL["split"])
    if action == "audit.chain_checked":
        template, amount_key = _CHAIN_CHECK[data.pop("intact", None) is not False]  # said in the sentence
        if isinstance(data.get("events"), int):  # "1,234 events", in the organization's digits
            n = data["events"]
            data["events"] = f"{format_decimal(n, locale=names.locale)} event{'' if n == 1 else 's'}"
    entity = names.names.get(entity_id or "") or _entity_from(data) or _NOUNS.get(entity_type, "a record")
    if template is None:
        what = action.replace(".", ": ", 1).replace("_", " ")
        template = f"{{who}} recorded “{what}” on {{entity}}"
    values = {"who": who, "entity": entity}
    if amount_key and isinstance(data.get(amount_key), int):
        values["amount"] = formatting.money(data[amount_key], currency, names.locale)
    for key, value in data.items():
        if key in values or value in (None, "", [], {}):
            continue
        if _is_reference(key) and value not in names.names:  # an id the page could not name: the kind of thing
            values[key] = _NOUNS.get(key.removesuffix("_id"), "—")
            continue
        values[key] = _value(key, value, currency, names)
    used = set(_FIELD.findall(template)) | ({amount_key} if "amount" in values else set())
    sentence = _fill(template, values)
    details = [
        (_label(key), values[key])
        for key in data
        if key not in used
        and key not in HIDDEN
        and key != "currency"
        and key in values
        and not (_is_reference(key) and data[key] not in names.names)
    ]
    return Described(sentence[0].upper() + sentence[1:], details, known)


def _is_reference(key: str) -> bool:
    return key.endswith("_id") or key in ("from_proposal", "on_behalf_of", "confirmed_by")


def _fill(template: str, values: dict[str, str]) -> str:
    def optional(m: re.Match) -> str:
        return m.group(1) if all(f in values for f in _FIELD.findall(m.group(1))) else ""

    text = _OPTIONAL.sub(optional, template)
    return _FIELD.sub(lambda m: values.get(m.group(1), "—"), text)


def _entity_from(data: dict) -> str | None:
    for key in ("title", "legal_name", "invoice_number", "name", "contractor", "engagement", "email"):
        if isinstance(data.get(key), str) and data[key]:
            return data[key]
    return None


def _label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    return key.removesuffix("_minor").removesuffix("_bps").replace("_", " ").capitalize()


def _value(key: str, value, currency: str, names: Names) -> str:
    """A datum as a reader reads it: money, a day, a name, yes or no, a list in words."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int) and (key.endswith("_minor") or key.startswith("contract_value")):
        return formatting.money(value, currency, names.locale)
    if key.endswith("_bps") and isinstance(value, int):
        return f"{format_bps(value)}%"
    if key in ("size_bytes", "size") and isinstance(value, int):
        return human_size(value)
    if isinstance(value, str):
        if value in names.names:
            return names.names[value]
        if _ISO_DAY.match(value):
            return formatting.day(date.fromisoformat(value), names.locale)
        if _ISO_MOMENT.match(value):
            try:
                return formatting.moment(datetime.fromisoformat(value), names.locale)
            except ValueError:
                return value
        return WORDS.get(value) or (value.replace("_", " ") if _CODE.match(value) else value)
    if isinstance(value, Mapping):
        if set(value) == {"before", "after"}:
            return f"{_value(key, value['before'], currency, names)} → {_value(key, value['after'], currency, names)}"
        if key == "audit_head":
            return f"event #{value.get('seq')}"
        if key == "totals":
            return ", ".join(formatting.money(v, c, names.locale) for c, v in value.items() if isinstance(v, int))
        return "; ".join(f"{_label(k)}: {_value(k, v, currency, names)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return ", ".join(_item(key, v, currency, names) for v in value)
    return str(value)


def _item(key: str, item, currency: str, names: Names) -> str:
    if isinstance(item, Mapping):
        name = item.get("title") or item.get("name") or item.get("kind") or ""
        amount = item.get("amount_minor") if isinstance(item.get("amount_minor"), int) else None
        money = formatting.money(amount, currency, names.locale) if amount is not None else ""
        return f"{name} ({money})" if name and money else str(name or money or "…")
    return _value(key, item, currency, names)
