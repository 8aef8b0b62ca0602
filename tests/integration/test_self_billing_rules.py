"""The contractor's acceptance of a self-billed invoice (issue 21, item 4): domain/self_billing.py and its SQL twins in
sql/self_billing.sql (acceptance_state(), acceptance_stops_payment(), which the guards that refuse to pay call) say the
same for every combination: issued or not, the last answer none/accepted/rejected, 1, 14 or 90 days of silence, the
clock a microsecond before, at and after silence ends, void or not (void comes first: nothing to answer). A few
answers are written out here (STYLE.md: expected values come from outside the code under test), and the state the
pages read (invoice_acceptances_seen(), as the web role) is judged by the database's clock, as the guards judge it.
The answer guard against domain.self_billing.answer_problem: test_self_billing_answer_guard.py."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from kit.engagements import sign_in
from kit.money import approved_invoices, party, set_org
from kit.self_billing import file_self_billed, issued_invoices
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.domain import self_billing as rules
from backoffice.domain.self_billing import Acceptance

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TICK = timedelta(microseconds=1)  # timestamptz's resolution
ISSUED = [None, T0]
DECISIONS = [None, "accepted", "rejected"]
DAYS = [1, 14, 90]
WHEN = {"before": -TICK, "at": timedelta(0), "after": TICK}
VOIDED = [False, True]


def combinations():
    for issued, decision, days, when, voided in itertools.product(ISSUED, DECISIONS, DAYS, WHEN, VOIDED):
        now = T0 + timedelta(days=days) + WHEN[when]
        yield issued, decision, days, now, voided


def sql_states(engine, combos) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "select acceptance_state(i, d, n, w, v) from unnest(cast(:i as timestamptz[]), cast(:d as text[]),"
                    " cast(:n as int[]), cast(:w as timestamptz[]), cast(:v as boolean[])) with ordinality"
                    " as t(i, d, n, w, v, k) order by k"
                ),
                {
                    "i": [c[0] for c in combos],
                    "d": [c[1] for c in combos],
                    "n": [c[2] for c in combos],
                    "w": [c[3] for c in combos],
                    "v": [c[4] for c in combos],
                },
            ).scalars()
        )


def test_the_state_is_the_same_in_sql_and_python_for_every_combination(admin_engine):
    combos = list(combinations())
    assert len(combos) == 2 * 3 * 3 * 3 * 2
    got = sql_states(admin_engine, combos)
    mismatches = [
        (c, s)
        for c, s in zip(combos, got, strict=True)
        if s != rules.acceptance_state(c[0], c[1], c[2], c[3], voided=c[4])
    ]
    assert mismatches == []
    assert set(got) == {a.value for a in Acceptance}  # the grid reaches every state


def test_the_state_is_as_written_out(admin_engine):
    end = T0 + timedelta(days=14)
    written_out = {
        (None, None, 14, end, False): "not_issued",
        (T0, None, 14, end - TICK, False): "awaiting",
        (T0, None, 14, end, False): "accepted_by_silence",  # silence ends at the moment, not a day later
        (T0, None, 1, T0 + timedelta(hours=24), False): "accepted_by_silence",  # days of 24 hours
        (T0, None, 1, T0 + timedelta(hours=23, minutes=59), False): "awaiting",
        (T0, "rejected", 14, end + timedelta(days=30), False): "rejected",  # an answer outlasts silence
        (T0, "accepted", 14, T0, False): "accepted",
        (T0, None, 14, end, True): "void",  # void: nothing to answer
        (None, None, 14, end, True): "void",
        (T0, "accepted", 14, end, True): "void",  # void first: an answer given before it stands for nothing
        (T0, "rejected", 14, end, True): "void",  # ... nor may one be given after it
        (T0, None, 14, end - TICK, True): "void",
    }
    combos = list(written_out)
    assert dict(zip(combos, sql_states(admin_engine, combos), strict=True)) == written_out
    assert {c: rules.acceptance_state(*c[:4], voided=c[4]).value for c in combos} == written_out


def test_what_stops_payment_is_the_same_in_sql_and_python_and_as_written_out(admin_engine):
    written_out = {
        ("not_issued", False): False,
        ("not_issued", True): True,
        ("awaiting", False): False,
        ("awaiting", True): True,
        ("accepted", False): False,
        ("accepted", True): False,
        ("accepted_by_silence", False): False,
        ("accepted_by_silence", True): False,
        ("rejected", False): True,  # a rejection stops payment whatever the organization requires
        ("rejected", True): True,
        ("void", False): False,  # a void invoice is paid by no door anyway
        ("void", True): True,
    }
    assert set(written_out) == set(itertools.product([a.value for a in Acceptance], [False, True]))
    with admin_engine.connect() as conn:
        got = {
            (s, r): conn.execute(text("select acceptance_stops_payment(:s, :r)"), {"s": s, "r": r}).scalar_one()
            for s, r in written_out
        }
    assert got == written_out
    assert {(s, r): rules.stops_payment(Acceptance(s), required=r) for s, r in written_out} == written_out


def test_silence_ends_where_the_sql_counts_it(admin_engine):
    with admin_engine.connect() as conn:
        for days in DAYS:
            ends = conn.execute(
                text("select cast(:t as timestamptz) + make_interval(hours => 24 * :d)"), {"t": T0, "d": days}
            ).scalar_one()
            assert ends == rules.silence_ends(T0, days) == T0 + timedelta(hours=24 * days)


# --- the database's clock --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", DAYS)
def test_the_state_the_pages_read_is_judged_by_the_databases_clock(act_as, admin_engine, world, days):
    """Self-billed invoices issued a minute either side of silence ending, by the database's clock: as the contractor's
    user and a project owner (who reads no document) read them, in the domain's state for the database's now."""
    set_org(admin_engine, world.org_a, acceptance_days=days)
    silence = timedelta(hours=24 * days)
    _, (early, late, unissued) = approved_invoices(act_as, admin_engine, party(world), ("100.00", "200.00", "300.00"))
    issued = {
        early["id"]: file_self_billed(admin_engine, early["id"], ago=silence - timedelta(minutes=1)),
        late["id"]: file_self_billed(admin_engine, late["id"], ago=silence + timedelta(minutes=1)),
        unissued["id"]: None,
    }
    for person in (world.contractor_x_user, world.owner):
        session, _ = sign_in(act_as, person, world.org_a)
        db_now = session.execute(text("select now()")).scalar_one()  # now() within the one transaction
        seen = {
            r.invoice_id: (r.state, r.issued_at, r.acceptance_days)
            for r in session.execute(
                text("select * from invoice_acceptances_seen(cast(:ids as uuid[]))"), {"ids": list(issued)}
            )
        }
        session.rollback()
        assert seen == {i: (rules.acceptance_state(t, None, days, db_now).value, t, days) for i, t in issued.items()}
        assert [seen[i][0] for i in issued] == ["awaiting", "accepted_by_silence", "not_issued"]


def test_the_pages_state_tells_a_contractor_only_of_its_own_invoices_and_nobody_of_another_organizations(
    act_as, admin_engine, world
):
    (x_invoice,) = issued_invoices(act_as, admin_engine, world)
    (y_invoice,) = issued_invoices(act_as, admin_engine, world, which="y")
    ids = [x_invoice["id"], y_invoice["id"]]
    seen_sql = text("select invoice_id from invoice_acceptances_seen(cast(:ids as uuid[]))")
    for person, org_id, expected in (
        (world.contractor_x_user, world.org_a, {x_invoice["id"]}),
        (world.finance, world.org_a, set(ids)),
        (world.owner, world.org_a, set(ids)),
        (world.admin_b, world.org_b, set()),
        (world.contractor_z_user, world.org_b, set()),
    ):
        session, _ = sign_in(act_as, person, world.org_a if org_id == world.org_a else world.org_b)
        assert set(session.execute(seen_sql, {"ids": ids}).scalars()) == expected, person.email
        session.rollback()


# --- the organization's setting ---------------------------------------------------------------------------------------


def test_the_days_default_to_fourteen_within_one_to_ninety_as_the_domain_says(world, admin_engine):
    assert (rules.DEFAULT_ACCEPTANCE_DAYS, rules.ACCEPTANCE_DAYS_RANGE) == (14, (1, 90))
    with admin_engine.connect() as conn:
        default = conn.execute(
            text("select acceptance_days, acceptance_required from organizations where id = :o"), {"o": world.org_a}
        ).one()
    assert tuple(default) == (14, False)
    for days in (1, 90):
        set_org(admin_engine, world.org_a, acceptance_days=days)
    for days in (0, 91):
        with pytest.raises(DBAPIError, match="check"):
            set_org(admin_engine, world.org_a, acceptance_days=days)
