"""The app's scripts load and run on the pages that lean on them (issue 22 review): a merge once left app.js
unparseable, so no confirmation, shortcut, menu or live total ran, and every page still rendered and passed. Here
each page is opened as the demo person who uses it; an uncaught error (a script that does not parse, or throws) or
an error on the console (a blocked or missing resource, a refused inline script) fails the test, and app.js must
have been fetched. The demo's pages are only read."""

from __future__ import annotations

import pytest
from kit.a11y import ADMIN, BEN, FINANCE, NAME_OF, NINA, OWNER, MainPage, demo_ids, open_page, sign_in_as
from playwright.sync_api import Page

PAGES = (
    MainPage(OWNER, "home", "/"),
    MainPage(FINANCE, "home", "/"),
    MainPage(ADMIN, "home", "/"),
    MainPage(NINA, "home", "/"),
    MainPage(BEN, "home", "/"),
    MainPage(OWNER, "review screen (decision panel)", "/milestones/{cabinetry}"),
    MainPage(FINANCE, "payment queue", "/payments/"),
    MainPage(OWNER, "milestones schedule editor", "/engagements/{showroom}/milestones"),
)

_cookies: dict[str, list] = {}


@pytest.fixture(scope="module")
def demo_rows(admin_engine, demo_data) -> dict[str, str]:
    return demo_ids(admin_engine, demo_data.acme)


@pytest.fixture
def open_as(new_context, demo_data):
    """open_as(who) -> (a page signed in as that demo person, the errors it reports from then on)."""

    def _open(who: str) -> tuple[Page, list[str]]:
        context = new_context()
        page = context.new_page()
        if who not in _cookies:
            sign_in_as(page, who, demo_data.password, NAME_OF[who])
            _cookies[who] = context.cookies()
        else:
            context.add_cookies(_cookies[who])
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        return page, errors

    return _open


@pytest.mark.parametrize("main_page", PAGES, ids=lambda p: p.label)
def test_the_page_runs_its_scripts_without_an_error(main_page: MainPage, open_as, demo_rows):
    page, errors = open_as(main_page.who)
    scripts: dict[str, int] = {}
    page.on("response", lambda r: scripts.__setitem__(r.url, r.status) if r.url.split("?")[0].endswith(".js") else None)
    open_page(page, main_page.path.format(**demo_rows))
    assert errors == []
    app_js = [status for url, status in scripts.items() if "/static/app.js" in url]
    assert app_js in ([200], [304]), f"app.js was not loaded: {scripts}"  # 304: the sign-in page fetched it
