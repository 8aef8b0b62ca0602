"""Serving the app in production: gunicorn, a job worker beside it, and a clean stop.

``backoffice serve`` runs gunicorn's arbiter in its own process (this module's ``Server``): it forks the web
workers, each of which builds the app (``create_app``) after the fork, so no database connection is ever
shared between processes; each worker's pool holds one connection per thread. When ``serve`` runs the jobs
too (the embedded demo, or ``--worker``), the job worker is a child process (``backoffice worker``) that
gunicorn's hooks start once and stop with it: SIGINT or SIGTERM to ``serve`` stops the web workers, then the
job worker (which finishes the job in hand), then, as the last process using it, the embedded PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from gunicorn.app.base import BaseApplication

# How long the job worker may take to finish the job in hand once asked to stop.
JOB_WORKER_STOP_SECONDS = 20


@dataclass(frozen=True)
class Capacity:
    """How many web processes and threads, and so how many database connections each process pools."""

    workers: int
    threads: int

    @property
    def pool_size(self) -> int:
        return self.threads  # one connection per thread: a request never waits for another's

    @property
    def connections(self) -> int:
        return self.workers * self.threads


def default_capacity(workers: int | None = None, threads: int | None = None) -> Capacity:
    """Options first, then BACKOFFICE_WEB_WORKERS / BACKOFFICE_WEB_THREADS, then one process per core (at most
    8) with 4 threads each: requests mostly wait on PostgreSQL, and on this kind of machine PostgreSQL
    wants the cores too. SystemExit naming a value out of range."""
    chosen = {}
    for name, given, variable, default, highest in (
        ("workers", workers, "BACKOFFICE_WEB_WORKERS", min(os.cpu_count() or 1, 8), 64),
        ("threads", threads, "BACKOFFICE_WEB_THREADS", 4, 64),
    ):
        raw = str(given) if given is not None else (os.environ.get(variable, "").strip() or str(default))
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= highest:
            raise SystemExit(
                f"{name} ({variable} or --{name}) must be a whole number from 1 to {highest}, not {raw!r}."
            )
        chosen[name] = value
    return Capacity(**chosen)


def job_worker_command() -> list[str]:
    return [sys.executable, "-m", "backoffice", "worker"]


class Server(BaseApplication):
    """gunicorn with its configuration from here rather than from a file or its own command line."""

    def __init__(self, bind: str, capacity: Capacity, *, database_url: str, job_worker: bool) -> None:
        self.bind = bind
        self.capacity = capacity
        self.database_url = database_url
        self.job_worker = job_worker
        self.job_process: subprocess.Popen | None = None
        super().__init__()

    def init(self, parser, opts, args):  # gunicorn's hook for its command line, which we do not use
        return None

    def load_config(self) -> None:
        settings = {
            "bind": self.bind,
            "workers": self.capacity.workers,
            "threads": self.capacity.threads,
            "worker_class": "gthread",
            "preload_app": False,  # each worker builds the app (and its pool) after the fork
            "graceful_timeout": 20,
            "timeout": 120,  # evidence uploads stream up to 100 MB
            "accesslog": "-" if os.environ.get("BACKOFFICE_ACCESS_LOG") else None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "backoffice",
            "when_ready": self._when_ready,
            "on_exit": self._on_exit,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):
        from backoffice import create_app

        return create_app(self.database_url, pool_size=self.capacity.pool_size)

    # --- the job worker beside it -----------------------------------------------------------------------

    def _when_ready(self, arbiter) -> None:
        if self.job_worker and self.job_process is None:
            # Its own process group: a Ctrl+C in the terminal reaches it through us, in order.
            self.job_process = subprocess.Popen(job_worker_command(), start_new_session=True)

    def _on_exit(self, arbiter) -> None:
        stop_job_worker(self.job_process)


def stop_job_worker(process: subprocess.Popen | None) -> None:
    """Ask the job worker to stop (it finishes the job in hand), and wait; kill it if it will not."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=JOB_WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
