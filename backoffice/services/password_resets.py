"""Forgotten passwords: a one-time link by email (valid one hour, stored hashed).

Asking never says whether the address has an account. The database makes the token
(``password_reset_start()``, sql/auth.sql): a web request neither chooses nor sees it, and queues the job
that mails it (``send_password_reset``), which only the worker role can take the token for. The message
is an account message (no organization), the worker's alone: no web request and no organization's admin
reads a link that would let them into someone's account.
"""

from __future__ import annotations

import uuid

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


def request_reset(session: Session, email: str) -> None:
    """Queue a reset link for ``email`` if it belongs to an active account with a password (the worker
    mails it: ``mail_reset``); commit. Raises ValidationError only for something that is not an email
    address."""
    errors: dict[str, str] = {}
    address = clean_email(email, "email", errors)
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        set_context(session, user_id=None, org_id=None)
        session.execute(text("select password_reset_start(:email)"), {"email": address})


def mail_reset(session: Session, reset_id: uuid.UUID, *, base_url: str) -> bool:
    """The worker's half (a worker session acting as the account): take the reset's token, once, and keep
    the email in the outbox, queued for sending; commit. False when there is nothing to mail (the link was
    used, replaced, expired or mailed already)."""
    with unit_of_work(session):
        row = session.execute(text("select * from password_reset_token(:id)"), {"id": reset_id}).first()
        if row is None:
            return False
        to = Person(row.user_id, row.email, row.name)
        notice = Notice(
            "password_reset",
            f"password_reset:{token_hash(row.token)[:32]}",
            (to,),
            subject="Reset your backoffice password",
            lead="Someone asked to reset the password of your backoffice account. The link works once, for one hour. "
            "Signing in with the new password signs out every other session.",
            path=links.password_reset(row.token),
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
    return True


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
