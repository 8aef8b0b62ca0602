"""Schema management: Alembic upgrades as the owner role, and the SQL files under sql/."""

from __future__ import annotations

import functools
import os

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backoffice.config import MIGRATIONS_DIR, SQL_DIR
from backoffice.db import make_engine

# The files under sql/, in the one order every migration applies them. Each is idempotent and skips what
# concerns tables an earlier revision has not created yet. A function comes before the policies and
# guards that call it; a new file goes here (tests/integration/test_sql_layout.py holds this list equal
# to the directory).
SQL_FILES = (
    "rules.sql",  # the domain's rules in SQL (pure functions) that queries, policies and guards call
    "rls_policies.sql",  # context helpers (app_org_id() ...), every policy, the table grants
    # the payment rails (Stripe Connect): their tables' policies and grants (before new_ids.sql reads the
    # grants) and the webhook's door
    "rails.sql",
    # the data room (documents): who reads which document (a contractor its own remittance advices), who files one
    "data_room.sql",
    # payment controls (issue 18): approval policies, each invoice's approvals, delegations, holds; their policies,
    # grants and guards
    "controls.sql",
    # tax forms and the 1099-NEC year end: their tables' policies and grants (before new_ids.sql), the rule of a
    # complete form, and the guards that refuse to export or pay a contractor without one when the org requires it
    "tax.sql",
    # projects and proposals (issue 19): their policies and grants (before new_ids.sql), the domain's twins, and the
    # guards of the award
    "projects.sql",
    # completion billing (issue 20): the twins of domain/completion.py, invoice_tasks' policies and grants and the
    # contractor's two invoice kinds (before new_ids.sql), the guards of the advance, task and final invoices and of
    # invariant 6
    "completion.sql",
    # self-billed e-invoices (issue 21): profiles, self-billing agreements and the contractor's acceptances (policies
    # and grants before new_ids.sql), the twin of domain.self_billing, and the guards that refuse to pay what the
    # contractor has not accepted where the organization requires it
    "self_billing.sql",
    # the header's search (issue 22): the door that lets a full-text match use its GIN index under RLS
    "search.sql",
    # each person's preferences (issue 22): time zone and each email or a daily digest; its policies and grants
    "preferences.sql",
    "append_only.sql",  # the tables nobody updates, deletes or truncates
    "new_ids.sql",  # an insert never names an existing row's id (ON CONFLICT would lock it)
    "audit.sql",  # the audit trail's hash chain
    "auth.sql",  # sign-in, invitations, password resets
    "engagements.sql",  # engagement and milestone guards
    "project_guards.sql",  # the guards of projects and proposals, and the award's checks at commit
    "reviews.sql",  # submission, evidence and review guards, and their checks at commit
    "money.sql",  # invoice, payment, AP export and ledger guards; ap_csv_text()
    "jobs.sql",  # the queue's one door for the web (enqueue_job) and what periodic jobs may learn
)


def apply_rls_policies() -> None:
    """Apply every file of SQL_FILES, in order, inside the running migration (the name predates the split
    of sql/rls_policies.sql; migrations 0001 to 0005 call it)."""
    _apply_sql_files(op.get_bind())


def _apply_sql_files(connection) -> None:
    # Straight to psycopg: the files hold many statements, dollar quotes and % signs that neither
    # SQLAlchemy's text() nor a parameterised execute should interpret.
    connection = connection.connection.driver_connection
    for name in SQL_FILES:
        try:
            connection.execute((SQL_DIR / name).read_text())
        except Exception as error:
            error.add_note(f"while applying sql/{name}")
            raise


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def app_role_of(app_url: str, variable: str = "DATABASE_URL") -> str:
    role = make_url(app_url).username
    if not role:
        raise SystemExit(f"{variable} must name its role (postgresql://ROLE:password@host/db).")
    return role


# The failed-login throttle's limits and how long a sign-in lasts: (variable, column, default, lowest,
# highest). They live in the database (table login_settings, which only the owner role writes), so no
# caller of the sign-in functions (sql/auth.sql) picks them.
LOGIN_LIMITS = (
    ("BACKOFFICE_LOGIN_MAX_FAILURES", "max_failures", 5, 1, 100),
    ("BACKOFFICE_LOGIN_LOCK_MINUTES", "lock_minutes", 15, 1, 1440),
    ("BACKOFFICE_SESSION_HOURS", "session_hours", 12, 1, 720),
)


def login_limits() -> dict[str, int]:
    """The throttle's limits from the environment (or their defaults); SystemExit naming one out of range."""
    limits = {}
    for variable, column, default, lowest, highest in LOGIN_LIMITS:
        raw = os.environ.get(variable, "").strip() or str(default)
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not lowest <= value <= highest:
            raise SystemExit(f"{variable} must be a whole number from {lowest} to {highest}, not {raw!r}.")
        limits[column] = value
    return limits


def upgrade(admin_url: str, app_url: str, worker_url: str, revision: str = "head", *, sql_files: bool = False) -> None:
    """Migrate to ``revision`` as the owner role, granting to the app role named in ``app_url`` and to the
    worker role named in ``worker_url`` (the SQL files read them from backoffice.app_role and
    backoffice.worker_role); then write the login throttle's limits (``login_limits()``) into the database.

    ``sql_files``: apply the files of SQL_FILES afterwards even when no migration ran (a database already at
    ``revision`` is otherwise left as it is): a restored database has its tables and rows but none of its
    grants and policies, which name roles of the database it came from. All in one transaction."""
    app_role, worker_role = app_role_of(app_url), app_role_of(worker_url, "DATABASE_WORKER_URL")
    if app_role == worker_role:
        raise SystemExit("DATABASE_URL and DATABASE_WORKER_URL must name two different roles.")
    limits = login_limits()  # before migrating: a bad value changes nothing
    cfg = alembic_config()
    engine = make_engine(admin_url)
    try:
        with engine.connect() as connection:
            cfg.attributes["connection"] = connection
            cfg.attributes["app_role"] = app_role
            cfg.attributes["worker_role"] = worker_role
            command.upgrade(cfg, revision)
            if sql_files:
                # The names as env.py gives them to a migration, for this transaction only.
                connection.exec_driver_sql(
                    "select set_config('backoffice.app_role', %(a)s, true),"
                    " set_config('backoffice.worker_role', %(w)s, true)",
                    {"a": app_role, "w": worker_role},
                )
                _apply_sql_files(connection)
            columns = set(
                connection.execute(
                    text(
                        "select column_name from information_schema.columns"
                        " where table_schema = 'public' and table_name = 'login_settings'"
                    )
                ).scalars()
            )
            present = [c for c in limits if c in columns]  # an earlier revision has fewer of them
            if present:
                assignments = ", ".join(f"{c} = :{c}" for c in present)  # column names from LOGIN_LIMITS only
                connection.execute(
                    text(f"update login_settings set {assignments}, updated_at = now()"),
                    {c: limits[c] for c in present},
                )
            connection.commit()
    finally:
        engine.dispose()


@functools.cache
def head_revisions() -> frozenset[str]:
    """The newest migration's revision id (the code's, read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def pending_revisions(admin_url: str) -> bool:
    """True when the database is not at the newest migration."""
    engine = make_engine(admin_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return set(current) != set(head_revisions())
