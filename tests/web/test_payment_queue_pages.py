"""Finance's payment queue (/payments/): every payment an approval authorized, soonest due first, filtered
by status, due date, currency, contractor and engagement, with the count, net total and overdue count per
currency, 50 to a page. Each row leads to its invoice and to the milestone's evidence and decision. Only
finance and admins see it; an htmx filter gets the queue fragment alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from kit.money_pages import (
    active_engagement,
    approve_milestones,
    export_as,
    invoice_row,
    many_rows,
    milestone_ids,
    pay_as,
)
from kit.web import HTMX, signed_in, table_row, visible_text

from backoffice.web.display import short_day as format_day


def numbers(html: str) -> list[str]:
    """The invoice numbers of the queue's rows, top to bottom."""
    return re.findall(r'<a href="/invoices/[0-9a-f-]+"><strong>([A-Z0-9]+-\d{6})</strong></a>', html)


def totals(html: str) -> dict[str, str]:
    """Each currency's totals card as text: {"USD": "USD · 2 payments $2,911.13 1 overdue"}."""
    section = re.search(r'<section class="grid totals-per-currency".*?</section>', html, re.DOTALL)
    assert section, "the totals per currency"
    cards = re.findall(r"<article class=\"stat\">(.*?)</article>", section.group(0), re.DOTALL)
    return {visible_text(card).split(" ")[0]: visible_text(card) for card in cards}


@dataclass(frozen=True)
class Queue:
    kitchen: object  # engagement: contractor X, USD, Net 30
    loft: object  # engagement: contractor Y, EUR, Net 14
    design: dict  # kitchen's $1,234.55, approved 40 days ago: due 10 days ago (overdue)
    build: dict  # kitchen's $2,000.05, approved today: due in 30 days
    survey: dict  # loft's €500.00, approved 2 days ago: due in 12 days


@pytest.fixture
def queue(world, app_sessions, admin_engine) -> Queue:
    kitchen = active_engagement(app_sessions, world, title="Kitchen renovation", terms="30")
    loft = active_engagement(
        app_sessions,
        world,
        title="Loft conversion",
        contractor_id=world.contractor_y,
        currency="EUR",
        terms="14",
        rows=(("Survey", "Measured survey", "500.00", "2030-02-01"),),
    )
    design_m, build_m = milestone_ids(admin_engine, kitchen)
    (design,) = approve_milestones(app_sessions, admin_engine, [design_m], days_ago=40)
    (build,) = approve_milestones(app_sessions, admin_engine, [build_m])
    (survey,) = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, loft), days_ago=2)
    return Queue(kitchen, loft, *(dict(invoice_row(admin_engine, i)) for i in (design, build, survey)))


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


def get_html(client, path: str, **kwargs) -> str:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


# --- who sees it -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_admins_see_the_queue(app, login, world, queue, who):
    html = get_html(signed_in(app, login, getattr(world, who)), "/payments/")
    assert numbers(html) == [
        queue.design["invoice_number"],
        queue.survey["invoice_number"],
        queue.build["invoice_number"],
    ]


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_cannot_see_the_queue(app, login, world, queue, who):
    assert signed_in(app, login, getattr(world, who)).get("/payments/").status_code == 403


def test_another_organizations_admin_sees_none_of_these_payments(app, login, world, queue):
    html = get_html(signed_in(app, login, world.admin_b), "/payments/")
    assert numbers(html) == []
    assert "Nothing is waiting for payment." in html
    assert "Kitchen renovation" not in html


def test_a_row_shows_the_contractor_what_it_is_for_and_its_amounts(finance, queue):
    html = get_html(finance, "/payments/")
    row = visible_text(table_row(html, queue.design["invoice_number"]))
    assert "Contractor X" in row and "Kitchen renovation" in row and "Design — evidence and decision" in row
    assert "Authorized" in row
    # $1,234.55 gross; 10% retainage of it is $123.455, rounded half up; the net is what is paid.
    assert "$1,234.55 $123.46 $1,111.09" in row


# --- filters ---------------------------------------------------------------------------------------


def test_filter_by_status_follows_each_payment_from_authorized_to_exported_to_paid(
    finance, world, app_sessions, admin_engine, queue
):
    design, build, survey = (
        queue.design["invoice_number"],
        queue.build["invoice_number"],
        queue.survey["invoice_number"],
    )
    export_as(app_sessions, world.finance, world.org_a, [queue.build["id"]])
    pay_as(app_sessions, world.finance, world.org_a, queue.survey["id"])
    assert numbers(get_html(finance, "/payments/")) == [design, build]  # open: authorized or exported
    assert numbers(get_html(finance, "/payments/?status=approved")) == [design]
    assert numbers(get_html(finance, "/payments/?status=exported")) == [build]
    assert numbers(get_html(finance, "/payments/?status=paid")) == [survey]
    assert numbers(get_html(finance, "/payments/?status=all")) == [design, survey, build]
    exported_row = table_row(get_html(finance, "/payments/?status=exported"), build)
    assert "Exported" in visible_text(exported_row) and "batch 1" in visible_text(exported_row)
    assert 'name="invoice_id"' not in exported_row  # only what is authorized can be exported
    assert 'name="invoice_id"' in table_row(get_html(finance, "/payments/?status=approved"), design)
    paid = visible_text(table_row(get_html(finance, "/payments/?status=paid"), survey))
    assert f"paid {format_day(date.today())}" in paid


def test_an_unknown_status_shows_what_is_open(finance, queue):
    assert numbers(get_html(finance, "/payments/?status=bogus")) == numbers(get_html(finance, "/payments/"))


def test_filter_by_due_date_keeps_what_falls_due_on_or_before_it(finance, queue):
    html = get_html(finance, f"/payments/?due_before={queue.survey['due_date'].isoformat()}")
    assert numbers(html) == [queue.design["invoice_number"], queue.survey["invoice_number"]]
    assert f'name="due_before" value="{queue.survey["due_date"].isoformat()}"' in html


@pytest.mark.parametrize("value", ["31/12/2030", "2030-13-01", "soon", "2030-02-30"])
def test_a_malformed_due_date_is_ignored_with_a_note_at_the_filter(finance, queue, value):
    response = finance.get("/payments/", query_string={"due_before": value})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    note = re.search(r'<small id="due_before-note" class="field-error">([^<]*)</small>', html)
    assert note and note.group(1) == "Enter the date as YYYY-MM-DD; the filter was ignored."
    assert len(numbers(html)) == 3


def test_filter_by_currency_shows_that_currency_and_its_total_only(finance, queue):
    html = get_html(finance, "/payments/?currency=EUR")
    assert numbers(html) == [queue.survey["invoice_number"]]
    assert list(totals(html)) == ["EUR"]
    # Typed in lower case, the same.
    assert numbers(get_html(finance, "/payments/?currency=eur")) == [queue.survey["invoice_number"]]


def test_filter_by_contractor_and_by_engagement(finance, world, queue):
    assert numbers(get_html(finance, f"/payments/?contractor_id={world.contractor_y}")) == [
        queue.survey["invoice_number"]
    ]
    assert numbers(get_html(finance, f"/payments/?engagement_id={queue.kitchen}")) == [
        queue.design["invoice_number"],
        queue.build["invoice_number"],
    ]
    both = get_html(finance, f"/payments/?engagement_id={queue.kitchen}&contractor_id={world.contractor_y}")
    assert numbers(both) == []
    assert "No payment matches these filters." in both


def test_filters_offer_the_currencies_and_contractors_that_have_payments(finance, world, queue):
    html = get_html(finance, f"/payments/?contractor_id={world.contractor_y}")
    currency_options = re.findall(
        r'<option value="([A-Z]{3})"', re.search(r'<select name="currency">(.*?)</select>', html, re.DOTALL).group(1)
    )
    assert currency_options == ["EUR", "USD"]
    assert f'<option value="{world.contractor_y}" selected>' in html
    # No drop-down of every engagement (an organization may have thousands): an engagement filter arrives by
    # link and shows as a chip naming it, with a way back to every engagement.
    assert 'name="engagement_id"' not in html.split("<select")[-1]
    assert f'<option value="{queue.loft}"' not in html
    chip = get_html(finance, f"/payments/?engagement_id={queue.kitchen}")
    assert "Engagement: Kitchen" in visible_text(chip)
    back = re.search(r'<a href="([^"]+)" aria-label="Show every engagement', chip).group(1).replace("&amp;", "&")
    assert len(numbers(get_html(finance, back))) == 3


def test_a_malformed_contractor_or_engagement_id_is_no_filter_and_no_error(finance, queue):
    for query in (
        "contractor_id=nope",
        "engagement_id=1%27%20or%201=1",
        "page=abc",
        "sort=sideways",
        "after=nope",
        "after=0~2026-13-01~1",
        "before=1~2026-01-01~99999999999999999999",
        "after=%00",
        "before=-1~2026-01-01~1",
    ):
        assert len(numbers(get_html(finance, f"/payments/?{query}"))) == 3, query


# --- totals, overdue -------------------------------------------------------------------------------


def test_totals_per_currency_count_net_and_overdue_of_everything_matched(finance, queue):
    shown = totals(get_html(finance, "/payments/"))
    # USD: $1,111.09 + ($2,000.05 − $200.01) = $2,911.13, one of them past due; EUR: €500.00 − €50.00.
    assert shown == {"USD": "USD · 2 payments $2,911.13 1 overdue", "EUR": "EUR · 1 payment €450.00"}


def test_a_payment_past_its_due_date_is_marked_overdue_and_one_due_later_is_not(finance, queue):
    assert queue.design["due_date"] == date.today() - timedelta(days=10)
    html = get_html(finance, "/payments/")
    overdue = table_row(html, queue.design["invoice_number"])
    assert "Overdue" in visible_text(overdue)
    assert re.search(rf'<tr class="row-overdue">\s*<td[^>]*>[^<]*<input[^>]*value="{queue.design["id"]}"', html)
    for later in (queue.build, queue.survey):
        assert "Overdue" not in visible_text(table_row(html, later["invoice_number"]))


def test_a_paid_payment_is_never_overdue(finance, world, app_sessions, queue):
    pay_as(app_sessions, world.finance, world.org_a, queue.design["id"])
    html = get_html(finance, "/payments/?status=all")
    assert "Overdue" not in visible_text(table_row(html, queue.design["invoice_number"]))
    assert "overdue" not in totals(html)["USD"]


# --- order and pages -------------------------------------------------------------------------------


def test_sorted_by_due_date_soonest_first_and_the_header_turns_it_around(finance, queue):
    html = get_html(finance, "/payments/")
    soonest_first = [queue.design["invoice_number"], queue.survey["invoice_number"], queue.build["invoice_number"]]
    assert numbers(html) == soonest_first
    link = re.search(r'<a href="([^"]+)" aria-label="Sort by due date">', html)
    assert link and "sort=-due" in link.group(1)
    reversed_html = get_html(finance, link.group(1).replace("&amp;", "&"))
    assert numbers(reversed_html) == soonest_first[::-1]
    back = re.search(r'<a href="([^"]+)" aria-label="Sort by due date">', reversed_html)
    assert back and "sort=due" in back.group(1) and "sort=-due" not in back.group(1)


def test_fifty_to_a_page_with_the_next_page_holding_the_rest(finance, world, app_sessions, admin_engine):
    eid = active_engagement(app_sessions, world, title="Fit-out", rows=many_rows(51))
    invoices = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, eid))
    every = [invoice_row(admin_engine, i)["invoice_number"] for i in invoices]

    first = get_html(finance, "/payments/")
    assert numbers(first) == every[:50]  # same due date: in number order
    assert "Showing 1–50 of 51." in visible_text(first)
    assert totals(first)["USD"] == "USD · 51 payments $4,590.00"  # 51 × ($100.00 − $10.00), every page
    next_link = re.search(r'<a href="([^"]+)" rel="next">Next →</a>', first)
    assert next_link and "after=" in next_link.group(1)
    assert "← Previous" not in first

    second = get_html(finance, next_link.group(1).replace("&amp;", "&"))
    assert numbers(second) == every[50:]
    assert "Showing 51–51 of 51." in visible_text(second)
    assert "Next →" not in second and "← Previous" in second
    assert totals(second)["USD"] == "USD · 51 payments $4,590.00"
    # Back from the second page: the first page again, numbered from 1.
    previous = re.search(r'<a href="([^"]+)" rel="prev">← Previous</a>', second).group(1).replace("&amp;", "&")
    back = get_html(finance, previous)
    assert numbers(back) == every[:50]
    assert "Showing 1–50 of 51." in visible_text(back) and "← Previous" not in back


def test_a_page_is_the_rows_after_its_key_even_when_rows_arrive_in_between(finance, world, app_sessions, admin_engine):
    """Keyset paging: the second page starts after the last row the first page showed, so a payment
    authorized meanwhile neither repeats a row nor hides one."""
    eid = active_engagement(app_sessions, world, title="Fit-out", rows=many_rows(52))
    ids = milestone_ids(admin_engine, eid)
    invoices = approve_milestones(app_sessions, admin_engine, ids[:51])
    every = [invoice_row(admin_engine, i)["invoice_number"] for i in invoices]
    first = get_html(finance, "/payments/")
    next_link = re.search(r'<a href="([^"]+)" rel="next">', first).group(1).replace("&amp;", "&")
    later = approve_milestones(app_sessions, admin_engine, ids[51:])
    second = get_html(finance, next_link)
    assert numbers(second) == [every[50], invoice_row(admin_engine, later[0])["invoice_number"]]
    assert "of 52." in visible_text(second)


def test_paging_keeps_the_filters(finance, world, app_sessions, admin_engine):
    eid = active_engagement(app_sessions, world, title="Fit-out", rows=many_rows(51))
    approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, eid))
    html = get_html(finance, f"/payments/?engagement_id={eid}&sort=-due")
    next_link = re.search(r'<a href="([^"]+)" rel="next">Next →</a>', html).group(1).replace("&amp;", "&")
    assert f"engagement_id={eid}" in next_link and "sort=-due" in next_link and "after=" in next_link
    second = get_html(finance, next_link)
    assert len(numbers(second)) == 1 and "Showing 51–51 of 51." in visible_text(second)


# --- links -----------------------------------------------------------------------------------------


def test_an_engagement_page_links_finance_to_its_payments_in_the_queue_and_its_receipts(
    app, login, world, finance, queue
):
    page = get_html(finance, f"/engagements/{queue.kitchen}")
    link = re.search(r'<a href="([^"]+)">These payments in the payment queue</a>', page).group(1).replace("&amp;", "&")
    assert numbers(get_html(finance, link)) == [queue.design["invoice_number"], queue.build["invoice_number"]]
    assert f'href="/documents/?engagement_id={queue.kitchen}"' in page
    owner_page = signed_in(app, login, world.owner).get(f"/engagements/{queue.kitchen}").get_data(as_text=True)
    assert "These payments in the payment queue" not in owner_page


def test_each_row_links_to_its_invoice_and_to_the_milestones_evidence_and_decision(finance, queue):
    html = get_html(finance, "/payments/")
    for invoice in (queue.design, queue.build, queue.survey):
        row = table_row(html, invoice["invoice_number"])
        assert f'href="/invoices/{invoice["id"]}"' in row
        assert f'href="/milestones/{invoice["milestone_id"]}#revisions"' in row
    milestone = finance.get(f"/milestones/{queue.design['milestone_id']}")
    assert milestone.status_code == 200
    page = visible_text(milestone.get_data(as_text=True))
    assert "Design" in page and "https://example.com/evidence" in milestone.get_data(as_text=True)


# --- htmx ------------------------------------------------------------------------------------------


def test_an_htmx_filter_gets_the_queue_fragment_only(finance, queue):
    response = finance.get("/payments/?currency=EUR", headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="payment-queue">')
    assert "<html" not in html and "<h1>" not in html
    assert numbers(html) == [queue.survey["invoice_number"]]
    assert "HX-Request" in response.headers.get("Vary", "")


def test_a_boosted_navigation_gets_the_whole_page(finance, queue):
    html = finance.get("/payments/", headers={**HTMX, "HX-Boosted": "true"}).get_data(as_text=True)
    assert "<html" in html and "<h1>Payment queue</h1>" in html


def test_the_empty_queue_says_nothing_is_waiting(finance):
    html = get_html(finance, "/payments/")
    assert "Nothing is waiting for payment." in html
    assert 'class="grid totals-per-currency"' not in html
