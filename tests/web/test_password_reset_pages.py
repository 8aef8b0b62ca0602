"""Forgotten passwords: asking for a link, the emailed link, choosing a new password.

Asking never tells whether an address has an account. The link arrives as an account message (no
organization) that the worker writes (the database makes the token; the web request never sees it), and
is read here from that message, as the owner role sees it, once the worker has run; it works
once, for an hour, and only the newest one works. Saving a new password ends every other session.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets

import pytest
from kit import PASSWORD
from kit.jobs import OFFLINE, online, run_jobs
from kit.resend_stub import resend_stub
from kit.web import csrf_token, field_error, flashes, input_names, signed_in, user_by_email
from sqlalchemy import text

SENT = (
    "If that address has a backoffice account, a link to choose a new password is on its way. "
    "It works once, for one hour."
)
CHANGED = "Your password is changed, and every other session is signed out. Sign in with the new password."
NEW_PASSWORD = "a brand new passphrase"
LOGIN_FAILED = "That email and password do not match an active account."


# --- asking and reading what was written ------------------------------------------------------------------


def ask(client, email: str):
    return client.post("/password/forgot", data={"email": email, "csrf_token": csrf_token(client, "/password/forgot")})


def reset_messages(admin_engine, *, user_id=None, recipient: str | None = None) -> list:
    """Password-reset messages for an account or an address, oldest first (as the owner role)."""
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, event, recipient, recipient_user_id, subject, html, text, status"
                "  from account_messages"
                " where event = 'password_reset' and (recipient_user_id = :u or lower(recipient) = lower(:r))"
                " order by created_at, id"
            ),
            {"u": user_id, "r": recipient or ""},
        ).all()


def link_token(message) -> str:
    """The token of the link in the message's text, checked to be the same link as in its HTML."""
    match = re.search(r"Choose a new password: (\S+/password/reset/([A-Za-z0-9_\-]+))\n", message.text)
    assert match, message.text
    assert f'href="{html_lib.escape(match.group(1))}"' in message.html
    return match.group(2)


def worker_ran(database, admin_engine, person, mailer=OFFLINE) -> None:
    """The worker takes the account's jobs: it writes the reset email and sends it (or keeps it, offline)."""
    run_jobs(database, admin_engine, user_ids=[person.id], mailer=mailer)


def asked_for(client, database, admin_engine, person, mailer=OFFLINE) -> str:
    """Ask for a link for ``person``, let the worker mail it, and return the token of the newest link emailed."""
    assert ask(client, person.email).status_code == 303
    worker_ran(database, admin_engine, person, mailer)
    return link_token(reset_messages(admin_engine, user_id=person.id)[-1])


def choose(client, token: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    return client.post(
        f"/password/reset/{token}",
        data={
            "password": password,
            "confirm": password if confirm is None else confirm,
            "csrf_token": csrf_token(client, "/login"),
        },
    )


def password_hash(admin_engine, person) -> str:
    with admin_engine.connect() as conn:
        return conn.execute(text("select password_hash from users where id = :u"), {"u": person.id}).scalar_one()


def sign_in(app, email: str, password: str):
    c = app.test_client()
    return c, c.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(c, "/login")})


# --- asking -----------------------------------------------------------------------------------------------


def test_the_sign_in_page_links_forgot_your_password(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<a href="/password/forgot">Forgot your password?</a>' in html
    page = client.get("/password/forgot")
    assert page.status_code == 200
    assert input_names(page.get_data(as_text=True)) == ["email"]


def test_a_known_and_an_unknown_address_get_the_same_answer_and_only_the_known_one_an_email(
    client, app, world, admin_engine, database
):
    unknown = f"nobody-{world.suffix}@example.com"
    answers = []
    for email in (world.owner.email, unknown):
        c = app.test_client()
        response = ask(c, email)
        answers.append(
            (response.status_code, response.headers.get("Location"), flashes(c.get("/login").get_data(as_text=True)))
        )
    assert answers[0] == answers[1] == (303, "/login", [SENT])
    assert reset_messages(admin_engine, user_id=world.owner.id) == []  # the worker writes it

    worker_ran(database, admin_engine, world.owner)
    (m,) = reset_messages(admin_engine, user_id=world.owner.id)
    assert (m.event, m.recipient, m.status) == ("password_reset", world.owner.email, "kept")
    assert m.subject == "Reset your backoffice password"
    assert "Hello Omar Owner," in m.text
    link_token(m)
    assert reset_messages(admin_engine, recipient=unknown) == []
    assert user_by_email(admin_engine, unknown) is None


def test_an_account_without_a_password_yet_gets_the_same_answer_and_no_email(client, world, admin_engine, database):
    email = f"pending-{world.suffix}@example.com"
    with admin_engine.begin() as conn:
        user_id = conn.execute(
            text("insert into users (email, name) values (:e, 'Pat Pending') returning id"), {"e": email}
        ).scalar_one()
    response = ask(client, email)
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    assert flashes(client.get("/login").get_data(as_text=True)) == [SENT]
    run_jobs(database, admin_engine, user_ids=[user_id])
    assert reset_messages(admin_engine, user_id=user_id, recipient=email) == []


def test_an_address_is_matched_whatever_its_case(client, world, admin_engine, database):
    assert ask(client, world.finance.email.upper()).status_code == 303
    worker_ran(database, admin_engine, world.finance)
    (m,) = reset_messages(admin_engine, user_id=world.finance.id)
    assert m.recipient == world.finance.email


@pytest.mark.parametrize("email", ["not an address", "name@", "", "a\tb@example.com"])
def test_a_malformed_address_is_422_with_the_message_at_the_field(client, world, admin_engine, email):
    before = _all_reset_rows(admin_engine)
    response = ask(client, email)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "email") == (
        "Enter an email address." if not email else "Enter a valid email address, like name@example.com."
    )
    assert SENT not in html
    assert _all_reset_rows(admin_engine) == before


def _all_reset_rows(admin_engine) -> tuple[int, int]:
    with admin_engine.connect() as conn:
        return tuple(
            conn.execute(
                text("select (select count(*) from account_messages), (select count(*) from password_resets)")
            ).one()
        )


def test_asking_needs_the_csrf_token(client, world, admin_engine, database):
    client.get("/password/forgot")
    response = client.post("/password/forgot", data={"email": world.owner.email})
    assert response.status_code == 400
    worker_ran(database, admin_engine, world.owner)
    assert reset_messages(admin_engine, user_id=world.owner.id) == []


def test_the_reset_email_is_sent_by_the_worker_as_the_account_it_is_for(client, world, admin_engine, database):
    with resend_stub() as stub:
        token = asked_for(client, database, admin_engine, world.owner, mailer=online())
    (delivery,) = stub.deliveries
    assert delivery["to"] == [world.owner.email]
    assert f"/password/reset/{token}" in delivery["text"]
    (m,) = reset_messages(admin_engine, user_id=world.owner.id)
    assert m.status == "sent"


def test_without_an_api_key_the_reset_email_is_kept(client, world, admin_engine, database):
    asked_for(client, database, admin_engine, world.owner)
    (m,) = reset_messages(admin_engine, user_id=world.owner.id)
    assert m.status == "kept"


# --- the link ---------------------------------------------------------------------------------------------


def test_the_emailed_link_opens_the_form_for_that_address(client, app, world, admin_engine, database):
    token = asked_for(client, database, admin_engine, world.owner)
    page = app.test_client().get(f"/password/reset/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"For {world.owner.email}." in html
    assert input_names(html) == ["username", "password", "confirm"]
    assert f'action="/password/reset/{token}"' in html


@pytest.mark.parametrize(
    "password, confirm, field, error",
    [
        (NEW_PASSWORD, NEW_PASSWORD + "!", "confirm", "The two passwords do not match."),
        ("short", "short", "password", "Use at least 10 characters."),
        ("", "", "password", "Use at least 10 characters."),
    ],
)
def test_a_short_or_mismatched_password_is_422_at_the_field_and_changes_nothing(
    client, app, login, world, admin_engine, database, password, confirm, field, error
):
    token = asked_for(client, database, admin_engine, world.owner)
    before = password_hash(admin_engine, world.owner)
    signed_in_before = signed_in(app, login, world.owner)
    response = choose(app.test_client(), token, password, confirm)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, field) == error
    assert f"For {world.owner.email}." in html
    assert password_hash(admin_engine, world.owner) == before
    assert signed_in_before.get("/").status_code == 200  # nobody was signed out
    assert app.test_client().get(f"/password/reset/{token}").status_code == 200  # the link still works
    assert sign_in(app, world.owner.email, PASSWORD)[1].status_code == 303


def test_a_new_password_works_the_old_one_not_and_other_sessions_end(client, app, login, world, admin_engine, database):
    before = signed_in(app, login, world.owner)
    assert before.get("/").status_code == 200
    token = asked_for(client, database, admin_engine, world.owner)

    person = app.test_client()
    response = choose(person, token)
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert flashes(person.get("/login").get_data(as_text=True)) == [CHANGED]

    # the session signed in before is over
    gone = before.get("/")
    assert gone.status_code in (302, 303) and "/login" in gone.headers["Location"]
    # the old password fails, the new one works
    _, old = sign_in(app, world.owner.email, PASSWORD)
    assert old.status_code == 401 and field_error(old.get_data(as_text=True), "password") == LOGIN_FAILED
    fresh, new = sign_in(app, world.owner.email, NEW_PASSWORD)
    assert new.status_code == 303
    assert fresh.get("/").status_code == 200

    # the link is used up
    again = app.test_client()
    page = again.get(f"/password/reset/{token}")
    assert page.status_code == 404
    assert "This link has expired or was already used" in page.get_data(as_text=True)
    assert choose(again, token, "yet another passphrase").status_code == 404
    assert sign_in(app, world.owner.email, NEW_PASSWORD)[1].status_code == 303


def test_a_new_password_lifts_a_sign_in_lock(client, app, world, admin_engine, database):
    for _ in range(12):
        _, r = sign_in(app, world.owner.email, "wrong password!")
        if r.status_code == 429:
            break
    assert r.status_code == 429, "the address is locked after repeated failures"
    token = asked_for(client, database, admin_engine, world.owner)
    assert choose(app.test_client(), token).status_code == 303
    assert sign_in(app, world.owner.email, NEW_PASSWORD)[1].status_code == 303


def test_choosing_a_password_needs_the_csrf_token(client, app, world, admin_engine, database):
    token = asked_for(client, database, admin_engine, world.owner)
    before = password_hash(admin_engine, world.owner)
    c = app.test_client()
    c.get(f"/password/reset/{token}")
    response = c.post(f"/password/reset/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert password_hash(admin_engine, world.owner) == before


def test_an_unknown_link_is_a_404_page_with_the_form_to_ask_again(client, world, admin_engine, database):
    response = client.get(f"/password/reset/{secrets.token_urlsafe(32)}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "This link has expired or was already used" in html
    assert 'action="/password/forgot"' in html and input_names(html) == ["email"]
    # the form there asks again
    asked = client.post(
        "/password/forgot",
        data={"email": world.owner.email, "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)},
    )
    assert asked.status_code == 303
    worker_ran(database, admin_engine, world.owner)
    assert len(reset_messages(admin_engine, user_id=world.owner.id)) == 1


def test_an_expired_link_is_a_404_page(client, app, world, admin_engine, database):
    token = asked_for(client, database, admin_engine, world.owner)
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "update password_resets set created_at = now() - interval '61 minutes',"
                " expires_at = now() - interval '1 minute' where user_id = :u"
            ),
            {"u": world.owner.id},
        )
    before = password_hash(admin_engine, world.owner)
    assert app.test_client().get(f"/password/reset/{token}").status_code == 404
    assert choose(app.test_client(), token).status_code == 404
    assert password_hash(admin_engine, world.owner) == before


def test_asking_again_makes_the_earlier_link_stop_working(client, app, world, admin_engine, database):
    first = asked_for(client, database, admin_engine, world.owner)
    second = asked_for(app.test_client(), database, admin_engine, world.owner)
    assert first != second
    before = password_hash(admin_engine, world.owner)
    assert app.test_client().get(f"/password/reset/{first}").status_code == 404
    assert choose(app.test_client(), first).status_code == 404
    assert password_hash(admin_engine, world.owner) == before
    assert app.test_client().get(f"/password/reset/{second}").status_code == 200
    assert choose(app.test_client(), second).status_code == 303


def test_a_fourth_request_within_an_hour_writes_no_email_and_answers_the_same(
    client, app, world, admin_engine, database
):
    tokens = [asked_for(app.test_client(), database, admin_engine, world.owner) for _ in range(3)]
    assert len(set(tokens)) == 3
    c = app.test_client()
    response = ask(c, world.owner.email)
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    assert flashes(c.get("/login").get_data(as_text=True)) == [SENT]
    worker_ran(database, admin_engine, world.owner)
    assert len(reset_messages(admin_engine, user_id=world.owner.id)) == 3
    # the newest link written still works; the earlier ones do not
    assert [app.test_client().get(f"/password/reset/{t}").status_code for t in tokens] == [404, 404, 200]
