"""What the browser tests share: how Debian's Chromium is launched, evidence files a browser can upload,
signing in through the login form, screenshots of each step, and a recorder of the upload's progress
bar as htmx moves it (the page navigates away when the upload ends, so it reports to Python as it goes)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from kit import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MB = 1024 * 1024


def pdf_bytes(size: int, title: str = "Evidence") -> bytes:
    """A valid one-page PDF of about ``size`` bytes: the padding sits in comment lines, which readers skip."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    line = b"%" + b"p" * 78 + b"\n"
    padding = line * max(0, (size - 600) // len(line))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        None,  # the content stream, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream = b"BT /F1 18 Tf 20 70 Td (" + title.encode("ascii") + b") Tj ET"
    objects[3] = b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
    body = head + padding
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += str(number).encode() + b" 0 obj\n" + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 " + str(len(objects) + 1).encode() + b"\n0000000000 65535 f \n"
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size " + str(len(objects) + 1).encode() + b" /Root 1 0 R >>\nstartxref\n"
    return body + str(xref).encode() + b"\n%%EOF\n"


def file_payload(name: str, mime: str, data: bytes) -> dict:
    """A file for ``set_input_files``, as if chosen in the file picker."""
    return {"name": name, "mimeType": mime, "buffer": data}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign_in(page: Page, person) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("details.nav-account summary")).to_have_text(person.name)


def failed(request) -> bool:
    """Whether the test of this fixture request failed (conftest keeps each phase's report on the item)."""
    report = getattr(request.node, "report_call", None)
    return report is None or report.failed


def photograph_on_failure(contexts, directory: Path) -> None:
    """Every open page of a failed test, as it was when the test failed: failure-<context>-<page>.png."""
    directory.mkdir(parents=True, exist_ok=True)
    for c, context in enumerate(contexts, start=1):
        for p, page in enumerate(context.pages, start=1):
            with contextlib.suppress(Exception):
                page.screenshot(path=str(directory / f"failure-{c}-{p}.png"), full_page=True)


def in_own_thread(work: Callable[[], None], *, timeout: float = 300) -> None:
    """Run ``work`` in a thread of its own and re-raise what it raised. For the job worker: it starts an
    asyncio loop, and Playwright's sync API keeps one running in the test's thread."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="beside-playwright")
    thread.start()
    thread.join(timeout=timeout)
    assert not thread.is_alive(), f"{work!r} did not finish within {timeout:.0f} s"
    if failures:
        raise failures[0]


def run_jobs_aside(database, admin_engine, org_id) -> None:
    """The organization's waiting jobs (emails, notifications, receipts), run by the real worker."""
    from kit.jobs import run_jobs

    in_own_thread(lambda: run_jobs(database, admin_engine, org_ids=[org_id]))


class Screenshots:
    """Full-page screenshots named by step, numbered in the order they were taken."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    def take(self, page: Page, step: str) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower()).strip('-')}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


# Listeners on window run after app.js's listeners on document, so they see the bar as app.js left it.
_PROGRESS_SCRIPT = """
(() => {
  function report(type, e) {
    const form = e.target.closest && e.target.closest("form[data-upload]");
    if (!form) return;
    const box = form.querySelector("[data-progress]");
    const bar = box && box.querySelector("progress");
    const text = box && box.querySelector("[data-progress-text]");
    window.__uploadProgress({
      type: type,
      visible: !!box && box.checkVisibility(),
      value: bar ? bar.value : null,
      max: bar ? bar.max : null,
      text: text ? text.textContent : null,
      loaded: e.detail && e.detail.loaded,
      total: e.detail && e.detail.total,
      computable: e.detail && e.detail.lengthComputable,
    });
  }
  window.addEventListener("htmx:beforeRequest", (e) => report("start", e));
  window.addEventListener("htmx:xhr:progress", (e) => report("progress", e));
})();
"""


class UploadProgress:
    """What the upload form's progress bar showed, event by event, in every page of a browser context."""

    def __init__(self, context: BrowserContext) -> None:
        self.events: list[dict] = []
        context.expose_binding("__uploadProgress", lambda source, event: self.events.append(event))
        context.add_init_script(_PROGRESS_SCRIPT)

    def clear(self) -> None:
        self.events.clear()

    def of(self, type_: str) -> list[dict]:
        return [e for e in self.events if e["type"] == type_]
