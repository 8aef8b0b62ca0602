"""Running the app: `serve` (gunicorn, a job worker beside it, a clean stop) and `worker`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from backoffice.cli import admin_session, command_urls, main, run_doctor
from backoffice.config import load_settings
from backoffice.runtime import require_worker

if TYPE_CHECKING:
    from backoffice.cli.offline_stripe import OfflineStripe
    from backoffice.serving import Capacity

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
@click.option(
    "--stripe-fake",
    is_flag=True,
    help="Pay through a local fake of Stripe, run here (its state kept in the data directory), instead of Stripe; "
    "the demo's contractor gets a ready payout account and an invoice paid by it.",
)
def serve(
    host: str,
    port: int,
    no_demo: bool,
    worker: bool | None,
    workers: int | None,
    threads: int | None,
    dev: bool,
    stripe_fake: bool,
) -> None:
    """Migrate, check RLS, seed demo data on first run (embedded mode) and serve the app with gunicorn.
    Ctrl+C (SIGINT) or SIGTERM stops the web server, the job worker and the embedded PostgreSQL."""
    from backoffice import serving

    capacity = serving.default_capacity(workers, threads)  # before anything starts: a bad value changes nothing
    settings = load_settings()
    # Links in emails lead here unless the operator says otherwise; never to 0.0.0.0, which no one can open.
    link_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if not os.environ.get("BACKOFFICE_BASE_URL"):
        os.environ["BACKOFFICE_BASE_URL"] = f"http://{link_host}:{port}"
    if not stripe_fake:
        _serve(host, port, no_demo, worker, dev, capacity, None)
        return
    from backoffice.cli import offline_stripe

    with offline_stripe.running_fake(settings.data_dir, f"http://{link_host}:{port}") as offline:
        _serve(host, port, no_demo, worker, dev, capacity, offline)


def _serve(
    host: str,
    port: int,
    no_demo: bool,
    worker: bool | None,
    dev: bool,
    capacity: Capacity,
    offline: OfflineStripe | None,
) -> None:
    from backoffice import schema, serving
    from backoffice.cli import offline_stripe
    from backoffice.config import secret_key_for
    from backoffice.services import demo

    urls = command_urls(stop_on_exit=True)
    _stop_on_sigterm()  # from here on, SIGTERM unwinds like Ctrl+C: the embedded PostgreSQL stops with us
    if urls.admin:
        schema.upgrade(urls.admin, urls.app, require_worker(urls))
    if run_doctor(urls):
        click.echo("Refusing to start: fix the problems above (see `backoffice doctor`).", err=True)
        sys.exit(1)
    seeded = False
    settings = load_settings()
    with_demo = urls.embedded and not no_demo
    if with_demo or (offline and urls.admin):
        engine, session = admin_session(urls)
        with session:
            if with_demo and not demo.has_data(session):
                demo.seed(session)
                seeded = True
            if offline:
                offline_stripe.prepare(offline, session, require_worker(urls), settings.base_url, demo=with_demo)
        engine.dispose()
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
    _say_where_emails_go(settings)
    if offline:
        offline_stripe.say(offline)
    if run_jobs:
        click.echo("A job worker runs beside the web server (emails, documents, reminders, digests).")
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
    urls = command_urls(stop_on_exit=True)
    if run_doctor(urls):
        click.echo("Refusing to start: fix the problems above (see `backoffice doctor`).", err=True)
        sys.exit(1)
    settings = load_settings()
    _say_where_emails_go(settings)
    run_worker(require_worker(urls), settings, concurrency=concurrency, wait=not once)


def _say_where_emails_go(settings) -> None:
    click.echo(
        "Emails: "
        + (
            "sent through Resend."
            if settings.email_configured
            else "kept in the admin outbox (set RESEND_API_KEY to send them)."
        )
    )
