"""Users and roles of an organization (admins): invite, change role, remove, re-send an invite."""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.domain.roles import Role
from backoffice.errors import NotFound, ValidationError
from backoffice.models import Contractor, Invite, Membership, User
from backoffice.services import audit
from backoffice.services.auth import token_hash
from backoffice.services.validation import clean_email, clean_text

INVITE_LIFETIME = timedelta(hours=72)


@dataclass(frozen=True)
class InviteResult:
    user_id: uuid.UUID
    membership_id: uuid.UUID
    token: str | None  # the one-time set-password token; None when the person already has a password


def _role(value: str, errors: dict[str, str]) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        errors["role"] = "Choose a role: admin, project owner, finance or contractor."
        return None


def _contractor_for_role(session: Session, role: Role | None, contractor_id, errors) -> uuid.UUID | None:
    if role is not Role.CONTRACTOR:
        return None
    if not contractor_id:
        errors["contractor_id"] = "Choose which contractor this person works for."
        return None
    try:
        cid = uuid.UUID(str(contractor_id))
    except ValueError:
        errors["contractor_id"] = "Choose which contractor this person works for."
        return None
    if session.get(Contractor, cid) is None:
        errors["contractor_id"] = "That contractor does not exist in this organization."
        return None
    return cid


def invite_member(
    session: Session, actor: Actor, *, email: str, name: str, role: str, contractor_id=None
) -> InviteResult:
    """Give someone a role in this organization. A person without a password gets a one-time
    set-password link (stored hashed, valid 72 hours); the token is returned once, to show the admin."""
    actor.require(Role.ADMIN)
    errors: dict[str, str] = {}
    email = clean_email(email, "email", errors)
    name = clean_text(name, "name", errors, label="name", required=True, max_len=200)
    r = _role(role, errors)
    cid = _contractor_for_role(session, r, contractor_id, errors)
    if errors:
        raise ValidationError(errors)
    row = session.execute(
        text("select user_id, needs_password from invite_user_account(:email, :name)"), {"email": email, "name": name}
    ).one()
    existing = session.execute(
        select(Membership.id).where(Membership.org_id == actor.org_id, Membership.user_id == row.user_id)
    ).first()
    if existing:
        session.rollback()
        raise ValidationError({"email": f"{email} is already a member of this organization."})
    membership = Membership(org_id=actor.org_id, user_id=row.user_id, role=r.value, contractor_id=cid)
    session.add(membership)
    session.flush()
    token = _new_invite(session, actor, row.user_id) if row.needs_password else None
    audit.record(
        session, actor, "member.invited", "membership", membership.id,
        {"email": email, "role": r.value, "contractor_id": str(cid) if cid else None, "link_issued": token is not None},
    )
    session.commit()
    return InviteResult(row.user_id, membership.id, token)


def _new_invite(session: Session, actor: Actor, user_id: uuid.UUID) -> str:
    # Older unused links for this person stop working: only the newest one counts.
    session.execute(
        update(Invite)
        .where(Invite.org_id == actor.org_id, Invite.user_id == user_id, Invite.used_at.is_(None))
        .values(used_at=func.now())
    )
    token = secrets.token_urlsafe(32)
    session.add(
        Invite(
            org_id=actor.org_id, user_id=user_id, token_hash=token_hash(token), created_by=actor.user_id,
            expires_at=datetime.now(timezone.utc) + INVITE_LIFETIME,
        )
    )
    session.flush()
    return token


def _membership(session: Session, membership_id) -> Membership:
    try:
        mid = uuid.UUID(str(membership_id))
    except ValueError:
        raise NotFound() from None
    m = session.get(Membership, mid)
    if m is None:
        raise NotFound()
    return m


def reissue_invite(session: Session, actor: Actor, membership_id) -> str:
    """A fresh set-password link for someone who has not set a password yet."""
    actor.require(Role.ADMIN)
    m = _membership(session, membership_id)
    user = session.get(User, m.user_id)
    pending = set(session.execute(text("select * from pending_members()")).scalars())
    if m.user_id not in pending:
        session.rollback()
        raise ValidationError({"invite": f"{user.email} has already set a password."})
    may = session.execute(
        text("select may_issue_password_link(:u, :o)"), {"u": m.user_id, "o": actor.org_id}
    ).scalar_one()
    if not may:
        session.rollback()
        raise ValidationError(
            {"invite": f"{user.email} was invited by another organization first and sets a password from that invitation; they can then sign in here too."}
        )
    token = _new_invite(session, actor, m.user_id)
    audit.record(session, actor, "member.invite_reissued", "membership", m.id, {"email": user.email})
    session.commit()
    return token


def _admin_count(session: Session, org_id) -> int:
    return session.execute(
        select(func.count()).select_from(Membership).where(Membership.org_id == org_id, Membership.role == "admin")
    ).scalar_one()


def change_role(session: Session, actor: Actor, membership_id, *, role: str, contractor_id=None) -> Membership:
    actor.require(Role.ADMIN)
    m = _membership(session, membership_id)
    errors: dict[str, str] = {}
    r = _role(role, errors)
    cid = _contractor_for_role(session, r, contractor_id, errors)
    if not errors and m.role == "admin" and r is not Role.ADMIN and _admin_count(session, m.org_id) <= 1:
        errors["role"] = "This is the organization's only admin. Make someone else an admin first."
    if errors:
        session.rollback()
        raise ValidationError(errors)
    before = {"role": m.role, "contractor_id": str(m.contractor_id) if m.contractor_id else None}
    m.role, m.contractor_id = r.value, cid
    session.flush()
    audit.record(
        session, actor, "member.role_changed", "membership", m.id,
        {"before": before, "after": {"role": r.value, "contractor_id": str(cid) if cid else None}},
    )
    session.commit()
    return m


def remove_member(session: Session, actor: Actor, membership_id) -> None:
    actor.require(Role.ADMIN)
    m = _membership(session, membership_id)
    if m.role == "admin" and _admin_count(session, m.org_id) <= 1:
        session.rollback()
        raise ValidationError({"member": "This is the organization's only admin and cannot be removed."})
    user = session.get(User, m.user_id)
    session.execute(update(Invite).where(Invite.org_id == m.org_id, Invite.user_id == m.user_id, Invite.used_at.is_(None)).values(used_at=func.now()))
    session.delete(m)
    session.flush()
    audit.record(session, actor, "member.removed", "membership", m.id, {"email": user.email if user else None, "role": m.role})
    session.commit()
