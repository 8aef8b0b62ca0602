"""The payment controls' journey in a real browser (issue 18): an admin sets a rule that payments of $10,000 or more
need a finance approval; the project owner approves a $12,800 milestone and is told it waits for finance; the
invoice page says why it is not payable yet; finance approves it in the approvals queue; then it can be exported.

Each step is checked as the person sees it, the end state as the owner role reads it."""

from __future__ import annotations

import re

from kit.browser import sign_in
from kit.engagements import create_active, milestones_of
from kit.money import party, submit
from playwright.sync_api import expect
from sqlalchemy import text

ROOF = (("Roof membrane", "Old roof removed; new membrane installed", "12,800.00", "2030-01-15"),)


def invoice_of(admin_engine, milestone_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id, invoice_number, status from invoices where milestone_id = :m"), {"m": milestone_id}
        ).one()


def test_a_large_payment_waits_for_finance_then_can_be_exported(
    new_context, screenshots, accessible, act_as, app_sessions, admin_engine, world
):
    # The admin adds the rule from Settings.
    admin = new_context().new_page()
    sign_in(admin, world.admin)
    admin.goto("/admin/settings")
    admin.get_by_role("button", name="Approval policies").click()  # a link shown as a button
    expect(admin.get_by_role("heading", name="Approval policies")).to_be_visible()
    admin.get_by_label("Name").fill("Large payments")
    admin.get_by_label("From this amount").fill("10,000.00")
    admin.locator("select[name='step-1-role']").select_option(label="Finance")
    admin.get_by_role("button", name="Add the policy").click()
    expect(admin.get_by_text("“Large payments” applies from now on to new authorizations.")).to_be_visible()
    expect(admin.get_by_role("row").filter(has_text="Large payments")).to_contain_text("$10,000.00")
    expect(admin.get_by_role("row").filter(has_text="Large payments")).to_contain_text("anyone in finance")
    screenshots.take(admin, "admin set the policy")
    accessible(admin, "admin: approval policies")

    # The contractor has delivered a $12,800 milestone; the owner approves it and is told it waits for finance.
    engagement_id = create_active(app_sessions, world, rows=ROOF)
    (roof,) = milestones_of(admin_engine, engagement_id)
    submit(act_as, party(world), roof.id)
    owner = new_context().new_page()
    owner.on("dialog", lambda d: d.accept())  # Approve asks first (data-confirm)
    sign_in(owner, world.owner)
    owner.goto(f"/milestones/{roof.id}")
    decision = owner.locator("#decision")
    expect(decision).to_contain_text("Then approved by")
    expect(decision).to_contain_text("anyone in finance")
    screenshots.take(owner, "owner sees the later step before deciding")
    decision.get_by_role("button", name="Approve").click()
    expect(decision.get_by_role("heading", name="Approved")).to_be_visible()
    expect(decision).to_contain_text("it waits for the further approvals")
    invoice = invoice_of(admin_engine, roof.id)
    assert invoice.status == "pending_approval"
    decision.get_by_role("link", name=invoice.invoice_number).click()
    why = owner.locator("#why")
    expect(why).to_contain_text("Waiting for approval — step 1 of 1, anyone in finance")
    screenshots.take(owner, "owner sees why it is not payable yet")
    accessible(owner, "owner: invoice awaiting approval")

    # Finance finds it in the approvals queue with the amount and what was delivered, and approves it.
    finance = new_context().new_page()
    dialogs: list[str] = []
    finance.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    sign_in(finance, world.finance)
    finance.goto("/payments/")
    expect(finance.get_by_role("row").filter(has_text=invoice.invoice_number)).to_have_count(0)  # not payable yet
    finance.get_by_role("link", name="Approvals").click()
    card = finance.locator(f"#approve-{invoice.id}")
    expect(card).to_contain_text("$12,800.00")
    expect(card).to_contain_text("Roof membrane")
    expect(card).to_contain_text(f"approved by the reviewer {world.owner.name}")
    screenshots.take(finance, "finance sees what waits for it")
    accessible(finance, "finance: approvals queue")
    card.get_by_role("button", name=re.compile(r"^Approve \$12,800\.00")).click()
    expect(finance.get_by_text("Approved.")).to_be_visible()
    assert dialogs and dialogs[-1].startswith(f"Approve {invoice.invoice_number} ($12,800.00)?")
    assert invoice_of(admin_engine, roof.id).status == "approved"

    # Now it is in the payment queue and can be exported (by the admin: finance approved it, and segregation of
    # duties keeps whoever approved a payment from paying it; an export is not a payment).
    finance.goto("/payments/")
    row = finance.get_by_role("row").filter(has_text=invoice.invoice_number)
    expect(row).to_contain_text("$11,520.00")
    row.get_by_role("checkbox").check()
    finance.locator("#export-selected").get_by_role("button", name="Export selected").click()
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Batch")
    screenshots.take(finance, "finance exported it")
    assert invoice_of(admin_engine, roof.id).status == "exported"
