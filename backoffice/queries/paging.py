"""Pagination shared by the lists.

``Paging`` is page arithmetic for the short lists that count their rows (a dataclass with total, page and
per_page). The long lists (the payment queue, the data room, the review queue, the due page and the
retainage report: each can hold a whole organization's rows) are paged by keys instead: a page is the
rows after (or before) the sort key of the last (or first) row of the page the link came from, read over
an index in that order, so page 1 and page 2,000 cost the same and nothing counts the rows it skips.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, unquote


class Paging:
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)


# How each kind of key value is read back from a link. The text is the value's str(): dates and times in
# ISO form, whole numbers, uuids.
_READERS: dict[type, Callable[[str], Any]] = {
    date: date.fromisoformat,
    datetime: datetime.fromisoformat,
    int: int,
    str: str,
    uuid.UUID: uuid.UUID,
}
_SEPARATOR = "~"


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, going back, before) the row whose sort key is ``key``; ``position``
    is how many rows came before that row, as the link said (only ever shown, as "51–100"; a stale or
    edited one misnumbers the page, never changes which rows it holds)."""

    key: tuple
    position: int
    backwards: bool = False

    def text(self) -> str:
        # Each value percent-encoded: a name may hold the separator.
        return _SEPARATOR.join([str(self.position), *(quote(str(v), safe="").replace("~", "%7E") for v in self.key)])

    @classmethod
    def read(cls, raw: str | None, types: Sequence[type], *, backwards: bool = False) -> Cursor | None:
        """The cursor a link carried, or None (the first page) for anything that is not one: a list never
        answers a malformed link with an error, it starts again."""
        if not raw or len(raw) > 400 or "\x00" in raw:
            return None
        parts = raw.split(_SEPARATOR)
        if len(parts) != len(types) + 1:
            return None
        try:
            position = int(parts[0])
            key = tuple(_READERS[t](unquote(p, errors="strict")) for t, p in zip(types, parts[1:], strict=True))
        except (ValueError, OverflowError, UnicodeDecodeError):
            return None
        if not 0 <= position < 10**12 or any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in key):
            return None
        if any(type(v) is date and not date(1, 1, 2) <= v <= date(9999, 12, 30) for v in key):
            return None
        return cls(key, position, backwards)


@dataclass(frozen=True)
class Keyset:
    """How a list is ordered for keyset paging: its sort key's SQL expressions, in order, ascending or
    descending as one, and the Python types its values come back as."""

    columns: tuple[str, ...]
    types: tuple[type, ...]
    descending: bool = False

    def clause(self, cursor: Cursor | None) -> tuple[str, str, dict]:
        """(a condition to AND into the page's WHERE, its ORDER BY, their parameters). Going back reads the
        rows before the cursor in the opposite order; ``KeysetPage.build`` puts them right again."""
        backwards = bool(cursor and cursor.backwards)
        descending = self.descending != backwards
        direction = "desc" if descending else "asc"
        order = ", ".join(f"{c} {direction}" for c in self.columns)
        if cursor is None:
            return "true", order, {}
        names = [f"k{i}" for i in range(len(self.columns))]
        condition = f"({', '.join(self.columns)}) {'<' if descending else '>'} ({', '.join(':' + n for n in names)})"
        return condition, order, dict(zip(names, cursor.key, strict=True))

    def read(self, after: str | None, before: str | None) -> Cursor | None:
        if after:
            return Cursor.read(after, self.types)
        return Cursor.read(before, self.types, backwards=True)


@dataclass(frozen=True)
class KeysetPage:
    """One page of a keyset-paged list: its rows, where it starts (``first``, 1-based, as the link said),
    and the cursors of the pages before and after it (None where there is none)."""

    rows: list
    first: int
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1

    @classmethod
    def build(cls, fetched: list, cursor: Cursor | None, per_page: int, key: Callable[[Any], tuple]) -> KeysetPage:
        """The page from ``per_page + 1`` rows fetched with ``Keyset.clause`` (the extra one says whether
        more lie in the direction read)."""
        more = len(fetched) > per_page
        rows = fetched[:per_page]
        if cursor is not None and cursor.backwards:
            rows.reverse()
            start = max(0, cursor.position - len(rows)) if more else 0  # back at the first row: page 1
            has_previous, has_next = more, True
        else:
            start = cursor.position if cursor is not None else 0
            has_previous, has_next = cursor is not None, more
        if not rows:
            return cls([], start + 1, None, None)
        return cls(
            rows,
            start + 1,
            Cursor(key(rows[-1]), start + len(rows)).text() if has_next else None,
            Cursor(key(rows[0]), start, backwards=True).text() if has_previous else None,
        )


WALK_PAGE = 1000  # rows a download reads at a time: memory stays flat, and each read walks the list's index


def every_row(read_page: Callable[[Cursor | None, int], KeysetPage], keyset: Keyset) -> Iterator:
    """Every row of a keyset-paged list, in its order, read by the list's own page query a page at a time
    (``read_page(cursor, per_page)``): a download holds the rows the pages show, under the same filters, and
    never the whole list in memory. Each page starts where the last one's link would."""
    cursor = None
    while True:
        page = read_page(cursor, WALK_PAGE)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = Cursor.read(page.next_cursor, keyset.types)
