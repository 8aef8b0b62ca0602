"""Read side of money: the payment queue, one invoice, AP batches, the retainage report, a contractor's
payments. RLS scopes every query (to the organization, and to the contractor for a contractor's user;
batches and the ledger return nothing to anyone but finance and admins)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.domain.invoices import InvoiceKind, InvoiceStatus, RetainageState
from backoffice.queries.paging import Paging

PER_PAGE = 50
QUEUE_STATUSES = {
    "open": ("approved", "exported"),
    "approved": ("approved",),
    "exported": ("exported",),
    "paid": ("paid",),
    "all": ("approved", "exported", "paid", "void", "on_hold"),
}


@dataclass(frozen=True)
class InvoiceRow:
    id: uuid.UUID
    invoice_number: str
    kind: InvoiceKind
    status: InvoiceStatus
    currency: str
    gross_minor: int
    retainage_minor: int
    net_minor: int
    fee_minor: int
    total_minor: int
    issued_on: date
    due_date: date
    paid_at: date | None
    overdue: bool
    contractor_id: uuid.UUID
    contractor_name: str
    engagement_id: uuid.UUID
    engagement_title: str
    milestone_id: uuid.UUID | None
    milestone_title: str | None
    batch_id: uuid.UUID | None
    batch_number: int | None
    description: str


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    count: int
    net_minor: int
    overdue: int


@dataclass(frozen=True)
class QueueFilters:
    status: str = "open"
    due_before: date | None = None
    currency: str | None = None
    contractor_id: uuid.UUID | None = None
    engagement_id: uuid.UUID | None = None
    sort: str = "due"  # "due" soonest first, "-due" latest first
    page: int = 1

    def where(self) -> tuple[str, dict]:
        clauses, params = (
            ["i.status = any(:statuses)"],
            {"statuses": list(QUEUE_STATUSES.get(self.status, QUEUE_STATUSES["open"]))},
        )
        if self.due_before:
            clauses.append("i.due_date <= :due_before")
            params["due_before"] = self.due_before
        for name in ("currency", "contractor_id", "engagement_id"):
            if getattr(self, name):
                clauses.append(f"i.{name} = :{name}")
                params[name] = getattr(self, name)
        return " and ".join(clauses), params


@dataclass(frozen=True)
class QueuePage(Paging):
    rows: list[InvoiceRow]
    total: int
    page: int
    per_page: int
    totals: list[CurrencyTotal]


_ROW_SQL = """
    select i.id, i.invoice_number, i.kind, i.status, i.currency, i.gross_minor, i.retainage_minor, i.net_minor,
           i.fee_minor, i.total_minor, i.issued_on, i.due_date, i.paid_at,
           i.status in ('approved', 'exported') and i.due_date < current_date as overdue,
           i.contractor_id, c.legal_name as contractor_name, i.engagement_id, e.title as engagement_title,
           i.milestone_id, m.title as milestone_title, i.batch_id, b.number as batch_number, i.description
      from invoices i
      join contractors c on c.id = i.contractor_id
      join engagements e on e.id = i.engagement_id
      left join milestones m on m.id = i.milestone_id
      left join ap_export_batches b on b.id = i.batch_id
"""


def _rows(result) -> list[InvoiceRow]:
    return [
        InvoiceRow(**{**r, "kind": InvoiceKind(r["kind"]), "status": InvoiceStatus(r["status"])})
        for r in result.mappings()
    ]


def payment_queue(session: Session, filters: QueueFilters, per_page: int = PER_PAGE) -> QueuePage:
    """Invoices matching the filters, soonest due first (or latest), a page at a time, with the count,
    net total and overdue count per currency of everything the filters match."""
    where, params = filters.where()
    totals = [
        CurrencyTotal(**r)
        for r in session.execute(
            text(
                f"select i.currency, count(*) as count, coalesce(sum(i.net_minor), 0)::bigint as net_minor,"
                f"       count(*) filter (where i.status in ('approved', 'exported')"
                f"                          and i.due_date < current_date) as overdue"
                f"  from invoices i where {where} group by i.currency order by i.currency"
            ),
            params,
        ).mappings()
    ]
    total = sum(t.count for t in totals)
    page = max(1, min(filters.page, max(1, math.ceil(total / per_page))))
    direction = "desc" if filters.sort == "-due" else "asc"
    rows = _rows(
        session.execute(
            text(
                f"{_ROW_SQL} where {where} order by i.due_date {direction}, i.number {direction}"
                " limit :limit offset :offset"
            ),
            params | {"limit": per_page, "offset": (page - 1) * per_page},
        )
    )
    return QueuePage(rows, total, page, per_page, totals)


@dataclass(frozen=True)
class Option:
    id: str
    name: str


def queue_options(session: Session) -> dict[str, list[Option]]:
    """What the queue's filters offer: the currencies, contractors and engagements that have invoices."""
    return {
        "currencies": [
            Option(c, c) for c in session.execute(text("select distinct currency from invoices order by 1")).scalars()
        ],
        "contractors": [
            Option(str(r.id), r.legal_name)
            for r in session.execute(
                text(
                    "select c.id, c.legal_name from contractors c"
                    " where exists (select 1 from invoices i where i.contractor_id = c.id)"
                    " order by lower(c.legal_name)"
                )
            )
        ],
        "engagements": [
            Option(str(r.id), r.title)
            for r in session.execute(
                text(
                    "select e.id, e.title from engagements e"
                    " where exists (select 1 from invoices i where i.engagement_id = e.id)"
                    " order by lower(e.title)"
                )
            )
        ],
    }


@dataclass(frozen=True)
class LedgerLine:
    event: str
    account: str
    amount_minor: int
    created_at: datetime


@dataclass(frozen=True)
class PaymentView:
    paid_at: date
    reference: str
    method: str
    source: str
    amount_minor: int
    recorded_by_name: str | None
    recorded_at: datetime
    batch_number: int | None


@dataclass(frozen=True)
class InvoiceDetail:
    row: InvoiceRow
    retainage_bps: int
    fee_bps: int
    authorized_by: uuid.UUID
    authorized_by_name: str | None
    authorized_at: datetime
    exported_at: datetime | None
    release_reason: str | None
    review_id: uuid.UUID | None
    decision: str | None
    revision: int | None
    evidence_count: int
    sow_reference: str | None
    payment: PaymentView | None
    ledger: list[LedgerLine] = field(default_factory=list)


def invoice_detail(session: Session, invoice_id: uuid.UUID) -> InvoiceDetail | None:
    rows = _rows(session.execute(text(f"{_ROW_SQL} where i.id = :id"), {"id": invoice_id}))
    if not rows:
        return None
    r = (
        session.execute(
            text("""
        select i.retainage_bps, i.fee_bps, i.authorized_by, u.name as authorized_by_name, i.authorized_at,
               i.exported_at,
               i.release_reason, i.review_id, rv.decision, s.revision, e.sow_reference,
               (select count(*) from evidence_files f where f.submission_id = rv.submission_id) as evidence_count
          from invoices i join engagements e on e.id = i.engagement_id
          left join users u on u.id = i.authorized_by
          left join reviews rv on rv.id = i.review_id
          left join submissions s on s.id = rv.submission_id
         where i.id = :id"""),
            {"id": invoice_id},
        )
        .mappings()
        .one()
    )
    p = (
        session.execute(
            text("""
        select p.paid_at, p.reference, p.method, p.source, p.amount_minor, u.name as recorded_by_name, p.recorded_at,
               b.number as batch_number
          from payments p left join users u on u.id = p.recorded_by left join ap_export_batches b on b.id = p.batch_id
         where p.invoice_id = :id"""),
            {"id": invoice_id},
        )
        .mappings()
        .first()
    )
    ledger = [
        LedgerLine(**line)
        for line in session.execute(
            text(
                "select event, account, amount_minor, created_at from ledger_entries where invoice_id = :id"
                " order by created_at, event, amount_minor desc"
            ),
            {"id": invoice_id},
        ).mappings()
    ]
    return InvoiceDetail(row=rows[0], **r, payment=PaymentView(**p) if p else None, ledger=ledger)


def engagement_invoices(session: Session, engagement_id: uuid.UUID) -> list[InvoiceRow]:
    return _rows(
        session.execute(text(f"{_ROW_SQL} where i.engagement_id = :id order by i.number"), {"id": engagement_id})
    )


def engagement_retainage(session: Session, engagement_id: uuid.UUID) -> RetainageState:
    r = session.execute(
        text(
            "select coalesce(sum(retainage_minor) filter (where kind = 'milestone'), 0) as withheld,"
            "       coalesce(sum(gross_minor) filter (where kind = 'retainage_release'), 0) as released"
            "  from invoices where engagement_id = :id"
        ),
        {"id": engagement_id},
    ).one()
    return RetainageState(int(r.withheld), int(r.released))


@dataclass(frozen=True)
class BatchRow:
    id: uuid.UUID
    number: int
    currency: str
    preset: str
    row_count: int
    total_minor: int
    sha256: str
    size_bytes: int
    status: str
    created_at: datetime
    created_by_name: str | None
    paid: int
    voided_at: datetime | None
    voided_by_name: str | None
    void_reason: str | None

    @property
    def fully_paid(self) -> bool:
        return self.paid == self.row_count and self.status == "live"


_BATCH_SQL = """
    select b.id, b.number, b.currency, b.preset, b.row_count, b.total_minor, b.sha256, b.size_bytes, b.status,
           b.created_at, u.name as created_by_name, b.voided_at, v.name as voided_by_name, b.void_reason,
           (select count(*) from invoices i where i.batch_id = b.id and i.status = 'paid') as paid
      from ap_export_batches b left join users u on u.id = b.created_by left join users v on v.id = b.voided_by
"""


def batch_list(session: Session, page: int = 1, per_page: int = PER_PAGE) -> tuple[list[BatchRow], int]:
    total = session.execute(text("select count(*) from ap_export_batches")).scalar_one()
    rows = session.execute(
        text(f"{_BATCH_SQL} order by b.number desc limit :limit offset :offset"),
        {"limit": per_page, "offset": (max(1, page) - 1) * per_page},
    ).mappings()
    return [BatchRow(**r) for r in rows], total


def batch_detail(session: Session, batch_id: uuid.UUID) -> tuple[BatchRow, list[InvoiceRow]] | None:
    r = session.execute(text(f"{_BATCH_SQL} where b.id = :id"), {"id": batch_id}).mappings().first()
    if r is None:
        return None
    batch = BatchRow(**r)
    # A voided batch keeps the list of what it held; its invoices are back in the queue.
    invoices = _rows(
        session.execute(
            text(
                f"{_ROW_SQL} where i.id = any((select invoice_ids from ap_export_batches where id = :id)::uuid[])"
                " order by i.number limit 500"
            ),
            {"id": batch_id},
        )
    )
    return batch, invoices


@dataclass(frozen=True)
class RetainageRow:
    engagement_id: uuid.UUID
    engagement_title: str
    engagement_status: str
    contractor_id: uuid.UUID
    contractor_name: str
    owner_user_id: uuid.UUID
    currency: str
    withheld: int
    released: int
    release_id: uuid.UUID | None
    release_number: str | None
    release_status: str | None

    @property
    def held(self) -> int:
        return self.withheld - self.released


@dataclass(frozen=True)
class ContractorRetainage:
    contractor_id: uuid.UUID
    contractor_name: str
    currency: str
    withheld: int
    released: int

    @property
    def held(self) -> int:
        return self.withheld - self.released


def retainage_report(session: Session) -> tuple[list[RetainageRow], list[ContractorRetainage]]:
    """Per engagement and per contractor (and currency): retainage withheld, released and held."""
    rows = [
        RetainageRow(**r)
        for r in session.execute(
            text("""
        select e.id as engagement_id, e.title as engagement_title, e.status as engagement_status, e.contractor_id,
               c.legal_name as contractor_name, e.owner_user_id, e.currency,
               coalesce(sum(i.retainage_minor) filter (where i.kind = 'milestone'), 0)::bigint as withheld,
               coalesce(sum(i.gross_minor) filter (where i.kind = 'retainage_release'), 0)::bigint as released,
               (array_agg(i.id) filter (where i.kind = 'retainage_release'))[1] as release_id,
               (array_agg(i.invoice_number) filter (where i.kind = 'retainage_release'))[1] as release_number,
               (array_agg(i.status) filter (where i.kind = 'retainage_release'))[1] as release_status
          from engagements e join contractors c on c.id = e.contractor_id join invoices i on i.engagement_id = e.id
         group by e.org_id, e.id, c.legal_name  -- e's key, so its other columns may be named
        having coalesce(sum(i.retainage_minor) filter (where i.kind = 'milestone'), 0) > 0
         order by lower(c.legal_name), lower(e.title)""")
        ).mappings()
    ]
    by_contractor: dict[tuple, list[int]] = {}
    names = {}
    for r in rows:
        key = (r.contractor_id, r.currency)
        names[r.contractor_id] = r.contractor_name
        sums = by_contractor.setdefault(key, [0, 0])
        sums[0] += r.withheld
        sums[1] += r.released
    contractors = [ContractorRetainage(cid, names[cid], cur, w, rel) for (cid, cur), (w, rel) in by_contractor.items()]
    return rows, contractors


def contractor_invoices(session: Session) -> list[InvoiceRow]:
    """A contractor's own payments (RLS narrows to its contractor), newest first."""
    return _rows(session.execute(text(f"{_ROW_SQL} order by i.issued_on desc, i.number desc limit 500")))
