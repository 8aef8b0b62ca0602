"""Security headers on every response, and pages that a strict CSP does not break: no inline
scripts, styles or event handlers. Vendored front-end libraries are served locally, versioned."""

from __future__ import annotations

import json
import re

import pytest
from kit.web import csrf_token


def _csp_directives(response) -> dict[str, list[str]]:
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"no Content-Security-Policy on {response.request.path}"
    directives = {}
    for part in csp.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0]] = tokens[1:]
    return directives


def assert_security_headers(response):
    path = response.request.path
    csp_text = response.headers["Content-Security-Policy"]
    directives = _csp_directives(response)
    assert directives.get("script-src") == ["'self'"], path
    assert directives.get("style-src") == ["'self'"], path
    assert directives.get("frame-ancestors") == ["'none'"], path
    assert "'unsafe-inline'" not in csp_text, path
    assert "'unsafe-eval'" not in csp_text, path
    assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    assert response.headers.get("Referrer-Policy") in {
        "same-origin",
        "strict-origin-when-cross-origin",
        "no-referrer",
        "strict-origin",
    }, path
    vary = [v.strip().lower() for v in response.headers.get("Vary", "").split(",")]
    assert "hx-request" in vary, path


def test_login_page_headers(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert_security_headers(response)
    assert "no-store" in response.headers.get("Cache-Control", "")


def test_404_headers(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert_security_headers(response)


def test_static_file_headers(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert_security_headers(response)
    response.close()


def test_missing_static_file_headers(client):
    response = client.get("/static/vendor/nothing-here.js")
    assert response.status_code == 404
    assert_security_headers(response)


def test_redirect_headers(client):
    response = client.get("/admin/settings")
    assert response.status_code in (302, 303)
    assert_security_headers(response)


def test_authenticated_page_headers(client, world, login):
    login(client, world.admin)
    for path in ("/", "/admin/settings", "/admin/members", "/admin/contractors", "/audit/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_security_headers(response)
        assert "no-store" in response.headers.get("Cache-Control", ""), path


def test_error_responses_carry_headers(client, world, login):
    login(client, world.owner)
    forbidden = client.get("/admin/settings")
    assert forbidden.status_code == 403
    assert_security_headers(forbidden)
    csrf_fail = client.post("/admin/settings", data={})
    assert csrf_fail.status_code == 400
    assert_security_headers(csrf_fail)
    not_allowed = client.get("/logout")
    assert not_allowed.status_code == 405
    assert_security_headers(not_allowed)


def test_htmx_fragment_response_carries_headers(client, world, login):
    login(client, world.admin)
    response = client.get("/audit/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert_security_headers(response)


# --- no inline script, style or handlers -------------------------------------------------------

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
_STYLE_ATTR = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.S)
_STYLE_TAG = re.compile(r"<style\b", re.I)
_ON_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.I | re.S)
_HX_ON = re.compile(r"\shx-on[:\-]", re.I)
_JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def assert_no_inline_code(html: str, where: str):
    for attrs, body in _SCRIPT.findall(html):
        assert "src=" in attrs, f"inline <script> on {where}"
        assert not body.strip(), f"<script src> with a body on {where}"
    assert not _STYLE_ATTR.search(html), f"style= attribute on {where}: {_STYLE_ATTR.search(html).group(0)[:120]}"
    assert not _STYLE_TAG.search(html), f"<style> element on {where}"
    match = _ON_HANDLER.search(html)
    assert not match, f"inline event handler on {where}: {match.group(0)[:120] if match else ''}"
    assert not _HX_ON.search(html), f"hx-on handler on {where}"
    assert not _JS_URL.search(html), f"javascript: URL on {where}"


def test_inline_code_detector_catches_violations():
    for bad in (
        "<script>alert(1)</script>",
        '<p style="color:red">x</p>',
        '<button onclick="x()">',
        '<div hx-on:click="x()">',
        '<a href="javascript:x()">',
    ):
        with pytest.raises(AssertionError):
            assert_no_inline_code(bad, "sample")
    assert_no_inline_code('<script src="/static/vendor/htmx-2.0.11.min.js" defer></script><p>onion=1</p>', "sample")


def test_anonymous_pages_have_no_inline_code(client):
    for path in ("/login", "/no/such/page", "/invite/not-a-real-token"):
        response = client.get(path)
        assert_no_inline_code(response.get_data(as_text=True), path)


def test_admin_pages_have_no_inline_code(client, world, login):
    login(client, world.admin)
    paths = [
        "/",
        "/admin/settings",
        "/admin/members",
        "/admin/contractors",
        f"/admin/contractors/{world.contractor_x}",
        "/audit/",
        "/admin/contractors/not-an-id",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert_no_inline_code(response.get_data(as_text=True), path)


def test_form_error_pages_and_invite_pages_have_no_inline_code(client, app, world, login):
    login(client, world.admin)
    token = csrf_token(client, "/admin/settings")
    invalid = client.post(
        "/admin/settings",
        data={
            "name": "",
            "default_currency": "USD",
            "default_retainage": "10",
            "payment_terms_days": "30",
            "partial_policy": "route_back",
            "csrf_token": token,
        },
    )
    assert invalid.status_code == 422
    assert_no_inline_code(invalid.get_data(as_text=True), "settings 422")
    invited = client.post(
        "/admin/members",
        data={"email": f"csp-{world.suffix}@example.com", "name": "Cee Espy", "role": "finance", "csrf_token": token},
    )
    assert invited.status_code == 303
    body = client.get(invited.headers["Location"]).get_data(as_text=True)
    assert_no_inline_code(body, "members with invite link")
    link_token = re.search(r'/invite/([A-Za-z0-9_\-]+)"', body).group(1)
    newcomer = app.test_client()
    set_password = newcomer.get(f"/invite/{link_token}")
    assert set_password.status_code == 200
    assert "Set your password" in set_password.get_data(as_text=True)
    assert_no_inline_code(set_password.get_data(as_text=True), "set password")
    # an address that already has an account (in org B) gets the join page instead
    invited_b = client.post(
        "/admin/members",
        data={"email": world.admin_b.email, "name": "Bea B", "role": "finance", "csrf_token": token},
    )
    assert invited_b.status_code == 303
    body_b = client.get(invited_b.headers["Location"]).get_data(as_text=True)
    join_token = re.search(r'/invite/([A-Za-z0-9_\-]+)"', body_b).group(1)
    join = newcomer.get(f"/invite/{join_token}")
    assert join.status_code == 200
    assert f"Join Org A {world.suffix}" in join.get_data(as_text=True)
    assert_no_inline_code(join.get_data(as_text=True), "join")
    wrong = newcomer.post(
        f"/invite/{join_token}",
        data={"password": "not the password", "csrf_token": csrf_token(newcomer, f"/invite/{join_token}")},
    )
    assert wrong.status_code == 401
    assert_no_inline_code(wrong.get_data(as_text=True), "join 401")
    assert_security_headers(wrong)


def test_other_roles_pages_have_no_inline_code(app, world, login):
    for person in (world.owner, world.finance, world.contractor_x_user):
        c = app.test_client()
        login(c, person)
        for path in ("/", "/audit/", "/admin/settings"):
            response = c.get(path)
            assert_no_inline_code(response.get_data(as_text=True), f"{path} as {person.name}")


# --- vendored libraries --------------------------------------------------------------------------


def test_base_template_loads_versioned_vendor_files(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<script src="/static/vendor/htmx-2.0.11.min.js"' in html
    assert 'href="/static/vendor/pico-2.1.1.min.css"' in html
    # htmx must not inject its indicator <style> (blocked by style-src 'self') nor eval code
    config = re.search(r'<meta name="htmx-config" content=\'([^\']*)\'', html)
    assert config, "htmx-config meta"
    settings = json.loads(config.group(1))
    assert settings["includeIndicatorStyles"] is False
    assert settings["allowEval"] is False
    # nothing is loaded from another origin
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_htmx_is_served_locally_with_version_in_name(client):
    response = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    body = response.get_data(as_text=True)
    assert 'version:"2.0.11"' in body
    assert_security_headers(response)
    response.close()


def test_pico_is_served_locally_with_version_in_name(client):
    response = client.get("/static/vendor/pico-2.1.1.min.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert "Pico CSS" in response.get_data(as_text=True)[:300]
    assert "v2.1.1" in response.get_data(as_text=True)[:300]
    response.close()
