"""The award under concurrency (issue 19, item 5), through the real services on their own connections as the web
role: two awards of one project, an award and a withdrawal of one proposal, a proposal (or an invitation taken back)
while the project is being awarded (or edited).

The first two are released at once (kit.engagements.race) and repeated, so either order may win; the outcome must be
one of the allowed ones whichever did. The others force each order deterministically: one transaction is paused
inside its service (after it took its locks, or after it wrote), and the other is let go only once the database shows
it waiting for a lock (pg_stat_activity), so the interleaving tested is the one named.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from kit.engagements import acting, owner_query, race
from kit.projects import category, offer, open_project, propose

from backoffice.errors import Conflict, InvalidTransition
from backoffice.models import Engagement
from backoffice.services import awards, projects, proposals
from backoffice.services.projects import ProjectInput

ROUNDS = 4


def proposals_of(admin_engine, project_id) -> dict:
    rows = owner_query(admin_engine, "select id, status from proposals where project_id = :p", p=project_id)
    return {r["id"]: r["status"] for r in rows}


def engagements_from(admin_engine, proposal_ids) -> list:
    return owner_query(
        admin_engine, "select id, proposal_id from engagements where proposal_id = any(:p)", p=list(proposal_ids)
    )


def project_status(admin_engine, project_id) -> str:
    (row,) = owner_query(admin_engine, "select status from projects where id = :p", p=project_id)
    return row["status"]


# --- released at once ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_owners_awarding_two_proposals_at_once_make_exactly_one_award(app_sessions, admin_engine, world, round_):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project)
    chosen = [px, py]

    outcomes = race(
        app_sessions,
        world.org_a,
        [world.owner, world.admin],
        lambda session, actor, i: awards.award(session, actor, project, chosen[i]).id,
    )

    won = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict), lost[0]
    # the loser is told who won, in words (services/awards._closed_words)
    assert "awarded this project to" in str(lost[0]) and "already" in str(lost[0]), str(lost[0])
    winner = chosen[won[0]]
    assert proposals_of(admin_engine, project) == {winner: "accepted", chosen[1 - won[0]]: "declined"}
    (engagement,) = engagements_from(admin_engine, chosen)
    assert engagement == {"id": outcomes[won[0]], "proposal_id": winner}
    assert project_status(admin_engine, project) == "awarded"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_withdrawal_racing_the_acceptance_of_the_same_proposal_is_one_or_the_other(
    app_sessions, admin_engine, world, round_
):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    py = propose(app_sessions, world.contractor_y_user, world.org_a, project)

    def call(session, actor, i):
        if i == 0:
            return awards.award(session, actor, project, px)
        return proposals.withdraw_proposal(session, actor, px)

    outcomes = race(app_sessions, world.org_a, [world.owner, world.contractor_x_user], call)

    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failed) == 1, outcomes  # exactly one of the two happened
    statuses = proposals_of(admin_engine, project)
    made = engagements_from(admin_engine, [px, py])
    if isinstance(outcomes[0], Engagement):  # accepted; the withdrawal was told it was too late
        assert isinstance(outcomes[1], InvalidTransition) and "accepted" in str(outcomes[1]), outcomes[1]
        assert statuses == {px: "accepted", py: "declined"}
        assert [m["proposal_id"] for m in made] == [px]
        assert project_status(admin_engine, project) == "awarded"
    else:  # withdrawn; the award was told the proposal was withdrawn meanwhile
        assert isinstance(outcomes[0], Conflict) and "withdrawn meanwhile" in str(outcomes[0]), outcomes[0]
        assert statuses == {px: "withdrawn", py: "submitted"}
        assert made == []
        assert project_status(admin_engine, project) == "open"


# --- one order forced at a time ------------------------------------------------------------------------------------


class Pause:
    """Wraps a function of a service module: the call does its work (``after``) or not yet (before), then signals
    ``reached`` and waits for ``go``."""

    def __init__(self, original, *, after: bool):
        self.original, self.after = original, after
        self.reached, self.go = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        result = self.original(*args, **kwargs) if self.after else None
        self.reached.set()
        assert self.go.wait(timeout=60), "never released"
        return result if self.after else self.original(*args, **kwargs)


@contextmanager
def in_thread(fn):
    """Run ``fn`` in a thread; yields a dict that holds its "result" or "error" once joined."""
    out: dict = {}

    def run():
        try:
            out["result"] = fn()
        except Exception as exc:  # the outcome under test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield out
    finally:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a transaction never finished (deadlock?)"


def wait_for_lock(admin_engine) -> None:
    """Until a transaction waits for a lock (pg_locks, which every role reads: pg_stat_activity hides other roles'
    statements from the owner role). Nothing else runs on this test process's server meanwhile."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if owner_query(admin_engine, "select count(*) as n from pg_locks where not granted")[0]["n"]:
            return
        time.sleep(0.02)
    raise AssertionError("nobody waited for a lock")


def submit_as_y(app_sessions, world, project):
    def submit():
        with acting(app_sessions, world.contractor_y_user, world.org_a) as (session, actor):
            return proposals.submit_proposal(session, actor, project, offer()).id

    return submit


def award_to_x(app_sessions, world, project, px):
    def do_award():
        with acting(app_sessions, world.owner, world.org_a) as (session, actor):
            return awards.award(session, actor, project, px).id

    return do_award


def test_a_proposal_submitted_while_the_award_holds_the_project_is_refused(
    app_sessions, admin_engine, world, monkeypatch
):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    pause = Pause(awards.decline_waiting, after=False)  # the award holds the project's and the proposal's locks
    monkeypatch.setattr(awards, "decline_waiting", pause)

    with in_thread(award_to_x(app_sessions, world, project, px)) as awarded:
        assert pause.reached.wait(timeout=30)
        with in_thread(submit_as_y(app_sessions, world, project)) as submitted:
            wait_for_lock(admin_engine)  # its foreign key waits for the project
            pause.go.set()

    assert "error" not in awarded, awarded
    assert isinstance(submitted.get("error"), InvalidTransition), submitted
    assert str(submitted["error"]) == "This project is no longer open for proposals."
    assert proposals_of(admin_engine, project) == {px: "accepted"}
    assert project_status(admin_engine, project) == "awarded"


def test_a_proposal_written_before_the_award_took_the_project_is_declined_by_it(
    app_sessions, admin_engine, world, monkeypatch
):
    project = open_project(app_sessions, world)
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    pause = Pause(proposals._write_parts, after=True)  # Y's proposal and its milestones written, not committed
    monkeypatch.setattr(proposals, "_write_parts", pause)

    with in_thread(submit_as_y(app_sessions, world, project)) as submitted:
        assert pause.reached.wait(timeout=30)
        with in_thread(award_to_x(app_sessions, world, project, px)) as awarded:
            wait_for_lock(admin_engine)  # the award waits for the project, which Y's proposal holds
            pause.go.set()

    assert "error" not in submitted and "error" not in awarded, (submitted, awarded)
    assert proposals_of(admin_engine, project) == {px: "accepted", submitted["result"]: "declined"}
    assert project_status(admin_engine, project) == "awarded"


def test_a_proposal_whose_invitation_is_taken_back_meanwhile_is_refused(app_sessions, admin_engine, world, monkeypatch):
    """Y's proposal was checked against its invitation before the owner's edit took the invitation back and
    committed; its check at commit reads the invitation again (sql/project_guards.sql, proposals_checked)."""
    cat = category(app_sessions, world)
    project = open_project(app_sessions, world, category_id=cat)
    pause = Pause(projects._invite, after=False)  # the edit has taken Y's invitation back, under the project's lock
    monkeypatch.setattr(projects, "_invite", pause)
    row = owner_query(admin_engine, "select deadline from projects where id = :p", p=project)[0]
    edit = ProjectInput(
        title="Office refit",
        category_id=str(cat),
        deadline=row["deadline"].isoformat(),
        description="Refit the third floor.",
        invited=(str(world.contractor_x),),
    )

    def take_back():
        with acting(app_sessions, world.owner, world.org_a) as (session, actor):
            return projects.update_project(session, actor, project, edit).id

    with in_thread(take_back) as edited:
        assert pause.reached.wait(timeout=30)
        with in_thread(submit_as_y(app_sessions, world, project)) as submitted:
            wait_for_lock(admin_engine)
            pause.go.set()

    assert "error" not in edited, edited
    assert isinstance(submitted.get("error"), InvalidTransition), submitted
    assert str(submitted["error"]) == "This project takes proposals from invited contractors only."
    assert proposals_of(admin_engine, project) == {}
