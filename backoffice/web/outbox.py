"""The outbox (admins): every email the organization sent or kept, its status and retries, and a
button to send a kept or failed one again."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, request, url_for
from flask_login import login_required

from backoffice.domain.roles import Role
from backoffice.queries import notifications as queries
from backoffice.services import notifications as notification_service
from backoffice.services.email_words import event_words
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("outbox", __name__, url_prefix="/admin/outbox")


@bp.context_processor
def _words() -> dict:
    """Plain words for the outbox's pages: what each email was for, and whether email is set up at all."""
    return {
        "event_words": event_words,
        "email_configured": current_app.config["BACKOFFICE_SETTINGS"].email_configured,
    }


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    status, event = request.args.get("status", ""), request.args.get("event", "")
    return render(
        "outbox/index.html",
        outbox=queries.outbox(
            db(),
            actor(),
            status=status,
            event=event,
            cursor=queries.OUTBOX_KEYSET.read(request.args.get("after"), request.args.get("before")),
        ),
        pager_args={k: v for k, v in (("status", status), ("event", event)) if v},
        count_cap=queries.COUNT_CAP,
        status_filter=status,
        event=event,
        statuses=queries.OUTBOX_STATUSES,
    )


@bp.route("/<message_id>")
@login_required
@roles_required(Role.ADMIN)
def show(message_id):
    return render(
        "outbox/show.html", message=queries.outbox_message(db(), actor(), message_id), statuses=queries.OUTBOX_STATUSES
    )


@bp.route("/<message_id>/html")
@login_required
@roles_required(Role.ADMIN)
def html(message_id):
    """The HTML body as the recipient sees it, for the preview frame: sandboxed, no scripts, no forms."""
    message = queries.outbox_message(db(), actor(), message_id)
    response = Response(message.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/<message_id>/resend", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def resend(message_id):
    message = notification_service.requeue(db(), actor(), message_id)
    flash(f"The message to {message.recipient} is queued to be sent again.", "success")
    return redirect_after_post(url_for("outbox.show", message_id=message.id))
