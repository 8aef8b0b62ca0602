"""Chain heads leave the database (DESIGN.md sections 5 and 6): receipts and the daily digests (finance's,
and the admins', which goes out every day) carry the organization's chain head when they are made, and
`backoffice audit verify` checks heads kept elsewhere (a file, the documents table) are still in the trail.

A trail cut short at its newest end still links up (test_audit_chain shows it verifies). Here the newest
events are cut as a superuser with the append-only trigger off (kit.audit.newest_events_cut, which puts
them back afterwards), and the kept head is what notices: verify fails naming the head, its organization
and where it was kept. Untouched, it passes.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from kit.audit import breaks_for, chain_of, kept_head, newest_events_cut
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, run_jobs
from kit.money import approved_invoices, events, party
from pypdf import PdfReader
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from backoffice.cli import main
from backoffice.db import make_session_factory
from backoffice.domain.audit_chain import head_line, parse_heads
from backoffice.services import audit, notifications
from backoffice.services.notifications import worker_actor


@pytest.fixture
def owner_session(admin_engine):
    with make_session_factory(admin_engine)() as session:
        yield session


@pytest.fixture
def run(database):
    env = {
        "DATABASE_URL": database.app_url,
        "DATABASE_ADMIN_URL": database.admin_url,
        "DATABASE_WORKER_URL": database.worker_url,
    }

    def _run(*args):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return _run


def record_events(act_as, world, n: int) -> None:
    """n more events in org A, recorded by its admin through the service."""
    session, actor = sign_in(act_as, world.admin, world.org_a)
    for i in range(n):
        audit.record(session, actor, "test.recorded", "thing", f"after-{i}")
    session.commit()


def pdf_text(content) -> str:
    """The PDF's text, whitespace collapsed to single spaces."""
    pages = PdfReader(io.BytesIO(bytes(content))).pages
    return " ".join(" ".join(page.extract_text() for page in pages).replace("\u202f", " ").replace("\xa0", " ").split())


def receipt_issued(act_as, admin_engine, world, database) -> dict:
    """One approved milestone of contractor X, its self-billed invoice (PDF) issued by the real worker: the document
    row (its contractor has no e-invoicing details: no e-invoice)."""
    _, (invoice,) = approved_invoices(act_as, admin_engine, party(world), ("1,000.00",))
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    (doc,) = owner_query(admin_engine, "select * from documents where invoice_id = :i", i=invoice["id"])
    return doc


# --- kept heads against the trail --------------------------------------------------------------------


def test_a_kept_head_is_still_in_the_trail_as_the_trail_grows(world, act_as, admin_engine, owner_session):
    kept = kept_head(admin_engine, world.org_a)
    record_events(act_as, world, 2)

    assert audit.lost_heads(owner_session, [kept]) == []


def test_cutting_the_newest_events_loses_the_kept_head_and_names_it(
    world, act_as, admin_engine, owner_session, database
):
    kept = kept_head(admin_engine, world.org_a, "heads.txt line 1")
    other = kept_head(admin_engine, world.org_b, "heads.txt line 2")
    record_events(act_as, world, 2)

    with newest_events_cut(database.superuser_url, world.org_a, kept.seq):
        assert breaks_for(owner_session, world.org_a) == []  # what is left links up: only the head shows it
        (lost,) = audit.lost_heads(owner_session, [kept, other])
        assert lost.head == kept
        assert lost.reason == f"the trail now ends at event #{kept.seq - 1}: the events after it are gone"

    assert audit.lost_heads(owner_session, [kept, other]) == []  # put back as it was


def test_a_trail_cut_and_written_again_has_another_event_at_the_kept_heads_place(
    world, act_as, admin_engine, owner_session, database
):
    kept = kept_head(admin_engine, world.org_a)

    with newest_events_cut(database.superuser_url, world.org_a, kept.seq):
        record_events(act_as, world, 1)  # the trail grows back to the same length, with another event
        assert chain_of(admin_engine, world.org_a)[-1].seq == kept.seq
        assert breaks_for(owner_session, world.org_a) == []
        (lost,) = audit.lost_heads(owner_session, [kept])
        assert lost.reason.startswith(f"event #{kept.seq} now has another hash")

    assert audit.lost_heads(owner_session, [kept]) == []


# --- the command -------------------------------------------------------------------------------------


def test_audit_verify_with_a_heads_file_passes_untouched_and_fails_naming_a_cut_head(
    world, act_as, admin_engine, database, run, tmp_path
):
    a, b = kept_head(admin_engine, world.org_a), kept_head(admin_engine, world.org_b)
    heads = tmp_path / "heads.txt"
    heads.write_text(
        f"# kept by the operator\n{head_line(a.org_id, a.seq, a.hash)}\n\nhead    {b.org_id} {b.seq} {b.hash}\n"
    )
    record_events(act_as, world, 1)

    result = run("audit", "verify", "--heads", str(heads))
    assert result.exit_code == 0, result.output
    assert "2 kept heads are in it" in result.output
    assert f"head    {head_line(a.org_id, a.seq + 1, chain_of(admin_engine, world.org_a)[-1].hash)}" in result.output

    with newest_events_cut(database.superuser_url, world.org_a, a.seq):
        result = run("audit", "verify", "--heads", str(heads))
        assert result.exit_code == 1
        assert (
            f"LOST    org {a.org_id}, event #{a.seq} {a.hash} (kept in {heads} line 2): "
            f"the trail now ends at event #{a.seq - 1}" in result.output
        )
        assert str(world.org_b) not in "".join(line for line in result.output.splitlines() if "LOST" in line)

    assert run("audit", "verify", "--heads", str(heads)).exit_code == 0


def test_audit_verify_refuses_a_heads_file_naming_the_line_that_is_not_a_head(world, admin_engine, run, tmp_path):
    a = kept_head(admin_engine, world.org_a)
    heads = tmp_path / "heads.txt"
    heads.write_text(f"{head_line(a.org_id, a.seq, a.hash)}\n{a.org_id} {a.seq} not-a-hash\n")

    result = run("audit", "verify", "--heads", str(heads))
    assert result.exit_code == 2
    assert f"{heads} line 2 is not 'org_id seq hash'" in result.output


def test_audit_verify_from_documents_notices_events_cut_back_to_before_a_receipt(
    world, act_as, admin_engine, database, run
):
    doc = receipt_issued(act_as, admin_engine, world, database)
    (issued,) = events(admin_engine, world.org_a, "document.issued")
    assert run("audit", "verify", "--from-documents").exit_code == 0

    # Back to just before the receipt's own event: the head the receipt carries is still there, the event
    # that recorded the receipt is not.
    with newest_events_cut(database.superuser_url, world.org_a, issued["seq"]):
        result = run("audit", "verify", "--from-documents")
        assert result.exit_code == 1
        assert (
            f"LOST    org {world.org_a}, document {doc['filename']} ({doc['id']}): the event recording its sha256"
            f" {doc['sha256']} is not in the trail" in result.output
        )
        assert "kept in document" not in result.output

    # Back to before the head the receipt carries: that head is lost too, named with the document.
    with newest_events_cut(database.superuser_url, world.org_a, doc["audit_head_seq"]):
        result = run("audit", "verify", "--from-documents")
        assert result.exit_code == 1
        assert (
            f"LOST    org {world.org_a}, event #{doc['audit_head_seq']} {doc['audit_head_hash']}"
            f" (kept in document {doc['filename']} ({doc['id']})): the trail now ends at event"
            f" #{doc['audit_head_seq'] - 1}" in result.output
        )

    assert run("audit", "verify", "--from-documents").exit_code == 0


# --- what leaves the database ------------------------------------------------------------------------


def test_a_receipt_carries_the_chain_head_it_was_issued_at_in_its_text_row_and_event(
    world, act_as, admin_engine, database
):
    doc = receipt_issued(act_as, admin_engine, world, database)
    (issued,) = events(admin_engine, world.org_a, "document.issued")

    # Nothing else was written in between: the head the receipt saw is the event before its own.
    seq, hash_ = issued["seq"] - 1, issued["prev_hash"]
    assert (doc["audit_head_seq"], doc["audit_head_hash"]) == (seq, hash_)
    assert issued["data"]["audit_head"] == {"seq": seq, "hash": hash_}
    assert issued["data"]["sha256"] == doc["sha256"]  # and so the chain vouches for the text below
    said = pdf_text(doc["content"])
    assert f"The trail's head as issued (organization, event #{seq}, hash)" in said, said
    assert f"backoffice audit verify --heads checks: {world.org_a} {seq} {hash_}" in said, said
    # The worker issued it: no person, whatever the job's actor says.
    assert (issued["actor_user_id"], issued["actor_label"]) == (None, "background job")


def test_the_database_refuses_a_document_whose_head_is_not_in_the_trail(world, act_as, admin_engine, database):
    doc = receipt_issued(act_as, admin_engine, world, database)
    copy = {k: v for k, v in doc.items() if k not in ("id", "transaction_id")}
    insert = text(
        f"insert into documents ({', '.join(copy)}, transaction_id)"
        f" values ({', '.join(':' + k for k in copy)}, 'TX-00000000000000000000')"
    )
    for head, refusal in (
        ({"audit_head_hash": "f" * 64}, "is not in the organization's trail"),
        ({"audit_head_seq": None}, "documents_audit_head_whole"),
    ):
        with pytest.raises(sa_exc.IntegrityError, match=refusal), admin_engine.begin() as conn:
            conn.execute(insert, {**copy, **head})


def test_the_finance_digest_carries_the_chain_head_when_it_was_sent(world, act_as, admin_engine, as_worker):
    _, invoices = approved_invoices(act_as, admin_engine, party(world), ("100.00",))
    day = invoices[0]["due_date"] - timedelta(days=3)
    head = kept_head(admin_engine, world.org_a)

    sent = notifications.send_finance_digest(as_worker(world.org_a), worker_actor(world.org_a), day, base_url=BASE_URL)

    assert sent == 1
    (message,) = owner_query(
        admin_engine, "select * from email_messages where org_id = :o and event = 'finance.digest'", o=world.org_a
    )
    line = head_line(world.org_a, head.seq, head.hash)
    assert f"Audit trail head when this was sent (organization, event, hash):\n{line}\n" in message["text"]
    assert line in message["html"]


def test_the_admins_digest_carries_the_head_verify_accepts_and_reports_lost_once_the_newest_events_are_cut(
    world, act_as, admin_engine, as_worker, owner_session, database
):
    head = kept_head(admin_engine, world.org_a)
    today = datetime.now(UTC).date()

    sent = notifications.send_admin_digest(as_worker(world.org_a), worker_actor(world.org_a), today, base_url=BASE_URL)

    assert sent == 1
    (message,) = owner_query(
        admin_engine, "select * from email_messages where org_id = :o and event = 'admin.digest'", o=world.org_a
    )
    line = head_line(world.org_a, head.seq, head.hash)  # the head now: sending the digest records no event
    label = "Audit trail head when this was sent (organization, event, hash):\n"
    assert f"{label}{line}\n" in message["text"] and line in message["html"]
    # What an admin keeps: the line as the email carries it.
    (kept,) = parse_heads(message["text"].split(label, 1)[1].splitlines()[0], "the admins' digest")

    check = audit.check_trail(owner_session, [kept])
    assert (check.kept, check.lost) == (1, [])
    assert audit.ChainHead(str(world.org_a), head.seq, head.hash) in check.heads
    record_events(act_as, world, 2)

    with newest_events_cut(database.superuser_url, world.org_a, kept.seq):
        (lost,) = audit.check_trail(owner_session, [kept]).lost
        assert lost.head == kept and lost.head.source == "the admins' digest line 1"
        assert lost.reason == f"the trail now ends at event #{kept.seq - 1}: the events after it are gone"

    assert audit.check_trail(owner_session, [kept]).lost == []
