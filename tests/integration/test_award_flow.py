"""The award flow end to end through the real services as the real app role (issue 19): a project invites two
contractors, both propose, the owner awards one; the engagement is active with the proposal's milestones."""

from __future__ import annotations

from kit.engagements import milestone_rows, owner_query
from kit.projects import award, open_project, propose

from backoffice.domain.engagements import EngagementStatus


def test_awarding_a_proposal_creates_the_active_engagement_and_declines_the_other(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project)
    engagement_id = award(app_sessions, world.owner, world.org_a, project, px)

    (e,) = owner_query(admin_engine, "select * from engagements where id = :i", i=engagement_id)
    assert (e["status"], e["contractor_id"], e["proposal_id"], e["owner_user_id"]) == (
        EngagementStatus.ACTIVE,
        world.contractor_x,
        px,
        world.owner.id,
    )
    assert e["responded_by"] == world.contractor_x_user.id and e["sent_by"] == world.owner.id
    assert [(m["title"], m["amount_minor"], m["status"]) for m in milestone_rows(admin_engine, engagement_id)] == [
        ("Survey", 150000, "planned"),
        ("Delivery", 350000, "planned"),
    ]
    statuses = {
        r["id"]: r["status"]
        for r in owner_query(admin_engine, "select id, status from proposals where project_id = :p", p=project)
    }
    assert statuses == {px: "accepted", py: "declined"}
    (p,) = owner_query(admin_engine, "select status, awarded_by from projects where id = :p", p=project)
    assert (p["status"], p["awarded_by"]) == ("awarded", world.owner.id)
