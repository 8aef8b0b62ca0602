"""What GET /healthz asks the database (``service_health()``, sql/jobs.sql): nothing of any tenant."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class ServiceHealth:
    revision: str | None  # the schema's migration
    workers_alive: int  # job workers that beat their heartbeat in the last minute


def service_health(conn: Connection) -> ServiceHealth:
    row = conn.execute(text("select * from service_health()")).one()
    return ServiceHealth(row.revision, row.workers_alive)
