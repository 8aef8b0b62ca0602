"""Projects, the staff's side (issue 19): the list, opening and editing a project, its page with the proposals side
by side and each contractor's record, the award (after a confirmation page), cancelling with a reason, the
proposals' files, and the categories an admin keeps. A contractor's user has its own pages (web/proposals.py)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from backoffice.domain import projects as rules
from backoffice.domain.completion import ADVANCE_MAX_BPS, task_word
from backoffice.domain.money import format_amount
from backoffice.domain.percent import format_bps
from backoffice.domain.projects import BILLING_MODES, Audience, ProjectStatus
from backoffice.domain.roles import MANAGERS, Role
from backoffice.errors import DomainError, Forbidden, NotFound, ValidationError
from backoffice.queries import engagements as engagement_queries
from backoffice.queries import projects as queries
from backoffice.services import awards
from backoffice.services import organizations as org_service
from backoffice.services import projects as service
from backoffice.services.validation import parse_id
from backoffice.web.admin import CURRENCY_CHOICES
from backoffice.web.context import actor, db, roles_required
from backoffice.web.evidence import file_response
from backoffice.web.forms import LongSelect, apply_errors
from backoffice.web.htmx import render

bp = Blueprint("projects", __name__, url_prefix="/projects")


def projects_link(project_id=None) -> str | None:
    """Where "Projects" (or one project) is for the signed-in person: the staff pages here, or a contractor's own
    (web/proposals.py, endpoints ``proposals.index`` and ``proposals.show``)."""
    me = current_user.actor
    if me is None:
        return None
    if me.role == Role.CONTRACTOR:
        endpoint = "proposals.show" if project_id else "proposals.index"
    else:
        endpoint = "projects.show" if project_id else "projects.index"
    return url_for(endpoint, project_id=project_id) if project_id else url_for(endpoint)


# --- the list ------------------------------------------------------------------------------------------------------


@bp.route("")
@login_required
def index():
    me = actor()
    if me.role == Role.CONTRACTOR:
        return redirect(url_for("proposals.index"))
    status = request.args.get("status") or queries.DEFAULT_STATUS
    if status not in queries.STATUS_FILTERS:
        status = queries.DEFAULT_STATUS
    cursor = queries.LIST_KEYSET.read(request.args.get("after"), request.args.get("before"))
    listing = queries.project_list(db(), me.org_id, status=status, cursor=cursor)
    return render(
        "projects/index.html",
        "projects/_list.html",
        listing=listing,
        status_filter=status,
        status_filters=queries.STATUS_FILTERS,
        query={"status": status} if status != queries.DEFAULT_STATUS else {},
        can_create=me.role in MANAGERS,
    )


# --- opening and editing -------------------------------------------------------------------------------------------


class ProjectForm(FlaskForm):
    title = StringField("Title")
    description = TextAreaField("Description")
    category_id = SelectField("Category", choices=[], validate_choice=False)
    deadline = StringField("Deadline for proposals")
    currency = SelectField("Currency", choices=CURRENCY_CHOICES, validate_choice=False)
    budget = StringField("Budget (optional)")
    billing_mode = SelectField(
        "Billing of the contract",
        choices=[SelectChoice(k, label) for k, label in BILLING_MODES.items()],
        validate_choice=False,
    )
    advance = StringField("Advance (%)")
    audience = RadioField(
        "Who may propose", choices=[SelectChoice(a.value, a.label) for a in Audience], validate_choice=False
    )
    invited = SelectMultipleField("Contractors to invite", choices=[], validate_choice=False)
    owner_user_id = SelectField("Project owner", choices=[], validate_choice=False, widget=LongSelect())

    def fill_choices(self, keep_category=None) -> None:
        categories = queries.category_choices(db(), keep=keep_category)
        self.category_id.choices = [SelectChoice("", "— choose a category —")] + [
            SelectChoice(str(c.id), c.name) for c in categories
        ]
        self.invited.choices = [SelectChoice(str(c.id), c.name) for c in engagement_queries.contractor_choices(db())]
        self.owner_user_id.choices = [SelectChoice(str(o.id), o.name) for o in engagement_queries.owner_choices(db())]
        if self.invited.data is None:
            self.invited.data = []

    def to_input(self) -> service.ProjectInput:
        return service.ProjectInput(
            title=self.title.data or "",
            category_id=self.category_id.data or "",
            deadline=self.deadline.data or "",
            description=self.description.data or "",
            currency=self.currency.data or "",
            budget=self.budget.data or "",
            billing_mode=self.billing_mode.data or "",
            advance=self.advance.data or "",
            audience=self.audience.data or "",
            owner_user_id=(self.owner_user_id.data or "") if actor().role == Role.ADMIN else "",
            invited=tuple(self.invited.data or ()),
        )


def _default_advance(org) -> str:
    """The advance field's starting value: the organization's default, or 0 when it pays no advances."""
    return format_bps(org.default_advance_bps if org.advances_enabled else 0)


def _form_page(form: ProjectForm, project=None, status: int = 200):
    org = org_service.current_organization(db(), actor())
    return render(
        "projects/form.html",
        form=form,
        project=project,
        advances_enabled=org.advances_enabled,
        advance_max=format_bps(ADVANCE_MAX_BPS),
        heading="Edit the project" if project else "New project",
        is_admin=actor().role == Role.ADMIN,
        has_categories=len(form.category_id.choices) > 1,
        today=queries.today(db()),
        status=status,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new():
    form = ProjectForm()
    form.fill_choices()
    if request.method == "GET":
        form.currency.data = org_service.current_organization(db(), actor()).default_currency
        form.owner_user_id.data = str(actor().user_id)
        form.billing_mode.data = next(iter(BILLING_MODES))
        form.advance.data = _default_advance(org_service.current_organization(db(), actor()))
        form.audience.data = Audience.INVITED.value
        return _form_page(form)
    try:
        project = service.open_project(db(), actor(), form.to_input())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _form_page(form, status=422)
    flash(
        "Project opened. The contractors who may propose are told; their proposals appear here as they come in.",
        "success",
    )
    return redirect(url_for("projects.show", project_id=project.id), code=303)


@bp.route("/<project_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit(project_id):
    project = _detail_or_404(project_id)
    if not rules.can_run(actor().role, actor().user_id, project.owner_user_id):
        raise Forbidden("Only this project's owner or an admin can change it.")
    form = ProjectForm()
    form.fill_choices(keep_category=project.category_id)
    if request.method == "GET":
        if project.status not in rules.EDITABLE_PROJECT:
            flash(f"This project is {project.status.label.lower()} and can no longer change.", "error")
            return redirect(url_for("projects.show", project_id=project.id))
        form.title.data = project.title
        form.description.data = project.description
        form.category_id.data = str(project.category_id)
        form.deadline.data = project.deadline.isoformat()
        form.currency.data = project.currency
        form.budget.data = _amount_field(project.budget_minor, project.currency)
        form.billing_mode.data = project.billing_mode
        form.advance.data = (
            format_bps(project.advance_bps)
            if project.advance_bps is not None
            else _default_advance(org_service.current_organization(db(), actor()))
        )
        form.audience.data = project.audience.value
        form.invited.data = [str(c.id) for c in project.invited]
        form.owner_user_id.data = str(project.owner_user_id)
        return _form_page(form, project)
    try:
        service.update_project(db(), actor(), project.id, form.to_input())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _form_page(form, project, status=422)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")  # closed meanwhile: what was typed stays on the form
        return _form_page(form, project, status=exc.status)
    flash("Project saved.", "success")
    return redirect(url_for("projects.show", project_id=project.id), code=303)


def _amount_field(minor: int | None, currency: str) -> str:
    """A stored amount as the budget field shows it (no symbol), or empty."""
    return "" if minor is None else format_amount(minor, currency, symbol=False)


# --- the project page: facts, invitations, the proposals side by side ----------------------------------------------


def _detail_or_404(project_id) -> queries.ProjectDetail:
    ident = parse_id(project_id)
    detail = queries.project_detail(db(), ident) if ident else None
    if detail is None:
        raise NotFound()
    return detail


def _awardable(status: ProjectStatus) -> bool:
    """Whether a project in this status may be awarded (the move exists in domain.projects.PROJECT_MOVES)."""
    return (status, ProjectStatus.AWARDED) in rules.PROJECT_MOVES


def _show(project_id, *, errors: dict | None = None, open_action: str = "", status: int = 200):
    me = actor()
    project = _detail_or_404(project_id)
    runs = rules.can_run(me.role, me.user_id, project.owner_user_id)
    today = queries.today(db())
    return render(
        "projects/show.html",
        p=project,
        proposals=queries.proposals_compared(db(), project.id),
        runs=runs,
        is_open=project.status in rules.EDITABLE_PROJECT,
        awardable=runs and _awardable(project.status),
        takes_proposals=rules.takes_proposals(project.status, project.deadline, today),
        billing_label=BILLING_MODES.get(project.billing_mode, project.billing_mode),
        errors=errors or {},
        open_action=open_action,
        reason=request.form.get("reason", "") if request.method == "POST" else "",
        status=status,
    )


@bp.route("/<project_id>")
@login_required
def show(project_id):
    if actor().role == Role.CONTRACTOR:
        return redirect(url_for("proposals.show", project_id=project_id))
    return _show(project_id)


@bp.route("/<project_id>/cancel", methods=["POST"])
@roles_required(*MANAGERS)
def cancel(project_id):
    try:
        service.cancel_project(db(), actor(), project_id, request.form.get("reason", ""))
    except ValidationError as exc:
        return _show(project_id, errors=exc.fields, open_action="cancel", status=422)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
        return _show(project_id, status=exc.status)
    flash("Project cancelled. Every proposal still waiting was declined and its contractor told.", "success")
    return redirect(url_for("projects.show", project_id=project_id), code=303)


# --- the award -----------------------------------------------------------------------------------------------------


def _proposal_of(project: queries.ProjectDetail, proposal_id):
    proposals = queries.proposals_compared(db(), project.id)
    ident = parse_id(proposal_id)
    chosen = next((q for q in proposals if q.id == ident), None)
    if chosen is None:
        raise NotFound()
    return chosen, [q for q in proposals if q.waiting and q.id != chosen.id]


@bp.route("/<project_id>/proposals/<proposal_id>/accept", methods=["GET"])
@roles_required(*MANAGERS)
def confirm_award(project_id, proposal_id):
    """The confirmation: who gets the contract, for how much, and what happens to the other proposals. Writes
    nothing; its button posts the award."""
    me = actor()
    project = _detail_or_404(project_id)
    if not rules.can_run(me.role, me.user_id, project.owner_user_id):
        raise Forbidden("Only this project's owner or an admin can award it.")
    chosen, others = _proposal_of(project, proposal_id)
    if not _awardable(project.status) or not chosen.waiting:
        flash(
            f"{project.title} is {project.status.label.lower()}; nothing can be awarded on it."
            if not _awardable(project.status)
            else f"{chosen.contractor_name}'s proposal was {chosen.status.label.lower()}, so it cannot be accepted.",
            "error",
        )
        return _show(project.id, status=409)
    return render(
        "projects/award.html",
        p=project,
        q=chosen,
        others=others,
        org=org_service.current_organization(db(), me),
        billing_label=BILLING_MODES.get(project.billing_mode, project.billing_mode),
        offer_version=awards.offer_version(db(), chosen.id),
    )


@bp.route("/<project_id>/proposals/<proposal_id>/accept", methods=["POST"])
@roles_required(*MANAGERS)
def award(project_id, proposal_id):
    try:
        # The offer the owner read on the confirmation page, so a proposal changed meanwhile is not accepted unseen.
        engagement = awards.award(db(), actor(), project_id, proposal_id, request.form.get("offer_version", ""))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        # Awarded to someone else, cancelled, or the proposal withdrawn meanwhile: nothing changed; the page says
        # which, with the proposals as they are now.
        flash(exc.message, "error")
        return _show(project_id, status=exc.status)
    advance = (
        f" The advance of {format_amount(engagement.advance_minor, engagement.currency)} is authorized."
        if engagement.advance_minor
        else ""
    )
    work = task_word(engagement.billing_mode, plural=True)
    flash(
        f"Proposal accepted: this engagement is active and its contractor can start delivering the {work}.{advance} "
        "Every other proposal was declined, and everyone who proposed is told.",
        "success",
    )
    return redirect(url_for("engagements.show", engagement_id=engagement.id), code=303)


# --- files ---------------------------------------------------------------------------------------------------------


@bp.route("/<project_id>/files/<file_id>")
@login_required
def download_file(project_id, file_id):
    """A proposal's file, always as an attachment with its stored type. RLS decides who may read it: the
    organization's staff, and the contractor whose proposal it is (a competitor's file is not found)."""
    project_ident, file_ident = parse_id(project_id), parse_id(file_id)
    f = project_ident and file_ident and queries.proposal_file(db(), project_ident, file_ident)
    if not f:
        raise NotFound()
    return file_response(bytes(f.data), f)


# --- categories (admin settings) -----------------------------------------------------------------------------------


class CategoryForm(FlaskForm):
    name = StringField("Name")


def _categories_page(form: CategoryForm, status: int = 200):
    return render("projects/categories.html", form=form, categories=queries.categories(db()), status=status)


@bp.route("/categories", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def categories():
    form = CategoryForm()
    if request.method == "GET":
        return _categories_page(form)
    try:
        category = service.add_category(db(), actor(), form.name.data or "")
    except ValidationError as exc:
        apply_errors(form, exc)
        return _categories_page(form, status=422)
    flash(f"Category “{category.name}” added: new projects can be given it.", "success")
    return redirect(url_for("projects.categories"), code=303)


@bp.route("/categories/<category_id>/<action>", methods=["POST"])
@roles_required(Role.ADMIN)
def archive_category(category_id, action):
    if action not in ("archive", "restore"):
        raise NotFound()
    category = service.set_category_archived(db(), actor(), category_id, action == "archive")
    flash(
        f"“{category.name}” archived: new projects no longer offer it; projects that have it keep it."
        if action == "archive"
        else f"“{category.name}” restored: new projects can be given it again.",
        "success",
    )
    return redirect(url_for("projects.categories"), code=303)
