"""The award flow's rules as the database enforces them (sql/project_guards.sql and engagements_guard), whoever writes:
every refusal of issue 19 as raw SQL of the web role, signed in as the person who would try it (``act_as``).
Rows are built the legal way, through the services (kit.projects); only the statement judged is raw SQL. Refusals
checked at commit are committed; the others fail at their statement."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from kit.engagements import acting, owner_query
from kit.projects import award, category, open_project, propose
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import projects as project_service
from backoffice.services import proposals as proposal_service

CHECK_VIOLATION = "23514"
INSUFFICIENT_PRIVILEGE = "42501"
UNIQUE_VIOLATION = "23505"


def refused(session, *statements: tuple[str, dict], commit: bool = False) -> tuple[str, str]:
    """Run the statements (the last one refused, or the commit when ``commit``); the refusal's (sqlstate, words)."""
    try:
        for sql, params in statements:
            session.execute(text(sql), params)
        if commit:
            session.commit()
    except DBAPIError as exc:
        session.rollback()
        return exc.orig.sqlstate, exc.orig.diag.message_primary
    session.rollback()
    raise AssertionError(f"not refused: {statements}")


def accepted(session, *statements: tuple[str, dict]) -> list:
    out = [session.execute(text(sql), params) for sql, params in statements]
    session.commit()
    return out


def project_row(admin_engine, project_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from projects where id = :p", p=project_id)
    return row


def proposal_row(admin_engine, proposal_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from proposals where id = :p", p=proposal_id)
    return row


NEW_PROJECT = (
    "insert into projects (org_id, title, category_id, currency, deadline, owner_user_id, created_by, status)"
    " values (:org, 'Raw project', :category, 'USD', :deadline, :owner, :me, :status)"
)
NEW_PROPOSAL = (
    "insert into proposals (id, org_id, project_id, contractor_id, price_minor, submitted_by)"
    " values (:id, :org, :project, :contractor, :price, :me)"
)
NEW_PROPOSAL_MILESTONE = (
    "insert into proposal_milestones (org_id, proposal_id, contractor_id, seq, title, amount_minor, due_date)"
    " values (:org, :proposal, :contractor, :seq, 'Raw', :amount, '2030-01-01')"
)


def proposing(world, project_id, *, who="x", price=100_000, proposal_id=None) -> dict:
    return {
        "id": proposal_id or uuid.uuid4(),
        "org": world.org_a,
        "project": project_id,
        "contractor": getattr(world, f"contractor_{who}"),
        "price": price,
        "me": getattr(world, f"contractor_{who}_user").id,
    }


def milestone(values: dict, seq: int, amount: int) -> tuple[str, dict]:
    return NEW_PROPOSAL_MILESTONE, {
        "org": values["org"],
        "proposal": values["id"],
        "contractor": values["contractor"],
        "seq": seq,
        "amount": amount,
    }


# The award written by hand as the owner would (services/awards.py in SQL): accept, decline the rest, the contract
# from the proposal with its milestones, the project awarded.
ACCEPT = (
    "update proposals set status = 'accepted', decided_by = :me, decided_at = now() where id = :proposal"
    " returning contractor_id"
)
DECLINE_REST = (
    "update proposals set status = 'declined', decided_by = :me, decided_at = now()"
    " where project_id = :project and status = 'submitted' and id <> :proposal"
)
# The contract on the project's and the organization's terms, as services/awards.py writes it.
CONTRACT = (
    "insert into engagements (id, org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
    " payment_terms_days, service_fee_bps, billing_mode, status, created_by, sent_by, responded_by, proposal_id)"
    " select :engagement, q.org_id, :contractor, p.owner_user_id, p.title, p.currency, o.default_retainage_bps,"
    " o.payment_terms_days, 0, p.billing_mode, 'active', :me, :me, q.submitted_by, :proposal_ref"
    " from proposals q join projects p on p.id = q.project_id join organizations o on o.id = q.org_id"
    " where q.id = :proposal"
)
CONTRACT_MILESTONES = (
    "insert into milestones (org_id, contractor_id, engagement_id, seq, title, deliverable, amount_minor, due_date)"
    " select m.org_id, m.contractor_id, :engagement, m.seq, m.title, m.deliverable, m.amount_minor, m.due_date"
    " from proposal_milestones m where m.proposal_id = :proposal"
)
AWARD_PROJECT = "update projects set status = 'awarded', awarded_by = :me, awarded_at = now() where id = :project"


def award_statements(world, project_id, proposal_id, *, contractor=None, decline=True, award=True, proposal_ref=None):
    values = {
        "me": world.owner.id,
        "project": project_id,
        "proposal": proposal_id,
        "proposal_ref": proposal_ref or proposal_id,
        "engagement": uuid.uuid4(),
        "contractor": contractor or world.contractor_x,
    }
    statements = [(ACCEPT, values)]
    if decline:
        statements.append((DECLINE_REST, values))
    statements += [(CONTRACT, values), (CONTRACT_MILESTONES, values)]
    if award:
        statements.append((AWARD_PROJECT, values))
    return statements


@pytest.fixture
def project(app_sessions, world):
    """An open project of org A's owner inviting contractors X and Y."""
    return open_project(app_sessions, world)


@pytest.fixture
def two_proposals(app_sessions, world, project):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project)
    return project, px, py


# --- projects ------------------------------------------------------------------------------------------------------


def new_project(world, category_id, **kw) -> dict:
    return {
        "org": world.org_a,
        "category": category_id,
        "deadline": date.today() + timedelta(days=7),
        "owner": world.owner.id,
        "me": world.owner.id,
        "status": "open",
    } | kw


def test_a_project_written_by_hand_as_its_owner_is_accepted(act_as, app_sessions, world):
    """The control: the statement the refusals below vary is accepted as it stands."""
    category_id = category(app_sessions, world)
    session = act_as(world.owner.id, world.org_a)
    accepted(session, (NEW_PROJECT, new_project(world, category_id)))


@pytest.mark.parametrize("status", ["awarded", "cancelled"])
def test_a_project_cannot_be_inserted_other_than_open(act_as, app_sessions, world, status):
    category_id = category(app_sessions, world)
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, (NEW_PROJECT, new_project(world, category_id, status=status))) == (
        CHECK_VIOLATION,
        "a new project starts open for proposals",
    )


def test_a_project_cannot_be_inserted_with_a_deadline_in_the_past(act_as, app_sessions, world):
    category_id = category(app_sessions, world)
    session = act_as(world.owner.id, world.org_a)
    values = new_project(world, category_id, deadline=date.today() - timedelta(days=2))
    assert refused(session, (NEW_PROJECT, values)) == (
        CHECK_VIOLATION,
        "the deadline for proposals cannot be in the past",
    )


def test_an_owner_cannot_open_a_project_for_another_owner_or_in_another_name(act_as, app_sessions, world):
    category_id = category(app_sessions, world)
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, (NEW_PROJECT, new_project(world, category_id, owner=world.admin.id)))[0] == (
        INSUFFICIENT_PRIVILEGE
    )
    assert refused(session, (NEW_PROJECT, new_project(world, category_id, me=world.admin.id))) == (
        INSUFFICIENT_PRIVILEGE,
        "a project is opened in the name of the user opening it",
    )


@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_neither_finance_nor_a_contractor_opens_a_project(act_as, app_sessions, world, who):
    category_id = category(app_sessions, world)
    person = getattr(world, who)
    session = act_as(person.id, world.org_a)
    values = new_project(world, category_id, owner=person.id, me=person.id)
    assert refused(session, (NEW_PROJECT, values))[0] == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize(
    "change",
    [
        "title = 'Taken over'",
        "deadline = deadline + 30",
        "status = 'cancelled', cancelled_by = :me, cancelled_at = now(), cancel_reason = 'mine now'",
    ],
)
@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_neither_a_contractor_nor_finance_changes_a_project(act_as, admin_engine, world, project, who, change):
    before = project_row(admin_engine, project)
    person = getattr(world, who)
    session = act_as(person.id, world.org_a)
    result = session.execute(text(f"update projects set {change} where id = :p"), {"p": project, "me": person.id})
    assert result.rowcount == 0  # its policies let it update no project at all
    session.commit()
    assert project_row(admin_engine, project) == before


def test_another_owner_cannot_change_a_project_it_does_not_own(act_as, admin_engine, app_sessions, world):
    project_id = open_project(app_sessions, world, by=world.admin, owner_user_id=str(world.admin.id))
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, ("update projects set title = 'Mine' where id = :p", {"p": project_id})) == (
        INSUFFICIENT_PRIVILEGE,
        "only this project's owner or an admin changes it",
    )


def test_a_project_that_is_awarded_or_cancelled_cannot_change_or_reopen(act_as, app_sessions, world, project):
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        project_service.cancel_project(session, actor, project, "Budget withdrawn")
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, ("update projects set title = 'Again' where id = :p", {"p": project})) == (
        CHECK_VIOLATION,
        "a project that is cancelled cannot be changed",
    )
    assert refused(session, ("update projects set status = 'open' where id = :p", {"p": project})) == (
        CHECK_VIOLATION,
        "a project cannot go from cancelled to open",
    )


@pytest.mark.parametrize(
    "change",
    ["currency = 'EUR'", "title = 'Another job'", "description = 'Also the roof'", "billing_mode = 'completion'"],
)
def test_what_a_project_asks_is_fixed_once_someone_proposed(act_as, app_sessions, world, project, change):
    propose(app_sessions, world.contractor_x_user, world.org_a, project)
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, (f"update projects set {change} where id = :p", {"p": project})) == (
        CHECK_VIOLATION,
        "what a project asks (its title, description, currency and billing mode) is fixed once a contractor has"
        " proposed",
    )
    session = act_as(world.owner.id, world.org_a)  # the deadline and budget still may
    accepted(
        session, ("update projects set deadline = deadline + 7, budget_minor = 900000 where id = :p", {"p": project})
    )


def test_a_project_cannot_be_marked_awarded_without_its_award(act_as, world, two_proposals):
    project, _, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    statement = (AWARD_PROJECT, {"me": world.owner.id, "project": project})
    assert refused(session, statement, commit=True) == (
        CHECK_VIOLATION,
        "a project that is awarded leaves no proposal waiting: accept or decline each",
    )


# --- proposals -----------------------------------------------------------------------------------------------------


def test_a_proposal_written_by_hand_with_milestones_that_share_its_price_is_accepted(act_as, world, project):
    """The control for the proposal refusals below."""
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project)
    accepted(session, (NEW_PROPOSAL, values), milestone(values, 1, 40_000), milestone(values, 2, 60_000))


def test_a_second_proposal_of_the_same_contractor_is_refused(act_as, app_sessions, world, project):
    propose(app_sessions, world.contractor_x_user, world.org_a, project)
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(session, (NEW_PROPOSAL, proposing(world, project))) == (
        UNIQUE_VIOLATION,
        "Your organization has already proposed on this project; edit that proposal instead.",
    )


def test_a_withdrawn_proposal_still_counts_as_the_one_proposal(act_as, app_sessions, world, project):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        proposal_service.withdraw_proposal(session, actor, px)
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(session, (NEW_PROPOSAL, proposing(world, project)))[0] == UNIQUE_VIOLATION


def test_a_proposal_after_the_deadline_is_refused(act_as, admin_engine, world, project):
    with admin_engine.begin() as conn:  # time passes: the deadline was yesterday
        conn.execute(text("update projects set deadline = project_today() - 1 where id = :p"), {"p": project})
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project)
    assert refused(session, (NEW_PROPOSAL, values)) == (
        CHECK_VIOLATION,
        "The deadline for proposals on this project has passed.",
    )


def test_a_proposal_on_the_deadline_day_is_still_taken(act_as, admin_engine, world, project):
    with admin_engine.begin() as conn:
        conn.execute(text("update projects set deadline = project_today() where id = :p"), {"p": project})
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project)
    accepted(session, (NEW_PROPOSAL, values), milestone(values, 1, 100_000))


def test_a_proposal_on_a_cancelled_project_is_refused(act_as, app_sessions, world, project):
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        project_service.cancel_project(session, actor, project, "No longer needed")
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(session, (NEW_PROPOSAL, proposing(world, project))) == (
        CHECK_VIOLATION,
        "This project is no longer open for proposals.",
    )


def test_a_contractor_not_invited_cannot_propose_on_an_invited_only_project(act_as, app_sessions, world):
    project_id = open_project(app_sessions, world, invited=(world.contractor_x,))
    session = act_as(world.contractor_y_user.id, world.org_a)
    # It does not see the project at all, so it is told no more than for a project that does not exist.
    assert refused(session, (NEW_PROPOSAL, proposing(world, project_id, who="y"))) == (
        INSUFFICIENT_PRIVILEGE,
        "there is no project open to your proposals there",
    )


def test_a_contractor_cannot_propose_in_another_contractors_name(act_as, world, project):
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project, who="y") | {"me": world.contractor_x_user.id}
    assert refused(session, (NEW_PROPOSAL, values))[0] in (INSUFFICIENT_PRIVILEGE, CHECK_VIOLATION)
    values = proposing(world, project) | {"me": world.contractor_y_user.id}
    assert refused(session, (NEW_PROPOSAL, values)) == (
        INSUFFICIENT_PRIVILEGE,
        "a proposal is submitted in the name of the user submitting it",
    )


@pytest.mark.parametrize("amounts", [[40_000], [40_000, 70_000], []], ids=["less", "more", "none"])
def test_a_proposal_whose_milestones_do_not_share_its_price_is_refused_at_commit(act_as, world, project, amounts):
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project, price=100_000)
    statements = [(NEW_PROPOSAL, values), *(milestone(values, i, a) for i, a in enumerate(amounts, start=1))]
    assert refused(session, *statements, commit=True) == (
        CHECK_VIOLATION,
        # (revision 0030: a completion project's proposals share the price less the advance; the same words say so)
        "a proposal's milestones add up to its price exactly (less the advance, on a completion project)",
    )


def test_a_proposals_price_changed_without_its_milestones_is_refused_at_commit(act_as, app_sessions, world, project):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    session = act_as(world.contractor_x_user.id, world.org_a)
    statement = ("update proposals set price_minor = price_minor + 1 where id = :p", {"p": px})
    assert refused(session, statement, commit=True) == (
        CHECK_VIOLATION,
        # (revision 0030: a completion project's proposals share the price less the advance; the same words say so)
        "a proposal's milestones add up to its price exactly (less the advance, on a completion project)",
    )


def test_a_contractor_cannot_accept_its_own_proposal(act_as, world, two_proposals):
    _, px, _ = two_proposals
    session = act_as(world.contractor_x_user.id, world.org_a)
    statement = (ACCEPT, {"me": world.contractor_x_user.id, "proposal": px})
    assert refused(session, statement) == (
        INSUFFICIENT_PRIVILEGE,
        "only admin or owner move a proposal from submitted to accepted",
    )


def test_a_contractor_cannot_move_its_proposal_to_another_project_or_contractor(act_as, app_sessions, world):
    category_id = category(app_sessions, world)
    project_id = open_project(app_sessions, world, category_id=category_id)
    other = open_project(app_sessions, world, category_id=category_id, title="Roof")
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project_id)
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(session, ("update proposals set project_id = :o where id = :p", {"o": other, "p": px}))[0] == (
        INSUFFICIENT_PRIVILEGE  # no column grant
    )


def test_an_owner_cannot_edit_a_proposals_price_or_terms(act_as, world, two_proposals):
    _, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    for change in ("price_minor = 1", "note = 'Cheaper please'"):
        assert refused(session, (f"update proposals set {change} where id = :p", {"p": px})) == (
            INSUFFICIENT_PRIVILEGE,
            "a proposal's terms are the contractor's: the project's owner accepts or declines it",
        )


def test_finance_decides_no_proposal(act_as, admin_engine, world, two_proposals):
    _, px, _ = two_proposals
    session = act_as(world.finance.id, world.org_a)
    result = session.execute(text(ACCEPT), {"me": world.finance.id, "proposal": px})
    assert result.rowcount == 0
    session.commit()
    assert proposal_row(admin_engine, px)["status"] == "submitted"


def test_a_declined_proposal_cannot_come_back(act_as, app_sessions, world, two_proposals):
    project, px, py = two_proposals
    award(app_sessions, world.owner, world.org_a, project, px)
    session = act_as(world.owner.id, world.org_a)
    assert refused(
        session, ("update proposals set status = 'submitted', decided_at = null where id = :p", {"p": py})
    ) == (CHECK_VIOLATION, "a proposal cannot go from declined to submitted")
    session = act_as(world.contractor_y_user.id, world.org_a)
    assert refused(session, ("update proposals set note = 'Reconsider?' where id = :p", {"p": py})) == (
        CHECK_VIOLATION,
        "a proposal that is declined cannot be changed",
    )


def test_a_withdrawn_proposal_cannot_come_back_nor_its_milestones_change(act_as, app_sessions, world, project):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        proposal_service.withdraw_proposal(session, actor, px)
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(
        session, ("update proposals set status = 'submitted', withdrawn_at = null where id = :p", {"p": px})
    ) == (CHECK_VIOLATION, "a proposal cannot go from withdrawn to submitted")
    values = proposing(world, project, proposal_id=px)
    assert refused(session, milestone(values, 9, 100)) == (
        CHECK_VIOLATION,
        "a proposal that is withdrawn cannot be changed",
    )
    assert refused(session, ("delete from proposal_milestones where proposal_id = :p", {"p": px})) == (
        CHECK_VIOLATION,
        "a proposal that is withdrawn cannot be changed",
    )
    file = (
        "insert into proposal_files (org_id, proposal_id, contractor_id, position, file_name, content_type,"
        " size_bytes, sha256, data) values (:org, :p, :c, 5, 'late.txt', 'text/plain', 1, repeat('a', 64), 'x')"
    )
    assert refused(session, (file, {"org": world.org_a, "p": px, "c": world.contractor_x})) == (
        CHECK_VIOLATION,
        "a proposal that is withdrawn cannot be changed",
    )


def test_a_contractor_cannot_add_milestones_to_another_contractors_proposal(act_as, world, two_proposals):
    _, px, _ = two_proposals
    session = act_as(world.contractor_y_user.id, world.org_a)
    values = proposing(world, None, who="y", proposal_id=px)  # Y's own contractor id, X's proposal
    assert refused(session, milestone(values, 9, 100)) == (
        INSUFFICIENT_PRIVILEGE,
        "a proposal's milestones and files are its own contractor's to change",
    )


# --- the award -----------------------------------------------------------------------------------------------------


def test_an_award_written_by_hand_in_full_is_accepted(act_as, admin_engine, world, two_proposals):
    """The control: the award in SQL, every step, commits; the refusals below each leave one step out or wrong."""
    project, px, py = two_proposals
    session = act_as(world.owner.id, world.org_a)
    accepted(session, *award_statements(world, project, px))
    assert proposal_row(admin_engine, px)["status"] == "accepted"
    assert proposal_row(admin_engine, py)["status"] == "declined"
    (e,) = owner_query(admin_engine, "select status, proposal_id from engagements where proposal_id = :p", p=px)
    assert e == {"status": "active", "proposal_id": px}


def test_an_engagement_cannot_be_inserted_active_without_an_accepted_proposal(act_as, world, two_proposals):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    statements = award_statements(world, project, px, proposal_ref=None)
    contract = statements[2]
    # with no proposal at all: a new engagement is a draft
    no_proposal = (CONTRACT.replace(":proposal_ref", "null"), contract[1])
    assert refused(session, no_proposal) == (CHECK_VIOLATION, "a new engagement starts as a draft")
    # from a proposal still submitted (not accepted)
    assert refused(session, contract) == (
        CHECK_VIOLATION,
        "an engagement is created from a proposal only by accepting that proposal",
    )


def test_an_engagement_cannot_be_made_from_someone_elses_proposal(act_as, world, two_proposals):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    # X's proposal accepted, the contract made out to Y
    statements = award_statements(world, project, px, contractor=world.contractor_y)
    assert refused(session, *statements[:3]) == (
        CHECK_VIOLATION,
        "an engagement is created from a proposal only by accepting that proposal",
    )


def test_an_engagement_cannot_be_made_again_from_a_proposal_accepted_earlier(
    act_as, app_sessions, world, two_proposals
):
    project, px, _ = two_proposals
    award(app_sessions, world.owner, world.org_a, project, px)
    session = act_as(world.owner.id, world.org_a)
    contract = award_statements(world, project, px)[2]
    assert refused(session, contract) == (
        CHECK_VIOLATION,
        "an engagement is created from a proposal only by accepting that proposal",
    )


def test_an_engagement_stays_linked_to_its_proposal(act_as, admin_engine, app_sessions, world, two_proposals):
    project, px, py = two_proposals
    engagement = award(app_sessions, world.owner, world.org_a, project, px)
    session = act_as(world.owner.id, world.org_a)
    # the web role may not write the column at all
    for value in (None, py):
        statement = ("update engagements set proposal_id = :v where id = :e", {"v": value, "e": engagement})
        assert refused(session, statement)[0] == INSUFFICIENT_PRIVILEGE
    # and the owner role, which may, meets the guard
    with (
        pytest.raises(DBAPIError, match="stays linked to the proposal it was awarded from"),
        admin_engine.begin() as conn,
    ):
        conn.execute(text("update engagements set proposal_id = null where id = :e"), {"e": engagement})


def test_an_award_that_leaves_a_proposal_waiting_is_refused_at_commit(act_as, world, two_proposals):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, *award_statements(world, project, px, decline=False), commit=True) == (
        CHECK_VIOLATION,
        "a project that is awarded leaves no proposal waiting: accept or decline each",
    )


def test_an_accepted_proposal_that_leaves_its_project_open_is_refused_at_commit(act_as, world, two_proposals):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, *award_statements(world, project, px, award=False), commit=True) == (
        CHECK_VIOLATION,
        "a proposal is accepted only by awarding its project",
    )


def test_an_accepted_proposal_without_its_engagement_is_refused_at_commit(act_as, world, two_proposals):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    statements = award_statements(world, project, px)
    without_contract = [s for s in statements if s[0] not in (CONTRACT, CONTRACT_MILESTONES)]
    assert refused(session, *without_contract, commit=True)[0] == CHECK_VIOLATION


def test_an_engagement_with_fewer_milestones_than_its_proposal_is_refused_at_commit(act_as, world, two_proposals):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    statements = award_statements(world, project, px)
    short = [(sql + " and m.seq = 1" if sql == CONTRACT_MILESTONES else sql, p) for sql, p in statements]
    assert refused(session, *short, commit=True) == (
        CHECK_VIOLATION,
        "an accepted proposal becomes one engagement with exactly the milestones it offered",
    )


@pytest.mark.parametrize(
    "change",
    [
        "m.amount_minor + case m.seq when 1 then 100 else -100 end",  # the same total, split otherwise
        "m.amount_minor, m.due_date + 30",  # the same amounts, later
    ],
)
def test_an_engagement_whose_milestones_differ_from_the_offer_is_refused_at_commit(
    act_as, world, two_proposals, change
):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    values_sql = "m.org_id, m.contractor_id, :engagement, m.seq, m.title, m.deliverable, " + (
        change if "due_date" in change else change + ", m.due_date"
    )
    altered = [
        (
            sql.replace(
                "m.org_id, m.contractor_id, :engagement, m.seq, m.title, m.deliverable, m.amount_minor, m.due_date",
                values_sql,
            )
            if sql == CONTRACT_MILESTONES
            else sql,
            p,
        )
        for sql, p in award_statements(world, project, px)
    ]
    assert refused(session, *altered, commit=True) == (
        CHECK_VIOLATION,
        "an accepted proposal becomes one engagement with exactly the milestones it offered",
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("currency", "'JPY'"),
        ("retainage_bps", "5000"),
        ("payment_terms_days", "90"),
        ("service_fee_bps", "500"),
        ("title", "'Something else'"),
    ],
)
def test_an_awarded_engagement_takes_the_projects_and_the_organizations_terms(
    act_as, world, two_proposals, column, value
):
    project, px, _ = two_proposals
    session = act_as(world.owner.id, world.org_a)
    statements = award_statements(world, project, px)
    replacements = {
        "currency": ("p.currency, o.default", f"{value}, o.default"),
        "retainage_bps": ("o.default_retainage_bps,", f"{value},"),
        "payment_terms_days": (" o.payment_terms_days, 0,", f" {value}, 0,"),
        "service_fee_bps": ("0, p.billing_mode", f"{value}, p.billing_mode"),
        "title": ("p.title, p.currency", f"{value}, p.currency"),
    }
    old, new = replacements[column]
    changed = [(sql.replace(old, new) if sql == CONTRACT else sql, p) for sql, p in statements]
    assert changed != statements
    assert refused(session, *changed) == (
        CHECK_VIOLATION,
        "an awarded engagement takes its project's currency, billing mode, owner and title and the organization's"
        " terms",
    )


def test_two_proposals_of_one_project_cannot_both_be_accepted(act_as, world, two_proposals):
    _, px, py = two_proposals
    session = act_as(world.owner.id, world.org_a)
    values = {"me": world.owner.id}
    assert refused(session, (ACCEPT, values | {"proposal": px}), (ACCEPT, values | {"proposal": py}))[0] == (
        UNIQUE_VIOLATION
    )


def test_a_proposal_declined_by_the_award_cannot_be_accepted_after_it(act_as, app_sessions, world, two_proposals):
    project, px, py = two_proposals
    award(app_sessions, world.owner, world.org_a, project, px)
    session = act_as(world.owner.id, world.org_a)
    assert refused(session, (ACCEPT, {"me": world.owner.id, "proposal": py})) == (
        CHECK_VIOLATION,
        "a proposal cannot go from declined to accepted",
    )


def test_an_invitation_of_a_contractor_that_proposed_cannot_be_taken_back(act_as, app_sessions, world, project):
    propose(app_sessions, world.contractor_x_user, world.org_a, project)
    session = act_as(world.owner.id, world.org_a)
    statement = (
        "delete from project_invitations where project_id = :p and contractor_id = :c",
        {"p": project, "c": world.contractor_x},
    )
    assert refused(session, statement) == (CHECK_VIOLATION, "a contractor that has proposed stays invited")


def test_after_the_deadline_a_proposal_is_withdrawn_but_not_repriced_and_a_withdrawal_changes_nothing_else(
    act_as, admin_engine, app_sessions, world, project
):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    with admin_engine.begin() as conn:
        conn.execute(text("update projects set deadline = project_today() - 1 where id = :p"), {"p": project})
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(session, ("update proposals set price_minor = 400000 where id = :p", {"p": px})) == (
        CHECK_VIOLATION,
        "The deadline for proposals on this project has passed.",
    )
    session = act_as(world.contractor_x_user.id, world.org_a)
    assert refused(
        session,
        ("update proposals set status = 'withdrawn', withdrawn_at = now(), note = 'late' where id = :p", {"p": px}),
    ) == (INSUFFICIENT_PRIVILEGE, "a withdrawal changes nothing else of the proposal")
    session = act_as(world.contractor_x_user.id, world.org_a)
    accepted(session, ("update proposals set status = 'withdrawn', withdrawn_at = now() where id = :p", {"p": px}))
    assert proposal_row(admin_engine, px)["status"] == "withdrawn"


def test_a_proposal_is_priced_in_its_projects_currency(act_as, world, project):
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project)
    foreign = NEW_PROPOSAL.replace("submitted_by)", "submitted_by, currency)").replace(":me)", ":me, 'EUR')")
    assert refused(session, (foreign, values)) == (CHECK_VIOLATION, "a proposal is priced in its project's currency")


def test_a_proposal_written_while_the_projects_currency_changed_fails_when_it_commits(
    act_as, admin_engine, world, project
):
    session = act_as(world.contractor_x_user.id, world.org_a)
    values = proposing(world, project)
    session.execute(text(NEW_PROPOSAL), values)
    sql, params = milestone(values, 1, 100_000)
    session.execute(text(sql), params)
    # Meanwhile the owner's edit of the currency commits (no proposal is visible to it yet): the amounts typed in
    # dollars must not become yen.
    with admin_engine.begin() as conn:
        conn.execute(text("update projects set currency = 'JPY' where id = :p"), {"p": project})
    assert refused(session, commit=True) == (
        CHECK_VIOLATION,
        "the project's currency changed while this proposal was written; write it again in the new one",
    )
