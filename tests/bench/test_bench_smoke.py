"""Benches are code too: each one runs at its smoke size here, so a change that breaks a bench fails the suite.

Each bench is run as a script (`python bench/X.py --smoke`), the way a person runs it, with its own
throwaway embedded PostgreSQL. Only that it finishes and prints the figures it promises is checked,
never how fast: timings at a smoke size on a shared machine mean nothing.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# `name: value unit`; the unit may be glued to the value (`2.85x`) or absent (a count, a ratio), and may be
# followed by a note in parentheses.
FIGURE = re.compile(r"^(?P<name>[a-z0-9_/]+): (?P<value>-?\d+(?:\.\d+)?)(?P<unit>[^\s(]*)?(?: (?P<rest>.*))?$")

# The figures each bench promises in its docstring and the README, by name, with their units ("" for none).
PROMISED = {
    "upload": {
        "file": "MB",
        "app_upload_median": "ms",
        "psycopg_insert_median": "ms",
        "ratio": "",
        "server_peak_memory_growth": "MB",
        "memory_growth_vs_file": "x",
    },
    "ap_export": {
        "setup": "s",
        "invoices": "",
        "file": "MB",
        "export_time": "s",
        "peak_memory_growth": "MB",
        "python_allocations_peak": "MB",
        "copy_time": "s",
        "ratio": "",
    },
    "list_download": {
        "setup": "s",
        "rows": "",
        "file": "MB",
        "download_time": "s",
        "rows_per_second": "",
        "peak_memory_growth": "MB",
    },
    "receipts": {
        "setup": "s",
        "receipts": "",
        "median": "ms",
        "p95": "ms",
        "max": "ms",
        "pages/s": "",
        "issued": "receipts",
        "issue_median": "ms",
        "issue_max": "ms",
        "storing_cost": "ms",
    },
    "dataset": {
        "scale": "",
        "build": "s",
        "copy": "s",
        "size": "MB",
        "engagements": "",
        "milestones": "",
        "waiting_reviews": "",
        "invoices": "",
        "payment_queue": "",
        "batches": "",
        "documents": "",
        "audit_events": "",
        "completion_engagements": "",
        "projects": "",
        "proposals": "",
        "other_organizations": "",
        "other_milestones": "",
    },
    "pages": {
        "setup": "s",
        "measured": "s",
        "admin_home_p95": "ms",
        "admin_home_demo_p95": "ms",
        "owner_review_p95": "ms",
        "owner_reviews_queue_p95": "ms",
        "finance_payments_queue_p95": "ms",
        "finance_payments_queue_demo_p95": "ms",
        "finance_payments_queue_contractor_p95": "ms",
        "finance_documents_p95": "ms",
        "finance_audit_p95": "ms",
        "contractor_invoices_p95": "ms",
        "contractor_invoices_demo_p95": "ms",
        "admin_outbox_message_p95": "ms",
        "owner_projects_p95": "ms",
        "owner_project_p95": "ms",
        "owner_project_demo_p95": "ms",
        "contractor_proposals_p95": "ms",
        "contractor_proposal_project_p95": "ms",
        "contractor_proposal_project_demo_p95": "ms",
        "owner_completion_engagement_p95": "ms",
        "owner_completion_engagement_demo_p95": "ms",
        "contractor_invoice_tasks_p95": "ms",
        "contractor_invoice_tasks_demo_p95": "ms",
        "finance_completion_invoice_p95": "ms",
        "finance_completion_invoice_demo_p95": "ms",
        "page_p95_max": "ms",
        "page_growth_max": "ms",
        "pages": "",
    },
    "approve": {
        "http_clients_1": "approvals/s",
        "http_clients_2": "approvals/s",
        "raw": "approvals/s",
        "transaction_statements": "statements",
        "ratio": "",
    },
    "load": {
        "users_2_rps": "requests/s",
        "users_2_p95": "ms",
        "users_2_errors": "",
        "users_2_writes": "",
        "users_4_rps": "requests/s",
        "users_4_p95": "ms",
        "users_4_errors": "",
        "users_4_writes": "",
    },
    "search": {
        "setup": "s",
        "common_prefix_median": "ms",
        "common_prefix_p95": "ms",
        "word_prefix_median": "ms",
        "word_prefix_p95": "ms",
        "invoice_prefix_median": "ms",
        "invoice_prefix_p95": "ms",
        "exact_invoice_median": "ms",
        "exact_invoice_p95": "ms",
        "contractor_name_median": "ms",
        "contractor_name_p95": "ms",
        "contractor_user_median": "ms",
        "contractor_user_p95": "ms",
    },
    "home_figures": {
        "setup": "s",
        **{
            f"home_{role}_{figure}_{stat}": "ms"
            for role, figures in {
                "owner": ("reviews", "due", "commitments"),
                "admin": ("reviews", "due", "commitments", "admin"),
                "finance": ("finance",),
            }.items()
            for figure in figures
            for stat in ("median", "p95")
        },
        "home_figures_p95_max": "ms",
    },
    "rls_overhead": {
        "milestones": "rows",
        "engagements": "rows",
        "organizations": "",
        "setup": "s",
        "org_engagements": "rows",
        "one_engagement_milestones_explicit_where_median": "ms",
        "one_engagement_milestones_rls_median": "ms",
        "contractor_engagement_list_explicit_where_median": "ms",
        "contractor_engagement_list_rls_median": "ms",
        "contractor_engagement_list_ratio": "",
        "engagement_list_explicit_where_median": "ms",
        "engagement_list_rls_median": "ms",
        "engagement_list_ratio": "",
        "milestone_list_explicit_where_median": "ms",
        "milestone_list_rls_median": "ms",
        "milestone_list_ratio": "",
        "rls_median": "ms",
        "ratio": "",
    },
}


def figures(output: str) -> dict[str, tuple[float, str]]:
    """The `name: value unit` lines of a bench's output, as name -> (value, unit)."""
    found = {}
    for line in output.splitlines():
        match = FIGURE.match(line.strip())
        if match:
            unit = match["unit"] or ""
            if not unit and match["rest"] and not match["rest"].startswith("("):
                unit = match["rest"].split()[0]
            found[match["name"]] = (float(match["value"]), unit)
    return found


def test_the_figure_parser_reads_each_way_a_bench_writes_a_figure():
    output = "\n".join(
        [
            "export_time: 3.312 s",
            "ratio: 1.05",
            "memory_growth_vs_file: 2.85x",
            "file: 20 MB (11 stored copies, hashes match: True)",
            "setup: 0.5 s (2 approved invoices with 3 evidence files each)",
            "receipts: 3 (3 pages, 63.0 KiB median)",
            "p95: 34 ms",
            "storing_cost: -2 ms (issue median - render median)",
            "budget: met (ratio <= 1.2)",
            "--- app role, RLS",
        ]
    )
    assert figures(output) == {
        "export_time": (3.312, "s"),
        "ratio": (1.05, ""),
        "memory_growth_vs_file": (2.85, "x"),
        "file": (20.0, "MB"),
        "setup": (0.5, "s"),
        "receipts": (3.0, ""),
        "p95": (34.0, "ms"),
        "storing_cost": (-2.0, "ms"),
    }


# Modules of bench/ that are not benches: what the benches import (each is run through the bench that uses it).
HELPERS = {"dataset_build"}


def test_every_bench_script_is_run_here():
    assert {p.stem for p in (ROOT / "bench").glob("*.py")} == set(PROMISED) | HELPERS


@pytest.mark.parametrize("bench", sorted(PROMISED))
def test_bench_runs_at_its_smoke_size_and_prints_the_figures_it_promises(bench, tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # The scale benches build their dataset here, so the run exercises the build and leaves no cache behind.
        env=os.environ | {"BACKOFFICE_BENCH_CACHE": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, f"bench/{bench}.py --smoke exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    printed = figures(run.stdout)
    missing = sorted(set(PROMISED[bench]) - set(printed))
    assert not missing, f"bench/{bench}.py --smoke did not print {missing}:\n{run.stdout}"
    for name, unit in PROMISED[bench].items():
        value, printed_unit = printed[name]
        assert printed_unit == unit, f"{name}: {value} {printed_unit} (expected the unit {unit!r})"
        assert math.isfinite(value), f"{name}: {value}"
