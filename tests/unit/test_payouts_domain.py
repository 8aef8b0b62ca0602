"""A payout account's readiness and what it still needs, in words (domain/payouts.py)."""

from backoffice.domain.payouts import AccountState, Readiness


def test_an_account_is_ready_only_when_it_receives_transfers_and_pays_out():
    assert AccountState(True, True, True).readiness is Readiness.READY
    assert AccountState(True, False, True).readiness is Readiness.IN_REVIEW
    assert AccountState(False, True, True).readiness is Readiness.IN_REVIEW
    assert AccountState(False, False, False).readiness is Readiness.NEEDS_DETAILS
    assert AccountState(True, True, True, ("external_account",)).readiness is Readiness.READY


def test_what_stripe_still_needs_is_said_in_words_once_each():
    state = AccountState(
        False,
        False,
        False,
        ("external_account", "individual.dob.day", "individual.dob.month", "tos_acceptance.date", "x.y.some_field"),
    )
    assert state.readiness is Readiness.NEEDS_DETAILS
    assert state.sentence() == (
        "Stripe still needs a bank account for payouts, a date of birth, acceptance of Stripe's terms and y some field."
    )


def test_each_readiness_has_its_own_sentence():
    assert AccountState(True, True, True).sentence().startswith("Stripe can send transfers")
    assert AccountState(False, False, True).sentence().startswith("Stripe is reviewing")
    assert AccountState(False, False, False).sentence() == "Onboarding at Stripe is not finished."
    assert [r.label for r in Readiness] == ["Not connected", "Needs details", "In review at Stripe", "Ready to be paid"]


def test_why_a_payout_failed_is_said_in_words():
    from backoffice.domain.payouts import payout_failure_words

    assert payout_failure_words("account_closed") == "the bank account has been closed"
    assert payout_failure_words("some_new_code") == "some new code"
    assert payout_failure_words(None) == "Stripe gave no reason"
