"""How does the served app hold up under many people at once? Prints figures; asserts nothing.

Loads a fresh copy of the scale dataset (bench/dataset.py), serves it with the production server as
bench/pages.py does (gunicorn, its default workers and threads for this machine), and runs a mixed load of
USERS people at once, for each USERS in --users: each a thread with its own signed-in browser, working as
that role works, with a pause between clicks (THINK_S, uniform: a person reading the page they got):

- finance (20 %): the payment queue, one contractor's payments, batches, the data room, an invoice, home;
- admins (10 %): home, engagements, members, contractors, the audit trail, the outbox;
- project owners (30 %): home, the review queue, a review screen, and every other click an approval of a
  milestone waiting for them (the review screen's POST), each milestone approved once;
- contractors (40 %): home, their payments, an engagement, the due page, and every other click a
  submission of a planned milestone of theirs with a small evidence file (the milestone page's POST).

People of a role share the dataset's logins (a browser each). Each level runs DURATION_S; every request is
timed from send to the last byte. Prints `users_N_rps` (requests completed a second), `users_N_p95` (ms),
`users_N_errors` (answers that were not 200 or the expected redirect, and requests that failed), and
`users_N_writes` (approvals and submissions done) for each N. Budget (issue 23): 0 errors and p95 <= 250 ms
at 50 users.

    .venv/bin/python bench/load.py [--scale 1.0] [--users 10,50,100] [--duration 30] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dataset
import psycopg
import requests
from pages import _CSRF_HEADER, Server, p95, sign_in

THINK_S = (0.5, 1.5)
P95_BUDGET_MS = 250
BUDGET_USERS = 50
MIX = (("finance", 0.2), ("admin", 0.1), ("owner", 0.3), ("contractor", 0.4))
SMOKE = {"scale": dataset.SMOKE_SCALE, "users": "2,4", "duration": 3.0}
# A 1x1 PNG: evidence python-magic recognises, small enough that the load is the app's, not the upload's.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
READS = {
    "finance": ("/", "/payments/", "/payments/?contractor_id={contractor_id}", "/batches/", "/documents/",
                "/invoices/{invoice_id}"),
    "admin": ("/", "/engagements", "/admin/members", "/admin/contractors", "/audit/", "/admin/outbox/"),
    "owner": ("/", "/reviews/", "/milestones/{review_milestone_id}", "/engagements/due"),
    "contractor": ("/", "/invoices/", "/engagements/{engagement_id}", "/engagements/due"),
}  # fmt: skip


@dataclass
class Work:
    """What the writers take from, each item once: milestones waiting per owner login, planned ones of the
    contractor login's."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    reviews: dict[str, list[dataset.Waiting]] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)

    def next_review(self, email: str) -> dataset.Waiting | None:
        with self.lock:
            queue = self.reviews.get(email) or []
            return queue.pop() if queue else None

    def next_planned(self) -> str | None:
        with self.lock:
            return self.planned.pop() if self.planned else None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    writes: int = 0

    def add(self, ms: float, error: str | None = None, wrote: bool = False) -> None:
        with self.lock:
            self.samples.append(ms)
            if error:
                self.errors.append(error)
            self.writes += wrote


def planned_milestones(ds: dataset.Dataset) -> list[str]:
    """The contractor login's planned milestones on running engagements (what it may submit), latest due last."""
    with psycopg.connect(ds.urls.admin) as conn:
        rows = conn.execute(
            """select m.id::text from milestones m join engagements e on e.id = m.engagement_id
                where m.org_id = %s and m.contractor_id = %s and m.status = 'planned' and e.status = 'active'
                order by m.due_date desc, m.id""",
            [ds.large.id, ds.large.contractor_id],
        ).fetchall()
    return [r[0] for r in rows]


def person(base: str, role: str, login: dataset.Login, ds: dataset.Dataset, work: Work, tally: Tally,
           stop: threading.Event, seed: int) -> None:  # fmt: skip
    """One person's session: sign in (not timed), then click until ``stop``."""
    rng = random.Random(seed)
    browser = sign_in(base, login, ds.large.id)
    token = _CSRF_HEADER.search(browser.get(f"{base}/").text)[1]
    ids = {name: getattr(ds.large, name) for name in ("contractor_id", "invoice_id", "review_milestone_id",
                                                       "engagement_id")}  # fmt: skip
    clicks = 0
    while not stop.wait(rng.uniform(*THINK_S)):
        clicks += 1
        write = clicks % 2 == 0 and role in ("owner", "contractor")
        t0 = time.perf_counter()
        try:
            if write and role == "owner" and (item := work.next_review(login.email)):
                response = browser.post(
                    f"{base}/milestones/{item.milestone_id}/decide",
                    data={"submission_id": item.submission_id, "decision": "approve", "csrf_token": token},
                    allow_redirects=False,
                )
                expected = 303
            elif write and role == "contractor" and (milestone := work.next_planned()):
                response = browser.post(
                    f"{base}/milestones/{milestone}/submit",
                    data={"note": "Delivered as agreed; photo attached.", "links": "", "csrf_token": token},
                    files={"files": ("delivered.png", PNG, "image/png")},
                    allow_redirects=False,
                )
                expected = 303
            else:
                write = False
                response = browser.get(base + rng.choice(READS[role]).format(**ids), allow_redirects=False)
                expected = 200
            response.content  # noqa: B018 - the whole body
            ms = (time.perf_counter() - t0) * 1000
            ok = response.status_code == expected
            tally.add(
                ms, None if ok else f"{response.request.method} {response.url}: {response.status_code}", write and ok
            )
        except requests.RequestException as exc:
            tally.add((time.perf_counter() - t0) * 1000, f"{type(exc).__name__}: {exc}")


def run_level(base: str, ds: dataset.Dataset, work: Work, users: int, duration: float) -> tuple[Tally, float]:
    """``users`` people at once for ``duration`` seconds after they all signed in: (their tally, seconds)."""
    roles: list[str] = []
    for role, share in MIX:
        roles += [role] * max(1, round(users * share))
    roles = roles[:users] if len(roles) >= users else roles + ["contractor"] * (users - len(roles))
    owners = sorted(work.reviews) or [ds.large.logins["owner"].email]
    tally, stop = Tally(), threading.Event()
    threads = []
    for n, role in enumerate(roles):
        login = ds.large.logins[role]
        if role == "owner":
            email = owners[n % len(owners)]
            login = dataset.Login(email, ds.large.logins["owner"].password)
        threads.append(threading.Thread(target=person, args=(base, role, login, ds, work, tally, stop, n), daemon=True))
    for t in threads:
        t.start()
    time.sleep(2)  # the sign-ins (scrypt, not timed) before the clock starts
    with tally.lock:
        tally.samples.clear()
        tally.errors.clear()
        tally.writes = 0
    t0 = time.perf_counter()
    time.sleep(duration)
    with tally.lock:
        elapsed = time.perf_counter() - t0
        finished = Tally(samples=list(tally.samples), errors=list(tally.errors), writes=tally.writes)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    return finished, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--users", default="10,50,100", help="the levels: people at once")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds each level runs")
    ap.add_argument("--rebuild", action="store_true", help="build the dataset's cache entry anew")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the whole code path in seconds")
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)
    args = ap.parse_args()
    levels = [int(n) for n in args.users.split(",")]
    signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt()))

    dataset.ensure_cached(args.scale, rebuild=args.rebuild)
    workdir = Path(tempfile.mkdtemp(prefix="backoffice-load-"))
    results = {}
    try:
        with dataset.load(args.scale) as ds:
            work = Work(planned=planned_milestones(ds))
            for item in ds.waiting_reviews(ds.large):
                work.reviews.setdefault(item.owner.email, []).append(item)
            for queue in work.reviews.values():
                queue.reverse()  # pop() takes the longest waiting first
            server = Server(ds, workdir)
            try:
                server.wait_ready()
                for users in levels:
                    results[users] = run_level(server.base, ds, work, users, args.duration)
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    for users, (tally, elapsed) in results.items():
        print(f"users_{users}_rps: {len(tally.samples) / elapsed:.1f} requests/s")
        print(f"users_{users}_p95: {p95(tally.samples) if tally.samples else float('nan'):.1f} ms")
        print(
            f"users_{users}_errors: {len(tally.errors)}" + (f" (the first: {tally.errors[0]})" if tally.errors else "")
        )
        print(f"users_{users}_writes: {tally.writes} (approvals and submissions)")
    if BUDGET_USERS in results:
        tally, _ = results[BUDGET_USERS]
        met = not tally.errors and tally.samples and p95(tally.samples) <= P95_BUDGET_MS
        print(f"budget: {'met' if met else 'MISSED'} (0 errors and p95 <= {P95_BUDGET_MS} ms at {BUDGET_USERS} users)")


if __name__ == "__main__":
    main()
