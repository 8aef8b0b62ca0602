"""Invitations as admins and invited people use them.

Every invitation issues a one-time link, and the admin gets the same answer whether or not the address
already has an account in another organization. The membership is pending ("Invited") until the
person accepts through the link: by setting a password (a new account) or by entering the password
of the account they already have. Links work once, expire, and stop working when reissued or withdrawn.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

import pytest
from kit import PASSWORD
from kit.web import (
    audit_events,
    csrf_token,
    field_error,
    flashes,
    followed,
    input_names,
    input_value,
    invite,
    invite_link,
    invite_link_token,
    invite_token,
    invites_of,
    member_row,
    membership,
    token_hash,
    user_by_email,
)
from sqlalchemy import text

NEW_PASSWORD = "a long enough password"
LOGIN_FAILED = "That email and password do not match an active account."
LOCKED = "Too many failed sign-in attempts for this email. Try again after a short wait."
LINK_GONE = "This link no longer works"


@pytest.fixture
def admin(client, world, login):
    assert login(client, world.admin).status_code == 303
    return client


def _set_password(client, token, password=NEW_PASSWORD, confirm=None):
    form_token = csrf_token(client, f"/invite/{token}")
    return client.post(
        f"/invite/{token}",
        data={"password": password, "confirm": password if confirm is None else confirm, "csrf_token": form_token},
    )


def _join(client, token, password=PASSWORD):
    form_token = csrf_token(client, f"/invite/{token}")
    return client.post(f"/invite/{token}", data={"password": password, "csrf_token": form_token})


def _invited_flash(email: str) -> str:
    return (  # the tests run without RESEND_API_KEY: the page says so (issue 22)
        f"{email} is invited. Email is not set up, so send them the link below yourself; "
        "it works once and expires in 72 hours."
    )


def _switcher_orgs(html: str) -> list[str]:
    form = re.search(r"<form[^>]*org-switcher[^>]*>.*?</form>", html, re.S)
    return re.findall(r"<option [^>]*>([^<]*)</option>", form.group(0)) if form else []


def _throttle_locked(admin_engine, email: str) -> bool:
    key = hashlib.sha256(email.lower().encode()).hexdigest()
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select coalesce(bool_or(locked_until > now()), false) from login_throttle where email_key = :k"),
            {"k": key},
        ).scalar_one()


def member_actions(admin, row: str) -> str:
    """The forms a members-table row's menu fetches when it opens (its own page, without htmx)."""
    return admin.get(re.search(r'hx-get="(/admin/members/[0-9a-f-]+)"', row).group(1)).get_data(as_text=True)


# --- inviting: the admin's side -------------------------------------------------------------------


def test_inviting_a_new_address_answers_303_and_shows_the_one_time_link_once(admin, world, admin_engine):
    email = f"newbie-{world.suffix}@example.com"
    html = followed(admin, invite(admin, email=email, name="Nina Newbie", role="finance"), "/admin/members")
    token = invite_token(html)
    assert flashes(html) == [_invited_flash(email)]
    row = member_row(html, email)
    assert "Nina Newbie" in row
    assert 'badge-pending">Invited' in row and 'badge-finance">Finance' in row
    assert "New invitation link" in member_actions(admin, row)  # a pending member can be sent a fresh link

    user = user_by_email(admin_engine, email)
    assert (user.email, user.name, user.password_hash) == (email, "Nina Newbie", None)
    m = membership(admin_engine, world.org_a, user.id)
    assert (m.role, m.contractor_id, m.accepted_at) == ("finance", None, None)  # pending
    (inv,) = invites_of(admin_engine, world.org_a, user.id)
    assert inv.token_hash == token_hash(token)  # only the hash is stored
    assert token not in inv.token_hash
    assert (inv.email, inv.name, inv.created_by, inv.used_at) == (email, "Nina Newbie", world.admin.id, None)
    assert inv.expires_at - inv.created_at == timedelta(hours=72)
    (event,) = audit_events(admin_engine, world.org_a, "member.invited")
    assert event.actor_user_id == world.admin.id and event.entity_id == str(m.id)
    assert event.data["email"] == email and event.data["role"] == "finance"

    # the link is shown once: reloading the members page does not show it again
    again = admin.get("/admin/members").get_data(as_text=True)
    assert invite_link(again) is None and token not in again and "One-time sign-up link" not in again
    assert "Invited" in member_row(again, email)


def test_an_invitation_for_an_address_with_an_account_elsewhere_answers_exactly_like_a_new_one(
    admin, world, admin_engine
):
    new_email = f"fresh-{world.suffix}@example.com"
    new_html = followed(admin, invite(admin, email=new_email, name="Fay Fresh", role="owner"), "/admin/members")
    existing = user_by_email(admin_engine, world.admin_b.email)
    old_response = invite(admin, email=world.admin_b.email, name="Fay Fresh", role="owner")
    old_html = followed(admin, old_response, "/admin/members")

    # the same status, flash, link box and badge: nothing says the address has an account in org B
    assert flashes(old_html) == [f.replace(new_email, world.admin_b.email) for f in flashes(new_html)]
    assert invite_token(old_html) != invite_token(new_html)
    # the two rows differ only in the address and the membership's id
    new_mid = membership(admin_engine, world.org_a, user_by_email(admin_engine, new_email).id).id
    old_mid = membership(admin_engine, world.org_a, existing.id).id
    old_row = (
        member_row(old_html, world.admin_b.email).replace(world.admin_b.email, "EMAIL").replace(str(old_mid), "MID")
    )
    new_row = member_row(old_html, new_email).replace(new_email, "EMAIL").replace(str(new_mid), "MID")
    assert old_row == new_row and 'badge-pending">Invited' in old_row
    assert "already has" not in old_html and f"Org B {world.suffix}" not in old_html

    # the account in org B is untouched: same name, same password; here it is only pending
    after = user_by_email(admin_engine, world.admin_b.email)
    assert (after.id, after.name, after.password_hash) == (existing.id, "Bea B", existing.password_hash)
    assert membership(admin_engine, world.org_a, existing.id).accepted_at is None
    assert membership(admin_engine, world.org_b, existing.id).accepted_at is not None
    (inv,) = invites_of(admin_engine, world.org_a, existing.id)
    assert (inv.email, inv.name, inv.used_at) == (world.admin_b.email, "Fay Fresh", None)


def test_a_pending_member_is_shown_with_the_name_and_email_the_admin_typed(admin, world):
    typed_email = world.admin_b.email.replace("@example.com", "@EXAMPLE.com")
    html = followed(admin, invite(admin, email=typed_email, name="Beatrice Typed", role="owner"), "/admin/members")
    row = member_row(html, world.admin_b.email)  # the domain is normalized, the address is the same
    assert "Beatrice Typed" in row and 'badge-pending">Invited' in row
    assert "Bea B" not in html  # the account's own name (set in org B) is not revealed
    assert "Last sign-in" not in row and "Never signed in" not in row


def test_a_pending_invitation_grants_nothing_until_it_is_accepted(admin, app, world, admin_engine, login):
    invite_link_token(admin, email=world.admin_b.email, name="Bea B", role="admin")
    other = app.test_client()
    assert login(other, world.admin_b).status_code == 303  # signing in normally does not accept it
    home = other.get("/").get_data(as_text=True)
    assert f"Org B {world.suffix}" in home and f"Org A {world.suffix}" not in home
    assert _switcher_orgs(home) == []  # only one organization to work in
    switch = other.post("/orgs/switch", data={"org_id": str(world.org_a), "csrf_token": csrf_token(other, "/")})
    assert switch.status_code == 404
    assert membership(admin_engine, world.org_a, world.admin_b.id).accepted_at is None


def test_inviting_someone_who_is_already_a_member_is_422_at_the_email(admin, world, admin_engine):
    with admin_engine.connect() as conn:
        before = conn.execute(
            text("select count(*) from memberships where org_id = :o"), {"o": world.org_a}
        ).scalar_one()
    response = invite(admin, email=world.owner.email.upper(), name="Omar Again", role="admin")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert (
        field_error(html, "email").lower() == f"{world.owner.email} is already a member of this organization.".lower()
    )
    assert input_value(html, "name") == "Omar Again"  # typed values kept
    assert invite_link(html) is None
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from memberships where org_id = :o"), {"o": world.org_a}).scalar_one()
            == before
        )
    assert membership(admin_engine, world.org_a, world.owner.id).role == "owner"
    assert invites_of(admin_engine, world.org_a, world.owner.id) == []


def test_inviting_someone_already_invited_is_422_and_their_link_keeps_working(admin, app, world, admin_engine):
    email = f"twice-{world.suffix}@example.com"
    token = invite_link_token(admin, email=email, name="Tess Twice", role="owner")
    user = user_by_email(admin_engine, email)
    before = (membership(admin_engine, world.org_a, user.id), invites_of(admin_engine, world.org_a, user.id))

    response = invite(admin, email=email, name="Tess Again", role="admin")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = field_error(html, "email")
    assert error and "already invited" in error and "New invitation link" in error
    assert invite_link(html) is None
    assert (membership(admin_engine, world.org_a, user.id), invites_of(admin_engine, world.org_a, user.id)) == before
    assert app.test_client().get(f"/invite/{token}").status_code == 200


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "not-an-email", "name": "Some One"}, "email", "valid email"),
        ({"email": "", "name": "Some One"}, "email", "Enter an email"),
        ({"email": "someone-{s}@example.com\x00", "name": "Some One"}, "email", "valid email"),
        ({"email": "some\x00one-{s}@example.com", "name": "Some One"}, "email", "valid email"),
        ({"email": "s" * 300 + "-{s}@example.com", "name": "Some One"}, "email", "valid email"),
        ({"email": "someone-{s}@example.com", "name": ""}, "name", "Enter the name"),
        ({"email": "someone-{s}@example.com", "name": "Some\x00One"}, "name", "not allowed"),
        (
            {"email": "someone-{s}@example.com", "name": "Some One", "role": "contractor"},
            "contractor_id",
            "Choose which contractor",
        ),
        ({"email": "someone-{s}@example.com", "name": "Some One", "role": "superuser"}, "role", "Choose a role"),
    ],
    ids=[
        "malformed",
        "empty",
        "trailing-NUL",
        "inner-NUL",
        "over-long",
        "no-name",
        "NUL-in-name",
        "no-contractor",
        "bad-role",
    ],
)
def test_an_invitation_with_bad_input_is_422_at_the_field_and_stores_nothing(
    admin, world, admin_engine, data, field, message
):
    data = {k: v.format(s=world.suffix) for k, v in data.items()}

    def counts():
        with admin_engine.connect() as conn:
            return conn.execute(
                text(
                    "select (select count(*) from users), (select count(*) from memberships where org_id = :o),"
                    " (select count(*) from invites where org_id = :o)"
                ),
                {"o": world.org_a},
            ).one()

    before = counts()
    response = invite(admin, **data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = field_error(html, field)
    assert error and message in error
    assert invite_link(html) is None
    assert counts() == before  # no account, membership or link was created


def test_inviting_a_contractor_user_from_the_members_page_ties_the_pending_membership_to_the_contractor(
    admin, world, admin_engine
):
    email = f"cx2-{world.suffix}@example.com"
    invite_link_token(admin, email=email, name="Xavier Two", role="contractor", contractor_id=str(world.contractor_x))
    m = membership(admin_engine, world.org_a, user_by_email(admin_engine, email).id)
    assert (m.role, m.contractor_id, m.accepted_at) == ("contractor", world.contractor_x, None)


def test_inviting_a_contractor_user_from_the_contractor_page_shows_the_link_once(admin, app, world, admin_engine):
    email = f"yuser2-{world.suffix}@example.com"
    page = f"/admin/contractors/{world.contractor_y}"
    response = admin.post(
        f"{page}/users", data={"email": email, "name": "Yolanda Two", "csrf_token": csrf_token(admin, page)}
    )
    html = followed(admin, response, page)
    token = invite_token(html)
    assert flashes(html) == [
        f"{email} is invited for Contractor Y {world.suffix}. "
        "Email is not set up, so send them the link below yourself; it works once and expires in 72 hours."
    ]
    assert f"Yolanda Two — {email}" in html and 'badge-pending">Invited' in html
    user = user_by_email(admin_engine, email)
    m = membership(admin_engine, world.org_a, user.id)
    assert (m.role, m.contractor_id, m.accepted_at) == ("contractor", world.contractor_y, None)
    (inv,) = invites_of(admin_engine, world.org_a, user.id)
    assert inv.token_hash == token_hash(token)
    assert invite_link(admin.get(page).get_data(as_text=True)) is None  # shown once
    assert app.test_client().get(f"/invite/{token}").status_code == 200


def test_a_contractor_user_with_an_account_elsewhere_is_invited_with_a_link_too(admin, app, world, admin_engine):
    page = f"/admin/contractors/{world.contractor_x}"
    response = admin.post(
        f"{page}/users", data={"email": world.admin_b.email, "name": "Bea as X", "csrf_token": csrf_token(admin, page)}
    )
    html = followed(admin, response, page)
    token = invite_token(html)
    assert flashes(html) == [
        f"{world.admin_b.email} is invited for Contractor X {world.suffix}. "
        "Email is not set up, so send them the link below yourself; it works once and expires in 72 hours."
    ]
    assert f"Bea as X — {world.admin_b.email}" in html
    m = membership(admin_engine, world.org_a, world.admin_b.id)
    assert (m.role, m.contractor_id, m.accepted_at) == ("contractor", world.contractor_x, None)
    assert "Join Org A" in app.test_client().get(f"/invite/{token}").get_data(as_text=True)


def test_inviting_a_contractor_user_who_is_already_a_member_is_422_at_the_email(admin, world, admin_engine):
    page = f"/admin/contractors/{world.contractor_x}"
    before = invites_of(admin_engine, world.org_a, world.contractor_x_user.id)
    response = admin.post(
        f"{page}/users",
        data={"email": world.contractor_x_user.email, "name": "Xena Again", "csrf_token": csrf_token(admin, page)},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "already a member" in field_error(html, "user-email")
    assert input_value(html, "name") == "Xena Again"
    assert invites_of(admin_engine, world.org_a, world.contractor_x_user.id) == before == []


def test_inviting_a_contractor_user_with_a_bad_email_is_422_at_the_field(admin, world, admin_engine):
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}/users",
        data={"email": "broken", "name": "Yolanda Two", "csrf_token": csrf_token(admin, "/admin/contractors")},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "valid email" in field_error(html, "user-email")
    assert input_value(html, "name") == "Yolanda Two"
    assert user_by_email(admin_engine, "broken") is None


# --- accepting: a new account sets its password ----------------------------------------------------


def test_a_link_for_a_new_account_opens_the_set_password_page(admin, app, world):
    email = f"setpw-{world.suffix}@example.com"
    token = invite_link_token(admin, email=email, name="Sam Setter")
    page = app.test_client().get(f"/invite/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Set your password</h1>" in html
    assert email in html and f"Org A {world.suffix}" in html
    assert input_names(html) == ["password", "confirm"]


def test_a_new_person_sets_a_password_through_the_link_joins_and_is_signed_in(admin, app, world, admin_engine):
    email = f"joiner-{world.suffix}@example.com"
    token = invite_link_token(admin, email=email, name="Jo Joiner")
    user = user_by_email(admin_engine, email)
    newcomer = app.test_client()

    short = _set_password(newcomer, token, "short")
    assert short.status_code == 422
    assert field_error(short.get_data(as_text=True), "password") == "Use at least 10 characters."

    mismatch = _set_password(newcomer, token, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert mismatch.status_code == 422
    mismatch_html = mismatch.get_data(as_text=True)
    assert field_error(mismatch_html, "confirm") == "The two passwords do not match."
    assert field_error(mismatch_html, "password") is None
    assert NEW_PASSWORD not in mismatch_html  # passwords are not echoed back
    # bad passwords change nothing: no password, still pending, the link still usable
    assert user_by_email(admin_engine, email).password_hash is None
    assert membership(admin_engine, world.org_a, user.id).accepted_at is None
    assert invites_of(admin_engine, world.org_a, user.id)[0].used_at is None

    ok = _set_password(newcomer, token)
    assert ok.status_code == 303
    assert ok.headers["Location"] == "/"
    home_html = newcomer.get("/").get_data(as_text=True)
    assert "Welcome, Jo Joiner" in home_html
    assert flashes(home_html) == [f"Welcome to Org A {world.suffix}."]

    after = user_by_email(admin_engine, email)
    assert after.password_hash and after.password_hash.startswith("scrypt:")
    assert membership(admin_engine, world.org_a, user.id).accepted_at is not None
    (inv,) = invites_of(admin_engine, world.org_a, user.id)
    assert inv.used_at is not None
    (joined,) = audit_events(admin_engine, world.org_a, "member.joined")
    assert joined.actor_user_id == user.id and joined.data == {"email": email, "role": "owner"}

    # the new password signs in; the admin sees a member, no longer an invitation
    signer = app.test_client()
    assert (
        signer.post(
            "/login", data={"email": email, "password": NEW_PASSWORD, "csrf_token": csrf_token(signer)}
        ).status_code
        == 303
    )
    row = member_row(admin.get("/admin/members").get_data(as_text=True), email)
    assert "Invited" not in row and "Last sign-in" in row and "New invitation link" not in member_actions(admin, row)


# --- accepting: an existing account signs in with its password --------------------------------------


def test_a_link_for_an_account_with_a_password_opens_a_join_page_with_one_password_field(admin, app, world):
    token = invite_link_token(admin, email=world.admin_b.email, name="Bea B", role="finance")
    page = app.test_client().get(f"/invite/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"<h1>Join Org A {world.suffix}</h1>" in html
    assert world.admin_b.email in html
    assert input_names(html) == ["password"]
    assert "Set your password" not in html


def test_the_right_password_on_the_join_page_joins_the_org_and_signs_in_there(admin, app, world, admin_engine):
    token = invite_link_token(admin, email=world.admin_b.email, name="Beatrice Typed", role="finance")
    before = user_by_email(admin_engine, world.admin_b.email)
    person = app.test_client()
    response = _join(person, token)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = person.get("/").get_data(as_text=True)
    assert flashes(home) == [f"Welcome to Org A {world.suffix}."]
    assert "Welcome, Bea B" in home  # the account keeps its own name
    assert sorted(_switcher_orgs(home)) == [f"Org A {world.suffix} — Finance", f"Org B {world.suffix} — Admin"]
    with person.session_transaction() as sess:
        assert sess["org_id"] == str(world.org_a)

    after = user_by_email(admin_engine, world.admin_b.email)
    assert (after.name, after.password_hash) == ("Bea B", before.password_hash)  # joining changes no password
    m = membership(admin_engine, world.org_a, world.admin_b.id)
    assert (m.role, m.accepted_at is not None) == ("finance", True)
    assert invites_of(admin_engine, world.org_a, world.admin_b.id)[0].used_at is not None
    (joined,) = audit_events(admin_engine, world.org_a, "member.joined")
    assert joined.actor_user_id == world.admin_b.id
    # the link worked once
    assert app.test_client().get(f"/invite/{token}").status_code == 404
    # the admin now sees the account as it is
    row = member_row(admin.get("/admin/members").get_data(as_text=True), world.admin_b.email)
    assert "Bea B" in row and "Invited" not in row


def test_a_wrong_password_on_the_join_page_is_401_at_the_field_and_changes_nothing(admin, app, world, admin_engine):
    token = invite_link_token(admin, email=world.admin_b.email, name="Bea B", role="finance")
    person = app.test_client()
    response = _join(person, token, "not her password")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert field_error(html, "password") == LOGIN_FAILED
    assert "not her password" not in html
    assert f"<h1>Join Org A {world.suffix}</h1>" in html
    assert person.get("/").status_code in (302, 303)  # not signed in
    assert membership(admin_engine, world.org_a, world.admin_b.id).accepted_at is None
    assert invites_of(admin_engine, world.org_a, world.admin_b.id)[0].used_at is None
    assert audit_events(admin_engine, world.org_a, "member.joined") == []
    assert person.get(f"/invite/{token}").status_code == 200  # still usable


def test_wrong_passwords_on_the_join_page_count_toward_the_sign_in_lock(admin, app, world, admin_engine, login):
    token = invite_link_token(admin, email=world.admin_b.email, name="Bea B", role="finance")
    person = app.test_client()
    statuses = [_join(person, token, f"wrong password {i}").status_code for i in range(5)]
    assert statuses[:4] == [401, 401, 401, 401]
    assert statuses[4] in (401, 429)  # the fifth failure locks the address
    assert _throttle_locked(admin_engine, world.admin_b.email)

    right = _join(person, token)  # the right password, while locked
    assert right.status_code == 429
    assert field_error(right.get_data(as_text=True), "password") == LOCKED
    assert membership(admin_engine, world.org_a, world.admin_b.id).accepted_at is None
    assert person.get("/").status_code in (302, 303)
    # one lock for the address, wherever the password is typed
    assert login(app.test_client(), world.admin_b).status_code == 429


# --- links that no longer work ----------------------------------------------------------------------


def _expire(admin_engine, token):
    with admin_engine.begin() as conn:
        changed = conn.execute(
            text(
                "update invites set created_at = now() - interval '73 hours', expires_at = now() - interval '1 hour' "
                "where token_hash = :h"
            ),
            {"h": token_hash(token)},
        ).rowcount
    assert changed == 1


@pytest.mark.parametrize("how", ["expired", "used", "withdrawn", "reissued", "made_up"])
@pytest.mark.parametrize("account", ["new", "existing"])
def test_an_unusable_link_answers_404_this_link_no_longer_works(admin, app, world, admin_engine, how, account):
    email = f"gone-{world.suffix}@example.com" if account == "new" else world.admin_b.email
    token = invite_link_token(admin, email=email, name="Gus Gone", role="owner")
    user = user_by_email(admin_engine, email)
    mid = membership(admin_engine, world.org_a, user.id).id
    if how == "expired":
        _expire(admin_engine, token)
    elif how == "used":
        first = app.test_client()
        assert (_set_password(first, token) if account == "new" else _join(first, token)).status_code == 303
    elif how == "withdrawn":
        removed = admin.post(f"/admin/members/{mid}/remove", data={"csrf_token": csrf_token(admin, "/admin/members")})
        assert removed.status_code == 303
    elif how == "reissued":
        again = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
        assert again.status_code == 303
    else:
        token = secrets.token_urlsafe(32)
    state = (
        user_by_email(admin_engine, email),
        membership(admin_engine, world.org_a, user.id),
        invites_of(admin_engine, world.org_a, user.id),
    )

    stranger = app.test_client()
    page = stranger.get(f"/invite/{token}")
    assert page.status_code == 404
    assert LINK_GONE in page.get_data(as_text=True)
    form_token = csrf_token(stranger, "/login")
    for data in ({"password": "another password!", "confirm": "another password!"}, {"password": PASSWORD}):
        post = stranger.post(f"/invite/{token}", data={**data, "csrf_token": form_token})
        assert post.status_code == 404
        assert LINK_GONE in post.get_data(as_text=True)
    assert stranger.get("/").status_code in (302, 303)  # nobody was signed in
    # nothing changed: no password set, no membership accepted, no invitation used
    assert (
        user_by_email(admin_engine, email),
        membership(admin_engine, world.org_a, user.id),
        invites_of(admin_engine, world.org_a, user.id),
    ) == state
    if how != "used":
        assert state[1] is None or state[1].accepted_at is None


def test_withdrawing_a_pending_invitation_removes_the_membership_and_voids_the_link(admin, world, admin_engine):
    email = f"withdrawn-{world.suffix}@example.com"
    invite_link_token(admin, email=email, name="Wendy Withdrawn", role="finance")
    user = user_by_email(admin_engine, email)
    mid = membership(admin_engine, world.org_a, user.id).id
    html = followed(
        admin,
        admin.post(f"/admin/members/{mid}/remove", data={"csrf_token": csrf_token(admin, "/admin/members")}),
        "/admin/members",
    )
    assert "Member removed from this organization." in flashes(html)
    assert email not in html
    assert membership(admin_engine, world.org_a, user.id) is None
    assert [i.used_at is not None for i in invites_of(admin_engine, world.org_a, user.id)] == [True]
    (removed,) = audit_events(admin_engine, world.org_a, "member.removed")
    assert removed.data == {"email": email, "role": "finance"}


# --- reinvite -------------------------------------------------------------------------------------


def test_reinvite_for_a_pending_member_shows_a_fresh_link_once_and_retires_the_old(admin, app, world, admin_engine):
    email = f"again-{world.suffix}@example.com"
    first = invite_link_token(admin, email=email, name="Alex Again")
    user = user_by_email(admin_engine, email)
    mid = membership(admin_engine, world.org_a, user.id).id
    response = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
    html = followed(admin, response, "/admin/members")
    assert flashes(html) == [
        "A new link was created; earlier links no longer work. It expires in 72 hours."
        " Email is not set up, so send it yourself."
    ]
    second = invite_token(html)
    assert second != first
    assert invite_link(admin.get("/admin/members").get_data(as_text=True)) is None  # shown once

    old, new = invites_of(admin_engine, world.org_a, user.id)
    assert old.token_hash == token_hash(first) and old.used_at is not None
    assert new.token_hash == token_hash(second) and new.used_at is None
    assert (new.email, new.name) == (email, "Alex Again")  # as the admin typed them the first time
    assert membership(admin_engine, world.org_a, user.id).accepted_at is None
    (event,) = audit_events(admin_engine, world.org_a, "member.invite_reissued")
    assert event.entity_id == str(mid) and event.data == {"email": email}

    anon = app.test_client()
    assert anon.get(f"/invite/{first}").status_code == 404
    assert anon.get(f"/invite/{second}").status_code == 200
    assert _set_password(anon, second).status_code == 303
    assert membership(admin_engine, world.org_a, user.id).accepted_at is not None


def test_reinvite_after_the_link_expired_gives_a_link_that_works(admin, app, world, admin_engine):
    token = invite_link_token(admin, email=world.admin_b.email, name="Bea B", role="owner")
    _expire(admin_engine, token)
    mid = membership(admin_engine, world.org_a, world.admin_b.id).id
    html = followed(
        admin,
        admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")}),
        "/admin/members",
    )
    fresh = invite_token(html)
    person = app.test_client()
    assert person.get(f"/invite/{token}").status_code == 404
    assert _join(person, fresh).status_code == 303
    assert membership(admin_engine, world.org_a, world.admin_b.id).accepted_at is not None


def test_reinvite_for_a_member_who_already_joined_is_422(admin, world, admin_engine):
    mid = membership(admin_engine, world.org_a, world.owner.id).id
    response = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "This person has already joined; they sign in with their password." in flashes(html)
    assert invite_link(html) is None
    assert invites_of(admin_engine, world.org_a, world.owner.id) == []
    assert audit_events(admin_engine, world.org_a, "member.invite_reissued") == []


def test_reinvite_after_the_invitation_was_accepted_is_422_and_issues_no_link(admin, app, world, admin_engine):
    email = f"accepted-{world.suffix}@example.com"
    token = invite_link_token(admin, email=email, name="Ace Accepted")
    assert _set_password(app.test_client(), token).status_code == 303
    user = user_by_email(admin_engine, email)
    before = invites_of(admin_engine, world.org_a, user.id)
    mid = membership(admin_engine, world.org_a, user.id).id
    response = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
    assert response.status_code == 422
    assert any("already joined" in f for f in flashes(response.get_data(as_text=True)))
    assert invites_of(admin_engine, world.org_a, user.id) == before


# --- signed in with no accepted membership ---------------------------------------------------------


def test_someone_whose_only_membership_is_pending_signs_in_to_the_no_organization_page(
    admin, app, world, admin_engine, login
):
    token = invite_link_token(admin, email=world.outsider.email, name="Otto Outsider", role="owner")
    person = app.test_client()
    response = login(person, world.outsider)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    home = person.get("/", follow_redirects=True)
    assert home.status_code == 200 and home.history == ()  # no redirect loop
    html = home.get_data(as_text=True)
    assert "No organization yet" in html
    assert "You are not a member of any organization yet. Ask an admin to invite you." in flashes(html)
    assert person.get("/login").headers["Location"] == "/"
    assert person.get("/admin/members").status_code == 404
    assert membership(admin_engine, world.org_a, world.outsider.id).accepted_at is None

    # accepting the link (with the password they signed in with) brings them into the organization
    assert _join(person, token).status_code == 303
    joined = person.get("/").get_data(as_text=True)
    assert "No organization yet" not in joined and f"Welcome to Org A {world.suffix}." in flashes(joined)
    assert membership(admin_engine, world.org_a, world.outsider.id).accepted_at is not None


# --- the same address invited again, or by two organizations ----------------------------------------


def test_after_withdrawing_an_invitation_the_address_can_be_invited_again_with_a_working_link(
    admin, app, world, admin_engine
):
    email = f"comeback-{world.suffix}@example.com"
    first = invite_link_token(admin, email=email, name="Cam Comeback", role="owner")
    user = user_by_email(admin_engine, email)
    mid = membership(admin_engine, world.org_a, user.id).id
    assert (
        admin.post(f"/admin/members/{mid}/remove", data={"csrf_token": csrf_token(admin, "/admin/members")}).status_code
        == 303
    )
    second = invite_link_token(admin, email=email, name="Cam Comeback", role="finance")
    person = app.test_client()
    assert person.get(f"/invite/{first}").status_code == 404
    assert _set_password(person, second).status_code == 303
    m = membership(admin_engine, world.org_a, user.id)
    assert (m.role, m.accepted_at is not None) == ("finance", True)


def test_two_organizations_inviting_the_same_new_address_each_need_their_own_link(app, world, admin_engine, login):
    email = f"shared-{world.suffix}@example.com"
    admin_a, admin_b = app.test_client(), app.test_client()
    assert login(admin_a, world.admin).status_code == 303
    assert login(admin_b, world.admin_b).status_code == 303
    link_a = invite_link_token(admin_a, email=email, name="Sasha Shared", role="owner")
    link_b = invite_link_token(admin_b, email=email, name="Sasha Shared", role="finance")  # same answer in org B
    user = user_by_email(admin_engine, email)

    person = app.test_client()
    assert _set_password(person, link_a).status_code == 303  # joins org A only
    assert membership(admin_engine, world.org_a, user.id).accepted_at is not None
    assert membership(admin_engine, world.org_b, user.id).accepted_at is None
    # the account now has a password: org B's link asks for it rather than setting a new one
    stranger = app.test_client()
    page = stranger.get(f"/invite/{link_b}").get_data(as_text=True)
    assert f"<h1>Join Org B {world.suffix}</h1>" in page and input_names(page) == ["password"]
    assert _join(stranger, link_b, "an attacker's guess").status_code == 401
    assert membership(admin_engine, world.org_b, user.id).accepted_at is None
    assert _join(stranger, link_b, NEW_PASSWORD).status_code == 303
    assert membership(admin_engine, world.org_b, user.id).accepted_at is not None
