"""Blueprints, error pages, security headers and template helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Flask, has_request_context, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from backoffice.domain import roles as role_sets
from backoffice.domain.completion import task_word
from backoffice.domain.currency import is_currency
from backoffice.domain.engagements import can_decide
from backoffice.domain.evidence import human_size
from backoffice.domain.money import example as money_example
from backoffice.domain.money import format_amount
from backoffice.domain.percent import format_bps
from backoffice.errors import DomainError
from backoffice.services.verification import MAX_VERIFY_BYTES
from backoffice.web import display
from backoffice.web.context import close_db, login_manager
from backoffice.web.row_links import link

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https (or the config says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("X-Frame-Options", "DENY")  # evidence previews allow their own origin
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.vary.add("HX-Request")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(status: int, title: str, message: str):
    return render_template("errors/error.html", status=status, title=title, message=message), status


# What a 413 says on the pages that take a file larger than the app's usual limit (web/uploads.py).
_TOO_LARGE = {
    "payments.remittance": "That file is too large: a remittance file is at most 2 MB; split it. Nothing was saved.",
    "verification.verify": (
        "That file is too large to be a document of the data room: the check takes files of at most"
        f" {MAX_VERIFY_BYTES // (1024 * 1024)} MB. Nothing was checked."
    ),
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        titles = {404: "Not found", 403: "Not allowed", 409: "Conflict", 422: "Check your input"}
        return _error_page(exc.status, titles.get(exc.status, "Something is wrong"), exc.message)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _error_page(
            400,
            "Form expired",
            "This form was missing its security token or it expired. Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            403: "Your role in this organization does not allow this page.",
            404: "There is nothing here, or it belongs to another organization.",
            405: "That action is not available here.",
            413: _TOO_LARGE.get(
                request.endpoint, "That upload is too large: one submission carries at most 100 MB. Nothing was saved."
            ),
        }
        return _error_page(exc.code or 500, exc.name, messages.get(exc.code, exc.description))

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        app.logger.exception("unhandled error")
        return _error_page(
            500, "Something went wrong", "The error was logged. Nothing was saved; try again in a moment."
        )


def when(value: datetime | None):
    """A moment for an HTML page: <time> with the human form relative to now on the signed-in person's clock (their
    preferences), the exact one in UTC on hover."""
    from backoffice.web.account import viewer_zone

    return display.moment_element(value, datetime.now(UTC), viewer_zone() if has_request_context() else None)


def on(value: date | str | None):
    """A calendar day for an HTML page: <time> with the short date, weekday and distance on hover ("today" is the
    person's today; a moment's day is its day on their clock)."""
    from backoffice.web.account import viewer_zone

    tz = viewer_zone() if has_request_context() else None
    return display.day_element(value, datetime.now(tz or UTC).date(), tz)


def register(app: Flask) -> None:
    from backoffice.web import (
        account,
        admin,
        approvals,
        audit,
        auth,
        batches,
        change_orders,
        completion,
        documents,
        downloads,
        einvoices,
        einvoicing,
        engagements,
        evidence,
        health,
        home,
        milestones,
        notifications,
        outbox,
        payment_selection,
        payments,
        payouts,
        projects,
        proposals,
        reconciliation,
        retainage,
        reviews,
        schedule,
        search,
        self_billing,
        stripe_payments,
        tax,
        verification,
        webhooks,
    )
    from backoffice.web.uploads import Request

    app.request_class = Request

    app.session_interface = SessionInterface()
    login_manager.init_app(app)
    app.teardown_appcontext(close_db)
    app.after_request(security_headers)
    register_error_handlers(app)
    app.jinja_env.filters["bps"] = format_bps
    app.jinja_env.filters["money"] = format_amount
    app.jinja_env.filters["amount_input"] = lambda minor, currency: format_amount(minor, currency, symbol=False)
    # Pages show moments and days as <time> (display.py); emails and receipts format in the
    # organization's locale (formatting.py).
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["on"] = on
    app.jinja_env.filters["options"] = display.option_elements
    # A form re-shown with a currency it refused (at its field) still shows its hints: those say it in dollars.
    app.jinja_env.globals["amount_example"] = lambda currency: money_example(
        currency if is_currency(currency) else "USD"
    )
    app.jinja_env.globals["link"] = link  # url_for for the rows of a list (web/row_links.py)
    # Templates ask the domain who may see or do what; they never spell a role set or a rule out.
    app.jinja_env.globals["roles"] = role_sets
    app.jinja_env.globals["can_decide"] = can_decide
    # "milestone" or, billed on completion, "task" (domain.completion.task_word).
    app.jinja_env.globals["task_word"] = task_word
    app.jinja_env.filters["filesize"] = human_size
    # "Projects" in the navigation and an engagement's "Awarded from project …": the staff's or a contractor's page.
    app.jinja_env.globals["projects_link"] = projects.projects_link
    for bp in (
        auth.bp,
        home.bp,
        admin.bp,
        approvals.bp,
        audit.bp,
        engagements.bp,
        projects.bp,
        schedule.bp,
        proposals.bp,
        change_orders.bp,
        completion.bp,
        milestones.bp,
        reviews.bp,
        evidence.bp,
        payments.bp,
        payment_selection.bp,
        batches.bp,
        payouts.bp,
        stripe_payments.bp,
        reconciliation.bp,
        webhooks.bp,
        retainage.bp,
        notifications.bp,
        outbox.bp,
        documents.bp,
        einvoices.bp,
        verification.bp,
        tax.bp,
        einvoicing.bp,
        self_billing.bp,
        downloads.bp,
        search.bp,
        health.bp,
        account.bp,
    ):
        app.register_blueprint(bp)
