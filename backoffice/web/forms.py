"""Form helpers shared by the blueprints."""

from __future__ import annotations

from flask import flash, request
from flask_wtf import FlaskForm

from backoffice.errors import ValidationError


def apply_errors(form: FlaskForm, exc: ValidationError) -> None:
    """Put a service's field messages next to the form's fields; others become a flash message."""
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*(field.errors or []), message]
        else:
            flash(message, "error")


def page_number() -> int:
    """``?page=N`` of a paginated list: 1 for anything that is not a small positive whole number (an
    OFFSET past a bigint would be a database error, not an empty page)."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1
