"""The signed-in person's own settings (issue 22, item 10): their time zone and how they want to be emailed.
Reached from the account menu; every member, whatever their role."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, g, request, url_for
from flask_login import current_user, login_required

from backoffice.domain.preferences import NOTIFY_CHOICES, Preferences, zone, zone_groups
from backoffice.errors import ValidationError
from backoffice.services import preferences as preference_service
from backoffice.web.context import actor, db
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("account", __name__, url_prefix="/account")


def viewer_preferences() -> Preferences:
    """The signed-in person's preferences, read once per request (flask.g); the defaults for nobody signed in."""
    if "viewer_preferences" not in g:
        signed_in = current_user.is_authenticated and getattr(current_user, "actor", None) is not None
        g.viewer_preferences = (
            preference_service.preferences_of(db(), current_user.user_id) if signed_in else Preferences()
        )
    return g.viewer_preferences


def viewer_zone():
    """The zone the pages show this person's times in (UTC without a request, a person or a choice)."""
    return zone(viewer_preferences().time_zone)


def _page(prefs: Preferences, *, errors: dict[str, str] | None = None, status: int = 200):
    return render(
        "account/preferences.html",
        prefs=prefs,
        errors=errors or {},
        zone_groups=zone_groups(),
        notify_choices=NOTIFY_CHOICES,
        example=datetime.now(zone(prefs.time_zone)),
        status=status,
    )


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def preferences():
    who = actor()
    if request.method == "GET":
        return _page(viewer_preferences())
    time_zone, notify = request.form.get("time_zone", ""), request.form.get("notify", "")
    try:
        preference_service.save_preferences(db(), who, time_zone=time_zone, notify=notify)
    except ValidationError as exc:
        # Shown back as typed (escaped by the template), the message at its field; nothing was saved.
        return _page(Preferences(time_zone[:64], notify[:16]), errors=exc.fields, status=422)
    flash("Preferences saved.", "success")
    return redirect_after_post(url_for("account.preferences"))
