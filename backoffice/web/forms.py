"""Form helpers shared by the blueprints."""

from __future__ import annotations

from flask import flash, request
from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms.widgets import Select

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


class LongSelect(Select):
    """WTForms' select, each plain option written with one f-string: WTForms' own took about 16 µs an option,
    8 ms of every members page for an organization's 500 contractors (bench/pages.py)."""

    @classmethod
    def render_option(cls, choice, **kwargs):
        if choice.render_kw or kwargs or isinstance(choice.value, bool):
            return super().render_option(choice, **kwargs)
        selected = " selected" if choice.selected else ""
        return f'<option value="{escape(choice.value)}"{selected}>{escape(choice.label or choice.value)}</option>'
