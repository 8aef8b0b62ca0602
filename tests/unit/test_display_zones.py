"""Times on the person's own clock (issue 22, item 10): the shown form in their zone, the exact UTC on hover,
the datetime attribute in UTC. A person in Asia/Tokyo and one in America/Los_Angeles, around their midnights."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from backoffice.web.display import day_element, exact_moment, human_moment, moment_element

TOKYO, LOS_ANGELES = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize(
    ("value", "now", "tz", "expected"),
    [
        # 14:30 UTC on Saturday 21 November is 23:30 in Tokyo; an hour and a quarter later it is past midnight there.
        (datetime(2026, 11, 21, 14, 30, tzinfo=UTC), datetime(2026, 11, 21, 15, 45, tzinfo=UTC), None, "today, 14:30"),
        (
            datetime(2026, 11, 21, 14, 30, tzinfo=UTC),
            datetime(2026, 11, 21, 15, 45, tzinfo=UTC),
            TOKYO,
            "yesterday, 23:30",
        ),
        (
            datetime(2026, 11, 21, 14, 30, tzinfo=UTC),
            datetime(2026, 11, 21, 15, 45, tzinfo=UTC),
            LOS_ANGELES,
            "today, 06:30",
        ),
        # 07:30 UTC on Sunday 22 November is 23:30 on Saturday in Los Angeles (PST, UTC-8).
        (
            datetime(2026, 11, 22, 7, 30, tzinfo=UTC),
            datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
            LOS_ANGELES,
            "yesterday, 23:30",
        ),
        (datetime(2026, 11, 22, 7, 30, tzinfo=UTC), datetime(2026, 11, 22, 9, 0, tzinfo=UTC), TOKYO, "today, 16:30"),
        (datetime(2026, 11, 22, 7, 30, tzinfo=UTC), datetime(2026, 11, 22, 9, 0, tzinfo=UTC), None, "today, 07:30"),
    ],
)
def test_a_moment_reads_on_the_persons_own_clock(value, now, tz, expected):
    assert human_moment(value, now, tz) == expected


def test_the_hover_text_gives_the_exact_utc_then_the_persons_clock_with_its_day_when_that_is_another():
    saturday_evening_utc = datetime(2026, 11, 21, 14, 30, 5, tzinfo=UTC)
    assert exact_moment(saturday_evening_utc) == "Saturday 21 November 2026, 14:30:05 UTC"
    assert exact_moment(saturday_evening_utc, TOKYO) == "Saturday 21 November 2026, 14:30:05 UTC · 23:30 in Asia/Tokyo"
    sunday_morning_utc = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    assert exact_moment(sunday_morning_utc, LOS_ANGELES) == (
        "Sunday 22 November 2026, 07:30:00 UTC · Saturday 21 November 2026, 23:30 in America/Los_Angeles"
    )
    assert exact_moment(datetime(2026, 11, 21, 16, 0, tzinfo=UTC), TOKYO) == (
        "Saturday 21 November 2026, 16:00:00 UTC · Sunday 22 November 2026, 01:00 in Asia/Tokyo"
    )


def test_the_element_keeps_its_datetime_attribute_in_utc_whatever_the_zone():
    value, now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC), datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert str(moment_element(value, now, LOS_ANGELES)) == (
        '<time datetime="2026-11-22T07:30:00Z" title="Sunday 22 November 2026, 07:30:00 UTC · Saturday 21 November '
        '2026, 23:30 in America/Los_Angeles">yesterday, 23:30</time>'
    )
    # The callers that pass no zone get what they always did: UTC.
    assert str(moment_element(value, now)) == (
        '<time datetime="2026-11-22T07:30:00Z" title="Sunday 22 November 2026, 07:30:00 UTC">today, 07:30</time>'
    )


def test_a_moments_day_is_its_day_on_the_persons_clock():
    late_saturday_in_los_angeles = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    assert ">21 Nov 2026</time>" in str(day_element(late_saturday_in_los_angeles, date(2026, 11, 22), LOS_ANGELES))
    assert ">22 Nov 2026</time>" in str(day_element(late_saturday_in_los_angeles, date(2026, 11, 22), TOKYO))
