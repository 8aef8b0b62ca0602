"""The review queue: submitted work waiting for its project owner (or any admin), oldest first."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import login_required

from backoffice.domain.roles import MANAGERS
from backoffice.queries import reviews as queries
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import render

bp = Blueprint("reviews", __name__, url_prefix="/reviews")


@bp.route("/")
@login_required
@roles_required(*MANAGERS)
def index():
    cursor = queries.QUEUE_KEYSET.read(request.args.get("after"), request.args.get("before"))
    page = queries.review_queue(db(), actor(), cursor=cursor)
    return render("reviews/index.html", "reviews/_queue.html", page=page, rows=page.rows)


@bp.route("/count")
@login_required
@roles_required(*MANAGERS)
def count():
    """The navigation's badge; htmx refreshes it every minute and after each decision."""
    return render("reviews/_count.html", count=queries.queue_count(db(), actor()), cap=queries.COUNT_CAP)


@bp.route("/next")
@login_required
@roles_required(*MANAGERS)
def next_one():
    """The next milestone waiting for this person after ``after`` in the queue's order (the decide-and-open-next
    button and the "n" key land here); the queue itself, saying so, when nothing else waits."""
    after = parse_id(request.args.get("after", ""))
    milestone_id = queries.next_in_queue(db(), actor(), after)
    if milestone_id is None:
        flash("Nothing else is waiting for your review.", "info")
        return redirect(url_for("reviews.index"), code=303)
    then = {"then": "next"} if request.args.get("then") == "next" else {}  # the decision's box stays ticked
    return redirect(url_for("milestones.show", milestone_id=milestone_id, **then), code=303)
