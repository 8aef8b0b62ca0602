"""Payment controls on the web (issue 18): the approvals queue with Approve / Reject in place, delegations, the
admins' approval policies, and holds on invoices and contractors. Each view parses, calls one service, maps errors."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, request, url_for
from flask_login import login_required

from backoffice.domain.approvals import APPROVER_ROLES
from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.errors import DomainError, ValidationError
from backoffice.queries import approvals as queries
from backoffice.queries import payability
from backoffice.services import approvals as service
from backoffice.services import holds as hold_service
from backoffice.services.approvals import PolicyInput, StepInput
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("approvals", __name__)

POLICY_STEPS_SHOWN = 3


def _today():
    return datetime.now(UTC).date()


def _queue_context(**extra) -> dict:
    me = actor()
    return {
        "waiting": queries.waiting_for(db(), me, _today()),
        "delegations": queries.delegations(db(), me, _today()),
        "staff": [s for s in queries.staff_choices(db(), me.org_id) if s[0] != me.user_id],
        "errors": {},
        "values": {},
        "today": _today(),
        **extra,
    }


@bp.route("/approvals/")
@login_required
@roles_required(*APPROVER_ROLES)
def index():
    return render("approvals/index.html", **_queue_context())


@bp.route("/approvals/<invoice_id>/decide", methods=["POST"])
@login_required
@roles_required(*APPROVER_ROLES)
def decide(invoice_id):
    decision = request.form.get("decision", "")
    back = request.form.get("next") == "invoice"
    target = url_for("payments.invoice", invoice_id=invoice_id) if back else url_for("approvals.index")
    try:
        service.decide_step(db(), actor(), invoice_id, decision, request.form.get("reason", ""))
    except ValidationError as exc:
        message = exc.fields.get("reason") or exc.fields.get("decision") or exc.message
        if back:
            from backoffice.web.payments import invoice_page

            return invoice_page(invoice_id, status=422, approval_error=message)
        return render("approvals/index.html", status=422, **_queue_context(errors={f"reason-{invoice_id}": message}))
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(target)
    flash("Approved." if decision == "approve" else "Rejected: the work went back to the contractor.", "success")
    return redirect_after_post(target)


@bp.route("/approvals/delegations", methods=["POST"])
@login_required
@roles_required(*APPROVER_ROLES)
def delegate():
    form = request.form
    values = {k: form.get(k, "") for k in ("delegate_id", "starts_on", "ends_on")}
    try:
        row = service.delegate(db(), actor(), values["delegate_id"], values["starts_on"], values["ends_on"])
    except ValidationError as exc:
        return render("approvals/index.html", status=422, **_queue_context(errors=exc.fields, values=values))
    flash(f"Your stand-in decides your approval steps from {row.starts_on:%d %b} to {row.ends_on:%d %b %Y}.", "success")
    return redirect_after_post(url_for("approvals.index"))


@bp.route("/approvals/delegations/<delegation_id>/end", methods=["POST"])
@login_required
@roles_required(*APPROVER_ROLES)
def end_delegation(delegation_id):
    return _done_or_told(
        lambda: service.revoke_delegation(db(), actor(), delegation_id), "The delegation ended.", "approvals.index"
    )


def _done_or_told(act, done: str, endpoint: str):
    """Run a one-button action and go back to ``endpoint`` with what happened: ``done``, or why not (a 404 stays
    one: someone else's row looks like no row)."""
    try:
        act()
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(url_for(endpoint))
    flash(done, "success")
    return redirect_after_post(url_for(endpoint))


# --- the admins' policies ---------------------------------------------------------------------------------


def _policy_context(**extra) -> dict:
    return {
        "policies": queries.policies(db(), actor().org_id),
        "staff": queries.staff_choices(db(), actor().org_id),
        "step_roles": [(r.value, r.label) for r in (Role.FINANCE, Role.ADMIN, Role.OWNER)],
        "steps_shown": POLICY_STEPS_SHOWN,
        "errors": {},
        "values": {"currency": "USD"},
        **extra,
    }


@bp.route("/admin/settings/approvals", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def policies():
    if request.method == "GET":
        return render("approvals/policies.html", **_policy_context())
    form = request.form
    steps = [
        StepInput(role=form.get(f"step-{n}-role", ""), people=form.getlist(f"step-{n}-people"))
        for n in range(1, POLICY_STEPS_SHOWN + 1)
    ]
    values = {k: form.get(k, "") for k in ("name", "currency", "min_amount", "replaces")}
    values["steps"] = steps
    try:
        policy = service.create_policy(
            db(),
            actor(),
            PolicyInput(values["name"], values["currency"], values["min_amount"], steps),
            replaces=values["replaces"] or None,
        )
    except ValidationError as exc:
        return render("approvals/policies.html", status=422, **_policy_context(errors=exc.fields, values=values))
    except DomainError as exc:
        if exc.status == 404:
            raise
        return render(
            "approvals/policies.html", status=exc.status, **_policy_context(refused=exc.message, values=values)
        )
    flash(f"“{policy.name}” applies from now on to new authorizations.", "success")
    return redirect_after_post(url_for("approvals.policies"))


@bp.route("/admin/settings/approvals/<policy_id>/off", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def policy_off(policy_id):
    return _done_or_told(
        lambda: service.archive_policy(db(), actor(), policy_id),
        "The policy is off; payments waiting under it keep their steps.",
        "approvals.policies",
    )


# --- holds -------------------------------------------------------------------------------------------------


@bp.route("/payments/holds")
@login_required
@roles_required(*FINANCE_ROLES)
def holds():
    return render("approvals/holds.html", **_holds_context())


def _holds_context(**extra) -> dict:
    return {
        "holds": payability.live_holds(db()),
        "contractors": payability.contractor_choices(db()),
        "errors": {},
        **extra,
    }


@bp.route("/invoices/<invoice_id>/hold", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def hold_invoice(invoice_id):
    target = url_for("payments.invoice", invoice_id=invoice_id)
    try:
        hold_service.hold_invoice(db(), actor(), invoice_id, request.form.get("reason", ""))
    except ValidationError as exc:
        flash(exc.fields.get("reason", exc.message), "error")
        return redirect_after_post(target + "#hold-form")
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(target)
    flash("On hold: nothing exports or pays it until the hold is released.", "success")
    return redirect_after_post(target)


@bp.route("/payments/holds/contractor", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def hold_contractor():
    form = request.form
    try:
        hold_service.hold_contractor(db(), actor(), form.get("contractor_id", ""), form.get("reason", ""))
    except ValidationError as exc:
        return render("approvals/holds.html", status=422, **_holds_context(errors=exc.fields, values=dict(form)))
    except DomainError as exc:
        if exc.status == 404:
            errors = {"contractor_id": "Choose the contractor to hold."}
            return render("approvals/holds.html", status=422, **_holds_context(errors=errors, values=dict(form)))
        flash(exc.message, "error")
        return redirect_after_post(url_for("approvals.holds"))
    flash("Every payment to that contractor is on hold until released.", "success")
    return redirect_after_post(url_for("approvals.holds"))


@bp.route("/payments/holds/<hold_id>/release", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def release(hold_id):
    nxt = request.form.get("next", "")
    try:
        hold = hold_service.release(db(), actor(), hold_id, request.form.get("note", ""))
    except ValidationError as exc:
        flash(exc.fields.get("note", exc.message), "error")
        return redirect_after_post(url_for("approvals.holds"))
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(url_for("approvals.holds"))
    flash("Hold released.", "success")
    if nxt == "invoice" and hold.invoice_id:
        return redirect_after_post(url_for("payments.invoice", invoice_id=hold.invoice_id))
    return redirect_after_post(url_for("approvals.holds"))
