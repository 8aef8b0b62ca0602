"""The home pages' chart geometry and week cuts: whole pixels from integer amounts, and the calendar cuts the
finance figures use, checked against values written out by hand."""

from __future__ import annotations

from datetime import date

from backoffice.queries.dashboards import end_of_month, end_of_week
from backoffice.web.charts import HEIGHT, bar_chart


def test_the_largest_bar_reaches_the_top_and_the_others_scale_in_whole_pixels():
    chart = bar_chart("c", "Cash out", "USD", [("Overdue", "", 142_000), ("This week", "", 71_000), ("8 Dec", "", 0)])
    tallest, half, nothing = chart.bars
    assert (tallest.y, tallest.height) == (22, 142)  # the plot is 200 - 22 - 36 = 142 px high
    assert (half.y, half.height) == (93, 71)
    assert nothing.height == 0 and nothing.y == HEIGHT - 36
    assert [b.x for b in chart.bars] == [12, 193, 374] and {b.width for b in chart.bars} == {173}
    assert all(isinstance(v, int) for b in chart.bars for v in (b.x, b.y, b.width, b.height))


def test_a_tiny_amount_is_still_drawn_and_an_empty_chart_has_no_bars():
    chart = bar_chart("c", "t", "USD", [("a", "", 100_000_000_00), ("b", "", 1)])
    assert chart.bars[1].height == 1
    empty = bar_chart("c", "t", "USD", [("a", "", 0), ("b", "", 0)])
    assert empty.empty and [b.height for b in empty.bars] == [0, 0]


def test_weeks_end_on_sunday_and_months_on_their_last_day():
    assert end_of_week(date(2026, 12, 5)) == date(2026, 12, 6)  # a Saturday
    assert end_of_week(date(2026, 12, 7)) == date(2026, 12, 13)  # a Monday
    assert end_of_week(date(2026, 12, 13)) == date(2026, 12, 13)  # a Sunday
    assert end_of_month(date(2028, 2, 10)) == date(2028, 2, 29)
    assert end_of_month(date(2026, 12, 31)) == date(2026, 12, 31)
    assert end_of_month(date(2026, 4, 1)) == date(2026, 4, 30)
