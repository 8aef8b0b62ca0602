"""Per-request resources: the database session, the signed-in user and their actor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import wraps

from flask import abort, current_app, g
from flask import session as cookie
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import present_sign_in
from backoffice.domain.roles import Role
from backoffice.queries.identity import MembershipChoice, load_signed_in

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


def db() -> Session:
    """The request's session (created on first use, closed in teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["backoffice.sessions"]()
    return g.db


def close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


@dataclass
class SignedIn(UserMixin):
    """Flask-Login's user: the person, and their actor in the current organization (None if they
    belong to no organization)."""

    user_id: uuid.UUID
    actor: Actor | None
    memberships: list[MembershipChoice] = field(default_factory=list)

    def get_id(self) -> str:
        return str(self.user_id)


@login_manager.user_loader
def load_user(user_id: str) -> SignedIn | None:
    try:
        uid = uuid.UUID(user_id)
        org_id = uuid.UUID(cookie["org_id"]) if cookie.get("org_id") else None
    except ValueError:
        return None
    token = cookie.get("sign_in")
    if not isinstance(token, str) or not token:
        return None
    session = db()
    present_sign_in(session, token)  # the only identity the database believes from the web role
    identity = load_signed_in(session, uid, org_id)  # one statement; the next transaction acts as them
    if identity is None:
        return None  # deactivated, expired, or signed out (on any device) since this cookie signed in
    if identity.actor is None:
        # Signed in but in no organization (yet, or any more): they stay signed in and are told why.
        cookie.pop("org_id", None)
        return SignedIn(user_id=uid, actor=None)
    cookie["org_id"] = str(identity.actor.org_id)
    return SignedIn(user_id=uid, actor=identity.actor, memberships=identity.memberships)


def actor() -> Actor:
    """The current actor; 404 when there is none (it would mean no organization to act in)."""
    if not current_user.is_authenticated or current_user.actor is None:
        abort(404)
    return current_user.actor


def roles_required(*roles: Role):
    """Only these roles reach the view; everyone else gets 403 (they are signed in, just not allowed)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if actor().role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
