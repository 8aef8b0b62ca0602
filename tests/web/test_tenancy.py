"""Tenants and roles through the web: another organization's records look missing (404), pages a
role may not use answer 403, and contractors see only their own contractor."""

from __future__ import annotations

import uuid

import pytest
from kit.web import csrf_token
from sqlalchemy import text

ADMIN_PAGES = ["/admin/settings", "/admin/members", "/admin/contractors"]


def _membership(admin_engine, org_id, user_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id, role, contractor_id from memberships where org_id = :o and user_id = :u"),
            {"o": org_id, "u": user_id},
        ).one()


def _contractor(admin_engine, contractor_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select legal_name, email, ap_vendor_id, payout_details from contractors where id = :id"),
            {"id": contractor_id},
        ).one()


def _signed_in(app, login, person):
    c = app.test_client()
    assert login(c, person).status_code == 303
    return c


# --- another organization's ids ----------------------------------------------------------------


def test_admin_cannot_open_other_orgs_contractor(app, world, login):
    c = _signed_in(app, login, world.admin)
    response = c.get(f"/admin/contractors/{world.contractor_z}")
    assert response.status_code == 404
    assert f"Contractor Z {world.suffix}" not in response.get_data(as_text=True)
    # the same page for an own contractor works, so the 404 is about the tenant
    assert c.get(f"/admin/contractors/{world.contractor_x}").status_code == 200


def test_admin_cannot_edit_other_orgs_contractor(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    before = _contractor(admin_engine, world.contractor_z)
    response = c.post(
        f"/admin/contractors/{world.contractor_z}",
        data={
            "legal_name": "Taken Over",
            "email": f"taken-{world.suffix}@example.com",
            "payout_details": "IBAN evil",
            "csrf_token": csrf_token(c, "/admin/contractors"),
        },
    )
    assert response.status_code == 404
    assert _contractor(admin_engine, world.contractor_z) == before


def test_admin_cannot_invite_user_for_other_orgs_contractor(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    email = f"cross-{world.suffix}@example.com"
    response = c.post(
        f"/admin/contractors/{world.contractor_z}/users",
        data={"email": email, "name": "Cross Tenant", "csrf_token": csrf_token(c, "/admin/contractors")},
    )
    assert response.status_code == 404
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from users where email = :e"), {"e": email}).scalar_one() == 0


def test_admin_cannot_invite_member_tied_to_other_orgs_contractor(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    email = f"cross-member-{world.suffix}@example.com"
    response = c.post(
        "/admin/members",
        data={
            "email": email,
            "name": "Cross Member",
            "role": "contractor",
            "contractor_id": str(world.contractor_z),
            "csrf_token": csrf_token(c, "/admin/members"),
        },
    )
    assert response.status_code == 422
    with admin_engine.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from memberships m join users u on u.id = m.user_id where u.email = :e"),
                {"e": email},
            ).scalar_one()
            == 0
        )


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
def test_malformed_contractor_id_is_404(app, world, login, bad_id):
    c = _signed_in(app, login, world.admin)
    assert c.get(f"/admin/contractors/{bad_id}").status_code == 404


def test_unknown_contractor_id_is_404(app, world, login):
    c = _signed_in(app, login, world.admin)
    assert c.get(f"/admin/contractors/{uuid.uuid4()}").status_code == 404


def test_change_role_of_other_orgs_membership_is_404(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    target = _membership(admin_engine, world.org_b, world.admin_b.id)
    response = c.post(
        f"/admin/members/{target.id}/role", data={"role": "finance", "csrf_token": csrf_token(c, "/admin/members")}
    )
    assert response.status_code == 404
    assert _membership(admin_engine, world.org_b, world.admin_b.id) == target


def test_change_role_of_other_orgs_contractor_membership_is_404(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    target = _membership(admin_engine, world.org_b, world.contractor_z_user.id)
    response = c.post(
        f"/admin/members/{target.id}/role",
        data={"role": "admin", "contractor_id": "", "csrf_token": csrf_token(c, "/admin/members")},
    )
    assert response.status_code == 404
    assert _membership(admin_engine, world.org_b, world.contractor_z_user.id) == target


def test_remove_other_orgs_membership_is_404(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    target = _membership(admin_engine, world.org_b, world.contractor_z_user.id)
    response = c.post(f"/admin/members/{target.id}/remove", data={"csrf_token": csrf_token(c, "/admin/members")})
    assert response.status_code == 404
    assert _membership(admin_engine, world.org_b, world.contractor_z_user.id) == target


def test_reinvite_other_orgs_membership_is_404(app, world, login, admin_engine):
    c = _signed_in(app, login, world.admin)
    target = _membership(admin_engine, world.org_b, world.contractor_z_user.id)
    response = c.post(f"/admin/members/{target.id}/reinvite", data={"csrf_token": csrf_token(c, "/admin/members")})
    assert response.status_code == 404
    with admin_engine.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from invites where user_id = :u"), {"u": world.contractor_z_user.id}
            ).scalar_one()
            == 0
        )


@pytest.mark.parametrize("action", ["role", "remove", "reinvite"])
def test_malformed_membership_id_is_404(app, world, login, action):
    c = _signed_in(app, login, world.admin)
    response = c.post(
        f"/admin/members/nope/{action}", data={"role": "owner", "csrf_token": csrf_token(c, "/admin/members")}
    )
    assert response.status_code == 404


def test_members_page_lists_only_own_org(app, world, login):
    c = _signed_in(app, login, world.admin)
    html = c.get("/admin/members").get_data(as_text=True)
    assert world.owner.email in html and world.contractor_y_user.email in html
    assert world.admin_b.email not in html
    assert world.contractor_z_user.email not in html


def test_contractors_page_lists_only_own_org(app, world, login):
    c = _signed_in(app, login, world.admin)
    html = c.get("/admin/contractors").get_data(as_text=True)
    assert f"Contractor X {world.suffix}" in html and f"Contractor Y {world.suffix}" in html
    assert f"Contractor Z {world.suffix}" not in html


def test_audit_lists_only_own_org(app, world, login):
    c = _signed_in(app, login, world.admin_b)  # admin B signs in: an event in org B
    c_a = _signed_in(app, login, world.admin)
    html = c_a.get("/audit/").get_data(as_text=True)
    assert world.admin.email in html
    assert world.admin_b.email not in html
    assert f"Contractor Z {world.suffix}" not in html
    assert c.get("/audit/").status_code == 200


# --- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user", "contractor_y_user"])
@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/admin/contractors/{contractor_x}"])
def test_non_admins_get_403_on_admin_pages(app, world, login, who, path):
    c = _signed_in(app, login, getattr(world, who))
    response = c.get(path.format(contractor_x=world.contractor_x))
    assert response.status_code == 403
    assert "Your role in this organization does not allow this page." in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_non_admins_cannot_post_to_admin_routes(app, world, login, admin_engine, who):
    c = _signed_in(app, login, getattr(world, who))
    token = csrf_token(c, "/")
    with admin_engine.connect() as conn:
        org_before = conn.execute(
            text("select name from organizations where id = :id"), {"id": world.org_a}
        ).scalar_one()
    owner_m = _membership(admin_engine, world.org_a, world.owner.id)
    cx_before = _contractor(admin_engine, world.contractor_x)
    posts = [
        (
            "/admin/settings",
            {
                "name": "Mine now",
                "default_currency": "USD",
                "default_retainage": "10",
                "payment_terms_days": "30",
                "partial_policy": "route_back",
            },
        ),
        ("/admin/members", {"email": f"sneak-{who}-{world.suffix}@example.com", "name": "Sneak", "role": "admin"}),
        (f"/admin/members/{owner_m.id}/role", {"role": "admin"}),
        (f"/admin/members/{owner_m.id}/remove", {}),
        ("/admin/contractors", {"legal_name": "Sneak Co", "email": f"sneakco-{who}-{world.suffix}@example.com"}),
        (
            f"/admin/contractors/{world.contractor_x}",
            {"legal_name": "Renamed", "email": f"x-{world.suffix}@example.com", "payout_details": "IBAN mine"},
        ),
        (
            f"/admin/contractors/{world.contractor_x}/users",
            {"email": f"sneaku-{who}-{world.suffix}@example.com", "name": "S"},
        ),
    ]
    for path, data in posts:
        assert c.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select name from organizations where id = :id"), {"id": world.org_a}).scalar_one()
            == org_before
        )
        assert (
            conn.execute(
                text("select count(*) from users where email like :p"),
                {"p": f"sneak%-{who}-{world.suffix}@example.com"},
            ).scalar_one()
            == 0
        )
    assert _membership(admin_engine, world.org_a, world.owner.id) == owner_m
    assert _contractor(admin_engine, world.contractor_x) == cx_before


@pytest.mark.parametrize("who", ["contractor_x_user", "contractor_y_user", "owner"])
def test_contractors_and_owners_get_403_on_audit(app, world, login, who):
    c = _signed_in(app, login, getattr(world, who))
    assert c.get("/audit/").status_code == 403
    assert c.post("/audit/verify", data={"csrf_token": csrf_token(c, "/")}).status_code == 403


def test_finance_reads_the_audit_trail(app, world, login):
    c = _signed_in(app, login, world.finance)
    response = c.get("/audit/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Fiona Finance signed in" in html  # in words (issue 22)
    verify = c.post("/audit/verify", data={"csrf_token": csrf_token(c, "/audit/")}, headers={"HX-Request": "true"})
    assert verify.status_code == 200
    assert "The chain is intact" in verify.get_data(as_text=True)


def test_admin_reads_the_audit_trail(app, world, login):
    c = _signed_in(app, login, world.admin)
    assert c.get("/audit/").status_code == 200


def test_navigation_matches_role(app, world, login):
    contractor = _signed_in(app, login, world.contractor_x_user)
    html = contractor.get("/").get_data(as_text=True)
    assert 'href="/audit/"' not in html and 'href="/admin/' not in html
    finance = _signed_in(app, login, world.finance)
    html = finance.get("/").get_data(as_text=True)
    assert 'href="/audit/"' in html and 'href="/admin/' not in html


def test_contractor_x_never_sees_contractor_y(app, world, login):
    c = _signed_in(app, login, world.contractor_x_user)
    hidden = [
        f"Contractor Y {world.suffix}",
        f"y-{world.suffix}@example.com",
        world.contractor_y_user.name,
        world.contractor_y_user.email,
        str(world.contractor_y),
    ]
    paths = [
        "/",
        "/audit/",
        "/admin/settings",
        "/admin/members",
        "/admin/contractors",
        f"/admin/contractors/{world.contractor_y}",
        f"/admin/contractors/{world.contractor_x}",
        "/no/such/page",
        "/login",
    ]
    seen_any = False
    for path in paths:
        response = c.get(path, follow_redirects=True)
        html = response.get_data(as_text=True)
        seen_any = seen_any or response.status_code == 200
        for secret in hidden:
            assert secret not in html, f"{secret!r} visible on {path}"
    assert seen_any
    # htmx fragments too
    for path in ("/", "/audit/"):
        html = c.get(path, headers={"HX-Request": "true"}).get_data(as_text=True)
        for secret in hidden:
            assert secret not in html, f"{secret!r} visible on {path} (htmx)"


def test_contractor_home_shows_own_org_not_other_contractors(app, world, login):
    c = _signed_in(app, login, world.contractor_x_user)
    html = c.get("/").get_data(as_text=True)
    assert "Welcome, Xena X" in html
    assert f"Org A {world.suffix}" in html


# --- anonymous -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/admin/settings", "/admin/members", "/admin/contractors", "/admin/contractors/{cx}", "/audit/"]
)
def test_anonymous_is_redirected_to_login(client, world, path):
    response = client.get(path.format(cx=world.contractor_x))
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
    assert world.admin.email not in response.get_data(as_text=True)


def test_anonymous_post_to_protected_route_changes_nothing(client, world, admin_engine):
    with admin_engine.connect() as conn:
        before = conn.execute(text("select name from organizations where id = :id"), {"id": world.org_a}).scalar_one()
    token = csrf_token(client, "/login")
    response = client.post(
        "/admin/settings",
        data={
            "name": "Anon",
            "default_currency": "USD",
            "default_retainage": "10",
            "payment_terms_days": "30",
            "partial_policy": "route_back",
            "csrf_token": token,
        },
    )
    assert response.status_code in (302, 303, 401)
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select name from organizations where id = :id"), {"id": world.org_a}).scalar_one()
            == before
        )


def test_anonymous_org_switch_is_redirected(client, world):
    token = csrf_token(client, "/login")
    response = client.post("/orgs/switch", data={"org_id": str(world.org_a), "csrf_token": token})
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
