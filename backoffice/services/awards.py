"""The award (DESIGN.md section 3, "Project and proposal"): one proposal becomes the contract.

In one transaction the proposal is accepted, every other still waiting is declined, the project is awarded, and
the engagement is created ``active`` from the proposal (its milestones and price, the project's billing mode and
currency, the organization's terms), linked to the proposal for ever; everyone who proposed is told.

Races: the project's row lock is taken first, so of two awards of one project the second waits and then finds it
awarded; the proposal's row lock next, which a withdrawal (services/proposals.py) and any change to the proposal's
milestones or files (sql/project_guards.sql) take too, so an award and a withdrawal of one proposal happen one after the
other, never both. The database holds the outcome at commit whoever writes (sql/project_guards.sql, projects_settled and
proposals_checked; unique indexes proposals_one_accepted and engagements_one_per_proposal).
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import completion
from backoffice.domain.completion import BillingMode
from backoffice.domain.engagements import EngagementStatus
from backoffice.domain.projects import ProjectStatus, ProposalStatus
from backoffice.domain.roles import MANAGERS
from backoffice.errors import Conflict, NotFound
from backoffice.jobs import queue
from backoffice.models import Contractor, Engagement, Milestone, Organization, Proposal, ProposalMilestone, User
from backoffice.services import audit
from backoffice.services import completion as completion_billing
from backoffice.services.projects import decline_waiting, get_project, require_runner
from backoffice.services.validation import parse_id


def offer_version(session: Session, proposal_id) -> str:
    """A fingerprint of the offer as it stands: its price, timeline and milestones. The confirmation page carries the
    one the owner read, and ``award`` accepts the offer only if it is still that one (a contractor may change its
    proposal until the deadline, even while the owner is reading it)."""
    proposal = session.get(Proposal, proposal_id)
    milestones = session.execute(
        select(
            ProposalMilestone.seq,
            ProposalMilestone.title,
            ProposalMilestone.deliverable,
            ProposalMilestone.amount_minor,
            ProposalMilestone.due_date,
        )
        .where(ProposalMilestone.proposal_id == proposal_id)
        .order_by(ProposalMilestone.seq)
    ).all()
    offer = [proposal.price_minor, proposal.timeline, [[*m[:4], m[4].isoformat()] for m in milestones]]
    return hashlib.sha256(json.dumps(offer, ensure_ascii=False).encode()).hexdigest()[:32]


def award(session: Session, actor: Actor, project_id, proposal_id, seen_version: str | None = None) -> Engagement:
    """Accept ``proposal_id`` on ``project_id`` and create its engagement, active. Raises Forbidden for someone who
    does not run the project, NotFound for a proposal not on it, Conflict when the project was awarded or cancelled
    meanwhile, the proposal is no longer waiting (withdrawn, say), or, given ``seen_version`` (``offer_version`` of
    what the owner reviewed), the contractor changed its offer since; with words that say which."""
    actor.require(*MANAGERS)
    try:
        with unit_of_work(session):
            project = get_project(session, project_id, lock=True)
            require_runner(actor, project)
            if project.status != ProjectStatus.OPEN:
                raise Conflict(_closed_words(session, project))
            proposal = _locked_proposal(session, project.id, proposal_id)
            name = session.get(Contractor, proposal.contractor_id).legal_name
            if proposal.status != ProposalStatus.SUBMITTED:
                raise Conflict(f"{name}'s proposal was {proposal.status} meanwhile, so it cannot be accepted.")
            if seen_version is not None and seen_version != offer_version(session, proposal.id):
                raise Conflict(f"{name} changed its proposal since you opened it; read it again before you accept it.")
            offered = (
                session.execute(
                    select(ProposalMilestone)
                    .where(ProposalMilestone.proposal_id == proposal.id)
                    .order_by(ProposalMilestone.seq)
                )
                .scalars()
                .all()
            )
            proposal.status = ProposalStatus.ACCEPTED.value
            proposal.decided_by, proposal.decided_at = actor.user_id, func.now()
            session.flush()
            declined = decline_waiting(session, actor, project.id, keep=proposal.id)
            engagement = _contract(session, actor, project, proposal)
            for m in offered:
                session.add(
                    Milestone(
                        org_id=engagement.org_id,
                        contractor_id=engagement.contractor_id,
                        engagement_id=engagement.id,
                        seq=m.seq,
                        title=m.title,
                        deliverable=m.deliverable,
                        amount_minor=m.amount_minor,
                        due_date=m.due_date,
                    )
                )
            session.flush()
            advance = completion_billing.authorize_advance(session, actor, engagement)
            project.status = ProjectStatus.AWARDED.value
            project.awarded_by, project.awarded_at = actor.user_id, func.now()
            project.updated_at = func.now()
            session.flush()
            audit.record(
                session,
                actor,
                "project.awarded",
                "project",
                project.id,
                {
                    "proposal_id": str(proposal.id),
                    "contractor_id": str(proposal.contractor_id),
                    "contractor": name,
                    "engagement_id": str(engagement.id),
                    "price_minor": proposal.price_minor,
                    "currency": project.currency,
                    "declined": sorted(str(i) for i in declined),
                },
            )
            audit.record(
                session,
                actor,
                "engagement.created",
                "engagement",
                engagement.id,
                {
                    "from_proposal": str(proposal.id),
                    "project_id": str(project.id),
                    "status": engagement.status,
                    "milestones": len(offered),
                    "contract_value_minor": proposal.price_minor,
                    "billing_mode": engagement.billing_mode,
                    "advance_invoice": advance.invoice_number if advance else None,
                },
            )
            queue.notify(session, actor.org_id, "project.awarded", project.id)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in ("23505", "23514", "40001", "40P01"):
            raise Conflict("Someone else changed this project or proposal just now; reload and try again.") from None
        raise
    return engagement


def _locked_proposal(session: Session, project_id, proposal_id) -> Proposal:
    row_id = parse_id(proposal_id)
    proposal = (
        row_id
        and session.execute(
            select(Proposal)
            .where(Proposal.id == row_id, Proposal.project_id == project_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    )
    if not proposal:
        raise NotFound()
    return proposal


def _contract(session: Session, actor: Actor, project, proposal: Proposal) -> Engagement:
    """The engagement an award creates: active at once (the proposal was the offer, the award its acceptance)."""
    org = session.execute(select(Organization).where(Organization.id == actor.org_id)).scalar_one()
    completion_terms = {}
    if project.billing_mode == BillingMode.COMPLETION:
        # The project's advance on the proposal's price, confirmed by the person awarding (the award page shows it);
        # the proposal's tasks share the rest (sql/project_guards.sql).
        advance = completion.advance_amount(proposal.price_minor, project.advance_bps or 0)
        completion_terms = {
            "contract_value_minor": proposal.price_minor,
            "advance_bps": project.advance_bps or 0,
            "advance_minor": advance,
            "advance_confirmed_by": actor.user_id if advance else None,
        }
    engagement = Engagement(
        org_id=actor.org_id,
        contractor_id=proposal.contractor_id,
        owner_user_id=project.owner_user_id,
        title=project.title,
        currency=project.currency,
        retainage_bps=org.default_retainage_bps,
        payment_terms_days=org.payment_terms_days,
        service_fee_bps=0,
        billing_mode=project.billing_mode,
        status=EngagementStatus.ACTIVE.value,
        created_by=actor.user_id,
        sent_by=actor.user_id,
        sent_at=func.now(),
        responded_by=proposal.submitted_by,
        responded_at=func.now(),
        proposal_id=proposal.id,
        **completion_terms,
    )
    session.add(engagement)
    session.flush()
    return engagement


def _closed_words(session: Session, project) -> str:
    if project.status == ProjectStatus.CANCELLED:
        return "This project was cancelled, so nothing can be awarded on it."
    row = session.execute(
        select(Contractor.legal_name, User.name)
        .select_from(Proposal)
        .join(Contractor, Contractor.id == Proposal.contractor_id)
        .join(User, User.id == project.awarded_by)
        .where(Proposal.project_id == project.id, Proposal.status == ProposalStatus.ACCEPTED.value)
    ).one_or_none()
    if row is None:
        return "This project was awarded already."
    return f"{row.name} awarded this project to {row.legal_name} already."
