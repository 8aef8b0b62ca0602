"""The money settings an admin keeps: the AP export layout (/admin/settings/export: a preset, or the
admin's own columns in their order with their headers and a date format) and, on the settings page, the
invoice number prefix and segregation of duties. Bad input is a 422 with the message at the field and
nothing saved; new batches and invoices follow what was saved."""

from __future__ import annotations

import re
from datetime import date

import pytest
from kit.money_pages import active_engagement, approve, export_as, invoice_row, milestone_ids, money_state, stored_file
from kit.web import csrf_token, field_error, flashes, input_value, signed_in
from sqlalchemy import text

from backoffice.domain.ap_export import FIELDS


def org(admin_engine, org_id):
    with admin_engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "select invoice_prefix, segregation_of_duties, ap_export_preset, ap_export_columns,"
                    " ap_expense_account,"
                    " ap_export_date_format, ap_export_bom from organizations where id = :o"
                ),
                {"o": org_id},
            )
            .mappings()
            .one()
        )


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


def layout_form(
    columns: dict[str, tuple[str, str]],
    *,
    preset="custom",
    expense_account="6100 Subcontractors",
    date_format="eu",
    **extra,
) -> dict:
    """The export layout form: {field: (position, header)} ticked; every other field unticked with its label."""
    data = {"preset": preset, "expense_account": expense_account, "date_format": date_format, "bom": "1"}
    for key, label in FIELDS.items():
        position, header = columns.get(key, ("", label))
        data[f"header_{key}"] = header
        data[f"position_{key}"] = position
        if key in columns:
            data[f"include_{key}"] = "1"
    return {**data, **extra}


def save_layout(client, data: dict):
    return client.post(
        "/admin/settings/export", data={**data, "csrf_token": csrf_token(client, "/admin/settings/export")}
    )


# Payee first: position decides the order, not the order of the fields on the page.
CUSTOM = {
    "vendor_name": ("1", "Payee"),
    "invoice_number": ("2", "Ref"),
    "net": ("3", "Amount"),
    "due_date": ("4", "Pay by"),
    "currency": ("5", "Ccy"),
}


# --- who ---------------------------------------------------------------------------------------------


def test_an_admin_sees_the_export_layout_with_the_presets_and_every_field(admin, world):
    response = admin.get("/admin/settings/export")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.findall(r'<input type="radio" name="preset" value="([a-z_]+)"', html) == [
        "generic",
        "quickbooks_online",
        "xero",
        "custom",
    ]
    assert re.search(r'name="preset" value="generic" checked', html)
    assert input_value(html, "expense_account") == "Contract labor"
    assert sorted(re.findall(r'name="include_([a-z_]+)"', html)) == sorted(FIELDS)


@pytest.mark.parametrize("who", ["finance", "owner", "contractor_x_user"])
def test_only_admins_see_or_change_the_export_layout(app, login, world, admin_engine, who):
    client = signed_in(app, login, getattr(world, who))
    assert client.get("/admin/settings/export").status_code == 403
    before = org(admin_engine, world.org_a)
    token = csrf_token(client, "/")
    response = client.post("/admin/settings/export", data={**layout_form(CUSTOM), "csrf_token": token})
    assert response.status_code == 403
    assert org(admin_engine, world.org_a) == before


# --- the custom layout ---------------------------------------------------------------------------------


def test_saving_a_custom_layout_keeps_its_columns_in_their_order_with_their_headers(admin, world, admin_engine):
    response = save_layout(admin, layout_form(CUSTOM))
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/settings/export"
    saved = org(admin_engine, world.org_a)
    assert saved["ap_export_preset"] == "custom"
    assert saved["ap_export_date_format"] == "eu"
    assert saved["ap_expense_account"] == "6100 Subcontractors"
    assert saved["ap_export_columns"] == [
        {"field": "vendor_name", "header": "Payee"},
        {"field": "invoice_number", "header": "Ref"},
        {"field": "net", "header": "Amount"},
        {"field": "due_date", "header": "Pay by"},
        {"field": "currency", "header": "Ccy"},
    ]
    html = admin.get("/admin/settings/export").get_data(as_text=True)
    assert "AP export layout saved. New batches use it; batches already exported keep their file." in flashes(html)
    # The editor lists the chosen columns first, in their order, ticked, with their headers.
    fields_in_order = re.findall(r'name="include_([a-z_]+)" value="1" id="include_[a-z_]+" checked', html)
    assert fields_in_order == list(CUSTOM)
    assert input_value(html, "header_vendor_name") == "Payee" and input_value(html, "position_vendor_name") == "1"


def test_columns_ticked_without_a_position_follow_the_numbered_ones(admin, world, admin_engine):
    columns = {"net": ("1", "Amount"), "vendor_name": ("", "Payee"), "invoice_number": ("", "Ref")}
    assert save_layout(admin, layout_form(columns)).status_code == 303
    assert [c["field"] for c in org(admin_engine, world.org_a)["ap_export_columns"]] == [
        "net",
        "invoice_number",
        "vendor_name",
    ]


def test_a_new_batch_is_written_with_the_saved_custom_layout(admin, world, app_sessions, admin_engine):
    assert save_layout(admin, layout_form(CUSTOM)).status_code == 303
    eid = active_engagement(app_sessions, world, title="Kitchen renovation")
    invoice = invoice_row(admin_engine, approve(app_sessions, world, milestone_ids(admin_engine, eid)[0]))
    batch_id = export_as(
        app_sessions, world.finance, world.org_a, [invoice["id"]]
    )  # the organization's default: custom
    assert stored_file(admin_engine, batch_id).decode() == (
        "\ufeffPayee,Ref,Amount,Pay by,Ccy\n"
        f"Contractor X {world.suffix},{invoice['invoice_number']},1111.09,{invoice['due_date']:%d/%m/%Y},USD\n"
    )


@pytest.mark.parametrize(
    "columns, words",
    [
        (
            {"net": ("1", "Total"), "total": ("2", "total")},
            "Two columns are headed “total”; give each column its own header.",
        ),
        (
            {"net": ("1", "Amount"), "vendor_name": ("2", "   ")},
            "Give the contractor (legal name) column a header of 1 to 60 characters.",
        ),
        ({"net": ("1", "A" * 61)}, "a header of 1 to 60 characters"),
        ({"net": ("1", "Amount\tpaid")}, "a header of 1 to 60 characters"),
        ({}, "Choose at least one column for the custom layout."),
    ],
)
def test_a_bad_custom_layout_is_refused_with_the_message_and_nothing_saved(admin, world, admin_engine, columns, words):
    before = org(admin_engine, world.org_a)
    response = save_layout(admin, layout_form(columns))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = field_error(html, "columns")
    assert message and words in message, message
    assert any(f.startswith("Nothing was saved.") and words in f for f in flashes(html))
    assert org(admin_engine, world.org_a) == before


def test_a_refused_layout_keeps_what_was_typed(admin, world, admin_engine):
    response = save_layout(
        admin, layout_form({"net": ("1", "Total"), "total": ("2", "TOTAL"), "vendor_name": ("3", "Payee")})
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert input_value(html, "header_vendor_name") == "Payee" and input_value(html, "position_vendor_name") == "3"
    assert 'id="include_vendor_name" checked' in html
    assert input_value(html, "expense_account") == "6100 Subcontractors"


@pytest.mark.parametrize("position", ["²", "3²"])
def test_a_position_that_is_not_a_plain_number_is_no_server_error(admin, world, admin_engine, position):
    response = save_layout(admin, layout_form({"net": (position, "Amount"), "vendor_name": ("1", "Payee")}))
    assert response.status_code in (303, 422)


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"expense_account": "  "}, "expense_account", "expense account"),
        ({"preset": "lotus123"}, "preset", "Choose an export layout."),
    ],
)
def test_a_missing_account_or_unknown_preset_is_refused_at_its_field(
    admin, world, admin_engine, overrides, field, words
):
    before = org(admin_engine, world.org_a)
    response = save_layout(admin, layout_form(CUSTOM, **overrides))
    assert response.status_code == 422
    message = field_error(response.get_data(as_text=True), field)
    assert message and words in message
    assert org(admin_engine, world.org_a) == before


def test_an_unknown_date_format_is_refused_at_the_date_format(admin, world, admin_engine):
    before = org(admin_engine, world.org_a)
    response = save_layout(admin, layout_form(CUSTOM, date_format="julian"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert org(admin_engine, world.org_a) == before
    assert field_error(html, "date_format") == "Choose a date format."
    assert field_error(html, "columns") is None


def test_choosing_a_preset_keeps_the_custom_columns_for_later(admin, world, admin_engine):
    assert save_layout(admin, layout_form(CUSTOM)).status_code == 303
    saved = org(admin_engine, world.org_a)["ap_export_columns"]
    assert save_layout(admin, layout_form({}, preset="quickbooks_online", date_format="us")).status_code == 303
    after = org(admin_engine, world.org_a)
    assert (after["ap_export_preset"], after["ap_export_date_format"], after["ap_export_columns"]) == (
        "quickbooks_online",
        "us",
        saved,
    )


def test_the_byte_order_mark_for_excel_is_ticked_by_default_and_unticking_it_is_saved(admin, world, admin_engine):
    html = admin.get("/admin/settings/export").get_data(as_text=True)
    assert re.search(r'<input type="checkbox" name="bom" value="1"[^>]* checked>', html)
    assert "UTF-8 with byte-order mark (for Excel)" in html
    form = layout_form(CUSTOM)
    del form["bom"]  # an unticked box is not sent
    assert save_layout(admin, form).status_code == 303
    assert org(admin_engine, world.org_a)["ap_export_bom"] is False
    html = admin.get("/admin/settings/export").get_data(as_text=True)
    assert not re.search(r'name="bom" value="1"[^>]* checked>', html)
    assert save_layout(admin, layout_form(CUSTOM)).status_code == 303
    assert org(admin_engine, world.org_a)["ap_export_bom"] is True


# --- invoice prefix and segregation of duties ------------------------------------------------------------


def settings_form(client, **overrides) -> dict:
    """The settings form as the page shows it, with ``overrides``; segregation_of_duties is a checkbox: sent
    only when ticked."""
    html = client.get("/admin/settings").get_data(as_text=True)
    data = {
        name: input_value(html, name)
        for name in (
            "name",
            "default_retainage",
            "payment_terms_days",
            "evidence_max_files",
            "evidence_max_file_mb",
            "evidence_max_submission_mb",
            "invoice_prefix",
        )
    }
    data.update(default_currency="USD", partial_policy="route_back")
    if segregation_ticked(html):
        data["segregation_of_duties"] = "y"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def segregation_ticked(html: str) -> bool:
    tag = re.search(r'<input\b[^>]*\bname="segregation_of_duties"[^>]*>', html)
    assert tag, "the segregation of duties switch"
    return " checked" in tag.group(0)


def save_settings(client, data: dict):
    return client.post("/admin/settings", data={**data, "csrf_token": csrf_token(client, "/admin/settings")})


def test_the_settings_page_shows_the_prefix_and_segregation_on(admin, world):
    html = admin.get("/admin/settings").get_data(as_text=True)
    assert input_value(html, "invoice_prefix") == "ORGA"  # from the organization's name, "Org A …"
    assert segregation_ticked(html)
    assert 'href="/admin/settings/export"' in html


def test_saving_a_new_prefix_numbers_the_next_invoices_with_it(admin, world, app_sessions, admin_engine):
    eid = active_engagement(app_sessions, world, title="Kitchen renovation")
    design, build = milestone_ids(admin_engine, eid)
    first = approve(app_sessions, world, design)
    assert invoice_row(admin_engine, first)["invoice_number"] == "ORGA-000001"
    response = save_settings(admin, settings_form(admin, invoice_prefix="acme7"))
    assert response.status_code == 303
    assert org(admin_engine, world.org_a)["invoice_prefix"] == "ACME7"
    assert invoice_row(admin_engine, approve(app_sessions, world, build))["invoice_number"] == "ACME7-000002"
    assert invoice_row(admin_engine, first)["invoice_number"] == "ORGA-000001"  # an issued number never changes


@pytest.mark.parametrize("prefix", ["A", "ACME-1", "TOOLONGPREFIX", "ÄCME", "AC ME", ""])
def test_a_bad_prefix_is_refused_at_the_field_and_nothing_saved(admin, world, admin_engine, prefix):
    before = money_state(admin_engine, world.org_a)
    response = save_settings(admin, settings_form(admin, invoice_prefix=prefix, payment_terms_days="45"))
    assert response.status_code == 422
    message = field_error(response.get_data(as_text=True), "invoice_prefix")
    assert message == "Use 2 to 8 letters or digits, like ACME; invoice numbers read ACME-000123."
    assert money_state(admin_engine, world.org_a) == before


def test_turning_segregation_off_lets_the_admin_who_approved_record_the_payment(
    admin, world, app_sessions, admin_engine
):
    eid = active_engagement(app_sessions, world, title="Garage")
    invoice_id = approve(app_sessions, world, milestone_ids(admin_engine, eid)[0], by=world.admin)
    pay = {"paid_at": date.today().isoformat(), "reference": "ACH 5", "method": "ach"}
    refused = admin.post(
        f"/invoices/{invoice_id}/pay", data={**pay, "csrf_token": csrf_token(admin, f"/invoices/{invoice_id}")}
    )
    assert refused.status_code == 403

    form = settings_form(admin)
    form.pop("segregation_of_duties")
    assert save_settings(admin, form).status_code == 303
    assert org(admin_engine, world.org_a)["segregation_of_duties"] is False
    html = admin.get("/admin/settings").get_data(as_text=True)
    assert not segregation_ticked(html)

    response = admin.post(
        f"/invoices/{invoice_id}/pay", data={**pay, "csrf_token": csrf_token(admin, f"/invoices/{invoice_id}")}
    )
    assert response.status_code == 303
    assert invoice_row(admin_engine, invoice_id)["status"] == "paid"

    # And back on: the setting is the organization's, not a one-off.
    assert save_settings(admin, settings_form(admin, segregation_of_duties="y")).status_code == 303
    assert org(admin_engine, world.org_a)["segregation_of_duties"] is True


@pytest.mark.parametrize("path", ["/admin/settings", "/admin/settings/export"])
def test_settings_posted_without_a_csrf_token_are_refused(admin, world, admin_engine, path):
    before = org(admin_engine, world.org_a)
    data = settings_form(admin, invoice_prefix="NOPE") if path == "/admin/settings" else layout_form(CUSTOM)
    assert admin.post(path, data=data).status_code == 400
    assert org(admin_engine, world.org_a) == before
