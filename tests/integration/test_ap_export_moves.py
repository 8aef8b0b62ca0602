"""An export's moves as the database checks them per statement (sql/money.sql, revision 0013): an UPDATE that
is exactly an export's move (approved -> exported, exported_at now(), nothing else changed) skips the per-row
invoices_move_guard, and invoices_exported_check judges its rows once, from the statement's new rows. These
are the ways around that path a raw statement could try, as the owner role (which bypasses RLS but not
triggers); each is refused as the per-row guard refuses it, and leaves the money rows as they were.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest
from kit.money import approved_invoices, export, invoice, money_state, party
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.services import ap_export

CHECK_VIOLATION = "23514"

# Every column of invoices, by what an export does with it. Written out here, not read from the trigger: a
# column added to invoices fails test_every_column_is_named_here until it is placed, and each kept column is
# changed on the export's own path below.
KEPT = {
    "id": "gen_random_uuid()",
    "org_id": "gen_random_uuid()",
    "contractor_id": "gen_random_uuid()",
    "engagement_id": "gen_random_uuid()",
    "kind": "'retainage_release'",
    "milestone_id": "gen_random_uuid()",
    "review_id": "gen_random_uuid()",
    "number": "number + 1000",
    "invoice_number": "invoice_number || 'X'",
    "description": "description || ' (edited)'",
    "currency": "'EUR'",
    "gross_minor": "gross_minor + 1",
    "retainage_bps": "retainage_bps + 1",
    "retainage_minor": "retainage_minor + 1",
    "net_minor": "net_minor + 1",
    "fee_bps": "fee_bps + 1",
    "fee_minor": "fee_minor + 1",
    "total_minor": "total_minor + 1",
    "issued_on": "issued_on - 1",
    "due_date": "due_date + 30",
    "authorized_by": "gen_random_uuid()",
    "authorized_at": "authorized_at - interval '1 day'",
    "release_reason": "'Early release'",
    "approval_policy_id": "gen_random_uuid()",
    # revision 0030: the contractor's user who raised a task invoice (issue 20); a party, like authorized_by
    "raised_by": "gen_random_uuid()",
}
# The status columns; paid_at only with a payment (a CHECK constraint), updated_at as invoices_move_guard stamps it.
# voided_at: only with the move to void (a CHECK constraint), as invoices_move_guard stamps it.
MOVING = {"status", "batch_id", "exported_at", "paid_at", "updated_at", "voided_at"}

NEW_BATCH = (
    "insert into ap_export_batches (org_id, number, currency, preset, layout, selection, created_by)"
    " values (:o, 0, 'USD', 'generic', '{}', '{}', :who) returning id"
)
EXPORT_MOVE = "update invoices set status = 'exported', batch_id = :b, exported_at = now(){extra} where id = :i"


def run(conn, sql: str, **params):
    return conn.execute(text(sql), params)


def refused(admin_engine, write, words: str) -> None:
    """``write(conn)`` as the owner role, refused by the statement or at commit with a check violation
    whose message contains ``words``."""
    with admin_engine.connect() as conn:
        conn.begin()
        with pytest.raises(DBAPIError) as exc:
            write(conn)
            conn.commit()
        conn.rollback()
    assert (exc.value.orig.sqlstate, words in str(exc.value.orig)) == (CHECK_VIOLATION, True), str(exc.value.orig)


@pytest.fixture
def payable(world, act_as, admin_engine) -> list[dict]:
    """Two invoices of X's engagement, approved: 900.00 and 1,800.00 net."""
    return approved_invoices(act_as, admin_engine, party(world))[1]


def test_every_column_is_named_here(admin_engine):
    with admin_engine.connect() as conn:
        columns = set(
            run(conn, "select column_name from information_schema.columns where table_name = 'invoices'").scalars()
        )
    assert columns == set(KEPT) | MOVING


@pytest.mark.parametrize("column", sorted(KEPT))
def test_an_export_that_changes_anything_else_is_refused(world, payable, admin_engine, column):
    before = money_state(admin_engine, world.org_a)

    def write(conn):
        batch = run(conn, NEW_BATCH, o=world.org_a, who=world.finance.id).scalar_one()
        extra = f", {column} = {KEPT[column]}"
        run(conn, EXPORT_MOVE.format(extra=extra), b=batch, i=payable[0]["id"])

    refused(admin_engine, write, "amounts, dates and parties never change")
    assert money_state(admin_engine, world.org_a) == before


def seal(conn, world, batch, data: bytes, ids: list, total: int) -> None:
    """Store ``data`` as the batch's file and seal it over ``ids`` (in the order given) and ``total``."""
    run(
        conn,
        "insert into ap_export_chunks (org_id, batch_id, chunk_no, data) values (:o, :b, 0, :d)",
        o=world.org_a,
        b=batch,
        d=data,
    )
    run(
        conn,
        "update ap_export_batches set size_bytes = :size, sha256 = :sha, row_count = :rows, total_minor = :total,"
        " invoice_ids = cast(:ids as uuid[]) where id = :b",
        b=batch,
        size=len(data),
        sha=hashlib.sha256(data).hexdigest(),
        rows=len(ids),
        total=total,
        ids=ids,
    )


def new_batch_elsewhere(kind: str, conn, world, other: dict) -> uuid.UUID:
    """A batch id, written in this transaction, that is not a live batch of org A."""
    if kind == "a voided batch":  # written, sealed over the other invoice and voided, all in this transaction
        batch = run(conn, NEW_BATCH, o=world.org_a, who=world.finance.id).scalar_one()
        run(conn, EXPORT_MOVE.format(extra=""), b=batch, i=other["id"])
        seal(conn, world, batch, b"header\nrow\n", [other["id"]], other["net_minor"])
        run(
            conn,
            "update ap_export_batches set status = 'voided', voided_by = :who, void_reason = 'Wrong.' where id = :b",
            who=world.admin.id,
            b=batch,
        )
        run(conn, "update invoices set status = 'approved', batch_id = null where id = :i", i=other["id"])
        return batch
    if kind == "another organization's batch":
        return run(conn, NEW_BATCH, o=world.org_b, who=world.admin_b.id).scalar_one()
    return uuid.uuid4()  # no batch at all


@pytest.mark.parametrize("kind", ["an earlier batch", "a voided batch", "another organization's batch", "no batch"])
def test_an_export_into_anything_but_a_new_live_batch_of_its_organization_is_refused(
    world, act_as, payable, admin_engine, kind
):
    earlier = export(act_as, world.finance, world.org_a, [payable[1]["id"]]).id if kind == "an earlier batch" else None
    before = money_state(admin_engine, world.org_a, world.org_b)

    def write(conn):
        batch = earlier or new_batch_elsewhere(kind, conn, world, payable[1])
        run(conn, EXPORT_MOVE.format(extra=""), b=batch, i=payable[0]["id"])

    refused(admin_engine, write, "exported into a live batch written in the same transaction")
    assert money_state(admin_engine, world.org_a, world.org_b) == before


def test_an_export_that_does_not_say_when_is_stamped_by_the_per_row_guard(world, payable, admin_engine):
    """Off the export's exact path (no exported_at, or another one) the per-row guard takes the row as
    before: the batch is checked and exported_at is the transaction's time, whatever the statement said."""
    with admin_engine.begin() as conn:
        batch = run(conn, NEW_BATCH, o=world.org_a, who=world.finance.id).scalar_one()
        run(conn, "update invoices set status = 'exported', batch_id = :b where id = :i", b=batch, i=payable[0]["id"])
        run(
            conn,
            EXPORT_MOVE.replace("exported_at = now()", "exported_at = now() - interval '1 day'").format(extra=""),
            b=batch,
            i=payable[1]["id"],
        )
        now, exported = run(
            conn, "select now(), array_agg(exported_at) from invoices where batch_id = :b", b=batch
        ).one()
        seal(conn, world, batch, b"header\n", [p["id"] for p in payable], sum(p["net_minor"] for p in payable))
    assert exported == [now, now]
    assert [invoice(admin_engine, p["id"])["status"] for p in payable] == ["exported", "exported"]


def test_a_seal_that_lists_its_invoices_out_of_number_order_is_refused_at_commit(world, payable, admin_engine):
    """The commit check compares the seal's list with its own, in invoice-number order (as the export writes it)."""
    before = money_state(admin_engine, world.org_a)

    def write(conn):
        batch = run(conn, NEW_BATCH, o=world.org_a, who=world.finance.id).scalar_one()
        run(
            conn,
            "update invoices set status = 'exported', batch_id = :b, exported_at = now() where id = any(:ids)",
            b=batch,
            ids=[p["id"] for p in payable],
        )
        reversed_ids = [payable[1]["id"], payable[0]["id"]]
        seal(conn, world, batch, b"header\nrow\nrow\n", reversed_ids, sum(p["net_minor"] for p in payable))

    refused(admin_engine, write, "must hold exactly its 2 invoices")
    assert money_state(admin_engine, world.org_a) == before


def test_the_service_exports_on_the_per_statement_path_and_says_when(world, act_as, payable, admin_engine):
    batch = export(act_as, world.finance, world.org_a, [p["id"] for p in payable])
    rows = [invoice(admin_engine, p["id"]) for p in payable]
    assert [(r["status"], r["batch_id"]) for r in rows] == [("exported", batch.id)] * 2
    assert {r["exported_at"] for r in rows} == {batch.created_at}
    # The export's own move leaves updated_at alone (exported_at says when); the per-row guard is not called.
    assert [r["updated_at"] for r in rows] == [p["updated_at"] for p in payable]
    assert batch.invoice_ids == [p["id"] for p in sorted(payable, key=lambda p: p["number"])]
    assert ap_export.describe(batch).startswith(f"Batch {batch.number}: 2 payments")
