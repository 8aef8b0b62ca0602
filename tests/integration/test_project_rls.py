"""Who sees which project and proposal (issue 19, item 4; DESIGN.md section 5), proved with raw SQL as the web role
(signed in as each person, ``act_as``) and as the worker role (``as_worker``), never through a page: a contractor
sees only the projects it may propose on and only its own proposal, its milestones and files, never a competitor's,
not even by naming their ids; staff see every one of their organization, finance without writing; another
organization sees nothing; the worker reads one organization's projects and proposals, and no proposal's price
breakdown or files at all.

After an award, a contractor that was invited keeps seeing the project through its invitation (it was told of the
project, and is told it was awarded), and one that proposed through its proposal (it sees its proposal declined);
a project open to every contractor leaves the view of those that never proposed once it is no longer open.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kit.engagements import acting, owner_query
from kit.projects import award, category, open_project, project_input, propose
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import projects as project_service
from backoffice.services.evidence import UploadedFile

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Seen:
    """Org A: ``invited`` (X and Y invited, both proposed, each with a file), ``only_x`` (X invited, X proposed),
    ``everyone`` (open to all, nobody invited, X proposed); org B: ``b_project`` with Z's proposal."""

    invited: object
    px: object
    py: object
    only_x: object
    px_only: object
    everyone: object
    px_everyone: object
    b_project: object
    pz: object


def files(name: str) -> list[UploadedFile]:
    return [UploadedFile.from_bytes(f"{name}.txt", f"{name}'s price breakdown".encode())]


@pytest.fixture
def seen(app_sessions, world) -> Seen:
    cat = category(app_sessions, world)
    invited = open_project(app_sessions, world, category_id=cat)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, invited, files=files("x"))
    py = propose(app_sessions, world.contractor_y_user, world.org_a, invited, files=files("y"))
    only_x = open_project(app_sessions, world, category_id=cat, invited=(world.contractor_x,), title="Only X")
    px_only = propose(app_sessions, world.contractor_x_user, world.org_a, only_x)
    everyone = open_project(app_sessions, world, category_id=cat, invited=(), audience="all", title="Everyone")
    px_everyone = propose(app_sessions, world.contractor_x_user, world.org_a, everyone)
    b_cat = category(app_sessions, world, org_id=world.org_b, admin=world.admin_b)
    with acting(app_sessions, world.admin_b, world.org_b) as (session, actor):
        data = project_input(b_cat, audience="all", owner_user_id=str(world.admin_b.id), title="B's")
        b_project = project_service.open_project(session, actor, data).id
    pz = propose(app_sessions, world.contractor_z_user, world.org_b, b_project)
    return Seen(invited, px, py, only_x, px_only, everyone, px_everyone, b_project, pz)


def count(session, table: str, where: str, **params) -> int:
    return session.execute(text(f"select count(*) from {table} where {where}"), params).scalar_one()


def ids_of(admin_engine, table: str, proposal_id) -> list:
    return [r["id"] for r in owner_query(admin_engine, f"select id from {table} where proposal_id = :p", p=proposal_id)]


# --- contractors ---------------------------------------------------------------------------------------------------


def test_a_contractor_never_sees_a_competitors_proposal_milestones_or_files(act_as, admin_engine, world, seen):
    y_milestones, y_files = (
        ids_of(admin_engine, "proposal_milestones", seen.py),
        ids_of(admin_engine, "proposal_files", seen.py),
    )
    assert len(y_milestones) == 2 and len(y_files) == 1
    session = act_as(world.contractor_x_user.id, world.org_a)
    # not by the proposal's id, nor by guessing the ids of its parts
    assert count(session, "proposals", "id = :i", i=seen.py) == 0
    assert count(session, "proposal_milestones", "proposal_id = :i or id = any(:m)", i=seen.py, m=y_milestones) == 0
    assert count(session, "proposal_files", "proposal_id = :i or id = any(:f)", i=seen.py, f=y_files) == 0
    # nor in anything that adds proposals up
    prices = session.execute(
        text("select contractor_id, sum(price_minor) from proposals where project_id = :p group by 1"),
        {"p": seen.invited},
    ).all()
    assert prices == [(world.contractor_x, 500_000)]
    # its own, in full
    assert count(session, "proposals", "id = :i", i=seen.px) == 1
    assert count(session, "proposal_milestones", "proposal_id = :i", i=seen.px) == 2
    assert count(session, "proposal_files", "proposal_id = :i", i=seen.px) == 1
    # and the other way round
    session = act_as(world.contractor_y_user.id, world.org_a)
    assert count(session, "proposals", "contractor_id = :c", c=world.contractor_x) == 0
    assert count(session, "proposal_milestones", "contractor_id = :c", c=world.contractor_x) == 0
    assert count(session, "proposal_files", "contractor_id = :c", c=world.contractor_x) == 0


def test_a_contractor_cannot_change_or_take_off_a_competitors_milestones_or_files(act_as, admin_engine, world, seen):
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert session.execute(text("delete from proposal_milestones where proposal_id = :p"), {"p": seen.py}).rowcount == 0
    assert session.execute(text("delete from proposal_files where proposal_id = :p"), {"p": seen.py}).rowcount == 0
    update = session.execute(text("update proposals set note = 'Mine' where id = :p"), {"p": seen.py})
    assert update.rowcount == 0
    session.commit()
    assert len(ids_of(admin_engine, "proposal_milestones", seen.py)) == 2
    assert len(ids_of(admin_engine, "proposal_files", seen.py)) == 1


def test_a_contractor_sees_its_own_invitations_only(act_as, world, seen):
    session = act_as(world.contractor_y_user.id, world.org_a)
    assert count(session, "project_invitations", "project_id = :p", p=seen.invited) == 1
    assert count(session, "project_invitations", "contractor_id <> :c", c=world.contractor_y) == 0


def test_a_contractor_not_invited_does_not_see_an_invited_only_project(act_as, world, seen):
    session = act_as(world.contractor_y_user.id, world.org_a)
    assert count(session, "projects", "id = :p", p=seen.only_x) == 0
    assert count(session, "project_invitations", "project_id = :p", p=seen.only_x) == 0
    assert count(session, "proposals", "project_id = :p", p=seen.only_x) == 0
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert count(session, "projects", "id = :p", p=seen.only_x) == 1


def test_a_project_open_to_all_is_seen_by_every_contractor_of_the_org_and_no_other(act_as, world, seen):
    for person in (world.contractor_x_user, world.contractor_y_user):
        session = act_as(person.id, world.org_a)
        assert count(session, "projects", "id = :p", p=seen.everyone) == 1, person.name
    session = act_as(world.contractor_z_user.id, world.org_b)
    assert count(session, "projects", "id = :p", p=seen.everyone) == 0
    assert count(session, "projects", "true") == 1  # its own org's project open to all
    session = act_as(world.contractor_z_user.id, world.org_a)  # naming org A, where it is no member
    assert count(session, "projects", "true") == 0


def test_a_contractor_sees_exactly_the_projects_it_may_propose_on_or_proposed_on(act_as, world, seen):
    session = act_as(world.contractor_y_user.id, world.org_a)
    got = set(session.execute(text("select id from projects")).scalars())
    assert got == {seen.invited, seen.everyone}


def test_after_the_award_the_invited_and_the_proposers_still_see_the_project_but_not_the_winning_price(
    act_as, app_sessions, world
):
    cat = category(app_sessions, world)
    invited = open_project(app_sessions, world, category_id=cat)  # X and Y invited; only X proposes
    px = propose(app_sessions, world.contractor_x_user, world.org_a, invited)
    everyone = open_project(app_sessions, world, category_id=cat, invited=(), audience="all", title="All")
    px_all = propose(app_sessions, world.contractor_x_user, world.org_a, everyone)
    engagement = award(app_sessions, world.owner, world.org_a, invited, px)
    award(app_sessions, world.owner, world.org_a, everyone, px_all)

    session = act_as(world.contractor_y_user.id, world.org_a)
    # invited, never proposed: the project stays in view through the invitation, awarded; nothing of the award
    assert session.execute(text("select status from projects where id = :p"), {"p": invited}).scalar_one() == (
        "awarded"
    )
    assert count(session, "proposals", "project_id = :p", p=invited) == 0
    assert count(session, "engagements", "id = :e or proposal_id = :p", e=engagement, p=px) == 0
    # open to all, never proposed: gone from view once it is no longer open
    assert count(session, "projects", "id = :p", p=everyone) == 0
    # the winner sees both, and its engagement
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert count(session, "projects", "id = any(:p)", p=[invited, everyone]) == 2
    assert count(session, "engagements", "proposal_id = :p", p=px) == 1


def test_a_proposer_that_lost_still_sees_the_project_and_its_own_declined_proposal(act_as, app_sessions, world, seen):
    award(app_sessions, world.owner, world.org_a, seen.invited, seen.px)
    session = act_as(world.contractor_y_user.id, world.org_a)
    assert count(session, "projects", "id = :p", p=seen.invited) == 1
    rows = session.execute(text("select id, status from proposals where project_id = :p"), {"p": seen.invited}).all()
    assert rows == [(seen.py, "declined")]


# --- staff and other organizations ---------------------------------------------------------------------------------

A_TABLES = ("projects", "project_invitations", "proposals", "proposal_milestones", "proposal_files")


@pytest.mark.parametrize("who", ["admin", "owner", "finance"])
def test_staff_see_every_project_and_proposal_of_their_organization(act_as, world, seen, who):
    session = act_as(getattr(world, who).id, world.org_a)
    assert count(session, "projects", "id = any(:p)", p=[seen.invited, seen.only_x, seen.everyone]) == 3
    assert count(session, "proposals", "id = any(:p)", p=[seen.px, seen.py, seen.px_only, seen.px_everyone]) == 4
    assert count(session, "proposal_milestones", "proposal_id = any(:p)", p=[seen.px, seen.py]) == 4
    assert count(session, "proposal_files", "proposal_id = any(:p)", p=[seen.px, seen.py]) == 2
    assert count(session, "projects", "id = :p", p=seen.b_project) == 0


def test_finance_reads_projects_but_cannot_write_them(act_as, admin_engine, app_sessions, world, seen):
    session = act_as(world.finance.id, world.org_a)
    assert session.execute(text("update projects set title = 'F' where id = :p"), {"p": seen.invited}).rowcount == 0
    assert (
        session.execute(text("delete from project_invitations where project_id = :p"), {"p": seen.only_x}).rowcount == 0
    )
    session.commit()
    (cat,) = owner_query(admin_engine, "select category_id from projects where id = :p", p=seen.invited)
    with pytest.raises(DBAPIError) as refused:
        session.execute(
            text(
                "insert into projects (org_id, title, category_id, currency, deadline, owner_user_id, created_by)"
                " values (:o, 'F', :c, 'USD', project_today() + 7, :me, :me)"
            ),
            {"o": world.org_a, "c": cat["category_id"], "me": world.finance.id},
        )
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE
    session.rollback()
    session = act_as(world.finance.id, world.org_a)
    with pytest.raises(DBAPIError) as refused:
        session.execute(
            text(
                "insert into project_invitations (org_id, project_id, contractor_id, invited_by)"
                " values (:o, :p, :c, :me)"
            ),
            {"o": world.org_a, "p": seen.everyone, "c": world.contractor_y, "me": world.finance.id},
        )
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE
    session.rollback()


@pytest.mark.parametrize("org", ["org_b", "org_a"], ids=["in its own org", "naming org A"])
def test_another_organization_sees_nothing_of_org_as_projects(act_as, world, seen, org):
    session = act_as(world.admin_b.id, getattr(world, org))
    for table in A_TABLES:
        assert count(session, table, "org_id = :o", o=world.org_a) == 0, table
    assert count(session, "projects", "id = any(:p)", p=[seen.invited, seen.only_x, seen.everyone]) == 0
    assert count(session, "proposals", "id = any(:p)", p=[seen.px, seen.py]) == 0
    assert count(session, "project_categories", "org_id = :o", o=world.org_a) == 0


# --- the worker role -----------------------------------------------------------------------------------------------


def test_the_worker_reads_projects_and_proposals_of_the_org_it_acts_for_only(as_worker, world, seen):
    session = as_worker(world.org_a)
    assert count(session, "projects", "id = any(:p)", p=[seen.invited, seen.only_x, seen.everyone, seen.b_project]) == 3
    assert count(session, "proposals", "project_id = :p", p=seen.invited) == 2
    assert count(session, "project_invitations", "project_id = :p", p=seen.invited) == 2
    assert count(session, "project_categories", "org_id <> :o", o=world.org_a) == 0
    assert count(session, "proposals", "id = :p", p=seen.pz) == 0
    session = as_worker(world.org_b)
    for table in ("projects", "project_invitations", "proposals", "project_categories"):
        assert count(session, table, "org_id = :o", o=world.org_a) == 0, table
    assert count(session, "proposals", "id = :p", p=seen.pz) == 1


@pytest.mark.parametrize("table", ["proposal_milestones", "proposal_files"])
def test_the_worker_reads_no_proposals_milestones_or_files(as_worker, world, seen, table):
    session = as_worker(world.org_a)
    with pytest.raises(DBAPIError) as refused:
        count(session, table, "true")
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize(
    "sql",
    [
        "update projects set title = 'W' where id = :p",
        "update proposals set status = 'declined' where project_id = :p",
        "delete from project_invitations where project_id = :p",
    ],
)
def test_the_worker_writes_no_project_or_proposal(as_worker, world, seen, sql):
    session = as_worker(world.org_a)
    with pytest.raises(DBAPIError) as refused:
        session.execute(text(sql), {"p": seen.invited})
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE
