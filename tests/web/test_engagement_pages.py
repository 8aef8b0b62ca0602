"""Engagement pages as their people use them: setting one up, the list with its filters and pages, the
engagement page, and the work request's moves (send, accept, decline, cancel) through the web."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta

import pytest
from kit.engagements import (
    acting,
    create_active,
    create_draft,
    create_sent,
    engagement_row,
    engagements_of,
    milestones_of,
    set_due_date,
)
from kit.milestones import move_milestone
from kit.web import (
    HTMX,
    actions_offered,
    csrf_token,
    field_error,
    flashes,
    followed,
    input_value,
    post,
    signed_in,
    table_row,
    textarea_value,
    visible_text,
)
from sqlalchemy import text

from backoffice.services import engagements as service


def selected_option(html: str, field: str) -> str | None:
    select = re.search(rf'<select\b[^>]*\bname="{field}"[^>]*>(.*?)</select>', html, re.DOTALL)
    assert select, f"no select {field}"
    for option in re.findall(r"<option\b[^>]*>", select.group(1)):
        if re.search(r"\bselected\b", option):
            return html_lib.unescape(re.search(r'value="([^"]*)"', option).group(1))
    return None


def terms(world, **overrides) -> dict:
    data = {
        "contractor_id": str(world.contractor_x),
        "title": "Kitchen renovation, 14 Elm St",
        "sow_reference": "SOW-14",
        "currency": "USD",
        "retainage": "10",
        "payment_terms_days": "30",
        "service_fee": "0",
    }
    data.update(overrides)
    return data


def list_rows(html: str) -> list[str]:
    """The titles of the engagements the list shows, in order."""
    body = re.search(r'<section id="engagement-list".*?</section>', html, re.DOTALL)
    assert body, "the list section is on the page"
    return [
        html_lib.unescape(t)
        for t in re.findall(r"<a href=\"/engagements/[0-9a-f-]{36}\"><strong>([^<]*)</strong>", body.group(0))
    ]


def list_cells(html: str, title: str) -> dict[str, str]:
    """The list's row for this engagement, each cell's text under its column heading."""
    headings = [visible_text(th) for th in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", html, re.DOTALL)]
    row = table_row(html, title)
    cells = [visible_text(td) for td in re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.DOTALL)]
    assert len(headings) == len(cells), (headings, cells)
    return dict(zip(headings, cells, strict=True))


def error_message(html: str) -> str:
    """The text of an error page (or of a page with flash messages): what the person reads."""
    return visible_text(html)


@pytest.fixture
def owner(app, world, login):
    return signed_in(app, login, world.owner)


@pytest.fixture
def admin(app, world, login):
    return signed_in(app, login, world.admin)


# --- setting one up --------------------------------------------------------------------------------


def test_the_new_engagement_form_starts_from_the_organizations_defaults(owner, world, admin_engine):
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "update organizations set default_currency = 'EUR', default_retainage_bps = 750,"
                " payment_terms_days = 45 where id = :o"
            ),
            {"o": world.org_a},
        )
    response = owner.get("/engagements/new")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert selected_option(html, "currency") == "EUR"
    assert input_value(html, "retainage") == "7.5"
    assert input_value(html, "payment_terms_days") == "45"
    assert input_value(html, "service_fee") == "0"
    assert input_value(html, "title") == ""


def test_the_contractor_can_be_chosen_in_advance_from_the_link(owner, world):
    html = owner.get(f"/engagements/new?contractor={world.contractor_y}").get_data(as_text=True)
    assert selected_option(html, "contractor_id") == str(world.contractor_y)


def test_an_owner_creates_a_draft_through_the_form_and_goes_on_to_its_milestones(owner, world, admin_engine):
    response = post(
        owner,
        "/engagements/new",
        terms(world, currency="EUR", retainage="5", payment_terms_days="14", service_fee="2.5"),
    )
    assert response.status_code == 303
    [created] = engagements_of(admin_engine, world.org_a)
    page = followed(owner, response, f"/engagements/{created.id}/milestones")
    assert "Engagement created as a draft. Add its milestones, then send the work request." in flashes(page)
    row = engagement_row(admin_engine, created.id)
    assert (row.title, row.sow_reference, row.status, row.contractor_id, row.owner_user_id) == (
        "Kitchen renovation, 14 Elm St",
        "SOW-14",
        "draft",
        world.contractor_x,
        world.owner.id,
    )
    assert (row.currency, row.retainage_bps, row.payment_terms_days, row.service_fee_bps) == ("EUR", 500, 14, 250)


def test_terms_left_empty_take_the_organizations_defaults(owner, world, admin_engine):
    response = post(
        owner, "/engagements/new", terms(world, currency="", retainage="", payment_terms_days="", service_fee="")
    )
    assert response.status_code == 303
    [created] = engagements_of(admin_engine, world.org_a)
    row = engagement_row(admin_engine, created.id)
    assert (row.currency, row.retainage_bps, row.payment_terms_days, row.service_fee_bps) == ("USD", 1000, 30, 0)


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"title": ""}, "title", "Enter the title."),
        ({"title": "   "}, "title", "Enter the title."),
        ({"contractor_id": ""}, "contractor_id", "Choose the contractor this statement of work is with."),
        (
            {"contractor_id": "not-a-contractor"},
            "contractor_id",
            "Choose the contractor this statement of work is with.",
        ),
        ({"retainage": "abc"}, "retainage", "Enter a percentage such as 10 or 12.5 (at most two decimals)."),
        (
            {"payment_terms_days": "9999"},
            "payment_terms_days",
            "Enter a whole number of days between 0 and 365 (0 pays on approval).",
        ),
    ],
)
def test_bad_terms_are_refused_at_the_field_and_nothing_is_written(
    owner, world, admin_engine, overrides, field, message
):
    response = post(owner, "/engagements/new", terms(world, **overrides))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, field) == message
    # what the person typed is still there to correct
    if "title" not in overrides:
        assert input_value(html, "title") == "Kitchen renovation, 14 Elm St"
    assert input_value(html, "sow_reference") == "SOW-14"
    assert engagements_of(admin_engine, world.org_a) == []


def test_every_bad_field_is_named_at_once(owner, world, admin_engine):
    response = post(
        owner, "/engagements/new", terms(world, title="", contractor_id="", retainage="abc", payment_terms_days="9999")
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    for field in ("title", "contractor_id", "retainage", "payment_terms_days"):
        assert field_error(html, field), f"no message at {field}"
    assert input_value(html, "retainage") == "abc"
    assert input_value(html, "payment_terms_days") == "9999"
    assert engagements_of(admin_engine, world.org_a) == []


def test_an_owner_cannot_make_someone_else_the_project_owner(owner, world, admin_engine):
    form = owner.get("/engagements/new").get_data(as_text=True)
    assert "owner_user_id" not in form  # an owner is shown as the owner, with nothing to choose
    response = post(owner, "/engagements/new", terms(world, owner_user_id=str(world.admin.id)))
    assert response.status_code in (303, 422)
    if response.status_code == 422:
        assert field_error(response.get_data(as_text=True), "owner_user_id")
    assert all(e.owner_user_id == world.owner.id for e in engagements_of(admin_engine, world.org_a))


def test_an_admin_assigns_the_project_owner(admin, world, admin_engine):
    form = admin.get("/engagements/new").get_data(as_text=True)
    assert selected_option(form, "owner_user_id") == str(world.admin.id)
    response = post(admin, "/engagements/new", terms(world, owner_user_id=str(world.owner.id)))
    assert response.status_code == 303
    [created] = engagements_of(admin_engine, world.org_a)
    assert created.owner_user_id == world.owner.id


def test_an_admin_cannot_make_a_contractor_the_project_owner(admin, world, admin_engine):
    response = post(admin, "/engagements/new", terms(world, owner_user_id=str(world.contractor_x_user.id)))
    assert response.status_code == 422
    assert (
        field_error(response.get_data(as_text=True), "owner_user_id")
        == "Choose the project owner who will review this work."
    )
    assert engagements_of(admin_engine, world.org_a) == []


def test_a_drafts_terms_can_be_edited(owner, world, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world, rows=())
    page = owner.get(f"/engagements/{eid}/terms").get_data(as_text=True)
    assert input_value(page, "title") == "Kitchen renovation"
    response = post(owner, f"/engagements/{eid}/terms", terms(world, title="Kitchen, revised", retainage="12.5"))
    page = followed(owner, response, f"/engagements/{eid}")
    assert "Terms saved." in flashes(page)
    row = engagement_row(admin_engine, eid)
    assert (row.title, row.retainage_bps) == ("Kitchen, revised", 1250)


def test_the_terms_of_a_sent_engagement_cannot_be_edited(owner, world, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    response = post(
        owner,
        f"/engagements/{eid}/terms",
        terms(world, title="Changed after sending"),
        token_from=f"/engagements/{eid}",
    )
    assert response.status_code == 409
    assert "fixed once the work request is sent" in error_message(response.get_data(as_text=True))
    assert engagement_row(admin_engine, eid).title == "Kitchen renovation"


# --- the list --------------------------------------------------------------------------------------


def test_the_list_shows_each_engagement_with_its_totals_and_status(owner, world, app_sessions):
    create_draft(app_sessions, world, title="Kitchen renovation", sow_reference="SOW-14")
    create_sent(
        app_sessions,
        world,
        title="Office rewiring",
        contractor_id=world.contractor_y,
        rows=(("Survey", "", "750.25", "2030-02-01"),),
    )
    html = owner.get("/engagements").get_data(as_text=True)
    assert sorted(list_rows(html)) == ["Kitchen renovation", "Office rewiring"]
    kitchen = visible_text(table_row(html, "Kitchen renovation"))
    assert f"Contractor X {world.suffix}" in kitchen and "SOW-14" in kitchen
    assert "Draft" in kitchen
    assert "$3,500.00" in kitchen and "3 milestones" in kitchen
    rewiring = visible_text(table_row(html, "Office rewiring"))
    assert f"Contractor Y {world.suffix}" in rewiring
    assert "Awaiting acceptance" in rewiring
    assert "$750.25" in rewiring and "1 milestone" in rewiring
    assert "<svg" in table_row(html, "Office rewiring")


def test_the_list_shows_what_has_been_approved_and_what_remains(owner, world, app_sessions, admin_engine):
    eid = create_active(app_sessions, world, title="Kitchen renovation")
    design = milestones_of(admin_engine, eid)[0]
    move_milestone(app_sessions, admin_engine, design.id, "submitted", "approved")
    cells = list_cells(owner.get("/engagements").get_data(as_text=True), "Kitchen renovation")
    assert cells["Contract value"].startswith("$3,500.00")
    assert cells["Approved"] == "$1,000.00"
    assert cells["Paid"] == "$0.00"
    assert cells["Retainage held"] == "$100.00"  # 10% of the approved $1,000.00
    assert cells["Remaining"] == "$2,500.00"
    assert cells["Status"] == "Active"


@pytest.fixture
def three_engagements(world, app_sessions):
    """A draft of X's owned by the owner, a sent one of Y's owned by the owner, and a draft of Y's owned by the
    admin."""
    create_draft(app_sessions, world, title="X draft", rows=())
    create_sent(app_sessions, world, title="Y sent", contractor_id=world.contractor_y)
    create_draft(
        app_sessions,
        world,
        title="Y admin draft",
        contractor_id=world.contractor_y,
        by=world.admin,
        owner_user_id=world.admin.id,
        rows=(),
    )


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=draft", {"X draft", "Y admin draft"}),
        ("status=awaiting_acceptance", {"Y sent"}),
        ("contractor={cy}", {"Y sent", "Y admin draft"}),
        ("owner={admin}", {"Y admin draft"}),
        ("status=draft&contractor={cy}", {"Y admin draft"}),
        ("status=not-a-status", {"X draft", "Y sent", "Y admin draft"}),
    ],
)
def test_the_list_filters_by_status_contractor_and_owner(owner, world, three_engagements, query, expected):
    path = "/engagements?" + query.format(cy=world.contractor_y, admin=world.admin.id)
    response = owner.get(path)
    assert response.status_code == 200
    assert set(list_rows(response.get_data(as_text=True))) == expected


def test_the_filters_show_what_is_selected(owner, world, three_engagements):
    html = owner.get(f"/engagements?status=draft&contractor={world.contractor_y}").get_data(as_text=True)
    assert selected_option(html, "status") == "draft"
    assert selected_option(html, "contractor") == str(world.contractor_y)


def test_an_htmx_filter_request_gets_just_the_list(owner, world, three_engagements):
    response = owner.get("/engagements?status=awaiting_acceptance", headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert 'id="engagement-list"' in html
    assert list_rows(html) == ["Y sent"]


def test_filters_that_match_nothing_say_so(owner, world, three_engagements):
    html = owner.get("/engagements?status=completed").get_data(as_text=True)
    assert list_rows(html) == []
    assert "No engagements match these filters." in visible_text(html)


def test_an_empty_list_tells_staff_how_to_start(owner, world):
    html = owner.get("/engagements").get_data(as_text=True)
    assert "No engagements yet. Create one with New engagement from a statement of work" in visible_text(html)
    assert 'href="/engagements/new"' in html


def test_an_empty_list_tells_a_contractor_what_will_appear(app, world, login):
    contractor = signed_in(app, login, world.contractor_x_user)
    html = contractor.get("/engagements").get_data(as_text=True)
    assert "No engagements yet. When the organization sends you a work request, it appears here" in visible_text(html)
    assert 'href="/engagements/new"' not in html


def test_the_list_pages_by_25_with_next_and_previous(owner, world, app_sessions):
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        for n in range(27):
            service.create_engagement(
                session,
                actor,
                service.EngagementInput(contractor_id=str(world.contractor_x), title=f"Engagement {n:02d}"),
            )
    first = owner.get("/engagements").get_data(as_text=True)
    rows = list_rows(first)
    assert len(rows) == 25
    assert rows[0] == "Engagement 26"  # newest first
    assert "Showing 1–25." in visible_text(first)  # keyset-paged: nothing counts the whole organization
    next_link = re.search(r'<a href="([^"]+)" rel="next">Older', first)
    assert next_link, "an Older link"
    assert 'rel="prev"' not in first
    second = owner.get(html_lib.unescape(next_link.group(1))).get_data(as_text=True)
    assert list_rows(second) == ["Engagement 01", "Engagement 00"]
    assert "Showing 26–27." in visible_text(second)
    assert 'rel="prev"' in second and 'rel="next"' not in second
    previous = re.search(r'<a href="([^"]+)" rel="prev">', second).group(1)
    assert list_rows(owner.get(html_lib.unescape(previous)).get_data(as_text=True)) == rows
    assert set(rows).isdisjoint(list_rows(second))


def test_the_next_page_keeps_the_filters(owner, world, app_sessions):
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        for n in range(26):
            service.create_engagement(
                session, actor, service.EngagementInput(contractor_id=str(world.contractor_y), title=f"Y {n:02d}")
            )
        service.create_engagement(
            session, actor, service.EngagementInput(contractor_id=str(world.contractor_x), title="X only")
        )
    first = owner.get(f"/engagements?contractor={world.contractor_y}").get_data(as_text=True)
    next_link = html_lib.unescape(re.search(r'<a href="([^"]+)" rel="next">Older', first).group(1))
    assert f"contractor={world.contractor_y}" in next_link
    assert list_rows(owner.get(next_link).get_data(as_text=True)) == ["Y 00"]


@pytest.mark.parametrize("link", ["page=0", "after=abc", "before=-1", "after=%00", "after=１"])
def test_an_odd_page_link_still_shows_a_page(owner, world, app_sessions, link):
    create_draft(app_sessions, world, title="Only one", rows=())
    response = owner.get(f"/engagements?{link}")
    assert response.status_code == 200
    assert list_rows(response.get_data(as_text=True)) == ["Only one"]


# --- who sees what ---------------------------------------------------------------------------------


def test_a_contractor_sees_only_their_own_engagements(app, world, login, app_sessions):
    create_sent(app_sessions, world, title="For X", contractor_id=world.contractor_x)
    create_sent(app_sessions, world, title="For Y", contractor_id=world.contractor_y)
    contractor = signed_in(app, login, world.contractor_x_user)
    html = contractor.get("/engagements").get_data(as_text=True)
    assert list_rows(html) == ["For X"]
    assert "For Y" not in html
    assert f"Contractor Y {world.suffix}" not in html  # not even as a filter choice
    # a filter naming the other contractor shows nothing of theirs (a contractor's list is always its own)
    assert list_rows(contractor.get(f"/engagements?contractor={world.contractor_y}").get_data(as_text=True)) == [
        "For X"
    ]


def test_another_contractors_engagement_is_not_found(app, world, login, app_sessions):
    theirs = create_sent(app_sessions, world, title="Secret for Y", contractor_id=world.contractor_y)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = contractor.get(f"/engagements/{theirs}")
    assert response.status_code == 404
    assert "Secret for Y" not in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["owner", "admin", "contractor_x_user"])
def test_another_organizations_engagement_is_not_found(app, world, login, app_sessions, who):
    other = create_sent(
        app_sessions,
        world,
        title="Org B secret",
        by=world.admin_b,
        org_id=world.org_b,
        contractor_id=world.contractor_z,
        owner_user_id=world.admin_b.id,
    )
    c = signed_in(app, login, getattr(world, who))
    response = c.get(f"/engagements/{other}")
    assert response.status_code == 404
    assert "Org B secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "ident", ["not-a-uuid", "1", "5f0c2a9e-8d41-4b7a-9c3e-2b1d6f7a8e90", "00000000-0000-0000-0000-00000000000g"]
)
def test_a_malformed_or_unknown_engagement_id_is_not_found(owner, world, ident):
    assert owner.get(f"/engagements/{ident}").status_code == 404


def test_finance_sees_the_list_but_cannot_start_an_engagement(app, world, login, app_sessions, admin_engine):
    create_draft(app_sessions, world, title="Kitchen renovation")
    finance = signed_in(app, login, world.finance)
    html = finance.get("/engagements").get_data(as_text=True)
    assert list_rows(html) == ["Kitchen renovation"]
    assert 'href="/engagements/new"' not in html
    assert finance.get("/engagements/new").status_code == 403
    response = post(finance, "/engagements/new", terms(world), token_from="/engagements")
    assert response.status_code == 403
    assert len(engagements_of(admin_engine, world.org_a)) == 1


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_only_staff_edit_terms(app, world, login, app_sessions, who):
    eid = create_draft(app_sessions, world)
    assert signed_in(app, login, getattr(world, who)).get(f"/engagements/{eid}/terms").status_code == 403


@pytest.mark.parametrize("path", ["/engagements", "/engagements/{eid}"])
def test_an_anonymous_visitor_is_sent_to_sign_in(client, world, app_sessions, path):
    eid = create_draft(app_sessions, world)
    response = client.get(path.format(eid=eid))
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")


# --- the engagement page ---------------------------------------------------------------------------


def test_the_engagement_page_shows_milestones_with_statuses_and_totals(owner, world, app_sessions, admin_engine):
    eid = create_active(app_sessions, world)
    design, build, _handover = milestones_of(admin_engine, eid)
    move_milestone(app_sessions, admin_engine, design.id, "submitted", "approved")
    move_milestone(app_sessions, admin_engine, build.id, "submitted")
    response = owner.get(f"/engagements/{eid}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Approved" in visible_text(table_row(html, "Design"))
    assert "$1,000.00" in visible_text(table_row(html, "Design"))
    assert "Submitted" in visible_text(table_row(html, "Build"))
    assert "Planned" in visible_text(table_row(html, "Handover"))
    text_ = visible_text(html)
    for label, amount in [
        ("Contract value", "$3,500.00"),
        ("Approved", "$1,000.00"),
        ("Paid", "$0.00"),
        ("Retainage held", "$100.00"),
        ("Remaining", "$2,500.00"),
    ]:
        assert f"{label} {amount}" in text_, label
    assert "<svg" in html


def test_a_planned_milestone_past_its_due_date_is_marked_overdue(owner, world, app_sessions, admin_engine):
    eid = create_active(app_sessions, world)
    design, build, _handover = milestones_of(admin_engine, eid)
    set_due_date(admin_engine, design.id, date.today() - timedelta(days=3))
    set_due_date(admin_engine, build.id, date.today() - timedelta(days=3))
    move_milestone(app_sessions, admin_engine, build.id, "submitted", "approved")  # approved work is not overdue
    html = owner.get(f"/engagements/{eid}").get_data(as_text=True)
    assert "Overdue" in visible_text(table_row(html, "Design"))
    assert "Overdue" not in visible_text(table_row(html, "Build"))
    assert "Overdue" not in visible_text(table_row(html, "Handover"))  # due in 2030


def test_a_milestone_due_today_is_not_overdue_yet(owner, world, app_sessions, admin_engine):
    with admin_engine.connect() as conn:
        today = conn.execute(text("select current_date")).scalar_one()  # the database's today decides
    eid = create_draft(app_sessions, world, rows=(("Due today", "", "10.00", today.isoformat()),))
    html = owner.get(f"/engagements/{eid}").get_data(as_text=True)
    assert "Overdue" not in visible_text(table_row(html, "Due today"))


def test_the_contractor_is_offered_accept_and_decline_only_while_the_request_awaits_them(
    app, world, login, app_sessions
):
    sent = create_sent(app_sessions, world, title="Awaiting")
    active = create_active(app_sessions, world, title="Running")
    contractor = signed_in(app, login, world.contractor_x_user)
    awaiting_page = contractor.get(f"/engagements/{sent}").get_data(as_text=True)
    assert actions_offered(awaiting_page, sent) == {"accept", "decline"}
    assert "sent you this work request" in visible_text(awaiting_page)
    assert actions_offered(contractor.get(f"/engagements/{active}").get_data(as_text=True), active) == set()


def test_staff_are_offered_send_only_on_a_draft(owner, world, app_sessions):
    draft = create_draft(app_sessions, world, title="Draft")
    sent = create_sent(app_sessions, world, title="Sent")
    active = create_active(app_sessions, world, title="Active")
    assert actions_offered(owner.get(f"/engagements/{draft}").get_data(as_text=True), draft) == {"send", "cancel"}
    assert actions_offered(owner.get(f"/engagements/{sent}").get_data(as_text=True), sent) == {"cancel"}
    assert actions_offered(owner.get(f"/engagements/{active}").get_data(as_text=True), active) == {"pause", "cancel"}


def test_an_admin_is_offered_the_same_moves_as_the_project_owner(admin, world, app_sessions):
    draft = create_draft(app_sessions, world, title="Draft")
    assert actions_offered(admin.get(f"/engagements/{draft}").get_data(as_text=True), draft) == {"send", "cancel"}


def test_people_who_do_not_run_the_engagement_are_offered_no_moves(app, world, login, app_sessions):
    admins = create_draft(app_sessions, world, title="Admin's", by=world.admin, owner_user_id=world.admin.id)
    owner = signed_in(app, login, world.owner)
    assert actions_offered(owner.get(f"/engagements/{admins}").get_data(as_text=True), admins) == set()
    finance = signed_in(app, login, world.finance)
    assert actions_offered(finance.get(f"/engagements/{admins}").get_data(as_text=True), admins) == set()


# --- moves through the web -------------------------------------------------------------------------


def test_the_owner_sends_the_work_request(owner, world, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world)
    response = post(owner, f"/engagements/{eid}/send", {}, token_from=f"/engagements/{eid}")
    page = followed(owner, response, f"/engagements/{eid}")
    assert "Work request sent. The contractor can now accept or decline it." in flashes(page)
    row = engagement_row(admin_engine, eid)
    assert (row.status, row.sent_by) == ("awaiting_acceptance", world.owner.id)


def test_the_contractor_accepts_the_work_request(app, world, login, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = post(contractor, f"/engagements/{eid}/accept", {}, token_from=f"/engagements/{eid}")
    page = followed(contractor, response, f"/engagements/{eid}")
    assert "Work request accepted. You can start delivering the milestones." in flashes(page)
    row = engagement_row(admin_engine, eid)
    assert (row.status, row.responded_by) == ("active", world.contractor_x_user.id)


def test_the_contractor_declines_with_a_reason_the_owner_then_reads(app, world, login, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = post(
        contractor,
        f"/engagements/{eid}/decline",
        {"reason": "  We are fully booked until June.  "},
        token_from=f"/engagements/{eid}",
    )
    page = followed(contractor, response, f"/engagements/{eid}")
    assert "Work request declined. The project owner has your reason." in flashes(page)
    row = engagement_row(admin_engine, eid)
    assert (row.status, row.decline_reason) == ("declined", "We are fully booked until June.")
    owner = signed_in(app, login, world.owner)
    assert "We are fully booked until June." in visible_text(owner.get(f"/engagements/{eid}").get_data(as_text=True))


def test_the_owner_cancels_with_a_reason(owner, world, app_sessions, admin_engine):
    eid = create_active(app_sessions, world)
    response = post(
        owner, f"/engagements/{eid}/cancel", {"reason": "Client withdrew funding."}, token_from=f"/engagements/{eid}"
    )
    page = followed(owner, response, f"/engagements/{eid}")
    assert "Engagement cancelled." in flashes(page)
    assert "Client withdrew funding." in visible_text(page)
    row = engagement_row(admin_engine, eid)
    assert (row.status, row.cancel_reason) == ("cancelled", "Client withdrew funding.")
    assert actions_offered(page, eid) == set()


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_declining_without_a_reason_is_refused_at_the_field(app, world, login, app_sessions, admin_engine, reason):
    eid = create_sent(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = post(contractor, f"/engagements/{eid}/decline", {"reason": reason}, token_from=f"/engagements/{eid}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "reason") == "Enter the reason for declining."
    assert engagement_row(admin_engine, eid).status == "awaiting_acceptance"
    assert actions_offered(html, eid) == {"accept", "decline"}  # the page is still there to try again


def test_a_reason_too_long_is_refused_with_what_was_typed_kept(app, world, login, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    reason = "Too busy. " * 201
    response = post(contractor, f"/engagements/{eid}/decline", {"reason": reason}, token_from=f"/engagements/{eid}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "reason") == "Keep the reason for declining under 2000 characters."
    assert textarea_value(html, "reason") == reason
    assert engagement_row(admin_engine, eid).status == "awaiting_acceptance"


def test_cancelling_without_a_reason_is_refused_at_the_field(owner, world, app_sessions, admin_engine):
    eid = create_active(app_sessions, world)
    response = post(owner, f"/engagements/{eid}/cancel", {"reason": ""}, token_from=f"/engagements/{eid}")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "reason") == "Enter the reason for cancelling."
    row = engagement_row(admin_engine, eid)
    assert (row.status, row.cancel_reason) == ("active", None)


def test_a_move_the_state_does_not_allow_is_a_conflict_with_a_message(owner, world, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    response = post(owner, f"/engagements/{eid}/send", {}, token_from=f"/engagements/{eid}")
    assert response.status_code == 409
    assert "An engagement that is awaiting acceptance cannot be sent." in flashes(response.get_data(as_text=True))
    assert engagement_row(admin_engine, eid).status == "awaiting_acceptance"


def test_accepting_twice_is_a_conflict(app, world, login, app_sessions, admin_engine):
    eid = create_active(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = post(contractor, f"/engagements/{eid}/accept", {}, token_from=f"/engagements/{eid}")
    assert response.status_code == 409
    assert "An engagement that is active cannot be accepted." in flashes(response.get_data(as_text=True))
    assert engagement_row(admin_engine, eid).status == "active"


def test_a_draft_without_milestones_cannot_be_sent(owner, world, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world, rows=())
    response = post(owner, f"/engagements/{eid}/send", {}, token_from=f"/engagements/{eid}")
    assert response.status_code == 409
    assert "Add at least one milestone before sending the work request." in flashes(response.get_data(as_text=True))
    assert engagement_row(admin_engine, eid).status == "draft"


def test_a_contractor_cannot_see_or_send_a_draft_of_their_own(app, world, login, app_sessions, admin_engine):
    """A draft is staff's until the work request is sent: to its contractor it does not exist yet."""
    eid = create_draft(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    assert contractor.get(f"/engagements/{eid}").status_code == 404
    response = post(contractor, f"/engagements/{eid}/send", {}, token_from="/engagements")
    assert response.status_code == 404
    assert engagement_row(admin_engine, eid).status == "draft"


def test_a_contractor_cannot_pause_their_active_engagement(app, world, login, app_sessions, admin_engine):
    eid = create_active(app_sessions, world)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = post(contractor, f"/engagements/{eid}/pause", {}, token_from="/engagements")
    assert response.status_code == 403
    assert engagement_row(admin_engine, eid).status == "active"


def test_a_contractor_cannot_accept_another_contractors_work_request(app, world, login, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world, contractor_id=world.contractor_y)
    contractor = signed_in(app, login, world.contractor_x_user)
    response = post(contractor, f"/engagements/{eid}/accept", {}, token_from="/engagements")
    assert response.status_code == 404
    assert engagement_row(admin_engine, eid).status == "awaiting_acceptance"


def test_an_owner_cannot_move_an_engagement_they_do_not_own(app, world, login, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world, by=world.admin, owner_user_id=world.admin.id)
    owner = signed_in(app, login, world.owner)
    response = post(owner, f"/engagements/{eid}/send", {}, token_from="/engagements")
    assert response.status_code == 403
    assert engagement_row(admin_engine, eid).status == "draft"


def test_staff_cannot_accept_on_the_contractors_behalf(owner, world, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    response = post(owner, f"/engagements/{eid}/accept", {}, token_from=f"/engagements/{eid}")
    assert response.status_code == 403
    assert engagement_row(admin_engine, eid).status == "awaiting_acceptance"


def test_another_organizations_engagement_cannot_be_moved(app, world, login, app_sessions, admin_engine):
    other = create_draft(
        app_sessions,
        world,
        by=world.admin_b,
        org_id=world.org_b,
        contractor_id=world.contractor_z,
        owner_user_id=world.admin_b.id,
    )
    admin = signed_in(app, login, world.admin)
    response = post(admin, f"/engagements/{other}/cancel", {"reason": "Not mine"}, token_from="/engagements")
    assert response.status_code == 404
    assert engagement_row(admin_engine, other).status == "draft"


def test_an_unknown_move_is_not_found(owner, world, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world)
    response = post(owner, f"/engagements/{eid}/approve", {}, token_from=f"/engagements/{eid}")
    assert response.status_code == 404
    assert engagement_row(admin_engine, eid).status == "draft"


@pytest.mark.parametrize("action, data", [("send", {}), ("cancel", {"reason": "No token"})])
def test_a_move_without_the_csrf_token_is_refused(owner, world, app_sessions, admin_engine, action, data):
    eid = create_draft(app_sessions, world)
    owner.get(f"/engagements/{eid}")
    response = owner.post(f"/engagements/{eid}/{action}", data=data)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert engagement_row(admin_engine, eid).status == "draft"


def test_a_move_with_the_token_in_the_htmx_header_is_accepted(owner, world, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world)
    token = csrf_token(owner, f"/engagements/{eid}")
    response = owner.post(
        f"/engagements/{eid}/send", headers={"HX-Request": "true", "HX-Boosted": "true", "X-CSRFToken": token}
    )
    assert response.status_code == 303
    assert engagement_row(admin_engine, eid).status == "awaiting_acceptance"


@pytest.mark.parametrize("currency", ["\x00SD", "XXXX", "Z1"])
def test_an_unknown_currency_is_refused_at_its_field_and_the_form_still_shows(owner, world, admin_engine, currency):
    response = post(owner, "/engagements/new", terms(world, currency=currency))
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "currency")
    assert engagements_of(admin_engine, world.org_a) == []
