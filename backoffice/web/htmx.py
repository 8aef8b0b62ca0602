"""htmx helpers: a page renders its full template, or just its fragment for an htmx request."""

from __future__ import annotations

from flask import redirect, render_template, request


def wants_fragment() -> bool:
    """True for an htmx request that is not a boosted navigation (those want the whole page)."""
    # A history restore (back button after hx-push-url, cache miss) needs the whole page too.
    return bool(request.htmx) and not request.htmx.boosted and not request.headers.get("HX-History-Restore-Request")


def render(page_template: str, fragment_template: str | None = None, /, status: int = 200, **context):
    template = fragment_template if fragment_template and wants_fragment() else page_template
    return render_template(template, **context), status


def redirect_after_post(url: str):
    """Success of a form: a 303 to the next page; for an in-place htmx form, HX-Redirect, so the browser
    loads that page instead of htmx swapping it into the form."""
    if wants_fragment():
        return "", 200, {"HX-Redirect": url}
    return redirect(url, code=303)
