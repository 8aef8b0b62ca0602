"""Which evidence files, names and links are accepted (backoffice.domain.evidence), and the types
libmagic reads from real content (backoffice.services.evidence.sniff)."""

from __future__ import annotations

import io
import zipfile

import pytest

from backoffice.domain import evidence as rules
from backoffice.services.demo_evidence import notes_md, photo_png
from backoffice.services.evidence import UploadedFile, check_files, sniff


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "a/b.pdf", "..\\windows\\x.txt", "C:\\x.txt", "C:x.txt", "..", "."]
)
def test_a_name_that_tries_a_path_is_refused(name):
    assert "folder path" in rules.name_problem(name)


@pytest.mark.parametrize(
    "name", ["report.pdf", "Bericht über Prüfung.pdf", "photo (1).JPG", ".hidden-notes.md", "a..b.txt"]
)
def test_ordinary_names_are_kept(name):
    assert rules.name_problem(name) is None


def test_control_characters_and_overlong_names_are_refused():
    for name in ("bad\r\nname.pdf", "report\u0085.pdf", "invoice\u202efdp.exe", "zero\u200bwidth.txt"):
        assert "control or invisible characters" in rules.name_problem(name)
    assert "longer than 200" in rules.name_problem("x" * 197 + ".pdf")
    assert rules.name_problem("   ") == "has no name"


@pytest.mark.parametrize(
    ("sniffed", "name", "kept_as"),
    [
        ("application/pdf", "report.pdf", "application/pdf"),
        ("application/pdf", "report", "application/pdf"),  # no extension: the content decides
        ("image/jpeg", "photo.JPEG", "image/jpeg"),
        ("text/plain", "notes.md", "text/markdown"),
        ("text/plain", "rows.csv", "text/csv"),
        ("text/csv", "rows.csv", "text/csv"),
        ("text/plain", "readme", "text/plain"),
        ("text/x-c", "snippet.txt", "text/plain"),  # text that merely looks like code is still text
        ("application/zip", "plan.docx", rules.DOCX),  # an Office file is a ZIP to an older sniffer
        (rules.XLSX, "costs.xlsx", rules.XLSX),
    ],
)
def test_accepted_types(sniffed, name, kept_as):
    assert rules.accepted_type(sniffed, name) == (kept_as, None)


@pytest.mark.parametrize(
    ("sniffed", "name", "problem"),
    [
        ("text/html", "page.html", "not an accepted type"),
        ("text/html", "page.txt", "not an accepted type"),  # markup is never "plain text"
        ("image/svg+xml", "logo.svg", "not an accepted type"),
        ("application/x-dosexec", "invoice.pdf", "not an accepted type"),
        ("application/x-executable", "tool", "not an accepted type"),
        ("image/png", "scan.pdf", "named .pdf but its content is a PNG image"),
        ("application/pdf", "photo.jpg", "named .jpg but its content is a PDF"),
        # The reviewer's computer opens a download by its extension: scripts never arrive as "text".
        ("text/x-msdos-batch", "invoice.bat", "named .bat, which is not accepted"),
        ("text/plain", "run.js", "named .js, which is not accepted"),
        ("text/plain", "setup.ps1", "named .ps1, which is not accepted"),
        ("text/plain", "page.html", "named .html, which is not accepted"),
        ("application/zip", "tool.jar", "named .jar, which is not accepted"),
        ("application/pdf", "report.pdf.exe", "named .exe, which is not accepted"),
    ],
)
def test_refused_types_say_why(sniffed, name, problem):
    kept, why = rules.accepted_type(sniffed, name)
    assert kept is None and problem in why


def test_links_one_per_line_http_and_https_only():
    assert rules.clean_links(" https://a.example/x \n\nhttp://b.example\nhttps://a.example/x") == (
        ["https://a.example/x", "http://b.example"],
        None,
    )
    for bad in ("javascript:alert(1)", "ftp://files.example/x", "https://", "www.example.com", "https://a b.example"):
        links, problem = rules.clean_links(f"https://ok.example\n{bad}")
        assert links == [] and problem.startswith("Line 2:")
    links, problem = rules.clean_links("\n".join(f"https://x.example/{i}" for i in range(11)))
    assert links == [] and "at most 10 links" in problem


def test_sizes_read_as_people_read_them():
    assert [rules.human_size(n) for n in (0, 1, 1023, 1536, 25 * rules.MB, 1024**3)] == [
        "0 bytes",
        "1 byte",
        "1023 bytes",
        "1.5 KB",
        "25 MB",
        "1 GB",
    ]


def _office(kind: str) -> bytes:
    buffer = io.BytesIO()
    folder = {"docx": "word", "xlsx": "xl", "pptx": "ppt"}[kind]
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        z.writestr("_rels/.rels", "<Relationships/>")
        z.writestr(f"{folder}/document.xml", "<x/>")
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("photos/one.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "kept_as"),
    [
        ("photo.png", photo_png(16, 16), "image/png"),
        ("report.pdf", b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n", "application/pdf"),
        ("notes.md", notes_md("Notes", ["one", "two"]), "text/markdown"),
        ("rows.csv", b"date,hours\n2026-11-01,7.5\n2026-11-02,8\n", "text/csv"),
        ("log.txt", b"All checks passed.\n", "text/plain"),
        (
            "photo.gif",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
            "image/gif",
        ),
        ("archive.zip", _zip(), "application/zip"),
        ("plan.docx", _office("docx"), rules.DOCX),
        ("costs.xlsx", _office("xlsx"), rules.XLSX),
        ("deck.pptx", _office("pptx"), rules.PPTX),
    ],
)
def test_real_content_is_sniffed_and_accepted(name, data, kept_as):
    checked, problems = check_files([UploadedFile.from_bytes(name, data)], rules.Limits())
    assert problems == []
    assert checked[0].content_type == kept_as


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        (
            "invoice.pdf",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
            + b"\x00" * 64
            + b"This program cannot be run in DOS mode",
            "not an accepted type",
        ),
        ("tool", b"\x7fELF\x02\x01\x01" + b"\x00" * 57, "not an accepted type"),
        ("page.txt", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "not an accepted type"),
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "not an accepted type",
        ),
        ("scan.pdf", photo_png(16, 16), "its content is a PNG image"),
        ("empty.pdf", b"", "is empty"),
    ],
)
def test_disguised_or_empty_files_are_refused_by_name(name, data, problem):
    checked, problems = check_files([UploadedFile.from_bytes(name, data)], rules.Limits())
    assert checked == []
    assert len(problems) == 1 and problems[0].startswith(f"“{name}”") and problem in problems[0]


def test_limits_name_the_file_and_the_limit():
    limits = rules.Limits(max_files=2, max_file_bytes=1000, max_submission_bytes=1500)
    files = [UploadedFile.from_bytes(f"notes-{i}.txt", b"x" * 800) for i in range(3)]
    files.append(UploadedFile.from_bytes("big.txt", b"y" * 1001))
    _, problems = check_files(files, limits)
    assert problems[0] == "Attach at most 2 files to one submission (you chose 4)."
    assert "“big.txt” is 1001 bytes, more than the 1000 bytes allowed per file." in problems
    assert problems[-1] == "The files add up to 3.3 KB; one submission can carry at most 1.5 KB."


def test_sniffing_reads_only_the_start_and_rewinds():
    stream = io.BytesIO(b"%PDF-1.7\n" + b"0" * (1024 * 1024))
    stream.seek(500)
    assert sniff(stream) == "application/pdf"
    assert stream.tell() == 0
