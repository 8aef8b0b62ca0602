"""A milestone's terms (amount, due date, title, deliverable) change only by change order once its work
request is sent (DESIGN.md section 3; issue 16): milestones_guard (sql/engagements.sql) refuses any other
change, whoever writes it, the owner role included, unless an adjust line of a change order issued in the
same transaction records that very change. Otherwise a project owner could raise an amount with a plain
UPDATE, with no change order and no audit event, and approving would pay the new amount.

The refusals are raw SQL as the web role (the project owner, an admin) and as the owner role; the controls
go through the services: a change order, a split partial approval, a draft's schedule editor.
"""

from __future__ import annotations

import json

import pytest
from kit.engagements import ROWS, acting, create_active, create_draft, milestone_rows, owner_query
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import engagements, schedule
from backoffice.services.change_orders import ChangeOrderInput, MilestoneChange, issue_change_order
from backoffice.services.schedule import RowInput, ScheduleInput

CHECK_VIOLATION = "23514"
REFUSAL = "change only by change order"

# One change of each term, as SQL, and the value it leaves (as the change order line records it).
CHANGES = {
    "amount": ("amount_minor = 999999", {"amount_minor": 999999}),
    "due date": ("due_date = date '2031-06-30'", {"due_date": "2031-06-30"}),
    "title": ("title = 'Renamed'", {"title": "Renamed"}),
    "deliverable": ("deliverable = 'Something else'", {"deliverable": "Something else"}),
}
WRITERS = ["owner", "admin", "owner role"]


def first_milestone(admin_engine, engagement_id) -> dict:
    return milestone_rows(admin_engine, engagement_id)[0]


def run_as(writer, world, act_as, admin_engine, statements: list[tuple[str, dict]]) -> None:
    """Run the statements in one transaction as ``writer`` (a person through the web role, or the owner
    role) and commit; a refusal propagates as DBAPIError after rolling back."""
    if writer == "owner role":
        with admin_engine.begin() as conn:
            for sql, params in statements:
                conn.execute(text(sql), params)
        return
    s = act_as(getattr(world, writer).id, world.org_a)
    try:
        for sql, params in statements:
            s.execute(text(sql), params)
        s.commit()
    except DBAPIError:
        s.rollback()
        raise


def refused(writer, world, act_as, admin_engine, statements) -> str:
    with pytest.raises(DBAPIError) as exc:
        run_as(writer, world, act_as, admin_engine, statements)
    message = str(exc.value.orig)
    assert exc.value.orig.sqlstate == CHECK_VIOLATION, message
    return message


def change_order_by_hand(
    world, writer: str, milestone: dict, number: int, before: dict, after: dict
) -> list[tuple[str, dict]]:
    """A change order and one adjust line written as raw SQL, the way a caller bypassing the service would
    (in the writer's name: the owner role's in the project owner's)."""
    params = {
        "org": milestone["org_id"],
        "c": milestone["contractor_id"],
        "e": milestone["engagement_id"],
        "m": milestone["id"],
        "n": number,
        "me": (world.owner if writer == "owner role" else getattr(world, writer)).id,
        "before": json.dumps(before),
        "after": json.dumps(after),
    }
    return [
        (
            "insert into change_orders (org_id, contractor_id, engagement_id, number, reason,"
            " contract_value_before, contract_value_after, created_by)"
            " values (:org, :c, :e, :n, 'By hand', 0, 0, :me)",
            params,
        ),
        (
            "insert into change_order_lines (org_id, contractor_id, change_order_id, line_no, kind, milestone_id,"
            " before, after)"
            " select :org, :c, id, 1, 'adjust', :m, cast(:before as jsonb), cast(:after as jsonb)"
            " from change_orders where engagement_id = :e and number = :n",
            params,
        ),
    ]


def change_orders_of(admin_engine, engagement_id) -> list[dict]:
    return owner_query(admin_engine, "select number from change_orders where engagement_id = :e", e=engagement_id)


def terms_of(milestone: dict, keys) -> dict:
    return {k: (milestone[k].isoformat() if k == "due_date" else milestone[k]) for k in keys}


# --- refused -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_plain_update_of_an_active_engagements_milestone_terms_is_refused(
    world, app_sessions, act_as, admin_engine, writer, change
):
    engagement = create_active(app_sessions, world)
    m = first_milestone(admin_engine, engagement)
    before = milestone_rows(admin_engine, engagement)
    message = refused(
        writer,
        world,
        act_as,
        admin_engine,
        [(f"update milestones set {CHANGES[change][0]} where id = :m", {"m": m["id"]})],
    )
    assert REFUSAL in message, message
    assert milestone_rows(admin_engine, engagement) == before


@pytest.mark.parametrize("writer", WRITERS)
def test_a_paused_engagements_milestone_amount_is_refused_too(world, app_sessions, act_as, admin_engine, writer):
    engagement = create_active(app_sessions, world)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        engagements.perform(session, actor, engagement, "pause")
    m = first_milestone(admin_engine, engagement)
    message = refused(
        writer,
        world,
        act_as,
        admin_engine,
        [("update milestones set amount_minor = 999999 where id = :m", {"m": m["id"]})],
    )
    assert REFUSAL in message, message
    assert first_milestone(admin_engine, engagement)["amount_minor"] == m["amount_minor"]


def test_a_change_order_of_an_earlier_transaction_does_not_license_a_later_update(
    world, app_sessions, act_as, admin_engine
):
    """CO-1 raised the amount; a week later a plain UPDATE back (or anywhere else) is refused: the line
    that records a change must be written with it."""
    engagement = create_active(app_sessions, world)
    m = first_milestone(admin_engine, engagement)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        issue_change_order(
            session,
            actor,
            engagement,
            ChangeOrderInput(
                reason="Larger first phase.",
                based_on=0,
                changes=[MilestoneChange(str(m["id"]), m["title"], m["deliverable"], "1,200.00", "2030-01-15")],
            ),
        )
    assert first_milestone(admin_engine, engagement)["amount_minor"] == 120000
    for amount in (100000, 120000 + 1):
        message = refused(
            "owner",
            world,
            act_as,
            admin_engine,
            [("update milestones set amount_minor = :a where id = :m", {"a": amount, "m": m["id"]})],
        )
        assert REFUSAL in message, message
    assert first_milestone(admin_engine, engagement)["amount_minor"] == 120000


@pytest.mark.parametrize("writer", WRITERS)
def test_a_change_order_line_must_record_the_value_the_update_writes(world, app_sessions, act_as, admin_engine, writer):
    """A line of this transaction that says 1,200.00 does not license 9,999.99; nor one with a false before."""
    engagement = create_active(app_sessions, world)
    m = first_milestone(admin_engine, engagement)
    update = ("update milestones set amount_minor = :a where id = :m", {"a": 999999, "m": m["id"]})
    lines = change_order_by_hand(world, writer, m, 1, {"amount_minor": m["amount_minor"]}, {"amount_minor": 120000})
    assert REFUSAL in refused(writer, world, act_as, admin_engine, [*lines, update])
    lines = change_order_by_hand(world, writer, m, 1, {"amount_minor": 1}, {"amount_minor": 999999})
    assert REFUSAL in refused(writer, world, act_as, admin_engine, [*lines, update])
    # ... nor a line about another field
    lines = change_order_by_hand(world, writer, m, 1, {"title": m["title"]}, {"title": "Renamed"})
    assert REFUSAL in refused(writer, world, act_as, admin_engine, [*lines, update])
    assert change_orders_of(admin_engine, engagement) == []
    assert first_milestone(admin_engine, engagement)["amount_minor"] == m["amount_minor"]


# --- allowed -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_the_same_update_with_its_change_order_line_in_the_same_transaction_is_allowed(
    world, app_sessions, act_as, admin_engine, writer, change
):
    """The control for the refusals: the guard wants the record, not the service."""
    engagement = create_active(app_sessions, world)
    m = first_milestone(admin_engine, engagement)
    sql, after = CHANGES[change]
    lines = change_order_by_hand(world, writer, m, 1, terms_of(m, after), after)
    run_as(
        writer, world, act_as, admin_engine, [*lines, (f"update milestones set {sql} where id = :m", {"m": m["id"]})]
    )
    assert terms_of(first_milestone(admin_engine, engagement), after) == after


def test_a_change_order_changes_every_term_of_a_milestone(world, app_sessions, admin_engine):
    engagement = create_active(app_sessions, world)
    m = first_milestone(admin_engine, engagement)
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        co = issue_change_order(
            session,
            actor,
            engagement,
            ChangeOrderInput(
                reason="The client widened the scope.",
                based_on=0,
                changes=[
                    MilestoneChange(str(m["id"]), "Design and survey", "Plans and a survey", "1,250.00", "2030-02-01")
                ],
            ),
        )
    after = first_milestone(admin_engine, engagement)
    assert (after["title"], after["deliverable"], after["amount_minor"], after["due_date"].isoformat()) == (
        "Design and survey",
        "Plans and a survey",
        125000,
        "2030-02-01",
    )
    (line,) = owner_query(
        admin_engine, "select kind, after from change_order_lines where change_order_id = :c", c=co.id
    )
    assert line == {
        "kind": "adjust",
        "after": {
            "title": "Design and survey",
            "deliverable": "Plans and a survey",
            "amount_minor": 125000,
            "due_date": "2030-02-01",
        },
    }


def test_a_drafts_schedule_editor_still_changes_every_term(world, app_sessions, admin_engine):
    engagement = create_draft(app_sessions, world)
    ids = [m["id"] for m in milestone_rows(admin_engine, engagement)]
    edited = [
        RowInput(
            id=str(i), title=f"{t} (revised)", deliverable=f"{d}, revised", amount="1,111.00", due_date="2030-06-30"
        )
        for i, (t, d, _a, _due) in zip(ids, ROWS, strict=True)
    ]
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        schedule.save_schedule(session, actor, engagement, ScheduleInput(rows=edited))
    rows = milestone_rows(admin_engine, engagement)
    assert [(r["title"], r["amount_minor"], r["due_date"].isoformat()) for r in rows] == [
        (f"{t} (revised)", 111100, "2030-06-30") for t, *_ in ROWS
    ]
    assert change_orders_of(admin_engine, engagement) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_drafts_milestones_may_be_updated_directly(world, app_sessions, act_as, admin_engine, writer):
    engagement = create_draft(app_sessions, world)
    m = first_milestone(admin_engine, engagement)
    run_as(
        writer,
        world,
        act_as,
        admin_engine,
        [("update milestones set amount_minor = 123400, title = 'Renamed' where id = :m", {"m": m["id"]})],
    )
    assert (
        first_milestone(admin_engine, engagement)["amount_minor"],
        first_milestone(admin_engine, engagement)["title"],
    ) == (
        123400,
        "Renamed",
    )
