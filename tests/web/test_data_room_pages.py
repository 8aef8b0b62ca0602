"""The data room (/documents/): the self-billed invoice (PDF; the receipt before issue 21) of every authorized
payment, for finance and admins.

They are issued the way the app issues them: work approved through the services, then the real
worker (jobs_kit.run_jobs) renders and stores each one. Finance and admins list them, filter them
(contractor, engagement, invoice number or TX id, issued from/to; a date that is not one is a 422 with
the message at the field) and download them as attachments, byte for byte as stored, with their sha256
in the ETag. Owners and contractors get a 404 for the room as if it did not exist; a contractor's user downloads
its own contractor's documents and gets a 404 for any other, as an owner does for every one and another
organization's admin for this one's. The invoice's page lists its self-billed invoice in its "Self-billed invoice"
section for finance, admins and the invoice's own contractor; owners see no such section.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from datetime import timedelta

import pytest
from kit.jobs import run_jobs
from kit.money_pages import active_engagement, approve, approved_engagement, milestone_ids
from kit.web import field_error, signed_in
from sqlalchemy import text

ONE_ROW = (("Design", "Floor plans", "1,234.55", "2030-01-15"),)
DATE_MESSAGES = {  # what services.validation.clean_date says, as every date field of the app does
    "2026-13-45": "2026-13-45 is not a date on the calendar.",
    "30/11/2026": "Enter the date as YYYY-MM-DD, for example 2026-12-31.",
    "yesterday": "Enter the date as YYYY-MM-DD, for example 2026-12-31.",
    "9999-12-31": "Enter a date between 2000 and 2100.",
}


def receipts_of(admin_engine, org_id) -> list[dict]:
    """The organization's receipts with their invoice numbers, as the owner role sees them, oldest first."""
    with admin_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "select d.*, i.invoice_number from documents d join invoices i on i.id = d.invoice_id"
                    " where d.org_id = :o order by i.number"
                ),
                {"o": org_id},
            ).mappings()
        ]


def database_today(admin_engine):
    """Today as the database dates a receipt's issue (its session time zone), which the filters use."""
    with admin_engine.connect() as conn:
        return conn.execute(text("select current_date")).scalar_one()


def listed(html: str) -> list[str]:
    """The invoice numbers the data room's table lists, in its order."""
    return re.findall(r'<a href="/invoices/[0-9a-f-]+"><strong>([^<]+)</strong></a>', html)


def download_link(document_id) -> str:
    return f'href="/documents/{document_id}/download"'


@pytest.fixture
def room(app_sessions, admin_engine, world, database) -> dict:
    """Org A with one receipt for contractor X ("Kitchen renovation") and one for contractor Y ("Garden
    wall"), both issued by the worker: {"x": document, "y": document}, each with its invoice number."""
    approved_engagement(app_sessions, admin_engine, world, title="Kitchen renovation", rows=ONE_ROW)
    approved_engagement(
        app_sessions, admin_engine, world, title="Garden wall", rows=ONE_ROW, contractor_id=world.contractor_y
    )
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    x, y = receipts_of(admin_engine, world.org_a)
    assert (x["contractor_id"], y["contractor_id"]) == (world.contractor_x, world.contractor_y)
    return {"x": x, "y": y}


# --- the list -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_admins_see_every_receipt_with_its_transaction_and_download(app, login, world, room, who):
    response = signed_in(app, login, getattr(world, who)).get("/documents/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert listed(html) == [room["y"]["invoice_number"], room["x"]["invoice_number"]]  # newest first
    for doc, contractor, engagement in (
        (room["x"], "Contractor X", "Kitchen renovation"),
        (room["y"], "Contractor Y", "Garden wall"),
    ):
        row = next(r for r in re.findall(r"<tr>.*?</tr>", html, re.DOTALL) if doc["invoice_number"] in r)
        assert doc["transaction_id"] in row
        assert f"{contractor} {world.suffix}" in html_lib.unescape(row)
        assert engagement in row
        assert doc["sha256"][:12] in row
        assert download_link(doc["id"]) in row


EMPTY_ROOM = (
    "No documents yet. A self-billed invoice is issued for every payment authorized by an approval or a retainage"
    " release, a moment after it happens."
)


def test_an_empty_data_room_says_self_billed_invoices_come_after_authorizations(app, login, world):
    html = signed_in(app, login, world.finance).get("/documents/").get_data(as_text=True)
    assert EMPTY_ROOM in html
    assert listed(html) == []


def test_another_organizations_admin_sees_none_of_this_organizations_documents(app, login, world, room):
    html = signed_in(app, login, world.admin_b).get("/documents/").get_data(as_text=True)
    assert listed(html) == []
    assert EMPTY_ROOM in html
    assert room["x"]["transaction_id"] not in html


# --- filters ------------------------------------------------------------------------------------------


def test_the_data_room_filters_by_contractor(app, login, world, room):
    client = signed_in(app, login, world.finance)
    html = client.get(f"/documents/?contractor_id={world.contractor_y}").get_data(as_text=True)
    assert listed(html) == [room["y"]["invoice_number"]]
    assert re.search(rf'<option value="{world.contractor_y}"\s+selected>', html)
    html = client.get(f"/documents/?contractor_id={world.contractor_x}").get_data(as_text=True)
    assert listed(html) == [room["x"]["invoice_number"]]


def test_the_data_room_filters_by_engagement(app, login, world, room):
    html = (
        signed_in(app, login, world.finance)
        .get(f"/documents/?engagement_id={room['x']['engagement_id']}")
        .get_data(as_text=True)
    )
    assert listed(html) == [room["x"]["invoice_number"]]


def test_the_data_room_finds_a_receipt_by_invoice_number_or_transaction_id(app, login, world, room):
    client = signed_in(app, login, world.finance)

    def found(q: str) -> list[str]:
        return listed(client.get("/documents/", query_string={"q": q}).get_data(as_text=True))

    assert found(room["x"]["invoice_number"]) == [room["x"]["invoice_number"]]
    assert found(room["y"]["transaction_id"]) == [room["y"]["invoice_number"]]
    assert found(f" {room['y']['transaction_id'].lower()} ") == [
        room["y"]["invoice_number"]
    ]  # as typed from a printout
    html = client.get("/documents/?q=TX-0000000000").get_data(as_text=True)
    assert listed(html) == []
    assert "No document matches these filters." in html


def test_a_receipt_issued_today_is_found_from_today_to_today_and_not_outside(app, login, world, room, admin_engine):
    client = signed_in(app, login, world.finance)
    today = database_today(admin_engine)
    both = sorted([room["x"]["invoice_number"], room["y"]["invoice_number"]])
    assert sorted(listed(client.get(f"/documents/?from={today}&to={today}").get_data(as_text=True))) == both
    assert sorted(listed(client.get(f"/documents/?from={today - timedelta(days=30)}").get_data(as_text=True))) == both
    for query in (f"from={today + timedelta(days=1)}", f"to={today - timedelta(days=1)}"):
        html = client.get(f"/documents/?{query}").get_data(as_text=True)
        assert listed(html) == [], query
        assert "No document matches these filters." in html


@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize("value", ["2026-13-45", "30/11/2026", "yesterday"])
def test_a_date_that_is_not_one_is_refused_with_the_message_at_the_field(app, login, world, room, field, value):
    response = signed_in(app, login, world.finance).get(f"/documents/?{field}={value}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, field) == DATE_MESSAGES[value]
    assert re.search(rf'<input type="date" name="{field}" value="{re.escape(value)}"\s+aria-invalid="true"', html)
    assert field_error(html, "to" if field == "from" else "from") is None


def test_a_date_far_outside_any_receipt_is_refused_at_the_field_not_a_server_error(app, login, world, room):
    response = signed_in(app, login, world.finance).get("/documents/?to=9999-12-31")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "to") == DATE_MESSAGES["9999-12-31"]


def test_a_search_with_a_nul_character_is_refused_at_the_field_not_a_server_error(app, login, world, room):
    response = signed_in(app, login, world.finance).get("/documents/?q=ZZ%00ZZ")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "q") == "The search contains characters that are not allowed."


def test_an_absurd_page_number_shows_the_first_page_not_a_server_error(app, login, world, room):
    client = signed_in(app, login, world.finance)
    response = client.get("/documents/?page=99999999999999999999")
    assert response.status_code == 200
    assert listed(response.get_data(as_text=True)) == listed(client.get("/documents/").get_data(as_text=True)) != []


# --- downloads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_a_receipt_downloads_as_an_attachment_with_the_stored_bytes_and_their_hash(app, login, world, room, who):
    doc = room["x"]
    response = signed_in(app, login, getattr(world, who)).get(f"/documents/{doc['id']}/download")
    assert response.status_code == 200
    body = response.get_data()
    assert body == bytes(doc["content"])
    assert body.startswith(b"%PDF-")
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="self-billed-invoice-{doc["invoice_number"]}.pdf"'
    )
    assert response.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"' == f'"{doc["sha256"]}"'
    assert response.headers["X-Content-SHA256"] == doc["sha256"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_receipt_downloads_byte_identical_every_time(app, login, world, room):
    client = signed_in(app, login, world.finance)
    first, second = (client.get(f"/documents/{room['y']['id']}/download") for _ in range(2))
    assert first.get_data() == second.get_data() == bytes(room["y"]["content"])


@pytest.mark.parametrize("raw_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_receipt_is_a_404(app, login, world, raw_id):
    assert signed_in(app, login, world.finance).get(f"/documents/{raw_id}/download").status_code == 404


@pytest.mark.parametrize("who", ["owner", "contractor_x_user", "contractor_y_user"])
def test_owners_and_contractors_get_a_404_for_the_list_and_for_every_download_but_the_contractors_own(
    app, login, world, room, who
):
    client = signed_in(app, login, getattr(world, who))
    assert client.get("/documents/").status_code == 404
    own = {"contractor_x_user": "x", "contractor_y_user": "y"}.get(who)
    for which, doc in room.items():
        response = client.get(f"/documents/{doc['id']}/download")
        if which == own:
            assert response.status_code == 200
            assert response.get_data() == bytes(doc["content"])
        else:
            assert response.status_code == 404
            assert doc["transaction_id"].encode() not in response.get_data()


def test_another_organizations_admin_gets_a_404_for_this_organizations_receipt(app, login, world, room):
    response = signed_in(app, login, world.admin_b).get(f"/documents/{room['x']['id']}/download")
    assert response.status_code == 404
    assert not response.get_data().startswith(b"%PDF")


def test_signed_out_visitors_are_sent_to_sign_in(client, room):
    for path in ("/documents/", f"/documents/{room['x']['id']}/download"):
        response = client.get(path)
        assert response.status_code in (302, 303)
        assert "/login" in response.headers["Location"]


# --- the invoice page and the navigation --------------------------------------------------------------


def documents_section(html: str) -> str | None:
    """The invoice page's "Self-billed invoice" section (templates/payments/_documents.html), or None."""
    match = re.search(r'<section id="documents".*?</section>', html, re.DOTALL)
    return match.group(0) if match else None


@pytest.mark.parametrize("who", ["finance", "admin", "contractor_x_user"])
def test_the_invoice_page_lists_its_self_billed_invoice_for_finance_admins_and_its_contractor(
    app, login, world, room, who
):
    doc = room["x"]
    html = signed_in(app, login, getattr(world, who)).get(f"/invoices/{doc['invoice_id']}").get_data(as_text=True)
    section = documents_section(html)
    assert section, "the invoice's documents"
    assert '<h2 id="documents-heading">Self-billed invoice</h2>' in section
    assert re.search(rf"{download_link(doc['id'])}[^>]*>Self-billed invoice \(PDF\)</a>", section)
    assert f"self-billed-invoice-{doc['invoice_number']}.pdf" in section
    assert doc["transaction_id"] in section and doc["sha256"][:16] in section
    assert "is being issued" not in section


def test_the_invoice_page_says_the_self_billed_invoice_is_coming_before_the_worker_issues_it(
    app, login, app_sessions, admin_engine, world
):
    eid = active_engagement(app_sessions, world, rows=ONE_ROW)
    (mid,) = milestone_ids(admin_engine, eid)
    invoice_id = approve(app_sessions, world, mid)
    html = signed_in(app, login, world.finance).get(f"/invoices/{invoice_id}").get_data(as_text=True)
    section = documents_section(html)
    assert section and "The self-billed invoice is being issued" in section
    assert 'href="/documents/"' in section and "/download" not in section  # the data room, nothing to download yet


def test_the_invoice_page_shows_owners_no_documents(app, login, world, room):
    doc = room["x"]
    response = signed_in(app, login, world.owner).get(f"/invoices/{doc['invoice_id']}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200  # they see the payment itself...
    assert doc["invoice_number"] in html
    assert documents_section(html) is None  # ...but not its documents
    assert "/documents/" not in html
    assert doc["transaction_id"] not in html


@pytest.mark.parametrize(
    ("who", "shown"), [("finance", True), ("admin", True), ("owner", False), ("contractor_x_user", False)]
)
def test_the_navigation_shows_the_data_room_to_finance_and_admins_only(app, login, world, who, shown):
    response = signed_in(app, login, getattr(world, who)).get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert ('href="/documents/"' in html) is shown
    assert (">Data room</a>" in html) is shown
