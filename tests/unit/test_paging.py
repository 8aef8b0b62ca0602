"""Keyset paging (queries/paging.py): cursors read back exactly what they wrote, anything else is the first
page, and pages built from the rows fetched link forwards and backwards without repeating or losing a row."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.queries.paging import Cursor, Keyset, KeysetPage

KEYSET = Keyset(("i.due_date", "i.number"), (date, int))


@given(st.text(max_size=30))
def test_a_text_key_reads_back_whatever_it_holds_the_separator_included(name):
    ident = uuid.uuid4()
    raw = Cursor((name.replace("\x00", ""), ident), 3).text()
    assert Cursor.read(raw, (str, uuid.UUID)) == Cursor((name.replace("\x00", ""), ident), 3)


def test_a_cursor_reads_back_the_key_and_position_it_was_written_with():
    key = (date(2026, 12, 31), 1234)
    assert Cursor.read(Cursor(key, 50).text(), (date, int)) == Cursor(key, 50)
    stamp = datetime(2026, 12, 5, 9, 30, 1, 123456, tzinfo=UTC)
    ident = uuid.uuid4()
    assert Cursor.read(Cursor((stamp, ident), 7).text(), (datetime, uuid.UUID), backwards=True) == Cursor(
        (stamp, ident), 7, backwards=True
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "nope",
        "1~2026-01-01",  # a value short
        "1~2026-01-01~5~6",  # one too many
        "x~2026-01-01~5",
        "-1~2026-01-01~5",
        "1~2026-13-01~5",
        "1~2026-01-01~5.5",
        "1~2026-01-01~" + "9" * 30,  # past a bigint: would be a database error
        "1~0001-01-01~5",  # a date the database could not subtract a day from
        "1~2026-01-01\x00~5",
        "1~" + "2" * 500,
    ],
)
def test_anything_that_is_not_a_cursor_is_the_first_page(raw):
    assert Cursor.read(raw, (date, int)) is None


def test_the_clause_reads_after_the_key_in_the_lists_order_and_before_it_backwards():
    assert KEYSET.clause(None) == ("true", "i.due_date asc, i.number asc", {})
    after = KEYSET.clause(Cursor((date(2026, 1, 1), 9), 50))
    assert after == (
        "(i.due_date, i.number) > (:k0, :k1)",
        "i.due_date asc, i.number asc",
        {"k0": date(2026, 1, 1), "k1": 9},
    )
    before = KEYSET.clause(Cursor((date(2026, 1, 1), 9), 50, backwards=True))
    assert before[:2] == ("(i.due_date, i.number) < (:k0, :k1)", "i.due_date desc, i.number desc")
    newest_first = Keyset(("d.issued_at", "d.id"), (datetime, uuid.UUID), descending=True)
    assert newest_first.clause(Cursor((1, 2), 0))[:2] == (
        "(d.issued_at, d.id) < (:k0, :k1)",
        "d.issued_at desc, d.id desc",
    )


def _walk(rows: list[int], per_page: int, cursor: Cursor | None) -> KeysetPage:
    """What a list of the integers ``rows`` (its own sort key) returns for ``cursor``, as SQL would."""
    if cursor is None:
        fetched = rows[: per_page + 1]
    elif cursor.backwards:
        fetched = [r for r in reversed(rows) if r < cursor.key[0]][: per_page + 1]
    else:
        fetched = [r for r in rows if r > cursor.key[0]][: per_page + 1]
    return KeysetPage.build(fetched, cursor, per_page, key=lambda r: (r,))


@given(st.integers(0, 60), st.integers(1, 7))
def test_paging_forwards_then_back_visits_every_row_once_numbered_in_order(count, per_page):
    rows = list(range(10, 10 + 3 * count, 3))
    page, seen, pages = _walk(rows, per_page, None), [], []
    while True:
        assert page.first == len(seen) + 1
        seen += page.rows
        pages.append(page.rows)
        assert (page.previous_cursor is None) == (len(pages) == 1)
        if page.next_cursor is None:
            break
        page = _walk(rows, per_page, Cursor.read(page.next_cursor, (int,)))
    assert seen == rows
    for expected in reversed(pages[:-1]):
        page = _walk(rows, per_page, Cursor.read(page.previous_cursor, (int,), backwards=True))
        assert page.rows == expected and page.next_cursor is not None
        assert page.first == rows.index(expected[0]) + 1
    assert page.previous_cursor is None
