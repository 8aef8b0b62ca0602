"""A contractor's proposal pages (issue 19), as its user uses them: the projects open to it, the form with the
milestone editor's rows (amounts, an equal split), every refusal at its field or as a message with nothing typed
lost, files kept and removed on an edit, withdrawal; and isolation: a project it is not invited to is a 404, and a
competitor's price and milestones appear on no page it can reach."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from kit.engagements import owner_query
from kit.files import PDF, PNG
from kit.projects import award, category, offer, open_project, propose
from kit.web import (
    HTMX,
    csrf_token,
    field_error,
    flashes,
    followed,
    input_value,
    signed_in,
    textarea_value,
    visible_text,
)
from sqlalchemy import text

from backoffice.domain.projects import ProposalRefusal

# Contractor Y's offer: a price and milestone titles that appear nowhere else, so their absence is meaningful.
COMPETITOR_PRICE = "7,654.32"
COMPETITOR_ROWS = (
    ("Zeppelin survey", "Secret method", "1,000.00", "2030-02-01"),
    ("Quixotic delivery", "Secret finish", "6,654.32", "2030-03-01"),
)


@pytest.fixture
def project(app_sessions, world):
    """An open project of the owner's inviting contractors X and Y, proposals due in two weeks."""
    return open_project(app_sessions, world, title="Office refit")


@pytest.fixture
def x(app, login, world):
    return signed_in(app, login, world.contractor_x_user)


def show(project_id) -> str:
    return f"/proposals/project/{project_id}"


def form(
    price="5,000.00",
    rows=(
        ("Survey", "Site survey report", "1,500.00", "2030-02-01"),
        ("Delivery", "Installed", "3,500.00", "2030-03-15"),
    ),
    *,
    mode="amounts",
    op="save",
    timeline="Six weeks",
    note="We did the second floor.",
    **extra,
) -> dict:
    data = {"price": price, "mode": mode, "op": op, "timeline": timeline, "note": note, **extra}
    for i, (title, deliverable, amount, due) in enumerate(rows):
        data.update({f"rows-{i}-title": title, f"rows-{i}-deliverable": deliverable, f"rows-{i}-due_date": due})
        data.update({f"rows-{i}-amount": amount, f"rows-{i}-percent": "", f"rows-{i}-id": ""})
    return data


def post_form(client, path: str, data: dict, *, token_from: str, files=(), headers=None):
    body = {**data, "csrf_token": csrf_token(client, token_from)}
    if files:
        body["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(path, data=body, content_type="multipart/form-data", headers=headers or {})


def submit(client, project_id, data=None, files=(), headers=None):
    return post_form(
        client, f"{show(project_id)}/new", data or form(), token_from=show(project_id), files=files, headers=headers
    )


def proposals_of(admin_engine, project_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from proposals where project_id = :p order by submitted_at", p=project_id
    )


def milestones_of_proposal(admin_engine, proposal_id) -> list[tuple]:
    rows = owner_query(
        admin_engine, "select * from proposal_milestones where proposal_id = :p order by seq", p=proposal_id
    )
    return [(r["title"], r["amount_minor"], r["due_date"].isoformat()) for r in rows]


def files_of(admin_engine, proposal_id) -> list[str]:
    rows = owner_query(
        admin_engine, "select file_name from proposal_files where proposal_id = :p order by position", p=proposal_id
    )
    return [r["file_name"] for r in rows]


def set_deadline(admin_engine, project_id, deadline: date) -> None:
    """Move a project's deadline as if time had passed. The owner role lifts projects_guard for this transaction
    only (DDL is transactional: no other session ever sees it off), as kit.engagements.set_due_date does."""
    with admin_engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '10s'"))
        conn.execute(text("set constraints all immediate"))  # no deferred check left pending at the re-enable
        conn.execute(text("alter table projects disable trigger projects_guard"))
        conn.execute(text("update projects set deadline = :d where id = :id"), {"d": deadline, "id": project_id})
        conn.execute(text("alter table projects enable trigger projects_guard"))


# --- seeing and proposing ------------------------------------------------------------------------------------------


def test_an_invited_contractor_sees_the_project_and_proposes_with_amounts(x, world, project, admin_engine):
    listing = visible_text(x.get("/proposals").get_data(as_text=True))
    assert "Office refit" in listing and "Renovation" in listing and "Open: make a proposal" in listing

    page = x.get(show(project)).get_data(as_text=True)
    assert "Refit the third floor." in visible_text(page)
    assert "Milestone billing" in visible_text(page)
    assert 'id="proposal-form"' in page and 'enctype="multipart/form-data"' in page

    html = followed(x, submit(x, project, files=[("portfolio.pdf", PDF)]), show(project))
    assert "Your proposal was sent." in " ".join(flashes(html))
    (saved,) = proposals_of(admin_engine, project)
    assert (saved["contractor_id"], saved["price_minor"], saved["status"]) == (world.contractor_x, 500000, "submitted")
    assert milestones_of_proposal(admin_engine, saved["id"]) == [
        ("Survey", 150000, "2030-02-01"),
        ("Delivery", 350000, "2030-03-15"),
    ]
    assert files_of(admin_engine, saved["id"]) == ["portfolio.pdf"]
    page = visible_text(html)
    assert "Waiting for the decision" in page and "$5,000.00" in page and "Survey" in page and "portfolio.pdf" in page
    assert 'id="proposal-form"' not in html  # proposed: its proposal shows, with Edit and Withdraw
    assert "Edit your proposal" in page and "Withdraw" in page

    (file_id,) = [
        r["id"]
        for r in owner_query(admin_engine, "select id from proposal_files where proposal_id = :p", p=saved["id"])
    ]
    download = x.get(f"/proposals/files/{file_id}")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_an_equal_split_shares_the_price_exactly(x, project, admin_engine):
    rows = (("One", "", "", "2030-01-10"), ("Two", "", "", "2030-02-10"), ("Three", "", "", "2030-03-10"))
    response = submit(x, project, form("1,000.00", rows, mode="equal"))
    assert response.status_code == 303
    (saved,) = proposals_of(admin_engine, project)
    assert saved["price_minor"] == 100000
    assert [amount for _, amount, _ in milestones_of_proposal(admin_engine, saved["id"])] == [33334, 33333, 33333]


def test_the_rows_buttons_rerender_the_price_and_milestones_in_place(x, project, admin_engine):
    response = post_form(x, f"{show(project)}/new", form(op="add"), token_from=show(project), headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="proposal-terms">')  # not the form: files chosen stay chosen
    assert input_value(html, "rows-2-title") == "" and input_value(html, "rows-1-title") == "Delivery"
    assert input_value(html, "price") == "5,000.00"
    assert "The milestones add up to your price exactly." in html
    assert proposals_of(admin_engine, project) == []  # nothing saved

    rows = (("One", "", "", "2030-01-10"), ("Two", "", "", "2030-02-10"))
    html = post_form(
        x, f"{show(project)}/new", form("100.00", rows, mode="equal", op="refresh"), token_from=show(project)
    ).get_data(as_text=True)
    assert "$50.00" in html and "Update amounts" in html


def test_a_project_the_contractor_is_not_invited_to_is_not_found(app, login, world, app_sessions):
    only_x = open_project(app_sessions, world, title="Quiet tender", invited=(world.contractor_x,))
    y = signed_in(app, login, world.contractor_y_user)
    assert y.get(show(only_x)).status_code == 404
    assert "Quiet tender" not in y.get("/proposals").get_data(as_text=True)
    response = post_form(y, f"{show(only_x)}/new", form(), token_from="/proposals")
    assert response.status_code == 404
    assert y.get("/proposals/project/not-a-uuid").status_code == 404


def test_staff_do_not_use_the_contractor_pages(app, login, world, project):
    for person in (world.owner, world.admin, world.finance):
        client = signed_in(app, login, person)
        assert client.get("/proposals").status_code == 403
        assert client.get(show(project)).status_code == 403


def test_a_competitors_price_and_milestones_are_on_no_page_the_contractor_reaches(
    app, login, world, app_sessions, project, admin_engine
):
    theirs = propose(
        app_sessions,
        world.contractor_y_user,
        world.org_a,
        project,
        offer(COMPETITOR_PRICE, COMPETITOR_ROWS),
        files=[_upload("their-secret.pdf", PDF)],
    )
    their_file = owner_query(admin_engine, "select id from proposal_files where proposal_id = :p", p=theirs)[0]["id"]
    x = signed_in(app, login, world.contractor_x_user)
    assert submit(x, project).status_code == 303
    (mine,) = [p["id"] for p in proposals_of(admin_engine, project) if p["contractor_id"] == world.contractor_x]

    pages = ["/", "/proposals", show(project), f"/proposals/{mine}/edit", "/engagements", "/notifications/"]
    for path in pages:
        response = x.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        for secret in (COMPETITOR_PRICE, "Zeppelin survey", "Quixotic delivery", "Secret method", "their-secret"):
            assert secret not in html, (path, secret)
    # Their proposal by its own URL, and their file: as missing as anything else.
    assert x.get(f"/proposals/{theirs}/edit").status_code == 404
    assert x.get(f"/proposals/files/{their_file}").status_code == 404
    assert post_form(x, f"/proposals/{theirs}/withdraw", {}, token_from="/proposals").status_code == 404


def _upload(name, content):
    from backoffice.services.evidence import UploadedFile

    return UploadedFile.from_bytes(name, content)


def test_a_second_proposal_is_refused_with_the_message(x, project, admin_engine):
    assert submit(x, project).status_code == 303
    response = submit(x, project, form(price="4,000.00", rows=(("Again", "", "4,000.00", "2030-02-01"),)))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert ProposalRefusal.DUPLICATE.message in html
    assert input_value(html, "price") == "4,000.00" and input_value(html, "rows-0-title") == "Again"  # kept
    assert [p["price_minor"] for p in proposals_of(admin_engine, project)] == [500000]


def test_after_the_deadline_the_form_gives_way_to_the_message_and_a_post_is_refused(
    x, project, admin_engine, world, app, login
):
    set_deadline(admin_engine, project, date.today() - timedelta(days=2))
    html = x.get(show(project)).get_data(as_text=True)
    assert ProposalRefusal.DEADLINE.message in html
    assert 'id="proposal-form"' not in html
    assert "Deadline passed" in visible_text(x.get("/proposals").get_data(as_text=True))
    assert "open to your proposals" not in visible_text(x.get("/").get_data(as_text=True))

    response = submit(x, project)
    assert response.status_code == 409
    assert ProposalRefusal.DEADLINE.message in response.get_data(as_text=True)
    assert proposals_of(admin_engine, project) == []


# --- refusals at their fields --------------------------------------------------------------------------------------


def test_a_comma_decimal_price_is_refused_at_the_price(x, project, admin_engine):
    response = submit(x, project, form(price="12,50", rows=(("Survey", "", "12.50", "2030-02-01"),)))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "price")
    assert input_value(html, "price") == "12,50" and input_value(html, "rows-0-title") == "Survey"
    assert proposals_of(admin_engine, project) == []


def test_milestones_that_do_not_add_up_to_the_price_are_refused_naming_the_difference(x, project, admin_engine):
    response = submit(x, project, form(price="5,200.00"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = field_error(html, "rows")
    assert message and "$5,000.00" in message and "$200.00 less" in message and "$5,200.00" in message
    assert textarea_value(html, "note") == "We did the second floor." and input_value(html, "timeline") == "Six weeks"
    assert proposals_of(admin_engine, project) == []


def test_a_row_without_a_title_or_with_a_bad_date_is_refused_at_the_row(x, project, admin_engine):
    rows = (("", "Site survey report", "1,500.00", "2030-02-01"), ("Delivery", "", "3,500.00", "15/03/2030"))
    response = submit(x, project, form(rows=rows))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "rows-0-title") == "Enter the title."
    assert field_error(html, "rows-1-due_date")
    assert input_value(html, "rows-1-due_date") == "15/03/2030"
    assert textarea_value(html, "rows-0-deliverable") == "Site survey report"
    assert proposals_of(admin_engine, project) == []


def test_a_nul_byte_in_the_note_is_refused_not_a_server_error(x, project, admin_engine):
    response = submit(x, project, form(note="Hello\x00world"))
    assert 400 <= response.status_code < 500
    assert proposals_of(admin_engine, project) == []


# --- editing and withdrawing ---------------------------------------------------------------------------------------


def test_an_edit_keeps_the_files_and_removes_the_one_ticked(x, project, admin_engine):
    assert submit(x, project, files=[("portfolio.pdf", PDF), ("site.png", PNG)]).status_code == 303
    (saved,) = proposals_of(admin_engine, project)
    edit = f"/proposals/{saved['id']}/edit"
    html = x.get(edit).get_data(as_text=True)
    assert input_value(html, "price") == "5,000.00" and input_value(html, "rows-1-title") == "Delivery"
    assert "portfolio.pdf" in html and "site.png" in html
    png_id = owner_query(
        admin_engine, "select id from proposal_files where proposal_id = :p and file_name = 'site.png'", p=saved["id"]
    )[0]["id"]

    # A refusal keeps the ticked box ticked.
    bad = post_form(x, edit, form(price="", remove_files=str(png_id)), token_from=edit)
    assert bad.status_code == 422
    assert re.search(rf'name="remove_files" value="{png_id}"\s+checked', bad.get_data(as_text=True))

    rows = (("Survey", "", "2,000.00", "2030-02-01"), ("Delivery", "", "4,000.00", "2030-03-15"))
    response = post_form(x, edit, form("6,000.00", rows, remove_files=str(png_id)), token_from=edit)
    assert response.status_code == 303 and response.headers["Location"] == show(project)
    (after,) = proposals_of(admin_engine, project)
    assert after["price_minor"] == 600000
    assert files_of(admin_engine, saved["id"]) == ["portfolio.pdf"]
    assert [a for _, a, _ in milestones_of_proposal(admin_engine, saved["id"])] == [200000, 400000]


def test_a_withdrawn_proposal_can_no_longer_be_edited(x, project, admin_engine):
    assert submit(x, project).status_code == 303
    (saved,) = proposals_of(admin_engine, project)
    edit = f"/proposals/{saved['id']}/edit"
    withdraw = post_form(x, f"/proposals/{saved['id']}/withdraw", {}, token_from=show(project))
    html = followed(x, withdraw, show(project))
    assert "Your proposal was withdrawn." in " ".join(flashes(html))
    assert "Withdrawn" in visible_text(html) and "Edit your proposal" not in html
    assert 'data-confirm="Withdraw your proposal' not in html
    assert proposals_of(admin_engine, project)[0]["status"] == "withdrawn"

    assert x.get(edit).status_code == 303  # the edit page sends it back to the project
    response = post_form(
        x, edit, form(price="4,000.00", rows=(("Later", "", "4,000.00", "2030-02-01"),)), token_from=show(project)
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "withdrawn" in html and input_value(html, "price") == "4,000.00"
    assert proposals_of(admin_engine, project)[0]["price_minor"] == 500000
    # A withdrawn proposal still counts as the one proposal: no second one.
    assert submit(x, project).status_code == 409


def test_the_withdraw_button_asks_first(x, project):
    assert submit(x, project).status_code == 303
    html = x.get(show(project)).get_data(as_text=True)
    assert re.search(
        r'<form method="post" action="/proposals/[0-9a-f-]+/withdraw"[^>]*data-confirm="Withdraw your', html
    )


# --- where each proposal stands ------------------------------------------------------------------------------------


def test_the_winner_is_linked_to_its_engagement_and_the_other_sees_declined(app, login, world, app_sessions, project):
    px = propose(app_sessions, world.contractor_x_user, world.org_a, project)
    propose(app_sessions, world.contractor_y_user, world.org_a, project)
    engagement_id = award(app_sessions, world.owner, world.org_a, project, px)

    x = signed_in(app, login, world.contractor_x_user)
    html = x.get("/proposals").get_data(as_text=True)
    assert "Accepted — see the engagement" in html and f'href="/engagements/{engagement_id}"' in html
    html = x.get(show(project)).get_data(as_text=True)
    assert f'href="/engagements/{engagement_id}"' in html and "Edit your proposal" not in html

    y = signed_in(app, login, world.contractor_y_user)
    page = visible_text(y.get("/proposals").get_data(as_text=True))
    assert "Declined" in page and "Accepted" not in page
    assert "Declined" in visible_text(y.get(show(project)).get_data(as_text=True))


def test_the_home_page_counts_the_projects_open_to_the_contractor(app, login, world, app_sessions, x):
    assert "open to your proposals" not in visible_text(x.get("/").get_data(as_text=True))
    renovation = category(app_sessions, world)
    first = open_project(app_sessions, world, title="First", category_id=renovation)
    html = x.get("/").get_data(as_text=True)
    assert "1 project open to your proposals" in visible_text(html) and 'href="/proposals"' in html
    open_project(app_sessions, world, title="Second", audience="all", invited=(), category_id=renovation)
    assert "2 projects open to your proposals" in visible_text(x.get("/").get_data(as_text=True))
    assert submit(x, first).status_code == 303  # proposed: no longer open to a proposal
    assert "1 project open to your proposals" in visible_text(x.get("/").get_data(as_text=True))


def test_after_the_deadline_a_waiting_proposal_is_withdrawn_but_no_longer_edited(x, project, admin_engine):
    submit(x, project)
    (saved,) = proposals_of(admin_engine, project)
    set_deadline(admin_engine, project, date.today() - timedelta(days=1))
    html = x.get(show(project)).get_data(as_text=True)
    assert "Withdraw…" in html and "Edit your proposal" not in html
    assert "you can still withdraw it until the project owner decides" in visible_text(html)
    assert x.get(f"/proposals/{saved['id']}/edit").status_code in (302, 303)
    withdraw = post_form(x, f"/proposals/{saved['id']}/withdraw", {}, token_from=show(project))
    assert "Your proposal was withdrawn." in " ".join(flashes(followed(x, withdraw, show(project))))
    assert proposals_of(admin_engine, project)[0]["status"] == "withdrawn"


# --- long lists, paged by keys ---------------------------------------------------------------------------------------


def set_submitted_at(admin_engine, proposal_ids, at) -> None:
    """Give proposals one submission time (a tie the id must break), lifting proposals_guard for this transaction
    only, as set_deadline does for projects_guard."""
    with admin_engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '10s'"))
        conn.execute(text("set constraints all immediate"))
        conn.execute(text("alter table proposals disable trigger proposals_guard"))
        conn.execute(
            text("update proposals set submitted_at = :at where id = any(:ids)"), {"at": at, "ids": proposal_ids}
        )
        conn.execute(text("alter table proposals enable trigger proposals_guard"))


@dataclass(frozen=True)
class Many:
    client: FlaskClient  # contractor X's
    open_order: list[str]  # each list's titles in the order the page must show them
    mine_order: list[str]


@pytest.fixture
def many(app, login, world, app_sessions, admin_engine, monkeypatch):
    """More rows than a page in both of contractor X's lists (pages of 2), with ties on each list's first key that
    straddle a page's end, a project whose deadline has passed, and one open to all that X was not invited to.
    The orders are worked out here, not by the query under test."""
    from backoffice.queries import proposals as queries

    monkeypatch.setattr(queries, "OPEN_PER_PAGE", 2)
    monkeypatch.setattr(queries, "PROPOSALS_PER_PAGE", 2)
    renovation = category(app_sessions, world)
    ids = {}
    for title, days, kw in (
        ("Alder", 3, {}),
        ("Birch", 7, {}),
        ("Cedar", 7, {}),
        ("Damson", 10, {}),
        ("Elder", 10, {"audience": "all", "invited": ()}),
        ("Fir", 20, {}),  # its deadline passes below: listed last
        ("Ginkgo", 5, {"invited": (world.contractor_y,)}),  # not X's to see
        ("Proposed one", 14, {}),
        ("Proposed two", 14, {}),
        ("Proposed three", 14, {}),
    ):
        deadline = date.today() + timedelta(days=days)
        ids[title] = open_project(app_sessions, world, title=title, deadline=deadline, category_id=renovation, **kw)
    set_deadline(admin_engine, ids["Fir"], date.today() - timedelta(days=1))
    proposal = {}
    for title in ("Proposed one", "Proposed two", "Proposed three"):
        proposal[title] = propose(app_sessions, world.contractor_x_user, world.org_a, ids[title])
    set_submitted_at(admin_engine, [proposal["Proposed one"], proposal["Proposed two"]], datetime(2030, 1, 1, 12, 0))
    set_submitted_at(admin_engine, [proposal["Proposed three"]], datetime(2030, 1, 2, 9, 0))

    def by_id(*titles, key):
        return sorted(titles, key=lambda t: key[t])  # Postgres orders uuids as Python does: byte by byte

    open_order = ["Alder", *by_id("Birch", "Cedar", key=ids), *by_id("Damson", "Elder", key=ids), "Fir"]
    mine_order = ["Proposed three", *reversed(by_id("Proposed one", "Proposed two", key=proposal))]
    return Many(signed_in(app, login, world.contractor_x_user), open_order, mine_order)


def section(html: str, name: str) -> str:
    return html.split(f'<section aria-labelledby="{name}-heading">')[1].split("</section>")[0]


def titles(html: str, name: str) -> list[str]:
    return re.findall(r"<a href=\"[^\"]+\"><strong>([^<]+)</strong></a>", section(html, name))


def pager_link(html: str, name: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', section(html, name))
    return match and match.group(1).replace("&amp;", "&")


def walk(client, name: str) -> tuple[list[list[str]], list[list[str]]]:
    """The pages of one list from the first following its "next" links, then back following "previous"; on every
    page, the other list is at its first page and no link carries the other list's key."""
    other = {"open": "mine", "mine": "open"}[name]
    first = client.get("/proposals").get_data(as_text=True)
    other_first = titles(first, other)
    forward, html = [], first
    while True:
        assert titles(html, other) == other_first and pager_link(html, other, "prev") is None
        forward.append(titles(html, name))
        link = pager_link(html, name, "next")
        if link is None:
            break
        assert f"{name}_after=" in link and f"{other}_" not in link
        response = client.get(link)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert len(forward) < 10, "the links go round in a circle"
    back = [forward[-1]]
    while (link := pager_link(html, name, "prev")) is not None:
        assert f"{name}_before=" in link and f"{other}_" not in link
        html = client.get(link).get_data(as_text=True)
        back.append(titles(html, name))
        assert len(back) < 10, "the links go round in a circle"
    return forward, back


def test_the_open_projects_page_through_every_row_once_and_back(many):
    forward, back = walk(many.client, "open")
    assert forward == [many.open_order[0:2], many.open_order[2:4], many.open_order[4:6]]
    assert "Ginkgo" not in str(forward)  # invited Y only
    assert back == forward[::-1]


def test_the_contractors_proposals_page_newest_first_through_every_row_once_and_back(many):
    forward, back = walk(many.client, "mine")
    assert forward == [many.mine_order[0:2], many.mine_order[2:3]]
    assert back == forward[::-1]


def test_a_later_page_says_which_rows_it_shows(many):
    html = many.client.get("/proposals").get_data(as_text=True)
    second = many.client.get(pager_link(html, "open", "next")).get_data(as_text=True)
    assert "Showing 3–4." in visible_text(section(second, "open"))
    assert "Showing 1–2." in visible_text(section(second, "mine"))


@pytest.mark.parametrize(
    "query",
    [
        "open_after=nonsense",
        "open_before=0~2024-13-45~x",
        "open_after=1~99999999999999999999~2030-01-01~00000000-0000-0000-0000-000000000000",
        "open_after=1~0~0000-01-01~00000000-0000-0000-0000-000000000000",
        "open_before=%00",
        "mine_after=1~not-a-time~00000000-0000-0000-0000-000000000000",
        "mine_before=2~2030-01-01T00:00:00~not-a-uuid",
        "mine_after=" + "9" * 500,
        "mine_after=1~2030-01-01~00000000-0000-0000-0000-000000000000~extra",
    ],
)
def test_a_key_that_is_not_one_shows_the_first_page(many, query):
    response = many.client.get(f"/proposals?{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert titles(html, "open") == many.open_order[:2] and titles(html, "mine") == many.mine_order[:2]


def test_a_link_past_the_last_row_says_so_and_leads_back(many):
    past = "mine_after=9~2000-01-01T00:00:00%2B00:00~00000000-0000-0000-0000-000000000000"
    mine = visible_text(section(many.client.get(f"/proposals?{past}").get_data(as_text=True), "mine"))
    assert "No more proposals past this point." in mine and "You have not proposed" not in mine


def test_the_home_page_counts_every_project_open_to_the_contractor_not_one_page(many):
    # Alder, Birch, Cedar, Damson, Elder: not Fir (deadline passed), Ginkgo (not invited), nor those proposed on.
    assert "5 projects open to your proposals" in visible_text(many.client.get("/").get_data(as_text=True))


def test_the_contractors_proposals_page_stacks_both_tables_with_a_label_on_each_cell(x, world, app_sessions):
    renovation = category(app_sessions, world)
    proposed = open_project(app_sessions, world, title="Office refit", category_id=renovation)
    open_project(app_sessions, world, title="Lobby refit", category_id=renovation)
    assert submit(x, proposed).status_code == 303
    html = x.get("/proposals").get_data(as_text=True)
    assert 'class="table-scroll"' not in html  # a phone stacks the rows instead of scrolling them sideways
    tables = re.findall(r'<table class="striped proposal-list stack">.*?</table>', html, re.DOTALL)
    assert len(tables) == 2
    open_row, mine_row = (re.search(r"<tbody>\s*<tr[^>]*>(.*?)</tr>", t, re.DOTALL).group(1) for t in tables)
    assert re.findall(r'<td\b[^>]*\bdata-label="([^"]*)"', open_row) == ["Project", "Budget", "Status"]
    assert re.findall(r'<td\b[^>]*\bdata-label="([^"]*)"', mine_row) == ["Project", "Your price", "Status"]
