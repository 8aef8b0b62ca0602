"""Admin screens in plain words (issue 22, item 8): the outbox says what each email was for and how to set up
email, and the invitation message is true to whether email is set up, with a copy button for the link."""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager

import pytest
from kit.web import csrf_token, flashes, followed, invite_link, signed_in
from test_outbox_pages import kept_messages


@contextmanager
def email_set_up(app):
    settings = app.config["BACKOFFICE_SETTINGS"]
    app.config["BACKOFFICE_SETTINGS"] = dataclasses.replace(settings, resend_api_key="re_test_key")
    try:
        yield
    finally:
        app.config["BACKOFFICE_SETTINGS"] = settings


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


def outside_setup(html: str) -> str:
    return re.sub(r'<details class="email-setup">.*?</details>', "", html, flags=re.S)


def test_the_outbox_says_what_each_email_was_for_and_how_to_set_up_email(
    admin, app_sessions, database, admin_engine, world
):
    kept = kept_messages(app_sessions, database, admin_engine, world)
    html = admin.get("/admin/outbox/").get_data(as_text=True)
    assert "Work request sent" in html and "Work request accepted" in html
    assert "engagement.work_request_sent</" not in html and ">engagement.work_request_sent<" not in html
    assert "Email is not set up yet, so messages are kept here instead of sent" in html
    assert "<summary>How to set up email</summary>" in html
    assert "RESEND_API_KEY" not in outside_setup(html)  # the one technical name is for whoever runs the server
    page = admin.get(f"/admin/outbox/{kept[0].id}").get_data(as_text=True)
    assert "Idempotency" not in page and "RESEND_API_KEY" not in outside_setup(page)
    assert "Written for" in page and "Sent at most once" in page
    assert "Email is not set up yet, so it will be kept again." in page


def test_with_email_set_up_the_outbox_offers_no_set_up(admin, app, app_sessions, database, admin_engine, world):
    kept_messages(app_sessions, database, admin_engine, world)
    with email_set_up(app):
        html = admin.get("/admin/outbox/").get_data(as_text=True)
    assert "How to set up email" not in html and "Emails that failed can be sent again." in html


def _invite(admin, email: str) -> str:
    response = admin.post(
        "/admin/members",
        data={
            "email": email,
            "name": "Ivy Invited",
            "role": "owner",
            "csrf_token": csrf_token(admin, "/admin/members"),
        },
    )
    return followed(admin, response, "/admin/members")


def test_without_email_the_invitation_says_to_send_the_link_yourself_with_a_copy_button(admin, world):
    email = f"ivy-{world.suffix}@example.com"
    html = _invite(admin, email)
    assert flashes(html) == [
        f"{email} is invited. Email is not set up, so send them the link below yourself; "
        "it works once and expires in 72 hours."
    ]
    assert f"Email is not set up, so send this link yourself to {email}. It is shown only now." in html
    assert "on its way" not in html and "We emailed" not in html
    assert invite_link(html).startswith("http")
    assert re.search(r'<button type="button"[^>]*data-copy="invite-link" hidden>Copy link</button>', html)


def test_with_email_set_up_the_invitation_says_it_was_emailed_and_shows_the_link(admin, app, world):
    email = f"ivy-{world.suffix}@example.com"
    with email_set_up(app):
        html = _invite(admin, email)
    assert flashes(html) == [
        f"We emailed the invitation to {email}. The link is below too; it works once and expires in 72 hours."
    ]
    assert f"We emailed the invitation to {email}. If it does not arrive, send them this link yourself." in html
    assert "not set up" not in html
    assert invite_link(html).startswith("http") and 'data-copy="invite-link"' in html
