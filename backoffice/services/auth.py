"""Sign-in, the failed-login throttle, and redeeming invites.

Password hashes never reach the app role through a plain SELECT; auth_lookup() (SECURITY DEFINER)
hands back just what checking one password needs.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from backoffice.actor import Actor
from backoffice.db import end_read, set_context, unit_of_work
from backoffice.errors import DomainError, ValidationError
from backoffice.queries.identity import actor_for
from backoffice.services import audit

MIN_PASSWORD_LENGTH = 10
# Checked when the email is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LoginFailed(DomainError):
    status = 401


class LoginLocked(DomainError):
    status = 429

    def __init__(self, until: datetime):
        super().__init__("Too many failed sign-in attempts for this email. Try again after a short wait.")
        self.until = until


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # werkzeug's default: scrypt


def check_new_password(password: str, confirm: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    if password != confirm:
        raise ValidationError({"confirm": "The two passwords do not match."})


def authenticate(session: Session, email: str, password: str) -> uuid.UUID:
    """Return the user's id for a correct email and password; count failures; commit.

    Raises LoginLocked while the address is locked (checked before the password, so a locked
    account cannot be probed) and LoginFailed otherwise, with the same message for an unknown
    email and a wrong password. The throttle's limits are the server's (table login_settings, written
    at upgrade from BACKOFFICE_LOGIN_MAX_FAILURES and BACKOFFICE_LOGIN_LOCK_MINUTES).
    """
    email = (email or "").strip()
    if len(email) > 254 or _CONTROL.search(email):  # no account has such an address
        check_password_hash(_DUMMY_HASH, password or "")
        raise LoginFailed("That email and password do not match an active account.")
    with unit_of_work(session):
        row = session.execute(text("select * from auth_lookup(:email)"), {"email": email}).one()
        if row.locked_until is not None:
            raise LoginLocked(row.locked_until)
        usable = row.user_id is not None and row.is_active and row.password_hash
        ok = check_password_hash(row.password_hash if usable else _DUMMY_HASH, password or "") and bool(usable)
        if ok:
            session.execute(text("select auth_record_success(:id)"), {"id": row.user_id})
        else:
            locked_until = session.execute(text("select auth_record_failure(:email)"), {"email": email}).scalar_one()
    # Refused only once the unit of work has ended: the failure is counted (committed) either way.
    if not ok:
        if locked_until is not None:
            raise LoginLocked(locked_until)
        raise LoginFailed("That email and password do not match an active account.")
    return row.user_id


def start_session(session: Session, user_id: uuid.UUID, org_id: uuid.UUID | None = None) -> tuple[Actor | None, float]:
    """Choose the organization to act in (the requested one if a member, else the first) and audit
    the sign-in there. Returns the actor (None for a user without any membership) and the sign-in
    time by the database's clock, which sign-out compares against."""
    with unit_of_work(session):
        actor = actor_for(session, user_id, org_id) or actor_for(session, user_id, None)
        signed_in_at = float(session.execute(text("select extract(epoch from now())")).scalar_one())
        if actor is not None:
            audit.record(session, actor, "auth.signed_in", "user", actor.user_id)
    return actor, signed_in_at


def sign_out(session: Session, user_id: uuid.UUID, actor: Actor | None) -> None:
    """End every session of this user, here and on other devices (cookies signed in earlier stop working)."""
    set_context(session, user_id=user_id, org_id=actor.org_id if actor else None)
    with unit_of_work(session):
        session.execute(text("update users set sessions_revoked_at = now() where id = :id"), {"id": user_id})
        if actor is not None:
            audit.record(session, actor, "auth.signed_out", "user", user_id)


def switch_organization(session: Session, user_id: uuid.UUID, org_id: uuid.UUID) -> Actor | None:
    """The actor in ``org_id``, or None when the user is not a member there."""
    with unit_of_work(session):
        actor = actor_for(session, user_id, org_id)
        if actor is None or actor.org_id != org_id:
            return None
        audit.record(session, actor, "auth.switched_organization", "organization", org_id)
    return actor


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class InviteDetails:
    email: str
    org_name: str
    has_password: bool  # accepting asks for the existing password rather than a new one


def invite_details(session: Session, token: str) -> InviteDetails | None:
    """What a usable invitation link is for, else None (expired, used, withdrawn or made up)."""
    row = session.execute(text("select * from invite_details(:h)"), {"h": token_hash(token)}).first()
    end_read(session)
    return InviteDetails(row.email, row.org_name, row.has_password) if row else None


_LINK_GONE = "This link has expired or was already used. Ask your admin for a new one."


def _accepted(session: Session, token: str, password_hash: str | None) -> Actor:
    with unit_of_work(session):
        row = session.execute(
            text("select * from accept_invite(:h, :pw)"), {"h": token_hash(token), "pw": password_hash}
        ).first()
        actor = actor_for(session, row.user_id, row.org_id) if row else None
        if actor is None:
            raise ValidationError({"token": _LINK_GONE})
        session.execute(text("select auth_record_success(:id)"), {"id": actor.user_id})  # they are signed in from here
        audit.record(
            session, actor, "member.joined", "user", actor.user_id, {"email": actor.label, "role": actor.role.value}
        )
    return actor


def accept_invite_with_new_password(session: Session, token: str, password: str, confirm: str) -> Actor:
    """A person without an account yet: set the password and join. The link works once."""
    check_new_password(password, confirm)
    set_context(session, user_id=None, org_id=None)  # accept_invite must not see anyone signed in
    return _accepted(session, token, hash_password(password))


def accept_invite_with_existing_password(session: Session, token: str, password: str) -> Actor:
    """A person who already has an account (from another organization): prove it with the password
    (throttled like any sign-in), then join."""
    details = invite_details(session, token)
    if details is None:
        raise ValidationError({"token": _LINK_GONE})
    user_id = authenticate(session, details.email, password)
    set_context(session, user_id=user_id, org_id=None)
    return _accepted(session, token, None)


__all__ = [
    "LoginFailed",
    "LoginLocked",
    "accept_invite_with_existing_password",
    "accept_invite_with_new_password",
    "authenticate",
    "hash_password",
    "invite_details",
    "sign_out",
    "start_session",
    "switch_organization",
    "token_hash",
]
