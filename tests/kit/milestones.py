"""Milestones moved the way the app moves them, for tests that need a milestone in some state without going
through the pages: the contractor's user submits work (``services.submissions.submit_work``, a link as its
evidence), the engagement's project owner approves or disputes it (``services.reviews.decide``: an approval
writes its invoice there, with the amounts of ``domain.invoices``) or cancels it with a change order.

Nothing here restates a rule: who may move what, and what an approval authorizes, are the services' and the
guards' business. Tests of the guards themselves write their raw SQL in the test; when such a test inserts
an approving review by hand, ``authorize_payment`` writes the invoice that goes with it through the service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from backoffice.models import Engagement, Milestone
from backoffice.queries.identity import actor_for
from backoffice.services import change_orders, invoices, reviews, submissions
from kit.signin import actor_of

EVIDENCE_LINK = "https://example.com/evidence"


@dataclass(frozen=True)
class _People:
    org_id: uuid.UUID
    owner: uuid.UUID  # the engagement's project owner: decides and cancels
    contractor_user: uuid.UUID  # the contractor's first user: submits
    engagement_id: uuid.UUID


def _people(admin_engine, milestone_id) -> _People:
    with admin_engine.connect() as conn:
        row = conn.execute(
            text(
                "select m.org_id, e.owner_user_id, m.engagement_id,"
                " (select mm.user_id from memberships mm where mm.org_id = m.org_id"
                "   and mm.contractor_id = m.contractor_id order by mm.created_at limit 1) as contractor_user"
                " from milestones m join engagements e on e.id = m.engagement_id where m.id = :m"
            ),
            {"m": milestone_id},
        ).one()
    return _People(row.org_id, row.owner_user_id, row.contractor_user, row.engagement_id)


def _acting(sessions, user_id, org_id) -> tuple[Session, object]:
    """(session, actor) for the user: ``sessions`` is the ``app_sessions`` factory (a new session) or the
    ``act_as`` fixture (its one session), whichever the test has at hand."""
    session = sessions() if isinstance(sessions, sessionmaker) else sessions(user_id, org_id)
    actor = actor_of(session, user_id, org_id)
    assert actor is not None, f"user {user_id} is not a member of {org_id}"
    return session, actor


def _step(sessions, who: _People, milestone_id, status: str) -> None:
    if status == "submitted":
        session, actor = _acting(sessions, who.contractor_user, who.org_id)
        submissions.submit_work(
            session, actor, milestone_id, submissions.SubmissionInput(note="Done, see the link.", links=EVIDENCE_LINK)
        )
    elif status in ("approved", "planned"):
        session, actor = _acting(sessions, who.owner, who.org_id)
        submission, _review = submissions.latest_submission(session, milestone_id)
        assert submission is not None, f"milestone {milestone_id} has no submitted work to decide on"
        decision, reason = ("approve", "") if status == "approved" else ("dispute", "Returned for changes.")
        reviews.decide(
            session,
            actor,
            milestone_id,
            reviews.DecisionInput(submission_id=str(submission.id), decision=decision, reason=reason),
        )
    elif status == "cancelled":
        session, actor = _acting(sessions, who.owner, who.org_id)
        change_orders.issue_change_order(
            session,
            actor,
            who.engagement_id,
            change_orders.ChangeOrderInput(
                reason="No longer needed.",
                based_on=change_orders.latest_number(session, who.engagement_id),
                changes=[change_orders.MilestoneChange(milestone_id=str(milestone_id), cancel=True)],
            ),
        )
    else:
        raise ValueError(f"no way to move a milestone to {status!r} here")
    if isinstance(sessions, sessionmaker):
        session.close()


def move_milestone(sessions, admin_engine, milestone_id, *statuses: str) -> None:
    """Walk the milestone through ``statuses`` ("submitted", "approved", "planned" after a dispute,
    "cancelled"), each step through its service as the person who takes it; each step commits."""
    who = _people(admin_engine, milestone_id)
    for status in statuses:
        _step(sessions, who, milestone_id, status)


def authorize_payment(session: Session, milestone_id) -> uuid.UUID:
    """The invoice (and ledger lines) the milestone's latest approving review authorizes, written by
    ``services.invoices.authorize_milestone`` in the session's transaction as the person the session acts
    as: for guard tests that insert the review by hand and need the invoice the database wants with it."""
    context = session.info["rls"]
    actor = actor_for(session, context.user_id, context.org_id)
    milestone = session.execute(
        select(Milestone).where(Milestone.id == milestone_id).execution_options(populate_existing=True)
    ).scalar_one()
    engagement = session.get(Engagement, milestone.engagement_id)
    _submission, review = submissions.latest_submission(session, milestone.id)
    assert review is not None, f"milestone {milestone_id} has no review to authorize a payment with"
    return invoices.authorize_milestone(session, actor, engagement, milestone, review).id
