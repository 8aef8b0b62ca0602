from backoffice.domain.currency import COMMON, is_currency, minor_units


def test_minor_units_follow_iso_4217():
    assert (minor_units("USD"), minor_units("JPY"), minor_units("KWD")) == (2, 0, 3)


def test_unknown_codes_are_not_currencies():
    assert not is_currency("ZZZ") and not is_currency("usd")


def test_common_currencies_are_all_known():
    assert all(is_currency(c) for c in COMMON)
