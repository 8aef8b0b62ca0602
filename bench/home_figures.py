"""How long do the home pages' figures take at a large customer's size? Prints medians and p95s; asserts nothing.

Loads a fresh copy of the scale dataset (bench/dataset.py: built once and cached) and times each query of
backoffice/queries/dashboards.py the way the home page runs it: as the app role, under row-level security,
as the large organization's admin, project owner (the showcase engagement's, who runs a twentieth of its
10,000 engagements) and finance person, RUNS times each after 2 warm-ups. bench/pages.py times the whole
home page over HTTP; this one says which figure costs what, without the machine's HTTP noise.

    .venv/bin/python bench/home_figures.py [--scale 1.0] [--runs 30] [--smoke]

--smoke is the dataset's smoke scale with 3 timed runs: the whole path in seconds.
Prints `home_ROLE_FIGURE_median: X ms` and `..._p95`, then `home_figures_p95_max` naming the slowest, and
`budget` (each figure's p95 <= 10 ms, so that a home page's figures together stay within the page budget).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import uuid

import dataset
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from backoffice.queries import dashboards
from backoffice.queries.identity import actor_for

FIGURE_BUDGET_MS = 10
SMOKE = {"scale": dataset.SMOKE_SCALE, "runs": 3}

# role -> the figures its home shows (as web/home.py asks for them)
FIGURES = {
    "owner": {
        "reviews": lambda s, a, today: dashboards.review_figures(s, a),
        "due": lambda s, a, today: dashboards.due_figures(s, a, today),
        "commitments": lambda s, a, today: dashboards.commitments(s, a),
    },
    "admin": {
        "reviews": lambda s, a, today: dashboards.review_figures(s, a),
        "due": lambda s, a, today: dashboards.due_figures(s, a, today),
        "commitments": lambda s, a, today: dashboards.commitments(s, a),
        "admin": lambda s, a, today: dashboards.admin_figures(s, a),
    },
    "finance": {
        "finance": lambda s, a, today: dashboards.finance_figures(s, today),
    },
}


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--smoke", action="store_true", help="the smoke scale, 3 runs")
    args = ap.parse_args()
    if args.smoke:
        args.scale, args.runs = SMOKE["scale"], SMOKE["runs"]
    t0 = time.perf_counter()
    with dataset.load(scale=args.scale) as ds:
        owner_engine = create_engine(
            ds.urls.admin.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool
        )
        app_engine = create_engine(ds.urls.app.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
        org_id = uuid.UUID(ds.large.id)
        print(f"setup: {time.perf_counter() - t0:.1f} s (scale {args.scale})")
        results: dict[str, list[float]] = {}
        with Session(owner_engine) as owner_s:
            for role, figures in FIGURES.items():
                email = ds.large.logins[role].email
                user_id = owner_s.execute(text("select id from users where email = :e"), {"e": email}).scalar_one()
                token = owner_s.execute(text("select auth_open_session(:u)"), {"u": user_id}).scalar_one()
                actor = actor_for(owner_s, user_id, org_id)  # read as the owner role: set-up, not timed
                owner_s.commit()
                with Session(app_engine) as app_s:
                    # As the app does: transaction-local settings; each Session here is one long transaction.
                    app_s.execute(
                        text(
                            "select set_config('app.user_id', :u, true), set_config('app.org_id', :o, true),"
                            " set_config('app.session', :t, true)"
                        ),
                        {"u": str(user_id), "o": str(org_id), "t": token},
                    )
                    today = dashboards.today_in_db(app_s)
                    for name, run in figures.items():
                        samples = []
                        for i in range(args.runs + 2):
                            started = time.perf_counter()
                            run(app_s, actor, today)
                            if i >= 2:  # two warm-ups
                                samples.append((time.perf_counter() - started) * 1000)
                        results[f"home_{role}_{name}"] = samples
        for name, samples in sorted(results.items()):
            print(f"{name}_median: {statistics.median(samples):.1f} ms")
            print(f"{name}_p95: {p95(samples):.1f} ms")
        slowest = max(results, key=lambda n: p95(results[n]))
        worst = p95(results[slowest])
        print(f"home_figures_p95_max: {worst:.1f} ms ({slowest})")
        print(
            f"budget: {'met' if worst <= FIGURE_BUDGET_MS else 'MISSED'} (each figure's p95 <= {FIGURE_BUDGET_MS} ms)"
        )


if __name__ == "__main__":
    main()
