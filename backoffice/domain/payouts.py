"""Payout accounts on a payment rail (DESIGN.md section 7, issue 17): when a contractor's connected account can
be paid, and what it still needs, in words people read. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Rail(StrEnum):
    STRIPE = "stripe"


class Readiness(StrEnum):
    NOT_CONNECTED = "not_connected"  # no account on the rail yet
    NEEDS_DETAILS = "needs_details"  # Stripe still needs something from the contractor
    IN_REVIEW = "in_review"  # nothing asked of the contractor; Stripe has not enabled transfers yet
    READY = "ready"  # transfers active and payouts enabled: it can be paid

    @property
    def label(self) -> str:
        return {
            Readiness.NOT_CONNECTED: "Not connected",
            Readiness.NEEDS_DETAILS: "Needs details",
            Readiness.IN_REVIEW: "In review at Stripe",
            Readiness.READY: "Ready to be paid",
        }[self]


# What Stripe's requirement codes ask for, in words; a code not listed is shown by its last parts.
REQUIREMENT_WORDS = {
    "external_account": "a bank account for payouts",
    "tos_acceptance.date": "acceptance of Stripe's terms",
    "tos_acceptance.ip": "acceptance of Stripe's terms",
    "business_type": "the type of business",
    "business_profile.url": "a business website or description",
    "business_profile.mcc": "the industry",
    "individual.verification.document": "an identity document",
    "individual.id_number": "a tax or national ID number",
    "individual.ssn_last_4": "the last four digits of a Social Security number",
    "individual.dob.day": "a date of birth",
    "individual.dob.month": "a date of birth",
    "individual.dob.year": "a date of birth",
    "individual.address.line1": "an address",
    "individual.address.city": "an address",
    "individual.address.postal_code": "an address",
    "individual.address.state": "an address",
    "individual.first_name": "a legal name",
    "individual.last_name": "a legal name",
    "individual.email": "an email address",
    "individual.phone": "a phone number",
    "company.tax_id": "the company's tax ID",
    "company.name": "the company's legal name",
    "company.address.line1": "the company's address",
}


def requirement_words(code: str) -> str:
    if code in REQUIREMENT_WORDS:
        return REQUIREMENT_WORDS[code]
    return " ".join(code.split(".")[-2:]).replace("_", " ")


@dataclass(frozen=True)
class AccountState:
    """What the rail last said of a connected account."""

    transfers_active: bool
    payouts_enabled: bool
    details_submitted: bool
    currently_due: tuple[str, ...] = ()

    @property
    def readiness(self) -> Readiness:
        if self.transfers_active and self.payouts_enabled:
            return Readiness.READY
        if self.currently_due or not self.details_submitted:
            return Readiness.NEEDS_DETAILS
        return Readiness.IN_REVIEW

    @property
    def needs(self) -> list[str]:
        """What it still needs, in words, each once, in Stripe's order."""
        seen: list[str] = []
        for code in self.currently_due:
            words = requirement_words(code)
            if words not in seen:
                seen.append(words)
        return seen

    def sentence(self) -> str:
        """One sentence for the contractor's and finance's pages."""
        readiness = self.readiness
        if readiness is Readiness.READY:
            return "Stripe can send transfers to this account and pay them out to the bank."
        if readiness is Readiness.IN_REVIEW:
            return "Stripe is reviewing the details given; payments can be sent once it enables the account."
        if self.needs:
            return "Stripe still needs " + _join(self.needs) + "."
        return "Onboarding at Stripe is not finished."


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


# Why Stripe could not pay a connected account's balance out to its bank (a payout's failure_code), in words.
PAYOUT_FAILURE_WORDS = {
    "account_closed": "the bank account has been closed",
    "account_frozen": "the bank account is frozen",
    "bank_account_restricted": "the bank account does not accept this kind of payment",
    "bank_ownership_changed": "the bank account changed owner",
    "could_not_process": "the bank could not process it",
    "debit_not_authorized": "the bank did not authorize it",
    "declined": "the bank declined it",
    "incorrect_account_holder_name": "the account holder's name does not match the bank's",
    "invalid_account_number": "the account number is not valid",
    "invalid_currency": "the bank account cannot receive this currency",
    "no_account": "the bank account does not exist",
}


def payout_failure_words(code: str | None) -> str:
    if not code:
        return "Stripe gave no reason"
    return PAYOUT_FAILURE_WORDS.get(code, code.replace("_", " "))


# Why Stripe refused to make a transfer (its error code), in words finance acts on; another code gets Stripe's
# own message.
TRANSFER_REFUSAL_WORDS = {
    "balance_insufficient": "the platform's Stripe balance is too low to send it: add funds at Stripe, then release "
    "the hold and send it again",
    "insufficient_funds": "the platform's Stripe balance is too low to send it: add funds at Stripe, then release "
    "the hold and send it again",
    "insufficient_capabilities_for_transfer": "the contractor's Stripe account cannot receive transfers yet: it "
    "needs to finish onboarding at Stripe",
    "account_invalid": "the contractor's Stripe account is not valid for transfers",
    "transfers_not_allowed": "Stripe does not allow transfers to this account",
    "amount_too_small": "the amount is below Stripe's minimum transfer",
}


def transfer_refusal_words(code: str | None, message: str) -> str:
    """Why a transfer was refused, for the invoice page and finance's notice."""
    if code and code in TRANSFER_REFUSAL_WORDS:
        return TRANSFER_REFUSAL_WORDS[code]
    return f"Stripe refused it: {message.strip() or 'no reason given'}"
