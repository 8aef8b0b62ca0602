"""The header's search under row-level security, with raw SQL as the app role (issue 22, item 6).

The search's statements AND the caller's tenant lexemes into the query (migrations/versions/0033_search.py), which
only makes GIN cheap; what stops a person finding another organization's or another contractor's rows must be RLS.
So these tests search with plain full-text SQL that names no tenant at all, and with another tenant's lexemes
forged in, and expect the same answer as the search itself: only the caller's own rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kit.engagements import create_draft, sign_in
from kit.money import approved_invoices, party
from sqlalchemy import text

from backoffice.queries import search as queries

# Full-text SQL that names no tenant: only RLS stands between the caller and other rows. The vectors are the
# indexed expressions' word parts.
UNTAGGED = {
    "engagements": "select id from engagements where to_tsvector('simple', translate(title || ' ' ||"
    " coalesce(sow_reference, ''), '-@./_', '     ')) @@ to_tsquery('simple', :word || ':*')",
    "milestones": "select id from milestones where to_tsvector('simple', translate(title || ' ' || deliverable,"
    " '-@./_', '     ')) @@ to_tsquery('simple', :word || ':*')",
    "invoices": "select id from invoices where to_tsvector('simple', translate(invoice_number || ' ' || description,"
    " '-@./_', '     ')) @@ to_tsquery('simple', :word || ':*')",
}


@pytest.fixture
def books(world, act_as, admin_engine):
    """An engagement with two approved milestones (so two invoices) for contractors X and Y of org A and Z of org B,
    each titled with a word of its own and one word all three share."""
    s = world.suffix
    built = {}
    for who in ("x", "y", "z"):
        engagement_id, invoices = approved_invoices(
            act_as, admin_engine, party(world, who), title=f"Shared{s} Own{who}{s}"
        )
        built[who] = {"engagement": engagement_id, "invoices": [i["id"] for i in invoices]}
    return built


def _found(session, actor, typed: str):
    return queries.search(session, actor, typed, limit=20)


def test_an_organization_finds_nothing_of_another_organization(world, books, act_as):
    s = world.suffix
    session, admin_b = sign_in(act_as, world.admin_b, world.org_b)
    found = _found(session, admin_b, f"shared{s}")
    assert [e.id for e in found.engagements] == [books["z"]["engagement"]]
    assert {i.id for i in found.invoices} == set(books["z"]["invoices"])
    assert _found(session, admin_b, f"ownx{s}").found == 0


def test_a_contractor_finds_only_its_own_engagements_milestones_and_invoices(world, books, act_as):
    s = world.suffix
    session, x = sign_in(act_as, world.contractor_x_user, world.org_a)
    found = _found(session, x, f"shared{s}")
    assert [e.id for e in found.engagements] == [books["x"]["engagement"]]
    assert {i.id for i in found.invoices} == set(books["x"]["invoices"])
    assert len(found.milestones) == 2
    assert found.contractors == []
    assert _found(session, x, f"owny{s}").found == 0


def test_an_admin_finds_every_contractor_of_its_organization_and_theirs_only(world, books, act_as):
    s = world.suffix
    session, admin = sign_in(act_as, world.admin, world.org_a)
    found = _found(session, admin, f"shared{s}")
    assert {e.id for e in found.engagements} == {books["x"]["engagement"], books["y"]["engagement"]}
    assert {i.id for i in found.invoices} == set(books["x"]["invoices"] + books["y"]["invoices"])
    assert {c.id for c in _found(session, admin, f"contractor {s}").contractors} == {
        world.contractor_x,
        world.contractor_y,
    }


@pytest.mark.parametrize("table", sorted(UNTAGGED))
def test_full_text_sql_naming_no_tenant_finds_only_what_rls_lets_the_caller_read(world, books, act_as, table):
    s = world.suffix
    word = f"shared{s}"
    session, _ = sign_in(act_as, world.contractor_y_user, world.org_a)
    rows = {r.id for r in session.execute(text(UNTAGGED[table]), {"word": word})}
    mine = {
        "engagements": {books["y"]["engagement"]},
        "invoices": set(books["y"]["invoices"]),
    }.get(table)
    if mine is not None:
        assert rows == mine
    else:
        assert len(rows) == 2  # Y's two milestones
        with_owner = session.execute(
            text("select distinct contractor_id from milestones where id = any(:ids)"), {"ids": list(rows)}
        ).scalars()
        assert set(with_owner) == {world.contractor_y}
    session, _ = sign_in(act_as, world.admin_b, world.org_b)
    rows_b = {r.id for r in session.execute(text(UNTAGGED[table]), {"word": word})}
    assert not rows_b & rows


@pytest.mark.parametrize("kind", ["engagements", "milestones", "invoices", "contractors"])
def test_the_search_door_returns_nothing_of_another_organization_or_contractor(world, books, act_as, kind):
    """search_hits() runs as the owner (sql/search.sql): it takes the organization and the contractor from the
    sign-in, never from its caller, so org B's admin and contractor Y's user get none of org A's or X's ids."""
    s = world.suffix
    theirs = {books["x"]["engagement"], *books["x"]["invoices"], world.contractor_x}
    call = text("select id from search_hits(:kind, to_tsquery('simple', :q), 50)")
    for person, org in ((world.admin_b, world.org_b), (world.contractor_y_user, world.org_a)):
        session, _ = sign_in(act_as, person, org)
        found = set(session.execute(call, {"kind": kind, "q": f"shared{s}:* | contractor:*"}).scalars())
        assert not found & theirs
        if kind == "milestones":
            owners = session.execute(
                text("select distinct contractor_id from milestones where id = any(:ids)"), {"ids": list(found)}
            ).scalars()
            assert world.contractor_x not in set(owners)


def test_contractors_are_not_found_by_a_role_without_the_contractors_page(world, books, act_as):
    s = world.suffix
    for person in (world.owner, world.finance, world.contractor_x_user):
        session, actor = sign_in(act_as, person, world.org_a)
        assert _found(session, actor, f"contractor {s}").contractors == []


def test_each_search_in_the_door_uses_its_gin_index(admin_engine):
    """sql/search.sql spells each index's expression (migrations/versions/0033_search.py); a difference in a single
    cast would make the planner read every row instead. Each WHERE expression of the door, explained alone."""
    source = (Path(__file__).resolve().parents[2] / "sql" / "search.sql").read_text()
    found = re.findall(r"from public\.(\w+) (\w)\s+where \((to_tsvector.*?)\) @@ v_query", source, re.DOTALL)
    assert [table for table, _, _ in found] == ["engagements", "milestones", "invoices", "contractors"]
    with admin_engine.connect() as conn:
        conn.execute(text("set local enable_seqscan = off"))
        for table, alias, vector in found:
            sql = f"explain select {alias}.id from {table} {alias} where ({vector}) @@ to_tsquery('simple', 'a:*')"
            plan = "\n".join(conn.execute(text(sql)).scalars())
            assert f"{table}_search" in plan, plan


def test_a_contractor_finds_no_draft_and_no_draft_milestone_even_when_drafts_would_fill_the_slots(
    world, books, act_as, app_sessions
):
    """RLS hides a draft from its contractor after search_hits() has chosen its ids: the door keeps the same rule
    (sent_at is set), so drafts do not take the best places and leave the sent work out."""
    s = world.suffix
    rows = [(f"Shared{s} draft part", "Drafted", "100.00", "2030-01-15")]
    for n in range(3):
        create_draft(app_sessions, world, title=f"Shared{s} draft {n}", rows=rows)
    session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
    call = text("select id from search_hits(:kind, to_tsquery('simple', :q), 1)")
    assert list(session.execute(call, {"kind": "engagements", "q": f"shared{s}:*"}).scalars()) == [
        books["x"]["engagement"]
    ]
    milestones = set(session.execute(call, {"kind": "milestones", "q": f"shared{s}:*"}).scalars())
    visible = set(
        session.execute(
            text("select id from milestones where engagement_id = :e"), {"e": books["x"]["engagement"]}
        ).scalars()
    )
    assert milestones and milestones <= visible
    found = _found(session, actor, f"shared{s}")
    assert [e.id for e in found.engagements] == [books["x"]["engagement"]]
    assert not any("draft" in m.title for m in found.milestones)


@pytest.mark.parametrize("typed", ["\u00bd", "\u00b2", "\u2460", "-"])
def test_a_query_without_a_word_finds_nothing_in_the_door(world, books, act_as, typed):
    """What '½' becomes in PostgreSQL's parser: no lexeme, an empty query; ANDed with the tenant's lexeme it would
    match every row of the organization."""
    session, _ = sign_in(act_as, world.finance, world.org_a)
    call = text("select count(*) from search_hits(:kind, to_tsquery('simple', quote_literal(:w) || ':*'), 50)")
    for kind in ("engagements", "milestones", "invoices", "contractors"):
        assert session.execute(call, {"kind": kind, "w": typed}).scalar() == 0


def test_the_door_ranks_at_most_a_thousand_matches_of_a_word_in_every_row():
    source = (Path(__file__).resolve().parents[2] / "sql" / "search.sql").read_text()
    assert "c_ranked constant integer := 1000" in source
    assert source.count("limit c_ranked) h") == 4
