"""The header's search through the web (issue 22, item 6): each kind found by a name, a number or the beginning of a
word, grouped by kind, each result linking to its page; any input answered without an error; what each role finds."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.money import approved_invoices, numbered, party
from kit.web import HTMX, signed_in


@pytest.fixture
def books(world, act_as, admin_engine):
    """Contractor X's engagement "Harbourfront<s> terrace" with two approved milestones (two invoices) in org A,
    and contractor Z's "Harbourfront<s> pier" in org B."""
    s = world.suffix
    x_engagement, x_invoices = approved_invoices(
        act_as, admin_engine, party(world, "x"), title=f"Harbourfront{s} terrace"
    )
    z_engagement, z_invoices = approved_invoices(act_as, admin_engine, party(world, "z"), title=f"Harbourfront{s} pier")
    return {
        "x": (x_engagement, [i["id"] for i in x_invoices]),
        "z": (z_engagement, [i["id"] for i in z_invoices]),
    }


def links(page: str) -> dict[str, str]:
    """The results' links: their text -> their address."""
    return {
        html_lib.unescape(text).strip(): href for href, text in re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', page)
    }


def groups(page: str) -> list[str]:
    return re.findall(r'class="search-kind"[^>]*>([^<]+)<', page)


def test_an_engagement_its_milestones_and_invoices_are_found_by_the_beginning_of_a_word(
    app, login, world, books, admin_engine
):
    s = world.suffix
    client = signed_in(app, login, world.admin)
    page = client.get("/search?q=harbourf").get_data(as_text=True)  # the beginning of the title's first word
    found = links(page)
    engagement_id, invoice_ids = books["x"]
    assert found[f"Harbourfront{s} terrace"] == f"/engagements/{engagement_id}"
    assert f"Harbourfront{s} terrace part 1" in found and f"Harbourfront{s} terrace part 2" in found
    assert found[numbered(admin_engine, world.org_a, 1)] == f"/invoices/{invoice_ids[0]}"
    assert groups(page) == ["Engagements", "Milestones", "Invoices"]
    assert f"Harbourfront{s} pier" not in found  # org B's


def test_an_invoice_is_found_by_its_whole_number_by_its_beginning_and_by_its_sequence_number(
    app, login, world, books, admin_engine
):
    _, invoice_ids = books["x"]
    first = numbered(admin_engine, world.org_a, 1)
    client = signed_in(app, login, world.finance)
    for typed in (first, first.lower(), first[:-1], "1"):
        page = client.get("/search", query_string={"q": typed}).get_data(as_text=True)
        assert links(page).get(first) == f"/invoices/{invoice_ids[0]}", typed
    exact = client.get("/search", query_string={"q": first}).get_data(as_text=True)
    assert "this number" in exact


def test_the_results_links_open_the_right_pages(app, login, world, books):
    s = world.suffix
    client = signed_in(app, login, world.admin)
    page = client.get(f"/search?q=harbourfront{s}").get_data(as_text=True)
    for title, href in links(page).items():
        opened = client.get(href)
        assert opened.status_code == 200, href
        assert title in html_lib.unescape(opened.get_data(as_text=True)), href


def test_a_contractor_is_found_by_name_email_and_vendor_id_by_the_admin(app, login, world, books):
    s = world.suffix
    client = signed_in(app, login, world.admin)
    for typed in (f"Contractor X {s}", f"x-{s}@example", f"VX-{s}"):
        page = client.get("/search", query_string={"q": typed}).get_data(as_text=True)
        assert links(page).get(f"Contractor X {s}") == f"/admin/contractors/{world.contractor_x}", typed
        assert "Contractors" in groups(page)


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_roles_without_the_contractors_page_do_not_find_contractors(app, login, world, books, who):
    s = world.suffix
    client = signed_in(app, login, getattr(world, who))
    page = client.get("/search", query_string={"q": f"Contractor X {s}"}).get_data(as_text=True)
    assert f"Contractor X {s}" not in links(page)
    assert "Contractors" not in groups(page)


def test_a_contractor_finds_its_own_work_and_not_another_contractors(app, login, world, books, act_as, admin_engine):
    s = world.suffix
    approved_invoices(act_as, admin_engine, party(world, "y"), title=f"Harbourfront{s} boathouse")
    x = signed_in(app, login, world.contractor_x_user)
    found = links(x.get(f"/search?q=harbourfront{s}").get_data(as_text=True))
    assert f"Harbourfront{s} terrace" in found
    assert not any("boathouse" in title or "pier" in title for title in found)
    y = signed_in(app, login, world.contractor_y_user)
    found = links(y.get(f"/search?q=harbourfront{s}").get_data(as_text=True))
    assert f"Harbourfront{s} boathouse" in found
    assert not any("terrace" in title for title in found)


@pytest.mark.parametrize(
    "typed",
    [
        "\x00",
        "harbour\x00front",
        "x" * 1000,
        "word " * 300,
        "a & b | !c <-> d:* 'e' \"f\" (g)",
        "':*",
        "!!!",
        "%_\\",
        "\u202e\u200b",
        "Müller & Söhne",
    ],
)
def test_any_input_is_answered_with_a_page_and_never_an_error(app, login, world, typed):
    client = signed_in(app, login, world.owner)
    assert client.get("/search", query_string={"q": typed}).status_code == 200
    assert client.get("/search/suggest", query_string={"q": typed}, headers=HTMX).status_code == 200
    assert client.get("/search", query_string={"q": typed}, headers=HTMX).status_code == 200


def test_a_nul_byte_is_not_echoed_back(app, login, world):
    client = signed_in(app, login, world.owner)
    page = client.get("/search", query_string={"q": "zz\x00qq"}).get_data(as_text=True)
    assert "\x00" not in page
    assert "Nothing found for “zzqq”" in page


def test_nothing_typed_and_nothing_found_are_said_in_words(app, login, world):
    client = signed_in(app, login, world.owner)
    empty = client.get("/search").get_data(as_text=True)
    assert "Type what you are looking for above" in empty
    none = client.get("/search?q=qqqqzzzz").get_data(as_text=True)
    assert "Nothing found for “qqqqzzzz”" in none


def test_suggestions_are_a_fragment_with_a_link_to_all_results_and_the_summary_for_the_live_region(
    app, login, world, books
):
    s = world.suffix
    client = signed_in(app, login, world.admin)
    fragment = client.get(f"/search/suggest?q=harbourfront{s}", headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment
    assert 'id="header-search-status" hx-swap-oob="innerHTML">Found 1 engagement, 2 milestones, 2 invoices.' in fragment
    assert f'href="/search?q=harbourfront{s}"' in fragment
    cleared = client.get("/search/suggest?q=", headers=HTMX).get_data(as_text=True)
    assert cleared == '<span id="header-search-status" hx-swap-oob="innerHTML"></span>'  # the box empties


def test_the_results_page_answers_its_own_box_with_just_the_results(app, login, world, books):
    s = world.suffix
    client = signed_in(app, login, world.owner)
    fragment = client.get(f"/search?q=harbourfront{s}", headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment
    assert 'id="search-status" hx-swap-oob="innerHTML"' in fragment
    assert f"Harbourfront{s} terrace" in fragment


def test_every_page_has_the_search_box_in_its_header(app, login, world):
    client = signed_in(app, login, world.contractor_x_user)
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'<form class="header-search" role="search" aria-label="Search"', page)
    assert '<label for="header-search-q" class="visually-hidden">Search</label>' in page
    assert re.search(r'<input type="search" id="header-search-q" name="q"', page)
    assert 'hx-trigger="input changed delay:250ms, search"' in page
    assert 'aria-live="polite"' in page


def test_search_asks_for_a_sign_in(client):
    response = client.get("/search?q=anything")
    assert response.status_code in (302, 303)
    assert "/login" in response.headers["Location"]


def test_words_are_letters_and_decimal_digits_of_at_least_two_characters():
    from backoffice.queries.search import words_of

    assert words_of("\u00bd \u00b2 \u2460") == []
    assert words_of("x\u00b2 Harbour a 12 Müller") == ["harbour", "12", "müller"]


@pytest.mark.parametrize("typed", ["\u00bd", "\u00b2", "\u2460", "h", "a b"])
def test_a_numeral_or_a_single_letter_finds_nothing_rather_than_everything(app, login, world, books, typed):
    client = signed_in(app, login, world.finance)
    page = client.get("/search", query_string={"q": typed}).get_data(as_text=True)
    assert "search-hits" not in page  # no result listed
    assert "Type at least two letters or digits of a word" in page
    fragment = client.get("/search/suggest", query_string={"q": typed}, headers=HTMX).get_data(as_text=True)
    assert fragment == '<span id="header-search-status" hx-swap-oob="innerHTML"></span>'


def test_suggestions_wait_for_three_characters_the_page_searches_two(app, login, world, books):
    client = signed_in(app, login, world.finance)
    fragment = client.get("/search/suggest?q=ha", headers=HTMX).get_data(as_text=True)
    assert fragment == '<span id="header-search-status" hx-swap-oob="innerHTML"></span>'
    page = client.get("/search?q=ha").get_data(as_text=True)
    assert "Type at least two letters" not in page
    assert "Type what you are looking for" not in page
