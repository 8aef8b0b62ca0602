"""A fresh backoffice for one journey: a new database (and new roles) on the test server, built by the real
migrations, its first organization and admin made with the real ``backoffice create-org`` and
``create-user`` commands, the app served on a free port of 127.0.0.1, and the real job worker run on demand
(``drain_jobs``), as ``backoffice worker --once`` does. Nothing else is in it, so what a page shows is only
what the journey did."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from backoffice import cli, embedded, schema
from backoffice.config import load_settings
from backoffice.db import make_engine
from backoffice.jobs.runtime import run_worker
from backoffice.services.email_delivery import Mailer
from kit.browser import in_own_thread

OFFLINE = Mailer(api_key=None, sender="backoffice <notices@example.com>")


@dataclass
class Site:
    base_url: str
    app_url: str
    admin_url: str
    admin_engine: Engine  # the owner role: for checking what the journey left in the database
    org_id: uuid.UUID
    worker_url: str  # the worker role: what `backoffice worker` connects as

    def drain_jobs(self) -> None:
        """Run every waiting job with the real worker until the queue is empty (emails, receipts)."""
        settings = dataclasses.replace(load_settings(), base_url=self.base_url)
        in_own_thread(
            lambda: run_worker(self.worker_url, settings, wait=False, install_signal_handlers=False, mailer=OFFLINE)
        )


def _cli(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(cli.main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.strip()


@contextmanager
def fresh_site(
    database, *, org: str, currency: str, retainage: str, admin_email: str, admin_name: str, password: str
) -> Iterator[Site]:
    suffix = secrets.token_hex(4)
    owner, app, name = f"bo_fresh_owner_{suffix}", f"bo_fresh_app_{suffix}", f"backoffice_fresh_{suffix}"
    worker = f"bo_fresh_worker_{suffix}"
    role_password = secrets.token_hex(16)
    embedded.create_roles_and_database(
        database.superuser_url, owner=owner, app=app, worker=worker, database=name, password=role_password
    )
    base = make_url(database.app_url).set(database=name, password=role_password)
    app_url = base.set(username=app).render_as_string(hide_password=False)
    admin_url = base.set(username=owner).render_as_string(hide_password=False)
    worker_url = base.set(username=worker).render_as_string(hide_password=False)
    schema.upgrade(admin_url, app_url, worker_url)

    env = {"DATABASE_URL": app_url, "DATABASE_ADMIN_URL": admin_url, "DATABASE_WORKER_URL": worker_url}
    org_id = uuid.UUID(_cli(["create-org", org, "--currency", currency, "--retainage", retainage], env))
    _cli(
        [
            "create-user",
            admin_email,
            "--name",
            admin_name,
            "--org",
            str(org_id),
            "--role",
            "admin",
            "--password",
            password,
        ],
        env,
    )

    from werkzeug.serving import make_server

    from backoffice import create_app

    flask_app = create_app(app_url)
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fresh-site", daemon=True)
    thread.start()
    admin_engine = make_engine(admin_url)
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}", app_url, admin_url, admin_engine, org_id, worker_url)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        flask_app.extensions["backoffice.engine"].dispose()
        admin_engine.dispose()
        with psycopg.connect(
            make_url(database.superuser_url).set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            for role in (app, worker):
                conn.execute(f'drop owned by "{role}"')
                conn.execute(f'drop role if exists "{role}"')
            conn.execute(f'drop role if exists "{owner}"')
