"""Who reads and writes a person's preferences (sql/preferences.sql): the web role its own person's row and no
other; the worker the rows of its organization's members, and writes none. Raw SQL as each role."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services.preferences import preferences_of_people


@pytest.fixture
def chosen(world, admin_engine):
    """Everyone of the world chose Asia/Tokyo and the daily digest (written as the owner role)."""
    people = (world.owner, world.finance, world.contractor_x_user, world.admin_b, world.contractor_z_user)
    with admin_engine.begin() as conn:
        for person in people:
            conn.execute(
                text("insert into user_preferences (user_id, time_zone, notify) values (:u, 'Asia/Tokyo', 'daily')"),
                {"u": person.id},
            )
    return people


def rows(session) -> set:
    found = {r.user_id for r in session.execute(text("select user_id from user_preferences"))}
    session.rollback()
    return found


def test_a_person_reads_their_own_row_and_nobody_elses(world, act_as, chosen):
    for person, org_id in (
        (world.owner, world.org_a),
        (world.contractor_x_user, world.org_a),
        (world.admin_b, world.org_b),
    ):
        assert rows(act_as(person.id, org_id)) == {person.id}


def test_a_person_changes_only_their_own_row(world, act_as, chosen, admin_engine):
    session = act_as(world.owner.id, world.org_a)
    changed = session.execute(text("update user_preferences set notify = 'each'")).rowcount
    session.commit()
    assert changed == 1
    with admin_engine.connect() as conn:
        each = (
            conn.execute(  # this world's people only: the demo's people share the database
                text("select user_id from user_preferences where notify = 'each' and user_id = any(:people)"),
                {"people": [world.owner.id, world.finance.id, world.contractor_x_user.id]},
            )
            .scalars()
            .all()
        )
    assert each == [world.owner.id]


def test_a_person_cannot_write_a_row_for_someone_else(world, act_as):
    session = act_as(world.owner.id, world.org_a)
    with pytest.raises(DBAPIError, match="row-level security"):
        session.execute(
            text("insert into user_preferences (user_id, time_zone) values (:u, 'UTC')"), {"u": world.finance.id}
        )
    session.rollback()


def test_the_worker_reads_its_organizations_members_and_writes_nothing(world, as_worker, chosen):
    worker = as_worker(world.org_a)
    assert rows(worker) == {world.owner.id, world.finance.id, world.contractor_x_user.id}
    seen = preferences_of_people(worker, [world.owner.id, world.admin_b.id])
    assert seen[world.owner.id].time_zone == "Asia/Tokyo"
    assert seen[world.admin_b.id].time_zone == "UTC"  # another organization's member: not read, the defaults
    worker.rollback()
    with pytest.raises(DBAPIError, match="permission denied"):
        worker.execute(text("update user_preferences set notify = 'each'"))
    worker.rollback()
