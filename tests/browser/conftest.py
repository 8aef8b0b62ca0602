"""Browser tests: the app served for real on a local port, driven by Debian's Chromium through Playwright.

Every test here carries the ``browser`` marker (``pytest -m "not browser"`` leaves them out). Without
/usr/bin/chromium they are skipped, except under CI (the CI variable set), where they fail. Screenshots of
each step go to $BROWSER_ARTIFACTS, or to the run's directory that tests/conftest.py names at the end.
Under xdist they all run on one worker (the ``browser`` xdist group, see tests/conftest.py): one Chromium
at a time on a small machine, and one writer of axe-report.json.
"""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def live_server(database):
    """The app on 127.0.0.1 at a free port, in a thread for the whole session; its base URL."""
    from werkzeug.serving import make_server

    from backoffice import create_app

    app = create_app(database.app_url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["backoffice.engine"].dispose()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """$BROWSER_ARTIFACTS, which tests/conftest.py sets for the run (and its xdist workers) when it is unset."""
    configured = os.environ.get("BROWSER_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def axe_report(artifacts_dir):
    """The run's axe results per page, in axe-report.json beside the screenshots."""
    from kit.axe import Report

    return Report(artifacts_dir / "axe-report.json")


@pytest.fixture
def accessible(axe_report):
    """accessible(page, label): axe-core on the page as it is now; fails on serious or critical violations."""
    from kit.axe import check

    return lambda page, label: check(page, label, axe_report)


@pytest.fixture
def screenshots(request, artifacts_dir):
    """Screenshots of this test's steps, in a directory named after the test."""
    from kit.browser import Screenshots

    directory = artifacts_dir / request.node.name
    directory.mkdir(parents=True, exist_ok=True)
    return Screenshots(directory)


def _collect_playwright_garbage() -> None:
    """Finalize what Playwright's event loop leaves behind (cycles holding unfinished coroutines and
    futures) now, rather than in whatever garbage collection comes next.

    On CPython 3.11 before 3.11.8 the AST constructor keeps its recursion depth in state the whole
    interpreter shares (gh-106905). When the collection starts inside a later ``ast.parse`` (pytest
    rewriting a lazily imported module: hypothesis's at the terminal summary), the finalizers' Python
    code can parse too (3.11 formats a traceback's caret lines with ``ast.parse``), and the outer parse
    fails with "SystemError: AST constructor recursion depth mismatch". Seen here without this."""
    for _ in range(3):
        if not gc.collect():
            break


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, for the tests of one module (it is not kept for the rest of a run)."""
    from kit.browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded 2-core machine; waits, never assertions about time
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        _collect_playwright_garbage()


@pytest.fixture
def new_context(request, browser, live_server, artifacts_dir):
    """new_context() -> a fresh browser profile (its own cookies) on the live server; closed after the test."""
    contexts = []

    def _new():
        context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield _new
    from kit.browser import failed, photograph_on_failure

    if failed(request):
        photograph_on_failure(contexts, artifacts_dir / request.node.name)
    for context in contexts:
        context.close()
    _collect_playwright_garbage()
