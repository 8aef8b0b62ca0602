"""The VAT rate rule of e-invoicing details has one source, domain.einvoice.vat_rate_problem, and a copy in the
database (CHECK einvoice_profiles_vat_rate, migration 0031): only the standard rate charges VAT, at more than 0% and
at most 100%; every other category (and none) at 0%. This test enumerates every category with rates around each edge
and holds the two equal, writing as the owner role (the CHECK binds everyone) in a transaction rolled back."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backoffice.domain.einvoice import vat_rate_problem

CATEGORIES = ["", "S", "Z", "E", "AE", "O"]
RATES = [0, 1, 770, 2000, 9999, 10000]


def test_the_rule_says_what_a_finance_team_expects():
    # Written out by hand, not read from the rule under test.
    assert vat_rate_problem("S", 2000) is None
    assert vat_rate_problem("S", 0) == "A standard rate is above 0% and at most 100%."
    assert vat_rate_problem("AE", 0) is None
    assert vat_rate_problem("AE", 2000) == "Reverse charge charges no VAT: the rate is 0%."
    assert vat_rate_problem("", 0) is None
    assert vat_rate_problem("", 2000) == "Choose the VAT category this rate is for."


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_databases_check_accepts_exactly_the_rates_the_domain_accepts(admin_engine, world, category):
    accepted_by_db = {}
    with admin_engine.connect() as conn:
        outer = conn.begin()
        for bps in RATES:
            savepoint = conn.begin_nested()
            try:
                conn.execute(
                    text(
                        "insert into einvoice_profiles (org_id, contractor_id, vat_category, vat_bps, updated_by)"
                        " values (:org, :contractor, :category, :bps, :by)"
                    ),
                    {
                        "org": world.org_a,
                        "contractor": world.contractor_x,
                        "category": category,
                        "bps": bps,
                        "by": world.admin.id,
                    },
                )
                accepted_by_db[bps] = True
            except IntegrityError as error:
                assert getattr(error.orig.diag, "constraint_name", "") == "einvoice_profiles_vat_rate"
                accepted_by_db[bps] = False
            savepoint.rollback()
        outer.rollback()
    assert accepted_by_db == {bps: vat_rate_problem(category, bps) is None for bps in RATES}


def test_the_organizations_own_details_name_no_vat_category(admin_engine, world):
    with admin_engine.connect() as conn, pytest.raises(IntegrityError, match="einvoice_profiles_vat_is_the_sellers"):
        conn.execute(
            text(
                "insert into einvoice_profiles (org_id, contractor_id, vat_category, vat_bps, updated_by)"
                " values (:org, null, 'S', 2000, :by)"
            ),
            {"org": world.org_a, "by": world.admin.id},
        )
