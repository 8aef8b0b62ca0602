"""Shared by every kind of test (imported as ``testkit``, never as ``conftest``: each test folder
may have a conftest of its own, and pytest imports every one of them under that same module name)."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery"  # every person of the ``world`` fixture signs in with it

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no csrf token on {path}"
    return match.group(1)
