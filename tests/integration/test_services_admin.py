"""Admin services run as the real app role, so RLS applies exactly as in production.

Each service validates, writes, records an audit event and commits. Outcomes are checked as the owner
role (``admin_engine``, which bypasses RLS), so a write RLS silently dropped would show up too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from kit.auth import login_limits
from kit.signin import act, actor_of
from sqlalchemy import text

from backoffice.db import present_sign_in
from backoffice.errors import Forbidden, NotFound, ValidationError
from backoffice.queries.identity import load_signed_in
from backoffice.services import auth, contractors, members, organizations
from backoffice.services.contractors import ContractorInput
from backoffice.services.organizations import OrgSettings

PASSWORD = "correct horse battery"  # every world user's password (tests/conftest.py)
NEW_PASSWORD = "a brand new passphrase"


# --- helpers ------------------------------------------------------------------------------------------


def actor(session, person, org_id):
    a = actor_of(session, person.id, org_id)
    assert a is not None, f"{person.email} is not a member of {org_id}"
    return a


def owner_query(admin_engine, sql: str, **params) -> list[dict]:
    with admin_engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def org_state(admin_engine, org_id) -> dict:
    """Everything a failed admin call must leave untouched in one org."""
    q = "select * from {} where org_id = :org order by id"
    return {
        t: owner_query(admin_engine, q.format(t), org=org_id)
        for t in ("memberships", "contractors", "invites", "audit_events")
    } | {"organizations": owner_query(admin_engine, "select * from organizations where id = :org", org=org_id)}


def events(admin_engine, org_id, action: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select seq, actor_user_id, entity_type, entity_id, data from audit_events"
        " where org_id = :org and action = :action order by seq",
        org=org_id,
        action=action,
    )


def membership_id(admin_engine, org_id, user_id):
    return owner_query(
        admin_engine, "select id from memberships where org_id = :org and user_id = :u", org=org_id, u=user_id
    )[0]["id"]


def new_email(world, local: str) -> str:
    return f"{local}-{world.suffix}@example.com"


def membership_of(admin_engine, org_id, user_id) -> dict | None:
    rows = owner_query(
        admin_engine,
        "select id, role, contractor_id, accepted_at from memberships where org_id = :org and user_id = :u",
        org=org_id,
        u=user_id,
    )
    return rows[0] if rows else None


def signed_out(session) -> None:
    """The session as a request from someone not signed in (whoever opens an invitation link)."""
    session.rollback()
    act(session, user_id=None, org_id=None)


# --- members: inviting ---------------------------------------------------------------------------------


def test_inviting_a_new_person_returns_a_one_time_token_stored_only_as_its_hash(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "newcomer")
    result = members.invite_member(app_session, admin, email=email, name="Nia Newcomer", role="finance")

    assert isinstance(result.token, str) and len(result.token) >= 32
    invite = owner_query(
        admin_engine, "select * from invites where org_id = :org and user_id = :u", org=world.org_a, u=result.user_id
    )
    assert len(invite) == 1
    assert invite[0]["token_hash"] == hashlib.sha256(result.token.encode()).hexdigest()
    assert (invite[0]["email"], invite[0]["name"]) == (email, "Nia Newcomer")
    assert invite[0]["created_by"] == world.admin.id and invite[0]["used_at"] is None
    assert invite[0]["expires_at"] - invite[0]["created_at"] == timedelta(hours=72)  # set by the database's clock
    assert result.token not in json.dumps(invite, default=str)
    user = owner_query(admin_engine, "select email, name, password_hash from users where id = :u", u=result.user_id)[0]
    assert user == {"email": email, "name": "Nia Newcomer", "password_hash": None}
    assert membership_of(admin_engine, world.org_a, result.user_id) == {
        "id": result.membership_id,
        "role": "finance",
        "contractor_id": None,
        "accepted_at": None,
    }
    assert actor_of(app_session, result.user_id, world.org_a) is None  # nothing until accepted

    (event,) = events(admin_engine, world.org_a, "member.invited")
    assert event["actor_user_id"] == world.admin.id and event["entity_id"] == str(result.membership_id)
    assert event["data"] == {"email": email, "role": "finance", "contractor_id": None}
    assert result.token not in json.dumps(event["data"])


def test_inviting_someone_who_already_has_an_account_issues_a_link_all_the_same(world, app_session, admin_engine):
    """Nothing in the answer tells an admin whether the address has an account elsewhere."""
    admin = actor(app_session, world.admin_b, world.org_b)
    result = members.invite_member(app_session, admin, email=world.outsider.email, name="Typed By B", role="owner")
    assert result.user_id == world.outsider.id
    assert isinstance(result.token, str) and len(result.token) >= 32
    (invite,) = owner_query(admin_engine, "select * from invites where user_id = :u", u=world.outsider.id)
    assert (invite["org_id"], invite["email"], invite["name"], invite["used_at"]) == (
        world.org_b,
        world.outsider.email,
        "Typed By B",
        None,
    )
    assert invite["token_hash"] == auth.token_hash(result.token)
    # The account is not renamed, and the membership waits for the person.
    assert owner_query(admin_engine, "select name from users where id = :u", u=world.outsider.id) == [
        {"name": world.outsider.name}
    ]
    assert membership_of(admin_engine, world.org_b, world.outsider.id)["accepted_at"] is None
    assert actor_of(app_session, world.outsider.id, world.org_b) is None
    (event,) = events(admin_engine, world.org_b, "member.invited")
    assert event["data"] == {"email": world.outsider.email, "role": "owner", "contractor_id": None}


def test_a_link_issued_by_another_org_never_opens_the_org_a_person_is_pending_in(world, app_session, admin_engine):
    """Org A invites a new person as admin; before they accept, org B's admin invites the same address
    and redeems their own link. That makes them the account's holder in org B, never in org A."""
    admin_a = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "sought-after")
    pending = members.invite_member(app_session, admin_a, email=email, name="Sue Sought", role="admin")
    admin_b = actor(app_session, world.admin_b, world.org_b)
    from_b = members.invite_member(app_session, admin_b, email=email, name="Sue Sought", role="owner")
    assert from_b.user_id == pending.user_id and from_b.token != pending.token

    signed_out(app_session)
    in_b = auth.accept_invite_with_new_password(app_session, from_b.token, NEW_PASSWORD, NEW_PASSWORD)
    assert (in_b.user_id, in_b.org_id) == (pending.user_id, world.org_b)
    assert membership_of(admin_engine, world.org_a, pending.user_id)["accepted_at"] is None
    assert actor_of(app_session, pending.user_id, world.org_a) is None
    assert auth.switch_organization(app_session, pending.user_id, world.org_a) is None
    # Org A's link now asks whoever holds it for that account's password.
    assert auth.invite_details(app_session, pending.token).has_password is True
    signed_out(app_session)
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(app_session, pending.token, "another passphrase", "another passphrase")
    assert set(exc.value.fields) == {"token"}
    assert membership_of(admin_engine, world.org_a, pending.user_id)["accepted_at"] is None


def test_inviting_a_contractor_user_links_it_to_the_contractor(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    result = members.invite_member(
        app_session,
        admin,
        email=new_email(world, "ycolleague"),
        name="Yan Y",
        role="contractor",
        contractor_id=str(world.contractor_y),
    )
    m = owner_query(admin_engine, "select role, contractor_id from memberships where id = :id", id=result.membership_id)
    assert m == [{"role": "contractor", "contractor_id": world.contractor_y}]


@pytest.mark.parametrize("email_of", ["finance", "contractor_x_user"])
def test_inviting_an_existing_member_again_is_a_validation_error_on_email(world, app_session, admin_engine, email_of):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    email = getattr(world, email_of).email.upper()
    with pytest.raises(ValidationError) as exc:
        members.invite_member(app_session, admin, email=email, name="Again", role="owner")
    assert set(exc.value.fields) == {"email"}
    assert "already a member" in exc.value.fields["email"]
    assert org_state(admin_engine, world.org_a) == before


def test_inviting_someone_already_invited_is_a_validation_error_on_email(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "twice")
    members.invite_member(app_session, admin, email=email, name="Twice", role="owner")
    before = org_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as exc:
        members.invite_member(app_session, admin, email=email.upper(), name="Twice Again", role="admin")
    assert set(exc.value.fields) == {"email"}
    assert "already invited" in exc.value.fields["email"]
    assert org_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    ("contractor_id", "why"),
    [(None, "missing"), ("not-a-uuid", "malformed"), ("contractor_z", "another org's contractor")],
)
def test_contractor_role_needs_a_contractor_of_this_org(world, app_session, admin_engine, contractor_id, why):
    if contractor_id == "contractor_z":
        contractor_id = str(world.contractor_z)
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "nocontractor")
    with pytest.raises(ValidationError) as exc:
        members.invite_member(
            app_session, admin, email=email, name="No Contractor", role="contractor", contractor_id=contractor_id
        )
    assert set(exc.value.fields) == {"contractor_id"}, why
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before
    assert owner_query(admin_engine, "select id from users where lower(email) = lower(:e)", e=email) == []


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"email": "not an email"}, {"email"}),
        ({"email": ""}, {"email"}),
        ({"name": "   "}, {"name"}),
        ({"role": "superadmin"}, {"role"}),
        ({"email": "", "name": "", "role": "x"}, {"email", "name", "role"}),
    ],
)
def test_invite_input_errors_are_reported_per_field(world, app_session, admin_engine, fields, errors):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    args = {"email": new_email(world, "valid"), "name": "Valid Name", "role": "owner"} | fields
    with pytest.raises(ValidationError) as exc:
        members.invite_member(app_session, admin, **args)
    assert set(exc.value.fields) == errors
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_only_admins_manage_members(world, app_session, admin_engine, who):
    before = org_state(admin_engine, world.org_a)
    non_admin = actor(app_session, getattr(world, who), world.org_a)
    finance_membership = membership_id(admin_engine, world.org_a, world.finance.id)
    with pytest.raises(Forbidden):
        members.invite_member(app_session, non_admin, email=new_email(world, "sneaky"), name="Sneaky", role="admin")
    with pytest.raises(Forbidden):
        members.change_role(app_session, non_admin, finance_membership, role="admin")
    with pytest.raises(Forbidden):
        members.remove_member(app_session, non_admin, finance_membership)
    with pytest.raises(Forbidden):
        members.reissue_invite(app_session, non_admin, finance_membership)
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


# --- members: roles and removal ----------------------------------------------------------------------------


def test_the_only_admin_cannot_be_demoted(world, app_session, admin_engine):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    with pytest.raises(ValidationError) as exc:
        members.change_role(app_session, admin, membership_id(admin_engine, world.org_a, world.admin.id), role="owner")
    assert set(exc.value.fields) == {"role"}
    assert org_state(admin_engine, world.org_a) == before


def test_the_only_admin_cannot_be_removed(world, app_session, admin_engine):
    before = org_state(admin_engine, world.org_b)
    admin = actor(app_session, world.admin_b, world.org_b)
    with pytest.raises(ValidationError) as exc:
        members.remove_member(app_session, admin, membership_id(admin_engine, world.org_b, world.admin_b.id))
    assert set(exc.value.fields) == {"member"}
    assert org_state(admin_engine, world.org_b) == before


def test_an_admin_can_step_down_once_there_is_another_admin(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    owner_m = membership_id(admin_engine, world.org_a, world.owner.id)
    admin_m = membership_id(admin_engine, world.org_a, world.admin.id)
    members.change_role(app_session, admin, owner_m, role="admin")
    members.change_role(app_session, admin, admin_m, role="finance")
    roles = {
        r["user_id"]: r["role"]
        for r in owner_query(admin_engine, "select user_id, role from memberships where org_id = :org", org=world.org_a)
    }
    assert roles[world.owner.id] == "admin" and roles[world.admin.id] == "finance"

    changed = events(admin_engine, world.org_a, "member.role_changed")
    assert [(e["entity_id"], e["data"]) for e in changed] == [
        (
            str(owner_m),
            {"before": {"role": "owner", "contractor_id": None}, "after": {"role": "admin", "contractor_id": None}},
        ),
        (
            str(admin_m),
            {"before": {"role": "admin", "contractor_id": None}, "after": {"role": "finance", "contractor_id": None}},
        ),
    ]
    # The former admin's actor is now finance, and the database agrees.
    former = actor(app_session, world.admin, world.org_a)
    with pytest.raises(Forbidden):
        members.change_role(app_session, former, admin_m, role="admin")


def test_changing_a_contractor_user_to_staff_drops_the_contractor_link(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    m = membership_id(admin_engine, world.org_a, world.contractor_y_user.id)
    members.change_role(app_session, admin, m, role="owner")
    assert owner_query(admin_engine, "select role, contractor_id from memberships where id = :id", id=m) == [
        {"role": "owner", "contractor_id": None}
    ]
    (event,) = events(admin_engine, world.org_a, "member.role_changed")
    assert event["data"]["before"] == {"role": "contractor", "contractor_id": str(world.contractor_y)}


def test_removing_a_member_deletes_the_membership_voids_invites_and_is_audited(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "shortlived")
    invited = members.invite_member(app_session, admin, email=email, name="Short Lived", role="owner")
    members.remove_member(app_session, admin, invited.membership_id)
    assert owner_query(admin_engine, "select id from memberships where id = :id", id=invited.membership_id) == []
    (invite,) = owner_query(admin_engine, "select used_at from invites where user_id = :u", u=invited.user_id)
    assert invite["used_at"] is not None
    (event,) = events(admin_engine, world.org_a, "member.removed")
    assert event["entity_id"] == str(invited.membership_id) and event["actor_user_id"] == world.admin.id
    # The invitee's account is invisible to the org, so the event names them as the invite did.
    assert event["data"] == {"email": email, "role": "owner"}
    signed_out(app_session)
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert set(exc.value.fields) == {"token"}
    assert owner_query(admin_engine, "select password_hash from users where id = :u", u=invited.user_id) == [
        {"password_hash": None}
    ]


def test_removing_an_accepted_member_ends_their_access(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    members.remove_member(app_session, admin, membership_id(admin_engine, world.org_a, world.finance.id))
    assert actor_of(app_session, world.finance.id, world.org_a) is None
    (event,) = events(admin_engine, world.org_a, "member.removed")
    assert event["data"] == {"email": world.finance.email, "role": "finance"}


def test_a_link_stops_working_once_its_membership_is_gone(world, app_session, admin_engine):
    """Even if the membership is deleted without voiding the invite (raw SQL as the admin), the link
    no longer joins anything: a link is only as good as the pending membership it belongs to."""
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=new_email(world, "orphan"), name="Or Phan", role="admin")
    app_session.execute(text("delete from memberships where id = :id"), {"id": invited.membership_id})
    app_session.commit()
    assert owner_query(admin_engine, "select used_at from invites where user_id = :u", u=invited.user_id) == [
        {"used_at": None}
    ]
    assert auth.invite_details(app_session, invited.token) is None
    signed_out(app_session)
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert set(exc.value.fields) == {"token"}
    assert owner_query(admin_engine, "select password_hash from users where id = :u", u=invited.user_id) == [
        {"password_hash": None}
    ]
    assert membership_of(admin_engine, world.org_a, invited.user_id) is None


def test_an_admin_cannot_touch_another_orgs_membership(world, app_session, admin_engine):
    before = org_state(admin_engine, world.org_a)
    admin_b = actor(app_session, world.admin_b, world.org_b)
    target = membership_id(admin_engine, world.org_a, world.finance.id)
    with pytest.raises(NotFound):
        members.change_role(app_session, admin_b, target, role="admin")
    app_session.rollback()
    with pytest.raises(NotFound):
        members.remove_member(app_session, admin_b, target)
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


def test_reissuing_an_invite_voids_the_old_link_and_is_audited(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "reissue")
    invited = members.invite_member(app_session, admin, email=email, name="Re Issue", role="owner")
    new_token = members.reissue_invite(app_session, admin, invited.membership_id)
    assert new_token != invited.token
    invites = owner_query(
        admin_engine,
        "select token_hash, email, name, used_at from invites"
        " where user_id = :u order by created_at, used_at nulls last",
        u=invited.user_id,
    )
    assert [(i["token_hash"], i["email"], i["name"], i["used_at"] is None) for i in invites] == [
        (auth.token_hash(invited.token), email, "Re Issue", False),
        (auth.token_hash(new_token), email, "Re Issue", True),
    ]
    (event,) = events(admin_engine, world.org_a, "member.invite_reissued")
    assert event["entity_id"] == str(invited.membership_id) and event["data"] == {"email": email}
    assert auth.invite_details(app_session, invited.token) is None
    signed_out(app_session)
    with pytest.raises(ValidationError):
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert (
        auth.accept_invite_with_new_password(app_session, new_token, NEW_PASSWORD, NEW_PASSWORD).user_id
        == invited.user_id
    )


@pytest.mark.parametrize("how", ["created by set-up", "accepted through the link"])
def test_reissuing_for_someone_who_has_joined_is_refused(world, app_session, admin_engine, how):
    admin = actor(app_session, world.admin, world.org_a)
    if how == "created by set-up":
        target = membership_id(admin_engine, world.org_a, world.finance.id)
    else:
        invited = members.invite_member(
            app_session, admin, email=new_email(world, "joined"), name="Jo Ined", role="owner"
        )
        signed_out(app_session)
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
        target = invited.membership_id
        admin = actor(app_session, world.admin, world.org_a)
    before = org_state(admin_engine, world.org_a)
    with pytest.raises(ValidationError) as exc:
        members.reissue_invite(app_session, admin, target)
    assert set(exc.value.fields) == {"invite"}
    assert org_state(admin_engine, world.org_a) == before


def test_a_pending_admin_does_not_count_as_the_orgs_other_admin(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=new_email(world, "second"), name="Sec Ond", role="admin")
    before = org_state(admin_engine, world.org_a)
    own = membership_id(admin_engine, world.org_a, world.admin.id)
    with pytest.raises(ValidationError) as exc:
        members.change_role(app_session, admin, own, role="owner")
    assert set(exc.value.fields) == {"role"}
    with pytest.raises(ValidationError) as exc:
        members.remove_member(app_session, admin, own)
    assert set(exc.value.fields) == {"member"}
    assert org_state(admin_engine, world.org_a) == before
    # A pending admin can be withdrawn, though: it is not the org's only (accepted) admin.
    members.remove_member(app_session, admin, invited.membership_id)
    assert membership_of(admin_engine, world.org_a, invited.user_id) is None


# --- auth ---------------------------------------------------------------------------------------------------


def test_authenticate_returns_the_user_for_the_right_password(world, app_session, admin_engine):
    assert auth.authenticate(app_session, world.finance.email, PASSWORD).user_id == world.finance.id
    assert auth.authenticate(app_session, f"  {world.finance.email.upper()} ", PASSWORD).user_id == world.finance.id
    (user,) = owner_query(admin_engine, "select last_login_at from users where id = :u", u=world.finance.id)
    assert user["last_login_at"] is not None


def test_a_wrong_password_fails(world, app_session):
    with pytest.raises(auth.LoginFailed):
        auth.authenticate(app_session, world.finance.email, PASSWORD + "!")


def test_an_unknown_email_fails_with_the_same_message_as_a_wrong_password(world, app_session):
    with pytest.raises(auth.LoginFailed) as wrong_password:
        auth.authenticate(app_session, world.owner.email, "wrong password")
    with pytest.raises(auth.LoginFailed) as unknown:
        auth.authenticate(app_session, new_email(world, "nobody"), PASSWORD)
    assert unknown.value.message == wrong_password.value.message
    assert type(unknown.value) is type(wrong_password.value)


def test_five_failures_lock_the_address_and_then_even_the_right_password_is_refused(world, app_session):
    email = world.contractor_y_user.email
    for _ in range(4):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, email, "wrong password")
    with pytest.raises(auth.LoginLocked) as fifth:
        auth.authenticate(app_session, email, "wrong password")
    assert fifth.value.until > datetime.now(UTC)
    with pytest.raises(auth.LoginLocked):
        auth.authenticate(app_session, email, PASSWORD)
    with pytest.raises(auth.LoginLocked):
        auth.authenticate(app_session, email.upper(), PASSWORD)
    # Other addresses are unaffected.
    assert auth.authenticate(app_session, world.contractor_x_user.email, PASSWORD).user_id == world.contractor_x_user.id


def test_a_success_resets_the_failure_count(world, app_session):
    email = world.owner.email
    for _ in range(4):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, email, "wrong password")
    assert auth.authenticate(app_session, email, PASSWORD).user_id == world.owner.id
    for _ in range(4):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, email, "wrong password")
    assert auth.authenticate(app_session, email, PASSWORD).user_id == world.owner.id


def test_an_invited_person_without_a_password_cannot_sign_in(world, app_session):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(
        app_session, admin, email=new_email(world, "pending"), name="Pen Ding", role="owner"
    )
    for password in ("", PASSWORD):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, new_email(world, "pending"), password)
    assert invited.token


def test_accepting_an_invite_sets_the_password_and_joins_once(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "redeemer")
    invited = members.invite_member(app_session, admin, email=email, name="Red Eemer", role="finance")

    assert auth.invite_details(app_session, invited.token) == auth.InviteDetails(email, f"Org A {world.suffix}", False)
    signed_out(app_session)
    joined = auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert (joined.user_id, joined.org_id, joined.role.value) == (invited.user_id, world.org_a, "finance")
    assert membership_of(admin_engine, world.org_a, invited.user_id)["accepted_at"] is not None
    (invite,) = owner_query(admin_engine, "select used_at from invites where user_id = :u", u=invited.user_id)
    assert invite["used_at"] is not None
    (user,) = owner_query(admin_engine, "select last_login_at from users where id = :u", u=invited.user_id)
    assert user["last_login_at"] is not None  # joining signs them in
    assert auth.authenticate(app_session, email, NEW_PASSWORD).user_id == invited.user_id
    assert actor_of(app_session, invited.user_id, world.org_a).role.value == "finance"
    (event,) = events(admin_engine, world.org_a, "member.joined")
    assert event["actor_user_id"] == invited.user_id and event["entity_id"] == str(invited.user_id)
    assert event["data"] == {"email": email, "role": "finance"}

    signed_out(app_session)
    with pytest.raises(ValidationError) as again:
        auth.accept_invite_with_new_password(
            app_session, invited.token, "someone elses password", "someone elses password"
        )
    assert set(again.value.fields) == {"token"}
    with pytest.raises(ValidationError) as again:
        auth.accept_invite_with_existing_password(app_session, invited.token, NEW_PASSWORD)
    assert set(again.value.fields) == {"token"}
    assert auth.invite_details(app_session, invited.token) is None
    assert auth.authenticate(app_session, email, NEW_PASSWORD).user_id == invited.user_id  # the first password stands
    assert len(events(admin_engine, world.org_a, "member.joined")) == 1


def test_accepting_with_the_existing_password_joins_and_a_wrong_one_does_not(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=world.admin_b.email, name="Bea", role="owner")
    assert auth.invite_details(app_session, invited.token) == auth.InviteDetails(
        world.admin_b.email, f"Org A {world.suffix}", True
    )
    hash_before = owner_query(admin_engine, "select password_hash from users where id = :u", u=world.admin_b.id)

    signed_out(app_session)
    with pytest.raises(auth.LoginFailed):
        auth.accept_invite_with_existing_password(app_session, invited.token, NEW_PASSWORD)
    assert membership_of(admin_engine, world.org_a, world.admin_b.id)["accepted_at"] is None
    assert auth.invite_details(app_session, invited.token) is not None  # still usable

    joined = auth.accept_invite_with_existing_password(app_session, invited.token, PASSWORD)
    assert (joined.user_id, joined.org_id, joined.role.value) == (world.admin_b.id, world.org_a, "owner")
    assert membership_of(admin_engine, world.org_a, world.admin_b.id)["accepted_at"] is not None
    assert owner_query(admin_engine, "select password_hash from users where id = :u", u=world.admin_b.id) == hash_before
    assert actor_of(app_session, world.admin_b.id, world.org_b).role.value == "admin"  # still admin in org B
    (event,) = events(admin_engine, world.org_a, "member.joined")
    assert event["actor_user_id"] == world.admin_b.id
    assert auth.invite_details(app_session, invited.token) is None


def test_accepting_with_an_existing_password_is_throttled_like_a_sign_in(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=world.outsider.email, name="Otto", role="owner")
    signed_out(app_session)
    with login_limits(admin_engine, max_failures=2, lock_minutes=15):
        with pytest.raises(auth.LoginFailed):
            auth.accept_invite_with_existing_password(app_session, invited.token, "guess one")
        with pytest.raises(auth.LoginLocked):
            auth.accept_invite_with_existing_password(app_session, invited.token, "guess two")
    with pytest.raises(auth.LoginLocked):
        auth.accept_invite_with_existing_password(app_session, invited.token, PASSWORD)
    with pytest.raises(auth.LoginLocked):
        auth.authenticate(app_session, world.outsider.email, PASSWORD)  # one counter for both ways in
    assert membership_of(admin_engine, world.org_a, world.outsider.id)["accepted_at"] is None


def test_an_account_without_a_password_cannot_accept_by_claiming_one(world, app_session, admin_engine):
    """The existing-password way in is no shortcut around setting a password."""
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=new_email(world, "nopw"), name="No Pw", role="owner")
    signed_out(app_session)
    for password in ("", PASSWORD):
        with pytest.raises(auth.LoginFailed):
            auth.accept_invite_with_existing_password(app_session, invited.token, password)
    assert membership_of(admin_engine, world.org_a, invited.user_id)["accepted_at"] is None
    assert (
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD).user_id
        == invited.user_id
    )


def test_a_deactivated_account_cannot_accept_an_invite(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=world.outsider.email, name="Otto", role="owner")
    with admin_engine.begin() as conn:
        conn.execute(text("update users set is_active = false where id = :u"), {"u": world.outsider.id})
    signed_out(app_session)
    with pytest.raises(auth.LoginFailed):
        auth.accept_invite_with_existing_password(app_session, invited.token, PASSWORD)
    assert membership_of(admin_engine, world.org_a, world.outsider.id)["accepted_at"] is None
    assert actor_of(app_session, world.outsider.id, world.org_a) is None


def test_an_expired_invite_cannot_be_accepted(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "late")
    invited = members.invite_member(app_session, admin, email=email, name="Lay Te", role="owner")
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "update invites set created_at = now() - interval '4 days', expires_at = now() - interval '1 day'"
                " where token_hash = :h"
            ),
            {"h": auth.token_hash(invited.token)},
        )
    assert auth.invite_details(app_session, invited.token) is None
    signed_out(app_session)
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert set(exc.value.fields) == {"token"}
    assert owner_query(admin_engine, "select password_hash from users where id = :u", u=invited.user_id) == [
        {"password_hash": None}
    ]
    assert membership_of(admin_engine, world.org_a, invited.user_id)["accepted_at"] is None


@pytest.mark.parametrize(
    ("created_at", "expires_at"),
    [("now()", "now() + interval '72 hours 1 second'"), ("now()", "now()"), ("now()", "now() + interval '1 year'")],
)
def test_no_invite_lives_longer_than_72_hours_even_written_by_the_owner(world, admin_engine, created_at, expires_at):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError) as exc, admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into invites (org_id, user_id, email, name, token_hash, created_by, created_at, expires_at)"
                f" values (:org, :u, :e, 'X', :h, :by, {created_at}, {expires_at})"
            ),
            {
                "org": world.org_a,
                "u": world.outsider.id,
                "e": world.outsider.email,
                "h": "c" * 64,
                "by": world.admin.id,
            },
        )
    assert exc.value.orig.sqlstate == "23514"  # check_violation


@pytest.mark.parametrize(
    ("password", "confirm", "field"), [("short", "short", "password"), (NEW_PASSWORD, NEW_PASSWORD + "x", "confirm")]
)
def test_a_bad_new_password_leaves_the_invite_usable(world, app_session, password, confirm, field):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(
        app_session, admin, email=new_email(world, "careful"), name="Care Ful", role="owner"
    )
    signed_out(app_session)
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(app_session, invited.token, password, confirm)
    assert set(exc.value.fields) == {field}
    assert (
        auth.accept_invite_with_new_password(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD).user_id
        == invited.user_id
    )


@pytest.mark.parametrize("token", ["made-up-token", "", "x" * 10_000])
def test_an_unknown_token_cannot_be_accepted(world, app_session, token):
    assert auth.invite_details(app_session, token) is None
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(app_session, token, NEW_PASSWORD, NEW_PASSWORD)
    assert set(exc.value.fields) == {"token"}
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_existing_password(app_session, token, PASSWORD)
    assert set(exc.value.fields) == {"token"}


# --- sessions -----------------------------------------------------------------------------------------------


def signed_in_user(session, user_id) -> bool:
    """Whether the sign-in the session presents still names ``user_id``, as every request asks."""
    return load_signed_in(session, user_id, None) is not None


def sign_in(session, person) -> auth.SignIn:
    return auth.authenticate(session, person.email, PASSWORD)


def test_starting_a_session_picks_the_requested_org(world, app_session, admin_engine):
    actor_b = auth.start_session(app_session, sign_in(app_session, world.admin), world.org_b)
    assert actor_b.org_id == world.org_a  # not a member of B: the first org
    actor_a = auth.start_session(app_session, sign_in(app_session, world.admin), world.org_a)
    assert (actor_a.org_id, actor_a.role.value) == (world.org_a, "admin")
    assert len(events(admin_engine, world.org_a, "auth.signed_in")) == 2
    assert auth.start_session(app_session, sign_in(app_session, world.outsider)) is None


def test_a_sign_in_opens_a_session_the_database_keeps_hashed_for_the_servers_hours(world, app_session, admin_engine):
    signed = sign_in(app_session, world.finance)
    assert signed.user_id == world.finance.id and len(signed.token) == 64
    (row,) = owner_query(
        admin_engine,
        "select s.user_id, s.token_hash, extract(epoch from s.expires_at - s.created_at) / 3600 as hours,"
        " (select session_hours from login_settings) as setting from user_sessions s"
        " where s.token_hash = encode(sha256(convert_to(:t, 'UTF8')), 'hex')",
        t=signed.token,
    )
    assert row["user_id"] == world.finance.id and signed.token not in row["token_hash"]
    assert row["hours"] == row["setting"] == 12


def test_signing_out_ends_every_sign_in_of_that_user_only(world, app_sessions, admin_engine):
    with app_sessions() as first, app_sessions() as other, app_sessions() as owner:
        finance = sign_in(first, world.finance)
        actor_a = auth.start_session(first, finance, world.org_a)
        present_sign_in(other, sign_in(other, world.finance).token)  # another device
        auth.start_session(owner, sign_in(owner, world.owner), world.org_a)
        assert signed_in_user(first, world.finance.id) and signed_in_user(other, world.finance.id)
        auth.sign_out(first, world.finance.id, actor_a)

        assert signed_in_user(first, world.finance.id) is False  # this cookie, and any other device's
        assert signed_in_user(other, world.finance.id) is False
        assert signed_in_user(owner, world.owner.id) is True  # others are unaffected
        (event,) = events(admin_engine, world.org_a, "auth.signed_out")
        assert event["actor_user_id"] == world.finance.id
        auth.start_session(first, sign_in(first, world.finance), world.org_a)
        assert signed_in_user(first, world.finance.id) is True


def test_a_user_in_no_organization_can_still_sign_out(world, app_session, admin_engine):
    auth.start_session(app_session, sign_in(app_session, world.outsider))
    assert signed_in_user(app_session, world.outsider.id) is True
    auth.sign_out(app_session, world.outsider.id, None)
    assert signed_in_user(app_session, world.outsider.id) is False
    (row,) = owner_query(
        admin_engine,
        "select count(*) as open from user_sessions where user_id = :u and ended_at is null",
        u=world.outsider.id,
    )
    assert row["open"] == 0


def test_a_deactivated_user_is_no_longer_signed_in(world, app_session, admin_engine):
    auth.start_session(app_session, sign_in(app_session, world.finance), world.org_a)
    with admin_engine.begin() as conn:
        conn.execute(text("update users set is_active = false where id = :u"), {"u": world.finance.id})
    assert signed_in_user(app_session, world.finance.id) is False


def test_a_sign_in_names_only_its_own_person(world, app_session):
    """The cookie's sign-in is the finance person's: naming the admin alongside it is not believed."""
    present_sign_in(app_session, sign_in(app_session, world.finance).token)
    assert signed_in_user(app_session, world.admin.id) is False
    assert signed_in_user(app_session, world.finance.id) is True


# --- contractors --------------------------------------------------------------------------------------------


def contractor_row(admin_engine, contractor_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from contractors where id = :id", id=contractor_id)
    return row


def test_an_admin_creates_a_contractor_and_it_is_audited(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "w")
    created = contractors.create_contractor(
        app_session, admin, ContractorInput("  Contractor W  ", email, " VW-1 ", "IBAN 123")
    )
    row = contractor_row(admin_engine, created.id)
    assert (row["org_id"], row["legal_name"], row["email"], row["ap_vendor_id"], row["payout_details"]) == (
        world.org_a,
        "Contractor W",
        email,
        "VW-1",
        "IBAN 123",
    )
    (event,) = [e for e in events(admin_engine, world.org_a, "contractor.created") if e["actor_user_id"] is not None]
    assert event["entity_id"] == str(created.id) and event["actor_user_id"] == world.admin.id
    assert event["data"]["legal_name"] == "Contractor W"


def test_an_admin_updates_a_contractor_and_the_event_keeps_before_and_after(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    before = contractor_row(admin_engine, world.contractor_x)
    contractors.update_contractor(
        app_session,
        admin,
        str(world.contractor_x),
        ContractorInput(before["legal_name"], before["email"], "VX-NEW", "ACH 42"),
    )
    after = contractor_row(admin_engine, world.contractor_x)
    assert (after["ap_vendor_id"], after["payout_details"]) == ("VX-NEW", "ACH 42")
    assert after["updated_at"] > before["updated_at"]
    (event,) = events(admin_engine, world.org_a, "contractor.updated")
    assert event["data"] == {
        "ap_vendor_id": {"before": before["ap_vendor_id"], "after": "VX-NEW"},
        "payout_details": {"before": None, "after": "ACH 42"},
    }


def test_an_update_that_changes_nothing_records_nothing(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    row = contractor_row(admin_engine, world.contractor_x)
    contractors.update_contractor(
        app_session,
        admin,
        world.contractor_x,
        ContractorInput(row["legal_name"], row["email"], row["ap_vendor_id"], ""),
    )
    assert events(admin_engine, world.org_a, "contractor.updated") == []
    assert contractor_row(admin_engine, world.contractor_x) == row


@pytest.mark.parametrize(
    ("field", "value_of"),
    [
        ("email", lambda w: f"X-{w.suffix}@example.com"),  # contractor X's email, in other case
        ("ap_vendor_id", lambda w: f"VX-{w.suffix}"),  # contractor X's AP vendor id
    ],
)
def test_creating_a_contractor_with_a_taken_email_or_vendor_id_fails_at_that_field(
    world, app_session, admin_engine, field, value_of
):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    data = replace(ContractorInput("Contractor Dup", new_email(world, "dup"), "VDUP"), **{field: value_of(world)})
    with pytest.raises(ValidationError) as exc:
        contractors.create_contractor(app_session, admin, data)
    assert set(exc.value.fields) == {field}
    assert org_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    ("field", "value_of"),
    [("email", lambda w: f"X-{w.suffix}@Example.com"), ("ap_vendor_id", lambda w: f"VX-{w.suffix}")],
)
def test_updating_a_contractor_to_a_taken_email_or_vendor_id_fails_at_that_field(
    world, app_session, admin_engine, field, value_of
):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    y = contractor_row(admin_engine, world.contractor_y)
    data = replace(ContractorInput(y["legal_name"], y["email"], "VY-NEW", "changed"), **{field: value_of(world)})
    with pytest.raises(ValidationError) as exc:
        contractors.update_contractor(app_session, admin, world.contractor_y, data)
    assert set(exc.value.fields) == {field}
    assert org_state(admin_engine, world.org_a) == before


def test_another_orgs_contractor_may_use_the_same_email_and_vendor_id(world, app_session, admin_engine):
    admin_b = actor(app_session, world.admin_b, world.org_b)
    created = contractors.create_contractor(
        app_session, admin_b, ContractorInput("X in B", f"x-{world.suffix}@example.com", f"VX-{world.suffix}")
    )
    assert contractor_row(admin_engine, created.id)["org_id"] == world.org_b


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (ContractorInput("", "w@example.com"), {"legal_name"}),
        (ContractorInput("W", "not-an-email"), {"email"}),
        (ContractorInput("W", "w@example.com", "v" * 65), {"ap_vendor_id"}),
        (ContractorInput("W", "w@example.com", "", "p" * 501), {"payout_details"}),
        (ContractorInput("W\x00", "w@example.com"), {"legal_name"}),
        (ContractorInput(" ", " "), {"legal_name", "email"}),
    ],
)
def test_contractor_input_errors_are_reported_per_field(world, app_session, admin_engine, data, fields):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    with pytest.raises(ValidationError) as exc:
        contractors.create_contractor(app_session, admin, data)
    assert set(exc.value.fields) == fields
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_only_admins_create_or_update_contractors(world, app_session, admin_engine, who):
    before = org_state(admin_engine, world.org_a)
    non_admin = actor(app_session, getattr(world, who), world.org_a)
    with pytest.raises(Forbidden):
        contractors.create_contractor(app_session, non_admin, ContractorInput("Sneaky", new_email(world, "sneaky")))
    with pytest.raises(Forbidden):
        contractors.update_contractor(
            app_session, non_admin, world.contractor_x, ContractorInput("Sneaky", new_email(world, "sneaky"))
        )
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


def test_an_admin_cannot_update_another_orgs_contractor(world, app_session, admin_engine):
    before = contractor_row(admin_engine, world.contractor_x)
    admin_b = actor(app_session, world.admin_b, world.org_b)
    with pytest.raises(NotFound):
        contractors.update_contractor(
            app_session, admin_b, world.contractor_x, ContractorInput("Taken", new_email(world, "taken"))
        )
    app_session.rollback()
    assert contractor_row(admin_engine, world.contractor_x) == before


# --- organization settings ------------------------------------------------------------------------------------


def settings_of(admin_engine, org_id) -> OrgSettings:
    (row,) = owner_query(
        admin_engine,
        "select name, default_currency, default_retainage_bps, payment_terms_days, partial_policy"
        " from organizations where id = :id",
        id=org_id,
    )
    return OrgSettings(**row)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"default_currency": "usd"}, "default_currency"),
        ({"default_currency": "XXX"}, "default_currency"),
        ({"default_retainage_bps": -1}, "default_retainage"),
        ({"default_retainage_bps": 10001}, "default_retainage"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"payment_terms_days": 366}, "payment_terms_days"),
        ({"partial_policy": "pay_everything"}, "partial_policy"),
    ],
)
def test_invalid_settings_are_reported_per_field_and_change_nothing(world, app_session, admin_engine, change, field):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    with pytest.raises(ValidationError) as exc:
        organizations.update_settings(app_session, admin, replace(settings_of(admin_engine, world.org_a), **change))
    assert set(exc.value.fields) == {field}
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


def test_all_invalid_settings_are_reported_at_once(world, app_session):
    admin = actor(app_session, world.admin, world.org_a)
    with pytest.raises(ValidationError) as exc:
        organizations.update_settings(app_session, admin, OrgSettings("", "EURO", 20000, 1000, ""))
    assert set(exc.value.fields) == {
        "name",
        "default_currency",
        "default_retainage",
        "payment_terms_days",
        "partial_policy",
    }


def test_updating_settings_records_each_changed_field_before_and_after(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    old = settings_of(admin_engine, world.org_a)
    new = replace(
        old, name=f"  Renamed A {world.suffix} ", default_currency="JPY", payment_terms_days=0, partial_policy="split"
    )
    organizations.update_settings(app_session, admin, new)

    assert settings_of(admin_engine, world.org_a) == replace(new, name=f"Renamed A {world.suffix}")
    (event,) = events(admin_engine, world.org_a, "organization.settings_changed")
    assert event["entity_id"] == str(world.org_a) and event["actor_user_id"] == world.admin.id
    assert event["data"] == {
        "name": {"before": old.name, "after": f"Renamed A {world.suffix}"},
        "default_currency": {"before": old.default_currency, "after": "JPY"},
        "payment_terms_days": {"before": old.payment_terms_days, "after": 0},
        "partial_policy": {"before": old.partial_policy, "after": "split"},
    }
    assert settings_of(admin_engine, world.org_b).name == f"Org B {world.suffix}"  # the other org is untouched


def test_saving_unchanged_settings_records_no_event(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    organizations.update_settings(app_session, admin, settings_of(admin_engine, world.org_a))
    assert events(admin_engine, world.org_a, "organization.settings_changed") == []


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_only_admins_change_settings(world, app_session, admin_engine, who):
    before = org_state(admin_engine, world.org_a)
    non_admin = actor(app_session, getattr(world, who), world.org_a)
    with pytest.raises(Forbidden):
        organizations.update_settings(
            app_session, non_admin, replace(settings_of(admin_engine, world.org_a), name="Hijacked")
        )
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before
