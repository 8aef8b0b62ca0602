"""Form helpers shared by the blueprints."""
from __future__ import annotations

from flask import flash
from flask_wtf import FlaskForm

from backoffice.errors import ValidationError


def apply_errors(form: FlaskForm, exc: ValidationError) -> None:
    """Put a service's field messages next to the form's fields; others become a flash message."""
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + [message]
        else:
            flash(message, "error")
