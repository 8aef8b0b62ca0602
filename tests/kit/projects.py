"""Projects and proposals built through the services as the people who would build them (issue 19): a category,
an open project inviting contractors, each contractor's proposal, the award."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from backoffice.services import awards, projects, proposals
from backoffice.services.projects import ProjectInput
from backoffice.services.proposals import ProposalInput
from backoffice.services.schedule import RowInput
from kit.engagements import acting

# Two proposed milestones, $5,000.00 in all.
OFFER = (
    ("Survey", "Site survey report", "1,500.00", "2030-02-01"),
    ("Delivery", "Installed and tested", "3,500.00", "2030-03-15"),
)


def category(app_sessions, world, name="Renovation", org_id=None, admin=None) -> uuid.UUID:
    with acting(app_sessions, admin or world.admin, org_id or world.org_a) as (session, actor):
        return projects.add_category(session, actor, name).id


def project_input(category_id, *, invited=(), title="Office refit", deadline=None, audience="invited", **kw):
    return ProjectInput(
        title=title,
        category_id=str(category_id),
        deadline=(deadline or date.today() + timedelta(days=14)).isoformat(),
        description=kw.pop("description", "Refit the third floor."),
        audience=audience,
        invited=tuple(str(i) for i in invited),
        **kw,
    )


def open_project(app_sessions, world, *, by=None, invited=None, category_id=None, **kw) -> uuid.UUID:
    """An open project by ``by`` (the owner by default) inviting contractors X and Y unless told otherwise."""
    category_id = category_id or category(app_sessions, world)
    invited = (world.contractor_x, world.contractor_y) if invited is None else invited
    with acting(app_sessions, by or world.owner, world.org_a) as (session, actor):
        return projects.open_project(session, actor, project_input(category_id, invited=invited, **kw)).id


def offer(price="5,000.00", rows=OFFER, **kw) -> ProposalInput:
    return ProposalInput(
        price=price,
        rows=[RowInput(title=t, deliverable=d, amount=a, due_date=due) for t, d, a, due in rows],
        timeline=kw.pop("timeline", "Six weeks from award"),
        note=kw.pop("note", "We did the second floor."),
        **kw,
    )


def propose(app_sessions, person, org_id, project_id, data=None, files=()) -> uuid.UUID:
    with acting(app_sessions, person, org_id) as (session, actor):
        return proposals.submit_proposal(session, actor, project_id, data or offer(), list(files)).id


def award(app_sessions, person, org_id, project_id, proposal_id) -> uuid.UUID:
    with acting(app_sessions, person, org_id) as (session, actor):
        return awards.award(session, actor, project_id, proposal_id).id
