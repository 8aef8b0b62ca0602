"""Engagements: the list, set-up of the terms, the engagement page and its state changes."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from backoffice.domain import completion
from backoffice.domain import engagements as rules
from backoffice.domain.completion import BillingMode, task_word
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.money import format_amount
from backoffice.domain.percent import format_bps
from backoffice.domain.roles import MANAGERS, STAFF_ROLES, Role
from backoffice.errors import DomainError, NotFound, ValidationError
from backoffice.queries import engagements as queries
from backoffice.queries import tax as tax_queries
from backoffice.services import engagements as service
from backoffice.services import invoices as invoice_service
from backoffice.services import organizations as org_service
from backoffice.services.validation import parse_id
from backoffice.web.admin import CURRENCY_CHOICES
from backoffice.web.context import actor, db, roles_required
from backoffice.web.forms import LongSelect, apply_errors
from backoffice.web.htmx import render

bp = Blueprint("engagements", __name__, url_prefix="/engagements")

STATUS_CHOICES = [SelectChoice("", "All statuses")] + [SelectChoice(s.value, s.label) for s in EngagementStatus]


class TermsForm(FlaskForm):
    contractor_id = SelectField("Contractor", choices=[], validate_choice=False, widget=LongSelect())
    owner_user_id = SelectField("Project owner", choices=[], validate_choice=False, widget=LongSelect())
    title = StringField("Title")
    sow_reference = StringField("SOW reference (optional)")
    currency = SelectField("Currency", choices=CURRENCY_CHOICES, validate_choice=False)
    retainage = StringField("Retainage (%)")
    payment_terms_days = StringField("Payment terms (days after approval)")
    service_fee = StringField("Service fee (%)")
    billing_mode = RadioField(
        "Billing", choices=[SelectChoice(m.value, m.label) for m in BillingMode], validate_choice=False
    )
    contract_value = StringField("Contract value")
    advance = StringField("Advance (%)")

    def fill_choices(self) -> None:
        self.contractor_id.choices = [SelectChoice("", "— choose a contractor —")] + [
            SelectChoice(str(c.id), c.name) for c in queries.contractor_choices(db())
        ]
        self.owner_user_id.choices = [SelectChoice(str(o.id), o.name) for o in queries.owner_choices(db())]

    def to_input(self) -> service.EngagementInput:
        return service.EngagementInput(
            contractor_id=self.contractor_id.data or "",
            owner_user_id=self.owner_user_id.data or "" if actor().role == Role.ADMIN else "",
            title=self.title.data or "",
            sow_reference=self.sow_reference.data or "",
            currency=self.currency.data or "",
            retainage=self.retainage.data or "",
            payment_terms_days=self.payment_terms_days.data or "",
            service_fee=self.service_fee.data or "",
            billing_mode=self.billing_mode.data or BillingMode.MILESTONE.value,
            contract_value=self.contract_value.data or "",
            advance=self.advance.data or "",
        )

    def fill_billing(self, engagement, org) -> None:
        """The billing terms saved on ``engagement`` (a draft being edited), or a new one's: milestone billing and the
        organization's default advance, ready should completion billing be chosen."""
        mode = BillingMode(engagement.billing_mode) if engagement is not None else BillingMode.MILESTONE
        self.billing_mode.data = mode.value
        if mode == BillingMode.COMPLETION:
            value = engagement.contract_value_minor
            self.contract_value.data = format_amount(value, engagement.currency, symbol=False) if value else ""
            self.advance.data = format_bps(engagement.advance_bps)
        else:
            self.contract_value.data = ""
            self.advance.data = format_bps(org.default_advance_bps if org.advances_enabled else 0)


def list_filters(args, me) -> tuple[str | None, object, object]:
    """(status, contractor id, owner id) of the list from its query string: the page's and its download's."""
    status = args.get("status") or None
    contractor_id = parse_id(args.get("contractor")) if args.get("contractor") else None
    owner_id = parse_id(args.get("owner")) if args.get("owner") else None
    if me.role == Role.CONTRACTOR:
        # RLS already limits a contractor to its own rows; naming the contractor as well lets the planner
        # use the (org_id, contractor_id) index instead of filtering the whole organization (bench: 1.9x -> 1.6x).
        contractor_id = me.contractor_id
    return status, contractor_id, owner_id


@bp.route("")
@login_required
def index():
    me = actor()
    status, contractor_id, owner_id = list_filters(request.args, me)
    cursor = queries.LIST_KEYSET.read(request.args.get("after"), request.args.get("before"))
    listing = queries.engagement_list(
        db(), status=status, contractor_id=contractor_id, owner_id=owner_id, cursor=cursor, org_id=me.org_id
    )
    staff = me.role != Role.CONTRACTOR
    filters = {
        "status": status or "",
        "contractor": str(contractor_id or "") if staff else "",
        "owner": str(owner_id or ""),
    }
    return render(
        "engagements/index.html",
        "engagements/_list.html",
        listing=listing,
        filters=filters,
        query={k: v for k, v in filters.items() if v},
        status_choices=STATUS_CHOICES,
        contractors=queries.contractor_choices(db()) if staff else [],
        owners=queries.owner_choices(db()) if staff else [],
        can_create=me.role in MANAGERS,
    )


@bp.route("/due")
@login_required
def due():
    status = request.args.get("status") or None
    cursor = queries.DUE_KEYSET.read(request.args.get("after"), request.args.get("before"))
    me = actor()
    page = queries.due_milestones(
        db(), status=status, cursor=cursor, per_page=DUE_PER_PAGE, org_id=me.org_id, contractor_id=me.contractor_id
    )
    return render("engagements/due.html", page=page, rows=page.rows, status_filter=status or "")


DUE_PER_PAGE = 50


def _terms_page(template_title: str, form: TermsForm, engagement=None, status: int = 200):
    org = org_service.current_organization(db(), actor())
    return render(
        "engagements/terms.html",
        form=form,
        engagement=engagement,
        heading=template_title,
        is_admin=actor().role == Role.ADMIN,
        billing_modes={m.value: m for m in BillingMode},
        advances_enabled=org.advances_enabled,
        default_advance=format_bps(org.default_advance_bps if org.advances_enabled else 0),
        advance_max=format_bps(completion.ADVANCE_MAX_BPS),
        status=status,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new():
    form = TermsForm()
    form.fill_choices()
    if request.method == "GET":
        org = org_service.current_organization(db(), actor())
        form.contractor_id.data = request.args.get("contractor", "")
        form.owner_user_id.data = str(actor().user_id)
        form.currency.data = org.default_currency
        form.retainage.data = format_bps(org.default_retainage_bps)
        form.payment_terms_days.data = str(org.payment_terms_days)
        form.service_fee.data = "0"
        form.fill_billing(None, org)
        if request.args.get("billing") == BillingMode.COMPLETION.value:
            form.billing_mode.data = BillingMode.COMPLETION.value
        return _terms_page("New engagement", form)
    try:
        engagement = service.create_engagement(db(), actor(), form.to_input())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _terms_page("New engagement", form, status=422)
    tasks = task_word(engagement.billing_mode, plural=True)
    flash(f"Engagement created as a draft. Add its {tasks}, then send the work request.", "success")
    return redirect(url_for("schedule.edit", engagement_id=engagement.id), code=303)


@bp.route("/<engagement_id>/terms", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def terms(engagement_id):
    engagement = service.get_engagement(db(), engagement_id)
    service.require_manager(actor(), engagement)
    form = TermsForm()
    form.fill_choices()
    if request.method == "GET":
        form.contractor_id.data = str(engagement.contractor_id)
        form.owner_user_id.data = str(engagement.owner_user_id)
        form.title.data = engagement.title
        form.sow_reference.data = engagement.sow_reference or ""
        form.currency.data = engagement.currency
        form.retainage.data = format_bps(engagement.retainage_bps)
        form.payment_terms_days.data = str(engagement.payment_terms_days)
        form.service_fee.data = format_bps(engagement.service_fee_bps)
        form.fill_billing(engagement, org_service.current_organization(db(), actor()))
        return _terms_page("Edit the terms", form, engagement)
    try:
        service.update_terms(db(), actor(), engagement.id, form.to_input())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _terms_page("Edit the terms", form, engagement, status=422)
    flash("Terms saved.", "success")
    return redirect(url_for("engagements.show", engagement_id=engagement.id), code=303)


def _detail_or_404(engagement_id):
    ident = parse_id(engagement_id)
    detail = queries.engagement_detail(db(), ident) if ident else None
    if detail is None:
        raise NotFound()
    return detail


@dataclass(frozen=True)
class CompletionTerms:
    """What the owner confirms when sending a completion engagement, and the contractor reads before accepting:
    the contract value, the advance, each task's amount and what the tasks share. Every amount is stored or the
    domain's (domain.completion.task_pool); nothing is computed here."""

    value: int | None
    advance_bps: int
    advance: int
    tasks: tuple  # the live tasks (queries.engagements.MilestoneView), in order
    pool: int | None  # the contract value less the advance

    @property
    def tasks_total(self) -> int:
        return sum(t.amount_minor for t in self.tasks)


def _completion_terms(detail) -> CompletionTerms | None:
    if detail.billing_mode != BillingMode.COMPLETION:
        return None
    engagement = service.get_engagement(db(), detail.id)
    value = engagement.contract_value_minor
    return CompletionTerms(
        value=value,
        advance_bps=engagement.advance_bps,
        advance=engagement.advance_minor,
        tasks=tuple(m for m in detail.milestones if m.status != MilestoneStatus.CANCELLED),
        pool=completion.task_pool(value, engagement.advance_minor) if value is not None else None,
    )


def _show(engagement_id, *, errors: dict | None = None, open_action: str = "", status: int = 200):
    me = actor()
    detail = _detail_or_404(engagement_id)
    manages = service.can_decide(me, detail)
    actions = [a for a in rules.available(detail.status, me.role.value) if me.role == Role.CONTRACTOR or manages]
    terms = _completion_terms(detail)
    if not detail.ready_to_complete or terms is not None:
        # Offered once it can succeed; the service says why otherwise. A completion engagement is never marked
        # completed by hand: approving its last task authorizes the final payment and completes it.
        actions = [a for a in actions if a.name != "complete"]
    return render(
        "engagements/show.html",
        e=detail,
        completion_terms=terms,
        billing=BillingMode(detail.billing_mode),
        work_word=task_word(detail.billing_mode, plural=True),
        actions=actions,
        manages=manages,
        editable=manages and detail.status in rules.EDITABLE,
        change_orders_allowed=manages and detail.status in rules.CHANGE_ORDERS_ALLOWED,
        errors=errors or {},
        open_action=open_action,
        reason=request.form.get("release_reason" if open_action == "release" else "reason", "")
        if request.method == "POST"
        else "",
        # Staff learn whether the contractor's tax form is on file (a project owner nothing more: sql/tax.sql).
        tax_state=tax_queries.tax_form_states(db(), [detail.contractor_id]).get(detail.contractor_id)
        if me.role in STAFF_ROLES
        else None,
        status=status,
    )


@bp.route("/<engagement_id>")
@login_required
def show(engagement_id):
    return _show(engagement_id)


FLASH = {
    "send": "Work request sent. The contractor can now accept or decline it.",
    "accept": "Work request accepted. You can start delivering the milestones.",
    "decline": "Work request declined. The project owner has your reason.",
    "pause": "Engagement paused. Work cannot be submitted until it is resumed.",
    "resume": "Engagement resumed.",
    "complete": "Engagement marked completed.",
    "cancel": "Engagement cancelled.",
}


@bp.route("/<engagement_id>/<action>", methods=["POST"])
@login_required
def act(engagement_id, action):
    if action not in rules.ACTIONS:
        raise NotFound()
    try:
        engagement = service.perform(
            db(),
            actor(),
            engagement_id,
            action,
            request.form.get("reason", ""),
            confirm_advance=_minor_units(request.form.get("confirm_advance", "")),
        )
    except ValidationError as exc:
        return _show(engagement_id, errors=exc.fields, open_action=action, status=422)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        # Refused for the engagement's state: nothing changed; the page says why (htmx swaps 409s in).
        flash(exc.message, "error")
        return _show(engagement_id, status=exc.status)
    flash(_flash(action, engagement), "success")
    return redirect(url_for("engagements.show", engagement_id=engagement_id), code=303)


def _flash(action: str, engagement) -> str:
    if engagement.billing_mode != BillingMode.COMPLETION:
        return FLASH[action]
    advance = format_amount(engagement.advance_minor, engagement.currency)
    if action == "send" and engagement.advance_minor:
        return f"{FLASH['send']} The advance of {advance} is authorized for payment when the contractor accepts."
    if action == "accept":
        if engagement.advance_minor:
            return f"Work request accepted. Advance {advance} authorized."
        return "Work request accepted. You can start delivering the tasks."
    return FLASH[action]


@bp.route("/<engagement_id>/retainage/release", methods=["POST"])
@login_required
def release_retainage(engagement_id):
    reason = request.form.get("release_reason", "")
    try:
        invoice = invoice_service.release_retainage(db(), actor(), engagement_id, reason)
    except ValidationError as exc:
        return _show(
            engagement_id,
            errors={"release_reason": exc.fields.get("reason", exc.message)},
            open_action="release",
            status=422,
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _show(engagement_id, errors={"release": exc.message}, open_action="release", status=exc.status)
    flash(
        f"Retainage release authorized: {invoice.invoice_number} for "
        f"{format_amount(invoice.gross_minor, invoice.currency)}, due {invoice.due_date:%d %b %Y}.",
        "success",
    )
    return redirect(url_for("payments.invoice", invoice_id=invoice.id), code=303)


def _minor_units(text: str) -> int | None:
    """A confirmed amount as the page posted it (minor units, digits only); anything else confirms nothing."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None
