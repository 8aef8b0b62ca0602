"""Completion billing's page for the contractor (issue 20): invoicing approved tasks. The contractor's user picks
among the approved tasks no invoice bills yet, sees what the invoice would authorize (gross, retainage withheld,
net, the organization's service fee) and raises it (services.completion.raise_invoice)."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for

from backoffice.domain.completion import invoice_gross
from backoffice.domain.money import format_amount
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, InvalidTransition, NotFound, ValidationError
from backoffice.queries import completion as queries
from backoffice.services import completion as service
from backoffice.services.engagements import get_engagement
from backoffice.services.invoices import approval_amounts
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post, render

bp = Blueprint("completion", __name__, url_prefix="/engagements")


def _engagement(engagement_id):
    """The contractor's own completion engagement and its schedule; another's, a milestone engagement or a malformed
    id is a 404 (they look the same)."""
    engagement = get_engagement(db(), engagement_id)
    if engagement.contractor_id != actor().contractor_id:
        raise NotFound()
    schedule = queries.schedule(db(), engagement.id)
    if schedule is None:
        raise NotFound()
    return engagement, schedule


def _page(engagement_id, chosen_ids=None, *, errors=None, refused: str = "", status: int = 200):
    """The page with ``chosen_ids`` ticked (every invoiceable task when None) and what invoicing them authorizes."""
    engagement, schedule = _engagement(engagement_id)
    chosen = schedule.invoiceable if chosen_ids is None else schedule.invoiceable_among(chosen_ids)
    gross = invoice_gross(chosen)
    return render(
        "completion/invoice_tasks.html",
        "completion/_invoice_form.html",
        e=engagement,
        schedule=schedule,
        chosen={t.milestone_id for t in chosen},
        count=len(chosen),
        amounts=approval_amounts(db(), engagement, gross) if gross > 0 else None,
        errors=errors or {},
        refused=refused,
        status=status,
    )


@bp.route("/<engagement_id>/invoice-tasks")
@roles_required(Role.CONTRACTOR)
def invoice_tasks(engagement_id):
    return _page(engagement_id)


@bp.route("/<engagement_id>/invoice-tasks", methods=["POST"])
@roles_required(Role.CONTRACTOR)
def raise_invoice(engagement_id):
    task_ids = request.form.getlist("tasks")
    if request.form.get("op") == "refresh":  # the ticks changed: the amounts again, nothing written
        return _page(engagement_id, task_ids)
    try:
        invoice = service.raise_invoice(db(), actor(), engagement_id, task_ids)
    except ValidationError as exc:
        return _page(engagement_id, task_ids, errors=exc.fields, status=422)
    except (Conflict, InvalidTransition) as exc:
        # Invoiced meanwhile (or no longer approved): nothing was written; the page as it stands now, with the
        # message, and still ticked only what is still invoiceable of what was chosen.
        return _page(engagement_id, task_ids, refused=exc.message, status=exc.status)
    flash(
        f"Invoice {invoice.invoice_number} raised for {format_amount(invoice.gross_minor, invoice.currency)}. "
        "The project owner and finance are told.",
        "success",
    )
    return redirect_after_post(url_for("payments.invoice", invoice_id=invoice.id))
