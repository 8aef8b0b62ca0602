"""Dates as the HTML pages show them (backoffice/web/display.py): every branch, with a fixed now."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from backoffice.web.display import (
    day_element,
    days_away,
    exact_day,
    exact_moment,
    human_moment,
    machine_moment,
    moment_element,
    option_elements,
    short_day,
)

NOW = datetime(2026, 11, 21, 14, 3, 27, tzinfo=UTC)  # a Saturday
TODAY = NOW.date()


@pytest.mark.parametrize(
    "value, expected",
    [
        (NOW, "just now"),
        (NOW - timedelta(seconds=59), "just now"),
        (NOW + timedelta(seconds=30), "just now"),  # another clock a little ahead
        (NOW - timedelta(seconds=60), "1 min ago"),
        (NOW - timedelta(minutes=12, seconds=40), "12 min ago"),
        (NOW - timedelta(minutes=59, seconds=59), "59 min ago"),
        (NOW - timedelta(hours=1), "today, 13:03"),
        (datetime(2026, 11, 21, 0, 0, tzinfo=UTC), "today, 00:00"),
        (NOW + timedelta(hours=2), "today, 16:03"),
        (datetime(2026, 11, 20, 9, 12, tzinfo=UTC), "yesterday, 09:12"),
        (datetime(2026, 11, 20, 23, 59, tzinfo=UTC), "yesterday, 23:59"),
        (datetime(2026, 11, 22, 9, 0, tzinfo=UTC), "tomorrow, 09:00"),
        (datetime(2026, 11, 12, 9, 12, tzinfo=UTC), "12 Nov, 09:12"),
        (datetime(2026, 1, 2, 8, 5, tzinfo=UTC), "02 Jan, 08:05"),
        (datetime(2026, 12, 24, 8, 5, tzinfo=UTC), "24 Dec, 08:05"),
        (datetime(2025, 11, 12, 9, 12, tzinfo=UTC), "12 Nov 2025"),
        (datetime(2027, 3, 1, 9, 12, tzinfo=UTC), "01 Mar 2027"),
    ],
)
def test_a_moment_reads_relative_to_now(value, expected):
    assert human_moment(value, NOW) == expected


def test_a_moment_is_shown_in_utc_whatever_zone_it_comes_in():
    new_york = timezone(timedelta(hours=-5))
    # 21 Nov 2026 20:00 in New York is 22 Nov 01:00 UTC: tomorrow for a UTC reader at NOW.
    assert human_moment(datetime(2026, 11, 21, 20, 0, tzinfo=new_york), NOW) == "tomorrow, 01:00"
    assert exact_moment(datetime(2026, 11, 21, 20, 0, tzinfo=new_york)) == "Sunday 22 November 2026, 01:00:00 UTC"


def test_a_naive_moment_is_taken_as_utc():
    assert human_moment(datetime(2026, 11, 21, 13, 50, 27), NOW) == "13 min ago"
    assert machine_moment(datetime(2026, 11, 21, 13, 50, 27)) == "2026-11-21T13:50:27Z"


def test_the_exact_moment_names_the_weekday_the_full_date_the_seconds_and_utc():
    assert exact_moment(NOW) == "Saturday 21 November 2026, 14:03:27 UTC"
    assert exact_moment(datetime(2026, 3, 1, 9, 5, 7, tzinfo=UTC)) == "Sunday 1 March 2026, 09:05:07 UTC"


def test_the_machine_moment_is_iso_8601_in_utc_to_the_second():
    assert machine_moment(NOW.replace(microsecond=999_999)) == "2026-11-21T14:03:27Z"


def test_a_moment_element_is_a_time_with_its_exact_form_on_hover():
    assert str(moment_element(NOW - timedelta(minutes=5), NOW)) == (
        '<time datetime="2026-11-21T13:58:27Z" title="Saturday 21 November 2026, 13:58:27 UTC">5 min ago</time>'
    )


def test_no_moment_is_a_dash():
    assert str(moment_element(None, NOW)) == "—"


@pytest.mark.parametrize(
    "value, expected",
    [
        (TODAY, "today"),
        (TODAY + timedelta(days=1), "tomorrow"),
        (TODAY - timedelta(days=1), "yesterday"),
        (TODAY + timedelta(days=30), "in 30 days"),
        (TODAY - timedelta(days=3), "3 days ago"),
        (TODAY + timedelta(days=400), "in 400 days"),
    ],
)
def test_a_day_says_how_far_it_is_from_today(value, expected):
    assert days_away(value, TODAY) == expected


def test_a_day_is_short_with_two_digits_as_the_apps_messages_write_it():
    assert short_day(date(2030, 3, 1)) == "01 Mar 2030"
    assert short_day(date(2026, 12, 21)) == "21 Dec 2026"


def test_the_exact_day_names_the_weekday_the_full_date_and_the_distance():
    assert exact_day(date(2026, 12, 21), TODAY) == "Monday 21 December 2026 · in 30 days"


def test_a_day_element_is_a_time_with_the_short_date_and_the_exact_one_on_hover():
    assert str(day_element(date(2026, 12, 21), TODAY)) == (
        '<time datetime="2026-12-21" title="Monday 21 December 2026 · in 30 days">21 Dec 2026</time>'
    )


def test_a_day_element_takes_an_iso_string_a_datetime_or_nothing():
    assert str(day_element("2026-11-18", TODAY)) == (
        '<time datetime="2026-11-18" title="Wednesday 18 November 2026 · 3 days ago">18 Nov 2026</time>'
    )
    assert str(day_element(datetime(2026, 11, 21, 23, 30, tzinfo=UTC), TODAY)).startswith(
        '<time datetime="2026-11-21" title="Saturday 21 November 2026 · today">'
    )
    assert str(day_element(None, TODAY)) == "—"
    assert str(day_element("", TODAY)) == "—"


def test_a_string_that_is_not_a_date_is_shown_as_it_is_escaped():
    assert str(day_element("<b>soon</b>", TODAY)) == "&lt;b&gt;soon&lt;/b&gt;"


def test_option_elements_escape_names_and_mark_the_selected_one():
    class C:
        def __init__(self, id, name):
            self.id, self.name = id, name

    html = str(option_elements([C("a1", 'Tom & "Jerry" <Ltd>'), C("b2", "Plain")], "b2"))
    assert html == (
        '<option value="a1">Tom &amp; &#34;Jerry&#34; &lt;Ltd&gt;</option><option value="b2" selected>Plain</option>'
    )
    assert " selected" not in str(option_elements([C("a1", "A")], None))
    assert " selected" not in str(option_elements([C("a1", "A")], ""))
