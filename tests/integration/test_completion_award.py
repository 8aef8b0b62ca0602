"""Completion billing from an award (issue 20), through the real services as the real app role: a project billed on
completion asks an advance; its proposals' tasks share the price less that advance; the award creates the
engagement active on completion billing with the proposal's price as its contract value, and authorizes the advance
in the same transaction. The database refuses a proposal whose tasks ignore the advance, whoever writes it."""

from __future__ import annotations

import uuid

import pytest
from kit.completion import completion_invoices
from kit.engagements import acting, milestone_rows, owner_query
from kit.projects import award, category, offer, open_project, project_input, propose
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.errors import ValidationError
from backoffice.services import projects, proposals
from backoffice.services.proposals import ProposalInput
from backoffice.services.schedule import RowInput

# $5,000.00 at a 12% advance: $600.00 ahead, $4,400.00 for the tasks.
TASKS = (
    ("Survey", "Site survey report", "1,400.00", "2030-02-01"),
    ("Delivery", "Installed and tested", "3,000.00", "2030-03-15"),
)


def completion_project(app_sessions, world, advance="12", **kw) -> uuid.UUID:
    return open_project(app_sessions, world, billing_mode="completion", advance=advance, **kw)


def project_row(admin_engine, project_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from projects where id = :p", p=project_id)
    return row


def set_org(admin_engine, org_id, **values) -> None:
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    with admin_engine.begin() as conn:
        conn.execute(text(f"update organizations set {assignments} where id = :org"), {**values, "org": org_id})


def test_awarding_a_completion_proposal_creates_the_engagement_and_authorizes_its_advance(
    app_sessions, admin_engine, world
):
    project = completion_project(app_sessions, world)
    assert (project_row(admin_engine, project)["billing_mode"], project_row(admin_engine, project)["advance_bps"]) == (
        "completion",
        1200,
    )
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project, offer("5,000.00", rows=TASKS))
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project, offer("5,000.00", rows=TASKS))

    engagement_id = award(app_sessions, world.owner, world.org_a, project, px)

    (e,) = owner_query(admin_engine, "select * from engagements where id = :i", i=engagement_id)
    assert (e["status"], e["billing_mode"], e["proposal_id"], e["contractor_id"]) == (
        "active",
        "completion",
        px,
        world.contractor_x,
    )
    assert (e["contract_value_minor"], e["advance_bps"], e["advance_minor"]) == (500_000, 1200, 60_000)
    assert e["advance_confirmed_by"] == world.owner.id and e["advance_confirmed_at"] is not None
    (advance,) = completion_invoices(admin_engine, engagement_id)
    assert (advance["kind"], advance["status"], advance["gross_minor"], advance["retainage_minor"]) == (
        "advance",
        "approved",
        60_000,
        0,
    )
    assert advance["authorized_by"] == world.owner.id
    assert [(m["title"], m["amount_minor"], m["status"]) for m in milestone_rows(admin_engine, engagement_id)] == [
        ("Survey", 140_000, "planned"),
        ("Delivery", 300_000, "planned"),
    ]
    statuses = {
        r["id"]: r["status"]
        for r in owner_query(admin_engine, "select id, status from proposals where project_id = :p", p=project)
    }
    assert statuses == {px: "accepted", py: "declined"}


def test_a_completion_project_with_no_advance_awards_without_an_advance_invoice(app_sessions, admin_engine, world):
    project = completion_project(app_sessions, world, advance="0")
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)  # $5,000.00, all for the tasks
    engagement_id = award(app_sessions, world.owner, world.org_a, project, px)
    (e,) = owner_query(admin_engine, "select * from engagements where id = :i", i=engagement_id)
    assert (e["billing_mode"], e["contract_value_minor"], e["advance_minor"]) == ("completion", 500_000, 0)
    assert completion_invoices(admin_engine, engagement_id) == []


def test_a_proposal_whose_tasks_share_the_full_price_is_refused_at_the_rows(app_sessions, admin_engine, world):
    project = completion_project(app_sessions, world)
    with pytest.raises(ValidationError) as exc:
        propose(app_sessions, world.contractor_x_user, world.org_a, project, offer("5,000.00"))  # $5,000.00 of tasks
    assert exc.value.fields["rows"] == (
        "The tasks add up to $5,000.00, $600.00 more than the price less the advance, $4,400.00; "
        "change an amount or the price so that they match exactly."
    )
    assert owner_query(admin_engine, "select id from proposals where project_id = :p", p=project) == []


@pytest.mark.parametrize(
    ("mode", "rows", "expected"),
    [
        (
            "equal",
            [RowInput(title=t, due_date="2030-02-01") for t in ("One", "Two", "Three")],
            [146_667] * 2 + [146_666],
        ),
        (
            "percent",
            [RowInput(title="Half", percent="50", due_date="2030-02-01")] * 2,
            [220_000, 220_000],
        ),
    ],
)
def test_percentages_and_an_equal_split_share_the_price_less_the_advance(
    app_sessions, admin_engine, world, mode, rows, expected
):
    project = completion_project(app_sessions, world)
    data = ProposalInput(price="5,000.00", rows=rows, mode=mode)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project, data)
    stored = owner_query(
        admin_engine, "select amount_minor from proposal_milestones where proposal_id = :p order by seq", p=px
    )
    assert [r["amount_minor"] for r in stored] == expected


def test_the_database_refuses_a_proposal_whose_tasks_ignore_the_advance(act_as, app_sessions, admin_engine, world):
    project = completion_project(app_sessions, world)
    session = act_as(world.contractor_x_user.id, world.org_a)
    proposal_id = uuid.uuid4()
    session.execute(
        text(
            "insert into proposals (id, org_id, project_id, contractor_id, price_minor, submitted_by)"
            " values (:id, :org, :project, :contractor, 500000, :me)"
        ),
        {
            "id": proposal_id,
            "org": world.org_a,
            "project": project,
            "contractor": world.contractor_x,
            "me": world.contractor_x_user.id,
        },
    )
    session.execute(
        text(
            "insert into proposal_milestones (org_id, proposal_id, contractor_id, seq, title, amount_minor, due_date)"
            " values (:org, :proposal, :contractor, 1, 'Everything', 500000, '2030-01-01')"
        ),
        {"org": world.org_a, "proposal": proposal_id, "contractor": world.contractor_x},
    )
    with pytest.raises(DBAPIError) as exc:
        session.commit()
    session.rollback()
    assert exc.value.orig.sqlstate == "23514"
    assert exc.value.orig.diag.message_primary == (
        "a proposal's milestones add up to its price exactly (less the advance, on a completion project)"
    )
    assert owner_query(admin_engine, "select id from proposals where project_id = :p", p=project) == []


# --- the project's advance -----------------------------------------------------------------------------------------


def opening(app_sessions, world, category_id=None, **kw):
    category_id = category_id or category(app_sessions, world)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        return projects.open_project(session, actor, project_input(category_id, invited=(world.contractor_x,), **kw))


def test_an_empty_advance_takes_the_organizations_default_and_a_milestone_project_has_none(
    app_sessions, admin_engine, world
):
    set_org(admin_engine, world.org_a, default_advance_bps=1500)
    cat = category(app_sessions, world)
    completion = opening(app_sessions, world, cat, billing_mode="completion", title="On completion")
    milestone = opening(app_sessions, world, cat, billing_mode="milestone", advance="20", title="Per milestone")
    assert project_row(admin_engine, completion.id)["advance_bps"] == 1500
    assert project_row(admin_engine, milestone.id)["advance_bps"] is None


@pytest.mark.parametrize(
    ("advance", "words"),
    [
        ("70", "An advance is at most 50% of the contract value."),
        ("ten", "Enter a percentage"),
        ("12\x00", "Enter a percentage"),
    ],
)
def test_an_advance_out_of_bounds_is_refused_at_its_field(app_sessions, admin_engine, world, advance, words):
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, billing_mode="completion", advance=advance)
    assert words in exc.value.fields["advance"]
    assert owner_query(admin_engine, "select id from projects where org_id = :o", o=world.org_a) == []


def test_an_organization_that_pays_no_advances_opens_completion_projects_at_zero_only(
    app_sessions, admin_engine, world
):
    set_org(admin_engine, world.org_a, advances_enabled=False)
    cat = category(app_sessions, world)
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, cat, billing_mode="completion", advance="12")
    assert exc.value.fields["advance"] == "This organization pays no advances (Settings); enter 0."
    project = opening(app_sessions, world, cat, billing_mode="completion")  # empty: 0, not the default 12%
    assert project_row(admin_engine, project.id)["advance_bps"] == 0


def test_the_advance_is_fixed_once_someone_proposed_and_said_at_its_field(app_sessions, admin_engine, world):
    cat = category(app_sessions, world)
    data = project_input(cat, invited=(world.contractor_x,), billing_mode="completion", advance="12")
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        project = projects.open_project(session, actor, data).id
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):  # before any proposal it may change
        projects.update_project(session, actor, project, data.__class__(**{**data.__dict__, "advance": "10"}))
    data = data.__class__(**{**data.__dict__, "advance": "10"})
    propose(
        app_sessions,
        world.contractor_x_user,
        world.org_a,
        project,
        offer("5,000.00", rows=(("All", "", "4,500.00", "2030-03-15"),)),
    )
    with pytest.raises(ValidationError) as exc, acting(app_sessions, world.owner, world.org_a) as (session, actor):
        projects.update_project(session, actor, project, data.__class__(**{**data.__dict__, "advance": "20"}))
    assert set(exc.value.fields) == {"advance"}
    assert exc.value.fields["advance"].startswith("Fixed once a contractor has proposed")
    assert project_row(admin_engine, project)["advance_bps"] == 1000
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):  # the budget still may change
        projects.update_project(session, actor, project, data.__class__(**{**data.__dict__, "budget": "9,000.00"}))
    assert project_row(admin_engine, project)["budget_minor"] == 900_000


def test_an_advance_asked_before_the_organization_stopped_paying_advances_is_kept_on_edit(
    app_sessions, admin_engine, world
):
    cat = category(app_sessions, world)
    data = project_input(cat, invited=(world.contractor_x,), billing_mode="completion", advance="12")
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        project = projects.open_project(session, actor, data).id
    set_org(admin_engine, world.org_a, advances_enabled=False)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        projects.update_project(session, actor, project, data.__class__(**{**data.__dict__, "budget": "9,000.00"}))
    assert project_row(admin_engine, project)["advance_bps"] == 1200


def test_the_proposal_check_says_the_advance_and_what_the_tasks_share():
    checked = proposals.check_proposal("USD", ProposalInput(price="5,000.00", rows=[]), 1200)
    assert (checked.advance, checked.pool) == (60_000, 440_000)
    milestone = proposals.check_proposal("USD", ProposalInput(price="5,000.00", rows=[]))
    assert (milestone.advance, milestone.pool) == (None, 500_000)


def test_a_project_awarded_after_its_organization_switched_advances_off_keeps_its_advance(
    app_sessions, admin_engine, world
):
    """The contractors proposed on the project's advance: switching advances off afterwards changes new projects,
    not this award (it was "Someone else changed this project" until the billing guard let an award keep it)."""
    project = completion_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project, offer("5,000.00", rows=TASKS))
    set_org(admin_engine, world.org_a, advances_enabled=False)
    engagement_id = award(app_sessions, world.owner, world.org_a, project, px)
    (e,) = owner_query(admin_engine, "select advance_minor, status from engagements where id = :i", i=engagement_id)
    assert (e["advance_minor"], e["status"]) == (60_000, "active")
    assert [i["kind"] for i in completion_invoices(admin_engine, engagement_id)] == ["advance"]
