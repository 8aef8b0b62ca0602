"""AP export files byte for byte (DESIGN.md section 7), against golden files in tests/integration/golden/.

A fresh organization's payments are built through the real services: contractors whose names carry a
comma, double quotes, a leading '=' and non-ASCII letters (CSV quoting, formula guarding, UTF-8), amounts
with odd cents and a retainage release; a KWD engagement (three decimals) for the custom layout. Each
preset exports the same payments (the batch is voided between presets so they can be exported again).

What depends on the day the test runs is the approval date, which is the invoice date: the golden files
write it as {ISSUED}, and a due date as {ISSUED+30} (30 days later), each in the preset's date format.
Everything else (headers, column order, quoting, amounts, invoice numbers of the fresh organization) is
compared exactly. To review a change of layout, run with GOLDEN_UPDATE=1 and read the diff of golden/.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from kit.engagements import owner_query, sign_in

from backoffice.db import make_session_factory
from backoffice.domain.ap_export import DATE_FORMATS, PRESETS, Preset
from backoffice.domain.roles import Role
from backoffice.services import (
    ap_export,
    bootstrap,
    contractors,
    engagements,
    invoices,
    organizations,
    payments,
    schedule,
)
from backoffice.services.engagements import EngagementInput
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work

GOLDEN = Path(__file__).parent / "golden"

# (legal name, billing email, AP vendor id)
CONTRACTORS = {
    "smith": ('Smith, Jones & "Partners" LLC', "ap@smith-jones.example", "V-100"),
    "formula": ('=HYPERLINK("https://evil.example","Pay me")', "tiles@formula.example", "@V-200"),
    "zoe": ("Zoë Ångström Design", "zoe@angstrom.example", ""),
}

# (contractor, title, SOW reference, retainage %, terms days, service fee %, currency, [(milestone, amount)])
ENGAGEMENTS = [
    (
        "smith",
        "Kitchen, phase 1",
        "SOW-2026-001",
        "10",
        "30",
        "2.5",
        "USD",
        [("Design", "1,234.55"), ('Build "shell"', "2,000.05")],
    ),
    ("formula", "Bathroom tiling", "-2026/07", "5", "0", "0", "USD", [("Tiles", "999.99")]),
    ("zoe", "Mood board", "", "0", "14", "0", "USD", [("Board", "10.01")]),
    ("smith", "Kuwait fit-out", "KW-7", "7.5", "45", "1.25", "KWD", [("Survey", "1,234.567"), ("Fit-out", "0.005")]),
]

# The custom layout: renamed columns in a chosen order, a header that needs quoting and one that needs guarding.
CUSTOM_COLUMNS = [
    {"field": "invoice_number", "header": "Bill #"},
    {"field": "vendor_name", "header": "Payee, legal"},
    {"field": "vendor_id", "header": "Vendor"},
    {"field": "kind", "header": "Type"},
    {"field": "milestone", "header": "Milestone"},
    {"field": "invoice_date", "header": "Issued"},
    {"field": "due_date", "header": "Due"},
    {"field": "terms", "header": "Terms"},
    {"field": "gross", "header": "Gross"},
    {"field": "retainage", "header": "Retained"},
    {"field": "net", "header": "=Net"},
    {"field": "fee", "header": "Fee"},
    {"field": "total", "header": 'Total "billed"'},
    {"field": "currency", "header": "Ccy"},
    {"field": "blank", "header": "Notes"},
    {"field": "quantity", "header": "Qty"},
    {"field": "tax_type", "header": "Tax"},
]


@dataclass(frozen=True)
class Dataset:
    org_id: object
    usd: list  # invoice ids: the three USD engagements' milestones, then the tiling retainage release
    kwd: list  # invoice ids of the KWD engagement
    issued: date  # the approval date of every invoice


@pytest.fixture
def dataset(world, act_as, admin_engine, password_hash) -> Dataset:
    org_id = world.org_a
    session, admin = sign_in(act_as, world.admin, org_id)
    org = organizations.current_organization(session, admin)
    organizations.update_settings(
        session,
        admin,
        organizations.OrgSettings(
            name=org.name,
            default_currency="USD",
            default_retainage_bps=1000,
            payment_terms_days=30,
            partial_policy="route_back",
            invoice_prefix="GOLD",
            segregation_of_duties=True,
        ),
    )
    session, admin = sign_in(act_as, world.admin, org_id)
    organizations.update_export_settings(
        session,
        admin,
        organizations.ExportSettings(
            preset="generic",
            expense_account="6100 Contract labor, subcontractors",
            date_format="us",
            columns=CUSTOM_COLUMNS,
        ),
    )
    contractor_ids, users = {}, {}
    for key, (name, email, vendor_id) in CONTRACTORS.items():
        session, admin = sign_in(act_as, world.admin, org_id)
        contractor_ids[key] = contractors.create_contractor(
            session, admin, contractors.ContractorInput(name, email, vendor_id)
        ).id
    with make_session_factory(admin_engine)() as owner_session:
        for key, contractor_id in contractor_ids.items():
            users[key] = bootstrap.create_user(
                owner_session,
                email=f"{key}-{world.suffix}@example.com",
                name=key.title(),
                password_hash=password_hash,
                org_id=org_id,
                role=Role.CONTRACTOR,
                contractor_id=contractor_id,
            )
        owner_session.commit()

    approved = {}
    for key, title, sow, retainage, terms, fee, currency, rows in ENGAGEMENTS:
        session, owner = sign_in(act_as, world.owner, org_id)
        e = engagements.create_engagement(
            session,
            owner,
            EngagementInput(
                contractor_id=str(contractor_ids[key]),
                title=title,
                sow_reference=sow,
                currency=currency,
                retainage=retainage,
                payment_terms_days=terms,
                service_fee=fee,
            ),
        )
        schedule.save_schedule(
            session,
            owner,
            e.id,
            ScheduleInput(rows=[RowInput(title=t, amount=a, due_date="2030-06-30") for t, a in rows]),
        )
        engagements.perform(session, owner, e.id, "send")
        session, contractor = sign_in(act_as, users[key], org_id)
        engagements.perform(session, contractor, e.id, "accept")
        for m in owner_query(admin_engine, "select id from milestones where engagement_id = :e order by seq", e=e.id):
            session, contractor = sign_in(act_as, users[key], org_id)
            submission = submit_work(
                session, contractor, m["id"], SubmissionInput(note="Done.", links="https://example.com/w")
            )
            session, owner = sign_in(act_as, world.owner, org_id)
            decide(session, owner, m["id"], DecisionInput(submission_id=str(submission.id), decision="approve"))
        approved[title] = e.id
    session, owner = sign_in(act_as, world.owner, org_id)
    invoices.release_retainage(session, owner, approved["Bathroom tiling"], "Tiles warranty lodged early.")

    rows = owner_query(
        admin_engine, "select id, currency, issued_on from invoices where org_id = :o order by number", o=org_id
    )
    issued = {r["issued_on"] for r in rows}
    assert len(issued) == 1, "every approval of the dataset on one day"
    return Dataset(
        org_id,
        [r["id"] for r in rows if r["currency"] == "USD"],
        [r["id"] for r in rows if r["currency"] == "KWD"],
        issued.pop(),
    )


def export(act_as, world, admin_engine, invoice_ids, preset: str) -> tuple[bytes, dict]:
    """Finance exports the invoices with ``preset``; the file as stored, and the batch row (owner role)."""
    session, finance = sign_in(act_as, world.finance, world.org_a)
    batch = ap_export.create_batch(
        session, finance, ap_export.Selection(invoice_ids=tuple(map(str, invoice_ids)), preset=preset)
    )
    (row,) = owner_query(admin_engine, "select * from ap_export_batches where id = :b", b=batch.id)
    chunks = owner_query(
        admin_engine, "select data from ap_export_chunks where batch_id = :b order by chunk_no", b=batch.id
    )
    return b"".join(bytes(c["data"]) for c in chunks), row


def void(act_as, world, batch_id) -> None:
    """Void the batch (an admin), so its payments can be exported again with the next layout."""
    session, admin = sign_in(act_as, world.admin, world.org_a)
    ap_export.void_batch(session, admin, batch_id, "Exported again with another layout.")


def expected(name: str, preset: Preset, issued: date, date_format: str | None = None) -> bytes:
    """The golden file with its date placeholders filled in for ``issued``, in the layout's date format."""
    pattern = DATE_FORMATS[date_format or PRESETS[preset].date_format][1]
    text = (GOLDEN / name).read_text(encoding="utf-8")
    return re.sub(
        r"\{ISSUED(?:\+(\d+))?\}", lambda m: (issued + timedelta(days=int(m.group(1) or 0))).strftime(pattern), text
    ).encode("utf-8")


def as_golden(content: bytes, preset: Preset, issued: date, date_format: str | None = None) -> str:
    """The inverse of ``expected``, for GOLDEN_UPDATE: the file with its dates written as placeholders."""
    pattern = DATE_FORMATS[date_format or PRESETS[preset].date_format][1]
    text = content.decode("utf-8")
    for days in sorted({0, 14, 30, 45}, reverse=True):
        text = text.replace(
            (issued + timedelta(days=days)).strftime(pattern), f"{{ISSUED+{days}}}" if days else "{ISSUED}"
        )
    return text


def check_golden(name: str, content: bytes, preset: Preset, issued: date, date_format: str | None = None) -> None:
    if os.environ.get("GOLDEN_UPDATE"):
        (GOLDEN / name).write_text(as_golden(content, preset, issued, date_format), encoding="utf-8")
    assert (
        content.decode("utf-8").splitlines() == expected(name, preset, issued, date_format).decode("utf-8").splitlines()
    )
    assert content == expected(name, preset, issued, date_format)


# --- the presets -----------------------------------------------------------------------------------------


def test_each_preset_exports_the_same_payments_exactly_as_its_golden_file(act_as, world, dataset, admin_engine):
    for preset, name in (
        (Preset.GENERIC, "ap_generic.csv"),
        (Preset.QUICKBOOKS_ONLINE, "ap_quickbooks_online.csv"),
        (Preset.XERO, "ap_xero.csv"),
    ):
        content, batch = export(act_as, world, admin_engine, dataset.usd, preset.value)
        check_golden(name, content, preset, dataset.issued)
        assert batch["preset"] == preset.value and batch["row_count"] == 5
        assert batch["sha256"] == hashlib.sha256(content).hexdigest() and batch["size_bytes"] == len(content)
        void(act_as, world, batch["id"])


def test_the_custom_layout_exports_kwd_with_three_decimals_exactly_as_its_golden_file(
    act_as, world, dataset, admin_engine
):
    content, batch = export(act_as, world, admin_engine, dataset.kwd, "custom")
    check_golden("ap_custom.csv", content, Preset.CUSTOM, dataset.issued, "us")
    assert (batch["currency"], batch["row_count"], batch["total_minor"]) == ("KWD", 2, 1141974 + 5)


def test_the_quickbooks_and_xero_header_lines_are_exactly_the_presets(act_as, world, dataset, admin_engine):
    headers = {
        Preset.QUICKBOOKS_ONLINE: (
            "Bill No.,Vendor,Bill Date,Due Date,Terms,Memo,Account,Line Description,Line Amount,Currency\n"
        ),
        Preset.XERO: (
            "*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,"
            "PORegion,POPostalCode,POCountry,*InvoiceNumber,*InvoiceDate,*DueDate,Total,InventoryItemCode,"
            "Description,*Quantity,*UnitAmount,*AccountCode,*TaxType,TaxAmount,TrackingName1,TrackingOption1,"
            "TrackingName2,TrackingOption2,Currency\n"
        ),
    }
    for preset, header in headers.items():
        content, batch = export(act_as, world, admin_engine, dataset.usd[:1], preset.value)
        first_line = content[: content.index(b"\n") + 1]
        assert first_line == header.encode() == PRESETS[preset].header_line()
        # Every row has a cell for every column, blank ones included.
        assert {len(cells) for cells in csv.reader(io.StringIO(content.decode()))} == {len(PRESETS[preset].columns)}
        void(act_as, world, batch["id"])


# --- what is stored is what is downloaded ------------------------------------------------------------


def test_a_batch_reads_back_byte_identical_to_what_was_stored_every_time(act_as, world, dataset, admin_engine):
    content, batch = export(act_as, world, admin_engine, dataset.usd, "xero")
    session, finance = sign_in(act_as, world.finance, world.org_a)
    stored = ap_export.get_batch(session, batch["id"])
    assert ap_export.download_name(session, stored) == "gold-ap-batch-0001-xero-usd.csv"
    first = b"".join(ap_export.read_file(session, stored))
    assert first == content
    assert hashlib.sha256(first).hexdigest() == batch["sha256"]
    # Recording the payment run changes the invoices, never the file.
    payments.record_batch_payment(
        session, finance, batch["id"], payments.PaymentInput(date.today().isoformat(), "RUN 1", "ach")
    )
    session, finance = sign_in(act_as, world.finance, world.org_a)
    assert b"".join(ap_export.read_file(session, ap_export.get_batch(session, batch["id"]))) == content


def test_a_voided_batch_keeps_its_file_and_the_same_payments_export_again_identically(
    act_as, world, dataset, admin_engine
):
    first, batch = export(act_as, world, admin_engine, dataset.usd, "generic")
    void(act_as, world, batch["id"])
    again, second_batch = export(act_as, world, admin_engine, dataset.usd, "generic")
    assert again == first and second_batch["number"] == batch["number"] + 1
    session, _ = sign_in(act_as, world.finance, world.org_a)
    assert b"".join(ap_export.read_file(session, ap_export.get_batch(session, batch["id"]))) == first


# --- Excel: the byte-order mark (issue 22, item 11) ----------------------------------------------------------


def test_the_generic_file_starts_with_the_utf8_byte_order_mark_and_a_download_returns_it(
    act_as, world, dataset, admin_engine
):
    content, batch = export(act_as, world, admin_engine, dataset.usd, "generic")
    assert content[:3] == b"\xef\xbb\xbf" and content[3:17] == b"Invoice number"
    # The mark is part of the stored file: its size and sha256 count it, and every download returns it.
    assert batch["sha256"] == hashlib.sha256(content).hexdigest() and batch["size_bytes"] == len(content)
    assert batch["layout"]["bom"] is True
    session, _ = sign_in(act_as, world.finance, world.org_a)
    assert b"".join(ap_export.read_file(session, ap_export.get_batch(session, batch["id"]))) == content


def test_quickbooks_and_xero_files_never_start_with_a_byte_order_mark(act_as, world, dataset, admin_engine):
    for preset in ("quickbooks_online", "xero"):
        content, batch = export(act_as, world, admin_engine, dataset.usd[:1], preset)
        assert not content.startswith(b"\xef\xbb\xbf") and batch["layout"]["bom"] is False
        void(act_as, world, batch["id"])


def test_a_reader_for_utf8_with_bom_reads_the_names_and_the_em_dash_as_written(act_as, world, dataset, admin_engine):
    content, _ = export(act_as, world, admin_engine, dataset.usd, "generic")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[3]["Contractor"] == "Zoë Ångström Design"
    assert rows[0]["Description"] == "Kitchen, phase 1 — Design"
    assert next(iter(rows[0])) == "Invoice number"  # not "\ufeffInvoice number"


def test_an_organization_that_turns_the_mark_off_gets_the_generic_file_without_it(act_as, world, dataset, admin_engine):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    org = organizations.current_organization(session, admin)
    organizations.update_export_settings(
        session,
        admin,
        organizations.ExportSettings(
            "generic", org.ap_expense_account, org.ap_export_date_format, org.ap_export_columns, bom=False
        ),
    )
    content, batch = export(act_as, world, admin_engine, dataset.usd, "generic")
    assert content.startswith(b"Invoice number,Contractor,") and batch["layout"]["bom"] is False
