"""Small input checks shared by services."""
from __future__ import annotations

import re
import uuid

from sqlalchemy.orm import Session

from backoffice.errors import NotFound

from email_validator import EmailNotValidError, validate_email

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
    value: str | None, field: str, errors: dict[str, str], *, label: str, required: bool, max_len: int, multiline: bool = False
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


def get_or_404(session: Session, model, raw_id):
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
