"""GET /healthz: whether this web process can serve (the database answers, its schema is current) and whether a
job worker is alive, for anyone, signed in or not, and nothing of any tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from backoffice import create_app


def test_healthz_answers_anyone_with_the_database_up_and_the_schema_current(client, admin_engine):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    with admin_engine.connect() as conn:
        revision = conn.execute(text("select version_num from alembic_version")).scalar_one()
    assert body["database"] == "up" and body["migrations"] == "current" and body["status"] == "ok"
    assert body["revision"] == revision
    assert set(body) == {"database", "migrations", "worker", "revision", "status"}  # nothing of any tenant


@pytest.fixture
def heartbeat(admin_engine):
    """A job worker's heartbeat row, as procrastinate writes it, for the test's length."""
    with admin_engine.begin() as conn:
        worker_id = conn.execute(
            text("insert into procrastinate.procrastinate_workers (last_heartbeat) values (now()) returning id")
        ).scalar_one()
    yield worker_id
    with admin_engine.begin() as conn:
        conn.execute(text("delete from procrastinate.procrastinate_workers where id = :i"), {"i": worker_id})


def test_healthz_says_whether_a_job_worker_beat_in_the_last_minute(client, admin_engine, heartbeat):
    assert client.get("/healthz").get_json()["worker"].startswith("alive (")
    with admin_engine.begin() as conn:
        conn.execute(
            text("update procrastinate.procrastinate_workers set last_heartbeat = now() - interval '2 minutes'")
        )
    response = client.get("/healthz")
    assert response.status_code == 200  # pages still work without a worker: the web stays in rotation
    assert response.get_json()["worker"] == "none in the last minute: run backoffice worker"


def test_healthz_is_503_naming_the_fix_when_the_schema_is_behind(client, admin_engine):
    with admin_engine.begin() as conn:
        current = conn.execute(text("select version_num from alembic_version")).scalar_one()
        conn.execute(text("update alembic_version set version_num = '0009_server_secrets'"))
    try:
        response = client.get("/healthz")
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("update alembic_version set version_num = :v"), {"v": current})
    assert response.status_code == 503
    assert response.get_json()["migrations"] == "behind (at 0009_server_secrets): run backoffice db upgrade"


def test_healthz_is_503_when_the_database_does_not_answer(database):
    unreachable = "postgresql://backoffice_app@/backoffice?host=/nonexistent-socket-dir&connect_timeout=2"
    app = create_app(unreachable, TESTING=True)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {
        "database": "down",
        "migrations": "unknown",
        "worker": "unknown",
        "status": "unavailable",
    }
