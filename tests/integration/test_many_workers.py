"""Several job workers on one database share the queue: each job runs once (issue 23, item 8).

Two real `backoffice worker` processes (the worker role, as in production) wait on the test database; three
hundred emails or more are queued in waves; each worker's log names the jobs it started. Every job is started by
exactly one of them, both take part, and every message ends up handled once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.xdist_group("serve")  # long-running processes: not beside the other process tests

JOBS = 300
WAVES = 3
PER_WAVE = JOBS // WAVES
MAX_WAVES = 12
EMAILS = (
    "insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, dedupe_key)"
    " select :o, 'milestone.approved', :u, :e, 'Approved ' || n, '<p>x</p>', 'x', :b || ':' || n"
    " from generate_series(cast(:first as int), cast(:last as int)) n returning id"
)
SEND_THEM = (
    "select unnest(procrastinate.procrastinate_defer_jobs_v1(array_agg(row('default', 'send_email',"
    " 0, null, null, jsonb_build_object('message_id', m, 'org_id', cast(:o as text)), null)"
    "::procrastinate.procrastinate_job_to_defer_v1))) from unnest(cast(:ids as uuid[])) m"
)


def worker_process(database, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BACKOFFICE_", "RESEND_"))}
    env |= {
        "DATABASE_URL": database.app_url,
        "DATABASE_ADMIN_URL": database.admin_url,
        "DATABASE_WORKER_URL": database.worker_url,
        "BACKOFFICE_BASE_URL": "http://backoffice.test",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "backoffice", "worker"],
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def started_ours(logs, job_ids) -> list[bool]:
    """Whether each worker's log says it started one of these jobs."""
    ours = {str(j) for j in job_ids}
    return [bool(ours & set(re.findall(r"Starting job send_email\[(\d+)\]", log.read_text()))) for log in logs]


def count(admin_engine, sql: str, **params) -> int:
    with admin_engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_two_workers_run_each_of_hundreds_of_jobs_once(world, database, admin_engine, tmp_path):
    with admin_engine.begin() as conn:  # nothing of other tests waiting: only this test's jobs run
        conn.execute(text("delete from procrastinate.procrastinate_jobs where status = 'todo'"))
    workers_before = count(admin_engine, "select count(*) from procrastinate.procrastinate_workers")
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    processes = [worker_process(database, log) for log in logs]
    try:
        deadline = time.monotonic() + 120
        while count(admin_engine, "select count(*) from procrastinate.procrastinate_workers") < workers_before + 2:
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            assert all(p.poll() is None for p in processes), [log.read_text() for log in logs]
            time.sleep(0.2)

        batch = uuid.uuid4().hex[:8]
        ids, job_ids = [], []
        # In waves, each one transaction that wakes both workers with one commit: a single wave of 300 short jobs
        # could all be drained by one worker before the other was scheduled on a loaded machine (the CI's two
        # test processes), which failed "both took part" without anything being wrong. Three waves were not always
        # enough either (seen once: [300, 0] while the browser tests shared the cores): more waves follow, up to
        # MAX_WAVES, until each worker has started one of them; a worker that never does still fails below.
        wave = 0
        while wave < WAVES or (wave < MAX_WAVES and not all(started_ours(logs, job_ids))):
            if wave:
                time.sleep(0.5)
            with admin_engine.begin() as conn:
                wave_ids = (
                    conn.execute(
                        text(EMAILS),
                        {
                            "o": world.org_a,
                            "u": world.admin.id,
                            "e": world.admin.email,
                            "b": batch,
                            "first": wave * PER_WAVE + 1,
                            "last": (wave + 1) * PER_WAVE,
                        },
                    )
                    .scalars()
                    .all()
                )
                job_ids += (
                    conn.execute(
                        text(SEND_THEM),
                        {"o": str(world.org_a), "ids": wave_ids},
                    )
                    .scalars()
                    .all()
                )
                ids += wave_ids
            wave += 1
        assert len(job_ids) == wave * PER_WAVE >= JOBS

        deadline = time.monotonic() + 180
        while count(
            admin_engine,
            "select count(*) from email_messages where id = any(:ids) and status = 'kept'",
            ids=ids,
        ) < len(ids):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            time.sleep(0.3)
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    started = [[int(n) for n in re.findall(r"Starting job send_email\[(\d+)\]", log.read_text())] for log in logs]
    ours = set(job_ids)
    mine = [[j for j in s if j in ours] for s in started]
    assert sorted(mine[0] + mine[1]) == sorted(ours)  # every job started, none twice (within or across workers)
    assert mine[0] and mine[1], [len(m) for m in mine]  # both workers took part
    assert all(p.returncode == 0 for p in processes), [log.read_text()[-2000:] for log in logs]
    assert (
        count(admin_engine, "select count(*) from procrastinate.procrastinate_jobs where id = any(:j)", j=job_ids) == 0
    )
