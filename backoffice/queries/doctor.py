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
