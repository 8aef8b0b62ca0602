"""CSV downloads of the lists, as filtered (issue 22, item 6): engagements, due, payment queue, batches,
retainage, audit trail, notifications.

Each route is guarded like its page (the same roles; RLS scopes the rows as it does the page's), reads the
page's query string with the page's own parser, and asks the page's own query for every row, a thousand at a
time (queries/paging.every_row walks a keyset-paged list along its keyset; the audit trail goes by sequence
number, the short lists -- batches, one person's notifications -- by offset, as their pages do), so the file and
the page cannot disagree and memory stays flat. The writing is web/list_csv.py's, once for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice

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
from backoffice.queries.audit_names import audit_names
from backoffice.queries.paging import every_row
from backoffice.services import audit_words
from backoffice.services.validation import parse_id
from backoffice.web.context import actor, roles_required
from backoffice.web.engagements import list_filters
from backoffice.web.list_csv import Column, amount, csv_download, refuse_nul_filters, stream_session
from backoffice.web.payments import FILTER_ARGS, queue_filters

bp = Blueprint("downloads", __name__, url_prefix="/downloads")

# Each download's filters: the query-string keys its page reads as filters, and so the only ones its link carries.
# Anything else on the page's URL (paging, or a key url_for would take as its own such as ``endpoint``, ``_method``
# or ``_external``) is not the download's to carry.
FILTERS: dict[str, tuple[str, ...]] = {}


def filtered_by(*keys: str):
    """Register the route's filter keys (for download_url) beside the route."""

    def register(view):
        FILTERS[f"{bp.name}.{view.__name__}"] = keys
        return view

    return register


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
@filtered_by("status", "contractor", "owner")  # web/engagements.list_filters
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
    Column("Status", lambda r: r.shown.words),  # the page's words ("Disputed"), not the stored status
    Column("Due date", lambda r: r.due_date),
    Column("Overdue", lambda r: r.overdue),
    Column("Currency", lambda r: r.currency),
    Column("Amount", lambda r: amount(r.amount_minor, r.currency)),
)


@bp.route("/due.csv")
@filtered_by("status")
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
@filtered_by(*FILTER_ARGS)  # the queue's own list (web/payments.py)
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
@filtered_by()
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
@filtered_by("contractor_id")
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


# The trail as the page reads it (services/audit_words): who, the sentence, its details as labelled values; the
# stored action code and the chain hash last, for auditors matching the file to the database.
AUDIT_COLUMNS = (
    Column("Sequence", lambda r: r[0].seq),
    Column("When (UTC)", lambda r: r[0].occurred_at),
    Column("Who", lambda r: r[1]),
    Column("What happened", lambda r: r[2].sentence),
    Column("Details", lambda r: "; ".join(f"{label}: {value}" for label, value in r[2].details)),
    Column("Action code", lambda r: r[0].action),
    Column("Hash", lambda r: r[0].hash),
)

AUDIT_CHUNK = 1000  # events named at a time: one look-up of names per kind for each chunk, as the page does for 50


def _audit_in_words(session, org_id, events: Iterable) -> Iterator[tuple]:
    """(event, who, described) for every event, the names looked up once per chunk (queries/audit_names) and
    the words written as the page writes them (web/audit._in_words)."""
    events = iter(events)
    while chunk := list(islice(events, AUDIT_CHUNK)):
        names = audit_names(session, org_id, chunk)
        for e in chunk:
            who = names.names.get(str(e.actor_user_id)) or e.actor_label
            said = audit_words.describe(e.action, e.entity_type, e.entity_id, e.data, who=who, names=names)
            yield e, who, said


@bp.route("/audit.csv")
@filtered_by()
@roles_required(*FINANCE_ROLES)
def audit():
    session = stream_session()
    rows = _audit_in_words(session, actor().org_id, admin_queries.every_audit_event(session))
    return csv_download("audit-trail", AUDIT_COLUMNS, rows, session)


NOTIFICATION_COLUMNS = (
    Column("Time (UTC)", lambda n: n.created_at),
    Column("Title", lambda n: n.title),
    Column("Message", lambda n: n.body),
    Column("Read", lambda n: n.read_at),
    Column("Link", lambda n: n.url),
)


@bp.route("/notifications.csv")
@filtered_by("show")
@login_required
def notifications():
    session = stream_session()
    unread_only = request.args.get("show") == "unread"
    rows = notification_queries.every_notification(session, actor(), unread_only=unread_only)
    return csv_download("notifications", NOTIFICATION_COLUMNS, rows, session)


@bp.app_template_global()
def download_url(endpoint: str) -> str:
    """The download of the list on this page, with the page's filters (not where the page starts): only the keys
    the download reads, so no query string can turn url_for's own arguments against the page."""
    keys = FILTERS[endpoint]
    return url_for(endpoint, **{k: v for k, v in request.args.items() if k in keys})
