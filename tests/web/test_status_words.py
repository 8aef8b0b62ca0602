"""One status vocabulary (issue 22, item 2): a milestone sent back says why, and one approved in part says so, in
the same words on the engagement page, the Due page, the milestone page and the contractor's home, for the owner
and for the contractor."""

from __future__ import annotations

import re

import pytest
from kit.engagements import acting
from kit.money import set_org
from kit.money_pages import active_engagement, milestone_ids
from kit.web import signed_in, table_row

from backoffice.services import submissions as submission_service
from backoffice.services.reviews import DecisionInput, decide

ROWS = (
    ("Survey", "Site survey", "1,000.00", "2030-01-15"),
    ("Framing", "Walls framed", "2,000.00", "2030-02-15"),
    ("Roofing", "Roof on", "3,000.00", "2030-03-15"),
)

DISPUTED = '<span class="badge status-disputed">Disputed</span>'
CHANGES = '<span class="badge status-changes_requested">Changes requested</span>'
PARTLY = '<span class="badge status-partly_approved">Partly approved</span>'


def submit_and_decide(app_sessions, world, milestone_id, decision: str, **extra) -> None:
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submission = submission_service.submit_work(
            session,
            actor,
            milestone_id,
            submission_service.SubmissionInput(note="Done.", links="https://example.com/work", files=[]),
        )
        submission_id = submission.id
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        decide(
            session,
            actor,
            milestone_id,
            DecisionInput(submission_id=str(submission_id), decision=decision, reason="Not all of it.", **extra),
        )


@pytest.fixture
def sent_back(app_sessions, admin_engine, world):
    """Survey disputed, Framing partly approved under route_back, Roofing partly approved under split."""
    engagement = active_engagement(app_sessions, world, title="Barn conversion", rows=ROWS)
    survey, framing, roofing = milestone_ids(admin_engine, engagement)
    submit_and_decide(app_sessions, world, survey, "dispute")
    submit_and_decide(app_sessions, world, framing, "partial")  # the world's organizations route back
    set_org(admin_engine, world.org_a, partial_policy="split")
    submit_and_decide(app_sessions, world, roofing, "partial", approved_amount="1,000.00", amount_minor="300000")
    return engagement, survey, framing, roofing


def milestone_status(html: str) -> str:
    return re.search(r'<span id="milestone-status">(.*?)</span></span>', html, re.DOTALL).group(1) + "</span>"


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_the_engagement_page_says_why_each_milestone_came_back(app, login, world, sent_back, who):
    engagement, *_ = sent_back
    html = signed_in(app, login, getattr(world, who)).get(f"/engagements/{engagement}").get_data(as_text=True)
    assert DISPUTED in table_row(html, "Survey")
    assert CHANGES in table_row(html, "Framing")
    assert PARTLY in table_row(html, "Roofing")


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_the_due_page_shows_the_same_words(app, login, world, sent_back, who):
    html = signed_in(app, login, getattr(world, who)).get("/engagements/due").get_data(as_text=True)
    assert DISPUTED in table_row(html, "Survey")
    assert CHANGES in table_row(html, "Framing")
    # The split's remainder is a new milestone still to deliver; the approved part is no longer due.
    assert "Planned" in table_row(html, "Roofing")


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_each_milestone_page_shows_the_same_words(app, login, world, sent_back, who):
    _, survey, framing, roofing = sent_back
    client = signed_in(app, login, getattr(world, who))
    expected = {survey: DISPUTED, framing: CHANGES, roofing: PARTLY}
    for milestone, badge in expected.items():
        html = client.get(f"/milestones/{milestone}").get_data(as_text=True)
        assert milestone_status(html) == badge
        assert badge in html[html.index('id="revisions"') :]  # the revision's decision reads the same


def test_the_returned_callout_names_the_reason_in_the_same_words(app, login, world, sent_back):
    _, survey, framing, _ = sent_back
    client = signed_in(app, login, world.contractor_x_user)
    assert "<strong>Disputed by Omar Owner</strong>" in client.get(f"/milestones/{survey}").get_data(as_text=True)
    framing_page = client.get(f"/milestones/{framing}").get_data(as_text=True)
    assert "<strong>Changes requested by Omar Owner</strong>" in framing_page


def test_the_contractors_home_shows_the_same_words_for_work_sent_back(app, login, world, sent_back):
    html = signed_in(app, login, world.contractor_x_user).get("/").get_data(as_text=True)
    returned = html[html.index("Sent back to you") :]
    survey = returned[returned.index("Survey") :]
    framing = returned[returned.index("Framing") :]
    assert survey[: survey.index("</li>")].count(DISPUTED) == 1
    assert framing[: framing.index("</li>")].count(CHANGES) == 1
    assert "Roofing" not in returned[: returned.index("</article>")]


def test_the_change_order_editor_shows_the_same_words(app, login, world, sent_back):
    engagement, *_ = sent_back
    response = signed_in(app, login, world.owner).get(f"/engagements/{engagement}/change-orders/new")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # A disputed milestone is planned again in the database; the editor does not call it "Planned".
    assert DISPUTED in table_row(html, 'value="Survey"')
    assert CHANGES in table_row(html, 'value="Framing"')
    assert PARTLY in table_row(html, "Roofing")
