"""Read side for the bell, the admin outbox and the data room."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.errors import NotFound
from backoffice.models import Document, EmailMessage, Notification
from backoffice.queries.paging import Cursor, Keyset, KeysetPage, Paging

PER_PAGE = 50


def job_org_ids(session: Session) -> list[uuid.UUID]:
    """Every organization's id (and nothing else about them): what a periodic job walks through."""
    return list(session.execute(text("select job_org_ids()")).scalars())


# --- the bell -------------------------------------------------------------------------------------------


def unread_count(session: Session, actor: Actor) -> int:
    return session.execute(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.org_id == actor.org_id, Notification.user_id == actor.user_id, Notification.read_at.is_(None)
        )
    ).scalar_one()


@dataclass(frozen=True)
class Inbox(Paging):
    rows: list[Notification]
    total: int
    unread: int
    page: int
    per_page: int = PER_PAGE


def _inbox_where(actor: Actor, unread_only: bool) -> tuple:
    mine = (Notification.org_id == actor.org_id, Notification.user_id == actor.user_id)
    return mine + ((Notification.read_at.is_(None),) if unread_only else ())


def inbox(session: Session, actor: Actor, *, page: int = 1, unread_only: bool = False) -> Inbox:
    where = _inbox_where(actor, unread_only)
    total = session.execute(select(func.count()).select_from(Notification).where(*where)).scalar_one()
    rows = list(
        session.execute(
            select(Notification)
            .where(*where)
            .order_by(Notification.created_at.desc(), Notification.id)
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        ).scalars()
    )
    return Inbox(rows, total, unread_count(session, actor), page)


def every_notification(session: Session, actor: Actor, *, unread_only: bool = False) -> Iterator[Notification]:
    """The person's notifications in the inbox's order and filter, a thousand at a time (the download). By
    offset, as the inbox pages: one person's notifications are a short list (a digest keeps it so)."""
    query = (
        select(Notification)
        .where(*_inbox_where(actor, unread_only))
        .order_by(Notification.created_at.desc(), Notification.id)
    )
    offset = 0
    while rows := list(session.execute(query.limit(1000).offset(offset)).scalars()):
        yield from rows
        for row in rows:
            session.expunge(row)
        offset += len(rows)


# --- the outbox -----------------------------------------------------------------------------------------

OUTBOX_STATUSES = {
    "queued": "Queued",
    "kept": "Kept (not sent)",
    "retrying": "Retrying",
    "sent": "Sent",
    "failed": "Failed",
    # A person who chose one email a day (their preferences): the message waits for, then goes in, their digest.
    "held": "Held for the daily digest",
    "digested": "Sent in the daily digest",
}


COUNT_CAP = 1000  # a status's count stops here: "1000+" says what a larger figure would


@dataclass(frozen=True)
class Outbox(KeysetPage):
    counts: dict[str, int] = field(default_factory=dict)  # per status, at most COUNT_CAP + 1
    events: list[str] = field(default_factory=list)
    per_page: int = PER_PAGE


OUTBOX_KEYSET = Keyset(("m.created_at", "m.id"), (datetime, uuid.UUID), descending=True)


def outbox(
    session: Session, actor: Actor, *, status: str = "", event: str = "", cursor: Cursor | None = None
) -> Outbox:
    """A page of the organization's messages, newest first, with how many there are of each status (up to
    COUNT_CAP: an outbox may hold hundreds of thousands) and the events they were written for. Each part walks
    an index of revision 0016; nothing reads every message."""
    clauses, params = ["m.org_id = :org"], {"org": actor.org_id}
    if status in OUTBOX_STATUSES:
        clauses.append("m.status = :status")
        params["status"] = status
    if event:
        clauses.append("m.event = :event")
        params["event"] = event
    condition, order, key_params = OUTBOX_KEYSET.clause(cursor)
    ids = (
        session.execute(
            text(
                f"select m.id from email_messages m where {' and '.join(clauses)} and {condition}"
                f" order by {order} limit :n"
            ),
            params | key_params | {"n": PER_PAGE + 1},
        )
        .scalars()
        .all()
    )
    by_id = (
        {m.id: m for m in session.execute(select(EmailMessage).where(EmailMessage.id.in_(ids))).scalars()}
        if ids
        else {}
    )
    page = KeysetPage.build([by_id[i] for i in ids], cursor, PER_PAGE, key=lambda m: (m.created_at, m.id))
    counted = " union all ".join(
        f"(select '{key}' as status, count(*) as n from (select 1 from email_messages m"
        f"  where m.org_id = :org and m.status = '{key}' limit {COUNT_CAP + 1}) s)"
        for key in OUTBOX_STATUSES
    )
    counts = {r.status: r.n for r in session.execute(text(counted), {"org": actor.org_id}) if r.n}
    # The distinct events by a loose index scan: one step down the (org_id, event) index per event.
    events = list(
        session.execute(
            text("""
        with recursive e(event) as (
          (select m.event from email_messages m where m.org_id = :org order by m.event limit 1)
          union all
          select (select m.event from email_messages m where m.org_id = :org and m.event > e.event
                   order by m.event limit 1)
            from e where e.event is not null)
        select event from e where event is not null"""),
            {"org": actor.org_id},
        ).scalars()
    )
    return Outbox(page.rows, page.first, page.next_cursor, page.previous_cursor, counts, events)


def outbox_message(session: Session, actor: Actor, message_id) -> EmailMessage:
    """One message of the organization's outbox. An account message (a password reset: no organization)
    is in no organization's outbox, even when the admin asking is the account it was for."""
    try:
        message = session.get(EmailMessage, uuid.UUID(str(message_id)))
    except ValueError:
        raise NotFound() from None
    if message is None or message.org_id != actor.org_id:
        raise NotFound()
    return message


# --- the data room --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFilters:
    contractor_id: uuid.UUID | None = None
    engagement_id: uuid.UUID | None = None
    search: str = ""  # invoice number, title or transaction id
    issued_from: date | None = None
    issued_to: date | None = None


@dataclass(frozen=True)
class DocumentRow:
    id: uuid.UUID
    kind: str  # receipt | remittance_advice (no invoice or engagement: a payment run's, to one contractor)
    title: str
    filename: str
    size_bytes: int
    sha256: str
    transaction_id: str
    issued_at: datetime
    invoice_id: uuid.UUID | None
    invoice_number: str | None
    invoice_status: str | None
    contractor_name: str
    engagement_id: uuid.UUID | None
    engagement_title: str | None


@dataclass(frozen=True)
class DataRoom(KeysetPage):
    contractors: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    engagement: str | None = None  # the title of the engagement filtered on
    per_page: int = PER_PAGE


# Newest first; the (org_id, issued_at desc, id) index walks it (revision 0014).
DATA_ROOM_KEYSET = Keyset(("d.issued_at", "d.id"), (datetime, uuid.UUID), descending=True)


def data_room(session: Session, filters: DocumentFilters, *, cursor: Cursor | None = None) -> DataRoom:
    """A page of receipts and remittance advices, newest first, with what the filters offer. The page is picked
    first, from the documents alone over the index its order walks (the search joins each candidate's invoice
    number), and nothing counts the whole room: an organization may hold a receipt per payment for years."""
    clauses, params = [], {}
    if filters.contractor_id:
        clauses.append("d.contractor_id = :contractor_id")
        params["contractor_id"] = filters.contractor_id
    if filters.engagement_id:
        clauses.append("d.engagement_id = :engagement_id")
        params["engagement_id"] = filters.engagement_id
    if filters.search:
        clauses.append(
            "(strpos(lower(d.title), lower(:term)) > 0 or strpos(lower(d.transaction_id), lower(:term)) > 0"
            " or exists (select 1 from invoices i where i.id = d.invoice_id and i.org_id = d.org_id"
            "            and strpos(lower(i.invoice_number), lower(:term)) > 0))"
        )
        params["term"] = filters.search
    if filters.issued_from:
        clauses.append("d.issued_at >= :issued_from")
        params["issued_from"] = filters.issued_from
    if filters.issued_to:
        clauses.append("d.issued_at < :issued_to")
        params["issued_to"] = filters.issued_to + timedelta(days=1)
    condition, order, key_params = DATA_ROOM_KEYSET.clause(cursor)
    where = " and ".join([*clauses, condition])
    rows = [
        DocumentRow(**r)
        for r in session.execute(
            text(f"""
        with page as materialized (
          select d.id, d.org_id, d.kind, d.title, d.filename, d.size_bytes, d.sha256, d.transaction_id, d.issued_at,
                 d.invoice_id, d.contractor_id, d.engagement_id
            from documents d where {where} order by {order} limit :limit)
        select d.id, d.kind, d.title, d.filename, d.size_bytes, d.sha256, d.transaction_id, d.issued_at, d.invoice_id,
               i.invoice_number, i.status as invoice_status, c.legal_name as contractor_name, d.engagement_id,
               e.title as engagement_title
          from page d
          left join invoices i on i.id = d.invoice_id and i.org_id = d.org_id
          join contractors c on c.id = d.contractor_id and c.org_id = d.org_id
          left join engagements e on e.id = d.engagement_id and e.org_id = d.org_id
         order by {order}"""),
            params | key_params | {"limit": PER_PAGE + 1},
        ).mappings()
    ]
    page = KeysetPage.build(rows, cursor, PER_PAGE, key=lambda r: (r.issued_at, r.id))
    contractors = [
        tuple(r) for r in session.execute(text("select id, legal_name from contractors order by lower(legal_name), id"))
    ]
    engagement = (
        session.execute(text("select title from engagements where id = :id"), {"id": filters.engagement_id}).scalar()
        if filters.engagement_id
        else None
    )
    return DataRoom(page.rows, page.first, page.next_cursor, page.previous_cursor, contractors, engagement)


def receipt_of(session: Session, invoice_id: uuid.UUID, kind: str = "self_billed_invoice") -> Document | None:
    """The invoice's self-billed invoice (its PDF), or its document of ``kind`` (einvoice, credit_note), if issued
    (finance, admins and the invoice's contractor: RLS hides documents from everyone else)."""
    return session.execute(
        select(Document).where(Document.invoice_id == invoice_id, Document.kind == kind)
    ).scalar_one_or_none()


# --- remittance advices: a contractor's own (sql/data_room.sql), finance's too -------------------------------

ADVICES_SHOWN = 50


@dataclass(frozen=True)
class AdviceRow:
    id: uuid.UUID
    title: str
    filename: str
    size_bytes: int
    issued_at: datetime


def remittance_advices(session: Session, contractor_id: uuid.UUID, *, limit: int = ADVICES_SHOWN) -> list[AdviceRow]:
    """The contractor's newest remittance advices (at most ``limit``), over its own index."""
    rows = session.execute(
        select(Document.id, Document.title, Document.filename, Document.size_bytes, Document.issued_at)
        .where(Document.kind == "remittance_advice", Document.contractor_id == contractor_id)
        .order_by(Document.issued_at.desc(), Document.id.desc())
        .limit(limit)
    ).all()
    return [AdviceRow(*r) for r in rows]


def remittance_advice(session: Session, run_id: uuid.UUID, contractor_id: uuid.UUID) -> Document | None:
    """The run's remittance advice to the contractor, if issued and the caller may see it (sql/data_room.sql)."""
    return session.execute(
        select(Document).where(
            Document.kind == "remittance_advice", Document.run_id == run_id, Document.contractor_id == contractor_id
        )
    ).scalar_one_or_none()


def remittance_advice_of_invoice(session: Session, invoice_id: uuid.UUID) -> AdviceRow | None:
    """The remittance advice of the run that paid the invoice (its payment that stands), if issued and visible."""
    row = session.execute(
        text(
            """
            select d.id, d.title, d.filename, d.size_bytes, d.issued_at
              from payments p
              join documents d on d.org_id = p.org_id and d.run_id = p.run_id and d.contractor_id = p.contractor_id
                              and d.kind = 'remittance_advice'
             where p.invoice_id = :invoice and p.reversed_at is null
            """
        ),
        {"invoice": invoice_id},
    ).first()
    return AdviceRow(*row) if row else None


def run_paid_to(session: Session, run_id: uuid.UUID, contractor_id: uuid.UUID) -> bool:
    """Whether the payment run paid the contractor anything the caller may see (RLS: staff, or its own users)."""
    return session.execute(
        text(
            "select exists (select 1 from payments p where p.run_id = :run and p.contractor_id = :contractor"
            " and p.reversed_at is null)"
        ),
        {"run": run_id, "contractor": contractor_id},
    ).scalar_one()
