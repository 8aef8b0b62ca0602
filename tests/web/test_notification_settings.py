"""Settings for notifications (admins): the review time after which a project owner is reminded, and the
locale emails and receipts write amounts and dates in.

The form is posted back as a browser would: every field with the value the page shows, changed only
where the test says. (The other settings: test_admin_pages.py.)
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

import pytest
from kit.jobs import OFFLINE, run_jobs
from kit.money_pages import active_engagement
from kit.web import audit_events, field_error, flashes, followed, signed_in
from sqlalchemy import text

SLA_ERROR = "Enter a whole number between 1 and 60 (days)."
LOCALE_ERROR = "Choose a language and region for amounts and dates, such as English (United States)."
NBSP = "\u00a0"


class _FormReader(HTMLParser):
    """The values a browser would submit from the settings form."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.select: str | None = None
        self.values: dict[str, str] = {}
        self.options: dict[str, list[tuple[str, str, bool]]] = {}
        self._option: tuple[str, bool] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "settings-form":
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values[a["name"]] = a.get("value", "on")
            else:
                self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select = a["name"]
            self.options[self.select] = []
        elif tag == "option" and self.select:
            self._option = (a.get("value", ""), "selected" in a)

    def handle_data(self, data):
        if self._option is not None and self.select:
            value, selected = self._option
            self.options[self.select].append((value, data.strip(), selected))
            if selected:
                self.values[self.select] = value
            self._option = None

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def read_form(html: str) -> _FormReader:
    reader = _FormReader()
    reader.feed(html)
    assert reader.values, "no settings form on the page"
    return reader


def save(admin, **changes):
    """Post the settings form with the values it shows, changed by ``changes``."""
    values = read_form(admin.get("/admin/settings").get_data(as_text=True)).values
    return admin.post("/admin/settings", data={**values, **changes})


def org_settings(admin_engine, org_id) -> dict:
    with admin_engine.connect() as conn:
        return dict(conn.execute(text("select * from organizations where id = :o"), {"o": org_id}).mappings().one())


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


def test_the_settings_page_shows_the_review_time_and_the_locale(admin):
    html = admin.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'<label for="review_sla_days">Review time \(days\)', html)
    form = read_form(html)
    assert form.values["review_sla_days"] == "3"  # the default
    assert form.values["locale"] == "en_US"
    offered = {value: label for value, label, _ in form.options["locale"]}
    assert offered["en_US"] == "English (United States)" and offered["de_DE"] == "German (Germany)"
    assert "Amounts and dates in emails and receipts" in html


def test_saving_a_review_time_and_a_locale_stores_them_with_an_audit_event(admin, world, admin_engine):
    before = org_settings(admin_engine, world.org_a)
    response = save(admin, review_sla_days="5", locale="de_DE")
    html = followed(admin, response, "/admin/settings")
    assert "Settings saved." in flashes(html)
    after = org_settings(admin_engine, world.org_a)
    assert (after["review_sla_days"], after["locale"]) == (5, "de_DE")
    assert {k: v for k, v in after.items() if k not in ("review_sla_days", "locale", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("review_sla_days", "locale", "updated_at")
    }
    (event,) = audit_events(admin_engine, world.org_a, "organization.settings_changed")
    assert event.actor_user_id == world.admin.id
    assert event.data == {"review_sla_days": {"before": 3, "after": 5}, "locale": {"before": "en_US", "after": "de_DE"}}
    form = read_form(html)
    assert (form.values["review_sla_days"], form.values["locale"]) == ("5", "de_DE")


def test_saving_unchanged_settings_records_no_event(admin, world, admin_engine):
    assert save(admin).status_code == 303
    assert audit_events(admin_engine, world.org_a, "organization.settings_changed") == []


@pytest.mark.parametrize("value", ["0", "61", "abc", "", "5.5", "-1", " "])
def test_a_review_time_outside_1_to_60_days_is_422_at_the_field_and_nothing_is_saved(admin, world, admin_engine, value):
    before = org_settings(admin_engine, world.org_a)
    response = save(admin, review_sla_days=value, locale="de_DE", payment_terms_days="45")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "review_sla_days") == SLA_ERROR
    assert (
        html_lib.unescape(re.search(r'<input[^>]*name="review_sla_days"[^>]*>', html).group(0)).count(
            f'value="{value}"'
        )
        == 1
    )
    assert org_settings(admin_engine, world.org_a) == before
    assert audit_events(admin_engine, world.org_a, "organization.settings_changed") == []


@pytest.mark.parametrize("value", ["1", "60", " 7 "])
def test_a_review_time_from_1_to_60_days_is_saved(admin, world, admin_engine, value):
    assert save(admin, review_sla_days=value).status_code == 303
    assert org_settings(admin_engine, world.org_a)["review_sla_days"] == int(value)


@pytest.mark.parametrize("value", ["xx_YY", "de-DE", "en_US; drop table", "klingon", ""])
def test_an_unknown_locale_is_422_at_the_field_and_nothing_is_saved(admin, world, admin_engine, value):
    before = org_settings(admin_engine, world.org_a)
    response = save(admin, locale=value, review_sla_days="5")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "locale") == LOCALE_ERROR
    assert org_settings(admin_engine, world.org_a) == before
    assert audit_events(admin_engine, world.org_a, "organization.settings_changed") == []


def test_a_locale_babel_knows_beyond_the_offered_ones_is_kept_and_shown(admin, world, admin_engine):
    assert save(admin, locale="sv_SE").status_code == 303
    assert org_settings(admin_engine, world.org_a)["locale"] == "sv_SE"
    form = read_form(admin.get("/admin/settings").get_data(as_text=True))
    assert form.values["locale"] == "sv_SE"
    assert ("sv_SE", "Swedish (Sweden)", True) in form.options["locale"]


def test_only_admins_change_notification_settings(app, login, world, admin_engine):
    before = org_settings(admin_engine, world.org_a)
    for person in (world.owner, world.finance, world.contractor_x_user):
        c = signed_in(app, login, person)
        assert c.get("/admin/settings").status_code == 403
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/").get_data(as_text=True)).group(1)
        assert (
            c.post("/admin/settings", data={"review_sla_days": "9", "locale": "de_DE", "csrf_token": token}).status_code
            == 403
        )
    assert org_settings(admin_engine, world.org_a) == before


def test_emails_write_amounts_in_the_locale_saved(admin, world, admin_engine, app_sessions, database):
    assert save(admin, locale="de_DE").status_code == 303
    active_engagement(app_sessions, world, title="Locale test")  # 1,234.55 + 2,000.05 in USD
    run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)
    with admin_engine.connect() as conn:
        body = conn.execute(
            text("select text from email_messages where org_id = :o and event = 'engagement.work_request_sent'"),
            {"o": world.org_a},
        ).scalar_one()
    assert f"Contract value: 3.234,60{NBSP}$" in body
