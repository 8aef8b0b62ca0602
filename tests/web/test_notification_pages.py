"""The bell and the notifications page, as the people they are for use them.

Notifications are written by the worker (``notify``) when something changes; the page test that
depends on that runs the real worker (jobs_kit.run_jobs). The others arrange rows as the owner role,
with the dates they need, and read them back through the pages and the database.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
import uuid

import pytest
from kit.jobs import run_jobs
from kit.money_pages import active_engagement, approve, milestone_ids
from kit.web import csrf_token, flashes, signed_in
from sqlalchemy import text

HTMX = {"HX-Request": "true"}


# --- arranging and reading, as the owner role -------------------------------------------------------


def add_notification(
    admin_engine,
    org_id,
    person,
    title: str,
    *,
    url: str = "/engagements",
    minutes_ago: int = 0,
    read: bool = False,
    event: str = "milestone.approved",
) -> uuid.UUID:
    with admin_engine.begin() as conn:
        return conn.execute(
            text(
                "insert into notifications (org_id, user_id, event, title, body, url, dedupe_key, created_at, read_at)"
                " values (:o, :u, :e, :t, :b, :url, :k, now() - make_interval(mins => :m),"
                "         case when :r then now() end) returning id"
            ),
            {
                "o": org_id,
                "u": person.id,
                "e": event,
                "t": title,
                "b": f"About {title}.",
                "url": url,
                "k": f"test:{secrets.token_hex(8)}",
                "m": minutes_ago,
                "r": read,
            },
        ).scalar_one()


def read_at(admin_engine, notification_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select read_at from notifications where id = :i"), {"i": notification_id}
        ).scalar_one()


def unread_of(admin_engine, org_id, person) -> int:
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select count(*) from notifications where org_id = :o and user_id = :u and read_at is null"),
            {"o": org_id, "u": person.id},
        ).scalar_one()


def bell_tag(html: str) -> str:
    match = re.search(r'<a id="bell"[^>]*>', html)
    assert match, "no bell on the page"
    return match.group(0)


def badge(html: str) -> str | None:
    """The number on the bell, or None."""
    match = re.search(r'<span class="badge badge-count">([^<]*)</span>', html)
    return match.group(1) if match else None


def titles(html: str) -> list[str]:
    """The notification titles listed, top to bottom."""
    listing = re.search(r'<ul class="notifications">(.*?)</ul>', html, re.S)
    return [html_lib.unescape(t) for t in re.findall(r"<strong>([^<]*)</strong>", listing.group(1))] if listing else []


def post(client, path: str, page: str = "/notifications/", **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


@pytest.fixture
def contractor(app, login, world):
    return signed_in(app, login, world.contractor_x_user)


# --- the bell ------------------------------------------------------------------------------------------


def test_the_bell_shows_no_number_when_nothing_is_unread(contractor, world, admin_engine):
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Old news", read=True)
    response = contractor.get("/notifications/count", headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    tag = bell_tag(html)
    assert 'hx-get="/notifications/count"' in tag and "every 30s" in tag and 'hx-swap="outerHTML"' in tag
    assert 'aria-label="Notifications: 0 unread"' in tag
    assert badge(html) is None
    assert "<html" not in html  # the fragment alone


def test_the_base_page_carries_the_bell_that_htmx_refreshes_every_30_seconds(contractor):
    html = contractor.get("/").get_data(as_text=True)
    tag = bell_tag(html)
    assert 'href="/notifications/"' in tag
    assert 'hx-get="/notifications/count"' in tag
    trigger = re.search(r'hx-trigger="([^"]*)"', tag).group(1)
    assert "every 30s" in [t.strip() for t in trigger.split(",")]


def test_the_worker_puts_a_work_request_and_then_an_approval_on_the_contractors_bell(
    app, login, contractor, world, app_sessions, admin_engine, database
):
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) is None
    engagement_id = active_engagement(app_sessions, world, title="Bell test")
    # nothing is told until the worker runs the jobs the services enqueued
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) is None
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) == "1"  # the work request

    first, _ = milestone_ids(admin_engine, engagement_id)
    invoice_id = approve(app_sessions, world, first)
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    bell = contractor.get("/notifications/count").get_data(as_text=True)
    assert badge(bell) == "2" == str(unread_of(admin_engine, world.org_a, world.contractor_x_user))
    assert 'aria-label="Notifications: 2 unread"' in bell_tag(bell)

    listed = titles(contractor.get("/notifications/").get_data(as_text=True))
    assert len(listed) == 2
    assert listed[0].startswith("Approved: Design — ") and "queued for payment" in listed[0]  # newest first
    assert listed[1] == f"Org A {world.suffix} sent you a work request: Bell test"

    # opening the approval goes to its invoice, which the contractor can read, and clears it from the bell
    with admin_engine.connect() as conn:
        approval = conn.execute(
            text("select id, url from notifications where user_id = :u and event = 'milestone.approved'"),
            {"u": world.contractor_x_user.id},
        ).one()
    assert approval.url == f"/invoices/{invoice_id}"
    opened = post(contractor, f"/notifications/{approval.id}/open")
    assert opened.status_code == 303 and opened.headers["Location"] == f"/invoices/{invoice_id}"
    assert contractor.get(opened.headers["Location"]).status_code == 200
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) == "1"

    # the others were told nothing on the contractor's bell: another contractor's stays empty
    other = signed_in(app, login, world.contractor_y_user)
    assert badge(other.get("/notifications/count").get_data(as_text=True)) is None


def test_the_bell_counts_only_the_signed_in_persons_unread_notifications_in_this_organization(
    contractor, world, admin_engine
):
    for n in range(3):
        add_notification(admin_engine, world.org_a, world.contractor_x_user, f"Mine {n}")
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Mine, read", read=True)
    add_notification(admin_engine, world.org_a, world.contractor_y_user, "Someone else's")
    add_notification(admin_engine, world.org_b, world.contractor_z_user, "Another organization's")
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) == "3"


def test_the_bell_says_99_plus_beyond_99_unread(contractor, world, admin_engine):
    for n in range(100):
        add_notification(admin_engine, world.org_a, world.contractor_x_user, f"Many {n}")
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) == "99+"


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for path in ("/notifications/", "/notifications/count"):
        response = client.get(path)
        assert response.status_code in (302, 303)
        assert "/login" in response.headers["Location"]


# --- the list ------------------------------------------------------------------------------------------


def test_the_list_shows_my_titles_newest_first(contractor, world, admin_engine):
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Oldest", minutes_ago=30)
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Newest", minutes_ago=1)
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Middle", minutes_ago=10, read=True)
    add_notification(admin_engine, world.org_a, world.contractor_y_user, "Not mine", minutes_ago=5)
    add_notification(admin_engine, world.org_b, world.contractor_z_user, "Not this organization", minutes_ago=5)
    response = contractor.get("/notifications/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert titles(html) == ["Newest", "Middle", "Oldest"]
    assert "Not mine" not in html and "Not this organization" not in html
    assert "Unread (2)" in html
    assert html.count('<li class="unread">') == 2 and html.count('<li class="read">') == 1


def test_the_unread_filter_lists_only_unread_notifications(contractor, world, admin_engine):
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Seen it", minutes_ago=2, read=True)
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Still new", minutes_ago=1)
    html = contractor.get("/notifications/?show=unread").get_data(as_text=True)
    assert titles(html) == ["Still new"]
    assert re.search(r'<a href="/notifications/\?show=unread" aria-current="page">Unread \(1\)</a>', html)


def test_with_no_notifications_the_page_says_so(contractor):
    html = contractor.get("/notifications/").get_data(as_text=True)
    assert titles(html) == []
    assert "No notifications yet." in html
    assert "Mark all as read" not in html


def test_with_everything_read_the_unread_filter_says_nothing_is_unread(contractor, world, admin_engine):
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "Seen it", read=True)
    html = contractor.get("/notifications/?show=unread").get_data(as_text=True)
    assert titles(html) == []
    assert "Nothing unread." in html and 'href="/notifications/">See all notifications' in html


def test_a_title_is_shown_as_text_never_as_markup(contractor, world, admin_engine):
    add_notification(admin_engine, world.org_a, world.contractor_x_user, "<script>alert(1)</script> & more")
    html = contractor.get("/notifications/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert titles(html) == ["<script>alert(1)</script> & more"]


# --- marking read --------------------------------------------------------------------------------------


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(contractor, world, admin_engine):
    nid = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Go there", url="/payments/mine")
    response = post(contractor, f"/notifications/{nid}/open")
    assert response.status_code == 303
    assert response.headers["Location"] == "/payments/mine"
    assert read_at(admin_engine, nid) is not None
    assert badge(contractor.get("/notifications/count").get_data(as_text=True)) is None


def test_opening_a_notification_read_before_keeps_when_it_was_read(contractor, world, admin_engine):
    nid = add_notification(
        admin_engine, world.org_a, world.contractor_x_user, "Read earlier", read=True, url="/payments/mine"
    )
    before = read_at(admin_engine, nid)
    response = post(contractor, f"/notifications/{nid}/open")
    assert response.status_code == 303 and response.headers["Location"] == "/payments/mine"
    assert read_at(admin_engine, nid) == before


@pytest.mark.parametrize("url", ["//evil.example/phish", "/\\evil.example", "/\t/evil.example"])
def test_opening_a_notification_never_redirects_off_the_site(contractor, world, admin_engine, url):
    nid = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Odd link", url=url)
    response = post(contractor, f"/notifications/{nid}/open")
    assert response.status_code == 303
    assert response.headers["Location"] == "/notifications/"
    assert read_at(admin_engine, nid) is not None


def test_mark_as_read_marks_one_and_returns_to_the_list(contractor, world, admin_engine):
    one = add_notification(admin_engine, world.org_a, world.contractor_x_user, "This one")
    other = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Not this one")
    response = post(contractor, f"/notifications/{one}/read")
    assert response.status_code == 303
    assert response.headers["Location"] == "/notifications/"
    assert read_at(admin_engine, one) is not None and read_at(admin_engine, other) is None
    html = contractor.get("/notifications/?show=unread").get_data(as_text=True)
    assert titles(html) == ["Not this one"]


def test_mark_as_read_from_the_unread_filter_returns_to_the_unread_filter(contractor, world, admin_engine):
    nid = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Filtered")
    page = contractor.get("/notifications/?show=unread").get_data(as_text=True)
    assert f'action="/notifications/{nid}/read?show=unread"' in page
    response = contractor.post(
        f"/notifications/{nid}/read?show=unread", data={"csrf_token": csrf_token(contractor, "/notifications/")}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/notifications/?show=unread"
    assert read_at(admin_engine, nid) is not None


def test_mark_all_as_read_marks_only_mine_in_this_organization(contractor, world, admin_engine):
    mine = [add_notification(admin_engine, world.org_a, world.contractor_x_user, f"Mine {n}") for n in range(2)]
    already = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Read before", read=True)
    before = read_at(admin_engine, already)
    theirs = add_notification(admin_engine, world.org_a, world.contractor_y_user, "Theirs")
    elsewhere = add_notification(admin_engine, world.org_b, world.contractor_z_user, "Elsewhere")
    response = post(contractor, "/notifications/read-all")
    assert response.status_code == 303 and response.headers["Location"] == "/notifications/"
    html = contractor.get("/notifications/").get_data(as_text=True)
    assert "Marked 2 notification(s) as read." in flashes(html)
    assert all(read_at(admin_engine, n) is not None for n in mine)
    assert read_at(admin_engine, already) == before
    assert read_at(admin_engine, theirs) is None and read_at(admin_engine, elsewhere) is None
    assert "Mark all as read" not in html

    again = post(contractor, "/notifications/read-all")
    assert again.status_code == 303
    assert "Nothing was unread." in flashes(contractor.get("/notifications/").get_data(as_text=True))


@pytest.mark.parametrize("action", ["open", "read", "read-all"])
def test_marking_read_without_the_csrf_token_is_refused_and_changes_nothing(contractor, world, admin_engine, action):
    nid = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Guarded")
    path = "/notifications/read-all" if action == "read-all" else f"/notifications/{nid}/{action}"
    response = contractor.post(path, data={})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert read_at(admin_engine, nid) is None
    assert contractor.post(path, data={"csrf_token": "not-the-token"}).status_code == 400
    assert read_at(admin_engine, nid) is None


@pytest.mark.parametrize("action", ["open", "read"])
@pytest.mark.parametrize(
    "whose", ["another contractor in my organization", "someone in another organization", "my admin"]
)
def test_someone_elses_notification_is_404_and_stays_unread(contractor, world, admin_engine, action, whose):
    org_id, person = {
        "another contractor in my organization": (world.org_a, world.contractor_y_user),
        "someone in another organization": (world.org_b, world.contractor_z_user),
        "my admin": (world.org_a, world.admin),
    }[whose]
    nid = add_notification(admin_engine, org_id, person, "Private")
    response = post(contractor, f"/notifications/{nid}/{action}")
    assert response.status_code == 404
    assert read_at(admin_engine, nid) is None
    assert unread_of(admin_engine, org_id, person) == 1


@pytest.mark.parametrize("action", ["open", "read"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "12345", "5f0c2a9e-8d41-4b7a-9c3e-2b1d6f7a8e90"])
def test_a_malformed_or_unknown_notification_id_is_404(contractor, action, bad_id):
    assert post(contractor, f"/notifications/{bad_id}/{action}").status_code == 404


@pytest.mark.parametrize("odd", ["endpoint=x", "_method=POST", "_external=1", "_anchor=x", "_scheme=https"])
def test_mark_as_read_keeps_only_the_filter_of_the_query(contractor, world, admin_engine, odd):
    """url_for's own keywords in the query string once made this redirect a 500 (issue 22's review)."""
    nid = add_notification(admin_engine, world.org_a, world.contractor_x_user, "Odd query")
    response = contractor.post(
        f"/notifications/{nid}/read?show=unread&{odd}", data={"csrf_token": csrf_token(contractor, "/notifications/")}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/notifications/?show=unread"
