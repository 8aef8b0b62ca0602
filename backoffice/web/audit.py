"""The audit trail for admins and finance: newest first, with a chain check."""

from __future__ import annotations

from flask import Blueprint, request

from backoffice.domain.audit_chain import parse_heads
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.queries import admin as queries
from backoffice.queries.audit_names import audit_names
from backoffice.services import audit as audit_service
from backoffice.services import audit_words
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import render, wants_fragment

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _page(before: int | None = None, status: int = 200, **extra):
    events = queries.audit_page(db(), before)
    next_before = events[-1].seq if len(events) == queries.PAGE_SIZE else None
    return render(
        "audit/index.html",
        "audit/_rows.html",
        status=status,
        events=_in_words(events),
        next_before=next_before,
        **extra,
    )


def _in_words(events) -> list[tuple]:
    """Each event with its sentence and labelled details (services/audit_words), names looked up for the page."""
    names = audit_names(db(), actor().org_id, events)
    return [
        (
            e,
            audit_words.describe(
                e.action,
                e.entity_type,
                e.entity_id,
                e.data,
                who=names.names.get(str(e.actor_user_id)) or e.actor_label,
                names=names,
            ),
        )
        for e in events
    ]


@bp.route("/")
@roles_required(*FINANCE_ROLES)
def index():
    return _page(request.args.get("before", type=int))


MAX_PASTED_HEADS = 20_000  # characters: a year of daily digests' lines, and then some


@bp.route("/verify", methods=["POST"])
@roles_required(*FINANCE_ROLES)
def verify():
    """Check the chain, the heads the organization's documents carried, and any heads pasted from
    digests, receipts or a file kept outside backoffice (one 'org_id seq hash' a line)."""
    pasted = request.form.get("heads", "")
    errors = {}
    kept = []
    if len(pasted) > MAX_PASTED_HEADS:
        errors["heads"] = f"Paste at most {MAX_PASTED_HEADS:,} characters at a time."
    else:
        try:
            kept = parse_heads(pasted, "you pasted on")
        except ValueError as exc:
            line = str(exc).removeprefix("you pasted on ")
            errors["heads"] = f"{line[0].upper()}{line[1:]}. Paste the head lines as digests and receipts print them."
    if errors:
        if wants_fragment():
            return render("audit/_verify_form.html", errors=errors, heads=pasted, status=422)
        return _page(errors=errors, heads=pasted, status=422)
    check = audit_service.check_trail(db(), kept, documents=True)
    audit_service.record_check(db(), actor(), check)  # the admin's home shows the last check (issue 22)
    if wants_fragment():
        return render("audit/_verify.html", check=check, pasted=len(kept))
    return _page(verified=True, check=check, pasted=len(kept))  # without JavaScript: the whole page
