"""A person's preferences (issue 22, item 10): the time zone their times are shown in, and whether they get each
email as it happens or one digest a day. Pure rules: the standard library's zoneinfo is the list of zones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_ZONE = "UTC"
EACH, DAILY = "each", "daily"
NOTIFY_CHOICES = {
    EACH: "Email me each event",
    DAILY: "One email a day with everything (daily digest)",
}
# The digest goes at this hour of the person's own clock (services/digests.py), or at the first run of the hourly job
# after it: a worker down at 08:00 sends it later that day, never not at all.
DIGEST_HOUR = time(8, 0)


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone the server knows, sorted; the legacy aliases ("US/Eastern", "Etc/GMT+5") left out of the
    choice but still accepted by ``zone_problem`` (a row may hold one)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/"))))


def zone_groups() -> list[tuple[str, list[str]]]:
    """The zones by region ("America", "Europe" ...), UTC first on its own: the select's optgroups."""
    groups: dict[str, list[str]] = {}
    for name in zone_names():
        groups.setdefault(name.split("/", 1)[0], []).append(name)
    return [("", [DEFAULT_ZONE]), *sorted(groups.items())]


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone this server can show times in, or None."""
    if not name or len(name) > 64 or "\x00" in name or name not in available_timezones():
        return "Choose a time zone from the list (for example America/New_York)."
    return None


def notify_problem(value: str) -> str | None:
    return None if value in NOTIFY_CHOICES else "Choose how you want to be emailed."


@cache
def zone(name: str | None) -> ZoneInfo:
    """The zone by name; UTC for none or a name this server does not know (a person never sees an error for it)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ValueError, KeyError, OSError):
        return ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True)
class Preferences:
    time_zone: str = DEFAULT_ZONE
    notify: str = EACH

    @property
    def daily(self) -> bool:
        return self.notify == DAILY


def digest_due(now: datetime, zone_name: str) -> tuple[bool, str]:
    """Whether a person's digest is due at ``now`` (aware), and the local day it is for: due from DIGEST_HOUR of
    their own day on; the day names the digest, so one a day, whenever in that day the job gets to it."""
    local = now.astimezone(zone(zone_name))
    return local.timetz().replace(tzinfo=None) >= DIGEST_HOUR, local.date().isoformat()
