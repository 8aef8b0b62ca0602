"""Documents anyone can verify (issue 21, item 6): services/verification and `backoffice verify FILE…`.

A self-billed invoice's PDF is issued by services/receipts as the organization's worker, and a UBL-like e-invoice is
filed through data_room.file_document (kit.verification); both carry their id (TX-…) and the chain head at issue, and
the trail records their sha256. A file is verified when its bytes are a document's, the trail still records them, and
the trail still holds the head the document states. The command runs as the owner role and names the organization
that issued the file; the page's session (a finance user's, an admin's) finds its own organization's documents only.
"""

from __future__ import annotations

import hashlib
import secrets

import pytest
from click.testing import CliRunner
from kit.audit import newest_events_cut
from kit.engagements import owner_query
from kit.verification import Issued, issue_documents, one_byte_changed, recorded_at
from sqlalchemy import event, text

from backoffice.cli import main
from backoffice.db import make_session_factory, unit_of_work
from backoffice.services.verification import verify_file


@pytest.fixture
def owner_session(admin_engine):
    with make_session_factory(admin_engine)() as session:
        yield session


@pytest.fixture
def issued(act_as, as_worker, admin_engine, world) -> Issued:
    return issue_documents(act_as, as_worker, admin_engine, world)


def org_a(world) -> str:
    return f"Org A {world.suffix}"


def issued_on(admin_engine, doc: dict) -> str:
    """When the document was issued, in UTC to the minute, as the database writes it."""
    (row,) = owner_query(
        admin_engine,
        """select to_char(issued_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') as t
             from documents where id = :d""",
        d=doc["id"],
    )
    return row["t"]


class Undo(Exception):
    """Raised to roll back a test's tampering with the trail, which the owner did inside one unit of work."""


# --- a file as issued ----------------------------------------------------------------------------------


def test_the_self_billed_invoice_as_issued_is_verified_naming_who_issued_it_its_record_and_its_head(
    owner_session, admin_engine, world, issued
):
    pdf, number = issued.pdf, issued.invoice["invoice_number"]
    verdict = verify_file(owner_session, pdf["content"], pdf["filename"])

    assert (verdict.ok, verdict.issued, verdict.unchanged, verdict.head_holds) == (True, True, True, True)
    d = verdict.document
    assert (d.id, d.kind_label, d.invoice_number, d.transaction_id, d.org_name) == (
        pdf["id"],
        "Self-billed invoice",
        number,
        pdf["transaction_id"],
        org_a(world),
    )
    assert verdict.recorded_at == recorded_at(admin_engine, pdf)
    assert verdict.sha256 == hashlib.sha256(pdf["content"]).hexdigest() == pdf["sha256"]
    assert verdict.summary == (
        f"Self-billed invoice {number} issued by {org_a(world)} on {issued_on(admin_engine, pdf)}"
        f" (document {pdf['transaction_id']})"
    )
    assert verdict.lines == (
        f"unchanged: sha256 {pdf['sha256']}, recorded in the audit trail at event #{verdict.recorded_at}",
        f"the audit chain still holds the head it states (#{pdf['audit_head_seq']} {pdf['audit_head_hash']})"
        " and links up through it",
    )


def test_an_einvoice_filed_as_xml_is_verified_as_an_einvoice(owner_session, admin_engine, world, issued):
    xml = issued.xml
    verdict = verify_file(owner_session, xml["content"], xml["filename"])

    assert verdict.ok
    assert (verdict.document.id, verdict.document.kind_label) == (xml["id"], "E-invoice (UBL)")
    assert verdict.summary.startswith(f"E-invoice (UBL) {issued.invoice['invoice_number']} issued by {org_a(world)}")
    assert verdict.recorded_at == recorded_at(admin_engine, xml)


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_admins_verify_their_organizations_documents_under_row_level_security(act_as, world, issued, who):
    session = act_as(getattr(world, who).id, world.org_a)
    for doc in (issued.pdf, issued.xml):
        verdict = verify_file(session, doc["content"], doc["filename"])
        assert verdict.ok, verdict
        assert verdict.document.org_name == org_a(world)


# --- a file that is not as issued ----------------------------------------------------------------------


def test_the_einvoice_with_one_byte_changed_is_not_verified_and_names_the_document_it_claims_to_be(
    owner_session, admin_engine, world, issued
):
    xml = issued.xml
    tampered = one_byte_changed(xml["content"])
    verdict = verify_file(owner_session, tampered, xml["filename"])

    assert not verdict.ok
    assert (verdict.issued, verdict.unchanged, verdict.document.id) == (False, False, xml["id"])
    assert verdict.summary == (
        f"this file names document {xml['transaction_id']} (E-invoice (UBL) {issued.invoice['invoice_number']},"
        f" issued by {org_a(world)} on {issued_on(admin_engine, xml)}), but its bytes differ from what was issued"
    )
    assert verdict.lines == (
        f"this file's sha256: {hashlib.sha256(tampered).hexdigest()} ({len(tampered):,} bytes)",
        f"the sha256 issued: {xml['sha256']}",
    )


def test_the_self_billed_invoice_with_one_byte_changed_is_not_verified(owner_session, issued):
    verdict = verify_file(owner_session, one_byte_changed(issued.pdf["content"]), issued.pdf["filename"])
    assert not verdict.ok
    assert not verdict.issued


def test_the_self_billed_invoice_with_one_byte_changed_names_the_document_it_claims_to_be(owner_session, issued):
    verdict = verify_file(owner_session, one_byte_changed(issued.pdf["content"]), issued.pdf["filename"])
    assert verdict.document is not None and verdict.document.id == issued.pdf["id"]
    assert verdict.summary.startswith(f"this file names document {issued.pdf['transaction_id']} (Self-billed invoice")


def test_random_bytes_are_not_a_document_this_organization_issued(owner_session):
    content = secrets.token_bytes(2000)
    verdict = verify_file(owner_session, content, "random.bin")

    assert (verdict.ok, verdict.issued, verdict.document) == (False, False, None)
    assert verdict.summary == "not a document this organization issued"
    assert verdict.lines == (
        f"no document has its sha256 ({hashlib.sha256(content).hexdigest()})",
        "it names no document id",
    )


def test_a_file_naming_a_document_id_that_does_not_exist_says_so(owner_session):
    content = b"<Invoice><Note>Document TX-00000000000000000000.</Note></Invoice>"
    verdict = verify_file(owner_session, content, "forged.xml", issuer="any organization in this database")

    assert (verdict.ok, verdict.document) == (False, None)
    assert verdict.summary == "not a document any organization in this database issued"
    assert verdict.lines[1] == "it names TX-00000000000000000000, which is not one either"


def test_another_organizations_admin_does_not_find_this_organizations_document(act_as, world, issued):
    session = act_as(world.admin_b.id, world.org_b)
    for doc in (issued.pdf, issued.xml, {**issued.xml, "content": one_byte_changed(issued.xml["content"])}):
        verdict = verify_file(session, doc["content"], doc["filename"])
        assert (verdict.ok, verdict.issued, verdict.document) == (False, False, None)
        assert verdict.summary == "not a document this organization issued"


# --- a trail that no longer backs the document ---------------------------------------------------------


def test_a_document_whose_stated_head_was_removed_from_the_trail_is_not_verified(owner_session, admin_engine, issued):
    pdf = issued.pdf
    head = pdf["audit_head_seq"]
    with pytest.raises(Undo), unit_of_work(owner_session):
        # What someone holding the owner's password could do in psql, undone when the block raises.
        owner_session.execute(text("set local lock_timeout = '5s'"))
        owner_session.execute(text("alter table audit_events disable trigger audit_events_append_only"))
        owner_session.execute(
            text("delete from audit_events where org_id = :o and seq = :s"), {"o": pdf["org_id"], "s": head}
        )
        verdict = verify_file(owner_session, pdf["content"], pdf["filename"])
        raise Undo

    assert (verdict.ok, verdict.issued, verdict.head_holds) == (False, True, False)
    assert verdict.summary.endswith(f"(document {pdf['transaction_id']}), but the audit trail does not back it")
    assert (
        f"the audit chain no longer holds the head it states (#{head} {pdf['audit_head_hash']}): event #{head} is gone"
        in verdict.lines
    )
    assert verify_file(owner_session, pdf["content"], pdf["filename"]).ok  # the trail is back as it was


def test_a_document_whose_head_event_was_rewritten_is_not_verified_naming_the_break(
    owner_session, admin_engine, issued
):
    xml = issued.xml
    head = xml["audit_head_seq"]
    with pytest.raises(Undo), unit_of_work(owner_session):
        owner_session.execute(text("set local lock_timeout = '5s'"))
        owner_session.execute(text("alter table audit_events disable trigger audit_events_append_only"))
        owner_session.execute(
            text("update audit_events set data = '{\"rewritten\": true}' where org_id = :o and seq = :s"),
            {"o": xml["org_id"], "s": head},
        )
        verdict = verify_file(owner_session, xml["content"], xml["filename"])
        raise Undo

    assert (verdict.ok, verdict.unchanged, verdict.head_holds) == (False, False, False)
    assert verdict.lines[-1] == (
        f"the audit chain does not link up through the head it states (#{head} {xml['audit_head_hash']}):"
        f" event #{head}: contents do not match the stored hash (row altered)"
    )


def test_a_document_whose_issue_event_was_cut_from_the_trail_is_not_verified(
    owner_session, admin_engine, database, issued
):
    xml = issued.xml
    event = recorded_at(admin_engine, xml)
    with newest_events_cut(database.superuser_url, xml["org_id"], event):
        verdict = verify_file(owner_session, xml["content"], xml["filename"])

    assert (verdict.ok, verdict.issued, verdict.unchanged, verdict.head_holds) == (False, True, False, True)
    assert verdict.lines[0] == (
        f"its bytes are the ones issued (sha256 {xml['sha256']}), but the audit trail no longer holds the event that"
        " recorded them"
    )


# --- a file of many ids (review finding 11) -----------------------------------------------------------


def fake_ids(n: int) -> list[str]:
    return [f"TX-{i:020X}" for i in range(1, n + 1)]


@pytest.fixture
def statements(admin_engine):
    """The SQL statements the owner's session sends while the test runs."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(admin_engine, "before_cursor_execute", record)
    yield sent
    event.remove(admin_engine, "before_cursor_execute", record)


def test_a_file_of_ten_thousand_ids_is_answered_with_one_lookup_of_the_first_five(owner_session, statements):
    ids = fake_ids(10_000)
    verdict = verify_file(owner_session, " ".join(ids).encode(), "ids.txt")

    assert (verdict.ok, verdict.document) == (False, None)
    assert verdict.lines[1] == (
        f"it names {', '.join(ids[:5])} and 9,995 more: none of the first 5 is one either"
        " (a document names its own id first; the rest were not looked up)"
    )
    lookups = [s for s in statements if "documents.transaction_id IN" in s]
    assert len(lookups) == 1 and len(statements) <= 3  # the file's sha256, its first ids; nothing per id


def test_a_changed_copy_among_many_ids_is_still_found_by_the_id_it_names_first(owner_session, issued, statements):
    pdf = issued.pdf
    content = one_byte_changed(pdf["content"]) + " ".join(fake_ids(10_000)).encode()
    verdict = verify_file(owner_session, content, pdf["filename"])

    assert verdict.document is not None and verdict.document.id == pdf["id"]
    assert verdict.summary.startswith(f"this file names document {pdf['transaction_id']}")
    assert len([s for s in statements if "documents.transaction_id IN" in s]) == 1


def test_a_few_ids_are_all_named_without_more(owner_session):
    ids = fake_ids(3)
    verdict = verify_file(owner_session, " ".join(ids * 2).encode(), "ids.txt")  # each once, in order
    assert verdict.lines[1] == f"it names {', '.join(ids)}, none of which is one either"


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture
def run(database):
    env = {
        "DATABASE_URL": database.app_url,
        "DATABASE_ADMIN_URL": database.admin_url,
        "DATABASE_WORKER_URL": database.worker_url,
    }

    def _run(*args):
        return CliRunner().invoke(main, ["verify", *map(str, args)], env=env, catch_exceptions=False)

    return _run


def written(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_verify_accepts_the_documents_as_issued_naming_the_organization_and_exits_0(
    run, tmp_path, admin_engine, world, issued
):
    pdf, xml = issued.pdf, issued.xml
    result = run(written(tmp_path, pdf["filename"], pdf["content"]), written(tmp_path, xml["filename"], xml["content"]))

    assert result.exit_code == 0, result.output
    number, event = issued.invoice["invoice_number"], recorded_at(admin_engine, pdf)
    assert (
        f"{tmp_path / pdf['filename']}: VERIFIED — Self-billed invoice {number} issued by {org_a(world)} on"
        f" {issued_on(admin_engine, pdf)} (document {pdf['transaction_id']}).\n"
        f"    unchanged: sha256 {pdf['sha256']}, recorded in the audit trail at event #{event}\n"
        f"    the audit chain still holds the head it states (#{pdf['audit_head_seq']} {pdf['audit_head_hash']})"
        " and links up through it\n"
    ) in result.output
    assert (
        f"{tmp_path / xml['filename']}: VERIFIED — E-invoice (UBL) {number} issued by {org_a(world)}" in result.output
    )


def test_verify_rejects_a_copy_with_one_byte_changed_naming_the_document_and_exits_1(run, tmp_path, issued):
    xml = issued.xml
    good = written(tmp_path, "good.pdf", issued.pdf["content"])
    tampered = written(tmp_path, xml["filename"], one_byte_changed(xml["content"]))
    result = run(good, tampered)

    assert result.exit_code == 1, result.output
    assert f"{good}: VERIFIED — " in result.output
    assert f"{tampered}: NOT VERIFIED — this file names document {xml['transaction_id']} (E-invoice (UBL)" in (
        result.output
    )
    assert "but its bytes differ from what was issued." in result.output
    assert f"    the sha256 issued: {xml['sha256']}\n" in result.output


def test_verify_says_a_file_of_no_organization_here_is_not_one_and_exits_1(run, tmp_path):
    path = written(tmp_path, "invoice.pdf", b"%PDF-1.4\nnot ours\n%%EOF\n")
    result = run(path)
    assert result.exit_code == 1
    assert f"{path}: NOT VERIFIED — not a document any organization in this database issued." in result.output


def test_verify_exits_2_naming_a_file_it_cannot_read_and_verifies_nothing(run, tmp_path, issued):
    good = written(tmp_path, "good.pdf", issued.pdf["content"])
    result = run(good, tmp_path / "missing.pdf")
    assert result.exit_code == 2
    assert f"{tmp_path / 'missing.pdf'}: cannot be read (no such file). Nothing was verified." in result.output
    assert "VERIFIED" not in result.output

    result = run(tmp_path)  # a directory
    assert result.exit_code == 2
    assert f"{tmp_path}: cannot be read (is a directory). Nothing was verified." in result.output


def test_verify_without_a_file_is_a_usage_error(run):
    result = run()
    assert result.exit_code == 2
    assert "Missing argument 'FILE…'" in result.output
