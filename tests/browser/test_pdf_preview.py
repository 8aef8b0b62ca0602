"""A PDF a contractor uploaded previews in the review screen's frame, in Chromium's own viewer, and nowhere else:
the preview URL opened as a page of its own downloads the file instead (web/evidence.py; the header cases are in
tests/web/test_evidence_downloads.py). The demo's pages are only read."""

from __future__ import annotations

from kit.a11y import NAME_OF, OWNER, demo_ids, open_page, sign_in_as
from playwright.sync_api import expect

PDF_NAME = "installer-checklist.pdf"  # the demo's cabinetry milestone, waiting for review


def test_a_pdf_previews_in_the_frame_and_its_url_opened_alone_downloads(new_context, demo_data, admin_engine):
    rows = demo_ids(admin_engine, demo_data.acme)
    page = new_context().new_page()
    sign_in_as(page, OWNER, demo_data.password, NAME_OF[OWNER])
    open_page(page, f"/milestones/{rows['cabinetry']}")
    preview = page.locator("details.preview").filter(has_text=f"Preview {PDF_NAME}")
    # Opening it loads the frame; its document becomes Chromium's PDF viewer (an extension page inside it).
    with page.expect_event("framenavigated", predicate=lambda f: f.url.startswith("chrome-extension://")):
        preview.locator("summary").click()
    frame = preview.locator("iframe")
    expect(frame).to_be_visible()
    assert frame.get_attribute("sandbox") is None  # Chromium shows "blocked" for a PDF in a sandboxed frame
    assert not [f.url for f in page.frames if f.url.startswith("chrome-error://")]

    src = frame.get_attribute("src")
    with page.expect_download() as download:
        page.evaluate("url => { window.location.href = url; }", src)
    assert download.value.suggested_filename == PDF_NAME
