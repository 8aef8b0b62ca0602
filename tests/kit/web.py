"""Pages as a browser shows them: a signed-in client, forms posted with the CSRF token a browser would have
read, the messages, fields, rows and links of a page; and the people, memberships and invitations behind
them, read as the owner role."""

from __future__ import annotations

import hashlib
import html as html_lib
import re

from sqlalchemy import text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no csrf token on {path}"
    return match.group(1)


HTMX = {"HX-Request": "true"}


def signed_in(app, login, person):
    """A fresh browser signed in as ``person``."""
    c = app.test_client()
    assert login(c, person).status_code == 303
    return c


# --- pages -----------------------------------------------------------------------------------------


def post(client, path: str, data: dict, *, token_from: str | None = None, **kwargs):
    """POST a form with the CSRF token a browser would have read from ``token_from`` (default: ``path``)."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_from or path)}, **kwargs)


def htmx_post(client, path: str, data: dict, *, token_from: str):
    """POST as htmx does: HX-Request set, the CSRF token in the X-CSRFToken header."""
    token = csrf_token(client, token_from)
    return client.post(path, data=data, headers={**HTMX, "X-CSRFToken": token})


def actions_offered(html: str, engagement_id) -> set[str]:
    """The state changes the page offers as forms posting to /engagements/<id>/<action>."""
    return set(re.findall(rf'<form\b[^>]*action="/engagements/{engagement_id}/([a-z]+)"', html))


def table_row(html: str, needle: str) -> str:
    """The first table row containing ``needle`` (fails when there is none)."""
    for row in re.findall(r"<tr\b.*?</tr>", html, re.DOTALL):
        if needle in html_lib.unescape(row):
            return html_lib.unescape(row)
    raise AssertionError(f"no table row with {needle!r}")


def visible_text(fragment: str) -> str:
    """The text of an HTML fragment, tags removed and whitespace collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def textarea_value(html: str, field: str) -> str | None:
    match = re.search(rf'<textarea\b[^>]*\bname="{field}"[^>]*>(.*?)</textarea>', html, re.DOTALL)
    return html_lib.unescape(match.group(1)) if match else None


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
            text("select id, email, name, password_hash, last_login_at from users where lower(email) = lower(:e)"),
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
