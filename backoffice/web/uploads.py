"""Uploads stream to a temporary file while their sha256 and size are computed, as the request body
is parsed: the app never holds a whole upload in memory and never reads it twice to hash it."""

from __future__ import annotations

import hashlib
import tempfile

from flask import session
from htmx_flask.requests import HtmxAwareRequest

from backoffice.domain import evidence as rules
from backoffice.services.evidence import UploadedFile
from backoffice.services.payments import MAX_REMITTANCE_BYTES
from backoffice.services.verification import MAX_VERIFY_BYTES

# Endpoints that take evidence files (a milestone's, a proposal's). Their body may be as large as the most a
# submission may carry (the organization's own, smaller limits are checked file by file afterwards, with a message).
UPLOAD_ENDPOINTS = frozenset({"milestones.submit", "proposals.new", "proposals.edit"})
UPLOAD_REQUEST_LIMIT = rules.MAX_SUBMISSION_MB * rules.MB + 1024 * 1024  # + room for the form's fields
# A remittance file may be as large as the service reads (it says "split it" beyond), plus the form.
REMITTANCE_ENDPOINTS = frozenset({"payments.remittance"})
REMITTANCE_REQUEST_LIMIT = MAX_REMITTANCE_BYTES + 64 * 1024
# A document to verify may be as large as the page takes (services/verification), plus the form.
VERIFY_ENDPOINTS = frozenset({"verification.verify"})
VERIFY_REQUEST_LIMIT = MAX_VERIFY_BYTES + 64 * 1024
IN_MEMORY_BYTES = 512 * 1024  # smaller files stay in memory, larger ones go to disk


class HashingSpool:
    """A writable, then readable, temporary file that hashes what is written to it."""

    def __init__(self) -> None:
        # The spool outlives __init__: werkzeug writes the upload into it, the view reads it back, and the
        # request's FileStorage closes it (through __getattr__) when the request ends.
        self._file = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._file.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __getattr__(self, name):  # read, readline, seek, tell, close, ...
        return getattr(self._file, name)

    def __iter__(self):
        return iter(self._file)


class Request(HtmxAwareRequest):
    """htmx-flask's request (``request.htmx``), with uploads spooled through HashingSpool."""

    @property
    def max_content_length(self) -> int | None:
        # CSRF protection parses the body before any view runs, so the large limit is only for a signed-in
        # session (the signed cookie is already verified here); anyone else gets the app's small limit.
        if self.endpoint in UPLOAD_ENDPOINTS and session.get("_user_id"):
            return UPLOAD_REQUEST_LIMIT
        if self.endpoint in REMITTANCE_ENDPOINTS and session.get("_user_id"):
            return REMITTANCE_REQUEST_LIMIT
        if self.endpoint in VERIFY_ENDPOINTS and session.get("_user_id"):
            return VERIFY_REQUEST_LIMIT
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return HashingSpool()


def uploaded_files(request: Request, field: str) -> list[UploadedFile]:
    """The files of a multipart field; the empty part a browser sends when no file was chosen is skipped."""
    files = []
    for storage in request.files.getlist(field):
        spool = storage.stream
        if not storage.filename and spool.size == 0:
            continue
        files.append(UploadedFile(storage.filename or "", spool, spool.size, spool.sha256))
    return files
