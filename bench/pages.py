"""How fast is every page at a large customer's size? Prints each page's p95; asserts nothing.

Loads a fresh copy of the scale dataset (bench/dataset.py: built once and cached, minutes the first time),
serves it with the production server as an operator would (`python -m backoffice serve` on 127.0.0.1 with
DATABASE_URL, DATABASE_ADMIN_URL and DATABASE_WORKER_URL pointing at the copy: gunicorn, migrations and
doctor checked, no demo seeding, no job worker), signs each role in through the real login form (CSRF token
from the form, cookies kept) in two organizations: the large one and the demo's (Acme Renovations, seeded on
the same database), and times every list and detail page each role may see with sequential GETs over HTTP:
2 warm-up requests, then RUNS timed ones, the two organizations' requests interleaved so a slow spell of the
machine weighs on both alike. A page a role may not see (403, 404) or that sends it elsewhere (3xx) is
skipped, and listed.

Prints `ROLE_PAGE_p95: X ms` for the large organization and `ROLE_PAGE_demo_p95: X ms` for the demo's, sorted,
then `page_p95_max` (over the large organization's pages) and `page_growth_max` (the most any page's p95 is
slower on the large organization than on the demo's), each naming its page. Budget (issue 23): every page's
p95 <= 50 ms, and growth <= a few ms (GROWTH_BUDGET_MS).

    .venv/bin/python bench/pages.py [--scale 1.0] [--runs 30] [--only finance_[,owner_project]] [--smoke]

--smoke is the dataset's smoke scale (0.002) with 3 timed requests a page: the whole path in seconds.
Not timed: forms (new engagement, terms, schedule and its import, change orders, remittance import, export
settings' form posts), downloads (evidence, receipts, batch files), sign-in and password pages, /healthz.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dataset
import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("admin", "owner", "finance", "contractor")
PAGE_BUDGET_MS = 50
GROWTH_BUDGET_MS = 5  # the "no page slower on the large organization ... by more than a few ms"
SMOKE = {"scale": dataset.SMOKE_SCALE, "runs": 3}

# Every GET page of the app's url_map that lists or shows something, with the dataset's row of each kind.
PAGES = (
    ("home", "/"),
    ("engagements", "/engagements"),
    ("engagement", "/engagements/{engagement_id}"),
    ("due", "/engagements/due"),
    ("milestone", "/milestones/{milestone_id}"),  # approved, invoiced
    ("review", "/milestones/{review_milestone_id}"),  # submitted: the owner's review screen
    ("reviews_queue", "/reviews/"),
    ("reviews_count", "/reviews/count"),  # the navigation's badge, refreshed every minute
    ("payments_queue", "/payments/"),
    ("payments_queue_contractor", "/payments/?contractor_id={contractor_id}"),
    ("invoices", "/invoices/"),  # a contractor's payments
    ("invoice", "/invoices/{invoice_id}"),
    ("batches", "/batches/"),
    ("batch", "/batches/{batch_id}"),
    ("documents", "/documents/"),  # the data room
    ("retainage", "/retainage/"),
    ("audit", "/audit/"),
    ("notifications", "/notifications/"),
    ("notifications_count", "/notifications/count"),
    ("contractors", "/admin/contractors"),  # the admin pages: admin_contractors, admin_members, ...
    ("contractor", "/admin/contractors/{contractor_id}"),
    ("members", "/admin/members"),
    ("outbox", "/admin/outbox/"),
    ("outbox_message", "/admin/outbox/{email_id}"),
    ("settings", "/admin/settings"),
    ("export_settings", "/admin/settings/export"),
    # payment controls (issue 18)
    ("approvals", "/approvals/"),  # what waits for the signed-in approver
    ("payments_blocked", "/payments/?status=blocked"),  # the queue's "why isn't this payable yet" filter
    ("holds", "/payments/holds"),
    ("approval_policies", "/admin/settings/approvals"),
    ("tax_form", "/tax/form"),  # a contractor's own
    ("year_end", "/tax/year-end"),  # the 1099-NEC totals of the year
    # projects and proposals (issue 19)
    ("projects", "/projects"),  # the staff's list: the open ones
    ("project", "/projects/{project_id}"),  # its proposals side by side, each with its contractor's record
    ("proposals", "/proposals"),  # a contractor's: the projects it may propose on, and its own proposals
    ("proposal_project", "/proposals/project/{project_id}"),  # a contractor's view of one, with its proposal
    # completion billing (issue 20)
    ("completion_engagement", "/engagements/{completion_engagement_id}"),  # its schedule: tasks, invoices, what remains
    ("invoice_tasks", "/engagements/{completion_engagement_id}/invoice-tasks"),  # the contractor raises an invoice
    ("completion_invoice", "/invoices/{completion_invoice_id}"),  # a task invoice, with the tasks it bills
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m backoffice serve` against the dataset's copy, in its own process group, stopped on exit."""

    def __init__(self, ds: dataset.Dataset, workdir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        env = os.environ | {
            "DATABASE_URL": ds.urls.app,
            "DATABASE_ADMIN_URL": ds.urls.admin,
            "DATABASE_WORKER_URL": ds.urls.worker,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "BACKOFFICE_DATA_DIR": str(workdir),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backoffice", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"backoffice serve exited {self.process.returncode}:\n{self.tail()}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"backoffice serve did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM, as an operator stops it (gunicorn finishes the requests in hand); SIGKILL to the whole
        group if it will not go."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')


def sign_in(base: str, login: dataset.Login, org_id: str) -> requests.Session:
    """A browser's session of ``login`` acting in ``org_id``: the login form's POST with its CSRF token, then
    the organization switcher's (a person in several organizations starts in the first)."""
    browser = requests.Session()
    form = browser.get(f"{base}/login")
    token = _CSRF_INPUT.search(form.text)
    signed = browser.post(
        f"{base}/login",
        data={"csrf_token": token and token[1], "email": login.email, "password": login.password, "next": ""},
        allow_redirects=False,
    )
    if signed.status_code != 303:
        raise SystemExit(f"{login.email} could not sign in: {signed.status_code}")
    home = browser.get(f"{base}/")
    switched = browser.post(
        f"{base}/orgs/switch",
        data={"org_id": org_id},
        headers={"X-CSRFToken": _CSRF_HEADER.search(home.text)[1]},
        allow_redirects=False,
    )
    if switched.status_code != 303:
        raise SystemExit(f"{login.email} could not act in organization {org_id}: {switched.status_code}")
    return browser


def fetch(browser: requests.Session, url: str) -> tuple[float, requests.Response]:
    """One GET, its body read whole: milliseconds and the response."""
    t0 = time.perf_counter()
    response = browser.get(url, allow_redirects=False)
    response.content  # noqa: B018 - the whole body, not only the headers
    return (time.perf_counter() - t0) * 1000, response


def p95(samples: list[float]) -> float:
    """Nearest-rank: the smallest sample at or above 95 % of them (of 30, the 29th)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Side:
    """One organization's side of the bench: the ids its pages name, and a signed-in browser per role."""

    label: str  # "" for the large organization, "_demo" for the demo's
    ids: dict[str, str | None]
    browsers: dict[str, requests.Session]


def page_ids(ds: dataset.Dataset, org: dataset.Org) -> dict[str, str | None]:
    """The ids the pages' paths name: the dataset's rows, and the organization's newest email (the outbox
    message page), if it has any."""
    with psycopg.connect(ds.urls.admin) as conn:
        email = conn.execute(
            "select id::text from email_messages where org_id = %s order by created_at desc, id limit 1", [org.id]
        ).fetchone()
    fields = (
        "engagement_id",
        "milestone_id",
        "review_milestone_id",
        "contractor_id",
        "invoice_id",
        "batch_id",
        "project_id",
        "completion_engagement_id",
        "completion_invoice_id",
    )
    return {name: getattr(org, name) for name in fields} | {"email_id": email[0] if email else None}


def measure(base: str, sides: list[Side], runs: int, only: str) -> tuple[dict[str, float], dict[str, list[str]]]:
    """p95 per page name (with each side's label), and the pages skipped, by why."""
    results: dict[str, float] = {}
    skipped: dict[str, list[str]] = {}
    for role in ROLES:
        for page, pattern in PAGES:
            name = f"{role}_{page}"
            if only and not name.startswith(tuple(only.split(","))):
                continue
            live = []
            for side in sides:
                try:
                    url = base + pattern.format(**side.ids)
                except KeyError:
                    url = None
                if url is None or "/None" in url or "=None" in url:
                    skipped.setdefault("no such row in the organization", []).append(name + side.label)
                    continue
                browser = side.browsers[role]
                _, first = fetch(browser, url)
                if first.status_code != 200:
                    where = f" to {first.headers.get('Location', '?')}" if first.is_redirect else ""
                    skipped.setdefault(f"{first.status_code}{where}", []).append(name + side.label)
                    continue
                fetch(browser, url)  # the second warm-up
                live.append((side, browser, url, []))
            for _ in range(runs):
                for _side, browser, url, samples in live:  # interleaved: a slow spell weighs on both
                    ms, response = fetch(browser, url)
                    if response.status_code != 200:
                        raise SystemExit(f"{url} answered {response.status_code} during the timed runs")
                    samples.append(ms)
            for side, _browser, _url, samples in live:
                results[f"{name}{side.label}"] = p95(samples)
    return results, skipped


def _interrupted(signum, frame):
    """SIGTERM unwinds like Ctrl+C: the server and the dataset's PostgreSQL are stopped on the way out."""
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=30, help="timed requests a page, after 2 warm-ups")
    ap.add_argument(
        "--only",
        default="",
        help="only the pages whose name starts with this (or one of these, comma-separated), e.g. finance_",
    )
    ap.add_argument("--rebuild", action="store_true", help="build the dataset's cache entry anew")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes: the whole code path in seconds, as the test suite runs it"
    )
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)  # sizes given explicitly still win
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)

    dataset.ensure_cached(args.scale, rebuild=args.rebuild)
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="backoffice-pages-"))
    try:
        with dataset.load(args.scale) as ds:  # its PostgreSQL stops after the server, even on an error
            server = Server(ds, workdir)
            try:
                server.wait_ready()
                sides = [
                    Side(label, page_ids(ds, org), {r: sign_in(server.base, org.logins[r], org.id) for r in ROLES})
                    for label, org in (("", ds.large), ("_demo", ds.demo))
                ]
                print(f"setup: {time.perf_counter() - t0:.1f} s (copy {ds.copy_seconds:.1f} s, serve, sign-ins)")
                t1 = time.perf_counter()
                results, skipped = measure(server.base, sides, args.runs, args.only)
                print(f"measured: {time.perf_counter() - t1:.1f} s ({args.runs} requests a page after 2 warm-ups)")
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    for name in sorted(results):
        print(f"{name}_p95: {results[name]:.1f} ms")
    large = {name: value for name, value in results.items() if not name.endswith("_demo")}
    growth = {name: value - results[f"{name}_demo"] for name, value in large.items() if f"{name}_demo" in results}
    if not large:
        raise SystemExit("no page was measured" + (f" (--only {args.only})" if args.only else ""))
    worst = max(large, key=large.get)
    print(f"page_p95_max: {large[worst]:.1f} ms ({worst})")
    if growth:
        grown = max(growth, key=growth.get)
        against = results[f"{grown}_demo"]
        print(f"page_growth_max: {growth[grown]:.1f} ms ({grown}: {large[grown]:.1f} against {against:.1f})")
    print(f"pages: {len(large)} (large organization), {len(results) - len(large)} (demo)")
    for why, names in sorted(skipped.items()):
        # A page skipped alike in both organizations is named once.
        both = [n for n in names if not n.endswith("_demo") and f"{n}_demo" in names]
        one = [n for n in names if n not in both and n.removesuffix("_demo") not in both]
        print(f"# skipped, {why}: {', '.join(both + one)}")
    met = large[worst] <= PAGE_BUDGET_MS and (not growth or max(growth.values()) <= GROWTH_BUDGET_MS)
    print(
        f"budget: {'met' if met else 'MISSED'} (every page p95 <= {PAGE_BUDGET_MS} ms, growth <= {GROWTH_BUDGET_MS} ms)"
    )


if __name__ == "__main__":
    main()
