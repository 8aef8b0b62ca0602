"""Invitations across organizations: a membership counts only once its person accepted it through the link.

Guards the pre-account takeover found in review: an admin who redeems their own invitation link for an
address they do not own holds that account, and must not thereby get into any other organization that
invites the same address; nor may an admin attach, with hand-written rows, an account they do not control.
"""

from __future__ import annotations

import secrets

import pytest
from kit import PASSWORD as WORLD_PASSWORD
from kit.signin import act, actor_of
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.errors import ValidationError
from backoffice.services import auth, members

PASSWORD = "a brand new passphrase"  # what org B's admin sets on the address they do not own
TENANT_TABLES = ("organizations", "memberships", "contractors", "invites", "audit_events")


def _actor(session, person, org_id):
    session.rollback()
    a = actor_of(session, person.id, org_id)
    assert a is not None
    return a


def _membership(admin_engine, org_id, user_id) -> dict | None:
    with admin_engine.connect() as conn:
        row = (
            conn.execute(
                text("select id, role, accepted_at from memberships where org_id = :o and user_id = :u"),
                {"o": org_id, "u": user_id},
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def _password_hash(admin_engine, user_id) -> str | None:
    with admin_engine.connect() as conn:
        return conn.execute(text("select password_hash from users where id = :u"), {"u": user_id}).scalar_one()


def _signed_out(session) -> None:
    """The session as a request from someone not signed in: no RLS context at all."""
    session.rollback()
    act(session, user_id=None, org_id=None)


def _sees_nothing_of(session, user_id, org_id) -> None:
    session.rollback()
    act(session, user_id=user_id, org_id=org_id)
    for table in TENANT_TABLES:
        assert session.execute(text(f"select count(*) from {table}")).scalar_one() == 0, table
    assert session.execute(text("select app_org_id(), app_role()")).one() == (None, None)
    session.rollback()


# --- (1) an address org B's admin took over first ------------------------------------------------------------


def test_an_account_one_admin_took_over_joins_another_org_only_with_that_orgs_link_and_the_password(
    world, app_session, admin_engine
):
    email = f"sue-{world.suffix}@example.com"
    # Org B's admin invites an address that is not theirs and redeems the link themselves.
    from_b = members.invite_member(
        app_session, _actor(app_session, world.admin_b, world.org_b), email=email, name="Sue", role="owner"
    )
    squatter = auth.accept_invite_with_new_password(app_session, from_b.token, PASSWORD, PASSWORD)
    assert (squatter.user_id, squatter.org_id) == (from_b.user_id, world.org_b)

    # Org A invites the same address later: it gets a link like for anyone, and learns nothing more.
    from_a = members.invite_member(
        app_session, _actor(app_session, world.admin, world.org_a), email=email, name="Sue Real", role="admin"
    )
    assert from_a.user_id == from_b.user_id and isinstance(from_a.token, str) and from_a.token != from_b.token
    assert _membership(admin_engine, world.org_a, from_a.user_id)["accepted_at"] is None
    assert actor_of(app_session, from_a.user_id, world.org_a) is None
    details = auth.invite_details(app_session, from_a.token)
    assert details == auth.InviteDetails(
        email, f"Org A {world.suffix}", True
    )  # accepting asks for the existing password

    # Org A's link does not set a new password on an account that has one (asked by someone not
    # signed in, as whoever opens the link is)...
    hash_before = _password_hash(admin_engine, from_a.user_id)
    _signed_out(app_session)
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(
            app_session, from_a.token, "the real sues passphrase", "the real sues passphrase"
        )
    assert set(exc.value.fields) == {"token"}
    with pytest.raises(auth.LoginFailed):
        auth.accept_invite_with_existing_password(app_session, from_a.token, "not the password")
    assert _password_hash(admin_engine, from_a.user_id) == hash_before
    squatter_sign_in = auth.authenticate(app_session, email, PASSWORD)
    assert squatter_sign_in.user_id == from_a.user_id

    # ...and org B's admin, who knows the password but not org A's token, does not get into org A.
    actor = auth.start_session(app_session, squatter_sign_in, world.org_a)
    assert actor.org_id == world.org_b
    assert auth.switch_organization(app_session, from_a.user_id, world.org_a) is None
    with pytest.raises(ValidationError):
        auth.accept_invite_with_existing_password(app_session, from_b.token, PASSWORD)  # their own link, used up
    with pytest.raises(ValidationError):
        auth.accept_invite_with_existing_password(app_session, secrets.token_urlsafe(32), PASSWORD)
    assert actor_of(app_session, from_a.user_id, world.org_a) is None
    _sees_nothing_of(app_session, from_a.user_id, world.org_a)
    assert _membership(admin_engine, world.org_a, from_a.user_id)["accepted_at"] is None

    # Only org A's link together with the account's password joins org A; the link still works after
    # the failed attempts above, and only once.
    joined = auth.accept_invite_with_existing_password(app_session, from_a.token, PASSWORD)
    assert (joined.user_id, joined.org_id, joined.role.value) == (from_a.user_id, world.org_a, "admin")
    assert _membership(admin_engine, world.org_a, from_a.user_id)["accepted_at"] is not None
    assert actor_of(app_session, from_a.user_id, world.org_a).org_id == world.org_a
    assert auth.invite_details(app_session, from_a.token) is None


def test_an_existing_account_is_invited_like_a_new_one_and_joins_with_its_password(world, app_session, admin_engine):
    """Org B invites org A's finance person: the same answer as for a new address, and nothing until accepted."""
    admin_b = _actor(app_session, world.admin_b, world.org_b)
    invited = members.invite_member(app_session, admin_b, email=world.finance.email, name="Whoever", role="finance")
    assert invited.user_id == world.finance.id and isinstance(invited.token, str)
    assert _membership(admin_engine, world.org_b, world.finance.id)["accepted_at"] is None
    assert actor_of(app_session, world.finance.id, world.org_b) is None
    with admin_engine.connect() as conn:  # the account keeps its own name; the invite keeps what the admin typed
        assert (
            conn.execute(text("select name from users where id = :u"), {"u": world.finance.id}).scalar_one()
            == world.finance.name
        )
        assert conn.execute(
            text("select email, name from invites where token_hash = :h"), {"h": auth.token_hash(invited.token)}
        ).one() == (
            world.finance.email,
            "Whoever",
        )

    joined = auth.accept_invite_with_existing_password(app_session, invited.token, WORLD_PASSWORD)
    assert (joined.user_id, joined.org_id) == (world.finance.id, world.org_b)
    assert actor_of(app_session, world.finance.id, world.org_a).role.value == "finance"  # org A is unaffected


# --- (2) and (3) rows written by hand ----------------------------------------------------------------------


def test_a_membership_written_with_raw_sql_cannot_carry_accepted_at_so_it_grants_nothing(
    world, app_session, admin_engine
):
    """Org B's admin, with raw SQL as the app role, tries to add org A's admin to org B, accepted."""
    session = app_session
    session.rollback()
    act(session, user_id=world.admin_b.id, org_id=world.org_b)
    with pytest.raises(DBAPIError) as exc:
        session.execute(
            text("insert into memberships (org_id, user_id, role, accepted_at) values (:o, :u, 'owner', now())"),
            {"o": world.org_b, "u": world.admin.id},
        )
    session.rollback()
    assert exc.value.orig.sqlstate == "42501" and "permission denied" in str(exc.value.orig)
    assert _membership(admin_engine, world.org_b, world.admin.id) is None

    # Without accepted_at the row is written, but pending: org A's admin does not act in org B.
    session.execute(
        text("insert into memberships (org_id, user_id, role) values (:o, :u, 'owner')"),
        {"o": world.org_b, "u": world.admin.id},
    )
    with pytest.raises(DBAPIError) as exc:
        session.execute(
            text("update memberships set accepted_at = now() where org_id = :o and user_id = :u"),
            {"o": world.org_b, "u": world.admin.id},
        )
    session.rollback()
    assert "permission denied" in str(exc.value.orig)
    session.execute(
        text("insert into memberships (org_id, user_id, role) values (:o, :u, 'owner')"),
        {"o": world.org_b, "u": world.admin.id},
    )
    session.commit()
    assert _membership(admin_engine, world.org_b, world.admin.id)["accepted_at"] is None
    assert actor_of(session, world.admin.id, world.org_b) is None
    _sees_nothing_of(session, world.admin.id, world.org_b)
    assert actor_of(session, world.admin.id, world.org_a).org_id == world.org_a


def test_an_invite_row_written_by_hand_cannot_reset_someone_elses_password(world, app_session, admin_engine):
    """Org B's admin, with raw SQL as the app role, adds org A's admin to org B (pending) and writes an
    invite with a token they know. Using it must neither change org A's admin's password nor let
    them into org B as that person."""
    token = secrets.token_urlsafe(32)
    session = app_session
    session.rollback()
    act(session, user_id=world.admin_b.id, org_id=world.org_b)
    session.execute(
        text("insert into memberships (org_id, user_id, role) values (:o, :u, 'owner')"),
        {"o": world.org_b, "u": world.admin.id},
    )
    session.execute(
        text(
            "insert into invites (org_id, user_id, email, name, token_hash, created_by)"
            " values (:o, :u, :e, 'Ada', :h, :by)"
        ),
        {
            "o": world.org_b,
            "u": world.admin.id,
            "e": world.admin.email,
            "h": auth.token_hash(token),
            "by": world.admin_b.id,
        },
    )
    session.commit()
    hash_before = _password_hash(admin_engine, world.admin.id)

    # The link is usable in form, and says the account has a password...
    assert auth.invite_details(session, token) == auth.InviteDetails(world.admin.email, f"Org B {world.suffix}", True)
    # ...so the database will not set a new one, even called directly as org B's admin.
    session.rollback()
    act(session, user_id=world.admin_b.id, org_id=world.org_b)
    row = session.execute(
        text("select * from accept_invite(:h, :pw)"), {"h": auth.token_hash(token), "pw": auth.hash_password(PASSWORD)}
    ).first()
    session.commit()
    assert row is None
    with pytest.raises(ValidationError) as exc:
        auth.accept_invite_with_new_password(session, token, PASSWORD, PASSWORD)
    assert set(exc.value.fields) == {"token"}
    with pytest.raises(auth.LoginFailed):
        auth.accept_invite_with_existing_password(session, token, PASSWORD)

    assert _password_hash(admin_engine, world.admin.id) == hash_before
    assert _membership(admin_engine, world.org_b, world.admin.id)["accepted_at"] is None
    assert auth.authenticate(session, world.admin.email, WORLD_PASSWORD).user_id == world.admin.id
    with pytest.raises(auth.LoginFailed):
        auth.authenticate(session, world.admin.email, PASSWORD)
    assert actor_of(session, world.admin.id, world.org_b) is None


def test_an_invite_row_naming_another_org_cannot_be_written(world, act_as, admin_engine):
    """Org B's admin cannot plant an invite in org A (for a membership there they could not write either)."""
    s = act_as(world.admin_b.id, world.org_b)
    with pytest.raises(DBAPIError) as exc:
        s.execute(
            text(
                "insert into invites (org_id, user_id, email, name, token_hash, created_by)"
                " values (:o, :u, :e, 'Fi', :h, :by)"
            ),
            {
                "o": world.org_a,
                "u": world.finance.id,
                "e": world.finance.email,
                "h": secrets.token_hex(32),
                "by": world.admin_b.id,
            },
        )
    s.rollback()
    assert "row-level security" in str(exc.value.orig)
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from invites where org_id = :o"), {"o": world.org_a}).scalar_one() == 0
        )


# --- (4) invited, not accepted ------------------------------------------------------------------------------


def test_an_invited_person_without_an_account_cannot_act_in_the_org_before_accepting(world, app_session, admin_engine):
    admin = _actor(app_session, world.admin, world.org_a)
    email = f"nina-{world.suffix}@example.com"
    invited = members.invite_member(app_session, admin, email=email, name="Nina", role="admin")
    assert actor_of(app_session, invited.user_id, world.org_a) is None
    _sees_nothing_of(app_session, invited.user_id, world.org_a)
    # No password, so no sign-in; without the link there is no way to set one.
    for password in ("", PASSWORD, WORLD_PASSWORD):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(app_session, email, password)
    assert _password_hash(admin_engine, invited.user_id) is None
    # With the link, they join (and only then).
    joined = auth.accept_invite_with_new_password(app_session, invited.token, PASSWORD, PASSWORD)
    assert (joined.user_id, joined.org_id, joined.role.value) == (invited.user_id, world.org_a, "admin")
    assert auth.authenticate(app_session, email, PASSWORD).user_id == invited.user_id


def test_an_invited_person_with_an_account_signs_in_but_not_into_the_inviting_org(world, app_session):
    admin = _actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=world.outsider.email, name="Otto", role="owner")
    signed = auth.authenticate(app_session, world.outsider.email, WORLD_PASSWORD)
    assert signed.user_id == world.outsider.id
    assert auth.start_session(app_session, signed, world.org_a) is None
    assert auth.switch_organization(app_session, world.outsider.id, world.org_a) is None
    _sees_nothing_of(app_session, world.outsider.id, world.org_a)
    joined = auth.accept_invite_with_existing_password(app_session, invited.token, WORLD_PASSWORD)
    assert (joined.user_id, joined.org_id) == (world.outsider.id, world.org_a)
    actor = auth.start_session(app_session, signed, world.org_a)
    assert actor.org_id == world.org_a


# --- users ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("whom", ["admin", "finance"])
def test_nobody_renames_a_user_through_the_app_role(world, act_as, whom):
    """No page renames a user, so the app role may not update users.name (column grants), not even one's own."""
    s = act_as(world.finance.id, world.org_a)
    with pytest.raises(DBAPIError, match="permission denied"):
        s.execute(text("update users set name = 'Hacked' where id = :id"), {"id": getattr(world, whom).id})
    s.rollback()


def test_contractor_sees_the_orgs_staff_but_not_other_contractors_users(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    visible = set(s.execute(text("select id from users")).scalars())
    assert {world.admin.id, world.owner.id, world.finance.id, world.contractor_x_user.id} <= visible
    assert world.contractor_y_user.id not in visible
    assert world.admin_b.id not in visible and world.contractor_z_user.id not in visible
    s.rollback()


def test_a_pending_invitees_account_is_invisible_to_the_inviting_org(world, app_session):
    admin = _actor(app_session, world.admin, world.org_a)
    invited = members.invite_member(app_session, admin, email=world.contractor_z_user.email, name="Zed", role="finance")
    app_session.rollback()
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert (
        app_session.execute(text("select count(*) from users where id = :u"), {"u": invited.user_id}).scalar_one() == 0
    )
    assert (
        app_session.execute(
            text("select count(*) from memberships where user_id = :u"), {"u": invited.user_id}
        ).scalar_one()
        == 1
    )
    app_session.rollback()
    auth.accept_invite_with_existing_password(app_session, invited.token, WORLD_PASSWORD)
    app_session.rollback()
    act(app_session, user_id=world.admin.id, org_id=world.org_a)
    assert (
        app_session.execute(text("select email from users where id = :u"), {"u": invited.user_id}).scalar_one()
        == world.contractor_z_user.email
    )
    app_session.rollback()


def test_operator_set_up_of_a_pending_address_leaves_another_orgs_link_powerless(world, app_session, admin_engine):
    """Org B invites victim@… (no password yet) and keeps the link; an operator then makes the same
    address an admin of org A with `create-user`. B's link must not set the password afterwards."""
    from backoffice.db import make_session_factory
    from backoffice.domain.roles import Role
    from backoffice.services import bootstrap

    email = f"victim-{world.suffix}@example.com"
    from_b = members.invite_member(
        app_session, actor_of(app_session, world.admin_b.id, world.org_b), email=email, name="Vic", role="owner"
    )
    with make_session_factory(admin_engine)() as owner:
        bootstrap.create_user(
            owner, email=email, name="Vic", password="the operators choice", org_id=world.org_a, role=Role.ADMIN
        )
        owner.commit()
    app_session.rollback()
    with pytest.raises(ValidationError):
        auth.accept_invite_with_new_password(app_session, from_b.token, "attacker chosen pw", "attacker chosen pw")
    assert auth.authenticate(app_session, email, "the operators choice").user_id == from_b.user_id


def test_operator_set_up_refuses_to_leave_an_existing_passwordless_account_without_a_password(
    world, app_session, admin_engine
):
    from backoffice.db import make_session_factory
    from backoffice.domain.roles import Role
    from backoffice.services import bootstrap

    email = f"nopw-{world.suffix}@example.com"
    members.invite_member(
        app_session, actor_of(app_session, world.admin_b.id, world.org_b), email=email, name="No Pw", role="owner"
    )
    with make_session_factory(admin_engine)() as owner:
        with pytest.raises(ValidationError) as exc:
            bootstrap.create_user(owner, email=email, name="No Pw", org_id=world.org_a, role=Role.ADMIN)
        assert "password" in exc.value.fields


def test_renewing_an_invitation_that_never_existed_is_a_clear_error(world, act_as):
    s = act_as(world.admin.id, world.org_a)
    mid = s.execute(
        text("insert into memberships (org_id, user_id, role) values (:o, :u, 'owner') returning id"),
        {"o": world.org_a, "u": world.admin_b.id},
    ).scalar_one()
    s.commit()
    with pytest.raises(ValidationError) as exc:
        members.reissue_invite(s, actor_of(s, world.admin.id, world.org_a), mid)
    assert "no invitation to renew" in exc.value.fields["invite"]
