"""A person invited by two organizations: only the first one's link sets their password.

Guards the takeover helper-found in review: org B's admin must never hold a link that sets the
password of someone org A invited first (they could then sign in to org A as that person).
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from backoffice.db import set_context
from backoffice.errors import ValidationError
from backoffice.queries.identity import actor_for
from backoffice.services import auth, members

PASSWORD = "a brand new passphrase"


def _actor(session, person, org_id):
    session.rollback()
    return actor_for(session, person.id, org_id)


def _membership_id(session, org_id, user_id):
    return session.execute(
        text("select id from memberships where org_id = :o and user_id = :u"), {"o": org_id, "u": user_id}
    ).scalar_one()


def test_second_org_gets_no_link_and_the_first_orgs_link_still_works(world, app_session):
    email = f"sue-{world.suffix}@example.com"
    from_a = members.invite_member(app_session, _actor(app_session, world.admin, world.org_a), email=email, name="Sue", role="admin")
    admin_b = _actor(app_session, world.admin_b, world.org_b)
    from_b = members.invite_member(app_session, admin_b, email=email, name="Sue", role="owner")
    assert from_a.token and from_b.token is None
    with pytest.raises(ValidationError) as exc:
        members.reissue_invite(app_session, _actor(app_session, world.admin_b, world.org_b), from_b.membership_id)
    assert "another organization" in exc.value.fields["invite"]

    person = auth.redeem_invite(app_session, from_a.token, PASSWORD, PASSWORD)
    assert person.org_id == world.org_a
    assert auth.authenticate(app_session, email, PASSWORD) == from_a.user_id
    assert actor_for(app_session, from_a.user_id, world.org_b).role.value == "owner"


def test_an_invite_row_written_by_hand_cannot_reset_someone_elses_password(world, app_session, admin_engine):
    """Org B's admin, with raw SQL as the app role, adds org A's admin to org B and writes an invite
    with a token they know. Redeeming it must not change org A's admin's password."""
    token = secrets.token_urlsafe(32)
    session = app_session
    session.rollback()
    set_context(session, user_id=world.admin_b.id, org_id=world.org_b)
    session.execute(
        text("insert into memberships (org_id, user_id, role) values (:o, :u, 'owner')"),
        {"o": world.org_b, "u": world.admin.id},
    )
    session.execute(
        text("insert into invites (org_id, user_id, token_hash, created_by, expires_at) values (:o, :u, :h, :by, :exp)"),
        {"o": world.org_b, "u": world.admin.id, "h": auth.token_hash(token), "by": world.admin_b.id,
         "exp": datetime.now(timezone.utc) + timedelta(hours=1)},
    )
    session.commit()
    session.info.pop("rls", None)
    assert auth.invite_details(session, token) is None
    with pytest.raises(ValidationError):
        auth.redeem_invite(session, token, PASSWORD, PASSWORD)
    from conftest import PASSWORD as ORIGINAL

    assert auth.authenticate(session, world.admin.email, ORIGINAL) == world.admin.id


def test_only_the_user_can_rename_themselves(world, act_as):
    s = act_as(world.finance.id, world.org_a)
    assert s.execute(text("update users set name = 'Hacked' where id = :id"), {"id": world.admin.id}).rowcount == 0
    assert s.execute(text("update users set name = 'Fiona F.' where id = :id"), {"id": world.finance.id}).rowcount == 1
    s.rollback()


def test_contractor_sees_the_orgs_staff_but_not_other_contractors_users(world, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    visible = set(s.execute(text("select id from users")).scalars())
    assert {world.admin.id, world.owner.id, world.finance.id, world.contractor_x_user.id} <= visible
    assert world.contractor_y_user.id not in visible
    assert world.admin_b.id not in visible and world.contractor_z_user.id not in visible
    s.rollback()
