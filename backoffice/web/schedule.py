"""A draft's milestone editor (rows added, removed and reordered in place with htmx) and CSV import.

The editor is one form. Add, remove, move up/down and "Update amounts" post the rows as typed and get
the form back re-rendered, never saved; Save checks every row and saves all of them or none. Nothing
typed is lost on an error: the form comes back with the message at the field.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_login import login_required

from backoffice.domain import engagements as rules
from backoffice.domain.completion import task_word
from backoffice.domain.currency import is_currency
from backoffice.domain.money import format_amount
from backoffice.domain.roles import MANAGERS
from backoffice.errors import Conflict, InvalidTransition, ValidationError
from backoffice.queries import engagements as queries
from backoffice.services import milestone_import
from backoffice.services import schedule as service
from backoffice.services.engagements import get_engagement, require_manager
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("schedule", __name__, url_prefix="/engagements")

_ROW_KEY = re.compile(r"^rows-(\d{1,3})-(id|title|deliverable|amount|percent|due_date)$")
MODE_LABELS = {
    "amounts": "An amount for each milestone",
    "percent": "Percentages of a contract value",
    "equal": "An equal split of a contract value",
}
# Under completion billing the terms fix what the tasks share (the contract value less the advance).
TASK_MODE_LABELS = {
    "amounts": "An amount for each task",
    "percent": "Percentages of what the tasks share",
    "equal": "An equal split of what the tasks share",
}


def rows_from(form) -> list[service.RowInput]:
    """The rows in the order the form posted them (their index), as typed. Shared with any form that embeds
    the milestone rows (templates/engagements/_milestone_rows.html), such as a contractor's proposal."""
    by_index: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        if match := _ROW_KEY.match(key):
            by_index.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [service.RowInput(**by_index[i]) for i in sorted(by_index)][: service.MAX_MILESTONES + 1]


def rows_of(milestones, currency: str) -> list[service.RowInput]:
    """Saved milestones (anything with title, deliverable, amount_minor, due_date) as the editor's rows."""
    return [
        service.RowInput(
            id=str(m.id),
            title=m.title,
            deliverable=m.deliverable,
            amount=format_amount(m.amount_minor, currency, symbol=False),
            due_date=m.due_date.isoformat(),
        )
        for m in milestones
    ]


def apply_op(op: str, rows: list[service.RowInput], *, limit: int = service.MAX_MILESTONES) -> list[service.RowInput]:
    """The rows after one of the editor's buttons: ``add``, ``remove-<i>``, ``up-<i>``, ``down-<i>`` (others,
    such as ``refresh``, leave them as they are). At most ``limit`` rows."""
    rows = list(rows)
    name, _, raw = op.partition("-")
    index = int(raw) if re.fullmatch(r"[0-9]{1,4}", raw) else -1  # isdigit() takes '²', which int() refuses
    if name == "add" and len(rows) < limit:
        rows.append(service.RowInput())
    elif name == "remove" and 0 <= index < len(rows):
        rows.pop(index)
    elif name == "up" and 0 < index < len(rows):
        rows[index - 1], rows[index] = rows[index], rows[index - 1]
    elif name == "down" and 0 <= index < len(rows) - 1:
        rows[index + 1], rows[index] = rows[index], rows[index + 1]
    return rows


def _editor(engagement, data: service.ScheduleInput, *, errors=None, status=200):
    pool = service.task_pool_of(engagement)
    word = task_word(engagement.billing_mode)
    if pool is not None:
        # What percentages and a split divide is the terms' pool, shown in the (read-only) contract value field.
        data = replace(data, contract_value=format_amount(pool, engagement.currency, symbol=False))
    checked = service.check_schedule(engagement.currency, data, pool=pool, word=word)
    return render(
        "engagements/schedule.html",
        "engagements/_schedule_form.html",
        e=engagement,
        data=data,
        rows=data.rows or [service.RowInput()],
        amounts=checked.amounts,
        total=checked.total,
        checked=checked,
        word=word,
        errors=errors or {},
        modes=MODE_LABELS if pool is None else TASK_MODE_LABELS,
        status=status,
    )


def _draft(engagement_id):
    engagement = get_engagement(db(), engagement_id)
    require_manager(actor(), engagement)
    return engagement


def _sent_already(engagement):
    """Once the work request is out the schedule changes by change order: say so and go there."""
    flash("The work request has been sent, so milestones change by change order now.", "info")
    return redirect_after_post(url_for("engagements.show", engagement_id=engagement.id))


@bp.route("/<engagement_id>/milestones", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit(engagement_id):
    engagement = _draft(engagement_id)
    if engagement.status not in rules.EDITABLE:
        return _sent_already(engagement)
    if request.method == "GET":
        rows = rows_of(queries.milestone_list(db(), engagement.id), engagement.currency)
        version = service.schedule_version(db(), engagement.id)
        return _editor(engagement, service.ScheduleInput(rows=rows, version=version))
    data = service.ScheduleInput(
        rows=rows_from(request.form),
        mode=request.form.get("mode", "amounts"),
        contract_value=request.form.get("contract_value", ""),
        version=request.form.get("version", ""),
    )
    op = request.form.get("op", "save")
    if op != "save":
        return _editor(engagement, replace(data, rows=apply_op(op, data.rows)))
    try:
        saved = service.save_schedule(db(), actor(), engagement.id, data)
    except ValidationError as exc:
        return _editor(engagement, data, errors=exc.fields, status=422)
    except Conflict as exc:
        return _editor(engagement, data, errors={"rows": exc.message}, status=409)
    except InvalidTransition:
        return _sent_already(engagement)
    word = task_word(engagement.billing_mode, plural=len(saved) != 1)
    flash(f"Saved {len(saved)} {word}.", "success")
    return redirect_after_post(url_for("engagements.show", engagement_id=engagement.id))


# --- CSV import --------------------------------------------------------------------------------------


@bp.route("/milestones-template.csv")
@login_required
def template():
    currency = request.args.get("currency", "USD")
    body = milestone_import.template_csv(currency if is_currency(currency) else "USD")
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="milestone-schedule-template.csv"'},
    )


@bp.route("/<engagement_id>/milestones/import", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def import_csv(engagement_id):
    engagement = _draft(engagement_id)
    if engagement.status not in rules.EDITABLE:
        return _sent_already(engagement)
    if request.method == "GET":
        return render("engagements/import.html", e=engagement, preview=None, errors={})
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render(
            "engagements/import.html",
            e=engagement,
            preview=None,
            errors={"file": "Choose a CSV file to upload."},
            status=422,
        )
    content = upload.stream.read(milestone_import.MAX_BYTES + 1)
    preview = milestone_import.preview(content, engagement.currency)
    return render(
        "engagements/import.html",
        e=engagement,
        preview=preview,
        errors={},
        filename=upload.filename,
        encoded=base64.b64encode(content).decode() if preview.ok else "",
        status=200 if preview.ok else 422,
    )


@bp.route("/<engagement_id>/milestones/import/confirm", methods=["POST"])
@roles_required(*MANAGERS)
def confirm_import(engagement_id):
    engagement = _draft(engagement_id)
    try:
        content = base64.b64decode(request.form.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        content = b""
    filename = (request.form.get("filename") or "")[:200]
    try:
        added = milestone_import.import_schedule(db(), actor(), engagement.id, content, filename)
    except ValidationError as exc:
        preview = milestone_import.preview(content, engagement.currency)
        return render("engagements/import.html", e=engagement, preview=preview, errors=exc.fields, status=422)
    flash(f"Imported {added} milestone{'s' if added != 1 else ''} from {filename or 'the file'}.", "success")
    return redirect(url_for("schedule.edit", engagement_id=engagement.id), code=303)
