"""Sign-in, sign-out, the failed-login throttle, safe redirects and the session cookie."""

from __future__ import annotations

import re

import pytest
from kit import PASSWORD
from kit.web import csrf_token
from sqlalchemy import text

SESSION_COOKIE = "backoffice_session"


def _field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<small id="{field}-error" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else None


def _signed_in(client) -> bool:
    """Whether the client's session reaches the home page (anonymous users are sent to /login)."""
    return client.get("/").status_code == 200


def _set_cookie_headers(response, name: str = SESSION_COOKIE) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def test_login_page_renders_with_csrf_token(client):
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(r'name="csrf_token" value="[^"]{20,}"', html)
    assert 'name="email"' in html and 'name="password"' in html
    assert 'type="password"' in html


def test_correct_login_redirects_home_and_shows_name(client, world, login):
    response = login(client, world.admin)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Welcome, Ada Admin" in home.get_data(as_text=True)


def test_login_email_is_case_and_whitespace_insensitive(client, world, login):
    response = login(client, f"  {world.finance.email.upper()} ")
    assert response.status_code == 303
    assert "Welcome, Fiona Finance" in client.get("/").get_data(as_text=True)


def test_wrong_password_is_401_with_message_at_password_field(client, world, login):
    response = login(client, world.admin, "not the password")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    message = _field_error(html, "password")
    assert message == "That email and password do not match an active account."
    assert _field_error(html, "email") is None
    # the typed email stays in the form; the password does not
    assert f'value="{world.admin.email}"' in html
    assert "not the password" not in html
    assert not _signed_in(client)


def test_unknown_email_gives_the_same_message(client, world, login):
    wrong_pw = _field_error(login(client, world.owner, "wrong wrong wrong").get_data(as_text=True), "password")
    response = login(client, f"nobody-{world.suffix}@example.com")
    assert response.status_code == 401
    assert _field_error(response.get_data(as_text=True), "password") == wrong_pw
    assert wrong_pw
    assert not _signed_in(client)


@pytest.mark.parametrize(
    "email",
    [
        "{admin}\x00",
        "\x00{admin}",
        "{admin}\x7f",
        "ad\nmin@example.com",
        "{admin}" + "x" * 8000,
        "a" * 8000 + "@example.com",
    ],
    ids=[
        "trailing-NUL",
        "leading-NUL",
        "trailing-DEL",
        "inner-newline",
        "8000-chars-after-a-real-address",
        "8000-chars",
    ],
)
def test_an_email_with_control_characters_or_8000_characters_is_401_with_the_usual_message(
    client, world, login, admin_engine, email
):
    """These answered 500 (PostgreSQL text cannot hold NUL; the address was looked up whatever its length)."""
    email = email.format(admin=world.admin.email)
    response = login(client, email)  # with the admin's right password
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert _field_error(html, "password") == "That email and password do not match an active account."
    assert _field_error(html, "email") is None
    assert not _signed_in(client)
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select last_login_at from users where id = :id"), {"id": world.admin.id}).scalar_one()
            is None
        )
        assert (
            conn.execute(
                text("select count(*) from audit_events where actor_user_id = :u and action = 'auth.signed_in'"),
                {"u": world.admin.id},
            ).scalar_one()
            == 0
        )
    # the real address is not locked or counted against by such attempts
    assert login(client.application.test_client(), world.admin).status_code == 303


def test_user_without_password_cannot_sign_in(client, world, login, admin_engine):
    with admin_engine.begin() as conn:
        conn.execute(text("update users set password_hash = null where id = :id"), {"id": world.owner.id})
    response = login(client, world.owner, "")
    assert response.status_code == 401
    assert not _signed_in(client)


def test_inactive_user_cannot_sign_in(client, world, login, admin_engine):
    with admin_engine.begin() as conn:
        conn.execute(text("update users set is_active = false where id = :id"), {"id": world.owner.id})
    response = login(client, world.owner)
    assert response.status_code == 401
    assert not _signed_in(client)


def test_lockout_after_five_failures_even_with_right_password(client, world, login):
    statuses = [login(client, world.finance, f"wrong password {i}").status_code for i in range(5)]
    assert statuses[:4] == [401, 401, 401, 401]
    assert statuses[4] in (401, 429)  # the fifth failure locks the address
    response = login(client, world.finance)  # the right password, sixth attempt
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many failed sign-in attempts" in html
    assert not _signed_in(client)
    # the lock is per address: another person still signs in
    other = client.application.test_client()
    assert login(other, world.owner).status_code == 303


def test_lockout_is_per_address_not_case_sensitive(client, world, login):
    for i in range(5):
        login(client, world.finance.email.upper(), f"wrong {i}")
    response = login(client, world.finance)
    assert response.status_code == 429


def test_successful_login_resets_failure_count(client, world, login):
    for i in range(4):
        assert login(client, world.owner, f"wrong {i}").status_code == 401
    assert login(client, world.owner).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    # four more failures are not enough to lock: the counter started again
    for i in range(4):
        assert login(client, world.owner, f"again wrong {i}").status_code == 401
    assert login(client, world.owner).status_code == 303


def test_logout_requires_post(client, world, login):
    login(client, world.admin)
    assert client.get("/logout").status_code == 405
    assert _signed_in(client)


def test_logout_without_csrf_is_rejected_and_session_survives(client, world, login):
    login(client, world.admin)
    response = client.post("/logout")
    assert response.status_code == 400
    assert _signed_in(client)


def test_logout_with_csrf_ends_the_session(client, world, login):
    login(client, world.admin)
    token = csrf_token(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "You are signed out." in client.get("/login").get_data(as_text=True)
    home = client.get("/")
    assert home.status_code in (302, 303)
    assert home.headers["Location"].startswith("/login")


def _open_sign_ins(admin_engine, user_ids) -> dict:
    """{user id: their sign-in sessions still open}, as the owner role sees them."""
    with admin_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "select u.id, count(s.id) from users u left join user_sessions s"
                    " on s.user_id = u.id and s.ended_at is null and s.expires_at > now()"
                    " where u.id = any(:ids) group by u.id"
                ),
                {"ids": list(user_ids)},
            ).all()
        )


def test_sign_in_opens_a_database_session_whose_token_only_the_cookie_holds(client, world, login, admin_engine):
    assert login(client, world.admin).status_code == 303
    with client.session_transaction() as sess:
        token = sess.get("sign_in")
    assert isinstance(token, str) and len(token) == 64
    with admin_engine.connect() as conn:
        row = conn.execute(
            text(
                "select user_id, expires_at > now() + interval '11 hours' as lasts from user_sessions"
                " where token_hash = encode(sha256(convert_to(:t, 'UTF8')), 'hex') and ended_at is null"
            ),
            {"t": token},
        ).one()
        stored_plain = conn.execute(
            text("select count(*) from user_sessions where token_hash = :t"), {"t": token}
        ).scalar_one()
    assert row.user_id == world.admin.id and row.lasts
    assert stored_plain == 0  # only its sha256 is kept


def test_a_cookie_without_its_sign_in_is_not_signed_in(client, world, login):
    """A cookie naming the user but not presenting the database's sign-in (an old cookie, or one whose
    user id was changed) counts as signed out."""
    login(client, world.admin)
    assert _signed_in(client)
    with client.session_transaction() as sess:
        del sess["sign_in"]
    home = client.get("/")
    assert home.status_code in (302, 303)
    assert home.headers["Location"].startswith("/login")


def test_a_cookie_naming_another_user_beside_its_own_sign_in_is_not_signed_in(app, world, login):
    """Flask's user id in the cookie is not the identity: the sign-in is. A cookie whose user id names the
    admin while it carries the finance person's sign-in is nobody."""
    client = app.test_client()
    login(client, world.finance)
    with client.session_transaction() as sess:
        sess["_user_id"] = str(world.admin.id)
    home = client.get("/")
    assert home.status_code in (302, 303) and home.headers["Location"].startswith("/login")


def _copy_session_cookie(source, target):
    cookie = source.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    target.set_cookie(SESSION_COOKIE, cookie.value, domain=cookie.domain, path=cookie.path)


def test_sign_out_ends_a_copied_session_cookie_too(app, world, login, admin_engine):
    browser = app.test_client()
    assert login(browser, world.admin).status_code == 303
    thief = app.test_client()
    _copy_session_cookie(browser, thief)
    assert _signed_in(thief)  # the copy works while the session lasts
    logout = browser.post("/logout", data={"csrf_token": csrf_token(browser, "/")})
    assert logout.status_code == 303

    home = thief.get("/")
    assert home.status_code in (302, 303)
    assert home.headers["Location"].startswith("/login")
    # and the copy cannot change anything either
    with admin_engine.connect() as conn:
        name_before = conn.execute(
            text("select name from organizations where id = :id"), {"id": world.org_a}
        ).scalar_one()
    attempt = thief.post(
        "/admin/settings",
        data={
            "name": "Stolen",
            "default_currency": "USD",
            "default_retainage": "10",
            "payment_terms_days": "30",
            "partial_policy": "route_back",
            "csrf_token": csrf_token(thief, "/login"),
        },
    )
    assert attempt.status_code in (302, 303) and attempt.headers["Location"].startswith("/login")
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select name from organizations where id = :id"), {"id": world.org_a}).scalar_one()
            == name_before
        )


def test_sign_out_in_one_browser_signs_out_the_other_browser_too(app, world, login, admin_engine):
    laptop, phone, colleague = app.test_client(), app.test_client(), app.test_client()
    assert login(laptop, world.finance).status_code == 303
    assert login(phone, world.finance).status_code == 303
    assert login(colleague, world.owner).status_code == 303
    assert _signed_in(laptop) and _signed_in(phone) and _signed_in(colleague)
    assert phone.post("/logout", data={"csrf_token": csrf_token(phone, "/")}).status_code == 303

    home = laptop.get("/")
    assert home.status_code in (302, 303)
    assert home.headers["Location"].startswith("/login")
    open_now = _open_sign_ins(admin_engine, [world.finance.id, world.owner.id])
    with admin_engine.connect() as conn:
        signed_out = conn.execute(
            text(
                "select count(*) from audit_events"
                " where org_id = :o and actor_user_id = :u and action = 'auth.signed_out'"
            ),
            {"o": world.org_a, "u": world.finance.id},
        ).scalar_one()
    assert open_now[world.finance.id] == 0  # both of the finance person's sign-ins ended
    assert signed_out == 1
    # another person's session is untouched
    assert open_now[world.owner.id] == 1
    assert _signed_in(colleague)


def test_signing_in_again_after_sign_out_works_but_older_sessions_stay_ended(app, world, login):
    old, new = app.test_client(), app.test_client()
    assert login(old, world.owner).status_code == 303
    assert old.post("/logout", data={"csrf_token": csrf_token(old, "/")}).status_code == 303
    assert login(new, world.owner).status_code == 303
    assert _signed_in(new)
    assert not _signed_in(old)
    # a session copied before the sign-out stays ended after the new sign-in, too
    stale = app.test_client()
    assert login(stale, world.finance).status_code == 303
    copy = app.test_client()
    _copy_session_cookie(stale, copy)
    assert stale.post("/logout", data={"csrf_token": csrf_token(stale, "/")}).status_code == 303
    assert login(stale, world.finance).status_code == 303
    assert _signed_in(stale) and not _signed_in(copy)


def test_someone_in_no_organization_can_sign_out_and_it_ends_their_other_sessions(app, world, login, admin_engine):
    here, there = app.test_client(), app.test_client()
    assert login(here, world.outsider).status_code == 303
    assert login(there, world.outsider).status_code == 303
    assert _signed_in(here) and _signed_in(there)  # the "No organization yet" page
    response = here.post("/logout", data={"csrf_token": csrf_token(here, "/")})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert not _signed_in(here) and not _signed_in(there)
    assert _open_sign_ins(admin_engine, [world.outsider.id]) == {world.outsider.id: 0}


def test_a_deactivated_user_is_signed_out_on_the_next_request(client, world, login, admin_engine):
    login(client, world.owner)
    assert _signed_in(client)
    with admin_engine.begin() as conn:
        conn.execute(text("update users set is_active = false where id = :id"), {"id": world.owner.id})
    assert not _signed_in(client)


def test_next_same_site_path_is_followed(client, world):
    token = csrf_token(client, "/login?next=/admin/settings")
    page = client.get("/login?next=/admin/settings").get_data(as_text=True)
    assert 'name="next"' in page and 'value="/admin/settings"' in page
    response = client.post(
        "/login",
        data={"email": world.admin.email, "password": PASSWORD, "csrf_token": token, "next": "/admin/settings"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/settings"


def test_protected_page_redirect_round_trips_through_next(client, world):
    response = client.get("/admin/members")
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.startswith("/login")
    page = client.get(location).get_data(as_text=True)
    assert 'value="/admin/members"' in page
    token = csrf_token(client)
    signed_in = client.post(
        "/login", data={"email": world.admin.email, "password": PASSWORD, "csrf_token": token, "next": "/admin/members"}
    )
    assert signed_in.headers["Location"] == "/admin/members"


def _login_with_next(client, who, next_value):
    token = csrf_token(client)
    return client.post(
        "/login", data={"email": who.email, "password": PASSWORD, "csrf_token": token, "next": next_value}
    )


def test_next_protocol_relative_url_is_ignored(client, world):
    response = _login_with_next(client, world.admin, "//evil.example")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_absolute_url_is_ignored(client, world):
    response = _login_with_next(client, world.admin, "https://evil.example")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_backslash_trick_is_ignored(client, world):
    response = _login_with_next(client, world.admin, "/\\evil.example")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    "next_value",
    [
        "/\t/evil.example",
        "/\n/x",
        "/\r\n/evil.example",
        "/\x00/evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "https://evil.example",
        "//evil.example/path",
        " //evil.example",
        "\t//evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/%0a/x?next=\x7f",
    ],
    ids=[
        "tab",
        "newline",
        "CRLF",
        "NUL",
        "double-backslash",
        "backslash-slash",
        "https",
        "protocol-relative",
        "leading-space",
        "leading-tab",
        "javascript",
        "relative",
        "DEL",
    ],
)
def test_next_that_is_not_a_plain_same_site_path_redirects_home_instead(client, world, next_value):
    """Browsers drop tabs and newlines and read backslashes as slashes: '/\t/evil.example' is '//evil.example'."""
    page = client.get("/login", query_string={"next": next_value})
    assert page.status_code == 200  # the sign-in page renders whatever next says
    response = _login_with_next(client, world.admin, next_value)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_with_a_query_string_on_this_site_is_followed(client, world):
    response = _login_with_next(client, world.admin, "/admin/members?sort=name&dir=asc")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/members?sort=name&dir=asc"


def test_session_cookie_httponly_lax_and_not_secure_over_http(client, world, login):
    response = login(client, world.admin)
    headers = _set_cookie_headers(response)
    assert headers, "sign-in must set the session cookie"
    cookie = headers[-1]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(client):
    response = client.get("/login", base_url="https://localhost")
    headers = _set_cookie_headers(response)
    assert headers, "the login page starts a session (its CSRF token)"
    cookie = headers[-1]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_sign_in_over_https_sets_secure_cookie(client, world):
    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
        data={"email": world.admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    cookie = _set_cookie_headers(response)[-1]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_in_gives_a_fresh_session(client, world, login):
    """Session fixation: nothing put in the session before sign-in survives it, not even the
    pre-sign-in CSRF token."""
    old_token = csrf_token(client, "/login")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    login(client, world.admin)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id") == str(world.admin.id)
    assert csrf_token(client, "/") != old_token


def test_successful_sign_in_is_audited(client, world, login, admin_engine):
    login(client, world.finance)
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text(
                "select actor_label, entity_type, entity_id from audit_events "
                "where org_id = :org and actor_user_id = :uid and action = 'auth.signed_in'"
            ),
            {"org": world.org_a, "uid": world.finance.id},
        ).all()
    assert len(rows) == 1
    assert rows[0].actor_label == world.finance.email
    assert rows[0].entity_type == "user"
    assert rows[0].entity_id == str(world.finance.id)


def test_failed_sign_in_is_not_audited_as_signed_in(client, world, login, admin_engine):
    login(client, world.finance, "wrong password here")
    with admin_engine.connect() as conn:
        count = conn.execute(
            text("select count(*) from audit_events where actor_user_id = :uid and action = 'auth.signed_in'"),
            {"uid": world.finance.id},
        ).scalar_one()
    assert count == 0


def test_user_without_membership_signs_in_to_no_org_page(client, world, login):
    response = login(client, world.outsider)
    assert response.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert "No organization yet" in html


def test_signed_in_user_visiting_login_goes_home(client, world, login):
    login(client, world.admin)
    response = client.get("/login")
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/"
