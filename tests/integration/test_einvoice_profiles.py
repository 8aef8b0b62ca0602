"""E-invoicing profiles (issue 21, item 1): the form's rules (services/einvoice_profiles.clean), saving the
organization's and a contractor's profile (one row per party, audited, in the writer's name), who may save which,
the organization's acceptance settings, and the rows under row-level security with raw SQL as the web role."""

from __future__ import annotations

import pytest
from kit.engagements import owner_query, race, sign_in
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from backoffice.errors import Forbidden, NotFound, ValidationError
from backoffice.models import EInvoiceProfile, InvoiceAcceptance, Organization, SelfBillingAgreement
from backoffice.services import einvoice_profiles as profiles
from backoffice.services.einvoice_profiles import ProfileInput, clean

SELLER = ProfileInput(
    legal_name="Xena X Studio GmbH",
    street="Hauptstraße 1",
    city="Berlin",
    postal_code="10115",
    country="de",
    tax_id="de123456789",
    tax_scheme="VAT",
    endpoint_scheme="9930",
    endpoint_id="DE123456789",
    vat_category="S",
    vat_rate="19",
)
BUYER = ProfileInput(
    legal_name="Org A BV",
    street="Damrak 1",
    city="Amsterdam",
    postal_code="1012 LG",
    country="NL",
    tax_id="NL123456789B01",
    endpoint_scheme="0106",
    endpoint_id="12345678",
)


def with_(base: ProfileInput, **changes) -> ProfileInput:
    return ProfileInput(**{**base.__dict__, **changes})


# --- the form's rules --------------------------------------------------------------------------------------


def test_a_contractors_details_are_stored_with_the_country_and_vat_number_in_capitals_and_the_rate_in_bps():
    assert clean(SELLER, seller=True) == {
        "legal_name": "Xena X Studio GmbH",
        "street": "Hauptstraße 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
        "tax_id": "DE123456789",
        "tax_scheme": "VAT",
        "endpoint_scheme": "9930",
        "endpoint_id": "DE123456789",
        "vat_category": "S",
        "vat_bps": 1900,
    }
    assert clean(with_(SELLER, vat_rate="7.7"), seller=True)["vat_bps"] == 770
    assert clean(with_(SELLER, vat_rate=" 8.25 % "), seller=True)["vat_bps"] == 825


def test_details_may_be_saved_incomplete_and_what_is_missing_is_said_in_words():
    values = clean(ProfileInput(legal_name="Xena"), seller=True)
    assert values["country"] == "" and values["vat_category"] == "" and values["vat_bps"] == 0
    assert profiles.missing_for_einvoicing(EInvoiceProfile(contractor_id=1, **values)) == [
        "street",
        "city",
        "country",
        "Peppol endpoint (scheme and id)",
        "VAT category",
    ]
    assert profiles.missing_for_einvoicing(None, seller=False) == [
        "legal name",
        "street",
        "city",
        "country",
        "Peppol endpoint (scheme and id)",
    ]
    assert profiles.missing_for_einvoicing(EInvoiceProfile(contractor_id=1, **clean(SELLER, seller=True))) == []


def test_another_tax_id_keeps_its_own_spelling_and_needs_no_country_prefix():
    values = clean(with_(SELLER, tax_scheme="TAX", tax_id="12/345/67890 a"), seller=True)
    assert (values["tax_scheme"], values["tax_id"]) == ("TAX", "12/345/67890 a")


def test_greek_vat_numbers_start_el_and_northern_irish_xi():
    assert clean(with_(SELLER, tax_id="EL123456789", country="GR"), seller=True)["tax_id"] == "EL123456789"
    assert clean(with_(SELLER, tax_id="XI123456789", country="XI"), seller=True)["country"] == "XI"


def test_no_vat_category_but_the_standard_rate_charges_a_rate():
    for category in ("Z", "E", "AE", "O"):
        values = clean(with_(SELLER, vat_category=category, vat_rate=""), seller=True)
        assert (values["vat_category"], values["vat_bps"]) == (category, 0)
        assert clean(with_(SELLER, vat_category=category, vat_rate="0"), seller=True)["vat_bps"] == 0


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"country": "XX"}, "country", "Choose the country from the list"),
        ({"country": "Deutschland"}, "country", "Choose the country from the list"),
        ({"country": "D\x00"}, "country", "Choose the country from the list"),
        ({"tax_scheme": "GST"}, "tax_scheme", "VAT number or another tax id"),
        ({"tax_scheme": ""}, "tax_scheme", "VAT number or another tax id"),
        ({"tax_id": "DE#123"}, "tax_id", "Use letters, digits, spaces, dots, dashes or slashes"),
        ({"tax_id": "DE" + "1" * 39}, "tax_id", "at most 40"),
        ({"tax_id": "DE12\x003"}, "tax_id", "Use letters, digits"),
        ({"tax_id": "123456789"}, "tax_id", "A VAT number starts with its country's two letters"),
        ({"tax_id": "ZZ123456789"}, "tax_id", "A VAT number starts with its country's two letters"),
        ({"endpoint_scheme": "9999"}, "endpoint_scheme", "Choose the Peppol endpoint's scheme from the list."),
        ({"endpoint_scheme": "0088", "endpoint_id": ""}, "endpoint_id", "Enter the Peppol endpoint id"),
        ({"endpoint_scheme": "", "endpoint_id": "123"}, "endpoint_scheme", "Choose the scheme of this Peppol"),
        ({"endpoint_id": "a b"}, "endpoint_id", "Use letters, digits, dots, colons"),
        ({"endpoint_id": "x" * 101}, "endpoint_id", "at most 100"),
        ({"vat_category": "X"}, "vat_category", "Choose the contractor's VAT category from the list."),
        ({"vat_category": "S", "vat_rate": ""}, "vat_rate", "A standard rate is above 0% and at most 100%."),
        ({"vat_category": "S", "vat_rate": "0"}, "vat_rate", "A standard rate is above 0% and at most 100%."),
        ({"vat_category": "E", "vat_rate": "20"}, "vat_rate", "Exempt from VAT charges no VAT: the rate is 0%."),
        ({"vat_category": "AE", "vat_rate": "19"}, "vat_rate", "Reverse charge charges no VAT"),
        ({"vat_category": "", "vat_rate": "19"}, "vat_rate", "Choose the VAT category this rate is for."),
        ({"vat_rate": "nineteen"}, "vat_rate", "Enter a percentage such as 10 or 12.5"),
        ({"vat_rate": "19.999"}, "vat_rate", "at most two decimals"),
        ({"vat_rate": "120"}, "vat_rate", "A percentage cannot be more than 100."),
        ({"vat_rate": "1\x009"}, "vat_rate", "Enter a percentage"),
        ({"legal_name": "x" * 201}, "legal_name", "Keep the legal name under 200 characters."),
        ({"street": "Haupt\x00straße"}, "street", "contains characters that are not allowed"),
        ({"city": "x" * 101}, "city", "Keep the city under 100 characters."),
        ({"postal_code": "1" * 21}, "postal_code", "Keep the postal code under 20 characters."),
    ],
)
def test_bad_input_is_refused_at_its_field(change, field, message):
    with pytest.raises(ValidationError) as refused:
        clean(with_(SELLER, **change), seller=True)
    assert message in refused.value.fields[field]


def test_the_organizations_details_carry_no_vat_category():
    assert clean(BUYER, seller=False)["vat_category"] == ""
    with pytest.raises(ValidationError) as refused:
        clean(with_(BUYER, vat_category="S", vat_rate="20"), seller=False)
    assert "each contractor's do" in refused.value.fields["vat_category"]


# --- saving --------------------------------------------------------------------------------------------------


def profile_rows(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from einvoice_profiles where org_id = :o order by contractor_id nulls first",
        o=org_id,
    )


def saved_events(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine,
        "select actor_user_id, entity_type, entity_id, data from audit_events"
        " where org_id = :o and action = 'einvoice_profile.saved' order by seq",
        o=org_id,
    )


def test_an_admin_saves_the_organizations_details_and_saving_again_changes_the_same_row(world, act_as, admin_engine):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    first = profiles.save_org_profile(session, admin, BUYER)
    assert (first.contractor_id, first.country, first.updated_by) == (None, "NL", world.admin.id)
    again = profiles.save_org_profile(session, admin, with_(BUYER, city="Rotterdam"))
    assert again.id == first.id and again.city == "Rotterdam"
    (row,) = profile_rows(admin_engine, world.org_a)
    assert (row["city"], row["contractor_id"], row["updated_by"]) == ("Rotterdam", None, world.admin.id)
    created, changed = saved_events(admin_engine, world.org_a)
    assert (created["entity_type"], created["entity_id"]) == ("organization", str(world.org_a))
    assert created["data"]["changes"]["legal_name"] == {"before": None, "after": "Org A BV"}
    assert created["data"]["missing"] == []
    assert changed["data"]["changes"] == {"city": {"before": "Amsterdam", "after": "Rotterdam"}}
    assert changed["actor_user_id"] == world.admin.id


def test_a_contractors_details_are_one_row_whoever_of_finance_admins_and_its_user_saves_them(
    world, act_as, admin_engine
):
    session, xena = sign_in(act_as, world.contractor_x_user, world.org_a)
    mine = profiles.save_contractor_profile(session, xena, world.contractor_x, SELLER)
    assert (mine.contractor_id, mine.vat_bps, mine.updated_by) == (world.contractor_x, 1900, world.contractor_x_user.id)
    session, finance = sign_in(act_as, world.finance, world.org_a)
    profiles.save_contractor_profile(session, finance, world.contractor_x, with_(SELLER, vat_rate="7.7"))
    session, admin = sign_in(act_as, world.admin, world.org_a)
    profiles.save_contractor_profile(
        session, admin, str(world.contractor_x), with_(SELLER, vat_category="AE", vat_rate="")
    )
    (row,) = profile_rows(admin_engine, world.org_a)
    assert (row["id"], row["vat_category"], row["vat_bps"], row["updated_by"]) == (mine.id, "AE", 0, world.admin.id)
    events = saved_events(admin_engine, world.org_a)
    assert [(e["entity_type"], e["entity_id"], e["actor_user_id"]) for e in events] == [
        ("contractor", str(world.contractor_x), world.contractor_x_user.id),
        ("contractor", str(world.contractor_x), world.finance.id),
        ("contractor", str(world.contractor_x), world.admin.id),
    ]
    assert events[1]["data"]["changes"] == {"vat_bps": {"before": 1900, "after": 770}}


def test_bad_input_saves_nothing(world, act_as, admin_engine):
    session, xena = sign_in(act_as, world.contractor_x_user, world.org_a)
    with pytest.raises(ValidationError):
        profiles.save_contractor_profile(session, xena, world.contractor_x, with_(SELLER, country="XX"))
    session, admin = sign_in(act_as, world.admin, world.org_a)
    with pytest.raises(ValidationError):
        profiles.save_org_profile(session, admin, with_(BUYER, endpoint_id="a b"))
    assert profile_rows(admin_engine, world.org_a) == [] and saved_events(admin_engine, world.org_a) == []


def test_a_contractors_user_saves_its_own_details_only_and_never_the_organizations(world, act_as, admin_engine):
    session, xena = sign_in(act_as, world.contractor_x_user, world.org_a)
    with pytest.raises(NotFound):
        profiles.save_contractor_profile(session, xena, world.contractor_y, SELLER)
    with pytest.raises(NotFound):
        profiles.save_contractor_profile(session, xena, world.contractor_z, SELLER)  # another organization's
    with pytest.raises(Forbidden):
        profiles.save_org_profile(session, xena, BUYER)
    assert profile_rows(admin_engine, world.org_a) == []


def test_finance_keeps_the_contractors_details_but_not_the_organizations_and_owners_neither(
    world, act_as, admin_engine
):
    session, finance = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Forbidden):
        profiles.save_org_profile(session, finance, BUYER)
    session, owner = sign_in(act_as, world.owner, world.org_a)
    with pytest.raises(Forbidden):
        profiles.save_org_profile(session, owner, BUYER)
    with pytest.raises(Forbidden):
        profiles.save_contractor_profile(session, owner, world.contractor_x, SELLER)
    assert profile_rows(admin_engine, world.org_a) == []


def test_staff_cannot_save_details_for_a_contractor_that_is_not_their_organizations(world, act_as):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    for contractor_id in (world.contractor_z, "not-an-id"):
        with pytest.raises(NotFound):
            profiles.save_contractor_profile(session, admin, contractor_id, SELLER)


def test_two_first_saves_at_once_leave_one_row(world, app_sessions, admin_engine):
    outcomes = race(
        app_sessions,
        world.org_a,
        [world.admin, world.finance],
        lambda session, actor, i: profiles.save_contractor_profile(
            session, actor, world.contractor_y, with_(SELLER, city=f"City {i}")
        ),
    )
    assert not [o for o in outcomes if isinstance(o, Exception)]
    (row,) = profile_rows(admin_engine, world.org_a)
    assert row["contractor_id"] == world.contractor_y and row["city"] in ("City 0", "City 1")


def test_what_the_vat_category_needs_of_both_parties_tax_ids_is_said(world, act_as):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    profiles.save_org_profile(session, admin, with_(BUYER, tax_scheme="TAX", tax_id="12345"))
    reverse = profiles.save_contractor_profile(
        session, admin, world.contractor_x, with_(SELLER, vat_category="AE", vat_rate="")
    )
    assert profiles.vat_notes(session, reverse, "these details") == [
        "Reverse charge needs the organization's VAT id: add it in the organization's e-invoicing details"
        " (Settings → E-invoicing)."
    ]
    unknown = profiles.save_contractor_profile(
        session, admin, world.contractor_y, with_(SELLER, tax_id="", vat_category="Z", vat_rate="")
    )
    assert profiles.vat_notes(session, unknown, "these details") == [
        "Zero rated needs the contractor's VAT or tax id: add it in these details."
    ]
    assert profiles.vat_notes(session, None, "these details") == []


# --- the acceptance settings -----------------------------------------------------------------------------------


def test_an_admin_sets_the_days_of_silence_and_whether_acceptance_is_required(world, act_as, admin_engine):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    org = profiles.update_acceptance_settings(session, admin, "30", True)
    assert (org.acceptance_days, org.acceptance_required) == (30, True)
    (stored,) = owner_query(
        admin_engine, "select acceptance_days, acceptance_required from organizations where id = :o", o=world.org_a
    )
    assert stored == {"acceptance_days": 30, "acceptance_required": True}
    (event,) = owner_query(
        admin_engine,
        "select data from audit_events where org_id = :o and action = 'organization.settings_changed'",
        o=world.org_a,
    )
    assert event["data"] == {
        "acceptance_days": {"before": 14, "after": 30},
        "acceptance_required": {"before": False, "after": True},
    }


@pytest.mark.parametrize("days", ["0", "91", "", "two", "1\x004", "-3", "١٤"])
def test_days_of_silence_outside_1_to_90_are_refused_and_nothing_changes(world, act_as, admin_engine, days):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    with pytest.raises(ValidationError) as refused:
        profiles.update_acceptance_settings(session, admin, days, True)
    assert refused.value.fields == {"acceptance_days": "Enter a whole number between 1 and 90 (days)."}
    (stored,) = owner_query(
        admin_engine, "select acceptance_days, acceptance_required from organizations where id = :o", o=world.org_a
    )
    assert stored == {"acceptance_days": 14, "acceptance_required": False}


def test_only_admins_change_the_acceptance_settings(world, act_as):
    for person in (world.finance, world.owner, world.contractor_x_user):
        session, someone = sign_in(act_as, person, world.org_a)
        with pytest.raises(Forbidden):
            profiles.update_acceptance_settings(session, someone, "30", True)


# --- the rows under row-level security, as the web role ----------------------------------------------------------


@pytest.fixture
def three_profiles(world, act_as):
    """The organization's, contractor X's and contractor Y's profiles, and org B's own."""
    session, admin = sign_in(act_as, world.admin, world.org_a)
    profiles.save_org_profile(session, admin, BUYER)
    profiles.save_contractor_profile(session, admin, world.contractor_x, SELLER)
    profiles.save_contractor_profile(session, admin, world.contractor_y, with_(SELLER, legal_name="Yuri Y"))
    session, admin_b = sign_in(act_as, world.admin_b, world.org_b)
    profiles.save_org_profile(session, admin_b, with_(BUYER, legal_name="Org B"))
    act_as(None, None).rollback()


def seen(session) -> list:
    return [r[0] for r in session.execute(text("select contractor_id from einvoice_profiles order by 1 nulls first"))]


def test_a_contractors_user_reads_its_own_profile_and_the_organizations_never_another_contractors(
    world, act_as, three_profiles
):
    x = act_as(world.contractor_x_user.id, world.org_a)
    assert seen(x) == [None, world.contractor_x]
    assert (
        x.execute(
            text("select count(*) from einvoice_profiles where contractor_id = :c"), {"c": world.contractor_y}
        ).scalar_one()
        == 0
    )
    assert profiles.profile_of(x, world.contractor_y) is None
    assert profiles.profile_of(x, None).legal_name == "Org A BV"


def test_an_owner_reads_no_profile_and_another_organization_none_of_ours(world, act_as, three_profiles):
    assert seen(act_as(world.owner.id, world.org_a)) == []
    assert seen(act_as(world.admin_b.id, world.org_b)) == [None]
    assert seen(act_as(world.contractor_z_user.id, world.org_b)) == [None]


def test_finance_and_admins_read_every_profile_of_their_organization(world, act_as, three_profiles):
    expected = sorted([world.contractor_x, world.contractor_y], key=str)
    for person in (world.finance, world.admin):
        rows = seen(act_as(person.id, world.org_a))
        assert rows[0] is None and sorted(rows[1:], key=str) == expected


def test_the_database_refuses_a_contractors_user_writing_anothers_profile_or_the_organizations(
    world, act_as, three_profiles
):
    x = act_as(world.contractor_x_user.id, world.org_a)
    for contractor_id in (world.contractor_y, None):
        updated = x.execute(
            text(
                "update einvoice_profiles set city = 'Hacked', updated_by = :u"
                " where contractor_id is not distinct from cast(:c as uuid)"
            ),
            {"u": world.contractor_x_user.id, "c": contractor_id},
        )
        assert updated.rowcount == 0
    x.commit()
    with pytest.raises(DBAPIError, match="row-level security"):
        x.execute(
            text("insert into einvoice_profiles (org_id, contractor_id, updated_by) values (:o, :c, :u)"),
            {"o": world.org_a, "c": world.contractor_y, "u": world.contractor_x_user.id},
        )
    x.rollback()
    finance = act_as(world.finance.id, world.org_a)
    with pytest.raises(DBAPIError, match="row-level security"):
        finance.execute(
            text("insert into einvoice_profiles (org_id, updated_by) values (:o, :u)"),
            {"o": world.org_a, "u": world.finance.id},
        )
    finance.rollback()
    admin = act_as(world.admin.id, world.org_a)
    assert "Hacked" not in [r[0] for r in admin.execute(text("select city from einvoice_profiles"))]


# --- the models ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [EInvoiceProfile, SelfBillingAgreement, InvoiceAcceptance])
def test_each_model_maps_every_column_of_its_table(admin_engine, model):
    columns = owner_query(
        admin_engine,
        "select column_name from information_schema.columns where table_schema = 'public' and table_name = :t",
        t=model.__tablename__,
    )
    assert {c["column_name"] for c in columns} == {c.key for c in inspect(model).columns}


def test_a_new_organizations_acceptance_settings_are_the_schemas_defaults(admin_engine):
    (defaults,) = owner_query(
        admin_engine,
        "select max(column_default) filter (where column_name = 'acceptance_days') as days,"
        " max(column_default) filter (where column_name = 'acceptance_required') as required"
        " from information_schema.columns where table_name = 'organizations'",
    )
    assert defaults == {"days": "14", "required": "false"}
    assert Organization.__table__.c.acceptance_days.default.arg == 14
    assert Organization.__table__.c.acceptance_required.default.arg is False
