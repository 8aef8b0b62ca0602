"""The retainage report: withheld, released and held, per engagement and per contractor. (The release
itself is authorized on the engagement page: web/engagements.py.)"""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from backoffice.domain.roles import STAFF_ROLES
from backoffice.queries import money as queries
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import render

bp = Blueprint("retainage", __name__)


def _contractor(contractor_id, contractors):
    """The contractor the page is narrowed to, named even when outside the most-held list."""
    if contractor_id is None:
        return None
    listed = next((c for c in contractors if c.contractor_id == contractor_id), None)
    return listed or next(iter(queries.retainage_by_contractor(db(), limit=None, contractor_id=contractor_id)), None)


@bp.route("/retainage/")
@login_required
@roles_required(*STAFF_ROLES)
def report():
    contractor_id = parse_id(request.args.get("contractor_id"))
    cursor = queries.RETAINAGE_KEYSET.read(request.args.get("after"), request.args.get("before"))
    contractors = queries.retainage_by_contractor(db())
    return render(
        "retainage/report.html",
        page=queries.retainage_report(db(), contractor_id=contractor_id, cursor=cursor),
        contractors=contractors,
        contractor=_contractor(contractor_id, contractors),
        shown=queries.CONTRACTORS_SHOWN,
        args={"contractor_id": contractor_id} if contractor_id else {},
        me=actor(),
    )
