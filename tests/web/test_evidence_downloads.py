"""Evidence files leave the app as attachments with a safe name, the bytes exactly as uploaded and
nosniff; only images and PDFs preview inline: images under a sandboxing CSP, PDFs only as a frame's content
(anything else gets a sandboxed attachment). Another organization's or another
contractor's file, and a malformed id, answer 404; a signed-out browser is sent to sign in."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from kit.engagements import acting, create_active, milestones_of
from kit.files import PNG
from kit.web import signed_in
from sqlalchemy import text

from backoffice.services import submissions as submission_service
from backoffice.services.evidence import UploadedFile


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "photos to follow")
    return buffer.getvalue()


EVIL = 'evil"; filename="x.html.pdf'  # a name that tries to add a second filename to the header
# Over one 1 MiB chunk, so a download is put back together from several stored pieces.
PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    + bytes(range(256)) * 5000
    + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
FILES = {
    "Bericht über Prüfung.pdf": PDF,
    "site.png": PNG,
    "notes.txt": b"All snags closed.\n",
    "readme.md": b"# Handover\n\nKeys returned.\n",
    "photos.zip": tiny_zip(),
    EVIL: PDF[:200] + b"\n%%EOF\n",
    "отчёт.pdf": PDF[:200] + b"\n%%EOF\n",
}


@pytest.fixture
def evidence(world, app_sessions, admin_engine) -> dict[str, uuid.UUID]:
    """file name -> id: every file in FILES, submitted by contractor X's user on the owner's engagement."""
    eid = create_active(app_sessions, world)
    mid = milestones_of(admin_engine, eid)[0].id
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submission_service.submit_work(
            session,
            actor,
            mid,
            submission_service.SubmissionInput(
                note="Report and photos.", files=[UploadedFile.from_bytes(n, d) for n, d in FILES.items()]
            ),
        )
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text(
                "select f.id, f.file_name from evidence_files f join submissions s on s.id = f.submission_id"
                " where s.milestone_id = :m"
            ),
            {"m": mid},
        ).all()
    return {r.file_name: r.id for r in rows}


@pytest.fixture
def owner(app, login, world):
    return signed_in(app, login, world.owner)


# --- downloads -------------------------------------------------------------------------------------


def test_download_is_an_attachment_with_the_exact_bytes(owner, evidence):
    response = owner.get(f"/evidence/{evidence['site.png']}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=\"site.png\"; filename*=UTF-8''site.png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"] == "image/png"
    assert response.get_data() == PNG
    assert response.headers["Content-Length"] == str(len(PNG))


def test_a_file_stored_in_several_chunks_downloads_identical(owner, evidence, admin_engine):
    file_id = evidence["Bericht über Prüfung.pdf"]
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from evidence_chunks where file_id = :f"), {"f": file_id}).scalar_one()
            > 1
        )
    response = owner.get(f"/evidence/{file_id}")
    assert response.status_code == 200
    assert response.get_data() == PDF
    assert response.headers["Content-Length"] == str(len(PDF))


def test_a_non_ascii_name_gets_an_ascii_fallback_and_the_exact_utf8_name(owner, evidence):
    response = owner.get(f"/evidence/{evidence['Bericht über Prüfung.pdf']}")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert 'filename="Bericht uber Prufung.pdf"' in disposition
    assert "filename*=UTF-8''Bericht%20%C3%BCber%20Pr%C3%BCfung.pdf" in disposition
    disposition.encode("ascii")  # the header itself is plain ASCII


def test_quotes_in_a_name_cannot_add_a_second_filename_to_the_header(owner, evidence):
    response = owner.get(f"/evidence/{evidence[EVIL]}")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    plain = disposition.split("; filename*=")[0]
    assert plain.count('"') == 2  # one quoted name, nothing after it
    assert plain.startswith('attachment; filename="evil_')
    assert "filename*=UTF-8''evil%22%3B%20filename%3D%22x.html.pdf" in disposition


def test_a_name_without_ascii_letters_keeps_its_extension_in_the_fallback(owner, evidence):
    disposition = owner.get(f"/evidence/{evidence['отчёт.pdf']}").headers["Content-Disposition"]
    assert "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf" in disposition
    fallback = disposition.split('filename="')[1].split('"')[0]
    assert fallback.endswith(".pdf") and len(fallback) > len(".pdf")


def test_the_contractor_downloads_its_own_evidence(app, login, world, evidence):
    contractor = signed_in(app, login, world.contractor_x_user)
    response = contractor.get(f"/evidence/{evidence['notes.txt']}")
    assert response.status_code == 200
    assert response.get_data() == FILES["notes.txt"]
    assert response.headers["Content-Disposition"].startswith("attachment;")


# --- previews --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["site.png", "Bericht über Prüfung.pdf"])
def test_images_and_pdfs_preview_inline_loading_nothing(owner, evidence, name):
    response = owner.get(f"/evidence/{evidence[name]}/preview", headers={"Sec-Fetch-Dest": "iframe"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("inline; ")
    # Images under a sandbox; PDFs without one (Chromium will not render them under it), neither loads anything.
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox") == name.endswith(".png")
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == FILES[name]


@pytest.mark.parametrize(
    ("destination", "disposition", "sandboxed"),
    [
        ("iframe", "inline", False),
        ("embed", "inline", False),
        ("object", "inline", False),
        ("document", "attachment", True),
        ("empty", "attachment", True),
        (None, "attachment", True),
    ],
)
def test_a_pdf_preview_is_inline_only_as_the_content_of_a_frame(owner, evidence, destination, disposition, sandboxed):
    headers = {"Sec-Fetch-Dest": destination} if destination else {}
    response = owner.get(f"/evidence/{evidence['Bericht über Prüfung.pdf']}/preview", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith(f"{disposition}; ")
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox") is sandboxed
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == PDF


def test_an_image_preview_is_inline_whatever_loads_it(owner, evidence):
    response = owner.get(f"/evidence/{evidence['site.png']}/preview", headers={"Sec-Fetch-Dest": "document"})
    assert response.headers["Content-Disposition"].startswith("inline; ")
    assert response.headers["Content-Security-Policy"].startswith("sandbox; ")


@pytest.mark.parametrize("name", ["notes.txt", "readme.md", "photos.zip"])
def test_other_types_have_no_preview(owner, evidence, name):
    assert owner.get(f"/evidence/{evidence[name]}/preview").status_code == 404
    assert owner.get(f"/evidence/{evidence[name]}").status_code == 200  # still downloadable


# --- who may fetch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin_b", "contractor_z_user", "contractor_y_user"])
@pytest.mark.parametrize("suffix", ["", "/preview"])
def test_other_orgs_and_other_contractors_get_not_found(app, login, world, evidence, who, suffix):
    client = signed_in(app, login, getattr(world, who))
    for name in ("site.png", "Bericht über Prüfung.pdf"):
        response = client.get(f"/evidence/{evidence[name]}{suffix}")
        assert response.status_code == 404
        assert response.get_data() != FILES[name]
        assert "Content-Disposition" not in response.headers


@pytest.mark.parametrize(
    "file_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "5f0c2a9e-8d41-4b7a-9c3e-2b1d6f7a8e90"]
)
@pytest.mark.parametrize("suffix", ["", "/preview"])
def test_malformed_or_unknown_ids_are_not_found(owner, evidence, file_id, suffix):
    assert owner.get(f"/evidence/{file_id}{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["", "/preview"])
def test_signed_out_browser_is_sent_to_sign_in(client, evidence, suffix):
    response = client.get(f"/evidence/{evidence['site.png']}{suffix}")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
    assert "Content-Disposition" not in response.headers


def test_the_review_screen_shows_images_inline_and_pdfs_in_a_frame(owner, evidence, admin_engine):
    with admin_engine.connect() as conn:
        milestone_id = conn.execute(
            text(
                "select s.milestone_id from evidence_files f join submissions s on s.id = f.submission_id"
                " where f.id = :f"
            ),
            {"f": evidence["site.png"]},
        ).scalar_one()
    html = owner.get(f"/milestones/{milestone_id}").get_data(as_text=True)
    assert f'<img src="/evidence/{evidence["site.png"]}/preview"' in html
    # A PDF in a frame without the sandbox attribute (Chromium shows "blocked" for one in a sandboxed frame),
    # its download beside it.
    assert f'<iframe src="/evidence/{evidence["Bericht über Prüfung.pdf"]}/preview"' in html
