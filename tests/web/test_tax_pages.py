"""The tax pages (issue 18, items 5 and 6): a contractor's user fills in its W-9 or W-8 (bad input answers 422 with
the message at the field and saves nothing; the TIN is shown as its last four only); the admin's setting and the
contractor's page; finance's 1099 year end, its CSV (Excel-readable, formula-safe), the lock and reopening with a
reason; and who may see what."""

from __future__ import annotations

import csv
import io

import pytest
from kit.engagements import owner_query
from kit.money import approved_invoices, party, pay, set_org
from kit.web import field_error, flashes, input_value, post, signed_in, visible_text

FORM = {
    "kind": "w9",
    "name": "Xena X",
    "business_name": "X Studio",
    "classification": "individual",
    "tin_type": "ssn",
    "tin": "401-23-6789",
    "address_line1": "1 Main St",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "certify": "y",
}


def profiles(admin_engine, world) -> list[dict]:
    return owner_query(admin_engine, "select * from tax_profiles where org_id = :o", o=world.org_a)


def tins(admin_engine, world) -> list[dict]:
    return owner_query(admin_engine, "select * from tax_tins where org_id = :o", o=world.org_a)


@pytest.fixture
def xena(app, login, world):
    return signed_in(app, login, world.contractor_x_user)


def test_the_contractor_fills_in_a_w9_and_sees_only_the_last_four(xena, admin_engine, world):
    page = xena.get("/tax/form")
    assert page.status_code == 200 and "Tax form" in page.get_data(as_text=True)
    response = post(xena, "/tax/form", FORM)
    assert response.status_code == 303 and response.headers["Location"].endswith("/tax/form")
    html = xena.get("/tax/form").get_data(as_text=True)
    assert "•••• 6789" in html and "Complete" in visible_text(html)
    assert "401-23-6789" not in html and "401236789" not in html and "23-6789" not in html
    (profile,) = profiles(admin_engine, world)
    assert (profile["kind"], profile["tin_type"], profile["tin_last4"], profile["country"]) == (
        "w9",
        "ssn",
        "6789",
        "US",
    )
    # Filled in again with the TIN left blank: the one on file stays.
    assert post(xena, "/tax/form", {**FORM, "tin": "", "city": "Chicago"}).status_code == 303
    (again,) = profiles(admin_engine, world)
    assert (again["city"], again["tin_id"]) == ("Chicago", profile["tin_id"])
    assert len(tins(admin_engine, world)) == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tin": "123-45-678"}, "tin", "Enter the SSN as nine digits, like 123-45-6789."),
        ({"tin": "000-12-3456"}, "tin", "That is not a valid SSN"),
        ({"tin": "123\x0045\x006789"}, "tin", "Enter the SSN as nine digits"),
        ({"tin": ""}, "tin", "Enter the TIN (SSN or EIN)."),
        ({"tin_type": ""}, "tin_type", "Choose whether the TIN is an SSN or an EIN."),
        ({"name": "Xena\x00X"}, "name", "contains characters that are not allowed"),
        ({"city": "Spring\x00field"}, "city", "contains characters that are not allowed"),
        ({"name": ""}, "name", "Enter the name as shown on the tax return."),
        ({"classification": "pirate"}, "classification", "Choose the federal tax classification"),
        ({"region": "ZZ"}, "region", "Choose the state"),
        ({"postal_code": "6270"}, "postal_code", "Enter the ZIP code"),
        ({"certify": ""}, "certify", "Certify that the information is correct"),
        ({"kind": "1040"}, "kind", "Choose the form you file"),
        ({"kind": "w8ben", "country": "US"}, "country", "A US person files a W-9"),
        ({"kind": "w8ben_e", "country": ""}, "country", "two-letter code"),
    ],
)
def test_bad_input_is_refused_at_its_field_and_nothing_is_saved(xena, admin_engine, world, change, field, message):
    response = post(xena, "/tax/form", {**FORM, **change})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in (field_error(html, field) or "")
    assert "401-23-6789" not in html and "401236789" not in html  # the TIN typed is never sent back
    assert profiles(admin_engine, world) == [] and tins(admin_engine, world) == []


def test_a_w8_needs_no_tin_and_is_not_a_us_person(xena, admin_engine, world):
    w8 = {"kind": "w8ben", "name": "Xena X", "address_line1": "Hauptstr. 1", "city": "Berlin", "country": "de"}
    assert post(xena, "/tax/form", {**w8, "certify": "y"}).status_code == 303
    (profile,) = profiles(admin_engine, world)
    assert (profile["kind"], profile["country"], profile["tin_id"], profile["classification"]) == (
        "w8ben",
        "DE",
        None,
        "",
    )


def test_only_a_contractor_has_a_tax_form_page_and_only_finance_and_admins_the_year_end(app, login, world):
    for person, form_status, year_status in (
        (world.contractor_x_user, 200, 403),
        (world.owner, 403, 403),
        (world.finance, 403, 200),
        (world.admin, 403, 200),
    ):
        client = signed_in(app, login, person)
        assert client.get("/tax/form").status_code == form_status, person.email
        assert client.get("/tax/year-end").status_code == year_status, person.email


def test_the_contractors_home_says_payments_wait_for_its_tax_form(xena, admin_engine, world):
    assert "Tax form missing" not in xena.get("/").get_data(as_text=True)
    set_org(admin_engine, world.org_a, tax_form_required=True)
    home = visible_text(xena.get("/").get_data(as_text=True))
    assert "Tax form missing: no W-9 on file." in home and "Fill in your tax form" in home
    post(xena, "/tax/form", FORM)
    assert "Tax form missing" not in xena.get("/").get_data(as_text=True)


def test_an_admin_requires_a_tax_form_in_settings_and_reads_the_contractors_status(
    app, login, world, admin_engine, xena
):
    admin = signed_in(app, login, world.admin)
    settings = admin.get("/admin/settings").get_data(as_text=True)
    assert 'name="tax_form_required"' in settings
    page = visible_text(admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True))
    assert "Tax form Missing No W-9 on file." in page
    post(xena, "/tax/form", FORM)
    page = visible_text(admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True))
    assert "Complete W-9, TIN SSN •••• 6789" in page


def test_the_settings_page_turns_the_rule_on(app, login, world, admin_engine):
    admin = signed_in(app, login, world.admin)
    html = admin.get("/admin/settings").get_data(as_text=True)
    data = {
        name: input_value(html, name) or ""
        for name in ("name", "default_retainage", "payment_terms_days", "evidence_max_files", "evidence_max_file_mb")
    }
    data |= {
        "evidence_max_submission_mb": input_value(html, "evidence_max_submission_mb") or "",
        "invoice_prefix": input_value(html, "invoice_prefix") or "",
        "review_sla_days": input_value(html, "review_sla_days") or "",
        "default_currency": "USD",
        "partial_policy": "split",
        "segregation_of_duties": "y",
        "tax_form_required": "y",
    }
    response = post(admin, "/admin/settings", data)
    assert response.status_code == 303, flashes(response.get_data(as_text=True))
    (org,) = owner_query(admin_engine, "select tax_form_required from organizations where id = :o", o=world.org_a)
    assert org["tax_form_required"] is True


# --- the 1099 year end -----------------------------------------------------------------------------------------


@pytest.fixture
def year_world(app, login, world, act_as, admin_engine, xena):
    """X filled in a W-9 whose name a spreadsheet would run as a formula; X is paid 2,500.00 today."""
    post(xena, "/tax/form", {**FORM, "name": '=HYPERLINK("http://evil.example")', "business_name": "+Ünïcode Co"})
    _, (inv,) = approved_invoices(act_as, admin_engine, party(world), ("2,500.00",), retainage="0")
    pay(act_as, world.finance, world.org_a, inv["id"])
    (row,) = owner_query(admin_engine, "select paid_at from payments where invoice_id = :i", i=inv["id"])
    return row["paid_at"].year


def test_finance_reads_the_year_its_threshold_and_who_is_reportable(app, login, world, year_world):
    finance = signed_in(app, login, world.finance)
    page = visible_text(finance.get(f"/tax/year-end?year={year_world}").get_data(as_text=True))
    threshold = "$2,000.00" if year_world >= 2026 else "$600.00"
    assert f"Reporting threshold for {year_world}: {threshold}" in page
    assert f"Contractor X {world.suffix} W-9 •••• 6789 1 $2,500.00 Reportable" in page
    assert finance.get("/tax/year-end?year=1999").status_code == 200  # a flash, and the default year


def test_the_csv_is_excel_readable_and_formula_safe_and_locks_the_year(app, login, world, year_world, admin_engine):
    finance = signed_in(app, login, world.finance)
    page = f"/tax/year-end?year={year_world}"
    assert "hx-confirm" in finance.get(page).get_data(as_text=True)
    response = post(finance, f"/tax/year-end/{year_world}/export", {}, token_from=page)
    assert response.status_code == 303
    html = finance.get(page).get_data(as_text=True)
    assert "is locked" in visible_text(html) and "Export 1099-NEC CSV" not in html
    (filing,) = owner_query(admin_engine, "select id, sha256 from tax_year_filings where org_id = :o", o=world.org_a)
    download = finance.get(f"/tax/year-end/filings/{filing['id']}")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"].startswith('attachment; filename="1099-NEC-')
    body = download.data
    assert body.startswith(b"\xef\xbb\xbf") and b"\r\n" in body
    (header, row) = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    record = dict(zip(header, row, strict=True))
    assert record["Recipient name"] == '\'=HYPERLINK("http://evil.example")'
    assert record["Recipient business name"] == "'+Ünïcode Co"
    assert (record["Recipient TIN type"], record["Recipient TIN"]) == ("SSN", "401-23-6789")
    assert record["Box 1 nonemployee compensation"] == "2500.00"
    assert finance.get(f"/tax/year-end/filings/{filing['id']}").data == body  # byte-identical, every time
    # Exporting again is refused while locked.
    again = post(finance, f"/tax/year-end/{year_world}/export", {}, token_from=page)
    assert "is locked" in " ".join(flashes(finance.get(again.headers["Location"]).get_data(as_text=True)))


def test_reopening_takes_a_reason_at_its_field(app, login, world, year_world, admin_engine):
    finance = signed_in(app, login, world.finance)
    page = f"/tax/year-end?year={year_world}"
    post(finance, f"/tax/year-end/{year_world}/export", {}, token_from=page)
    refused = post(finance, f"/tax/year-end/{year_world}/reopen", {"reason": " \x00 "}, token_from=page)
    assert refused.status_code == 422
    assert field_error(refused.get_data(as_text=True), "reason")
    refused = post(finance, f"/tax/year-end/{year_world}/reopen", {"reason": ""}, token_from=page)
    assert field_error(refused.get_data(as_text=True), "reason") == "Enter the reason to reopen the year."
    ok = post(finance, f"/tax/year-end/{year_world}/reopen", {"reason": "A late check"}, token_from=page)
    assert ok.status_code == 303
    html = visible_text(finance.get(page).get_data(as_text=True))
    assert "Earlier exports" in html and "“A late check”" in html and "Export 1099-NEC CSV" in html


def test_another_organizations_filing_is_not_found(app, login, world, year_world, admin_engine):
    finance = signed_in(app, login, world.finance)
    page = f"/tax/year-end?year={year_world}"
    post(finance, f"/tax/year-end/{year_world}/export", {}, token_from=page)
    (filing,) = owner_query(admin_engine, "select id from tax_year_filings where org_id = :o", o=world.org_a)
    admin_b = signed_in(app, login, world.admin_b)
    assert admin_b.get(f"/tax/year-end/filings/{filing['id']}").status_code == 404
    assert admin_b.get("/tax/year-end/filings/not-an-id").status_code == 404


def test_staff_see_on_the_engagement_page_only_whether_a_tax_form_is_on_file(
    app, login, world, xena, act_as, admin_engine
):
    from kit.money import active_engagement

    engagement_id, _ = active_engagement(act_as, admin_engine, party(world), ("100.00",))
    owner = signed_in(app, login, world.owner)
    page = visible_text(owner.get(f"/engagements/{engagement_id}").get_data(as_text=True))
    assert "No complete tax form on file" in page
    post(xena, "/tax/form", FORM)
    page = owner.get(f"/engagements/{engagement_id}").get_data(as_text=True)
    assert "Tax form on file" in visible_text(page) and "6789" not in page and "Xena X, " not in page
    assert (
        "Tax form"
        not in visible_text(xena.get(f"/engagements/{engagement_id}").get_data(as_text=True)).split("Project owner")[1][
            :40
        ]
    )
