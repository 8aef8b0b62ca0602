"""The Due page: open milestones of running engagements across the organization, soonest first."""

from __future__ import annotations

from datetime import date, timedelta

from kit.engagements import create_active, create_draft, milestones_of, set_due_date
from kit.milestones import move_milestone
from kit.web import signed_in, table_row, visible_text


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/engagements/due")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_staff_see_open_milestones_of_running_engagements_soonest_first_with_overdue_marked(
    app, world, login, app_sessions, admin_engine
):
    active = create_active(app_sessions, world, title=f"Running {world.suffix}")
    create_draft(app_sessions, world, title=f"Drafted {world.suffix}")
    design, build, _ = milestones_of(admin_engine, active)
    set_due_date(admin_engine, build.id, date.today() - timedelta(days=3))
    move_milestone(app_sessions, admin_engine, design.id, "submitted", "approved")

    page = signed_in(app, login, world.finance).get("/engagements/due").get_data(as_text=True)
    text = visible_text(page)
    assert "Build" in text and "Handover" in text
    assert "Design" not in text, "an approved milestone is no longer due"
    assert f"Drafted {world.suffix}" not in text, "a draft's milestones are not due yet"
    assert text.index("Build") < text.index("Handover"), "soonest due first"
    assert "Overdue" in visible_text(table_row(page, "Build")) and "Overdue" not in visible_text(
        table_row(page, "Handover")
    )


def test_the_status_filter_keeps_only_milestones_awaiting_review(app, world, login, app_sessions, admin_engine):
    active = create_active(app_sessions, world)
    _, build, _ = milestones_of(admin_engine, active)
    move_milestone(app_sessions, admin_engine, build.id, "submitted")
    text = visible_text(
        signed_in(app, login, world.owner).get("/engagements/due?status=submitted").get_data(as_text=True)
    )
    assert "Build" in text and "Design" not in text and "Handover" not in text


def test_a_contractor_sees_only_its_own_milestones(app, world, login, app_sessions):
    create_active(app_sessions, world, title=f"For X {world.suffix}")
    create_active(app_sessions, world, title=f"For Y {world.suffix}", contractor_id=world.contractor_y)
    text = visible_text(signed_in(app, login, world.contractor_y_user).get("/engagements/due").get_data(as_text=True))
    assert f"For Y {world.suffix}" in text
    assert f"For X {world.suffix}" not in text


def test_another_organization_sees_nothing_due(app, world, login, app_sessions):
    create_active(app_sessions, world, title=f"Org A work {world.suffix}")
    page = signed_in(app, login, world.admin_b).get("/engagements/due")
    assert page.status_code == 200
    assert f"Org A work {world.suffix}" not in visible_text(page.get_data(as_text=True))
