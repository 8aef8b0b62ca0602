"""Amounts and dates written for a reader, in the organization's locale (Babel).

Exact: minor units become a Decimal by moving the point (never through a float), and the currency's own
number of decimals is kept (USD 2, JPY 0, KWD 3).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

from backoffice.domain.currency import minor_units

DEFAULT_LOCALE = "en_US"
# The choices offered in Settings; any locale Babel knows is accepted.
COMMON_LOCALES = ("en_US", "en_GB", "en_CA", "en_AU", "de_DE", "fr_FR", "es_ES", "nl_NL", "it_IT", "pt_BR", "ja_JP")


def is_locale(value: str) -> bool:
    try:
        Locale.parse(value)
    except (ValueError, UnknownLocaleError):
        return False
    return True


def locale_name(value: str) -> str:
    return Locale.parse(value).get_display_name(DEFAULT_LOCALE)


def money(minor: int, currency: str, locale: str = DEFAULT_LOCALE) -> str:
    """``123456, 'USD', 'en_US'`` -> ``$1,234.56``; ``'de_DE'`` -> ``1.234,56 $``."""
    amount = Decimal(minor).scaleb(-minor_units(currency))
    return format_currency(amount, currency, locale=locale)


def day(value: date, locale: str = DEFAULT_LOCALE) -> str:
    return format_date(value, format="medium", locale=locale)


def moment(value: datetime, locale: str = DEFAULT_LOCALE, tz: tzinfo | None = None) -> str:
    """A timestamp in UTC, said so: the people reading it may be anywhere. On a reader's own clock (``tz``, their
    preferences: issue 22) it names their zone and gives the UTC time after it: "Nov 21, 2026, 11:30:05 PM
    Asia/Tokyo (14:30 UTC)"."""
    name = str(getattr(tz, "key", "UTC")) if tz is not None else "UTC"
    if name == "UTC":
        return format_datetime(value.astimezone(UTC), format="medium", tzinfo=UTC, locale=locale) + " UTC"
    there = format_datetime(value, format="medium", tzinfo=tz, locale=locale)
    return f"{there} {name} ({value.astimezone(UTC):%H:%M} UTC)"


def count(n: int, noun: str) -> str:
    """'1 payment', '3 payments': English plurals for the nouns the app counts (they all take an s)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
