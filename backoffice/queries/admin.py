"""Admin pages: members with their invite status, contractors, the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backoffice.models import AuditEvent, Contractor, Membership
from backoffice.queries.paging import Cursor, Keyset, KeysetPage


@dataclass(frozen=True)
class MemberRow:
    membership_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    email: str
    role: str
    contractor_id: uuid.UUID | None
    contractor_name: str | None
    pending: bool
    last_login_at: datetime | None


_MEMBERS_SQL = """
    with listed as (
      select m.id as membership_id, m.user_id, coalesce(u.name, inv.name, '') as name,
             coalesce(u.email, inv.email, '') as email, m.role, m.contractor_id, c.legal_name as contractor_name,
             m.accepted_at is null as pending, u.last_login_at
        from memberships m
        left join users u on u.id = m.user_id
        left join contractors c on c.id = m.contractor_id and c.org_id = m.org_id
        left join lateral (select i.email, i.name from invites i where i.org_id = m.org_id and i.user_id = m.user_id
                            order by i.created_at desc limit 1) inv on true
       where {where})
    select * from listed m where {condition} order by {order} limit :n
"""
MEMBERS_KEYSET = Keyset(("lower(m.name)", "lower(m.email)", "m.membership_id"), (str, str, uuid.UUID))


def members(
    session: Session,
    membership_id: uuid.UUID | None = None,
    contractor_id: uuid.UUID | None = None,
    cursor: Cursor | None = None,
    limit: int | None = None,
) -> list[MemberRow]:
    """Everyone with a membership, accepted or invited, by name (or the one ``membership_id`` names, or a
    contractor's users; from ``cursor`` on, ``limit`` of them). An invited person's account stays invisible
    (RLS) until they accept, so they are shown as the admin typed them on the invitation."""
    clauses, params = ["true"], {"n": limit}
    if membership_id is not None:
        clauses.append("m.id = :membership_id")
        params["membership_id"] = membership_id
    if contractor_id is not None:
        clauses.append("m.contractor_id = :contractor_id")
        params["contractor_id"] = contractor_id
    condition, order, key_params = MEMBERS_KEYSET.clause(cursor)
    sql = _MEMBERS_SQL.format(where=" and ".join(clauses), condition=condition, order=order)
    return [MemberRow(**r) for r in session.execute(text(sql), params | key_params).mappings()]


def members_page(session: Session, cursor: Cursor | None = None) -> KeysetPage:
    """A page of the members table, fifty at a time: an organization may have hundreds of members."""
    rows = members(session, cursor=cursor, limit=PER_PAGE + 1)
    return KeysetPage.build(rows, cursor, PER_PAGE, key=lambda r: (r.name.lower(), r.email.lower(), r.membership_id))


def member(session: Session, membership_id: uuid.UUID | None) -> MemberRow | None:
    found = members(session, membership_id) if membership_id else []
    return found[0] if found else None


@dataclass(frozen=True)
class ContractorRow:
    id: uuid.UUID
    legal_name: str
    email: str
    ap_vendor_id: str | None
    created_at: datetime


CONTRACTORS_KEYSET = Keyset(("lower(c.legal_name)", "c.id"), (str, uuid.UUID))
PER_PAGE = 50


def contractors(session: Session, cursor: Cursor | None = None) -> KeysetPage:
    """A page of the organization's contractors by name (the columns the list shows, nothing decrypted)."""
    condition, order, key_params = CONTRACTORS_KEYSET.clause(cursor)
    rows = [
        ContractorRow(**r)
        for r in session.execute(
            text(
                "select c.id, c.legal_name, c.email, c.ap_vendor_id, c.created_at from contractors c"
                f" where {condition} order by {order} limit :n"
            ),
            key_params | {"n": PER_PAGE + 1},
        ).mappings()
    ]
    return KeysetPage.build(rows, cursor, PER_PAGE, key=lambda r: (r.legal_name.lower(), r.id))


def contractor_members(session: Session, contractor_id: uuid.UUID) -> list[MemberRow]:
    return members(session, contractor_id=contractor_id)


@dataclass(frozen=True)
class Overview:
    members: int
    contractors: int


def org_overview(session: Session) -> Overview:
    n_members = session.execute(
        select(func.count()).select_from(Membership).where(Membership.accepted_at.is_not(None))
    ).scalar_one()
    n_contractors = session.execute(select(func.count()).select_from(Contractor)).scalar_one()
    return Overview(n_members, n_contractors)


PAGE_SIZE = 50


def _audit_trail(before_seq: int | None = None):
    """The trail in the page's order, newest first: one statement for the page and the download."""
    q = select(AuditEvent).order_by(AuditEvent.seq.desc())
    return q if before_seq is None else q.where(AuditEvent.seq < before_seq)


def audit_page(session: Session, before_seq: int | None = None, page_size: int = PAGE_SIZE) -> list[AuditEvent]:
    """Newest first, keyset-paginated by seq (stable while new events arrive)."""
    return list(session.execute(_audit_trail(before_seq).limit(page_size)).scalars())


def every_audit_event(session: Session) -> Iterator[AuditEvent]:
    """The whole trail, newest first, read a thousand events at a time by the page's own keyset (the download;
    memory stays flat). A server-side cursor would not do: the request's transaction ends before a streamed
    response has been read to the end, and the cursor with it."""
    before = None
    while events := audit_page(session, before, 1000):
        yield from events
        for event in events:  # the session would otherwise keep every event read
            session.expunge(event)
        before = events[-1].seq
