"""Who hears what about projects and proposals (issue 19; services/project_notices.py).

Each event comes from the real service (open, update and cancel a project, submit and withdraw a proposal, the
award), its ``notify`` job runs in the real worker as the worker role, and what it wrote is read back as the owner
role: exactly these people got one email each, with this subject and these words, the link into the app, and the
same notice in the app. Contractor W (in org A, with a user) is invited only where a test says so; contractor Z
and its user are org B's and hear nothing of org A's projects.
"""

from __future__ import annotations

from datetime import date

import pytest
from kit.engagements import acting, owner_query
from kit.jobs import BASE_URL, run_jobs
from kit.projects import award, category, offer, open_project, project_input, propose

from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.services import bootstrap, projects, proposals

DEADLINE = date(2036, 3, 14)  # far enough ahead to stay a valid deadline; written "Mar 14, 2036" in en_US


@pytest.fixture
def w_user(world, admin_engine, password_hash):
    """A third contractor of org A, W, with one user."""
    with make_session_factory(admin_engine)() as session:
        w = bootstrap.create_contractor(session, world.org_a, f"Contractor W {world.suffix}", f"w-{world.suffix}@x.com")
        user = bootstrap.create_user(
            session,
            email=f"wuser-{world.suffix}@example.com",
            name="Wanda W",
            password_hash=password_hash,
            org_id=world.org_a,
            role=Role.CONTRACTOR,
            contractor_id=w.id,
        )
        session.commit()
        return w.id, type(world.contractor_x_user)(user.id, user.email, user.name)


def messages(admin_engine, org_id, event: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = :e order by recipient",
        o=org_id,
        e=event,
    )


def told(admin_engine, org_id, event: str, paths: dict) -> dict[str, dict]:
    """Assert exactly the people in ``paths`` (person -> the path their link leads to) got one email each about
    ``event`` and the same notice in the app; return the messages by recipient address."""
    rows = messages(admin_engine, org_id, event)
    assert sorted(r["recipient"] for r in rows) == sorted(p.email for p in paths)
    by_email = {p.email: (p, path) for p, path in paths.items()}
    for r in rows:
        person, path = by_email[r["recipient"]]
        assert r["recipient_user_id"] == person.id
        assert f'href="{BASE_URL}{path}"' in r["html"] and BASE_URL + path in r["text"]
    in_app = {
        n["user_id"]: n
        for n in owner_query(
            admin_engine, "select * from notifications where org_id = :o and event = :e", o=org_id, e=event
        )
    }
    assert set(in_app) == {p.id for p in paths}
    for r in rows:
        person, path = by_email[r["recipient"]]
        assert (in_app[person.id]["url"], in_app[person.id]["title"]) == (path, r["subject"])
    return {r["recipient"]: r for r in rows}


def nothing_told_in(admin_engine, org_id) -> bool:
    return not owner_query(admin_engine, "select id from email_messages where org_id = :o", o=org_id)


def run(database, admin_engine, world) -> None:
    run_jobs(database, admin_engine, org_ids=[world.org_a, world.org_b])


def contractor(world, letter: str) -> str:
    return f"Contractor {letter} {world.suffix}"


def on_project(project_id) -> str:
    return f"/proposals/project/{project_id}"


# --- a project opened ------------------------------------------------------------------------------------------


def test_an_opened_project_tells_the_invited_contractors_people_and_nobody_else(
    world, app_sessions, admin_engine, database, w_user
):
    project = open_project(app_sessions, world, invited=(world.contractor_x,), deadline=DEADLINE, budget="8,000.00")
    run(database, admin_engine, world)

    rows = told(admin_engine, world.org_a, "project.opened", {world.contractor_x_user: on_project(project)})
    (r,) = rows.values()
    assert r["subject"] == "You're invited to propose on Office refit"
    assert f"Org A {world.suffix} invites you to propose on “Office refit”" in r["text"]
    assert "Category: Renovation" in r["text"]
    assert "Proposals due by: Mar 14, 2036" in r["text"]
    assert "Budget: $8,000.00" in r["text"]
    assert "Project owner: Omar Owner" in r["text"]
    assert "Refit the third floor." in r["text"]  # the description, quoted
    assert (r["entity_type"], r["entity_id"]) == ("project", str(project))
    assert nothing_told_in(admin_engine, world.org_b)


def test_a_project_without_a_budget_says_none(world, app_sessions, admin_engine, database):
    open_project(app_sessions, world, invited=(world.contractor_y,))
    run(database, admin_engine, world)

    (r,) = messages(admin_engine, world.org_a, "project.opened")
    assert r["recipient"] == world.contractor_y_user.email
    assert "Budget" not in r["text"]


def test_contractors_invited_later_are_told_and_those_told_before_are_not_told_again(
    world, app_sessions, admin_engine, database, w_user
):
    w, w_person = w_user
    category_id = category(app_sessions, world)
    project = open_project(app_sessions, world, invited=(world.contractor_x,), category_id=category_id)
    run(database, admin_engine, world)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        projects.update_project(
            session,
            actor,
            project,
            project_input(category_id, invited=(world.contractor_x, world.contractor_y, w)),
        )
    run(database, admin_engine, world)

    told(
        admin_engine,
        world.org_a,
        "project.opened",
        {p: on_project(project) for p in (world.contractor_x_user, world.contractor_y_user, w_person)},
    )


def test_a_project_open_to_every_contractor_tells_every_contractor_of_the_organization_only(
    world, app_sessions, admin_engine, database, w_user
):
    _, w_person = w_user
    project = open_project(app_sessions, world, invited=(), audience="all")
    run(database, admin_engine, world)

    people = (world.contractor_x_user, world.contractor_y_user, w_person)
    told(admin_engine, world.org_a, "project.opened", {p: on_project(project) for p in people})
    assert nothing_told_in(admin_engine, world.org_b)  # contractor Z is org B's


# --- proposals: the project's owner hears -----------------------------------------------------------------------


def test_a_proposal_tells_the_projects_owner_who_proposed_what(world, app_sessions, admin_engine, database):
    project = open_project(app_sessions, world, deadline=DEADLINE)
    proposal = propose(
        app_sessions, world.contractor_x_user, world.org_a, project, offer(note="We did the <second> floor.")
    )
    run(database, admin_engine, world)

    rows = told(admin_engine, world.org_a, "proposal.submitted", {world.owner: f"/projects/{project}"})
    (r,) = rows.values()
    assert r["subject"] == f"{contractor(world, 'X')} proposed $5,000.00 on Office refit"
    assert "Price: $5,000.00" in r["text"]
    assert "Timeline: Six weeks from award" in r["text"]
    assert "Proposals so far: 1" in r["text"]
    assert "Proposals due by: Mar 14, 2036" in r["text"]
    assert "Submitted by: Xena X" in r["text"]
    assert "Note from the contractor:\n  We did the <second> floor." in r["text"]
    assert "&lt;second&gt;" in r["html"] and "<second>" not in r["html"]
    assert (r["entity_type"], r["entity_id"]) == ("proposal", str(proposal))


def test_a_withdrawal_tells_the_projects_owner(world, app_sessions, admin_engine, database):
    project = open_project(app_sessions, world)
    proposal = propose(app_sessions, world.contractor_y_user, world.org_a, project, offer(price="4,800.00", rows=ROWS))
    with acting(app_sessions, world.contractor_y_user, world.org_a) as (session, actor):
        proposals.withdraw_proposal(session, actor, proposal)
    run(database, admin_engine, world)

    rows = told(admin_engine, world.org_a, "proposal.withdrawn", {world.owner: f"/projects/{project}"})
    (r,) = rows.values()
    assert r["subject"] == f"{contractor(world, 'Y')} withdrew its proposal on Office refit"
    assert "took back its proposal of $4,800.00" in r["text"]


# --- the award --------------------------------------------------------------------------------------------------

ROWS = (("Strip out", "", "1,800.00", "2030-02-01"), ("Refit", "", "3,000.00", "2030-03-01"))


def test_the_award_tells_the_winner_its_engagement_and_each_other_proposer_it_was_not_accepted(
    world, app_sessions, admin_engine, database, w_user
):
    w, w_person = w_user
    project = open_project(app_sessions, world, invited=(world.contractor_x, world.contractor_y, w))
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    propose(app_sessions, world.contractor_y_user, world.org_a, project, offer(price="4,800.00", rows=ROWS))
    pw = propose(app_sessions, w_person, world.org_a, project)
    with acting(app_sessions, w_person, world.org_a) as (session, actor):
        proposals.withdraw_proposal(session, actor, pw)
    engagement = award(app_sessions, world.owner, world.org_a, project, px)
    run(database, admin_engine, world)

    rows = told(
        admin_engine,
        world.org_a,
        "project.awarded",
        {world.contractor_x_user: f"/engagements/{engagement}", world.contractor_y_user: on_project(project)},
    )  # not W, which withdrew; not the owner, who awarded it
    won = rows[world.contractor_x_user.email]
    assert won["subject"] == "Your proposal for Office refit was accepted — the engagement is active"
    assert "Contract value: $5,000.00" in won["text"]
    assert "Milestones: 2" in won["text"]
    assert "First milestone due: Feb 1, 2030" in won["text"]
    assert "Accepted by: Omar Owner" in won["text"]
    lost = rows[world.contractor_y_user.email]
    assert lost["subject"] == "Your proposal for Office refit was not accepted"
    assert "Your price: $4,800.00" in lost["text"]
    assert "$5,000.00" not in lost["text"] + lost["html"]  # never the winner's price
    assert contractor(world, "X") not in lost["text"] + lost["html"]  # nor its name
    assert nothing_told_in(admin_engine, world.org_b)


def test_an_award_by_an_admin_tells_the_projects_owner_too(world, app_sessions, admin_engine, database):
    project = open_project(app_sessions, world, invited=(world.contractor_x,))
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    engagement = award(app_sessions, world.admin, world.org_a, project, px)
    run(database, admin_engine, world)

    path = f"/engagements/{engagement}"
    rows = told(admin_engine, world.org_a, "project.awarded", {world.contractor_x_user: path, world.owner: path})
    owner = rows[world.owner.email]
    assert owner["subject"] == f"Ada Admin awarded Office refit to {contractor(world, 'X')}"
    assert "Contract value: $5,000.00" in owner["text"]
    assert "Accepted by: Ada Admin" in rows[world.contractor_x_user.email]["text"]


# --- a cancellation ---------------------------------------------------------------------------------------------


def test_a_cancellation_tells_each_contractor_that_proposed_why(world, app_sessions, admin_engine, database, w_user):
    w, w_person = w_user
    project = open_project(app_sessions, world, invited=(world.contractor_x, world.contractor_y, w))
    propose(app_sessions, world.contractor_x_user, world.org_a, project)
    propose(app_sessions, w_person, world.org_a, project)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        projects.cancel_project(session, actor, project, "The landlord sold the building.")
    run(database, admin_engine, world)

    rows = told(
        admin_engine,
        world.org_a,
        "project.cancelled",
        {world.contractor_x_user: on_project(project), w_person: on_project(project)},
    )  # not Y: invited, but it never proposed
    for r in rows.values():
        assert r["subject"] == "Cancelled: Office refit"
        assert "Reason:\n  The landlord sold the building." in r["text"]
        assert "Cancelled by: Omar Owner" in r["text"]
