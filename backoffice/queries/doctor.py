"""Could anything bypass row-level security? Read from the catalogs, connected as the app role."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_ROLE = text(
    """
    select r.rolname, r.rolsuper, r.rolbypassrls
      from pg_roles r where r.rolname = current_user
    """
)
# Every role the app role can become or inherit from, and what it could do there.
_GRANTED_ROLES = text(
    """
    with recursive granted(oid) as (
        select m.roleid from pg_auth_members m join pg_roles r on r.oid = m.member where r.rolname = current_user
        union
        select m.roleid from pg_auth_members m join granted g on m.member = g.oid
    )
    select r.rolname, r.rolsuper, r.rolbypassrls from granted g join pg_roles r on r.oid = g.oid
    """
)
_TABLES = text(
    """
    select c.relname, c.relrowsecurity, c.relforcerowsecurity,
           pg_has_role(current_user, c.relowner, 'MEMBER') as app_owns,
           (has_table_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
            or has_any_column_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE')) as app_can_touch,
           (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
      from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
     order by c.relname
    """
)


# A view runs with its owner's rights unless security_invoker is set; an owner that bypasses RLS
# (ours does) would hand every tenant's rows to whoever may read the view.
_VIEWS = text(
    """
    select c.relname
      from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm')
       and has_table_privilege(current_user, c.oid, 'SELECT')
       and not coalesce('security_invoker=true' = any (c.reloptions)
                        or 'security_invoker=on' = any (c.reloptions), false)
    """
)
# SECURITY DEFINER functions the app may call must pin search_path, or a caller could shadow what they read.
_DEFINER_FUNCTIONS = text(
    """
    select p.proname
      from pg_proc p
     where p.pronamespace = 'public'::regnamespace and p.prosecdef
       and has_function_privilege(current_user, p.oid, 'EXECUTE')
       and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) cfg where cfg like 'search_path=%')
    """
)


def rls_problems(conn: Connection) -> tuple[list[str], list[str]]:
    """(problems, checks passed). Any problem means some row could be read or written without RLS."""
    problems: list[str] = []
    passed: list[str] = []
    role = conn.execute(_ROLE).one()
    if role.rolsuper:
        problems.append(f"app role {role.rolname} is a superuser (ALTER ROLE {role.rolname} NOSUPERUSER)")
    if role.rolbypassrls:
        problems.append(f"app role {role.rolname} has BYPASSRLS (ALTER ROLE {role.rolname} NOBYPASSRLS)")
    if not (role.rolsuper or role.rolbypassrls):
        passed.append(f"app role {role.rolname} is NOSUPERUSER NOBYPASSRLS")
    for g in conn.execute(_GRANTED_ROLES):
        if g.rolsuper or g.rolbypassrls:
            problems.append(f"app role {role.rolname} is a member of {g.rolname}, which bypasses RLS")
    tables = conn.execute(_TABLES).all()
    for t in tables:
        if t.app_owns:
            problems.append(
                f"table {t.relname} is owned by the app role (or a role it belongs to): owners can turn RLS off"
            )
        if t.app_can_touch and not t.relrowsecurity:
            problems.append(
                f"table {t.relname}: row level security is not enabled "
                f"(ALTER TABLE {t.relname} ENABLE ROW LEVEL SECURITY)"
            )
        if t.app_can_touch and not t.relforcerowsecurity:
            problems.append(
                f"table {t.relname}: row level security is not forced "
                f"(ALTER TABLE {t.relname} FORCE ROW LEVEL SECURITY)"
            )
        if t.app_can_touch and t.relrowsecurity and t.policies == 0:
            problems.append(f"table {t.relname}: RLS is on but there is no policy, so the app can use none of its rows")
    for v in conn.execute(_VIEWS):
        problems.append(
            f"view {v.relname} is readable by the app role and runs with its owner's rights "
            "(set security_invoker = true)"
        )
    for f in conn.execute(_DEFINER_FUNCTIONS):
        problems.append(f"SECURITY DEFINER function {f.proname} does not pin search_path")
    protected = [t.relname for t in tables if t.app_can_touch and t.relrowsecurity and t.relforcerowsecurity]
    closed = [t.relname for t in tables if not t.app_can_touch]
    passed.append(f"{len(protected)} tables the app role can use have RLS enabled and forced: {', '.join(protected)}")
    if closed:
        passed.append(f"no privileges for the app role on: {', '.join(closed)}")
    return problems, passed


# The job queue (procrastinate's schema) has no row-level security: the web role (current_user here) must
# have nothing in it, and enqueue through enqueue_job() (sql/jobs.sql) only.
_QUEUE_PRIVILEGES = text(
    """
    select format('%s %s', case c.relkind when 'S' then 'sequence' else 'table' end, c.oid::regclass) as name
      from pg_class c
     where c.relnamespace = to_regnamespace('procrastinate') and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
       and case when c.relkind = 'S' then has_sequence_privilege(current_user, c.oid, 'USAGE, SELECT, UPDATE')
                else has_table_privilege(current_user, c.oid,
                                         'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                     or has_any_column_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES') end
    union all
    select format('function %s', p.oid::regprocedure)
      from pg_proc p
     where p.pronamespace = to_regnamespace('procrastinate') and has_function_privilege(current_user, p.oid, 'EXECUTE')
    union all
    select 'schema procrastinate'
     where to_regnamespace('procrastinate') is not null
       and has_schema_privilege(current_user, to_regnamespace('procrastinate'), 'USAGE, CREATE')
     order by 1
    """
)
_WEB_JOB_ORG_IDS = text(
    """
    select to_regprocedure('public.job_org_ids()') is not null
           and has_function_privilege(current_user, to_regprocedure('public.job_org_ids()'), 'EXECUTE')
    """
)
_WORKER_ROLE = text(
    """
    select r.oid, r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
           array(select c.oid::regclass::text from pg_class c where c.relowner = r.oid
                 union all select p.oid::regprocedure::text from pg_proc p where p.proowner = r.oid
                 union all select n.nspname::text from pg_namespace n where n.nspowner = r.oid
                 union all select t.typname::text from pg_type t where t.typowner = r.oid and t.typrelid = 0
                 union all select d.datname::text from pg_database d where d.datdba = r.oid
                 order by 1) as owns,
           array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid
                  where m.member = r.oid order by 1) as member_of,
           array(select u.rolname::text from pg_auth_members m join pg_roles u on u.oid = m.member
                  where m.roleid = r.oid and not u.rolsuper order by 1) as members,
           pg_has_role(current_user, r.oid, 'MEMBER') as web_can_become,
           current_user::text as web_role
      from pg_roles r where r.rolname = :worker
    """
)


def queue_problems(conn: Connection, worker_role: str | None) -> tuple[list[str], list[str]]:
    """(problems, checks passed) about the job queue and the worker role (DESIGN.md section 5): the web
    role (this connection's) can touch nothing of the queue and cannot list organizations; the worker
    role is NOBYPASSRLS, no superuser, owns nothing, and no role is a member of it or it of any."""
    problems: list[str] = []
    passed: list[str] = []
    web = conn.execute(text("select current_user")).scalar_one()
    opened = conn.execute(_QUEUE_PRIVILEGES).scalars().all()
    for name in opened:
        problems.append(
            f"the app role {web} has privileges on the job queue's {name}, which has no row-level security "
            f"(REVOKE ALL ON {name.split(' ', 1)[1]} FROM {web}; it enqueues through enqueue_job())"
        )
    if not opened:
        passed.append(f"app role {web} has no privilege in the job queue's schema (it enqueues through enqueue_job())")
    if conn.execute(_WEB_JOB_ORG_IDS).scalar_one():
        problems.append(
            f"the app role {web} may execute job_org_ids(), which lists every organization "
            f"(REVOKE EXECUTE ON FUNCTION job_org_ids() FROM {web})"
        )
    if not worker_role:
        problems.append("DATABASE_WORKER_URL is not set: background jobs have no role of their own to check")
        return problems, passed
    worker = conn.execute(_WORKER_ROLE, {"worker": worker_role}).one_or_none()
    if worker is None:
        problems.append(f"the worker role {worker_role} does not exist (see the README: On an existing PostgreSQL)")
        return problems, passed
    before = len(problems)
    if worker.rolsuper:
        problems.append(f"worker role {worker_role} is a superuser (ALTER ROLE {worker_role} NOSUPERUSER)")
    if worker.rolbypassrls:
        problems.append(f"worker role {worker_role} has BYPASSRLS (ALTER ROLE {worker_role} NOBYPASSRLS)")
    if worker.rolcreaterole:
        problems.append(f"worker role {worker_role} may create roles (ALTER ROLE {worker_role} NOCREATEROLE)")
    if worker.owns:
        problems.append(f"worker role {worker_role} owns {', '.join(worker.owns)}: an owner can turn RLS off")
    if worker.member_of:
        problems.append(f"worker role {worker_role} is a member of {', '.join(worker.member_of)}")
    if worker.members:
        problems.append(
            f"{', '.join(worker.members)} can become the worker role {worker_role}, which has an admin's reach "
            "in any organization a job names"
        )
    elif worker.web_can_become:
        problems.append(f"the app role {worker.web_role} can become the worker role {worker_role}")
    if worker_role == worker.web_role:
        problems.append("DATABASE_URL and DATABASE_WORKER_URL name the same role: jobs need a role of their own")
    if len(problems) == before:
        passed.append(
            f"worker role {worker_role} is NOSUPERUSER NOBYPASSRLS, owns nothing, "
            "and no role is a member of it or it of any"
        )
    return problems, passed


# --- the web role is the signed-in person and no more (DESIGN.md section 5, issue 16) -----------------

# Tables the web role must not touch at all: secrets and the server's own settings.
CLOSED_TO_WEB = ("user_sessions", "password_resets", "login_settings", "login_throttle")
# Functions the web role must not execute: each would open a session for anyone, keep the throttle for
# any address, hand out a reset token or list every organization.
FORBIDDEN_TO_WEB = (
    "auth_open_session(uuid)",
    "auth_record_failure(text)",
    "auth_record_success(uuid)",
    "password_reset_token(uuid)",
    "job_org_ids()",
)
# Functions that took a secret or a limit from their caller, or handed out any account's id: none may exist.
GONE = (
    "auth_lookup(text)",
    "auth_record_failure(text, integer, integer)",
    "password_reset_start(text, text)",
)
# Columns that name a row or its tenant: the web role never updates one (column grants), anywhere; nor the
# contractor a milestone's work or an invoice's money belongs to. (An engagement's contractor changes
# while it is a draft, which the guard of sql/engagements.sql holds to; a membership's on the members page.)
KEY_COLUMNS = ("id", "org_id", "engagement_id", "milestone_id", "user_id", "invoice_id")
KEY_TABLE_COLUMNS = ("milestones.contractor_id", "invoices.contractor_id")
_KEY_COLUMN_UPDATES = text(
    """
    select format('%s.%s', c.relname, a.attname) as name
      from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
       and (a.attname = any(:columns) or format('%s.%s', c.relname, a.attname) = any(:pairs))
       and has_column_privilege(current_user, c.oid, a.attnum, 'UPDATE')
     order by 1
    """
)
_TOUCHES = text(
    """
    select has_table_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
           or has_any_column_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE')
      from pg_class c where c.oid = to_regclass(:name)
    """
)
_EXECUTES = text(
    "select to_regprocedure(:f) is not null and has_function_privilege(current_user, to_regprocedure(:f), 'EXECUTE')"
)
_EXISTS = text("select to_regprocedure(:f) is not null")
# Who the database takes this connection's person to be when it names someone in app.user_id without a
# sign-in: nobody, or anyone could be anyone. Transaction-local, and rolled back.
_NAMED_WITHOUT_SIGN_IN = text(
    "select set_config('app.user_id', gen_random_uuid()::text, true), set_config('app.session', '', true),"
    " public.app_user_id() is null"
)


def boundary_problems(conn: Connection) -> tuple[list[str], list[str]]:
    """(problems, checks passed): the web role (this connection's) believes no identity but a sign-in, chooses
    no secret, reads no secret, and updates no key column."""
    problems: list[str] = []
    passed: list[str] = []
    before = len(problems)
    if conn.execute(_EXISTS, {"f": "public.app_user_id()"}).scalar():
        believed = conn.execute(_NAMED_WITHOUT_SIGN_IN).one()[2]
        conn.rollback()
        if not believed:
            problems.append(
                "app_user_id() believes app.user_id from the web role: anyone could act as anyone "
                "(re-apply sql/rls_policies.sql: backoffice db upgrade)"
            )
    for table in CLOSED_TO_WEB:
        if conn.execute(_TOUCHES, {"name": f"public.{table}"}).scalar():
            problems.append(f"the app role has privileges on table {table}, which only sql/auth.sql's functions reach")
    for function in FORBIDDEN_TO_WEB:
        if conn.execute(_EXECUTES, {"f": f"public.{function}"}).scalar():
            problems.append(f"the app role may execute {function}, which only the database's own functions may")
    for function in GONE:
        if conn.execute(_EXISTS, {"f": f"public.{function}"}).scalar():
            problems.append(f"function {function} takes a secret or a limit from its caller: drop it")
    for column in conn.execute(
        _KEY_COLUMN_UPDATES, {"columns": list(KEY_COLUMNS), "pairs": list(KEY_TABLE_COLUMNS)}
    ).scalars():
        problems.append(f"the app role may UPDATE {column}, a column that names a row or its tenant")
    if len(problems) == before:
        passed.append(
            "the app role is believed only with a sign-in, chooses no secret, reads no secret "
            f"({', '.join(CLOSED_TO_WEB)}), and updates no key column"
        )
    return problems, passed
