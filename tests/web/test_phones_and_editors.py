"""Phones and editors (issue 22, items 7 and 9) through the web: the navigation's "Menu" button and finance's
Records menu (with aria-current inside it), tables marked to stack on a phone with a label on each cell, and the
schedule and change-order editors' totals and dates: the server's total of what was typed on every re-render, the
figures app.js needs to recount it while typing, and no hint that contradicts the date picker."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.engagements import create_active, create_draft, milestones_of
from kit.money_pages import approve
from kit.web import signed_in


@pytest.fixture
def owner(app, world, login):
    return signed_in(app, login, world.owner)


@pytest.fixture
def active(world, app_sessions):
    """Design $1,000.00, Build $2,000.00, Handover $500.00."""
    return create_active(app_sessions, world)


def new_co(eid) -> str:
    return f"/engagements/{eid}/change-orders/new"


def form_fields(html: str) -> dict[str, str]:
    """What the change order form submits as the browser would: its inputs (checked boxes only) and textareas."""
    form = re.search(r'<form id="change-order-form".*?</form>', html, re.DOTALL).group(0)
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form):
        name = re.search(r'\bname="([^"]+)"', tag)
        if not name or ('type="checkbox"' in tag and not re.search(r"\bchecked\b", tag)):
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        fields[name.group(1)] = html_lib.unescape(value.group(1)) if value else ""
    for name, value in re.findall(r'<textarea\b[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', form, re.DOTALL):
        fields[name] = html_lib.unescape(value)
    return fields


def opened(client, eid) -> dict[str, str]:
    return form_fields(page_of(client, new_co(eid)))


def submit(client, eid, fields: dict, op: str):
    return client.post(new_co(eid), data={**fields, "op": op})


def page_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def co_total(html: str) -> tuple[str, str]:
    """The change-order form's total and the words under it."""
    cell = re.search(r'<td class="num co-totals"[^>]*id="co-total">(.*?)</td>', html, re.DOTALL)
    assert cell, "the change order's total"
    total = re.search(r"<strong data-total>(.*?)</strong>", cell.group(1)).group(1)
    note = re.search(r"<small[^>]*data-total-note>(.*?)</small>", cell.group(1)).group(1)
    return total, note


# --- the navigation ---------------------------------------------------------------------------------------


def test_the_navigation_offers_a_menu_button_that_controls_the_links(app, login, world):
    html = page_of(signed_in(app, login, world.contractor_x_user), "/")
    button = re.search(r'<button type="button" class="nav-toggle[^"]*"[^>]*>Menu</button>', html)
    assert button, "the Menu button"
    assert 'aria-expanded="false"' in button.group(0) and 'aria-controls="nav-links"' in button.group(0)
    assert '<ul id="nav-links" class="nav-links">' in html


def test_signed_out_pages_have_no_menu_button(client):
    assert "nav-toggle" not in page_of(client, "/login")


def test_finance_finds_its_records_in_one_menu(app, login, world):
    html = page_of(signed_in(app, login, world.finance), "/")
    menu = re.search(r'<details class="dropdown nav-admin nav-records">(.*?)</details>', html, re.DOTALL)
    assert menu, "the Records menu"
    links = re.findall(r"<a href=\"[^\"]+\"[^>]*>([^<]+)</a>", menu.group(1))
    assert links == ["1099 year end", "E-invoicing", "Data room", "Audit trail"]
    assert "<summary >Records</summary>" in menu.group(1) or "<summary>Records</summary>" in menu.group(1)


def test_the_records_menu_and_its_link_say_which_page_is_open(app, login, world):
    html = page_of(signed_in(app, login, world.finance), "/audit/")
    menu = re.search(r'<details class="dropdown nav-admin nav-records">(.*?)</details>', html, re.DOTALL).group(1)
    assert '<summary aria-current="page">Records</summary>' in menu
    assert re.search(r'<a href="/audit/" aria-current="page">Audit trail</a>', menu)
    assert not re.search(r'aria-current="page">Data room', menu)


# --- tables that stack on a phone ---------------------------------------------------------------------------


def test_the_contractors_payments_and_engagement_tables_stack_with_a_label_on_each_cell(
    app, login, world, app_sessions
):
    engagement_id = create_active(app_sessions, world, title="Shed roof")
    client = signed_in(app, login, world.contractor_x_user)
    html = page_of(client, f"/engagements/{engagement_id}")
    table = re.search(r'<table class="striped milestones stack">.*?</table>', html, re.DOTALL).group(0)
    row = re.search(r"<tbody>.*?<tr[^>]*>(.*?)</tr>", table, re.DOTALL).group(1)
    labels = re.findall(r'<td\b[^>]*\bdata-label="([^"]*)"', row)
    assert labels == ["#", "Milestone", "Due", "Status", "Amount", "Retainage"]
    listing = page_of(client, "/engagements")
    assert '<table class="striped engagements stack">' in listing
    assert '<td class="num" data-label="Remaining">' in listing


# --- the schedule editor ---------------------------------------------------------------------------------


def test_the_schedule_editor_gives_the_live_total_what_it_needs_and_no_contradicting_date_hint(
    owner, world, app_sessions
):
    engagement_id = create_draft(app_sessions, world)
    html = page_of(owner, f"/engagements/{engagement_id}/milestones")
    assert "YYYY-MM-DD" not in html
    assert len(re.findall(r'<input type="date" name="rows-\d-due_date"', html)) == 3
    assert len(re.findall(r'<input name="rows-\d-amount" value="[^"]*" data-amount ', html)) == 3
    cell = re.search(r"<td class=\"num\" data-live-total ([^>]*)><strong data-total>([^<]*)</strong>", html)
    assert cell and cell.group(2) == "$3,500.00"
    assert 'data-currency="USD"' in cell.group(1) and 'data-zero="$0.00"' in cell.group(1)


def test_the_schedule_editor_recounts_the_typed_amounts_on_update(owner, world, app_sessions):
    engagement_id = create_draft(app_sessions, world)
    path = f"/engagements/{engagement_id}/milestones"
    html = page_of(owner, path)
    fields = {
        name: value
        for name, value in re.findall(r'<input (?:type="[a-z]+" )?name="([^"]+)" value="([^"]*)"', html)
        if not name.startswith("mode")
    }
    fields["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    fields.update({"rows-1-amount": "2,500.50", "mode": "amounts", "op": "refresh"})
    response = owner.post(path, data=fields)
    assert response.status_code == 200
    assert re.search(r"<strong data-total>\$4,000\.50</strong>", response.get_data(as_text=True))


# --- the change-order editor -------------------------------------------------------------------------------


def test_the_change_order_form_opens_with_the_schedule_total_now(owner, active):
    html = page_of(owner, new_co(active))
    assert co_total(html) == ("$3,500.00", "total after this change order")
    assert "Now $3,500.00" in html
    assert "YYYY-MM-DD" not in html


def test_the_change_order_form_shows_the_servers_total_of_what_was_typed(owner, active, admin_engine):
    ms = {m.title: m for m in milestones_of(admin_engine, active)}
    fields = opened(owner, active)
    fields.update({f"ms-{ms['Build'].id}-amount": "2,400.00", f"ms-{ms['Handover'].id}-cancel": "1"})
    html = submit(owner, active, fields, op="add").get_data(as_text=True)
    assert co_total(html) == ("$3,400.00", "total after this change order")
    assert "Now $3,500.00" in html
    fields = form_fields(html)
    fields.update({"new-0-title": "Snagging", "new-0-amount": "150.00", "new-0-due_date": "2030-05-15"})
    html = submit(owner, active, fields, op="add").get_data(as_text=True)
    assert co_total(html)[0] == "$3,550.00"


def test_a_change_order_total_waits_for_an_amount_it_cannot_read(owner, active, admin_engine):
    build = next(m for m in milestones_of(admin_engine, active) if m.title == "Build")
    for typed in ("2.400,00", "-5", "abc\x00"):
        fields = opened(owner, active)
        fields[f"ms-{build.id}-amount"] = typed
        response = submit(owner, active, fields, op="add")
        assert response.status_code == 200
        assert co_total(response.get_data(as_text=True)) == (
            "$3,500.00",
            "total now; a typed row is not read yet",
        )


def test_the_change_order_marks_the_final_rows_amounts_for_the_live_total(
    owner, active, app_sessions, world, admin_engine
):
    design = next(m for m in milestones_of(admin_engine, active) if m.title == "Design")
    approve(app_sessions, world, design.id)
    html = page_of(owner, new_co(active))
    final = re.search(r'<tr class="row-final">.*?</tr>', html, re.DOTALL).group(0)
    assert 'data-amount-minor="100000"' in final
    assert co_total(html) == ("$3,500.00", "total after this change order")
