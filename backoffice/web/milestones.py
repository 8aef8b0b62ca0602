"""The milestone page: the contractor marks it complete with evidence; the owner reviews it there.

One screen for both: what the milestone is, every revision with its files and decision, and the one
panel the person looking can act on (the submission form, or the decision panel).
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, request, url_for
from flask_login import login_required

from backoffice.domain import engagements as rules
from backoffice.domain import evidence as evidence_rules
from backoffice.domain.engagements import MilestoneStatus
from backoffice.domain.roles import Role
from backoffice.errors import DomainError, NotFound, ValidationError
from backoffice.queries import approvals as approval_queries
from backoffice.queries import reviews as queries
from backoffice.services import approvals as approval_service
from backoffice.services import organizations as org_service
from backoffice.services import reviews as review_service
from backoffice.services import submissions as submission_service
from backoffice.services.engagements import can_decide
from backoffice.services.evidence import limits_for
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db
from backoffice.web.htmx import redirect_after_post, render, wants_fragment
from backoffice.web.uploads import uploaded_files

bp = Blueprint("milestones", __name__, url_prefix="/milestones")


def _detail(milestone_id) -> queries.MilestoneDetail:
    row_id = parse_id(milestone_id)
    detail = row_id and queries.milestone_detail(db(), row_id)
    if not detail:
        raise NotFound()
    return detail


def _context(detail: queries.MilestoneDetail, **extra) -> dict:
    me = actor()
    org = org_service.current_organization(db(), me)
    limits = limits_for(org)
    submit_refusal = rules.milestone_move_refusal(
        detail.status, MilestoneStatus.SUBMITTED, me.role, detail.engagement_status
    )
    can_submit = me.role == Role.CONTRACTOR and submit_refusal is None
    return {
        "m": detail,
        "today": date.today(),
        "limits": limits,
        "evidence_rules": evidence_rules,
        "can_decide": can_decide(me, detail),
        "can_submit": can_submit,
        "later_steps": _later_steps(detail) if detail.awaiting_review and can_decide(me, detail) else [],
        "partial_policy": org.partial_policy,
        "errors": {},
        "values": {},
        **extra,
    }


def _later_steps(detail: queries.MilestoneDetail) -> list[str]:
    """The approval steps approving it in full would start under (issue 18), in words: the reviewer sees, before
    deciding, that the payment will wait for them."""
    me = actor()
    policy = approval_service.policy_for(db(), me.org_id, detail.currency, detail.amount_minor, with_steps=True)
    if policy is None:
        return []
    members = approval_queries.staff(db(), me.org_id)
    return [approval_queries.describe_step(s.role, s.user_ids, members) for s in policy.steps]


@bp.route("/<milestone_id>")
@login_required
def show(milestone_id):
    # Reached by "decide and open the next one": the box stays ticked, so a run through the queue is one click each.
    values = {"then": "next"} if request.args.get("then") == "next" else {}
    return render("milestones/show.html", **_context(_detail(milestone_id), values=values))


@bp.route("/<milestone_id>/submit", methods=["POST"])
@login_required
def submit(milestone_id):
    data = submission_service.SubmissionInput(
        note=request.form.get("note", ""), links=request.form.get("links", ""), files=uploaded_files(request, "files")
    )
    try:
        submission = submission_service.submit_work(db(), actor(), milestone_id, data)
    except ValidationError as exc:
        values = {"note": data.note, "links": data.links}
        return render(
            "milestones/show.html",
            "milestones/_submit_form.html",
            status=422,
            **_context(_detail(milestone_id), errors=exc.fields, values=values, message=exc.message),
        )
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        # Refused for the milestone's state (decided, paused, cancelled meanwhile): the form's place
        # says why; a full page says it at the top.
        return render(
            "milestones/show.html",
            "milestones/_refused.html",
            status=exc.status,
            **_context(_detail(milestone_id), refused=exc.message),
        )
    flash(f"Revision {submission.revision} submitted. The project owner has been asked to review it.", "success")
    return redirect_after_post(url_for("milestones.show", milestone_id=milestone_id))


DECIDED = {"approve": "Approved.", "partial": "Partial decision recorded.", "dispute": "Disputed."}


@bp.route("/<milestone_id>/decide", methods=["POST"])
@login_required
def decide(milestone_id):
    form = request.form
    data = review_service.DecisionInput(
        submission_id=form.get("submission_id", ""),
        decision=form.get("decision", ""),
        reason=form.get("reason", ""),
        approved_amount=form.get("approved_amount", ""),
        approved_percent=form.get("approved_percent", ""),
        amount_minor=form.get("amount_minor", ""),
    )
    values = {k: form.get(k, "") for k in ("decision", "reason", "approved_amount", "approved_percent", "then")}
    try:
        if data.decision == "partial" and form.get("split_confirmed") != "yes":
            # A split authorizes a part the reviewer typed: the amounts are confirmed on the server, worked out
            # by the rule that will apply them, before anything is authorized (no money math in the browser).
            split = _split_asked(milestone_id, data)
            if split is not None:
                return _decision_panel(milestone_id, status=200, values=values, split=split)
        review_service.decide(db(), actor(), milestone_id, data)
    except ValidationError as exc:
        return _decision_panel(milestone_id, status=422, errors=exc.fields, values=values)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _decision_panel(milestone_id, status=exc.status, conflict=exc.message, values=values)
    if form.get("then") == "next":
        # Decide and open the next one: the queue's order picks it (reviews.next_one), this one's place is kept.
        flash(DECIDED.get(data.decision, "Decision recorded."), "success")
        return redirect_after_post(url_for("reviews.next_one", after=milestone_id, then="next"))
    if wants_fragment():
        # In place: the panel shows the decision, the revision list updates out of band, the queue and
        # the navigation's count refresh themselves on the event.
        body, status = _decision_panel(milestone_id, status=200, just_decided=True)
        return body, status, {"HX-Trigger": "reviews-changed"}
    flash(DECIDED.get(data.decision, "Decision recorded."), "success")
    return redirect_after_post(url_for("milestones.show", milestone_id=milestone_id))


def _split_asked(milestone_id, data: review_service.DecisionInput) -> review_service.SplitPreview | None:
    """The split a Partial asks for under the organization's split policy, None under route_back; raises
    ValidationError for what ``decide`` would refuse."""
    detail = _detail(milestone_id)
    if not (detail.awaiting_review and can_decide(actor(), detail)):
        return None  # decide says why (or raises 403/404)
    policy = org_service.current_organization(db(), actor()).partial_policy
    return review_service.split_preview(data, policy, detail.amount_minor, detail.currency)


def _decision_panel(milestone_id, *, status: int, **extra):
    return render(
        "milestones/show.html", "milestones/_decision.html", status=status, **_context(_detail(milestone_id), **extra)
    )
