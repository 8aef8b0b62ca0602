"""The app's records: `audit verify`, `verify` (a document's file), `backup`, `restore`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from backoffice.cli import admin_session, command_urls, main, run_doctor
from backoffice.runtime import require_admin, require_worker

# --- audit ---------------------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option(
    "--heads",
    "heads_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file of chain heads kept earlier, one 'org_id seq hash' a line (as receipts, the daily digests and"
    " this command's 'head' lines write them). Repeatable.",
)
@click.option(
    "--from-documents",
    is_flag=True,
    help="Also check the head every stored document carried when it was issued, and each document's own event.",
)
def audit_verify(heads_files: tuple[str, ...], from_documents: bool) -> None:
    """Recompute every organization's hash chain. Exits 1, naming the first bad event, if altered; and,
    given heads kept elsewhere, naming each head the trail no longer holds (its newest events cut)."""
    from backoffice.domain.audit_chain import parse_heads
    from backoffice.services.audit import check_trail

    kept = []
    for name in heads_files:
        try:
            kept += parse_heads(Path(name).read_text(encoding="utf-8"), name)
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.UsageError(str(exc)) from None
    engine, session = admin_session(command_urls())
    with session:
        check = check_trail(session, kept, documents=from_documents)
    engine.dispose()
    for head in check.heads:
        # Keep these lines (a file for --heads): a chain cut short at its newest end still verifies.
        click.echo(f"head    {head.line}")
    if not _trail_intact(check):
        sys.exit(1)


def _trail_intact(check) -> bool:
    """Echo every break and lost head `audit verify` found, or its one line for an intact trail; whether intact."""
    for b in check.breaks:
        click.echo(f"BROKEN  org {b.org_id}, event #{b.seq}: {b.reason}", err=True)
    for gone in check.lost:
        h = gone.head
        click.echo(f"LOST    org {h.org_id}, event #{h.seq} {h.hash} (kept in {h.source}): {gone.reason}", err=True)
    for d in check.unrecorded:
        click.echo(
            f"LOST    org {d.org_id}, document {d.document}: the event recording its sha256 {d.sha256}"
            " is not in the trail",
            err=True,
        )
    if not check.intact:
        return False
    found = f"; {check.kept} kept heads are in it" if check.kept else ""
    click.echo(f"Audit chain intact: {check.checked} events verified{found}.")
    return True


# --- a document's file ----------------------------------------------------------------------------------


@main.command("verify")
@click.argument("files", metavar="FILE…", nargs=-1, required=True, type=click.Path(path_type=Path))
def verify(files: tuple[Path, ...]) -> None:
    """Say of each FILE whether it is a document an organization here issued (a self-billed invoice, its UBL, a credit
    note, a remittance advice), unchanged, and whether the audit chain still holds the head it states.

    Exits 0 if every file verified, 1 if one did not, 2 (verifying none) if one cannot be read."""
    from backoffice.services.verification import verify_file

    contents = []
    for path in files:
        try:
            contents.append(path.read_bytes())
        except OSError as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc)).lower()
            click.echo(f"{path}: cannot be read ({reason}). Nothing was verified.", err=True)
            sys.exit(2)
    engine, session = admin_session(command_urls())
    all_verified = True
    with session:
        for path, content in zip(files, contents, strict=True):
            # As the owner role, row-level security does not apply: every organization's documents are looked in,
            # and the verdict names the one that issued the file.
            verdict = verify_file(session, content, path.name, issuer="any organization in this database")
            all_verified &= verdict.ok
            click.echo(f"{path}: {'VERIFIED' if verdict.ok else 'NOT VERIFIED'} — {verdict.summary}.")
            for line in verdict.lines:
                click.echo(f"    {line}")
    engine.dispose()
    if not all_verified:
        sys.exit(1)


# --- backup and restore --------------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write the whole database to FILE: one file to keep, and to give to `backoffice restore`.

    Evidence files, receipts and AP export files are stored in the database (evidence_chunks, documents,
    ap_export_chunks), so they are in FILE with every other row, and so are the jobs waiting in the queue.
    Not in it: the secret key that signs sign-in cookies (SECRET_KEY, or the data directory's secret_key
    file; with another one, everyone signs in again), the key of contractors' TINs (TAX_ID_KEY, or the data
    directory's tax_id_key file: keep it with FILE, since without it the TINs cannot be read) and the settings of
    the environment.

    Runs pg_dump as the owner role (DATABASE_ADMIN_URL, or the embedded server's) in one snapshot: the app
    may keep running. FILE is replaced whole or not at all, readable by you alone (it holds password hashes
    and payout details).
    """
    from backoffice.backup import BackupError, made_lines
    from backoffice.backup import backup as make_backup

    urls = command_urls()
    try:
        made = make_backup(require_admin(urls), file, embedded=urls.embedded)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    for line in made_lines(made):
        click.echo(line)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Drop everything the target database holds first.")
def restore(file: Path, force: bool) -> None:
    """Restore the backup FILE into this database (the embedded one, or DATABASE_ADMIN_URL's).

    FILE is checked whole (its dump's size and sha256) and its revision before the database is touched: a
    backup from a newer backoffice is refused, and so is a database that holds anything, unless --force. The
    grants, policies and guards are this database's own, applied from sql/ for its app and worker roles
    (their names need not be the backup's); a backup of an older revision is migrated to the newest. Waiting
    jobs come back, and jobs that were running when the backup was made run again. Then every check of
    `doctor` and `audit verify --from-documents` runs; exits 1 if one fails. Stop the web servers and the
    job workers first.
    """
    from backoffice.backup import BackupError
    from backoffice.restore import restore as restore_backup
    from backoffice.restore import restored_lines
    from backoffice.services.audit import check_trail

    urls = command_urls()
    try:
        result = restore_backup(
            file,
            admin_url=require_admin(urls),
            app_url=urls.app,
            worker_url=require_worker(urls),
            embedded=urls.embedded,
            force=force,
            say=click.echo,
        )
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    for line in restored_lines(result, urls.app, urls.worker):
        click.echo(line)
    problems = run_doctor(urls, quiet=True)
    engine, session = admin_session(urls)
    with session:
        intact = _trail_intact(check_trail(session, documents=True))
    engine.dispose()
    if problems or not intact:
        click.echo("The restored database fails the checks above: do not run the app on it.", err=True)
        sys.exit(1)
    click.echo("All checks of `doctor` passed.")
