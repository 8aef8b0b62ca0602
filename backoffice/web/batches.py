"""AP export batches: create one from the queue, download its file (the same bytes every time), record
its payment run, void it (admins, before payment)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, flash, request, stream_with_context, url_for
from flask_login import login_required

from backoffice.domain.ap_export import Preset
from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.errors import DomainError, NotFound, ValidationError
from backoffice.queries import money as queries
from backoffice.services import ap_export as export_service
from backoffice.services import organizations as org_service
from backoffice.services import payments as payment_service
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.forms import page_number
from backoffice.web.htmx import redirect_after_post, render
from backoffice.web.payments import FILTER_ARGS

bp = Blueprint("batches", __name__, url_prefix="/batches")


@bp.route("/")
@login_required
@roles_required(*FINANCE_ROLES)
def index():
    page = page_number()
    rows, total = queries.batch_list(db(), page)
    org = org_service.current_organization(db(), actor())
    return render(
        "batches/index.html",
        rows=rows,
        total=total,
        page=page,
        per_page=queries.PER_PAGE,
        presets=Preset,
        org_preset=org.ap_export_preset,
    )


@bp.route("/", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def create():
    form = request.form
    selection = export_service.Selection(
        invoice_ids=tuple(form.getlist("invoice_id")),
        due_by=form.get("due_by", ""),
        currency=form.get("currency", ""),
        preset=form.get("preset", ""),
    )
    if not selection.invoice_ids and "due_by" not in form and "currency" not in form:
        flash("Nothing was exported. Select at least one authorized payment to export.", "error")
        return redirect_after_post(url_for("payments.queue"))
    try:
        batch = export_service.create_batch(db(), actor(), selection)
    except DomainError as exc:
        if exc.status == 404:
            raise
        message = exc.message if not isinstance(exc, ValidationError) else " ".join(exc.fields.values())
        flash(f"Nothing was exported: {message}", "error")
        filters = {k: v for k, v in request.args.items() if k in FILTER_ARGS}
        return redirect_after_post(url_for("payments.queue", **filters))
    flash(f"{export_service.describe(batch)}. Download the file below; its payments are now exported.", "success")
    return redirect_after_post(url_for("batches.show", batch_id=batch.id))


def _detail(batch_id):
    row_id = parse_id(batch_id)
    cursor = queries.BATCH_KEYSET.read(request.args.get("after"), request.args.get("before"))
    found = row_id and queries.batch_detail(db(), row_id, cursor)
    if not found:
        raise NotFound()
    return found


def _context(batch_id, **extra) -> dict:
    batch, page = _detail(batch_id)
    return {
        "b": batch,
        "unpaid_minor": queries.batch_unpaid_minor(db(), batch.id),
        "page": page,
        "invoices": page.rows,
        "methods": payment_service.METHODS,
        "today": date.today(),
        "presets": Preset,
        "is_admin": actor().role == Role.ADMIN,
        "errors": {},
        "values": {},
        **extra,
    }


@bp.route("/<batch_id>")
@login_required
@roles_required(*FINANCE_ROLES)
def show(batch_id):
    return render("batches/show.html", **_context(batch_id))


@bp.route("/<batch_id>/download")
@login_required
@roles_required(*FINANCE_ROLES)
def download(batch_id):
    session = db()
    batch = export_service.get_batch(session, batch_id)
    name = export_service.download_name(session, batch)
    response = Response(stream_with_context(export_service.read_file(session, batch)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Content-Length"] = str(batch.size_bytes)
    response.headers["ETag"] = f'"{batch.sha256}"'
    response.headers["X-Content-SHA256"] = batch.sha256
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/<batch_id>/void", methods=["POST"])
@login_required
@roles_required(Role.ADMIN)
def void(batch_id):
    reason = request.form.get("reason", "")
    try:
        batch = export_service.void_batch(db(), actor(), batch_id, reason)
    except ValidationError as exc:
        return render(
            "batches/show.html", status=422, **_context(batch_id, errors=exc.fields, values={"reason": reason})
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        return render("batches/show.html", status=exc.status, **_context(batch_id, refused=exc.message))
    flash(f"Batch {batch.number} voided; its payments are back in the queue, ready to export again.", "success")
    return redirect_after_post(url_for("batches.show", batch_id=batch_id))


@bp.route("/<batch_id>/pay", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def pay(batch_id):
    form = request.form
    data = payment_service.PaymentInput(form.get("paid_at", ""), form.get("reference", ""), form.get("method", ""))
    values = {"paid_at": data.paid_at, "reference": data.reference, "method": data.method}
    try:
        payments = payment_service.record_batch_payment(db(), actor(), batch_id, data)
    except ValidationError as exc:
        return render("batches/show.html", status=422, **_context(batch_id, errors=exc.fields, values=values))
    except DomainError as exc:
        if exc.status == 404:
            raise
        return render(
            "batches/show.html", status=exc.status, **_context(batch_id, pay_refused=exc.message, values=values)
        )
    flash(f"{len(payments)} payment{'' if len(payments) == 1 else 's'} recorded for the batch.", "success")
    return redirect_after_post(url_for("batches.show", batch_id=batch_id))
