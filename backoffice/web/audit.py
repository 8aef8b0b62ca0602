"""The audit trail for admins and finance: newest first, with a chain check."""

from __future__ import annotations

from flask import Blueprint, request

from backoffice.domain.roles import FINANCE_ROLES
from backoffice.queries import admin as queries
from backoffice.services import audit as audit_service
from backoffice.web.context import db, roles_required
from backoffice.web.htmx import render, wants_fragment

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _page(before: int | None = None, **extra):
    events = queries.audit_page(db(), before)
    next_before = events[-1].seq if len(events) == queries.PAGE_SIZE else None
    return render("audit/index.html", "audit/_rows.html", events=events, next_before=next_before, **extra)


@bp.route("/")
@roles_required(*FINANCE_ROLES)
def index():
    return _page(request.args.get("before", type=int))


@bp.route("/verify", methods=["POST"])
@roles_required(*FINANCE_ROLES)
def verify():
    check = audit_service.check_trail(db(), documents=True)
    if wants_fragment():
        return render("audit/_verify.html", check=check)
    return _page(verified=True, check=check)  # without JavaScript: the whole page
