"""Search from the header: a page of grouped results, and the suggestions shown under the header's box as one types.

What is found is queries/search.py's (RLS decides who finds what); this module only reads the typed text and picks
the page or the fragment.
"""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from backoffice.queries import search as queries
from backoffice.web.context import actor, db
from backoffice.web.htmx import render

bp = Blueprint("search", __name__, url_prefix="/search")

PAGE_LIMIT = 20  # of each kind on the results page
SUGGESTION_LIMIT = 5  # of each kind under the header's box


def _typed() -> str:
    """The typed text as the page shows it back: printable characters only (a NUL or a control character is
    dropped, not echoed), at most as long as the search reads."""
    return "".join(ch for ch in request.args.get("q", "")[: queries.MAX_CHARS] if ch.isprintable()).strip()


@bp.route("")
@login_required
def index():
    """The results page; to the page's own box (htmx), just its results."""
    typed = _typed()
    results = queries.search(db(), actor(), typed, limit=PAGE_LIMIT)
    return render(
        "search/index.html",
        "search/_results.html",
        results=results,
        limit=PAGE_LIMIT,
        status_id="search-status",
        finds_contractors=actor().role in queries.CONTRACTOR_SEARCHERS,
    )


@bp.route("/suggest")
@login_required
def suggest():
    """What the header's box shows under it as one types (a fragment, also readable alone)."""
    typed = _typed()
    results = queries.search(db(), actor(), typed, limit=SUGGESTION_LIMIT, min_chars=queries.SUGGEST_MIN_CHARS)
    return render(
        "search/_results.html",
        results=results,
        limit=SUGGESTION_LIMIT,
        status_id="header-search-status",
        compact=True,
    )
