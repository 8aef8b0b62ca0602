"""What the award flow's events tell whom (issue 19; DESIGN.md section 6, "Award"): a project opened to contractors,
a proposal submitted or withdrawn (its project's owner), the award (every contractor whose proposal was decided: the
winner's notice links its new engagement) and a cancellation. Builders like those of services/notification_events,
registered there with @builds (which imports this module last).

They read as the organization's worker, which may read projects, their categories and invitations, proposals,
engagements and milestones, and contractors' names (sql/projects.sql, sql/rls_policies.sql); never a proposal's
milestones or files."""

from __future__ import annotations

from sqlalchemy import func, select

from backoffice.domain import projects as rules
from backoffice.domain.projects import Audience, ProposalStatus
from backoffice.domain.roles import Role
from backoffice.models import Engagement, Membership, Milestone, Project, ProjectCategory, ProjectInvitation, Proposal
from backoffice.queries.projects import today
from backoffice.services import links
from backoffice.services.notification_events import (
    Notice,
    OrgVoice,
    Person,
    _people,
    _user_name,
    builds,
    contractor_name,
    contractor_people,
    person,
)
from backoffice.services.validation import get_visible

# The project's description, quoted in an invitation up to this many characters (the page has all of it).
DESCRIPTION_QUOTED = 600


def _project_facts(session, org: OrgVoice, project: Project) -> tuple[tuple[str, str], ...]:
    category = session.execute(
        select(ProjectCategory.name).where(ProjectCategory.id == project.category_id)
    ).scalar_one()
    budget = (("Budget", org.money(project.budget_minor, project.currency)),) if project.budget_minor else ()
    return (
        ("Project", project.title),
        ("Category", category),
        ("Proposals due by", org.day(project.deadline)),
        *budget,
    )


def _invited_people(session, project: Project) -> tuple[Person, ...]:
    """The users of the contractors who may propose: every contractor's, or the invited ones'."""
    if project.audience == Audience.ALL:
        return _people(session, Membership.role == Role.CONTRACTOR.value, Membership.contractor_id.is_not(None))
    invited = select(ProjectInvitation.contractor_id).where(ProjectInvitation.project_id == project.id)
    return _people(session, Membership.role == Role.CONTRACTOR.value, Membership.contractor_id.in_(invited))


def _decided(session, project_id) -> list[Proposal]:
    """The project's proposals the award or the cancellation decided (a withdrawn one had left already)."""
    return list(
        session.execute(
            select(Proposal)
            .where(
                Proposal.project_id == project_id,
                Proposal.status.in_([ProposalStatus.ACCEPTED.value, ProposalStatus.DECLINED.value]),
            )
            .order_by(Proposal.submitted_at, Proposal.id)
        ).scalars()
    )


@builds("project.opened")
def _opened(session, org, project_id, event):
    """Everyone who may propose, once per project (the job runs again when contractors are invited later: those
    told already are not told twice). Nobody, once the project no longer takes proposals."""
    project = get_visible(session, Project, project_id)
    if not rules.takes_proposals(project.status, project.deadline, today(session)):
        return []
    description = project.description.strip()
    if len(description) > DESCRIPTION_QUOTED:
        description = description[:DESCRIPTION_QUOTED].rstrip() + "…"
    return [
        Notice(
            event,
            f"project.opened:{project.id}",
            _invited_people(session, project),
            subject=f"You're invited to propose on {project.title}",
            lead=f"{org.name} invites you to propose on “{project.title}”. Send your price and milestones by "
            f"{org.day(project.deadline)}; you can change or withdraw your proposal while the project is open.",
            facts=(
                *_project_facts(session, org, project),
                ("Project owner", _user_name(session, project.owner_user_id)),
            ),
            quote=description or None,
            quote_label="The project",
            path=links.proposal_project(project.id),
            action="See the project and propose",
            entity=("project", str(project.id)),
        )
    ]


def _about_proposal(session, org, proposal_id) -> tuple[Proposal, Project, str, str]:
    """The proposal, its project, its contractor's name and its price as the organization writes it."""
    proposal = get_visible(session, Proposal, proposal_id)
    project = session.get(Project, proposal.project_id)
    return (
        proposal,
        project,
        contractor_name(session, proposal.contractor_id),
        org.money(proposal.price_minor, project.currency),
    )


@builds("proposal.submitted")
def _submitted(session, org, proposal_id, event):
    """The project's owner: who proposed what (price, timeline, note)."""
    proposal, project, contractor, price = _about_proposal(session, org, proposal_id)
    # Counted up to this proposal, so the number is the same however late the job runs.
    so_far = session.execute(
        select(func.count()).where(Proposal.project_id == project.id, Proposal.submitted_at <= proposal.submitted_at)
    ).scalar_one()
    return [
        Notice(
            event,
            f"proposal.submitted:{proposal.id}",
            person(session, project.owner_user_id),
            subject=f"{contractor} proposed {price} on {project.title}",
            lead=f"{contractor} sent a proposal of {price} for “{project.title}”. Compare the proposals side by side "
            "and accept one when you are ready.",
            facts=(
                ("Project", project.title),
                ("Contractor", contractor),
                ("Price", price),
                *((("Timeline", proposal.timeline),) if proposal.timeline else ()),
                ("Proposals so far", str(so_far)),
                ("Proposals due by", org.day(project.deadline)),
                ("Submitted by", _user_name(session, proposal.submitted_by)),
            ),
            quote=proposal.note or None,
            quote_label="Note from the contractor",
            path=links.project(project.id),
            action="Compare the proposals",
            entity=("proposal", str(proposal.id)),
        )
    ]


@builds("proposal.withdrawn")
def _withdrawn(session, org, proposal_id, event):
    """The project's owner: a contractor took its proposal back."""
    proposal, project, contractor, price = _about_proposal(session, org, proposal_id)
    return [
        Notice(
            event,
            f"proposal.withdrawn:{proposal.id}",
            person(session, project.owner_user_id),
            subject=f"{contractor} withdrew its proposal on {project.title}",
            lead=f"{contractor} took back its proposal of {price} for “{project.title}”; it can no longer be accepted.",
            facts=(
                ("Project", project.title),
                ("Contractor", contractor),
                ("Price", price),
                ("Proposals due by", org.day(project.deadline)),
            ),
            path=links.project(project.id),
            action="Compare the proposals",
            entity=("proposal", str(proposal.id)),
        )
    ]


@builds("project.awarded")
def _awarded(session, org, project_id, event):
    """Every contractor whose proposal was decided: the winner that its engagement is active (linked), each other
    that its proposal was not accepted. The project's owner too when an admin awarded it in their stead."""
    project = get_visible(session, Project, project_id)
    awarded_by = _user_name(session, project.awarded_by)
    notices = []
    winner_name, winner_price, engagement = None, None, None
    for proposal in _decided(session, project.id):
        price = org.money(proposal.price_minor, project.currency)
        if proposal.status == ProposalStatus.ACCEPTED:
            winner_name, winner_price = contractor_name(session, proposal.contractor_id), price
            engagement = session.execute(select(Engagement).where(Engagement.proposal_id == proposal.id)).scalar_one()
            notices.append(_accepted(session, org, event, project, proposal, engagement, price, awarded_by))
            continue
        notices.append(
            Notice(
                event,
                f"project.awarded:{project.id}:{proposal.id}",
                contractor_people(session, proposal.contractor_id),
                subject=f"Your proposal for {project.title} was not accepted",
                lead=f"{org.name} awarded “{project.title}” to another contractor, so your proposal was declined. "
                "Thank you for proposing.",
                facts=(("Project", project.title), ("Your price", price), ("Decided by", awarded_by)),
                path=links.proposal_project(project.id),
                action="See the project",
                entity=("project", str(project.id)),
            )
        )
    if engagement is not None and project.awarded_by != project.owner_user_id:
        notices.append(
            Notice(
                event,
                f"project.awarded:{project.id}:owner",
                person(session, project.owner_user_id),
                subject=f"{awarded_by} awarded {project.title} to {winner_name}",
                lead=f"{awarded_by} accepted {winner_name}'s proposal for “{project.title}”, which you own. "
                "The engagement is active; you decide its milestones as they are submitted.",
                facts=(
                    ("Project", project.title),
                    ("Contractor", winner_name),
                    ("Contract value", winner_price),
                    ("Awarded by", awarded_by),
                ),
                path=links.engagement(engagement.id),
                action="Open the engagement",
                entity=("project", str(project.id)),
            )
        )
    return notices


def _accepted(session, org, event, project, proposal, engagement, price, awarded_by) -> Notice:
    count, first_due = session.execute(
        select(func.count(), func.min(Milestone.due_date)).where(
            Milestone.engagement_id == engagement.id, Milestone.status != "cancelled"
        )
    ).one()
    return Notice(
        event,
        f"project.awarded:{project.id}:{proposal.id}",
        contractor_people(session, proposal.contractor_id),
        subject=f"Your proposal for {project.title} was accepted — the engagement is active",
        lead=f"{org.name} accepted your proposal for “{project.title}”. The engagement is active with the milestones "
        "you proposed: submit each one when it is done.",
        facts=(
            ("Engagement", engagement.title),
            ("Contract value", price),
            ("Milestones", str(count)),
            *((("First milestone due", org.day(first_due)),) if first_due else ()),
            ("Accepted by", awarded_by),
        ),
        path=links.engagement(engagement.id),
        action="Open the engagement",
        entity=("project", str(project.id)),
    )


@builds("project.cancelled")
def _cancelled(session, org, project_id, event):
    """Every contractor whose proposal the cancellation declined, with the reason."""
    project = get_visible(session, Project, project_id)
    people = tuple(
        dict.fromkeys(
            p for proposal in _decided(session, project.id) for p in contractor_people(session, proposal.contractor_id)
        )
    )
    return [
        Notice(
            event,
            f"project.cancelled:{project.id}",
            people,
            subject=f"Cancelled: {project.title}",
            lead=f"{org.name} cancelled “{project.title}”, so no proposal on it will be accepted, yours included.",
            facts=(("Project", project.title), ("Cancelled by", _user_name(session, project.cancelled_by))),
            quote=project.cancel_reason,
            path=links.proposal_project(project.id),
            action="See the project",
            entity=("project", str(project.id)),
        )
    ]
