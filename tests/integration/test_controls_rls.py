"""Row-level security of the payment controls' tables (issue 18; DESIGN.md section 5), with raw SQL as the web role
signed in as each person, and as the worker role acting for each organization.

Staff (admins, project owners, finance) read every control of their own organization; a contractor's user reads
none; nobody reads another organization's. Admins write policies (their steps with them, never afterwards); only
the database writes an invoice's approval steps, and a staff member decides one only in their own name; finance
and admins place and release holds in their own name; an approver delegates in their own name (an admin for
anyone); nobody deletes a control. The worker reads what its jobs read (steps waiting, delegations, holds) and
stamps reminders, in its organization only. The rows are built through the services; the owner role is the
ground truth, and after every refusal both organizations' controls are exactly as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from kit.engagements import owner_query, sign_in
from kit.money import active_engagement, approve, party
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice.domain.roles import Role
from backoffice.services import approvals, bootstrap, holds
from backoffice.services.approvals import PolicyInput, StepInput

# Each table and what names a row of it.
TABLES = {
    "approval_policies": "id",
    "approval_policy_steps": "policy_id, step",
    "invoice_approvals": "invoice_id, step",
    "approval_delegations": "id",
    "holds": "id",
}
STAFF = ["admin", "owner", "finance", "admin_b", "finance_b"]
CONTRACTORS = ["contractor_x_user", "contractor_y_user", "contractor_z_user"]
EVERYONE = STAFF + CONTRACTORS
ORG_B_PEOPLE = ("admin_b", "finance_b", "contractor_z_user")


@dataclass(frozen=True)
class Controls:
    world: object
    finance_b: object  # org B's finance member (the world has none): org B's approvers delegate too
    policy_a: uuid.UUID  # $10,000.00 and up: step 1 anyone in finance, step 2 Ada Admin
    waiting: dict  # org A's invoice with both steps waiting
    halfway: dict  # org A's invoice whose step 1 finance approved
    approved: dict  # org A's invoice below the policy, held by finance
    unheld: dict  # org A's invoice below the policy, not held
    finance_delegates: uuid.UUID  # Fiona (finance) -> Ada (admin)
    owner_delegates: uuid.UUID  # Omar (owner) -> Fiona
    invoice_hold: uuid.UUID  # Fiona's, on ``approved``
    contractor_hold: uuid.UUID  # Ada's, on contractor Y
    policy_b: uuid.UUID
    waiting_b: dict


def person(c: Controls, who: str):
    return c.finance_b if who == "finance_b" else getattr(c.world, who)


def org_of(c: Controls, who: str):
    return c.world.org_b if who in ORG_B_PEOPLE else c.world.org_a


@pytest.fixture
def controls(world, act_as, admin_engine, password_hash) -> Controls:
    with Session(admin_engine) as session:
        finance_b = bootstrap.create_user(
            session,
            email=f"financeb-{world.suffix}@example.com",
            name="Felix B",
            password_hash=password_hash,
            org_id=world.org_b,
            role=Role.FINANCE,
        )
        session.commit()
        finance_b = type(world.admin)(finance_b.id, finance_b.email, finance_b.name)
    today = datetime.now(UTC).date()
    week = (today.isoformat(), (today + timedelta(days=7)).isoformat())

    session, admin = sign_in(act_as, world.admin, world.org_a)
    steps = [StepInput(role="finance"), StepInput(people=[str(world.admin.id)])]
    policy_a = approvals.create_policy(session, admin, PolicyInput("Large", "USD", "10,000.00", steps)).id
    p = party(world)
    _, milestones = active_engagement(act_as, admin_engine, p, ("12,800.00", "15,000.00", "1,000.00", "2,000.00"))
    waiting, halfway, approved, unheld = (approve(act_as, admin_engine, p, m) for m in milestones)
    session, fiona = sign_in(act_as, world.finance, world.org_a)
    approvals.decide_step(session, fiona, halfway["id"], "approve")
    session, fiona = sign_in(act_as, world.finance, world.org_a)
    finance_delegates = approvals.delegate(session, fiona, str(world.admin.id), *week).id
    session, fiona = sign_in(act_as, world.finance, world.org_a)
    invoice_hold = holds.hold_invoice(session, fiona, approved["id"], "Lien waiver missing").id
    session, omar = sign_in(act_as, world.owner, world.org_a)
    owner_delegates = approvals.delegate(session, omar, str(world.finance.id), *week).id
    session, admin = sign_in(act_as, world.admin, world.org_a)
    contractor_hold = holds.hold_contractor(session, admin, world.contractor_y, "Bank details being verified").id

    session, bea = sign_in(act_as, world.admin_b, world.org_b)
    policy_b = approvals.create_policy(
        session, bea, PolicyInput("Any", "EUR", "100.00", [StepInput(role="finance")])
    ).id
    z = party(world, "z")
    _, (m_b, m_b2) = active_engagement(act_as, admin_engine, z, ("500.00", "50.00"))
    waiting_b = approve(act_as, admin_engine, z, m_b)
    approved_b = approve(act_as, admin_engine, z, m_b2)
    session, bea = sign_in(act_as, world.admin_b, world.org_b)
    approvals.delegate(session, bea, str(finance_b.id), *week)
    session, bea = sign_in(act_as, world.admin_b, world.org_b)
    holds.hold_invoice(session, bea, approved_b["id"], "Awaiting the signed SOW")
    act_as(None, None)
    assert (waiting["status"], halfway["status"], approved["status"], waiting_b["status"]) == (
        "pending_approval",
        "pending_approval",
        "approved",
        "pending_approval",
    )
    return Controls(
        world,
        finance_b,
        policy_a,
        waiting,
        halfway,
        approved,
        unheld,
        finance_delegates,
        owner_delegates,
        invoice_hold,
        contractor_hold,
        policy_b,
        waiting_b,
    )


def truth(admin_engine, table: str, org_id) -> set:
    with admin_engine.connect() as conn:
        return set(conn.execute(text(f"select {TABLES[table]} from {table} where org_id = :o"), {"o": org_id}).all())


def state(admin_engine, c: Controls) -> dict:
    """Every control row of both organizations, and their invoices' statuses, as the owner role reads them."""
    orgs = {"a": c.world.org_a, "b": c.world.org_b}
    found = {
        table: owner_query(admin_engine, f"select * from {table} where org_id in (:a, :b) order by {key}", **orgs)
        for table, key in TABLES.items()
    }
    found["invoices"] = owner_query(
        admin_engine, "select id, status from invoices where org_id in (:a, :b) order by id", **orgs
    )
    return found


def visible(session, table: str) -> set:
    rows = set(session.execute(text(f"select {TABLES[table]} from {table}")).all())
    session.rollback()
    return rows


def refused(session, sql: str, words: str = "", **params) -> str:
    """Run ``sql`` expecting the database to refuse it (a grant, a policy or a guard), with ``words`` in its message."""
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
        session.flush()
    session.rollback()
    message = str(exc.value.orig)
    assert words in message, message
    return message


def touches_nothing(session, sql: str, **params) -> None:
    """Run ``sql`` expecting it to find no row it may change (hidden from this writer), and commit: whatever it did
    would now be kept."""
    assert session.execute(text(sql), params).rowcount == 0
    session.commit()


# --- reading -----------------------------------------------------------------------------------------------------


def test_staff_read_every_control_of_their_organization_and_a_contractor_none(controls, act_as, admin_engine):
    c = controls
    for table in TABLES:
        for who in EVERYONE:
            rows = visible(act_as(person(c, who).id, org_of(c, who)), table)
            if who in CONTRACTORS:
                assert rows == set(), (table, who)
            else:
                assert rows == truth(admin_engine, table, org_of(c, who)), (table, who)
                assert rows, f"the fixture has {table} rows {who} should see"


def test_nobody_reads_another_organizations_controls(controls, act_as):
    c = controls
    for table in TABLES:
        for who in EVERYONE:
            other = c.world.org_a if org_of(c, who) == c.world.org_b else c.world.org_b
            assert visible(act_as(person(c, who).id, other), table) == set(), (table, who)
        # Nor by naming the rows outright.
        session = act_as(c.world.admin_b.id, c.world.org_b)
        n = session.execute(text(f"select count(*) from {table} where org_id = :a"), {"a": c.world.org_a}).scalar_one()
        session.rollback()
        assert n == 0, table


@pytest.mark.parametrize("org", ["a", "b"])
def test_the_worker_reads_steps_delegations_and_holds_of_its_organization_only(controls, as_worker, admin_engine, org):
    org_id = controls.world.org_a if org == "a" else controls.world.org_b
    session = as_worker(org_id)
    for table in ("invoice_approvals", "approval_delegations", "holds"):
        assert visible(session, table) == truth(admin_engine, table, org_id), table
    # The jobs never read the policies themselves: the worker has no grant on them.
    for table in ("approval_policies", "approval_policy_steps"):
        refused(session, f"select * from {table}", "permission denied")


# --- writing: inserts ----------------------------------------------------------------------------------------------

INSERTS = {
    "approval_policies": (
        "insert into approval_policies (org_id, id, name, currency, min_amount_minor, created_by)"
        " values (:org, :new, 'Planted', 'USD', 100, :me)"
    ),
    # A step for an existing policy (a step is written only with its policy, in the same transaction).
    "approval_policy_steps": (
        "insert into approval_policy_steps (org_id, policy_id, step, approver_role) values (:org, :policy, 3, 'owner')"
    ),
    "invoice_approvals": (
        "insert into invoice_approvals (org_id, invoice_id, step, policy_id, approver_role)"
        " values (:org, :invoice, 1, :policy, 'owner')"
    ),
    "approval_delegations": (
        "insert into approval_delegations (org_id, user_id, delegate_id, starts_on, ends_on)"
        " values (:org, :me, :delegate, current_date, current_date + 7)"
    ),
    "holds": "insert into holds (org_id, invoice_id, reason, held_by) values (:org, :invoice, 'Planted', :me)",
}


def insert_params(c: Controls, me, org=None) -> dict:
    w = c.world
    return {
        "org": org or w.org_a,
        "new": uuid.uuid4(),
        "policy": c.policy_a,
        "invoice": c.unheld["id"],
        "me": me,
        "delegate": w.finance.id if me != w.finance.id else w.owner.id,
    }


# Who may insert what in their own organization, in their own name (the controls below check each is accepted).
INSERTERS = {
    "approval_policies": {"admin", "admin_b"},
    "approval_policy_steps": set(),  # only with a policy of the same transaction
    "invoice_approvals": set(),  # only the database
    "approval_delegations": {"admin", "owner", "finance", "admin_b", "finance_b"},
    "holds": {"admin", "finance", "admin_b", "finance_b"},
}


@pytest.mark.parametrize("table", TABLES)
def test_only_the_roles_that_write_a_control_may_insert_one(controls, act_as, admin_engine, table):
    c = controls
    before = state(admin_engine, c)
    for who in ("owner", "finance", *CONTRACTORS[:2]):
        if who in INSERTERS[table]:
            continue
        me = person(c, who).id
        refused(act_as(me, c.world.org_a), INSERTS[table], **insert_params(c, me))
    assert state(admin_engine, c) == before


@pytest.mark.parametrize("table", ["invoice_approvals", "approval_policy_steps"])
def test_nobody_inserts_an_invoices_approval_step_or_a_step_of_a_written_policy(controls, act_as, admin_engine, table):
    c = controls
    before = state(admin_engine, c)
    for who in ("admin", "owner", "finance"):
        me = person(c, who).id
        words = "permission denied" if table == "invoice_approvals" else "written with the policy"
        refused(act_as(me, c.world.org_a), INSERTS[table], words, **insert_params(c, me))
    assert state(admin_engine, c) == before


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("acting_in", ["own org", "org A"])
def test_another_organizations_people_insert_no_control_into_org_a(controls, act_as, admin_engine, table, acting_in):
    c = controls
    before = state(admin_engine, c)
    for who in ORG_B_PEOPLE:
        me = person(c, who).id
        session = act_as(me, c.world.org_b if acting_in == "own org" else c.world.org_a)
        refused(session, INSERTS[table], **insert_params(c, me))
    assert state(admin_engine, c) == before


def test_the_worker_inserts_no_control(controls, as_worker, admin_engine):
    c = controls
    before = state(admin_engine, c)
    for org in (c.world.org_a, c.world.org_b):
        session = as_worker(org)
        for sql in INSERTS.values():
            refused(session, sql, "permission denied", **insert_params(c, c.world.admin.id, org=c.world.org_a))
    assert state(admin_engine, c) == before


def test_another_organizations_people_learn_nothing_of_org_as_staff_from_a_refused_delegation(controls, act_as):
    """Which of org A's people are its staff is org A's to know: a delegation naming org A, by someone of org B,
    is refused in the same words whoever it names."""
    c, w = controls, controls.world
    for who in ORG_B_PEOPLE:
        me = person(c, who)
        for acting_in in (w.org_b, w.org_a):
            said = {
                refused(act_as(me.id, acting_in), INSERTS["approval_delegations"], **params).splitlines()[0]
                for params in (
                    insert_params(c, w.finance.id) | {"delegate": w.admin.id},  # both staff of org A
                    insert_params(c, w.contractor_x_user.id) | {"delegate": w.admin.id},  # not staff
                    insert_params(c, w.outsider.id) | {"delegate": w.admin.id},  # nobody of org A
                )
            }
            assert len(said) == 1, (who, said)


def test_an_admin_writes_a_policy_with_its_steps_in_one_transaction(controls, act_as, admin_engine):
    """The control for the policy refusals: the same insert by an admin, with its step, is accepted."""
    c, w = controls, controls.world
    params = insert_params(c, w.admin.id)
    session = act_as(w.admin.id, w.org_a)
    session.execute(text(INSERTS["approval_policies"]), params)
    session.execute(
        text("insert into approval_policy_steps (org_id, policy_id, step, approver_ids) values (:org, :new, 1, :ids)"),
        params | {"ids": [w.finance.id]},
    )
    session.commit()
    (row,) = owner_query(admin_engine, "select * from approval_policy_steps where policy_id = :p", p=params["new"])
    assert (row["step"], row["approver_ids"]) == (1, [w.finance.id])


def test_a_policy_without_steps_or_in_someone_elses_name_is_refused(controls, act_as, admin_engine):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    session = act_as(w.admin.id, w.org_a)
    session.execute(text(INSERTS["approval_policies"]), insert_params(c, w.admin.id))
    with pytest.raises(DBAPIError, match="steps 1 to n"):
        session.commit()
    session.rollback()
    params = insert_params(c, w.finance.id)  # created_by Fiona, written by Ada
    refused(act_as(w.admin.id, w.org_a), INSERTS["approval_policies"], "in the name of the admin", **params)
    # A step naming someone who is not staff of the organization: a contractor's user, another org's admin.
    for named in (w.contractor_x_user.id, w.admin_b.id):
        session = act_as(w.admin.id, w.org_a)
        params = insert_params(c, w.admin.id)
        session.execute(text(INSERTS["approval_policies"]), params)
        refused(
            session,
            "insert into approval_policy_steps (org_id, policy_id, step, approver_ids) values (:org, :new, 1, :ids)",
            "names admins, project owners or finance members of this organization",
            **params | {"ids": [named]},
        )
    assert state(admin_engine, c) == before


@pytest.mark.parametrize("who", ["owner", "finance"])
def test_an_approver_names_a_stand_in_in_their_own_name_and_only_an_admin_for_someone_else(
    controls, act_as, admin_engine, who
):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    me = person(c, who).id
    someone_else = w.finance.id if who == "owner" else w.owner.id
    for user_id in (someone_else, w.admin.id):
        refused(
            act_as(me, w.org_a),
            INSERTS["approval_delegations"],
            "row-level security",
            **insert_params(c, me) | {"me": user_id, "delegate": me},
        )
    assert state(admin_engine, c) == before
    session = act_as(me, w.org_a)
    session.execute(text(INSERTS["approval_delegations"]), insert_params(c, me) | {"delegate": w.admin.id})
    session.commit()
    session = act_as(w.admin.id, w.org_a)  # an admin sets one up for them
    session.execute(text(INSERTS["approval_delegations"]), insert_params(c, me) | {"delegate": someone_else})
    session.commit()
    mine = owner_query(
        admin_engine,
        "select delegate_id from approval_delegations where user_id = :u and id <> all(:old)",
        u=me,
        old=[c.finance_delegates, c.owner_delegates],
    )
    assert {r["delegate_id"] for r in mine} == {w.admin.id, someone_else}


def test_a_stand_in_is_staff_of_the_organization(controls, act_as, admin_engine):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    for delegate in (w.contractor_x_user.id, w.admin_b.id):
        refused(
            act_as(w.finance.id, w.org_a),
            INSERTS["approval_delegations"],
            "an approver delegates to another admin",
            **insert_params(c, w.finance.id) | {"delegate": delegate},
        )
    assert state(admin_engine, c) == before


def test_a_hold_is_placed_by_finance_or_an_admin_in_their_own_name(controls, act_as, admin_engine):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    refused(act_as(w.owner.id, w.org_a), INSERTS["holds"], "by finance or an admin", **insert_params(c, w.owner.id))
    refused(
        act_as(w.owner.id, w.org_a),
        "insert into holds (org_id, contractor_id, reason, held_by) values (:org, :c, 'Planted', :me)",
        "by finance or an admin",
        org=w.org_a,
        c=w.contractor_x,
        me=w.owner.id,
    )
    refused(act_as(w.admin.id, w.org_a), INSERTS["holds"], "in the name of whoever", **insert_params(c, w.finance.id))
    # A hold placed already released.
    refused(
        act_as(w.finance.id, w.org_a),
        "insert into holds (org_id, invoice_id, reason, held_by, released_by, released_at, release_note)"
        " values (:org, :invoice, 'Planted', :me, :me, now(), 'x')",
        "placed live",
        **insert_params(c, w.finance.id),
    )
    assert state(admin_engine, c) == before
    session = act_as(w.finance.id, w.org_a)
    session.execute(text(INSERTS["holds"]), insert_params(c, w.finance.id))
    session.commit()
    (row,) = owner_query(admin_engine, "select * from holds where invoice_id = :i", i=c.unheld["id"])
    assert (row["held_by"], row["reason"], row["released_at"]) == (w.finance.id, "Planted", None)


# --- writing: updates ---------------------------------------------------------------------------------------------

DECIDE = (
    "update invoice_approvals set status = 'approved', decided_by = :by, on_behalf_of = :for"
    " where invoice_id = :invoice and step = :step"
)


def test_a_step_is_decided_only_in_the_deciders_own_name(controls, act_as, admin_engine):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    step1 = {"invoice": c.waiting["id"], "step": 1, "for": None}  # anyone in finance
    # Ada writes that Fiona approved it.
    refused(act_as(w.admin.id, w.org_a), DECIDE, "in their own name", **step1 | {"by": w.finance.id})
    # Omar (not finance, no stand-in for finance) approves it himself, or says he does it for Fiona.
    refused(act_as(w.owner.id, w.org_a), DECIDE, "not yours to approve", **step1 | {"by": w.owner.id})
    refused(
        act_as(w.owner.id, w.org_a),
        DECIDE,
        "not standing in today",
        **step1 | {"by": w.owner.id, "for": w.finance.id},
    )
    # Ada decides her step 2 before step 1; Omar decides Ada's step 2 once step 1 is approved.
    refused(
        act_as(w.admin.id, w.org_a),
        DECIDE,
        "decided in order",
        **{"invoice": c.waiting["id"], "step": 2, "for": None, "by": w.admin.id},
    )
    refused(
        act_as(w.owner.id, w.org_a),
        DECIDE,
        "not yours to approve",
        **{"invoice": c.halfway["id"], "step": 2, "for": None, "by": w.owner.id},
    )
    # Fiona approves step 1 of an invoice a second time.
    refused(
        act_as(w.finance.id, w.org_a),
        DECIDE,
        "decided once",
        **{"invoice": c.halfway["id"], "step": 1, "for": None, "by": w.finance.id},
    )
    assert state(admin_engine, c) == before
    # The control: Fiona approves step 1 in her own name.
    session = act_as(w.finance.id, w.org_a)
    assert session.execute(text(DECIDE), step1 | {"by": w.finance.id}).rowcount == 1
    session.commit()
    (row,) = owner_query(
        admin_engine, "select * from invoice_approvals where invoice_id = :i and step = 1", i=c.waiting["id"]
    )
    assert (row["status"], row["decided_by"], row["on_behalf_of"]) == ("approved", w.finance.id, None)


def test_a_stand_in_decides_for_the_person_who_named_them(controls, act_as, admin_engine):
    """Ada stands in for Fiona (the fixture's delegation): she may decide Fiona's finance step, for Fiona."""
    c, w = controls, controls.world
    session = act_as(w.admin.id, w.org_a)
    params = {"invoice": c.waiting["id"], "step": 1, "by": w.admin.id, "for": w.finance.id}
    assert session.execute(text(DECIDE), params).rowcount == 1
    session.commit()
    (row,) = owner_query(
        admin_engine, "select * from invoice_approvals where invoice_id = :i and step = 1", i=c.waiting["id"]
    )
    assert (row["decided_by"], row["on_behalf_of"]) == (w.admin.id, w.finance.id)


UPDATES = {
    # table -> (a change the role that writes the table may make, in the name :me)
    "approval_policies": "update approval_policies set archived_at = now(), archived_by = :me",
    "invoice_approvals": "update invoice_approvals set status = 'approved', decided_by = :me",
    "approval_delegations": "update approval_delegations set revoked_at = now()",
    "holds": "update holds set released_at = now(), released_by = :me, release_note = 'Planted'",
}


@pytest.mark.parametrize("table", UPDATES)
def test_contractors_and_other_organizations_change_no_control(controls, act_as, admin_engine, table):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    for who in EVERYONE:
        # Org A's rows: by contractors and org B's people naming either organization, by org A's staff naming org B.
        org_a_staff = who in STAFF and who not in ORG_B_PEOPLE
        for org in (w.org_b,) if org_a_staff else (w.org_a, w.org_b):
            touches_nothing(
                act_as(person(c, who).id, org), UPDATES[table] + " where org_id = :a", me=person(c, who).id, a=w.org_a
            )
    assert state(admin_engine, c) == before


def test_staff_change_only_the_controls_their_role_writes(controls, act_as, admin_engine):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    # Omar and Fiona switch no policy off; Omar releases no hold; nobody ends someone else's delegation.
    for who, table in (("owner", "approval_policies"), ("finance", "approval_policies"), ("owner", "holds")):
        touches_nothing(act_as(person(c, who).id, w.org_a), UPDATES[table], me=person(c, who).id)
    touches_nothing(
        act_as(w.finance.id, w.org_a), UPDATES["approval_delegations"] + " where id = :d", d=c.owner_delegates
    )
    touches_nothing(
        act_as(w.owner.id, w.org_a), UPDATES["approval_delegations"] + " where id = :d", d=c.finance_delegates
    )
    # Ada switches a policy off in Fiona's name, or releases Fiona's hold in Fiona's name.
    refused(
        act_as(w.admin.id, w.org_a),
        UPDATES["approval_policies"] + " where id = :p",
        "in their own name",
        me=w.finance.id,
        p=c.policy_a,
    )
    refused(
        act_as(w.admin.id, w.org_a),
        UPDATES["holds"] + " where id = :h",
        "in the name of whoever releases it",
        me=w.finance.id,
        h=c.invoice_hold,
    )
    assert state(admin_engine, c) == before


UNGRANTED = {
    "approval_policies": "update approval_policies set min_amount_minor = 1",
    "approval_policy_steps": "update approval_policy_steps set approver_role = 'owner'",
    "invoice approvers": "update invoice_approvals set approver_role = 'owner', approver_ids = '{}'",
    "invoice reminders": "update invoice_approvals set reminded_at = now()",
    "approval_delegations": "update approval_delegations set ends_on = ends_on + 30",
    "holds": "update holds set reason = 'Changed'",
}


@pytest.mark.parametrize("what", UNGRANTED)
def test_nobody_on_the_web_changes_what_a_control_says(controls, act_as, admin_engine, what):
    c = controls
    before = state(admin_engine, c)
    for who in EVERYONE:
        refused(act_as(person(c, who).id, org_of(c, who)), UNGRANTED[what], "permission denied")
    assert state(admin_engine, c) == before


@pytest.mark.parametrize("table", TABLES)
def test_nobody_deletes_a_control(controls, act_as, as_worker, admin_engine, table):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    for who in EVERYONE:
        refused(act_as(person(c, who).id, org_of(c, who)), f"delete from {table}", "permission denied")
    for org in (w.org_a, w.org_b):
        refused(as_worker(org), f"delete from {table}", "permission denied")
    assert state(admin_engine, c) == before


def test_the_worker_stamps_reminders_of_its_organization_and_decides_nothing(controls, as_worker, admin_engine):
    c, w = controls, controls.world
    before = state(admin_engine, c)
    for org in (w.org_a, w.org_b):
        session = as_worker(org)
        refused(
            session,
            "update invoice_approvals set status = 'approved', decided_by = :u",
            "permission denied",
            u=w.admin.id,
        )
        for sql in (
            "update holds set released_at = now()",
            "update approval_delegations set revoked_at = now()",
            "update approval_policies set archived_at = now()",
        ):
            refused(session, sql, "permission denied")
    assert state(admin_engine, c) == before
    session = as_worker(w.org_b)
    assert (
        session.execute(
            text("update invoice_approvals set reminded_at = now() where org_id = :a"), {"a": w.org_a}
        ).rowcount
        == 0
    )
    session.commit()
    assert state(admin_engine, c) == before
    session = as_worker(w.org_a)
    assert (
        session.execute(
            text("update invoice_approvals set reminded_at = now() where invoice_id = :i and step = 1"),
            {"i": c.waiting["id"]},
        ).rowcount
        == 1
    )
    session.commit()
    (row,) = owner_query(
        admin_engine, "select * from invoice_approvals where invoice_id = :i and step = 1", i=c.waiting["id"]
    )
    assert (row["status"], row["reminded_at"] is not None) == ("waiting", True)
