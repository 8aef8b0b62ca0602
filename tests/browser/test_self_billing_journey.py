"""A self-billed e-invoice from agreement to payment (issue 21, item 7), in a real browser: the admin fills in the
organization's e-invoicing details and requires the contractor's acceptance before payment, and records a
self-billing agreement with contractor X; X's user fills in its own details (a Polish name, reverse charge) and
confirms the agreement; the project owner approves the work on the review screen and the worker issues the
self-billed invoice (PDF) and its Peppol e-invoice (UBL). Finance cannot pay it yet: it awaits the contractor's
acceptance. The contractor downloads both documents (the UBL passes the official Peppol self-billing and CEN rules
and names it by its Polish name) and accepts the invoice; finance records the payment, then verifies the
downloaded files on the verify page, and a copy of each with one byte changed is refused, naming its document id.

The pages new with issue 21 are photographed and checked with axe at 1366 px and at a phone's 390 px, where nothing
may be wider than the screen. The amounts: $2,400.00 for one milestone, 10% retainage ($240.00) withheld,
$2,160.00 paid."""

from __future__ import annotations

import re

from kit.browser import file_payload, run_jobs_aside, sign_in
from kit.engagements import acting, owner_query
from kit.money_pages import active_engagement, invoice_row, milestone_ids, payments_of
from kit.peppol import validate
from kit.verification import one_byte_changed
from playwright.sync_api import Page, expect

from backoffice.services import submissions

WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
CONTRACTOR_NAME = "Łukasz Nowak Usługi Budowlane"
TERMS = (
    "The organization issues the invoices for the contractor's work on its behalf (self-billing).\n"
    "The contractor accepts or rejects each one within 14 days; silence counts as acceptance."
)
AWAITS = "It awaits the contractor's acceptance of its self-billed invoice"

# How far the page reaches sideways beyond the window (0: nothing to scroll sideways), and what reaches past it.
_OVERFLOW = """
() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !el.closest(".table-scroll")) {
      wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className} (${Math.round(box.right)} px)`);
    }
  }
  return {over: document.documentElement.scrollWidth - width, wide: wide.slice(0, 8)};
}
"""


def yes_to_every_question(page: Page) -> list[str]:
    """Answer every data-confirm question yes, and keep what was asked."""
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    return asked


def opened(context, errors: list[str]) -> Page:
    """A page at 1366 px wide whose script errors are kept in ``errors``."""
    page = context.new_page()
    page.set_viewport_size(WIDE)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def nav(page: Page, name: str) -> None:
    """Follow a link of the main navigation, opening its menu first (finance's Records, the admin's Admin)."""
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True, include_hidden=True)
    if not link.is_visible():
        menu = page.locator("nav.main-nav details.dropdown").filter(
            has=page.get_by_role("link", name=name, exact=True, include_hidden=True)
        )
        menu.locator("summary").click()
    link.click()


class Shots:
    """Each key page photographed and checked with axe at 1366 px and, in a second page of the same profile (so
    signed in as the same person), at 390 px, where nothing may be wider than the screen. What is wrong is kept, so
    one run names every page's problems; the test fails on them at its end."""

    def __init__(self, screenshots, accessible) -> None:
        self.screenshots = screenshots
        self.accessible = accessible
        self.problems: list[str] = []

    def both(self, page: Page, step: str, label: str, *, phone=None) -> None:
        self.wide(page, step, label)
        small = page.context.new_page()
        small.set_viewport_size(PHONE)
        if phone is None:
            small.goto(page.url)
            expect(small.get_by_role("heading", level=1)).to_be_visible()
        else:
            phone(small)  # a page a GET does not reach again (a form's answer): the phone does it too
        small.wait_for_load_state("networkidle")
        self.screenshots.take(small, f"{step} at 390 px")
        self._check(small, f"{label} (390 px)")
        found = small.evaluate(_OVERFLOW)
        if found["over"] > 0:
            self.problems.append(f"{label}: scrolls sideways by {found['over']} px at 390 px: {found['wide']}")
        small.close()

    def wide(self, page: Page, step: str, label: str) -> None:
        page.wait_for_load_state("networkidle")
        self.screenshots.take(page, f"{step} at 1366 px")
        self._check(page, f"{label} (1366 px)")

    def _check(self, page: Page, label: str) -> None:
        try:
            self.accessible(page, label)
        except AssertionError as exc:
            self.problems.append(str(exc))


def verify(page: Page, name: str, mime: str, content: bytes) -> None:
    """Upload a file on the verify page (open) and wait for the verdict on it."""
    page.get_by_label(re.compile(r"(The file to check|Check another file) \(PDF or XML\)")).set_input_files(
        file_payload(name, mime, content)
    )
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.locator("#verdict-heading")).to_have_text(re.compile(rf"^(Verified|Not verified): {re.escape(name)}$"))


def test_a_self_billed_invoice_is_agreed_issued_downloaded_accepted_paid_and_verified(
    new_context, screenshots, accessible, app_sessions, admin_engine, database, world
):
    shots = Shots(screenshots, accessible)
    errors: list[str] = []

    # --- 1. The admin fills in the organization's e-invoicing details and requires the contractor's acceptance. --
    admin = opened(new_context(), errors)
    yes_to_every_question(admin)
    sign_in(admin, world.admin)
    admin.locator("details.nav-admin summary").click()
    admin.get_by_role("link", name="Settings", exact=True).click()
    admin.get_by_role("button", name="E-invoicing").click()  # a link drawn as a button
    expect(admin.get_by_role("heading", level=1)).to_have_text("E-invoicing")
    expect(admin.locator(".einvoice-missing")).to_contain_text("Missing for e-invoicing")
    admin.locator("#legal_name").fill("Org A Bouw B.V.")
    admin.locator("#street").fill("Keizersgracht 12")
    admin.locator("#postal_code").fill("1015 CN")
    admin.locator("#city").fill("Amsterdam")
    admin.locator("#country").select_option("NL")
    admin.locator("#tax_scheme").select_option("VAT")
    admin.locator("#tax_id").fill("NL123456789B01")
    admin.locator("#endpoint_scheme").select_option("9944")
    admin.locator("#endpoint_id").fill("NL123456789B01")
    admin.get_by_role("button", name="Save the organization's details").click()
    expect(admin.get_by_role("status")).to_contain_text("The organization's e-invoicing details are saved.")
    expect(admin.locator(".einvoice-complete")).to_contain_text("Everything a Peppol e-invoice needs is here.")
    expect(admin.locator("#legal_name")).to_have_value("Org A Bouw B.V.")
    admin.locator("#acceptance_required").check()
    admin.get_by_role("button", name="Save acceptance settings").click()
    expect(admin.get_by_role("status")).to_contain_text("Acceptance settings saved.")
    expect(admin.locator("#acceptance_required")).to_be_checked()
    shots.both(admin, "admin e-invoicing settings saved", "admin: e-invoicing settings")
    (org,) = owner_query(admin_engine, "select acceptance_required from organizations where id = :o", o=world.org_a)
    assert org["acceptance_required"] is True

    # --- 2. The admin records the self-billing agreement on contractor X's page. ------------------------------
    admin.locator("details.nav-admin summary").click()
    admin.get_by_role("link", name="Contractors", exact=True).click()
    admin.get_by_role("link", name=f"Contractor X {world.suffix}", exact=True).click()
    section = admin.locator("#self-billing")
    expect(section).to_contain_text("No self-billing agreement is recorded")
    section.locator("#agreed_on").fill("2026-01-15")
    section.locator("#terms").fill(TERMS)
    section.get_by_role("button", name="Record the agreement").click()
    expect(admin.get_by_role("status")).to_contain_text(f"Self-billing agreement with Contractor X {world.suffix}")
    expect(section).to_contain_text("Not confirmed")
    shots.both(admin, "admin recorded the self-billing agreement", "admin: contractor page with the agreement")

    # --- 3. Contractor X's user fills in its e-invoicing details and confirms the agreement. -----------------
    xena = opened(new_context(), errors)
    yes_to_every_question(xena)
    sign_in(xena, world.contractor_x_user)
    nav(xena, "E-invoicing")
    expect(xena.get_by_role("heading", level=1)).to_have_text("My e-invoicing details")
    xena.locator("#legal_name").fill(CONTRACTOR_NAME)
    xena.locator("#street").fill("ul. Długa 5")
    xena.locator("#postal_code").fill("80-001")
    xena.locator("#city").fill("Gdańsk")
    xena.locator("#country").select_option("PL")
    xena.locator("#tax_scheme").select_option("VAT")
    xena.locator("#tax_id").fill("PL1234567890")
    xena.locator("#endpoint_scheme").select_option("9945")
    xena.locator("#endpoint_id").fill("PL1234567890")
    xena.locator("#vat_category").select_option(label="Reverse charge")
    xena.get_by_role("button", name="Save e-invoicing details").click()
    expect(xena.get_by_role("status")).to_contain_text("Your e-invoicing details are saved.")
    expect(xena.locator("#legal_name")).to_have_value(CONTRACTOR_NAME)
    expect(xena.locator("#buyer-heading + p + dl")).to_contain_text("Org A Bouw B.V.")
    shots.both(xena, "contractor e-invoicing details saved", "contractor: my e-invoicing details")

    nav(xena, "Self-billing")
    expect(xena.get_by_role("heading", level=1)).to_have_text("Self-billing agreement")
    expect(xena.locator(".agreement-terms")).to_contain_text("silence counts as acceptance")
    shots.both(xena, "contractor reads the agreement", "contractor: self-billing agreement to confirm")
    xena.locator("#agree").check()
    xena.get_by_role("button", name="Confirm this agreement").click()
    expect(xena.locator(".agreement-state")).to_contain_text("Confirmed")
    shots.both(xena, "contractor confirmed the agreement", "contractor: self-billing agreement confirmed")

    # --- 4. The work: an engagement with one milestone, submitted; the owner approves it on the review screen. --
    engagement_id = active_engagement(
        app_sessions, world, title="Roof repair", rows=(("Roof", "Roof re-tiled", "2,400.00", "2030-01-15"),)
    )
    (milestone,) = milestone_ids(admin_engine, engagement_id)
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submissions.submit_work(
            session,
            actor,
            milestone,
            submissions.SubmissionInput(note="Roof re-tiled.", links="https://example.com/roof", files=[]),
        )
    owner = opened(new_context(), errors)
    yes_to_every_question(owner)
    sign_in(owner, world.owner)
    owner.goto(f"/engagements/{engagement_id}")
    owner.get_by_role("link", name="Roof", exact=True).first.click()
    decision = owner.locator("#decision")
    decision.get_by_role("button", name="Approve").click()
    expect(decision.get_by_role("heading", name="Approved")).to_be_visible()
    (invoice,) = owner_query(admin_engine, "select * from invoices where engagement_id = :e", e=engagement_id)
    number = invoice["invoice_number"]
    assert (invoice["gross_minor"], invoice["retainage_minor"], invoice["net_minor"]) == (240_000, 24_000, 216_000)

    # --- 5. The worker issues the self-billed invoice (PDF) and the e-invoice (UBL). -------------------------
    run_jobs_aside(database, admin_engine, world.org_a)
    documents = {
        d["kind"]: d
        for d in owner_query(
            admin_engine, "select kind, transaction_id, sha256 from documents where invoice_id = :i", i=invoice["id"]
        )
    }
    assert set(documents) == {"self_billed_invoice", "einvoice"}, documents

    # --- 6. Finance cannot pay it yet: it awaits the contractor's acceptance. -------------------------------
    finance = opened(new_context(), errors)
    yes_to_every_question(finance)
    sign_in(finance, world.finance)
    finance.goto(f"/invoices/{invoice['id']}")
    expect(finance.locator("#why")).to_contain_text(AWAITS)
    expect(finance.locator("#acceptance")).to_contain_text("Awaiting")
    expect(finance.locator("#pay-form")).to_have_count(0)
    expect(finance.get_by_role("button", name=re.compile("^Record payment"))).to_have_count(0)
    shots.both(finance, "finance cannot pay before the contractor accepts", "finance: invoice awaiting acceptance")

    # --- 7. The contractor downloads both documents, checks them, and accepts the self-billed invoice. -------
    nav(xena, "Payments")
    xena.get_by_role("link", name=number, exact=True).first.click()
    expect(xena.get_by_role("heading", level=1)).to_contain_text(number)
    docs = xena.locator("#documents")
    with xena.expect_download() as got:
        docs.get_by_role("link", name="Self-billed invoice (PDF)").click()
    pdf_name, pdf = got.value.suggested_filename, got.value.path().read_bytes()
    with xena.expect_download() as got:
        docs.get_by_role("link", name=re.compile(r"^E-invoice \(UBL")).click()
    ubl_name, ubl = got.value.suggested_filename, got.value.path().read_bytes()
    assert pdf.startswith(b"%PDF") and pdf_name.endswith(".pdf"), pdf_name
    assert ubl_name.endswith(".xml"), ubl_name
    assert validate(ubl) == []
    xml = ubl.decode("utf-8")
    assert f"<cbc:RegistrationName>{CONTRACTOR_NAME}</cbc:RegistrationName>" in xml, xml
    assert f"<cbc:ID>{number}</cbc:ID>" in xml
    for amount, value in (
        ("LineExtensionAmount", "2400.00"),
        ("AllowanceTotalAmount", "240.00"),
        ("PayableAmount", "2160.00"),
    ):
        assert f'<cbc:{amount} currencyID="USD">{value}</cbc:{amount}>' in xml, amount  # the retainage is withheld
    assert documents["einvoice"]["transaction_id"] in xml
    answer = xena.locator("#acceptance")
    expect(answer).to_contain_text("Awaiting")
    shots.both(xena, "contractor reads its self-billed invoice", "contractor: invoice page with documents and answer")
    answer.get_by_role("button", name="Accept the self-billed invoice").click()
    expect(xena.locator("#acceptance .acceptance-state")).to_contain_text("Accepted by Xena X")
    shots.wide(xena, "contractor accepted the self-billed invoice", "contractor: invoice page after accepting")

    # --- 8. Finance records the payment. ----------------------------------------------------------------------
    finance.reload()
    expect(finance.locator("#acceptance")).to_contain_text("Accepted")
    expect(finance.locator("#why")).not_to_contain_text(AWAITS)  # (it is not due yet: that stops nothing)
    pay = finance.locator("#pay-form")
    pay.get_by_label("Reference").fill("SEPA 2026-0042")
    pay.get_by_role("button", name="Record payment of $2,160.00").click()
    expect(finance.get_by_role("status")).to_contain_text(f"Payment of {number} recorded (SEPA 2026-0042).")
    expect(finance.get_by_role("heading", level=1)).to_contain_text("Paid")
    shots.both(finance, "finance paid the accepted invoice", "finance: invoice paid, documents and acceptance")
    assert invoice_row(admin_engine, invoice["id"])["status"] == "paid"
    assert [p["amount_minor"] for p in payments_of(admin_engine, invoice["id"])] == [216_000]

    # --- 9. Finance verifies the downloaded files, and refuses a copy of each with one byte changed. ----------
    nav(finance, "Data room")
    finance.get_by_role("link", name="Verify a document").click()
    expect(finance.get_by_role("heading", level=1)).to_have_text("Verify a document")
    for name, mime, content, kind in (
        (pdf_name, "application/pdf", pdf, "self_billed_invoice"),
        (ubl_name, "application/xml", ubl, "einvoice"),
    ):
        transaction_id = documents[kind]["transaction_id"]
        verify(finance, name, mime, content)
        expect(finance.locator("#verdict-heading")).to_have_text(f"Verified: {name}")
        expect(finance.locator(".verdict")).to_contain_text(transaction_id)
        expect(finance.locator(".verdict")).to_contain_text("The audit chain still holds the head it states")
        tampered = one_byte_changed(content)
        assert tampered != content and len(tampered) == len(content)
        verify(finance, f"changed-{name}", mime, tampered)
        expect(finance.locator("#verdict-heading")).to_have_text(f"Not verified: changed-{name}")
        expect(finance.get_by_role("alert")).to_contain_text(f"names document {transaction_id}")
        expect(finance.get_by_role("alert")).to_contain_text("its bytes differ from what was issued")
        if kind == "self_billed_invoice":
            shots.both(
                finance,
                "finance verify refuses a changed copy",
                "finance: verify page, a changed copy refused",
                phone=lambda small, n=name, m=mime, t=tampered: (
                    small.goto("/documents/verify"),
                    verify(small, f"changed-{n}", m, t),
                ),
            )
    verify(finance, pdf_name, "application/pdf", pdf)
    shots.both(
        finance,
        "finance verified the downloaded self-billed invoice",
        "finance: verify page, verified",
        phone=lambda small: (small.goto("/documents/verify"), verify(small, pdf_name, "application/pdf", pdf)),
    )
    assert errors == []
    assert not shots.problems, "\n".join(shots.problems)
