"""Verify a document's file (issue 21, item 6): finance and admins upload a file, and the page says whether it is one
this organization issued, unchanged, and whether the audit chain still holds the head it states. The check is
services/verification's, under the signed-in user's row-level security: only the organization's documents count."""

from __future__ import annotations

from flask import Blueprint, request

from backoffice.domain.roles import FINANCE_ROLES
from backoffice.services.verification import MAX_VERIFY_BYTES, verify_file
from backoffice.web.context import db, roles_required
from backoffice.web.htmx import render

bp = Blueprint("verification", __name__, url_prefix="/documents")


@bp.route("/verify", methods=["GET", "POST"])
@roles_required(*FINANCE_ROLES)
def verify():
    if request.method == "GET":
        return render("documents/verify.html", verdict=None, errors={})
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _refused("Choose the file to check: a PDF or XML document you downloaded or were sent.")
    # web/uploads.py caps the request at MAX_VERIFY_BYTES and the form; a file that fills it all is refused here.
    content = upload.read(MAX_VERIFY_BYTES + 1)
    if len(content) > MAX_VERIFY_BYTES:
        megabytes = MAX_VERIFY_BYTES // (1024 * 1024)
        return _refused(f"The file is larger than {megabytes} MB: no document of the data room is.")
    if not content:
        return _refused(f"{upload.filename} is empty: choose the document's file itself.")
    verdict = verify_file(db(), content, upload.filename)
    return render("documents/verify.html", verdict=verdict, errors={})


def _refused(message: str):
    return render("documents/verify.html", verdict=None, errors={"file": message}, status=422)
