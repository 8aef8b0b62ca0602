"""The review flow (issue 22): every decision asks first, naming what it does, the amounts and the contractor;
a split partial is confirmed with the amounts the server worked out before anything is authorized; the evidence
comes before the decision; "decide and open the next one" follows the queue's order, under RLS; previews are
served inline only for images and PDFs, never re-sniffed."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.engagements import create_active, milestones_of
from kit.web import HTMX, csrf_token, signed_in, visible_text
from sqlalchemy import text
from test_review_pages import backdate, second_owner, snapshot, status_of, submit_work

from backoffice.services.evidence import UploadedFile

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def page(mid) -> str:
    return f"/milestones/{mid}"


def confirms(html: str) -> dict[str, str]:
    """Each submit button's visible name and the question it asks first (data-confirm), unescaped."""
    found = {}
    for attrs, label in re.findall(r"<button([^>]*)>(.*?)</button>", html, re.DOTALL):
        question = re.search(r'data-confirm="([^"]*)"', attrs)
        found[visible_text(label)] = html_lib.unescape(question.group(1)) if question else None
    return found


def set_policy(admin_engine, org_id, policy: str) -> None:
    with admin_engine.begin() as conn:
        conn.execute(text("update organizations set partial_policy = :p where id = :o"), {"p": policy, "o": org_id})


def post_decision(client, mid, data: dict, *, htmx=False):
    token = csrf_token(client, page(mid))
    if htmx:
        return client.post(f"{page(mid)}/decide", data=data, headers={**HTMX, "X-CSRFToken": token})
    return client.post(f"{page(mid)}/decide", data={**data, "csrf_token": token})


@pytest.fixture
def owner(app, login, world):
    return signed_in(app, login, world.owner)


@pytest.fixture
def waiting(world, app_sessions, admin_engine):
    """Design ($1,000.00), Build ($2,000.00) and Handover ($500.00) of one engagement, submitted and waiting
    3, 2 and 1 days: the queue's order is Design, Build, Handover. {title: (milestone id, submission id)}."""
    eid = create_active(app_sessions, world, title="Kitchen renovation")
    out = {}
    for m, days in zip(milestones_of(admin_engine, eid), (3, 2, 1), strict=True):
        sid = submit_work(app_sessions, world, m.id)
        backdate(admin_engine, sid, days)
        out[m.title] = (m.id, sid)
    return out


# --- the questions the decision buttons ask --------------------------------------------------------------


def test_approve_asks_to_authorize_the_gross_and_net_to_the_contractor(owner, world, waiting, admin_engine):
    set_policy(admin_engine, world.org_a, "route_back")
    mid, _ = waiting["Build"]
    asked = confirms(owner.get(page(mid)).get_data(as_text=True))
    contractor = f"Contractor X {world.suffix}"
    assert asked["Approve and authorize $2,000.00"] == f"Authorize $2,000.00 gross, $1,800.00 net to {contractor}?"
    assert asked["Dispute and send back"] == (
        f"Dispute “Build” and send it back to {contractor} unpaid? Nothing is paid; {contractor} sees your reason."
    )
    # Under route_back a partial pays nothing now: it says so, and it does not read as a dispute.
    assert asked["Accept part, request changes"] == (
        f"Accept part of “Build” and send it back to {contractor} for changes? Nothing is paid now; "
        "the $2,000.00 is authorized when a later revision is approved."
    )


def test_under_the_split_policy_partial_is_confirmed_on_the_server_with_its_amounts(
    owner, world, waiting, admin_engine
):
    set_policy(admin_engine, world.org_a, "split")
    mid, sid = waiting["Build"]
    html = owner.get(page(mid)).get_data(as_text=True)
    assert confirms(html)["Authorize part…"] is None  # the server's answer is the question
    before = snapshot(admin_engine, world.org_a)

    data = {
        "submission_id": str(sid),
        "decision": "partial",
        "reason": "The stairs are not finished.",
        "approved_amount": "1,500.00",
        "amount_minor": "200000",
    }
    response = post_decision(owner, mid, data, htmx=True)
    assert response.status_code == 200
    shown = visible_text(response.get_data(as_text=True))
    contractor = f"Contractor X {world.suffix}"
    assert (
        f"Approve $1,500.00 of $2,000.00 now: this authorizes $1,500.00 gross, $1,350.00 net to {contractor}. "
        f"The remaining $500.00 becomes a new milestone for {contractor} to complete."
    ) in shown
    assert "Authorize $1,500.00 now" in shown
    assert snapshot(admin_engine, world.org_a) == before  # nothing decided yet

    response = post_decision(owner, mid, {**data, "split_confirmed": "yes"})
    assert response.status_code == 303
    assert status_of(admin_engine, mid) == "approved"
    with admin_engine.connect() as conn:
        amount, gross = conn.execute(
            text(
                "select m.amount_minor, i.gross_minor from milestones m join invoices i on i.milestone_id = m.id"
                " where m.id = :m"
            ),
            {"m": mid},
        ).one()
    assert (amount, gross) == (150000, 150000)


@pytest.mark.parametrize("typed", ["", "2,000.00", "abc", "1\x005", "9" * 40])
def test_a_split_partial_with_a_bad_part_is_refused_at_the_field_and_changes_nothing(
    owner, world, waiting, admin_engine, typed
):
    set_policy(admin_engine, world.org_a, "split")
    mid, sid = waiting["Build"]
    before = snapshot(admin_engine, world.org_a)
    data = {"submission_id": str(sid), "decision": "partial", "reason": "Half done.", "approved_amount": typed}
    response = post_decision(owner, mid, data, htmx=True)
    assert response.status_code == 422
    assert 'id="approved_amount-error"' in response.get_data(as_text=True)
    assert snapshot(admin_engine, world.org_a) == before


def test_a_task_that_authorizes_nothing_says_so_instead_of_naming_a_payment(app_sessions, admin_engine, world, owner):
    # Completion billing is covered by its own pages' tests; here only the question's shape: a plain
    # milestone names gross and net, so the task wording must not appear on it.
    eid = create_active(app_sessions, world)
    mid = milestones_of(admin_engine, eid)[0].id
    submit_work(app_sessions, world, mid)
    asked = confirms(owner.get(page(mid)).get_data(as_text=True))
    assert "Approve task" not in asked
    assert asked["Approve and authorize $1,000.00"].startswith("Authorize $1,000.00 gross, $900.00 net to ")


# --- the screen: evidence first, the shortcuts told --------------------------------------------------------


def test_the_evidence_comes_before_the_decision_and_the_shortcuts_are_documented(owner, waiting):
    mid, _ = waiting["Design"]
    html = owner.get(page(mid)).get_data(as_text=True)
    assert html.index('id="revisions"') < html.index('id="decision"')
    assert '<div class="review-layout">' in html
    assert "<summary>Keyboard shortcuts</summary>" in html
    for key in ('data-shortcut="a"', 'data-shortcut="p"', 'data-shortcut="d"', 'data-shortcut="n"'):
        assert key in html
    assert 'name="then" value="next"' in html


def test_the_queue_documents_its_shortcuts(owner, waiting):
    html = owner.get("/reviews/").get_data(as_text=True)
    assert "<summary>Keyboard shortcuts</summary>" in html
    assert html.count("data-queue-link") == 3


# --- decide and open the next one -------------------------------------------------------------------------


def test_decide_and_open_the_next_goes_to_the_next_in_the_queues_order(owner, waiting, admin_engine):
    design, design_sid = waiting["Design"]
    build, _ = waiting["Build"]
    data = {"submission_id": str(design_sid), "decision": "approve", "amount_minor": "100000", "then": "next"}
    response = post_decision(owner, design, data)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/reviews/next?after={design}&then=next"
    assert status_of(admin_engine, design) == "approved"
    nxt = owner.get(response.headers["Location"])
    assert (nxt.status_code, nxt.headers["Location"]) == (303, page(build) + "?then=next")
    assert "Approved." in visible_text(owner.get(page(build)).get_data(as_text=True))


def test_decide_and_open_the_next_in_place_redirects_the_browser(owner, waiting):
    design, design_sid = waiting["Design"]
    data = {"submission_id": str(design_sid), "decision": "approve", "amount_minor": "100000", "then": "next"}
    response = post_decision(owner, design, data, htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/reviews/next?after={design}&then=next"


def test_next_follows_the_order_and_wraps_to_work_skipped_earlier(owner, waiting):
    design, build, handover = (waiting[t][0] for t in ("Design", "Build", "Handover"))
    assert owner.get(f"/reviews/next?after={design}").headers["Location"] == page(build)
    assert owner.get(f"/reviews/next?after={build}").headers["Location"] == page(handover)
    assert owner.get(f"/reviews/next?after={handover}").headers["Location"] == page(design)
    assert owner.get("/reviews/next").headers["Location"] == page(design)


def test_when_nothing_else_waits_next_says_so_on_the_queue(app, login, world, app_sessions, admin_engine, owner):
    eid = create_active(app_sessions, world)
    mid = milestones_of(admin_engine, eid)[0].id
    submit_work(app_sessions, world, mid)
    response = owner.get(f"/reviews/next?after={mid}")
    assert (response.status_code, response.headers["Location"]) == (303, "/reviews/")
    assert "Nothing else is waiting for your review." in visible_text(owner.get("/reviews/").get_data(as_text=True))


def test_next_never_opens_work_the_person_may_not_decide(app, login, world, waiting, admin_engine, password_hash):
    design = waiting["Design"][0]
    olga = signed_in(app, login, second_owner(admin_engine, world, password_hash))
    assert olga.get(f"/reviews/next?after={design}").headers["Location"] == "/reviews/"
    admin_b = signed_in(app, login, world.admin_b)  # another organization: RLS hides every one of them
    assert admin_b.get(f"/reviews/next?after={design}").headers["Location"] == "/reviews/"
    admin_a = signed_in(app, login, world.admin)
    assert admin_a.get(f"/reviews/next?after={design}").headers["Location"] == page(waiting["Build"][0])


@pytest.mark.parametrize("who", ["contractor_x_user", "finance"])
def test_contractors_and_finance_have_no_next_review(app, login, world, waiting, who):
    client = signed_in(app, login, getattr(world, who))
    assert client.get(f"/reviews/next?after={waiting['Design'][0]}").status_code == 403


@pytest.mark.parametrize("after", ["not-a-uuid", "\x00", "%00", "1" * 5000, "5f0c2a9e-8d41-4b7a-9c3e-2b1d6f7a8e90"])
def test_next_with_any_after_answers_without_an_error(owner, waiting, after):
    response = owner.get("/reviews/next", query_string={"after": after})
    assert response.status_code == 303
    assert response.headers["Location"] == page(waiting["Design"][0])


# --- previews ------------------------------------------------------------------------------------------


@pytest.fixture
def previews(world, app_sessions, admin_engine):
    """A submission with a PNG, a PDF and a text file: {name: file id} and the milestone id."""
    from kit.engagements import acting

    from backoffice.services import submissions as submission_service

    eid = create_active(app_sessions, world)
    mid = milestones_of(admin_engine, eid)[0].id
    files = [("photo.png", PNG), ("report.pdf", PDF), ("notes.txt", b"Measured.\n")]
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submission_service.submit_work(
            session,
            actor,
            mid,
            submission_service.SubmissionInput(
                note="Done.", links="", files=[UploadedFile.from_bytes(n, d) for n, d in files]
            ),
        )
    with admin_engine.connect() as conn:
        ids = dict(
            conn.execute(
                text(
                    "select f.file_name, f.id from evidence_files f join submissions s on s.id = f.submission_id"
                    " where s.milestone_id = :m"
                ),
                {"m": mid},
            ).all()
        )
    return mid, ids


def test_the_review_screen_shows_images_inline_and_pdfs_in_a_frame_with_a_download(owner, previews):
    mid, ids = previews
    html = owner.get(page(mid)).get_data(as_text=True)
    image = f'<img src="/evidence/{ids["photo.png"]}/preview"'
    assert re.search(rf'<details class="preview" open>\s*<summary>Preview photo.png</summary>\s*{image}', html)
    assert f'<iframe src="/evidence/{ids["report.pdf"]}/preview" title="Preview of report.pdf"' in html
    assert "Download report.pdf" in visible_text(html)
    assert f"/evidence/{ids['notes.txt']}/preview" not in html


def test_an_image_preview_is_inline_sandboxed_and_never_sniffed(owner, previews):
    _, ids = previews
    response = owner.get(f"/evidence/{ids['photo.png']}/preview")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline; ")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")


@pytest.mark.parametrize("destination", ["iframe", "embed", "object"])
def test_a_pdf_preview_in_a_frame_is_inline_loads_nothing_and_only_the_app_may_frame_it(owner, previews, destination):
    _, ids = previews
    response = owner.get(f"/evidence/{ids['report.pdf']}/preview", headers={"Sec-Fetch-Dest": destination})
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline; ")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert not policy.startswith("sandbox")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Dest": "document"}, {"Sec-Fetch-Dest": "empty"}])
def test_a_pdf_preview_opened_as_a_page_of_its_own_is_a_sandboxed_attachment(owner, previews, headers):
    _, ids = previews
    response = owner.get(f"/evidence/{ids['report.pdf']}/preview", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_other_files_only_download_as_attachments(owner, previews):
    _, ids = previews
    assert owner.get(f"/evidence/{ids['notes.txt']}/preview").status_code == 404
    response = owner.get(f"/evidence/{ids['notes.txt']}")
    assert response.headers["Content-Disposition"].startswith("attachment; ")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- the other authorizations name the amount and the contractor -----------------------------------------


@pytest.fixture
def pending_approval(app_sessions, admin_engine, world):
    """A $12,800.00 payment waiting for a finance step (an approval policy from $10,000.00)."""
    from kit.money_pages import active_engagement, approve, milestone_ids

    from backoffice.services import approvals
    from backoffice.services.approvals import PolicyInput, StepInput

    with acting_as_admin(app_sessions, world) as (session, actor):
        approvals.create_policy(session, actor, PolicyInput("Large", "USD", "10,000.00", [StepInput(role="finance")]))
    e = active_engagement(app_sessions, world, rows=(("Roof", "New membrane", "12,800.00", "2030-01-15"),))
    (roof,) = milestone_ids(admin_engine, e)
    return approve(app_sessions, world, roof)


def acting_as_admin(app_sessions, world):
    from kit.engagements import acting

    return acting(app_sessions, world.admin, world.org_a)


def test_authorization_approvals_name_the_amount_and_the_contractor(app, login, world, pending_approval):
    finance = signed_in(app, login, world.finance)
    contractor = f"Contractor X {world.suffix}"
    asked = confirms(finance.get("/approvals/").get_data(as_text=True))
    (approve,) = (q for label, q in asked.items() if label == "Approve $12,800.00")
    assert re.fullmatch(
        rf"Approve \S+ \(\$12,800\.00\)\? It is the payment to {contractor}, which becomes payable\.", approve
    )
    assert re.match(rf"Reject \S+ \(\$12,800\.00 to {contractor}\)\?", asked["Reject…"])
    on_invoice = confirms(finance.get(f"/invoices/{pending_approval}").get_data(as_text=True))
    assert re.fullmatch(
        rf"Approve step 1 of \S+ \(\$12,800\.00\)\? It is the payment to {contractor}\.", on_invoice["Approve step 1"]
    )
    assert re.match(rf"Reject \S+ \(\$12,800\.00 to {contractor}\)\?", on_invoice["Reject…"])


def test_the_award_asks_naming_the_contractor_and_the_price(app, login, app_sessions, world):
    from kit.projects import open_project, propose

    project = open_project(app_sessions, world, budget="6,000.00")
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    owner = signed_in(app, login, world.owner)
    asked = confirms(owner.get(f"/projects/{project}/proposals/{px}/accept").get_data(as_text=True))
    assert asked["Accept and create the engagement"] == (
        f"Accept Contractor X {world.suffix}'s proposal for $5,000.00 and create the engagement? "
        "Every other proposal is declined. This cannot be undone."
    )


def test_going_on_through_the_queue_keeps_the_next_box_ticked_and_skipping_does_not(owner, waiting):
    design, build = waiting["Design"][0], waiting["Build"][0]
    assert owner.get(f"/reviews/next?after={design}&then=next").headers["Location"] == page(build) + "?then=next"
    ticked = owner.get(page(build) + "?then=next").get_data(as_text=True)
    assert re.search(r'name="then" value="next" checked', ticked)
    plain = owner.get(page(build)).get_data(as_text=True)
    assert 'name="then" value="next">' in plain
