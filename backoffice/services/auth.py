"""Sign-in, the failed-login throttle, and redeeming invites.

The database decides who is signed in (sql/auth.sql). The web role never reads a password hash: the
server asks for the account's hash method and salt (``auth_password_salt``), hashes the password it was
given with them, and ``auth_sign_in`` compares that with the stored hash, keeps the throttle, and opens
a sign-in session whose token only the database makes. The token goes into the person's cookie, and
every request presents it (``db.present_sign_in``): it is the only identity the database believes
from the web role.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from backoffice.actor import Actor
from backoffice.db import end_read, present_sign_in, set_context, unit_of_work
from backoffice.errors import DomainError, ValidationError
from backoffice.queries.identity import actor_for
from backoffice.services import audit

MIN_PASSWORD_LENGTH = 10
# How new passwords are hashed: werkzeug's scrypt, with its parameters written out so that the made-up
# salt of an unknown address (auth_password_salt) names the same method as a real account's.
PASSWORD_METHOD = "scrypt:32768:8:1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REFUSED = "That email and password do not match an active account."


class LoginFailed(DomainError):
    status = 401


class LoginLocked(DomainError):
    status = 429

    def __init__(self, until: datetime):
        super().__init__("Too many failed sign-in attempts for this email. Try again after a short wait.")
        self.until = until


@dataclass(frozen=True)
class SignIn:
    """A sign-in the database opened: the person, and the token that presents it (``db.present_sign_in``)."""

    user_id: uuid.UUID
    token: str


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def _digest(method: str, salt: str, password: str) -> str | None:
    """The hex digest werkzeug's ``method$salt$digest`` holds for this password (its own algorithm, written
    out here because the comparison is the database's), or None for a method it does not know or with
    parameters no account here was hashed with."""
    name, *args = method.split(":")
    secret, salt_bytes = password.encode("utf-8", "surrogatepass"), salt.encode("utf-8")
    try:
        if name == "scrypt" and len(args) == 3:
            n, r, p = map(int, args)
            if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
                return None
            return hashlib.scrypt(secret, salt=salt_bytes, n=n, r=r, p=p, maxmem=132 * n * r * p).hex()
        if name == "pbkdf2" and len(args) == 2 and args[0] in ("sha256", "sha512"):
            iterations = int(args[1])
            if not 1 <= iterations <= 10_000_000:
                return None
            return hashlib.pbkdf2_hmac(args[0], secret, salt_bytes, iterations).hex()
    except ValueError:
        return None
    return None


def candidate_hash(method_and_salt: str, password: str) -> str:
    """``method$salt$digest`` of this password with that method and salt: what auth_sign_in compares with the
    stored hash. An empty string (which matches no hash) when the method is unknown."""
    method, _, salt = method_and_salt.partition("$")
    digest = _digest(method, salt, password)
    return f"{method}${salt}${digest}" if digest else ""


def check_new_password(password: str, confirm: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    if password != confirm:
        raise ValidationError({"confirm": "The two passwords do not match."})


def authenticate(session: Session, email: str, password: str) -> SignIn:
    """Sign in with an email and password: the database compares the server's hash of the password with
    the account's and opens a sign-in session; failures are counted (committed) either way.

    Raises LoginLocked while the address is locked (the password is not compared during a lock, so a
    locked account cannot be probed) and LoginFailed otherwise, with the same message for an unknown
    email and a wrong password. The throttle's limits are the server's (table login_settings, written
    at upgrade from BACKOFFICE_LOGIN_MAX_FAILURES and BACKOFFICE_LOGIN_LOCK_MINUTES).
    """
    email = (email or "").strip()
    if len(email) > 254 or _CONTROL.search(email):  # no account has such an address
        candidate_hash(f"{PASSWORD_METHOD}$not-an-account", password or "")  # as long as a wrong password
        raise LoginFailed(_REFUSED)
    salt = session.execute(
        text("select * from auth_password_salt(:email, :method)"), {"email": email, "method": PASSWORD_METHOD}
    ).one()
    end_read(session)  # no transaction open while the password is hashed
    if salt.locked_until is not None:
        raise LoginLocked(salt.locked_until)
    candidate = candidate_hash(salt.method_and_salt, password or "")
    with unit_of_work(session):
        row = session.execute(
            text("select * from auth_sign_in(:email, :candidate)"), {"email": email, "candidate": candidate}
        ).one()
    # Refused only once the unit of work has ended: the failure is counted (committed) either way.
    if row.outcome == "signed_in":
        return SignIn(row.user_id, row.session_token)
    if row.locked_until is not None:
        raise LoginLocked(row.locked_until)
    raise LoginFailed(_REFUSED)


def start_session(session: Session, sign_in: SignIn, org_id: uuid.UUID | None = None) -> Actor | None:
    """Present ``sign_in`` on this session, choose the organization to act in (the requested one if a
    member, else the first) and audit the sign-in there. Returns the actor (None for a user without any
    membership)."""
    present_sign_in(session, sign_in.token)
    with unit_of_work(session):
        actor = actor_for(session, sign_in.user_id, org_id) or actor_for(session, sign_in.user_id, None)
        if actor is not None:
            audit.record(session, actor, "auth.signed_in", "user", actor.user_id)
    return actor


def sign_out(session: Session, user_id: uuid.UUID, actor: Actor | None) -> None:
    """End every sign-in session of the signed-in person, here and on other devices (cookies signed in
    earlier stop working). The session presents the person's sign-in (``web.context.load_user``)."""
    set_context(session, user_id=user_id, org_id=actor.org_id if actor else None)
    with unit_of_work(session):
        if actor is not None:
            audit.record(session, actor, "auth.signed_out", "user", user_id)
        session.execute(text("select auth_sign_out()"))


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
        if row is not None and row.session_token is not None:  # a new account is signed in from here
            present_sign_in(session, row.session_token)
        actor = actor_for(session, row.user_id, row.org_id) if row else None
        if actor is None:
            raise ValidationError({"token": _LINK_GONE})
        audit.record(
            session, actor, "member.joined", "user", actor.user_id, {"email": actor.label, "role": actor.role.value}
        )
    return actor


def accept_invite_with_new_password(session: Session, token: str, password: str, confirm: str) -> Actor:
    """A person without an account yet: set the password and join. The link works once. The session is
    signed in as them from here (``presented_sign_in``)."""
    check_new_password(password, confirm)
    set_context(session, user_id=None, org_id=None)
    present_sign_in(session, None)  # accept_invite must not see anyone signed in
    return _accepted(session, token, hash_password(password))


def accept_invite_with_existing_password(session: Session, token: str, password: str) -> Actor:
    """A person who already has an account (from another organization): sign in with the password
    (throttled like any sign-in), then join. The session is signed in as them from here."""
    details = invite_details(session, token)
    if details is None:
        raise ValidationError({"token": _LINK_GONE})
    sign_in = authenticate(session, details.email, password)
    present_sign_in(session, sign_in.token)
    set_context(session, user_id=sign_in.user_id, org_id=None)
    return _accepted(session, token, None)


__all__ = [
    "PASSWORD_METHOD",
    "LoginFailed",
    "LoginLocked",
    "SignIn",
    "accept_invite_with_existing_password",
    "accept_invite_with_new_password",
    "authenticate",
    "candidate_hash",
    "hash_password",
    "invite_details",
    "sign_out",
    "start_session",
    "switch_organization",
    "token_hash",
]
