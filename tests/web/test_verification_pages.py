"""Verify a document (/documents/verify): finance and admins upload a file and the page says whether this organization
issued it, unchanged, and whether the audit chain still holds the head it states.

The documents are issued as the app issues them (kit.verification: the self-billed invoice's PDF by services/receipts
as the worker, a UBL-like e-invoice through data_room.file_document). Uploads go through the real multipart form with
its CSRF token. Owners and contractors are refused; another organization's admin is told the file is not one of
theirs; a missing or empty file is a 422 with the message at the field; a file past the page's limit is a 413 that
says why. The data room and the audit trail link to the page.
"""

from __future__ import annotations

import io
import re

import pytest
from kit.verification import Issued, issue_documents, one_byte_changed
from kit.web import csrf_token, field_error, signed_in, visible_text

from backoffice.services.verification import MAX_VERIFY_BYTES

PAGE = "/documents/verify"


@pytest.fixture
def issued(act_as, as_worker, admin_engine, world) -> Issued:
    return issue_documents(act_as, as_worker, admin_engine, world)


def upload(client, content: bytes | None, filename: str = "document.pdf", *, token: str | None = None):
    data = {"csrf_token": token if token is not None else csrf_token(client, PAGE)}
    if content is not None:
        data["file"] = (io.BytesIO(content), filename)
    return client.post(PAGE, data=data, content_type="multipart/form-data")


def panel(html: str) -> str:
    """The text of the verdict's success or failure panel."""
    match = re.search(
        r'<div class="flash flash-(?:success|error)" role="(?:status|alert)">(.*?)</div>', html, re.DOTALL
    )
    assert match, "no verdict panel on the page"
    return visible_text(match.group(1))


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_admins_upload_a_document_as_issued_and_see_it_verified(app, login, world, issued, who):
    client = signed_in(app, login, getattr(world, who))
    pdf = issued.pdf
    response = upload(client, pdf["content"], pdf["filename"])

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'class="flash flash-success"' in html and "flash-error" not in html
    said = panel(html)
    assert said.startswith(f"Verified: {pdf['filename']} Self-billed invoice {issued.invoice['invoice_number']}")
    assert f"issued by Org A {world.suffix} on " in said and f"(document {pdf['transaction_id']})." in said
    text = visible_text(html)
    assert f"Unchanged: sha256 {pdf['sha256']}, recorded in the audit trail at event #" in text
    assert f"The audit chain still holds the head it states (#{pdf['audit_head_seq']} {pdf['audit_head_hash']})" in text


def test_an_einvoice_as_issued_is_verified_as_an_einvoice(app, login, world, issued):
    xml = issued.xml
    html = upload(signed_in(app, login, world.finance), xml["content"], xml["filename"]).get_data(as_text=True)
    assert panel(html).startswith(f"Verified: {xml['filename']} E-invoice (UBL) {issued.invoice['invoice_number']}")


def test_a_tampered_copy_is_not_verified_and_the_page_says_what_changed(app, login, world, issued):
    xml = issued.xml
    response = upload(signed_in(app, login, world.finance), one_byte_changed(xml["content"]), xml["filename"])

    assert response.status_code == 200  # the check ran: its answer is no
    html = response.get_data(as_text=True)
    assert 'class="flash flash-error"' in html and "flash-success" not in html
    said = panel(html)
    assert said.startswith(f"Not verified: {xml['filename']} This file names document {xml['transaction_id']}")
    assert "but its bytes differ from what was issued." in said
    assert f"The sha256 issued: {xml['sha256']}" in visible_text(html)


def test_a_file_no_one_issued_is_not_a_document_this_organization_issued(app, login, world):
    html = upload(signed_in(app, login, world.admin), b"%PDF-1.4\nsomething else\n", "other.pdf").get_data(as_text=True)
    assert panel(html) == "Not verified: other.pdf Not a document this organization issued."


def test_another_organizations_admin_is_told_the_file_is_not_theirs(app, login, world, issued):
    html = upload(signed_in(app, login, world.admin_b), issued.pdf["content"], "x.pdf").get_data(as_text=True)
    # The file names its own id (its bytes are the uploader's); nothing of the other organization is told.
    assert panel(html).startswith("Not verified: x.pdf Not a document this organization issued.")
    assert f"It names {issued.pdf['transaction_id']}, which is not one either." in html
    assert f"Org A {world.suffix}" not in html and "issued by" not in panel(html)


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_may_not_verify(app, login, world, issued, who):
    client = signed_in(app, login, getattr(world, who))
    assert client.get(PAGE).status_code == 403
    token = csrf_token(client, "/")
    assert upload(client, issued.pdf["content"], token=token).status_code == 403


def test_signed_out_the_page_asks_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_posting_without_a_file_is_refused_at_the_field(app, login, world):
    response = upload(signed_in(app, login, world.finance), None)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "file") == "Choose the file to check: a PDF or XML document you downloaded or were sent."
    assert "flash-success" not in html and "flash-error" not in html


def test_an_empty_file_is_refused_at_the_field(app, login, world):
    response = upload(signed_in(app, login, world.finance), b"", "empty.pdf")
    assert response.status_code == 422
    assert (
        field_error(response.get_data(as_text=True), "file") == "empty.pdf is empty: choose the document's file itself."
    )


def test_a_file_past_the_limit_is_refused_saying_how_large_a_file_may_be(app, login, world):
    response = upload(signed_in(app, login, world.finance), b"x" * (MAX_VERIFY_BYTES + 128 * 1024), "huge.pdf")
    assert response.status_code == 413
    assert "the check takes files of at most 20 MB" in response.get_data(as_text=True)


def test_a_file_just_under_the_limit_is_checked(app, login, world):
    response = upload(signed_in(app, login, world.finance), b"x" * MAX_VERIFY_BYTES, "large.pdf")
    assert response.status_code == 200
    assert panel(response.get_data(as_text=True)) == "Not verified: large.pdf Not a document this organization issued."


def test_a_file_with_nul_bytes_and_a_name_with_hidden_characters_gets_an_answer(app, login, world):
    response = upload(signed_in(app, login, world.finance), b"\x00\x00TX-\x00", "a\x00b\u202e<script>.pdf")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert panel(html) == "Not verified: ab<script>.pdf Not a document this organization issued."
    assert "<script>.pdf" not in html and "\u202e" not in html


def test_a_post_without_the_csrf_token_is_refused(app, login, world, issued):
    response = upload(signed_in(app, login, world.finance), issued.pdf["content"], token="")
    assert response.status_code == 400


@pytest.mark.parametrize("page", ["/documents/", "/audit/"])
def test_the_data_room_and_the_audit_trail_link_to_the_page(app, login, world, page):
    html = signed_in(app, login, world.finance).get(page).get_data(as_text=True)
    assert f'href="{PAGE}"' in html


def test_a_file_of_ten_thousand_ids_gets_an_answer_naming_the_first_five(app, login, world):
    ids = [f"TX-{i:020X}" for i in range(1, 10_001)]
    response = upload(signed_in(app, login, world.finance), "\n".join(ids).encode(), "ids.xml")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert panel(html) == "Not verified: ids.xml Not a document this organization issued."
    assert set(re.findall(r"TX-[0-9A-F]{20}", html)) == set(ids[:5])
    assert f"It names {', '.join(ids[:5])} and 9,995 more: none of the first 5 is one either" in visible_text(html)
