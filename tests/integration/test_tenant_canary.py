"""Another organization's rows tell the web role nothing, and it cannot lock them (DESIGN.md section 5).

Org B's rows carry a canary, a string no other row holds (its engagement's and milestones' titles, its
contractor's name, the notes and reasons of its submissions and reviews, its invoices' descriptions), and
amounts no other row has. Org A's people then act as the web role with raw SQL, the way an injection would:
they write rows that name B's rows in every table a guard judges (and in the tables beside them), acting in
org A, naming org B without a membership there, or with no context at all; they call every function the
web role may execute with B's ids; they EXPLAIN (ANALYZE) selects of B's rows. No refusal, result or plan may
contain the canary or B's amounts, a refusal naming B's row must read exactly as one naming an id that does
not exist, and no statement may take a lock on B's rows or wait for one.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from kit.money import active_engagement, approve, decide_as, export, owner_query, party, submit, today
from sqlalchemy import text
from sqlalchemy.engine import make_url

# Four milestones of amounts no test writes elsewhere, so that one showing up anywhere came from org B.
AMOUNTS = ("73,456.19", "81,234.57", "69,123.47", "58,765.43")

# Org B's rows a statement of org A's could try to lock: each is locked FOR UPDATE NOWAIT by the owner
# role while org A's transaction is still open, and each is held locked while org A's statements run.
LOCKED = {
    "organizations": "id",
    "contractors": "org_id",
    "engagements": "org_id",
    "milestones": "org_id",
    "submissions": "org_id",
    "reviews": "org_id",
    "invoices": "org_id",
    "ap_export_batches": "org_id",
    "org_counters": "org_id",
    "memberships": "org_id",
}


@dataclass(frozen=True)
class Planted:
    canary: str
    secrets: tuple[str, ...]  # what none of org A's answers may contain: the canary, B's amounts and numbers
    ids: dict[str, uuid.UUID]  # B's rows by the parameter name the statements below give them


@pytest.fixture
def planted(world, act_as, admin_engine) -> Planted:
    """Org B, built through the services by its own people: an engagement with an approved milestone (its
    invoice approved), an approved one whose invoice is exported in a batch, one submitted and awaiting
    review, and one planned again after two disputes (its next revision is 3)."""
    canary = f"canary{secrets.token_hex(8)}"
    z = party(world, "z")
    with admin_engine.begin() as conn:
        conn.execute(
            text("update contractors set legal_name = :n where id = :c"),
            {"n": f"Zeta {canary} Ltd", "c": world.contractor_z},
        )
    engagement, (approved, exported, awaiting, planned) = active_engagement(
        act_as, admin_engine, z, AMOUNTS, title=f"Vault {canary}"
    )
    # Ids are taken at once: the next person's act_as ends the session's transaction, and with it its objects.
    submission = submit(act_as, z, approved, note=f"Done {canary}").id
    decide_as(act_as, z.staff, z.org_id, approved, submission, "approve")
    exported_invoice = approve(act_as, admin_engine, z, exported)
    batch = export(act_as, world.admin_b, world.org_b, [exported_invoice["id"]]).id
    awaiting_submission = submit(act_as, z, awaiting, note=f"Awaiting {canary}").id
    for _ in range(2):
        disputed = submit(act_as, z, planned, note=f"Try {canary}").id
        decide_as(act_as, z.staff, z.org_id, planned, disputed, "dispute", reason=f"Redo {canary}")
    act_as(None, None).rollback()

    (invoice,) = owner_query(admin_engine, "select * from invoices where milestone_id = :m", m=approved)
    (review,) = owner_query(admin_engine, "select id from reviews where submission_id = :s", s=submission)
    amounts = set()
    for row in owner_query(admin_engine, "select * from invoices where org_id = :o", o=world.org_b):
        amounts |= {row[c] for c in ("gross_minor", "retainage_minor", "net_minor", "fee_minor", "total_minor")}
        amounts.add(row["invoice_number"])
    for row in owner_query(admin_engine, "select amount_minor from milestones where org_id = :o", o=world.org_b):
        amounts.add(row["amount_minor"])
    (sealed,) = owner_query(admin_engine, "select total_minor from ap_export_batches where id = :b", b=batch)
    (membership,) = owner_query(admin_engine, "select id from memberships where user_id = :u", u=world.admin_b.id)
    amounts.add(sealed["total_minor"])
    # Amounts of six digits and more: a shorter run of digits turns up by chance in any id.
    found = {str(a) for a in amounts if len(str(a)) >= 6}
    assert {"7345619", "6912347"} <= found
    assert canary in str(owner_query(admin_engine, "select description from invoices where id = :i", i=invoice["id"]))
    return Planted(
        canary,
        (canary, *sorted(found)),
        {
            "b_org": world.org_b,
            "b_contractor": world.contractor_z,
            "b_engagement": engagement,
            "b_approved": approved,
            "b_exported": exported,
            "b_awaiting": awaiting,
            "b_planned": planned,
            "b_submission": awaiting_submission,
            "b_approving_submission": submission,
            "b_review": review["id"],
            "b_invoice": invoice["id"],
            "b_exported_invoice": exported_invoice["id"],
            "b_batch": batch,
            "b_membership": membership["id"],
        },
    )


# --- who acts --------------------------------------------------------------------------------------------

# (person, org): org A's people in org A; org A's admin naming org B, where it is no member (no role at all,
# which must not make a guard take the owner role's path); and a transaction with no context at all.
ACTORS = {
    "admin": ("admin", "org_a"),
    "owner": ("owner", "org_a"),
    "finance": ("finance", "org_a"),
    "contractor": ("contractor_x_user", "org_a"),
    "admin naming org B": ("admin", "org_b"),
    "no context": (None, None),
}


def connect(act_as, world, actor: str):
    """The psycopg connection of the app-role session acting as ``actor``, inside its transaction."""
    who, org = ACTORS[actor]
    person = getattr(world, who) if who else None
    session = act_as(person.id if person else None, getattr(world, org) if org else None)
    return session.connection().connection.driver_connection


def params(world, planted: Planted, actor: str) -> dict:
    who, _ = ACTORS[actor]
    me = getattr(world, who or "admin").id
    return {
        "org": world.org_a,
        "c": world.contractor_x,
        "me": me,
        "today": today(),
        "txn": uuid.uuid4(),
        **planted.ids,
    }


def unknown(values: dict) -> dict:
    """The same parameters with each of org B's ids replaced by an id nothing has."""
    return {k: uuid.uuid4() if k.startswith("b_") else v for k, v in values.items()}


# --- the statements --------------------------------------------------------------------------------------

A_ROW, B_ROW = {"org": "%(org)s", "c": "%(c)s"}, {"org": "%(b_org)s", "c": "%(b_contractor)s"}

WRITES = {
    "submissions": (
        "insert into submissions (org_id, contractor_id, milestone_id, revision, note, links, submitted_by)"
        " values ({org}, {c}, %({milestone})s, {revision}, 'Planted', '[\"https://example.com/p\"]', %(me)s)"
    ),
    "evidence_files": (
        "insert into evidence_files (org_id, contractor_id, submission_id, position, file_name, content_type,"
        " size_bytes, sha256) values ({org}, {c}, %(b_submission)s, 9, 'p.txt', 'text/plain', 7, repeat('a', 64))"
    ),
    "reviews": (
        "insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, milestone_amount_minor,"
        " evidence_sha256, reviewed_by) values ({org}, {c}, %(b_awaiting)s, %(b_submission)s, 'approve', {amount},"
        " '{{}}', %(me)s)"
    ),
    "milestone invoices": (
        "insert into invoices (org_id, contractor_id, engagement_id, kind, milestone_id, review_id, description,"
        " currency, gross_minor, retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor, total_minor,"
        " authorized_by) values ({org}, {c}, %(b_engagement)s, 'milestone', %(b_approved)s, %(b_review)s, 'Planted',"
        " 'USD', 100, 0, 0, 100, 0, 0, 100, %(me)s)"
    ),
    "releases": (
        "insert into invoices (org_id, contractor_id, engagement_id, kind, description, currency, gross_minor,"
        " retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor, total_minor, authorized_by, release_reason)"
        " values ({org}, {c}, %(b_engagement)s, 'retainage_release', 'Planted', 'USD', 100, 0, 0, 100, 0, 0, 100,"
        " %(me)s, 'Planted.')"
    ),
    "payments": (
        "insert into payments (org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference, method,"
        " source, recorded_by) values ({org}, {c}, %({invoice})s, 100, 'USD', %(today)s, 'Planted', 'ach', 'manual',"
        " %(me)s)"
    ),
    "batch payments": (
        "insert into payments (org_id, contractor_id, invoice_id, batch_id, amount_minor, currency, paid_at, reference,"
        " method, source, recorded_by) values ({org}, {c}, %(b_exported_invoice)s, %(b_batch)s, 100, 'USD',"
        " %(today)s, 'Planted', 'ach', 'manual', %(me)s)"
    ),
    "ap_export_batches": (
        "insert into ap_export_batches (org_id, number, currency, preset, layout, selection, created_by)"
        " values ({org}, 0, 'USD', 'generic', '{{}}', '{{}}', %(me)s)"
    ),
    "ap_export_chunks": (
        "insert into ap_export_chunks (org_id, batch_id, chunk_no, data) values ({org}, %(b_batch)s, 7, 'planted')"
    ),
    "ledger_entries": (
        "insert into ledger_entries (org_id, txn_id, event, invoice_id, account, amount_minor, currency)"
        " values ({org}, %(txn)s, 'paid', %(b_invoice)s, 'accounts_payable', 100, 'USD'),"
        " ({org}, %(txn)s, 'paid', %(b_invoice)s, 'cash', -100, 'USD')"
    ),
    "milestones": (
        "insert into milestones (org_id, contractor_id, engagement_id, seq, title, deliverable, amount_minor, due_date)"
        " values ({org}, {c}, %(b_engagement)s, 9, 'Planted', 'Planted', 100, '2030-01-01')"
    ),
    "change_orders": (
        "insert into change_orders (org_id, contractor_id, engagement_id, number, reason, contract_value_before,"
        " contract_value_after, created_by) values ({org}, {c}, %(b_engagement)s, 9, 'Planted', 1, 1, %(me)s)"
    ),
    "documents": (
        "insert into documents (org_id, kind, invoice_id, transaction_id, title, filename, content, size_bytes,"
        " sha256, contractor_id, engagement_id) values ({org}, 'self_billed_invoice', %(b_invoice)s,"
        " 'TX-' || upper(substr(md5(%(txn)s::text), 1, 20)), 'Planted', 'p.pdf', 'x', 1, encode(sha256('x'), 'hex'),"
        " {c}, %(b_engagement)s)"
    ),
    "notifications": (
        "insert into notifications (org_id, user_id, event, title, body, url, dedupe_key)"
        " values ({org}, %(me)s, 'planted.event', 'Planted', %(b_invoice)s::text, '/invoices/' || %(b_invoice)s,"
        " %(txn)s)"
    ),
    "email_messages": (
        "insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key,"
        " entity_type, entity_id) values ({org}, 'planted.event', %(me)s, 'p@example.com', 'Planted', 'p', 'p',"
        " %(txn)s, 'invoice', %(b_invoice)s)"
    ),
    "audit_events": (
        "insert into audit_events (org_id, actor_user_id, actor_label, action, entity_type, entity_id, data)"
        " values ({org}, %(me)s, 'p', 'planted.event', 'invoice', %(b_invoice)s, '{{}}')"
    ),
}


def statements() -> dict[str, str]:
    """Every write naming org B's rows: rows of org A (and of contractor X) that point at B's rows, rows of
    org B, and updates, deletes and locking reads of B's rows (which must find nothing)."""
    out = {}
    for side, org in (("org A's row", A_ROW), ("org B's row", B_ROW)):
        for table, sql in WRITES.items():
            variants = {"": {}}
            if table == "submissions":
                variants = {
                    " for B's planned milestone": {"milestone": "b_planned", "revision": 3},
                    " for B's milestone awaiting review": {"milestone": "b_awaiting", "revision": 2},
                }
            elif table == "reviews":
                variants = {" at B's amount": {"amount": 6_912_347}, " at another amount": {"amount": 1}}
            elif table == "payments":
                variants = {" of B's approved invoice": {"invoice": "b_invoice"}}
            for name, extra in variants.items():
                out[f"{table}{name}: {side}"] = sql.format(**org, **extra)
    updates = {
        "engagements": "update engagements set title = 'Taken' where id = %(b_engagement)s",
        "milestones": "update milestones set status = 'approved' where id = %(b_awaiting)s",
        "milestone amounts": "update milestones set amount_minor = 1 where engagement_id = %(b_engagement)s",
        "invoices": "update invoices set status = 'paid', paid_at = now() where id = %(b_invoice)s",
        "ap_export_batches": (
            "update ap_export_batches set status = 'voided', voided_by = %(me)s, void_reason = 'Taken'"
            " where id = %(b_batch)s"
        ),
        "contractors": "update contractors set legal_name = 'Taken' where id = %(b_contractor)s",
        "organizations": "update organizations set name = 'Taken' where id = %(b_org)s",
        "milestones (delete)": "delete from milestones where id = %(b_planned)s",
    }
    for name, sql in updates.items():
        out[f"update {name}"] = sql
    for table, column in LOCKED.items():
        if table != "org_counters":
            out[f"lock {table}"] = f"select 1 from {table} where {column} = %(b_org)s for update"
    for name, sql in UPSERTS.items():
        out[f"upsert {name}"] = sql
    return out


# Rows of org A (each as its writer may write it) that reuse the id of a row of org B's, upserted on the primary
# key. While the key was the id alone, ON CONFLICT (id) DO UPDATE would have locked B's row, waiting for it,
# before the UPDATE policy refused it (sql/new_ids.sql refused the id first); since revision 0015 the key is
# (org_id, id), and org A's key is not B's row's.
UPSERTS = {
    "contractors": (
        "insert into contractors (id, org_id, legal_name, email) values (%(b_contractor)s, %(org)s, 'Planted',"
        " 'planted@example.com') on conflict (org_id, id) do update set legal_name = excluded.legal_name"
    ),
    "memberships": (
        "insert into memberships (id, org_id, user_id, role) values (%(b_membership)s, %(org)s, %(me)s, 'admin')"
        " on conflict (org_id, id) do update set role = excluded.role"
    ),
    "engagements": (
        "insert into engagements (id, org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
        " payment_terms_days, created_by) values (%(b_engagement)s, %(org)s, %(c)s, %(me)s, 'Planted', 'USD', 0, 30,"
        " %(me)s) on conflict (org_id, id) do update set title = excluded.title"
    ),
    "milestones": (
        "insert into milestones (id, org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date)"
        " values (%(b_planned)s, %(org)s, %(c)s, %(b_engagement)s, 9, 'Planted', 100, '2030-01-01')"
        " on conflict (org_id, id) do update set title = excluded.title"
    ),
    "ap_export_batches": (
        "insert into ap_export_batches (id, org_id, number, currency, preset, layout, selection, created_by)"
        " values (%(b_batch)s, %(org)s, 0, 'USD', 'generic', '{}', '{}', %(me)s)"
        " on conflict (org_id, id) do update set status = excluded.status"
    ),
}


STATEMENTS = statements()

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Answer:
    sqlstate: str | None  # None: the statement succeeded
    text: str  # the error's message, detail, hint and context, or the rows it returned

    def normalized(self) -> tuple:
        return self.sqlstate, UUID.sub("<id>", self.text)


def attempt(conn, sql: str, values: dict) -> Answer:
    """Run ``sql`` in a savepoint of ``conn``'s transaction; the savepoint is rolled back by ``undo``."""
    conn.execute("savepoint probe")
    try:
        cursor = conn.execute(sql, values)
        rows = cursor.fetchall() if cursor.description else []
        return Answer(None, f"{cursor.rowcount} {rows}")
    except psycopg.Error as error:
        d = error.diag
        parts = (d.message_primary, d.message_detail, d.message_hint, d.context)
        return Answer(error.sqlstate, " | ".join(str(p) for p in parts))


def undo(conn) -> None:
    conn.execute("rollback to savepoint probe")


def tells_nothing(answer_text: str, planted: Planted) -> list[str]:
    """The secrets of org B that ``answer_text`` contains (none, we hope)."""
    return [s for s in planted.secrets if s.lower() in answer_text.lower()]


def unlocked(admin_engine, planted: Planted) -> list[str]:
    """The tables of org B in which the owner role could not lock every row at once (FOR UPDATE NOWAIT)."""
    held = []
    with admin_engine.connect() as conn:
        raw = conn.connection.driver_connection
        for table, column in LOCKED.items():
            try:
                with raw.transaction():
                    raw.execute(f"select 1 from {table} where {column} = %s for update nowait", [planted.ids["b_org"]])
            except psycopg.errors.LockNotAvailable:
                held.append(table)
        raw.rollback()
    return held


# A statement's answer may be a refusal of its own kind; a syntax or type error would mean the statement never
# reached the database's rules at all, and the test would prove nothing.
JUDGED = {None, "42501", "23514", "23503", "23505", "P0001"}


# --- writes naming org B's rows --------------------------------------------------------------------------


@pytest.mark.parametrize("actor", list(ACTORS))
def test_no_write_naming_another_orgs_rows_tells_anything_about_them_or_locks_them(
    world, planted, act_as, admin_engine, actor
):
    conn = connect(act_as, world, actor)
    values = params(world, planted, actor)
    for name, sql in STATEMENTS.items():
        answer = attempt(conn, sql, values)
        assert answer.sqlstate in JUDGED, (name, answer)
        assert tells_nothing(answer.text, planted) == [], (name, answer)
        assert unlocked(admin_engine, planted) == [], (name, answer)  # A's transaction is still open
        undo(conn)
        # B's row and no row at all are the same to org A: not found (or refused before anything is read). An id
        # of B's is unique in B only (the key is (org_id, id)), so it is no more taken for A than any other.
        assert attempt(conn, sql, unknown(values)).normalized() == answer.normalized(), name
        undo(conn)
    conn.rollback()


@pytest.mark.parametrize("actor", list(ACTORS))
def test_no_write_naming_another_orgs_rows_waits_for_their_locks(world, planted, act_as, admin_engine, actor):
    """Org B's rows are locked FOR UPDATE by a transaction of org B's (the owner role here): a statement of
    org A's that reads them only after checking tenancy is refused at once; one that read them first would
    queue behind B's lock (and, with a short lock_timeout, fail with 55P03)."""
    with admin_engine.connect() as holder:
        raw = holder.connection.driver_connection
        for table, column in LOCKED.items():
            raw.execute(f"select 1 from {table} where {column} = %s for update", [planted.ids["b_org"]])
        conn = connect(act_as, world, actor)
        conn.execute("select set_config('lock_timeout', '200ms', true), set_config('statement_timeout', '10s', true)")
        values = params(world, planted, actor)
        for name, sql in STATEMENTS.items():
            started = time.monotonic()
            answer = attempt(conn, sql, values)
            elapsed = time.monotonic() - started
            undo(conn)
            assert answer.sqlstate not in ("55P03", "57014"), (name, answer)
            assert elapsed < 2, (name, elapsed)
        conn.rollback()
        raw.rollback()


def test_the_statements_reach_the_guards_they_probe(world, planted, act_as):
    """The control: acting in its own org, with its own rows, the same statements meet the guards' own
    refusals (so the refusals above are the guards reading B's row as not found, not a typo)."""
    conn = connect(act_as, world, "contractor")
    values = params(world, planted, "contractor")
    answer = attempt(conn, STATEMENTS["submissions for B's planned milestone: org A's row"], values)
    assert answer.sqlstate == "23503" and "not found" in answer.text, answer
    conn.rollback()
    conn = connect(act_as, world, "admin")
    for name in ("reviews at B's amount: org A's row", "milestone invoices: org A's row", "releases: org A's row"):
        answer = attempt(conn, STATEMENTS[name], params(world, planted, "admin"))
        assert answer.sqlstate == "23503" and "not found" in answer.text, (name, answer)
        undo(conn)
    conn.rollback()
    conn = connect(act_as, world, "finance")
    statement = STATEMENTS["payments of B's approved invoice: org A's row"]
    answer = attempt(conn, statement, params(world, planted, "finance"))
    assert answer.sqlstate == "23503" and "not found" in answer.text, answer
    conn.rollback()


# --- functions -------------------------------------------------------------------------------------------


def executable_functions(admin_engine, app_role: str) -> list[tuple[str, list[str]]]:
    """(qualified name, argument types) of every function the web role may execute outside pg_catalog."""
    rows = owner_query(
        admin_engine,
        "select format('%I.%I', n.nspname, p.proname) as name,"
        " array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t) as types"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname not in ('pg_catalog', 'information_schema') and p.prokind = 'f'"
        " and p.prorettype <> 'trigger'::regtype and has_function_privilege(:role, p.oid, 'execute')"
        " order by 1, 2",
        role=app_role,
    )
    return [(r["name"], list(r["types"])) for r in rows]


def calls(name: str, types: list[str], planted: Planted, texts: list[str]):
    """(sql, values) calling the function with org B's ids and org B's people's addresses."""
    ids = list(planted.ids.values())
    uuid_args, text_args = "uuid" in types, "text" in types
    for i in range(max(len(ids) if uuid_args else 1, len(texts) if text_args else 1)):
        args, values = [], {}
        for n, t in enumerate(types):
            if t == "uuid":
                values[f"a{n}"] = ids[i % len(ids)]
            elif t == "text":
                values[f"a{n}"] = texts[i % len(texts)]
            elif t in ("integer", "bigint", "smallint"):
                values[f"a{n}"] = 1
            elif t == "boolean":
                values[f"a{n}"] = True
            else:
                values[f"a{n}"] = None
            args.append(f"%(a{n})s::{t}")
        yield f"select * from {name}({', '.join(args)})", values


@pytest.mark.parametrize("actor", list(ACTORS))
def test_no_function_the_web_role_may_execute_tells_anything_about_another_orgs_rows(
    world, planted, act_as, admin_engine, database, actor
):
    functions = executable_functions(admin_engine, make_url(database.app_url).username)
    assert "public.app_org_id" in {f for f, _ in functions}  # the sweep sees what the web role sees
    # Not the canary or B's invoice numbers: a function that merely echoes its argument would hand them back.
    texts = [world.admin_b.email, world.contractor_z_user.email, "admin", "approved"]
    conn = connect(act_as, world, actor)
    conn.execute("select set_config('statement_timeout', '10s', true)")
    for name, types in functions:
        for sql, values in calls(name, types, planted, texts):
            answer = attempt(conn, sql, values)
            assert tells_nothing(answer.text, planted) == [], (sql, values, answer)
            undo(conn)
    conn.rollback()


# --- plans -----------------------------------------------------------------------------------------------

EXPLAINED = (
    "select * from {table} where {column} = %(b_org)s",
    "select * from {table} where id = any(%(b_ids)s)",
)
JOINS = (
    "select i.*, e.*, m.* from invoices i join engagements e on e.id = i.engagement_id"
    " join milestones m on m.id = i.milestone_id where e.id = %(b_engagement)s",
    "select s.*, r.* from submissions s left join reviews r on r.submission_id = s.id"
    " where s.milestone_id = any(%(b_ids)s)",
    "select c.*, e.title from contractors c join engagements e on e.contractor_id = c.id where c.id = %(b_contractor)s",
)


@pytest.mark.parametrize("actor", list(ACTORS))
def test_no_plan_of_a_select_of_another_orgs_rows_tells_anything_about_them(
    world, planted, act_as, admin_engine, actor
):
    # Every table of public that names an organization, by the column that does, and whether it has an id.
    tables = owner_query(
        admin_engine,
        "select c.relname as table, case when c.relname = 'organizations' then 'id' else 'org_id' end as column,"
        " exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'id') as has_id"
        " from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')"
        " and (c.relname = 'organizations' or exists (select 1 from pg_attribute a"
        "      where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped))"
        " order by 1",
    )
    assert {"invoices", "milestones", "organizations", "org_counters"} <= {t["table"] for t in tables}
    queries = [*(q.format(**t) for t in tables for q in EXPLAINED if t["has_id"] or "id =" not in q), *JOINS]
    values = {**planted.ids, "b_ids": list(planted.ids.values())}
    conn = connect(act_as, world, actor)
    for query in queries:
        for options in ("", "(analyze, verbose, buffers, settings)", "(analyze, verbose, costs, format json)"):
            answer = attempt(conn, f"explain {options} {query}", values)
            assert answer.sqlstate in (None, "42501"), (query, answer)  # 42501: a table it may not read at all
            assert tells_nothing(answer.text, planted) == [], (query, options, answer)
            undo(conn)
    conn.rollback()


# --- new ids ---------------------------------------------------------------------------------------------


def test_every_table_the_web_role_inserts_into_and_updates_refuses_a_taken_id_first(admin_engine):
    """The tables an INSERT ... ON CONFLICT (org_id, id) DO UPDATE could lock a row of that its writer's policies
    keep from it (another contractor's in its own organization: the key keeps other organizations' rows out of
    reach since revision 0015), written out here (not read from sql/new_ids.sql): each carries the trigger that
    refuses a taken id before any lock."""
    rows = owner_query(
        admin_engine,
        "select c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
        " where t.tgfoid = 'refuse_taken_id'::regproc and not t.tgisinternal order by 1",
    )
    assert [r["relname"] for r in rows] == [
        "ap_export_batches",
        "approval_delegations",  # revision 0027: inserted, and revoked
        "approval_policies",  # inserted, and switched off
        "contractors",
        "einvoice_profiles",  # revision 0031: e-invoicing details, saved again
        "email_messages",
        "engagements",
        "holds",  # inserted, and released
        "invites",
        "invoices",
        "memberships",
        "milestones",
        "payout_accounts",  # revision 0022: the web inserts one and updates its readiness
        "project_categories",  # revision 0029: an admin adds a category, and archives it
        "projects",  # opened, edited, cancelled, awarded
        "proposals",  # submitted, edited, withdrawn, decided
        "self_billing_agreements",  # recorded by an admin, confirmed by the contractor's user
        "tax_profiles",  # revision 0028: a contractor's user fills its tax form in, and again
        "tax_year_filings",  # finance exports a year's 1099-NEC file and reopens the year
        # not notifications: only the worker writes them since revision 0010, and it may not update one
    ]
