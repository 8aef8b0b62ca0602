"""Admin pages as an admin uses them: settings, users and roles, contractors, the audit trail.
(Invitations and accepting them: test_invitations.py.)"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.audit import kept_head, newest_events_cut
from kit.engagements import owner_query
from kit.jobs import run_jobs
from kit.money import approved_invoices, party
from kit.web import csrf_token, field_error, flashes, followed, input_value, member_row, org_row
from sqlalchemy import text

HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin(client, world, login):
    assert login(client, world.admin).status_code == 303
    return client


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


# --- settings ------------------------------------------------------------------------------------


def _settings(**overrides):
    data = {
        "name": "Acme Renamed",
        "default_currency": "EUR",
        "default_retainage": "7.5",
        "payment_terms_days": "45",
        "partial_policy": "split",
        "evidence_max_files": "20",
        "evidence_max_file_mb": "25",
        "evidence_max_submission_mb": "100",
    }
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
    response = admin.post(
        "/admin/settings", data={**_settings(name=f"  {name}  "), "csrf_token": csrf_token(admin, "/admin/settings")}
    )
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


@pytest.mark.parametrize("retainage, bps", [("0", 0), ("100", 10000), ("12.25", 1225), ("0.5%", 50), (" 3 ", 300)])
def test_settings_accepts_percent_formats(admin, world, admin_engine, retainage, bps):
    response = admin.post(
        "/admin/settings",
        data={**_settings(default_retainage=retainage), "csrf_token": csrf_token(admin, "/admin/settings")},
    )
    assert response.status_code == 303
    assert org_row(admin_engine, world.org_a).default_retainage_bps == bps


@pytest.mark.parametrize("terms", ["0", "365"])
def test_settings_accepts_terms_bounds(admin, world, admin_engine, terms):
    response = admin.post(
        "/admin/settings",
        data={**_settings(payment_terms_days=terms), "csrf_token": csrf_token(admin, "/admin/settings")},
    )
    assert response.status_code == 303
    assert org_row(admin_engine, world.org_a).payment_terms_days == int(terms)


def test_settings_change_is_audited_with_before_and_after(admin, world, admin_engine):
    admin.post(
        "/admin/settings",
        data={**_settings(payment_terms_days="60"), "csrf_token": csrf_token(admin, "/admin/settings")},
    )
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
    # digits to str.isdigit() but not to int(): these answered 500
    ({"payment_terms_days": "²"}, "payment_terms_days", "whole number of days"),
    ({"payment_terms_days": "3²"}, "payment_terms_days", "whole number of days"),
    # digits to int() too, but not what the field asks for
    ({"payment_terms_days": "٣٠"}, "payment_terms_days", "whole number of days"),
    ({"payment_terms_days": "３０"}, "payment_terms_days", "whole number of days"),
    # PostgreSQL text cannot hold NUL: this answered 500
    ({"name": "Acme\x00Corp"}, "name", "The organization's name contains characters that are not allowed."),
    ({"name": "Acme\x07Corp"}, "name", "The organization's name contains characters that are not allowed."),
    ({"default_currency": "ZZZ"}, "default_currency", "ISO 4217"),
]


@pytest.mark.parametrize(
    "overrides, field, message",
    INVALID_SETTINGS,
    ids=[f"{f}={next(iter(o.values()))[:8]!r}" for o, f, _ in INVALID_SETTINGS],
)
def test_settings_invalid_input_is_422_at_the_field_and_keeps_typed_values(
    admin, world, admin_engine, overrides, field, message
):
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
        "/admin/settings",
        data={**_settings(partial_policy="pay_everything"), "csrf_token": csrf_token(admin, "/admin/settings")},
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


# --- users and roles ------------------------------------------------------------------------------


def test_members_page_lists_members_with_roles(admin, world):
    response = admin.get("/admin/members")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    expected = [
        (world.admin, 'badge-admin">Admin'),
        (world.owner, 'badge-owner">Project owner'),
        (world.finance, 'badge-finance">Finance'),
        (world.contractor_x_user, 'badge-contractor">Contractor'),
        (world.contractor_y_user, 'badge-contractor">Contractor'),
    ]
    for person, badge in expected:
        row = member_row(html, person.email)
        assert person.name in row
        assert badge in row, person.name
        assert "Invited" not in row  # everybody here has accepted their membership
    assert f"Contractor X {world.suffix}" in member_row(html, world.contractor_x_user.email)
    assert f"Contractor Y {world.suffix}" in member_row(html, world.contractor_y_user.email)
    assert "(you)" in member_row(html, world.admin.email)
    assert "(you)" not in member_row(html, world.owner.email)
    # the signed-in admin signed in just now; the others never did
    assert "Last sign-in" in member_row(html, world.admin.email)
    assert "Never signed in" in member_row(html, world.owner.email)


def _membership_id(admin_engine, org_id, user_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id from memberships where org_id = :o and user_id = :u"), {"o": org_id, "u": user_id}
        ).scalar_one()


def _role_of(admin_engine, membership_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select role, contractor_id from memberships where id = :id"), {"id": membership_id}
        ).one()


def test_each_members_forms_open_from_its_row_and_the_table_carries_none(app, login, admin, world, admin_engine):
    """The table stays light however many members and contractors there are: a row's menu fetches its forms
    (htmx) or links them (without JavaScript); the page of those forms is the admin's only."""
    mid = _membership_id(admin_engine, world.org_a, world.contractor_x_user.id)
    table = admin.get("/admin/members").get_data(as_text=True)
    row = member_row(table, world.contractor_x_user.email)
    assert f'hx-get="/admin/members/{mid}"' in row and f'href="/admin/members/{mid}"' in row
    assert "<select" not in table.split("<h2>Invite someone</h2>")[0]
    fragment = admin.get(f"/admin/members/{mid}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment
    assert re.search(rf'<option value="{world.contractor_x}"\s+selected>', fragment)
    assert "Remove from organization" in fragment and "Save role" in fragment
    page = admin.get(f"/admin/members/{mid}")
    assert page.status_code == 200 and world.contractor_x_user.name in page.get_data(as_text=True)
    assert admin.get("/admin/members/00000000-0000-0000-0000-000000000000").status_code == 404
    assert admin.get("/admin/members/not-an-id").status_code == 404
    client = app.test_client()
    login(client, world.owner)
    assert client.get(f"/admin/members/{mid}").status_code == 403


def test_change_role(admin, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.owner.id)
    response = admin.post(
        f"/admin/members/{mid}/role",
        data={"role": "finance", "contractor_id": "", "csrf_token": csrf_token(admin, "/admin/members")},
    )
    assert response.status_code == 303
    assert "Role updated." in flashes(admin.get("/admin/members").get_data(as_text=True))
    assert _role_of(admin_engine, mid) == ("finance", None)


def test_change_role_to_contractor_needs_a_contractor(admin, world, admin_engine):
    mid = _membership_id(admin_engine, world.org_a, world.owner.id)
    response = admin.post(
        f"/admin/members/{mid}/role",
        data={"role": "contractor", "contractor_id": "", "csrf_token": csrf_token(admin, "/admin/members")},
    )
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


def test_the_home_page_counts_only_members_who_accepted(admin, world, admin_engine):
    def count_on_home() -> int:
        html = admin.get("/").get_data(as_text=True)
        return int(re.search(r"<strong>(\d+)</strong> (?:person has|people have) access", html).group(1))

    with admin_engine.connect() as conn:
        accepted = conn.execute(
            text("select count(*) from memberships where org_id = :o and accepted_at is not null"), {"o": world.org_a}
        ).scalar_one()
    assert count_on_home() == accepted == 5
    token = csrf_token(admin, "/admin/members")
    response = admin.post(
        "/admin/members",
        data={
            "email": f"counted-{world.suffix}@example.com",
            "name": "Not Yet",
            "role": "owner",
            "contractor_id": "",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from memberships where org_id = :o"), {"o": world.org_a}).scalar_one()
            == 6
        )
    assert count_on_home() == 5  # the invitation is pending: nobody new has access yet


def test_remove_member(admin, app, world, admin_engine, login):
    mid = _membership_id(admin_engine, world.org_a, world.finance.id)
    response = admin.post(f"/admin/members/{mid}/remove", data={"csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 303
    html = admin.get("/admin/members").get_data(as_text=True)
    assert "Member removed from this organization." in flashes(html)
    assert world.finance.email not in html
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from memberships where id = :id"), {"id": mid}).scalar_one() == 0


# --- contractors ---------------------------------------------------------------------------------


def _contractor_by_email(admin_engine, org_id, email):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, legal_name, email, ap_vendor_id, payout_details from contractors"
                " where org_id = :o and lower(email) = lower(:e)"
            ),
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
        data={
            "legal_name": f"New Build {world.suffix}",
            "email": email,
            "ap_vendor_id": f"NB-{world.suffix}",
            "payout_details": "ACH 1234",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 303
    rows = _contractor_by_email(admin_engine, world.org_a, email)
    assert len(rows) == 1
    assert response.headers["Location"] == f"/admin/contractors/{rows[0].id}"
    assert (rows[0].legal_name, rows[0].ap_vendor_id, rows[0].payout_details) == (
        f"New Build {world.suffix}",
        f"NB-{world.suffix}",
        "ACH 1234",
    )
    page = admin.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"<h1>New Build {world.suffix}</h1>" in html
    assert f"New Build {world.suffix} added." in " ".join(flashes(html))
    assert input_value(html, "email") == email


def test_add_contractor_with_duplicate_email_is_422_at_email(admin, world, admin_engine):
    with admin_engine.connect() as conn:
        before = conn.execute(
            text("select count(*) from contractors where org_id = :o"), {"o": world.org_a}
        ).scalar_one()
    response = admin.post(
        "/admin/contractors",
        data={
            "legal_name": f"Copycat {world.suffix}",
            "email": f"X-{world.suffix}@EXAMPLE.com",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "email") == f"Contractor X {world.suffix} already uses this email."
    assert field_error(html, "legal_name") is None
    assert input_value(html, "legal_name") == f"Copycat {world.suffix}"
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from contractors where org_id = :o"), {"o": world.org_a}).scalar_one()
            == before
        )


def test_same_contractor_email_is_fine_in_another_org(admin, world, admin_engine):
    response = admin.post(
        "/admin/contractors",
        data={
            "legal_name": f"Zed Twin {world.suffix}",
            "email": f"z-{world.suffix}@example.com",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 303
    assert len(_contractor_by_email(admin_engine, world.org_a, f"z-{world.suffix}@example.com")) == 1


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"legal_name": "", "email": "ok-{s}@example.com"}, "legal_name", "Enter the legal name."),
        ({"legal_name": "Fine Co", "email": "nope"}, "email", "valid email"),
        (
            {"legal_name": "Fine Co", "email": "ok-{s}@example.com", "ap_vendor_id": "VX-{s}"},
            "ap_vendor_id",
            "already has this AP vendor id",
        ),
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
        data={
            "legal_name": f"Contractor Y Renamed {world.suffix}",
            "email": new_email,
            "ap_vendor_id": f"VY-{world.suffix}",
            "payout_details": "SEPA 9912",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
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


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_payout_details_may_span_several_lines(admin, world, admin_engine, newline):
    details = newline.join(["Bank: First Example Bank", "IBAN: DE89 3704 0044 0532 0130 00", "\tRef: invoices only"])
    email = f"lines-{world.suffix}@example.com"
    created = admin.post(
        "/admin/contractors",
        data={
            "legal_name": f"Lines Ltd {world.suffix}",
            "email": email,
            "payout_details": details,
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert created.status_code == 303
    (row,) = _contractor_by_email(admin_engine, world.org_a, email)
    assert row.payout_details == details
    page = followed(admin, created, f"/admin/contractors/{row.id}")
    assert (
        html_lib.unescape(
            re.search(r'<textarea[^>]*name="payout_details"[^>]*>(.*?)</textarea>', page, re.S).group(1)
        ).strip()
        == details.strip()
    )

    edited = details + newline + "Second line added"
    response = admin.post(
        f"/admin/contractors/{row.id}",
        data={
            "legal_name": f"Lines Ltd {world.suffix}",
            "email": email,
            "payout_details": edited,
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 303
    assert _contractor_by_email(admin_engine, world.org_a, email)[0].payout_details == edited


@pytest.mark.parametrize(
    "bad", ["ACH\x001234", "ACH\x1b[31m1234", "ACH\x0b1234"], ids=["NUL", "escape", "vertical-tab"]
)
def test_payout_details_with_other_control_characters_are_422_at_the_field(admin, world, admin_engine, bad):
    before = _contractor_by_email(admin_engine, world.org_a, f"x-{world.suffix}@example.com")
    response = admin.post(
        f"/admin/contractors/{world.contractor_x}",
        data={
            "legal_name": f"Contractor X {world.suffix}",
            "email": f"x-{world.suffix}@example.com",
            "ap_vendor_id": f"VX-{world.suffix}",
            "payout_details": bad,
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "payout_details") == "The payout details contains characters that are not allowed."
    assert field_error(html, "legal_name") is None and field_error(html, "email") is None
    assert _contractor_by_email(admin_engine, world.org_a, f"x-{world.suffix}@example.com") == before


def test_edit_contractor_keeping_its_own_email_is_fine(admin, world, admin_engine):
    response = admin.post(
        f"/admin/contractors/{world.contractor_x}",
        data={
            "legal_name": f"Contractor X {world.suffix}",
            "email": f"x-{world.suffix}@example.com",
            "ap_vendor_id": f"VX-{world.suffix}",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 303


def test_edit_contractor_to_anothers_email_is_422(admin, world, admin_engine):
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}",
        data={
            "legal_name": "Taken",
            "email": f"x-{world.suffix}@example.com",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "email") == f"Contractor X {world.suffix} already uses this email."
    assert input_value(html, "legal_name") == "Taken"
    assert (
        _contractor_by_email(admin_engine, world.org_a, f"y-{world.suffix}@example.com")[0].legal_name
        == f"Contractor Y {world.suffix}"
    )


def test_contractor_page_lists_its_users_only(admin, world):
    html = admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True)
    assert world.contractor_x_user.email in html
    assert world.contractor_y_user.email not in html


# --- audit trail ---------------------------------------------------------------------------------


def _audit_rows(html: str) -> list[tuple[int, str]]:
    """(seq, sentence) of each event row (issue 22: the trail reads as sentences)."""
    return [
        (int(seq), html_lib.unescape(sentence))
        for seq, sentence in re.findall(
            r'<tr>\s*<td data-label="#">(\d+)</td>.*?<td data-label="What happened">([^<]*)</td>', html, re.S
        )
    ]


def test_audit_lists_events_newest_first(admin, world, admin_engine):
    admin.post("/admin/settings", data={**_settings(), "csrf_token": csrf_token(admin, "/admin/settings")})
    admin.post(
        "/admin/contractors",
        data={
            "legal_name": f"Audit Co {world.suffix}",
            "email": f"audit-{world.suffix}@example.com",
            "csrf_token": csrf_token(admin, "/admin/contractors"),
        },
    )
    response = admin.get("/audit/")
    assert response.status_code == 200
    rows = _audit_rows(response.get_data(as_text=True))
    seqs = [seq for seq, _ in rows]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    assert [a for _, a in rows[:3]] == [
        f"Ada Admin added the contractor Audit Co {world.suffix}",
        "Ada Admin changed the organization's settings",
        "Ada Admin signed in",
    ]
    with admin_engine.connect() as conn:
        db = conn.execute(
            text("select seq, action from audit_events where org_id = :o order by seq desc"), {"o": world.org_a}
        ).all()
    assert [seq for seq, _ in rows] == [r.seq for r in db]  # exactly this org's events
    assert f"The system created the organization Org A {world.suffix}" in [a for _, a in rows]  # the oldest too
    assert "<code>" not in response.get_data(as_text=True).split('id="audit-rows"')[1]


def test_verify_the_chain(admin, world, admin_engine):
    page = admin.get("/audit/").get_data(as_text=True)
    assert "Verify the chain" in page
    token = re.search(r"hx-headers='([^']*)'", page).group(1)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html_lib.unescape(token)).group(1)
    with admin_engine.connect() as conn:  # counted before: the check is recorded after it as one more event
        count = conn.execute(
            text("select count(*) from audit_events where org_id = :o"), {"o": world.org_a}
        ).scalar_one()
    response = admin.post("/audit/verify", headers={**HTMX, "HX-Target": "verify-result", "X-CSRFToken": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<body" not in html  # a fragment for the #verify-result target
    assert f"The chain is intact: {count} events checked" in html


def verify_fragment(client) -> str:
    response = client.post(
        "/audit/verify", headers={**HTMX, "HX-Target": "verify-result", "X-CSRFToken": csrf_token(client, "/audit/")}
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_verify_shows_the_chain_head_to_keep_outside_backoffice(admin, world, admin_engine):
    head = kept_head(admin_engine, world.org_a)
    html = verify_fragment(admin)
    assert f'Chain head now: <code class="chain-head">{world.org_a} {head.seq} {head.hash}</code>' in html
    assert str(world.org_b) not in html


def test_verify_notices_events_cut_back_behind_the_head_a_receipt_carries(admin, world, act_as, admin_engine, database):
    _, (invoice,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",))
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    (doc,) = owner_query(admin_engine, "select * from documents where invoice_id = :i", i=invoice["id"])
    assert "and it holds every chain head checked (1)" in verify_fragment(admin)

    seq = doc["audit_head_seq"]
    with newest_events_cut(database.superuser_url, world.org_a, seq):
        html = verify_fragment(admin)
    assert "Events are missing from the end of the trail." in html
    assert (
        f"Event #{seq}, the head document {doc['filename']} ({doc['id']}) carries:"
        f" the trail now ends at event #{seq - 1}: the events after it are gone." in html
    )
    assert f"The event recording document {doc['filename']} ({doc['id']}) is gone." in html


def verify_pasted(client, heads: str):
    return client.post(
        "/audit/verify",
        data={"heads": heads},
        headers={**HTMX, "HX-Target": "verify-result", "X-CSRFToken": csrf_token(client, "/audit/")},
    )


def test_heads_pasted_from_a_digest_are_checked_and_a_cut_trail_names_the_one_it_lost(
    admin, world, admin_engine, database
):
    kept = kept_head(admin_engine, world.org_a)
    line = f"{world.org_a} {kept.seq} {kept.hash}"
    response = verify_pasted(admin, f"# from the digest of Dec 3\n{line}\n\n")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "every hash matches, and it holds every chain head checked (1: 1 you pasted" in html
    assert 'name="heads"' in html  # the form is back under the result, for the next check

    with newest_events_cut(database.superuser_url, world.org_a, kept.seq):
        html = verify_pasted(admin, line).get_data(as_text=True)
    assert "Events are missing from the end of the trail." in html
    assert (
        f"Event #{kept.seq}, the head you pasted on line 1 carries: the trail now ends at event #{kept.seq - 1}" in html
    )


@pytest.mark.parametrize(
    "heads",
    ["not a head", "00000000-0000-0000-0000-000000000000 1", "ok\x00", "x" * 20_001],
)
def test_pasted_text_that_is_not_heads_is_422_at_the_field_and_checks_nothing(admin, heads):
    response = verify_pasted(admin, heads)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="heads-error"' in html and 'aria-invalid="true"' in html
    assert "The chain is intact" not in html
    said = html_lib.unescape(html)
    assert ("Paste at most 20,000 characters" if len(heads) > 20_000 else "Line 1 is not 'org_id seq hash'") in said


def test_verify_without_javascript_shows_the_whole_page(admin, world):
    response = admin.post("/audit/verify", data={"csrf_token": csrf_token(admin, "/audit/")})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<body" in html and "Audit trail" in html
    assert "The chain is intact" in html
    assert "Ada Admin signed in" in html  # the events are listed as well (in words: issue 22)


def test_the_contractors_list_pages_by_name_fifty_at_a_time(admin, world, admin_engine):
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into contractors (org_id, legal_name, email)"
                " select :o, 'Zz ~ Builder ' || lpad(g::text, 2, '0'), 'zz' || g || '@example.com'"
                " from generate_series(1, 60) g"
            ),
            {"o": world.org_a},
        )
    names = []
    page = admin.get("/admin/contractors").get_data(as_text=True)
    while True:
        names += re.findall(r'<a href="/admin/contractors/[0-9a-f-]+">([^<]+)</a>', page)
        older = re.search(r'<a href="([^"]+)" rel="next">', page)
        if not older:
            break
        page = admin.get(html_lib.unescape(older.group(1))).get_data(as_text=True)
    builders = [n for n in names if n.startswith("Zz")]
    assert builders == [f"Zz ~ Builder {g:02d}" for g in range(1, 61)]  # every one once, by name, "~" and all
    assert len(names) == len(set(names))


def test_the_members_table_pages_by_name_fifty_at_a_time(admin, world, admin_engine):
    with admin_engine.begin() as conn:
        users = conn.execute(
            text(
                "insert into users (email, name)"
                " select 'm' || g || '@example.com', 'Zz Member ' || lpad(g::text, 2, '0')"
                " from generate_series(1, 55) g returning id"
            )
        ).scalars()
        for user_id in users:
            conn.execute(
                text("insert into memberships (org_id, user_id, role, accepted_at) values (:o, :u, 'owner', now())"),
                {"o": world.org_a, "u": user_id},
            )
    names, page = [], admin.get("/admin/members").get_data(as_text=True)
    while True:
        names += re.findall(r"<td>(Zz Member \d\d)", page)
        older = re.search(r'<a href="([^"]+)" rel="next">', page)
        if not older:
            break
        page = admin.get(html_lib.unescape(older.group(1))).get_data(as_text=True)
    assert names == [f"Zz Member {g:02d}" for g in range(1, 56)]
    back = admin.get(html_lib.unescape(re.search(r'<a href="([^"]+)" rel="prev">', page).group(1))).get_data(
        as_text=True
    )
    assert re.findall(r"<td>(Zz Member \d\d)", back)[-1] == "Zz Member 45"  # the first page again: 5 people, 45 Zz
