"""The e-invoicing pages (issue 21, item 1): Settings → E-invoicing (the organization's details and the acceptance
settings: admins edit, finance reads), the contractors' list and each contractor's details for finance and admins, and
the contractor's own "My e-invoicing details". Each says what is still missing for e-invoicing in words; bad input
answers 422 with the message at its field and saves nothing; every page is reached by a link; the wrong role gets 403,
another organization's contractor 404."""

from __future__ import annotations

import re

import pytest
from kit.engagements import owner_query
from kit.web import field_error, flashes, input_value, post, signed_in, visible_text

ORG = {
    "legal_name": "Org A BV",
    "street": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NL",
    "tax_scheme": "VAT",
    "tax_id": "NL123456789B01",
    "endpoint_scheme": "0106",
    "endpoint_id": "12345678",
}
SELLER = {
    "legal_name": "Xena X Studio GmbH",
    "street": "Hauptstraße 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "tax_scheme": "VAT",
    "tax_id": "de123456789",
    "endpoint_scheme": "9930",
    "endpoint_id": "DE123456789",
    "vat_category": "S",
    "vat_rate": "19",
}
BAD = [
    ({"country": "XX"}, "country", "Choose the country from the list"),
    ({"country": "N\x00L"}, "country", "Choose the country from the list"),
    ({"legal_name": "Org\x00A"}, "legal_name", "contains characters that are not allowed"),
    ({"street": "x" * 201}, "street", "Keep the street address under 200 characters."),
    ({"tax_scheme": "G\x00ST"}, "tax_scheme", "VAT number or another tax id"),
    ({"tax_id": "123456789"}, "tax_id", "A VAT number starts with its country's two letters"),
    ({"tax_id": "NL\x00123"}, "tax_id", "Use letters, digits"),
    ({"endpoint_scheme": "9999"}, "endpoint_scheme", "Choose the Peppol endpoint's scheme from the list."),
    ({"endpoint_scheme": "0106", "endpoint_id": ""}, "endpoint_id", "Enter the Peppol endpoint id"),
    ({"endpoint_scheme": "", "endpoint_id": "123"}, "endpoint_scheme", "Choose the scheme of this Peppol"),
    ({"endpoint_id": "12\x0034"}, "endpoint_id", "Use letters, digits, dots, colons"),
]
SELLER_BAD = [
    *BAD,
    ({"vat_category": "S", "vat_rate": ""}, "vat_rate", "A standard rate is above 0% and at most 100%."),
    ({"vat_category": "E", "vat_rate": "20"}, "vat_rate", "Exempt from VAT charges no VAT: the rate is 0%."),
    ({"vat_category": "Q"}, "vat_category", "Choose the contractor's VAT category from the list."),
    ({"vat_rate": "1\x009"}, "vat_rate", "Enter a percentage such as 10 or 12.5"),
]


def profiles(admin_engine, world) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from einvoice_profiles where org_id = :o order by contractor_id nulls first",
        o=world.org_a,
    )


def acceptance(admin_engine, world) -> dict:
    (row,) = owner_query(
        admin_engine, "select acceptance_days, acceptance_required from organizations where id = :o", o=world.org_a
    )
    return row


def missing_notice(html: str) -> str:
    match = re.search(r'<div class="flash flash-warning einvoice-missing"[^>]*>(.*?)</div>', html, re.S)
    return visible_text(match.group(1)) if match else ""


def links(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html))


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


@pytest.fixture
def xena(app, login, world):
    return signed_in(app, login, world.contractor_x_user)


# --- Settings → E-invoicing ----------------------------------------------------------------------------------


def test_the_settings_page_links_to_e_invoicing_where_an_admin_fills_in_the_organizations_details(
    admin, admin_engine, world
):
    assert "/settings/e-invoicing" in links(admin.get("/admin/settings").get_data(as_text=True))
    page = admin.get("/settings/e-invoicing").get_data(as_text=True)
    assert missing_notice(page) == (
        "Missing for e-invoicing: legal name, street, city, country, Peppol endpoint (scheme and id)."
        " Nothing is on file yet."
    )
    assert input_value(page, "legal_name") == f"Org A {world.suffix}"  # starts from the organization's name
    assert '<option value="0106">0106 — KvK number (NL)</option>' in page
    assert '<option value="NL">Netherlands</option>' in page
    response = post(admin, "/settings/e-invoicing", ORG)
    assert response.status_code == 303 and response.headers["Location"].endswith("/settings/e-invoicing")
    page = admin.get("/settings/e-invoicing").get_data(as_text=True)
    assert "The organization's e-invoicing details are saved." in flashes(page)
    assert missing_notice(page) == "" and "Everything a Peppol e-invoice needs is here." in visible_text(page)
    (row,) = profiles(admin_engine, world)
    assert (row["contractor_id"], row["legal_name"], row["country"], row["endpoint_scheme"], row["updated_by"]) == (
        None,
        "Org A BV",
        "NL",
        "0106",
        world.admin.id,
    )
    assert input_value(page, "city") == "Amsterdam"


def test_an_incomplete_organization_profile_is_saved_and_says_what_is_still_missing(admin, admin_engine, world):
    response = post(admin, "/settings/e-invoicing", {"legal_name": "Org A BV", "country": "NL", "tax_scheme": "VAT"})
    assert response.status_code == 303
    page = admin.get("/settings/e-invoicing").get_data(as_text=True)
    assert missing_notice(page) == "Missing for e-invoicing: street, city, Peppol endpoint (scheme and id)."
    assert len(profiles(admin_engine, world)) == 1


@pytest.mark.parametrize(("change", "field", "message"), BAD)
def test_bad_organization_details_are_refused_at_their_field_and_nothing_is_saved(
    admin, admin_engine, world, change, field, message
):
    response = post(admin, "/settings/e-invoicing", {**ORG, **change})
    assert response.status_code == 422
    assert message in (field_error(response.get_data(as_text=True), field) or "")
    assert profiles(admin_engine, world) == []


def test_the_organizations_form_sets_no_vat_category_whatever_is_posted(admin, admin_engine, world):
    assert post(admin, "/settings/e-invoicing", {**ORG, "vat_category": "S", "vat_rate": "20"}).status_code == 303
    (row,) = profiles(admin_engine, world)
    assert (row["vat_category"], row["vat_bps"]) == ("", 0)


def test_an_admin_sets_the_days_of_silence_and_requires_acceptance(admin, admin_engine, world):
    page = admin.get("/settings/e-invoicing").get_data(as_text=True)
    assert input_value(page, "acceptance_days") == "14"
    assert "Days of silence that count as acceptance" in page
    assert "Require the contractor&#39;s acceptance before payment" in page
    response = post(
        admin,
        "/settings/e-invoicing/acceptance",
        {"acceptance_days": "30", "acceptance_required": "y"},
        token_from="/settings/e-invoicing",
    )
    assert response.status_code == 303
    assert acceptance(admin_engine, world) == {"acceptance_days": 30, "acceptance_required": True}
    page = admin.get("/settings/e-invoicing").get_data(as_text=True)
    assert "Acceptance settings saved." in flashes(page) and input_value(page, "acceptance_days") == "30"
    assert (
        post(
            admin, "/settings/e-invoicing/acceptance", {"acceptance_days": "30"}, token_from="/settings/e-invoicing"
        ).status_code
        == 303
    )
    assert acceptance(admin_engine, world) == {"acceptance_days": 30, "acceptance_required": False}


@pytest.mark.parametrize("days", ["0", "91", "", "1\x004", "two"])
def test_days_of_silence_outside_1_to_90_are_refused_at_the_field(admin, admin_engine, world, days):
    response = post(
        admin,
        "/settings/e-invoicing/acceptance",
        {"acceptance_days": days, "acceptance_required": "y"},
        token_from="/settings/e-invoicing",
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "acceptance_days") == "Enter a whole number between 1 and 90 (days)."
    assert acceptance(admin_engine, world) == {"acceptance_days": 14, "acceptance_required": False}


def test_finance_reads_the_organizations_details_and_settings_in_words_but_changes_neither(
    admin, finance, admin_engine, world
):
    post(admin, "/settings/e-invoicing", ORG)
    assert "/settings/e-invoicing" in links(finance.get("/").get_data(as_text=True))  # finance's navigation
    page = finance.get("/settings/e-invoicing").get_data(as_text=True)
    text = visible_text(page)
    assert "Org A BV" in text and "Netherlands" in text and "0106 — KvK number (NL)" in text
    assert "VAT number NL123456789B01" in text and "14" in text and "Not required" in text
    assert 'action="/settings/e-invoicing' not in page
    assert 'name="legal_name"' not in page and 'name="acceptance_days"' not in page
    assert post(finance, "/settings/e-invoicing", {**ORG, "city": "Utrecht"}).status_code == 403
    assert (
        post(finance, "/settings/e-invoicing/acceptance", {"acceptance_days": "2"}, token_from="/settings/e-invoicing")
    ).status_code == 403
    assert profiles(admin_engine, world)[0]["city"] == "Amsterdam"
    assert acceptance(admin_engine, world)["acceptance_days"] == 14


# --- the contractors' details, for finance and admins -----------------------------------------------------------


def test_the_contractors_page_shows_its_e_invoicing_details_and_links_to_their_form(admin, admin_engine, world):
    page = admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True)
    section = visible_text(page.split('id="einvoice-heading"', 1)[1].split("</article>", 1)[0])
    assert (
        "Missing for e-invoicing: legal name, street, city, country, Peppol endpoint (scheme and id), VAT category."
        in section
    )
    assert f"/contractors/{world.contractor_x}/e-invoicing" in links(page)
    form = admin.get(f"/contractors/{world.contractor_x}/e-invoicing").get_data(as_text=True)
    assert input_value(form, "legal_name") == f"Contractor X {world.suffix}"
    assert (
        '<option value="AE">Reverse charge</option>' in form and '<option value="O">Not subject to VAT</option>' in form
    )
    assert f"/admin/contractors/{world.contractor_x}" in links(form)  # back to the contractor
    response = post(admin, f"/contractors/{world.contractor_x}/e-invoicing", SELLER)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/contractors/{world.contractor_x}/e-invoicing")
    (row,) = profiles(admin_engine, world)
    assert (row["contractor_id"], row["tax_id"], row["vat_category"], row["vat_bps"]) == (
        world.contractor_x,
        "DE123456789",
        "S",
        1900,
    )
    page = admin.get(f"/admin/contractors/{world.contractor_x}").get_data(as_text=True)
    assert "Everything a Peppol e-invoice needs is on file." in visible_text(page)


def test_finance_finds_each_contractor_in_the_list_and_keeps_its_details(finance, admin_engine, world):
    e_invoicing = finance.get("/settings/e-invoicing").get_data(as_text=True)
    assert "/e-invoicing/contractors" in links(e_invoicing)
    listing = finance.get("/e-invoicing/contractors").get_data(as_text=True)
    row = re.search(rf"<tr>\s*<td><a href=\"/contractors/{world.contractor_x}/e-invoicing\">.*?</tr>", listing, re.S)
    assert row and "Missing legal name, street, city, country" in visible_text(row.group(0))
    response = post(finance, f"/contractors/{world.contractor_x}/e-invoicing", SELLER)
    assert response.status_code == 303
    assert profiles(admin_engine, world)[0]["updated_by"] == world.finance.id
    listing = finance.get("/e-invoicing/contractors").get_data(as_text=True)
    row = re.search(rf"<tr>\s*<td><a href=\"/contractors/{world.contractor_x}/e-invoicing\">.*?</tr>", listing, re.S)
    assert "Complete" in visible_text(row.group(0))
    assert f"/admin/contractors/{world.contractor_x}" not in links(
        finance.get(f"/contractors/{world.contractor_x}/e-invoicing").get_data(as_text=True)
    )  # finance has no admin contractor page to go back to


@pytest.mark.parametrize(("change", "field", "message"), SELLER_BAD)
def test_bad_contractor_details_are_refused_at_their_field_and_nothing_is_saved(
    finance, admin_engine, world, change, field, message
):
    response = post(finance, f"/contractors/{world.contractor_x}/e-invoicing", {**SELLER, **change})
    assert response.status_code == 422
    assert message in (field_error(response.get_data(as_text=True), field) or "")
    assert profiles(admin_engine, world) == []


def test_the_vat_category_notes_what_it_needs_of_the_tax_ids(admin, world):
    post(admin, "/settings/e-invoicing", {**ORG, "tax_scheme": "TAX", "tax_id": "12345"})
    post(admin, f"/contractors/{world.contractor_x}/e-invoicing", {**SELLER, "vat_category": "AE", "vat_rate": ""})
    page = admin.get(f"/contractors/{world.contractor_x}/e-invoicing").get_data(as_text=True)
    assert missing_notice(page) == (
        "Reverse charge needs the organization's VAT id: add it in the organization's e-invoicing details"
        " (Settings → E-invoicing)."
    )


def test_another_organizations_contractor_or_no_contractor_is_not_found(admin, world):
    for path in (f"/contractors/{world.contractor_z}/e-invoicing", "/contractors/not-an-id/e-invoicing"):
        assert admin.get(path).status_code == 404
        assert post(admin, path, SELLER, token_from="/settings/e-invoicing").status_code == 404


# --- the contractor's own ---------------------------------------------------------------------------------------


def test_the_contractors_user_keeps_its_own_details_from_its_navigation_and_reads_the_organizations(
    admin, xena, admin_engine, world
):
    post(admin, "/settings/e-invoicing", ORG)
    home = xena.get("/").get_data(as_text=True)
    assert "/e-invoicing" in links(home) and "/tax/form" in links(home)
    page = xena.get("/e-invoicing").get_data(as_text=True)
    assert "My e-invoicing details" in page and "VAT category" in missing_notice(page)
    buyer = visible_text(page.split('id="buyer-heading"', 1)[1])
    assert "Org A BV" in buyer and "Damrak 1" in buyer and "Netherlands" in buyer
    response = post(xena, "/e-invoicing", {**SELLER, "vat_category": "E", "vat_rate": ""})
    assert response.status_code == 303 and response.headers["Location"].endswith("/e-invoicing")
    page = xena.get("/e-invoicing").get_data(as_text=True)
    assert "Your e-invoicing details are saved." in flashes(page) and missing_notice(page) == ""
    (_, row) = profiles(admin_engine, world)
    assert (row["contractor_id"], row["vat_category"], row["updated_by"]) == (
        world.contractor_x,
        "E",
        world.contractor_x_user.id,
    )


@pytest.mark.parametrize(("change", "field", "message"), SELLER_BAD)
def test_the_contractors_bad_input_is_refused_at_its_field_and_nothing_is_saved(
    xena, admin_engine, world, change, field, message
):
    response = post(xena, "/e-invoicing", {**SELLER, **change})
    assert response.status_code == 422
    assert message in (field_error(response.get_data(as_text=True), field) or "")
    assert profiles(admin_engine, world) == []


def test_the_contractors_user_reaches_no_one_elses_details_and_no_settings(xena, admin_engine, world):
    for path in (
        "/settings/e-invoicing",
        "/e-invoicing/contractors",
        f"/contractors/{world.contractor_x}/e-invoicing",
        f"/contractors/{world.contractor_y}/e-invoicing",
    ):
        assert xena.get(path).status_code == 403
    assert (
        post(xena, f"/contractors/{world.contractor_y}/e-invoicing", SELLER, token_from="/e-invoicing").status_code
        == 403
    )
    assert post(xena, "/settings/e-invoicing", ORG, token_from="/e-invoicing").status_code == 403
    assert profiles(admin_engine, world) == []


def test_project_owners_reach_none_of_the_e_invoicing_pages(app, login, world):
    owner = signed_in(app, login, world.owner)
    for path in (
        "/settings/e-invoicing",
        "/e-invoicing/contractors",
        f"/contractors/{world.contractor_x}/e-invoicing",
        "/e-invoicing",
    ):
        assert owner.get(path).status_code == 403
    assert "/settings/e-invoicing" not in links(owner.get("/").get_data(as_text=True))


def test_staff_have_no_my_e_invoicing_details(admin, finance):
    assert admin.get("/e-invoicing").status_code == 403
    assert finance.get("/e-invoicing").status_code == 403


def test_a_form_without_its_security_token_is_refused(admin, xena, admin_engine, world):
    assert admin.post("/settings/e-invoicing", data=ORG).status_code == 400
    assert admin.post("/settings/e-invoicing/acceptance", data={"acceptance_days": "3"}).status_code == 400
    assert xena.post("/e-invoicing", data=SELLER).status_code == 400
    assert profiles(admin_engine, world) == []
    assert acceptance(admin_engine, world)["acceptance_days"] == 14
