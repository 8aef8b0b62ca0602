"""The remittance journey in a real browser: three milestones are approved (so three payments are authorized);
finance exports two of them in an AP batch from the queue, then imports the bank's remittance CSV. A file with
an unknown invoice number and a wrong amount is refused row by row and records nothing; the corrected file,
paying one exported and one not yet exported payment, is previewed, confirmed and recorded. Finance sees them
paid in the queue and in the batch; the contractor's user sees "Paid" on "Your payments".

Each step is checked as the person sees it (roles, labels, text), screenshotted, and checked with axe; the
end state as the owner role reads it from the database."""

from __future__ import annotations

import re

from kit.browser import file_payload, sign_in
from kit.money_pages import active_engagement, approve, invoice_row, milestone_ids, money_state, payments_of
from playwright.sync_api import Page, expect

TITLE = "Office fit-out"
ROWS = (
    ("Design", "Floor plans", "1,234.55", "2030-01-15"),
    ("Build", "Structure complete", "2,000.05", "2030-03-01"),
    ("Handover", "Keys and snag list", "500.00", "2030-04-30"),
)
HEADER = "Invoice number,Amount,Paid date,Reference\n"


def money(minor: int) -> str:
    return f"${minor / 100:,.2f}"


def csv_file(lines: list[str]) -> dict:
    return file_payload("remittance.csv", "text/csv", (HEADER + "".join(f"{line}\n" for line in lines)).encode())


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def row_of(page: Page, invoice_number: str, table: str = "table"):
    """The table row of one invoice."""
    return page.locator(f"{table} tbody tr").filter(has=page.get_by_role("link", name=invoice_number, exact=True))


def check_the_file(page: Page, lines: list[str]) -> None:
    page.get_by_label("Remittance file (CSV)").set_input_files(csv_file(lines))
    page.get_by_label("Paid by").select_option("wire")
    page.get_by_role("button", name="Check the file").click()


def test_finance_exports_a_batch_and_imports_a_remittance_file_and_the_contractor_sees_it_paid(
    new_context, screenshots, accessible, app_sessions, admin_engine, world
):
    engagement_id = active_engagement(app_sessions, world, title=TITLE, rows=ROWS)
    design, build, handover = [
        dict(invoice_row(admin_engine, approve(app_sessions, world, mid)))
        for mid in milestone_ids(admin_engine, engagement_id)
    ]
    # 10% retainage withheld from each: the net payable is what the bank pays.
    assert [i["net_minor"] for i in (design, build, handover)] == [111109, 180004, 45000]
    assert {i["status"] for i in (design, build, handover)} == {"approved"}
    paid_on = max(i["issued_on"] for i in (design, build, handover)).isoformat()

    page_errors: list[str] = []
    dialogs: list[str] = []
    finance = new_context().new_page()
    finance.on("pageerror", lambda exc: page_errors.append(str(exc)))
    finance.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))

    # Finance finds the three authorized payments in the queue and exports two of them.
    sign_in(finance, world.finance)
    nav(finance, "Payments")
    expect(finance.get_by_role("heading", level=1)).to_have_text("Payment queue")
    for invoice in (design, build, handover):
        expect(row_of(finance, invoice["invoice_number"])).to_contain_text("Authorized")
        expect(row_of(finance, invoice["invoice_number"])).to_contain_text(money(invoice["net_minor"]))
    screenshots.take(finance, "finance opens the payment queue")
    accessible(finance, "finance: payment queue")
    finance.get_by_label(f"Select {design['invoice_number']}").check()
    finance.get_by_label(f"Select {build['invoice_number']}").check()
    finance.get_by_role("button", name="Export selected").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text(re.compile(r"Batch \d+"))
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Exported")
    batch_heading = re.match(r"Batch \d+", finance.get_by_role("heading", level=1).inner_text()).group(0)
    expect(finance.get_by_text("Download the file below; its payments are now exported.")).to_be_visible()
    expect(row_of(finance, design["invoice_number"])).to_contain_text("Exported")
    expect(row_of(finance, build["invoice_number"])).to_contain_text("Exported")
    expect(row_of(finance, handover["invoice_number"])).to_have_count(0)
    screenshots.take(finance, "finance exported two payments in a batch")
    accessible(finance, "finance: AP export batch")
    assert dialogs[-1] == "Export 2 payments, $2,911.13, to a new AP batch?"  # the count and total of the ticked rows

    # The remittance import page, from the queue.
    nav(finance, "Payments")
    finance.get_by_role("button", name="Import a remittance file").click()
    expect(finance.get_by_role("heading", level=1)).to_have_text("Import a remittance file")
    expect(finance.get_by_text("invoice number, amount, paid date, reference")).to_be_visible()
    screenshots.take(finance, "finance opens the remittance import")
    accessible(finance, "finance: remittance import")

    # A file with an unknown invoice number and a wrong amount: each bad row is named, nothing is recorded.
    before = money_state(admin_engine, world.org_a)
    check_the_file(
        finance,
        [
            f"{design['invoice_number']},1111.09,{paid_on},ACH 5001",
            f"ZZZZ-999999,450.00,{paid_on},ACH 5002",
            f"{handover['invoice_number']},405.00,{paid_on},ACH 5003",
        ],
    )
    expect(finance.get_by_role("heading", name="Nothing can be imported yet")).to_be_visible()
    expect(finance.locator("section[aria-labelledby=preview-heading]").get_by_role("alert")).to_have_text(
        "2 of 3 rows need fixing. Correct the file and check it again; nothing was recorded."
    )
    preview = finance.locator("table.remittance tbody tr")
    expect(preview).to_have_count(3)
    expect(preview.nth(0).locator("td").first).to_have_text("2")
    expect(preview.nth(0).locator("td").last).to_have_text("OK")
    expect(preview.nth(1).locator("td").first).to_have_text("3")
    expect(preview.nth(1).locator("td").last).to_have_text("No invoice ZZZZ-999999 in this organization.")
    expect(preview.nth(2).locator("td").first).to_have_text("4")
    expect(preview.nth(2).locator("td").last).to_have_text(
        f"Amount $405.00 does not match the net payable {money(handover['net_minor'])}."
    )
    expect(finance.get_by_role("button", name=re.compile(r"^Import"))).to_have_count(0)
    screenshots.take(finance, "finance sees the bad rows named")
    accessible(finance, "finance: remittance preview with problems")
    assert money_state(admin_engine, world.org_a) == before

    # The corrected file pays the exported Design and the not yet exported Handover.
    check_the_file(
        finance,
        [
            f'{design["invoice_number"]},"1,111.09",{paid_on},ACH 5001',
            f"{handover['invoice_number']},450.00,{paid_on},ACH 5003",
        ],
    )
    expect(finance.get_by_role("heading", name="Ready to import 2 payments")).to_be_visible()
    preview = finance.locator("table.remittance tbody tr")
    expect(preview).to_have_count(2)
    for row, invoice, amount, reference in (
        (preview.nth(0), design, "1,111.09", "ACH 5001"),
        (preview.nth(1), handover, "450.00", "ACH 5003"),
    ):
        expect(row.get_by_role("link", name=invoice["invoice_number"])).to_be_visible()
        expect(row).to_contain_text(invoice["description"])
        expect(row).to_contain_text(amount)
        expect(row).to_contain_text(reference)
        expect(row.locator("td").last).to_have_text("OK")
    expect(finance.get_by_text("Totals:")).to_contain_text(money(design["net_minor"] + handover["net_minor"]))
    screenshots.take(finance, "finance checks the corrected file")
    accessible(finance, "finance: remittance preview ready to import")
    assert money_state(admin_engine, world.org_a) == before

    finance.get_by_role("button", name="Import 2 payments").click()
    expect(finance.get_by_text("2 payments recorded from the remittance file.")).to_be_visible()
    assert dialogs[-1] == "Record all 2 payments as paid?"
    expect(finance.get_by_role("heading", level=1)).to_have_text("Payment queue")
    expect(finance.get_by_role("combobox", name=re.compile(r"^Status"))).to_have_value("paid")
    for invoice in (design, handover):
        expect(row_of(finance, invoice["invoice_number"])).to_contain_text("Paid")
    expect(row_of(finance, build["invoice_number"])).to_have_count(0)
    screenshots.take(finance, "finance sees them paid in the queue")
    accessible(finance, "finance: payment queue of paid payments")

    # The batch: Design paid by the remittance, Build still exported.
    finance.get_by_role("button", name="AP export batches").click()
    expect(finance.get_by_role("heading", level=1)).to_have_text("AP export batches")
    batch_row = finance.locator("table.batches tbody tr").filter(has_text=batch_heading)
    expect(batch_row).to_contain_text("1 of 2 paid")
    batch_row.get_by_role("link", name=batch_heading).click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text(batch_heading)
    expect(row_of(finance, design["invoice_number"])).to_contain_text("Paid")
    expect(row_of(finance, build["invoice_number"])).to_contain_text("Exported")
    expect(finance.get_by_text("Marks every unpaid payment of this batch (1) as paid")).to_be_visible()
    screenshots.take(finance, "finance sees the batch partly paid")
    accessible(finance, "finance: AP export batch partly paid")

    # The database agrees: two payments from the remittance, the third still exported and unpaid.
    for invoice, reference in ((design, "ACH 5001"), (handover, "ACH 5003")):
        (payment,) = payments_of(admin_engine, invoice["id"])
        assert (
            payment["source"],
            payment["method"],
            payment["reference"],
            payment["amount_minor"],
            payment["currency"],
            payment["paid_at"].isoformat(),
            payment["recorded_by"],
        ) == ("remittance", "wire", reference, invoice["net_minor"], "USD", paid_on, world.finance.id)
        assert (
            invoice_row(admin_engine, invoice["id"])["status"],
            invoice_row(admin_engine, invoice["id"])["paid_at"].isoformat(),
        ) == ("paid", paid_on)
    assert payments_of(admin_engine, build["id"]) == []
    assert invoice_row(admin_engine, build["id"])["status"] == "exported"

    # The contractor's user sees them paid on "Your payments".
    contractor = new_context().new_page()
    contractor.on("pageerror", lambda exc: page_errors.append(str(exc)))
    sign_in(contractor, world.contractor_x_user)
    nav(contractor, "Payments")
    expect(contractor.get_by_role("heading", level=1)).to_have_text("Your payments")
    for invoice, status in ((design, "Paid"), (build, "Exported"), (handover, "Paid")):
        row = row_of(contractor, invoice["invoice_number"])
        expect(row.locator(".badge")).to_have_text(status)
        expect(row).to_contain_text(money(invoice["net_minor"]))
    screenshots.take(contractor, "contractor sees the payments paid")
    accessible(contractor, "contractor: your payments")

    assert page_errors == []
