"""The retainage report: withheld, released and held, per engagement and per contractor. (The release
itself is authorized on the engagement page: web/engagements.py.)"""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from backoffice.domain.roles import STAFF_ROLES
from backoffice.queries import money as queries
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import render

bp = Blueprint("retainage", __name__)


@bp.route("/retainage/")
@login_required
@roles_required(*STAFF_ROLES)
def report():
    engagements, contractors = queries.retainage_report(db())
    return render("retainage/report.html", engagements=engagements, contractors=contractors, me=actor())
