"""Issuing a change order: the schedule as it should become, with a reason; the differences become lines."""

from __future__ import annotations

import re

from flask import Blueprint, flash, request, url_for

from backoffice.domain import engagements as rules
from backoffice.domain.money import format_amount
from backoffice.domain.roles import MANAGERS
from backoffice.errors import Conflict, InvalidTransition, ValidationError
from backoffice.queries import engagements as queries
from backoffice.services import change_orders as service
from backoffice.services.engagements import get_engagement, require_manager
from backoffice.services.schedule import RowInput
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("change_orders", __name__, url_prefix="/engagements")

_NEW_KEY = re.compile(r"^new-(\d{1,3})-(title|deliverable|amount|due_date)$")
MAX_NEW_ROWS = 50


def _as_typed(milestones, currency: str) -> dict[str, dict]:
    return {
        str(m.id): {
            "title": m.title,
            "deliverable": m.deliverable,
            "due_date": m.due_date.isoformat(),
            "amount": format_amount(m.amount_minor, currency, symbol=False),
            "cancel": False,
        }
        for m in milestones
    }


def _posted(form, milestones) -> tuple[dict[str, dict], list[RowInput]]:
    typed = {}
    for m in milestones:
        key = f"ms-{m.id}"
        if f"{key}-title" in form or f"{key}-cancel" in form:
            typed[str(m.id)] = {f: form.get(f"{key}-{f}", "") for f in ("title", "deliverable", "amount", "due_date")}
            typed[str(m.id)]["cancel"] = form.get(f"{key}-cancel") == "1"
    additions: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        if match := _NEW_KEY.match(key):
            additions.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return typed, [RowInput(**additions[i]) for i in sorted(additions)][:MAX_NEW_ROWS]


def _form(engagement, milestones, typed, additions, based_on, reason, *, errors=None, status=200):
    # The schedule's total now and as typed (the service's sums); app.js follows the typing between posts.
    data = service.ChangeOrderInput(
        reason=reason,
        based_on=based_on,
        changes=[service.MilestoneChange(milestone_id=mid, **values) for mid, values in typed.items()],
        additions=additions,
    )
    total_now, total_after = service.schedule_totals(milestones, data, engagement.currency)
    return render(
        "engagements/change_order.html",
        "engagements/_change_order_form.html",
        e=engagement,
        milestones=milestones,
        typed=typed,
        additions=additions,
        based_on=based_on,
        reason=reason,
        errors=errors or {},
        adjustable=rules.ADJUSTABLE,
        cancellable=rules.CANCELLABLE,
        total_now=total_now,
        total_after=total_after,
        status=status,
    )


@bp.route("/<engagement_id>/change-orders/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new(engagement_id):
    engagement = get_engagement(db(), engagement_id)
    require_manager(actor(), engagement)
    if engagement.status not in rules.CHANGE_ORDERS_ALLOWED:
        raise InvalidTransition(
            "Change orders apply to active or paused engagements; a draft's milestones are edited directly."
        )
    milestones = queries.milestone_list(db(), engagement.id)
    if request.method == "GET":
        based_on = service.latest_number(db(), engagement.id)
        return _form(engagement, milestones, _as_typed(milestones, engagement.currency), [], based_on, "")
    typed, additions = _posted(request.form, milestones)
    typed = _as_typed(milestones, engagement.currency) | typed
    based_on = int(request.form.get("based_on", "0")) if request.form.get("based_on", "0").isdigit() else -1
    reason = request.form.get("reason", "")
    if request.form.get("op") == "add":
        return _form(engagement, milestones, typed, [*additions, RowInput()], based_on, reason)
    data = service.ChangeOrderInput(
        reason=reason,
        based_on=based_on,
        changes=[service.MilestoneChange(milestone_id=mid, **values) for mid, values in typed.items()],
        additions=additions,
    )
    try:
        co = service.issue_change_order(db(), actor(), engagement.id, data)
    except ValidationError as exc:
        return _form(engagement, milestones, typed, additions, based_on, reason, errors=exc.fields, status=422)
    except (Conflict, InvalidTransition) as exc:  # issued or closed by someone else meanwhile: nothing changed
        return _form(
            engagement, milestones, typed, additions, based_on, reason, errors={"lines": exc.message}, status=409
        )
    flash(f"CO-{co.number} issued and applied. The contractor sees it on the engagement.", "success")
    return redirect_after_post(url_for("engagements.show", engagement_id=engagement.id) + f"#co-{co.number}")
