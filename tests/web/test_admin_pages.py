"""Admin pages as an admin uses them: settings, users and invitations, contractors, the audit trail."""
from __future__ import annotations

import hashlib
import html as html_lib
import re

import pytest
from sqlalchemy import text

from conftest import csrf_token

HTMX = {"HX-Request": "true"}
NEW_PASSWORD = "a long enough password"


@pytest.fixture
def admin(client, world, login):
    assert login(client, world.admin).status_code == 303
    return client


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<small id="{field}-error" class="field-error">([^<]*)</small>', html)
    return html_lib.unescape(match.group(1)) if match else None


def input_value(html: str, field: str) -> str | None:
    tag = re.search(rf'<input\b[^>]*\bname="{field}"[^>]*>', html)
    if not tag:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html_lib.unescape(value.group(1)) if value else ""


def selected_option(html: str, field: str) -> str | None:
    select = re.search(rf'<select\b[^>]*\bname="{field}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {field}"
    for option in re.findall(r"<option\b[^>]*>", select.group(1)):
        if re.search(r"\bselected\b", option):
            return re.search(r'value="([^"]*)"', option).group(1)
    return None


def checked_radio(html: str, field: str) -> str | None:
    for tag in re.findall(rf'<input\b[^>]*\bname="{field}"[^>]*>', html):
        if re.search(r"\bchecked\b", tag):
            return re.search(r'value="([^"]*)"', tag).group(1)
    return None


def flashes(html: str) -> list[str]:
    return [html_lib.unescape(m) for m in re.findall(r'<p class="flash flash-[a-z]+"[^>]*>([^<]*)</p>', html)]


def invite_token(html: str) -> str:
    match = re.search(r'id="invite-link" type="text" readonly value="([^"]+)"', html)
    assert match, "one-time link shown"
    link = html_lib.unescape(match.group(1))
    path = re.search(r"/invite/([A-Za-z0-9_\-]+)$", link)
    assert path, link
    return path.group(1)


def org_row(admin_engine, org_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select name, default_currency, default_retainage_bps, payment_terms_days, partial_policy "
                "from organizations where id = :id"
            ),
            {"id": org_id},
        ).one()


def member_row(html: str, email: str) -> str:
    for row in re.findall(r"<tr>.*?</tr>", html, re.S):
        if f"<td>{email}</td>" in row:
            return row
    raise AssertionError(f"no row for {email}")


# --- settings ------------------------------------------------------------------------------------


def _settings(**overrides):
    data = {"name": "Acme Renamed", "default_currency": "EUR", "default_retainage": "7.5", "payment_terms_days": "45",
            "partial_policy": "split"}
    data.update(overrides)
    return data


def test_settings_shows_current_values(admin, world):
    response = admin.get("/admin/settings")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert input_value(html, "name") == f"Org A {world.suffix}"
    assert selected_option(html, "default_currency") == "USD"
    assert input_value(html, "default_retainage") == "10"
    assert input_value(html, "payment_terms_days") == "30"
    assert checked_radio(html, "partial_policy") == "route_back"


def test_settings_valid_post_saves(admin, world, admin_engine):
    name = f"Acme Renamed {world.suffix}"
    response = admin.post("/admin/settings", data={**_settings(name=f"  {name}  "), "csrf_token": csrf_token(admin, "/admin/settings")})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/settings"
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert "Settings saved." in flashes(page)
    assert org_row(admin_engine, world.org_a) == (name, "EUR", 750, 45, "split")
    # and the form shows the stored values
    assert input_value(page, "name") == name
    assert selected_option(page, "default_currency") == "EUR"
    assert input_value(page, "default_retainage") == "7.5"
    assert input_value(page, "payment_terms_days") == "45"
    assert checked_radio(page, "partial_policy") == "split"


@pytest.mark.parametrize(
    "retainage, bps", [("0", 0), ("100", 10000), ("12.25", 1225), ("0.5%", 50), (" 3 ", 300)]
)
def test_settings_accepts_percent_formats(admin, world, admin_engine, retainage, bps):
    response = admin.post(
        "/admin/settings", data={**_settings(default_retainage=retainage), "csrf_token": csrf_token(admin, "/admin/settings")}
    )
    assert response.status_code == 303
    assert org_row(admin_engine, world.org_a).default_retainage_bps == bps


@pytest.mark.parametrize("terms", ["0", "365"])
def test_settings_accepts_terms_bounds(admin, world, admin_engine, terms):
    response = admin.post(
        "/admin/settings", data={**_settings(payment_terms_days=terms), "csrf_token": csrf_token(admin, "/admin/settings")}
    )
    assert response.status_code == 303
    assert org_row(admin_engine, world.org_a).payment_terms_days == int(terms)


def test_settings_change_is_audited_with_before_and_after(admin, world, admin_engine):
    admin.post("/admin/settings", data={**_settings(payment_terms_days="60"), "csrf_token": csrf_token(admin, "/admin/settings")})
    with admin_engine.connect() as conn:
        data = conn.execute(
            text(
                "select data from audit_events where org_id = :o and action = 'organization.settings_changed' "
                "order by seq desc limit 1"
            ),
            {"o": world.org_a},
        ).scalar_one()
    assert data["payment_terms_days"] == {"before": 30, "after": 60}
    assert data["default_retainage_bps"] == {"before": 1000, "after": 750}


INVALID_SETTINGS = [
    ({"name": ""}, "name", "Enter the organization's name."),
    ({"name": "   "}, "name", "Enter the organization's name."),
    ({"name": "n" * 201}, "name", "under 200 characters"),
    ({"default_retainage": "abc"}, "default_retainage", "Enter a percentage"),
    ({"default_retainage": "150"}, "default_retainage", "cannot be more than 100"),
    ({"default_retainage": "12.345"}, "default_retainage", "at most two decimals"),
    ({"default_retainage": "-5"}, "default_retainage", "Enter a percentage"),
    ({"default_retainage": ""}, "default_retainage", "Enter a percentage"),
    ({"payment_terms_days": "-1"}, "payment_terms_days", "whole number of days"),
    ({"payment_terms_days": "400"}, "payment_terms_days", "between 0 and 365"),
    ({"payment_terms_days": "x"}, "payment_terms_days", "whole number of days"),
    ({"payment_terms_days": "1.5"}, "payment_terms_days", "whole number of days"),
    ({"default_currency": "ZZZ"}, "default_currency", "ISO 4217"),
]


@pytest.mark.parametrize("overrides, field, message", INVALID_SETTINGS, ids=[f"{f}={list(o.values())[0][:8]!r}" for o, f, _ in INVALID_SETTINGS])
def test_settings_invalid_input_is_422_at_the_field_and_keeps_typed_values(admin, world, admin_engine, overrides, field, message):
    before = org_row(admin_engine, world.org_a)
    typed = _settings(name=f"Typed Name {world.suffix}", default_retainage="8", payment_terms_days="21")
    typed.update(overrides)
    response = admin.post("/admin/settings", data={**typed, "csrf_token": csrf_token(admin, "/admin/settings")})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = field_error(html, field)
    assert error is not None, f"no message at {field}"
    assert message in error
    # the message is at that field only
    for other in ("name", "default_currency", "default_retainage", "payment_terms_days"):
        if other != field:
            assert field_error(html, other) is None, other
    # what the user typed is still in the form
    assert input_value(html, "name") == typed["name"]
    assert input_value(html, "default_retainage") == typed["default_retainage"]
    assert input_value(html, "payment_terms_days") == typed["payment_terms_days"]
    assert checked_radio(html, "partial_policy") == "split"
    if field != "default_currency":
        assert selected_option(html, "default_currency") == "EUR"
    assert "Settings saved." not in html
    # nothing was stored
    assert org_row(admin_engine, world.org_a) == before


def test_settings_unknown_partial_policy_is_422(admin, world, admin_engine):
    before = org_row(admin_engine, world.org_a)
    response = admin.post(
        "/admin/settings", data={**_settings(partial_policy="pay_everything"), "csrf_token": csrf_token(admin, "/admin/settings")}
    )
    assert response.status_code == 422
    assert "Choose how partial approvals are handled." in response.get_data(as_text=True)
    assert org_row(admin_engine, world.org_a) == before


def test_settings_invalid_htmx_post_returns_the_form_fragment(admin, world, admin_engine):
    before = org_row(admin_engine, world.org_a)
    token = csrf_token(admin, "/admin/settings")
    response = admin.post(
        "/admin/settings", headers={**HTMX, "X-CSRFToken": token}, data=_settings(payment_terms_days="400")
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<body" not in html and 'id="settings-form"' in html
    assert "between 0 and 365" in field_error(html, "payment_terms_days")
    assert org_row(admin_engine, world.org_a) == before


# --- members and invitations ---------------------------------------------------------------------


def _invite(client, **data):
    token = csrf_token(client, "/admin/members")
    return client.post("/admin/members", data={"role": "owner", "contractor_id": "", **data, "csrf_token": token})


def test_members_page_lists_members_with_roles(admin, world):
    response = admin.get("/admin/members")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    expected = [
        (world.admin, "badge-admin\">Admin"),
        (world.owner, "badge-owner\">Project owner"),
        (world.finance, "badge-finance\">Finance"),
        (world.contractor_x_user, "badge-contractor\">Contractor"),
        (world.contractor_y_user, "badge-contractor\">Contractor"),
    ]
    for person, badge in expected:
        row = member_row(html, person.email)
        assert person.name in row
        assert badge in row, person.name
        assert "Invited" not in row  # everybody here has a password
    assert f"Contractor X {world.suffix}" in member_row(html, world.contractor_x_user.email)
    assert f"Contractor Y {world.suffix}" in member_row(html, world.contractor_y_user.email)
    assert "(you)" in member_row(html, world.admin.email)
    assert "(you)" not in member_row(html, world.owner.email)
    # the signed-in admin signed in just now; the others never did
    assert "Last sign-in" in member_row(html, world.admin.email)
    assert "Never signed in" in member_row(html, world.owner.email)


def _followed(client, response, expected_location):
    """A successful POST answers 303 (so a reload does not re-post); the next page shows the result."""
    assert response.status_code == 303
    assert response.headers["Location"] == expected_location
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _invite_link_token(client, **data) -> str:
    return invite_token(_followed(client, _invite(client, **data), "/admin/members"))


def test_invite_new_person_shows_one_time_link_and_invited_badge(admin, world, admin_engine):
    email = f"newbie-{world.suffix}@example.com"
    html = _followed(admin, _invite(admin, email=email, name="Nina Newbie", role="finance"), "/admin/members")
    token = invite_token(html)
    assert f"{email} is invited." in " ".join(flashes(html))
    row = member_row(html, email)
    assert "Invited" in row and 'badge-finance">Finance' in row
    with admin_engine.connect() as conn:
        user = conn.execute(text("select id, name, password_hash from users where email = :e"), {"e": email}).one()
        role = conn.execute(
            text("select role from memberships where org_id = :o and user_id = :u"), {"o": world.org_a, "u": user.id}
        ).scalar_one()
        stored = conn.execute(text("select token_hash from invites where user_id = :u and used_at is null"), {"u": user.id}).scalar_one()
    assert user.name == "Nina Newbie" and user.password_hash is None
    assert role == "finance"
    assert stored == hashlib.sha256(token.encode()).hexdigest()  # only the hash is stored
    # the link is shown once: reloading the members page does not show it again
    again = admin.get("/admin/members").get_data(as_text=True)
    assert token not in again and 'id="invite-link"' not in again
    assert "Invited" in member_row(again, email)


def test_invite_link_sets_password_and_signs_in(admin, app, world, admin_engine):
    email = f"joiner-{world.suffix}@example.com"
    token = _invite_link_token(admin, email=email, name="Jo Joiner")
    newcomer = app.test_client()

    page = newcomer.get(f"/invite/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Set your password" in html and email in html and f"Org A {world.suffix}" in html
    form_token = csrf_token(newcomer, f"/invite/{token}")

    short = newcomer.post(f"/invite/{token}", data={"password": "short", "confirm": "short", "csrf_token": form_token})
    assert short.status_code == 422
    assert field_error(short.get_data(as_text=True), "password") == "Use at least 10 characters."

    mismatch = newcomer.post(
        f"/invite/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!", "csrf_token": form_token}
    )
    assert mismatch.status_code == 422
    mismatch_html = mismatch.get_data(as_text=True)
    assert field_error(mismatch_html, "confirm") == "The two passwords do not match."
    assert field_error(mismatch_html, "password") is None
    assert NEW_PASSWORD not in mismatch_html  # passwords are not echoed back

    with admin_engine.connect() as conn:
        assert conn.execute(text("select password_hash from users where email = :e"), {"e": email}).scalar_one() is None

    ok = newcomer.post(f"/invite/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": form_token})
    assert ok.status_code == 303
    assert ok.headers["Location"] == "/"
    home = newcomer.get("/")
    assert home.status_code == 200
    home_html = home.get_data(as_text=True)
    assert "Welcome, Jo Joiner" in home_html

    # the link works once
    used = app.test_client().get(f"/invite/{token}")
    assert used.status_code == 404
    assert "no longer works" in used.get_data(as_text=True)
    replayer = app.test_client()
    replay = replayer.post(
        f"/invite/{token}",
        data={"password": "another password!", "confirm": "another password!", "csrf_token": csrf_token(replayer, "/login")},
    )
    assert replay.status_code == 404
    assert replayer.get("/").status_code in (302, 303)  # not signed in by a used link

    # the new password signs in; the badge is gone
    signer = app.test_client()
    login_token = csrf_token(signer)
    assert signer.post("/login", data={"email": email, "password": NEW_PASSWORD, "csrf_token": login_token}).status_code == 303
    assert "Invited" not in member_row(admin.get("/admin/members").get_data(as_text=True), email)


def test_accepting_an_invite_confirms_the_password_was_set(admin, app, world):
    token = _invite_link_token(admin, email=f"confirm-{world.suffix}@example.com", name="Cora Confirm")
    newcomer = app.test_client()
    form_token = csrf_token(newcomer, f"/invite/{token}")
    ok = newcomer.post(f"/invite/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": form_token})
    assert ok.status_code == 303
    home_html = newcomer.get(ok.headers["Location"]).get_data(as_text=True)
    assert "Welcome, Cora Confirm" in home_html
    assert f"Welcome to Org A {world.suffix}. Your password is set." in flashes(home_html)


def test_unknown_invite_token_is_404(client):
    response = client.get("/invite/this-is-not-a-token")
    assert response.status_code == 404
    assert "no longer works" in response.get_data(as_text=True)


def test_inviting_an_existing_member_is_422(admin, world, admin_engine):
    with admin_engine.connect() as conn:
        before = conn.execute(text("select count(*) from memberships where org_id = :o"), {"o": world.org_a}).scalar_one()
    response = _invite(admin, email=world.owner.email.upper(), name="Omar Again", role="admin")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "already a member" in field_error(html, "email")
    assert input_value(html, "name") == "Omar Again"  # typed values kept
    assert 'id="invite-link"' not in html
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from memberships where org_id = :o"), {"o": world.org_a}).scalar_one() == before
        assert conn.execute(
            text("select role from memberships where org_id = :o and user_id = :u"), {"o": world.org_a, "u": world.owner.id}
        ).scalar_one() == "owner"


def test_inviting_a_person_with_an_account_elsewhere_adds_them_without_link(admin, world, admin_engine):
    response = _invite(admin, email=world.admin_b.email, name="Bea B", role="owner")
    assert response.status_code == 303
    html = admin.get("/admin/members").get_data(as_text=True)
    assert any("already has a backoffice account" in f for f in flashes(html))
    row = member_row(html, world.admin_b.email)
    assert 'badge-owner">Project owner' in row and "Invited" not in row
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from invites where user_id = :u"), {"u": world.admin_b.id}).scalar_one() == 0


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "not-an-email", "name": "Some One"}, "email", "valid email"),
        ({"email": "", "name": "Some One"}, "email", "Enter an email"),
        ({"email": "someone-{s}@example.com", "name": ""}, "name", "Enter the name"),
        ({"email": "someone-{s}@example.com", "name": "Some One", "role": "contractor"}, "contractor_id", "Choose which contractor"),
        ({"email": "someone-{s}@example.com", "name": "Some One", "role": "superuser"}, "role", "Choose a role"),
    ],
)
def test_invite_invalid_input_is_422_at_the_field(admin, world, admin_engine, data, field, message):
    data = {k: v.format(s=world.suffix) for k, v in data.items()}
    response = _invite(admin, **data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = field_error(html, field)
    assert error and message in error
    with admin_engine.connect() as conn:
        assert conn.execute(
            text("select count(*) from users where email = :e"), {"e": f"someone-{world.suffix}@example.com"}
        ).scalar_one() == 0


def test_invite_contractor_user_from_members_page(admin, world, admin_engine):
    email = f"cx2-{world.suffix}@example.com"
    _invite_link_token(admin, email=email, name="Xavier Two", role="contractor", contractor_id=str(world.contractor_x))
    with admin_engine.connect() as conn:
        row = conn.execute(
            text("select m.role, m.contractor_id from memberships m join users u on u.id = m.user_id where u.email = :e"),
            {"e": email},
        ).one()
    assert (row.role, row.contractor_id) == ("contractor", world.contractor_x)


def _membership_id(admin_engine, org_id, user_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id from memberships where org_id = :o and user_id = :u"), {"o": org_id, "u": user_id}
        ).scalar_one()


def _role_of(admin_engine, membership_id):
    with admin_engine.connect() as conn:
        return conn.execute(text("select role, contractor_id from memberships where id = :id"), {"id": membership_id}).one()


def test_change_role(admin, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.owner.id)
    response = admin.post(f"/admin/members/{mid}/role", data={"role": "finance", "contractor_id": "", "csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 303
    assert "Role updated." in flashes(admin.get("/admin/members").get_data(as_text=True))
    assert _role_of(admin_engine, mid) == ("finance", None)


def test_change_role_to_contractor_needs_a_contractor(admin, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.owner.id)
    response = admin.post(f"/admin/members/{mid}/role", data={"role": "contractor", "contractor_id": "", "csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 422
    assert "Choose which contractor this person works for." in response.get_data(as_text=True)
    assert _role_of(admin_engine, mid) == ("owner", None)


def test_only_admin_cannot_be_demoted_or_removed(admin, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.admin.id)
    token = csrf_token(admin, "/admin/members")
    demote = admin.post(f"/admin/members/{mid}/role", data={"role": "owner", "csrf_token": token})
    assert demote.status_code == 422
    assert "only admin" in demote.get_data(as_text=True)
    remove = admin.post(f"/admin/members/{mid}/remove", data={"csrf_token": token})
    assert remove.status_code == 422
    assert _role_of(admin_engine, mid) == ("admin", None)


def test_remove_member(admin, app, world, admin_engine, login):
    mid = _membership_id(admin_engine, world.org_a, world.finance.id)
    response = admin.post(f"/admin/members/{mid}/remove", data={"csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 303
    html = admin.get("/admin/members").get_data(as_text=True)
    assert "Member removed from this organization." in flashes(html)
    assert world.finance.email not in html
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from memberships where id = :id"), {"id": mid}).scalar_one() == 0


def test_reinvite_issues_a_new_link_and_retires_the_old(admin, app, world, admin_engine):
    email = f"again-{world.suffix}@example.com"
    first = _invite_link_token(admin, email=email, name="Alex Again")
    with admin_engine.connect() as conn:
        uid = conn.execute(text("select id from users where email = :e"), {"e": email}).scalar_one()
    mid = _membership_id(admin_engine, world.org_a, uid)
    response = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
    html = _followed(admin, response, "/admin/members")
    assert "A new link was created; earlier links no longer work. It expires in 72 hours." in flashes(html)
    second = invite_token(html)
    assert second != first
    anon = app.test_client()
    assert anon.get(f"/invite/{first}").status_code == 404
    assert anon.get(f"/invite/{second}").status_code == 200


def test_reinvite_for_someone_with_a_password_is_422(admin, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.owner.id)
    response = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 422
    assert "has already set a password" in response.get_data(as_text=True)
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from invites where user_id = :u"), {"u": world.owner.id}).scalar_one() == 0


# --- contractors ---------------------------------------------------------------------------------


def _contractor_by_email(admin_engine, org_id, email):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id, legal_name, email, ap_vendor_id, payout_details from contractors where org_id = :o and lower(email) = lower(:e)"),
            {"o": org_id, "e": email},
        ).all()


def test_contractors_page_lists_contractors(admin, world):
    response = admin.get("/admin/contractors")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<a href="/admin/contractors/{world.contractor_x}">Contractor X {world.suffix}</a>' in html
    assert f'<a href="/admin/contractors/{world.contractor_y}">Contractor Y {world.suffix}</a>' in html
    assert f"VX-{world.suffix}" in html


def test_add_contractor_redirects_to_its_page(admin, world, admin_engine):
    email = f"billing-{world.suffix}@example.com"
    response = admin.post(
        "/admin/contractors",
        data={"legal_name": f"New Build {world.suffix}", "email": email, "ap_vendor_id": f"NB-{world.suffix}",
              "payout_details": "ACH 1234", "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 303
    rows = _contractor_by_email(admin_engine, world.org_a, email)
    assert len(rows) == 1
    assert response.headers["Location"] == f"/admin/contractors/{rows[0].id}"
    assert (rows[0].legal_name, rows[0].ap_vendor_id, rows[0].payout_details) == (f"New Build {world.suffix}", f"NB-{world.suffix}", "ACH 1234")
    page = admin.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"<h1>New Build {world.suffix}</h1>" in html
    assert f"New Build {world.suffix} added." in " ".join(flashes(html))
    assert input_value(html, "email") == email


def test_add_contractor_with_duplicate_email_is_422_at_email(admin, world, admin_engine):
    with admin_engine.connect() as conn:
        before = conn.execute(text("select count(*) from contractors where org_id = :o"), {"o": world.org_a}).scalar_one()
    response = admin.post(
        "/admin/contractors",
        data={"legal_name": f"Copycat {world.suffix}", "email": f"X-{world.suffix}@EXAMPLE.com",
              "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "email") == f"Contractor X {world.suffix} already uses this email."
    assert field_error(html, "legal_name") is None
    assert input_value(html, "legal_name") == f"Copycat {world.suffix}"
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from contractors where org_id = :o"), {"o": world.org_a}).scalar_one() == before


def test_same_contractor_email_is_fine_in_another_org(admin, world, admin_engine):
    response = admin.post(
        "/admin/contractors",
        data={"legal_name": f"Zed Twin {world.suffix}", "email": f"z-{world.suffix}@example.com",
              "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 303
    assert len(_contractor_by_email(admin_engine, world.org_a, f"z-{world.suffix}@example.com")) == 1


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"legal_name": "", "email": "ok-{s}@example.com"}, "legal_name", "Enter the legal name."),
        ({"legal_name": "Fine Co", "email": "nope"}, "email", "valid email"),
        ({"legal_name": "Fine Co", "email": "ok-{s}@example.com", "ap_vendor_id": "VX-{s}"}, "ap_vendor_id", "already has this AP vendor id"),
    ],
)
def test_add_contractor_invalid_input_is_422_at_the_field(admin, world, admin_engine, data, field, message):
    data = {k: v.format(s=world.suffix) for k, v in data.items()}
    response = admin.post("/admin/contractors", data={**data, "csrf_token": csrf_token(admin, "/admin/contractors")})
    assert response.status_code == 422
    error = field_error(response.get_data(as_text=True), field)
    assert error and message in error
    assert _contractor_by_email(admin_engine, world.org_a, f"ok-{world.suffix}@example.com") == []


def test_edit_contractor(admin, world, admin_engine):
    page = admin.get(f"/admin/contractors/{world.contractor_y}").get_data(as_text=True)
    assert input_value(page, "legal_name") == f"Contractor Y {world.suffix}"
    assert input_value(page, "email") == f"y-{world.suffix}@example.com"
    new_email = f"y-new-{world.suffix}@example.com"
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}",
        data={"legal_name": f"Contractor Y Renamed {world.suffix}", "email": new_email, "ap_vendor_id": f"VY-{world.suffix}",
              "payout_details": "SEPA 9912", "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/contractors/{world.contractor_y}"
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Contractor saved." in flashes(html)
    assert input_value(html, "legal_name") == f"Contractor Y Renamed {world.suffix}"
    rows = _contractor_by_email(admin_engine, world.org_a, new_email)
    assert [(r.id, r.legal_name, r.ap_vendor_id, r.payout_details) for r in rows] == [
        (world.contractor_y, f"Contractor Y Renamed {world.suffix}", f"VY-{world.suffix}", "SEPA 9912")
    ]


def test_edit_contractor_keeping_its_own_email_is_fine(admin, world, admin_engine):
    response = admin.post(
        f"/admin/contractors/{world.contractor_x}",
        data={"legal_name": f"Contractor X {world.suffix}", "email": f"x-{world.suffix}@example.com",
              "ap_vendor_id": f"VX-{world.suffix}", "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 303


def test_edit_contractor_to_anothers_email_is_422(admin, world, admin_engine):
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}",
        data={"legal_name": "Taken", "email": f"x-{world.suffix}@example.com", "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "email") == f"Contractor X {world.suffix} already uses this email."
    assert input_value(html, "legal_name") == "Taken"
    assert _contractor_by_email(admin_engine, world.org_a, f"y-{world.suffix}@example.com")[0].legal_name == f"Contractor Y {world.suffix}"


def test_invite_contractor_user_shows_link(admin, app, world, admin_engine):
    email = f"yuser2-{world.suffix}@example.com"
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}/users",
        data={"email": email, "name": "Yolanda Two", "csrf_token": csrf_token(admin, f"/admin/contractors/{world.contractor_y}")},
    )
    html = _followed(admin, response, f"/admin/contractors/{world.contractor_y}")
    token = invite_token(html)
    assert f"{email} is invited for Contractor Y {world.suffix}." in " ".join(flashes(html))
    assert "Yolanda Two" in html and "Invited" in html
    with admin_engine.connect() as conn:
        row = conn.execute(
            text("select m.role, m.contractor_id from memberships m join users u on u.id = m.user_id where u.email = :e and m.org_id = :o"),
            {"e": email, "o": world.org_a},
        ).one()
    assert (row.role, row.contractor_id) == ("contractor", world.contractor_y)
    assert app.test_client().get(f"/invite/{token}").status_code == 200


def test_invite_contractor_user_invalid_is_422(admin, world):
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}/users",
        data={"email": "broken", "name": "Yolanda Two", "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "valid email" in field_error(html, "email")
    assert input_value(html, "name") == "Yolanda Two"


def test_contractor_page_lists_its_users_only(admin, world):
    html = admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True)
    assert world.contractor_x_user.email in html
    assert world.contractor_y_user.email not in html


# --- audit trail ---------------------------------------------------------------------------------


def _audit_rows(html: str) -> list[tuple[int, str]]:
    return [(int(seq), action) for seq, action in re.findall(r"<tr>\s*<td>(\d+)</td>.*?<code>([^<]+)</code>", html, re.S)]


def test_audit_lists_events_newest_first(admin, world, admin_engine):
    admin.post("/admin/settings", data={**_settings(), "csrf_token": csrf_token(admin, "/admin/settings")})
    admin.post(
        "/admin/contractors",
        data={"legal_name": f"Audit Co {world.suffix}", "email": f"audit-{world.suffix}@example.com",
              "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    response = admin.get("/audit/")
    assert response.status_code == 200
    rows = _audit_rows(response.get_data(as_text=True))
    seqs = [seq for seq, _ in rows]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    assert [a for _, a in rows[:3]] == ["contractor.created", "organization.settings_changed", "auth.signed_in"]
    with admin_engine.connect() as conn:
        db = conn.execute(
            text("select seq, action from audit_events where org_id = :o order by seq desc"), {"o": world.org_a}
        ).all()
    assert rows == [(r.seq, r.action) for r in db]  # exactly this org's events
    assert "organization.created" in [a for _, a in rows]  # the oldest ones too


def test_verify_the_chain(admin, world, admin_engine):
    page = admin.get("/audit/").get_data(as_text=True)
    assert "Verify the chain" in page
    token = re.search(r"hx-headers='([^']*)'", page).group(1)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html_lib.unescape(token)).group(1)
    response = admin.post("/audit/verify", headers={**HTMX, "HX-Target": "verify-result", "X-CSRFToken": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<body" not in html  # a fragment for the #verify-result target
    with admin_engine.connect() as conn:
        count = conn.execute(text("select count(*) from audit_events where org_id = :o"), {"o": world.org_a}).scalar_one()
    assert f"The chain is intact: {count} events checked" in html


def test_verify_without_javascript_shows_the_whole_page(admin, world):
    response = admin.post("/audit/verify", data={"csrf_token": csrf_token(admin, "/audit/")})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<body" in html and "Audit trail" in html
    assert "The chain is intact" in html
    assert "auth.signed_in" in html  # the events are listed as well
