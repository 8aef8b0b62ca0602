"""A person's preferences as rules (domain/preferences.py): which zones are accepted, and when a digest is due."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backoffice.domain.preferences import digest_due, notify_problem, zone, zone_groups, zone_names, zone_problem


@pytest.mark.parametrize("name", ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin", "America/New_York"])
def test_an_iana_zone_is_accepted(name):
    assert zone_problem(name) is None


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "asia/tokyo", "Asia/Tokyo\x00", "../etc/passwd", "x" * 65])
def test_anything_else_is_refused_in_words(name):
    assert zone_problem(name) == "Choose a time zone from the list (for example America/New_York)."


def test_the_choices_are_each_or_daily():
    assert notify_problem("each") is None and notify_problem("daily") is None
    assert notify_problem("hourly") == "Choose how you want to be emailed."


def test_the_list_offers_utc_first_then_regions_without_legacy_aliases():
    groups = zone_groups()
    assert groups[0] == ("", ["UTC"])
    regions = [region for region, _ in groups[1:]]
    assert "America" in regions and "Asia" in regions and "Europe" in regions
    assert "US" not in regions and "Etc" not in regions
    assert "Asia/Tokyo" in zone_names() and "US/Eastern" not in zone_names()


def test_an_unknown_zone_in_a_row_reads_as_utc_rather_than_failing():
    assert zone("Nowhere/Special").key == "UTC" and zone(None).key == "UTC"


@pytest.mark.parametrize(
    ("now", "name", "expected"),
    [
        (datetime(2026, 12, 6, 22, 59, tzinfo=UTC), "Asia/Tokyo", (False, "2026-12-07")),  # 07:59 Monday in Tokyo
        (datetime(2026, 12, 6, 23, 0, tzinfo=UTC), "Asia/Tokyo", (True, "2026-12-07")),  # 08:00
        (datetime(2026, 12, 6, 15, 59, tzinfo=UTC), "America/Los_Angeles", (False, "2026-12-06")),
        (datetime(2026, 12, 6, 16, 0, tzinfo=UTC), "America/Los_Angeles", (True, "2026-12-06")),
        (datetime(2026, 12, 7, 7, 59, tzinfo=UTC), "America/Los_Angeles", (True, "2026-12-06")),  # 23:59 Sunday
        (datetime(2026, 12, 7, 8, 0, tzinfo=UTC), "America/Los_Angeles", (False, "2026-12-07")),  # 00:00 Monday
        (datetime(2026, 12, 7, 8, 0, tzinfo=UTC), "UTC", (True, "2026-12-07")),
    ],
)
def test_a_digest_is_due_from_eight_on_the_persons_clock_named_by_their_day(now, name, expected):
    assert digest_due(now, name) == expected
