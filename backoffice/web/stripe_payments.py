"""Paying through Stripe (issue 17, item 3): finance reviews what a send would do (count and total per currency,
and what cannot go, with why), confirms, and the invoices go to Stripe as one payment run; an invoice Stripe
refused or reversed is released from its hold here."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import login_required

from backoffice.domain.money import format_amount
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import DomainError
from backoffice.services import stripe_payouts
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("stripe_payments", __name__)


def _configured() -> bool:
    return current_app.config["BACKOFFICE_SETTINGS"].stripe_configured


def _ids(values: list[str]) -> list:
    ids = [parse_id(v) for v in values]
    return [i for i in ids if i is not None]


def _due_by(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.route("/payments/stripe/review", methods=["GET", "POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def review():
    """The confirmation: what sending these invoices (or everything due by a date) to Stripe would pay. Writes
    nothing; the button posts exactly the invoices listed."""
    source = request.form if request.method == "POST" else request.args
    return review_of(_ids(source.getlist("invoice_id")), _due_by(source.get("due_by")))


def review_of(ids: list, due_by: date | None):
    """The review page of sending ``ids`` (or everything due by ``due_by``); also the payment queue's "Pay selected by
    Stripe…", for the ticked rows or every row the filter matches (web/payments.bulk)."""
    me = actor()
    problem = stripe_payouts.rail_problem(db(), me.org_id, configured=_configured())
    if not ids and due_by is None:
        flash("Select the payments to send to Stripe, or choose a due date. Nothing was sent.", "error")
        return redirect(url_for("payments.queue"), code=303)
    try:
        plan = stripe_payouts.plan(db(), me, ids or None, due_by=due_by)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("payments.queue"), code=303)
    if not plan.ready and not plan.blocked:
        flash(
            "No authorized payment is due by that date; nothing was sent."
            if due_by
            else "None of the selected payments was found; nothing was sent.",
            "error",
        )
        return redirect(url_for("payments.queue"), code=303)
    return render("payments/stripe_review.html", plan=plan, problem=problem, due_by=due_by)


@bp.route("/payments/stripe/send", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def send():
    ids = _ids(request.form.getlist("invoice_id"))
    if not ids:
        flash("Nothing was selected; nothing was sent to Stripe.", "error")
        return redirect_after_post(url_for("payments.queue"))
    try:
        sent = stripe_payouts.send(db(), actor(), ids, configured=_configured())
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(url_for("payments.queue"))
    totals = ", ".join(format_amount(total, currency) for currency, (_, total) in sent.totals.items())
    message = (
        f"Sent {sent.attempts} payment{'' if sent.attempts == 1 else 's'} to Stripe ({totals}). Each is marked paid "
        "when Stripe makes its transfer; one Stripe refuses goes on hold with the reason."
    )
    if sent.skipped:
        message += f" {len(sent.skipped)} could not be sent and stay in the queue."
    flash(message, "success")
    if len(ids) == 1:
        return redirect_after_post(url_for("payments.invoice", invoice_id=ids[0]))
    return redirect_after_post(url_for("payments.queue", status="exported"))


@bp.route("/invoices/<invoice_id>/release-hold", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def release_hold(invoice_id):
    try:
        invoice = stripe_payouts.release_hold(db(), actor(), invoice_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect_after_post(url_for("payments.invoice", invoice_id=invoice_id))
    flash(
        f"{invoice.invoice_number} is authorized again: send it to Stripe again, export it, or record how it was paid.",
        "success",
    )
    return redirect_after_post(url_for("payments.invoice", invoice_id=invoice_id))
