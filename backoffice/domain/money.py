"""Money in integer minor units: parsing what people type, formatting, rounding and allocation.

One rounding rule everywhere: round half up on non-negative integers (DESIGN.md section 4).
Parsing never guesses: "1,250.00" and "1250" are amounts; "€1.250,00" (a comma before the decimals)
is refused with a message saying how to write it, because "1.250" means 1.25 here, never 1250.
"""

from __future__ import annotations

import re

from backoffice.domain.currency import minor_units

# A sane upper bound for one amount: a billion in major units (cents of it for USD, yen for JPY).
MAX_MAJOR = 1_000_000_000

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_ALL_SYMBOLS = "$€£¥"

_GROUPED = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$", re.ASCII)
_COMMA_DECIMAL = re.compile(r"^\d{1,3}(?:[.\s ]\d{3})*,\d+$|^\d+,\d{1,2}$", re.ASCII)


class AmountError(ValueError):
    """A typed amount that cannot be read; the message is fit to show next to the field."""


def example(currency: str) -> str:
    """How to write an amount in this currency: '1,250.00', '1,250' (JPY), '1,250.000' (KWD)."""
    exp = minor_units(currency)
    return "1,250" + ("." + "0" * exp if exp else "")


def parse_amount(text: str | None, currency: str) -> int:
    """Parse a typed amount into minor units of ``currency``. Raises AmountError.

    Accepts digits with optional comma thousands separators and a point before at most as many
    decimals as the currency has ("1,250.5" is 125050 cents), optionally with the currency's code
    or its own symbol. Refuses zero, negatives, more decimals than the currency has, a comma used
    as the decimal separator, another currency's symbol, and amounts above MAX_MAJOR.
    """
    exp = minor_units(currency)
    raw = (text or "").strip()
    if not raw:
        raise AmountError("Enter an amount.")
    value = raw
    if value.upper().startswith(currency):
        value = value[3:].strip()
    elif value.upper().endswith(currency):
        value = value[:-3].strip()
    if value and value[0] in _ALL_SYMBOLS:
        if SYMBOLS.get(currency) != value[0]:
            raise AmountError(f"This engagement is in {currency}; enter the amount without the {value[0]} sign.")
        value = value[1:].strip()
    if value.startswith("-") or value.startswith("−") or value.startswith("("):
        raise AmountError("Enter an amount greater than zero.")
    match = _GROUPED.match(value)
    if not match:
        if _COMMA_DECIMAL.match(value):
            raise AmountError(
                f"Use a point before the decimals and commas between thousands, like {example(currency)}."
            )
        raise AmountError(f"Enter an amount like {example(currency)} (digits, commas between thousands).")
    whole, frac = match.group(1).replace(",", ""), match.group(2) or ""
    if len(frac) > exp:
        if exp == 0:
            raise AmountError(f"{currency} amounts have no decimals; enter a whole number like {example(currency)}.")
        raise AmountError(f"{currency} amounts have at most {exp} decimals, like {example(currency)}.")
    minor = int(whole) * 10**exp + int(frac.ljust(exp, "0") or "0")
    if minor <= 0:
        raise AmountError("Enter an amount greater than zero.")
    if minor > MAX_MAJOR * 10**exp:
        raise AmountError(f"An amount can be at most {format_amount(MAX_MAJOR * 10**exp, currency, symbol=False)}.")
    return minor


def format_amount(minor: int, currency: str, *, symbol: bool = True) -> str:
    """125050, 'USD' -> '$1,250.50'; 1250, 'JPY' -> '¥1,250'; 5, 'KWD' -> 'KWD 0.005'.
    With symbol=False just the number as parse_amount reads it back: '1,250.50'."""
    exp = minor_units(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    number = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    if not symbol:
        return sign + number
    if currency in SYMBOLS:
        return f"{sign}{SYMBOLS[currency]}{number}"
    return f"{sign}{currency} {number}"


def decimal_text(minor: int, currency: str) -> str:
    """The amount as a plain decimal number in major units, exact from the integer minor units, for files a
    spreadsheet reads as a number: 125050, 'USD' -> '1250.50'; 1250, 'JPY' -> '1250'; 5, 'KWD' -> '0.005'."""
    return format_amount(minor, currency, symbol=False).replace(",", "")


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for numerator >= 0 and denominator > 0."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up is defined here for non-negative amounts only")
    return (2 * numerator + denominator) // (2 * denominator)


def percent_of(amount: int, bps: int) -> int:
    """round_half_up(amount × bps / 10000): retainage, service fees."""
    return round_half_up(amount * bps, 10_000)


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights`` by the largest-remainder rule.

    The parts sum exactly to ``total`` and each differs from its exact share total×w/Σw by less than
    one minor unit. Floors first; the units left over go to the largest remainders, ties to the
    earlier part, so the result is deterministic.
    """
    if total < 0 or not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("allocate needs a non-negative total and non-negative weights with a positive sum")
    weight_sum = sum(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[i] += 1
    return parts


def split_equally(total: int, count: int) -> list[int]:
    """``count`` parts of ``total`` that differ by at most one minor unit, the larger ones first."""
    return allocate(total, [1] * count)


def allocate_by_percent(total: int, bps: list[int]) -> list[int]:
    """Parts of ``total`` for percentages given in basis points, which must add up to 100% (10000)."""
    if sum(bps) != 10_000:
        raise ValueError("the percentages must add up to 100")
    return allocate(total, bps)
