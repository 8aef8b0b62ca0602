"""The data room: every authorized payment's self-billed invoice (PDF), e-invoice (UBL) and credit note, and the
remittance advice of every payment run, for finance and admins. A contractor's users download their own
contractor's documents (from their invoice pages and payments); every other document is a 404 to them, as to
owners, as if it did not exist: the database's policies decide what a download finds (sql/data_room.sql)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, request
from flask_login import login_required

from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.models import Document
from backoffice.queries import notifications as queries
from backoffice.queries.einvoices import KIND_WORDS
from backoffice.services.validation import clean_date, clean_text, get_visible, parse_id
from backoffice.web.context import actor, db
from backoffice.web.htmx import render

bp = Blueprint("documents", __name__, url_prefix="/documents")


def _finance_only() -> None:
    if actor().role not in FINANCE_ROLES:
        abort(404)


def _day(value: str | None, field: str, errors: dict[str, str]) -> date | None:
    return clean_date(value, field, errors, label="date") if value else None  # empty: no bound


@bp.route("/")
@login_required
def index():
    _finance_only()
    args, errors = request.args, {}
    search = clean_text(args.get("q"), "q", errors, label="search", required=False, max_len=100)
    filters = queries.DocumentFilters(
        contractor_id=parse_id(args.get("contractor_id")),
        engagement_id=parse_id(args.get("engagement_id")),
        search="" if "q" in errors else search or "",  # a refused search filters nothing
        issued_from=_day(args.get("from"), "from", errors),
        issued_to=_day(args.get("to"), "to", errors),
    )
    cursor = queries.DATA_ROOM_KEYSET.read(args.get("after"), args.get("before"))
    room = queries.data_room(db(), filters, cursor=cursor)
    pager_args = {k: v for k, v in args.items() if k not in ("page", "after", "before") and v}
    return render(
        "documents/index.html",
        room=room,
        kind_words=KIND_WORDS,
        filters=filters,
        args=args,
        errors=errors,
        pager_args=pager_args,
        status=422 if errors else 200,
    )


@bp.route("/<document_id>/download")
@login_required
def download(document_id):
    return _attachment(get_visible(db(), Document, document_id))


@bp.route("/remittance-advice/<run_id>/<contractor_id>")
@login_required
def remittance_advice(run_id, contractor_id):
    """The link of a payment run's notice: the advice's PDF once the worker has issued it, a page saying it is on
    its way until then, a 404 for a run that paid the caller's contractor nothing (or for an owner)."""
    run, contractor = parse_id(run_id), parse_id(contractor_id)
    if run is None or contractor is None or actor().role not in (*FINANCE_ROLES, Role.CONTRACTOR):
        abort(404)
    document = queries.remittance_advice(db(), run, contractor)
    if document is not None:
        return _attachment(document)
    if not queries.run_paid_to(db(), run, contractor):
        abort(404)
    return render("documents/remittance_pending.html")


def _attachment(document: Document) -> Response:
    response = Response(document.content, mimetype=document.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    response.headers["ETag"] = f'"{document.sha256}"'
    response.headers["X-Content-SHA256"] = document.sha256
    response.headers["Cache-Control"] = "private, no-store"
    return response
