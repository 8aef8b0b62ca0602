"""The review journey in a real browser: a contractor uploads evidence and watches it upload, the project
owner disputes it with a reason, the contractor reads the reason and submits revision 2, the owner approves.

Each step is checked as the person sees it (roles, labels, text) and the end state as the owner role
reads it from the database."""

from __future__ import annotations

import re

from kit.browser import MB, UploadProgress, file_payload, pdf_bytes, sha256, sign_in
from kit.engagements import create_active, milestones_of
from playwright.sync_api import Page, expect
from sqlalchemy import text

DISPUTE_REASON = "The floor plans show no dimensions for the utility room.\nPlease add them."
NOTE_1 = "Floor plans for all three levels, as agreed in the kick-off."
NOTE_2 = "Added the utility room dimensions on sheet 2."
LINK_2 = "https://drive.example.com/kitchen/design-v2"


def submissions_and_reviews(admin_engine, milestone_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select s.revision, s.note, s.links, r.decision, r.reason,"
                "       (select array_agg(f.file_name || ' ' || f.sha256 order by f.file_name)"
                "          from evidence_files f where f.submission_id = s.id) as files"
                "  from submissions s left join reviews r on r.submission_id = s.id"
                " where s.milestone_id = :m order by s.revision"
            ),
            {"m": milestone_id},
        ).all()


def decision_panel(page: Page):
    return page.locator("#decision")


def mark_page_as_seen(page: Page) -> None:
    """Tag the page's heading: it keeps the tag only while the document is not replaced."""
    page.evaluate("document.querySelector('h1').dataset.journeyMarker = 'kept'")


def expect_same_document(page: Page) -> None:
    expect(page.locator("h1[data-journey-marker='kept']")).to_have_count(1)


def open_from_queue(page: Page, milestone_title: str, *, revision_note: str | None = None) -> None:
    page.goto("/reviews/")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=milestone_title))
    expect(row).to_have_count(1)
    if revision_note:
        expect(row).to_contain_text(revision_note)
    row.get_by_role("link", name=milestone_title).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(milestone_title)


def test_contractor_uploads_owner_disputes_contractor_resubmits_owner_approves(
    new_context, screenshots, app_sessions, admin_engine, world
):
    engagement_id = create_active(app_sessions, world)
    design = milestones_of(admin_engine, engagement_id)[0]
    assert (design.title, design.status) == ("Design", "planned")
    milestone_url = f"/milestones/{design.id}"
    evidence_1 = pdf_bytes(3 * MB, "Floor plans")
    evidence_2 = pdf_bytes(40_000, "Utility room")

    contractor_context = new_context()
    progress = UploadProgress(contractor_context)
    contractor = contractor_context.new_page()
    page_errors: list[str] = []
    contractor.on("pageerror", lambda exc: page_errors.append(str(exc)))

    # The contractor marks the milestone complete with a 3 MB PDF and watches it upload.
    sign_in(contractor, world.contractor_x_user)
    contractor.goto(milestone_url)
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Planned")
    bar_box = contractor.locator("[data-progress]")
    expect(bar_box).to_be_hidden()
    contractor.get_by_label("What did you deliver?").fill(NOTE_1)
    contractor.get_by_label("Files — drop them here").set_input_files(
        file_payload("floor-plans.pdf", "application/pdf", evidence_1)
    )
    expect(contractor.locator("[data-chosen]")).to_contain_text("floor-plans.pdf — 3 MB")
    screenshots.take(contractor, "contractor chose the evidence")
    progress.clear()
    contractor.get_by_role("button", name="Submit for review").click()

    # htmx's redirect brings the milestone page back, now submitted.
    expect(contractor.get_by_text("Revision 1 submitted.")).to_be_visible()
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Submitted")
    expect(contractor.get_by_text(f"Awaiting review by {world.owner.name}")).to_be_visible()
    expect(contractor.locator("#revision-1")).to_contain_text("Awaiting review")
    expect(contractor.locator("#revision-1")).to_contain_text("floor-plans.pdf")
    expect(contractor.get_by_role("button", name="Submit for review")).to_have_count(0)
    screenshots.take(contractor, "contractor sees the work submitted")

    started, moved = progress.of("start"), progress.of("progress")
    assert len(started) == 1 and started[0]["visible"] and started[0]["value"] == 0, started
    assert moved, "the upload reported no progress"
    assert all(e["visible"] and e["computable"] for e in moved), moved
    values = [e["value"] for e in moved]
    assert values == sorted(values) and values[-1] == 100 == moved[-1]["max"], values
    assert moved[-1]["loaded"] == moved[-1]["total"] > len(evidence_1), moved[-1]
    assert moved[-1]["text"] == "Uploaded; checking the files…"

    # The owner finds it in the queue and disputes it; the decision panel swaps in place.
    owner = new_context().new_page()
    owner.on("dialog", lambda d: d.accept())  # each decision asks first (data-confirm)
    owner.on("pageerror", lambda exc: page_errors.append(str(exc)))
    sign_in(owner, world.owner)
    open_from_queue(owner, "Design")
    expect(owner.locator("#review-count")).to_have_text("1")
    expect(owner.get_by_role("heading", name="Your decision on revision 1")).to_be_visible()
    expect(owner.locator("#revision-1")).to_contain_text(NOTE_1)
    screenshots.take(owner, "owner opens the submission")
    mark_page_as_seen(owner)
    owner.get_by_label("Reason").fill(DISPUTE_REASON)
    owner.get_by_role("button", name="Dispute").click()

    expect(decision_panel(owner).get_by_role("heading", name="Disputed")).to_be_visible()
    expect(decision_panel(owner)).to_contain_text("It is back with the contractor.")
    expect(decision_panel(owner).locator("blockquote")).to_have_text(DISPUTE_REASON)
    expect(owner.locator("#revision-1 .badge")).to_have_text("Disputed")
    expect(owner.locator("#review-count")).to_have_text("0")
    expect_same_document(owner)
    assert owner.url.endswith(milestone_url)
    screenshots.take(owner, "owner disputed in place")

    # The contractor reloads, reads the reason and submits revision 2 with a file and a link.
    contractor.reload()
    returned = contractor.locator("#returned")
    expect(returned).to_contain_text(f"Disputed by {world.owner.name}")
    expect(returned.locator("blockquote")).to_have_text(DISPUTE_REASON)
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Disputed")  # why, not "Planned" (issue 22)
    expect(contractor.get_by_role("heading", name="Mark complete: revision 2")).to_be_visible()
    screenshots.take(contractor, "contractor reads the reason")
    contractor.get_by_label("What did you deliver?").fill(NOTE_2)
    contractor.get_by_label("Links (optional").fill(LINK_2)
    contractor.get_by_label("Files — drop them here").set_input_files(
        file_payload("floor-plans-v2.pdf", "application/pdf", evidence_2)
    )
    progress.clear()
    contractor.get_by_role("button", name="Submit for review").click()
    expect(contractor.get_by_text("Revision 2 submitted.")).to_be_visible()
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Submitted")
    expect(contractor.locator("#revision-2")).to_contain_text("Awaiting review")
    expect(contractor.locator("#revision-2").get_by_role("link", name=LINK_2)).to_be_visible()
    expect(contractor.locator("#revision-1 .badge")).to_have_text("Disputed")
    assert progress.of("progress")[-1]["value"] == 100
    screenshots.take(contractor, "contractor submitted revision 2")

    # The owner sees revision 2 in the queue, with the first one and its dispute beneath, and approves.
    open_from_queue(owner, "Design", revision_note="revision 2")
    expect(owner.locator("#review-count")).to_have_text("1")
    expect(owner.get_by_role("heading", name="Your decision on revision 2")).to_be_visible()
    expect(owner.locator("#revision-1")).to_contain_text(DISPUTE_REASON.splitlines()[0])
    expect(owner.locator("#revision-2")).to_contain_text("floor-plans-v2.pdf")
    mark_page_as_seen(owner)
    owner.get_by_role("button", name="Approve").click()
    expect(decision_panel(owner).get_by_role("heading", name="Approved")).to_be_visible()
    # The approval authorized the payment in the same transaction: the panel links its invoice.
    expect(decision_panel(owner)).to_contain_text(
        re.compile(r"The payment is authorized as [A-Z0-9]+-000001 for \$1,000\.00 gross\.")
    )
    expect(decision_panel(owner).get_by_role("link", name=re.compile(r"-000001$"))).to_have_attribute(
        "href", re.compile(r"^/invoices/")
    )
    expect(owner.locator("#revision-2 .badge")).to_have_text("Approved")
    expect(owner.locator("#review-count")).to_have_text("0")
    expect_same_document(owner)
    screenshots.take(owner, "owner approved in place")
    owner.reload()
    expect(owner.get_by_role("heading", level=1)).to_contain_text("Approved")
    owner.goto("/reviews/")
    expect(owner.get_by_text("Nothing is waiting for review.")).to_be_visible()

    contractor.reload()
    expect(contractor.get_by_role("heading", level=1)).to_contain_text("Approved")
    expect(contractor.get_by_role("button", name="Submit for review")).to_have_count(0)
    screenshots.take(contractor, "contractor sees it approved")

    assert page_errors == []
    assert milestones_of(admin_engine, engagement_id)[0].status == "approved"
    rows = submissions_and_reviews(admin_engine, design.id)
    assert [(r.revision, r.note, r.links, r.decision, r.reason) for r in rows] == [
        (1, NOTE_1, [], "dispute", DISPUTE_REASON),
        (2, NOTE_2, [LINK_2], "approve", None),
    ]
    assert rows[0].files == [f"floor-plans.pdf {sha256(evidence_1)}"]
    assert rows[1].files == [f"floor-plans-v2.pdf {sha256(evidence_2)}"]
