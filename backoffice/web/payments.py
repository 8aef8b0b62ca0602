"""Finance's payment queue, one invoice's page, recording a payment, and the remittance import; and a
contractor's own payments."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import login_required

from backoffice.domain import approvals as approval_rules
from backoffice.domain.approvals import APPROVER_ROLES
from backoffice.domain.currency import is_currency, minor_units
from backoffice.domain.invoices import InvoiceStatus, handed_to_rail
from backoffice.domain.money import SYMBOLS
from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.errors import DomainError, NotFound, ValidationError
from backoffice.queries import approvals as approval_queries
from backoffice.queries import money as queries
from backoffice.queries import payability as payability_queries
from backoffice.queries import queue_selection
from backoffice.queries.einvoices import invoice_documents
from backoffice.queries.notifications import (
    ADVICES_SHOWN,
    remittance_advice_of_invoice,
    remittance_advices,
)
from backoffice.services import approvals as approval_service
from backoffice.services import einvoices, stripe_payouts
from backoffice.services import holds as hold_service
from backoffice.services import payments as payment_service
from backoffice.services.ap_export import MAX_SELECTED
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render
from backoffice.web.payouts import payout_view, with_onboarding

bp = Blueprint("payments", __name__)


def queue_filters(args) -> tuple[queries.QueueFilters, dict[str, str]]:
    """The queue's filters from the query string; a malformed value is dropped with a note, not a 500."""
    notes: dict[str, str] = {}
    days: dict[str, date | None] = {"due_before": None, "due_from": None}
    for name in days:
        if args.get(name):
            try:
                days[name] = date.fromisoformat(args[name])
            except ValueError:
                notes[name] = "Enter the date as YYYY-MM-DD; the filter was ignored."
    status = args.get("status", "open")
    sort = "-due" if args.get("sort") == "-due" else "due"
    filters = queries.QueueFilters(
        status=status if status in queries.QUEUE_STATUSES else "open",
        **days,
        # A currency code or nothing: anything else (a NUL byte included) is no filter rather than a 500.
        currency=currency if is_currency(currency := (args.get("currency") or "").upper()[:3]) else None,
        contractor_id=parse_id(args.get("contractor_id")),
        engagement_id=parse_id(args.get("engagement_id")),
        sort=sort,
        cursor=queries.queue_keyset(sort).read(args.get("after"), args.get("before")),
    )
    return filters, notes


@bp.route("/payments/")
@login_required
@roles_required(*FINANCE_ROLES)
def queue():
    filters, notes = queue_filters(request.args)
    # "Select every payment that matches the filter" (issue 22): the selection becomes the filter, counted here and
    # again by the action when it runs.
    everything = queue_selection.matching(db(), filters) if request.args.get("select") == "matching" else None
    if everything is not None and not everything.count:
        return queue_page(filters, notes, request.args, none_matching=True)
    return queue_page(filters, notes, request.args, all_matching=everything)


def queue_page(filters: queries.QueueFilters, notes: dict, source, *, status: int = 200, **extra):
    """The queue (also re-rendered by a refused bulk action, with its message at the controls)."""
    result = queries.payment_queue(db(), filters, org_id=actor().org_id)
    why = payability_queries.payability(db(), [r for r in result.rows if r.status.value != "paid"], date.today())
    args = {k: v for k, v in source.items() if k in FILTER_ARGS}
    context = {"all_matching": None, "none_matching": False, "bulk_error": None, "reason": "", "paid": {}} | extra
    return render(
        "payments/queue.html",
        "payments/_queue.html",
        status=status,
        q=result,
        why=why,
        f=filters,
        notes=notes,
        options=queries.queue_options(db(), filters.engagement_id),
        today=date.today(),
        args=args,
        # How the selection's live total writes each currency (app.js sums the rows' net in minor units).
        formats={c: (SYMBOLS.get(c, f"{c} "), minor_units(c)) for c in {r.currency for r in result.rows}},
        max_selected=MAX_SELECTED,
        methods=payment_service.METHODS,
        stripe_open=not stripe_payouts.rail_problem(db(), actor().org_id, configured=_stripe_configured()),
        **context,
    )


# The query-string arguments that make the queue's filter (and its order): what "all matching" re-reads.
FILTER_ARGS = ("status", "due_before", "due_from", "currency", "contractor_id", "engagement_id", "sort")


def _stripe_configured() -> bool:
    return current_app.config["BACKOFFICE_SETTINGS"].stripe_configured


MINE_PER_PAGE = 50


@bp.route("/invoices/")
@login_required
def mine():
    """A contractor's payments; staff have the queue (finance) or the engagement pages."""
    me = actor()
    if me.role in FINANCE_ROLES:
        return redirect(url_for("payments.queue"))
    if me.role != Role.CONTRACTOR:
        return redirect(url_for("retainage.report"))
    # The retainage report's per-contractor sums, which RLS narrows to this contractor: over every invoice,
    # not only the ones listed.
    retainage = queries.retainage_by_contractor(db(), limit=None, contractor_id=me.contractor_id)
    cursor = queries.MINE_KEYSET.read(request.args.get("after"), request.args.get("before"))
    page = queries.contractor_invoices(
        db(), org_id=me.org_id, contractor_id=me.contractor_id, cursor=cursor, per_page=MINE_PER_PAGE
    )
    payout = payout_view(me.contractor_id)
    return with_onboarding(
        render(
            "payments/mine.html",
            page=page,
            rows=page.rows,
            retainage=retainage,
            today=date.today(),
            payout=payout,
            remittance=remittance_advices(db(), me.contractor_id, limit=ADVICES_SHOWN),
            advices_shown=ADVICES_SHOWN,
        ),
        payout,
    )


def _detail(invoice_id) -> queries.InvoiceDetail:
    row_id = parse_id(invoice_id)
    detail = row_id and queries.invoice_detail(db(), row_id)
    if not detail:
        raise NotFound()
    return detail


def _invoice_context(detail: queries.InvoiceDetail, **extra) -> dict:
    me = actor()
    finance = me.role in FINANCE_ROLES
    # The invoice's documents (issue 21): finance's, admins' and its contractor's (the data room's policies).
    documents = invoice_documents(db(), detail.row.id) if finance or me.role == Role.CONTRACTOR else None
    einvoice_problems = (
        einvoices.problems_for(db(), detail.row.id)
        if finance and documents.einvoice is None and detail.row.status != InvoiceStatus.VOID
        else []
    )
    in_flight = handed_to_rail(detail.row.status, in_batch=detail.row.batch_id is not None)
    # Its payment run's remittance advice, for whoever the data room's policies let see it (finance, its contractor).
    advice = remittance_advice_of_invoice(db(), detail.row.id) if detail.row.status == "paid" else None
    controls = controls_context(detail)
    return {
        "d": detail,
        "i": detail.row,
        "today": date.today(),
        "methods": payment_service.METHODS,
        "method_labels": payment_service.METHOD_LABELS,
        "documents": documents,
        "einvoice_problems": einvoice_problems,
        "remittance": [advice] if advice else [],
        "can_pay": finance and detail.row.status.payable and not in_flight and not controls["why"].blocked,
        "in_flight": in_flight,
        "stripe": _stripe_option(detail) if finance else None,
        "own_approval": detail.authorized_by == me.user_id,
        **controls,
        "errors": {},
        "values": {},
        **extra,
    }


def controls_context(detail: queries.InvoiceDetail) -> dict:
    """The invoice page's payment controls (issue 18): why it is not payable yet, its approval steps and whether the
    viewer decides the one that waits (and for whom), its hold, and whether the viewer may hold it."""
    me = actor()
    row, authorized_by = detail.row, detail.authorized_by
    if me.role == Role.CONTRACTOR:
        return {"why": None, "steps": [], "my_step": None, "hold": None, "contractor_hold": None, "can_hold": False}
    today = date.today()
    found = payability_queries.payability(db(), [row], today, history=True)[row.id]
    my_step = None
    if row.status == InvoiceStatus.PENDING_APPROVAL and me.role in APPROVER_ROLES:
        step = approval_service.waiting_step(db(), row.id)
        if step is not None:
            approved = payability_queries.approvers_of(db(), [detail])[detail.id]
            deciding = approval_service.deciding_as(db(), me, step, today, frozenset(approved))
            refused = deciding is False or approval_rules.distinct_people_refusal(
                me.user_id, deciding, authorized_by, list(approved - {authorized_by})
            )
            if not refused:
                my_step = {"step": step.step, "for": approval_queries.names_of(db(), [deciding]).get(deciding)}
    return {
        "why": found,
        "steps": found.steps,
        "my_step": my_step,
        "hold": found.invoice_hold,
        "contractor_hold": found.contractor_hold,
        "can_hold": me.role in FINANCE_ROLES
        and row.status in hold_service.HOLDABLE
        and not handed_to_rail(row.status, in_batch=row.batch_id is not None)
        and found.invoice_hold is None,
    }


def _stripe_option(detail: queries.InvoiceDetail) -> dict | None:
    """Whether finance can send this invoice to Stripe now, or why not (None: the rail is not in use)."""
    if detail.row.status != InvoiceStatus.APPROVED:
        return None
    problem = stripe_payouts.rail_problem(db(), actor().org_id, configured=_stripe_configured())
    if problem:
        return None
    plan = stripe_payouts.plan(db(), actor(), [detail.row.id])
    blocked = plan.blocked[0].problem if plan.blocked else ""
    return {"ready": not blocked, "problem": blocked}


@bp.route("/invoices/<invoice_id>")
@login_required
def invoice(invoice_id):
    return invoice_page(invoice_id)


def invoice_page(invoice_id, *, status: int = 200, **extra):
    """The invoice's page (also re-rendered with an approval's error at its field: web/approvals)."""
    return render("payments/invoice.html", status=status, **_invoice_context(_detail(invoice_id), **extra))


@bp.route("/invoices/<invoice_id>/pay", methods=["POST"])
@login_required
def pay(invoice_id):
    form = request.form
    data = payment_service.PaymentInput(form.get("paid_at", ""), form.get("reference", ""), form.get("method", ""))
    values = {"paid_at": data.paid_at, "reference": data.reference, "method": data.method}
    try:
        payment = payment_service.record_payment(db(), actor(), invoice_id, data)
    except ValidationError as exc:
        return render(
            "payments/invoice.html",
            "payments/_pay_form.html",
            status=422,
            **_invoice_context(_detail(invoice_id), errors=exc.fields, values=values),
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        return render(
            "payments/invoice.html",
            "payments/_pay_form.html",
            status=exc.status,
            **_invoice_context(_detail(invoice_id), refused=exc.message, values=values),
        )
    detail = _detail(invoice_id)
    flash(f"Payment of {detail.row.invoice_number} recorded ({payment.reference}).", "success")
    return redirect_after_post(url_for("payments.invoice", invoice_id=invoice_id))


@bp.route("/payments/remittance", methods=["GET", "POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def remittance():
    """Upload a remittance file: every row is checked and shown; nothing is written until confirmed."""
    if request.method == "GET":
        return render(
            "payments/remittance.html", preview=None, method="ach", methods=payment_service.METHODS, csv_text=""
        )
    upload = request.files.get("file")
    method = request.form.get("method", "ach")
    content = upload.read(payment_service.MAX_REMITTANCE_BYTES + 1) if upload and upload.filename else b""
    if not content:
        return render(
            "payments/remittance.html",
            status=422,
            preview=None,
            method=method,
            methods=payment_service.METHODS,
            csv_text="",
            errors={"file": "Choose the remittance CSV file to check."},
        )
    preview = payment_service.preview_remittance(db(), actor(), content, method)
    return render(
        "payments/remittance.html",
        status=200 if preview.ok else 422,
        preview=preview,
        method=method,
        methods=payment_service.METHODS,
        csv_text=content.decode("utf-8-sig", "replace") if preview.ok else "",
        errors={},
    )


@bp.route("/payments/remittance/import", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def remittance_import():
    content = request.form.get("csv_text", "").encode("utf-8")
    method = request.form.get("method", "ach")
    try:
        payments = payment_service.import_remittance(db(), actor(), content, method)
    except ValidationError as exc:
        preview = payment_service.preview_remittance(db(), actor(), content, method)
        return render(
            "payments/remittance.html",
            status=422,
            preview=preview,
            method=method,
            methods=payment_service.METHODS,
            csv_text="",
            errors=exc.fields,
        )
    flash(f"{len(payments)} payment{'' if len(payments) == 1 else 's'} recorded from the remittance file.", "success")
    return redirect_after_post(url_for("payments.queue", status="paid"))
