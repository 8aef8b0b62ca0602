"""Restores: a backup file (``backoffice.backup``) loaded into an empty database (`backoffice restore FILE`).

The file is checked whole (size, sha256, revision, readable by pg_restore) before the target is touched.
The dump is loaded as the target's owner role, leaving out the dump's owners, grants and policies: they
name the roles of the database the backup came from, whose names may differ. ``schema.upgrade`` then
applies sql/ for the target's own app and worker roles (every grant, policy and guard is there) and
migrates a backup of an older revision to the newest. The tables' triggers (the audit trail's append-only
guard and hash chain among them) and their enabled and forced row-level security come from the dump; sql/
applies them again.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from backoffice import schema
from backoffice.backup import (
    BackupError,
    CheckedBackup,
    Header,
    counted,
    find_tools,
    job_count,
    open_backup,
    row_counts,
    summary,
)
from backoffice.domain.evidence import human_size
from backoffice.pg_tools import ToolError, embedded_tools, libpq_url, tools_for


def check_revision(header: Header, path: Path) -> None:
    """BackupError unless this code knows the backup's revision (it is the newest, or one it migrates from)."""
    script = ScriptDirectory.from_config(schema.alembic_config())
    try:
        known = script.get_revision(header.revision) is not None
    except CommandError:
        known = False
    if not known:
        newest = ", ".join(sorted(schema.head_revisions()))
        raise BackupError(
            f"{path} was made at revision {header.revision}, which this backoffice does not know (its newest is"
            f" {newest}): it comes from a newer backoffice. Restore it with that version or a newer one."
            " Nothing was changed."
        )


@dataclass(frozen=True)
class RestoreResult:
    checked: CheckedBackup
    migrated: bool  # the backup was of an older revision, now migrated to the newest
    jobs_waiting: int
    jobs_rerun: int  # running when the backup was taken: queued again


def restore(
    path: Path,
    *,
    admin_url: str,
    app_url: str,
    worker_url: str,
    embedded: bool,
    force: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> RestoreResult:
    """Restore the backup ``path`` into the database of ``admin_url`` (the owner role's), which must hold
    nothing unless ``force`` (then everything in it is dropped first). Everything about the file and the
    settings is checked before the database is touched; BackupError says what stopped it.

    From the moment the dump is loaded until ``schema.upgrade`` commits, the tables have forced row-level
    security and no policy and no grant: neither the app role nor the worker role can read a row, so a
    restore stopped in between leaves a database nothing can use, never one that shows too much."""
    schema.login_limits()  # what upgrade will write: a bad value changes nothing
    if schema.app_role_of(app_url) == schema.app_role_of(worker_url, "DATABASE_WORKER_URL"):
        raise BackupError("DATABASE_URL and DATABASE_WORKER_URL must name two different roles.")
    with tempfile.TemporaryDirectory(prefix="backoffice-restore-") as work:
        checked = open_backup(path, Path(work))
        header = checked.header
        check_revision(header, path)
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            tools = embedded_tools() if embedded else find_tools(tools_for, header.pg_dump_major)
            try:
                toc = tools.run("pg_restore", "--list", str(checked.dump))
            except ToolError as error:
                raise BackupError(f"{path} cannot be read: {error}\nNothing was changed.") from None
            say(
                f"Checked {path}: made {header.created_at} at revision {header.revision}, {human_size(checked.size)},"
                " its dump's sha256 as written."
            )
            held = _held(conn)
            if held and not force:
                raise BackupError(
                    f"The target database is not empty: it holds {held}. A restore replaces everything in it:"
                    " run again with --force to drop all of it first, or restore into a new, empty database."
                    " Nothing was changed."
                )
            if held:
                _drop_everything(conn)
                say(f"Dropped what the target held (--force): {held}.")
        # The policies name the roles of the database the backup came from: sql/ makes them for this one's.
        listing = Path(work) / "restore.list"
        listing.write_text("".join(f";{line}" if _is_policy(line) else line for line in toc.splitlines(True)))
        say(f"Restoring with {tools.describe('pg_restore')} ...")
        try:
            tools.run(
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--use-list={listing}",
                str(checked.dump),
                url=admin_url,
            )
        except ToolError as error:
            state = "what it held was dropped first (--force), so it is empty now" if held else "it is empty, as it was"
            raise BackupError(f"The restore failed and was undone: {state}.\n{error}") from None
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        restored = row_counts(conn)
        if restored != header.rows:
            differ = sorted(t for t in header.rows.keys() | restored.keys() if header.rows.get(t) != restored.get(t))
            raise BackupError(
                "The dump is loaded, but its rows differ from the ones it was made with in "
                + ", ".join(f"{t} ({header.rows.get(t)} in the backup, {restored.get(t)} restored)" for t in differ)
                + ". No grant is applied, so nothing can use it: restore again with --force."
            )
        rerun = _requeue_running_jobs(conn)
        waiting = job_count(conn, "status = 'todo'")
    migrated = header.revision not in schema.head_revisions()
    schema.upgrade(admin_url, app_url, worker_url, sql_files=True)
    return RestoreResult(checked, migrated, waiting, rerun)


def restored_lines(result: RestoreResult, app_url: str, worker_url: str) -> list[str]:
    """What `backoffice restore` says it did."""
    h = result.checked.header
    lines = [
        f"Restored {summary(h.rows, result.jobs_waiting)} from {result.checked.path}: every one of the"
        f" {len(h.rows)} tables has the rows it had in the backup."
    ]
    if result.migrated:
        lines.append(f"Migrated from revision {h.revision} to {', '.join(sorted(schema.head_revisions()))}.")
    lines.append(
        f"Grants and policies are this database's own: app role {schema.app_role_of(app_url)}, worker role"
        f" {schema.app_role_of(worker_url, 'DATABASE_WORKER_URL')}."
    )
    if result.jobs_rerun:
        lines.append(f"{counted(result.jobs_rerun, 'job')} running when the backup was made will run again.")
    return lines


def _is_policy(toc_line: str) -> bool:
    # "3331; 3256 19177 POLICY public audit_events actor_is_self backoffice_owner"
    return re.match(r"\d+; \d+ \d+ POLICY ", toc_line) is not None


def _held(conn: psycopg.Connection) -> str | None:
    """What the target database holds of ours (said for the operator), or None when it holds nothing."""
    relations, functions, types = conn.execute(
        "select (select count(*) from pg_class where relnamespace = 'public'::regnamespace),"
        " (select count(*) from pg_proc where pronamespace = 'public'::regnamespace),"
        " (select count(*) from pg_type t where typnamespace = 'public'::regnamespace and typelem = 0"
        "   and (typrelid = 0 or (select relkind from pg_class where oid = t.typrelid) = 'c'))"
    ).fetchone()
    queue = conn.execute("select to_regnamespace('procrastinate') is not null").fetchone()[0]
    parts = []
    tables = conn.execute(
        "select count(*) from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')"
    ).fetchone()[0]
    if tables:
        parts.append(counted(tables, "table"))
        if conn.execute("select to_regclass('public.organizations')").fetchone()[0] is not None:
            organizations = conn.execute("select count(*) from public.organizations").fetchone()[0]
            parts[-1] += f" ({counted(organizations, 'organization')})"
    elif relations:
        parts.append(counted(relations, "relation"))
    if functions:
        parts.append(counted(functions, "function"))
    if types:
        parts.append(counted(types, "type"))
    if queue:
        parts.append("the job queue's schema (procrastinate)")
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts) or None


def _drop_everything(conn: psycopg.Connection) -> None:
    try:
        with conn.transaction():
            conn.execute("drop schema if exists procrastinate cascade")
            conn.execute("drop schema public cascade")
            conn.execute("create schema public")
    except psycopg.Error as error:
        raise BackupError(f"Could not empty the target database: {error}. Nothing was changed.") from None


def _requeue_running_jobs(conn: psycopg.Connection) -> int:
    """Jobs a worker had taken when the backup was taken run again: whatever they did after the snapshot is
    not in it. Procrastinate's own retry, as for a stalled worker's job (an abort asked for fails it); and no
    worker of the old database beats here, so none is left to look alive to /healthz."""
    if conn.execute("select to_regclass('procrastinate.procrastinate_jobs')").fetchone()[0] is None:
        return 0
    with conn.transaction():
        running = [r[0] for r in conn.execute("select id from procrastinate.procrastinate_jobs where status = 'doing'")]
        for job_id in running:
            conn.execute("select procrastinate.procrastinate_retry_job_v2(%s, now(), null, null, null)", [job_id])
        conn.execute("delete from procrastinate.procrastinate_workers")
    return len(running)
