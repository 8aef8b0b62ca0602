"""The `backoffice` command: the group, its database helpers, `db` and `doctor`. The other commands live beside
it by what they are for: running the app (``running``: serve, worker), setting it up (``setup``: demo,
create-org, create-user), and its records (``records``: audit verify, backup, restore)."""

from __future__ import annotations

import sys

import click

from backoffice.config import load_settings
from backoffice.db import make_engine, make_session_factory
from backoffice.runtime import DatabaseUrls, database_urls, require_admin, require_worker


def command_urls(stop_on_exit: bool = False) -> DatabaseUrls:
    # One-shot commands leave the embedded server running so `psql "$(backoffice db url)"` can connect.
    return database_urls(load_settings(), stop_on_exit=stop_on_exit)


def admin_session(urls: DatabaseUrls):
    # Set-up commands act before anyone can sign in, so they use the owner role. Each command is one
    # unit of work: it commits once, after the bootstrap services it composes (demo seeds many).
    engine = make_engine(require_admin(urls))
    return engine, make_session_factory(engine)()


@click.group()
def main() -> None:
    """backoffice: pay contractors for delivered work, never ahead of it."""


# --- db ----------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database: migrations and connection URLs."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (as the owner role) and re-apply the RLS policies."""
    from backoffice import schema

    urls = command_urls()
    schema.upgrade(require_admin(urls), urls.app, require_worker(urls))
    click.echo("Database is at the newest migration.")


@db.command("url")
@click.option("--admin", is_flag=True, help="The owner role's URL (migrations, psql maintenance).")
@click.option("--worker", is_flag=True, help="The worker role's URL (background jobs).")
def db_url(admin: bool, worker: bool) -> None:
    """Print a connection URL, e.g. psql "$(backoffice db url --admin)"."""
    urls = command_urls()
    click.echo(require_admin(urls) if admin else require_worker(urls) if worker else urls.app)


# --- doctor --------------------------------------------------------------------------------------------


def run_doctor(urls: DatabaseUrls, *, quiet: bool = False) -> list[str]:
    """Every check of `doctor`: the problems found, each echoed (and, unless ``quiet``, what passed)."""
    from backoffice import schema
    from backoffice.queries.doctor import boundary_problems, queue_problems, rls_problems

    engine = make_engine(urls.app)
    try:
        with engine.connect() as conn:
            problems, passed = rls_problems(conn)
            more_problems, more_passed = queue_problems(conn, schema.app_role_of(urls.worker) if urls.worker else None)
            problems += more_problems
            passed += more_passed
            more_problems, more_passed = boundary_problems(conn)
            problems += more_problems
            passed += more_passed
    finally:
        engine.dispose()
    if urls.admin and schema.pending_revisions(urls.admin):
        problems.append("the database is not at the newest migration: run `backoffice db upgrade`")
    for line in [] if quiet else passed:
        click.echo(f"ok    {line}")
    for line in problems:
        click.echo(f"FAIL  {line}", err=True)
    return problems


@main.command()
def doctor() -> None:
    """Check that nothing could bypass row-level security. Exits 1, naming the problem, if something could."""
    problems = run_doctor(command_urls())
    if problems:
        click.echo(f"{len(problems)} problem(s): the app must not run like this.", err=True)
        sys.exit(1)
    click.echo("All checks passed.")


# The commands of the other modules join the group when they are imported (they import ``main`` from here).
from backoffice.cli import records, running, setup  # noqa: E402

__all__ = ["main", "records", "run_doctor", "running", "setup"]
