"""Sign-in, sign-out, the failed-login throttle, safe redirects and the session cookie."""
from __future__ import annotations

import re

from sqlalchemy import text

from conftest import PASSWORD, csrf_token

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


def test_next_same_site_path_is_followed(client, world):
    token = csrf_token(client, "/login?next=/admin/settings")
    page = client.get("/login?next=/admin/settings").get_data(as_text=True)
    assert 'name="next"' in page and 'value="/admin/settings"' in page
    response = client.post(
        "/login", data={"email": world.admin.email, "password": PASSWORD, "csrf_token": token, "next": "/admin/settings"}
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
    return client.post("/login", data={"email": who.email, "password": PASSWORD, "csrf_token": token, "next": next_value})


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
