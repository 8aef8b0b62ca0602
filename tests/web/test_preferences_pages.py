"""The Preferences page (issue 22, item 10): each person's time zone and how they want emails, reached from the
account menu; the pages then show times on their clock with the exact UTC on hover."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from kit.engagements import owner_query
from kit.web import post, signed_in
from sqlalchemy import text

PAGE = "/account/preferences"


def this_year(shown: str) -> str:
    """A moment of 2026 reads with its clock this year, as its day in another (display.human_moment)."""
    return shown if datetime.now(UTC).year == 2026 else "21 Nov 2026"


def saved(admin_engine, person) -> list[dict]:
    return owner_query(admin_engine, "select time_zone, notify from user_preferences where user_id = :u", u=person.id)


def test_the_account_menu_leads_to_the_preferences_page(app, login, world):
    c = signed_in(app, login, world.owner)
    home = c.get("/").get_data(as_text=True)
    assert f'<a href="{PAGE}">Preferences</a>' in home
    page = c.get(PAGE).get_data(as_text=True)
    assert "<h1>Preferences</h1>" in page
    assert '<option value="America/New_York">America/New York</option>' in page
    assert '<optgroup label="Asia">' in page
    assert '<option value="UTC" selected>UTC</option>' in page  # nothing chosen yet: UTC
    assert 'value="each" checked> Email me each event' in page
    assert 'value="daily"> One email a day with everything (daily digest)' in page


@pytest.mark.parametrize("person", ["owner", "finance", "contractor_x_user", "admin"])
def test_every_member_saves_their_own_time_zone_and_email_choice(app, login, world, admin_engine, person):
    who = getattr(world, person)
    c = signed_in(app, login, who)
    r = post(c, PAGE, {"time_zone": "Asia/Tokyo", "notify": "daily"})
    assert r.status_code == 303 and r.headers["Location"].endswith(PAGE)
    assert saved(admin_engine, who) == [{"time_zone": "Asia/Tokyo", "notify": "daily"}]
    page = c.get(PAGE).get_data(as_text=True)
    assert "Preferences saved." in page
    assert '<option value="Asia/Tokyo" selected>' in page and 'value="daily" checked>' in page
    r = post(c, PAGE, {"time_zone": "America/Los_Angeles", "notify": "each"})
    assert saved(admin_engine, who) == [{"time_zone": "America/Los_Angeles", "notify": "each"}]


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "", "Asia/Tokyo\x00", "../../etc/passwd", "x" * 500, "asia/tokyo"]
)
def test_an_unknown_time_zone_is_refused_at_its_field_and_nothing_is_saved(app, login, world, admin_engine, zone):
    c = signed_in(app, login, world.owner)
    r = post(c, PAGE, {"time_zone": zone, "notify": "daily"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert '<small id="time_zone-error" class="field-error">Choose a time zone from the list' in page
    assert 'aria-invalid="true"' in page
    assert saved(admin_engine, world.owner) == []


def test_a_choice_that_is_not_offered_is_refused_at_its_field(app, login, world, admin_engine):
    c = signed_in(app, login, world.owner)
    r = post(c, PAGE, {"time_zone": "Asia/Tokyo", "notify": "hourly"})
    assert r.status_code == 422
    assert "Choose how you want to be emailed." in r.get_data(as_text=True)
    assert saved(admin_engine, world.owner) == []


def test_the_page_needs_a_signed_in_person_and_a_csrf_token(app, login, world, client, admin_engine):
    assert client.get(PAGE).status_code == 302  # to the sign-in page
    c = signed_in(app, login, world.owner)
    r = c.post(PAGE, data={"time_zone": "Asia/Tokyo", "notify": "daily"})
    assert r.status_code == 400
    assert saved(admin_engine, world.owner) == []


def test_a_person_sees_times_on_their_own_clock_and_the_exact_utc_on_hover(app, login, world, admin_engine):
    """A notice written at 14:30:05 UTC on Saturday 21 November 2026: 23:30 that Saturday in Tokyo, 06:30 in Los
    Angeles; the datetime attribute stays UTC."""
    at = datetime(2026, 11, 21, 14, 30, 5, tzinfo=UTC)
    with admin_engine.begin() as conn:
        for person in (world.owner, world.finance):
            conn.execute(
                text(
                    "insert into notifications (org_id, user_id, event, title, body, url, dedupe_key, created_at)"
                    " values (:o, :u, 'test.event', 'A notice', '', '/', :k, :at)"
                ),
                {"o": world.org_a, "u": person.id, "k": f"zones:{person.id}", "at": at},
            )
    tokyo, los_angeles = signed_in(app, login, world.owner), signed_in(app, login, world.finance)
    post(tokyo, PAGE, {"time_zone": "Asia/Tokyo", "notify": "each"})
    post(los_angeles, PAGE, {"time_zone": "America/Los_Angeles", "notify": "each"})

    seen_in_tokyo = html.unescape(tokyo.get("/notifications/").get_data(as_text=True))
    assert (
        '<time datetime="2026-11-21T14:30:05Z" title="Saturday 21 November 2026, 14:30:05 UTC · 23:30 in Asia/Tokyo">'
        f"{this_year('21 Nov, 23:30')}</time>" in seen_in_tokyo
    )
    seen_in_los_angeles = html.unescape(los_angeles.get("/notifications/").get_data(as_text=True))
    assert (
        '<time datetime="2026-11-21T14:30:05Z" title="Saturday 21 November 2026, 14:30:05 UTC · 06:30 in '
        'America/Los_Angeles">' + this_year("21 Nov, 06:30") + "</time>" in seen_in_los_angeles
    )


def test_a_person_who_chose_nothing_sees_utc_as_before(app, login, world, admin_engine):
    at = datetime(2026, 11, 21, 14, 30, 5, tzinfo=UTC)
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into notifications (org_id, user_id, event, title, body, url, dedupe_key, created_at)"
                " values (:o, :u, 'test.event', 'A notice', '', '/', 'zones:none', :at)"
            ),
            {"o": world.org_a, "u": world.owner.id, "at": at},
        )
    page = html.unescape(signed_in(app, login, world.owner).get("/notifications/").get_data(as_text=True))
    assert (
        '<time datetime="2026-11-21T14:30:05Z" title="Saturday 21 November 2026, 14:30:05 UTC">'
        f"{this_year('21 Nov, 14:30')}</time>" in page
    )


def test_the_outbox_says_in_words_that_a_message_is_held_for_the_daily_digest(app, login, world, admin_engine):
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, status,"
                " dedupe_key, link) values (:o, 'payment.run', :u, :r, 'Paid: 4 invoices — $900.00', '', '', 'held',"
                " 'held:test', '/invoices/')"
            ),
            {"o": world.org_a, "u": world.contractor_x_user.id, "r": world.contractor_x_user.email},
        )
    c = signed_in(app, login, world.admin)
    listing = html.unescape(c.get("/admin/outbox/").get_data(as_text=True))
    assert "Held for the daily digest" in listing
    held = html.unescape(c.get("/admin/outbox/?status=held").get_data(as_text=True))
    assert "Paid: 4 invoices — $900.00" in held
