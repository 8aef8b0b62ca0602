"""The payment queue's bulk actions (issue 22): what is ticked on the page, or every payment the filter matches,
exported as one AP batch, held with one reason, or reviewed for paying by Stripe. Each action goes through the service
that does it (their exactly-once guarantees unchanged); this module only finds the selection and maps refusals."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_login import login_required

from backoffice.domain.money import format_amount
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import DomainError, ValidationError
from backoffice.queries import money as queries
from backoffice.queries import queue_selection
from backoffice.services import ap_export as export_service
from backoffice.services import holds as hold_service
from backoffice.services import payments as payment_service
from backoffice.services import stripe_payouts
from backoffice.services.ap_export import MAX_SELECTED
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post
from backoffice.web.payments import FILTER_ARGS, queue_filters, queue_page
from backoffice.web.stripe_payments import review_of as stripe_review_of

bp = Blueprint("payment_selection", __name__)

# What one bulk action takes at most, per action: an export is one file (its service's limit); Stripe pays a run of at
# most MAX_PER_RUN; a hold, or a recorded payment, is audited invoice by invoice.
BULK_LIMITS = {"export": MAX_SELECTED, "stripe": stripe_payouts.MAX_PER_RUN, "hold": 500, "record": 500}


class _Refused(Exception):
    def __init__(self, status: int, message: str, all_matching=None):
        super().__init__(message)
        self.status, self.message, self.all_matching = status, message, all_matching


def _bulk_ids(action: str, filters: queries.QueueFilters) -> tuple[list, queue_selection.Matching | None]:
    """The invoices a bulk action applies to: the rows ticked on the page, or every row the filter matches, read again
    here in the action's transaction (the service's unit of work commits the transaction this read begins) and run only
    if it is the selection the person confirmed (its count and totals)."""
    form, limit = request.form, BULK_LIMITS[action]
    if form.get("scope") != "matching":
        ids = [i for i in (parse_id(v) for v in form.getlist("invoice_id")) if i is not None]
        if not ids:
            raise _Refused(422, "Nothing is selected. Tick the payments, or select every one that matches the filter.")
        if len(ids) > limit:
            raise _Refused(422, f"Select at most {limit:,} payments for this action.")
        return ids, None
    found = queue_selection.matching(db(), filters)
    if not found.count:
        raise _Refused(422, "No payment that can be selected matches the filter; nothing changed.")
    if form.get("matching") != found.token:
        raise _Refused(
            409,
            f"The payments matching the filter changed since they were selected: now {_count_words(found)}. "
            "Nothing changed; check the total and confirm again.",
            found,
        )
    if found.count > limit:
        raise _Refused(
            422,
            f"{_count_words(found)} match the filter; this action takes at most {limit:,}. Narrow the filter.",
            found,
        )
    return queue_selection.matching_ids(db(), filters, limit=limit), found


def _count_words(found) -> str:
    sums = " and ".join(format_amount(s.net_minor, s.currency) for s in found.sums)
    return f"{found.count:,} payment{'' if found.count == 1 else 's'}, {sums}"


@bp.route("/payments/selection", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def bulk():
    """The queue's bulk actions on the selection (issue 22): export it as one AP batch, hold it with one reason, or
    review paying it by Stripe. Each goes through the service that does it for one (their exactly-once guarantees
    unchanged); a refusal re-renders the queue with the message at the controls, 4xx, nothing changed."""
    form = request.form
    filters, notes = queue_filters(form)
    action = form.get("action", "")
    everything = None
    try:
        if action not in BULK_LIMITS:
            raise _Refused(400, "Choose what to do with the selected payments.")
        ids, everything = _bulk_ids(action, filters)
        if action == "stripe":
            return stripe_review_of(ids, None)
        if action == "hold":
            hold_service.hold_invoices(db(), actor(), ids, form.get("reason", ""))
            flash(
                f"Held {_count_words(queue_selection.summary_of(db(), ids))}: nothing held is exported or paid.",
                "success",
            )
            return redirect_after_post(url_for("payments.queue", **{**_args(form), "status": "blocked"}))
        if action == "record":
            data = payment_service.PaymentInput(
                form.get("paid_at", ""), form.get("reference", ""), form.get("method", "")
            )
            payments = payment_service.record_payments(db(), actor(), ids, data)
            flash(
                f"Recorded {_count_words(queue_selection.summary_of(db(), ids))} as paid ({payments[0].reference}).",
                "success",
            )
            return redirect_after_post(url_for("payments.queue", **{**_args(form), "status": "paid"}))
        selection = export_service.Selection(invoice_ids=tuple(str(i) for i in ids), preset=form.get("preset", ""))
        batch = export_service.create_batch(db(), actor(), selection)
    except _Refused as exc:
        everything = exc.all_matching or everything
        return _bulk_refused(filters, notes, exc.status, exc.message, everything)
    except ValidationError as exc:
        return _bulk_refused(filters, notes, 422, " ".join(exc.fields.values()), everything)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _bulk_refused(filters, notes, exc.status, exc.message, everything)
    flash(f"{export_service.describe(batch)}. Download the file below; its payments are now exported.", "success")
    return redirect_after_post(url_for("batches.show", batch_id=batch.id))


def _args(form) -> dict:
    return {k: v for k, v in form.items() if k in FILTER_ARGS and v}


def _bulk_refused(filters, notes, status: int, message: str, everything):
    db().rollback()  # whatever the refused action read or wrote is gone; the queue is read afresh
    return queue_page(
        filters,
        notes,
        request.form,
        status=status,
        bulk_error=message,
        all_matching=everything,
        reason=request.form.get("reason", ""),
        paid={k: request.form.get(k, "") for k in ("paid_at", "reference", "method")}
        if request.form.get("action") == "record"
        else {},
    )
