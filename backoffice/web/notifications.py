"""The bell: in-app notifications, the unread count htmx refreshes, marking read."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_login import login_required

from backoffice.queries import notifications as queries
from backoffice.services import notifications as notification_service
from backoffice.web.auth import safe_next
from backoffice.web.context import actor, db
from backoffice.web.forms import page_number
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.route("/")
@login_required
def index():
    unread_only = request.args.get("show") == "unread"
    return render(
        "notifications/index.html",
        inbox=queries.inbox(db(), actor(), page=page_number(), unread_only=unread_only),
        unread_only=unread_only,
    )


@bp.route("/count")
@login_required
def count():
    """The bell's badge; htmx refreshes it every 30 seconds."""
    return render("notifications/_bell.html", unread=queries.unread_count(db(), actor()))


@bp.route("/<notification_id>/open", methods=["POST"])
@login_required
def open_(notification_id):
    """Mark read and go where the notification points (a path inside the app)."""
    notification = notification_service.mark_read(db(), actor(), notification_id)
    return redirect_after_post(safe_next(notification.url) or url_for("notifications.index"))


@bp.route("/<notification_id>/read", methods=["POST"])
@login_required
def read(notification_id):
    notification_service.mark_read(db(), actor(), notification_id)
    return redirect_after_post(url_for("notifications.index", **{k: v for k, v in request.args.items() if k == "show"}))


@bp.route("/read-all", methods=["POST"])
@login_required
def read_all():
    count = notification_service.mark_all_read(db(), actor())
    flash(f"Marked {count} notification(s) as read." if count else "Nothing was unread.", "success")
    return redirect_after_post(url_for("notifications.index"))
