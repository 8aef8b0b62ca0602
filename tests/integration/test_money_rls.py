"""Row-level security for invoices, payments, AP export batches, their file chunks and the ledger, with
raw SQL as the app role (DESIGN.md section 5).

The rows are built the way the app builds them (approvals, exports, payments through the services);
every statement judged here is plain ``text()`` SQL run by the app role, so only the database stands
between a tenant, or a contractor, and another's money. The owner role is the ground truth: after each
refusal, both organizations' money rows (and counters) are exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kit.engagements import owner_query
from kit.money import approved_invoices, export, money_state, numbered, party, pay, set_org, today
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

TABLES = ["invoices", "payments", "ap_export_batches", "ap_export_chunks", "ledger_entries"]
KEY = {"ap_export_chunks": "batch_id"}  # chunks have no id of their own
INSUFFICIENT_PRIVILEGE = "42501"
EVERYONE = ["owner", "admin", "finance", "contractor_x_user", "contractor_y_user", "admin_b", "contractor_z_user"]
CONTRACTORS = ["contractor_x_user", "contractor_y_user"]

# What each person sees of their own organization: all of it, their contractor's own rows, or nothing.
STAFF_SEES = {
    "invoices": "org",
    "payments": "org",
    "ap_export_batches": "org",
    "ap_export_chunks": "org",
    "ledger_entries": "org",
}
OWNER_SEES = {
    "invoices": "org",
    "payments": "org",
    "ap_export_batches": None,
    "ap_export_chunks": None,
    "ledger_entries": None,
}
CONTRACTOR_SEES = {
    "invoices": "own",
    "payments": "own",
    "ap_export_batches": None,
    "ap_export_chunks": None,
    "ledger_entries": None,
}
SEES = {
    "admin": STAFF_SEES,
    "finance": STAFF_SEES,
    "admin_b": STAFF_SEES,
    "owner": OWNER_SEES,
    "contractor_x_user": CONTRACTOR_SEES,
    "contractor_y_user": CONTRACTOR_SEES,
    "contractor_z_user": CONTRACTOR_SEES,
}


@dataclass(frozen=True)
class Money:
    x: list[dict]  # contractor X's invoices: [0] paid (in batch), [1] exported (same batch), [2] approved
    y: list[dict]  # contractor Y's: [0] paid
    z: list[dict]  # contractor Z's (org B): [0] paid (in batch), [1] exported
    batch_a: object  # the id of org A's live batch (X's first two invoices)
    batch_b: object


@pytest.fixture
def money(world, act_as, admin_engine) -> Money:
    _, x = approved_invoices(act_as, admin_engine, party(world, "x"), ("100.00", "200.00", "300.00"))
    _, y = approved_invoices(act_as, admin_engine, party(world, "y"), ("400.00",))
    batch_a = export(act_as, world.finance, world.org_a, [x[0]["id"], x[1]["id"]]).id
    pay(act_as, world.finance, world.org_a, x[0]["id"])
    pay(act_as, world.finance, world.org_a, y[0]["id"])
    set_org(admin_engine, world.org_b, segregation_of_duties=False)  # org B has no finance: its admin approves and pays
    _, z = approved_invoices(act_as, admin_engine, party(world, "z"), ("500.00", "600.00"))
    batch_b = export(act_as, world.admin_b, world.org_b, [z[0]["id"], z[1]["id"]]).id
    pay(act_as, world.admin_b, world.org_b, z[0]["id"])
    return Money(x, y, z, batch_a, batch_b)


def org_of(world, who: str):
    return world.org_b if who in ("admin_b", "contractor_z_user") else world.org_a


def contractor_of(world, who: str):
    return {
        "contractor_x_user": world.contractor_x,
        "contractor_y_user": world.contractor_y,
        "contractor_z_user": world.contractor_z,
    }.get(who)


def truth(admin_engine, table: str, where: str, **params) -> set:
    return {
        r[KEY.get(table, "id")] for r in owner_query(admin_engine, f"select * from {table} where {where}", **params)
    }


def visible(session, table: str) -> set:
    rows = set(session.execute(text(f"select {KEY.get(table, 'id')} from {table}")).scalars())
    session.rollback()
    return rows


def expected(admin_engine, world, who: str, table: str) -> set:
    scope = SEES[who][table]
    if scope == "org":
        return truth(admin_engine, table, "org_id = :o", o=org_of(world, who))
    if scope == "own":
        return truth(admin_engine, table, "contractor_id = :c", c=contractor_of(world, who))
    return set()


def refused(session, sql: str, params: dict) -> str:
    """Run ``sql`` expecting the database to refuse it for want of privilege (a grant, a policy or a guard)."""
    with pytest.raises(DBAPIError) as exc:
        session.execute(text(sql), params)
        session.flush()
    session.rollback()
    assert exc.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, str(exc.value.orig)
    return str(exc.value.orig)


def touches_nothing(session, sql: str, params: dict) -> None:
    """Run ``sql`` expecting it to find no row it may change (the rows are hidden from this writer), and
    commit: whatever it did would now be kept."""
    assert session.execute(text(sql), params).rowcount == 0
    session.commit()


# --- reading --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_each_person_sees_exactly_the_money_rows_their_role_allows(world, money, act_as, admin_engine, table):
    for who in EVERYONE:
        rows = visible(act_as(getattr(world, who).id, org_of(world, who)), table)
        assert rows == expected(admin_engine, world, who, table), who
        if SEES[who][table]:
            assert rows, f"the seeded world has rows {who} should see"
        other_org = world.org_a if org_of(world, who) == world.org_b else world.org_b
        assert rows.isdisjoint(truth(admin_engine, table, "org_id = :o", o=other_org)), who


@pytest.mark.parametrize("table", TABLES)
def test_another_orgs_users_naming_org_a_see_none_of_its_money(world, money, act_as, table):
    for who in ("admin_b", "contractor_z_user"):
        assert visible(act_as(getattr(world, who).id, world.org_a), table) == set(), who
    assert visible(act_as(world.admin.id, world.org_b), table) == set()


@pytest.mark.parametrize("table", ["invoices", "payments"])
def test_a_contractor_cannot_read_another_contractors_invoice_or_payment_by_id(
    world, money, act_as, admin_engine, table
):
    column = "id" if table == "invoices" else "invoice_id"
    s = act_as(world.contractor_y_user.id, world.org_a)
    assert (
        s.execute(text(f"select count(*) from {table} where {column} = :i"), {"i": money.x[0]["id"]}).scalar_one() == 0
    )
    s = act_as(world.contractor_x_user.id, world.org_a)
    assert (
        s.execute(text(f"select count(*) from {table} where {column} = :i"), {"i": money.x[0]["id"]}).scalar_one() == 1
    )


def test_a_contractor_reads_its_paid_invoice_with_its_payment(world, money, act_as):
    s = act_as(world.contractor_x_user.id, world.org_a)
    row = s.execute(
        text(
            "select i.status, i.net_minor, p.amount_minor, p.reference from invoices i"
            " join payments p on p.invoice_id = i.id where i.id = :i"
        ),
        {"i": money.x[0]["id"]},
    ).one()
    assert tuple(row) == ("paid", 9_000, 9_000, "ACH 0001")


# --- writing --------------------------------------------------------------------------------------------

INSERTS = {
    # a release of X's retainage, early with a reason: what the engagement's owner may write
    "invoices": (
        "insert into invoices (org_id, contractor_id, engagement_id, kind, description, currency, gross_minor,"
        " retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor, total_minor, authorized_by, release_reason)"
        " values (:org, :c, :e, 'retainage_release', 'Planted release', 'USD', 6000, 0, 0, 6000, 0, 0, 6000, :me,"
        " 'Planted.')"
    ),
    "payments": (
        "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference, method,"
        " source, recorded_by)"
        " values (:org, :c, :approved, :net, 'USD', :today, 'Planted', 'ach', 'manual', :me)"
    ),
    "ap_export_batches": (
        "insert into ap_export_batches (org_id, number, currency, preset, layout, selection, created_by)"
        " values (:org, 0, 'USD', 'generic', '{}', '{}', :me)"
    ),
    "ap_export_chunks": (
        "insert into ap_export_chunks (org_id, batch_id, chunk_no, data) values (:org, :batch, 7, 'planted')"
    ),
    "ledger_entries": (
        "insert into ledger_entries (org_id, txn_id, event, invoice_id, account, amount_minor, currency)"
        " values (:org, :txn, 'paid', :approved, 'accounts_payable', 100, 'USD'),"
        "        (:org, :txn, 'paid', :approved, 'cash', -100, 'USD')"
    ),
}


def insert_params(world, money: Money, me) -> dict:
    approved = money.x[2]
    return {
        "org": world.org_a,
        "c": world.contractor_x,
        "e": approved["engagement_id"],
        "approved": approved["id"],
        "net": approved["net_minor"],
        "today": today(),
        "batch": money.batch_a,
        "me": me,
        "txn": "00000000-0000-4000-8000-000000000001",
    }


@pytest.mark.parametrize("table", TABLES)
def test_contractors_cannot_insert_money_rows_even_for_their_own_work(world, money, act_as, admin_engine, table):
    before = money_state(admin_engine, world.org_a, world.org_b)
    for who in CONTRACTORS:
        person = getattr(world, who)
        refused(act_as(person.id, world.org_a), INSERTS[table], insert_params(world, money, person.id))
    assert money_state(admin_engine, world.org_a, world.org_b) == before


@pytest.mark.parametrize(
    ("who", "table"),
    [
        ("finance", "invoices"),
        ("owner", "payments"),
        ("owner", "ap_export_batches"),
        ("owner", "ap_export_chunks"),
        ("finance", "ap_export_chunks"),
        ("admin", "ap_export_chunks"),
    ],
)
def test_staff_cannot_insert_what_their_role_does_not_write_nor_add_to_a_written_file(
    world, money, act_as, admin_engine, who, table
):
    before = money_state(admin_engine, world.org_a, world.org_b)
    person = getattr(world, who)
    refused(act_as(person.id, world.org_a), INSERTS[table], insert_params(world, money, person.id))
    assert money_state(admin_engine, world.org_a, world.org_b) == before


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("acting_in", ["own org", "org A"])
def test_another_orgs_admin_cannot_insert_money_rows_into_org_a(world, money, act_as, admin_engine, table, acting_in):
    before = money_state(admin_engine, world.org_a, world.org_b)
    s = act_as(world.admin_b.id, world.org_b if acting_in == "own org" else world.org_a)
    refused(s, INSERTS[table], insert_params(world, money, world.admin_b.id))
    assert money_state(admin_engine, world.org_a, world.org_b) == before


def test_the_release_insert_is_one_the_engagements_owner_may_make(world, money, act_as, admin_engine):
    """The control for the invoice refusals above: the same statement by the right person is accepted."""
    s = act_as(world.owner.id, world.org_a)
    s.execute(text(INSERTS["invoices"]), insert_params(world, money, world.owner.id))
    s.commit()
    (row,) = owner_query(
        admin_engine, "select * from invoices where kind = 'retainage_release' and org_id = :o", o=world.org_a
    )
    assert (row["gross_minor"], row["authorized_by"]) == (6_000, world.owner.id)
    assert row["invoice_number"] == numbered(admin_engine, world.org_a, 5)


def test_the_payment_insert_is_one_finance_may_make(world, money, act_as, admin_engine):
    s = act_as(world.finance.id, world.org_a)
    params = insert_params(world, money, world.finance.id)
    s.execute(text(INSERTS["payments"]), params)
    s.execute(
        text("update invoices set status = 'paid', paid_at = :today where id = :approved"), params
    )  # with its invoice
    s.commit()
    assert (
        owner_query(admin_engine, "select status from invoices where id = :i", i=money.x[2]["id"])[0]["status"]
        == "paid"
    )


@pytest.mark.parametrize("who", ["owner", "finance", "admin"])
def test_staff_may_write_balanced_ledger_lines_but_only_finance_and_admins_read_them(
    world, money, act_as, admin_engine, who
):
    s = act_as(getattr(world, who).id, world.org_a)
    s.execute(text(INSERTS["ledger_entries"]), insert_params(world, money, getattr(world, who).id))
    seen = s.execute(
        text("select count(*) from ledger_entries where txn_id = :t"), {"t": insert_params(world, money, None)["txn"]}
    )
    assert seen.scalar_one() == (0 if who == "owner" else 2)
    s.rollback()


STATUS_UPDATES = {
    "invoices": "update invoices set status = 'void'",  # invoices_guard sets updated_at
    "ap_export_batches": (
        "update ap_export_batches set status = 'voided', voided_by = :me, voided_at = now(), void_reason = 'Planted.'"
    ),
}


@pytest.mark.parametrize("table", STATUS_UPDATES)
def test_owners_and_contractors_cannot_move_an_invoice_or_a_batch(world, money, act_as, admin_engine, table):
    before = money_state(admin_engine, world.org_a, world.org_b)
    for who in ("owner", *CONTRACTORS):
        touches_nothing(
            act_as(getattr(world, who).id, world.org_a), STATUS_UPDATES[table], {"me": getattr(world, who).id}
        )
    assert money_state(admin_engine, world.org_a, world.org_b) == before


@pytest.mark.parametrize("table", STATUS_UPDATES)
def test_another_orgs_admin_cannot_move_org_as_invoices_or_batches(world, money, act_as, admin_engine, table):
    before = money_state(admin_engine, world.org_a, world.org_b)
    for org in (world.org_b, world.org_a):
        touches_nothing(
            act_as(world.admin_b.id, org),
            STATUS_UPDATES[table] + " where org_id = :a",
            {"me": world.admin_b.id, "a": world.org_a},
        )
    assert money_state(admin_engine, world.org_a, world.org_b) == before


UNGRANTED_UPDATES = {
    "invoices": (
        "update invoices set gross_minor = gross_minor + 1, net_minor = net_minor + 1, total_minor = total_minor + 1"
    ),
    "invoice numbers": "update invoices set invoice_number = 'X-1'",
    "payments": "update payments set amount_minor = amount_minor + 1",
    "ap_export_batches": "update ap_export_batches set currency = 'EUR'",
    "ap_export_chunks": "update ap_export_chunks set data = 'swapped'",
    "ledger_entries": "update ledger_entries set amount_minor = amount_minor * 2",
}


@pytest.mark.parametrize("what", UNGRANTED_UPDATES)
def test_no_role_can_change_an_amount_or_a_stored_file(world, money, act_as, admin_engine, what):
    before = money_state(admin_engine, world.org_a, world.org_b)
    for who in EVERYONE:
        message = refused(act_as(getattr(world, who).id, org_of(world, who)), UNGRANTED_UPDATES[what], {})
        assert "permission denied" in message, (who, message)
    assert money_state(admin_engine, world.org_a, world.org_b) == before


@pytest.mark.parametrize("table", TABLES)
def test_no_role_can_delete_money_rows(world, money, act_as, admin_engine, table):
    before = money_state(admin_engine, world.org_a, world.org_b)
    for who in EVERYONE:
        message = refused(act_as(getattr(world, who).id, org_of(world, who)), f"delete from {table}", {})
        assert "permission denied" in message, (who, message)
    assert money_state(admin_engine, world.org_a, world.org_b) == before


def test_finance_may_not_void_a_batch_only_an_admin_may(world, money, act_as, admin_engine):
    void = (
        "update ap_export_batches set status = 'voided', voided_by = :me, voided_at = now(),"
        " void_reason = 'Wrong file.'"
        " where id = :b"
    )
    before = money_state(admin_engine, world.org_a, world.org_b)
    message = refused(act_as(world.finance.id, world.org_a), void, {"me": world.finance.id, "b": money.batch_a})
    assert "only an admin voids" in message, message
    assert money_state(admin_engine, world.org_a, world.org_b) == before


@pytest.mark.parametrize(
    "sql",
    [
        "select next_org_number(:o, 'invoice')",
        "select * from org_counters where org_id = :o",
        "update org_counters set last_value = 1 where org_id = :o",
    ],
)
def test_no_role_can_take_read_or_reset_a_number_outside_an_insert(world, money, act_as, admin_engine, sql):
    before = money_state(admin_engine, world.org_a, world.org_b)
    for who in ("admin", "finance", "owner"):
        refused(act_as(getattr(world, who).id, world.org_a), sql, {"o": world.org_a})
    assert money_state(admin_engine, world.org_a, world.org_b) == before
