"""Reading pages as a browser shows them, and the database as the owner sees it: shared by the web tests."""

from __future__ import annotations

import hashlib
import html as html_lib
import re

from sqlalchemy import text
from testkit import csrf_token


def field_error(html: str, field: str) -> str | None:
    """The message shown at a form field, or None."""
    match = re.search(rf'<small id="{field}-error" class="field-error">([^<]*)</small>', html)
    return html_lib.unescape(match.group(1)) if match else None


def input_value(html: str, field: str) -> str | None:
    tag = re.search(rf'<input\b[^>]*\bname="{field}"[^>]*>', html)
    if not tag:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html_lib.unescape(value.group(1)) if value else ""


def input_names(html: str) -> list[str]:
    """The names of the visible inputs of the page's forms (not the hidden CSRF token)."""
    names = []
    for tag in re.findall(r"<input\b[^>]*>", html):
        name = re.search(r'\bname="([^"]+)"', tag)
        if name and 'type="hidden"' not in tag:
            names.append(name.group(1))
    return names


def flashes(html: str) -> list[str]:
    return [html_lib.unescape(m) for m in re.findall(r'<p class="flash flash-[a-z]+"[^>]*>([^<]*)</p>', html)]


def invite_link(html: str) -> str | None:
    match = re.search(r'id="invite-link" type="text" readonly value="([^"]+)"', html)
    return html_lib.unescape(match.group(1)) if match else None


def invite_token(html: str) -> str:
    """The token of the one-time link shown on the page (fails when no link is shown)."""
    link = invite_link(html)
    assert link, "one-time link shown"
    assert "One-time sign-up link" in html
    path = re.search(r"/invite/([A-Za-z0-9_\-]+)$", link)
    assert path, link
    return path.group(1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def member_row(html: str, email: str) -> str:
    """The members table's row for this email."""
    for row in re.findall(r"<tr>.*?</tr>", html, re.S):
        if f"<td>{email}</td>" in row:
            return row
    raise AssertionError(f"no row for {email}")


def followed(client, response, expected_location: str) -> str:
    """A successful POST answers 303 (so a reload does not re-post); the next page shows the result."""
    assert response.status_code == 303, response.status_code
    assert response.headers["Location"] == expected_location
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return page.get_data(as_text=True)


def invite(client, **data):
    """POST the members page's invitation form."""
    token = csrf_token(client, "/admin/members")
    return client.post("/admin/members", data={"role": "owner", "contractor_id": "", **data, "csrf_token": token})


def invite_link_token(client, **data) -> str:
    """Invite through the members page and return the token of the link it shows once."""
    return invite_token(followed(client, invite(client, **data), "/admin/members"))


# --- the database, as the owner role sees it -----------------------------------------------------


def user_by_email(admin_engine, email: str):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, email, name, password_hash, last_login_at, sessions_revoked_at from users where lower(email) = lower(:e)"
            ),
            {"e": email},
        ).one_or_none()


def membership(admin_engine, org_id, user_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id, role, contractor_id, accepted_at from memberships where org_id = :o and user_id = :u"),
            {"o": org_id, "u": user_id},
        ).one_or_none()


def invites_of(admin_engine, org_id, user_id):
    """Every invitation for this person in this org, oldest first."""
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, email, name, token_hash, created_by, created_at, expires_at, used_at from invites "
                "where org_id = :o and user_id = :u order by created_at, id"
            ),
            {"o": org_id, "u": user_id},
        ).all()


def audit_events(admin_engine, org_id, action: str):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select actor_user_id, actor_label, entity_type, entity_id, data from audit_events "
                "where org_id = :o and action = :a order by seq"
            ),
            {"o": org_id, "a": action},
        ).all()


def org_row(admin_engine, org_id):
    """The organization's settings as stored (read as the owner role)."""
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select name, default_currency, default_retainage_bps, payment_terms_days, partial_policy "
                "from organizations where id = :id"
            ),
            {"id": org_id},
        ).one()
