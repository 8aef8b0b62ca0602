"""Running background jobs in tests: the real procrastinate worker, as the worker role, until the queue
is empty. Jobs of other tests' organizations are discarded first, so a test runs only its own."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable

from sqlalchemy import text

from backoffice.config import load_settings
from backoffice.jobs.runtime import run_worker
from backoffice.services.email_delivery import Mailer

BASE_URL = "http://backoffice.test"
OFFLINE = Mailer(api_key=None, sender="backoffice <notices@example.com>")


def online(timeout_seconds: int = 5) -> Mailer:
    """A mailer with an API key: it sends to wherever ``resend.api_url`` points (the stub)."""
    return Mailer(api_key="re_test_key", sender="backoffice <notices@example.com>", timeout_seconds=timeout_seconds)


def jobs(admin_engine, *, task: str | None = None, org_ids: Iterable = ()) -> list[dict]:
    """The queue's rows (as the owner role), oldest first, optionally for one task and some orgs."""
    orgs = [str(o) for o in org_ids]
    with admin_engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "select id, task_name, status, attempts, args, scheduled_at from procrastinate.procrastinate_jobs"
                    " where (cast(:task as text) is null or task_name = :task)"
                    "   and (cardinality(cast(:orgs as text[])) = 0 or args->>'org_id' = any(cast(:orgs as text[])))"
                    " order by id"
                ),
                {"task": task, "orgs": orgs},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def run_jobs(
    database,
    admin_engine,
    *,
    org_ids: Iterable = (),
    user_ids: Iterable = (),
    mailer: Mailer = OFFLINE,
    due_now: bool = True,
) -> None:
    """Run the waiting jobs of ``org_ids`` (and account messages of ``user_ids``) with the real worker.

    Other waiting jobs are deleted: they belong to other tests' worlds. ``due_now`` makes jobs scheduled
    for later (a retry's backoff) due at once.
    """
    orgs = [str(uuid.UUID(str(o))) for o in org_ids]
    users = [str(uuid.UUID(str(u))) for u in user_ids]
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "delete from procrastinate.procrastinate_jobs where status = 'todo'"
                " and not (coalesce(args->>'org_id', '') = any(cast(:orgs as text[]))"
                "          or coalesce(args->>'user_id', '') = any(cast(:users as text[])))"
            ),
            {"orgs": orgs, "users": users},
        )
        if due_now:
            conn.execute(text("update procrastinate.procrastinate_jobs set scheduled_at = null where status = 'todo'"))
    settings = dataclasses.replace(load_settings(), base_url=BASE_URL)
    run_worker(database.worker_url, settings, wait=False, install_signal_handlers=False, mailer=mailer)
