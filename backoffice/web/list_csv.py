"""One streamed CSV writer for every list's download (issue 22, items 6 and 11).

A download is the list as filtered, every row: the route reads the same query string as the page, asks the
list's own query for its rows a page at a time (queries/paging.every_row) or from a server-side cursor, and
streams the file while it reads, so a list of 100,000 rows costs the memory of one page. The file is for a
spreadsheet: headers in words, amounts as plain decimal numbers in major units (exact, from the integer minor
units) beside their currency, dates ISO, text cells guarded against formulas (domain.ap_export.safe_cell, as
the AP files are), UTF-8 with a byte-order mark so Excel reads the names as written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain, islice

from flask import Response, abort, current_app, request, stream_with_context
from sqlalchemy.orm import Session

from backoffice.domain.ap_export import BOM, safe_cell
from backoffice.domain.money import decimal_text
from backoffice.web.context import db

FLUSH_ROWS = 500  # rows written before the response sends a piece: a few tens of KiB at a time


class Number(str):
    """A cell the writer writes as it is (an amount, a count): a negative amount's '-' is not a formula."""


def amount(minor: int | None, currency: str) -> Number | None:
    return None if minor is None else Number(decimal_text(minor, currency))


@dataclass(frozen=True)
class Column:
    header: str  # in words, as the page heads it
    value: Callable[[object], object]


def cell(value) -> str:
    """A value as a CSV cell: dates and times ISO (times in UTC, to the second), text formula-safe."""
    if value is None:
        return ""
    if type(value) is str:  # the most common cell first: this runs for every cell of 100,000 rows
        return safe_cell(value)
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return safe_cell(str(value))


def csv_lines(columns: Sequence[Column], rows: Iterable) -> Iterator[bytes]:
    """The file's bytes, a piece at a time: the byte-order mark and the header line, then the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180's line end, which Excel expects
    writer.writerow([cell(c.header) for c in columns])
    yield BOM + out.getvalue().encode("utf-8")
    out.seek(0)
    out.truncate()
    for n, row in enumerate(rows, start=1):
        writer.writerow([cell(c.value(row)) for c in columns])
        if n % FLUSH_ROWS == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue().encode("utf-8")


def refuse_nul_filters() -> None:
    """A filter holding a NUL byte is no filter a page could have made (PostgreSQL refuses it in text): 400."""
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400)


def stream_session() -> Session:
    """A session of its own for a streamed download, as the request's (the same person, organization and
    sign-in, so the same row-level security). The request's session is closed when the view returns, before
    the response has been read to the end; this one is closed by csv_download when the file ends."""
    session = current_app.extensions["backoffice.sessions"]()
    session.info.update(db().info)
    return session


def csv_download(list_name: str, columns: Sequence[Column], rows: Iterable, session: Session) -> Response:
    """The streamed response: ``<list-name>-<YYYY-MM-DD>.csv``, never cached; ``session`` (stream_session's) is
    closed when the file ends. The first rows are read before the response starts, so an error in the query is
    an error page, not a file cut short."""
    rows = iter(rows)
    try:
        first = list(islice(rows, 1))
    except BaseException:
        session.close()
        raise

    def body() -> Iterator[bytes]:
        try:
            yield from csv_lines(columns, chain(first, rows))
        finally:
            session.close()

    filename = f"{list_name}-{date.today().isoformat()}.csv"
    return Response(
        stream_with_context(body()),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
