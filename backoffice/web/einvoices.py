"""An invoice's e-invoice (issue 21): finance asks the worker to issue it once what stopped it is fixed. The invoice's
documents themselves are listed on its page (templates/payments/_documents.html) and downloaded from the data room
(web/documents.download), as the data room's policies allow."""

from __future__ import annotations

from flask import Blueprint, flash, url_for
from flask_login import login_required

from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import NotFound
from backoffice.services import einvoices
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, db, roles_required
from backoffice.web.htmx import redirect_after_post

bp = Blueprint("einvoices", __name__)


@bp.route("/invoices/<invoice_id>/einvoice", methods=["POST"])
@login_required
@roles_required(*FINANCE_ROLES)
def request(invoice_id):
    row_id = parse_id(invoice_id)
    if row_id is None:
        raise NotFound()
    # The page offers the button only when nothing stands in the way; a Conflict (what is still missing, fixed
    # back in between) is the 409 page's, with the words.
    einvoices.request_einvoice(db(), actor(), row_id)
    flash("The e-invoice is being issued; it appears on this page in a moment.", "success")
    return redirect_after_post(url_for("payments.invoice", invoice_id=row_id) + "#documents")
