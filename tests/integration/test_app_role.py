"""The app role cannot get around row-level security, and `backoffice doctor` notices when it could.

Read from the catalogs while connected as the app role itself. The tests that break something on
purpose (FORCE off, BYPASSRLS on) always put it back in a ``finally``: the database is shared by every
test in the run.
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backoffice.queries.doctor import rls_problems

# The tables the app role works with (DESIGN.md section 5); login_throttle and alembic_version are
# reached only through SECURITY DEFINER functions or not at all.
APP_TABLES = {
    "organizations",
    "users",
    "memberships",
    "contractors",
    "invites",
    "audit_events",
    "engagements",
    "milestones",
    "change_orders",
    "change_order_lines",
    "submissions",
    "evidence_files",
    "evidence_chunks",
    "reviews",
    "invoices",
    "payments",
    "ap_export_batches",
    "ap_export_chunks",
    "ledger_entries",
    "email_messages",
    "notifications",
    "documents",
    # derived totals (revision 0014): read by the pages, written only by invoices_totals_apply
    "invoice_totals",
    "ap_batch_paid",
    "retainage_totals",
    "contractor_retainage_totals",  # revision 0020
    "payout_accounts",  # revision 0022: a contractor's account on the Stripe rail
    "payout_attempts",  # revision 0024: each call to the rail for an invoice
    # revision 0027: payment controls (issue 18)
    "approval_policies",
    "approval_policy_steps",
    "invoice_approvals",
    "approval_delegations",
    "holds",
    "rail_reconciliations",  # revision 0026: the Stripe reconciliation's runs (read only; the worker writes)
    "rail_reconciliation_findings",  # and their findings
    "tax_profiles",  # revision 0028: contractors' W-9s and W-8s
    "user_preferences",  # revision 0034: each person's time zone and email choice, their own row
    "tax_tins",  # their TINs, encrypted (finance and admins read them; contractors write them)
    "tax_year_filings",  # the 1099-NEC exports and the year's lock
    # revision 0031: self-billed e-invoices (issue 21)
    "einvoice_profiles",
    "self_billing_agreements",
    "invoice_acceptances",
    # revision 0029: from project to contract (issue 19)
    "project_categories",
    "projects",
    "project_invitations",
    "proposals",
    "proposal_milestones",
    "proposal_files",
    # revision 0030: completion billing (issue 20): the tasks a task or final invoice bills
    "invoice_tasks",
}

PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"


def app_role_name(database) -> str:
    return make_url(database.app_url).username


def owner_role_name(database) -> str:
    return make_url(database.admin_url).username


@contextmanager
def superuser(database):
    with psycopg.connect(database.superuser_url, autocommit=True) as conn:
        yield conn


def doctor(app_engine) -> tuple[list[str], list[str]]:
    with app_engine.connect() as conn:
        return rls_problems(conn)


def tables_the_app_role_can_use(conn) -> dict[str, tuple[bool, bool, int]]:
    """name -> (relrowsecurity, relforcerowsecurity, policies) for every public table on which the
    app role holds any table-level OR column-level privilege."""
    rows = conn.execute(
        text(
            """
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
              from pg_class c
             where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
               and (has_table_privilege(current_user, c.oid, :privs)
                    or has_any_column_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
            """
        ),
        {"privs": PRIVILEGES},
    ).all()
    return {r.relname: (r.relrowsecurity, r.relforcerowsecurity, r.policies) for r in rows}


# --- the role itself -------------------------------------------------------------------------------


def test_app_role_is_neither_superuser_nor_bypassrls(app_engine, database):
    with app_engine.connect() as conn:
        row = conn.execute(
            text("select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user")
        ).one()
    assert row.rolname == app_role_name(database)
    assert row.rolsuper is False
    assert row.rolbypassrls is False


def test_app_role_belongs_to_no_role_that_could_bypass_rls(app_engine):
    with app_engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    """
                select r.rolname from pg_roles r
                 where r.rolname <> current_user and pg_has_role(current_user, r.oid, 'MEMBER')
                   and (r.rolsuper or r.rolbypassrls)
                """
                )
            )
            .scalars()
            .all()
        )
    assert rows == []


def test_app_role_owns_no_table_in_public(app_engine):
    with app_engine.connect() as conn:
        owned = (
            conn.execute(
                text(
                    "select relname from pg_class where relnamespace = 'public'::regnamespace"
                    " and pg_has_role(current_user, relowner, 'MEMBER')"
                )
            )
            .scalars()
            .all()
        )
    assert owned == []


def test_app_role_owns_no_function_in_public(app_engine):
    with app_engine.connect() as conn:
        owned = (
            conn.execute(
                text(
                    "select proname from pg_proc where pronamespace = 'public'::regnamespace"
                    " and pg_has_role(current_user, proowner, 'MEMBER')"
                )
            )
            .scalars()
            .all()
        )
        schema_owner = conn.execute(
            text("select pg_has_role(current_user, nspowner, 'MEMBER') from pg_namespace where nspname = 'public'")
        ).scalar_one()
    assert owned == []
    assert schema_owner is False


def test_every_table_the_app_role_can_use_has_rls_enabled_and_forced(app_engine):
    with app_engine.connect() as conn:
        tables = tables_the_app_role_can_use(conn)
    assert set(tables) == APP_TABLES  # column-level grants (users) count as "can use"
    not_protected = {name: flags for name, flags in tables.items() if not (flags[0] and flags[1] and flags[2] > 0)}
    assert not_protected == {}


def test_security_definer_functions_pin_their_search_path(app_engine):
    with app_engine.connect() as conn:
        unpinned = (
            conn.execute(
                text(
                    """
                select proname from pg_proc
                 where pronamespace = 'public'::regnamespace and prosecdef
                   and not exists (select 1 from unnest(coalesce(proconfig, '{}')) c where c like 'search_path=%')
                """
                )
            )
            .scalars()
            .all()
        )
    assert unpinned == []


# --- doctor -------------------------------------------------------------------------------------------


def test_doctor_finds_no_problem_in_the_migrated_database(app_engine):
    problems, passed = doctor(app_engine)
    assert problems == []
    assert any("NOSUPERUSER NOBYPASSRLS" in line for line in passed)


@pytest.mark.parametrize("table", sorted(APP_TABLES))
@pytest.mark.parametrize(
    ("statement", "complaint"),
    [("no force row level security", "is not forced"), ("disable row level security", "is not enabled")],
)
def test_doctor_names_a_table_whose_rls_is_weakened(app_engine, admin_engine, table, statement, complaint):
    with admin_engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '5s'"))
        conn.execute(text(f"alter table {table} {statement}"))
    try:
        problems, _ = doctor(app_engine)
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("set local lock_timeout = '5s'"))
            conn.execute(text(f"alter table {table} enable row level security, force row level security"))
    assert [p for p in problems if p.startswith(f"table {table}:") and complaint in p], problems
    assert doctor(app_engine)[0] == []  # restored


def test_doctor_reports_an_app_role_with_bypassrls(database, app_engine):
    role = sql.Identifier(app_role_name(database))
    with superuser(database) as conn:
        conn.execute(sql.SQL("alter role {} bypassrls").format(role))
    try:
        problems, _ = doctor(app_engine)
    finally:
        with superuser(database) as conn:
            conn.execute(sql.SQL("alter role {} nobypassrls").format(role))
    assert [p for p in problems if "BYPASSRLS" in p and app_role_name(database) in p], problems
    assert doctor(app_engine)[0] == []  # restored


def test_doctor_reports_an_app_role_that_is_a_member_of_the_owner_role(database, app_engine):
    app, owner = sql.Identifier(app_role_name(database)), sql.Identifier(owner_role_name(database))
    with superuser(database) as conn:
        conn.execute(sql.SQL("grant {} to {}").format(owner, app))
    try:
        problems, _ = doctor(app_engine)
    finally:
        with superuser(database) as conn:
            conn.execute(sql.SQL("revoke {} from {}").format(owner, app))
    assert [p for p in problems if f"member of {owner_role_name(database)}" in p], problems
    assert doctor(app_engine)[0] == []  # restored


# --- what the app role may write, column by column -----------------------------------------------------------

# Every privilege the app role holds on the tables of the invitation model, as (column, privilege).
# accepted_at is nobody's to write but accept_invite()'s; an invite's clock columns are the database's;
# an account's identity, password and flags are out of reach (DESIGN.md section 5).
_ALL = object()


def table_columns(conn, table: str) -> set[str]:
    """All of the table's columns, whatever the connected role may do with them (pg_attribute, not
    information_schema, which lists only the columns the role holds a privilege on)."""
    return set(
        conn.execute(
            text(
                "select attname from pg_attribute"
                " where attrelid = cast(:t as regclass) and attnum > 0 and not attisdropped"
            ),
            {"t": f"public.{table}"},
        ).scalars()
    )


EXPECTED_COLUMN_PRIVILEGES = {
    "memberships": {
        "SELECT": _ALL,
        "INSERT": {"id", "org_id", "user_id", "role", "contractor_id"},
        "UPDATE": {"role", "contractor_id"},
    },
    "invites": {
        "SELECT": _ALL,
        "INSERT": {"id", "org_id", "user_id", "email", "name", "token_hash", "created_by"},
        "UPDATE": {"used_at"},
    },
    "users": {
        # No UPDATE: signing out ends sign-in sessions (auth_sign_out); no page renames a user.
        "SELECT": {"id", "email", "name", "is_active", "created_at", "last_login_at"},
    },
    # an authorization's amounts, parties and dates are never updatable, only its payment status
    "invoices": {
        "SELECT": _ALL,
        "INSERT": _ALL,
        "UPDATE": {"status", "batch_id", "exported_at", "paid_at"},  # updated_at: invoices_guard sets it
    },
    # a batch is sealed once with its file (the guard allows it only in the writing transaction); then
    # it can only be voided
    "ap_export_batches": {
        "SELECT": _ALL,
        "INSERT": _ALL,
        "UPDATE": {
            "size_bytes",
            "sha256",
            "row_count",
            "total_minor",
            "invoice_ids",
            "status",
            "voided_by",
            "voided_at",
            "void_reason",
        },
    },
    # a message's content and recipient never change once written; only how its sending went. An admin's
    # invitation is written by the request, but never as delivered (nor when): that is the worker's
    "email_messages": {
        "SELECT": _ALL,
        "INSERT": {
            "id",
            "org_id",
            "event",
            "recipient_user_id",
            "recipient",
            "subject",
            "html",
            "text",
            "status",
            "attempts",
            "dedupe_key",
            "entity_type",
            "entity_id",
        },
        "UPDATE": {"status", "updated_at"},  # an admin sends it again; the rest is the worker's (delivery)
    },
    # a notification is written by the worker alone, and only ever marked read on the web
    "notifications": {"SELECT": _ALL, "UPDATE": {"read_at"}},
    # when a change order was issued is the database's now() (milestones_guard relies on it)
    "change_orders": {
        "SELECT": _ALL,
        "INSERT": {
            "id",
            "org_id",
            "contractor_id",
            "engagement_id",
            "number",
            "reason",
            "contract_value_before",
            "contract_value_after",
            "created_by",
        },
    },
}
EXPECTED_COLUMN_PRIVILEGES |= {
    # projects and proposals (revision 0029): updated only in the columns their services write; never an id, an
    # organization, a creator or a submitter, nor when something was created or submitted
    "project_categories": {"SELECT": _ALL, "INSERT": _ALL, "UPDATE": {"archived_at"}},
    "projects": {
        "SELECT": _ALL,
        "INSERT": _ALL,
        "UPDATE": {
            "title",
            "description",
            "category_id",
            "currency",
            "budget_minor",
            "deadline",
            "billing_mode",
            "advance_bps",  # revision 0030: a completion project's advance, edited with its billing mode
            "audience",
            "owner_user_id",
            "status",
            "updated_at",
            "awarded_by",
            "awarded_at",
            "cancelled_by",
            "cancelled_at",
            "cancel_reason",
        },
    },
    "proposals": {
        "SELECT": _ALL,
        "INSERT": _ALL,
        "UPDATE": {
            "price_minor",
            "timeline",
            "note",
            "status",
            "updated_at",
            "withdrawn_at",
            "decided_by",
            "decided_at",
        },
    },
}
EXPECTED_TABLE_PRIVILEGES = {
    "memberships": {"SELECT", "DELETE"},
    "invites": {"SELECT"},
    "users": set(),
    "invoices": {"SELECT", "INSERT"},
    "ap_export_batches": {"SELECT", "INSERT"},
    "payments": {"SELECT", "INSERT"},
    "ledger_entries": {"SELECT", "INSERT"},
    "email_messages": {"SELECT"},
    "notifications": {"SELECT"},
    # a receipt is the worker's to file and is kept as issued: no INSERT, UPDATE or DELETE (and a trigger
    # refuses the last two for everyone)
    "documents": {"SELECT"},
    "contractors": {"SELECT", "INSERT"},  # no page removes a contractor
    # derived totals: read only; their trigger (the owner's) writes them
    "invoice_totals": {"SELECT"},
    "ap_batch_paid": {"SELECT"},
    "retainage_totals": {"SELECT"},
    "contractor_retainage_totals": {"SELECT"},
    "payout_accounts": {"SELECT", "INSERT"},  # and UPDATE of its readiness columns (column grants)
    "payout_attempts": {"SELECT", "INSERT"},  # only the worker closes one
    # payment controls: never deleted; their updates are column grants (switched off, decided, revoked, released)
    "approval_policies": {"SELECT", "INSERT"},
    "approval_policy_steps": {"SELECT", "INSERT"},
    "invoice_approvals": {"SELECT"},  # written by the database when an invoice starts under a policy
    "approval_delegations": {"SELECT", "INSERT"},
    "holds": {"SELECT", "INSERT"},
    # the reconciliation page reads them; only the worker writes them, once
    "rail_reconciliations": {"SELECT"},
    "rail_reconciliation_findings": {"SELECT"},
    "change_orders": {"SELECT"},
    "password_resets": set(),
    "account_messages": set(),  # a password reset's email: the worker role's alone
    # tax forms (revision 0028): a TIN is written once and never changed; a profile and a filing are updated only
    # in the columns their pages write (column grants)
    "tax_profiles": {"SELECT", "INSERT"},
    "tax_tins": {"SELECT", "INSERT"},
    "tax_year_filings": {"SELECT", "INSERT"},
    # self-billing (revision 0031): profiles and agreements are updated in their columns only (column grants); an
    # answer to a self-billed invoice is append-only; nothing is deleted
    "einvoice_profiles": {"SELECT", "INSERT"},
    "self_billing_agreements": {"SELECT", "INSERT"},
    "invoice_acceptances": {"SELECT", "INSERT"},
    # projects and proposals (revision 0029): nothing is deleted but an unused invitation and a proposal's parts,
    # which its contractor replaces when it edits (a proposal itself is withdrawn, never deleted)
    "project_categories": {"SELECT", "INSERT"},
    "projects": {"SELECT", "INSERT"},
    "project_invitations": {"SELECT", "INSERT", "DELETE"},
    "proposals": {"SELECT", "INSERT"},
    "proposal_milestones": {"SELECT", "INSERT", "DELETE"},
    "proposal_files": {"SELECT", "INSERT", "DELETE"},
    # completion billing (revision 0030): written with its invoice, never updated nor deleted (voided with its
    # invoice by a rejected approval step, which runs as the owner)
    "invoice_tasks": {"SELECT", "INSERT"},
}


@pytest.mark.parametrize("table", sorted(EXPECTED_COLUMN_PRIVILEGES))
def test_app_role_holds_exactly_the_intended_column_privileges(app_engine, table):
    with app_engine.connect() as conn:
        columns = table_columns(conn, table)
        held = {
            privilege: {
                c
                for c in columns
                if conn.execute(
                    text("select has_column_privilege(current_user, :t, :c, :p)"),
                    {"t": f"public.{table}", "c": c, "p": privilege},
                ).scalar_one()
            }
            for privilege in ("SELECT", "INSERT", "UPDATE", "REFERENCES")
        }
    expected = {p: (columns if cols is _ALL else cols) for p, cols in EXPECTED_COLUMN_PRIVILEGES[table].items()}
    assert {p: cols for p, cols in held.items() if cols} == expected


@pytest.mark.parametrize("table", sorted(EXPECTED_TABLE_PRIVILEGES))
def test_app_role_holds_exactly_the_intended_table_privileges(app_engine, table):
    with app_engine.connect() as conn:
        held = {
            p
            for p in PRIVILEGES.split(", ")
            if conn.execute(
                text("select has_table_privilege(current_user, :t, :p)"), {"t": f"public.{table}", "p": p}
            ).scalar_one()
        }
    assert held == EXPECTED_TABLE_PRIVILEGES[table]


# SECURITY DEFINER functions run as the owner (BYPASSRLS): each is a door through RLS, so the list is closed.
EXPECTED_DEFINER_FUNCTIONS = {
    "app_user_id",
    "app_membership",
    "app_org_id",
    "app_role",
    "app_contractor_id",
    "my_memberships",
    "app_visible_user_ids",
    "app_sent_engagement_ids",
    "search_hits",  # the header's search: ids and ranks of the caller's org through GIN (sql/search.sql)
    "auth_password_salt",
    "auth_sign_in",
    "auth_sign_out",
    "invite_user_account",
    "invite_details",
    "accept_invite",
    "audit_events_chain",  # a trigger function: PostgreSQL refuses to call it other than as a trigger
    # trigger functions that must see every revision and review whatever the caller's policies hide
    "submissions_guard",
    "submissions_have_evidence",
    "evidence_files_complete",
    "reviews_guard",
    "reviews_moved_milestone",
    # money: numbers, amounts and pay-once checked against rows the caller may not see
    # (next_org_number is not among them: only those triggers call it, so nobody can skip a number)
    "invoices_guard",
    "payments_guard",
    "payments_paid_invoice",
    "ap_export_batches_guard",
    "ap_export_batches_complete",
    "ledger_entries_balanced",
    # jobs: the one way into the queue, for the current organization (job_org_ids() is the worker role's)
    "enqueue_job",
    "service_health",  # GET /healthz: the revision and live job workers, nothing of any tenant
    # password resets: the table has no policy at all; only these reach it
    "password_reset_start",
    "password_reset_email",
    "password_reset_finish",
    # payment rails: a webhook event, its signature verified by the web, stored once for its organization
    "rail_event_receive",
    # tax forms: whether a contractor's form is complete, for members who may not read the form (project owners)
    "tax_form_problems",
    # self-billing: which invoices the contractor's answer stops paying, for members who may not read every answer
    "acceptance_blocks",
    # projects: the projects a contractor may see by invitation or by its proposal, for the policy on projects
    "app_contractor_project_ids",
    # completion billing (revision 0030, sql/completion.sql): whether a completion engagement's final payment is
    # settled (engagements_guard asks it as the caller, who may not see every invoice of the engagement), completing
    # it then (the approval step's decider may be finance, who updates no engagement), whether a task's invoice was
    # voided in this transaction (milestones_guard, for a caller who may not read invoice_tasks), and what a
    # proposal's milestones share (the proposals' commit checks, run as the contractor's user: that one proposal and
    # its project's advance, in the caller's organization only)
    "completion_settled",
    "completion_close",
    "task_invoice_voided_now",
    "proposal_task_pool",
    # self-billing (revision 0031, sql/self_billing.sql): where the contractor's answer to each self-billed invoice
    # stands, for members who may not read the documents (project owners); its own contractor's only for a contractor
    "invoice_acceptances_seen",
}


def test_app_role_may_execute_exactly_the_intended_security_definer_functions(app_engine):
    with app_engine.connect() as conn:
        callable_ = set(
            conn.execute(
                text(
                    "select proname from pg_proc where pronamespace = 'public'::regnamespace and prosecdef"
                    " and has_function_privilege(current_user, oid, 'EXECUTE')"
                )
            ).scalars()
        )
    assert callable_ == EXPECTED_DEFINER_FUNCTIONS


@pytest.mark.parametrize("name", ["redeem_invite", "invite_is_valid", "pending_members", "may_issue_password_link"])
def test_the_functions_of_the_old_invitation_model_are_gone(app_engine, name):
    with app_engine.connect() as conn:
        assert conn.execute(text("select count(*) from pg_proc where proname = :n"), {"n": name}).scalar_one() == 0


def test_accounts_no_longer_record_which_org_invited_them(app_engine):
    with app_engine.connect() as conn:
        columns = table_columns(conn, "users")
    assert "invited_by_org_id" not in columns
    assert {"id", "email", "password_hash"} <= columns


def test_calling_the_chain_trigger_function_directly_is_refused(app_engine):
    with app_engine.connect() as conn, pytest.raises(Exception) as exc:
        conn.execute(text("select audit_events_chain()"))
    assert "trigger" in str(exc.value)


# --- doctor: views and SECURITY DEFINER functions ---------------------------------------------------------------


@pytest.mark.parametrize(("options", "flagged"), [("", True), ("with (security_invoker = true)", False)])
def test_doctor_names_a_view_the_app_role_reads_with_its_owners_rights(
    database, app_engine, admin_engine, options, flagged
):
    app = app_role_name(database)
    with admin_engine.begin() as conn:
        conn.execute(text(f"create view doctor_probe_view {options} as select id, email from users"))
        conn.execute(text(f'grant select on doctor_probe_view to "{app}"'))
    try:
        problems, _ = doctor(app_engine)
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("drop view if exists doctor_probe_view"))
    named = [p for p in problems if "doctor_probe_view" in p]
    assert bool(named) is flagged, problems
    if flagged:
        assert "security_invoker" in named[0]
    assert doctor(app_engine)[0] == []  # restored


@pytest.mark.parametrize(("config", "flagged"), [("", True), ("set search_path = pg_catalog, pg_temp", False)])
def test_doctor_names_a_security_definer_function_without_a_pinned_search_path(
    database, app_engine, admin_engine, config, flagged
):
    app = app_role_name(database)
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                f"create function doctor_probe_fn() returns int language sql security definer {config}"
                " as $$ select 1 $$"
            )
        )
        conn.execute(text(f'grant execute on function doctor_probe_fn() to "{app}"'))
    try:
        problems, _ = doctor(app_engine)
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("drop function if exists doctor_probe_fn()"))
    assert bool([p for p in problems if "doctor_probe_fn" in p]) is flagged, problems
    assert doctor(app_engine)[0] == []  # restored
