"""Who an audit event says acted is the transaction's identity, filled by the database (DESIGN.md section 5).

The inserts are raw SQL as the web role (what an injection or a careless query could send), naming someone
else, no one, or 'system' in actor_user_id and actor_label; the trigger in sql/audit.sql records the person
the transaction acts as, before the hash covers it, so the chain still verifies. Without a person the
label says what acted: 'system' for the owner role's commands, 'background job' for the worker role.
"""

from __future__ import annotations

import pytest
from kit.audit import breaks_for, chain_of
from sqlalchemy import text

from backoffice.actor import Actor
from backoffice.db import make_session_factory
from backoffice.domain.audit_chain import expected_hash
from backoffice.domain.roles import Role
from backoffice.services import audit

_CLAIM = text(
    "insert into audit_events (org_id, actor_user_id, actor_label, action, entity_type, entity_id)"
    " values (:org, :claimed_id, :claimed_label, 'test.claimed', 'thing', :tag)"
)


def claim(session, org_id, claimed_id, claimed_label: str, tag: str) -> None:
    session.execute(_CLAIM, {"org": org_id, "claimed_id": claimed_id, "claimed_label": claimed_label, "tag": tag})
    session.commit()


def recorded(admin_engine, org_id, tag: str):
    (row,) = [r for r in chain_of(admin_engine, org_id) if r.entity_id == tag]
    assert row.hash == expected_hash(row)  # the hash covers the actor the trigger set
    return row


@pytest.mark.parametrize("claimed", ["owner", "nobody", "system"])
def test_an_admin_claiming_someone_else_is_recorded_as_the_admin(world, act_as, admin_engine, claimed):
    claimed_id, claimed_label = {
        "owner": (world.owner.id, world.owner.email),
        "nobody": (None, "background job"),
        "system": (None, "system"),
    }[claimed]
    claim(act_as(world.admin.id, world.org_a), world.org_a, claimed_id, claimed_label, f"claim-{claimed}")

    row = recorded(admin_engine, world.org_a, f"claim-{claimed}")
    assert (row.actor_user_id, row.actor_label) == (str(world.admin.id), world.admin.email)


def test_a_contractor_claiming_the_admin_is_recorded_as_the_contractors_user(world, act_as, admin_engine):
    claim(
        act_as(world.contractor_x_user.id, world.org_a),
        world.org_a,
        world.admin.id,
        world.admin.email,
        "contractor-claims-admin",
    )

    row = recorded(admin_engine, world.org_a, "contractor-claims-admin")
    assert (row.actor_user_id, row.actor_label) == (str(world.contractor_x_user.id), world.contractor_x_user.email)


def test_the_service_records_the_sessions_person_not_the_actor_it_is_handed(world, act_as, admin_engine):
    someone_else = Actor(user_id=world.admin.id, org_id=world.org_a, role=Role.ADMIN, label=world.admin.email)
    session = act_as(world.finance.id, world.org_a)
    audit.record(session, someone_else, "test.recorded", "thing", "handed-the-admin")
    session.commit()

    row = recorded(admin_engine, world.org_a, "handed-the-admin")
    assert (row.actor_user_id, row.actor_label) == (str(world.finance.id), world.finance.email)


def test_the_owner_role_without_a_person_is_recorded_as_system(world, admin_engine):
    with make_session_factory(admin_engine)() as session:
        claim(session, world.org_a, world.admin.id, world.admin.email, "owner-role-claims-admin")

    row = recorded(admin_engine, world.org_a, "owner-role-claims-admin")
    assert (row.actor_user_id, row.actor_label) == ("", "system")


def test_the_worker_role_is_recorded_as_a_background_job(world, as_worker, admin_engine):
    claim(as_worker(world.org_a), world.org_a, world.admin.id, world.admin.email, "worker-claims-admin")

    row = recorded(admin_engine, world.org_a, "worker-claims-admin")
    assert (row.actor_user_id, row.actor_label) == ("", "background job")


def test_the_chain_verifies_after_every_kind_of_claim(world, act_as, as_worker, admin_engine):
    claim(act_as(world.admin.id, world.org_a), world.org_a, world.owner.id, "ceo@example.com", "v-1")
    claim(as_worker(world.org_a), world.org_a, world.owner.id, world.owner.email, "v-2")
    with make_session_factory(admin_engine)() as session:
        claim(session, world.org_a, None, "nobody", "v-3")
        assert breaks_for(session, world.org_a) == []
