"""backoffice: pay contractors for delivered work, never ahead of it."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from werkzeug.middleware.proxy_fix import ProxyFix

csrf = CSRFProtect()
htmx = Htmx()


def create_app(database_url: str | None = None, *, pool_size: int | None = None, **overrides) -> Flask:
    """The WSGI app. ``database_url`` is the app role's; without it the environment decides
    (DATABASE_URL, or the embedded server in BACKOFFICE_DATA_DIR). ``pool_size``: database connections
    this process keeps, one per serving thread (``backoffice.serving``); SQLAlchemy's default otherwise."""
    from backoffice.config import load_settings, secret_key_for, tax_id_key_for
    from backoffice.db import make_engine, make_session_factory
    from backoffice.services.tin_cipher import TinKeyError, check_key
    from backoffice.web import register

    settings = load_settings()
    if database_url is None:
        from backoffice.runtime import database_urls

        database_url = database_urls(settings).app

    tax_id_key = tax_id_key_for(settings)
    try:
        check_key(tax_id_key)
    except TinKeyError as bad:
        raise SystemExit(str(bad)) from None
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key_for(settings),
        TAX_ID_KEY=tax_id_key,  # encrypts contractors' TINs (services/tin_cipher)
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="backoffice_session",
        PERMANENT_SESSION_LIFETIME=60 * 60 * 12,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        BACKOFFICE_SETTINGS=settings,
        BASE_URL=settings.base_url,  # links in emails: configured, never taken from a request's Host header
    )
    app.config.update(overrides)
    if settings.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    pool = {"pool_size": pool_size, "max_overflow": 2, "pool_timeout": 10} if pool_size else {}
    engine = make_engine(database_url, **pool)
    app.extensions["backoffice.engine"] = engine
    app.extensions["backoffice.sessions"] = make_session_factory(engine)

    csrf.init_app(app)
    htmx.init_app(app)
    register(app)
    return app
