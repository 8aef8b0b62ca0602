"""Keys ready for distribution by organization (issue 23, item 8; README "Running beyond one machine").

A table is a tenant table when it has an ``org_id`` column: the catalog says which, so a new table cannot
slip through. Each keeps every row of one organization apart from every other's by its keys alone, as a
database distributed by ``org_id`` (Citus) needs: its primary key, every unique constraint and unique index
include ``org_id`` (as a column, not inside an expression), ``org_id`` is never null, and every foreign key
to another tenant table matches ``org_id`` to ``org_id``. Every other table is a reference table, written out
below: one shared copy for all organizations (users, organizations, the sign-in machinery), never pointing at
a tenant row. Read from the migrated test database as the owner role.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

UNIQUE_VIOLATION = "23505"

# The tables without org_id, each one copy for every organization (Citus: create_reference_table). A new
# table lands here only by deciding it is not an organization's.
REFERENCE_TABLES = {
    "account_messages",  # a password reset's email: an account's, not an organization's
    "alembic_version",
    "login_settings",
    "login_throttle",
    "organizations",
    "password_resets",
    "user_preferences",  # a person's own (revision 0034): one clock and one mailbox across organizations
    "user_sessions",
    "users",
}

TABLES = """
    select c.oid, c.relname as name,
           exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id'
                                                  and not a.attisdropped) as tenant
      from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
     order by c.relname
"""

# Every unique index of every public table (primary keys, unique constraints, unique indexes alone) and every
# exclusion constraint, with its columns (0: an expression) and whether org_id is among them as a column.
UNIQUE_KEYS = """
    select t.relname as table_name, i.relname as index_name, coalesce(con.conname, i.relname) as name,
           coalesce(con.contype::text, 'index') as kind, pg_get_indexdef(x.indexrelid) as definition,
           exists (select 1 from unnest(x.indkey::int2[]) k(attnum)
                     join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum
                    where a.attname = 'org_id') as has_org_id
      from pg_index x
      join pg_class i on i.oid = x.indexrelid
      join pg_class t on t.oid = x.indrelid
      left join pg_constraint con on con.conindid = x.indexrelid and con.contype in ('p', 'u', 'x')
     where t.relnamespace = 'public'::regnamespace and (x.indisunique or con.contype = 'x')
     order by 1, 2
"""

FOREIGN_KEYS = """
    select c.conname as name, t.relname as table_name, r.relname as referenced,
           (select array_agg(a.attname::text order by k.n) from unnest(c.conkey) with ordinality k(attnum, n)
              join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum) as columns,
           (select array_agg(a.attname::text order by k.n) from unnest(c.confkey) with ordinality k(attnum, n)
              join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum) as referenced_columns
      from pg_constraint c
      join pg_class t on t.oid = c.conrelid
      join pg_class r on r.oid = c.confrelid
     where c.contype = 'f' and t.relnamespace = 'public'::regnamespace
     order by 2, 1
"""


def catalog(admin_engine, sql: str) -> list[dict]:
    with admin_engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql)).mappings()]


@pytest.fixture(scope="module")
def tables(admin_engine) -> dict[str, bool]:
    """Every public table: True for a tenant table (it has org_id)."""
    return {r["name"]: r["tenant"] for r in catalog(admin_engine, TABLES)}


def tenant_tables(tables) -> set[str]:
    return {name for name, tenant in tables.items() if tenant}


def test_every_table_is_either_an_organizations_or_a_reference_table_written_out_here(tables):
    found = tenant_tables(tables)
    assert {"engagements", "milestones", "invoices", "evidence_chunks", "email_messages"} <= found  # the catalog query
    assert sorted(set(tables) - found) == sorted(REFERENCE_TABLES), (
        "a table without org_id is one copy shared by every organization: add it to REFERENCE_TABLES only if "
        f"that is what it is, else give it org_id. Without org_id: {sorted(set(tables) - found)}"
    )


def test_every_tenant_tables_org_id_is_never_null(admin_engine):
    nullable = catalog(
        admin_engine,
        "select table_name from information_schema.columns"
        " where table_schema = 'public' and column_name = 'org_id' and is_nullable = 'YES' order by 1",
    )
    nullable = [r["table_name"] for r in nullable]
    assert not nullable, f"org_id may be null in {nullable}: a row without an organization cannot be placed by it"


def test_every_tenant_table_has_a_primary_key_that_includes_org_id(admin_engine, tables):
    keys = [k for k in catalog(admin_engine, UNIQUE_KEYS) if k["kind"] == "p"]
    with_key = {k["table_name"] for k in keys}
    missing = sorted(tenant_tables(tables) - with_key)
    assert not missing, f"tenant tables without a primary key: {missing}"
    without_org = [
        f"{k['table_name']}.{k['name']}: {k['definition']}"
        for k in keys
        if k["table_name"] in tenant_tables(tables) and not k["has_org_id"]
    ]
    assert not without_org, "primary keys of tenant tables without org_id:\n" + "\n".join(without_org)


def test_every_unique_constraint_and_unique_index_of_a_tenant_table_includes_org_id(admin_engine, tables):
    keys = catalog(admin_engine, UNIQUE_KEYS)
    assert {"p", "u", "index"} <= {k["kind"] for k in keys}  # the query sees each kind
    offending = [
        f"{k['table_name']}.{k['name']} ({k['kind']}): {k['definition']}"
        for k in keys
        if k["table_name"] in tenant_tables(tables) and not k["has_org_id"]
    ]
    assert not offending, "unique keys of tenant tables without org_id as a column:\n" + "\n".join(offending)


def test_every_foreign_key_between_tenant_tables_matches_org_id_to_org_id(admin_engine, tables):
    tenant = tenant_tables(tables)
    keys = catalog(admin_engine, FOREIGN_KEYS)
    between = [k for k in keys if k["table_name"] in tenant and k["referenced"] in tenant]
    assert len(between) >= 15  # the query sees them (milestones -> engagements, invoices -> reviews ...)
    offending = [
        f"{k['table_name']}.{k['name']}: ({', '.join(k['columns'])}) -> "
        f"{k['referenced']} ({', '.join(k['referenced_columns'])})"
        for k in between
        if ("org_id", "org_id") not in zip(k["columns"], k["referenced_columns"], strict=True)
    ]
    assert not offending, "foreign keys between tenant tables not matching org_id to org_id:\n" + "\n".join(offending)


def test_no_reference_table_points_at_a_tenant_table(admin_engine, tables):
    tenant = tenant_tables(tables)
    offending = [
        f"{k['table_name']}.{k['name']} -> {k['referenced']}"
        for k in catalog(admin_engine, FOREIGN_KEYS)
        if k["table_name"] not in tenant and k["referenced"] in tenant
    ]
    assert not offending, "reference tables pointing at an organization's rows:\n" + "\n".join(offending)


# The guarantees the old keys gave, each still given by its key with org_id in it (an id is one
# organization's, so "once per milestone" is once per (org_id, milestone_id)); written out here, not read from
# the migration. Code and tests match the names of the first four, and of payments_one_per_invoice (a partial
# index since revision 0024, below): services/invoices, payments, reviews.
GUARANTEES = {
    "invoices_one_per_review": "UNIQUE (org_id, review_id)",
    "reviews_one_per_submission": "UNIQUE (org_id, submission_id)",
    "milestones_engagement_seq_key": "UNIQUE (org_id, engagement_id, seq) DEFERRABLE INITIALLY DEFERRED",
    "submissions_org_id_milestone_id_revision_key": "UNIQUE (org_id, milestone_id, revision)",
    "change_orders_org_id_engagement_id_number_key": "UNIQUE (org_id, engagement_id, number)",
    "change_order_lines_org_id_change_order_id_line_no_key": "UNIQUE (org_id, change_order_id, line_no)",
    "evidence_files_org_id_submission_id_position_key": 'UNIQUE (org_id, submission_id, "position")',
    "documents_org_id_transaction_id_key": "UNIQUE (org_id, transaction_id)",
    "invites_token_hash_org_id_key": "UNIQUE (token_hash, org_id)",
    "email_messages_dedupe": "UNIQUE (org_id, dedupe_key)",
    "evidence_chunks_pkey": "PRIMARY KEY (org_id, file_id, chunk_no)",
    "ap_export_chunks_pkey": "PRIMARY KEY (org_id, batch_id, chunk_no)",
    "invoices_pkey": "PRIMARY KEY (org_id, id)",
}
PARTIAL_GUARANTEES = {
    # A unique constraint until revision 0024: one payment that stands (not reversed by its rail) per invoice.
    "payments_one_per_invoice": "(org_id, invoice_id) WHERE (reversed_at IS NULL)",
    # Unique constraints until revision 0027: one live (not voided by a rejected approval step) invoice per
    # milestone, and one live release per engagement.
    "invoices_one_per_milestone": "(org_id, milestone_id) WHERE (voided_at IS NULL)",
    "invoices_one_release_per_engagement": "(org_id, engagement_id) WHERE ((kind = 'retainage_release'::text)"
    " AND (voided_at IS NULL))",
    # One receipt per invoice until revision 0031; since, one document of each kind (its self-billed invoice, its
    # e-invoice, its credit note) per invoice.
    "documents_one_of_a_kind_per_invoice": "(org_id, invoice_id, kind) WHERE (invoice_id IS NOT NULL)",
}


def test_every_guarantee_of_the_old_keys_is_kept_with_org_id(admin_engine):
    found = {
        r["conname"]: r["definition"]
        for r in catalog(
            admin_engine,
            "select conname, pg_get_constraintdef(oid) as definition from pg_constraint"
            " where connamespace = 'public'::regnamespace and contype in ('p', 'u')",
        )
    }
    assert {name: found.get(name) for name in GUARANTEES} == GUARANTEES
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in catalog(admin_engine, "select indexname, indexdef from pg_indexes where schemaname = 'public'")
    }
    for name, tail in PARTIAL_GUARANTEES.items():
        assert indexes.get(name, "").startswith(f"CREATE UNIQUE INDEX {name} ON public."), name
        assert indexes[name].endswith(f"USING btree {tail}"), indexes[name]


# --- behaviour: an id is unique within its organization --------------------------------------------------

NEW_CONTRACTOR = "insert into contractors (id, org_id, legal_name, email) values (:id, :org, :name, :email)"


def contractor_values(org_id, contractor_id) -> dict:
    tag = secrets.token_hex(4)
    return {"id": contractor_id, "org": org_id, "name": f"Again {tag}", "email": f"again-{tag}@example.com"}


def test_an_id_taken_in_an_organization_is_refused_there_by_its_primary_key(world, admin_engine):
    with admin_engine.connect() as conn, pytest.raises(IntegrityError) as refused:
        conn.execute(text(NEW_CONTRACTOR), contractor_values(world.org_a, world.contractor_x))
    assert (refused.value.orig.sqlstate, refused.value.orig.diag.constraint_name) == (
        UNIQUE_VIOLATION,
        "contractors_pkey",
    )


def test_the_web_role_is_refused_an_id_taken_in_its_organization_in_the_primary_keys_words(world, act_as):
    session = act_as(world.admin.id, world.org_a)
    with pytest.raises(IntegrityError) as refused:
        session.execute(text(NEW_CONTRACTOR), contractor_values(world.org_a, world.contractor_x))
    assert (refused.value.orig.sqlstate, refused.value.orig.diag.constraint_name) == (
        UNIQUE_VIOLATION,
        "contractors_pkey",
    )
    session.rollback()


def test_another_organizations_row_may_carry_the_same_id_without_touching_the_first(world, act_as, admin_engine):
    """The key is (org_id, id): organization B's row with A's contractor's id is B's own, and A's row is
    neither read nor locked to write it (what sql/new_ids.sql guarded against while the key was the id)."""
    session = act_as(world.admin_b.id, world.org_b)
    values = contractor_values(world.org_b, world.contractor_x)
    session.execute(text(NEW_CONTRACTOR), values)
    mine = session.execute(text("select org_id, legal_name from contractors where id = :id"), values).all()
    assert [tuple(r) for r in mine] == [(world.org_b, values["name"])]
    session.rollback()
    with admin_engine.connect() as conn:
        theirs = conn.execute(text("select org_id from contractors where id = :id"), {"id": world.contractor_x}).all()
    assert [r.org_id for r in theirs] == [world.org_a]
