"""Percentages as integer basis points (10% = 1000), parsed exactly from what people type."""

from __future__ import annotations

import re

_PERCENT = re.compile(r"^\s*(\d{1,3})(?:\.(\d{1,2}))?\s*%?\s*$", re.ASCII)


def parse_percent_to_bps(text: str) -> int:
    """'10' -> 1000, '12.5' -> 1250, '0.25%' -> 25. At most two decimals; 0 to 100.

    Raises ValueError with a message fit to show next to the field.
    """
    match = _PERCENT.match(text or "")
    if not match:
        raise ValueError("Enter a percentage such as 10 or 12.5 (at most two decimals).")
    whole, frac = match.group(1), (match.group(2) or "").ljust(2, "0")
    bps = int(whole) * 100 + int(frac)
    if bps > 10000:
        raise ValueError("A percentage cannot be more than 100.")
    return bps


def format_bps(bps: int) -> str:
    """1000 -> '10', 1250 -> '12.5', 25 -> '0.25'."""
    whole, frac = divmod(bps, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)
