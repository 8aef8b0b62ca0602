"""The project, proposal and award services' refusals and what they write (issue 19), against real Postgres as the
web role: each ValidationError at its field, the update rules, cancelling, proposals (one per contractor, until the
deadline, milestones sharing the price exactly in every mode, files within limits), and the award (who may, which
proposal, what the audit trail says)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from kit.engagements import acting, owner_query
from kit.projects import award, category, offer, open_project, project_input, propose
from sqlalchemy import text

from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.services import projects, proposals
from backoffice.services.evidence import UploadedFile
from backoffice.services.proposals import ProposalInput
from backoffice.services.schedule import RowInput


def fields_of(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return exc.value.fields


def opening(app_sessions, world, data, person=None):
    with acting(app_sessions, person or world.owner, world.org_a) as (session, actor):
        return projects.open_project(session, actor, data)


def statuses(admin_engine, project_id) -> dict:
    rows = owner_query(admin_engine, "select id, status from proposals where project_id = :p", p=project_id)
    return {r["id"]: r["status"] for r in rows}


# --- opening a project ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"title": "  "}, "title", "title"),
        ({"category_id": ""}, "category_id", "Choose a category"),
        ({"deadline": (date.today() - timedelta(days=3)).isoformat()}, "deadline", "cannot be in the past"),
        ({"deadline": "next week"}, "deadline", ""),
        ({"budget": "lots"}, "budget", ""),
        ({"currency": "DOLLARS"}, "currency", "three-letter"),
        ({"billing_mode": "hourly"}, "billing_mode", "billed"),
        ({"audience": "public"}, "audience", "Choose who may propose"),
        ({"invited": ()}, "invited", "Invite at least one contractor"),
        ({"invited": ("not-an-id",)}, "invited", "Choose contractors from the list"),
    ],
)
def test_opening_a_project_says_what_is_wrong_at_the_field(app_sessions, admin_engine, world, change, field, words):
    cat = category(app_sessions, world)
    data = project_input(cat, invited=(world.contractor_x,))
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, data.__class__(**{**data.__dict__, **change}))
    assert field in fields_of(exc) and words in fields_of(exc)[field], fields_of(exc)
    assert owner_query(admin_engine, "select id from projects where org_id = :o", o=world.org_a) == []


def test_a_contractor_of_another_org_cannot_be_invited(app_sessions, world):
    cat = category(app_sessions, world)
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, project_input(cat, invited=(world.contractor_x, world.contractor_z)))
    assert fields_of(exc) == {"invited": "Choose contractors from the list."}


def test_an_archived_category_is_not_offered_to_a_new_project(app_sessions, world):
    cat = category(app_sessions, world)
    with acting(app_sessions, world.admin, world.org_a) as (session, actor):
        projects.set_category_archived(session, actor, cat, True)
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, project_input(cat, invited=(world.contractor_x,)))
    assert set(fields_of(exc)) == {"category_id"}


def test_a_category_name_is_unique_whatever_its_case(app_sessions, world):
    category(app_sessions, world, name="Renovation")
    with acting(app_sessions, world.admin, world.org_a) as (session, actor), pytest.raises(ValidationError) as exc:
        projects.add_category(session, actor, "renovation")
    assert set(fields_of(exc)) == {"name"}


@pytest.mark.parametrize(("owner", "words"), [("admin", "A project owner opens projects they own"), ("finance", "")])
def test_an_owner_opens_projects_only_in_its_own_name(app_sessions, world, owner, words):
    cat = category(app_sessions, world)
    data = project_input(cat, invited=(world.contractor_x,), owner_user_id=str(getattr(world, owner).id))
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, data)
    assert set(fields_of(exc)) == {"owner_user_id"} and words in fields_of(exc)["owner_user_id"]


def test_an_admin_must_name_the_projects_owner_and_may_name_another(app_sessions, admin_engine, world):
    cat = category(app_sessions, world)
    with pytest.raises(ValidationError) as exc:
        opening(app_sessions, world, project_input(cat, invited=(world.contractor_x,)), person=world.admin)
    assert set(fields_of(exc)) == {"owner_user_id"}
    data = project_input(cat, invited=(world.contractor_x,), owner_user_id=str(world.owner.id))
    project = opening(app_sessions, world, data, person=world.admin)
    (row,) = owner_query(admin_engine, "select owner_user_id, created_by from projects where id = :p", p=project.id)
    assert row == {"owner_user_id": world.owner.id, "created_by": world.admin.id}


@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_neither_finance_nor_a_contractor_opens_a_project(app_sessions, world, who):
    cat = category(app_sessions, world)
    with pytest.raises(Forbidden):
        opening(app_sessions, world, project_input(cat, invited=(world.contractor_x,)), person=getattr(world, who))


# --- changing and cancelling ---------------------------------------------------------------------------------------


def editing(app_sessions, world, project_id, cat, person=None, **kw):
    with acting(app_sessions, person or world.owner, world.org_a) as (session, actor):
        return projects.update_project(session, actor, project_id, project_input(cat, **kw))


def test_the_currency_is_fixed_once_a_contractor_has_proposed(app_sessions, world):
    cat = category(app_sessions, world)
    project = open_project(app_sessions, world, category_id=cat)
    invited = (world.contractor_x, world.contractor_y)
    editing(app_sessions, world, project, cat, invited=invited, currency="EUR")  # nobody proposed yet
    editing(app_sessions, world, project, cat, invited=invited, currency="USD")
    propose(app_sessions, world.contractor_x_user, world.org_a, project)
    fixed = (
        "Fixed once a contractor has proposed: the offers priced what the project asked. Cancel it and open a new"
        " project to ask for something else."
    )
    with pytest.raises(ValidationError) as exc:
        editing(app_sessions, world, project, cat, invited=invited, currency="EUR")
    assert fields_of(exc) == {"currency": fixed}
    with pytest.raises(ValidationError) as exc:
        editing(app_sessions, world, project, cat, invited=invited, title="Another job", description="Also the roof")
    assert fields_of(exc) == {"title": fixed, "description": fixed}
    edited = editing(app_sessions, world, project, cat, invited=invited, budget="9,000.00")  # the rest still may
    assert edited.budget_minor == 900000


def test_the_invitation_of_a_contractor_that_proposed_cannot_be_taken_back(app_sessions, admin_engine, world):
    cat = category(app_sessions, world)
    project = open_project(app_sessions, world, category_id=cat)
    propose(app_sessions, world.contractor_x_user, world.org_a, project)
    with pytest.raises(ValidationError) as exc:
        editing(app_sessions, world, project, cat, invited=(world.contractor_y,))
    assert fields_of(exc) == {"invited": f"Contractor X {world.suffix} proposed already, so stay invited."}
    # Y, who did not propose, may be taken back
    editing(app_sessions, world, project, cat, invited=(world.contractor_x,))
    rows = owner_query(admin_engine, "select contractor_id from project_invitations where project_id = :p", p=project)
    assert [r["contractor_id"] for r in rows] == [world.contractor_x]


def test_another_owner_cannot_change_or_cancel_a_project(app_sessions, world):
    cat = category(app_sessions, world)
    project = open_project(app_sessions, world, category_id=cat, by=world.admin, owner_user_id=str(world.admin.id))
    with pytest.raises(Forbidden):
        editing(app_sessions, world, project, cat, invited=(world.contractor_x,), title="Mine")
    with acting(app_sessions, world.owner, world.org_a) as (session, actor), pytest.raises(Forbidden):
        projects.cancel_project(session, actor, project, "Not needed")


def test_cancelling_needs_a_reason_and_declines_every_waiting_proposal(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project)
    with acting(app_sessions, world.contractor_y_user, world.org_a) as (session, actor):
        proposals.withdraw_proposal(session, actor, py)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        with pytest.raises(ValidationError) as exc:
            projects.cancel_project(session, actor, project, "   ")
        assert set(fields_of(exc)) == {"reason"}
        projects.cancel_project(session, actor, project, "The budget was withdrawn")
    assert statuses(admin_engine, project) == {px: "declined", py: "withdrawn"}
    (row,) = owner_query(admin_engine, "select status, cancel_reason from projects where id = :p", p=project)
    assert row == {"status": "cancelled", "cancel_reason": "The budget was withdrawn"}
    (event,) = owner_query(
        admin_engine,
        "select data from audit_events where action = 'project.cancelled' and entity_id = :p",
        p=str(project),
    )
    assert event["data"]["declined"] == [str(px)]
    with acting(app_sessions, world.owner, world.org_a) as (session, actor), pytest.raises(InvalidTransition):
        projects.cancel_project(session, actor, project, "Again")


# --- proposals -----------------------------------------------------------------------------------------------------


def submitting(app_sessions, world, project, data=None, who="x", files=()):
    person = getattr(world, f"contractor_{who}_user")
    with acting(app_sessions, person, world.org_a) as (session, actor):
        return proposals.submit_proposal(session, actor, project, data or offer(), list(files))


def stored_amounts(admin_engine, proposal_id) -> list[int]:
    rows = owner_query(
        admin_engine, "select amount_minor from proposal_milestones where proposal_id = :p order by seq", p=proposal_id
    )
    return [r["amount_minor"] for r in rows]


def test_a_second_proposal_is_a_conflict(app_sessions, world):
    project = open_project(app_sessions, world)
    submitting(app_sessions, world, project)
    with pytest.raises(Conflict, match="already proposed on this project"):
        submitting(app_sessions, world, project)


def test_a_proposal_after_the_deadline_or_on_a_closed_project_is_an_invalid_transition(
    app_sessions, admin_engine, world
):
    project = open_project(app_sessions, world)
    with admin_engine.begin() as conn:
        conn.execute(text("update projects set deadline = project_today() - 1 where id = :p"), {"p": project})
    with pytest.raises(InvalidTransition, match=r"The deadline for proposals on this project has passed\."):
        submitting(app_sessions, world, project)
    other = open_project(app_sessions, world, category_id=category(app_sessions, world, name="Roofing"))
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        projects.cancel_project(session, actor, other, "No longer needed")
    with pytest.raises(InvalidTransition, match="no longer open for proposals"):
        submitting(app_sessions, world, other)


def test_a_contractor_not_invited_finds_no_project(app_sessions, world):
    project = open_project(app_sessions, world, invited=(world.contractor_x,))
    with pytest.raises(NotFound):
        submitting(app_sessions, world, project, who="y")


def test_milestones_that_do_not_share_the_price_are_refused_at_the_rows_naming_the_difference(app_sessions, world):
    project = open_project(app_sessions, world)
    rows = (("Survey", "Report", "1,500.00", "2030-02-01"), ("Delivery", "Installed", "2,500.00", "2030-03-15"))
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, offer(price="5,000.00", rows=rows))
    assert fields_of(exc) == {
        "rows": "The milestones add up to $4,000.00, $1,000.00 less than the price of $5,000.00; change an amount or"
        " the price so that they match exactly."
    }
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, offer(price="3,000.00", rows=rows))
    assert "$1,000.00 more than the price of $3,000.00" in fields_of(exc)["rows"]


def test_a_proposal_says_each_bad_field(app_sessions, world):
    project = open_project(app_sessions, world)
    rows = [RowInput(title="", amount="abc", due_date="soon")]
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, ProposalInput(price="", rows=rows, timeline="x" * 501))
    assert {"price", "timeline"} <= set(fields_of(exc))
    assert any(k.startswith("rows-0-") for k in fields_of(exc)), fields_of(exc)
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, ProposalInput(price="100.00", rows=[]))
    assert fields_of(exc) == {"rows": "Add at least one milestone."}


def test_percentages_of_the_price_are_allocated_exactly(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    rows = [
        RowInput(title=f"Part {i}", percent=p, due_date="2030-01-01") for i, p in enumerate(("33.33", "33.33", "33.34"))
    ]
    proposal = submitting(app_sessions, world, project, ProposalInput(price="1,000.01", rows=rows, mode="percent"))
    amounts = stored_amounts(admin_engine, proposal.id)
    assert sum(amounts) == 100_001
    assert amounts == [33_330, 33_330, 33_341]


def test_an_equal_split_of_the_price_is_allocated_exactly(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    rows = [RowInput(title=f"Part {i}", due_date="2030-01-01") for i in range(3)]
    proposal = submitting(app_sessions, world, project, ProposalInput(price="100.00", rows=rows, mode="equal"))
    assert stored_amounts(admin_engine, proposal.id) == [3_334, 3_333, 3_333]


def test_a_price_too_small_to_split_is_refused_at_the_price(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    rows = [RowInput(title=f"Part {i}", due_date="2030-01-01") for i in range(3)]
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, ProposalInput(price="0.02", rows=rows, mode="equal"))
    assert fields_of(exc) == {
        "price": "Too small to give every milestone an amount; enter a larger contract value or fewer milestones."
    }
    assert statuses(admin_engine, project) == {}


def test_files_beyond_the_limits_are_refused_at_files(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    eleven = [UploadedFile.from_bytes(f"part{i}.txt", b"details") for i in range(11)]
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, files=eleven)
    assert set(fields_of(exc)) == {"files"} and "at most 10 files" in fields_of(exc)["files"]
    with admin_engine.begin() as conn:  # the organization allows 1 MB per file
        conn.execute(text("update organizations set evidence_max_file_mb = 1 where id = :o"), {"o": world.org_a})
    big = [UploadedFile.from_bytes("big.txt", b"x" * (1024 * 1024 + 1))]
    with pytest.raises(ValidationError) as exc:
        submitting(app_sessions, world, project, files=big)
    assert "allowed per file" in fields_of(exc)["files"]
    proposal = submitting(app_sessions, world, project, files=eleven[:10])
    # an edit counts the files kept: one more is one too many
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor), pytest.raises(ValidationError):
        proposals.update_proposal(session, actor, proposal.id, offer(), eleven[10:])


def test_an_edit_replaces_the_milestones_and_a_withdrawn_proposal_no_longer_changes(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world)
    proposal = submitting(app_sessions, world, project)
    rows = (("All of it", "Everything", "4,200.00", "2030-05-01"),)
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        proposals.update_proposal(session, actor, proposal.id, offer(price="4,200.00", rows=rows))
    assert stored_amounts(admin_engine, proposal.id) == [420_000]
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        proposals.withdraw_proposal(session, actor, proposal.id)
        with pytest.raises(InvalidTransition, match="withdrawn"):
            proposals.update_proposal(session, actor, proposal.id, offer())
        with pytest.raises(InvalidTransition, match="withdrawn"):
            proposals.withdraw_proposal(session, actor, proposal.id)


def test_a_contractor_cannot_edit_or_withdraw_anothers_proposal(app_sessions, world):
    project = open_project(app_sessions, world)
    proposal = submitting(app_sessions, world, project)
    with acting(app_sessions, world.contractor_y_user, world.org_a) as (session, actor):
        with pytest.raises(NotFound):
            proposals.update_proposal(session, actor, proposal.id, offer())
        with pytest.raises(NotFound):
            proposals.withdraw_proposal(session, actor, proposal.id)


# --- the award -----------------------------------------------------------------------------------------------------


@pytest.fixture
def proposed(app_sessions, world):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project)
    return project, px, py


@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_neither_finance_nor_a_contractor_awards(app_sessions, admin_engine, world, proposed, who):
    project, px, _ = proposed
    with pytest.raises(Forbidden):
        award(app_sessions, getattr(world, who), world.org_a, project, px)
    assert set(statuses(admin_engine, project).values()) == {"submitted"}


def test_another_owner_cannot_award_a_project_it_does_not_own(app_sessions, admin_engine, world):
    project = open_project(app_sessions, world, by=world.admin, owner_user_id=str(world.admin.id))
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    with pytest.raises(Forbidden):
        award(app_sessions, world.owner, world.org_a, project, px)
    award(app_sessions, world.admin, world.org_a, project, px)  # its owner (an admin) may
    assert statuses(admin_engine, project) == {px: "accepted"}


def test_a_proposal_of_another_project_is_not_found(app_sessions, world, proposed):
    project, _, _ = proposed
    other = open_project(app_sessions, world, category_id=category(app_sessions, world, name="Roofing"))
    p_other = propose(app_sessions, world.contractor_x_user, world.org_a, other)
    with pytest.raises(NotFound):
        award(app_sessions, world.owner, world.org_a, project, p_other)
    with pytest.raises(NotFound):
        award(app_sessions, world.owner, world.org_a, project, "not-an-id")


def test_a_withdrawn_proposal_cannot_be_awarded(app_sessions, admin_engine, world, proposed):
    project, px, py = proposed
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        proposals.withdraw_proposal(session, actor, px)
    with pytest.raises(Conflict, match=f"Contractor X {world.suffix}'s proposal was withdrawn meanwhile"):
        award(app_sessions, world.owner, world.org_a, project, px)
    assert statuses(admin_engine, project) == {px: "withdrawn", py: "submitted"}


def test_an_awarded_project_is_not_awarded_again(app_sessions, world, proposed):
    project, px, py = proposed
    award(app_sessions, world.owner, world.org_a, project, px)
    with pytest.raises(Conflict, match=f"Omar Owner awarded this project to Contractor X {world.suffix} already."):
        award(app_sessions, world.admin, world.org_a, project, py)


def test_the_award_is_audited_with_who_awarded_what_to_whom(app_sessions, admin_engine, world, proposed):
    project, px, py = proposed
    engagement = award(app_sessions, world.owner, world.org_a, project, px)
    (event,) = owner_query(
        admin_engine,
        "select actor_user_id, data from audit_events where action = 'project.awarded' and entity_id = :p",
        p=str(project),
    )
    assert event["actor_user_id"] == world.owner.id
    assert event["data"] == {
        "proposal_id": str(px),
        "contractor_id": str(world.contractor_x),
        "contractor": f"Contractor X {world.suffix}",
        "engagement_id": str(engagement),
        "price_minor": 500_000,
        "currency": "USD",
        "declined": [str(py)],
    }
    (created,) = owner_query(
        admin_engine,
        "select data from audit_events where action = 'engagement.created' and entity_id = :e",
        e=str(engagement),
    )
    assert created["data"]["from_proposal"] == str(px) and created["data"]["milestones"] == 2
    (e,) = owner_query(admin_engine, "select status, proposal_id from engagements where id = :e", e=engagement)
    assert e == {"status": "active", "proposal_id": px}


def test_after_the_deadline_a_proposal_no_longer_changes_but_may_still_be_withdrawn_until_the_award(
    app_sessions, admin_engine, world
):
    project = open_project(app_sessions, world)
    mine = submitting(app_sessions, world, project).id
    theirs = submitting(app_sessions, world, project, who="y").id
    with admin_engine.begin() as conn:
        conn.execute(text("update projects set deadline = project_today() - 1 where id = :p"), {"p": project})
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        with pytest.raises(InvalidTransition, match=r"The deadline for proposals on this project has passed\."):
            proposals.update_proposal(
                session, actor, mine, offer(price="4,000.00", rows=(("All", "", "4,000.00", "2030-02-01"),))
            )
        assert proposals.withdraw_proposal(session, actor, mine).status == "withdrawn"
    award(app_sessions, world.owner, world.org_a, project, theirs)
    (row,) = owner_query(admin_engine, "select status, price_minor from proposals where id = :i", i=mine)
    assert (row["status"], row["price_minor"]) == ("withdrawn", 500000)
