"""Read side of money: the payment queue, one invoice, AP batches, the retainage report, a contractor's
payments. RLS scopes every query (to the organization, and to the contractor for a contractor's user;
batches and the ledger return nothing to anyone but finance and admins)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.domain.invoices import InvoiceKind, InvoiceStatus, RetainageState, status_label
from backoffice.queries.paging import WALK_PAGE, Cursor, Keyset, KeysetPage

PER_PAGE = 50
QUEUE_STATUSES = {
    "open": ("approved", "exported", "on_hold"),
    # What stands between these and payment (issue 18): approval steps left, a hold, a rail's refusal, a missing
    # tax form. BLOCKED below narrows the statuses to those the controls stop.
    "blocked": ("pending_approval", "approved", "exported", "on_hold"),
    "pending_approval": ("pending_approval",),
    "approved": ("approved",),
    "exported": ("exported",),
    "on_hold": ("on_hold",),
    "paid": ("paid",),
    "all": ("pending_approval", "approved", "exported", "paid", "void", "on_hold"),
}
# An invoice the payment controls stop: awaiting approval, on hold (a rail's or a person's), of a held contractor, or
# of a contractor whose required tax form is missing. Found from the few rows that can stop one (waiting steps, live
# holds, refused or reversed payout attempts; each by its own index), then checked exactly: asking every invoice of
# the queue's statuses would walk a large organization's 100,000 (no index covers invoices.status, so that its moves
# stay HOT: migration 0004).
# The organization's contractors whose missing tax form stops their payments (sql/tax.sql), once per statement.
_UNTAXED = "array(select t.contractor_id from tax_form_problems(null) t where t.required and t.problem is not null)"
BLOCKED = f"""(i.id in (select a.invoice_id from invoice_approvals a where a.status = 'waiting'
                union all select h.invoice_id from holds h where h.released_at is null and h.invoice_id is not null
                union all select c.id from holds h join invoices c on c.org_id = h.org_id
                                                               and c.contractor_id = h.contractor_id
                                                               and c.status in ('approved', 'exported', 'on_hold')
                           where h.released_at is null and h.contractor_id is not null
                union all select t.invoice_id from payout_attempts t where t.status in ('refused', 'reversed')
                union all select c.id from invoices c where c.org_id = (select app_org_id()) and c.status = 'approved'
                                                      and c.contractor_id = any({_UNTAXED}))
  and (i.status in ('pending_approval', 'on_hold')
       or exists (select 1 from holds h where h.org_id = i.org_id and h.released_at is null
                   and (h.invoice_id = i.id or h.contractor_id = i.contractor_id))
       or (i.status = 'approved' and i.contractor_id = any({_UNTAXED}))))"""


@dataclass(frozen=True)
class InvoiceRow:
    id: uuid.UUID
    number: int  # the organization's sequence (invoice_number is its printed form)
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
    # The tasks a completion or final invoice bills, in order (None for the other kinds): what it is for.
    task_titles: list[str] | None = None

    @property
    def status_label(self) -> str:
        return status_label(self.status, in_batch=self.batch_id is not None)


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    count: int
    net_minor: int
    overdue: int


@dataclass(frozen=True)
class QueueFilters:
    status: str = "open"
    due_before: date | None = None  # due on or before
    due_from: date | None = None  # due on or after: with due_before, a home page's bucket of due dates
    currency: str | None = None
    contractor_id: uuid.UUID | None = None
    engagement_id: uuid.UUID | None = None
    sort: str = "due"  # "due" soonest first, "-due" latest first
    cursor: Cursor | None = None  # where the page starts (keyset paging); None: the first page

    @property
    def statuses(self) -> list[str]:
        return list(QUEUE_STATUSES.get(self.status, QUEUE_STATUSES["open"]))

    @property
    def keyset(self) -> Keyset:
        return queue_keyset(self.sort)

    def where(self) -> tuple[str, dict]:
        clauses, params = ["i.status = any(:statuses)"], {"statuses": self.statuses}
        if self.status == "blocked":
            clauses.append(BLOCKED)
        if self.due_before:
            clauses.append("i.due_date <= :due_before")
            params["due_before"] = self.due_before
        if self.due_from:
            clauses.append("i.due_date >= :due_from")
            params["due_from"] = self.due_from
        for name in ("currency", "contractor_id", "engagement_id"):
            if getattr(self, name):
                clauses.append(f"i.{name} = :{name}")
                params[name] = getattr(self, name)
        return " and ".join(clauses), params


def queue_keyset(sort: str) -> Keyset:
    """The queue's order: by due date, then invoice number (unique), soonest first or latest first; the
    (org_id, due_date, number) index walks it."""
    return Keyset(("i.due_date", "i.number"), (date, int), descending=sort == "-due")


@dataclass(frozen=True)
class QueuePage(KeysetPage):
    total: int = 0
    totals: list[CurrencyTotal] = field(default_factory=list)


_ROW_COLUMNS = """
           i.id, i.number, i.invoice_number, i.kind, i.status, i.currency, i.gross_minor, i.retainage_minor,
           i.net_minor, i.fee_minor, i.total_minor, i.issued_on, i.due_date, i.paid_at,
           i.status in ('approved', 'exported') and i.due_date < current_date as overdue,
           i.contractor_id, c.legal_name as contractor_name, i.engagement_id, e.title as engagement_title,
           i.milestone_id, m.title as milestone_title, i.batch_id, b.number as batch_number, i.description,
           case when i.kind in ('completion', 'final') then array(
             select tm.title from invoice_tasks t join milestones tm on tm.org_id = t.org_id and tm.id = t.milestone_id
              where t.org_id = i.org_id and t.invoice_id = i.id order by tm.seq) end as task_titles
"""
_ROW_JOINS = """
      join contractors c on c.id = i.contractor_id
      join engagements e on e.id = i.engagement_id
      left join milestones m on m.id = i.milestone_id
      left join ap_export_batches b on b.id = i.batch_id
"""
_ROW_SQL = f"select {_ROW_COLUMNS} from invoices i {_ROW_JOINS}"


def _row(r) -> InvoiceRow:
    return InvoiceRow(**{**r, "kind": InvoiceKind(r["kind"]), "status": InvoiceStatus(r["status"])})


def _rows(result) -> list[InvoiceRow]:
    return [_row(r) for r in result.mappings()]


def _queue_totals(session: Session, filters: QueueFilters) -> list[CurrencyTotal]:
    """Count, net and overdue count per currency of everything the filters match. Without a contractor or
    an engagement, from the derived invoice_totals (a row per status, currency and due date, whatever the
    organization's size); with one, from that party's own invoices."""
    if filters.contractor_id or filters.engagement_id or filters.status == "blocked":
        where, params = filters.where()
        source = f"select i.currency, i.status, i.due_date, 1 as invoices, i.net_minor from invoices i where {where}"
    else:
        clauses, params = ["t.status = any(:statuses)", "t.invoices <> 0"], {"statuses": filters.statuses}
        if filters.due_before:
            clauses.append("t.due_date <= :due_before")
            params["due_before"] = filters.due_before
        if filters.due_from:
            clauses.append("t.due_date >= :due_from")
            params["due_from"] = filters.due_from
        if filters.currency:
            clauses.append("t.currency = :currency")
            params["currency"] = filters.currency
        source = (
            "select t.currency, t.status, t.due_date, t.invoices, t.net_minor"
            f" from invoice_totals t where {' and '.join(clauses)}"
        )
    return [
        CurrencyTotal(**r)
        for r in session.execute(
            text(
                "select s.currency, sum(s.invoices)::bigint as count,"
                "       coalesce(sum(s.net_minor), 0)::bigint as net_minor,"
                "       coalesce(sum(s.invoices) filter (where s.status in ('approved', 'exported')"
                "                                      and s.due_date < current_date), 0)::bigint as overdue"
                f"  from ({source}) s group by s.currency order by s.currency"
            ),
            params,
        ).mappings()
    ]


def payment_queue(
    session: Session,
    filters: QueueFilters,
    per_page: int = PER_PAGE,
    *,
    org_id: uuid.UUID | None = None,
    with_totals: bool = True,
) -> QueuePage:
    """A page of the invoices matching the filters, soonest due first (or latest), with the count, net
    total and overdue count per currency of everything they match (unless ``with_totals`` is False: a download
    walking every page needs the rows only). The page is picked first, from invoices alone over the index its
    order walks; the names are joined to those 50 rows only."""
    totals = _queue_totals(session, filters) if with_totals else []
    where, params = filters.where()
    if org_id:  # RLS scopes it anyway; named, the planner knows the organization's size (see due_sql)
        where, params = f"{where} and i.org_id = :org_id", params | {"org_id": org_id}
    condition, order, key_params = filters.keyset.clause(filters.cursor)
    fetched = _rows(
        session.execute(
            text(
                f"with page as materialized (select i.* from invoices i where {where} and {condition}"
                f" order by {order} limit :limit)"
                f" select {_ROW_COLUMNS} from page i {_ROW_JOINS} order by {order}"
            ),
            params | key_params | {"limit": per_page + 1},
        )
    )
    page = KeysetPage.build(fetched, filters.cursor, per_page, key=lambda r: (r.due_date, r.number))
    return QueuePage(
        page.rows, page.first, page.next_cursor, page.previous_cursor, sum(t.count for t in totals), totals
    )


@dataclass(frozen=True)
class Option:
    id: str
    name: str


def queue_options(session: Session, engagement_id: uuid.UUID | None = None) -> dict:
    """What the queue's filters offer: the currencies that have invoices, the contractors, and the title of
    the engagement filtered on, if any. (No list of every engagement: an organization may have 10,000; an
    engagement's page links to its own payments instead.)"""
    engagement = (
        session.execute(text("select title from engagements where id = :id"), {"id": engagement_id}).scalar()
        if engagement_id
        else None
    )
    return {
        "currencies": [
            Option(c, c)
            for c in session.execute(
                text("select distinct currency from invoice_totals where invoices <> 0 order by 1")
            ).scalars()
        ],
        # Every contractor: asking each whether it has an invoice cost 3 ms at 500 contractors.
        "contractors": [
            Option(str(r.id), r.legal_name)
            for r in session.execute(
                text("select c.id, c.legal_name from contractors c order by lower(c.legal_name), c.id")
            )
        ],
        "engagement": engagement,
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
    reversed_at: datetime | None = None  # a payment rail took it back: it no longer stands
    reversal_reference: str | None = None


@dataclass(frozen=True)
class AttemptView:
    """One call to a payment rail for the invoice (payout_attempts): who sent it, what came of it."""

    status: str  # pending, succeeded, refused, reversed
    requested_at: datetime
    requested_by_name: str | None
    automatic: bool
    finished_at: datetime | None
    transfer_id: str | None
    failure_words: str | None


@dataclass(frozen=True)
class BilledTask:
    """A task a completion or final invoice bills (invoice_tasks), at the amount it was billed."""

    milestone_id: uuid.UUID
    seq: int
    title: str
    amount_minor: int


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
    payment: PaymentView | None  # the payment that stands
    ledger: list[LedgerLine] = field(default_factory=list)
    reversed_payments: list[PaymentView] = field(default_factory=list)
    attempts: list[AttemptView] = field(default_factory=list)  # newest first
    raised_by_name: str | None = None  # a completion invoice: the contractor's user who raised it
    tasks: list[BilledTask] = field(default_factory=list)  # a completion or final invoice's tasks, in order

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    @property
    def tasks_total(self) -> int:
        return sum(t.amount_minor for t in self.tasks)

    @property
    def advance_included(self) -> int:
        """What a final payment pays beyond its tasks: an advance whose authorization was voided, paid at the end."""
        return self.row.gross_minor - self.tasks_total if self.row.kind == InvoiceKind.FINAL else 0

    @property
    def hold_reason(self) -> str | None:
        """Why the invoice is on hold, from what the rail said last."""
        if self.row.status.value != "on_hold":
            return None
        last = self.attempts[0] if self.attempts else None
        if last is not None and last.status == "refused":
            return f"Stripe refused the transfer: {last.failure_words}"
        if last is not None and last.status == "reversed":
            return "Stripe reversed the transfer that paid it; the payment no longer stands."
        return "A hold applies."


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
               (select count(*) from evidence_files f where f.submission_id = rv.submission_id) as evidence_count,
               rb.name as raised_by_name
          from invoices i join engagements e on e.id = i.engagement_id
          left join users u on u.id = i.authorized_by
          left join users rb on rb.id = i.raised_by
          left join reviews rv on rv.id = i.review_id
          left join submissions s on s.id = rv.submission_id
         where i.id = :id"""),
            {"id": invoice_id},
        )
        .mappings()
        .one()
    )
    paid = [
        PaymentView(**p)
        for p in session.execute(
            text("""
        select p.paid_at, p.reference, p.method, p.source, p.amount_minor, u.name as recorded_by_name, p.recorded_at,
               b.number as batch_number, p.reversed_at, p.reversal_reference
          from payments p left join users u on u.id = p.recorded_by left join ap_export_batches b on b.id = p.batch_id
         where p.invoice_id = :id
         order by p.recorded_at"""),
            {"id": invoice_id},
        ).mappings()
    ]
    attempts = [
        AttemptView(**a)
        for a in session.execute(
            text("""
        select a.status, a.requested_at, u.name as requested_by_name, a.automatic, a.finished_at, a.transfer_id,
               a.failure_words
          from payout_attempts a left join users u on u.id = a.requested_by
         where a.invoice_id = :id
         order by a.requested_at desc"""),
            {"id": invoice_id},
        ).mappings()
    ]
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
    tasks = (
        [
            BilledTask(**t)
            for t in session.execute(
                text("""
        select t.milestone_id, m.seq, m.title, t.amount_minor
          from invoice_tasks t join milestones m on m.org_id = t.org_id and m.id = t.milestone_id
         where t.invoice_id = :id
         order by m.seq"""),
                {"id": invoice_id},
            ).mappings()
        ]
        if rows[0].kind in (InvoiceKind.COMPLETION, InvoiceKind.FINAL)
        else []
    )
    standing = next((p for p in paid if p.reversed_at is None), None)
    return InvoiceDetail(
        row=rows[0],
        **r,
        payment=standing,
        ledger=ledger,
        reversed_payments=[p for p in paid if p.reversed_at is not None],
        attempts=attempts,
        tasks=tasks,
    )


def engagement_invoices(session: Session, engagement_id: uuid.UUID) -> list[InvoiceRow]:
    return _rows(
        session.execute(text(f"{_ROW_SQL} where i.engagement_id = :id order by i.number"), {"id": engagement_id})
    )


def engagement_retainage(session: Session, engagement_id: uuid.UUID) -> RetainageState:
    r = session.execute(
        text(
            "select coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'), 0) as withheld,"
            "       coalesce(sum(gross_minor) filter (where kind = 'retainage_release'), 0) as released"
            "  from invoices where engagement_id = :id and voided_at is null"
        ),
        {"id": engagement_id},
    ).one()
    return RetainageState(int(r.withheld), int(r.released))


@dataclass(frozen=True)
class BatchRow:
    id: uuid.UUID
    org_id: uuid.UUID
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
    select b.id, b.org_id, b.number, b.currency, b.preset, b.row_count, b.total_minor, b.sha256, b.size_bytes, b.status,
           b.created_at, u.name as created_by_name, b.voided_at, v.name as voided_by_name, b.void_reason,
           coalesce(p.invoices, 0) as paid
      from ap_export_batches b left join users u on u.id = b.created_by left join users v on v.id = b.voided_by
      left join ap_batch_paid p on p.org_id = b.org_id and p.batch_id = b.id  -- derived (revision 0014)
"""


def batch_list(session: Session, page: int = 1, per_page: int = PER_PAGE) -> tuple[list[BatchRow], int]:
    total = session.execute(text("select count(*) from ap_export_batches")).scalar_one()
    return batch_list_rows(session, page, per_page), total


def batch_list_rows(session: Session, page: int, per_page: int) -> list[BatchRow]:
    rows = session.execute(
        text(f"{_BATCH_SQL} order by b.number desc limit :limit offset :offset"),
        {"limit": per_page, "offset": (max(1, page) - 1) * per_page},
    ).mappings()
    return [BatchRow(**r) for r in rows]


def every_batch(session: Session) -> Iterator[BatchRow]:
    """Every batch, in the list's order (newest first), a thousand at a time (the download). One batch per
    export: a short list even at a large customer, so its pages by offset, as the page's, are cheap."""
    page = 1
    while rows := batch_list_rows(session, page, WALK_PAGE):
        yield from rows
        page += 1


def batch_unpaid_minor(session: Session, batch_id: uuid.UUID) -> int:
    """The net of a batch's invoices not paid yet: what recording its payment run pays (its question names it)."""
    return session.execute(
        text("select coalesce(sum(net_minor), 0)::bigint from invoices where batch_id = :id and status = 'exported'"),
        {"id": batch_id},
    ).scalar_one()


# A batch's invoices in the order its file lists them: their position in the batch's invoice_ids (kept in
# invoice-number order, ap_export_batches_complete checks), so a page is a slice of that list.
BATCH_KEYSET = Keyset(("x.position",), (int,))


def batch_detail(
    session: Session, batch_id: uuid.UUID, cursor: Cursor | None = None
) -> tuple[BatchRow, KeysetPage] | None:
    """The batch and a page of the invoices it holds, in its file's order. A voided batch keeps the list of
    what it held; its invoices are back in the queue."""
    r = session.execute(text(f"{_BATCH_SQL} where b.id = :id"), {"id": batch_id}).mappings().first()
    if r is None:
        return None
    batch = BatchRow(**r)
    condition, order, key_params = BATCH_KEYSET.clause(cursor)
    rows = session.execute(
        text(
            f"with held as materialized (select x.id, x.position from ap_export_batches b,"
            f"   unnest(b.invoice_ids::uuid[]) with ordinality x(id, position)"
            f"  where b.id = :id and b.org_id = :org and {condition} order by {order} limit :n)"
            f" select x.position, {_ROW_COLUMNS}"
            f" from held x join invoices i on i.id = x.id and i.org_id = :org {_ROW_JOINS}"
            f" order by {order}"
        ),
        {"id": batch_id, "org": r["org_id"], "n": PER_PAGE + 1} | key_params,
    ).mappings()
    fetched = [(row["position"], _row({k: v for k, v in row.items() if k != "position"})) for row in rows]
    page = KeysetPage.build(fetched, cursor, PER_PAGE, key=lambda pair: (pair[0],))
    return batch, KeysetPage([inv for _, inv in page.rows], page.first, page.next_cursor, page.previous_cursor)


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


# The report's engagements: the most retainage held first; the (org_id, held desc, engagement_id) index of
# retainage_totals walks it (revision 0014).
RETAINAGE_KEYSET = Keyset(
    ("(t.withheld_minor - t.released_minor)", "t.engagement_id"), (int, uuid.UUID), descending=True
)


CONTRACTORS_SHOWN = 50


def retainage_by_contractor(
    session: Session, limit: int | None = CONTRACTORS_SHOWN, *, contractor_id: uuid.UUID | None = None
) -> list[ContractorRetainage]:
    """Retainage withheld, released and held per contractor and currency, the most held first (the first
    ``limit``), from the derived per-contractor totals and their index (RLS narrows them to its own
    contractor for a contractor's user; ``contractor_id`` names one outright)."""
    narrowed = "t.contractor_id = :contractor_id" if contractor_id else "true"
    return [
        ContractorRetainage(**r)
        for r in session.execute(
            text(f"""
        select s.contractor_id, c.legal_name as contractor_name, s.currency, s.withheld_minor as withheld,
               s.released_minor as released
          from (select t.* from contractor_retainage_totals t where t.withheld_minor > 0 and {narrowed}
                 order by t.withheld_minor - t.released_minor desc, t.contractor_id
                 {"limit :limit" if limit else ""}) s
          join contractors c on c.id = s.contractor_id and c.org_id = s.org_id
         order by s.withheld_minor - s.released_minor desc, s.contractor_id"""),
            {"limit": limit, "contractor_id": contractor_id},
        ).mappings()
    ]


def retainage_report(
    session: Session,
    *,
    contractor_id: uuid.UUID | None = None,
    cursor: Cursor | None = None,
    per_page: int = PER_PAGE,
) -> KeysetPage:
    """A page of engagements that withheld retainage, the most held first (of one contractor, if given):
    withheld, released and held, and the release if there is one."""
    condition, order, key_params = RETAINAGE_KEYSET.clause(cursor)
    narrowed = "t.contractor_id = :contractor_id" if contractor_id else "true"
    rows = [
        RetainageRow(**r)
        for r in session.execute(
            text(f"""
        with page as materialized (
          select t.* from retainage_totals t
           where t.withheld_minor > 0 and {narrowed} and {condition}
           order by {order} limit :limit)
        select t.engagement_id, e.title as engagement_title, e.status as engagement_status, t.contractor_id,
               c.legal_name as contractor_name, e.owner_user_id, t.currency, t.withheld_minor as withheld,
               t.released_minor as released, r.id as release_id, r.invoice_number as release_number,
               r.status as release_status
          from page t
          join engagements e on e.id = t.engagement_id and e.org_id = t.org_id
          join contractors c on c.id = t.contractor_id and c.org_id = t.org_id
          left join invoices r on r.engagement_id = t.engagement_id and r.org_id = t.org_id
                              and r.kind = 'retainage_release' and r.voided_at is null
         order by {order}"""),
            {"contractor_id": contractor_id, "limit": per_page + 1} | key_params,
        ).mappings()
    ]
    return KeysetPage.build(rows, cursor, per_page, key=lambda r: (r.held, r.engagement_id))


# A contractor's payments, newest first: the (org_id, contractor_id, issued_on desc) index walks it.
MINE_KEYSET = Keyset(("i.issued_on", "i.number"), (date, int), descending=True)


def contractor_invoices(
    session: Session, *, org_id, contractor_id, cursor: Cursor | None = None, per_page: int = 50
) -> KeysetPage:
    """A page of a contractor's own payments, newest first. The organization and the contractor are named
    outright beside RLS (which narrows to them anyway) so the page is read from the index, not picked from
    every invoice of the organization: a contractor's page costs the same at 240 invoices as at 5."""
    condition, order, key_params = MINE_KEYSET.clause(cursor)
    fetched = _rows(
        session.execute(
            text(
                f"{_ROW_SQL} where i.org_id = :org_id and i.contractor_id = :contractor_id and {condition}"
                f" order by {order} limit :limit"
            ),
            {"org_id": org_id, "contractor_id": contractor_id, "limit": per_page + 1} | key_params,
        )
    )
    return KeysetPage.build(fetched, cursor, per_page, key=lambda r: (r.issued_on, r.number))
