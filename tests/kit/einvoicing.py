"""E-invoicing set-up for tests (issue 21): both parties' details and a confirmed self-billing agreement, written as
the owner role (the pages and services that write them are tested on their own: test_einvoice_profile_pages,
test_self_billing_*)."""

from __future__ import annotations

from sqlalchemy import text

ORG = {
    "legal_name": "Org A Bouw B.V.",
    "street": "Keizersgracht 12",
    "city": "Amsterdam",
    "postal_code": "1015 CN",
    "country": "NL",
    "tax_id": "NL123456789B01",
    "tax_scheme": "VAT",
    "endpoint_scheme": "9944",
    "endpoint_id": "NL123456789B01",
    "vat_category": "",
    "vat_bps": 0,
}
CONTRACTOR = {
    "legal_name": "Łukasz Nowak Usługi Budowlane",
    "street": "ul. Długa 5",
    "city": "Gdańsk",
    "postal_code": "80-001",
    "country": "PL",
    "tax_id": "PL1234567890",
    "tax_scheme": "VAT",
    "endpoint_scheme": "9945",
    "endpoint_id": "PL1234567890",
    "vat_category": "AE",
    "vat_bps": 0,
}


def save_details(admin_engine, org_id, contractor_id, by, **values) -> None:
    """Insert or replace one party's e-invoicing details (contractor_id None: the organization's)."""
    row = {**(CONTRACTOR if contractor_id else ORG), **values}
    with admin_engine.begin() as conn:
        conn.execute(
            text("delete from einvoice_profiles where org_id = :o and contractor_id is not distinct from :c"),
            {"o": org_id, "c": contractor_id},
        )
        conn.execute(
            text(
                f"insert into einvoice_profiles (org_id, contractor_id, updated_by, {', '.join(row)})"
                f" values (:org_id, :contractor_id, :by, {', '.join(':' + k for k in row)})"
            ),
            {"org_id": org_id, "contractor_id": contractor_id, "by": by, **row},
        )


def agree(admin_engine, org_id, contractor_id, recorded_by, confirmed_by=None) -> None:
    """A self-billing agreement with the contractor, confirmed by ``confirmed_by`` when given."""
    with admin_engine.begin() as conn:
        agreement = conn.execute(
            text(
                "insert into self_billing_agreements (org_id, contractor_id, agreed_on, terms, recorded_by)"
                " values (:o, :c, current_date, 'We issue your invoices on your behalf.', :by) returning id"
            ),
            {"o": org_id, "c": contractor_id, "by": recorded_by},
        ).scalar_one()
        if confirmed_by:
            conn.execute(
                text("update self_billing_agreements set confirmed_by = :u where org_id = :o and id = :a"),
                {"u": confirmed_by, "o": org_id, "a": agreement},
            )


def ready_for_einvoicing(admin_engine, world, contractor_id=None, **contractor_values) -> None:
    """Org A and its contractor (X by default) with complete details and a confirmed agreement."""
    contractor_id = contractor_id or world.contractor_x
    user = world.contractor_x_user if contractor_id == world.contractor_x else world.contractor_y_user
    save_details(admin_engine, world.org_a, None, world.admin.id)
    save_details(admin_engine, world.org_a, contractor_id, world.admin.id, **contractor_values)
    agree(admin_engine, world.org_a, contractor_id, world.admin.id, user.id)
