"""Sign-in, the failed-login throttle, and redeeming invites.

Password hashes never reach the app role through a plain SELECT; auth_lookup() (SECURITY DEFINER)
hands back just what checking one password needs.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from backoffice.db import set_context
from backoffice.errors import DomainError, ValidationError
from backoffice.queries.identity import actor_for
from backoffice.services import audit
from backoffice.actor import Actor

MIN_PASSWORD_LENGTH = 10
# Checked when the email is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class LoginFailed(DomainError):
    status = 401


class LoginLocked(DomainError):
    status = 429

    def __init__(self, until: datetime):
        super().__init__("Too many failed sign-in attempts for this email. Try again after a short wait.")
        self.until = until


@dataclass(frozen=True)
class Throttle:
    max_failures: int = 5
    lock_minutes: int = 15


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # werkzeug's default: scrypt


def check_new_password(password: str, confirm: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    if password != confirm:
        raise ValidationError({"confirm": "The two passwords do not match."})


def authenticate(session: Session, email: str, password: str, throttle: Throttle = Throttle()) -> uuid.UUID:
    """Return the user's id for a correct email and password; count failures; commit.

    Raises LoginLocked while the address is locked (checked before the password, so a locked
    account cannot be probed) and LoginFailed otherwise, with the same message for an unknown
    email and a wrong password.
    """
    email = (email or "").strip()
    row = session.execute(text("select * from auth_lookup(:email)"), {"email": email}).one()
    if row.locked_until is not None:
        session.rollback()
        raise LoginLocked(row.locked_until)
    usable = row.user_id is not None and row.is_active and row.password_hash
    ok = check_password_hash(row.password_hash if usable else _DUMMY_HASH, password or "") and bool(usable)
    if not ok:
        locked_until = session.execute(
            text("select auth_record_failure(:email, :max, :minutes)"),
            {"email": email, "max": throttle.max_failures, "minutes": throttle.lock_minutes},
        ).scalar_one()
        session.commit()
        if locked_until is not None:
            raise LoginLocked(locked_until)
        raise LoginFailed("That email and password do not match an active account.")
    session.execute(text("select auth_record_success(:id)"), {"id": row.user_id})
    session.commit()
    return row.user_id


def start_session(session: Session, user_id: uuid.UUID, org_id: uuid.UUID | None = None) -> Actor | None:
    """Choose the organization to act in (the requested one if a member, else the first) and audit
    the sign-in there. Returns None for a user without any membership."""
    actor = actor_for(session, user_id, org_id) or actor_for(session, user_id, None)
    if actor is None:
        session.rollback()
        return None
    audit.record(session, actor, "auth.signed_in", "user", actor.user_id)
    session.commit()
    return actor


def switch_organization(session: Session, user_id: uuid.UUID, org_id: uuid.UUID) -> Actor | None:
    """The actor in ``org_id``, or None when the user is not a member there."""
    actor = actor_for(session, user_id, org_id)
    if actor is None or actor.org_id != org_id:
        session.rollback()
        return None
    audit.record(session, actor, "auth.switched_organization", "organization", org_id)
    session.commit()
    return actor


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invite_details(session: Session, token: str) -> tuple[str, str] | None:
    """(email, organization name) for a usable invite token, else None."""
    row = session.execute(text("select * from invite_is_valid(:h)"), {"h": token_hash(token)}).first()
    session.rollback()
    return (row.email, row.org_name) if row else None


def redeem_invite(session: Session, token: str, password: str, confirm: str) -> Actor:
    """Set the invited person's password; the token works once and expires after 72 hours."""
    check_new_password(password, confirm)
    row = session.execute(
        text("select * from redeem_invite(:h, :pw)"), {"h": token_hash(token), "pw": hash_password(password)}
    ).first()
    if row is None:
        session.rollback()
        raise ValidationError({"token": "This link has expired or was already used. Ask your admin for a new one."})
    actor = actor_for(session, row.user_id, row.org_id)
    if actor is None:  # membership removed since the invite was sent
        session.rollback()
        raise ValidationError({"token": "This invitation is no longer valid. Ask your admin for a new one."})
    audit.record(session, actor, "user.invite_accepted", "user", actor.user_id)
    session.commit()
    return actor


__all__ = [
    "LoginFailed", "LoginLocked", "Throttle", "authenticate", "start_session", "switch_organization",
    "redeem_invite", "invite_details", "hash_password", "token_hash", "set_context",
]
