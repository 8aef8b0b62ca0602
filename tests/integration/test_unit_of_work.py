"""The unit of work (backoffice/db.py): it commits a block that ends normally, rolls back one that raises,
joins an enclosing unit of work instead of committing it, and a failing service leaves nothing behind.

Rows are read back through a separate owner-role connection, so "committed" means another session sees it.
"""

from __future__ import annotations

import secrets

import pytest
from kit.engagements import owner_query, sign_in
from sqlalchemy import text

from backoffice.db import end_read, make_session_factory, unit_of_work
from backoffice.errors import ValidationError
from backoffice.services import bootstrap, engagements, schedule
from backoffice.services.engagements import EngagementInput
from backoffice.services.evidence import UploadedFile
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work


class Boom(Exception):
    pass


def org_named(admin_engine, name: str) -> list[dict]:
    return owner_query(admin_engine, "select id from organizations where name = :n", n=name)


@pytest.fixture
def owner_session(admin_engine):
    with make_session_factory(admin_engine)() as session:
        yield session


def test_a_block_that_ends_normally_is_committed(admin_engine, owner_session):
    name = f"Committed {secrets.token_hex(4)}"
    with unit_of_work(owner_session):
        bootstrap.create_org(owner_session, name)
    assert not owner_session.in_transaction()
    assert len(org_named(admin_engine, name)) == 1


def test_a_return_from_inside_the_block_commits_too(admin_engine, owner_session):
    name = f"Returned {secrets.token_hex(4)}"

    def service():
        with unit_of_work(owner_session):
            return bootstrap.create_org(owner_session, name)

    assert service().name == name
    assert len(org_named(admin_engine, name)) == 1


def test_a_block_that_raises_is_rolled_back_and_the_exception_goes_on(admin_engine, owner_session):
    name = f"Rolled back {secrets.token_hex(4)}"
    with pytest.raises(Boom), unit_of_work(owner_session):
        bootstrap.create_org(owner_session, name)
        raise Boom()
    assert not owner_session.in_transaction()
    assert org_named(admin_engine, name) == []
    with unit_of_work(owner_session):  # the session is usable afterwards
        bootstrap.create_org(owner_session, name)
    assert len(org_named(admin_engine, name)) == 1


def test_an_inner_unit_of_work_joins_the_outer_one_and_only_the_outer_commits(admin_engine, owner_session):
    inner, outer = f"Inner {secrets.token_hex(4)}", f"Outer {secrets.token_hex(4)}"
    with unit_of_work(owner_session):
        with unit_of_work(owner_session):
            bootstrap.create_org(owner_session, inner)
        assert owner_session.in_transaction()
        assert org_named(admin_engine, inner) == []  # not committed by the inner block
        end_read(owner_session)  # a read's reset inside a unit of work leaves the work alone
        bootstrap.create_org(owner_session, outer)
    assert len(org_named(admin_engine, inner)) == 1
    assert len(org_named(admin_engine, outer)) == 1


def test_an_exception_leaving_an_inner_unit_of_work_undoes_the_outer_ones_work_too(admin_engine, owner_session):
    inner, outer = f"Inner {secrets.token_hex(4)}", f"Outer {secrets.token_hex(4)}"
    with pytest.raises(Boom), unit_of_work(owner_session):
        bootstrap.create_org(owner_session, outer)
        with unit_of_work(owner_session):
            bootstrap.create_org(owner_session, inner)
            raise Boom()
    assert org_named(admin_engine, inner) == []
    assert org_named(admin_engine, outer) == []


def test_end_read_outside_a_unit_of_work_ends_the_transaction(owner_session):
    owner_session.execute(text("select 1"))
    assert owner_session.in_transaction()
    end_read(owner_session)
    assert not owner_session.in_transaction()


# --- services -------------------------------------------------------------------------------------------


def submitted_milestone(act_as, admin_engine, world) -> tuple[str, str]:
    """A milestone of an accepted engagement owned by world.owner, with work submitted by contractor X:
    (milestone id, submission id)."""
    session, actor = sign_in(act_as, world.owner, world.org_a)
    e = engagements.create_engagement(
        session, actor, EngagementInput(contractor_id=str(world.contractor_x), title="Roof")
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(rows=[RowInput(title="Strip tiles", amount="1,000.00", due_date="2030-01-15")]),
    )
    engagements.perform(session, actor, e.id, "send")
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    engagements.perform(session, actor, e.id, "accept")
    milestone_id = owner_query(admin_engine, "select id from milestones where engagement_id = :e", e=e.id)[0]["id"]
    submission = submit_work(
        session,
        actor,
        milestone_id,
        SubmissionInput(note="Tiles stripped.", files=[UploadedFile.from_bytes("notes.txt", b"Stripped.\n")]),
    )
    return milestone_id, submission.id


def decision_rows(admin_engine, milestone_id) -> dict:
    def q(sql):
        return owner_query(admin_engine, sql, m=milestone_id)

    return {
        "milestone": q("select status, updated_at from milestones where id = :m"),
        "reviews": q("select id from reviews where milestone_id = :m"),
        "invoices": q("select id from invoices where milestone_id = :m"),
        "events": q("select seq from audit_events where entity_id = cast(:m as text) and action like 'milestone.%'"),
    }


def test_a_decision_that_fails_validation_leaves_no_review_and_the_session_usable(act_as, admin_engine, world):
    milestone_id, submission_id = submitted_milestone(act_as, admin_engine, world)
    before = decision_rows(admin_engine, milestone_id)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(ValidationError):
        decide(session, actor, milestone_id, DecisionInput(submission_id=str(submission_id), decision="dispute"))
    assert not session.in_transaction()
    assert decision_rows(admin_engine, milestone_id) == before
    review = decide(session, actor, milestone_id, DecisionInput(submission_id=str(submission_id), decision="approve"))
    assert [r["id"] for r in decision_rows(admin_engine, milestone_id)["reviews"]] == [review.id]


def test_a_service_called_inside_a_unit_of_work_commits_nothing_of_its_own(act_as, admin_engine, world):
    """decide writes the review, the milestone's move, the invoice, its ledger lines and the audit event;
    when the enclosing unit of work fails afterwards, none of it is kept."""
    milestone_id, submission_id = submitted_milestone(act_as, admin_engine, world)
    before = decision_rows(admin_engine, milestone_id)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(Boom), unit_of_work(session):
        decide(session, actor, milestone_id, DecisionInput(submission_id=str(submission_id), decision="approve"))
        assert decision_rows(admin_engine, milestone_id) == before  # not committed by decide
        raise Boom()
    assert decision_rows(admin_engine, milestone_id) == before
