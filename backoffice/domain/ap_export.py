"""AP export layouts (DESIGN.md section 7): the columns an accounting system imports, their headers and
date format. The presets follow each system's bill import template; an admin can compose a custom layout
from the same fields. The file's rows are rendered by the database (services/ap_export.py); the header
line and every rule about what a cell may hold are here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from enum import StrEnum


class Preset(StrEnum):
    GENERIC = "generic"
    QUICKBOOKS_ONLINE = "quickbooks_online"
    XERO = "xero"
    CUSTOM = "custom"

    @property
    def label(self) -> str:
        return {
            "generic": "Generic CSV",
            "quickbooks_online": "QuickBooks Online bills",
            "xero": "Xero bills",
            "custom": "Custom layout (Settings)",
        }[self.value]


# Date formats: key -> (label, strftime pattern, PostgreSQL to_char pattern).
DATE_FORMATS = {
    "iso": ("2026-12-31 (ISO)", "%Y-%m-%d", "YYYY-MM-DD"),
    "us": ("12/31/2026 (US)", "%m/%d/%Y", "MM/DD/YYYY"),
    "eu": ("31/12/2026 (UK/EU)", "%d/%m/%Y", "DD/MM/YYYY"),
}

# Fields a column can show: key -> label. What each holds is defined once, in the service's SQL.
FIELDS = {
    "invoice_number": "Invoice number",
    "vendor_name": "Contractor (legal name)",
    "vendor_email": "Contractor email",
    "vendor_id": "AP vendor ID",
    "invoice_date": "Invoice date (approval)",
    "due_date": "Due date",
    "terms": "Payment terms (e.g. Net 30)",
    "description": "Description (engagement — milestone, or what the payment is for)",
    "engagement": "Engagement",
    "sow_reference": "SOW reference",
    "milestone": "Milestone",
    "kind": "Type (milestone, retainage release, advance, completed tasks, final payment)",
    "currency": "Currency",
    "gross": "Gross amount",
    "retainage": "Retainage withheld",
    "net": "Net payable",
    "fee": "Service fee",
    "total": "Total billed (gross + fee)",
    "account": "Expense account (Settings)",
    "quantity": "Quantity (always 1)",
    "tax_type": "Tax type (Tax Exempt)",
    "blank": "Empty column",
}
AMOUNT_FIELDS = {"gross", "retainage", "net", "fee", "total"}
DATE_FIELDS = {"invoice_date", "due_date"}


@dataclass(frozen=True)
class Column:
    field: str
    header: str


# Excel reads a CSV without a byte-order mark in the computer's legacy code page: "Zoë" becomes "ZoÃ«" and
# the em dash "â€”". With the mark it reads UTF-8.
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    date_format: str
    bom: bool = False  # the file starts with the UTF-8 byte-order mark (for Excel)

    def as_json(self) -> dict:
        return {
            "columns": [{"field": c.field, "header": c.header} for c in self.columns],
            "date_format": self.date_format,
            "bom": self.bom,
        }

    def header_line(self) -> bytes:
        """The first bytes of the file: the byte-order mark if the layout has it, then the headers, CSV-quoted
        where needed, formula-safe. The mark is part of the file, so of its stored bytes and sha256."""
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow([safe_cell(c.header) for c in self.columns])
        return (BOM if self.bom else b"") + out.getvalue().encode("utf-8")


def _layout(date_format: str, *columns: tuple[str, str]) -> Layout:
    return Layout(tuple(Column(field, header) for field, header in columns), date_format)


_XERO_BLANKS = (
    "POAddressLine1",
    "POAddressLine2",
    "POAddressLine3",
    "POAddressLine4",
    "POCity",
    "PORegion",
    "POPostalCode",
    "POCountry",
)
PRESETS = {
    Preset.GENERIC: _layout(
        "iso",
        ("invoice_number", "Invoice number"),
        ("vendor_name", "Contractor"),
        ("vendor_email", "Contractor email"),
        ("vendor_id", "Vendor ID"),
        ("engagement", "Engagement"),
        ("sow_reference", "SOW reference"),
        ("description", "Description"),
        ("kind", "Type"),
        ("invoice_date", "Invoice date"),
        ("due_date", "Due date"),
        ("currency", "Currency"),
        ("gross", "Gross"),
        ("retainage", "Retainage"),
        ("net", "Net payable"),
        ("fee", "Service fee"),
        ("total", "Total"),
    ),
    # QuickBooks Online's bill import: one line per bill, dates as the US company default (MM/DD/YYYY).
    Preset.QUICKBOOKS_ONLINE: _layout(
        "us",
        ("invoice_number", "Bill No."),
        ("vendor_name", "Vendor"),
        ("invoice_date", "Bill Date"),
        ("due_date", "Due Date"),
        ("terms", "Terms"),
        ("sow_reference", "Memo"),
        ("account", "Account"),
        ("description", "Line Description"),
        ("net", "Line Amount"),
        ("currency", "Currency"),
    ),
    # Xero's bills template (Business > Bills to pay > Import), required columns starred, in its order.
    Preset.XERO: _layout(
        "eu",
        ("vendor_name", "*ContactName"),
        ("vendor_email", "EmailAddress"),
        *((("blank", name)) for name in _XERO_BLANKS),
        ("invoice_number", "*InvoiceNumber"),
        ("invoice_date", "*InvoiceDate"),
        ("due_date", "*DueDate"),
        ("blank", "Total"),
        ("blank", "InventoryItemCode"),
        ("description", "Description"),
        ("quantity", "*Quantity"),
        ("net", "*UnitAmount"),
        ("account", "*AccountCode"),
        ("tax_type", "*TaxType"),
        ("blank", "TaxAmount"),
        ("blank", "TrackingName1"),
        ("blank", "TrackingOption1"),
        ("blank", "TrackingName2"),
        ("blank", "TrackingOption2"),
        ("currency", "Currency"),
    ),
}
MAX_COLUMNS = 30
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_HEADER_BAD = re.compile(r"[\x00-\x1f\x7f]")


def safe_cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula: a leading = + - @ tab or CR gets an apostrophe
    (the database's ap_csv_text() does the same for the rows)."""
    return "'" + value if _FORMULA_START.match(value) else value


def custom_layout(columns: list, date_format: str, bom: bool = False) -> Layout:
    """The admin's layout from settings; raises ValueError with a message fit for the form."""
    if date_format not in DATE_FORMATS:
        raise ValueError("Choose a date format.")
    if not columns:
        raise ValueError("Choose at least one column for the custom layout.")
    if len(columns) > MAX_COLUMNS:
        raise ValueError(f"A layout has at most {MAX_COLUMNS} columns.")
    result = []
    for item in columns:
        field, header = str(item.get("field") or ""), str(item.get("header") or "").strip()
        if field not in FIELDS:
            raise ValueError(f"“{field}” is not a field the export knows.")
        if not header or len(header) > 60 or _HEADER_BAD.search(header):
            raise ValueError(f"Give the {FIELDS[field].lower()} column a header of 1 to 60 characters.")
        result.append(Column(field, header))
    headers = [c.header.lower() for c in result]
    duplicate = next((h for h in headers if headers.count(h) > 1), None)
    if duplicate:
        raise ValueError(f"Two columns are headed “{duplicate}”; give each column its own header.")
    return Layout(tuple(result), date_format, bom)


# The layouts whose files start with a byte-order mark when the organization's option is on (it is by default):
# people open these in Excel. QuickBooks Online and Xero import their own templates as those systems export them,
# without a mark; a mark there is read as part of the first header ("\ufeffBill No.", "\ufeff*ContactName") by an
# importer that matches columns by name, so those presets never carry one, whatever the option says.
BOM_PRESETS = frozenset({Preset.GENERIC, Preset.CUSTOM})


def layout_for(preset: Preset, custom_columns: list, date_format: str, bom: bool = False) -> Layout:
    """The layout a batch is written with; ``bom`` is the organization's option, kept only where BOM_PRESETS says."""
    if preset == Preset.CUSTOM:
        return custom_layout(custom_columns, date_format, bom)
    layout = PRESETS[preset]
    wanted = bom and preset in BOM_PRESETS
    return layout if layout.bom == wanted else replace(layout, bom=wanted)


def file_name(org_prefix: str, batch_number: int, preset: Preset, currency: str) -> str:
    return f"{org_prefix.lower()}-ap-batch-{batch_number:04d}-{preset.value.replace('_', '-')}-{currency.lower()}.csv"
