"""Evidence downloads. Always an attachment, except the inline preview of images and PDFs (the stored type,
never re-sniffed), which only the app's own pages may frame: images under a sandboxing Content-Security-Policy,
PDFs only as a frame's or embed's content, under one that loads nothing (see PDF_PREVIEW_POLICY)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response, request, stream_with_context
from flask_login import login_required

from backoffice.domain.evidence import PDF, PREVIEWABLE
from backoffice.errors import NotFound
from backoffice.queries.reviews import evidence_file
from backoffice.services.evidence import read_chunks
from backoffice.services.validation import parse_id
from backoffice.web.context import db

bp = Blueprint("evidence", __name__, url_prefix="/evidence")

PREVIEW_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
# A PDF goes without `sandbox`: Chromium refuses to render a PDF under it ("blocked"), and its viewer (like
# Firefox's pdf.js) runs no script of the file's with the app's origin. Everything else still holds: nothing
# loads from the file, only the app's own pages may frame it, the stored type is never re-sniffed. (Chromium 150
# renders the demo's checklist PDF in the review screen's frame under this policy.)
PDF_PREVIEW_POLICY = "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
# An unsandboxed PDF is a document of the app's origin, so it is served inline only into a frame (which
# frame-ancestors and X-Frame-Options keep to the app's own pages). The preview URL opened as a page of its own
# (a link, a typed address, a browser that sends no Sec-Fetch-Dest) gets the file as a sandboxed attachment.
FRAME_DESTINATIONS = frozenset({"iframe", "frame", "embed", "object"})


def content_disposition(kind: str, name: str) -> str:
    """``attachment`` or ``inline`` with a plain-ASCII name every client reads safely, and the exact
    name (RFC 6266 / 5987) for those that read it."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._()\- ]+", "_", ascii_name)
    stem, dot, ext = ascii_name.rpartition(".")
    if not dot:
        stem, ext = ascii_name, ""
    if not re.search(r"[A-Za-z0-9]", stem):  # "отчёт.pdf" keeps at least a name and its extension
        stem = "evidence"
    ascii_name = (stem.strip(" .") or "evidence") + (f".{ext}" if ext else "")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _file(file_id):
    row_id = parse_id(file_id)
    f = row_id and evidence_file(db(), row_id)
    if not f:
        raise NotFound()  # another org's or contractor's file looks exactly like a missing one
    return f


def file_response(body, f, disposition: str = "attachment") -> Response:
    """A stored file (evidence, a proposal's attachment: anything with file_name, content_type, size_bytes and
    sha256) as the browser gets it: under its sniffed type, never re-sniffed, never kept by a shared cache, named
    safely. ``body`` is its bytes, or an iterator of them."""
    response = Response(body, mimetype=f.content_type)
    response.headers["Content-Disposition"] = content_disposition(disposition, f.file_name)
    response.headers["Content-Length"] = str(f.size_bytes)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["ETag"] = f'"{f.sha256}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _stream(f, disposition: str) -> Response:
    return file_response(stream_with_context(read_chunks(db(), f.id)), f, disposition)


@bp.route("/<file_id>")
@login_required
def download(file_id):
    return _stream(_file(file_id), "attachment")


@bp.route("/<file_id>/preview")
@login_required
def preview(file_id):
    f = _file(file_id)
    if f.content_type not in PREVIEWABLE:
        raise NotFound()
    if f.content_type != PDF:
        response = _stream(f, "inline")
        response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    elif request.headers.get("Sec-Fetch-Dest", "").strip().lower() in FRAME_DESTINATIONS:
        response = _stream(f, "inline")
        response.headers["Content-Security-Policy"] = PDF_PREVIEW_POLICY
    else:
        response = _stream(f, "attachment")
        response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["Vary"] = "Sec-Fetch-Dest"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
