"""Rules for the evidence a contractor submits: which files, which names, which links, how many.

Types are decided from the content (sniffed by the service with libmagic), never from the name; the
name's extension may only agree with it. Only an allow-list is accepted.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

MB = 1024 * 1024

# The most the product allows; an organization's settings may only tighten these.
MAX_FILES = 20
MAX_FILE_MB = 25
MAX_SUBMISSION_MB = 100
MAX_LINKS = 10
MAX_LINK_LENGTH = 2000
MAX_NAME_LENGTH = 200
MAX_NOTE_LENGTH = 4000

PDF = "application/pdf"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# Accepted type -> (what people call it, the extensions a name of that type may have).
ACCEPTED: dict[str, tuple[str, tuple[str, ...]]] = {
    PDF: ("PDF", ("pdf",)),
    "image/png": ("PNG image", ("png",)),
    "image/jpeg": ("JPEG image", ("jpg", "jpeg")),
    "image/gif": ("GIF image", ("gif",)),
    "image/webp": ("WebP image", ("webp",)),
    "text/plain": ("plain text", ("txt", "text", "log")),
    "text/csv": ("CSV", ("csv",)),
    "text/markdown": ("Markdown", ("md", "markdown")),
    ZIP: ("ZIP archive", ("zip",)),
    DOCX: ("Word document", ("docx",)),
    XLSX: ("Excel workbook", ("xlsx",)),
    PPTX: ("PowerPoint presentation", ("pptx",)),
}
ACCEPTED_SUMMARY = "PDF, PNG, JPEG, GIF, WebP, text, CSV, Markdown, Word, Excel, PowerPoint or ZIP"
# What a browser may show inline (in a sandboxed frame); everything else only downloads.
PREVIEWABLE = frozenset({PDF, "image/png", "image/jpeg", "image/gif", "image/webp"})
# Text that is only shown as text; markup a browser would run is never accepted as "text".
_ACTIVE_TEXT = frozenset({"text/html", "text/xml", "text/javascript", "text/x-php", "text/x-shellscript"})
_EXTENSION_TYPE = {ext: ctype for ctype, (_, exts) in ACCEPTED.items() for ext in exts}


@dataclass(frozen=True)
class Limits:
    max_files: int = MAX_FILES
    max_file_bytes: int = MAX_FILE_MB * MB
    max_submission_bytes: int = MAX_SUBMISSION_MB * MB

    @classmethod
    def from_megabytes(cls, max_files: int, max_file_mb: int, max_submission_mb: int) -> Limits:
        return cls(max_files, max_file_mb * MB, max_submission_mb * MB)


def human_size(size: int) -> str:
    """1536 -> '1.5 KB', 25 MB -> '25 MB' (binary units, as file managers mostly show)."""
    for unit, factor in (("GB", 1024**3), ("MB", MB), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size} byte" + ("" if size == 1 else "s")


def extension(name: str) -> str:
    return name.rsplit(".", 1)[1].lower() if "." in name.strip(".") else ""


def name_problem(name: str) -> str | None:
    """Why this file name cannot be kept, or None. A name is a name, never a path."""
    if not name.strip():
        return "has no name"
    if "/" in name or "\\" in name or name.strip() in (".", "..") or re.match(r"^[A-Za-z]:", name):
        return "has a folder path in its name; upload the file itself"
    # Control and format characters (a right-to-left override can disguise "txt.exe" as "exe.txt").
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "has control or invisible characters in its name; rename it"
    if len(name) > MAX_NAME_LENGTH:
        return f"has a name longer than {MAX_NAME_LENGTH} characters; rename it"
    return None


def accepted_type(sniffed: str, name: str) -> tuple[str | None, str | None]:
    """(the type the file is kept as, None) or (None, why it is refused), from the type sniffed from
    its content and its name. Plain text named .csv or .md is kept as CSV or Markdown; an extension
    that names another accepted type than the content is a mistake worth pointing out."""
    ext = extension(name)
    claimed = _EXTENSION_TYPE.get(ext)
    ctype = sniffed
    if sniffed.startswith("text/") and sniffed not in _ACTIVE_TEXT:
        if claimed in ("text/plain", "text/csv", "text/markdown"):
            ctype = claimed
        elif sniffed not in ACCEPTED:
            ctype = "text/plain" if claimed is None else sniffed
    elif sniffed == ZIP and claimed in (DOCX, XLSX, PPTX):
        ctype = claimed  # an Office file is a ZIP; older sniffers stop there
    if ctype not in ACCEPTED:
        return None, f"is not an accepted type (it looks like {sniffed}); accepted: {ACCEPTED_SUMMARY}"
    if claimed is not None and claimed != ctype:
        return None, f"is named .{ext} but its content is a {ACCEPTED[ctype][0]}; rename it or upload the right file"
    if ext and ext not in ACCEPTED[ctype][1]:
        # The reviewer's computer opens a download by its extension: "notes.bat" must never arrive as text.
        return None, (
            f"is named .{ext}, which is not accepted; name it "
            f"{' or '.join('.' + e for e in ACCEPTED[ctype][1])} if it is a {ACCEPTED[ctype][0]}"
        )
    return ctype, None


def clean_links(text: str) -> tuple[list[str], str | None]:
    """One link per line: (the links, None) or ([], what to fix). Only http and https links."""
    links: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        link = raw.strip()
        if not link:
            continue
        if len(link) > MAX_LINK_LENGTH:
            return [], f"Line {number}: keep each link under {MAX_LINK_LENGTH} characters."
        parts = urlsplit(link)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in link):
            return [], f"Line {number}: “{link[:80]}” is not a web link; links start with https:// or http://."
        if link not in links:
            links.append(link)
    if len(links) > MAX_LINKS:
        return [], f"Add at most {MAX_LINKS} links (there are {len(links)})."
    return links, None
