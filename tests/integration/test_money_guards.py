"""The money rules as the database enforces them, even for raw SQL (DESIGN.md sections 3 and 4): the
invoices, payments, batches and ledger guards in sql/money.sql and the constraints of migration
0004.

Work is approved, exported and paid through the services; the statements judged are plain ``text()``
SQL as the owner role (which bypasses RLS but not triggers, constraints or the deferred checks at
commit), or as the app role where the rule is about who acts. A refused statement leaves the
organizations' money rows and counters exactly as they were.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import uuid

import psycopg
import pytest
from kit.engagements import sign_in
from kit.money import (
    active_engagement,
    approve,
    approved_invoices,
    decide_as,
    export,
    invoice,
    money_state,
    numbered,
    party,
    pay,
    set_org,
    submit,
    today,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.config import MIGRATIONS_DIR, SQL_DIR
from backoffice.domain.money import percent_of
from backoffice.services import ap_export

CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"
INSUFFICIENT_PRIVILEGE = "42501"


def refused(admin_engine, write, sqlstate: str, words: str, *, constraint: str | None = None) -> None:
    """Run ``write(conn)`` and commit, as the owner role, expecting the database to refuse it (by the
    statement or at commit) with ``sqlstate`` and a message containing ``words``."""
    with admin_engine.connect() as conn:
        conn.begin()
        with pytest.raises(DBAPIError) as exc:
            write(conn)
            conn.commit()
        conn.rollback()
    orig = exc.value.orig
    assert (orig.sqlstate, words in str(orig)) == (sqlstate, True), str(orig)
    if constraint:
        assert orig.diag.constraint_name == constraint, str(orig)


def run(conn, sql: str, **params):
    return conn.execute(text(sql), params)


def approving_review(conn, milestone_id, reviewer) -> uuid.UUID:
    """The approving review of the milestone's latest (submitted) revision, and the milestone approved with
    it: what an approval writes before its invoice."""
    review_id = run(
        conn,
        "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, milestone_amount_minor,"
        "                     evidence_sha256, reviewed_by)"
        " select s.org_id, s.contractor_id, s.milestone_id, s.id, 'approve', m.amount_minor, '{}', :who"
        "   from submissions s join milestones m on m.id = s.milestone_id"
        "  where s.milestone_id = :m order by s.revision desc limit 1 returning id",
        m=milestone_id,
        who=reviewer,
    ).scalar_one()
    run(conn, "update milestones set status = 'approved' where id = :m", m=milestone_id)
    return review_id


def insert_invoice(conn, milestone_id, review_id, **overrides):
    """The milestone invoice the engagement's terms call for, with ``overrides`` (column -> value). Returns
    (number, invoice_number)."""
    t = run(
        conn,
        "select m.org_id, m.contractor_id, m.engagement_id, m.amount_minor, e.currency, e.retainage_bps,"
        " e.service_fee_bps, r.reviewed_by from milestones m join engagements e on e.id = m.engagement_id"
        " join reviews r on r.id = :r where m.id = :m",
        m=milestone_id,
        r=review_id,
    ).one()
    retainage, fee = percent_of(t.amount_minor, t.retainage_bps), percent_of(t.amount_minor, t.service_fee_bps)
    values = {
        "org_id": t.org_id,
        "contractor_id": t.contractor_id,
        "engagement_id": t.engagement_id,
        "kind": "milestone",
        "milestone_id": milestone_id,
        "review_id": review_id,
        "description": "Planted",
        "currency": t.currency,
        "gross_minor": t.amount_minor,
        "retainage_bps": t.retainage_bps,
        "retainage_minor": retainage,
        "net_minor": t.amount_minor - retainage,
        "fee_bps": t.service_fee_bps,
        "fee_minor": fee,
        "total_minor": t.amount_minor + fee,
        "authorized_by": t.reviewed_by,
        **overrides,
    }
    columns = ", ".join(values)
    return run(
        conn,
        f"insert into invoices ({columns}) values ({', '.join(':' + c for c in values)})"
        " returning number, invoice_number",
        **values,
    ).one()


@pytest.fixture
def submitted(world, act_as, admin_engine):
    """Milestones of 1,000.10 and 2,000.00 on X's engagement with 5% retainage and a 2.5% fee, both submitted."""
    p = party(world)
    _, milestones = active_engagement(
        act_as, admin_engine, p, ("1,000.10", "2,000.00"), retainage="5", service_fee="2.5"
    )
    for m in milestones:
        submit(act_as, p, m)
    return milestones


# --- invoices -------------------------------------------------------------------------------------------


def test_the_invoice_an_approval_calls_for_is_accepted(world, submitted, admin_engine):
    """The control for the refusals below: the statement with nothing overridden is the right one."""
    with admin_engine.begin() as conn:
        number = insert_invoice(conn, submitted[0], approving_review(conn, submitted[0], world.owner.id))
    assert tuple(number) == (1, numbered(admin_engine, world.org_a, 1))


def test_an_invoice_needs_an_approving_review_of_its_milestone(world, submitted, act_as, admin_engine):
    m1, m2 = submitted
    dispute = decide_as(act_as, world.owner, world.org_a, m1, _latest(admin_engine, m1), "dispute", "Not done.").id
    before = money_state(admin_engine, world.org_a)
    refused(admin_engine, lambda conn: insert_invoice(conn, m1, dispute), CHECK_VIOLATION, "needs an approving review")

    def of_another_milestone(conn):
        review = approving_review(conn, m2, world.owner.id)
        insert_invoice(conn, m2, review)  # m2's own, so the approval itself is complete
        insert_invoice(conn, m1, review, description="Borrowed review")

    refused(admin_engine, of_another_milestone, CHECK_VIOLATION, "needs an approving review")
    assert money_state(admin_engine, world.org_a) == before


def _latest(admin_engine, milestone_id):
    with admin_engine.connect() as conn:
        return run(
            conn, "select id from submissions where milestone_id = :m order by revision desc limit 1", m=milestone_id
        ).scalar_one()


def test_an_approval_without_its_invoice_is_refused_at_commit(world, submitted, admin_engine):
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: approving_review(conn, submitted[0], world.owner.id),
        CHECK_VIOLATION,
        "an approval authorizes its payment",
    )
    assert money_state(admin_engine, world.org_a) == before


def test_a_milestone_has_one_invoice(world, act_as, admin_engine):
    p = party(world)
    _, (m,) = active_engagement(act_as, admin_engine, p, ("100.00",))
    first = approve(act_as, admin_engine, p, m)
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: insert_invoice(conn, m, first["review_id"]),
        UNIQUE_VIOLATION,
        "",
        constraint="invoices_one_per_milestone",
    )
    assert money_state(admin_engine, world.org_a) == before


WRONG = {
    "gross": (
        {"gross_minor": 100_011, "net_minor": 95_010, "total_minor": 102_511},
        "the invoice's gross is the approved amount",
    ),
    "retainage rate": (
        {"retainage_bps": 0, "retainage_minor": 0, "net_minor": 100_010},
        "withholds the engagement's retainage",
    ),
    "retainage rounded down": ({"retainage_minor": 5_000, "net_minor": 95_010}, "round_half_up"),
    "fee rate": ({"fee_bps": 0, "fee_minor": 0, "total_minor": 100_010}, "charges its service fee"),
    "fee": ({"fee_minor": 2_501, "total_minor": 102_511}, "round_half_up"),
    "net": ({"net_minor": 95_010}, "invoices_amounts_add_up"),
    "total": ({"total_minor": 100_010}, "invoices_amounts_add_up"),
    "currency": ({"currency": "EUR"}, "in its engagement's currency"),
    # An invoice's own columns, checked once by invoices_guard at insert since revision 0018 (PostgreSQL
    # re-evaluated them as CHECK constraints on every status move): the same names and error as before.
    "blank description": ({"description": "   "}, 'violates check constraint "invoices_description_check"'),
    "long description": ({"description": "x" * 501}, 'violates check constraint "invoices_description_check"'),
    "a release reason on a milestone invoice": ({"release_reason": "early"}, '"invoices_kind_shape"'),
    "starts paid": ({"status": "paid", "paid_at": "2030-01-01"}, "a new invoice starts approved"),
    "another authorizer": ({"authorized_by": "admin"}, "authorized by the person who approved the work"),
}


@pytest.mark.parametrize("case", WRONG)
def test_an_invoice_whose_amounts_or_terms_are_wrong_is_refused(world, submitted, admin_engine, case):
    overrides, words = WRONG[case]
    if overrides.get("authorized_by") == "admin":
        overrides = {**overrides, "authorized_by": world.admin.id}
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: insert_invoice(
            conn, submitted[0], approving_review(conn, submitted[0], world.owner.id), **overrides
        ),
        CHECK_VIOLATION,
        words,
    )
    assert money_state(admin_engine, world.org_a) == before


def test_the_rules_on_an_invoices_own_columns_are_those_revision_0018_took_from_the_table(admin_engine):
    """invoices_guard's list (sql/money.sql) is the migration's, expression for expression, and the table keeps
    as CHECK constraints exactly the rules over what a status move changes."""
    # (Revision 0030 adds completion billing's kinds to two of them: its MOVED is 0018's with those.)
    spec = importlib.util.spec_from_file_location("m0030", MIGRATIONS_DIR / "versions" / "0030_completion_billing.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    body = (SQL_DIR / "money.sql").read_text().split("v_broken := case", 1)[1].split("  end;", 1)[0]
    in_guard = {
        name: " ".join(expression.replace("new.", "").split())
        for expression, name in re.findall(r"when not \((.*?)\)\s+then '(\w+)'", body, re.DOTALL)
    }
    assert in_guard == {name: " ".join(e.split()) for name, e in migration.MOVED.items()}
    with admin_engine.connect() as conn:
        checks = set(
            run(
                conn,
                "select conname from pg_constraint where conrelid = 'invoices'::regclass and contype = 'c'",
            ).scalars()
        )
    assert checks == {
        "invoices_status_check",
        "invoices_paid_has_paid_at",
        # (invoices_exported_has_batch until revision 0024: an invoice handed to a payment rail is exported with
        # no batch; invoices_move_guard and invoices_exported_check ask for a live batch or a payout attempt.)
        "invoices_batch_only_when_exported",
        "invoices_void_has_voided_at",  # revision 0027: a voided authorization says when
    }
    assert not checks & set(migration.MOVED)


def test_invoice_numbers_are_gapless_a_rolled_back_approval_gives_its_number_back(
    world, submitted, act_as, admin_engine
):
    m1, m2 = submitted
    decide_as(act_as, world.owner, world.org_a, m1, _latest(admin_engine, m1))
    with admin_engine.connect() as conn:
        conn.begin()
        taken = insert_invoice(conn, m2, approving_review(conn, m2, world.owner.id))
        conn.rollback()
    assert tuple(taken) == (2, numbered(admin_engine, world.org_a, 2))
    decide_as(act_as, world.owner, world.org_a, m2, _latest(admin_engine, m2))
    assert [invoice_number(admin_engine, m) for m in (m1, m2)] == [
        numbered(admin_engine, world.org_a, n) for n in (1, 2)
    ]


def invoice_number(admin_engine, milestone_id) -> str:
    with admin_engine.connect() as conn:
        return run(conn, "select invoice_number from invoices where milestone_id = :m", m=milestone_id).scalar_one()


def test_each_organization_numbers_its_invoices_with_its_own_prefix(world, act_as, admin_engine):
    set_org(admin_engine, world.org_a, invoice_prefix="ACME")  # org B keeps the prefix taken from its name
    _, a = approved_invoices(act_as, admin_engine, party(world, "x"), ("1.00", "2.00", "3.00"))
    _, z = approved_invoices(act_as, admin_engine, party(world, "z"), ("1.00",))
    _, y = approved_invoices(act_as, admin_engine, party(world, "y"), ("1.00",))
    assert [i["invoice_number"] for i in (*a, *y)] == ["ACME-000001", "ACME-000002", "ACME-000003", "ACME-000004"]
    assert [i["invoice_number"] for i in z] == ["ORGB-000001"]


def test_the_millionth_invoice_keeps_every_digit(world, act_as, admin_engine):
    """Six digits at least, never fewer than the number has: lpad alone would cut 1000000 to 100000."""
    set_org(admin_engine, world.org_a, invoice_prefix="ACME")
    with admin_engine.begin() as conn:
        run(
            conn,
            "insert into org_counters (org_id, counter, last_value) values (:o, 'invoice', 999999)"
            " on conflict (org_id, counter) do update set last_value = 999999",
            o=world.org_a,
        )
    _, made = approved_invoices(act_as, admin_engine, party(world, "x"), ("1.00", "2.00"))
    assert [i["invoice_number"] for i in made] == ["ACME-1000000", "ACME-1000001"]


@pytest.mark.parametrize("prefix", ["acme", "A", "TOOLONGPREFIX", "AC-ME"])
def test_an_invoice_prefix_is_two_to_eight_capitals_or_digits(world, admin_engine, prefix):
    refused(
        admin_engine,
        lambda conn: run(conn, "update organizations set invoice_prefix = :p where id = :o", p=prefix, o=world.org_a),
        CHECK_VIOLATION,
        "invoice_prefix",
    )


# --- payments -------------------------------------------------------------------------------------------

PAYMENT = (
    "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference, method,"
    " source, recorded_by, batch_id) select org_id, contractor_id, id, :amount, :currency, cast(:paid_at as date),"
    " 'Planted', 'ach', 'manual', :who, :batch from invoices where id = :i"
)
PAID = "update invoices set status = 'paid', paid_at = cast(:paid_at as date) where id = :i"


@pytest.fixture
def payable(world, act_as, admin_engine) -> list[dict]:
    """Two invoices of X's engagement approved by world.owner: 900.00 and 1,800.00 net."""
    return approved_invoices(act_as, admin_engine, party(world))[1]


def pay_raw(conn, inv, who, *, amount=None, currency="USD", paid_at=None, batch=None, mark_paid=True):
    paid_at = paid_at or today()
    run(
        conn,
        PAYMENT,
        amount=inv["net_minor"] if amount is None else amount,
        currency=currency,
        paid_at=paid_at,
        who=who,
        batch=batch,
        i=inv["id"],
    )
    if mark_paid:
        run(conn, PAID, paid_at=paid_at, i=inv["id"])


def test_the_payment_an_invoice_calls_for_is_accepted(world, payable, admin_engine):
    with admin_engine.begin() as conn:
        pay_raw(conn, payable[0], world.finance.id)
    assert invoice(admin_engine, payable[0]["id"])["status"] == "paid"


BAD_PAYMENTS = {
    "less than the net": ({"amount": 89_999}, "a payment is the invoice's net payable"),
    "the gross": ({"amount": 100_000}, "a payment is the invoice's net payable"),
    "another currency": ({"currency": "EUR"}, "a payment is the invoice's net payable"),
    "before its authorization": ({"paid_at": "2020-01-01"}, "a payment is dated between"),
    "in the future": ({"paid_at": "2999-01-01"}, "a payment is dated between"),
    "invoice left unpaid": ({"mark_paid": False}, "a payment marks its invoice paid"),
}


@pytest.mark.parametrize("case", BAD_PAYMENTS)
def test_a_payment_that_is_not_the_invoices_net_today_is_refused(world, payable, admin_engine, case):
    given, words = BAD_PAYMENTS[case]
    before = money_state(admin_engine, world.org_a)
    refused(admin_engine, lambda conn: pay_raw(conn, payable[0], world.finance.id, **given), CHECK_VIOLATION, words)
    assert money_state(admin_engine, world.org_a) == before


def test_an_invoice_has_one_payment(world, payable, act_as, admin_engine):
    before = money_state(admin_engine, world.org_a)

    def twice(conn):
        pay_raw(conn, payable[0], world.finance.id, mark_paid=False)
        pay_raw(conn, payable[0], world.admin.id)

    refused(admin_engine, twice, UNIQUE_VIOLATION, "", constraint="payments_one_per_invoice")
    assert money_state(admin_engine, world.org_a) == before
    pay(act_as, world.finance, world.org_a, payable[0]["id"])
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: pay_raw(conn, payable[0], world.admin.id),
        CHECK_VIOLATION,
        f"invoice {payable[0]['invoice_number']} is paid",
    )
    assert money_state(admin_engine, world.org_a) == before


def test_an_invoice_is_paid_only_with_its_payment(world, payable, admin_engine):
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: run(conn, PAID, paid_at=today(), i=payable[0]["id"]),
        CHECK_VIOLATION,
        "an invoice is paid with its payment record",
    )
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    ("which", "exported_at"), [(0, "2001-01-01"), (1, None)], ids=["forged on an approved one", "erased"]
)
def test_paying_an_invoice_cannot_rewrite_when_it_was_exported(
    world, payable, act_as, admin_engine, which, exported_at
):
    export(act_as, world.finance, world.org_a, [payable[1]["id"]])
    before = money_state(admin_engine, world.org_a)
    s = act_as(world.finance.id, world.org_a)
    with pytest.raises(DBAPIError) as exc:
        pay_raw(s, payable[which], world.finance.id, mark_paid=False)
        run(
            s,
            "update invoices set status = 'paid', paid_at = :t, exported_at = cast(:x as timestamptz) where id = :i",
            t=today(),
            x=exported_at,
            i=payable[which]["id"],
        )
        s.commit()
    s.rollback()
    assert exc.value.orig.sqlstate == CHECK_VIOLATION, str(exc.value.orig)
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(("status", "paid_at"), [("paid", None), ("approved", "2030-01-01")])
def test_a_paid_invoice_has_its_paid_date_and_only_a_paid_one_does_even_without_triggers(
    world, payable, database, status, paid_at
):
    """The CHECK behind the guard: with triggers off (a superuser replicating), the constraint still holds."""
    with psycopg.connect(database.superuser_url) as conn:
        conn.execute("set local session_replication_role = replica")
        with pytest.raises(psycopg.errors.CheckViolation) as exc:
            conn.execute(
                "update invoices set status = %s, paid_at = %s where id = %s", (status, paid_at, payable[0]["id"])
            )
        conn.rollback()
    assert exc.value.diag.constraint_name == "invoices_paid_has_paid_at"


def test_a_batch_payment_is_for_an_invoice_in_that_batch(world, payable, act_as, admin_engine):
    batch = export(act_as, world.finance, world.org_a, [payable[0]["id"]]).id
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: pay_raw(conn, payable[1], world.finance.id, batch=batch),
        CHECK_VIOLATION,
        "a batch payment is for an invoice in that batch",
    )
    assert money_state(admin_engine, world.org_a) == before


def test_segregation_of_duties_the_approver_cannot_record_the_payment_unless_the_org_allows_it(
    world, act_as, admin_engine
):
    _, (mine, _) = approved_invoices(act_as, admin_engine, party(world), approver=world.admin)
    before = money_state(admin_engine, world.org_a)
    s = act_as(world.admin.id, world.org_a)
    with pytest.raises(DBAPIError) as exc:
        pay_raw(s, mine, world.admin.id)
    s.rollback()
    assert exc.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE and "segregation of duties" in str(exc.value.orig)
    assert money_state(admin_engine, world.org_a) == before
    set_org(admin_engine, world.org_a, segregation_of_duties=False)
    s = act_as(world.admin.id, world.org_a)
    pay_raw(s, mine, world.admin.id)
    s.commit()
    assert invoice(admin_engine, mine["id"])["status"] == "paid"


# --- ledger ---------------------------------------------------------------------------------------------

LEDGER = (
    "insert into ledger_entries (org_id, txn_id, event, invoice_id, account, amount_minor, currency)"
    " values (:o, :t, 'paid', :i, :account, :amount, :currency)"
)


@pytest.mark.parametrize(
    ("lines", "ok"),
    [
        ([("accounts_payable", 100, "USD"), ("cash", -100, "USD")], True),
        ([("accounts_payable", 100, "USD")], False),
        ([("accounts_payable", 100, "USD"), ("cash", -99, "USD")], False),
        ([("accounts_payable", 100, "USD"), ("cash", -100, "EUR")], False),
    ],
)
def test_ledger_lines_must_balance_in_one_currency_at_commit(world, payable, admin_engine, lines, ok):
    txn = uuid.uuid4()

    def write(conn):
        for account, amount, currency in lines:
            run(
                conn,
                LEDGER,
                o=world.org_a,
                t=txn,
                i=payable[0]["id"],
                account=account,
                amount=amount,
                currency=currency,
            )

    if ok:
        with admin_engine.begin() as conn:
            write(conn)
        return
    before = money_state(admin_engine, world.org_a)
    refused(admin_engine, write, CHECK_VIOLATION, f"ledger transaction {txn} does not balance")
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "sql",
    [
        "update ledger_entries set amount_minor = -amount_minor where org_id = :o",
        "delete from ledger_entries where org_id = :o",
    ],
)
def test_the_ledger_is_append_only_even_for_the_owner_role(world, payable, admin_engine, sql):
    before = money_state(admin_engine, world.org_a)
    refused(admin_engine, lambda conn: run(conn, sql, o=world.org_a), INSUFFICIENT_PRIVILEGE, "append-only")
    assert money_state(admin_engine, world.org_a) == before


# --- invoices moving, batches ---------------------------------------------------------------------------

MOVES = {
    "into an old batch": (
        "update invoices set status = 'exported', batch_id = :batch where id = :other",
        "into a live batch written in the same transaction",
    ),
    "back to approved with its batch live": (
        "update invoices set status = 'approved', batch_id = null where id = :exported",
        "only when its batch is voided",
    ),
    "to void": ("update invoices set status = 'void' where id = :other", "cannot go from approved to void"),
    "its amounts": (
        "update invoices set gross_minor = gross_minor + 1, total_minor = total_minor + 1 where id = :other",
        "amounts, dates and parties never change",
    ),
    "its due date": ("update invoices set due_date = due_date + 30 where id = :other", "never change"),
    "its batch without its status": (
        "update invoices set batch_id = null where id = :exported",
        "batch and payment change only with its status",
    ),
}


@pytest.mark.parametrize("case", MOVES)
def test_an_invoice_moves_only_as_its_state_machine_allows(world, payable, act_as, admin_engine, case):
    sql, words = MOVES[case]
    batch = export(act_as, world.finance, world.org_a, [payable[0]["id"]]).id
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: run(conn, sql, batch=batch, exported=payable[0]["id"], other=payable[1]["id"]),
        CHECK_VIOLATION,
        words,
    )
    assert money_state(admin_engine, world.org_a) == before


def write_batch(conn, world, inv, data: bytes, **seal):
    """A batch holding ``inv``, with ``data`` as its file, sealed with ``seal`` over the true values."""
    batch = run(
        conn,
        "insert into ap_export_batches (org_id, number, currency, preset, layout, selection, created_by)"
        " values (:o, 0, 'USD', 'generic', '{}', '{}', :who) returning id",
        o=world.org_a,
        who=world.finance.id,
    ).scalar_one()
    run(conn, "update invoices set status = 'exported', batch_id = :b where id = :i", b=batch, i=inv["id"])
    run(
        conn,
        "insert into ap_export_chunks (org_id, batch_id, chunk_no, data) values (:o, :b, 0, :d)",
        o=world.org_a,
        b=batch,
        d=data,
    )
    values = {
        "size": len(data),
        "sha": hashlib.sha256(data).hexdigest(),
        "rows": 1,
        "total": inv["net_minor"],
        "ids": [inv["id"]],
        **seal,
    }
    run(
        conn,
        "update ap_export_batches set size_bytes = :size, sha256 = :sha, row_count = :rows, total_minor = :total,"
        " invoice_ids = cast(:ids as uuid[]) where id = :b",
        b=batch,
        **values,
    )
    return batch


def test_a_batch_whose_file_and_seal_agree_is_accepted(world, payable, admin_engine):
    with admin_engine.begin() as conn:
        write_batch(conn, world, payable[0], b"header\nrow\n")
    assert invoice(admin_engine, payable[0]["id"])["status"] == "exported"


@pytest.mark.parametrize(
    ("seal", "words"),
    [
        ({"sha": hashlib.sha256(b"header\nrow?\n").hexdigest()}, "does not match its size and sha256"),
        ({"size": 99}, "does not match its size and sha256"),
        ({"total": 1}, "must hold exactly its 1 invoices"),
        ({"rows": 2, "ids": [uuid.uuid4(), uuid.uuid4()]}, "must hold exactly its 2 invoices"),
    ],
)
def test_a_batch_whose_seal_does_not_match_its_bytes_or_invoices_is_refused_at_commit(
    world, payable, admin_engine, seal, words
):
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: write_batch(conn, world, payable[0], b"header\nrow\n", **seal),
        CHECK_VIOLATION,
        words,
    )
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_a_batch_holds_no_invoice_that_is_not_in_its_file(world, act_as, admin_engine, currency):
    _, (a,) = approved_invoices(act_as, admin_engine, party(world), ("100.00",))
    _, (extra,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("100.00",), currency=currency)
    before = money_state(admin_engine, world.org_a)

    def write(conn):
        batch = write_batch(conn, world, a, b"header\nrow\n")
        run(conn, "update invoices set status = 'exported', batch_id = :b where id = :e", b=batch, e=extra["id"])

    refused(admin_engine, write, CHECK_VIOLATION, "must hold exactly its 1 invoices")
    assert money_state(admin_engine, world.org_a) == before


VOID = (
    "update ap_export_batches set status = 'voided', voided_by = :who, voided_at = now(), void_reason = 'Again.'"
    " where id = :b"
)


def test_a_voided_batch_cannot_be_voided_again_nor_its_file_changed(world, payable, act_as, admin_engine):
    batch = export(act_as, world.finance, world.org_a, [payable[0]["id"]]).id
    session, actor = sign_in(act_as, world.admin, world.org_a)
    ap_export.void_batch(session, actor, batch, "Wrong file.")
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine,
        lambda conn: run(conn, VOID, who=world.admin.id, b=batch),
        CHECK_VIOLATION,
        "a live batch can only be voided",
    )
    refused(
        admin_engine,
        lambda conn: run(conn, "update ap_export_batches set sha256 = repeat('0', 64) where id = :b", b=batch),
        CHECK_VIOLATION,
        "a batch's file never changes",
    )
    assert money_state(admin_engine, world.org_a) == before


def test_a_batch_with_a_paid_invoice_cannot_be_voided(world, payable, act_as, admin_engine):
    batch = export(act_as, world.finance, world.org_a, [p["id"] for p in payable]).id
    pay(act_as, world.finance, world.org_a, payable[1]["id"])
    before = money_state(admin_engine, world.org_a)
    refused(
        admin_engine, lambda conn: run(conn, VOID, who=world.admin.id, b=batch), CHECK_VIOLATION, "has paid invoices"
    )
    assert money_state(admin_engine, world.org_a) == before
