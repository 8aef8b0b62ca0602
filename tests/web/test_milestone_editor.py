"""A draft's milestone editor and CSV import, as the project owner uses them: every message at its field
with what was typed kept, rows added, removed and moved without saving, saves that add up exactly, the
htmx fragment and redirect, and the import's preview, confirm and refusals."""

from __future__ import annotations

import base64
import html as html_lib
import io
import re

import pytest
from kit.engagements import create_draft, create_sent, milestones_of
from kit.web import (
    HTMX,
    csrf_token,
    field_error,
    flashes,
    followed,
    htmx_post,
    input_value,
    post,
    signed_in,
    textarea_value,
    visible_text,
)


@pytest.fixture
def owner(app, world, login):
    return signed_in(app, login, world.owner)


@pytest.fixture
def draft(world, app_sessions):
    """An empty draft of the owner's, in USD."""
    return create_draft(app_sessions, world, rows=())


@pytest.fixture
def scheduled(world, app_sessions):
    """A draft of the owner's with Design $1,000.00, Build $2,000.00, Handover $500.00."""
    return create_draft(app_sessions, world)


def form(rows, *, mode="amounts", contract_value="", op="save") -> dict:
    """The editor's fields for these rows (dicts of title, deliverable, amount, percent, due_date, id)."""
    data = {"mode": mode, "contract_value": contract_value, "op": op}
    for i, row in enumerate(rows):
        for key in ("id", "title", "deliverable", "amount", "percent", "due_date"):
            data[f"rows-{i}-{key}"] = row.get(key, "")
    return data


def row(title="Design", amount="1,000.00", due_date="2030-01-15", deliverable="", percent="", id=""):
    return {
        "title": title,
        "amount": amount,
        "due_date": due_date,
        "deliverable": deliverable,
        "percent": percent,
        "id": id,
    }


def editor(eid) -> str:
    return f"/engagements/{eid}/milestones"


def save(client, eid, data):
    return post(client, editor(eid), data)


def titles_in_form(html: str) -> list[str]:
    """The titles of the editor's rows, in order."""
    values = []
    i = 0
    while (value := input_value(html, f"rows-{i}-title")) is not None:
        values.append(value)
        i += 1
    return values


def saved(admin_engine, eid) -> list[tuple[str, int]]:
    return [(m.title, m.amount_minor) for m in milestones_of(admin_engine, eid)]


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, field, message",
    [
        ({"title": ""}, "title", "Enter the title."),
        ({"title": "  "}, "title", "Enter the title."),
        ({"amount": ""}, "amount", "Enter an amount."),
        ({"amount": "€1.250,00"}, "amount", "This engagement is in USD; enter the amount without the € sign."),
        ({"amount": "12,50"}, "amount", "Use a point before the decimals and commas between thousands, like 1,250.00."),
        ({"amount": "0"}, "amount", "Enter an amount greater than zero."),
        ({"amount": "-5.00"}, "amount", "Enter an amount greater than zero."),
        ({"amount": "1.255"}, "amount", "USD amounts have at most 2 decimals, like 1,250.00."),
        ({"due_date": "2026-13-01"}, "due_date", "2026-13-01 is not a date on the calendar."),
        ({"due_date": "03/04/2026"}, "due_date", "Enter the due date as YYYY-MM-DD, for example 2026-12-31."),
        ({"due_date": ""}, "due_date", "Enter the due date."),
    ],
)
def test_a_bad_row_is_refused_at_its_field_with_what_was_typed_kept(
    owner, world, draft, admin_engine, bad, field, message
):
    rows = [
        row("Design", "1,000.00", "2030-01-15", deliverable="Plans"),
        {**row("Build", "2,000.00", "2030-03-01"), **bad},
    ]
    response = save(owner, draft, form(rows))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, f"rows-1-{field}") == message
    assert field_error(html, f"rows-0-{field}") is None  # the good row has no message
    assert "Nothing was saved." in visible_text(html)
    # every value comes back as typed
    for i, r in enumerate(rows):
        for key in ("title", "amount", "due_date"):
            assert input_value(html, f"rows-{i}-{key}") == r[key], (i, key)
    assert textarea_value(html, "rows-0-deliverable") == "Plans"
    assert saved(admin_engine, draft) == []


def test_a_euro_amount_written_the_continental_way_is_explained(app, world, login, app_sessions, admin_engine):
    eid = create_draft(
        app_sessions,
        world,
        by=world.admin_b,
        org_id=world.org_b,
        contractor_id=world.contractor_z,
        owner_user_id=world.admin_b.id,
        rows=(),
    )
    admin_b = signed_in(app, login, world.admin_b)
    response = save(admin_b, eid, form([row(amount="€1.250,00")]))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert (
        field_error(html, "rows-0-amount")
        == "Use a point before the decimals and commas between thousands, like 1,250.00."
    )
    assert input_value(html, "rows-0-amount") == "€1.250,00"
    assert saved(admin_engine, eid) == []


def test_every_bad_row_gets_its_own_message(owner, world, draft, admin_engine):
    rows = [row(title=""), row("Build", amount="12,50"), row("Paint", due_date="03/04/2026"), row("Tiles")]
    response = save(owner, draft, form(rows))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "rows-0-title") == "Enter the title."
    assert field_error(html, "rows-1-amount").startswith("Use a point before the decimals")
    assert field_error(html, "rows-2-due_date").startswith("Enter the due date as YYYY-MM-DD")
    assert not any(field_error(html, f"rows-3-{f}") for f in ("title", "amount", "due_date"))
    assert saved(admin_engine, draft) == []


def test_a_failed_save_leaves_the_saved_schedule_as_it_was(owner, world, scheduled, admin_engine):
    before = milestones_of(admin_engine, scheduled)
    rows = [row("Design renamed", "1,100.00", id=str(before[0].id)), row("Build", "0", id=str(before[1].id))]
    response = save(owner, scheduled, form(rows))
    assert response.status_code == 422
    assert milestones_of(admin_engine, scheduled) == before


def test_saving_no_milestones_at_all_is_refused(owner, world, draft, admin_engine):
    response = save(owner, draft, form([row(title="", amount="", due_date="")]))
    assert response.status_code == 422
    assert "Add at least one milestone." in visible_text(response.get_data(as_text=True))
    assert saved(admin_engine, draft) == []


# --- add, remove, move: nothing saved --------------------------------------------------------------


def test_add_appends_an_empty_row_and_saves_nothing(owner, world, draft, admin_engine):
    rows = [row("Design"), row("Build", "2,000.00", "2030-03-01")]
    response = save(owner, draft, form(rows, op="add"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert titles_in_form(html) == ["Design", "Build", ""]
    assert input_value(html, "rows-1-amount") == "2,000.00"
    assert field_error(html, "rows-2-title") is None  # a new row is not an error yet
    assert saved(admin_engine, draft) == []


def test_remove_takes_out_that_row_and_saves_nothing(owner, world, scheduled, admin_engine):
    before = milestones_of(admin_engine, scheduled)
    rows = [row(m.title, f"{m.amount_minor / 100:,.2f}", m.due_date.isoformat(), id=str(m.id)) for m in before]
    response = save(owner, scheduled, form(rows, op="remove-1"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert titles_in_form(html) == ["Design", "Handover"]
    assert input_value(html, "rows-1-amount") == "500.00"
    assert input_value(html, "rows-1-id") == str(before[2].id)
    assert milestones_of(admin_engine, scheduled) == before


@pytest.mark.parametrize(
    "op, order",
    [
        ("up-2", ["Design", "Handover", "Build"]),
        ("down-0", ["Build", "Design", "Handover"]),
        ("up-0", ["Design", "Build", "Handover"]),  # the first row cannot go higher
        ("down-2", ["Design", "Build", "Handover"]),  # nor the last lower
    ],
)
def test_moving_a_row_reorders_the_form_and_saves_nothing(owner, world, scheduled, admin_engine, op, order):
    before = milestones_of(admin_engine, scheduled)
    rows = [row(m.title, f"{m.amount_minor / 100:,.2f}", m.due_date.isoformat(), id=str(m.id)) for m in before]
    response = save(owner, scheduled, form(rows, op=op))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert titles_in_form(html) == order
    amounts = {"Design": "1,000.00", "Build": "2,000.00", "Handover": "500.00"}
    assert [input_value(html, f"rows-{i}-amount") for i in range(3)] == [amounts[t] for t in order]
    assert milestones_of(admin_engine, scheduled) == before


def test_a_reordered_schedule_is_saved_in_its_new_order(owner, world, scheduled, admin_engine):
    before = milestones_of(admin_engine, scheduled)
    rows = [row(m.title, f"{m.amount_minor / 100:,.2f}", m.due_date.isoformat(), id=str(m.id)) for m in before]
    moved = save(owner, scheduled, form(rows, op="up-2")).get_data(as_text=True)
    order = [input_value(moved, f"rows-{i}-id") for i in range(3)]
    reordered = [next(r for r in rows if r["id"] == ident) for ident in order]
    response = save(owner, scheduled, form(reordered))
    assert response.status_code == 303
    after = milestones_of(admin_engine, scheduled)
    assert [m.title for m in after] == ["Design", "Handover", "Build"]
    assert [str(m.id) for m in after] == order  # the same milestones, not new ones


# --- saving ----------------------------------------------------------------------------------------


def test_the_editor_shows_the_saved_schedule(owner, world, scheduled):
    html = owner.get(editor(scheduled)).get_data(as_text=True)
    assert titles_in_form(html) == ["Design", "Build", "Handover"]
    assert input_value(html, "rows-1-amount") == "2,000.00"
    assert input_value(html, "rows-2-due_date") == "2030-04-30"


def test_saving_amounts_stores_each_as_typed(owner, world, draft, admin_engine):
    rows = [
        row("Design", "1,250.50", "2030-01-15", deliverable="Plans"),
        row("Build", "USD 80", "2030-03-01"),
        row("", "", ""),
    ]  # an untouched blank row is left out
    response = save(owner, draft, form(rows))
    page = followed(owner, response, f"/engagements/{draft}")
    assert "Saved 2 milestones." in flashes(page)
    stored = milestones_of(admin_engine, draft)
    assert [(m.seq, m.title, m.deliverable, m.amount_minor, m.due_date.isoformat()) for m in stored] == [
        (1, "Design", "Plans", 125050, "2030-01-15"),
        (2, "Build", "", 8000, "2030-03-01"),
    ]


@pytest.mark.parametrize(
    "contract_value, percents, expected",
    [
        ("999.99", ["40", "60"], [40000, 59999]),
        ("100.00", ["33.33", "33.33", "33.34"], [3333, 3333, 3334]),
        ("0.10", ["33.33", "33.33", "33.34"], [3, 3, 4]),
        ("1,000.01", ["12.5", "12.5", "75%"], [12500, 12500, 75001]),
    ],
)
def test_saving_percentages_allocates_exactly_the_contract_value(
    owner, world, draft, admin_engine, contract_value, percents, expected
):
    rows = [row(f"Part {n}", amount="", percent=p) for n, p in enumerate(percents)]
    response = save(owner, draft, form(rows, mode="percent", contract_value=contract_value))
    assert response.status_code == 303
    amounts = [a for _, a in saved(admin_engine, draft)]
    assert amounts == expected
    assert sum(amounts) == round(float(contract_value.replace(",", "")) * 100)


@pytest.mark.parametrize(
    "contract_value, count, expected",
    [("100.00", 3, [3334, 3333, 3333]), ("18,000.00", 3, [600000, 600000, 600000]), ("0.05", 3, [2, 2, 1])],
)
def test_saving_an_equal_split_adds_up_exactly(owner, world, draft, admin_engine, contract_value, count, expected):
    rows = [row(f"Part {n}", amount="") for n in range(count)]
    response = save(owner, draft, form(rows, mode="equal", contract_value=contract_value))
    assert response.status_code == 303
    assert [a for _, a in saved(admin_engine, draft)] == expected


def test_percentages_that_do_not_add_up_to_100_are_refused(owner, world, draft, admin_engine):
    rows = [row("A", amount="", percent="40"), row("B", amount="", percent="50")]
    response = save(owner, draft, form(rows, mode="percent", contract_value="1,000.00"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The percentages add up to 90%; they must add up to exactly 100%." in visible_text(html)
    assert input_value(html, "rows-1-percent") == "50"
    assert input_value(html, "contract_value") == "1,000.00"
    assert saved(admin_engine, draft) == []


@pytest.mark.parametrize(
    "contract_value, message",
    [
        ("", "Enter an amount."),
        ("0.02", "Too small to give every milestone an amount; enter a larger contract value or fewer milestones."),
    ],
)
def test_an_equal_split_needs_a_contract_value_that_covers_every_milestone(
    owner, world, draft, admin_engine, contract_value, message
):
    rows = [row(f"Part {n}", amount="") for n in range(3)]
    response = save(owner, draft, form(rows, mode="equal", contract_value=contract_value))
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "contract_value") == message
    assert saved(admin_engine, draft) == []


def test_update_amounts_shows_the_split_without_saving(owner, world, draft, admin_engine):
    rows = [row(f"Part {n}", amount="") for n in range(3)]
    response = save(owner, draft, form(rows, mode="equal", contract_value="100.00", op="refresh"))
    assert response.status_code == 200
    text_ = visible_text(response.get_data(as_text=True))
    assert "$33.34" in text_ and "$33.33" in text_ and "$100.00" in text_
    assert saved(admin_engine, draft) == []


def test_saving_an_edited_schedule_updates_keeps_and_removes_milestones(owner, world, scheduled, admin_engine):
    design, build, handover = milestones_of(admin_engine, scheduled)
    rows = [
        row("Design and permits", "1,200.00", "2030-01-20", id=str(design.id)),
        row("Handover", "500.00", "2030-04-30", id=str(handover.id)),
        row("Snagging", "150.00", "2030-05-15"),
    ]
    response = save(owner, scheduled, form(rows))
    assert response.status_code == 303
    after = milestones_of(admin_engine, scheduled)
    assert [(m.title, m.amount_minor) for m in after] == [
        ("Design and permits", 120000),
        ("Handover", 50000),
        ("Snagging", 15000),
    ]
    assert after[0].id == design.id and after[1].id == handover.id
    assert build.id not in {m.id for m in after}


# --- htmx ------------------------------------------------------------------------------------------


def test_an_htmx_request_gets_just_the_form(owner, world, draft, admin_engine):
    response = htmx_post(owner, editor(draft), form([row("Design")], op="add"), token_from=editor(draft))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<body" not in html
    assert 'id="schedule-form"' in html
    assert titles_in_form(html) == ["Design", ""]
    assert "HX-Request" in response.headers.get("Vary", "")
    assert saved(admin_engine, draft) == []


def test_an_htmx_save_with_errors_gets_the_form_back_with_the_messages(owner, world, draft, admin_engine):
    response = htmx_post(owner, editor(draft), form([row(amount="12,50")]), token_from=editor(draft))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert field_error(html, "rows-0-amount").startswith("Use a point before the decimals")
    assert input_value(html, "rows-0-amount") == "12,50"
    assert saved(admin_engine, draft) == []


def test_a_successful_htmx_save_redirects_the_browser_to_the_engagement(owner, world, draft, admin_engine):
    response = htmx_post(
        owner, editor(draft), form([row("Design"), row("Build", "2,000.00")]), token_from=editor(draft)
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/engagements/{draft}"
    assert response.get_data(as_text=True) == ""
    assert saved(admin_engine, draft) == [("Design", 100000), ("Build", 200000)]
    assert "Saved 2 milestones." in flashes(owner.get(f"/engagements/{draft}").get_data(as_text=True))


def test_a_boosted_request_gets_the_whole_page(owner, world, draft):
    token = csrf_token(owner, editor(draft))
    response = owner.post(
        editor(draft),
        data=form([row("Design")], op="add"),
        headers={**HTMX, "HX-Boosted": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert "<html" in response.get_data(as_text=True)


def test_an_htmx_save_without_the_csrf_header_is_refused(owner, world, draft, admin_engine):
    owner.get(editor(draft))
    response = owner.post(editor(draft), data=form([row("Design")]), headers=HTMX)
    assert response.status_code == 400
    assert saved(admin_engine, draft) == []


# --- who may edit ----------------------------------------------------------------------------------


def test_the_editor_of_a_sent_engagement_sends_you_back_with_a_message(owner, world, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    response = owner.get(editor(eid))
    page = followed(owner, response, f"/engagements/{eid}")
    assert "The work request has been sent, so milestones change by change order now." in flashes(page)
    before = milestones_of(admin_engine, eid)
    response = post(owner, editor(eid), form([row("Sneaky", "1.00")]), token_from=f"/engagements/{eid}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/engagements/{eid}"
    assert milestones_of(admin_engine, eid) == before


@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_finance_and_contractors_cannot_use_the_editor(app, world, login, scheduled, admin_engine, who):
    c = signed_in(app, login, getattr(world, who))
    assert c.get(editor(scheduled)).status_code == 403
    before = milestones_of(admin_engine, scheduled)
    response = post(c, editor(scheduled), form([row("Sneaky", "1.00")]), token_from="/engagements")
    assert response.status_code == 403
    assert milestones_of(admin_engine, scheduled) == before


def test_an_owner_cannot_edit_another_owners_schedule(app, world, login, app_sessions, admin_engine):
    eid = create_draft(app_sessions, world, by=world.admin, owner_user_id=world.admin.id)
    owner = signed_in(app, login, world.owner)
    assert owner.get(editor(eid)).status_code == 403
    before = milestones_of(admin_engine, eid)
    assert post(owner, editor(eid), form([row("Sneaky")]), token_from="/engagements").status_code == 403
    assert milestones_of(admin_engine, eid) == before


def test_another_organizations_schedule_is_not_found(app, world, login, scheduled, admin_engine):
    admin_b = signed_in(app, login, world.admin_b)
    assert admin_b.get(editor(scheduled)).status_code == 404
    before = milestones_of(admin_engine, scheduled)
    assert post(admin_b, editor(scheduled), form([row("Sneaky")]), token_from="/engagements").status_code == 404
    assert admin_b.get(f"/engagements/{scheduled}/milestones/import").status_code == 404
    assert milestones_of(admin_engine, scheduled) == before


# --- CSV import ------------------------------------------------------------------------------------

GOOD_CSV = (
    "Title,Deliverable,Amount,Due date\r\n"
    'Survey,Load schedule,"1,500.00",2030-01-10\r\n'
    "Rewire,New circuits,4800,2030-02-20\r\n"
    "Certify,,250.75,2030-03-05\r\n"
)


def importer(eid) -> str:
    return f"/engagements/{eid}/milestones/import"


def upload(client, eid, content: bytes | None, filename: str = "schedule.csv", token_from: str | None = None):
    data = {"csrf_token": csrf_token(client, token_from or importer(eid))}
    if content is not None:
        data["file"] = (io.BytesIO(content), filename)
    return client.post(importer(eid), data=data, content_type="multipart/form-data")


def preview_rows(html: str) -> dict[int, list[str]]:
    """Spreadsheet row number -> the problems the preview lists for it ("Column: message"), [] when OK."""
    table = re.search(r'<table class="striped import-preview">.*?</table>', html, re.DOTALL)
    assert table, "a preview table"
    rows = {}
    for number, body in re.findall(r'<th scope="row">(\d+)</th>(.*?)</tr>', table.group(0), re.DOTALL):
        rows[int(number)] = [visible_text(li) for li in re.findall(r"<li>(.*?)</li>", body, re.DOTALL)]
    return rows


def confirm_fields(html: str) -> dict[str, str]:
    form_ = re.search(
        r'<form method="post" action="(/engagements/[^"]+/milestones/import/confirm)".*?</form>', html, re.DOTALL
    )
    assert form_, "a confirm form"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form_.group(0)))
    return {k: html_lib.unescape(v) for k, v in fields.items()}


def test_the_template_downloads_as_a_csv_attachment_with_the_header_row(owner, world):
    response = owner.get("/engagements/milestones-template.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert 'filename="milestone-schedule-template.csv"' in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "Title,Deliverable,Amount,Due date"
    assert len(lines) > 1


def test_the_template_shows_amounts_the_engagements_way(owner, world):
    body = owner.get("/engagements/milestones-template.csv?currency=JPY").get_data(as_text=True)
    assert '"1,250"' in body and "1,250.00" not in body


def test_the_downloaded_template_imports_as_it_is(owner, world, draft):
    template = owner.get("/engagements/milestones-template.csv").get_data()
    response = upload(owner, draft, template, "milestone-schedule-template.csv")
    assert response.status_code == 200
    assert preview_rows(response.get_data(as_text=True)) == {2: [], 3: []}


def test_a_file_with_errors_lists_every_bad_row_by_its_spreadsheet_number(owner, world, draft, admin_engine):
    content = (
        b"Title,Deliverable,Amount,Due date\n"  # row 1
        b"Design,Plans,1000.00,2030-01-15\n"  # row 2: fine
        b",No title,500.00,2030-02-01\n"  # row 3
        b'Build,,"12,50",2030-03-01\n'  # row 4
        b",,,\n"  # row 5: blank, skipped
        b"Paint,,300.00,03/04/2026\n"  # row 6
        b"Tiles,,0,2026-13-01\n"  # row 7: two problems
    )
    response = upload(owner, draft, content)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing will be imported." in visible_text(html)
    assert "4 rows of 5 have errors" in visible_text(html)
    assert {n: sorted(problems) for n, problems in preview_rows(html).items()} == {
        2: [],
        3: ["Title: Enter the title."],
        4: ["Amount: Use a point before the decimals and commas between thousands, like 1,250.00."],
        6: ["Due date: Enter the due date as YYYY-MM-DD, for example 2026-12-31."],
        7: ["Amount: Enter an amount greater than zero.", "Due date: 2026-13-01 is not a date on the calendar."],
    }
    assert "/milestones/import/confirm" not in html  # nothing to confirm
    assert saved(admin_engine, draft) == []


def test_a_good_file_previews_every_row_with_a_confirm_button(owner, world, draft, admin_engine):
    response = upload(owner, draft, GOOD_CSV.encode())
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert preview_rows(html) == {2: [], 3: [], 4: []}
    text_ = visible_text(html)
    assert "3 milestones ready to import from schedule.csv, $6,550.75 in all." in text_
    for shown in ("Survey", "Rewire", "Certify", "$1,500.00", "$4,800.00", "$250.75"):
        assert shown in text_
    assert "Import 3 milestones" in text_
    assert confirm_fields(html)["filename"] == "schedule.csv"
    assert saved(admin_engine, draft) == []  # a preview writes nothing


def test_confirming_imports_every_row_after_the_existing_milestones(owner, world, scheduled, admin_engine):
    preview = upload(owner, scheduled, GOOD_CSV.encode()).get_data(as_text=True)
    response = post(
        owner,
        f"/engagements/{scheduled}/milestones/import/confirm",
        confirm_fields(preview),
        token_from=importer(scheduled),
    )
    page = followed(owner, response, editor(scheduled))
    assert "Imported 3 milestones from schedule.csv." in flashes(page)
    stored = milestones_of(admin_engine, scheduled)
    assert [(m.seq, m.title, m.deliverable, m.amount_minor, m.due_date.isoformat()) for m in stored[3:]] == [
        (4, "Survey", "Load schedule", 150000, "2030-01-10"),
        (5, "Rewire", "New circuits", 480000, "2030-02-20"),
        (6, "Certify", "", 25075, "2030-03-05"),
    ]
    assert [m.title for m in stored[:3]] == ["Design", "Build", "Handover"]


@pytest.mark.parametrize(
    "content",
    [
        base64.b64encode(b"Title,Amount,Due date\r\nGood,100.00,2030-01-01\r\nBad,12;50,2030-01-02\r\n").decode(),
        base64.b64encode(b"Title,Amount,Due date\r\nGood,100.00,2030-01-01\r\n,100.00,2030-01-02\r\n").decode(),
        "not base64 at all!",
        "",
    ],
)
def test_a_tampered_confirmation_imports_nothing(owner, world, draft, admin_engine, content):
    response = post(
        owner,
        f"/engagements/{draft}/milestones/import/confirm",
        {"content": content, "filename": "x.csv"},
        token_from=importer(draft),
    )
    assert response.status_code == 422
    assert "Nothing" in visible_text(response.get_data(as_text=True))
    assert saved(admin_engine, draft) == []


def test_a_tampered_confirmation_names_the_rows_to_fix(owner, world, draft):
    content = base64.b64encode(b"Title,Amount,Due date\r\nGood,100.00,2030-01-01\r\n,100.00,2030-01-02\r\n").decode()
    response = post(
        owner,
        f"/engagements/{draft}/milestones/import/confirm",
        {"content": content, "filename": "x.csv"},
        token_from=importer(draft),
    )
    assert "Nothing was imported: fix row 3 and upload again." in visible_text(response.get_data(as_text=True))


@pytest.mark.parametrize(
    "header",
    [
        "TITLE,DELIVERABLE,AMOUNT,DUE DATE",
        "title,deliverable,amount,due_date",
        " Title , Deliverable , Amount , Due  Date ",
        "\ufeffTitle,Deliverable,Amount,Due_Date",
    ],
)
def test_header_names_are_matched_whatever_their_case(owner, world, draft, header):
    content = f"{header}\r\nSurvey,Plans,100.00,2030-01-10\r\n".encode()
    response = upload(owner, draft, content)
    assert response.status_code == 200
    assert preview_rows(response.get_data(as_text=True)) == {2: []}


def test_the_deliverable_column_may_be_left_out(owner, world, draft):
    response = upload(owner, draft, b"Due date,Amount,Title\r\n2030-01-10,100.00,Survey\r\n")
    assert response.status_code == 200
    assert "Survey" in visible_text(response.get_data(as_text=True))


def test_a_file_that_is_not_utf8_gets_a_clear_message(owner, world, draft, admin_engine):
    content = "Title,Deliverable,Amount,Due date\r\nCafé,Crème brûlée,100.00,2030-01-10\r\n".encode("cp1252")
    response = upload(owner, draft, content)
    assert response.status_code == 422
    text_ = visible_text(response.get_data(as_text=True))
    assert "Nothing will be imported." in text_
    assert "The file is not UTF-8 text. Save it as “CSV UTF-8” from your spreadsheet and upload it again." in text_
    assert saved(admin_engine, draft) == []


def test_a_file_missing_a_column_says_which(owner, world, draft):
    response = upload(owner, draft, b"Title,Price\r\nSurvey,100.00\r\n")
    assert response.status_code == 422
    assert "The header row has no amount, due date column." in visible_text(response.get_data(as_text=True))


def test_uploading_without_choosing_a_file_asks_for_one(owner, world, draft, admin_engine):
    response = upload(owner, draft, None)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "file") == "Choose a CSV file to upload."
    response = upload(owner, draft, b"", filename="")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "file") == "Choose a CSV file to upload."
    assert saved(admin_engine, draft) == []


@pytest.mark.parametrize("who", ["finance", "contractor_x_user"])
def test_finance_and_contractors_cannot_import(app, world, login, draft, admin_engine, who):
    c = signed_in(app, login, getattr(world, who))
    assert c.get(importer(draft)).status_code == 403
    token = csrf_token(c, "/engagements")
    response = c.post(
        f"/engagements/{draft}/milestones/import/confirm",
        data={"content": base64.b64encode(GOOD_CSV.encode()).decode(), "filename": "x.csv", "csrf_token": token},
    )
    assert response.status_code == 403
    assert saved(admin_engine, draft) == []


def test_a_sent_engagement_cannot_be_imported_into(owner, world, app_sessions, admin_engine):
    eid = create_sent(app_sessions, world)
    before = milestones_of(admin_engine, eid)
    response = post(
        owner,
        f"/engagements/{eid}/milestones/import/confirm",
        {"content": base64.b64encode(GOOD_CSV.encode()).decode(), "filename": "x.csv"},
        token_from=f"/engagements/{eid}",
    )
    assert response.status_code == 409
    assert milestones_of(admin_engine, eid) == before


def test_the_import_preview_of_a_sent_engagement_offers_no_import(owner, world, app_sessions):
    """Like the editor, the import refuses a sent engagement up front, rather than preview a file it
    will then refuse to import."""
    eid = create_sent(app_sessions, world)
    page = owner.get(importer(eid))
    assert page.status_code == 303 and page.headers["Location"].endswith(f"/engagements/{eid}")
    response = upload(owner, eid, GOOD_CSV.encode(), token_from="/engagements")
    assert response.status_code == 303
    assert "/milestones/import/confirm" not in response.get_data(as_text=True)
    assert "change order" in owner.get(f"/engagements/{eid}").get_data(as_text=True)


def test_an_editor_opened_before_an_import_cannot_remove_the_imported_milestones(owner, scheduled, admin_engine):
    """The editor carries the schedule's version; saving over a schedule that changed since is refused."""
    page = owner.get(editor(scheduled)).get_data(as_text=True)
    version = input_value(page, "version")
    assert version
    imported = upload(owner, scheduled, GOOD_CSV.encode())
    assert imported.status_code == 200
    confirm = owner.post(
        f"/engagements/{scheduled}/milestones/import/confirm",
        data={
            "csrf_token": csrf_token(owner, importer(scheduled)),
            "content": input_value(imported.get_data(as_text=True), "content"),
            "filename": "schedule.csv",
        },
    )
    assert confirm.status_code == 303
    before = saved(admin_engine, scheduled)
    assert len(before) > 3

    stale = form([row("Design", "1,000.00")]) | {"version": version}
    response = save(owner, scheduled, stale)
    assert response.status_code == 409
    assert "changed since you opened the editor" in response.get_data(as_text=True)
    assert saved(admin_engine, scheduled) == before


@pytest.mark.parametrize("op", ["up-²", "down-٣", "remove-", "remove-99999", "up--1", "add-x"])
def test_an_odd_button_value_leaves_the_rows_as_they_were(owner, world, draft, op):
    response = save(owner, draft, form([row("Design"), row("Build")], op=op))
    assert response.status_code == 200
    assert titles_in_form(response.get_data(as_text=True))[:2] == ["Design", "Build"]
