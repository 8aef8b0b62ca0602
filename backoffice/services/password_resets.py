"""Forgotten passwords: a one-time link by email (valid one hour, stored hashed).

Asking never says whether the address has an account. The message is an account message (no
organization): the request acts as the account it is for, so only that account's context can read it,
and no organization's admin sees a link that would let them into someone's account.
"""

from __future__ import annotations

import secrets

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.db import end_read, set_context, unit_of_work
from backoffice.errors import ValidationError
from backoffice.services import links
from backoffice.services.auth import check_new_password, hash_password, token_hash
from backoffice.services.notification_events import Notice, Person
from backoffice.services.notifications import render, store_message
from backoffice.services.validation import clean_email

LINK_GONE = "This link has expired or was already used. Ask for a new one below."


def request_reset(session: Session, email: str, *, base_url: str) -> None:
    """Email a reset link if ``email`` belongs to an active account with a password; commit. Raises
    ValidationError only for something that is not an email address."""
    errors: dict[str, str] = {}
    address = clean_email(email, "email", errors)
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        set_context(session, user_id=None, org_id=None)
        token = secrets.token_urlsafe(32)
        row = session.execute(
            text("select * from password_reset_start(:email, :hash)"), {"email": address, "hash": token_hash(token)}
        ).first()
        if row is None:
            return
        to = Person(row.user_id, row.email, row.name)
        set_context(session, user_id=to.user_id, org_id=None)
        notice = Notice(
            "password_reset",
            f"password_reset:{token_hash(token)[:32]}",
            (to,),
            subject="Reset your backoffice password",
            lead="Someone asked to reset the password of your backoffice account. The link works once, for one hour. "
            "Signing in with the new password signs out every other session.",
            path=links.password_reset(token),
            action="Choose a new password",
            in_app=False,
        )
        store_message(
            session,
            org_id=None,
            event="password_reset",
            to=to,
            email=render(notice, to, "backoffice", base_url),
            key=notice.key,
            entity=("user", str(to.user_id)),
        )


def reset_email(session: Session, token: str) -> str | None:
    """The address a usable link is for, or None."""
    address = session.execute(text("select password_reset_email(:h)"), {"h": token_hash(token)}).scalar_one()
    end_read(session)
    return address


def finish_reset(session: Session, token: str, password: str, confirm: str) -> None:
    """Set the new password with a usable link (once); commit. Raises ValidationError at ``password``,
    ``confirm`` or ``token``."""
    check_new_password(password, confirm)
    with unit_of_work(session):
        set_context(session, user_id=None, org_id=None)
        user_id = session.execute(
            text("select password_reset_finish(:h, :pw)"), {"h": token_hash(token), "pw": hash_password(password)}
        ).scalar_one()
        if user_id is None:
            raise ValidationError({"token": LINK_GONE})
