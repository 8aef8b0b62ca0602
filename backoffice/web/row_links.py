"""``link(endpoint, name=value)``: ``url_for`` for the rows of a list.

A list page links each of its rows to the row's own page (an invoice, an engagement, a milestone). Flask's
``url_for`` asks the routing map every time: about 13 µs a link, 3 or 4 links a row, 2 to 3 ms of a page of
50 rows (bench/pages.py). ``link`` asks it once per endpoint and request root, for a marker in place of the
one value, and then joins the cached pieces around each row's quoted value. Anything else (no value, several,
a value the marker does not survive) goes to ``url_for``.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import request, url_for

_MARK = "b0ffice0link0mark"
_PIECES: dict[tuple[str, str, str], tuple[str, str] | None] = {}


def link(endpoint: str, **values) -> str:
    if len(values) != 1:
        return url_for(endpoint, **values)
    ((name, value),) = values.items()
    if value is None:
        return url_for(endpoint, **values)
    key = (request.script_root, endpoint, name)
    if key not in _PIECES:
        pieces = url_for(endpoint, **{name: _MARK}).split(_MARK)
        _PIECES[key] = (pieces[0], pieces[1]) if len(pieces) == 2 else None
    pieces = _PIECES[key]
    if pieces is None:
        return url_for(endpoint, **values)
    return pieces[0] + quote(str(value), safe="") + pieces[1]
