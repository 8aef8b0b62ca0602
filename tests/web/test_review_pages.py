"""Reviewing submitted work through the web: the queue of the owner's (or, for an admin, every) submitted
milestone, oldest first; the milestone page shows what approval authorizes and the evidence; a decision
is recorded once, on the latest revision, by the engagement's owner or an admin, and never by anyone
else. Refused decisions change nothing."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta

import pytest
from kit.engagements import acting, create_active, milestones_of
from kit.web import HTMX, csrf_token, signed_in, table_row, visible_text
from sqlalchemy import text

from backoffice.db import make_session_factory
from backoffice.domain.money import format_amount
from backoffice.domain.roles import Role
from backoffice.services import bootstrap, change_orders
from backoffice.services import submissions as submission_service
from backoffice.services.evidence import UploadedFile

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
NOTES = b"Measured drawings, revision A.\n"
# One milestone of $1,234.55: 10% retainage is $123.455, rounded half up to $123.46.
ODD_AMOUNT = (("Design", "Floor plans", "1,234.55", "2030-01-15"),)


def page(mid) -> str:
    return f"/milestones/{mid}"


def submit_work(
    app_sessions,
    world,
    mid,
    *,
    note="Plans attached.",
    links="https://example.com/plans",
    files=(("plans.pdf", PDF), ("notes.txt", NOTES)),
    contractor=None,
):
    with acting(app_sessions, contractor or world.contractor_x_user, world.org_a) as (session, actor):
        submission = submission_service.submit_work(
            session,
            actor,
            mid,
            submission_service.SubmissionInput(
                note=note, links=links, files=[UploadedFile.from_bytes(n, d) for n, d in files]
            ),
        )
        return submission.id


def backdate(admin_engine, submission_id, days: int) -> None:
    """As if the work had been submitted ``days`` ago: the submission and its milestone's move to submitted
    (milestones.submitted_at, which the queue orders by)."""
    with admin_engine.begin() as conn:
        conn.execute(text("alter table milestones disable trigger user"))  # the owner's fixture, this statement only
        conn.execute(
            text(
                "update milestones m set submitted_at = now() - make_interval(days => :d)"
                "  from submissions s where s.id = :s and m.id = s.milestone_id"
            ),
            {"d": days, "s": submission_id},
        )
        conn.execute(text("alter table milestones enable trigger user"))
        conn.execute(
            text("update submissions set submitted_at = now() - make_interval(days => :d) where id = :s"),
            {"d": days, "s": submission_id},
        )


def second_owner(admin_engine, world, password_hash):
    """Another project owner in org A, who owns nothing the fixtures build."""
    with make_session_factory(admin_engine)() as session:
        user = bootstrap.create_user(
            session,
            email=f"owner2-{world.suffix}@example.com",
            name="Olga Other",
            password_hash=password_hash,
            org_id=world.org_a,
            role=Role.OWNER,
        )
        session.commit()
        return user


def snapshot(admin_engine, org_id) -> dict:
    with admin_engine.connect() as conn:

        def rows(sql):
            return [tuple(r) for r in conn.execute(text(sql), {"o": org_id})]

        return {
            "reviews": rows("select * from reviews where org_id = :o order by id"),
            "submissions": rows("select * from submissions where org_id = :o order by id"),
            "milestones": rows("select * from milestones where org_id = :o order by id"),
            "audit": rows(
                "select seq, action from audit_events where org_id = :o and action like 'milestone.%' order by seq"
            ),
        }


def status_of(admin_engine, mid) -> str:
    with admin_engine.connect() as conn:
        return conn.execute(text("select status from milestones where id = :m"), {"m": mid}).scalar_one()


def decide(client, mid, submission_id, decision, reason="", *, amount_minor="", htmx=False):
    data = {
        "submission_id": str(submission_id),
        "decision": decision,
        "reason": reason,
        "amount_minor": str(amount_minor),
    }
    token = csrf_token(client, page(mid))
    if htmx:
        return client.post(f"{page(mid)}/decide", data=data, headers={**HTMX, "X-CSRFToken": token})
    return client.post(f"{page(mid)}/decide", data={**data, "csrf_token": token})


@pytest.fixture
def engagement(world, app_sessions):
    return create_active(app_sessions, world, title="Kitchen renovation")


@pytest.fixture
def submitted(world, app_sessions, admin_engine, engagement):
    """(milestone id, submission id): the Design milestone ($1,000.00), submitted by contractor X's user."""
    mid = milestones_of(admin_engine, engagement)[0].id
    return mid, submit_work(app_sessions, world, mid)


@pytest.fixture
def owner(app, login, world):
    return signed_in(app, login, world.owner)


# --- the queue -------------------------------------------------------------------------------------


def test_owner_sees_only_their_engagements_and_admin_sees_all_oldest_first(
    app, login, world, app_sessions, admin_engine, password_hash
):
    other = second_owner(admin_engine, world, password_hash)
    mine = create_active(app_sessions, world, title="Kitchen renovation")
    theirs = create_active(app_sessions, world, title="Loft conversion", by=world.admin, owner_user_id=str(other.id))
    design, build = (m.id for m in milestones_of(admin_engine, mine)[:2])
    loft = milestones_of(admin_engine, theirs)[0].id
    backdate(admin_engine, submit_work(app_sessions, world, design), 2)
    backdate(admin_engine, submit_work(app_sessions, world, build), 9)
    backdate(admin_engine, submit_work(app_sessions, world, loft), 5)

    owner_html = signed_in(app, login, world.owner).get("/reviews/").get_data(as_text=True)
    assert "Loft conversion" not in owner_html
    assert [m for m in re.findall(r'href="/milestones/([0-9a-f-]+)"', owner_html)] == [str(build), str(design)]

    admin = signed_in(app, login, world.admin)
    response = admin.get("/reviews/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.findall(r'href="/milestones/([0-9a-f-]+)"', html) == [str(build), str(loft), str(design)]
    assert "9 days" in visible_text(table_row(html, str(build)))
    assert "5 days" in visible_text(table_row(html, str(loft)))
    assert "2 days" in visible_text(table_row(html, str(design)))
    assert "Contractor X" in visible_text(table_row(html, str(loft)))


def test_a_change_order_on_waiting_work_keeps_its_place_in_the_queue(
    app, login, world, app_sessions, admin_engine, engagement
):
    first, second = milestones_of(admin_engine, engagement)[:2]
    design, build = first.id, second.id
    backdate(admin_engine, submit_work(app_sessions, world, design), 6)
    backdate(admin_engine, submit_work(app_sessions, world, build), 2)
    moved = change_orders.MilestoneChange(
        str(design),
        title=first.title,
        deliverable=first.deliverable,
        amount=format_amount(first.amount_minor, "USD", symbol=False),
        due_date="2031-03-01",
    )
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        change_orders.issue_change_order(
            session,
            actor,
            engagement,
            change_orders.ChangeOrderInput(
                reason="The client moved the design review.",
                based_on=0,
                changes=[moved],
            ),
        )
    html = signed_in(app, login, world.owner).get("/reviews/").get_data(as_text=True)
    assert re.findall(r'href="/milestones/([0-9a-f-]+)"', html) == [str(design), str(build)]
    assert "6 days" in visible_text(table_row(html, str(design)))


def test_queue_shows_work_submitted_today_as_waiting_today(owner, submitted):
    html = owner.get("/reviews/").get_data(as_text=True)
    row = visible_text(table_row(html, str(submitted[0])))
    assert "today" in row and "2 files, 1 link" in row and "$1,000.00" in row


def test_empty_queue_says_nothing_is_waiting(owner):
    html = owner.get("/reviews/").get_data(as_text=True)
    assert "Nothing is waiting for review." in html


def count(client) -> int:
    response = client.get("/reviews/count")
    assert response.status_code == 200
    match = re.search(r'id="review-count"[^>]*>(\d+)</span>', response.get_data(as_text=True))
    assert match
    return int(match.group(1))


def test_count_is_the_number_waiting_for_the_viewer(
    app, login, world, app_sessions, admin_engine, password_hash, owner, submitted
):
    other = second_owner(admin_engine, world, password_hash)
    theirs = create_active(app_sessions, world, title="Loft conversion", by=world.admin, owner_user_id=str(other.id))
    submit_work(app_sessions, world, milestones_of(admin_engine, theirs)[0].id)
    assert count(owner) == 1
    assert count(signed_in(app, login, world.admin)) == 2
    assert count(signed_in(app, login, other)) == 1


def test_past_its_cap_the_count_says_more_than_it_counted(
    app, login, world, app_sessions, admin_engine, engagement, submitted, monkeypatch
):
    """The badge and the home page count up to COUNT_CAP (99) and say "99+" past it, whatever the
    organization's size; here the cap is 1 and two milestones wait."""
    from backoffice.queries import reviews as review_queries

    submit_work(app_sessions, world, milestones_of(admin_engine, engagement)[1].id)
    monkeypatch.setattr(review_queries, "COUNT_CAP", 1)
    admin = signed_in(app, login, world.admin)
    assert re.search(r'id="review-count"[^>]*aria-label="1\+ waiting">1\+</span>', admin.get("/reviews/count").text)
    assert "more than 1 submitted milestones are waiting" in visible_text(admin.get("/").text)


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
@pytest.mark.parametrize("path", ["/reviews/", "/reviews/count"])
def test_contractor_and_finance_cannot_see_the_queue(app, login, world, submitted, who, path):
    assert signed_in(app, login, getattr(world, who)).get(path).status_code == 403


# --- the review screen -----------------------------------------------------------------------------


def figures(html: str) -> dict[str, str]:
    panel = re.search(r'<dl class="figures authorize".*?</dl>', html, re.DOTALL)
    assert panel, "what approval authorizes"
    return {
        visible_text(dt): visible_text(dd)
        for dt, dd in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", panel.group(0), re.DOTALL)
    }


def test_owner_sees_what_approval_authorizes_and_the_evidence(world, app_sessions, admin_engine, owner):
    eid = create_active(app_sessions, world, rows=ODD_AMOUNT)
    mid = milestones_of(admin_engine, eid)[0].id
    before = date.today()
    submit_work(
        app_sessions,
        world,
        mid,
        note="Plans & sections attached.",
        links="https://drive.example.com/plans\nhttps://example.com/photos",
    )
    html = owner.get(page(mid)).get_data(as_text=True)
    after = date.today()

    shown = figures(html)
    assert shown["Gross"] == "$1,234.55"
    assert shown["Retainage withheld (10%)"] == "$123.46"
    assert shown["Net payable"] == "$1,111.09"
    assert shown["Due if approved today"] in {(d + timedelta(days=30)).strftime("%d %b %Y") for d in (before, after)}
    assert "Plans &amp; sections attached." in html
    for link in ("https://drive.example.com/plans", "https://example.com/photos"):
        assert f'href="{link}"' in html
    with admin_engine.connect() as conn:
        files = conn.execute(
            text(
                "select f.id, f.file_name from evidence_files f join submissions s on s.id = f.submission_id"
                " where s.milestone_id = :m order by f.position"
            ),
            {"m": mid},
        ).all()
    assert [f.file_name for f in files] == ["plans.pdf", "notes.txt"]
    for f in files:
        assert re.search(rf'<a href="/evidence/{f.id}" download[^>]*>{re.escape(f.file_name)}</a>', html)
    # A PDF is previewed in a frame (images inline: test_evidence_downloads); text only downloads.
    assert f'<iframe src="/evidence/{files[0].id}/preview"' in html
    assert f"/evidence/{files[1].id}/preview" not in html


# --- deciding --------------------------------------------------------------------------------------


def test_approve_without_javascript_redirects_and_approves(owner, submitted, admin_engine):
    mid, sid = submitted
    response = decide(owner, mid, sid, "approve", amount_minor=100000)
    assert response.status_code == 303
    assert response.headers["Location"] == page(mid)
    assert status_of(admin_engine, mid) == "approved"
    with admin_engine.connect() as conn:
        review = conn.execute(
            text("select decision, submission_id from reviews where milestone_id = :m"), {"m": mid}
        ).one()
    assert (review.decision, review.submission_id) == ("approve", sid)


def test_approve_with_htmx_swaps_the_decision_panel_and_signals_the_queue(owner, submitted, admin_engine):
    mid, sid = submitted
    response = decide(owner, mid, sid, "approve", amount_minor=100000, htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "reviews-changed"
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="decision"')
    assert "<html" not in html
    assert "Approved" in visible_text(html) and "decided by Omar Owner" in visible_text(html)
    assert status_of(admin_engine, mid) == "approved"


@pytest.mark.parametrize("decision", ["partial", "dispute"])
def test_partial_or_dispute_without_a_reason_is_refused_at_the_reason(owner, submitted, admin_engine, world, decision):
    mid, sid = submitted
    before = snapshot(admin_engine, world.org_a)
    response = decide(owner, mid, sid, decision, reason="  ")
    assert response.status_code == 422
    message = re.search(
        r'<small id="reason-error" class="field-error">([^<]*)</small>', response.get_data(as_text=True)
    )
    assert message and html_lib.unescape(message.group(1)).startswith("Enter the reason")
    assert snapshot(admin_engine, world.org_a) == before
    assert status_of(admin_engine, mid) == "submitted"


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_contractor_and_finance_cannot_decide(app, login, world, submitted, admin_engine, who):
    mid, sid = submitted
    client = signed_in(app, login, getattr(world, who))
    before = snapshot(admin_engine, world.org_a)
    token = csrf_token(client, "/")
    response = client.post(
        f"{page(mid)}/decide", data={"submission_id": str(sid), "decision": "approve", "csrf_token": token}
    )
    assert response.status_code == 403
    assert snapshot(admin_engine, world.org_a) == before


def test_owner_of_another_engagement_cannot_decide(app, login, world, submitted, admin_engine, password_hash):
    mid, sid = submitted
    other = signed_in(app, login, second_owner(admin_engine, world, password_hash))
    assert 'id="decision"' not in other.get(page(mid)).get_data(as_text=True)
    before = snapshot(admin_engine, world.org_a)
    response = decide(other, mid, sid, "approve")
    assert response.status_code == 403
    assert snapshot(admin_engine, world.org_a) == before


def test_a_second_decision_is_a_conflict_naming_who_decided(app, login, world, owner, submitted, admin_engine):
    mid, sid = submitted
    assert decide(owner, mid, sid, "approve").status_code == 303
    before = snapshot(admin_engine, world.org_a)
    admin = signed_in(app, login, world.admin)
    token = csrf_token(admin, "/")  # the admin's page was loaded before the owner decided
    response = admin.post(
        f"{page(mid)}/decide",
        data={"submission_id": str(sid), "decision": "dispute", "reason": "Not done.", "csrf_token": token},
    )
    assert response.status_code == 409
    assert "Already decided by Omar Owner at" in html_lib.unescape(response.get_data(as_text=True))
    assert snapshot(admin_engine, world.org_a) == before
    assert status_of(admin_engine, mid) == "approved"


def test_a_decision_on_an_old_revision_after_a_resubmission_is_a_conflict(
    world, app_sessions, owner, submitted, admin_engine
):
    mid, first = submitted
    assert decide(owner, mid, first, "dispute", reason="The sections are missing.").status_code == 303
    second = submit_work(app_sessions, world, mid, note="Sections added.")
    before = snapshot(admin_engine, world.org_a)
    token = csrf_token(owner, "/")  # a tab still showing revision 1
    response = owner.post(
        f"{page(mid)}/decide", data={"submission_id": str(first), "decision": "approve", "csrf_token": token}
    )
    assert response.status_code == 409
    assert snapshot(admin_engine, world.org_a) == before
    assert status_of(admin_engine, mid) == "submitted"
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from reviews where submission_id = :s"), {"s": second}).scalar_one() == 0
        )


def test_after_a_dispute_the_contractor_sees_the_reason_and_can_submit_revision_2(
    app, login, world, owner, submitted, admin_engine
):
    mid, sid = submitted
    assert decide(owner, mid, sid, "dispute", reason="The sections are missing; add them.").status_code == 303
    assert status_of(admin_engine, mid) == "planned"
    contractor = signed_in(app, login, world.contractor_x_user)
    html = contractor.get(page(mid)).get_data(as_text=True)
    returned = re.search(r'<article class="callout callout-warning returned".*?</article>', html, re.DOTALL)
    assert returned and "The sections are missing; add them." in visible_text(returned.group(0))
    assert "Disputed by Omar Owner" in visible_text(returned.group(0))
    form = re.search(r'<form id="submit-form".*?</form>', html, re.DOTALL)
    assert form and "Mark complete: revision 2" in visible_text(form.group(0))


def test_the_owners_home_says_how_many_reviews_wait_and_links_to_the_queue(owner, submitted, app, login, world):
    html = owner.get("/").get_data(as_text=True)
    assert "1 submitted milestone is waiting for a decision on your engagements." in visible_text(html)
    assert 'href="/reviews/"' in html
    contractor = signed_in(app, login, world.contractor_x_user)
    assert "Open the review queue" not in contractor.get("/").get_data(as_text=True)
