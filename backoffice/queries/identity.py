"""Who the signed-in user is in which organization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import end_read, set_context
from backoffice.domain.roles import Role
from backoffice.models import User


@dataclass(frozen=True)
class MembershipChoice:
    org_id: uuid.UUID
    org_name: str
    role: Role


def memberships_of(session: Session) -> list[MembershipChoice]:
    """The current user's organizations (for the switcher), whatever org the context names."""
    rows = session.execute(text("select org_id, org_name, role from my_memberships()")).all()
    return [MembershipChoice(r.org_id, r.org_name, Role(r.role)) for r in rows]


def actor_for(session: Session, user_id: uuid.UUID, org_id: uuid.UUID | None) -> Actor | None:
    """The Actor for ``user_id`` in ``org_id`` (or in their first organization when ``org_id`` is
    None), with the session's RLS context switched to it. None if the user is inactive or has no
    such membership."""
    set_context(session, user_id=user_id, org_id=None)
    choices = memberships_of(session)
    choice = next((c for c in choices if org_id is None or c.org_id == org_id), None)
    if choice is None:
        return None
    set_context(session, user_id=user_id, org_id=choice.org_id)
    user = session.execute(select(User).where(User.id == user_id, User.is_active)).scalar_one_or_none()
    if user is None:
        return None
    contractor_id = session.execute(text("select app_contractor_id()")).scalar()
    return Actor(
        user_id=user.id,
        org_id=choice.org_id,
        role=choice.role,
        label=user.email,
        name=user.name,
        contractor_id=contractor_id,
    )


@dataclass(frozen=True)
class SignedInIdentity:
    actor: Actor | None  # None: signed in, but a member of no organization
    memberships: list[MembershipChoice]


_WHO_AM_I = text(
    """
    select u.id, u.email, u.name, m.org_id, m.org_name, m.role, m.contractor_id
      from users u
      left join my_memberships() m on true
     where u.id = app_user_id() and u.id = :user_id and u.is_active
    """
)


def load_signed_in(session: Session, user_id: uuid.UUID, org_id: uuid.UUID | None) -> SignedInIdentity | None:
    """A request's person in one statement: None unless the sign-in the session presents (``db.present_sign_in``)
    is still good (not ended by a sign-out on any device or a password reset, not expired, the account active)
    and ``user_id``'s; else their actor in ``org_id`` (their first organization when it is
    None or not theirs) and every organization they may switch to. The session's context is left acting as
    that actor from its next transaction on. Ends its read transaction."""
    set_context(session, user_id=user_id, org_id=None)
    rows = session.execute(_WHO_AM_I, {"user_id": user_id}).all()
    end_read(session)
    if not rows:
        return None
    memberships = [MembershipChoice(r.org_id, r.org_name, Role(r.role)) for r in rows if r.org_id is not None]
    chosen = next((r for r in rows if r.org_id is not None and r.org_id == org_id), None) or next(
        (r for r in rows if r.org_id is not None), None
    )
    if chosen is None:
        return SignedInIdentity(actor=None, memberships=[])
    set_context(session, user_id=user_id, org_id=chosen.org_id)  # no transaction open: applied by the next one
    actor = Actor(
        user_id=chosen.id,
        org_id=chosen.org_id,
        role=Role(chosen.role),
        label=chosen.email,
        name=chosen.name,
        contractor_id=chosen.contractor_id,
    )
    return SignedInIdentity(actor=actor, memberships=memberships)
