"""Admin pages: members with their invite status, contractors, the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, true
from sqlalchemy.orm import Session

from backoffice.models import AuditEvent, Contractor, Invite, Membership, User
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


def members(
    session: Session, membership_id: uuid.UUID | None = None, contractor_id: uuid.UUID | None = None
) -> list[MemberRow]:
    """Everyone with a membership, accepted or invited (or the one ``membership_id`` names, or a
    contractor's users). An invited
    person's account stays invisible (RLS) until they accept, so they are shown as the admin typed them on
    the invitation."""
    invite = (
        select(Invite.email, Invite.name)
        .where(Invite.org_id == Membership.org_id, Invite.user_id == Membership.user_id)
        .order_by(Invite.created_at.desc())
        .limit(1)
        .lateral()
    )
    query = (
        select(Membership, User, Contractor.legal_name, invite.c.email, invite.c.name)
        .outerjoin(User, User.id == Membership.user_id)
        .outerjoin(Contractor, Contractor.id == Membership.contractor_id)
        .outerjoin(invite, true())
    )
    if membership_id is not None:
        query = query.where(Membership.id == membership_id)
    if contractor_id is not None:
        query = query.where(Membership.contractor_id == contractor_id)
    result = [
        MemberRow(
            m.id,
            m.user_id,
            u.name if u else (inv_name or ""),
            u.email if u else (inv_email or ""),
            m.role,
            m.contractor_id,
            cname,
            m.accepted_at is None,
            u.last_login_at if u else None,
        )
        for m, u, cname, inv_email, inv_name in session.execute(query).all()
    ]
    return sorted(result, key=lambda r: (r.name.lower(), r.email.lower(), str(r.membership_id)))


MEMBERS_KEYSET = Keyset(("name", "email", "membership_id"), (str, str, uuid.UUID))


def members_page(session: Session, cursor: Cursor | None = None) -> KeysetPage:
    """A page of ``members`` by name, fifty at a time (the table's rows are the page's cost: an organization
    may have hundreds of members). Paged in Python over the sorted list, by the same keys as the SQL lists."""
    rows = members(session)

    def key(r: MemberRow) -> tuple:
        return (r.name.lower(), r.email.lower(), str(r.membership_id))

    if cursor is not None:
        mark = (cursor.key[0], cursor.key[1], str(cursor.key[2]))
        rows = [r for r in reversed(rows) if key(r) < mark] if cursor.backwards else [r for r in rows if key(r) > mark]
    return KeysetPage.build(rows[: PER_PAGE + 1], cursor, PER_PAGE, key=lambda r: (*key(r)[:2], r.membership_id))


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


def audit_page(session: Session, before_seq: int | None = None, page_size: int = PAGE_SIZE) -> list[AuditEvent]:
    """Newest first, keyset-paginated by seq (stable while new events arrive)."""
    q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(page_size)
    if before_seq is not None:
        q = q.where(AuditEvent.seq < before_seq)
    return list(session.execute(q).scalars())
