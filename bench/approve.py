"""How fast are approvals over HTTP, against the same transaction as raw SQL? Prints figures; asserts nothing.

Loads a fresh copy of the scale dataset (bench/dataset.py), serves it with the production server as
bench/pages.py does, and approves the large organization's submitted milestones (of engagements billed per
milestone), the longest waiting first:

- over HTTP: the review screen's form POST (POST /milestones/ID/decide, "approve", the revision shown, the
  CSRF token), with 1 client, then with 4 and 8 clients at once (threads, each its own signed-in browser),
  each phase on milestones of its own; approvals/s is the phase's approvals over its wall time. As a person
  does, each milestone's review screen is opened (GET) before it is decided, untimed, and the server first
  approves WARMUP milestones with every client at once, untimed: the raw replay below runs each decision once
  before timing it, so both sides are timed on rows already read and connections that have run it. The
  1-client phase and the raw replay take turns, ROUND approvals at a time;
- as raw SQL: the decision's own transaction, replayed. For each milestone the real service
  (services.reviews.decide, as the app role signed in as the same admin) runs once in a transaction that is
  rolled back, with every statement it sends recorded with its parameters; then those statements (the
  context's set_config, the locks, the review, the milestone's move, the invoice, its ledger lines, the
  audit events, the jobs) run again on a plain psycopg connection and commit. Only the replay is timed:
  the floor the same work stands on without Flask, the session, SQLAlchemy and the sign-in.

The approver is the large organization's admin (an admin decides on every engagement): one sign-in per
client, where the owners would be one per engagement's owner.

Prints `http_clients_N: X approvals/s` for each N, `raw: X approvals/s`, `ratio: X` (HTTP with 1 client
over raw), `transaction_statements: N` (the decision's transaction, as recorded), and `budget:`.
Budget (issue 23): ratio >= 0.4, and more clients do not lower throughput.

    .venv/bin/python bench/approve.py [--scale 1.0] [--approvals 200] [--clients 1,4,8] [--smoke]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import dataset
import psycopg
import requests
from pages import _CSRF_HEADER, Server, sign_in
from sqlalchemy import event

from backoffice.db import make_engine, make_session_factory, present_sign_in, set_context, unit_of_work
from backoffice.queries.identity import actor_for
from backoffice.services import reviews

RATIO_BUDGET = 0.4
ROUND = 25  # approvals a turn when the ratio's two sides take turns
SMOKE = {"scale": dataset.SMOKE_SCALE, "approvals": 3, "clients": "1,2", "warmup": 2}


def csrf_of(browser: requests.Session, base: str) -> str:
    return _CSRF_HEADER.search(browser.get(f"{base}/").text)[1]


def approve_over_http(base: str, browsers: list[requests.Session], work: list[dataset.Waiting]) -> float:
    """Approvals/s of ``len(browsers)`` clients sharing ``work``: each takes the next milestone until none is
    left. Every answer must be the redirect of a recorded decision."""
    tokens = [csrf_of(b, base) for b in browsers]
    lock, queue, failures = threading.Lock(), list(reversed(work)), []
    for item in work:  # the review screen a person opens before deciding (untimed)
        browsers[0].get(f"{base}/milestones/{item.milestone_id}").raise_for_status()

    def client(browser: requests.Session, token: str) -> None:
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            response = browser.post(
                f"{base}/milestones/{item.milestone_id}/decide",
                data={"submission_id": item.submission_id, "decision": "approve", "csrf_token": token},
                allow_redirects=False,
            )
            if response.status_code != 303:
                failures.append(f"{item.milestone_id}: {response.status_code} {response.text[:300]}")

    threads = [threading.Thread(target=client, args=pair) for pair in zip(browsers, tokens, strict=True)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"{len(failures)} approvals failed over HTTP, the first: {failures[0]}")
    return len(work) / elapsed


class Recorder:
    """Every statement an engine sends, with its parameters, while ``on``."""

    def __init__(self, engine):
        self.on, self.seen = False, []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.seen.append((statement, parameters, executemany))


class _Rollback(Exception):
    pass


def approve_as_raw_sql(ds: dataset.Dataset, work: list[dataset.Waiting]) -> tuple[float, int]:
    """(seconds the decisions' own transactions took, replayed as raw SQL; statements a transaction)."""
    login = ds.large.logins["admin"]
    org_id = uuid.UUID(ds.large.id)
    with psycopg.connect(ds.urls.admin) as conn:
        user_id = conn.execute("select id from users where email = %s", [login.email]).fetchone()[0]
        token = conn.execute("select auth_open_session(%s)", [user_id]).fetchone()[0]
    engine = make_engine(ds.urls.app)
    recorder = Recorder(engine)
    sessions = make_session_factory(engine)
    replayed, statements = 0.0, 0
    with psycopg.connect(ds.urls.app) as raw:
        for item in work:
            with sessions() as session:
                present_sign_in(session, token)
                set_context(session, user_id=user_id, org_id=org_id)
                actor = actor_for(session, user_id, org_id)
                session.rollback()  # the identity's read is the request's, not the decision's
                recorder.on, recorder.seen = True, []
                try:
                    with unit_of_work(session):
                        reviews.decide(
                            session,
                            actor,
                            item.milestone_id,
                            reviews.DecisionInput(submission_id=item.submission_id, decision="approve"),
                        )
                        raise _Rollback
                except _Rollback:
                    pass
                finally:
                    recorder.on = False
            captured, statements = recorder.seen, len(recorder.seen)
            t0 = time.perf_counter()
            with raw.transaction(), raw.cursor() as cur:
                for statement, parameters, many in captured:
                    if many:
                        cur.executemany(statement, parameters)
                    else:
                        cur.execute(statement, parameters)
            replayed += time.perf_counter() - t0
    engine.dispose()
    return replayed, statements


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--approvals", type=int, default=200, help="approvals in each phase")
    ap.add_argument("--clients", default="1,4,8", help="the HTTP phases' numbers of clients")
    ap.add_argument("--warmup", type=int, default=40, help="untimed approvals over HTTP before the first phase")
    ap.add_argument("--rebuild", action="store_true", help="build the dataset's cache entry anew")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the whole code path in seconds")
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)
    args = ap.parse_args()
    clients = [int(n) for n in args.clients.split(",")]
    signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt()))

    dataset.ensure_cached(args.scale, rebuild=args.rebuild)
    workdir = Path(tempfile.mkdtemp(prefix="backoffice-approve-"))
    rates: dict[int, float] = {}
    try:
        with dataset.load(args.scale) as ds:
            needed = args.approvals * (len(clients) + 1) + args.warmup
            # Milestones billed per milestone: each approval authorizes its payment (a task billed on completion
            # authorizes nothing by itself, a shorter transaction that would blur the figure).
            waiting = ds.waiting_reviews(ds.large, limit=needed, billing_mode="milestone")
            if len(waiting) < needed:
                raise SystemExit(f"the dataset has {len(waiting)} milestones waiting; {needed} are needed")
            warmup, waiting = waiting[: args.warmup], waiting[args.warmup :]
            phases = [waiting[i * args.approvals : (i + 1) * args.approvals] for i in range(len(clients) + 1)]
            server = Server(ds, workdir)
            try:
                server.wait_ready()
                admin = ds.large.logins["admin"]
                if warmup:
                    browsers = [sign_in(server.base, admin, ds.large.id) for _ in range(max(clients))]
                    approve_over_http(server.base, browsers, warmup)
                # The ratio's two sides take turns, a round of each at a time, so that a slow spell of the
                # machine weighs on both alike (the server idles while the raw replay runs).
                first, raw_work = phases[0], phases[-1]
                browser = [sign_in(server.base, admin, ds.large.id)]
                http_s = raw_s = 0.0
                for start in range(0, len(first), ROUND):
                    done = first[start : start + ROUND]
                    http_s += len(done) / approve_over_http(server.base, browser, done)
                    replay_s, statements = approve_as_raw_sql(ds, raw_work[start : start + ROUND])
                    raw_s += replay_s
                rates[clients[0]] = len(first) / http_s
                raw = len(raw_work[: len(first)]) / raw_s
                for n, work in zip(clients[1:], phases[1:], strict=False):
                    browsers = [sign_in(server.base, admin, ds.large.id) for _ in range(n)]
                    rates[n] = approve_over_http(server.base, browsers, work)
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    for n, rate in rates.items():
        print(f"http_clients_{n}: {rate:.1f} approvals/s")
    print(f"raw: {raw:.1f} approvals/s")
    print(f"transaction_statements: {statements} statements")
    ratio = rates[clients[0]] / raw
    print(f"ratio: {ratio:.2f}")
    ordered = [rates[n] for n in sorted(rates)]
    scales = all(later >= earlier * 0.95 for earlier, later in itertools.pairwise(ordered))
    met = ratio >= RATIO_BUDGET and scales
    print(
        f"budget: {'met' if met else 'MISSED'} (ratio >= {RATIO_BUDGET}; more clients no slower, within 5 %:"
        f" {'yes' if scales else 'no'})"
    )


if __name__ == "__main__":
    main()
