"""Self-billing (issue 21, item 4): the agreement with a contractor (an admin records it on the contractor's page, the
contractor's user reads and confirms it on its own page), and the contractor's answer to each self-billed invoice
(``templates/self_billing/_acceptance.html``, a fragment of the invoice page, with its accept and reject forms)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, flash, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.domain.self_billing import Acceptance
from backoffice.errors import DomainError, NotFound, ValidationError
from backoffice.queries import money as money_queries
from backoffice.queries import self_billing as queries
from backoffice.services import contractors as contractor_service
from backoffice.services import self_billing as service
from backoffice.services.self_billing import MAX_REASON, MAX_TERMS
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.forms import apply_errors
from backoffice.web.htmx import redirect_after_post, render, wants_fragment

bp = Blueprint("self_billing", __name__)


# --- the agreement, on the admin's contractor page ----------------------------------------------------------------


class AgreementForm(FlaskForm):
    agreed_on = StringField("Date of the agreement")
    terms = TextAreaField("Terms of the agreement")


@dataclass(frozen=True)
class AgreementSection:
    """What templates/self_billing/_agreement.html shows: the agreement in force and, for an admin, the form."""

    contractor_id: object
    contractor_name: str
    agreement: queries.AgreementView | None
    form: AgreementForm | None  # None: read only
    terms_max: int = MAX_TERMS


def agreement_section(contractor, form: AgreementForm | None = None) -> AgreementSection | None:
    """The contractor page's section (admins record; finance reads); None for anyone else."""
    me = actor()
    if me.role not in FINANCE_ROLES:
        return None
    if me.role == Role.ADMIN and form is None:
        form = AgreementForm(formdata=None)
    return AgreementSection(
        contractor.id,
        contractor.legal_name,
        queries.agreement_of(db(), contractor.id),
        form if me.role == Role.ADMIN else None,
    )


def read_only_agreement(contractor) -> AgreementSection:
    """The section without its form: finance, on the contractor's e-invoicing page."""
    return AgreementSection(contractor.id, contractor.legal_name, queries.agreement_of(db(), contractor.id), None)


@bp.route("/admin/contractors/<contractor_id>/self-billing-agreement", methods=["POST"])
@roles_required(Role.ADMIN)
def record(contractor_id):
    contractor = contractor_service.get_contractor(db(), contractor_id)
    form = AgreementForm()
    try:
        service.record_agreement(db(), actor(), contractor.id, form.agreed_on.data or "", form.terms.data or "")
    except ValidationError as exc:
        apply_errors(form, exc)
        # The contractor's page is the admin blueprint's; it imports this module for the section, hence here.
        from backoffice.web.admin import contractor_page

        return contractor_page(contractor, agreement_form=form, status=422)
    flash(
        f"Self-billing agreement with {contractor.legal_name} recorded. Its users are asked to confirm it.", "success"
    )
    return redirect_after_post(url_for("admin.contractor", contractor_id=contractor.id) + "#self-billing")


# --- the agreement, as the contractor's user reads and confirms it --------------------------------------------------


def _org_name() -> str:
    me = actor()
    return next((m.org_name for m in current_user.memberships if m.org_id == me.org_id), "The organization")


def _agreement_page(*, error: str | None = None, refused: str | None = None, status: int = 200):
    return render(
        "self_billing/agreement.html",
        agreement=queries.agreement_of(db(), actor().contractor_id),
        terms=queries.acceptance_terms(db(), actor().org_id),
        org_name=_org_name(),
        error=error,
        refused=refused,
        status=status,
    )


@bp.route("/self-billing/agreement")
@roles_required(Role.CONTRACTOR)
def agreement():
    """The contractor's self-billing agreement with the organization, and its confirmation."""
    return _agreement_page()


@bp.route("/self-billing/agreement/<agreement_id>/confirm", methods=["POST"])
@roles_required(Role.CONTRACTOR)
def confirm(agreement_id):
    try:
        service.confirm_agreement(db(), actor(), agreement_id, agreed=request.form.get("agree") == "yes")
    except ValidationError as exc:
        return _agreement_page(error=exc.fields.get("agree", exc.message), status=422)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _agreement_page(refused=exc.message, status=exc.status)
    flash(f"Thank you: the self-billing agreement is confirmed. {_org_name()} issues your invoices for you.", "success")
    return redirect_after_post(url_for("self_billing.agreement"))


# --- the contractor's answer to each self-billed invoice -------------------------------------------------------------


@dataclass(frozen=True)
class AcceptanceBox:
    """What templates/self_billing/_acceptance.html shows of one invoice."""

    acceptance: queries.AcceptanceView
    can_answer: bool  # the viewer is the contractor's user and may still answer
    agreement: queries.AgreementView | None  # the agreement in force (for those who may read it)
    agreement_readable: bool  # finance, admins and the contractor read it; a project owner does not
    org_name: str
    reason_max: int = MAX_REASON

    @property
    def badge(self) -> str:
        """The state's badge colour (app.css): green accepted, amber waiting, red rejected."""
        return _BADGES[self.acceptance.state]


_BADGES = {
    Acceptance.NOT_ISSUED: "draft",
    Acceptance.VOID: "void",
    Acceptance.AWAITING: "awaiting_acceptance",
    Acceptance.ACCEPTED: "accepted",
    Acceptance.ACCEPTED_BY_SILENCE: "accepted",
    Acceptance.REJECTED: "declined",
}


def acceptance_box(invoice) -> AcceptanceBox | None:
    """The invoice page's self-billing section for ``invoice`` (a queries.money.InvoiceRow); None when the viewer
    does not see it. A template global, so that the invoice page includes the fragment without more context."""
    me = actor()
    view = queries.acceptance_of(db(), invoice.id)
    if view is None:
        return None
    readable = me.role in FINANCE_ROLES or me.role == Role.CONTRACTOR
    return AcceptanceBox(
        view,
        me.role == Role.CONTRACTOR and view.answerable,
        queries.agreement_of(db(), invoice.contractor_id) if readable else None,
        readable,
        _org_name(),
    )


@bp.app_template_global("self_billing_box")
def _self_billing_box(invoice):
    return acceptance_box(invoice)


def _invoice_row(invoice_id):
    row_id = parse_id(invoice_id)
    detail = row_id and money_queries.invoice_detail(db(), row_id)
    if not detail:
        raise NotFound()
    return detail.row


def _answer_response(invoice_id, *, status: int, errors=None, reason: str = "", refused: str | None = None):
    """The acceptance section again: alone for htmx, else on a page of its own (the form's field error shown)."""
    row = _invoice_row(invoice_id)
    return render(
        "self_billing/answer.html",
        "self_billing/_acceptance.html",
        status=status,
        i=row,
        box=acceptance_box(row),
        acceptance_errors=errors or {},
        acceptance_reason=reason,
        acceptance_refused=refused,
    )


def _answer(invoice_id, decision: str):
    reason = request.form.get("reason", "")
    try:
        service.answer_invoice(db(), actor(), invoice_id, decision, reason)
    except ValidationError as exc:
        return _answer_response(invoice_id, status=422, errors=exc.fields, reason=reason)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _answer_response(invoice_id, status=exc.status, refused=exc.message)
    if wants_fragment():  # the section again, saying where the invoice stands now
        return _answer_response(invoice_id, status=200)
    flash(
        "Self-billed invoice accepted."
        if decision == "accepted"
        else "Self-billed invoice rejected. The organization reads your reason; it is not paid meanwhile.",
        "success",
    )
    return redirect_after_post(url_for("payments.invoice", invoice_id=invoice_id) + "#acceptance")


@bp.route("/invoices/<invoice_id>/accept", methods=["POST"])
@login_required
@roles_required(Role.CONTRACTOR)
def accept(invoice_id):
    return _answer(invoice_id, "accepted")


@bp.route("/invoices/<invoice_id>/reject", methods=["POST"])
@login_required
@roles_required(Role.CONTRACTOR)
def reject(invoice_id):
    return _answer(invoice_id, "rejected")
