"""An email states its moments on its reader's clock (issue 22, item 10): a notice's Moment facts are written per
person when their email is rendered, in UTC where no zone is known."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from backoffice import formatting
from backoffice.services.notification_events import Moment, Notice, Person
from backoffice.services.notifications import render

SUBMITTED = datetime(2026, 11, 21, 14, 30, 5, tzinfo=UTC)  # 23:30 in Tokyo, 06:30 in Los Angeles


def plain(words: str) -> str:
    return words.replace("\u202f", " ").replace("\xa0", " ")


def test_a_moment_is_written_on_the_readers_clock_naming_their_zone_and_the_utc_time():
    assert plain(formatting.moment(SUBMITTED, "en_US")) == "Nov 21, 2026, 2:30:05 PM UTC"
    assert plain(formatting.moment(SUBMITTED, "en_US", ZoneInfo("Asia/Tokyo"))) == (
        "Nov 21, 2026, 11:30:05 PM Asia/Tokyo (14:30 UTC)"
    )
    assert plain(formatting.moment(SUBMITTED, "en_GB", ZoneInfo("America/Los_Angeles"))) == (
        "21 Nov 2026, 06:30:05 America/Los_Angeles (14:30 UTC)"
    )


def test_each_readers_email_states_the_notices_moment_on_their_own_clock():
    tokyo, los_angeles = (Person(uuid.uuid4(), f"{n}@example.com", n) for n in ("tokyo", "la"))
    notice = Notice(
        "review.overdue",
        "review.overdue:1",
        (tokyo, los_angeles),
        subject="Waiting for your review",
        lead="It waits.",
        path="/milestones/1",
        action="Review it now",
        facts=(("Submitted", Moment(SUBMITTED, "en_US")),),
    )
    in_tokyo = plain(render(notice, tokyo, "Acme", "http://x", ZoneInfo("Asia/Tokyo")).text)
    in_los_angeles = plain(render(notice, los_angeles, "Acme", "http://x", ZoneInfo("America/Los_Angeles")).text)
    assert "Submitted: Nov 21, 2026, 11:30:05 PM Asia/Tokyo (14:30 UTC)" in in_tokyo
    assert "Submitted: Nov 21, 2026, 6:30:05 AM America/Los_Angeles (14:30 UTC)" in in_los_angeles
    assert "Submitted: Nov 21, 2026, 2:30:05 PM UTC" in plain(render(notice, tokyo, "Acme", "http://x").text)
