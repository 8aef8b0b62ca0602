"""How long does the header's search take at a large customer's size? Prints medians and p95s; asserts nothing.

Loads bench/dataset.py's dataset (a fresh copy of the cached build; built first if missing) and calls
``queries.search.search`` -- what /search and its suggestions call -- as the app role through RLS, signed in the way
the web signs in (a sign-in session the database opened, presented in app.session), one transaction per search as
a request has. In "Large Customer Holdings" (10,000 engagements, ~145,000 milestones, ~110,000 invoices, beside 200
other organizations with 1,000,000 milestones between them, all with the same milestone titles):

  common_prefix     "site" as finance: every engagement title of the organization has the word ("…, site 42"), so
                    do its invoices' descriptions: the most any one word matches
  word_prefix       "kitch" as finance: one engagement in twelve, its milestones' and invoices' texts
  invoice_prefix    "LRG-00012" as finance: a number's beginning (the words lrg and 00012 as prefixes)
  exact_invoice     "LRG-000123" as finance: the whole number (GIN, and the unique btree for the exact one)
  contractor_name   "Contractor 0042" as the admin (the one role that finds contractors)
  contractor_user   "site" as a contractor's user: its contractor's lexemes narrow GIN to its own rows

Before sql/search.sql's door (the same statements under RLS, where the planner will not use a full-text match
as an index condition): "site" took 3.4-4.2 s for the milestones alone, walking all 145,000 by their org index.

    .venv/bin/python bench/search.py [--scale 1.0] [--runs 30] [--smoke]

--smoke is the dataset's smoke scale (0.002) and 3 runs: the whole code path in seconds, for the test suite.
Each figure is printed on its own line as `name: value unit`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import dataset
from sqlalchemy import text

from backoffice import schema
from backoffice.db import make_engine, make_session_factory, present_sign_in
from backoffice.queries import search as queries
from backoffice.queries.identity import actor_for

SMOKE = {"scale": dataset.SMOKE_SCALE, "runs": 3}


def timed(call, runs: int) -> tuple[float, float, object]:
    """Median and p95 milliseconds of ``call()`` over ``runs`` runs after one to warm the plan; its last result."""
    result = call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--smoke", action="store_true", help="the dataset's smoke scale, 3 runs: for the test suite")
    args = ap.parse_args()
    if args.smoke:
        args.scale, args.runs = SMOKE["scale"], SMOKE["runs"]

    dataset.ensure_cached(args.scale)
    t0 = time.perf_counter()
    with dataset.load(args.scale) as ds:
        # The cache is keyed by the migrations' head, not by sql/: the copy gets today's SQL files (search_hits).
        schema.upgrade(ds.urls.admin, ds.urls.app, ds.urls.worker, sql_files=True)
        owner = make_engine(ds.urls.admin)
        app = make_engine(ds.urls.app)
        sessions = make_session_factory(app)

        def signed_in(email: str):
            """An app-role session signed in as ``email`` in the large organization, and its Actor."""
            with owner.begin() as conn:
                user_id = conn.execute(text("select id from users where email = :e"), {"e": email}).scalar_one()
                token = conn.execute(text("select auth_open_session(:u)"), {"u": user_id}).scalar_one()
            session = sessions()
            present_sign_in(session, token)
            actor = actor_for(session, user_id, uuid.UUID(ds.large.id))
            session.commit()
            return session, actor

        finance = signed_in(ds.large.logins["finance"].email)
        admin = signed_in(ds.large.logins["admin"].email)
        contractor = signed_in(ds.large.logins["contractor"].email)
        print(f"setup: {time.perf_counter() - t0:.1f} s (a copy of the scale {args.scale} dataset, three sign-ins)")

        def search(who, typed: str):
            session, actor = who

            def call():
                try:
                    return queries.search(session, actor, typed, limit=20)
                finally:
                    session.rollback()  # one transaction per search, as a request

            return call

        cases = {
            "common_prefix": (finance, "site"),
            "word_prefix": (finance, "kitch"),
            "invoice_prefix": (finance, "LRG-00012"),
            "exact_invoice": (finance, "LRG-000123"),
            "contractor_name": (admin, "Contractor 0042"),
            "contractor_user": (contractor, "site"),
        }
        for name, (who, typed) in cases.items():
            median, p95, found = timed(search(who, typed), args.runs)
            shown = (
                f"{len(found.engagements)} engagements, {len(found.milestones)} milestones,"
                f" {len(found.invoices)} invoices, {len(found.contractors)} contractors shown"
            )
            print(f"{name}_median: {median:.1f} ms ({typed!r}: {shown})")
            print(f"{name}_p95: {p95:.1f} ms")

        for session, _ in (finance, admin, contractor):
            session.close()
        owner.dispose()
        app.dispose()


if __name__ == "__main__":
    main()
