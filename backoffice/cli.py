"""The `backoffice` command: serve, worker, db, doctor, demo, create-org, create-user, audit verify, backup,
restore."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import click
from sqlalchemy import func, select

from backoffice.config import load_settings
from backoffice.db import make_engine, make_session_factory, unit_of_work
from backoffice.runtime import DatabaseUrls, database_urls, require_admin, require_worker


def _urls(stop_on_exit: bool = False) -> DatabaseUrls:
    # One-shot commands leave the embedded server running so `psql "$(backoffice db url)"` can connect.
    return database_urls(load_settings(), stop_on_exit=stop_on_exit)


def _admin_session(urls: DatabaseUrls):
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

    urls = _urls()
    schema.upgrade(require_admin(urls), urls.app, require_worker(urls))
    click.echo("Database is at the newest migration.")


@db.command("url")
@click.option("--admin", is_flag=True, help="The owner role's URL (migrations, psql maintenance).")
@click.option("--worker", is_flag=True, help="The worker role's URL (background jobs).")
def db_url(admin: bool, worker: bool) -> None:
    """Print a connection URL, e.g. psql "$(backoffice db url --admin)"."""
    urls = _urls()
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
    problems = run_doctor(_urls())
    if problems:
        click.echo(f"{len(problems)} problem(s): the app must not run like this.", err=True)
        sys.exit(1)
    click.echo("All checks passed.")


# --- serve ---------------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-demo", is_flag=True, help="Do not seed demo data into an empty embedded database.")
@click.option(
    "--worker/--no-worker",
    default=None,
    help="Run a job worker beside the web server. Default: on in embedded mode, off with DATABASE_URL.",
)
@click.option(
    "--workers", type=int, default=None, help="Web processes. Default: BACKOFFICE_WEB_WORKERS, else one per core."
)
@click.option(
    "--threads", type=int, default=None, help="Threads per web process. Default: BACKOFFICE_WEB_THREADS, else 4."
)
@click.option("--dev", is_flag=True, help="Werkzeug's development server (one process) instead of gunicorn.")
def serve(
    host: str, port: int, no_demo: bool, worker: bool | None, workers: int | None, threads: int | None, dev: bool
) -> None:
    """Migrate, check RLS, seed demo data on first run (embedded mode) and serve the app with gunicorn.
    Ctrl+C (SIGINT) or SIGTERM stops the web server, the job worker and the embedded PostgreSQL."""
    from backoffice import schema, serving
    from backoffice.config import secret_key_for
    from backoffice.services import demo

    capacity = serving.default_capacity(workers, threads)  # before anything starts: a bad value changes nothing
    settings = load_settings()
    if not os.environ.get("BACKOFFICE_BASE_URL"):
        # Links in emails lead here unless the operator says otherwise; never to 0.0.0.0, which no one can open.
        link_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        os.environ["BACKOFFICE_BASE_URL"] = f"http://{link_host}:{port}"
    urls = _urls(stop_on_exit=True)
    _stop_on_sigterm()  # from here on, SIGTERM unwinds like Ctrl+C: the embedded PostgreSQL stops with us
    if urls.admin:
        schema.upgrade(urls.admin, urls.app, require_worker(urls))
    if run_doctor(urls):
        click.echo("Refusing to start: fix the problems above (see `backoffice doctor`).", err=True)
        sys.exit(1)
    seeded = False
    if urls.embedded and not no_demo:
        engine, session = _admin_session(urls)
        with session:
            if not demo.has_data(session):
                demo.seed(session)
                seeded = True
        engine.dispose()
    settings = load_settings()
    secret_key_for(settings)  # written once here, before the web processes start, rather than raced by them
    run_jobs = worker if worker is not None else urls.embedded
    if run_jobs:
        require_worker(urls)
    click.echo("")
    click.echo(f"backoffice is running at {settings.base_url}/")
    if urls.embedded:
        click.echo(
            f"Embedded PostgreSQL data: {settings.data_dir / 'pgdata'}" + (" (demo data seeded)" if seeded else "")
        )
        click.echo(f"Demo logins (password: {demo.DEMO_PASSWORD}):")
        for login in demo.DEMO_LOGINS:
            click.echo(f"  {login.email:<24} {login.role:<11} {login.org}")
    click.echo(
        "Emails: "
        + (
            "sent through Resend."
            if settings.resend_api_key
            else "kept in the admin outbox (set RESEND_API_KEY to send them)."
        )
    )
    if run_jobs:
        click.echo("A job worker runs beside the web server (emails, receipts, reminders, digests).")
    else:
        click.echo(
            "No job worker runs here: run `backoffice worker` beside the web servers, or emails, receipts and "
            "reminders stay queued."
        )
    if dev:
        click.echo("Development server (--dev): one process, not for production. Press Ctrl+C to stop.")
        _serve_dev(host, port, urls.app, run_jobs)
        return
    click.echo(
        f"Serving with gunicorn: {capacity.workers} web process(es) x {capacity.threads} threads "
        f"({capacity.connections} database connections). Press Ctrl+C to stop."
    )
    serving.Server(f"{host}:{port}", capacity, database_url=urls.app, job_worker=run_jobs).run()


def _stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl+C does, so the process unwinds and its exit handlers run
    (the embedded PostgreSQL is stopped by the last process using it). gunicorn installs its own."""
    import signal

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def _serve_dev(host: str, port: int, app_url: str, run_jobs: bool) -> None:
    import subprocess

    from werkzeug.serving import run_simple

    from backoffice import create_app, serving

    job = subprocess.Popen(serving.job_worker_command(), start_new_session=True) if run_jobs else None
    try:
        run_simple(host, port, create_app(app_url), threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        serving.stop_job_worker(job)


# --- worker --------------------------------------------------------------------------------------------


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=int, help="Jobs run at the same time.")
@click.option("--once", is_flag=True, help="Run the jobs waiting now, then exit.")
def worker(concurrency: int, once: bool) -> None:
    """Run background jobs: emails, receipts, the review reminder, the finance and the admins' digests."""
    import logging

    from backoffice.jobs.runtime import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    urls = _urls(stop_on_exit=True)
    if run_doctor(urls):
        click.echo("Refusing to start: fix the problems above (see `backoffice doctor`).", err=True)
        sys.exit(1)
    settings = load_settings()
    click.echo(
        "Emails: "
        + (
            "sent through Resend."
            if settings.resend_api_key
            else "kept in the admin outbox (set RESEND_API_KEY to send them)."
        )
    )
    run_worker(require_worker(urls), settings, concurrency=concurrency, wait=not once)


# --- set-up -------------------------------------------------------------------------------------------


@main.command("demo")
def demo_command() -> None:
    """Seed the demo organizations and users into an empty database."""
    from backoffice.services import demo

    engine, session = _admin_session(_urls())
    with session:
        if demo.has_data(session):
            click.echo("The database already has organizations; demo data is only seeded into an empty one.", err=True)
            sys.exit(1)
        logins = demo.seed(session)
    engine.dispose()
    click.echo(f"Demo data seeded. Password for every demo login: {demo.DEMO_PASSWORD}")
    for login in logins:
        click.echo(f"  {login.email:<24} {login.role:<11} {login.org}")


@main.command("create-org")
@click.argument("name")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--retainage", default="10", show_default=True, help="Default retainage in percent.")
@click.option("--terms", default=30, show_default=True, type=int, help="Payment terms in days.")
def create_org(name: str, currency: str, retainage: str, terms: int) -> None:
    """Create an organization; prints its id."""
    from backoffice.domain.percent import parse_percent_to_bps
    from backoffice.errors import ValidationError
    from backoffice.services import bootstrap

    try:
        bps = parse_percent_to_bps(retainage)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--retainage") from None
    engine, session = _admin_session(_urls())
    with session, unit_of_work(session):
        try:
            org = bootstrap.create_org(session, name, currency.upper(), bps, terms)
        except ValidationError as exc:
            raise click.UsageError("; ".join(exc.fields.values())) from None
    engine.dispose()
    click.echo(org.id)


@main.command("create-user")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--org", "org_ref", required=True, help="Organization id or exact name.")
@click.option(
    "--role", type=click.Choice(["admin", "owner", "finance", "contractor"]), default="admin", show_default=True
)
@click.option("--contractor", "contractor_ref", help="Contractor id (required for --role contractor).")
@click.option("--password", help="At least 10 characters. On a terminal it is asked for when not given.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input (scripts)."
)
def create_user(
    email: str,
    name: str,
    org_ref: str,
    role: str,
    contractor_ref: str | None,
    password: str | None,
    password_stdin: bool,
) -> None:
    """Create a user with a password and a role in an organization."""
    from backoffice.domain.roles import Role
    from backoffice.errors import ValidationError
    from backoffice.models import Organization
    from backoffice.services import bootstrap

    if password_stdin:
        if password is not None:
            raise click.UsageError("give the password once: --password or --password-stdin, not both")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "there is no terminal to ask for the password: pipe it with --password-stdin "
                '(echo "$PASSWORD" | backoffice create-user ... --password-stdin) or give --password'
            )
        password = click.prompt("Password (at least 10 characters)", hide_input=True, confirmation_prompt=True)

    engine, session = _admin_session(_urls())
    with session, unit_of_work(session):
        try:
            org_filter = Organization.id == uuid.UUID(org_ref)
        except ValueError:
            org_filter = func.lower(Organization.name) == org_ref.lower()
        orgs = session.execute(select(Organization).where(org_filter)).scalars().all()
        if len(orgs) != 1:
            raise click.BadParameter(f"no single organization matches {org_ref!r}", param_hint="--org")
        if (role == "contractor") != bool(contractor_ref):
            raise click.BadParameter("give --contractor exactly when --role is contractor", param_hint="--contractor")
        try:
            contractor_id = uuid.UUID(contractor_ref) if contractor_ref else None
        except ValueError:
            raise click.BadParameter("not a contractor id (a uuid)", param_hint="--contractor") from None
        try:
            user = bootstrap.create_user(
                session,
                email=email,
                name=name,
                password=password,
                org_id=orgs[0].id,
                role=Role(role),
                contractor_id=contractor_id,
            )
        except ValidationError as exc:
            raise click.UsageError("; ".join(exc.fields.values())) from None
    engine.dispose()
    click.echo(f"{user.email} is {role} of {orgs[0].name}. (An existing account keeps its own password.)")


# --- audit ---------------------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option(
    "--heads",
    "heads_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file of chain heads kept earlier, one 'org_id seq hash' a line (as receipts, the daily digests and"
    " this command's 'head' lines write them). Repeatable.",
)
@click.option(
    "--from-documents",
    is_flag=True,
    help="Also check the head every stored document carried when it was issued, and each document's own event.",
)
def audit_verify(heads_files: tuple[str, ...], from_documents: bool) -> None:
    """Recompute every organization's hash chain. Exits 1, naming the first bad event, if altered; and,
    given heads kept elsewhere, naming each head the trail no longer holds (its newest events cut)."""
    from backoffice.domain.audit_chain import parse_heads
    from backoffice.services.audit import check_trail

    kept = []
    for name in heads_files:
        try:
            kept += parse_heads(Path(name).read_text(encoding="utf-8"), name)
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.UsageError(str(exc)) from None
    engine, session = _admin_session(_urls())
    with session:
        check = check_trail(session, kept, documents=from_documents)
    engine.dispose()
    for head in check.heads:
        # Keep these lines (a file for --heads): a chain cut short at its newest end still verifies.
        click.echo(f"head    {head.line}")
    if not _trail_intact(check):
        sys.exit(1)


def _trail_intact(check) -> bool:
    """Echo every break and lost head `audit verify` found, or its one line for an intact trail; whether intact."""
    for b in check.breaks:
        click.echo(f"BROKEN  org {b.org_id}, event #{b.seq}: {b.reason}", err=True)
    for gone in check.lost:
        h = gone.head
        click.echo(f"LOST    org {h.org_id}, event #{h.seq} {h.hash} (kept in {h.source}): {gone.reason}", err=True)
    for d in check.unrecorded:
        click.echo(
            f"LOST    org {d.org_id}, document {d.document}: the event recording its sha256 {d.sha256}"
            " is not in the trail",
            err=True,
        )
    if not check.intact:
        return False
    found = f"; {check.kept} kept heads are in it" if check.kept else ""
    click.echo(f"Audit chain intact: {check.checked} events verified{found}.")
    return True


# --- backup and restore --------------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write the whole database to FILE: one file to keep, and to give to `backoffice restore`.

    Evidence files, receipts and AP export files are stored in the database (evidence_chunks, documents,
    ap_export_chunks), so they are in FILE with every other row, and so are the jobs waiting in the queue.
    Not in it: the secret key that signs sign-in cookies (SECRET_KEY, or the data directory's secret_key
    file; with another one, everyone signs in again) and the settings of the environment.

    Runs pg_dump as the owner role (DATABASE_ADMIN_URL, or the embedded server's) in one snapshot: the app
    may keep running. FILE is replaced whole or not at all, readable by you alone (it holds password hashes
    and payout details).
    """
    from backoffice.backup import BackupError, made_lines
    from backoffice.backup import backup as make_backup

    urls = _urls()
    try:
        made = make_backup(require_admin(urls), file, embedded=urls.embedded)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    for line in made_lines(made):
        click.echo(line)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Drop everything the target database holds first.")
def restore(file: Path, force: bool) -> None:
    """Restore the backup FILE into this database (the embedded one, or DATABASE_ADMIN_URL's).

    FILE is checked whole (its dump's size and sha256) and its revision before the database is touched: a
    backup from a newer backoffice is refused, and so is a database that holds anything, unless --force. The
    grants, policies and guards are this database's own, applied from sql/ for its app and worker roles
    (their names need not be the backup's); a backup of an older revision is migrated to the newest. Waiting
    jobs come back, and jobs that were running when the backup was made run again. Then every check of
    `doctor` and `audit verify --from-documents` runs; exits 1 if one fails. Stop the web servers and the
    job workers first.
    """
    from backoffice.backup import BackupError
    from backoffice.restore import restore as restore_backup
    from backoffice.restore import restored_lines
    from backoffice.services.audit import check_trail

    urls = _urls()
    try:
        result = restore_backup(
            file,
            admin_url=require_admin(urls),
            app_url=urls.app,
            worker_url=require_worker(urls),
            embedded=urls.embedded,
            force=force,
            say=click.echo,
        )
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    for line in restored_lines(result, urls.app, urls.worker):
        click.echo(line)
    problems = run_doctor(urls, quiet=True)
    engine, session = _admin_session(urls)
    with session:
        intact = _trail_intact(check_trail(session, documents=True))
    engine.dispose()
    if problems or not intact:
        click.echo("The restored database fails the checks above: do not run the app on it.", err=True)
        sys.exit(1)
    click.echo("All checks of `doctor` passed.")
