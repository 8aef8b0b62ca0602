"""Every state-changing route needs the session's CSRF token: in the form, or in the X-CSRFToken
header that htmx sends from the hx-headers on <body>."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest
from kit import PASSWORD
from kit.web import csrf_token, org_row
from sqlalchemy import text

HTMX = {"HX-Request": "true"}


def _membership_id(admin_engine, org_id, user_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id from memberships where org_id = :o and user_id = :u"), {"o": org_id, "u": user_id}
        ).scalar_one()


def _audit_count(admin_engine, org_id) -> int:
    with admin_engine.connect() as conn:
        return conn.execute(text("select count(*) from audit_events where org_id = :o"), {"o": org_id}).scalar_one()


def _assert_csrf_rejected(response):
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)


def _invite(client, world, email, name="Pat Pending"):
    """As the signed-in admin: invite a new person; returns the one-time token from the link."""
    response = client.post(
        "/admin/members",
        data={
            "email": email,
            "name": name,
            "role": "owner",
            "contractor_id": "",
            "csrf_token": csrf_token(client, "/admin/members"),
        },
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    match = re.search(r'/invite/([A-Za-z0-9_\-]+)"', page.get_data(as_text=True))
    assert match, "invite link shown"
    return match.group(1)


@pytest.fixture
def admin_client(client, world, login):
    assert login(client, world.admin).status_code == 303
    return client


# --- rejected without a token ------------------------------------------------------------------


def test_login_without_token_is_rejected_and_signs_nobody_in(client, world, admin_engine):
    client.get("/login")
    response = client.post("/login", data={"email": world.admin.email, "password": PASSWORD})
    _assert_csrf_rejected(response)
    assert client.get("/").status_code in (302, 303)
    with admin_engine.connect() as conn:
        n = conn.execute(
            text("select count(*) from audit_events where actor_user_id = :u and action = 'auth.signed_in'"),
            {"u": world.admin.id},
        ).scalar_one()
    assert n == 0


def test_login_with_a_forged_token_is_rejected(client, world):
    client.get("/login")
    response = client.post(
        "/login", data={"email": world.admin.email, "password": PASSWORD, "csrf_token": "forged.token"}
    )
    _assert_csrf_rejected(response)
    assert client.get("/").status_code in (302, 303)


def test_token_from_another_session_is_rejected(client, app, world):
    other = app.test_client()
    foreign = csrf_token(other, "/login")
    client.get("/login")
    response = client.post("/login", data={"email": world.admin.email, "password": PASSWORD, "csrf_token": foreign})
    _assert_csrf_rejected(response)


def test_logout_without_token_is_rejected(admin_client):
    _assert_csrf_rejected(admin_client.post("/logout"))
    assert admin_client.get("/").status_code == 200


def test_org_switch_without_token_is_rejected(admin_client, world, admin_engine):
    # give the admin a second organization so a switch would otherwise succeed
    with admin_engine.begin() as conn:
        conn.execute(
            text("insert into memberships (id, org_id, user_id, role) values (gen_random_uuid(), :o, :u, 'owner')"),
            {"o": world.org_b, "u": world.admin.id},
        )
    _assert_csrf_rejected(admin_client.post("/orgs/switch", data={"org_id": str(world.org_b)}))
    home = admin_client.get("/").get_data(as_text=True)
    assert f"Org A {world.suffix} · Admin" in home


def test_settings_without_token_is_rejected_and_nothing_changes(admin_client, world, admin_engine):
    before = org_row(admin_engine, world.org_a)
    events = _audit_count(admin_engine, world.org_a)
    response = admin_client.post(
        "/admin/settings",
        data={
            "name": "Hijacked",
            "default_currency": "EUR",
            "default_retainage": "50",
            "payment_terms_days": "1",
            "partial_policy": "split",
        },
    )
    _assert_csrf_rejected(response)
    assert org_row(admin_engine, world.org_a) == before
    assert _audit_count(admin_engine, world.org_a) == events


def test_settings_with_empty_token_is_rejected(admin_client, world, admin_engine):
    before = org_row(admin_engine, world.org_a)
    response = admin_client.post(
        "/admin/settings",
        data={
            "name": "Hijacked",
            "default_currency": "USD",
            "default_retainage": "10",
            "payment_terms_days": "30",
            "partial_policy": "route_back",
            "csrf_token": "",
        },
    )
    _assert_csrf_rejected(response)
    assert org_row(admin_engine, world.org_a) == before


def test_invite_member_without_token_is_rejected(admin_client, world, admin_engine):
    email = f"csrf-invite-{world.suffix}@example.com"
    response = admin_client.post("/admin/members", data={"email": email, "name": "Mal Lory", "role": "admin"})
    _assert_csrf_rejected(response)
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from users where lower(email) = :e"), {"e": email}).scalar_one() == 0


def test_change_role_without_token_is_rejected(admin_client, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.owner.id)
    _assert_csrf_rejected(admin_client.post(f"/admin/members/{mid}/role", data={"role": "admin"}))
    with admin_engine.connect() as conn:
        assert conn.execute(text("select role from memberships where id = :id"), {"id": mid}).scalar_one() == "owner"


def test_remove_member_without_token_is_rejected(admin_client, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.finance.id)
    _assert_csrf_rejected(admin_client.post(f"/admin/members/{mid}/remove"))
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from memberships where id = :id"), {"id": mid}).scalar_one() == 1


def test_reinvite_without_token_is_rejected(admin_client, world, admin_engine):
    email = f"pending-{world.suffix}@example.com"
    _invite(admin_client, world, email)
    with admin_engine.connect() as conn:
        uid = conn.execute(text("select id from users where email = :e"), {"e": email}).scalar_one()
    mid = _membership_id(admin_engine, world.org_a, uid)

    def invites():
        with admin_engine.connect() as conn:
            return conn.execute(
                text("select id, used_at from invites where user_id = :u order by created_at"), {"u": uid}
            ).all()

    before = invites()
    _assert_csrf_rejected(admin_client.post(f"/admin/members/{mid}/reinvite"))
    assert invites() == before


def test_accept_invite_without_token_is_rejected(admin_client, app, world, admin_engine):
    email = f"accept-{world.suffix}@example.com"
    token = _invite(admin_client, world, email)
    newcomer = app.test_client()
    assert newcomer.get(f"/invite/{token}").status_code == 200
    response = newcomer.post(
        f"/invite/{token}", data={"password": "a brand new password", "confirm": "a brand new password"}
    )
    _assert_csrf_rejected(response)
    with admin_engine.connect() as conn:
        assert conn.execute(text("select password_hash from users where email = :e"), {"e": email}).scalar_one() is None
        assert (
            conn.execute(
                text("select m.accepted_at from memberships m join users u on u.id = m.user_id where u.email = :e"),
                {"e": email},
            ).scalar_one()
            is None
        )
    assert newcomer.get(f"/invite/{token}").status_code == 200  # still usable
    assert newcomer.get("/").status_code in (302, 303)


def test_joining_with_an_existing_account_without_token_is_rejected(admin_client, app, world, admin_engine):
    """The join page signs an existing account in: without the token, nothing is accepted and nobody is signed in."""
    token = _invite(admin_client, world, world.admin_b.email)
    person = app.test_client()
    assert "Join Org A" in person.get(f"/invite/{token}").get_data(as_text=True)
    _assert_csrf_rejected(person.post(f"/invite/{token}", data={"password": PASSWORD}))
    with admin_engine.connect() as conn:
        assert (
            conn.execute(
                text("select accepted_at from memberships where org_id = :o and user_id = :u"),
                {"o": world.org_a, "u": world.admin_b.id},
            ).scalar_one()
            is None
        )
        assert (
            conn.execute(
                text("select used_at from invites where org_id = :o and user_id = :u"),
                {"o": world.org_a, "u": world.admin_b.id},
            ).scalar_one()
            is None
        )
    assert person.get("/").status_code in (302, 303)
    assert person.get(f"/invite/{token}").status_code == 200  # still usable


def test_create_contractor_without_token_is_rejected(admin_client, world, admin_engine):
    email = f"csrf-contractor-{world.suffix}@example.com"
    _assert_csrf_rejected(admin_client.post("/admin/contractors", data={"legal_name": "Sneaky LLC", "email": email}))
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from contractors where email = :e"), {"e": email}).scalar_one() == 0


def test_edit_contractor_without_token_is_rejected(admin_client, world, admin_engine):
    response = admin_client.post(
        f"/admin/contractors/{world.contractor_x}",
        data={"legal_name": "Renamed", "email": f"renamed-{world.suffix}@example.com", "payout_details": "IBAN evil"},
    )
    _assert_csrf_rejected(response)
    with admin_engine.connect() as conn:
        row = conn.execute(
            text("select legal_name, email, payout_details from contractors where id = :id"), {"id": world.contractor_x}
        ).one()
    assert row.legal_name == f"Contractor X {world.suffix}"
    assert row.email == f"x-{world.suffix}@example.com"
    assert row.payout_details is None


def test_invite_contractor_user_without_token_is_rejected(admin_client, world, admin_engine):
    email = f"csrf-cuser-{world.suffix}@example.com"
    response = admin_client.post(f"/admin/contractors/{world.contractor_x}/users", data={"email": email, "name": "Eve"})
    _assert_csrf_rejected(response)
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from users where email = :e"), {"e": email}).scalar_one() == 0


def test_audit_verify_without_token_is_rejected(admin_client):
    _assert_csrf_rejected(admin_client.post("/audit/verify", headers=HTMX))


# --- the header htmx sends ---------------------------------------------------------------------


def _body_hx_headers(page_html: str) -> dict:
    body = re.search(r"<body\b[^>]*>", page_html)
    assert body, "page has a <body>"
    attr = re.search(r"hx-headers='([^']*)'", body.group(0))
    assert attr, "hx-headers on <body>"
    return json.loads(html_lib.unescape(attr.group(1)))


def test_base_template_puts_token_in_hx_headers_on_body(admin_client):
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    headers = _body_hx_headers(page)
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert headers["X-CSRFToken"] == form_token


def test_anonymous_pages_carry_hx_headers_too(client):
    headers = _body_hx_headers(client.get("/login").get_data(as_text=True))
    assert headers["X-CSRFToken"]


def test_post_with_token_in_x_csrftoken_header_is_accepted(admin_client, world, admin_engine):
    token = _body_hx_headers(admin_client.get("/admin/settings").get_data(as_text=True))["X-CSRFToken"]
    response = admin_client.post(
        "/admin/settings",
        headers={**HTMX, "X-CSRFToken": token},
        data={
            "name": f"Via htmx {world.suffix}",
            "default_currency": "GBP",
            "default_retainage": "5",
            "payment_terms_days": "14",
            "partial_policy": "split",
            "evidence_max_files": "20",
            "evidence_max_file_mb": "25",
            "evidence_max_submission_mb": "100",
        },
    )
    assert response.status_code == 303
    org = org_row(admin_engine, world.org_a)
    assert org.name == f"Via htmx {world.suffix}"
    assert (org.default_currency, org.default_retainage_bps, org.payment_terms_days, org.partial_policy) == (
        "GBP",
        500,
        14,
        "split",
    )


def test_audit_verify_with_header_token_is_accepted(admin_client):
    token = _body_hx_headers(admin_client.get("/audit/").get_data(as_text=True))["X-CSRFToken"]
    response = admin_client.post("/audit/verify", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert "The chain is intact" in response.get_data(as_text=True)


def test_logout_with_header_token_is_accepted(admin_client):
    token = _body_hx_headers(admin_client.get("/").get_data(as_text=True))["X-CSRFToken"]
    response = admin_client.post("/logout", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 303
    assert admin_client.get("/").status_code in (302, 303)


def test_wrong_header_token_is_rejected(admin_client, world, admin_engine):
    before = org_row(admin_engine, world.org_a)
    response = admin_client.post(
        "/admin/settings",
        headers={**HTMX, "X-CSRFToken": "not-a-token"},
        data={
            "name": "Nope",
            "default_currency": "USD",
            "default_retainage": "10",
            "payment_terms_days": "30",
            "partial_policy": "route_back",
        },
    )
    _assert_csrf_rejected(response)
    assert org_row(admin_engine, world.org_a) == before
