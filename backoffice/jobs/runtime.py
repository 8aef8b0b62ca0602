"""Where jobs run: the worker's database (the worker role), its mailer, and the worker loop.

A job never acts as a person. It connects as the worker role (``DATABASE_WORKER_URL``), which the web role
can never become, and ``worker_session`` names the job's organization (app.org_id, no app.user_id; see
app_membership() in sql/rls_policies.sql): an admin's reach inside that organization, nothing outside it.
An account message (no org) is sent with app.user_id naming the account it is for.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from procrastinate import PsycopgConnector
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from backoffice.config import Settings
from backoffice.db import SEARCH_PATH_OPTION, make_engine, make_session_factory, set_context
from backoffice.services.email_delivery import Mailer

log = logging.getLogger("backoffice.worker")


@dataclass
class Runtime:
    sessions: sessionmaker[Session]
    mailer: Mailer
    base_url: str
    settings: Settings | None = None  # the payment rail's keys (services/stripe_rail.client_for)


_runtime: Runtime | None = None


def configure(worker_url: str, settings: Settings, *, mailer: Mailer | None = None) -> Runtime:
    """Point the tasks at the database (as the worker role) and the mail settings. Returns the runtime."""
    global _runtime
    if _runtime is not None:
        _runtime.sessions.kw["bind"].dispose()
    engine = make_engine(worker_url, pool_size=4)
    _runtime = Runtime(
        make_session_factory(engine),
        mailer or Mailer(settings.resend_api_key, settings.email_from),
        settings.base_url,
        settings,
    )
    return _runtime


def current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("jobs.runtime.configure() was not called: the worker has no database")
    return _runtime


@contextmanager
def worker_session(org_id: uuid.UUID | None, *, user_id: uuid.UUID | None = None) -> Iterator[Session]:
    """A session of the worker role acting for ``org_id``, or, for an account message, for ``user_id``'s
    account alone."""
    with current().sessions() as session:
        if org_id is not None:
            set_context(session, user_id=None, org_id=org_id)
        else:
            set_context(session, user_id=user_id, org_id=None)
        yield session


def connector_for(worker_url: str) -> PsycopgConnector:
    """procrastinate's own connection pool for taking jobs, as the worker role."""
    url = make_url(worker_url).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    return PsycopgConnector(conninfo=conninfo, kwargs={"options": SEARCH_PATH_OPTION}, min_size=1, max_size=3)


def run_worker(
    worker_url: str,
    settings: Settings,
    *,
    concurrency: int = 1,
    wait: bool = True,
    install_signal_handlers: bool = True,
    mailer: Mailer | None = None,
) -> None:
    """Take and run jobs until stopped (``wait``) or until the queue is empty (``wait=False``)."""
    from backoffice.jobs.queue import procrastinate_app

    configure(worker_url, settings, mailer=mailer)
    # Draining the queue (--once, tests) is not the place to catch up on periodic jobs overdue from
    # before: only a long-running worker defers them (within procrastinate's 10-minute window).
    periodic_defaults = procrastinate_app.periodic_defaults
    procrastinate_app.periodic_defaults = periodic_defaults if wait else {**periodic_defaults, "max_delay": 0}
    try:
        with procrastinate_app.replace_connector(connector_for(worker_url)) as app:
            app.run_worker(
                concurrency=concurrency,
                wait=wait,
                install_signal_handlers=install_signal_handlers,
                listen_notify=wait,
                delete_jobs="successful" if wait else "never",
            )
    finally:
        procrastinate_app.periodic_defaults = periodic_defaults
