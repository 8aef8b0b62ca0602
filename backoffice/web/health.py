"""GET /healthz: can this web process serve, and is anyone running the jobs?

For a load balancer or an operator, signed in or not, and saying nothing of any tenant: 200 when the
database answers as the app role and its schema is at the newest migration, 503 otherwise; the body says
which, and whether a job worker beat its heartbeat in the last minute (without one, emails, receipts and
reminders wait in the queue, but pages still work, so a missing worker does not take the web out of
rotation).
"""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy.exc import SQLAlchemyError

from backoffice.queries.health import service_health
from backoffice.schema import head_revisions

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    body: dict[str, object] = {"database": "down", "migrations": "unknown", "worker": "unknown"}
    try:
        with current_app.extensions["backoffice.engine"].connect() as conn:
            row = service_health(conn)
    except SQLAlchemyError as exc:
        current_app.logger.warning("healthz: the database does not answer: %s", exc.__class__.__name__)
        return {**body, "status": "unavailable"}, 503
    current = row.revision in head_revisions()
    body.update(
        database="up",
        migrations="current" if current else f"behind (at {row.revision}): run backoffice db upgrade",
        worker=(
            f"alive ({row.workers_alive})" if row.workers_alive else "none in the last minute: run backoffice worker"
        ),
        revision=row.revision,
    )
    ok = current
    return {**body, "status": "ok" if ok else "unavailable"}, 200 if ok else 503
