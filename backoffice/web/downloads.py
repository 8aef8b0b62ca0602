"""CSV downloads of the lists, as filtered (issue 22, item 6): engagements, due, payment queue, batches,
retainage, audit trail, notifications.

Each route is guarded like its page (the same roles; RLS scopes the rows as it does the page's), reads the
page's query string with the page's own parser, and asks the page's own query for every row, a thousand at a
time (queries/paging.every_row walks a keyset-paged list along its keyset; the audit trail goes by sequence
number, the short lists -- batches, one person's notifications -- by offset, as their pages do), so the file and
the page cannot disagree and memory stays flat. The writing is web/list_csv.py's, once for all.
"""

from __future__ import annotations

import json
from dataclasses import replace

from flask import Blueprint, request, url_for
from flask_login import login_required

from backoffice.domain.ap_export import Preset
from backoffice.domain.engagements import EngagementStatus
from backoffice.domain.invoices import InvoiceStatus
from backoffice.domain.roles import FINANCE_ROLES, STAFF_ROLES
from backoffice.queries import admin as admin_queries
from backoffice.queries import engagements as engagement_queries
from backoffice.queries import money as money_queries
from backoffice.queries import notifications as notification_queries
from backoffice.queries.paging import every_row
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, roles_required
from backoffice.web.engagements import list_filters
from backoffice.web.list_csv import Column, amount, csv_download, refuse_nul_filters, stream_session
from backoffice.web.payments import queue_filters

bp = Blueprint("downloads", __name__, url_prefix="/downloads")


@bp.before_request
def _refuse_nul() -> None:
    refuse_nul_filters()


def _preset_label(value: str) -> str:
    try:
        return Preset(value).label
    except ValueError:
        return value


ENGAGEMENT_COLUMNS = (
    Column("Engagement", lambda r: r.title),
    Column("SOW reference", lambda r: r.sow_reference),
    Column("Contractor", lambda r: r.contractor_name),
    Column("Owner", lambda r: r.owner_name),
    Column("Status", lambda r: r.status.label),
    Column("Currency", lambda r: r.currency),
    Column("Contract value", lambda r: amount(r.totals.contract_value, r.currency)),
    Column("Approved", lambda r: amount(r.totals.approved, r.currency)),
    Column("Paid", lambda r: amount(r.totals.paid, r.currency)),
    Column("Retainage held", lambda r: amount(r.totals.retainage_held, r.currency)),
    Column("Milestones", lambda r: r.milestones),
    Column("Overdue milestones", lambda r: r.overdue),
    Column("Next due date", lambda r: r.next_due),
    Column("Created", lambda r: r.created_at),
)


@bp.route("/engagements.csv")
@login_required
def engagements():
    session = stream_session()
    me = actor()
    status, contractor_id, owner_id = list_filters(request.args, me)
    rows = every_row(
        lambda cursor, per_page: engagement_queries.engagement_list(
            session,
            status=status,
            contractor_id=contractor_id,
            owner_id=owner_id,
            cursor=cursor,
            per_page=per_page,
            org_id=me.org_id,
        ),
        engagement_queries.LIST_KEYSET,
    )
    return csv_download("engagements", ENGAGEMENT_COLUMNS, rows, session)


DUE_COLUMNS = (
    Column("Milestone", lambda r: r.title),
    Column("Engagement", lambda r: r.engagement_title),
    Column("Contractor", lambda r: r.contractor_name),
    Column("Status", lambda r: r.status.label),
    Column("Due date", lambda r: r.due_date),
    Column("Overdue", lambda r: r.overdue),
    Column("Currency", lambda r: r.currency),
    Column("Amount", lambda r: amount(r.amount_minor, r.currency)),
)


@bp.route("/due.csv")
@login_required
def due():
    session = stream_session()
    me = actor()
    status = request.args.get("status") or None
    rows = every_row(
        lambda cursor, per_page: engagement_queries.due_milestones(
            session, status=status, cursor=cursor, per_page=per_page, org_id=me.org_id, contractor_id=me.contractor_id
        ),
        engagement_queries.DUE_KEYSET,
    )
    return csv_download("due-milestones", DUE_COLUMNS, rows, session)


INVOICE_COLUMNS = (
    Column("Invoice number", lambda r: r.invoice_number),
    Column("Contractor", lambda r: r.contractor_name),
    Column("Engagement", lambda r: r.engagement_title),
    Column("Description", lambda r: r.description),
    Column("Type", lambda r: r.kind.label),
    Column("Status", lambda r: r.status_label),
    Column("Invoice date", lambda r: r.issued_on),
    Column("Due date", lambda r: r.due_date),
    Column("Overdue", lambda r: r.overdue),
    Column("Currency", lambda r: r.currency),
    Column("Gross", lambda r: amount(r.gross_minor, r.currency)),
    Column("Retainage", lambda r: amount(r.retainage_minor, r.currency)),
    Column("Net payable", lambda r: amount(r.net_minor, r.currency)),
    Column("Service fee", lambda r: amount(r.fee_minor, r.currency)),
    Column("Total", lambda r: amount(r.total_minor, r.currency)),
    Column("Batch", lambda r: r.batch_number),
    Column("Paid on", lambda r: r.paid_at),
)


@bp.route("/payments.csv")
@login_required
@roles_required(*FINANCE_ROLES)
def payment_queue():
    session = stream_session()
    filters, _notes = queue_filters(request.args)  # a malformed filter is dropped, as the page drops it
    org_id = actor().org_id
    rows = every_row(
        lambda cursor, per_page: money_queries.payment_queue(
            session, replace(filters, cursor=cursor), per_page, org_id=org_id, with_totals=False
        ),
        filters.keyset,
    )
    return csv_download("payment-queue", INVOICE_COLUMNS, rows, session)


BATCH_COLUMNS = (
    Column("Batch", lambda r: r.number),
    Column("Status", lambda r: "Voided" if r.status == "voided" else "Live"),
    Column("Layout", lambda r: _preset_label(r.preset)),
    Column("Currency", lambda r: r.currency),
    Column("Payments", lambda r: r.row_count),
    Column("Paid", lambda r: r.paid),
    Column("Total", lambda r: amount(r.total_minor, r.currency)),
    Column("Created", lambda r: r.created_at),
    Column("Created by", lambda r: r.created_by_name),
    Column("Voided", lambda r: r.voided_at),
    Column("Voided by", lambda r: r.voided_by_name),
    Column("Reason for voiding", lambda r: r.void_reason),
    Column("File SHA-256", lambda r: r.sha256),
)


@bp.route("/batches.csv")
@login_required
@roles_required(*FINANCE_ROLES)
def batches():
    session = stream_session()
    return csv_download("ap-batches", BATCH_COLUMNS, money_queries.every_batch(session), session)


RETAINAGE_COLUMNS = (
    Column("Engagement", lambda r: r.engagement_title),
    Column("Engagement status", lambda r: EngagementStatus(r.engagement_status).label),
    Column("Contractor", lambda r: r.contractor_name),
    Column("Currency", lambda r: r.currency),
    Column("Withheld", lambda r: amount(r.withheld, r.currency)),
    Column("Released", lambda r: amount(r.released, r.currency)),
    Column("Held", lambda r: amount(r.held, r.currency)),
    Column("Release invoice", lambda r: r.release_number),
    Column("Release status", lambda r: InvoiceStatus(r.release_status).label if r.release_status else None),
)


@bp.route("/retainage.csv")
@login_required
@roles_required(*STAFF_ROLES)
def retainage():
    session = stream_session()
    contractor_id = parse_id(request.args.get("contractor_id"))
    rows = every_row(
        lambda cursor, per_page: money_queries.retainage_report(
            session, contractor_id=contractor_id, cursor=cursor, per_page=per_page
        ),
        money_queries.RETAINAGE_KEYSET,
    )
    return csv_download("retainage", RETAINAGE_COLUMNS, rows, session)


AUDIT_COLUMNS = (
    Column("Number", lambda e: e.seq),
    Column("Time (UTC)", lambda e: e.occurred_at),
    Column("Who", lambda e: e.actor_label),
    Column("Action", lambda e: e.action),
    Column("Subject", lambda e: e.entity_type.replace("_", " ")),
    Column("Subject ID", lambda e: e.entity_id),
    Column("Details", lambda e: json.dumps(e.data, ensure_ascii=False, sort_keys=True) if e.data else None),
    Column("Hash", lambda e: e.hash),
)


@bp.route("/audit.csv")
@roles_required(*FINANCE_ROLES)
def audit():
    session = stream_session()
    return csv_download("audit-trail", AUDIT_COLUMNS, admin_queries.every_audit_event(session), session)


NOTIFICATION_COLUMNS = (
    Column("Time (UTC)", lambda n: n.created_at),
    Column("Title", lambda n: n.title),
    Column("Message", lambda n: n.body),
    Column("Read", lambda n: n.read_at),
    Column("Link", lambda n: n.url),
)


@bp.route("/notifications.csv")
@login_required
def notifications():
    session = stream_session()
    unread_only = request.args.get("show") == "unread"
    rows = notification_queries.every_notification(session, actor(), unread_only=unread_only)
    return csv_download("notifications", NOTIFICATION_COLUMNS, rows, session)


@bp.app_template_global()
def download_url(endpoint: str) -> str:
    """The download of the list on this page, with the page's filters (not where the page starts)."""
    args = {k: v for k, v in request.args.items() if k not in ("after", "before", "page")}
    return url_for(endpoint, **args)
