"""The e-invoicing forms refuse a Peppol endpoint id the official rules refuse (review finding 10 of issue 21): a GLN,
Belgian, Swedish, Norwegian or Australian number whose check digits are wrong, or a DIGSTORG id without DK, answers
422 with the words at the endpoint id field and saves nothing; a valid one is saved. One saved before the forms
checked is named on the profile's page as still needed for e-invoicing."""

from __future__ import annotations

import re

import pytest
from kit.engagements import owner_query
from kit.web import field_error, post, signed_in, visible_text
from sqlalchemy import text

ORG = {
    "legal_name": "Org A BV",
    "street": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NL",
    "tax_scheme": "VAT",
    "tax_id": "NL123456789B01",
}
SELLER = {**ORG, "legal_name": "Xena X Studio", "vat_category": "O", "vat_rate": ""}


def profiles(admin_engine, world) -> list[dict]:
    return owner_query(admin_engine, "select * from einvoice_profiles where org_id = :o", o=world.org_a)


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


@pytest.fixture
def xena(app, login, world):
    return signed_in(app, login, world.contractor_x_user)


@pytest.mark.parametrize(
    ("scheme", "identifier", "message"),
    [
        ("0088", "1234567890123", "This GLN's last digit is not its GS1 check digit: check the number"),
        ("0208", "0403170702", "This enterprise number's last two digits are not its check digits"),
        ("0184", "12345678", "A DIGSTORG endpoint is DK and the 8 digits of the CVR number, like DK12345678."),
    ],
)
def test_the_organizations_form_refuses_an_endpoint_id_with_wrong_check_digits_at_its_field(
    admin, admin_engine, world, scheme, identifier, message
):
    response = post(admin, "/settings/e-invoicing", {**ORG, "endpoint_scheme": scheme, "endpoint_id": identifier})
    assert response.status_code == 422
    assert message in (field_error(response.get_data(as_text=True), "endpoint_id") or "")
    assert profiles(admin_engine, world) == []


def test_the_contractors_own_form_refuses_a_wrong_swedish_organization_number_and_saves_a_right_one(
    xena, admin_engine, world
):
    response = post(xena, "/e-invoicing", {**SELLER, "endpoint_scheme": "0007", "endpoint_id": "5560360794"})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "endpoint_id") == (
        "This organization number's last digit is not its check digit: check the number."
    )
    assert profiles(admin_engine, world) == []
    response = post(xena, "/e-invoicing", {**SELLER, "endpoint_scheme": "0007", "endpoint_id": "5560360793"})
    assert response.status_code == 303
    (row,) = profiles(admin_engine, world)
    assert (row["endpoint_scheme"], row["endpoint_id"]) == ("0007", "5560360793")


def test_an_endpoint_id_saved_before_the_check_is_named_as_still_needed_for_e_invoicing(admin, admin_engine, world):
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into einvoice_profiles (org_id, contractor_id, legal_name, street, city, postal_code, country,"
                " tax_id, tax_scheme, endpoint_scheme, endpoint_id, vat_category, vat_bps, updated_by)"
                " values (:o, null, 'Org A BV', 'Damrak 1', 'Amsterdam', '', 'NL', '', 'VAT', '0088',"
                " '1234567890123', '', 0, :by)"
            ),
            {"o": world.org_a, "by": world.admin.id},
        )
    page = admin.get("/settings/e-invoicing").get_data(as_text=True)
    notice = re.search(r'<div class="flash flash-warning einvoice-missing"[^>]*>(.*?)</div>', page, re.S)
    assert notice and visible_text(notice.group(1)) == (
        "Missing for e-invoicing: a Peppol endpoint id the rules accept."
    )
    assert field_error(page, "endpoint_id") is None  # not an error of a form just posted
