"""CSV downloads of the lists (issue 22, items 6 and 11): every list's "Download CSV" carries the page's filters
and returns the rows the filtered page shows, all of them; headers in words, amounts as plain decimals beside
their currency, dates ISO, formula-looking text neutralised, UTF-8 with a byte-order mark; guarded like the page
and scoped to the organization like it."""

from __future__ import annotations

import csv
import html as html_lib
import io
import re
import uuid
from datetime import date

import pytest
from kit.milestones import move_milestone
from kit.money_pages import active_engagement, approve_milestones, export_as, invoice_row, milestone_ids
from kit.web import signed_in, table_row
from sqlalchemy import text

from backoffice.queries import paging

BOM = b"\xef\xbb\xbf"


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = response.get_data()
    assert body.startswith(BOM)
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def header_of(response) -> list[str]:
    return next(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def download_link(html: str) -> str:
    (href,) = re.findall(r'<p class="download-csv"><a href="([^"]+)"', html)
    return html_lib.unescape(href)


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


@pytest.fixture
def owner(app, login, world):
    return signed_in(app, login, world.owner)


@pytest.fixture
def lists(world, app_sessions, admin_engine) -> dict:
    """In organization A: Kitchen renovation (contractor X, USD, both milestones authorized), a tiling job whose
    title starts with '=' and whose contractor is Y (EUR, open); in organization B: Contractor Z's Loft (EUR)."""
    kitchen = active_engagement(app_sessions, world, title="Kitchen renovation — Zoë’s flat")
    invoices = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, kitchen))
    formula = active_engagement(
        app_sessions,
        world,
        title='=HYPERLINK("https://evil.example")',
        contractor_id=world.contractor_y,
        currency="EUR",
        sow_reference="-7",
        rows=(("@Tiles", "Tiles laid", "999.99", "2030-01-15"),),
    )
    other = active_engagement(
        app_sessions,
        world,
        title="Loft of organization B",
        by=world.admin_b,
        org_id=world.org_b,
        contractor_id=world.contractor_z,
        currency="EUR",
    )
    return {"kitchen": kitchen, "formula": formula, "other": other, "invoices": invoices}


# --- engagements ------------------------------------------------------------------------------------------


def test_the_engagements_page_links_its_download_with_the_same_filters(owner, world, lists):
    html = owner.get(f"/engagements?status=active&contractor={world.contractor_x}&after=").get_data(as_text=True)
    assert download_link(html) == f"/downloads/engagements.csv?status=active&contractor={world.contractor_x}"


def test_the_engagements_csv_has_the_filtered_pages_rows_headers_in_words_and_a_bom(owner, world, lists):
    response = owner.get(f"/downloads/engagements.csv?status=active&contractor={world.contractor_x}")
    assert header_of(response) == [
        "Engagement",
        "SOW reference",
        "Contractor",
        "Owner",
        "Status",
        "Currency",
        "Contract value",
        "Approved",
        "Paid",
        "Retainage held",
        "Milestones",
        "Overdue milestones",
        "Next due date",
        "Created",
    ]
    (row,) = csv_rows(response)
    assert row["Engagement"] == "Kitchen renovation — Zoë’s flat"
    assert (row["Contractor"], row["Status"], row["Currency"]) == (f"Contractor X {world.suffix}", "Active", "USD")
    # 1,234.55 + 2,000.05, both approved: plain decimals in major units, no symbol, no grouping.
    assert (row["Contract value"], row["Approved"], row["Paid"]) == ("3234.60", "3234.60", "0.00")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", row["Created"])
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="engagements-{date.today().isoformat()}.csv"'


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised(owner, world, lists):
    rows = csv_rows(owner.get(f"/downloads/engagements.csv?contractor={world.contractor_y}"))
    assert [(r["Engagement"], r["SOW reference"]) for r in rows] == [('\'=HYPERLINK("https://evil.example")', "'-7")]
    due = csv_rows(owner.get("/downloads/due.csv"))
    assert "'@Tiles" in [r["Milestone"] for r in due]


def test_the_engagements_csv_holds_every_row_of_every_page_in_the_pages_order(owner, world, lists, monkeypatch):
    monkeypatch.setattr(paging, "WALK_PAGE", 1)  # one row a read: the walk crosses page boundaries
    rows = csv_rows(owner.get("/downloads/engagements.csv"))
    assert [r["Engagement"] for r in rows] == [
        '\'=HYPERLINK("https://evil.example")',
        "Kitchen renovation — Zoë’s flat",
    ]


def test_another_organizations_rows_are_never_in_a_download(owner, finance, world, lists):
    everything = b"".join(
        client.get(path).get_data()
        for client, path in (
            (owner, "/downloads/engagements.csv"),
            (owner, "/downloads/due.csv"),
            (finance, "/downloads/payments.csv?status=all"),
            (finance, "/downloads/retainage.csv"),
            (finance, "/downloads/audit.csv"),
        )
    )
    assert b"Loft of organization B" not in everything and f"Contractor Z {world.suffix}".encode() not in everything
    assert str(lists["other"]).encode() not in everything


# --- due, payment queue, batches, retainage ---------------------------------------------------------------


def test_the_due_csv_is_what_the_due_page_shows(owner, world, lists):
    page = owner.get("/engagements/due").get_data(as_text=True)
    assert download_link(page) == "/downloads/due.csv"
    rows = csv_rows(owner.get("/downloads/due.csv"))
    assert [(r["Milestone"], r["Due date"], r["Currency"], r["Amount"], r["Status"]) for r in rows] == [
        ("'@Tiles", "2030-01-15", "EUR", "999.99", "Planned")
    ]
    assert "@Tiles" in page


def test_the_due_csv_says_a_disputed_milestones_status_in_the_pages_words(owner, lists, app_sessions, admin_engine):
    (tiles,) = milestone_ids(admin_engine, lists["formula"])
    move_milestone(app_sessions, admin_engine, tiles, "submitted", "planned")  # submitted, then disputed
    assert "Disputed" in table_row(owner.get("/engagements/due").get_data(as_text=True), "@Tiles")
    assert [(r["Milestone"], r["Status"]) for r in csv_rows(owner.get("/downloads/due.csv"))] == [
        ("'@Tiles", "Disputed")
    ]


def test_a_contractors_due_csv_holds_its_own_milestones_only(app, login, world, lists):
    client = signed_in(app, login, world.contractor_x_user)
    assert csv_rows(client.get("/downloads/due.csv")) == []  # both of X's milestones are approved
    client = signed_in(app, login, world.contractor_y_user)
    assert [r["Milestone"] for r in csv_rows(client.get("/downloads/due.csv"))] == ["'@Tiles"]


def test_the_payment_queue_csv_has_the_filtered_queues_invoices_with_exact_amounts(finance, world, lists, admin_engine):
    page = finance.get("/payments/?currency=USD&status=approved").get_data(as_text=True)
    assert download_link(page) == "/downloads/payments.csv?currency=USD&status=approved"
    rows = csv_rows(finance.get("/downloads/payments.csv?currency=USD&status=approved"))
    numbers = [invoice_row(admin_engine, i)["invoice_number"] for i in lists["invoices"]]
    assert [r["Invoice number"] for r in rows] == numbers
    assert all(n in page for n in numbers)
    # Design 1,234.55 less 10% retainage (123.46); Build 2,000.05 less 200.01.
    assert [(r["Gross"], r["Retainage"], r["Net payable"], r["Currency"]) for r in rows] == [
        ("1234.55", "123.46", "1111.09", "USD"),
        ("2000.05", "200.01", "1800.04", "USD"),
    ]
    assert rows[0]["Due date"] == invoice_row(admin_engine, lists["invoices"][0])["due_date"].isoformat()
    assert csv_rows(finance.get("/downloads/payments.csv?currency=EUR&status=approved")) == []


def test_the_batches_csv_lists_each_batch_with_its_total(finance, world, lists, app_sessions):
    export_as(app_sessions, world.finance, world.org_a, lists["invoices"][:1])
    page = finance.get("/batches/").get_data(as_text=True)
    assert download_link(page) == "/downloads/batches.csv"
    (row,) = csv_rows(finance.get("/downloads/batches.csv"))
    assert (row["Batch"], row["Status"], row["Layout"], row["Payments"], row["Total"], row["Currency"]) == (
        "1",
        "Live",
        "Generic CSV",
        "1",
        "1111.09",
        "USD",
    )


def test_the_retainage_csv_follows_the_reports_contractor_filter(finance, world, lists):
    rows = csv_rows(finance.get(f"/downloads/retainage.csv?contractor_id={world.contractor_x}"))
    assert [(r["Engagement"], r["Withheld"], r["Released"], r["Held"], r["Currency"]) for r in rows] == [
        ("Kitchen renovation — Zoë’s flat", "323.47", "0.00", "323.47", "USD")
    ]
    assert csv_rows(finance.get(f"/downloads/retainage.csv?contractor_id={world.contractor_y}")) == []


# --- audit trail, notifications ---------------------------------------------------------------------------


def page_sentences(html: str) -> dict[int, str]:
    """Sequence number -> the page's "What happened" sentence, for each event on the audit page."""
    cells = re.findall(r'<td data-label="#">(\d+)</td>.*?<td data-label="What happened">(.*?)</td>', html, re.DOTALL)
    return {int(seq): html_lib.unescape(sentence) for seq, sentence in cells}


def test_the_audit_csv_has_the_trail_newest_first(finance, world, lists):
    page = finance.get("/audit/").get_data(as_text=True)
    assert download_link(page) == "/downloads/audit.csv"
    response = finance.get("/downloads/audit.csv")
    assert header_of(response) == [
        "Sequence",
        "When (UTC)",
        "Who",
        "What happened",
        "Details",
        "Action code",
        "Hash",
    ]
    rows = csv_rows(response)
    numbers = [int(r["Sequence"]) for r in rows]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) > 5
    assert {"engagement.created"} <= {r["Action code"] for r in rows}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", r["When (UTC)"]) for r in rows)
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["Hash"]) for r in rows)


def test_the_audit_csv_reads_each_event_in_the_pages_words(finance, world, lists):
    page = page_sentences(finance.get("/audit/").get_data(as_text=True))
    rows = csv_rows(finance.get("/downloads/audit.csv"))
    (created,) = [r for r in rows if r["Action code"] == "engagement.created" and "Kitchen" in r["What happened"]]
    assert created["What happened"] == page[int(created["Sequence"])]
    assert created["What happened"].startswith("Omar Owner created the engagement Kitchen renovation — Zoë’s flat")
    assert created["Who"] == "Omar Owner"
    approved = [r for r in rows if r["Action code"] == "milestone.approved"]
    assert approved and all(r["What happened"] == page[int(r["Sequence"])] for r in approved)
    # Every event the page shows reads the same in the file.
    assert {int(r["Sequence"]): r["What happened"] for r in rows if int(r["Sequence"]) in page} == page
    # Details are the page's labelled values, "Label: value; Label: value"; no JSON.
    assert not any(r["Details"].startswith("{") for r in rows)
    assert any(re.fullmatch(r"[A-Z][^:;]*: [^;]+(; [A-Z][^:;]*: [^;]+)*", r["Details"]) for r in rows)


def notify(admin_engine, world, *notices) -> None:
    """(person, title, read?) notifications in organization A."""
    with admin_engine.begin() as conn:
        for who, title, read in notices:
            conn.execute(
                text(
                    "insert into notifications (id, org_id, user_id, event, title, body, url, dedupe_key, read_at)"
                    " values (:id, :org, :user, 'test', :title, 'Body', '/engagements', :key,"
                    "         case when :read then now() end)"
                ),
                {
                    "id": uuid.uuid4(),
                    "org": world.org_a,
                    "user": who.id,
                    "title": title,
                    "key": str(uuid.uuid4()),
                    "read": read,
                },
            )


def test_the_notifications_csv_is_the_persons_own_inbox_as_filtered(app, login, world, admin_engine):
    notify(
        admin_engine,
        world,
        (world.owner, "=Review waiting", False),
        (world.owner, "Paid", True),
        (world.finance, "Not the owner's", False),
    )
    client = signed_in(app, login, world.owner)
    assert download_link(client.get("/notifications/?show=unread").get_data(as_text=True)) == (
        "/downloads/notifications.csv?show=unread"
    )
    assert sorted(r["Title"] for r in csv_rows(client.get("/downloads/notifications.csv"))) == [
        "'=Review waiting",
        "Paid",
    ]
    assert [r["Title"] for r in csv_rows(client.get("/downloads/notifications.csv?show=unread"))] == [
        "'=Review waiting"
    ]


# --- the link carries the list's filters and nothing else ------------------------------------------------

LIST_PAGES = {
    "/engagements": "/downloads/engagements.csv",
    "/engagements/due": "/downloads/due.csv",
    "/payments/": "/downloads/payments.csv",
    "/batches/": "/downloads/batches.csv",
    "/retainage/": "/downloads/retainage.csv",
    "/audit/": "/downloads/audit.csv",
    "/notifications/": "/downloads/notifications.csv",
}


@pytest.mark.parametrize("page", LIST_PAGES)
@pytest.mark.parametrize(
    "query", ["endpoint=x", "_method=POST", "_external=1", "_anchor=x", "_scheme=https", "values=x"]
)
def test_a_query_string_key_that_url_for_reads_is_not_carried_into_the_download_link(
    finance, world, lists, app_sessions, admin_engine, page, query
):
    # Every list has rows, so every page shows its link: a batch, and a notice in finance's inbox.
    export_as(app_sessions, world.finance, world.org_a, lists["invoices"][:1])
    notify(admin_engine, world, (world.finance, "Batch exported", False))
    response = finance.get(f"{page}?{query}")
    assert response.status_code == 200
    assert download_link(response.get_data(as_text=True)) == LIST_PAGES[page]


def test_the_link_keeps_the_lists_filters_beside_a_key_it_drops(owner, world):
    html = owner.get(f"/engagements?endpoint=x&status=active&_external=1&owner={world.owner.id}").get_data(as_text=True)
    assert download_link(html) == f"/downloads/engagements.csv?status=active&owner={world.owner.id}"


# --- refused like the page --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page, download",
    [
        ("/payments/", "/downloads/payments.csv"),
        ("/batches/", "/downloads/batches.csv"),
        ("/retainage/", "/downloads/retainage.csv"),
        ("/audit/", "/downloads/audit.csv"),
    ],
)
def test_a_contractor_is_refused_a_download_as_the_page_refuses_it(app, login, world, page, download):
    client = signed_in(app, login, world.contractor_x_user)
    refused = client.get(page).status_code
    assert refused in (403, 404)
    assert client.get(download).status_code == refused


@pytest.mark.parametrize("path", ["/downloads/engagements.csv", "/downloads/audit.csv"])
def test_a_download_without_signing_in_is_no_file(client, path):
    response = client.get(path)
    assert response.status_code in (302, 401) and not response.get_data().startswith(BOM)


@pytest.mark.parametrize(
    "path",
    [
        "/downloads/engagements.csv?status=%00",
        "/downloads/payments.csv?currency=US%00",
        "/downloads/retainage.csv?contractor_id=%00",
        "/downloads/due.csv?sta%00tus=planned",
    ],
)
def test_a_nul_byte_in_a_filter_is_refused_not_a_server_error(finance, path):
    assert finance.get(path).status_code == 400


def test_a_malformed_filter_is_dropped_as_the_page_drops_it(finance, lists):
    rows = csv_rows(finance.get("/downloads/payments.csv?due_before=yesterday&status=nonsense"))
    assert len(rows) == 2
