"""Deciding on submitted work: Approve, Partial or Dispute (DESIGN.md section 3).

Only the engagement's project owner or an admin decides, once, on the latest revision. The milestone
row is locked first, so two people deciding at the same moment queue up: the first decides, the second
is told who decided and when (a Conflict), and the unique constraint on reviews backs that up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import engagements as rules
from backoffice.domain.completion import BillingMode
from backoffice.domain.engagements import MilestoneStatus
from backoffice.domain.money import AmountError, format_amount, parse_amount
from backoffice.domain.percent import parse_percent_to_bps
from backoffice.domain.reviews import Decision, PartialPolicy, returns_to_contractor, split_part
from backoffice.domain.roles import MANAGERS
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Engagement, EvidenceFile, Milestone, Organization, Review, Submission, User
from backoffice.services import audit, change_orders, completion, invoices
from backoffice.services.engagements import can_decide, get_engagement
from backoffice.services.submissions import get_milestone, latest_submission
from backoffice.services.validation import clean_text, parse_id

EVENTS = {
    Decision.APPROVE: "milestone.approved",
    Decision.PARTIAL: "milestone.partially_approved",
    Decision.DISPUTE: "milestone.disputed",
}


@dataclass(frozen=True)
class DecisionInput:
    submission_id: str  # the revision the reviewer was shown
    decision: str
    reason: str = ""
    approved_amount: str = ""  # a split partial: the approved part as an amount...
    approved_percent: str = ""  # ...or as a percentage of the milestone
    amount_minor: str = ""  # the milestone's amount as the reviewer was shown it


def decide(session: Session, actor: Actor, milestone_id, data: DecisionInput) -> Review:
    """Record the decision and move the milestone: approved, or back to the contractor (planned). An
    approval authorizes the payment in the same transaction: the milestone's invoice (number, gross,
    retainage, net, fee, due date) and its ledger lines. Under the ``split`` policy a partial approves the
    approved part and a system change order adds a milestone for the remainder. Nothing of a refused
    decision is kept. Raises Forbidden, Conflict (decided already; a newer revision; the
    amount changed), InvalidTransition, or ValidationError for ``decision``, ``reason``, ``approved_amount``."""
    if actor.role not in MANAGERS:
        raise Forbidden("Only the engagement's project owner or an admin decides on submitted work.")
    with unit_of_work(session):
        # Engagement first, then milestone: the order change orders lock in, so the two never deadlock;
        # holding the engagement also keeps a split's change-order number its own.
        engagement, policy = _lock_engagement_of(session, milestone_id)
        milestone = get_milestone(session, milestone_id, lock=True)
        if not can_decide(actor, engagement):
            raise Forbidden("Only this engagement's project owner or an admin decides on its work.")
        submission, review = latest_submission(session, milestone.id)
        shown = parse_id(data.submission_id)
        if shown is None:
            raise Conflict("The decision does not say which revision it is about. Reload the page and decide again.")
        if shown != (submission.id if submission else None):
            if submission is not None and session.get(Submission, shown) is not None:
                raise Conflict(
                    f"Revision {submission.revision} was submitted after the one you were shown. "
                    "Reload the page to review the newest revision."
                )
            raise Conflict("This page is out of date. Reload it to see the milestone as it is now.")
        if review is not None:
            raise Conflict(already_decided(session, review))
        if submission is None or milestone.status != MilestoneStatus.SUBMITTED:
            raise InvalidTransition(
                f"“{milestone.title}” is {MilestoneStatus(milestone.status).label.lower()}; "
                "there is no submitted work to decide on."
            )
        if engagement.status not in rules.REVIEWABLE:
            raise InvalidTransition("Work is reviewed on an active or paused engagement.")
        if data.amount_minor and data.amount_minor != str(milestone.amount_minor):
            raise Conflict(
                "The milestone's amount was changed by a change order since this page was loaded. "
                "Reload the page to see what approval would authorize now."
            )
        decision, reason, part = _clean(data, policy, milestone.amount_minor, engagement.currency)
        files = list(
            session.execute(
                select(EvidenceFile).where(EvidenceFile.submission_id == submission.id).order_by(EvidenceFile.position)
            ).scalars()
        )
        amount_before = milestone.amount_minor
        review = Review(
            org_id=milestone.org_id,
            contractor_id=milestone.contractor_id,
            milestone_id=milestone.id,
            submission_id=submission.id,
            decision=decision.value,
            reason=reason,
            partial_policy=policy.value if decision == Decision.PARTIAL else None,
            milestone_amount_minor=amount_before,
            approved_amount_minor=part,
            evidence_sha256=[f.sha256 for f in files],
            reviewed_by=actor.user_id,
        )
        review = _insert_review(session, review)
        change_order = None
        if part is not None:
            # A ValidationError here takes the review written above with it: nothing of the decision is kept.
            change_order = change_orders.split_milestone(
                session,
                actor,
                engagement,
                milestone,
                part,
                f"Partial approval of “{milestone.title}”: {format_amount(part, engagement.currency)} approved; "
                f"the remainder is a new milestone. {reason}"[:2000],
            )
        status = MilestoneStatus.PLANNED if returns_to_contractor(decision, policy) else MilestoneStatus.APPROVED
        session.execute(
            update(Milestone).where(Milestone.id == milestone.id).values(status=status.value, updated_at=func.now())
        )
        invoice = None
        if status == MilestoneStatus.APPROVED and engagement.billing_mode == BillingMode.COMPLETION:
            # A task: approving it authorizes nothing by itself, but the last one authorizes the final payment.
            invoice = completion.after_task_approved(session, actor, engagement)
        elif status == MilestoneStatus.APPROVED:
            invoice = invoices.authorize_milestone(session, actor, engagement, milestone, review)
        audit.record(
            session,
            actor,
            EVENTS[decision],
            "milestone",
            milestone.id,
            {
                "title": milestone.title,
                "decision": decision.value,
                "reason": reason,
                "submission_id": str(submission.id),
                "revision": submission.revision,
                "review_id": str(review.id),
                "amount_minor": amount_before,
                "approved_amount_minor": part,
                "partial_policy": review.partial_policy,
                "change_order": f"CO-{change_order.number}" if change_order else None,
                "invoice_number": invoice.invoice_number if invoice else None,
                "evidence": [{"name": f.file_name, "sha256": f.sha256} for f in files],
                "links": submission.links,
            },
        )
        queue.notify(session, milestone.org_id, EVENTS[decision], review.id)
    return review


def _lock_engagement_of(session: Session, milestone_id) -> tuple[Engagement, PartialPolicy]:
    """The milestone's engagement, locked, and its organization's partial-approval policy: one statement.
    One the caller may not lock or see gets the answers get_milestone and get_engagement give."""
    row_id = parse_id(milestone_id)
    row = (
        row_id
        and session.execute(
            select(Engagement, Organization.partial_policy)
            .join(Organization, Organization.id == Engagement.org_id)
            .where(Engagement.id == select(Milestone.engagement_id).where(Milestone.id == row_id).scalar_subquery())
            .with_for_update(of=Engagement)
            .execution_options(populate_existing=True)
        ).one_or_none()
    )
    if not row:
        get_engagement(session, get_milestone(session, milestone_id).engagement_id, lock=True)  # raises
        raise NotFound()  # (the engagement was found this time: gone and back; not ours to decide now)
    return row[0], PartialPolicy(row[1])


def _insert_review(session: Session, review: Review) -> Review:
    """Write the review, or, when the submission has one already, say who decided first (a Conflict)
    before the unit of work rolls everything back. ON CONFLICT DO NOTHING: a duplicate writes nothing and
    raises nothing, so no savepoint is needed to ask who won. The locks taken in ``decide`` make the
    duplicate unreachable for the app; this backs up a writer that skipped them. (It locks no row of
    anyone's: DO NOTHING takes no lock on the row it meets.)"""
    values = {c.key: getattr(review, c.key) for c in Review.__table__.columns if getattr(review, c.key) is not None}
    written = session.execute(
        pg_insert(Review).values(**values).on_conflict_do_nothing().returning(Review),
        execution_options={"populate_existing": True},
    ).scalar_one_or_none()
    if written is None:
        winner = session.execute(select(Review).where(Review.submission_id == review.submission_id)).scalar_one()
        raise Conflict(already_decided(session, winner))
    return written


def already_decided(session: Session, review: Review) -> str:
    name = (
        session.execute(select(User.name).where(User.id == review.reviewed_by)).scalar_one_or_none()
        or "another reviewer"
    )
    return (
        f"Already decided by {name} at {review.reviewed_at.astimezone(UTC):%d %b %Y, %H:%M} UTC "
        f"({Decision(review.decision).label.lower()}). Nothing was changed."
    )


def _clean(
    data: DecisionInput, policy: PartialPolicy, amount: int, currency: str
) -> tuple[Decision, str | None, int | None]:
    errors: dict[str, str] = {}
    try:
        decision = Decision(data.decision)
    except ValueError:
        raise ValidationError({"decision": "Choose Approve, Partial or Dispute."}) from None
    reason = None
    if decision != Decision.APPROVE:
        what = "what is missing or wrong" if decision == Decision.DISPUTE else "what is accepted and what is not"
        reason = clean_text(
            data.reason,
            "reason",
            errors,
            label=f"reason ({what}); the contractor will see it",
            required=True,
            max_len=2000,
            multiline=True,
        )
    elif (data.reason or "").strip():
        reason = clean_text(
            data.reason, "reason", errors, label="comment", required=False, max_len=2000, multiline=True
        )
    part = None
    if decision == Decision.PARTIAL and policy == PartialPolicy.SPLIT:
        part = _approved_part(data, amount, currency, errors)
    if errors:
        raise ValidationError(errors)
    return decision, reason, part


def _approved_part(data: DecisionInput, amount: int, currency: str, errors: dict[str, str]) -> int | None:
    typed_amount, typed_percent = (data.approved_amount or "").strip(), (data.approved_percent or "").strip()
    if bool(typed_amount) == bool(typed_percent):
        errors["approved_amount"] = "Enter the approved part as an amount or as a percentage (one of the two)."
        return None
    try:
        if typed_amount:
            return split_part(amount, part=parse_amount(typed_amount, currency))
        return split_part(amount, bps=parse_percent_to_bps(typed_percent))
    except (AmountError, ValueError) as exc:
        errors["approved_amount"] = str(exc)
        return None


@dataclass(frozen=True)
class SplitPreview:
    """What a split partial would do: approve ``part`` now (the milestone's amount becomes it) and leave
    ``remainder`` as a new milestone."""

    part: int
    remainder: int


def split_preview(data: DecisionInput, policy: PartialPolicy, amount: int, currency: str) -> SplitPreview | None:
    """The split a Partial decision asks for, checked as ``decide`` checks it and writing nothing, so the reviewer
    can confirm the amounts before anything is authorized; None for any other decision or policy. Raises
    ValidationError for ``decision``, ``reason`` or ``approved_amount`` as ``decide`` would."""
    _, _, part = _clean(data, PartialPolicy(policy), amount, currency)
    if part is None:
        return None
    return SplitPreview(part, amount - part)
