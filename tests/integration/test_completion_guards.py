"""Completion billing's money rules as the database enforces them (sql/completion.sql, the completion kinds in
sql/money.sql and sql/engagements.sql; DESIGN.md section 4, "Completion billing", invariant 6), whoever writes.

Engagements are built and tasks approved through the real services (kit.completion); only the statement judged is raw
SQL, as the web role signed in as the person who would try it (``act_as``) where the rule is about who acts, and as
the owner role (which bypasses row-level security but not triggers, constraints or the checks at commit) where it is
about amounts. Each write starts with a control: the same statements, right, are accepted. Each refusal leaves every
money row, engagement, task and counter of the organization exactly as it was.

A completion engagement here: contract value 10,000.00, advance 12% (1,200.00), tasks 3,000.00 + 3,000.00 + 2,800.00
(the value less the advance), 10% retainage and a 2.5% service fee on the work invoices, nothing on the advance.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kit.completion import approve_task, completion_draft, completion_engagement, raise_invoice, send
from kit.engagements import owner_query
from kit.money import active_engagement, approve, money_state, party, submit
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.domain.money import percent_of

CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"
INSUFFICIENT_PRIVILEGE = "42501"

VALUE, ADVANCE = 1_000_000, 120_000
TASKS = (300_000, 300_000, 280_000)
RETAINAGE_BPS, FEE_BPS = 1_000, 250


def state(admin_engine, org_id) -> dict:
    """Every money row of the organization, and its engagements, tasks and billed tasks: a refusal changes none."""
    return {
        **money_state(admin_engine, org_id),
        "engagements": owner_query(admin_engine, "select * from engagements where org_id = :o order by id", o=org_id),
        "invoice_tasks": owner_query(
            admin_engine, "select * from invoice_tasks where org_id = :o order by id", o=org_id
        ),
    }


def run(conn, sql: str, **params):
    return conn.execute(text(sql), params)


def refused(write, on, sqlstate: str, words: str) -> str:
    """``write(on)`` then commit, on a web-role session or an owner-role connection, refused by its statement or at
    commit with ``sqlstate`` and a message containing ``words``."""
    with pytest.raises(DBAPIError) as exc:
        write(on)
        on.commit()
    on.rollback()
    orig = exc.value.orig
    assert (orig.sqlstate, words in str(orig)) == (sqlstate, True), str(orig)
    return str(orig)


def refused_as_owner_role(admin_engine, write, sqlstate: str, words: str) -> str:
    with admin_engine.connect() as conn:
        conn.begin()
        return refused(write, conn, sqlstate, words)


def accepted(write, on) -> None:
    write(on)
    on.commit()


# --- writing the completion kinds by hand ---------------------------------------------------------------------------


def terms(engagement_id):
    """The engagement's terms, read as the owner role (a writer may not see the engagement it writes for)."""
    with _owner[0].connect() as conn:
        return run(
            conn,
            "select org_id, contractor_id, currency, retainage_bps, service_fee_bps, advance_minor,"
            " advance_confirmed_by from engagements where id = :e",
            e=engagement_id,
        ).one()


_owner: list = []


@pytest.fixture(autouse=True)
def _owner_engine(admin_engine):
    _owner[:] = [admin_engine]


def insert_invoice(conn, engagement_id, kind: str, gross: int, **overrides):
    """An invoice of ``kind`` for ``gross`` on the engagement's terms (nothing withheld and no fee on an advance),
    authorized by whoever confirmed the advance unless told; ``overrides`` (column -> value) win. Returns its id."""
    t = terms(engagement_id)
    retainage_bps, fee_bps = (0, 0) if kind == "advance" else (t.retainage_bps, t.service_fee_bps)
    values = {"retainage_bps": retainage_bps, "fee_bps": fee_bps, "gross_minor": gross, **overrides}
    retainage = percent_of(values["gross_minor"], values["retainage_bps"])
    fee = percent_of(values["gross_minor"], values["fee_bps"])
    values = {
        "org_id": t.org_id,
        "contractor_id": t.contractor_id,
        "engagement_id": engagement_id,
        "kind": kind,
        "description": f"Raw {kind}",
        "currency": t.currency,
        "retainage_minor": retainage,
        "net_minor": values["gross_minor"] - retainage,
        "fee_minor": fee,
        "total_minor": values["gross_minor"] + fee,
        "authorized_by": t.advance_confirmed_by,
        **values,
        **overrides,
    }
    columns = ", ".join(values)
    return run(
        conn, f"insert into invoices ({columns}) values ({', '.join(':' + c for c in values)}) returning id", **values
    ).scalar_one()


def bill(conn, invoice_id, task_id, **overrides) -> None:
    """The invoice_tasks row of ``task_id`` on the invoice, at the task's amount unless told."""
    values = {"amount_minor": None, **overrides}
    run(
        conn,
        "insert into invoice_tasks (org_id, invoice_id, milestone_id, engagement_id, contractor_id, amount_minor)"
        " select i.org_id, i.id, m.id, coalesce(cast(:engagement as uuid), i.engagement_id), i.contractor_id,"
        "        coalesce(cast(:amount as bigint), m.amount_minor)"
        "   from invoices i, milestones m where i.id = :i and m.id = :m",
        i=invoice_id,
        m=task_id,
        amount=values["amount_minor"],
        engagement=overrides.get("engagement_id"),
    )


def task_invoice(conn, engagement_id, task_ids, *, raised_by, authorized_by, gross=None, **overrides):
    """A task invoice (kind completion) billing ``task_ids``, for their sum unless told."""
    with _owner[0].connect() as owner:  # (as the owner role: a writer may not see the tasks it names)
        amounts = run(
            owner, "select sum(amount_minor) from milestones where id = any(:t)", t=list(task_ids)
        ).scalar_one()
    invoice_id = insert_invoice(
        conn,
        engagement_id,
        "completion",
        amounts if gross is None else gross,
        raised_by=raised_by,
        authorized_by=authorized_by,
        **overrides,
    )
    for task in task_ids:
        bill(conn, invoice_id, task)
    return invoice_id


APPROVE = (
    "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, milestone_amount_minor,"
    "                     evidence_sha256, reviewed_by)"
    " select s.org_id, s.contractor_id, s.milestone_id, s.id, 'approve', m.amount_minor, '{}', :who"
    "   from submissions s join milestones m on m.id = s.milestone_id"
    "  where s.milestone_id = :m order by s.revision desc limit 1"
)


def approve_by_hand(conn, task_id, who) -> None:
    """What approving a task writes before any invoice: the review, and the task approved."""
    run(conn, APPROVE, m=task_id, who=who)
    run(conn, "update milestones set status = 'approved' where id = :m", m=task_id)


def billed(admin_engine, engagement_id) -> int:
    (row,) = owner_query(
        admin_engine,
        "select coalesce(sum(gross_minor), 0) as billed from invoices where engagement_id = :e"
        " and kind in ('advance', 'completion', 'final') and voided_at is null",
        e=engagement_id,
    )
    return row["billed"]


# --- the engagements --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    engagement: object
    tasks: list  # three tasks, in order


def build(act_as, admin_engine, world, *, which="x", **kwargs) -> Built:
    p = party(world, which)
    engagement_id, tasks = completion_engagement(
        act_as,
        admin_engine,
        p,
        value="10,000.00",
        advance="12",
        tasks=("3,000.00", "3,000.00", "2,800.00"),
        retainage="10",
        service_fee="2.5",
        **kwargs,
    )
    return Built(engagement_id, tasks)


@pytest.fixture
def two_approved(world, act_as, admin_engine) -> Built:
    """X's active completion engagement, its advance authorized, tasks 1 and 2 approved and not invoiced, task 3
    planned."""
    built = build(act_as, admin_engine, world)
    p = party(world)
    approve_task(act_as, p, built.tasks[0])
    approve_task(act_as, p, built.tasks[1])
    return built


@pytest.fixture
def last_submitted(world, act_as, admin_engine, two_approved) -> Built:
    """As two_approved, and task 3 submitted: approving it is the last approval, which authorizes the final payment."""
    submit(act_as, party(world), two_approved.tasks[2])
    return two_approved


def sent(act_as, world, **kwargs):
    """X's completion work request, sent with its advance confirmed, awaiting the contractor."""
    p = party(world)
    engagement_id = completion_draft(
        act_as, p, value="10,000.00", advance="12", tasks=("3,000.00", "3,000.00", "2,800.00"), **kwargs
    )
    send(act_as, p, engagement_id)
    return engagement_id


ACCEPT = "update engagements set status = 'active', responded_at = now(), responded_by = :me where id = :e"


# --- the advance ------------------------------------------------------------------------------------------------------


def test_the_advance_written_with_the_acceptance_is_accepted(world, act_as, admin_engine):
    """The control: the contractor's user accepts and writes the advance, in one transaction, as the service does."""
    engagement_id = sent(act_as, world)
    me = world.contractor_x_user.id
    accepted(
        lambda s: (run(s, ACCEPT, e=engagement_id, me=me), insert_invoice(s, engagement_id, "advance", ADVANCE)),
        act_as(me, world.org_a),
    )
    assert billed(admin_engine, engagement_id) == ADVANCE


ADVANCE_WRONG = {
    "amount": ({"gross_minor": ADVANCE + 1}, CHECK_VIOLATION, "an advance pays the engagement's advance (120000)"),
    "retainage rate": (
        {"retainage_bps": RETAINAGE_BPS, "retainage_minor": 0, "net_minor": ADVANCE},
        CHECK_VIOLATION,
        "with nothing withheld and no fee",
    ),
    "retainage withheld": ({"retainage_bps": RETAINAGE_BPS}, CHECK_VIOLATION, "with nothing withheld and no fee"),
    "fee": ({"fee_bps": FEE_BPS}, CHECK_VIOLATION, "with nothing withheld and no fee"),
    # the rates right, an amount not
    "retainage amount": ({"retainage_minor": 1, "net_minor": ADVANCE - 1}, CHECK_VIOLATION, "round_half_up"),
    "another authorizer": ({"authorized_by": "admin"}, CHECK_VIOLATION, "authorized by whoever confirmed it"),
}


@pytest.mark.parametrize("case", ADVANCE_WRONG)
def test_an_advance_of_the_wrong_amount_or_with_retainage_is_refused(world, act_as, admin_engine, case):
    engagement_id = sent(act_as, world)
    overrides, sqlstate, words = ADVANCE_WRONG[case]
    if overrides.get("authorized_by") == "admin":
        overrides = {**overrides, "authorized_by": world.admin.id}
    before = state(admin_engine, world.org_a)
    me = world.contractor_x_user.id

    def write(s):
        run(s, ACCEPT, e=engagement_id, me=me)
        insert_invoice(s, engagement_id, "advance", ADVANCE, **overrides)

    refused(write, act_as(me, world.org_a), sqlstate, words)
    refused_as_owner_role(admin_engine, write, sqlstate, words)
    assert state(admin_engine, world.org_a) == before


def test_an_engagement_has_one_advance_ever(world, act_as, admin_engine):
    engagement_id = sent(act_as, world)
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)

    def twice_at_acceptance(s):
        run(s, ACCEPT, e=engagement_id, me=me)
        insert_invoice(s, engagement_id, "advance", ADVANCE)
        insert_invoice(s, engagement_id, "advance", ADVANCE)

    message = refused(twice_at_acceptance, act_as(me, world.org_a), UNIQUE_VIOLATION, "")
    assert "invoices_one_advance_per_engagement" in message
    assert state(admin_engine, world.org_a) == before
    # once accepted with it, never another (not even by the owner role, which no check of "who" stops)
    accepted(
        lambda s: (run(s, ACCEPT, e=engagement_id, me=me), insert_invoice(s, engagement_id, "advance", ADVANCE)),
        act_as(me, world.org_a),
    )
    before = state(admin_engine, world.org_a)
    refused_as_owner_role(
        admin_engine,
        lambda c: insert_invoice(c, engagement_id, "advance", ADVANCE),
        CHECK_VIOLATION,
        "an advance is authorized when its engagement becomes active",
    )
    assert state(admin_engine, world.org_a) == before


def test_an_advance_is_authorized_only_as_the_engagement_becomes_active(world, act_as, admin_engine):
    engagement_id = sent(act_as, world)  # awaiting the contractor: not active yet
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)
    words = "an advance is authorized when its engagement becomes active"

    def write(s):
        insert_invoice(s, engagement_id, "advance", ADVANCE)

    refused(write, act_as(me, world.org_a), CHECK_VIOLATION, words)
    refused_as_owner_role(admin_engine, write, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before
    # accepted without it (the final payment pays an advance never paid), it is not written later either
    accepted(lambda s: run(s, ACCEPT, e=engagement_id, me=me), act_as(me, world.org_a))
    before = state(admin_engine, world.org_a)
    refused(write, act_as(me, world.org_a), CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


def test_a_milestone_engagement_takes_no_advance(world, act_as, admin_engine):
    p = party(world)
    engagement_id, _ = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    before = state(admin_engine, world.org_a)
    refused_as_owner_role(
        admin_engine,
        lambda c: insert_invoice(c, engagement_id, "advance", 12_000, authorized_by=world.owner.id),
        CHECK_VIOLATION,
        "an engagement billed milestone is not paid by an invoice of kind advance",
    )
    assert state(admin_engine, world.org_a) == before


def test_a_contractor_writes_no_advance_for_another_contractor(world, act_as, admin_engine):
    engagement_id = sent(act_as, world)
    before = state(admin_engine, world.org_a)
    y = world.contractor_y_user.id
    # on X's engagement in X's name: not Y's to write
    refused(
        lambda s: insert_invoice(s, engagement_id, "advance", ADVANCE),
        act_as(y, world.org_a),
        INSUFFICIENT_PRIVILEGE,
        "a payment is authorized by the engagement's project owner or an admin, in their own name",
    )
    # on X's engagement in Y's own name: X's engagement is not found for Y
    refused(
        lambda s: insert_invoice(s, engagement_id, "advance", ADVANCE, contractor_id=world.contractor_y),
        act_as(y, world.org_a),
        "23503",
        f"engagement {engagement_id} not found",
    )
    assert state(admin_engine, world.org_a) == before


# --- the contractor's invoice for approved tasks ---------------------------------------------------------------------


def test_the_contractors_invoice_for_approved_tasks_is_accepted(world, act_as, admin_engine, two_approved):
    """The control: the contractor's user invoices tasks 1 and 2 in its own name, authorized by their approver."""
    me = world.contractor_x_user.id
    accepted(
        lambda s: task_invoice(
            s, two_approved.engagement, two_approved.tasks[:2], raised_by=me, authorized_by=world.owner.id
        ),
        act_as(me, world.org_a),
    )
    assert billed(admin_engine, two_approved.engagement) == ADVANCE + TASKS[0] + TASKS[1]


def test_a_task_not_approved_is_not_invoiced(world, act_as, admin_engine, two_approved):
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)
    task_3 = two_approved.tasks[2]
    words = "only an approved task of the engagement is invoiced"

    def planned(s):
        task_invoice(s, two_approved.engagement, [task_3], raised_by=me, authorized_by=world.owner.id)

    refused(planned, act_as(me, world.org_a), CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before
    submit(act_as, party(world), task_3)
    before = state(admin_engine, world.org_a)
    refused(planned, act_as(me, world.org_a), CHECK_VIOLATION, words)  # submitted is not approved either
    refused_as_owner_role(admin_engine, planned, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


def test_a_task_is_invoiced_once(world, act_as, admin_engine, two_approved):
    me = world.contractor_x_user.id
    task_1 = two_approved.tasks[0]
    before = state(admin_engine, world.org_a)

    def twice_at_once(s):
        task_invoice(s, two_approved.engagement, [task_1], raised_by=me, authorized_by=world.owner.id)
        task_invoice(s, two_approved.engagement, [task_1], raised_by=me, authorized_by=world.owner.id)

    message = refused(twice_at_once, act_as(me, world.org_a), UNIQUE_VIOLATION, "")
    assert "invoice_tasks_billed_once" in message
    assert state(admin_engine, world.org_a) == before
    raise_invoice(act_as, party(world), two_approved.engagement, [task_1])
    before = state(admin_engine, world.org_a)

    def again(s):
        task_invoice(s, two_approved.engagement, [task_1], raised_by=me, authorized_by=world.owner.id)

    assert "invoice_tasks_billed_once" in refused(again, act_as(me, world.org_a), UNIQUE_VIOLATION, "")
    assert "invoice_tasks_billed_once" in refused_as_owner_role(admin_engine, again, UNIQUE_VIOLATION, "")
    assert state(admin_engine, world.org_a) == before


def test_a_task_of_another_engagement_is_not_invoiced(world, act_as, admin_engine, two_approved):
    other = build(act_as, admin_engine, world, title="Second job")
    approve_task(act_as, party(world), other.tasks[0])
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)

    def borrowed(s):  # the other engagement's approved task, on this engagement's invoice
        invoice_id = insert_invoice(
            s, two_approved.engagement, "completion", TASKS[0], raised_by=me, authorized_by=world.owner.id
        )
        bill(s, invoice_id, other.tasks[0])

    def named_elsewhere(s):  # ... or the billed task said to be the other engagement's
        invoice_id = insert_invoice(
            s, two_approved.engagement, "completion", TASKS[0], raised_by=me, authorized_by=world.owner.id
        )
        bill(s, invoice_id, other.tasks[0], engagement_id=other.engagement)

    refused(borrowed, act_as(me, world.org_a), CHECK_VIOLATION, "only an approved task of the engagement is invoiced")
    refused(
        named_elsewhere, act_as(me, world.org_a), CHECK_VIOLATION, "an invoice's tasks are written with it, in the same"
    )
    assert state(admin_engine, world.org_a) == before


def test_a_task_invoices_gross_is_the_sum_of_its_tasks(world, act_as, admin_engine, two_approved):
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)
    for gross in (TASKS[0] + TASKS[1] + 1, TASKS[0]):

        def write(s, gross=gross):
            task_invoice(
                s,
                two_approved.engagement,
                two_approved.tasks[:2],
                raised_by=me,
                authorized_by=world.owner.id,
                gross=gross,
            )

        refused(write, act_as(me, world.org_a), CHECK_VIOLATION, "'s gross is the sum of its tasks (600000)")
        refused_as_owner_role(admin_engine, write, CHECK_VIOLATION, "'s gross is the sum of its tasks (600000)")

    def no_task(s):
        insert_invoice(s, two_approved.engagement, "completion", TASKS[0], raised_by=me, authorized_by=world.owner.id)

    refused(no_task, act_as(me, world.org_a), CHECK_VIOLATION, "names no task")
    assert state(admin_engine, world.org_a) == before


def test_a_task_invoice_is_authorized_by_whoever_approved_its_last_task(world, act_as, admin_engine, two_approved):
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)
    refused(
        lambda s: task_invoice(
            s, two_approved.engagement, two_approved.tasks[:2], raised_by=me, authorized_by=world.admin.id
        ),
        act_as(me, world.org_a),
        CHECK_VIOLATION,
        "a task invoice is authorized by whoever approved the last of its tasks",
    )
    assert state(admin_engine, world.org_a) == before


def test_a_task_invoice_is_raised_by_the_contractors_user_in_its_own_name(world, act_as, admin_engine, two_approved):
    me = world.contractor_x_user.id
    before = state(admin_engine, world.org_a)
    words = "a payment is authorized by the engagement's project owner or an admin, in their own name"
    for someone_else in (world.owner.id, world.admin.id, world.contractor_y_user.id):
        refused(
            lambda s, who=someone_else: task_invoice(
                s, two_approved.engagement, two_approved.tasks[:2], raised_by=who, authorized_by=world.owner.id
            ),
            act_as(me, world.org_a),
            INSUFFICIENT_PRIVILEGE,
            words,
        )
    # nor without naming anyone (every task invoice names its raiser: the invoice's shape)
    refused_as_owner_role(
        admin_engine,
        lambda c: task_invoice(
            c, two_approved.engagement, two_approved.tasks[:2], raised_by=None, authorized_by=world.owner.id
        ),
        CHECK_VIOLATION,
        "invoices_kind_shape",
    )
    assert state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("who", ["owner", "admin", "finance"])
def test_staff_raise_no_task_invoice(world, act_as, admin_engine, two_approved, who):
    """Staff authorize the advance and the final payment; a task invoice is the contractor's to raise."""
    person = getattr(world, who)
    before = state(admin_engine, world.org_a)
    refused(
        lambda s: task_invoice(
            s,
            two_approved.engagement,
            two_approved.tasks[:2],
            raised_by=world.contractor_x_user.id,
            authorized_by=person.id,
        ),
        act_as(person.id, world.org_a),
        INSUFFICIENT_PRIVILEGE,
        "a payment is authorized by the engagement's project owner or an admin, in their own name",
    )
    assert state(admin_engine, world.org_a) == before


def test_a_contractor_raises_no_task_invoice_for_another_contractor(world, act_as, admin_engine, two_approved):
    y = world.contractor_y_user.id
    before = state(admin_engine, world.org_a)
    refused(
        lambda s: task_invoice(
            s, two_approved.engagement, two_approved.tasks[:2], raised_by=y, authorized_by=world.owner.id
        ),
        act_as(y, world.org_a),
        INSUFFICIENT_PRIVILEGE,
        "a payment is authorized by the engagement's project owner or an admin, in their own name",
    )
    assert state(admin_engine, world.org_a) == before


# --- the final payment ------------------------------------------------------------------------------------------------


def approve_last_with_final(s, built, who, gross, tasks=None):
    """Approve task 3 and write the final payment for ``tasks`` (all three unless told), as the reviewer."""
    approve_by_hand(s, built.tasks[2], who)
    invoice_id = insert_invoice(s, built.engagement, "final", gross, authorized_by=who)
    for task in built.tasks if tasks is None else tasks:
        bill(s, invoice_id, task)
    return invoice_id


def test_the_final_payment_with_the_last_approval_is_accepted(world, act_as, admin_engine, last_submitted):
    """The control: the owner approves the last task and authorizes the value less the advance, for all three."""
    accepted(
        lambda s: approve_last_with_final(s, last_submitted, world.owner.id, VALUE - ADVANCE),
        act_as(world.owner.id, world.org_a),
    )
    assert billed(admin_engine, last_submitted.engagement) == VALUE


@pytest.mark.parametrize("gross", [VALUE - ADVANCE - 1, VALUE - ADVANCE + 1, VALUE])
def test_the_final_payment_is_the_value_less_what_was_invoiced(world, act_as, admin_engine, last_submitted, gross):
    before = state(admin_engine, world.org_a)

    def write(s):
        approve_last_with_final(s, last_submitted, world.owner.id, gross)

    words = "the final payment is the contract value less what was invoiced (880000)"
    refused(write, act_as(world.owner.id, world.org_a), CHECK_VIOLATION, words)
    refused_as_owner_role(admin_engine, write, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


def test_the_final_payment_leaves_no_task_open_or_unbilled(world, act_as, admin_engine, last_submitted):
    before = state(admin_engine, world.org_a)
    words = "the final payment comes with the last task's approval and bills every approved task not yet invoiced"

    def task_left_open(s):  # tasks 1 and 2 approved, task 3 submitted: not the last approval
        invoice_id = insert_invoice(
            s, last_submitted.engagement, "final", VALUE - ADVANCE, authorized_by=world.owner.id
        )
        for task in last_submitted.tasks[:2]:
            bill(s, invoice_id, task)

    refused(task_left_open, act_as(world.owner.id, world.org_a), CHECK_VIOLATION, words)
    # every task approved, but task 2 billed by nobody
    refused(
        lambda s: approve_last_with_final(
            s, last_submitted, world.owner.id, VALUE - ADVANCE, [last_submitted.tasks[0], last_submitted.tasks[2]]
        ),
        act_as(world.owner.id, world.org_a),
        CHECK_VIOLATION,
        words,
    )
    # and the last approval without the final payment
    refused(
        lambda s: approve_by_hand(s, last_submitted.tasks[2], world.owner.id),
        act_as(world.owner.id, world.org_a),
        CHECK_VIOLATION,
        "approving the last task authorizes the final payment in the same transaction",
    )
    assert state(admin_engine, world.org_a) == before


def test_a_completion_engagement_is_paid_by_no_milestone_invoice(world, act_as, admin_engine, two_approved):
    (review,) = owner_query(admin_engine, "select id from reviews where milestone_id = :m", m=two_approved.tasks[0])
    before = state(admin_engine, world.org_a)
    refused(
        lambda s: insert_invoice(
            s,
            two_approved.engagement,
            "milestone",
            TASKS[0],
            milestone_id=two_approved.tasks[0],
            review_id=review["id"],
            authorized_by=world.owner.id,
        ),
        act_as(world.owner.id, world.org_a),
        CHECK_VIOLATION,
        "an engagement billed completion is not paid by an invoice of kind milestone",
    )
    assert state(admin_engine, world.org_a) == before


def test_a_milestone_engagement_is_paid_by_no_task_or_final_invoice(world, act_as, admin_engine):
    p = party(world)
    engagement_id, (m,) = active_engagement(act_as, admin_engine, p, ("1,000.00",))
    approve(act_as, admin_engine, p, m)
    before = state(admin_engine, world.org_a)
    for kind in ("completion", "final"):
        refused_as_owner_role(
            admin_engine,
            lambda c, kind=kind: insert_invoice(
                c,
                engagement_id,
                kind,
                100_000,
                authorized_by=world.owner.id,
                raised_by=world.contractor_x_user.id if kind == "completion" else None,
            ),
            CHECK_VIOLATION,
            f"an engagement billed milestone is not paid by an invoice of kind {kind}",
        )
    assert state(admin_engine, world.org_a) == before


# --- invariant 6 ------------------------------------------------------------------------------------------------------


def test_a_completion_engagements_invoices_never_exceed_its_contract_value(world, act_as, admin_engine, two_approved):
    """The last line (completion_engagement_check at commit): with the check of each billed task's amount lifted for
    this transaction only (DDL is transactional: no other session sees it off), a task invoice for the whole value
    on top of the advance is refused at commit all the same."""
    before = state(admin_engine, world.org_a)

    def over_the_value(c):
        run(c, "set local lock_timeout = '10s'")
        run(c, "alter table invoice_tasks disable trigger invoice_tasks_guard")
        invoice_id = insert_invoice(
            c,
            two_approved.engagement,
            "completion",
            VALUE,
            raised_by=world.contractor_x_user.id,
            authorized_by=world.owner.id,
        )
        bill(c, invoice_id, two_approved.tasks[0], amount_minor=VALUE)
        run(c, "alter table invoice_tasks enable trigger invoice_tasks_guard")

    refused_as_owner_role(admin_engine, over_the_value, CHECK_VIOLATION, "its invoices would exceed the contract value")
    assert state(admin_engine, world.org_a) == before


# --- the engagement's terms -------------------------------------------------------------------------------------------


def test_a_completion_engagement_is_completed_only_by_its_settled_final_payment(
    world, act_as, admin_engine, two_approved
):
    before = state(admin_engine, world.org_a)

    def complete(s):
        run(s, "update engagements set status = 'completed' where id = :e", e=two_approved.engagement)

    words = "an engagement billed on completion is completed by its final payment, once approved"
    for who in (world.owner, world.admin):
        refused(complete, act_as(who.id, world.org_a), CHECK_VIOLATION, words)
    refused_as_owner_role(admin_engine, complete, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


TERMS_AFTER_SEND = {
    "advance rate": "advance_bps = 1000",
    "advance amount": "advance_minor = 100000",
    "advance rate and amount": "advance_bps = 1000, advance_minor = 100000",
    "who confirmed the advance": "advance_confirmed_by = :admin",
}


@pytest.mark.parametrize("status", ["awaiting_acceptance", "active"])
@pytest.mark.parametrize("change", TERMS_AFTER_SEND)
def test_the_advance_is_fixed_once_the_work_request_is_sent(world, act_as, admin_engine, status, change):
    if status == "active":
        engagement_id = build(act_as, admin_engine, world).engagement
    else:
        engagement_id = sent(act_as, world)
    before = state(admin_engine, world.org_a)

    def write(s):
        run(
            s, f"update engagements set {TERMS_AFTER_SEND[change]} where id = :e", e=engagement_id, admin=world.admin.id
        )

    words = "the advance is fixed once the work request is sent"
    refused(write, act_as(world.owner.id, world.org_a), CHECK_VIOLATION, words)
    refused_as_owner_role(admin_engine, write, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("status", ["awaiting_acceptance", "active"])
def test_the_contract_value_changes_only_by_change_order(world, act_as, admin_engine, status):
    if status == "active":
        engagement_id = build(act_as, admin_engine, world).engagement
    else:
        engagement_id = sent(act_as, world)
    before = state(admin_engine, world.org_a)
    for value in (VALUE + 1, VALUE - 100_000):

        def write(s, value=value):
            run(s, "update engagements set contract_value_minor = :v where id = :e", e=engagement_id, v=value)

        words = "once the work request is sent, the contract value changes only by change order"
        refused(write, act_as(world.owner.id, world.org_a), CHECK_VIOLATION, words)
        refused_as_owner_role(admin_engine, write, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


SEND = (
    "update engagements set status = 'awaiting_acceptance', sent_at = now(), sent_by = :me, advance_confirmed_by = :me"
    " where id = :e"
)


def test_the_tasks_share_the_value_less_the_advance_when_the_work_request_is_sent(world, act_as, admin_engine):
    p = party(world)
    short = completion_draft(act_as, p, value="10,000.00", advance="12", tasks=("3,000.00", "3,000.00", "2,800.00"))
    right = completion_draft(act_as, p, value="10,000.00", advance="12", tasks=("3,000.00", "3,000.00", "2,800.00"))
    # The task editor refuses tasks that do not add up (services/schedule): a draft's milestone changed by hand, as its
    # owner may while it is a draft, leaves them $800.00 short.
    accepted(
        lambda s: run(s, "update milestones set amount_minor = 200000 where engagement_id = :e and seq = 3", e=short),
        act_as(world.owner.id, world.org_a),
    )
    before = state(admin_engine, world.org_a)
    me = world.owner.id
    refused(
        lambda s: run(s, SEND, e=short, me=me),
        act_as(me, world.org_a),
        CHECK_VIOLATION,
        "the tasks add up to 800000 but must add up to the contract value less the advance, 880000",
    )
    assert state(admin_engine, world.org_a) == before
    accepted(lambda s: run(s, SEND, e=right, me=me), act_as(me, world.org_a))  # the control
    (row,) = owner_query(admin_engine, "select status, advance_confirmed_by from engagements where id = :e", e=right)
    assert row == {"status": "awaiting_acceptance", "advance_confirmed_by": me}


def test_the_advance_is_confirmed_in_the_senders_own_name(world, act_as, admin_engine):
    p = party(world)
    draft = completion_draft(act_as, p, value="10,000.00", advance="12", tasks=("3,000.00", "3,000.00", "2,800.00"))
    before = state(admin_engine, world.org_a)
    me = world.owner.id
    refused(
        lambda s: run(
            s,
            "update engagements set status = 'awaiting_acceptance', sent_at = now(), sent_by = :me,"
            " advance_confirmed_by = :admin where id = :e",
            e=draft,
            me=me,
            admin=world.admin.id,
        ),
        act_as(me, world.org_a),
        INSUFFICIENT_PRIVILEGE,
        "the advance is confirmed by whoever sends the work request, in their own name",
    )
    unconfirmed = "update engagements set status = 'awaiting_acceptance', sent_at = now(), sent_by = :me where id = :e"
    refused(
        lambda s: run(s, unconfirmed, e=draft, me=me),
        act_as(me, world.org_a),
        INSUFFICIENT_PRIVILEGE,
        "the advance is confirmed by whoever sends the work request, in their own name",
    )
    refused_as_owner_role(
        admin_engine,
        lambda c: run(c, unconfirmed, e=draft, me=me),
        CHECK_VIOLATION,
        "the advance of 120000 is confirmed when the work request is sent",
    )
    assert state(admin_engine, world.org_a) == before


def test_a_draft_may_switch_to_completion_billing_with_its_value_and_advance(world, act_as, admin_engine):
    """Since revision 0030 the billing mode is a draft's term (the terms page writes it); the advance must be the
    value's at its rate, and the organization must allow advances."""
    engagement_id = completion_draft(act_as, party(world))  # (a completion draft, switched back and forth below)
    me = world.admin.id
    to_milestone = (
        "update engagements set billing_mode = 'milestone', contract_value_minor = null, advance_bps = 0,"
        " advance_minor = 0 where id = :e"
    )
    accepted(lambda s: run(s, to_milestone, e=engagement_id), act_as(me, world.org_a))
    to_completion = (
        "update engagements set billing_mode = 'completion', contract_value_minor = 500000, advance_bps = 1000,"
        " advance_minor = :advance where id = :e"
    )
    before = state(admin_engine, world.org_a)
    refused(
        lambda s: run(s, to_completion, e=engagement_id, advance=49_999),
        act_as(me, world.org_a),
        CHECK_VIOLATION,
        "the advance is round_half_up(contract value × rate / 10000): 50000",
    )
    assert state(admin_engine, world.org_a) == before
    accepted(lambda s: run(s, to_completion, e=engagement_id, advance=50_000), act_as(me, world.org_a))
    (row,) = owner_query(
        admin_engine, "select billing_mode, advance_minor from engagements where id = :e", e=engagement_id
    )
    assert row == {"billing_mode": "completion", "advance_minor": 50_000}


# --- the billed tasks are kept --------------------------------------------------------------------------------------


def test_the_tasks_an_invoice_billed_are_never_deleted_or_changed(world, act_as, admin_engine, two_approved):
    raise_invoice(act_as, party(world), two_approved.engagement, two_approved.tasks[:2])
    before = state(admin_engine, world.org_a)
    where = "where engagement_id = :e"
    for who in (world.contractor_x_user, world.owner, world.admin):
        for sql in (f"delete from invoice_tasks {where}", f"update invoice_tasks set voided_at = now() {where}"):
            refused(
                lambda s, sql=sql: run(s, sql, e=two_approved.engagement),
                act_as(who.id, world.org_a),
                INSUFFICIENT_PRIVILEGE,
                "permission denied for table invoice_tasks",
            )
    refused_as_owner_role(
        admin_engine,
        lambda c: run(c, f"delete from invoice_tasks {where}", e=two_approved.engagement),
        INSUFFICIENT_PRIVILEGE,
        "the tasks an invoice billed are kept",
    )
    for change in ("voided_at = now()", "amount_minor = amount_minor + 1", "milestone_id = milestone_id"):
        refused_as_owner_role(
            admin_engine,
            lambda c, change=change: run(c, f"update invoice_tasks set {change} {where}", e=two_approved.engagement),
            CHECK_VIOLATION,
            "a billed task is released only with its voided invoice",
        )
    assert state(admin_engine, world.org_a) == before


def test_a_billed_task_is_written_only_with_its_invoice(world, act_as, admin_engine, two_approved):
    """An invoice's tasks are named in its own transaction: none is added to an invoice afterwards."""
    raised = raise_invoice(act_as, party(world), two_approved.engagement, two_approved.tasks[:1])
    before = state(admin_engine, world.org_a)
    me = world.contractor_x_user.id
    words = "an invoice's tasks are written with it, in the same transaction"
    refused(lambda s: bill(s, raised["id"], two_approved.tasks[1]), act_as(me, world.org_a), CHECK_VIOLATION, words)
    refused_as_owner_role(admin_engine, lambda c: bill(c, raised["id"], two_approved.tasks[1]), CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before


def test_a_change_order_moves_the_contract_value_only_with_the_tasks(world, act_as, admin_engine):
    """The value may change in a change order's transaction, but the tasks must still share it less the advance
    (completion_change_checked, at commit)."""
    engagement_id = build(act_as, admin_engine, world).engagement
    before = state(admin_engine, world.org_a)

    def value_alone(s):
        run(
            s,
            "insert into change_orders (org_id, contractor_id, engagement_id, number, reason, contract_value_before,"
            " contract_value_after, created_by)"
            " select org_id, contractor_id, id, 1, 'More work', :before, :after, :me from engagements where id = :e",
            e=engagement_id,
            before=VALUE,
            after=VALUE + 100_000,
            me=world.owner.id,
        )
        run(s, "update engagements set contract_value_minor = :v where id = :e", e=engagement_id, v=VALUE + 100_000)

    words = "the tasks add up to 880000 but must add up to the contract value less the advance, 980000"
    refused(value_alone, act_as(world.owner.id, world.org_a), CHECK_VIOLATION, words)
    refused_as_owner_role(admin_engine, value_alone, CHECK_VIOLATION, words)
    assert state(admin_engine, world.org_a) == before
