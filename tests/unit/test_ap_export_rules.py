"""AP export layouts without a database (DESIGN.md section 7): the presets' exact header lines and date
formats, the admin's custom layout and every message it refuses with, the formula guard on cells, and
the file's name. The rows themselves are rendered by PostgreSQL (tests/integration)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backoffice.domain.ap_export import (
    AMOUNT_FIELDS,
    DATE_FIELDS,
    DATE_FORMATS,
    FIELDS,
    MAX_COLUMNS,
    PRESETS,
    Column,
    Layout,
    Preset,
    custom_layout,
    file_name,
    layout_for,
    safe_cell,
)
from backoffice.services.ap_export import rows_sql

QUICKBOOKS_HEADER = b"Bill No.,Vendor,Bill Date,Due Date,Terms,Memo,Account,Line Description,Line Amount,Currency\n"
XERO_HEADER = (
    b"*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,PORegion,"
    b"POPostalCode,POCountry,*InvoiceNumber,*InvoiceDate,*DueDate,Total,InventoryItemCode,Description,*Quantity,"
    b"*UnitAmount,*AccountCode,*TaxType,TaxAmount,TrackingName1,TrackingOption1,TrackingName2,TrackingOption2,Currency\n"
)
GENERIC_HEADER = (
    b"Invoice number,Contractor,Contractor email,Vendor ID,Engagement,SOW reference,Description,Type,Invoice date,"
    b"Due date,Currency,Gross,Retainage,Net payable,Service fee,Total\n"
)
FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]


def col(field: str, header: str) -> dict:
    return {"field": field, "header": header}


def refusal(columns, date_format="iso") -> str:
    with pytest.raises(ValueError) as exc:
        custom_layout(columns, date_format)
    return str(exc.value)


# --- presets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, header",
    [(Preset.QUICKBOOKS_ONLINE, QUICKBOOKS_HEADER), (Preset.XERO, XERO_HEADER), (Preset.GENERIC, GENERIC_HEADER)],
)
def test_each_preset_writes_its_accounting_systems_exact_header_line(preset, header):
    assert PRESETS[preset].header_line() == header


def test_quickbooks_online_pays_the_net_with_us_dates_and_the_expense_account():
    layout = PRESETS[Preset.QUICKBOOKS_ONLINE]
    fields = {c.header: c.field for c in layout.columns}
    assert layout.date_format == "us" and DATE_FORMATS["us"][1] == "%m/%d/%Y"
    assert (fields["Bill No."], fields["Vendor"], fields["Line Amount"], fields["Account"]) == (
        "invoice_number",
        "vendor_name",
        "net",
        "account",
    )


def test_xero_pays_the_net_as_one_unit_with_day_first_dates_and_blank_optional_columns():
    layout = PRESETS[Preset.XERO]
    fields = {c.header: c.field for c in layout.columns}
    assert layout.date_format == "eu" and DATE_FORMATS["eu"][1] == "%d/%m/%Y"
    assert (fields["*UnitAmount"], fields["*Quantity"], fields["*TaxType"], fields["*AccountCode"]) == (
        "net",
        "quantity",
        "tax_type",
        "account",
    )
    assert all(fields[h] == "blank" for h in ("Total", "TaxAmount", "POCity", "TrackingName1", "InventoryItemCode"))


def test_the_generic_preset_shows_every_amount_with_iso_dates():
    layout = PRESETS[Preset.GENERIC]
    assert layout.date_format == "iso"
    assert {c.field for c in layout.columns} >= AMOUNT_FIELDS
    assert {c.field for c in layout.columns} >= DATE_FIELDS


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_could_be_saved_as_a_custom_layout(preset):
    layout = PRESETS[preset]
    assert len(layout.columns) <= MAX_COLUMNS
    assert custom_layout(layout.as_json()["columns"], layout.date_format) == layout


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_preset_ignores_the_custom_columns_in_settings(preset):
    assert layout_for(preset, [col("net", "Pay me")], "us") is PRESETS[preset]


def test_the_custom_preset_uses_the_settings_columns_and_date_format():
    assert layout_for(Preset.CUSTOM, [col("net", "Pay me")], "us") == Layout((Column("net", "Pay me"),), "us")


def test_the_byte_order_mark_is_kept_for_the_generic_and_custom_layouts_only():
    mark = b"\xef\xbb\xbf"
    generic = layout_for(Preset.GENERIC, [], "iso", bom=True).header_line()
    assert generic.startswith(mark + b"Invoice number,Contractor,")
    assert layout_for(Preset.CUSTOM, [col("net", "Pay me")], "us", bom=True).header_line() == mark + b"Pay me\n"
    for preset in (Preset.QUICKBOOKS_ONLINE, Preset.XERO):
        assert not layout_for(preset, [], "iso", bom=True).header_line().startswith(mark)
    assert not layout_for(Preset.GENERIC, [], "iso", bom=False).header_line().startswith(mark)


def test_the_custom_preset_with_nothing_in_settings_is_refused():
    with pytest.raises(ValueError, match="at least one column"):
        layout_for(Preset.CUSTOM, [], "iso")


def test_every_preset_has_a_label_and_every_date_format_a_label_and_patterns():
    assert all(p.label for p in Preset)
    assert {k: len(v) for k, v in DATE_FORMATS.items()} == {"iso": 3, "us": 3, "eu": 3}


# --- what each field holds ------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
def test_every_field_a_layout_can_choose_has_a_cell_in_the_rendered_rows(field, currency):
    sql = rows_sql(Layout((Column(field, "X"),), "iso"), currency)
    assert sql.startswith("select ") and "%(batch)s" in sql
    if field in DATE_FIELDS:
        assert "YYYY-MM-DD" in sql
    elif field in AMOUNT_FIELDS:
        assert ("lpad" in sql) == (currency != "JPY")
    else:
        assert "ap_csv_text(" in sql, "every text cell goes through the database's formula guard"


# --- custom layouts -------------------------------------------------------------------------------


def test_a_custom_layout_keeps_the_columns_in_order_with_trimmed_headers():
    layout = custom_layout([col("invoice_number", "  Ref "), col("net", "Amount"), col("blank", "Notes")], "eu")
    assert layout == Layout((Column("invoice_number", "Ref"), Column("net", "Amount"), Column("blank", "Notes")), "eu")
    assert layout.header_line() == b"Ref,Amount,Notes\n"


def test_an_unknown_field_is_refused_by_name():
    assert (
        refusal([col("net", "Net"), col("bank_account", "IBAN")]) == "“bank_account” is not a field the export knows."
    )


def test_a_column_without_a_field_is_refused():
    assert refusal([{"header": "Net"}]) == "“” is not a field the export knows."


@pytest.mark.parametrize("header", ["", "   ", None])
def test_an_empty_header_is_refused_naming_the_field(header):
    columns = [col("net", "Net"), {"field": "vendor_email", **({} if header is None else {"header": header})}]
    assert refusal(columns) == "Give the contractor email column a header of 1 to 60 characters."


@pytest.mark.parametrize("header", ["x" * 61, "Net\npayable", "Net\x00", "Tab\there", "Del\x7f"])
def test_a_header_too_long_or_with_control_characters_is_refused(header):
    assert refusal([col("net", header)]) == "Give the net payable column a header of 1 to 60 characters."


def test_a_header_of_sixty_characters_is_accepted():
    assert custom_layout([col("net", "x" * 60)], "iso").columns[0].header == "x" * 60


def test_two_columns_with_the_same_header_are_refused_whatever_the_case():
    message = refusal([col("net", "Amount"), col("gross", "Vendor"), col("total", " AMOUNT ")])
    assert message == "Two columns are headed “amount”; give each column its own header."


def test_the_same_field_twice_under_different_headers_is_allowed():
    layout = custom_layout([col("blank", "Empty 1"), col("blank", "Empty 2")], "iso")
    assert [c.field for c in layout.columns] == ["blank", "blank"]


def test_thirty_columns_are_accepted_and_thirty_one_refused():
    columns = [col("blank", f"Column {n}") for n in range(MAX_COLUMNS + 1)]
    assert len(custom_layout(columns[:MAX_COLUMNS], "iso").columns) == MAX_COLUMNS
    assert refusal(columns) == f"A layout has at most {MAX_COLUMNS} columns."


def test_a_layout_without_columns_is_refused():
    assert refusal([]) == "Choose at least one column for the custom layout."


@pytest.mark.parametrize("date_format", ["", "ISO", "ymd", "%Y-%m-%d", None])
def test_a_date_format_that_is_not_offered_is_refused(date_format):
    assert refusal([col("net", "Net")], date_format) == "Choose a date format."


def test_the_date_format_is_checked_before_the_columns():
    assert refusal([], "ymd") == "Choose a date format."


_headers = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_characters="\x7f"), min_size=1, max_size=60
).filter(lambda h: h.strip() == h and h)


@given(
    st.lists(
        st.tuples(st.sampled_from(list(FIELDS)), _headers),
        min_size=1,
        max_size=MAX_COLUMNS,
        unique_by=lambda c: c[1].lower(),
    ),
    st.sampled_from(list(DATE_FORMATS)),
)
def test_a_valid_custom_layout_round_trips_through_settings(columns, date_format):
    layout = custom_layout([col(f, h) for f, h in columns], date_format)
    assert [(c.field, c.header) for c in layout.columns] == columns
    assert custom_layout(layout.as_json()["columns"], layout.as_json()["date_format"]) == layout


@given(st.lists(_headers, min_size=1, max_size=MAX_COLUMNS, unique_by=str.lower))
def test_the_header_line_is_one_csv_row_reading_back_as_the_formula_safe_headers(headers):
    layout = custom_layout([col("blank", h) for h in headers], "iso")
    line = layout.header_line()
    assert line.endswith(b"\n")
    (row,) = list(csv.reader(io.StringIO(line.decode("utf-8"), newline="")))
    assert row == [safe_cell(h) for h in headers]


def test_a_header_with_commas_and_quotes_is_quoted_and_one_starting_like_a_formula_is_defused():
    layout = custom_layout(
        [col("net", 'Net, "payable"'), col("gross", "=SUM(A1)"), col("fee", "-fee"), col("total", "Größe")], "iso"
    )
    assert layout.header_line() == '"Net, ""payable""",\'=SUM(A1),\'-fee,Größe\n'.encode()


# --- the formula guard ----------------------------------------------------------------------------


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_starting_like_a_formula_gets_an_apostrophe(start):
    value = start + 'HYPERLINK("http://evil.example")'
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "Acme Ltd", "100.00", " =1+1", "'quoted", "a=b", "1-2", "#REF", "\n=1"])
def test_other_cells_are_left_as_they_are(value):
    assert safe_cell(value) == value


@given(st.text(max_size=40))
def test_a_safe_cell_never_starts_like_a_formula_and_only_ever_gains_one_apostrophe(value):
    safe = safe_cell(value)
    assert safe in (value, "'" + value)
    assert not safe or safe[0] not in FORMULA_STARTS


# --- file names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix, number, preset, currency, name",
    [
        ("ACME", 7, Preset.QUICKBOOKS_ONLINE, "USD", "acme-ap-batch-0007-quickbooks-online-usd.csv"),
        ("INV", 12345, Preset.XERO, "EUR", "inv-ap-batch-12345-xero-eur.csv"),
        ("A1", 1, Preset.GENERIC, "JPY", "a1-ap-batch-0001-generic-jpy.csv"),
        ("ORG", 30, Preset.CUSTOM, "KWD", "org-ap-batch-0030-custom-kwd.csv"),
    ],
)
def test_a_batch_file_is_named_by_org_number_layout_and_currency(prefix, number, preset, currency, name):
    assert file_name(prefix, number, preset, currency) == name
