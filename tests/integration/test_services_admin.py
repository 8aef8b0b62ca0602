"""Admin services run as the real app role, so RLS applies exactly as in production.

Each service validates, writes, records an audit event and commits. Outcomes are checked as the owner
role (``admin_engine``, which bypasses RLS), so a write RLS silently dropped would show up too.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from backoffice.errors import Forbidden, NotFound, ValidationError
from backoffice.queries.identity import actor_for
from backoffice.services import auth, contractors, members, organizations
from backoffice.services.contractors import ContractorInput
from backoffice.services.organizations import OrgSettings

PASSWORD = "correct horse battery"  # every world user's password (tests/conftest.py)
NEW_PASSWORD = "a brand new passphrase"


# --- helpers ------------------------------------------------------------------------------------------


def actor(session, person, org_id):
    a = actor_for(session, person.id, org_id)
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
        org=org_id, action=action,
    )


def membership_id(admin_engine, org_id, user_id):
    return owner_query(admin_engine, "select id from memberships where org_id = :org and user_id = :u", org=org_id, u=user_id)[0]["id"]


def new_email(world, local: str) -> str:
    return f"{local}-{world.suffix}@example.com"


# --- members: inviting ---------------------------------------------------------------------------------


def test_inviting_a_new_person_returns_a_one_time_token_stored_only_as_its_hash(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "newcomer")
    result = members.invite_member(app_session, admin, email=email, name="Nia Newcomer", role="finance")

    assert isinstance(result.token, str) and len(result.token) >= 32
    invite = owner_query(admin_engine, "select * from invites where org_id = :org and user_id = :u", org=world.org_a, u=result.user_id)
    assert len(invite) == 1
    assert invite[0]["token_hash"] == hashlib.sha256(result.token.encode()).hexdigest()
    assert invite[0]["created_by"] == world.admin.id and invite[0]["used_at"] is None
    assert timedelta(hours=71) < invite[0]["expires_at"] - datetime.now(timezone.utc) <= timedelta(hours=72)
    assert result.token not in json.dumps(invite, default=str)
    user = owner_query(admin_engine, "select email, password_hash from users where id = :u", u=result.user_id)[0]
    assert user == {"email": email, "password_hash": None}
    m = owner_query(admin_engine, "select id, role, contractor_id from memberships where org_id = :org and user_id = :u", org=world.org_a, u=result.user_id)
    assert m == [{"id": result.membership_id, "role": "finance", "contractor_id": None}]

    (event,) = events(admin_engine, world.org_a, "member.invited")
    assert event["actor_user_id"] == world.admin.id and event["entity_id"] == str(result.membership_id)
    assert event["data"]["link_issued"] is True and event["data"]["email"] == email
    assert result.token not in json.dumps(event["data"])


def test_inviting_someone_who_already_has_a_password_issues_no_link(world, app_session, admin_engine):
    admin = actor(app_session, world.admin_b, world.org_b)
    result = members.invite_member(app_session, admin, email=world.outsider.email, name="ignored", role="owner")
    assert result.token is None
    assert result.user_id == world.outsider.id
    assert owner_query(admin_engine, "select * from invites where user_id = :u", u=world.outsider.id) == []
    (event,) = events(admin_engine, world.org_b, "member.invited")
    assert event["data"]["link_issued"] is False
    # and the outsider now reaches org B
    assert actor_for(app_session, world.outsider.id, world.org_b).org_id == world.org_b


def test_a_link_issued_by_another_org_never_opens_the_org_a_person_is_pending_in(world, app_session):
    """Org A invites a new person as admin; before they set a password, org B's admin invites the same
    address. Whatever org B's admin receives must not let them into org A as that person."""
    admin_a = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "sought-after")
    pending = members.invite_member(app_session, admin_a, email=email, name="Sue Sought", role="admin")
    admin_b = actor(app_session, world.admin_b, world.org_b)
    from_b = members.invite_member(app_session, admin_b, email=email, name="Sue Sought", role="owner")
    assert pending.token is not None
    assert from_b.token is None, "org B's admin must not hold a link that sets the password of a person pending in org A"


def test_inviting_a_contractor_user_links_it_to_the_contractor(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    result = members.invite_member(
        app_session, admin, email=new_email(world, "ycolleague"), name="Yan Y", role="contractor", contractor_id=str(world.contractor_y)
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
        members.invite_member(app_session, admin, email=email, name="No Contractor", role="contractor", contractor_id=contractor_id)
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
    roles = {r["user_id"]: r["role"] for r in owner_query(admin_engine, "select user_id, role from memberships where org_id = :org", org=world.org_a)}
    assert roles[world.owner.id] == "admin" and roles[world.admin.id] == "finance"

    changed = events(admin_engine, world.org_a, "member.role_changed")
    assert [(e["entity_id"], e["data"]) for e in changed] == [
        (str(owner_m), {"before": {"role": "owner", "contractor_id": None}, "after": {"role": "admin", "contractor_id": None}}),
        (str(admin_m), {"before": {"role": "admin", "contractor_id": None}, "after": {"role": "finance", "contractor_id": None}}),
    ]
    # The former admin's actor is now finance, and the database agrees.
    former = actor(app_session, world.admin, world.org_a)
    with pytest.raises(Forbidden):
        members.change_role(app_session, former, admin_m, role="admin")


def test_changing_a_contractor_user_to_staff_drops_the_contractor_link(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    m = membership_id(admin_engine, world.org_a, world.contractor_y_user.id)
    members.change_role(app_session, admin, m, role="owner")
    assert owner_query(admin_engine, "select role, contractor_id from memberships where id = :id", id=m) == [{"role": "owner", "contractor_id": None}]
    (event,) = events(admin_engine, world.org_a, "member.role_changed")
    assert event["data"]["before"] == {"role": "contractor", "contractor_id": str(world.contractor_y)}


def test_removing_a_member_deletes_the_membership_voids_invites_and_is_audited(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=new_email(world, "shortlived"), name="Short Lived", role="owner")
    members.remove_member(app_session, admin, invited.membership_id)
    assert owner_query(admin_engine, "select id from memberships where id = :id", id=invited.membership_id) == []
    (invite,) = owner_query(admin_engine, "select used_at from invites where user_id = :u", u=invited.user_id)
    assert invite["used_at"] is not None
    (event,) = events(admin_engine, world.org_a, "member.removed")
    assert event["entity_id"] == str(invited.membership_id) and event["actor_user_id"] == world.admin.id
    with pytest.raises(ValidationError):
        auth.redeem_invite(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)


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
    invited = members.invite_member(app_session, admin, email=new_email(world, "reissue"), name="Re Issue", role="owner")
    new_token = members.reissue_invite(app_session, admin, invited.membership_id)
    assert new_token != invited.token
    (event,) = events(admin_engine, world.org_a, "member.invite_reissued")
    assert event["entity_id"] == str(invited.membership_id)
    with pytest.raises(ValidationError):
        auth.redeem_invite(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert auth.redeem_invite(app_session, new_token, NEW_PASSWORD, NEW_PASSWORD).user_id == invited.user_id


def test_reissuing_for_someone_with_a_password_is_refused(world, app_session, admin_engine):
    before = org_state(admin_engine, world.org_a)
    admin = actor(app_session, world.admin, world.org_a)
    with pytest.raises(ValidationError) as exc:
        members.reissue_invite(app_session, admin, membership_id(admin_engine, world.org_a, world.finance.id))
    assert set(exc.value.fields) == {"invite"}
    assert org_state(admin_engine, world.org_a) == before


# --- auth ---------------------------------------------------------------------------------------------------


def test_authenticate_returns_the_user_for_the_right_password(world, app_session, admin_engine):
    assert auth.authenticate(app_session, world.finance.email, PASSWORD) == world.finance.id
    assert auth.authenticate(app_session, f"  {world.finance.email.upper()} ", PASSWORD) == world.finance.id
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
    assert fifth.value.until > datetime.now(timezone.utc)
    with pytest.raises(auth.LoginLocked):
        auth.authenticate(app_session, email, PASSWORD)
    with pytest.raises(auth.LoginLocked):
        auth.authenticate(app_session, email.upper(), PASSWORD)
    # Other addresses are unaffected.
    assert auth.authenticate(app_session, world.contractor_x_user.email, PASSWORD) == world.contractor_x_user.id


def test_a_success_resets_the_failure_count(world, app_session):
    email = world.owner.email
    for _ in range(4):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, email, "wrong password")
    assert auth.authenticate(app_session, email, PASSWORD) == world.owner.id
    for _ in range(4):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, email, "wrong password")
    assert auth.authenticate(app_session, email, PASSWORD) == world.owner.id


def test_an_invited_person_without_a_password_cannot_sign_in(world, app_session):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=new_email(world, "pending"), name="Pen Ding", role="owner")
    for password in ("", PASSWORD):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, new_email(world, "pending"), password)
    assert invited.token


def test_redeeming_an_invite_sets_the_password_once(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "redeemer")
    invited = members.invite_member(app_session, admin, email=email, name="Red Eemer", role="finance")

    assert auth.invite_details(app_session, invited.token) == (email, f"Org A {world.suffix}")
    redeemed = auth.redeem_invite(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert (redeemed.user_id, redeemed.org_id, redeemed.role.value) == (invited.user_id, world.org_a, "finance")
    assert auth.authenticate(app_session, email, NEW_PASSWORD) == invited.user_id
    (event,) = events(admin_engine, world.org_a, "user.invite_accepted")
    assert event["actor_user_id"] == invited.user_id

    with pytest.raises(ValidationError) as again:
        auth.redeem_invite(app_session, invited.token, "someone elses password", "someone elses password")
    assert set(again.value.fields) == {"token"}
    assert auth.invite_details(app_session, invited.token) is None
    assert auth.authenticate(app_session, email, NEW_PASSWORD) == invited.user_id  # the first password stands


def test_an_expired_invite_cannot_be_redeemed(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    email = new_email(world, "late")
    invited = members.invite_member(app_session, admin, email=email, name="Lay Te", role="owner")
    with admin_engine.begin() as conn:
        conn.execute(
            text("update invites set created_at = now() - interval '4 days', expires_at = now() - interval '1 day' where token_hash = :h"),
            {"h": auth.token_hash(invited.token)},
        )
    assert auth.invite_details(app_session, invited.token) is None
    with pytest.raises(ValidationError) as exc:
        auth.redeem_invite(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD)
    assert set(exc.value.fields) == {"token"}
    assert owner_query(admin_engine, "select password_hash from users where id = :u", u=invited.user_id) == [{"password_hash": None}]


@pytest.mark.parametrize(("password", "confirm", "field"), [("short", "short", "password"), (NEW_PASSWORD, NEW_PASSWORD + "x", "confirm")])
def test_a_bad_new_password_leaves_the_invite_usable(world, app_session, password, confirm, field):
    admin = actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=new_email(world, "careful"), name="Care Ful", role="owner")
    with pytest.raises(ValidationError) as exc:
        auth.redeem_invite(app_session, invited.token, password, confirm)
    assert set(exc.value.fields) == {field}
    assert auth.redeem_invite(app_session, invited.token, NEW_PASSWORD, NEW_PASSWORD).user_id == invited.user_id


def test_an_unknown_token_cannot_be_redeemed(world, app_session):
    with pytest.raises(ValidationError) as exc:
        auth.redeem_invite(app_session, "made-up-token", NEW_PASSWORD, NEW_PASSWORD)
    assert set(exc.value.fields) == {"token"}


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
        world.org_a, "Contractor W", email, "VW-1", "IBAN 123",
    )
    (event,) = [e for e in events(admin_engine, world.org_a, "contractor.created") if e["actor_user_id"] is not None]
    assert event["entity_id"] == str(created.id) and event["actor_user_id"] == world.admin.id
    assert event["data"]["legal_name"] == "Contractor W"


def test_an_admin_updates_a_contractor_and_the_event_keeps_before_and_after(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    before = contractor_row(admin_engine, world.contractor_x)
    contractors.update_contractor(
        app_session, admin, str(world.contractor_x),
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
    contractors.update_contractor(app_session, admin, world.contractor_x, ContractorInput(row["legal_name"], row["email"], row["ap_vendor_id"], ""))
    assert events(admin_engine, world.org_a, "contractor.updated") == []
    assert contractor_row(admin_engine, world.contractor_x) == row


@pytest.mark.parametrize(
    ("field", "value_of"),
    [
        ("email", lambda w: f"X-{w.suffix}@example.com"),  # contractor X's email, in other case
        ("ap_vendor_id", lambda w: f"VX-{w.suffix}"),  # contractor X's AP vendor id
    ],
)
def test_creating_a_contractor_with_a_taken_email_or_vendor_id_fails_at_that_field(world, app_session, admin_engine, field, value_of):
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
def test_updating_a_contractor_to_a_taken_email_or_vendor_id_fails_at_that_field(world, app_session, admin_engine, field, value_of):
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
        contractors.update_contractor(app_session, non_admin, world.contractor_x, ContractorInput("Sneaky", new_email(world, "sneaky")))
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before


def test_an_admin_cannot_update_another_orgs_contractor(world, app_session, admin_engine):
    before = contractor_row(admin_engine, world.contractor_x)
    admin_b = actor(app_session, world.admin_b, world.org_b)
    with pytest.raises(NotFound):
        contractors.update_contractor(app_session, admin_b, world.contractor_x, ContractorInput("Taken", new_email(world, "taken")))
    app_session.rollback()
    assert contractor_row(admin_engine, world.contractor_x) == before


# --- organization settings ------------------------------------------------------------------------------------


def settings_of(admin_engine, org_id) -> OrgSettings:
    (row,) = owner_query(
        admin_engine,
        "select name, default_currency, default_retainage_bps, payment_terms_days, partial_policy from organizations where id = :id",
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
    assert set(exc.value.fields) == {"name", "default_currency", "default_retainage", "payment_terms_days", "partial_policy"}


def test_updating_settings_records_each_changed_field_before_and_after(world, app_session, admin_engine):
    admin = actor(app_session, world.admin, world.org_a)
    old = settings_of(admin_engine, world.org_a)
    new = replace(old, name=f"  Renamed A {world.suffix} ", default_currency="JPY", payment_terms_days=0, partial_policy="split")
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
        organizations.update_settings(app_session, non_admin, replace(settings_of(admin_engine, world.org_a), name="Hijacked"))
    app_session.rollback()
    assert org_state(admin_engine, world.org_a) == before
