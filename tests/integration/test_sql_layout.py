"""The SQL under sql/ by area (issue 15): sql/rls_policies.sql holds the context helpers, the policies and
the grants; the guard triggers and other functions live in a file per area; backoffice.schema.SQL_FILES
applies every file, in one order. The append-only tables refuse UPDATE, DELETE and TRUNCATE to the owner
role (one trigger function, sql/append_only.sql) and to the app role (no such privilege), as raw SQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.config import SQL_DIR
from backoffice.schema import SQL_FILES

RLS_POLICIES = SQL_DIR / "rls_policies.sql"
INSUFFICIENT_PRIVILEGE = "42501"


def test_rls_policies_sql_stays_under_600_lines():
    assert len(RLS_POLICIES.read_text().splitlines()) < 600


def test_rls_policies_sql_holds_no_trigger_function_and_attaches_no_trigger():
    sql = RLS_POLICIES.read_text().lower()
    assert re.findall(r"returns\s+trigger|create\s+(?:constraint\s+)?trigger", sql) == []


def test_rls_policies_sql_opens_with_its_contents():
    head = RLS_POLICIES.read_text().splitlines()[:20]
    assert "-- Contents" in head


def test_every_file_under_sql_is_applied_and_every_applied_file_exists():
    assert sorted(p.name for p in SQL_DIR.glob("*.sql")) == sorted(SQL_FILES)
    assert len(set(SQL_FILES)) == len(SQL_FILES)


# --- append-only tables ------------------------------------------------------------------------------

APPEND_ONLY = [
    "ap_export_chunks",
    "audit_events",
    "documents",
    "evidence_chunks",
    "evidence_files",
    "invoice_acceptances",
    "ledger_entries",
    "tax_tins",
]
REFUSED = {
    "UPDATE": "update {table} set org_id = org_id where org_id = :org",
    "DELETE": "delete from {table} where org_id = :org",
    "TRUNCATE": "truncate {table} cascade",  # cascade: the widest form (evidence_chunks points at evidence_files)
}
# The refusal names the table, or says it in the table's own words (sql/append_only.sql).
SAID_AS = {"invoice_acceptances": "a contractor's answer to a self-billed invoice"}
# The demo has no self-billed invoice until its jobs run, nor an answer to one: they are written in the test's own
# transaction, never committed. An answer needs its invoice's self-billed invoice issued, and the invoice not void
# (sql/self_billing.sql's guard), so the document comes first; a rejection says why.
A_RECEIPT = """
    insert into documents (org_id, kind, invoice_id, transaction_id, title, filename, content, size_bytes, sha256,
                           contractor_id, engagement_id)
    select i.org_id, 'self_billed_invoice', i.id, 'TX-' || upper(substr(md5(i.id::text), 1, 20)), 'Self-billed invoice',
           'self-billed-invoice.pdf',
           '%PDF-1.4'::bytea, 8, encode(sha256('%PDF-1.4'::bytea), 'hex'), i.contractor_id, i.engagement_id
      from invoices i
     where i.org_id = :org and i.status <> 'void' and not exists (select 1 from documents d where d.invoice_id = i.id)
     limit 1
"""
AN_ANSWER = """
    insert into invoice_acceptances (org_id, invoice_id, contractor_id, decision, reason, decided_by)
    select d.org_id, d.invoice_id, d.contractor_id, 'rejected', 'These are not the amounts we agreed.',
           (select m.user_id from memberships m where m.org_id = d.org_id
             order by (m.contractor_id is not distinct from d.contractor_id) desc, m.user_id limit 1)
      from documents d join invoices i on i.org_id = d.org_id and i.id = d.invoice_id
     where d.org_id = :org and d.kind = 'self_billed_invoice' and i.status <> 'void'
       and not exists (select 1 from invoice_acceptances a where a.org_id = d.org_id and a.invoice_id = d.invoice_id)
     limit 1
"""


def rows_of(conn, table: str, org) -> int:
    return conn.execute(text(f"select count(*) from {table} where org_id = :org"), {"org": org}).scalar_one()


def test_exactly_these_tables_refuse_update_delete_and_truncate_by_one_trigger_function(admin_engine):
    with admin_engine.connect() as conn:
        guarded = conn.execute(
            text(
                """
                select c.relname, bool_or(t.tgtype & 16 > 0), bool_or(t.tgtype & 8 > 0), bool_or(t.tgtype & 32 > 0)
                  from pg_trigger t join pg_class c on c.oid = t.tgrelid
                 where t.tgfoid = 'public.reject_change()'::regprocedure and t.tgenabled = 'O'
                 group by c.relname order by c.relname
                """
            )
        ).all()
    assert [tuple(row) for row in guarded] == [(table, True, True, True) for table in APPEND_ONLY]


@pytest.mark.parametrize(
    "name", ["audit_events_reject_change", "ledger_entries_reject_change", "documents_reject_change"]
)
def test_the_three_functions_reject_change_replaced_are_gone(admin_engine, name):
    with admin_engine.connect() as conn:
        assert conn.execute(text("select count(*) from pg_proc where proname = :n"), {"n": name}).scalar_one() == 0


@pytest.mark.parametrize("operation", REFUSED)
@pytest.mark.parametrize("table", APPEND_ONLY)
def test_the_owner_role_cannot_update_delete_or_truncate_an_append_only_table(
    admin_engine, demo_data, table, operation
):
    with admin_engine.connect() as conn:
        conn.execute(text("set local lock_timeout = '5s'"))
        if table in ("documents", "invoice_acceptances"):
            conn.execute(text(A_RECEIPT), {"org": demo_data.acme})
        if table == "invoice_acceptances":
            conn.execute(text(AN_ANSWER), {"org": demo_data.acme})
        assert rows_of(conn, table, demo_data.acme) > 0  # rows for a row trigger to refuse
        try:
            with pytest.raises(DBAPIError) as refused:
                conn.execute(text(REFUSED[operation].format(table=table)), {"org": demo_data.acme})
        finally:
            conn.rollback()  # TRUNCATE is transactional: should the trigger ever fail, nothing is lost
    message = str(refused.value.orig)
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, message
    named = SAID_AS.get(table, table)
    assert (named in message, "append-only" in message, f"{operation} is not allowed" in message) == (True,) * 3, (
        message
    )


@pytest.mark.parametrize("operation", REFUSED)
@pytest.mark.parametrize("table", APPEND_ONLY)
def test_the_app_role_cannot_update_delete_or_truncate_an_append_only_table(
    app_engine, admin_engine, demo_data, table, operation
):
    with admin_engine.connect() as conn:
        before = rows_of(conn, table, demo_data.acme)
        admin = conn.execute(
            text("select user_id from memberships where org_id = :org and role = 'admin' order by user_id limit 1"),
            {"org": demo_data.acme},
        ).scalar_one()
    with app_engine.connect() as conn:
        # One of the organization's admins: the widest reach the app role has (sql/rls_policies.sql).
        conn.execute(
            text("select set_config('app.user_id', :user, true), set_config('app.org_id', :org, true)"),
            {"user": str(admin), "org": str(demo_data.acme)},
        )
        conn.execute(text("set local lock_timeout = '5s'"))
        try:
            with pytest.raises(DBAPIError) as refused:
                conn.execute(text(REFUSED[operation].format(table=table)), {"org": demo_data.acme})
        finally:
            conn.rollback()
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, str(refused.value.orig)
    with admin_engine.connect() as conn:
        assert rows_of(conn, table, demo_data.acme) == before
