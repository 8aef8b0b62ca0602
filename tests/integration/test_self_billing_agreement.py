"""The self-billing agreement (issue 21, item 4; EU VAT Directive 2006/112/EC art. 224): an admin records it with a
contractor (a date not in the future by the database's clock, terms), only that contractor's user confirms it, once,
and the latest recorded is the one in force; the contractor's users are asked to confirm it. Through the real
services, with the database's policies and guard tried directly as the web role; rows read back as the owner role."""

from __future__ import annotations

from datetime import timedelta

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL, run_jobs
from kit.money import events
from kit.self_billing import TERMS, agreements, confirm, emails, record
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.errors import Conflict, Forbidden, NotFound, ValidationError
from backoffice.queries import self_billing as queries

# --- recorded and confirmed ----------------------------------------------------------------------------------------


def test_an_admin_records_the_agreement_and_its_contractors_user_confirms_it(act_as, admin_engine, world):
    agreement = record(act_as, world, agreed_on="2026-01-15")
    (row,) = agreements(admin_engine, world.org_a)
    assert (row["contractor_id"], str(row["agreed_on"]), row["terms"]) == (world.contractor_x, "2026-01-15", TERMS)
    assert (row["recorded_by"], row["confirmed_by"], row["confirmed_at"]) == (world.admin.id, None, None)

    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    assert queries.agreement_of(session, world.contractor_x).confirmed is False
    confirm(act_as, world.contractor_x_user, world.org_a, agreement.id)
    (row,) = agreements(admin_engine, world.org_a)
    assert row["confirmed_by"] == world.contractor_x_user.id and row["confirmed_at"] is not None
    session, _ = sign_in(act_as, world.finance, world.org_a)
    seen = queries.agreement_of(session, world.contractor_x)
    assert (seen.confirmed, seen.confirmed_by_name, seen.recorded_by_name) == (True, "Xena X", "Ada Admin")
    recorded, confirmed = (
        events(admin_engine, world.org_a, "self_billing.agreement_recorded"),
        events(admin_engine, world.org_a, "self_billing.agreement_confirmed"),
    )
    assert [e["data"]["agreement_id"] for e in recorded + confirmed] == [str(agreement.id)] * 2


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_only_an_admin_records_an_agreement(act_as, admin_engine, world, who):
    with pytest.raises(Forbidden):
        record(act_as, world, by=getattr(world, who))
    assert agreements(admin_engine, world.org_a) == []


def test_the_database_refuses_an_agreement_recorded_by_anyone_but_an_admin_in_its_own_name(act_as, admin_engine, world):
    insert = text(
        "insert into self_billing_agreements (org_id, contractor_id, agreed_on, terms, recorded_by)"
        " values (:o, :c, current_date, 'Terms', :by)"
    )
    for person, by in ((world.finance, world.finance.id), (world.admin, world.owner.id)):
        session, _ = sign_in(act_as, person, world.org_a)
        with pytest.raises(DBAPIError, match="row-level security"):
            session.execute(insert, {"o": world.org_a, "c": world.contractor_x, "by": by})
        session.rollback()
    assert agreements(admin_engine, world.org_a) == []


@pytest.mark.parametrize(
    ("agreed_on", "terms", "field", "words"),
    [
        ("", TERMS, "agreed_on", "Enter the date of the agreement."),
        ("15/01/2026", TERMS, "agreed_on", "as YYYY-MM-DD"),
        ("2026-02-30", TERMS, "agreed_on", "not a date on the calendar"),
        ("2099-01-01", TERMS, "agreed_on", "is in the future"),
        ("2026-01-15", "   ", "terms", "Enter the terms of the agreement."),
        ("2026-01-15", "x" * 20001, "terms", "under 20000 characters"),
        ("2026-01-15", "Self-billing\x00 terms", "terms", "characters that are not allowed"),
    ],
)
def test_a_bad_date_or_terms_are_refused_at_their_field_and_nothing_is_saved(
    act_as, admin_engine, world, agreed_on, terms, field, words
):
    with pytest.raises(ValidationError) as refused:
        record(act_as, world, agreed_on=agreed_on, terms=terms)
    assert list(refused.value.fields) == [field] and words in refused.value.fields[field]
    assert agreements(admin_engine, world.org_a) == []
    assert events(admin_engine, world.org_a, "self_billing.agreement_recorded") == []


def test_today_by_the_databases_clock_is_not_in_the_future(act_as, admin_engine, world):
    with admin_engine.connect() as conn:
        today = conn.execute(text("select (now() at time zone 'UTC')::date")).scalar_one()
    assert record(act_as, world, agreed_on=today.isoformat()).agreed_on == today
    with pytest.raises(ValidationError, match="correct"):
        record(act_as, world, agreed_on=(today + timedelta(days=1)).isoformat())


def test_another_organizations_contractor_is_not_found(act_as, world):
    with pytest.raises(NotFound):
        record(act_as, world, contractor_id=world.contractor_z)


def test_only_its_contractors_user_confirms_an_agreement(act_as, admin_engine, world):
    agreement = record(act_as, world)
    with pytest.raises(NotFound):  # contractor Y does not even see X's agreement
        confirm(act_as, world.contractor_y_user, world.org_a, agreement.id)
    for staff in (world.admin, world.owner, world.finance):
        with pytest.raises(Forbidden):
            confirm(act_as, staff, world.org_a, agreement.id)
    with pytest.raises(NotFound):
        confirm(act_as, world.contractor_x_user, world.org_a, "not-an-id")
    assert agreements(admin_engine, world.org_a)[0]["confirmed_by"] is None


def test_an_agreement_is_confirmed_once_and_the_database_refuses_a_second_time(act_as, admin_engine, world):
    agreement = record(act_as, world)
    confirm(act_as, world.contractor_x_user, world.org_a, agreement.id)
    first = agreements(admin_engine, world.org_a)
    with pytest.raises(Conflict, match="confirmed this self-billing agreement already"):
        confirm(act_as, world.contractor_x_user, world.org_a, agreement.id)
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    with pytest.raises(DBAPIError, match="was confirmed already"):
        session.execute(
            text("update self_billing_agreements set confirmed_by = :me where id = :a"),
            {"me": world.contractor_x_user.id, "a": agreement.id},
        )
    session.rollback()
    assert agreements(admin_engine, world.org_a) == first


def test_confirming_needs_the_contractors_consent(act_as, admin_engine, world):
    agreement = record(act_as, world)
    with pytest.raises(ValidationError) as refused:
        confirm(act_as, world.contractor_x_user, world.org_a, agreement.id, agreed=False)
    assert list(refused.value.fields) == ["agree"]
    assert agreements(admin_engine, world.org_a)[0]["confirmed_by"] is None


def test_the_latest_agreement_is_in_force_and_an_older_one_is_not_confirmed(act_as, admin_engine, world):
    old = record(act_as, world, agreed_on="2025-01-10", terms="Old terms.")
    new = record(act_as, world, agreed_on="2026-01-10", terms="New terms.")
    session, _ = sign_in(act_as, world.contractor_x_user, world.org_a)
    assert (
        queries.agreement_of(session, world.contractor_x).id,
        queries.agreement_of(session, world.contractor_y),
    ) == (
        new.id,
        None,
    )
    with pytest.raises(Conflict, match="newer self-billing agreement"):
        confirm(act_as, world.contractor_x_user, world.org_a, old.id)
    confirm(act_as, world.contractor_x_user, world.org_a, new.id)


def test_a_contractor_reads_only_its_own_agreement(act_as, world):
    record(act_as, world)
    session, _ = sign_in(act_as, world.contractor_y_user, world.org_a)
    assert queries.agreement_of(session, world.contractor_x) is None
    session, _ = sign_in(act_as, world.owner, world.org_a)  # a project owner reads none
    assert queries.agreement_of(session, world.contractor_x) is None


# --- who is told ---------------------------------------------------------------------------------------------------


def test_a_recorded_agreement_asks_the_contractors_users_to_confirm_it(act_as, admin_engine, world, database):
    record(act_as, world, agreed_on="2026-01-15")
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    (mail,) = emails(admin_engine, world.org_a, "self_billing.agreement_recorded")
    assert mail["recipient"] == world.contractor_x_user.email
    assert mail["subject"] == f"Org A {world.suffix} recorded a self-billing agreement with you: please confirm it"
    assert "Jan 15, 2026" in mail["text"] and "Ada Admin" in mail["text"]
    assert f"{BASE_URL}/self-billing/agreement" in mail["text"]
    (notice,) = owner_query(
        admin_engine,
        "select * from notifications where org_id = :o and event = :e",
        o=world.org_a,
        e="self_billing.agreement_recorded",
    )
    assert (notice["user_id"], notice["url"]) == (world.contractor_x_user.id, "/self-billing/agreement")
