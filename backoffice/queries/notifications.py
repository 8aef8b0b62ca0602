"""Read side for the bell, the admin outbox and the data room."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.errors import NotFound
from backoffice.models import Contractor, Document, EmailMessage, Engagement, Invoice, Notification
from backoffice.queries.paging import Paging

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


def inbox(session: Session, actor: Actor, *, page: int = 1, unread_only: bool = False) -> Inbox:
    mine = (Notification.org_id == actor.org_id, Notification.user_id == actor.user_id)
    where = mine + ((Notification.read_at.is_(None),) if unread_only else ())
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


# --- the outbox -----------------------------------------------------------------------------------------

OUTBOX_STATUSES = {
    "queued": "Queued",
    "kept": "Kept (not sent)",
    "retrying": "Retrying",
    "sent": "Sent",
    "failed": "Failed",
}


@dataclass(frozen=True)
class Outbox(Paging):
    rows: list[EmailMessage]
    total: int
    page: int
    counts: dict[str, int]
    events: list[str]
    per_page: int = PER_PAGE


def outbox(session: Session, actor: Actor, *, status: str = "", event: str = "", page: int = 1) -> Outbox:
    where = [EmailMessage.org_id == actor.org_id]
    if status in OUTBOX_STATUSES:
        where.append(EmailMessage.status == status)
    if event:
        where.append(EmailMessage.event == event)
    total = session.execute(select(func.count()).select_from(EmailMessage).where(*where)).scalar_one()
    rows = list(
        session.execute(
            select(EmailMessage)
            .where(*where)
            .order_by(EmailMessage.created_at.desc(), EmailMessage.id)
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        ).scalars()
    )
    counts = dict(
        session.execute(
            select(EmailMessage.status, func.count())
            .where(EmailMessage.org_id == actor.org_id)
            .group_by(EmailMessage.status)
        ).all()
    )
    events = list(
        session.execute(
            select(EmailMessage.event)
            .where(EmailMessage.org_id == actor.org_id)
            .distinct()
            .order_by(EmailMessage.event)
        ).scalars()
    )
    return Outbox(rows, total, page, counts, events)


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
    title: str
    filename: str
    size_bytes: int
    sha256: str
    transaction_id: str
    issued_at: datetime
    invoice_id: uuid.UUID
    invoice_number: str
    invoice_status: str
    contractor_name: str
    engagement_id: uuid.UUID
    engagement_title: str


@dataclass(frozen=True)
class DataRoom(Paging):
    rows: list[DocumentRow]
    total: int
    page: int
    contractors: list[tuple[uuid.UUID, str]]
    engagements: list[tuple[uuid.UUID, str]]
    per_page: int = PER_PAGE


def data_room(session: Session, filters: DocumentFilters, *, page: int = 1) -> DataRoom:
    where = []
    if filters.contractor_id:
        where.append(Document.contractor_id == filters.contractor_id)
    if filters.engagement_id:
        where.append(Document.engagement_id == filters.engagement_id)
    if filters.search:
        term = filters.search
        where.append(
            Invoice.invoice_number.icontains(term, autoescape=True)
            | Document.title.icontains(term, autoescape=True)
            | Document.transaction_id.icontains(term, autoescape=True)
        )
    if filters.issued_from:
        where.append(Document.issued_at >= filters.issued_from)
    if filters.issued_to:
        where.append(Document.issued_at < filters.issued_to + timedelta(days=1))
    base = select(Document.id).join(Invoice, Invoice.id == Document.invoice_id).where(*where)
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        select(
            Document.id,
            Document.title,
            Document.filename,
            Document.size_bytes,
            Document.sha256,
            Document.transaction_id,
            Document.issued_at,
            Document.invoice_id,
            Invoice.invoice_number,
            Invoice.status.label("invoice_status"),
            Contractor.legal_name.label("contractor_name"),
            Document.engagement_id,
            Engagement.title.label("engagement_title"),
        )
        .join(Invoice, Invoice.id == Document.invoice_id)
        .join(Contractor, Contractor.id == Document.contractor_id)
        .join(Engagement, Engagement.id == Document.engagement_id)
        .where(*where)
        .order_by(Document.issued_at.desc(), Document.id)
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    contractors = [
        tuple(r)
        for r in session.execute(
            select(Contractor.id, Contractor.legal_name)
            .where(Contractor.id.in_(select(Document.contractor_id).distinct()))
            .order_by(Contractor.legal_name)
        ).all()
    ]
    engagements = [
        tuple(r)
        for r in session.execute(
            select(Engagement.id, Engagement.title)
            .where(Engagement.id.in_(select(Document.engagement_id).distinct()))
            .order_by(Engagement.title)
        ).all()
    ]
    return DataRoom([DocumentRow(**r._mapping) for r in rows], total, page, contractors, engagements)


def receipt_of(session: Session, invoice_id: uuid.UUID) -> Document | None:
    """The invoice's receipt, if issued (finance and admins: RLS hides documents from everyone else)."""
    return session.execute(
        select(Document).where(Document.invoice_id == invoice_id, Document.kind == "receipt")
    ).scalar_one_or_none()
