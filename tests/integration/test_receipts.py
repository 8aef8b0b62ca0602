"""The self-billed invoice's PDF (DESIGN.md sections 6 and 7b; it was the receipt before issue 21): one per
authorized payment, issued by the worker after the approval (or the retainage release) commits, stored once in
``documents`` (kind ``self_billed_invoice``) with its sha256 written to the audit log.

Work is submitted with evidence files and approved through the real services; the real procrastinate
worker (jobs_kit.run_jobs) issues the PDF as the organization's worker. The stored bytes are read
back as the owner role and their text extracted with pypdf: what the PDF says is what the organization, the
contractor or an auditor reads. It bills what the contractor is paid, so it names no service fee (the platform's,
to the organization). It is never regenerated, a race writes one, nobody changes or deletes one, and the
contractor's users read their own contractor's and nobody else's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import threading
from datetime import UTC, datetime

import psycopg
import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import jobs, run_jobs
from kit.money import active_engagement, approve, decide_as, events, invoice_of_milestone, party, set_org
from pypdf import PdfReader
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.config import load_settings
from backoffice.jobs import queue, runtime
from backoffice.services import engagements, invoices, receipts, schedule
from backoffice.services.demo_evidence import photo_png
from backoffice.services.engagements import EngagementInput
from backoffice.services.evidence import UploadedFile
from backoffice.services.notifications import worker_actor
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work

REPORT = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PHOTO = photo_png(16, 12)
NOTES = b"Site notes: old tiles stripped, battens checked.\n"
FILES = (("inspection-report.pdf", REPORT), ("roof-photo.png", PHOTO), ("site-notes.txt", NOTES))


# --- helpers ------------------------------------------------------------------------------------------


def engagement(
    act_as,
    admin_engine,
    world,
    amounts=("1,234.55", "2,000.00"),
    *,
    currency="",
    fee="2.5",
    title="Roof renewal",
    sow="SOW-2026-017",
):
    """An engagement of contractor X (10% retainage, the given fee) its contractor accepted, owned by
    world.owner: (engagement id, milestone ids). Milestone n is "Phase n" delivering "Deliverable n"."""
    session, actor = sign_in(act_as, world.owner, world.org_a)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(
            contractor_id=str(world.contractor_x),
            title=title,
            owner_user_id=str(world.owner.id),
            sow_reference=sow,
            service_fee=fee,
            currency=currency,
        ),
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(title=f"Phase {n}", deliverable=f"Deliverable {n}", amount=amount, due_date="2030-01-15")
                for n, amount in enumerate(amounts, start=1)
            ]
        ),
    )
    engagements.perform(session, actor, e.id, "send")
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    engagements.perform(session, actor, e.id, "accept")
    ids = [
        r["id"]
        for r in owner_query(admin_engine, "select id from milestones where engagement_id = :e order by seq", e=e.id)
    ]
    return e.id, ids


def submit_files(act_as, world, milestone_id, files=FILES):
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    return submit_work(
        session,
        actor,
        milestone_id,
        SubmissionInput(
            note="Done, the files show it.", links="", files=[UploadedFile.from_bytes(n, d) for n, d in files]
        ),
    )


def approve_with_files(act_as, admin_engine, world, milestone_id, files=FILES) -> dict:
    """Submit with ``files`` as contractor X's user, approve as the project owner: the invoice written."""
    sub = submit_files(act_as, world, milestone_id, files)
    decide_as(act_as, world.owner, world.org_a, milestone_id, sub.id, "approve")
    return invoice_of_milestone(admin_engine, milestone_id)


def documents_of(admin_engine, invoice_id) -> list[dict]:
    return owner_query(admin_engine, "select * from documents where invoice_id = :i order by issued_at", i=invoice_id)


def self_billed(admin_engine, invoice_id) -> dict:
    """The invoice's self-billed invoice (PDF); the contractor has no e-invoicing details here, so nothing else."""
    (doc,) = documents_of(admin_engine, invoice_id)
    assert doc["kind"] == "self_billed_invoice"
    return doc


def pdf_text(content) -> str:
    """The PDF's text, whitespace (no-break and narrow spaces included) collapsed to single spaces."""
    pages = PdfReader(io.BytesIO(bytes(content))).pages
    return " ".join(" ".join(page.extract_text() for page in pages).replace("\u202f", " ").replace("\xa0", " ").split())


def withholds(said: str, amount: str) -> bool:
    """Whether the PDF's retainage line withholds ``amount`` (written with a minus or a hyphen)."""
    pattern = r"Retainage withheld \([^)]*\), invoiced when released [-\u2212]" + re.escape(amount) + r"(?: |$)"
    return re.search(pattern, said) is not None


def en_us_moment(value: datetime) -> str:
    """A timestamp as an en_US reader sees it on the PDF: "Nov 21, 2026, 4:19:34 AM UTC"."""
    v = value.astimezone(UTC)
    return f"{v:%b} {v.day}, {v.year}, {v.hour % 12 or 12}:{v:%M:%S} {'AM' if v.hour < 12 else 'PM'} UTC"


def pdf_events(admin_engine, org_id) -> list[dict]:
    """The audit events of the organization's self-billed invoices (PDFs) issued."""
    return [e for e in events(admin_engine, org_id, "document.issued") if e["data"]["kind"] == "self_billed_invoice"]


def contractor_vat(admin_engine, world, category: str, bps: int) -> None:
    """Contractor X's VAT category and rate, as its e-invoicing details say (raw SQL as the owner role: the details'
    form is another part of issue 21). Nothing else of them: it gets no e-invoice, only the PDF."""
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into einvoice_profiles (org_id, contractor_id, vat_category, vat_bps, updated_by)"
                " values (:o, :c, :category, :bps, :by)"
            ),
            {"o": world.org_a, "c": world.contractor_x, "category": category, "bps": bps, "by": world.admin.id},
        )


def run(database, admin_engine, world) -> None:
    run_jobs(database, admin_engine, org_ids=[world.org_a])


# --- what the self-billed invoice says -----------------------------------------------------------------


def test_an_approval_with_files_gets_exactly_one_self_billed_invoice_saying_who_bills_whom_for_what(
    act_as, admin_engine, world, database
):
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    assert documents_of(admin_engine, inv["id"]) == []  # issued by the worker, after the approval commits
    run(database, admin_engine, world)

    doc = self_billed(admin_engine, inv["id"])
    assert (doc["kind"], doc["content_type"]) == ("self_billed_invoice", "application/pdf")
    assert doc["filename"] == f"self-billed-invoice-{inv['invoice_number']}.pdf"
    assert (doc["org_id"], doc["contractor_id"], doc["engagement_id"]) == (
        world.org_a,
        world.contractor_x,
        inv["engagement_id"],
    )
    content = bytes(doc["content"])
    assert content.startswith(b"%PDF-")
    said = pdf_text(content)
    for words in (
        f"Self-billed invoice Issued by Org A {world.suffix} on behalf of Contractor X {world.suffix}",
        f"Supplier (the contractor) Contractor X {world.suffix} <x-{world.suffix}@example.com>",
        f"Customer, issuing this invoice Org A {world.suffix}",
        "Engagement Roof renewal",
        "SOW reference SOW-2026-017",
        "Milestone Phase 1",
        "Deliverable Deliverable 1",
        "Gross $1,234.55",
        "Amount due to the supplier $1,111.09",
        f"Approved {en_us_moment(inv['authorized_at'])}",
        f"Approved by Omar Owner <{world.owner.email}>",
        inv["invoice_number"],
        f"Document {doc['transaction_id']}",
        f"Issued {en_us_moment(doc['issued_at'])}",
    ):
        assert words in said, f"{words!r} not in the self-billed invoice: {said}"
    assert withholds(said, "$123.46"), said
    assert re.fullmatch(r"TX-[0-9A-F]{20}", doc["transaction_id"])
    for name, data in FILES:
        assert f"{name} sha256 {hashlib.sha256(data).hexdigest()}" in said
    assert "$2,000.00" not in said  # the other milestone is not billed by this invoice
    # the 2.5% service fee ($30.86) is the platform's, billed to the organization: not the contractor's invoice
    assert "Service fee" not in said and "$30.86" not in said and "$1,265.41" not in said


def test_the_self_billed_invoice_writes_the_retainage_and_vat_rates_as_percentages(
    act_as, admin_engine, world, database
):
    contractor_vat(admin_engine, world, "S", 770)
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)
    said = pdf_text(self_billed(admin_engine, inv["id"])["content"])
    assert "Retainage withheld (10%)" in said
    # $1,111.09 / 1.077 = 1,031.652… → $1,031.65 taxable; 7.7% of it 79.437… → $79.44; together $1,111.09
    assert "Taxable amount $1,031.65 VAT 7.7% $79.44 Amount due to the supplier $1,111.09" in said, said


def test_the_stored_hash_is_the_hash_of_the_bytes_and_is_written_to_the_audit_log_with_the_evidence(
    act_as, admin_engine, world, database
):
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)

    doc = self_billed(admin_engine, inv["id"])
    content = bytes(doc["content"])
    assert doc["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["size_bytes"] == len(content)
    (event,) = pdf_events(admin_engine, world.org_a)
    assert (event["entity_type"], event["entity_id"]) == ("invoice", str(inv["id"]))
    assert event["data"]["sha256"] == doc["sha256"]
    assert event["data"]["document_id"] == str(doc["id"])
    assert event["data"]["transaction_id"] == doc["transaction_id"]
    assert event["data"]["invoice_number"] == inv["invoice_number"]
    assert event["data"]["size_bytes"] == len(content)
    assert event["data"]["evidence"] == [{"name": n, "sha256": hashlib.sha256(d).hexdigest()} for n, d in FILES]


def test_a_self_billed_invoice_without_files_says_the_approval_rests_on_the_note_and_links(
    act_as, admin_engine, world, database
):
    _, (m1, _) = engagement(act_as, admin_engine, world)
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    sub = submit_work(
        session, actor, m1, SubmissionInput(note="See the album.", links="https://example.com/album", files=[])
    )
    decide_as(act_as, world.owner, world.org_a, m1, sub.id, "approve")
    inv = invoice_of_milestone(admin_engine, m1)
    run(database, admin_engine, world)

    assert "No files were attached" in pdf_text(self_billed(admin_engine, inv["id"])["content"])
    (event,) = pdf_events(admin_engine, world.org_a)
    assert event["data"]["evidence"] == []


# --- written once -------------------------------------------------------------------------------------


def test_running_the_documents_job_again_writes_nothing_and_keeps_the_bytes(act_as, admin_engine, world, database):
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)
    first = self_billed(admin_engine, inv["id"])

    with Session(admin_engine) as session:  # a second job for the same invoice, as the owner role
        queue.issue_receipt(session, world.org_a, inv["id"])
        session.commit()
    assert [j["status"] for j in jobs(admin_engine, task="issue_receipt", org_ids=[world.org_a])][-1] == "todo"
    run(database, admin_engine, world)

    # Each at its first attempt: the e-invoice its contractor's missing details stop is no failure to retry.
    assert [(j["status"], j["attempts"]) for j in jobs(admin_engine, task="issue_receipt", org_ids=[world.org_a])] == [
        ("succeeded", 1),
        ("succeeded", 1),
    ]
    assert documents_of(admin_engine, inv["id"]) == [first]
    assert len(pdf_events(admin_engine, world.org_a)) == 1


def test_issuing_a_self_billed_invoice_that_exists_returns_nothing_and_writes_nothing(
    act_as, as_worker, admin_engine, world, database
):
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    session = as_worker(world.org_a)  # the organization's worker, as the job runs it
    assert receipts.issue_receipt(session, worker_actor(world.org_a), inv["id"]) is not None
    first = self_billed(admin_engine, inv["id"])

    session = as_worker(world.org_a)
    assert receipts.issue_receipt(session, worker_actor(world.org_a), inv["id"]) is None
    assert documents_of(admin_engine, inv["id"]) == [first]
    assert len(pdf_events(admin_engine, world.org_a)) == 1


def test_two_workers_issuing_the_same_self_billed_invoice_at_once_store_one(act_as, admin_engine, world, database):
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url="http://backoffice.test"))
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def issue(i):
        try:
            with runtime.worker_session(world.org_a) as session:
                session.execute(text("select 1"))  # connected and in context before the start
                barrier.wait(timeout=60)
                outcomes[i] = receipts.issue_receipt(session, worker_actor(world.org_a), inv["id"])
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker never finished (deadlock?)"

    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert sum(o is not None for o in outcomes) == 1, outcomes
    doc = self_billed(admin_engine, inv["id"])
    (event,) = pdf_events(admin_engine, world.org_a)
    assert event["data"]["sha256"] == doc["sha256"] == hashlib.sha256(bytes(doc["content"])).hexdigest()
    assert event["data"]["transaction_id"] == doc["transaction_id"]

    run(database, admin_engine, world)  # the approval's own job comes after both: it finds the PDF
    assert len(documents_of(admin_engine, inv["id"])) == 1
    assert len(pdf_events(admin_engine, world.org_a)) == 1


# --- what is paid -------------------------------------------------------------------------------------


def test_a_retainage_releases_self_billed_invoice_says_it_is_a_release(act_as, admin_engine, world, database):
    eid, milestones = engagement(act_as, admin_engine, world, ("1,000.00", "2,000.00"))
    for m in milestones:
        approve_with_files(act_as, admin_engine, world, m)
    session, actor = sign_in(act_as, world.owner, world.org_a)
    release = invoices.release_retainage(session, actor, eid, "Roof inspected and signed off early.")
    run(database, admin_engine, world)

    doc = self_billed(admin_engine, release.id)
    said = pdf_text(doc["content"])
    assert "Self-billed invoice — Retainage release" in said
    assert "Payment for Release of the retainage withheld on this engagement" in said
    assert "Reason Roof inspected and signed off early." in said
    assert "Gross $300.00" in said and "Amount due to the supplier $300.00" in said
    assert "Milestone Phase" not in said
    assert release.invoice_number in said
    assert len(pdf_events(admin_engine, world.org_a)) == 3  # two milestones and the release


def test_a_split_partial_self_billed_invoice_shows_only_the_approved_part(act_as, admin_engine, world, database):
    set_org(admin_engine, world.org_a, partial_policy="split")
    _, (m1, _) = engagement(act_as, admin_engine, world, ("1,000.00", "2,000.00"), fee="")
    sub = submit_files(act_as, world, m1)
    decide_as(
        act_as,
        world.owner,
        world.org_a,
        m1,
        sub.id,
        "partial",
        "The gutters are not done yet.",
        approved_amount="400.00",
    )
    inv = invoice_of_milestone(admin_engine, m1)
    assert inv["gross_minor"] == 40000
    run(database, admin_engine, world)

    said = pdf_text(self_billed(admin_engine, inv["id"])["content"])
    assert "Gross $400.00" in said
    assert withholds(said, "$40.00"), said
    assert "Amount due to the supplier $360.00" in said
    assert "$1,000.00" not in said and "$600.00" not in said
    for name, data in FILES:
        assert f"{name} sha256 {hashlib.sha256(data).hexdigest()}" in said
    assert len(owner_query(admin_engine, "select id from documents where org_id = :o", o=world.org_a)) == 1


def test_a_german_organization_gets_amounts_and_dates_written_the_german_way(act_as, admin_engine, world, database):
    set_org(admin_engine, world.org_a, locale="de_DE")
    _, (m1,) = engagement(act_as, admin_engine, world, ("1,234.55",), currency="EUR")
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)

    said = pdf_text(self_billed(admin_engine, inv["id"])["content"])
    approved = inv["authorized_at"].astimezone(UTC)
    assert "Gross 1.234,55 €" in said
    assert withholds(said, "123,46 €"), said
    assert "Amount due to the supplier 1.111,09 €" in said
    assert f"Approved {approved:%d.%m.%Y}, {approved:%H:%M:%S} UTC" in said
    assert "$" not in said and "1,234.55" not in said


def test_a_contractor_whose_name_is_not_in_western_european_letters_is_written_as_named(
    act_as, admin_engine, world, database
):
    with admin_engine.begin() as conn:
        conn.execute(
            text("update contractors set legal_name = :n where id = :c"),
            {"n": f"Łódź Dachy sp. z o.o. {world.suffix}", "c": world.contractor_x},
        )
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)
    said = pdf_text(self_billed(admin_engine, inv["id"])["content"])
    assert f"Supplier (the contractor) Łódź Dachy sp. z o.o. {world.suffix}" in said
    assert f"on behalf of Łódź Dachy sp. z o.o. {world.suffix}" in said
    assert "■" not in said


def test_a_japanese_organization_gets_its_amounts_with_the_yen_sign(act_as, admin_engine, world, database):
    set_org(admin_engine, world.org_a, locale="ja_JP")
    _, (m1,) = engagement(act_as, admin_engine, world, ("123,455",), currency="JPY", fee="")
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)
    said = pdf_text(self_billed(admin_engine, inv["id"])["content"])
    assert "Gross ¥123,455" in said  # the font has the yen sign, not its fullwidth form (U+FFE5) CLDR uses
    assert "■" not in said


# --- never changed ------------------------------------------------------------------------------------


@pytest.fixture
def issued(act_as, admin_engine, world, database) -> dict:
    _, (m1, _) = engagement(act_as, admin_engine, world)
    inv = approve_with_files(act_as, admin_engine, world, m1)
    run(database, admin_engine, world)
    return self_billed(admin_engine, inv["id"])


@pytest.mark.parametrize(
    "sql",
    [
        "update documents set title = 'Changed' where id = :d",
        "update documents set content = 'x'::bytea, size_bytes = 1, sha256 = encode(sha256('x'::bytea), 'hex')"
        " where id = :d",
        "delete from documents where id = :d",
    ],
)
def test_the_owner_role_cannot_change_or_delete_a_self_billed_invoice(admin_engine, issued, sql):
    with pytest.raises(sa_exc.DBAPIError) as refused, admin_engine.begin() as conn:
        conn.execute(text(sql), {"d": issued["id"]})
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
    assert "documents are kept as issued" in str(refused.value.orig)
    assert self_billed(admin_engine, issued["invoice_id"]) == issued


def test_the_owner_role_cannot_truncate_the_data_room(admin_engine, issued):
    with pytest.raises(sa_exc.DBAPIError, match="documents are kept as issued"), admin_engine.begin() as conn:
        conn.execute(text("truncate documents"))
    assert self_billed(admin_engine, issued["invoice_id"]) == issued


@pytest.mark.parametrize("who", ["admin", "finance", "worker"])
@pytest.mark.parametrize(
    "sql",
    [
        "update documents set title = 'Changed' where id = :d",
        "delete from documents where id = :d",
    ],
)
def test_nobody_in_the_app_can_change_or_delete_a_self_billed_invoice(
    act_as, as_worker, admin_engine, world, issued, who, sql
):
    session = as_worker(world.org_a) if who == "worker" else act_as(getattr(world, who).id, world.org_a)
    assert session.execute(text("select count(*) from documents where id = :d"), {"d": issued["id"]}).scalar_one() == 1
    with pytest.raises(sa_exc.DBAPIError) as refused:
        session.execute(text(sql), {"d": issued["id"]})
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
    session.rollback()
    assert self_billed(admin_engine, issued["invoice_id"]) == issued


@pytest.mark.parametrize("who", ["owner", "admin_b"])
def test_project_owners_and_other_organizations_cannot_read_or_change_a_self_billed_invoice(
    act_as, admin_engine, world, issued, who
):
    person = getattr(world, who)
    session = act_as(person.id, world.org_b if who == "admin_b" else world.org_a)
    assert session.execute(text("select count(*) from documents")).scalar_one() == 0
    assert (
        session.execute(
            text("select count(*) from documents where invoice_id = :i"), {"i": issued["invoice_id"]}
        ).scalar_one()
        == 0
    )
    with pytest.raises(sa_exc.DBAPIError) as refused:
        session.execute(text("update documents set title = 'Changed' where id = :d"), {"d": issued["id"]})
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
    session.rollback()
    assert self_billed(admin_engine, issued["invoice_id"]) == issued


def test_a_contractor_reads_its_own_invoices_documents_and_never_another_contractors(
    act_as, admin_engine, world, issued, database
):
    y = party(world, "y")
    _, (m,) = active_engagement(act_as, admin_engine, y, ("500.00",))
    theirs = approve(act_as, admin_engine, y, m)
    run(database, admin_engine, world)
    other = self_billed(admin_engine, theirs["id"])

    for person, own, not_own in ((world.contractor_x_user, issued, other), (world.contractor_y_user, other, issued)):
        session = act_as(person.id, world.org_a)
        assert session.execute(text("select id from documents")).scalars().all() == [own["id"]]
        read = session.execute(text("select content from documents where invoice_id = :i"), {"i": own["invoice_id"]})
        assert bytes(read.scalar_one()) == bytes(own["content"])
        hidden = session.execute(text("select count(*) from documents where id = :d"), {"d": not_own["id"]})
        assert hidden.scalar_one() == 0
        with pytest.raises(sa_exc.DBAPIError) as refused:
            session.execute(text("update documents set title = 'Changed' where id = :d"), {"d": own["id"]})
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
        session.rollback()
    assert self_billed(admin_engine, issued["invoice_id"]) == issued
