"""Marking a milestone complete through the web: the contractor's user posts a note, links and files to
/milestones/<id>/submit. Good evidence is stored with its sha256 and the type sniffed from its content;
any problem (a limit, a refused type, an empty file, a path for a name, no evidence, a bad link) is a
422 naming the file and the reason at the field, and nothing of that submission is kept."""

from __future__ import annotations

import hashlib
import html as html_lib
import io
import re
import struct

import pytest
from kit.engagements import create_active, milestones_of, perform
from kit.files import PDF, PNG
from kit.web import HTMX, csrf_token, flashes, signed_in
from sqlalchemy import text

TEXT = b"Snag list: all items closed.\n"
HTML = b"<!DOCTYPE html><html><head><script>alert(1)</script></head><body>report</body></html>"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 62, 1) + b"\x00" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 50 + b"PE\x00\x00"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><script>alert(1)</script></svg>'
)
NOTE = "Floor plans done, signed off on site."
MB = 1024 * 1024


@pytest.fixture
def milestone(world, app_sessions, admin_engine):
    """The first milestone (Design, $1,000.00) of an active engagement of the owner's with contractor X."""
    eid = create_active(app_sessions, world)
    return milestones_of(admin_engine, eid)[0].id


@pytest.fixture
def contractor(app, world, login):
    return signed_in(app, login, world.contractor_x_user)


def page(mid) -> str:
    return f"/milestones/{mid}"


def files_field(*files: tuple[str, bytes]) -> list:
    return [(io.BytesIO(data), name) for name, data in files]


def submit(client, mid, *, note=NOTE, links="", files=(), token=True, headers=None):
    data = {"note": note, "links": links, "files": files_field(*files)}
    if token:
        data["csrf_token"] = csrf_token(client, page(mid))
    return client.post(f"{page(mid)}/submit", data=data, content_type="multipart/form-data", headers=headers or {})


def files_error(html: str) -> str | None:
    match = re.search(r'<small id="files-error" class="field-error[^"]*">([^<]*)</small>', html)
    return html_lib.unescape(match.group(1)) if match else None


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<small id="{field}-error" class="field-error[^"]*">([^<]*)</small>', html)
    return html_lib.unescape(match.group(1)) if match else None


def snapshot(admin_engine, org_id) -> dict:
    """What a submission writes, as the owner role sees it."""
    with admin_engine.connect() as conn:

        def rows(sql):
            return [tuple(r) for r in conn.execute(text(sql), {"o": org_id})]

        return {
            "submissions": rows("select * from submissions where org_id = :o order by id"),
            "evidence_files": rows("select * from evidence_files where org_id = :o order by id"),
            "evidence_chunks": rows(
                "select file_id, chunk_no, md5(data) from evidence_chunks where org_id = :o order by 1, 2"
            ),
            "milestones": rows("select * from milestones where org_id = :o order by id"),
            "audit": rows("select seq from audit_events where org_id = :o and action = 'milestone.submitted'"),
        }


def stored_files(admin_engine, mid) -> list[dict]:
    with admin_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "select f.file_name, f.content_type, f.size_bytes, f.sha256,"
                    "       (select string_agg(c.data, ''::bytea order by c.chunk_no)"
                    "          from evidence_chunks c where c.file_id = f.id) as data"
                    "  from evidence_files f join submissions s on s.id = f.submission_id"
                    " where s.milestone_id = :m order by f.position"
                ),
                {"m": mid},
            ).mappings()
        ]


def owner_query(admin_engine, sql: str, **params) -> list[dict]:
    with admin_engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def set_limits(admin_engine, org_id, **limits) -> None:
    """Tighten the organization's evidence limits (as the owner role)."""
    sets = ", ".join(f"{k} = :{k}" for k in limits)
    with admin_engine.begin() as conn:
        conn.execute(text(f"update organizations set {sets} where id = :o"), {**limits, "o": org_id})


def milestone_status(admin_engine, mid) -> str:
    with admin_engine.connect() as conn:
        return conn.execute(text("select status from milestones where id = :m"), {"m": mid}).scalar_one()


# --- a good submission -----------------------------------------------------------------------------


def test_contractor_submits_note_files_and_link_and_sees_it_submitted(contractor, milestone, admin_engine):
    response = submit(
        contractor,
        milestone,
        links="https://drive.example.com/plans\n",
        files=[("plan.png", PNG), ("sign-off.pdf", PDF)],
    )

    assert response.status_code == 303
    assert response.headers["Location"] == page(milestone)
    shown = contractor.get(response.headers["Location"]).get_data(as_text=True)
    assert any("Revision 1 submitted" in f for f in flashes(shown))
    assert milestone_status(admin_engine, milestone) == "submitted"
    files = stored_files(admin_engine, milestone)
    assert [(f["file_name"], f["content_type"], f["size_bytes"], f["sha256"]) for f in files] == [
        ("plan.png", "image/png", len(PNG), hashlib.sha256(PNG).hexdigest()),
        ("sign-off.pdf", "application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest()),
    ]
    assert [bytes(f["data"]) for f in files] == [PNG, PDF]
    sub = owner_query(
        admin_engine, "select revision, note, links from submissions where milestone_id = :m", m=milestone
    )
    assert sub == [{"revision": 1, "note": NOTE, "links": ["https://drive.example.com/plans"]}]


def test_a_link_alone_is_enough_evidence(contractor, milestone, admin_engine):
    response = submit(contractor, milestone, links="https://example.com/site-photos")
    assert response.status_code == 303
    assert milestone_status(admin_engine, milestone) == "submitted"
    assert stored_files(admin_engine, milestone) == []


# --- refusals: 422, the message at the field, nothing stored ---------------------------------------


def refused(contractor, milestone, admin_engine, org_id, field: str, **kwargs) -> str:
    """Post, expect a 422 that stored nothing, and return the message at ``field``."""
    before = snapshot(admin_engine, org_id)
    response = submit(contractor, milestone, **kwargs)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert snapshot(admin_engine, org_id) == before
    assert "Nothing was submitted" in html
    message = files_error(html) if field == "files" else field_error(html, field)
    assert message, f"a message at {field}"
    return message


def test_more_files_than_the_org_allows_are_refused(contractor, milestone, admin_engine, world):
    set_limits(admin_engine, world.org_a, evidence_max_files=2)
    message = refused(
        contractor,
        milestone,
        admin_engine,
        world.org_a,
        "files",
        files=[("a.txt", TEXT), ("b.txt", TEXT), ("c.txt", TEXT)],
    )
    assert "at most 2 files" in message and "you chose 3" in message


def test_a_file_over_the_orgs_per_file_limit_is_refused(contractor, milestone, admin_engine, world):
    set_limits(admin_engine, world.org_a, evidence_max_file_mb=1)
    message = refused(
        contractor,
        milestone,
        admin_engine,
        world.org_a,
        "files",
        files=[("plan.png", PNG), ("survey.txt", b"a" * int(1.1 * MB))],
    )
    assert "“survey.txt”" in message
    assert "1.1 MB, more than the 1 MB allowed per file" in message
    assert "plan.png" not in message


def test_files_adding_up_to_more_than_the_submission_limit_are_refused(contractor, milestone, admin_engine, world):
    set_limits(admin_engine, world.org_a, evidence_max_submission_mb=1)
    message = refused(
        contractor,
        milestone,
        admin_engine,
        world.org_a,
        "files",
        files=[("one.txt", b"a" * int(0.6 * MB)), ("two.txt", b"b" * int(0.6 * MB))],
    )
    assert "add up to 1.2 MB" in message and "at most 1 MB" in message


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("report.txt", HTML, "is not an accepted type (it looks like text/html)"),
        ("tool.png", ELF, "is not an accepted type (it looks like application/x-executable)"),
        ("setup.exe", EXE, "is not an accepted type (it looks like application/x-dosexec)"),
        ("scan.pdf", PNG, "is named .pdf but its content is a PNG image"),
        ("logo.svg", SVG, "is not an accepted type (it looks like image/svg+xml)"),
        ("empty.txt", b"", "is empty"),
    ],
    ids=["html-named-txt", "elf", "exe", "png-named-pdf", "svg", "empty"],
)
def test_refused_file_types_are_named_with_the_reason_and_nothing_is_kept(
    contractor, milestone, admin_engine, world, name, data, reason
):
    message = refused(
        contractor,
        milestone,
        admin_engine,
        world.org_a,
        "files",
        files=[("plan.png", PNG), (name, data)],
        links="https://example.com/x",
    )
    assert f"“{name}” {reason}" in message
    assert "plan.png" not in message


# Werkzeug reads the multipart header's quoted string, so "C:\\x.txt" arrives as "C:x.txt": still a drive path.
@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd.txt", "“../../etc/passwd.txt”"),
        ("C:\\x.txt", "“C:"),
        ("a/b.txt", "“a/b.txt”"),
    ],
    ids=["dot-dot", "drive", "folder"],
)
def test_names_that_try_a_path_are_refused(contractor, milestone, admin_engine, world, name, shown):
    message = refused(
        contractor, milestone, admin_engine, world.org_a, "files", files=[("plan.png", PNG), (name, TEXT)]
    )
    assert message.startswith(shown)
    assert "x.txt" in message or name in message
    assert "has a folder path in its name; upload the file itself" in message


def test_a_submission_without_files_or_links_is_refused(contractor, milestone, admin_engine, world):
    message = refused(contractor, milestone, admin_engine, world.org_a, "evidence")
    assert message == "Attach at least one file or add a link to the work."


def test_a_submission_without_a_note_is_refused(contractor, milestone, admin_engine, world):
    message = refused(contractor, milestone, admin_engine, world.org_a, "note", note="   ", files=[("plan.png", PNG)])
    assert message.startswith("Enter the note")


@pytest.mark.parametrize("link", ["javascript:alert(document.cookie)", "ftp://files.example.com/plans.pdf"])
def test_links_other_than_http_are_refused(contractor, milestone, admin_engine, world, link):
    message = refused(
        contractor,
        milestone,
        admin_engine,
        world.org_a,
        "links",
        links=f"https://example.com/ok\n{link}",
        files=[("plan.png", PNG)],
    )
    assert "Line 2" in message and link[:40] in message and "is not a web link" in message


def test_htmx_refusal_returns_only_the_form_with_errors_and_the_typed_note(contractor, milestone, admin_engine, world):
    before = snapshot(admin_engine, world.org_a)
    token = csrf_token(contractor, page(milestone))
    response = contractor.post(
        f"{page(milestone)}/submit",
        content_type="multipart/form-data",
        data={"note": "Plans & sections, see file", "links": "", "files": files_field(("logo.svg", SVG))},
        headers={**HTMX, "X-CSRFToken": token},
    )

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="submit-form"')
    assert "<html" not in html and "<nav" not in html
    assert "“logo.svg” is not an accepted type" in files_error(html)
    note = re.search(r'<textarea id="note"[^>]*>(.*?)</textarea>', html, re.DOTALL)
    assert note and html_lib.unescape(note.group(1)) == "Plans & sections, see file"
    assert snapshot(admin_engine, world.org_a) == before


def test_submission_without_csrf_token_is_rejected_and_stores_nothing(contractor, milestone, admin_engine, world):
    contractor.get(page(milestone))
    before = snapshot(admin_engine, world.org_a)
    response = submit(contractor, milestone, token=False, files=[("plan.png", PNG)])
    assert response.status_code == 400
    assert snapshot(admin_engine, world.org_a) == before


# --- who may submit --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_staff_cannot_submit_work(app, login, world, milestone, admin_engine, who):
    staff = signed_in(app, login, getattr(world, who))
    before = snapshot(admin_engine, world.org_a)
    response = submit(staff, milestone, files=[("plan.png", PNG)])
    assert response.status_code == 403
    assert snapshot(admin_engine, world.org_a) == before


@pytest.mark.parametrize("who", ["contractor_y_user", "contractor_z_user"])
def test_other_contractors_get_not_found(app, login, world, milestone, admin_engine, who):
    other = signed_in(app, login, getattr(world, who))
    before = (snapshot(admin_engine, world.org_a), snapshot(admin_engine, world.org_b))
    assert other.get(page(milestone)).status_code == 404
    token = csrf_token(other, "/")
    response = other.post(
        f"{page(milestone)}/submit",
        content_type="multipart/form-data",
        data={"note": NOTE, "files": files_field(("plan.png", PNG)), "csrf_token": token},
    )
    assert response.status_code == 404
    assert (snapshot(admin_engine, world.org_a), snapshot(admin_engine, world.org_b)) == before


def test_a_submitted_milestone_cannot_be_submitted_again(contractor, milestone, admin_engine, world):
    assert submit(contractor, milestone, files=[("plan.png", PNG)]).status_code == 303
    before = snapshot(admin_engine, world.org_a)
    # The form is gone from the page; a second post (an old tab) is a conflict.
    contractor.get(page(milestone))
    token = csrf_token(contractor, "/")
    response = contractor.post(
        f"{page(milestone)}/submit",
        content_type="multipart/form-data",
        data={"note": "again", "files": files_field(("sign-off.pdf", PDF)), "csrf_token": token},
    )
    assert response.status_code == 409
    assert "only a planned milestone is marked complete" in html_lib.unescape(response.get_data(as_text=True))
    assert snapshot(admin_engine, world.org_a) == before


# --- who sees the form -----------------------------------------------------------------------------


def has_form(client, mid) -> bool:
    response = client.get(page(mid))
    assert response.status_code == 200
    return 'id="submit-form"' in response.get_data(as_text=True)


def test_only_the_engagements_contractor_sees_the_form_on_a_planned_milestone(app, login, world, contractor, milestone):
    assert has_form(contractor, milestone)
    for who in (world.owner, world.admin, world.finance):
        assert not has_form(signed_in(app, login, who), milestone), who.name


def test_the_form_is_gone_once_submitted(contractor, milestone):
    assert submit(contractor, milestone, files=[("plan.png", PNG)]).status_code == 303
    assert not has_form(contractor, milestone)


def test_no_form_while_the_engagement_is_paused(contractor, milestone, world, app_sessions, admin_engine):
    with admin_engine.connect() as conn:
        eid = conn.execute(text("select engagement_id from milestones where id = :m"), {"m": milestone}).scalar_one()
    perform(app_sessions, world.owner, world.org_a, eid, "pause")
    response = contractor.get(page(milestone))
    html = response.get_data(as_text=True)
    assert 'id="submit-form"' not in html
    assert "Work is submitted while the engagement is active; it is paused." in html


def test_htmx_submission_on_a_milestone_no_longer_planned_replaces_only_the_form(
    contractor, milestone, admin_engine, world
):
    assert submit(contractor, milestone, files=[("plan.png", PNG)]).status_code == 303
    before = snapshot(admin_engine, world.org_a)
    token = csrf_token(contractor, "/")  # another tab still shows the form
    response = contractor.post(
        f"{page(milestone)}/submit",
        content_type="multipart/form-data",
        data={"note": "again", "files": files_field(("sign-off.pdf", PDF))},
        headers={**HTMX, "X-CSRFToken": token},
    )
    assert snapshot(admin_engine, world.org_a) == before
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "only a planned milestone is marked complete" in html_lib.unescape(html)
    # htmx swaps a 409 in place of the form (outerHTML): a whole page there would nest the page in itself.
    assert "<html" not in html and "<nav" not in html
    assert 'id="submit-form"' in html
