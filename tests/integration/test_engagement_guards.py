"""The engagement and milestone state machines as the database enforces them (DESIGN.md section 3):
the engagements_guard and milestones_guard triggers of sql/engagements.sql.

The triggers refuse an illegal move whoever writes it, the owner role included (``admin_engine``, which
bypasses RLS but not triggers), and on top of that tell the contractor's answer to a work request apart
from staff's edits. Rows are built the legal way (engagements by the owner role, work and decisions through
the services); the statements judged are raw SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from kit.milestones import authorize_payment, move_milestone
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.domain import engagements as rules

CHECK_VIOLATION = "23514"
INSUFFICIENT_PRIVILEGE = "42501"
UNIQUE_VIOLATION = "23505"


# --- building rows (owner role) -------------------------------------------------------------------------

# How to reach each engagement status from a draft, one legal move at a time.
MOVES = {
    "send": "status = 'awaiting_acceptance', sent_at = now(), sent_by = :staff",
    "accept": "status = 'active', responded_at = now(), responded_by = :contractor_user",
    "decline": (
        "status = 'declined', responded_at = now(), responded_by = :contractor_user, decline_reason = 'No thanks'"
    ),
    "pause": "status = 'paused'",
    "complete": "status = 'completed', completed_at = now()",
    "cancel": "status = 'cancelled', cancelled_at = now(), cancel_reason = 'Not needed'",
}
PATHS = {
    "draft": [],
    "awaiting_acceptance": ["send"],
    "active": ["send", "accept"],
    "paused": ["send", "accept", "pause"],
    "completed": ["send", "accept", "complete"],
    "declined": ["send", "decline"],
    "cancelled": ["cancel"],
}
# Milestone statuses reached from planned, set while the engagement is active (before any later move).
MILESTONE_PATHS = {
    "planned": [],
    "submitted": ["submitted"],
    "approved": ["submitted", "approved"],
    "cancelled": ["cancelled"],
}


@dataclass(frozen=True)
class Built:
    engagement: uuid.UUID
    milestones: list[uuid.UUID]


def build(
    admin_engine,
    world,
    status: str = "draft",
    milestones: tuple[str, ...] = ("planned", "planned"),
    contractor: str = "x",
    act_as=None,
) -> Built:
    """An engagement of org A in ``status`` with milestones (seq 1, 2, ...) in the given statuses, built by
    the owner role through legal moves only, its milestones moved through the services (with ``act_as``).
    Non-planned milestones need an engagement that was active."""
    contractor_id = getattr(world, f"contractor_{contractor}")
    contractor_user = getattr(world, f"contractor_{contractor}_user")
    params = {"staff": world.admin.id, "contractor_user": contractor_user.id}
    path = PATHS[status]
    moved = any(m != "planned" for m in milestones)
    if moved:
        assert path[:2] == ["send", "accept"], "milestones move only in an active engagement here"
        assert act_as is not None, "milestones move through the services: pass act_as"
    with admin_engine.begin() as conn:
        e = conn.execute(
            text(
                "insert into engagements (org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
                " payment_terms_days, created_by) values (:org, :c, :owner, 'Website rebuild', 'USD', 1000, 30, :staff)"
                " returning id"
            ),
            {"org": world.org_a, "c": contractor_id, "owner": world.owner.id, "staff": world.admin.id},
        ).scalar_one()
        ids = [
            conn.execute(
                text(
                    "insert into milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date)"
                    " values (:org, :c, :e, :seq, :title, 50000, date '2030-01-01') returning id"
                ),
                {"org": world.org_a, "c": contractor_id, "e": e, "seq": seq, "title": f"Milestone {seq}"},
            ).scalar_one()
            for seq in range(1, len(milestones) + 1)
        ]
        for move in path[:2] if moved else path:
            conn.execute(text(f"update engagements set {MOVES[move]} where id = :e"), params | {"e": e})
    if moved:
        # Work moves through the services (the contractor submits, the owner decides) while the engagement
        # is active; the engagement's later moves follow.
        for m, target in zip(ids, milestones, strict=True):
            move_milestone(act_as, admin_engine, m, *MILESTONE_PATHS[target])
        with admin_engine.begin() as conn:
            for move in path[2:]:
                conn.execute(text(f"update engagements set {MOVES[move]} where id = :e"), params | {"e": e})
    return Built(e, ids)


def engagement(admin_engine, e) -> dict:
    with admin_engine.connect() as conn:
        return dict(conn.execute(text("select * from engagements where id = :e"), {"e": e}).mappings().one())


def milestone_rows(admin_engine, e) -> list[dict]:
    with admin_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text("select * from milestones where engagement_id = :e order by id"), {"e": e}
            ).mappings()
        ]


def owner_role_refused(admin_engine, sql: str, params: dict, sqlstate: str, reason: str) -> str:
    with admin_engine.connect() as conn:
        with pytest.raises(DBAPIError) as exc:
            conn.execute(text(sql), params)
        conn.rollback()
    message = str(exc.value.orig)
    assert exc.value.orig.sqlstate == sqlstate, message
    assert reason in message, message
    return message


def app_refused(session, sql: str, params: dict, sqlstate: str, reason: str) -> str:
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
    session.rollback()
    message = str(exc.value.orig)
    assert exc.value.orig.sqlstate == sqlstate, message
    assert reason in message, message
    return message


def must_refuse(session, sql: str, params: dict) -> None:
    """For the statements below the guards do not refuse yet: fail with what the statement did instead."""
    try:
        result = session.execute(text(sql), params)
    except DBAPIError:
        session.rollback()
        return
    rowcount = result.rowcount
    session.rollback()
    pytest.fail(f"accepted, {rowcount} row(s) written: {sql}")


# Every column the CHECK constraints could ask for is filled in, so only the guard can refuse the move.
def jump_sql(to: str) -> str:
    return (
        "update engagements set status = :to, sent_at = coalesce(sent_at, now()),"
        " responded_at = coalesce(responded_at, now()),"
        " completed_at = coalesce(completed_at, now()), cancelled_at = coalesce(cancelled_at, now()) where id = :e"
    )


# The moves the database must allow are the domain's (its own unit tests write the table out); every
# other pair must be refused. Both sides of the guard come from one source.
LEGAL_MOVES = {(a, b) for a in PATHS for b in PATHS if rules.engagement_move_roles(a, b)}
STATUSES = list(PATHS)
ILLEGAL_MOVES = [(a, b) for a in STATUSES for b in STATUSES if a != b and (a, b) not in LEGAL_MOVES]


# --- engagement status moves ----------------------------------------------------------------------------


def test_the_illegal_moves_include_the_ones_that_matter():
    for move in [
        ("draft", "active"),
        ("completed", "active"),
        ("declined", "active"),
        ("cancelled", "draft"),
        ("draft", "completed"),
        ("awaiting_acceptance", "completed"),
        ("completed", "cancelled"),
    ]:
        assert move in ILLEGAL_MOVES


@pytest.mark.parametrize(("old", "new"), ILLEGAL_MOVES, ids=[f"{a}-to-{b}" for a, b in ILLEGAL_MOVES])
def test_an_illegal_engagement_move_is_refused_even_to_the_owner_role(world, admin_engine, old, new):
    built = build(admin_engine, world, old)
    owner_role_refused(
        admin_engine,
        jump_sql(new),
        {"to": new, "e": built.engagement},
        CHECK_VIOLATION,
        f"an engagement cannot go from {old} to {new}",
    )
    assert engagement(admin_engine, built.engagement)["status"] == old


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("draft", "active"),
        ("completed", "active"),
        ("declined", "active"),
        ("cancelled", "draft"),
        ("cancelled", "active"),
        ("paused", "completed"),
    ],
)
def test_an_illegal_engagement_move_is_refused_to_an_admin(world, admin_engine, act_as, old, new):
    built = build(admin_engine, world, old)
    s = act_as(world.admin.id, world.org_a)
    app_refused(
        s,
        jump_sql(new),
        {"to": new, "e": built.engagement},
        CHECK_VIOLATION,
        f"an engagement cannot go from {old} to {new}",
    )
    assert engagement(admin_engine, built.engagement)["status"] == old


@pytest.mark.parametrize(("old", "new"), sorted(LEGAL_MOVES), ids=[f"{a}-to-{b}" for a, b in sorted(LEGAL_MOVES)])
def test_every_legal_engagement_move_is_allowed_to_the_owner_role(world, admin_engine, old, new):
    """The control for the refusals above."""
    built = build(admin_engine, world, old)
    with admin_engine.begin() as conn:
        assert conn.execute(text(jump_sql(new)), {"to": new, "e": built.engagement}).rowcount == 1
    assert engagement(admin_engine, built.engagement)["status"] == new


@pytest.mark.parametrize(
    ("old", "move"),
    [
        ("draft", "send"),
        ("active", "pause"),
        ("paused", "resume"),
        ("active", "complete"),
        ("draft", "cancel"),
        ("awaiting_acceptance", "cancel"),
        ("active", "cancel"),
        ("paused", "cancel"),
    ],
)
@pytest.mark.parametrize("who", ["admin", "owner"])
def test_staff_make_the_moves_that_are_theirs(world, admin_engine, act_as, who, old, move):
    built = build(admin_engine, world, old)
    s = act_as(getattr(world, who).id, world.org_a)
    sql = "status = 'active'" if move == "resume" else MOVES[move]
    result = s.execute(
        text(f"update engagements set {sql} where id = :e"), {"e": built.engagement, "staff": getattr(world, who).id}
    )
    assert result.rowcount == 1
    s.commit()
    assert engagement(admin_engine, built.engagement)["status"] != old


ENGAGEMENT_SETS = {
    "send": "status = 'awaiting_acceptance', sent_at = now(), sent_by = :me",
    "accept": "status = 'active', responded_at = now(), responded_by = :me",
    "decline": "status = 'declined', responded_at = now(), responded_by = :me, decline_reason = 'No thanks'",
    "complete": "status = 'completed', completed_at = now()",
    "cancel": "status = 'cancelled', cancelled_at = now(), cancel_reason = 'Not needed'",
}


def _set_clause(source: str, target: str) -> str:
    """What the app writes for a move to ``target`` (an action's columns where one leads there)."""
    for action in rules.ACTIONS.values():
        if action.target == target and (source in action.sources or not rules.engagement_move_roles(source, target)):
            return ENGAGEMENT_SETS.get(action.name, f"status = '{target}'")
    return f"status = '{target}'"


@pytest.mark.parametrize("source", list(PATHS))
def test_the_guard_allows_exactly_the_domains_engagement_moves_for_each_role(world, admin_engine, act_as, source):
    """Every target from ``source``, made as admin, the engagement's owner, another owner's role (finance)
    and the contractor's user, raw SQL as the app role: it succeeds exactly when the domain's
    engagement_move_roles says the role makes that move, and a refusal is a refusal of the move (the
    guard's words, or nothing to update under RLS), never some other error."""
    built = build(admin_engine, world, source)
    people = {
        "admin": world.admin.id,
        "owner": world.owner.id,
        "finance": world.finance.id,
        "contractor": world.contractor_x_user.id,
    }
    for target in PATHS:
        if target == source:
            continue
        for role, me in people.items():
            allowed = role in rules.engagement_move_roles(source, target)
            s = act_as(me, world.org_a)
            sql = f"update engagements set {_set_clause(source, target)} where id = :e"
            try:
                updated = s.execute(text(sql), {"e": built.engagement, "me": me}).rowcount
                error = None
            except DBAPIError as exc:
                updated, error = 0, exc.orig
            s.rollback()
            assert (updated == 1) == allowed, (source, target, role, str(error))
            if error is not None:
                assert error.sqlstate in (CHECK_VIOLATION, INSUFFICIENT_PRIVILEGE), (source, target, role, str(error))
                assert "engagement" in str(error) or "work request" in str(error), str(error)
    assert engagement(admin_engine, built.engagement)["status"] == source


# --- the contractor's answer ----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_the_contractor_accepts_or_declines_its_own_work_request(world, admin_engine, act_as, answer):
    built = build(admin_engine, world, "awaiting_acceptance")
    me = world.contractor_x_user.id
    s = act_as(me, world.org_a)
    assert (
        s.execute(
            text(f"update engagements set {MOVES[answer]} where id = :e"),
            {"e": built.engagement, "contractor_user": me},
        ).rowcount
        == 1
    )
    s.commit()
    row = engagement(admin_engine, built.engagement)
    assert row["status"] == {"accept": "active", "decline": "declined"}[answer]
    assert row["responded_by"] == me and row["responded_at"] is not None


@pytest.mark.parametrize(
    ("old", "sql"),
    [
        ("draft", MOVES["send"]),
        ("draft", MOVES["cancel"]),
        ("draft", "title = 'Renamed'"),
        ("awaiting_acceptance", MOVES["cancel"]),
        ("awaiting_acceptance", "title = 'Renamed'"),
        ("awaiting_acceptance", "decline_reason = 'Changed my mind'"),  # a response column, but no answer
        ("active", MOVES["pause"]),
        ("active", MOVES["complete"]),
        ("active", MOVES["cancel"]),
        ("active", "title = 'Renamed'"),
        ("active", "responded_at = now() - interval '1 year'"),
        ("paused", "status = 'active'"),
    ],
)
def test_the_contractor_can_do_nothing_else_to_its_engagement(world, admin_engine, act_as, old, sql):
    built = build(admin_engine, world, old)
    before = engagement(admin_engine, built.engagement)
    s = act_as(world.contractor_x_user.id, world.org_a)
    params = {"e": built.engagement, "staff": world.contractor_x_user.id}
    if old == "draft":
        # An unsent draft is invisible to its contractor (RLS), so there is nothing to update.
        assert s.execute(text(f"update engagements set {sql} where id = :e"), params).rowcount == 0
        s.rollback()
    else:
        app_refused(
            s,
            f"update engagements set {sql} where id = :e",
            params,
            INSUFFICIENT_PRIVILEGE,
            "a contractor can only accept or decline a work request",
        )
    assert engagement(admin_engine, built.engagement) == before


@pytest.mark.parametrize("answer", ["accept", "decline"])
@pytest.mark.parametrize(
    "change",
    [
        "title = 'Much bigger scope'",
        "currency = 'EUR'",
        "retainage_bps = 0",
        "payment_terms_days = 0",
        "service_fee_bps = 250",
        "billing_mode = 'completion'",  # a draft's term since revision 0030 (the terms page), and fixed once sent
        "owner_user_id = :me",
        "sow_reference = 'SOW-FORGED'",
    ],
)
def test_the_contractor_cannot_change_the_engagement_while_answering(world, admin_engine, act_as, answer, change):
    built = build(admin_engine, world, "awaiting_acceptance")
    before = engagement(admin_engine, built.engagement)
    me = world.contractor_x_user.id
    s = act_as(me, world.org_a)
    app_refused(
        s,
        f"update engagements set {MOVES[answer]}, {change} where id = :e",
        {"e": built.engagement, "contractor_user": me, "me": me},
        INSUFFICIENT_PRIVILEGE,
        "a contractor can only accept or decline a work request",
    )
    assert engagement(admin_engine, built.engagement) == before


@pytest.mark.parametrize("who", ["admin", "owner"])
@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_staff_cannot_answer_a_work_request_on_the_contractors_behalf(world, admin_engine, act_as, who, answer):
    built = build(admin_engine, world, "awaiting_acceptance")
    before = engagement(admin_engine, built.engagement)
    s = act_as(getattr(world, who).id, world.org_a)
    app_refused(
        s,
        f"update engagements set {MOVES[answer]} where id = :e",
        {"e": built.engagement, "contractor_user": world.contractor_x_user.id},
        INSUFFICIENT_PRIVILEGE,
        "only the contractor accepts or declines a work request",
    )
    assert engagement(admin_engine, built.engagement) == before


# --- terms are fixed once the work request is sent ------------------------------------------------------

TERM_CHANGES = {
    "currency": "currency = 'EUR'",
    "retainage_bps": "retainage_bps = retainage_bps + 1",
    "payment_terms_days": "payment_terms_days = payment_terms_days + 1",
    "service_fee_bps": "service_fee_bps = service_fee_bps + 1",
    "billing_mode": "billing_mode = 'completion'",
    "contractor_id": "contractor_id = :other_contractor",
}


@pytest.mark.parametrize("status", ["awaiting_acceptance", "active", "paused", "completed", "declined", "cancelled"])
@pytest.mark.parametrize("term", list(TERM_CHANGES))
def test_the_terms_cannot_change_once_the_work_request_is_sent(world, admin_engine, status, term):
    """Refused even to the owner role (no milestones here, so no foreign key could be the one refusing)."""
    built = build(admin_engine, world, status, milestones=())
    before = engagement(admin_engine, built.engagement)
    owner_role_refused(
        admin_engine,
        f"update engagements set {TERM_CHANGES[term]} where id = :e",
        {"e": built.engagement, "other_contractor": world.contractor_y},
        CHECK_VIOLATION,
        "the terms of an engagement are fixed once its work request is sent",
    )
    assert engagement(admin_engine, built.engagement) == before


@pytest.mark.parametrize("term", ["currency", "retainage_bps", "payment_terms_days", "service_fee_bps", "billing_mode"])
def test_an_admin_cannot_change_the_terms_of_an_active_engagement(world, admin_engine, act_as, term):
    built = build(admin_engine, world, "active")
    before = engagement(admin_engine, built.engagement)
    s = act_as(world.admin.id, world.org_a)
    app_refused(
        s,
        f"update engagements set {TERM_CHANGES[term]} where id = :e",
        {"e": built.engagement},
        CHECK_VIOLATION,
        "the terms of an engagement are fixed",
    )
    assert engagement(admin_engine, built.engagement) == before


# billing_mode alone is no draft's whole change: a completion draft takes a contract value with it (the table's CHECK
# engagements_billing_terms); tests/integration/test_completion_guards.py switches one.
@pytest.mark.parametrize("term", [t for t in TERM_CHANGES if t != "billing_mode"])
def test_the_terms_of_a_draft_can_still_change(world, admin_engine, act_as, term):
    """The control: a draft's terms are the admin's to edit, and its title stays editable later on."""
    built = build(admin_engine, world, "draft")
    s = act_as(world.admin.id, world.org_a)
    assert (
        s.execute(
            text(f"update engagements set {TERM_CHANGES[term]} where id = :e"),
            {"e": built.engagement, "other_contractor": world.contractor_y},
        ).rowcount
        == 1
    )
    s.rollback()
    active = build(admin_engine, world, "active")
    s = act_as(world.admin.id, world.org_a)
    assert (
        s.execute(text("update engagements set title = 'Renamed' where id = :e"), {"e": active.engagement}).rowcount
        == 1
    )
    s.rollback()


def test_changing_a_drafts_contractor_carries_its_milestones_along(world, admin_engine, act_as):
    built = build(admin_engine, world, "draft")
    s = act_as(world.admin.id, world.org_a)
    assert (
        s.execute(
            text("update engagements set contractor_id = :y where id = :e"),
            {"y": world.contractor_y, "e": built.engagement},
        ).rowcount
        == 1
    )
    s.commit()
    assert {m["contractor_id"] for m in milestone_rows(admin_engine, built.engagement)} == {world.contractor_y}
    # and neither contractor sees a draft's milestones: not the old one, nor the new one until it is sent
    for user in (world.contractor_x_user, world.contractor_y_user):
        s = act_as(user.id, world.org_a)
        assert (
            s.execute(
                text("select count(*) from milestones where engagement_id = :e"), {"e": built.engagement}
            ).scalar_one()
            == 0
        )


# --- milestones: insert ---------------------------------------------------------------------------------

INSERT_MILESTONE = (
    "insert into milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date, status)"
    " values (:org, :c, :e, 9, 'Added', 1000, date '2030-02-01', :status)"
)


def insert_milestone_params(world, built, status="planned") -> dict:
    return {"org": world.org_a, "c": world.contractor_x, "e": built.engagement, "status": status}


@pytest.mark.parametrize("status", ["submitted", "approved", "cancelled"])
@pytest.mark.parametrize("engagement_status", ["draft", "active"])
def test_a_new_milestone_starts_planned(world, admin_engine, status, engagement_status):
    built = build(admin_engine, world, engagement_status)
    owner_role_refused(
        admin_engine,
        INSERT_MILESTONE,
        insert_milestone_params(world, built, status),
        CHECK_VIOLATION,
        "a new milestone starts planned",
    )
    assert len(milestone_rows(admin_engine, built.engagement)) == 2


@pytest.mark.parametrize("engagement_status", ["awaiting_acceptance", "completed", "declined", "cancelled"])
def test_no_milestone_can_be_added_to_an_engagement_that_is_sent_or_closed(
    world, admin_engine, act_as, engagement_status
):
    built = build(admin_engine, world, engagement_status)
    owner_role_refused(
        admin_engine,
        INSERT_MILESTONE,
        insert_milestone_params(world, built),
        CHECK_VIOLATION,
        "milestones can be added to a draft",
    )
    s = act_as(world.admin.id, world.org_a)
    app_refused(
        s,
        INSERT_MILESTONE,
        insert_milestone_params(world, built),
        CHECK_VIOLATION,
        "milestones can be added to a draft",
    )
    assert len(milestone_rows(admin_engine, built.engagement)) == 2


@pytest.mark.parametrize("engagement_status", ["draft", "active", "paused"])
def test_a_planned_milestone_can_be_added_to_a_draft_or_a_running_engagement(
    world, admin_engine, act_as, engagement_status
):
    built = build(admin_engine, world, engagement_status)
    s = act_as(world.owner.id, world.org_a)
    assert s.execute(text(INSERT_MILESTONE), insert_milestone_params(world, built)).rowcount == 1
    s.commit()
    assert len(milestone_rows(admin_engine, built.engagement)) == 3


# --- milestones: update ---------------------------------------------------------------------------------

MILESTONE_CHANGES = {
    "title": "title = 'Renamed'",
    "amount": "amount_minor = amount_minor + 1",
    "due_date": "due_date = due_date + 7",
    "deliverable": "deliverable = 'Something else'",
    "seq": "seq = 7",
    "back to planned": "status = 'planned'",
    "to submitted": "status = 'submitted'",
}


@pytest.mark.parametrize("final", ["approved", "cancelled"])
@pytest.mark.parametrize("change", list(MILESTONE_CHANGES))
def test_an_approved_or_cancelled_milestone_cannot_be_changed_at_all(world, admin_engine, act_as, final, change):
    built = build(admin_engine, world, "active", milestones=(final, "planned"), act_as=act_as)
    before = milestone_rows(admin_engine, built.engagement)
    params = {"m": built.milestones[0]}
    owner_role_refused(
        admin_engine,
        f"update milestones set {MILESTONE_CHANGES[change]} where id = :m",
        params,
        CHECK_VIOLATION,
        f"milestone is {final} and cannot be changed",
    )
    s = act_as(world.admin.id, world.org_a)
    app_refused(
        s,
        f"update milestones set {MILESTONE_CHANGES[change]} where id = :m",
        params,
        CHECK_VIOLATION,
        f"milestone is {final} and cannot be changed",
    )
    assert milestone_rows(admin_engine, built.engagement) == before


def test_touching_only_updated_at_of_an_approved_milestone_is_harmless(world, admin_engine, act_as):
    built = build(admin_engine, world, "active", milestones=("approved",), act_as=act_as)
    with admin_engine.begin() as conn:
        assert (
            conn.execute(
                text("update milestones set updated_at = now() where id = :m"), {"m": built.milestones[0]}
            ).rowcount
            == 1
        )


# From the domain's MILESTONE_MOVES: every move it has, and every other from a milestone that can still move
# (cancelled milestones are final, approved ones too but for a payment approval's rejection: a test above refuses any
# other change to them). approved -> planned is made only by the database itself when a step of the payment's
# approval rejects it (sql/controls.sql): tests/integration/test_approval_policies.py makes it through the services,
# and the test below refuses it to anyone else.
LEGAL_MILESTONE_MOVES = [
    (a.value, b.value) for a, b in rules.MILESTONE_MOVES if (a.value, b.value) != ("approved", "planned")
]
ILLEGAL_MILESTONE_MOVES = [
    (a, b)
    for a in ("planned", "submitted")
    for b in ("planned", "submitted", "approved", "cancelled")
    if a != b and (a, b) not in LEGAL_MILESTONE_MOVES
]


@pytest.mark.parametrize(("old", "new"), ILLEGAL_MILESTONE_MOVES)
def test_an_illegal_milestone_move_is_refused_even_to_the_owner_role(world, admin_engine, act_as, old, new):
    built = build(admin_engine, world, "active", milestones=(old,), act_as=act_as)
    before = milestone_rows(admin_engine, built.engagement)
    params = {"m": built.milestones[0], "s": new}
    owner_role_refused(
        admin_engine,
        "update milestones set status = :s where id = :m",
        params,
        CHECK_VIOLATION,
        f"a milestone cannot go from {old} to {new}",
    )
    s = act_as(world.owner.id, world.org_a)
    app_refused(
        s,
        "update milestones set status = :s where id = :m",
        params,
        CHECK_VIOLATION,
        f"a milestone cannot go from {old} to {new}",
    )
    assert milestone_rows(admin_engine, built.engagement) == before


def test_an_approved_milestone_goes_back_to_planned_only_with_its_payment_rejected(world, admin_engine, act_as):
    built = build(admin_engine, world, "active", milestones=("approved",), act_as=act_as)
    before = milestone_rows(admin_engine, built.engagement)
    owner_role_refused(
        admin_engine,
        "update milestones set status = 'planned' where id = :m",
        {"m": built.milestones[0]},
        CHECK_VIOLATION,
        "milestone is approved and cannot be changed",
    )
    assert milestone_rows(admin_engine, built.engagement) == before


@pytest.mark.parametrize(("old", "new"), LEGAL_MILESTONE_MOVES)
def test_every_legal_milestone_move_is_allowed(world, admin_engine, act_as, old, new):
    """The control for the refusals above: each legal move made by whoever makes it in the app, in one
    transaction with the submission or review it needs (the contractor submits; the owner decides)."""
    built = build(admin_engine, world, "active", milestones=(old,), act_as=act_as)
    m = built.milestones[0]
    if new == "submitted":
        s = act_as(world.contractor_x_user.id, world.org_a)
        s.execute(
            text(
                "insert into submissions (org_id, contractor_id, milestone_id, revision, note, links, submitted_by)"
                " values (:org, :c, :m, 1, 'Done.', '[\"https://example.com/x\"]', :me)"
            ),
            {"org": world.org_a, "c": world.contractor_x, "m": m, "me": world.contractor_x_user.id},
        )
    else:
        s = act_as(world.owner.id, world.org_a)
        if old == "submitted":
            s.execute(
                text(
                    "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, reason,"
                    "                     milestone_amount_minor, evidence_sha256, reviewed_by)"
                    " select org_id, contractor_id, milestone_id, id, :d, :r, 50000, '{}', :me"
                    "   from submissions where milestone_id = :m"
                ),
                {
                    "m": m,
                    "d": "approve" if new == "approved" else "dispute",
                    "r": None if new == "approved" else "Redo it.",
                    "me": world.owner.id,
                },
            )
    assert s.execute(text("update milestones set status = :s where id = :m"), {"m": m, "s": new}).rowcount == 1
    if new == "approved":
        authorize_payment(s, m)  # an approval writes its invoice in the same transaction
    s.commit()
    assert milestone_rows(admin_engine, built.engagement)[0]["status"] == new


@pytest.mark.parametrize("engagement_status", ["awaiting_acceptance", "completed", "declined", "cancelled"])
@pytest.mark.parametrize("change", ["title", "amount", "due_date", "to submitted"])
def test_the_milestones_of_a_sent_or_closed_engagement_are_frozen(
    world, admin_engine, act_as, engagement_status, change
):
    milestones = ("approved", "planned") if engagement_status == "completed" else ("planned", "planned")
    built = build(admin_engine, world, engagement_status, milestones=milestones, act_as=act_as)
    before = milestone_rows(admin_engine, built.engagement)
    owner_role_refused(
        admin_engine,
        f"update milestones set {MILESTONE_CHANGES[change]} where id = :m",
        {"m": built.milestones[1]},
        CHECK_VIOLATION,
        "cannot be changed",
    )
    assert milestone_rows(admin_engine, built.engagement) == before


# --- milestones: delete ---------------------------------------------------------------------------------


def test_a_drafts_planned_milestone_can_be_deleted(world, admin_engine, act_as):
    built = build(admin_engine, world, "draft")
    s = act_as(world.owner.id, world.org_a)
    assert s.execute(text("delete from milestones where id = :m"), {"m": built.milestones[0]}).rowcount == 1
    s.commit()
    assert [m["id"] for m in milestone_rows(admin_engine, built.engagement)] == [built.milestones[1]]


@pytest.mark.parametrize(
    ("engagement_status", "milestones"),
    [
        ("awaiting_acceptance", ("planned",)),
        ("active", ("planned",)),
        ("active", ("submitted",)),
        ("active", ("approved",)),
        ("active", ("cancelled", "planned")),  # a change order never cancels the only milestone
        ("paused", ("planned",)),
        ("completed", ("approved",)),
        ("declined", ("planned",)),
        ("cancelled", ("planned",)),
    ],
)
def test_only_a_drafts_planned_milestones_can_be_deleted(world, admin_engine, act_as, engagement_status, milestones):
    built = build(admin_engine, world, engagement_status, milestones=milestones, act_as=act_as)
    before = milestone_rows(admin_engine, built.engagement)
    owner_role_refused(
        admin_engine,
        "delete from milestones where id = :m",
        {"m": built.milestones[0]},
        CHECK_VIOLATION,
        "only a draft's milestones can be removed",
    )
    s = act_as(world.admin.id, world.org_a)
    app_refused(
        s,
        "delete from milestones where id = :m",
        {"m": built.milestones[0]},
        CHECK_VIOLATION,
        "only a draft's milestones can be removed",
    )
    assert milestone_rows(admin_engine, built.engagement) == before


# --- milestones: reordering a draft ---------------------------------------------------------------------


def test_a_drafts_milestones_can_swap_positions_inside_one_transaction(world, admin_engine, act_as):
    built = build(admin_engine, world, "draft")
    first, second = built.milestones
    s = act_as(world.owner.id, world.org_a)
    s.execute(text("update milestones set seq = 2 where id = :m"), {"m": first})  # two seq 2 for a moment
    s.execute(text("update milestones set seq = 1 where id = :m"), {"m": second})
    s.commit()
    assert {m["id"]: m["seq"] for m in milestone_rows(admin_engine, built.engagement)} == {first: 2, second: 1}


def test_a_drafts_milestones_cannot_be_left_sharing_a_position_at_commit(world, admin_engine, act_as):
    built = build(admin_engine, world, "draft")
    before = milestone_rows(admin_engine, built.engagement)
    s = act_as(world.owner.id, world.org_a)
    assert (
        s.execute(text("update milestones set seq = 1 where id = :m"), {"m": built.milestones[1]}).rowcount == 1
    )  # deferred
    with pytest.raises(DBAPIError) as exc:
        s.commit()
    s.rollback()
    assert exc.value.orig.sqlstate == UNIQUE_VIOLATION, str(exc.value.orig)
    assert "milestones_engagement_seq_key" in str(exc.value.orig)
    assert milestone_rows(admin_engine, built.engagement) == before


def test_a_duplicate_position_is_refused_at_commit_even_to_the_owner_role(world, admin_engine):
    built = build(admin_engine, world, "draft")
    before = milestone_rows(admin_engine, built.engagement)
    with pytest.raises(DBAPIError) as exc, admin_engine.begin() as conn:
        conn.execute(
            text(INSERT_MILESTONE.replace(" 9,", " 1,")),
            {"org": world.org_a, "c": world.contractor_x, "e": built.engagement, "status": "planned"},
        )
    assert exc.value.orig.sqlstate == UNIQUE_VIOLATION
    assert milestone_rows(admin_engine, built.engagement) == before


# --- what the guards should refuse as well (DESIGN.md section 3) ----------------------------------------


@pytest.mark.parametrize("status", ["awaiting_acceptance", "active", "completed"])
def test_an_admin_cannot_create_an_engagement_already_past_the_draft(world, admin_engine, act_as, status):
    """An engagement starts as a draft (as a milestone starts planned): inserting one already 'active',
    with responded_at and responded_by filled in, would be accepting on the contractor's behalf."""
    s = act_as(world.admin.id, world.org_a)
    title = f"Pre-accepted {uuid.uuid4()}"
    must_refuse(
        s,
        "insert into engagements (org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
        " payment_terms_days, created_by, status, sent_at, sent_by, responded_at, responded_by, completed_at)"
        " values (:org, :c, :me, :title, 'USD', 0, 30, :me, :status, now(), :me, now(), :xuser, now())",
        {
            "org": world.org_a,
            "c": world.contractor_x,
            "me": world.admin.id,
            "title": title,
            "status": status,
            "xuser": world.contractor_x_user.id,
        },
    )
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from engagements where title = :t"), {"t": title}).scalar_one() == 0


def test_a_milestone_cannot_be_moved_out_of_an_engagement_awaiting_acceptance(world, admin_engine, act_as):
    """What the contractor was sent is what they accept: the sent schedule is frozen, and moving one of its
    milestones under a draft of the same contractor would change it behind the contractor's back."""
    sent = build(admin_engine, world, "awaiting_acceptance")
    draft = build(admin_engine, world, "draft", milestones=())
    before = milestone_rows(admin_engine, sent.engagement)
    s = act_as(world.admin.id, world.org_a)
    must_refuse(
        s, "update milestones set engagement_id = :d where id = :m", {"d": draft.engagement, "m": sent.milestones[0]}
    )
    assert milestone_rows(admin_engine, sent.engagement) == before


@pytest.mark.parametrize("engagement_status", ["draft", "paused"])
def test_a_milestone_is_submitted_only_in_an_active_engagement(world, admin_engine, act_as, engagement_status):
    """Submitting requires an active engagement (DESIGN.md section 3): a draft's contractor has not even been
    asked yet, and a paused engagement takes no work until it is resumed. Without this, staff could take a
    draft's milestone planned -> submitted -> approved before the contractor ever accepted."""
    built = build(admin_engine, world, engagement_status)
    before = milestone_rows(admin_engine, built.engagement)
    s = act_as(world.owner.id, world.org_a)
    must_refuse(s, "update milestones set status = 'submitted' where id = :m", {"m": built.milestones[0]})
    assert milestone_rows(admin_engine, built.engagement) == before


def test_the_contractors_answer_is_recorded_in_its_own_name(world, admin_engine, act_as):
    """Who accepted is recorded (DESIGN.md section 3): the contractor cannot record the answer as someone else's."""
    built = build(admin_engine, world, "awaiting_acceptance")
    s = act_as(world.contractor_x_user.id, world.org_a)
    must_refuse(
        s,
        f"update engagements set {MOVES['accept']} where id = :e",
        {"e": built.engagement, "contractor_user": world.admin.id},
    )  # responded_by: the admin
    assert engagement(admin_engine, built.engagement)["status"] == "awaiting_acceptance"


@pytest.mark.parametrize(
    "column",
    [
        "responded_by = :me, responded_at = now()",
        "decline_reason = 'rewritten'",
        "sent_at = now() - interval '1 day'",
        "cancel_reason = 'rewritten'",
    ],
)
def test_who_and_when_of_a_move_cannot_be_rewritten_afterwards(world, admin_engine, act_as, column):
    """History reads "Accepted by …": staff cannot put their own name (or another time) there later."""
    built = build(admin_engine, world, "active")
    before = engagement(admin_engine, built.engagement)
    s = act_as(world.owner.id, world.org_a)
    app_refused(
        s,
        f"update engagements set {column} where id = :e",
        {"e": built.engagement, "me": world.owner.id},
        INSUFFICIENT_PRIVILEGE,
        "recorded by the move itself",
    )
    assert engagement(admin_engine, built.engagement) == before


# --- when work began waiting (revision 0021) -----------------------------------------------------------


def test_the_move_to_submitted_stamps_when_work_began_waiting_and_nobody_writes_it(world, admin_engine, act_as):
    built = build(admin_engine, world, "active", ("submitted", "planned"), act_as=act_as)
    waiting, planned = built.milestones
    rows = {r["id"]: r for r in milestone_rows(admin_engine, built.engagement)}
    with admin_engine.connect() as conn:
        latest = conn.execute(
            text("select max(submitted_at) from submissions where milestone_id = :m"), {"m": waiting}
        ).scalar_one()
    assert rows[waiting]["submitted_at"] == latest  # the submission's own transaction: one now()
    assert rows[planned]["submitted_at"] is None
    for m in (waiting, planned):
        owner_role_refused(
            admin_engine,
            "update milestones set submitted_at = now() - interval '9 days' where id = :m",
            {"m": m},
            "42501",
            "recorded by the move to submitted itself",
        )
    owner_role_refused(
        admin_engine,
        "insert into milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date,"
        " submitted_at) values (:org, :c, :e, 9, 'Early', 100, date '2030-01-01', now())",
        {"org": world.org_a, "c": world.contractor_x, "e": built.engagement},
        "23514",
        "a new milestone starts planned",
    )
