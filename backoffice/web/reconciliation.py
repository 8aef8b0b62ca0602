"""The reconciliation of Stripe's transfers with the payments recorded here (issue 17, item 5): the latest run and
its findings for finance and admins, and "Check now", which queues a run for the current organization."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, url_for
from flask_login import login_required

from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import Conflict
from backoffice.queries import reconciliation as queries
from backoffice.services import reconciliation as service
from backoffice.services.stripe_payouts import rail_problem
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("reconciliation", __name__)


def _configured() -> bool:
    return current_app.config["BACKOFFICE_SETTINGS"].stripe_configured


@bp.route("/payments/reconciliation")
@login_required
@roles_required(*FINANCE_ROLES)
def index():
    session = db()
    run = queries.latest_run(session)
    return render(
        "payments/reconciliation.html",
        run=run,
        rows=queries.findings_of(session, run.id) if run else [],
        waiting=queries.waiting_since(session),
        problem=rail_problem(session, actor().org_id, configured=_configured()),
        window_days=service.WINDOW.days,
    )


@bp.route("/payments/reconciliation/check", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def check():
    try:
        service.request_check(db(), actor(), configured=_configured())
    except Conflict as exc:
        flash(f"Nothing was queued: {exc.message}", "error")
    else:
        flash("Checking with Stripe now: the result shows on this page in a minute or two.", "success")
    return redirect_after_post(url_for("reconciliation.index"))
