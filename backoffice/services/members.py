"""Users and roles of an organization (admins): invite, change role, remove, re-send an invite."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.config import load_settings
from backoffice.db import unit_of_work
from backoffice.domain.roles import Role
from backoffice.errors import ValidationError
from backoffice.models import Contractor, Invite, Membership, User
from backoffice.services import audit, links
from backoffice.services.auth import token_hash
from backoffice.services.notification_events import Notice, Person, org_voice
from backoffice.services.notifications import render, store_message
from backoffice.services.validation import clean_email, clean_text, get_visible


@dataclass(frozen=True)
class InviteResult:
    user_id: uuid.UUID
    membership_id: uuid.UUID
    token: str  # the one-time link's token, returned once, to show the admin


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
    session: Session, actor: Actor, *, email: str, name: str, role: str, contractor_id=None, base_url: str | None = None
) -> InviteResult:
    """Invite someone to a role in this organization.

    The membership stays pending until the person opens the one-time link (stored hashed, valid 72
    hours) and sets a password, or, if the address already has an account, signs in with it. The
    answer is the same whether or not the address has an account elsewhere: nothing leaks across
    organizations, and no admin can attach an account they do not control.
    """
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        errors: dict[str, str] = {}
        email = clean_email(email, "email", errors)
        name = clean_text(name, "name", errors, label="name", required=True, max_len=200)
        r = _role(role, errors)
        cid = _contractor_for_role(session, r, contractor_id, errors)
        if errors:
            raise ValidationError(errors)
        user_id = session.execute(
            text("select invite_user_account(:email, :name)"), {"email": email, "name": name}
        ).scalar_one()
        existing = session.execute(
            select(Membership.accepted_at).where(Membership.org_id == actor.org_id, Membership.user_id == user_id)
        ).first()
        if existing:
            if existing.accepted_at is None:
                raise ValidationError(
                    {
                        "email": f"{email} is already invited. "
                        "Use “New invitation link” in the list to send a fresh link."
                    }
                )
            raise ValidationError({"email": f"{email} is already a member of this organization."})
        # Core insert naming only the granted columns: accepted_at is not the app role's to write.
        membership_id = uuid.uuid4()
        session.execute(
            insert(Membership.__table__).values(
                id=membership_id, org_id=actor.org_id, user_id=user_id, role=r.value, contractor_id=cid
            )
        )
        token = _new_invite(session, actor, user_id, email, name)
        _email_invite(session, actor, Person(user_id, email, name), r, token, base_url)
        audit.record(
            session,
            actor,
            "member.invited",
            "membership",
            membership_id,
            {"email": email, "role": r.value, "contractor_id": str(cid) if cid else None},
        )
    return InviteResult(user_id, membership_id, token)


def _new_invite(session: Session, actor: Actor, user_id: uuid.UUID, email: str, name: str) -> str:
    # Older unused links for this person stop working: only the newest one counts.
    session.execute(
        update(Invite)
        .where(Invite.org_id == actor.org_id, Invite.user_id == user_id, Invite.used_at.is_(None))
        .values(used_at=func.now())
    )
    token = secrets.token_urlsafe(32)
    # No RETURNING: expires_at comes from the database's clock (created_at + 72 hours).
    session.execute(
        insert(Invite.__table__).values(
            id=uuid.uuid4(),
            org_id=actor.org_id,
            user_id=user_id,
            email=email,
            name=name,
            token_hash=token_hash(token),
            created_by=actor.user_id,
        )
    )
    return token


_ROLE_WORDS = {
    Role.ADMIN: "an admin",
    Role.OWNER: "a project owner",
    Role.FINANCE: "a member of the finance team",
    Role.CONTRACTOR: "a contractor",
}


def _email_invite(session: Session, actor: Actor, to: Person, role: Role, token: str, base_url: str | None) -> None:
    """The invitation by email, in the caller's transaction (the link is in the outbox, which only admins read)."""
    org = org_voice(session, actor.org_id)
    notice = Notice(
        "invite",
        f"invite:{token_hash(token)[:32]}",
        (to,),
        subject=f"{actor.name or actor.label} invited you to {org.name} on backoffice",
        lead=f"{actor.name or actor.label} invited you to join {org.name} as {_ROLE_WORDS[role]}. "
        "The link works once, for 72 hours.",
        path=links.invite(token),
        action="Accept the invitation",
        in_app=False,
    )
    store_message(
        session,
        org_id=org.id,
        event="invite",
        to=to,
        email=render(notice, to, org.name, base_url or load_settings().base_url),
        key=notice.key,
        entity=("user", str(to.user_id)),
    )


def _membership(session: Session, membership_id) -> Membership:
    return get_visible(session, Membership, membership_id)


def reissue_invite(session: Session, actor: Actor, membership_id, *, base_url: str | None = None) -> str:
    """A fresh link for someone who has not accepted yet, emailed to them; earlier links stop working."""
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        m = _membership(session, membership_id)
        if m.accepted_at is not None:
            raise ValidationError({"invite": "This person has already joined; they sign in with their password."})
        last = session.execute(
            select(Invite.email, Invite.name)
            .where(Invite.org_id == m.org_id, Invite.user_id == m.user_id)
            .order_by(Invite.created_at.desc())
            .limit(1)
        ).first()
        if last is None:  # a membership written without an invitation: nothing to renew
            raise ValidationError(
                {"invite": "There is no invitation to renew. Remove this person and invite them again."}
            )
        token = _new_invite(session, actor, m.user_id, last.email, last.name)
        _email_invite(session, actor, Person(m.user_id, last.email, last.name), Role(m.role), token, base_url)
        audit.record(session, actor, "member.invite_reissued", "membership", m.id, {"email": last.email})
    return token


def _admin_count(session: Session, org_id) -> int:
    return session.execute(
        select(func.count())
        .select_from(Membership)
        .where(Membership.org_id == org_id, Membership.role == "admin", Membership.accepted_at.is_not(None))
    ).scalar_one()


def change_role(session: Session, actor: Actor, membership_id, *, role: str, contractor_id=None) -> Membership:
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        m = _membership(session, membership_id)
        errors: dict[str, str] = {}
        r = _role(role, errors)
        cid = _contractor_for_role(session, r, contractor_id, errors)
        if (
            not errors
            and m.role == "admin"
            and m.accepted_at
            and r is not Role.ADMIN
            and _admin_count(session, m.org_id) <= 1
        ):
            errors["role"] = "This is the organization's only admin. Make someone else an admin first."
        if errors:
            raise ValidationError(errors)
        before = {"role": m.role, "contractor_id": str(m.contractor_id) if m.contractor_id else None}
        m.role, m.contractor_id = r.value, cid
        session.flush()
        audit.record(
            session,
            actor,
            "member.role_changed",
            "membership",
            m.id,
            {"before": before, "after": {"role": r.value, "contractor_id": str(cid) if cid else None}},
        )
    return m


def remove_member(session: Session, actor: Actor, membership_id) -> None:
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        m = _membership(session, membership_id)
        if m.role == "admin" and m.accepted_at and _admin_count(session, m.org_id) <= 1:
            raise ValidationError({"member": "This is the organization's only admin and cannot be removed."})
        email = (
            session.execute(select(User.email).where(User.id == m.user_id)).scalar()
            or session.execute(
                select(Invite.email).where(Invite.org_id == m.org_id, Invite.user_id == m.user_id).limit(1)
            ).scalar()
        )
        session.execute(
            update(Invite)
            .where(Invite.org_id == m.org_id, Invite.user_id == m.user_id, Invite.used_at.is_(None))
            .values(used_at=func.now())
        )
        session.delete(m)
        session.flush()
        audit.record(session, actor, "member.removed", "membership", m.id, {"email": email, "role": m.role})
