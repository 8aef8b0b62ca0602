"""The SQL twin of the one rounding rule (DESIGN.md section 4): money_percent_of(amount, bps) in the
database must equal backoffice.domain.money.percent_of in Python, because the guards check an approval's
amounts in SQL (milestone_amounts) and the services compute them in Python. Run as the owner role, as the
SECURITY DEFINER guards run it: no statement of the web role's calls it (pages total with percent_of), so
since revision 0010 the app role may not execute it."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backoffice.domain.money import percent_of

MAX_AMOUNT = 10**15  # the milestones.amount_minor ceiling


def sql_percent_of(admin_engine, amount: int, bps: int) -> int:
    with admin_engine.connect() as conn:
        return conn.execute(text("select money_percent_of(:a, :b)"), {"a": amount, "b": bps}).scalar_one()


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(min_value=1, max_value=MAX_AMOUNT), bps=st.integers(min_value=0, max_value=10_000))
@example(amount=1, bps=5000)  # exactly half a unit rounds up
@example(amount=3, bps=5000)  # 1.5 -> 2
@example(amount=1, bps=4999)  # just under half rounds down
@example(amount=5, bps=1000)  # 0.5 -> 1
@example(amount=15, bps=1000)  # 1.5 -> 2 (half up, not half even)
@example(amount=25, bps=1000)  # 2.5 -> 3 (half up, not half even)
@example(amount=MAX_AMOUNT, bps=10_000)
@example(amount=MAX_AMOUNT, bps=1)
@example(amount=MAX_AMOUNT - 1, bps=9_999)
@example(amount=1, bps=0)
def test_money_percent_of_in_sql_equals_percent_of_in_python(admin_engine, amount, bps):
    assert sql_percent_of(admin_engine, amount, bps) == percent_of(amount, bps)


def test_money_percent_of_rounds_half_up_in_sql(admin_engine):
    assert [sql_percent_of(admin_engine, a, 1000) for a in (4, 5, 14, 15, 25, 35)] == [0, 1, 1, 2, 3, 4]


def test_money_percent_of_is_null_for_a_null_argument(admin_engine):
    with admin_engine.connect() as conn:
        assert conn.execute(text("select money_percent_of(null, 1000), money_percent_of(100, null)")).one() == (
            None,
            None,
        )
