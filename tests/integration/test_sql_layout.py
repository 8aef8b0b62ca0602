"""The SQL under sql/ by area (issue 15): sql/rls_policies.sql holds the context helpers, the policies and
the grants; the guard triggers and other functions live in a file per area; backoffice.schema.SQL_FILES
applies every file, in one order."""

from __future__ import annotations

import re

from backoffice.config import SQL_DIR
from backoffice.schema import SQL_FILES

RLS_POLICIES = SQL_DIR / "rls_policies.sql"


def test_rls_policies_sql_stays_under_600_lines():
    assert len(RLS_POLICIES.read_text().splitlines()) < 600


def test_rls_policies_sql_holds_no_trigger_function_and_attaches_no_trigger():
    sql = RLS_POLICIES.read_text().lower()
    assert re.findall(r"returns\s+trigger|create\s+(?:constraint\s+)?trigger", sql) == []


def test_rls_policies_sql_opens_with_its_contents():
    head = RLS_POLICIES.read_text().splitlines()[:20]
    assert "-- Contents" in head


def test_every_file_under_sql_is_applied_and_every_applied_file_exists():
    assert sorted(p.name for p in SQL_DIR.glob("*.sql")) == sorted(SQL_FILES)
    assert len(set(SQL_FILES)) == len(SQL_FILES)
