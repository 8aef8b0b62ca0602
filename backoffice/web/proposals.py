"""A contractor's side of projects (issue 19): the projects open to its proposals, its proposals and where each
stands, one project with its own proposal or the form to propose, editing and withdrawing while the project is open.

The proposal form embeds the milestone editor's rows (web/schedule.py: rows_from, apply_op; the template macros of
engagements/_milestone_rows.html). Its buttons (add, remove, move, "Update amounts", the mode) post the form as
typed and get back the price-and-milestones part only (proposals/_terms.html), so files already chosen stay chosen;
Submit posts everything, files included, and any refusal comes back at its field with nothing typed lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from flask import Blueprint, flash, request, url_for
from flask_login import login_required

from backoffice.domain import evidence as evidence_rules
from backoffice.domain import projects as rules
from backoffice.domain.money import format_amount
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, InvalidTransition, NotFound, ValidationError
from backoffice.queries import proposals as queries
from backoffice.services import proposals as service
from backoffice.services.proposals import ProposalInput
from backoffice.services.schedule import RowInput
from backoffice.web.context import actor, db, roles_required
from backoffice.web.evidence import file_response
from backoffice.web.htmx import redirect_after_post, render
from backoffice.web.schedule import apply_op, rows_from, rows_of
from backoffice.web.uploads import uploaded_files

bp = Blueprint("proposals", __name__, url_prefix="/proposals")

MODE_LABELS = {
    "amounts": "An amount for each milestone",
    "percent": "Percentages of the price",
    "equal": "An equal split of the price",
}
# The same choices on a completion project, where the tasks share the price less the advance.
COMPLETION_MODE_LABELS = {
    "amounts": "An amount for each task",
    "percent": "Percentages of the price less the advance",
    "equal": "An equal split of the price less the advance",
}
# Where a proposal stands, in the contractor's words (an accepted one links to its engagement).
STATUS_WORDS = {
    "submitted": "Waiting for the decision",
    "accepted": "Accepted — see the engagement",
    "declined": "Declined",
    "withdrawn": "Withdrawn",
}


@dataclass
class ProposalForm:
    """What the proposal form shows: the input as typed, the amounts it gives, and any refusal."""

    action: str
    data: ProposalInput
    amounts: dict[int, int]
    total: int
    balance: str  # how the milestones stand against the price, in words ("" until both are known)
    balanced: bool
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""  # a refusal of the whole proposal (409)
    files: list[queries.FileInfo] = field(default_factory=list)  # already attached (an edit)
    limits: evidence_rules.Limits = field(default_factory=evidence_rules.Limits)
    editing: bool = False
    advance: int | None = None  # a completion project's advance on the price typed (once it reads)
    pool: int | None = None  # what the milestones share once the price reads: the price, less any advance

    @property
    def rows(self) -> list[RowInput]:
        return self.data.rows or [RowInput()]


def _form(action: str, view: queries.ProjectView, data: ProposalInput, **kw) -> ProposalForm:
    # On a completion project the milestones (tasks) share the price less the project's advance.
    advance_bps = service.advance_bps_of(view)
    checked = service.check_proposal(view.currency, data, advance_bps)
    amounts = list(checked.amounts.values())
    balanced = checked.price is not None and rules.milestones_share_price(checked.price, amounts, advance_bps)
    # The service words a difference between the milestones and the price once every amount is known.
    if balanced and advance_bps is None:
        balance = "The milestones add up to your price exactly."
    elif balanced:
        balance = (
            f"The tasks add up to your price less the advance, {format_amount(checked.pool, view.currency)}, exactly."
        )
    else:
        balance = checked.errors.get("rows", "")
    if checked.price is None or not amounts:
        balance = ""
    limits = service.file_limits(db(), actor().org_id)
    return ProposalForm(
        action,
        data,
        checked.amounts,
        checked.total,
        balance,
        balanced,
        limits=limits,
        advance=checked.advance,
        pool=checked.pool,
        **kw,
    )


def _typed() -> ProposalInput:
    form = request.form
    return ProposalInput(
        price=form.get("price", ""),
        timeline=form.get("timeline", ""),
        note=form.get("note", ""),
        rows=rows_from(form),
        mode=form.get("mode", "amounts"),
        remove_files=tuple(form.getlist("remove_files")),
    )


def _project(project_id) -> queries.ProjectView:
    view = queries.project_view(db(), actor(), project_id)
    if view is None:
        raise NotFound()  # not invited, another organization's, or no such project: they look the same
    return view


def _page(template: str, view, form: ProposalForm | None, *, status=200, op="", **context):
    """The whole page; for htmx, the part that asked: the price and milestones for a button, else the form."""
    fragment = "proposals/_terms.html" if op and op != "save" else "proposals/_form.html"
    return render(template, fragment if form else None, status=status, p=view, form=form, modes=_modes(view), **context)


def _modes(view: queries.ProjectView) -> dict[str, str]:
    return COMPLETION_MODE_LABELS if view.completion else MODE_LABELS


def _show(view, *, form=None, message="", status=200, op=""):
    detail = queries.proposal_detail(db(), actor(), project_id=view.id)
    if form is None and detail is None and view.refusal is None:
        form = _form(url_for("proposals.new", project_id=view.id), view, ProposalInput())
    return _page(
        "proposals/show.html", view, form, status=status, op=op, detail=detail, message=message, words=STATUS_WORDS
    )


@bp.route("")
@roles_required(Role.CONTRACTOR)
def index():
    # Each section pages by its own link parameters (open_after, mine_before, …); a link of one carries nothing of
    # the other, which starts again at its first page. A key that is not one is the first page (Cursor.read).
    open_cursor = queries.OPEN_KEYSET.read(request.args.get("open_after"), request.args.get("open_before"))
    mine_cursor = queries.MINE_KEYSET.read(request.args.get("mine_after"), request.args.get("mine_before"))
    return render(
        "proposals/index.html",
        open_projects=queries.open_projects(db(), actor(), cursor=open_cursor),
        mine=queries.own_proposals(db(), actor(), cursor=mine_cursor),
        words=STATUS_WORDS,
        # A page past the end (a stale link: rows proposed on or gone since) says so rather than "none at all".
        open_paged=open_cursor is not None,
        mine_paged=mine_cursor is not None,
    )


@bp.route("/project/<project_id>")
@roles_required(Role.CONTRACTOR)
def show(project_id):
    return _show(_project(project_id))


@bp.route("/project/<project_id>/new", methods=["POST"])
@roles_required(Role.CONTRACTOR)
def new(project_id):
    view = _project(project_id)
    data, op = _typed(), request.form.get("op", "save")
    action = url_for("proposals.new", project_id=view.id)
    if op != "save":
        rows = apply_op(op, data.rows, limit=rules.MAX_PROPOSAL_MILESTONES)
        return _show(view, form=_form(action, view, replace(data, rows=rows)), op=op)
    try:
        service.submit_proposal(db(), actor(), view.id, data, uploaded_files(request, "files"))
    except ValidationError as exc:
        return _show(view, form=_form(action, view, data, errors=exc.fields), status=422)
    except (Conflict, InvalidTransition) as exc:
        return _show(view, form=_form(action, view, data, message=exc.message), status=exc.status)
    flash("Your proposal was sent. The project owner is told, and you can change it until the deadline.", "success")
    return redirect_after_post(url_for("proposals.show", project_id=view.id))


def _own(proposal_id) -> tuple[queries.ProposalDetail, queries.ProjectView]:
    detail = queries.proposal_detail(db(), actor(), proposal_id=proposal_id)
    if detail is None:
        raise NotFound()
    return detail, _project(detail.proposal.project_id)


def _edit_page(view, detail, form, *, status=200, op=""):
    form.files, form.editing = detail.files, True
    return _page("proposals/edit.html", view, form, status=status, op=op, detail=detail)


@bp.route("/<proposal_id>/edit", methods=["GET", "POST"])
@roles_required(Role.CONTRACTOR)
def edit(proposal_id):
    detail, view = _own(proposal_id)
    action = url_for("proposals.edit", proposal_id=detail.proposal.id)
    if request.method == "GET":
        if not (detail.editable and view.takes_proposals):
            flash("This proposal can no longer be changed.", "info")
            return redirect_after_post(url_for("proposals.show", project_id=view.id))
        p = detail.proposal
        data = ProposalInput(
            price=format_amount(p.price_minor, view.currency, symbol=False),
            timeline=p.timeline,
            note=p.note,
            rows=rows_of(detail.milestones, view.currency),
        )
        return _edit_page(view, detail, _form(action, view, data))
    data, op = _typed(), request.form.get("op", "save")
    if op != "save":
        rows = apply_op(op, data.rows, limit=rules.MAX_PROPOSAL_MILESTONES)
        return _edit_page(view, detail, _form(action, view, replace(data, rows=rows)), op=op)
    try:
        service.update_proposal(db(), actor(), detail.proposal.id, data, uploaded_files(request, "files"))
    except ValidationError as exc:
        return _edit_page(view, detail, _form(action, view, data, errors=exc.fields), status=422)
    except (Conflict, InvalidTransition) as exc:
        form = _form(action, view, data, message=exc.message)
        return _edit_page(view, detail, form, status=exc.status)
    flash("Your proposal was updated. The project owner sees it as it is now.", "success")
    return redirect_after_post(url_for("proposals.show", project_id=view.id))


@bp.route("/<proposal_id>/withdraw", methods=["POST"])
@roles_required(Role.CONTRACTOR)
def withdraw(proposal_id):
    detail, view = _own(proposal_id)
    try:
        service.withdraw_proposal(db(), actor(), detail.proposal.id)
    except (Conflict, InvalidTransition) as exc:
        return _show(view, message=exc.message, status=exc.status)
    flash("Your proposal was withdrawn. You cannot propose on this project again.", "success")
    return redirect_after_post(url_for("proposals.show", project_id=view.id))


@bp.route("/files/<file_id>")
@login_required
def download(file_id):
    """A proposal's file, always as an attachment. Row-level security decides who gets it: a contractor's user
    its own proposals' files, the organization's staff every proposal's (they compare them)."""
    f = queries.proposal_file(db(), file_id)
    if f is None:
        raise NotFound()
    return file_response(bytes(f.data), f)
