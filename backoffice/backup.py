"""Backups: the whole database in one file (`backoffice backup FILE`; `backoffice.restore` reads it back).

A backup is a tar archive of two members, in this order (``tar tvf FILE`` lists them):
- ``backup.json``: what the file holds: the schema's revision, the rows of every table, the jobs waiting,
  the dump's size and sha256, when and with which pg_dump it was made;
- ``database.dump``: ``pg_dump --format=custom`` of the whole database, run as the owner role in the very
  snapshot the rows were counted in (the app may keep running). It is complete (owners and grants too), so
  ``tar xf FILE database.dump && pg_restore ...`` works without backoffice.

Evidence files (``evidence_files``, their bytes in ``evidence_chunks``), documents (receipts, in
``documents.content``) and AP export files (``ap_export_chunks``) are rows, so the dump holds their bytes.
The job queue (schema ``procrastinate``) is in it too: emails and receipts not yet made are not lost. Not in
it: the secret key that signs session cookies (SECRET_KEY, or the data directory's ``secret_key``), the key of
contractors' TINs (TAX_ID_KEY, or the data directory's ``tax_id_key``: keep it with the backup, or the TINs are
lost) and the settings of the environment.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from backoffice.domain.evidence import human_size
from backoffice.pg_tools import PgTools, ToolError, embedded_tools, libpq_url, tools_for

FORMAT = "backoffice-backup"
FORMAT_VERSION = 1
HEADER = "backup.json"
DUMP = "database.dump"
SCHEMAS = ("public", "procrastinate")  # everything of the app's: its tables, and the job queue
MAX_HEADER_BYTES = 1024 * 1024


class BackupError(Exception):
    """Why a backup or a restore was not made; the message is for the operator."""


@dataclass(frozen=True)
class Header:
    revision: str
    created_at: str  # ISO 8601, UTC
    rows: dict[str, int]  # "schema.table" -> its rows, in the dump's snapshot
    jobs_waiting: int
    dump_bytes: int
    dump_sha256: str
    pg_dump: str  # "18.4"
    server_version: str

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, path: Path) -> Header:
        try:
            fields = json.loads(data)
            if fields.pop("format") != FORMAT:
                raise ValueError
        except (ValueError, KeyError, AttributeError, TypeError):
            raise BackupError(f"{path} is not a backoffice backup: its {HEADER} is not one's.") from None
        version = fields.pop("version", None)
        if version != FORMAT_VERSION:
            raise BackupError(
                f"{path} is a backup of format {version}; this backoffice reads format {FORMAT_VERSION}: restore"
                " it with the backoffice that made it, or a newer one. Nothing was changed."
            )
        try:
            return cls(**fields)
        except TypeError:
            raise BackupError(f"{path} is not a whole backoffice backup: its {HEADER} lacks fields.") from None

    @property
    def pg_dump_major(self) -> int:
        return int(self.pg_dump.split(".")[0])


def summary(rows: dict[str, int], jobs_waiting: int) -> str:
    """'2 organizations, 3,400 evidence files, 812 documents, 1 AP export file and 3 waiting jobs'."""
    parts = [
        counted(rows.get("public.organizations", 0), "organization"),
        counted(rows.get("public.engagements", 0), "engagement"),
        counted(rows.get("public.evidence_files", 0), "evidence file"),
        counted(rows.get("public.documents", 0), "document"),
        counted(rows.get("public.ap_export_batches", 0), "AP export file"),
    ]
    return ", ".join(parts) + " and " + counted(jobs_waiting, "waiting job")


def counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# --- backup --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    path: Path
    header: Header
    size: int
    sha256: str  # of the whole file, as `sha256sum FILE` prints it
    tools: PgTools


def backup(admin_url: str, path: Path, *, embedded: bool) -> BackupResult:
    """Write the whole database to ``path`` (replaced whole, or not at all), readable by its owner alone: it
    holds password hashes and payout details. ``admin_url`` is the owner role's."""
    if path.is_dir():
        raise BackupError(f"{path} is a directory: name the file to write.")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory.")
    with psycopg.connect(libpq_url(admin_url)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        tools = embedded_tools() if embedded else find_tools(tools_for, conn.info.server_version // 10000)
        revision = _revision(conn)
        # pg_dump reads the snapshot this transaction exports, so the rows counted here are the rows dumped.
        snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
        rows = row_counts(conn)
        waiting = job_count(conn, "status in ('todo', 'doing')")
        # Next to the file, so the finished archive is renamed into place, never copied across file systems.
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as work:
            dump = Path(work) / DUMP
            try:
                tools.run("pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={dump}", url=admin_url)
            except ToolError as error:
                raise BackupError(str(error)) from None
            conn.rollback()
            dump_bytes, dump_sha256 = _measure(dump)
            header = Header(
                revision=revision,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                rows=rows,
                jobs_waiting=waiting,
                dump_bytes=dump_bytes,
                dump_sha256=dump_sha256,
                pg_dump=tools.version,
                server_version=conn.info.parameter_status("server_version") or "?",
            )
            archive = Path(work) / "backup.tar"
            _write_archive(archive, header, dump)
            os.replace(archive, path)
    size, sha256 = _measure(path)
    return BackupResult(path, header, size, sha256, tools)


def made_lines(made: BackupResult) -> list[str]:
    """What `backoffice backup` says it did."""
    h = made.header
    return [
        f"Backed up {summary(h.rows, h.jobs_waiting)} to {made.path} ({human_size(made.size)}, sha256 {made.sha256}).",
        f"Schema revision {h.revision} on PostgreSQL {h.server_version}; dumped with {made.tools.describe('pg_dump')}.",
    ]


def _write_archive(target: Path, header: Header, dump: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data, now = header.to_json(), int(datetime.now(UTC).timestamp())
            info = tarfile.TarInfo(HEADER)
            info.size, info.mode, info.mtime = len(data), 0o600, now
            tar.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(DUMP)
            info.size, info.mode, info.mtime = dump.stat().st_size, 0o600, now
            with dump.open("rb") as source:
                tar.addfile(info, source)
        f.flush()
        os.fsync(f.fileno())


def _revision(conn: psycopg.Connection) -> str:
    if conn.execute("select to_regclass('public.alembic_version')").fetchone()[0] is None:
        raise BackupError("The database has no backoffice schema (no alembic_version table): nothing to back up.")
    revisions = [r[0] for r in conn.execute("select version_num from public.alembic_version")]
    if len(revisions) != 1:
        raise BackupError(f"The database is at {len(revisions)} revisions, not one: run `backoffice db upgrade`.")
    return revisions[0]


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = conn.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relkind in ('r', 'p') and not c.relispartition order by 1, 2",
        [list(SCHEMAS)],
    ).fetchall()
    return {
        f"{s}.{t}": conn.execute(
            sql.SQL("select count(*) from {}.{}").format(sql.Identifier(s), sql.Identifier(t))
        ).fetchone()[0]
        for s, t in tables
    }


def job_count(conn: psycopg.Connection, condition: str) -> int:
    if conn.execute("select to_regclass('procrastinate.procrastinate_jobs')").fetchone()[0] is None:
        return 0
    return conn.execute(f"select count(*) from procrastinate.procrastinate_jobs where {condition}").fetchone()[0]


def _measure(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def find_tools(find: Callable[[int], PgTools], at_least: int) -> PgTools:
    try:
        return find(at_least)
    except ToolError as error:
        raise BackupError(str(error)) from None


# --- reading one back ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedBackup:
    path: Path
    header: Header
    dump: Path  # the dump, copied out of the file and checked against its header
    size: int


def open_backup(path: Path, work: Path) -> CheckedBackup:
    """Read ``path``'s header and copy its dump into the directory ``work``, checking its size and sha256:
    BackupError, naming what is wrong, for a file that is not a whole backup. Touches no database."""
    dump = work / DUMP
    try:
        with tarfile.open(path, mode="r:") as tar:
            first, second = tar.next(), tar.next()
            if first is None or first.name != HEADER or first.size > MAX_HEADER_BYTES or second is None:
                raise BackupError(f"{path} is not a backoffice backup: it does not start with {HEADER} and {DUMP}.")
            header = Header.from_json(tar.extractfile(first).read(), path)
            if second.name != DUMP:
                raise BackupError(f"{path} is not a backoffice backup: its second member is not {DUMP}.")
            source, digest, copied = tar.extractfile(second), hashlib.sha256(), 0
            with dump.open("wb") as out:
                try:
                    while chunk := source.read(1024 * 1024):
                        digest.update(chunk)
                        copied += len(chunk)
                        out.write(chunk)
                except tarfile.ReadError:
                    there = max(0, path.stat().st_size - second.offset_data)
                    raise BackupError(
                        f"{path} is cut short: its database dump ends after {there:,} of {second.size:,} bytes."
                        " Nothing was changed."
                    ) from None
    except (tarfile.TarError, EOFError) as error:
        raise BackupError(f"{path} is not a whole backoffice backup ({error}). Nothing was changed.") from None
    except OSError as error:
        raise BackupError(f"Cannot read {path}: {error.strerror or error}.") from None
    if copied != header.dump_bytes:
        raise BackupError(
            f"{path} is damaged: its database dump has {copied:,} bytes, not the {header.dump_bytes:,} it was"
            " written with. Nothing was changed."
        )
    if digest.hexdigest() != header.dump_sha256:
        raise BackupError(
            f"{path} is damaged: its database dump's sha256 is {digest.hexdigest()}, not the"
            f" {header.dump_sha256} it was written with. Nothing was changed."
        )
    return CheckedBackup(path, header, dump, path.stat().st_size)
