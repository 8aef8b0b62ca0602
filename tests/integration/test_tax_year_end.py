"""The 1099-NEC year end (issue 18, item 6) against a hand-built world whose figures are written out here: every
standing payment in US dollars by payment date, whatever way it was paid, a reversed one and another currency's
not counted, the year's threshold deciding who is reportable; the export's file byte for byte; the lock, a figure
that changed since, and reopening with a reason."""

from __future__ import annotations

from datetime import date

import pytest
from kit.engagements import owner_query, sign_in
from kit.money import approved_invoices, events, party, pay, payments_of
from kit.tax import KEY, fill_in
from sqlalchemy import text

from backoffice.errors import Conflict, ValidationError
from backoffice.queries.tax import year_end
from backoffice.services import year_end as service


def set_paid_at(admin_engine, payment_id, day: str, *, reversed_: bool = False) -> None:
    """What the services never do (date a payment in another year; reverse one without the Stripe worker): the
    owner role, with the payment guard off inside this one transaction."""
    with admin_engine.begin() as conn:
        conn.execute(text("alter table payments disable trigger payments_reversal_guard"))
        conn.execute(
            text(
                "update payments set paid_at = :d, reversed_at = case when :r then now() end,"
                " reversal_reference = case when :r then 'trr_test' end,"
                # only a rail's payment is ever reversed: this one stands for a Stripe transfer taken back
                " source = case when :r then 'stripe' else source end,"
                " method = case when :r then 'stripe' else method end,"
                " reference = case when :r then 'tr_test' else reference end where id = :p"
            ),
            {"d": date.fromisoformat(day), "r": reversed_, "p": payment_id},
        )
        conn.execute(text("alter table payments enable trigger payments_reversal_guard"))


@pytest.fixture
def paid(world, act_as, admin_engine):
    """X (a complete W-9): 1,500.00 paid in 2026 and 700.00 on 2025-12-31. Y (no form): 1,200.00 on 2026-01-01,
    900.00 in 2026, 500.00 paid and reversed, and 3,000.00 in euros. No retainage: net = gross."""
    fill_in(act_as, world.contractor_x_user, world.org_a)
    ids = {}
    _, x = approved_invoices(act_as, admin_engine, party(world, "x"), ("1,500.00", "700.00"), retainage="0")
    _, y = approved_invoices(act_as, admin_engine, party(world, "y"), ("1,200.00", "900.00", "500.00"), retainage="0")
    _, (eur,) = approved_invoices(act_as, admin_engine, party(world, "y"), ("3,000.00",), retainage="0", currency="EUR")
    for name, inv in (("x1500", x[0]), ("x700", x[1]), ("y1200", y[0]), ("y900", y[1]), ("y500", y[2]), ("eur", eur)):
        pay(act_as, world.finance, world.org_a, inv["id"])
        ids[name] = payments_of(admin_engine, inv["id"])[0]["id"]
    set_paid_at(admin_engine, ids["x1500"], "2026-06-30")
    set_paid_at(admin_engine, ids["x700"], "2025-12-31")
    set_paid_at(admin_engine, ids["y1200"], "2026-01-01")
    set_paid_at(admin_engine, ids["y900"], "2026-12-31")
    set_paid_at(admin_engine, ids["y500"], "2026-03-01", reversed_=True)
    set_paid_at(admin_engine, ids["eur"], "2026-03-01")
    return ids


def figures(act_as, world, year):
    session, _ = sign_in(act_as, world.finance, world.org_a)
    ye = year_end(session, year)
    return ye, [
        (r.contractor_id, r.total_minor, r.payments, r.reportable, r.problem, r.filed_minor, r.changed_since_filed)
        for r in ye.rows
    ]


def test_the_year_end_totals_are_the_years_standing_usd_payments_by_payment_date(world, act_as, paid):
    ye, rows = figures(act_as, world, 2026)
    assert ye.threshold_minor == 200_000
    assert rows == [
        (world.contractor_x, 150_000, 1, False, None, None, False),  # under 2,000.00
        (world.contractor_y, 210_000, 2, True, "No W-9 on file", None, False),  # the reversal and the euros left out
    ]
    assert [r.legal_name for r in ye.flagged] == [f"Contractor Y {world.suffix}"]
    assert ye.total_reportable_minor == 210_000
    ye, rows = figures(act_as, world, 2025)
    assert ye.threshold_minor == 60_000
    assert rows == [(world.contractor_x, 70_000, 1, True, None, None, False)]
    assert figures(act_as, world, 2024)[1] == []


def test_another_organization_and_other_roles_see_none_of_it(world, act_as, paid):
    session, _ = sign_in(act_as, world.admin_b, world.org_b)
    assert year_end(session, 2026).rows == []
    for person in (world.owner, world.contractor_y_user):
        session, actor = sign_in(act_as, person, world.org_a)
        with pytest.raises(Exception, match="finance and admins"):
            service.export_year(session, actor, 2026, key=KEY)


def test_the_export_writes_the_1099_nec_fields_of_each_reportable_contractor(world, act_as, admin_engine, paid):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    filing = service.export_year(session, actor, 2025, key=KEY)
    (org,) = owner_query(admin_engine, "select name from organizations where id = :o", o=world.org_a)
    assert (
        bytes(filing.content)
        == (
            "\ufeffTax year,Payer name,Recipient name,Recipient business name,Recipient TIN type,Recipient TIN,"
            "Recipient address line 1,Recipient address line 2,Recipient city,Recipient state,Recipient ZIP,"
            "Box 1 nonemployee compensation,Contractor ID\r\n"
            f"2025,{org['name']},Xena X,X Studio,EIN,12-3456789,1 Main St,,Springfield,IL,62701,700.00,"
            f"{world.contractor_x}\r\n"
        ).encode()
    )
    assert (filing.row_count, filing.total_minor, filing.threshold_minor) == (1, 70_000, 60_000)
    session, actor = sign_in(act_as, world.finance, world.org_a)
    filing = service.export_year(session, actor, 2026, key=KEY)
    lines = bytes(filing.content).decode("utf-8-sig").splitlines()
    assert lines[1:] == [f"2026,{org['name']},Contractor Y {world.suffix},,,,,,,,,2100.00,{world.contractor_y}"]


def test_an_exported_year_is_locked_shows_what_changed_and_reopens_with_a_reason(world, act_as, admin_engine, paid):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    first = service.export_year(session, actor, 2025, key=KEY)
    again = service.filing_file(session, actor, first.id)
    assert bytes(again.content) == bytes(first.content) and again.sha256 == first.sha256
    with pytest.raises(Conflict, match="2025 is locked"):
        service.export_year(session, actor, 2025, key=KEY)

    set_paid_at(admin_engine, paid["x1500"], "2025-06-30")  # a payment recorded in the year after the export
    ye, rows = figures(act_as, world, 2025)
    assert ye.filing.id == first.id
    assert rows == [(world.contractor_x, 220_000, 2, True, None, 70_000, True)]

    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(ValidationError) as refused:
        service.reopen_year(session, actor, 2025, "  ")
    assert refused.value.fields == {"reason": "Enter the reason to reopen the year."}
    service.reopen_year(session, actor, 2025, "Check 1042 to X was recorded after the export.")
    second = service.export_year(session, actor, 2025, key=KEY)
    assert (second.total_minor, second.sha256 != first.sha256) == (220_000, True)
    ye, rows = figures(act_as, world, 2025)
    assert ye.filing.id == second.id and [f.id for f in ye.filings] == [second.id, first.id]
    assert rows == [(world.contractor_x, 220_000, 2, True, None, 220_000, False)]
    reopened = ye.filings[1]
    assert (reopened.reopened_by, reopened.reopen_reason) == (
        world.finance.id,
        "Check 1042 to X was recorded after the export.",
    )
    trail = [
        (e["action"], e["actor_label"], e["data"]["year"])
        for e in events(admin_engine, world.org_a, "tax_year.exported")
    ]
    trail += [
        (e["action"], e["actor_label"], e["data"]["reason"])
        for e in events(admin_engine, world.org_a, "tax_year.reopened")
    ]
    assert trail == [
        ("tax_year.exported", world.finance.email, 2025),
        ("tax_year.exported", world.finance.email, 2025),
        ("tax_year.reopened", world.finance.email, "Check 1042 to X was recorded after the export."),
    ]


def test_a_year_that_is_not_locked_is_not_reopened_and_there_is_no_year_before_2020(world, act_as):
    session, actor = sign_in(act_as, world.finance, world.org_a)
    with pytest.raises(Conflict, match="not locked"):
        service.reopen_year(session, actor, 2026, "No reason needed")
    with pytest.raises(ValidationError):
        service.export_year(session, actor, 2019, key=KEY)
