"""Small input checks shared by services."""

from __future__ import annotations

import re
import uuid
from datetime import date

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from backoffice.domain.percent import parse_percent_to_bps
from backoffice.errors import NotFound

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # allows tab, newline, CR


def clean_email(value: str, field: str, errors: dict[str, str]) -> str:
    value = (value or "").strip()
    if not value:
        errors[field] = "Enter an email address."
        return value
    if len(value) > 254 or _CONTROL.search(value):
        errors[field] = "Enter a valid email address, like name@example.com."
        return value
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        errors[field] = "Enter a valid email address, like name@example.com."
        return value


def clean_text(
    value: str | None,
    field: str,
    errors: dict[str, str],
    *,
    label: str,
    required: bool,
    max_len: int,
    multiline: bool = False,
) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            errors[field] = f"Enter the {label}."
        return None
    if len(value) > max_len:
        errors[field] = f"Keep the {label} under {max_len} characters."
    elif (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value):
        errors[field] = f"The {label} contains characters that are not allowed."
    return value


def get_visible(session: Session, model, raw_id):
    """The row of ``model`` with this id, as RLS lets the caller see it; NotFound for a malformed id, a
    missing row, or another tenant's row alike (they must look the same)."""
    try:
        row_id = uuid.UUID(str(raw_id))
    except ValueError:
        raise NotFound() from None
    row = session.get(model, row_id)
    if row is None:
        raise NotFound()
    return row


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def clean_date(value: str | None, field: str, errors: dict[str, str], *, label: str = "due date") -> date | None:
    """A calendar date typed as YYYY-MM-DD (what a date input sends). Other orders such as 03/04/2026
    are ambiguous between countries, so they are refused rather than guessed."""
    value = (value or "").strip()
    if not value:
        errors[field] = f"Enter the {label}."
        return None
    match = _ISO_DATE.match(value)
    if not match:
        errors[field] = f"Enter the {label} as YYYY-MM-DD, for example 2026-12-31."
        return None
    try:
        parsed = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        errors[field] = f"{value} is not a date on the calendar."
        return None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        errors[field] = f"Enter a {label} between {EARLIEST_DATE:%Y} and {LATEST_DATE:%Y}."
        return None
    return parsed


def clean_percent(value: str | None, field: str, errors: dict[str, str], *, default: int | None = None) -> int | None:
    """A typed percentage in basis points; ``default`` when left empty (if given)."""
    if not (value or "").strip() and default is not None:
        return default
    try:
        return parse_percent_to_bps(value or "")
    except ValueError as exc:
        errors[field] = str(exc)
        return None


def clean_days(
    value: str | None, field: str, errors: dict[str, str], *, default: int | None = None, maximum: int = 365
) -> int | None:
    text = (value or "").strip()
    if not text and default is not None:
        return default
    if not re.fullmatch(r"[0-9]{1,4}", text) or int(text) > maximum:  # str.isdigit() would accept superscripts
        errors[field] = f"Enter a whole number of days between 0 and {maximum} (0 pays on approval)."
        return None
    return int(text)


def clean_whole_number(
    value: str | None, field: str, errors: dict[str, str], *, maximum: int, label: str, minimum: int = 1
) -> int | None:
    text = (value or "").strip()
    if not re.fullmatch(r"[0-9]{1,6}", text) or not minimum <= int(text) <= maximum:
        errors[field] = f"Enter a whole number between {minimum} and {maximum} ({label})."
        return None
    return int(text)


def parse_id(raw) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None
