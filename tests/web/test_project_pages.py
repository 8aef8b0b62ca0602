"""Project pages as the organization's staff use them (issue 19): the list, opening and editing a project with
each mistake at its field, the proposals compared side by side with each contractor's record, the award after a
confirmation, conflicts in words, cancelling with a reason, the categories an admin keeps, and the proposals'
files. A contractor's own pages (web/proposals.py) are tested with them."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from kit.engagements import acting, create_active, milestones_of, owner_query
from kit.milestones import move_milestone
from kit.projects import award, category, offer, open_project, propose
from kit.web import field_error, flashes, input_value, post, signed_in, table_row, textarea_value, visible_text

from backoffice.services import proposals as proposal_service
from backoffice.services.evidence import UploadedFile


def in_two_weeks() -> str:
    return (date.today() + timedelta(days=14)).isoformat()


def project_form(category_id, **overrides) -> dict:
    data = {
        "title": "Office refit",
        "description": "Refit the third floor.",
        "category_id": str(category_id),
        "deadline": in_two_weeks(),
        "currency": "USD",
        "budget": "6,000.00",
        "billing_mode": "milestone",
        "audience": "invited",
    }
    data.update(overrides)
    return data


def card(html: str, contractor_name: str) -> str:
    """The text of the comparison's card for this contractor's proposal."""
    for article in re.findall(r'<article class="proposal .*?</article>', html, re.DOTALL):
        if contractor_name in article:
            return visible_text(article)
    raise AssertionError(f"no proposal card for {contractor_name}")


def accept_links(html: str) -> list[str]:
    return re.findall(r'href="(/projects/[0-9a-f-]{36}/proposals/[0-9a-f-]{36}/accept)"', html)


@pytest.fixture
def two_proposals(app_sessions, world):
    """An open project of the owner's inviting X and Y; X proposed $5,000.00 in two milestones with a file, Y
    $4,200.00 in one."""
    project = open_project(app_sessions, world, budget="6,000.00")
    px = propose(
        app_sessions,
        world.contractor_x_user,
        world.org_a,
        project,
        files=[UploadedFile.from_bytes("plan.pdf", b"%PDF-1.4 the plan\n%%EOF\n")],
    )
    py = propose(
        app_sessions,
        world.contractor_y_user,
        world.org_a,
        project,
        offer("4,200.00", rows=(("Everything", "Refit done", "4,200.00", "2030-04-01"),), timeline="Four weeks"),
    )
    return project, px, py


# --- the list ------------------------------------------------------------------------------------------------------


def test_staff_see_open_projects_with_their_proposals_waiting_and_can_filter_by_status(
    app, login, world, two_proposals
):
    finance = signed_in(app, login, world.finance)
    page = finance.get("/projects")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = visible_text(table_row(html, "Office refit"))
    assert "Renovation" in row and "Omar Owner" in row
    assert "Open for proposals" in row and "$6,000.00" in row
    assert "2 of 2 proposals" in row
    assert "New project" not in html  # finance reads projects; owners and admins open them

    assert "Office refit" not in finance.get("/projects?status=cancelled").get_data(as_text=True)
    assert "Office refit" in finance.get("/projects?status=all").get_data(as_text=True)
    assert "Office refit" in finance.get("/projects?status=nonsense").get_data(as_text=True)  # back to open ones
    assert 'href="/projects"' in html  # "Projects" in the navigation


def test_the_list_pages_by_deadline_newest_first(app, login, app_sessions, world, monkeypatch):
    from backoffice.queries import projects as queries

    monkeypatch.setattr(queries, "PER_PAGE", 2)
    category_id = category(app_sessions, world)
    for days in (5, 20, 10):
        open_project(
            app_sessions,
            world,
            category_id=category_id,
            title=f"Due in {days}",
            deadline=date.today() + timedelta(days=days),
        )
    owner = signed_in(app, login, world.owner)
    first = owner.get("/projects?status=all").get_data(as_text=True)
    assert re.findall(r"<strong>(Due in \d+)</strong>", first) == ["Due in 20", "Due in 10"]
    after = re.search(r'href="(/projects\?[^"]*after=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = owner.get(after).get_data(as_text=True)
    assert re.findall(r"<strong>(Due in \d+)</strong>", second) == ["Due in 5"]


# --- opening and editing -------------------------------------------------------------------------------------------


def test_a_project_with_mistakes_shows_each_at_its_field_and_keeps_what_was_typed(
    app, login, app_sessions, admin_engine, world
):
    category(app_sessions, world)
    owner = signed_in(app, login, world.owner)
    response = post(
        owner,
        "/projects/new",
        project_form(
            "",
            title="",
            deadline=(date.today() - timedelta(days=1)).isoformat(),
            budget="12,50",
            description="Keep this description.",
        ),
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "title") == "Enter the title."
    assert "Choose a category" in field_error(html, "category_id")
    assert field_error(html, "deadline") == "The deadline for proposals cannot be in the past."
    assert field_error(html, "invited").startswith("Invite at least one contractor")
    assert field_error(html, "budget") == "Use a point before the decimals and commas between thousands, like 1,250.00."
    assert textarea_value(html, "description").strip() == "Keep this description."
    assert input_value(html, "budget") == "12,50"
    assert owner_query(admin_engine, "select id from projects where org_id = :o", o=world.org_a) == []


def test_opening_a_project_invites_the_chosen_contractors(app, login, app_sessions, admin_engine, world):
    category_id = category(app_sessions, world)
    owner = signed_in(app, login, world.owner)
    form = owner.get("/projects/new").get_data(as_text=True)
    assert "Contractor X" in form and "Completion billing" in form and 'type="date"' in form
    assert "is not available yet" not in form
    response = post(owner, "/projects/new", project_form(category_id, invited=[str(world.contractor_x)]))
    assert response.status_code == 303
    (project,) = owner_query(admin_engine, "select id, owner_user_id from projects where org_id = :o", o=world.org_a)
    assert response.headers["Location"] == f"/projects/{project['id']}"
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "Project opened." in " ".join(flashes(page))
    assert project["owner_user_id"] == world.owner.id
    text = visible_text(page)
    assert f"Contractor X {world.suffix} No proposal yet" in text
    assert "Contractor Y" not in text
    assert "$6,000.00" in text and "Invited contractors only" in text


def test_the_project_form_sends_an_admin_to_the_categories_when_there_are_none(app, login, world):
    admin = signed_in(app, login, world.admin)
    html = admin.get("/projects/new").get_data(as_text=True)
    assert 'href="/projects/categories"' in html


def test_an_owner_edits_an_open_project_and_the_form_starts_from_it(app, login, admin_engine, world, two_proposals):
    project, _px, _py = two_proposals
    owner = signed_in(app, login, world.owner)
    form = owner.get(f"/projects/{project}/edit").get_data(as_text=True)
    assert input_value(form, "title") == "Office refit"
    assert input_value(form, "budget") == "6,000.00"
    data = project_form(
        "",
        title="Office refit, third floor",
        budget="7,500.00",
        invited=[str(world.contractor_x), str(world.contractor_y)],
    )
    (row,) = owner_query(admin_engine, "select category_id from projects where id = :p", p=project)
    data["category_id"] = str(row["category_id"])
    # Two contractors proposed on what it asks: its title is fixed now, said at the field, nothing typed lost.
    response = post(owner, f"/projects/{project}/edit", data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "title").startswith("Fixed once a contractor has proposed")
    assert input_value(html, "budget") == "7,500.00"
    response = post(owner, f"/projects/{project}/edit", data | {"title": "Office refit"})
    assert response.status_code == 303
    page = visible_text(owner.get(f"/projects/{project}").get_data(as_text=True))
    assert "Office refit" in page and "$7,500.00" in page


def test_an_owner_cannot_edit_another_owners_project_and_finance_cannot_open_one(app, login, app_sessions, world):
    project = open_project(app_sessions, world, by=world.admin, owner_user_id=str(world.admin.id))
    assert signed_in(app, login, world.owner).get(f"/projects/{project}/edit").status_code == 403
    assert signed_in(app, login, world.finance).get("/projects/new").status_code == 403


# --- the comparison ------------------------------------------------------------------------------------------------


def test_the_comparison_shows_each_price_milestones_files_and_the_contractors_record(
    app, login, app_sessions, admin_engine, world, two_proposals
):
    project, _px, _py = two_proposals
    # X's history here: one engagement under way, a milestone approved at once, one approved after a dispute.
    engagement = create_active(app_sessions, world)
    first, second, _third = (m.id for m in milestones_of(admin_engine, engagement))
    move_milestone(app_sessions, admin_engine, first, "submitted", "approved")
    move_milestone(app_sessions, admin_engine, second, "submitted", "planned", "submitted", "approved")

    html = signed_in(app, login, world.owner).get(f"/projects/{project}").get_data(as_text=True)
    x, y = card(html, f"Contractor X {world.suffix}"), card(html, f"Contractor Y {world.suffix}")
    assert "$5,000.00" in x and "$4,200.00" in y
    assert "Survey" in x and "$1,500.00" in x and "Delivery" in x and "$3,500.00" in x
    assert "2, due 01 Feb 2030 to 15 Mar 2030" in x
    assert "Six weeks from award" in x and "Four weeks" in y
    assert "plan.pdf" in x
    assert "Engagements completed 0 (+1 under way)" in x
    assert "Approved on first submission 50% (1 of 2)" in x
    assert "Disputes 1" in x and "On time 100% (2 of 2)" in x
    assert "No history yet with this organization." in y
    assert len(accept_links(html)) == 2


def test_finance_compares_but_cannot_award(app, login, world, two_proposals):
    project, px, _py = two_proposals
    finance = signed_in(app, login, world.finance)
    html = finance.get(f"/projects/{project}").get_data(as_text=True)
    assert "$5,000.00" in html and accept_links(html) == []
    assert "Cancel the project" not in html
    assert finance.get(f"/projects/{project}/proposals/{px}/accept").status_code == 403


def test_nobody_of_another_organization_sees_the_project_or_its_files(app, login, app_sessions, world, two_proposals):
    project, px, _py = two_proposals
    with acting(app_sessions, world.owner, world.org_a) as (session, _actor):
        from backoffice.queries.projects import proposals_compared

        (file_id,) = [f.id for q in proposals_compared(session, project) if q.id == px for f in q.files]
    admin_b = signed_in(app, login, world.admin_b)
    for path in (f"/projects/{project}", f"/projects/{project}/files/{file_id}", f"/projects/{project}/edit"):
        response = admin_b.get(path)
        assert response.status_code in (403, 404), path
        assert "5,000.00" not in response.get_data(as_text=True)
    assert "Office refit" not in admin_b.get("/projects?status=all").get_data(as_text=True)
    # A contractor's user: of another organization, and the competitor, find no file.
    assert signed_in(app, login, world.contractor_z_user).get(f"/projects/{project}/files/{file_id}").status_code == 404
    assert signed_in(app, login, world.contractor_y_user).get(f"/projects/{project}/files/{file_id}").status_code == 404


def test_a_contractor_is_sent_to_its_own_project_pages(app, login, world, two_proposals):
    project, _px, _py = two_proposals
    z = signed_in(app, login, world.contractor_z_user)
    response = z.get(f"/projects/{project}", follow_redirects=True)
    assert response.status_code == 404 and "5,000.00" not in response.get_data(as_text=True)
    y = signed_in(app, login, world.contractor_y_user)
    page = y.get(f"/projects/{project}", follow_redirects=True).get_data(as_text=True)
    assert "4,200.00" in page and "5,000.00" not in page  # its own price, never its competitor's


def test_a_proposals_file_downloads_as_an_attachment_of_its_stored_type(app, login, app_sessions, world, two_proposals):
    project, _px, _py = two_proposals
    owner = signed_in(app, login, world.owner)
    html = owner.get(f"/projects/{project}").get_data(as_text=True)
    path = re.search(r'href="(/projects/[0-9a-f-]{36}/files/[0-9a-f-]{36})" download hx-boost="false"', html).group(1)
    response = owner.get(path)
    assert response.status_code == 200
    assert response.data == b"%PDF-1.4 the plan\n%%EOF\n"
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="plan.pdf"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert owner.get(f"/projects/{project}/files/not-a-uuid").status_code == 404


# --- the award -----------------------------------------------------------------------------------------------------


def test_accepting_a_proposal_asks_first_then_creates_the_active_engagement(
    app, login, admin_engine, world, two_proposals
):
    project, px, py = two_proposals
    owner = signed_in(app, login, world.owner)
    confirm = owner.get(f"/projects/{project}/proposals/{px}/accept")
    assert confirm.status_code == 200
    text = visible_text(confirm.get_data(as_text=True))
    assert f"Accept Contractor X {world.suffix}'s proposal for $5,000.00?" in text
    assert "active at once" in text and "declines every other proposal" in text
    assert f"Contractor Y {world.suffix} ($4,200.00)" in text
    assert owner_query(admin_engine, "select status from projects where id = :p", p=project) == [{"status": "open"}]

    response = post(owner, f"/projects/{project}/proposals/{px}/accept", {"offer_version": offer_version_in(confirm)})
    assert response.status_code == 303
    (engagement,) = owner_query(admin_engine, "select id, status from engagements where proposal_id = :q", q=px)
    assert engagement["status"] == "active"
    assert response.headers["Location"] == f"/engagements/{engagement['id']}"
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "Proposal accepted" in " ".join(flashes(page))
    assert f"Awarded from project Office refit — proposal of {date.today():%d %b %Y}" in visible_text(page)
    assert f'href="/projects/{project}"' in page
    rows = owner_query(admin_engine, "select id, status from proposals where project_id = :p", p=project)
    statuses = {r["id"]: r["status"] for r in rows}
    assert statuses == {px: "accepted", py: "declined"}
    after = visible_text(owner.get(f"/projects/{project}").get_data(as_text=True))
    assert f"Awarded to Contractor X {world.suffix} for $5,000.00 by Omar Owner" in after


def offer_version_in(response) -> str:
    """The fingerprint of the offer the confirmation page showed, which its button posts back."""
    return re.search(r'name="offer_version" value="([0-9a-f]+)"', response.get_data(as_text=True)).group(1)


def test_an_offer_changed_after_the_owner_opened_the_confirmation_is_not_accepted_unseen(
    app, login, app_sessions, admin_engine, world, two_proposals
):
    project, px, _py = two_proposals
    owner = signed_in(app, login, world.owner)
    path = f"/projects/{project}/proposals/{px}/accept"
    confirm = owner.get(path)
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        proposal_service.update_proposal(
            session, actor, px, offer(price="9,000.00", rows=(("Everything", "All of it", "9,000.00", "2030-02-01"),))
        )
    response = post(owner, path, {"offer_version": offer_version_in(confirm)})
    assert response.status_code == 409
    assert f"Contractor X {world.suffix} changed its proposal since you opened it" in " ".join(
        flashes(response.get_data(as_text=True))
    )
    assert owner_query(admin_engine, "select status from projects where id = :p", p=project) == [{"status": "open"}]
    again = owner.get(path)  # read again: the new offer, and now it can be accepted
    assert "$9,000.00" in visible_text(again.get_data(as_text=True))
    assert post(owner, path, {"offer_version": offer_version_in(again)}).status_code == 303


def test_a_second_award_is_refused_with_who_awarded_it_and_nothing_changes(
    app, login, app_sessions, admin_engine, world, two_proposals
):
    project, px, py = two_proposals
    owner = signed_in(app, login, world.owner)
    token_page = f"/projects/{project}/proposals/{py}/accept"
    token = re.search(r'name="csrf_token" value="([^"]+)"', owner.get(token_page).get_data(as_text=True)).group(1)
    award(app_sessions, world.admin, world.org_a, project, px)  # meanwhile, an admin awards X

    response = owner.post(token_page, data={"csrf_token": token})
    assert response.status_code == 409
    assert f"Ada Admin awarded this project to Contractor X {world.suffix} already." in flashes(
        response.get_data(as_text=True)
    )
    assert len(owner_query(admin_engine, "select id from engagements where proposal_id in (:x, :y)", x=px, y=py)) == 1
    assert owner.get(token_page).status_code == 409  # the confirmation says so too


def test_a_proposal_withdrawn_meanwhile_cannot_be_accepted(
    app, login, app_sessions, admin_engine, world, two_proposals
):
    project, _px, py = two_proposals
    owner = signed_in(app, login, world.owner)
    path = f"/projects/{project}/proposals/{py}/accept"
    token = re.search(r'name="csrf_token" value="([^"]+)"', owner.get(path).get_data(as_text=True)).group(1)
    with acting(app_sessions, world.contractor_y_user, world.org_a) as (session, actor):
        proposal_service.withdraw_proposal(session, actor, py)

    response = owner.post(path, data={"csrf_token": token})
    assert response.status_code == 409
    assert f"Contractor Y {world.suffix}'s proposal was withdrawn meanwhile" in " ".join(
        flashes(response.get_data(as_text=True))
    )
    assert owner_query(admin_engine, "select status from projects where id = :p", p=project) == [{"status": "open"}]


# --- cancelling ----------------------------------------------------------------------------------------------------


def test_cancelling_needs_a_reason_and_declines_the_proposals_waiting(app, login, admin_engine, world, two_proposals):
    project, _px, _py = two_proposals
    owner = signed_in(app, login, world.owner)
    response = post(owner, f"/projects/{project}/cancel", {"reason": "  "}, token_from=f"/projects/{project}")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "reason") == "Enter the reason for cancelling."

    response = post(owner, f"/projects/{project}/cancel", {"reason": "Budget cut."}, token_from=f"/projects/{project}")
    assert response.status_code == 303
    page = visible_text(owner.get(f"/projects/{project}").get_data(as_text=True))
    assert "Cancelled by Omar Owner" in page and "“Budget cut.”" in page
    assert "Accept this proposal" not in page
    rows = owner_query(admin_engine, "select status from proposals where project_id = :p", p=project)
    assert sorted(r["status"] for r in rows) == ["declined", "declined"]
    # Cancelled is final: a second cancel is refused in words, and the edit form sends back to the page.
    again = post(owner, f"/projects/{project}/cancel", {"reason": "Again."}, token_from=f"/projects/{project}")
    assert again.status_code == 409
    assert owner.get(f"/projects/{project}/edit").status_code == 302


# --- categories ----------------------------------------------------------------------------------------------------


def test_only_an_admin_keeps_the_categories(app, login, world):
    assert signed_in(app, login, world.owner).get("/projects/categories").status_code == 403
    admin = signed_in(app, login, world.admin)
    assert 'href="/projects/categories"' in admin.get("/admin/settings").get_data(as_text=True)

    empty = post(admin, "/projects/categories", {"name": " "})
    assert empty.status_code == 422
    assert field_error(empty.get_data(as_text=True), "name") == "Enter the category name."

    assert post(admin, "/projects/categories", {"name": "Electrical"}).status_code == 303
    duplicate = post(admin, "/projects/categories", {"name": "electrical"})
    assert duplicate.status_code == 422
    assert field_error(duplicate.get_data(as_text=True), "name") == "There is a category called “electrical” already."
    assert input_value(duplicate.get_data(as_text=True), "name") == "electrical"


def test_an_archived_category_is_no_longer_offered_and_can_be_restored(app, login, app_sessions, world):
    category_id = category(app_sessions, world, name="Plumbing")
    admin = signed_in(app, login, world.admin)
    archive = post(admin, f"/projects/categories/{category_id}/archive", {}, token_from="/projects/categories")
    assert archive.status_code == 303
    assert "Archived" in visible_text(table_row(admin.get("/projects/categories").get_data(as_text=True), "Plumbing"))
    assert "Plumbing" not in admin.get("/projects/new").get_data(as_text=True)
    assert (
        post(admin, f"/projects/categories/{category_id}/restore", {}, token_from="/projects/categories").status_code
        == 303
    )
    assert "Plumbing" in admin.get("/projects/new").get_data(as_text=True)
    assert (
        post(admin, f"/projects/categories/{category_id}/delete", {}, token_from="/projects/categories").status_code
        == 404
    )


def test_the_engagement_page_of_an_ordinary_engagement_says_nothing_of_projects(app, login, app_sessions, world):
    engagement = create_active(app_sessions, world)
    html = signed_in(app, login, world.owner).get(f"/engagements/{engagement}").get_data(as_text=True)
    assert "Awarded from project" not in html


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Office\x00refit"),
        ("description", "Refit\x00"),
        ("deadline", "2030-02-30"),
        ("deadline", "\x00"),
        ("budget", "9" * 40),
        ("category_id", "not-a-category"),
        ("currency", "\x00SD"),
        ("audience", "everyone"),
        ("owner_user_id", "\x00"),
    ],
)
def test_bad_input_in_the_project_form_is_refused_at_its_field_and_nothing_is_opened(
    app, login, app_sessions, admin_engine, world, field, value
):
    category_id = category(app_sessions, world)
    admin = signed_in(app, login, world.admin)
    data = project_form(category_id, invited=[str(world.contractor_x)], owner_user_id=str(world.owner.id))
    response = post(admin, "/projects/new", data | {field: value})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), field)
    assert owner_query(admin_engine, "select id from projects where org_id = :o", o=world.org_a) == []


@pytest.mark.parametrize("name", ["Elec\x00trical", "x" * 81])
def test_a_bad_category_name_is_refused_at_the_field(app, login, world, name):
    admin = signed_in(app, login, world.admin)
    response = post(admin, "/projects/categories", {"name": name})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "name")
