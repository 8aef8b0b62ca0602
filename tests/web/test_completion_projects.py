"""Completion billing from a project (issue 20), as people use the pages: the owner opens a project billed on
completion with an advance (each mistake at its field), the contractor's form says the advance and has the tasks
share the price less it, the owner compares the proposals with their advances and confirms the award knowing the
advance it authorizes at once."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from kit.engagements import owner_query
from kit.projects import category, offer, open_project, propose
from kit.web import HTMX, csrf_token, field_error, flashes, input_value, post, signed_in, visible_text
from sqlalchemy import text

# $5,000.00 at a 12% advance: $600.00 ahead, $4,400.00 for the tasks.
TASKS = (
    ("Survey", "Site survey report", "1,400.00", "2030-02-01"),
    ("Delivery", "Installed and tested", "3,000.00", "2030-03-15"),
)


def project_form(category_id, **overrides) -> dict:
    data = {
        "title": "Office refit",
        "description": "Refit the third floor.",
        "category_id": str(category_id),
        "deadline": (date.today() + timedelta(days=14)).isoformat(),
        "currency": "USD",
        "budget": "",
        "billing_mode": "milestone",
        "audience": "invited",
    }
    return data | overrides


def card(html: str, contractor_name: str) -> str:
    """The text of the comparison's card for this contractor's proposal."""
    for article in re.findall(r'<article class="proposal .*?</article>', html, re.DOTALL):
        if contractor_name in article:
            return visible_text(article)
    raise AssertionError(f"no proposal card for {contractor_name}")


def set_org(admin_engine, org_id, **values) -> None:
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    with admin_engine.begin() as conn:
        conn.execute(text(f"update organizations set {assignments} where id = :org"), {**values, "org": org_id})


def projects_of(admin_engine, org_id) -> list[dict]:
    return owner_query(admin_engine, "select * from projects where org_id = :o order by created_at", o=org_id)


@pytest.fixture
def completion_project(app_sessions, world):
    """An open project of the owner's billed on completion with a 12% advance, inviting X and Y."""
    return open_project(app_sessions, world, billing_mode="completion", advance="12", title="Shop fit-out")


# --- the project form ----------------------------------------------------------------------------------------------


def test_the_project_form_offers_completion_billing_with_the_organizations_advance(app, login, world, app_sessions):
    category(app_sessions, world)
    owner = signed_in(app, login, world.owner)
    html = owner.get("/projects/new").get_data(as_text=True)
    assert re.search(r'<option[^>]*value="completion"', html)
    assert input_value(html, "advance") == "12"
    assert "not available yet" not in html


def test_an_owner_opens_a_completion_project_with_an_advance(app, login, app_sessions, admin_engine, world):
    category_id = category(app_sessions, world)
    owner = signed_in(app, login, world.owner)
    data = project_form(category_id, billing_mode="completion", advance="15", invited=[str(world.contractor_x)])
    response = post(owner, "/projects/new", data)
    assert response.status_code == 303
    (project,) = projects_of(admin_engine, world.org_a)
    assert (project["billing_mode"], project["advance_bps"]) == ("completion", 1500)
    page = visible_text(owner.get(response.headers["Location"]).get_data(as_text=True))
    assert "Completion billing" in page and "15% of the awarded price" in page

    edit = owner.get(f"/projects/{project['id']}/edit").get_data(as_text=True)
    assert input_value(edit, "advance") == "15"


@pytest.mark.parametrize(
    ("advance", "words"),
    [
        ("70", "An advance is at most 50% of the contract value."),
        ("twelve", "Enter a percentage such as 10 or 12.5 (at most two decimals)."),
        ("12\x00", "Enter a percentage such as 10 or 12.5 (at most two decimals)."),
    ],
)
def test_an_advance_out_of_bounds_is_refused_at_its_field_and_nothing_is_opened(
    app, login, app_sessions, admin_engine, world, advance, words
):
    category_id = category(app_sessions, world)
    owner = signed_in(app, login, world.owner)
    data = project_form(category_id, billing_mode="completion", advance=advance, invited=[str(world.contractor_x)])
    response = post(owner, "/projects/new", data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "advance") == words
    assert input_value(html, "title") == "Office refit"  # nothing typed is lost
    assert projects_of(admin_engine, world.org_a) == []


def test_an_organization_that_pays_no_advances_refuses_one_at_the_field(app, login, app_sessions, admin_engine, world):
    set_org(admin_engine, world.org_a, advances_enabled=False)
    category_id = category(app_sessions, world)
    owner = signed_in(app, login, world.owner)
    html = owner.get("/projects/new").get_data(as_text=True)
    assert input_value(html, "advance") == "0" and "pays no advances" in html
    data = project_form(category_id, billing_mode="completion", advance="12", invited=[str(world.contractor_x)])
    response = post(owner, "/projects/new", data)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "advance") == (
        "This organization pays no advances (Settings); enter 0."
    )
    assert projects_of(admin_engine, world.org_a) == []


def test_the_advance_is_fixed_once_someone_proposed_said_at_its_field(
    app, login, app_sessions, admin_engine, world, completion_project
):
    propose(app_sessions, world.contractor_x_user, world.org_a, completion_project, offer("5,000.00", rows=TASKS))
    owner = signed_in(app, login, world.owner)
    (row,) = projects_of(admin_engine, world.org_a)
    data = project_form(
        str(row["category_id"]),
        title="Shop fit-out",
        billing_mode="completion",
        advance="20",
        invited=[str(world.contractor_x), str(world.contractor_y)],
    )
    response = post(owner, f"/projects/{completion_project}/edit", data)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "advance").startswith("Fixed once a contractor has proposed")
    assert projects_of(admin_engine, world.org_a)[0]["advance_bps"] == 1200


# --- the contractor's form -----------------------------------------------------------------------------------------


def proposal_form(price="5,000.00", rows=TASKS, *, op="save", mode="amounts") -> dict:
    data = {"price": price, "mode": mode, "op": op, "timeline": "Six weeks", "note": ""}
    for i, (title, deliverable, amount, due) in enumerate(rows):
        data.update({f"rows-{i}-title": title, f"rows-{i}-deliverable": deliverable, f"rows-{i}-due_date": due})
        data.update({f"rows-{i}-amount": amount, f"rows-{i}-percent": "", f"rows-{i}-id": ""})
    return data


def post_proposal(client, project_id, data, headers=None):
    page = f"/proposals/project/{project_id}"
    body = {**data, "csrf_token": csrf_token(client, page)}
    return client.post(f"{page}/new", data=body, content_type="multipart/form-data", headers=headers or {})


def test_the_contractor_is_told_the_advance_and_its_tasks_share_the_rest(app, login, world, completion_project):
    x = signed_in(app, login, world.contractor_x_user)
    page = visible_text(x.get(f"/proposals/project/{completion_project}").get_data(as_text=True))
    assert (
        "You are paid an advance of 12% of your price when the project is awarded; your tasks share the rest." in page
    )
    assert "Completion billing" in page and "Percentages of the price less the advance" in page

    html = post_proposal(x, completion_project, proposal_form(op="refresh"), headers=HTMX).get_data(as_text=True)
    text_ = visible_text(html)
    assert "At this price: an advance of $600.00 , and $4,400.00 for the tasks." in text_
    assert "The tasks add up to your price less the advance, $4,400.00, exactly." in text_

    full = proposal_form(rows=(("Everything", "", "5,000.00", "2030-03-15"),), op="refresh")
    text_ = visible_text(post_proposal(x, completion_project, full, headers=HTMX).get_data(as_text=True))
    assert "The tasks add up to $5,000.00, $600.00 more than the price less the advance, $4,400.00" in text_


def test_an_equal_split_on_a_completion_project_splits_the_price_less_the_advance(
    app, login, admin_engine, world, completion_project
):
    x = signed_in(app, login, world.contractor_x_user)
    rows = (("One", "", "", "2030-01-10"), ("Two", "", "", "2030-02-10"))
    html = post_proposal(x, completion_project, proposal_form(rows=rows, mode="equal", op="refresh"), headers=HTMX)
    assert "$2,200.00" in visible_text(html.get_data(as_text=True))
    response = post_proposal(x, completion_project, proposal_form(rows=rows, mode="equal"))
    assert response.status_code == 303
    (saved,) = owner_query(admin_engine, "select id from proposals where project_id = :p", p=completion_project)
    amounts = owner_query(
        admin_engine, "select amount_minor from proposal_milestones where proposal_id = :p order by seq", p=saved["id"]
    )
    assert [a["amount_minor"] for a in amounts] == [220_000, 220_000]


def test_tasks_that_share_the_full_price_are_refused_at_the_rows_and_nothing_is_sent(
    app, login, admin_engine, world, completion_project
):
    x = signed_in(app, login, world.contractor_x_user)
    response = post_proposal(x, completion_project, proposal_form(rows=(("All", "", "5,000.00", "2030-03-15"),)))
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "rows") == (
        "The tasks add up to $5,000.00, $600.00 more than the price less the advance, $4,400.00; "
        "change an amount or the price so that they match exactly."
    )
    assert owner_query(admin_engine, "select id from proposals where project_id = :p", p=completion_project) == []


# --- comparing and awarding ----------------------------------------------------------------------------------------


def test_the_owner_compares_advances_and_confirms_the_advance_the_award_authorizes(
    app, login, app_sessions, admin_engine, world, completion_project
):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, completion_project, offer("5,000.00", rows=TASKS))
    y_rows = (("Everything", "", "3,520.00", "2030-04-01"),)  # $4,000.00 less 12%
    propose(app_sessions, world.contractor_y_user, world.org_a, completion_project, offer("4,000.00", rows=y_rows))
    owner = signed_in(app, login, world.owner)
    html = owner.get(f"/projects/{completion_project}").get_data(as_text=True)
    x_card = card(html, "Contractor X")
    assert "Advance $600.00 (12%, at the award)" in x_card and "Tasks share $4,400.00" in x_card
    assert "Proposed tasks" in x_card
    assert "Advance $480.00" in card(html, "Contractor Y")

    confirm = owner.get(f"/projects/{completion_project}/proposals/{px}/accept").get_data(as_text=True)
    text_ = visible_text(confirm)
    assert f"Accepting authorizes the advance of $600.00 to Contractor X {world.suffix} now." in text_
    assert "Completion billing" in text_ and "Its tasks" in text_
    assert owner_query(admin_engine, "select id from invoices where org_id = :o", o=world.org_a) == []  # nothing yet

    token = re.search(r'name="offer_version" value="([^"]+)"', confirm).group(1)
    response = post(
        owner,
        f"/projects/{completion_project}/proposals/{px}/accept",
        {"offer_version": token},
        token_from=f"/projects/{completion_project}/proposals/{px}/accept",
    )
    assert response.status_code == 303
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "The advance of $600.00 is authorized." in " ".join(flashes(page))
    (invoice,) = owner_query(admin_engine, "select kind, gross_minor from invoices where org_id = :o", o=world.org_a)
    assert (invoice["kind"], invoice["gross_minor"]) == ("advance", 60_000)


def test_the_contractors_own_proposal_shows_the_advance_on_award(app, login, app_sessions, world, completion_project):
    propose(app_sessions, world.contractor_x_user, world.org_a, completion_project, offer("5,000.00", rows=TASKS))
    x = signed_in(app, login, world.contractor_x_user)
    page = visible_text(x.get(f"/proposals/project/{completion_project}").get_data(as_text=True))
    assert "Advance on award $600.00 (12%)" in page and "Task" in page
