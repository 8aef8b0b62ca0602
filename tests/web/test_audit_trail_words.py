"""The audit trail page reads as sentences with labelled values (issue 22, item 8), in the organization's format."""

from __future__ import annotations

import html as html_lib
import re

from kit.money import set_org
from kit.money_pages import active_engagement, approve, milestone_ids
from kit.web import signed_in


def rows(html: str) -> list[tuple[str, str]]:
    """(sentence, details text) of each event row, newest first."""
    found = re.findall(
        r'<td data-label="What happened">([^<]*)</td>\s*<td data-label="Details">(.*?)</td>', html, re.DOTALL
    )
    return [(html_lib.unescape(s), html_lib.unescape(re.sub(r"<[^>]+>", " ", d))) for s, d in found]


def test_an_approval_reads_as_who_approved_what_for_how_much(app, login, world, app_sessions, admin_engine):
    engagement = active_engagement(app_sessions, world, title="Garden studio")
    design, _ = milestone_ids(admin_engine, engagement)
    approve(app_sessions, world, design)
    html = signed_in(app, login, world.finance).get("/audit/").get_data(as_text=True)
    sentences = [s for s, _ in rows(html)]
    assert "Omar Owner approved Design — $1,234.55" in sentences
    assert "Omar Owner authorized payment" in " ".join(sentences)
    assert "Xena X submitted Design for review (revision 1)" in sentences
    assert "Omar Owner sent the work request Garden studio" in sentences
    details = dict(rows(html))["Omar Owner approved Design — $1,234.55"]
    assert "Revision" in details and "amount_minor" not in html and "milestone.approved" not in html
    assert '"' not in details  # no JSON


def test_amounts_and_dates_follow_the_organizations_locale(app, login, world, app_sessions, admin_engine):
    engagement = active_engagement(app_sessions, world, title="Garden studio")
    design, _ = milestone_ids(admin_engine, engagement)
    approve(app_sessions, world, design)
    set_org(admin_engine, world.org_a, locale="de_DE")
    html = signed_in(app, login, world.admin).get("/audit/").get_data(as_text=True)
    assert "Omar Owner approved Design — 1.234,55\xa0$" in [s for s, _ in rows(html)]


def test_an_events_ids_read_as_names(app, login, world, app_sessions, admin_engine):
    engagement = active_engagement(app_sessions, world, title="Garden studio")
    design, _ = milestone_ids(admin_engine, engagement)
    approve(app_sessions, world, design)
    html = signed_in(app, login, world.finance).get("/audit/").get_data(as_text=True)
    authorized = next(d for s, d in rows(html) if s.startswith("Omar Owner authorized payment"))
    assert "Milestone" in authorized and "Design" in authorized
    assert str(design) not in html
