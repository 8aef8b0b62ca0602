"""A contractor's home page says what is waiting for them: work requests to answer, work sent back with
the owner's reason, what is due next, and the money on its way. Only their own: another contractor of
the same organization sees none of it."""

from __future__ import annotations

from kit.engagements import acting, create_sent
from kit.money_pages import active_engagement, approve, milestone_ids, pay_as
from kit.web import signed_in, visible_text

from backoffice.services import submissions as submission_service
from backoffice.services.reviews import DecisionInput, decide


def send_back(app_sessions, world, milestone_id, decision: str, reason: str) -> None:
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submission = submission_service.submit_work(
            session,
            actor,
            milestone_id,
            submission_service.SubmissionInput(note="First cut.", links="https://example.com/draft", files=[]),
        )
        submission_id = submission.id
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        decide(
            session,
            actor,
            milestone_id,
            DecisionInput(submission_id=str(submission_id), decision=decision, reason=reason),
        )


def test_a_new_contractor_is_told_where_work_will_appear(app, login, world):
    page = visible_text(signed_in(app, login, world.contractor_x_user).get("/").get_data(as_text=True))
    assert "Nothing is waiting for you." in page
    assert "Work requests from" in page


def test_the_home_page_lists_requests_returned_work_due_milestones_and_money(
    app, login, world, app_sessions, admin_engine
):
    create_sent(app_sessions, world, title="Attic conversion")
    active = active_engagement(app_sessions, world, title="Garden studio")
    design, build = milestone_ids(admin_engine, active)
    send_back(app_sessions, world, build, "dispute", "The structural calculations are missing.")
    invoice = approve(app_sessions, world, design)

    client = signed_in(app, login, world.contractor_x_user)
    html = client.get("/").get_data(as_text=True)
    page = visible_text(html)
    assert "Attic conversion" in page and "3 milestones" in page and "$3,500.00" in page
    assert "Accept or decline" in page
    assert "Build" in page and "Disputed" in page and "The structural calculations are missing." in page
    assert f'href="/milestones/{build}"' in html
    # Money: the approved Design ($1,234.55 gross, 10% retainage) is on its way at its net.
    assert "$1,111.09" in page and "1 payment on its way" in page

    pay_as(app_sessions, world.finance, world.org_a, invoice)
    page = visible_text(client.get("/").get_data(as_text=True))
    assert "Paid in the last 30 days" in page and "$1,111.09" in page
    assert "on its way" not in page


def test_another_contractor_of_the_same_organization_sees_none_of_it(app, login, world, app_sessions, admin_engine):
    create_sent(app_sessions, world, title="Attic conversion")
    active = active_engagement(app_sessions, world, title="Garden studio")
    approve(app_sessions, world, milestone_ids(admin_engine, active)[0])
    page = visible_text(signed_in(app, login, world.contractor_y_user).get("/").get_data(as_text=True))
    assert "Attic conversion" not in page and "Garden studio" not in page and "$1,111.09" not in page
    assert "Nothing is waiting for you." in page
