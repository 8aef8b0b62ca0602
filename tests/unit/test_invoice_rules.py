"""Payment authorizations without a database (DESIGN.md sections 3 and 4): what an approval authorizes,
what a release pays, the due date, the ledger lines of each money event, the invoice's moves, and the
money of currencies with 0 and 3 decimals. Parsing, rounding and allocation themselves are in
test_money.py; this file takes them as given and checks the invoice rules built on them."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from backoffice.domain.currency import MINOR_UNITS, minor_units
from backoffice.domain.invoices import (
    ACCOUNTS_PAYABLE,
    CASH,
    FEE_EXPENSE,
    FEES_PAYABLE,
    MOVES,
    RETAINAGE_PAYABLE,
    WORK_EXPENSE,
    Amounts,
    InvoiceKind,
    InvoiceStatus,
    RetainageState,
    authorization_lines,
    can_move,
    due_date,
    milestone_amounts,
    payment_lines,
    release_amounts,
    release_lines,
)
from backoffice.domain.money import (
    MAX_MAJOR,
    AmountError,
    format_amount,
    parse_amount,
    percent_of,
)
from backoffice.domain.reviews import authorization, split_part

ZERO_DECIMALS = sorted(c for c, e in MINOR_UNITS.items() if e == 0)
THREE_DECIMALS = sorted(c for c, e in MINOR_UNITS.items() if e == 3)
BPS = st.integers(min_value=0, max_value=10_000)
GROSS = st.integers(min_value=1, max_value=MAX_MAJOR * 1000)  # up to a billion KWD in fils


def _half_up(numerator: int, denominator: int) -> int:
    return int(Fraction(numerator, denominator) + Fraction(1, 2))


# --- what approving a milestone authorizes --------------------------------------------------------


@pytest.mark.parametrize(
    "gross, retainage_bps, retainage, net",
    [
        (5, 1000, 1, 4),  # 0.5 of a minor unit withheld rounds up
        (15, 1000, 2, 13),  # 1.5 -> 2
        (25, 1000, 3, 22),  # 2.5 -> 3, not the even 2
        (4, 1000, 0, 4),  # 0.4 -> 0: nothing withheld
        (1, 5000, 1, 0),  # half of the smallest unit is withheld whole
        (1, 4999, 0, 1),
        (100_001, 250, 2_500, 97_501),  # 2500.025 -> 2500
        (100_020, 250, 2_501, 97_519),  # 2500.5 -> 2501
    ],
)
def test_retainage_on_an_approval_rounds_half_up_and_net_is_the_rest(gross, retainage_bps, retainage, net):
    amounts = milestone_amounts(gross, retainage_bps)
    assert (amounts.gross, amounts.retainage, amounts.net) == (gross, retainage, net)
    assert (amounts.fee_bps, amounts.fee, amounts.total) == (0, 0, gross)


@pytest.mark.parametrize(
    "gross, fee_bps, fee",
    [(5, 1000, 1), (15, 1000, 2), (4, 1000, 0), (199, 250, 5), (200, 250, 5), (220, 250, 6), (1, 500, 0), (10, 500, 1)],
)
def test_the_service_fee_rounds_half_up_and_is_billed_on_top_of_the_gross(gross, fee_bps, fee):
    amounts = milestone_amounts(gross, 1000, fee_bps)
    assert amounts.fee == fee
    assert amounts.total == gross + fee
    assert amounts.net == gross - percent_of(gross, 1000), "the fee never reduces what the contractor is paid"


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
@pytest.mark.parametrize("bps", [0, 10_000])
def test_the_largest_and_smallest_amounts_with_no_or_full_retainage_and_fee(currency, bps):
    for gross in (1, MAX_MAJOR * 10 ** minor_units(currency)):
        amounts = milestone_amounts(gross, bps, bps)
        withheld = gross if bps else 0
        assert (amounts.retainage, amounts.net, amounts.fee, amounts.total) == (
            withheld,
            gross - withheld,
            withheld,
            gross + withheld,
        )


@given(GROSS, BPS, BPS)
@example(1, 0, 0)
@example(1, 10_000, 10_000)
@example(MAX_MAJOR * 1000, 9_999, 9_999)
def test_net_plus_retainage_is_the_gross_and_total_is_gross_plus_fee(gross, retainage_bps, fee_bps):
    a = milestone_amounts(gross, retainage_bps, fee_bps)
    assert a.net + a.retainage == a.gross == gross
    assert a.total == a.gross + a.fee
    assert 0 <= a.retainage <= gross and 0 <= a.net <= gross and 0 <= a.fee <= gross
    assert a.retainage == _half_up(gross * retainage_bps, 10_000)
    assert a.fee == _half_up(gross * fee_bps, 10_000)
    assert (a.retainage_bps, a.fee_bps) == (retainage_bps, fee_bps)


@given(GROSS, BPS, BPS)
def test_the_amounts_name_every_money_column_of_an_invoice(gross, retainage_bps, fee_bps):
    a = milestone_amounts(gross, retainage_bps, fee_bps)
    assert a.as_dict() == {
        "gross_minor": a.gross,
        "retainage_bps": retainage_bps,
        "retainage_minor": a.retainage,
        "net_minor": a.net,
        "fee_bps": fee_bps,
        "fee_minor": a.fee,
        "total_minor": a.total,
    }


@pytest.mark.parametrize("gross", [0, -1, -100])
def test_nothing_or_less_is_never_approved(gross):
    with pytest.raises(ValueError, match="greater than zero"):
        milestone_amounts(gross, 1000)


@pytest.mark.parametrize("retainage_bps, fee_bps", [(-1, 0), (10_001, 0), (0, -1), (0, 10_001)])
def test_retainage_and_fee_outside_nought_to_a_hundred_percent_are_refused(retainage_bps, fee_bps):
    with pytest.raises(ValueError, match="between 0% and 100%"):
        milestone_amounts(100, retainage_bps, fee_bps)


@given(
    GROSS,
    BPS,
    st.integers(min_value=0, max_value=365),
    BPS,
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
)
def test_a_reviews_authorization_is_exactly_what_the_invoice_amounts_say(
    gross, retainage_bps, terms, fee_bps, approved_on
):
    a = authorization(gross, retainage_bps, terms, approved_on, fee_bps)
    m = milestone_amounts(gross, retainage_bps, fee_bps)
    assert (a.gross, a.retainage, a.net, a.fee, a.total) == (m.gross, m.retainage, m.net, m.fee, m.total)
    assert a.due_date == due_date(approved_on, terms)


def test_an_authorization_carries_the_service_fee_and_the_total_billed():
    a = authorization(100_005, 1000, 0, date(2026, 3, 1), 250)  # fee 2500.125 -> 2500; retainage 10000.5 -> 10001
    assert (a.gross, a.retainage, a.net, a.fee, a.total) == (100_005, 10_001, 90_004, 2_500, 102_505)


# --- split partial approvals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, kwargs, part",
    [(3, {"bps": 5000}, 2), (5, {"bps": 1000}, 1), (10, {"bps": 500}, 1), (2, {"bps": 5000}, 1), (2, {"part": 1}, 1)],
)
def test_a_split_rounds_the_approved_part_half_up(amount, kwargs, part):
    assert split_part(amount, **kwargs) == part


@pytest.mark.parametrize("kwargs", [{"bps": 5000}, {"part": 1}, {"bps": 1}, {"bps": 9_999}])
def test_one_minor_unit_cannot_be_split(kwargs):
    with pytest.raises(ValueError, match="more than nothing and less than"):
        split_part(1, **kwargs)


@pytest.mark.parametrize("amount, bps", [(10, 9_999), (19, 9_750), (4, 1_000)])
def test_a_percentage_that_rounds_to_all_or_nothing_is_refused(amount, bps):
    with pytest.raises(ValueError):
        split_part(amount, bps=bps)


def test_without_a_part_or_a_percentage_nothing_is_approved():
    with pytest.raises(ValueError):
        split_part(100)


def test_an_amount_given_wins_over_a_percentage():
    assert split_part(1_000, part=300, bps=5000) == 300


@given(st.integers(min_value=2, max_value=MAX_MAJOR * 1000), st.data())
def test_both_sides_of_a_split_add_up_to_the_milestone(amount, data):
    part = split_part(amount, part=data.draw(st.integers(min_value=1, max_value=amount - 1)))
    remainder = amount - part
    assert part > 0 and remainder > 0 and part + remainder == amount


# --- releasing retainage --------------------------------------------------------------------------


@pytest.mark.parametrize("held", [1, 7, 12_505, MAX_MAJOR * 1000])
def test_a_release_pays_everything_held_with_nothing_withheld_and_no_fee(held):
    assert release_amounts(held) == Amounts(
        gross=held, retainage_bps=0, retainage=0, net=held, fee_bps=0, fee=0, total=held
    )


@pytest.mark.parametrize("held", [0, -1])
def test_nothing_held_cannot_be_released(held):
    with pytest.raises(ValueError, match="no retainage held"):
        release_amounts(held)


@given(st.lists(st.tuples(GROSS, BPS), min_size=1, max_size=12))
def test_a_release_pays_back_exactly_what_the_approvals_withheld(approvals):
    invoices = [milestone_amounts(gross, bps) for gross, bps in approvals]
    held = RetainageState(withheld=sum(a.retainage for a in invoices), released=0).held
    if held == 0:
        with pytest.raises(ValueError):
            release_amounts(held)
        return
    release = release_amounts(held)
    assert sum(a.net for a in invoices) + release.net == sum(a.gross for a in invoices)
    assert RetainageState(withheld=held, released=release.gross).held == 0


def test_retainage_held_is_withheld_less_released():
    assert RetainageState(withheld=12_505, released=0).held == 12_505
    assert RetainageState(withheld=12_505, released=12_505).held == 0


# --- due dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issued_on, terms, due",
    [
        (date(2026, 11, 21), 0, date(2026, 11, 21)),  # 0 pays on approval
        (date(2026, 11, 21), 30, date(2026, 12, 21)),
        (date(2026, 12, 31), 1, date(2027, 1, 1)),
        (date(2028, 2, 28), 1, date(2028, 2, 29)),  # a leap day is a day
        (date(2026, 1, 1), 365, date(2027, 1, 1)),
        (date(2028, 1, 1), 365, date(2028, 12, 31)),  # 2028 has 366 days
        (date(2027, 3, 1), 365, date(2028, 2, 29)),
    ],
)
def test_due_date_is_the_approval_date_plus_the_terms_in_days(issued_on, terms, due):
    assert due_date(issued_on, terms) == due


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.integers(min_value=0, max_value=365))
def test_the_due_date_is_never_before_approval_and_exactly_terms_days_later(issued_on, terms):
    due = due_date(issued_on, terms)
    assert due >= issued_on and (due - issued_on).days == terms


# --- ledger lines ---------------------------------------------------------------------------------


def _assert_ledger(lines):
    assert sum(amount for _, amount in lines) == 0, lines
    assert all(amount != 0 for _, amount in lines), f"zero lines are noise: {lines}"
    assert len({account for account, _ in lines}) == len(lines), "one line per account"


@given(GROSS, BPS, BPS)
@example(1, 0, 0)
@example(1, 10_000, 0)
@example(1, 0, 10_000)
@example(5, 1000, 1000)
def test_an_approvals_ledger_lines_balance_and_none_is_zero(gross, retainage_bps, fee_bps):
    a = milestone_amounts(gross, retainage_bps, fee_bps)
    lines = authorization_lines(a)
    _assert_ledger(lines)
    by_account = dict(lines)
    assert by_account[WORK_EXPENSE] == gross
    assert by_account.get(ACCOUNTS_PAYABLE, 0) == -a.net
    assert by_account.get(RETAINAGE_PAYABLE, 0) == -a.retainage
    assert by_account.get(FEE_EXPENSE, 0) == a.fee == -by_account.get(FEES_PAYABLE, 0)


def test_an_approval_without_retainage_or_fee_has_two_lines():
    assert authorization_lines(milestone_amounts(100_000, 0)) == [(WORK_EXPENSE, 100_000), (ACCOUNTS_PAYABLE, -100_000)]


def test_an_approval_with_retainage_and_fee_has_five_lines():
    assert authorization_lines(milestone_amounts(100_005, 1000, 250)) == [
        (WORK_EXPENSE, 100_005),
        (ACCOUNTS_PAYABLE, -90_004),
        (RETAINAGE_PAYABLE, -10_001),
        (FEE_EXPENSE, 2_500),
        (FEES_PAYABLE, -2_500),
    ]


def test_a_fully_withheld_approval_owes_the_contractor_nothing_now():
    assert authorization_lines(milestone_amounts(7, 10_000)) == [(WORK_EXPENSE, 7), (RETAINAGE_PAYABLE, -7)]


@given(st.integers(min_value=1, max_value=MAX_MAJOR * 1000))
def test_a_release_and_a_payment_balance(amount):
    release = release_lines(amount)
    _assert_ledger(release)
    assert release == [(RETAINAGE_PAYABLE, amount), (ACCOUNTS_PAYABLE, -amount)]
    payment = payment_lines(amount)
    _assert_ledger(payment)
    assert payment == [(ACCOUNTS_PAYABLE, amount), (CASH, -amount)]


@given(st.lists(st.tuples(GROSS, BPS, BPS), min_size=1, max_size=10))
def test_approving_releasing_and_paying_everything_clears_what_is_owed_to_the_contractor(approvals):
    """After every milestone is approved and paid, and the retainage released and paid, accounts
    payable and retainage payable are both back to zero; what left the bank is the gross."""
    balances: dict[str, int] = {}

    def post(lines):
        for account, amount in lines:
            balances[account] = balances.get(account, 0) + amount

    invoices = [milestone_amounts(*a) for a in approvals]
    for a in invoices:
        post(authorization_lines(a))
        post(payment_lines(a.net))
    held = sum(a.retainage for a in invoices)
    if held:
        post(release_lines(held))
        post(payment_lines(held))
    assert balances.get(ACCOUNTS_PAYABLE, 0) == 0
    assert balances.get(RETAINAGE_PAYABLE, 0) == 0
    assert balances.get(CASH, 0) == -sum(a.gross for a in invoices)
    assert balances.get(FEE_EXPENSE, 0) == -balances.get(FEES_PAYABLE, 0) == sum(a.fee for a in invoices)
    assert sum(balances.values()) == 0


def test_a_payment_of_nothing_writes_no_lines():
    assert payment_lines(0) == []


def test_unbalanced_lines_are_never_returned():
    unbalanced = Amounts(gross=100, retainage_bps=1000, retainage=10, net=91, fee_bps=0, fee=0, total=100)
    with pytest.raises(AssertionError, match="unbalanced"):
        authorization_lines(unbalanced)


# --- the invoice's moves --------------------------------------------------------------------------


@pytest.mark.parametrize("current, target", sorted(MOVES))
def test_the_supported_moves_are_allowed(current, target):
    assert can_move(current, target)


@pytest.mark.parametrize("current", list(InvoiceStatus))
@pytest.mark.parametrize("target", list(InvoiceStatus))
def test_every_other_move_is_refused(current, target):
    if (current, target) not in MOVES:
        assert not can_move(current, target)


def test_a_paid_invoice_moves_only_to_on_hold_when_its_rail_reverses_the_payment():
    assert {target for target in InvoiceStatus if can_move(InvoiceStatus.PAID, target)} == {InvoiceStatus.ON_HOLD}
    assert {target for target in InvoiceStatus if can_move(InvoiceStatus.ON_HOLD, target)} == {InvoiceStatus.APPROVED}


def test_only_authorized_and_exported_invoices_are_payable():
    assert {s for s in InvoiceStatus if s.payable} == {InvoiceStatus.APPROVED, InvoiceStatus.EXPORTED}


def test_every_status_and_kind_has_a_label():
    assert InvoiceStatus.APPROVED.label == "Authorized"
    assert all(s.label for s in InvoiceStatus) and all(k.label for k in InvoiceKind)
    assert InvoiceKind.RETAINAGE_RELEASE.label == "Retainage release"


# --- currencies with no and with three decimals ---------------------------------------------------


@pytest.mark.parametrize("currency", ZERO_DECIMALS + THREE_DECIMALS)
def test_one_minor_unit_and_the_maximum_read_back_in_every_currency_without_two_decimals(currency):
    top = MAX_MAJOR * 10 ** minor_units(currency)
    for minor in (1, 10, 999, 1_000, top):
        assert parse_amount(format_amount(minor, currency, symbol=False), currency) == minor
        assert parse_amount(format_amount(minor, currency), currency) == minor


@pytest.mark.parametrize(
    "minor, currency, shown",
    [
        (1, "JPY", "¥1"),
        (1_000_000_000, "JPY", "¥1,000,000,000"),
        (1, "KRW", "KRW 1"),
        (1, "BHD", "BHD 0.001"),
        (1_000, "BHD", "BHD 1.000"),
        (1_234_567, "BHD", "BHD 1,234.567"),
        (10, "KWD", "KWD 0.010"),
    ],
)
def test_zero_and_three_decimal_amounts_are_shown_with_exactly_their_decimals(minor, currency, shown):
    assert format_amount(minor, currency) == shown


@pytest.mark.parametrize(
    "typed, currency, minor",
    [
        ("0.001", "BHD", 1),
        ("1.5", "BHD", 1_500),
        ("BHD 1,000.25", "BHD", 1_000_250),
        ("1", "KRW", 1),
        ("1,000", "KRW", 1_000),
    ],
)
def test_three_decimal_and_whole_number_currencies_parse_exactly(typed, currency, minor):
    assert parse_amount(typed, currency) == minor


@pytest.mark.parametrize("typed, currency", [("0.0001", "BHD"), ("1.2345", "KWD"), ("1.0", "KRW"), ("0.5", "JPY")])
def test_more_decimals_than_the_currency_has_are_refused_for_0_and_3_decimal_currencies(typed, currency):
    with pytest.raises(AmountError, match=currency):
        parse_amount(typed, currency)


@pytest.mark.parametrize(
    "currency, gross, retainage", [("JPY", 5, 1), ("JPY", 15, 2), ("BHD", 5, 1), ("BHD", 1_005, 101)]
)
def test_retainage_in_whole_yen_and_in_fils_rounds_half_up_like_cents(currency, gross, retainage):
    assert minor_units(currency) in (0, 3)
    assert milestone_amounts(gross, 1000).retainage == retainage


def test_an_exported_invoice_in_no_batch_is_said_to_be_paying_by_stripe():
    from backoffice.domain.invoices import status_label

    assert status_label(InvoiceStatus.EXPORTED, in_batch=False) == "Paying by Stripe"
    assert status_label(InvoiceStatus.EXPORTED, in_batch=True) == "Exported"
    assert status_label(InvoiceStatus.ON_HOLD, in_batch=False) == "On hold"
