"""AP export batches through the web (DESIGN.md section 7): finance exports the payments ticked on the
queue, or everything authorized and due by a date in one currency, as one file; the file is stored with
its sha256 and downloads byte-identical every time; an admin voids a batch before payment (with a
reason), which returns its payments to the queue; the payment run of a batch is recorded at once."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from datetime import date, timedelta

import pytest
from kit.money_pages import (
    active_engagement,
    approve,
    approve_milestones,
    batch_row,
    export_as,
    invoice_row,
    many_rows,
    milestone_ids,
    money_state,
    pay_as,
    payments_of,
    stored_file,
)
from kit.web import csrf_token, field_error, flashes, signed_in, table_row, visible_text

from backoffice.domain.ap_export import PRESETS, Preset


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


@pytest.fixture
def usd(world, app_sessions, admin_engine) -> list[dict]:
    """Kitchen renovation's two authorized payments (contractor X, USD, Net 30): Design approved 40 days ago
    (due 10 days ago), Build approved today (due in 30 days)."""
    eid = active_engagement(app_sessions, world, title="Kitchen renovation")
    design_m, build_m = milestone_ids(admin_engine, eid)
    ids = approve_milestones(app_sessions, admin_engine, [design_m], days_ago=40) + approve_milestones(
        app_sessions, admin_engine, [build_m]
    )
    return [dict(invoice_row(admin_engine, i)) for i in ids]


@pytest.fixture
def eur(world, app_sessions, admin_engine) -> dict:
    """Loft conversion's authorized payment: contractor Y, €500.00, Net 14, approved today."""
    eid = active_engagement(
        app_sessions,
        world,
        title="Loft conversion",
        contractor_id=world.contractor_y,
        currency="EUR",
        terms="14",
        rows=(("Survey", "Measured survey", "500.00", "2030-02-01"),),
    )
    return dict(
        invoice_row(admin_engine, approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, eid))[0])
    )


def export(client, *, invoice_ids=(), **fields):
    token = csrf_token(client, "/payments/")
    data = {"invoice_id": [str(i) for i in invoice_ids], "csrf_token": token, **fields}
    return client.post("/batches/", data=data)


def batch_id_of(response) -> str:
    assert response.status_code == 303, response.status_code
    match = re.fullmatch(r"/batches/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def statuses(admin_engine, invoices) -> list[tuple]:
    return [(r["status"], r["batch_id"]) for r in (invoice_row(admin_engine, i["id"]) for i in invoices)]


def download(client, batch_id):
    response = client.get(f"/batches/{batch_id}/download")
    assert response.status_code == 200, response.status_code
    return response


# --- creating ----------------------------------------------------------------------------------------


def test_exporting_the_selected_payments_makes_a_batch_and_opens_it(finance, world, admin_engine, usd):
    response = export(finance, invoice_ids=[i["id"] for i in usd], preset="generic")
    batch_id = batch_id_of(response)
    batch = batch_row(admin_engine, batch_id)
    assert (
        batch["number"],
        batch["currency"],
        batch["preset"],
        batch["status"],
        batch["row_count"],
        batch["total_minor"],
        batch["created_by"],
    ) == (1, "USD", "generic", "live", 2, 111109 + 180004, world.finance.id)
    assert statuses(admin_engine, usd) == [("exported", batch["id"])] * 2
    html = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert "Batch 1: 2 payments, $2,911.13. Download the file below; its payments are now exported." in flashes(html)
    assert f'<code class="hash">{batch["sha256"]}</code>' in html
    for invoice in usd:
        assert "Exported" in visible_text(table_row(html, invoice["invoice_number"]))


def test_the_batch_leaves_the_queue_of_authorized_payments_and_is_listed(finance, admin_engine, usd, eur):
    batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    waiting = finance.get("/payments/?status=approved").get_data(as_text=True)
    assert usd[0]["invoice_number"] not in waiting and usd[1]["invoice_number"] in waiting
    listing = finance.get("/batches/").get_data(as_text=True)
    row = visible_text(table_row(listing, "Batch 1"))
    assert "Generic CSV" in row and "$1,111.09" in row and "0 of 1 paid" in row


def test_the_organizations_default_layout_is_used_when_none_is_chosen(finance, admin_engine, usd):
    batch = batch_row(admin_engine, batch_id_of(export(finance, invoice_ids=[usd[0]["id"]], preset="")))
    assert batch["preset"] == "generic"
    # The generic layout carries the byte-order mark by default (for Excel).
    assert stored_file(admin_engine, batch["id"]).startswith(b"\xef\xbb\xbf" + PRESETS[Preset.GENERIC].header_line())


def test_exporting_everything_due_by_a_date_in_one_currency(finance, admin_engine, usd, eur):
    # Design fell due 10 days ago; Build falls due in 30 days; the EUR payment is another currency.
    response = export(
        finance, due_by=(date.today() + timedelta(days=29)).isoformat(), currency="USD", preset="quickbooks_online"
    )
    batch = batch_row(admin_engine, batch_id_of(response))
    assert (batch["currency"], batch["preset"], batch["row_count"], batch["selection"]["mode"]) == (
        "USD",
        "quickbooks_online",
        1,
        "due_by",
    )
    assert statuses(admin_engine, usd) == [("exported", batch["id"]), ("approved", None)]
    assert invoice_row(admin_engine, eur["id"])["status"] == "approved"


def test_exporting_by_date_when_nothing_is_due_exports_nothing_and_says_so(finance, world, admin_engine, usd):
    before = money_state(admin_engine, world.org_a)
    response = export(finance, due_by=(date.today() - timedelta(days=30)).isoformat(), currency="USD")
    assert response.status_code == 303 and response.headers["Location"].startswith("/payments/")
    html = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing was exported: No authorized payment in USD is due by that date; nothing was exported." in flashes(
        html
    )
    assert money_state(admin_engine, world.org_a) == before


def test_a_selection_in_two_currencies_is_refused_with_a_message(finance, world, admin_engine, usd, eur):
    before = money_state(admin_engine, world.org_a)
    response = export(finance, invoice_ids=[usd[0]["id"], eur["id"]])
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/payments/")
    html = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        "Nothing was exported: A batch is in one currency; the selection has EUR, USD. "
        "Filter the queue by currency and select again."
    ) in flashes(html)
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"currency": "USD"}, "Enter the due-by date"),
        ({"due_by": "soon", "currency": "USD"}, "due-by date"),
        ({"due_by": date.today().isoformat(), "currency": "XYZ"}, "Choose the batch's currency"),
        (
            {"invoice_ids": (), "due_by": date.today().isoformat(), "currency": "USD", "preset": "lotus123"},
            "Choose an export layout.",
        ),
    ],
)
def test_a_bad_export_request_exports_nothing_and_says_what_to_fix(finance, world, admin_engine, usd, fields, words):
    before = money_state(admin_engine, world.org_a)
    response = export(finance, **fields)
    assert response.status_code == 303
    messages = flashes(finance.get(response.headers["Location"]).get_data(as_text=True))
    assert any(m.startswith("Nothing was exported:") and words in m for m in messages), messages
    assert money_state(admin_engine, world.org_a) == before


def test_export_selected_with_nothing_ticked_asks_to_select_payments(finance, world, admin_engine, usd):
    before = money_state(admin_engine, world.org_a)
    response = export(finance, preset="")  # the queue's "Export selected" form, no checkbox ticked
    assert response.status_code == 303
    messages = flashes(finance.get(response.headers["Location"]).get_data(as_text=True))
    assert money_state(admin_engine, world.org_a) == before
    assert any("Select" in m for m in messages) and not any("due-by" in m for m in messages), messages


def test_payments_exported_already_are_not_exported_twice(finance, world, admin_engine, usd):
    batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    before = money_state(admin_engine, world.org_a)
    response = export(finance, invoice_ids=[i["id"] for i in usd])  # a stale queue still showing both
    assert response.status_code == 303 and response.headers["Location"].startswith("/payments/")
    messages = flashes(finance.get(response.headers["Location"]).get_data(as_text=True))
    assert any(f"{usd[0]['invoice_number']} is in batch 1" in m and "Nothing was exported" in m for m in messages), (
        messages
    )
    assert money_state(admin_engine, world.org_a) == before


def test_another_organizations_payment_in_the_selection_is_not_found(app, login, world, admin_engine, usd):
    admin_b = signed_in(app, login, world.admin_b)
    before = money_state(admin_engine, world.org_a)
    assert export(admin_b, invoice_ids=[usd[0]["id"]]).status_code == 404
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_cannot_export_or_see_batches(app, login, world, admin_engine, finance, usd, who):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    client = signed_in(app, login, getattr(world, who))
    before = money_state(admin_engine, world.org_a)
    token = csrf_token(client, "/")
    assert client.post("/batches/", data={"invoice_id": str(usd[1]["id"]), "csrf_token": token}).status_code == 403
    for path in ("/batches/", f"/batches/{batch_id}", f"/batches/{batch_id}/download"):
        assert client.get(path).status_code == 403, path
    assert money_state(admin_engine, world.org_a) == before


# --- downloading -------------------------------------------------------------------------------------


def test_the_file_downloads_as_an_attachment_named_for_the_batch_with_its_sha256_as_etag(finance, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd], preset="xero"))
    batch = batch_row(admin_engine, batch_id)
    response = download(finance, batch_id)
    prefix = usd[0]["invoice_number"].split("-")[0].lower()
    assert response.headers["Content-Disposition"] == f'attachment; filename="{prefix}-ap-batch-0001-xero-usd.csv"'
    assert response.mimetype == "text/csv"
    assert response.headers["ETag"] == f'"{batch["sha256"]}"'
    assert response.headers["X-Content-SHA256"] == batch["sha256"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    body = response.get_data()
    assert hashlib.sha256(body).hexdigest() == batch["sha256"]
    assert len(body) == batch["size_bytes"] == int(response.headers["Content-Length"])
    assert body == stored_file(admin_engine, batch_id)
    assert body.startswith(PRESETS[Preset.XERO].header_line())
    assert body.count(b"\n") == 3  # the header and one line per payment


def test_two_downloads_are_byte_identical(app, login, world, finance, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    first = download(finance, batch_id).get_data()
    second = download(signed_in(app, login, world.admin), batch_id).get_data()
    assert first == second
    assert hashlib.sha256(second).hexdigest() == batch_row(admin_engine, batch_id)["sha256"]


def test_a_batch_downloads_the_same_bytes_after_its_payments_are_paid(finance, world, app_sessions, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    before = download(finance, batch_id).get_data()
    pay_as(app_sessions, world.finance, world.org_a, usd[0]["id"])
    assert download(finance, batch_id).get_data() == before


@pytest.mark.parametrize("suffix", ["", "/download"])
def test_another_organizations_batch_is_not_found(app, login, world, finance, usd, suffix):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    assert signed_in(app, login, world.admin_b).get(f"/batches/{batch_id}{suffix}").status_code == 404


def test_an_unknown_or_malformed_batch_is_not_found(finance):
    for path in (
        "/batches/00000000-0000-0000-0000-000000000000",
        "/batches/1",
        "/batches/1/download",
        "/batches/00000000-0000-0000-0000-000000000000/download",
    ):
        assert finance.get(path).status_code == 404, path


# --- voiding -----------------------------------------------------------------------------------------


def void(client, batch_id, reason):
    token = csrf_token(client, f"/batches/{batch_id}")
    return client.post(f"/batches/{batch_id}/void", data={"reason": reason, "csrf_token": token})


def test_an_admin_voids_a_batch_and_its_payments_return_to_the_queue(admin, finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    file_before = download(finance, batch_id).get_data()
    response = void(admin, batch_id, "Exported with the wrong layout.")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/batches/{batch_id}"
    batch = batch_row(admin_engine, batch_id)
    assert (batch["status"], batch["voided_by"], batch["void_reason"]) == (
        "voided",
        world.admin.id,
        "Exported with the wrong layout.",
    )
    assert statuses(admin_engine, usd) == [("approved", None)] * 2
    html = admin.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Batch 1 voided; its payments are back in the queue, ready to export again." in flashes(html)
    assert "Exported with the wrong layout." in html and "Void" in html
    assert f'action="/batches/{batch_id}/void"' not in html and f'action="/batches/{batch_id}/pay"' not in html
    waiting = finance.get("/payments/?status=approved").get_data(as_text=True)
    assert all(i["invoice_number"] in waiting for i in usd)
    # The file is kept as it was, and the payments export again, into batch 2.
    assert download(finance, batch_id).get_data() == file_before
    assert batch_row(admin_engine, batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd])))["number"] == 2


def test_voiding_without_a_reason_is_refused_at_the_reason(admin, finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    before = money_state(admin_engine, world.org_a)
    response = void(admin, batch_id, "   ")
    assert response.status_code == 422
    message = field_error(response.get_data(as_text=True), "reason")
    assert message and "reason for voiding the batch" in message
    assert money_state(admin_engine, world.org_a) == before


def test_finance_cannot_void_a_batch(finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    assert f'action="/batches/{batch_id}/void"' not in finance.get(f"/batches/{batch_id}").get_data(as_text=True)
    before = money_state(admin_engine, world.org_a)
    assert void(finance, batch_id, "Wrong layout.").status_code == 403
    assert money_state(admin_engine, world.org_a) == before


def test_a_voided_batch_cannot_be_voided_again(admin, finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    assert void(admin, batch_id, "Wrong layout.").status_code == 303
    before = money_state(admin_engine, world.org_a)
    response = void(admin, batch_id, "Again.")
    assert response.status_code == 409
    assert "Batch 1 was already voided on" in html_lib.unescape(response.get_data(as_text=True))
    assert money_state(admin_engine, world.org_a) == before


def test_a_batch_with_a_paid_payment_cannot_be_voided(admin, finance, world, app_sessions, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    pay_as(app_sessions, world.finance, world.org_a, usd[0]["id"])
    assert f'action="/batches/{batch_id}/void"' not in admin.get(f"/batches/{batch_id}").get_data(as_text=True)
    before = money_state(admin_engine, world.org_a)
    response = void(admin, batch_id, "Too late.")
    assert response.status_code == 409
    assert (
        f"Batch 1 cannot be voided: {usd[0]['invoice_number']} is paid. A batch is voided only before payment."
        in html_lib.unescape(response.get_data(as_text=True))
    )
    assert money_state(admin_engine, world.org_a) == before


# --- the payment run ---------------------------------------------------------------------------------


def pay_batch(client, batch_id, *, paid_at=None, reference="RUN 2026-47", method="ach"):
    token = csrf_token(client, f"/batches/{batch_id}")
    return client.post(
        f"/batches/{batch_id}/pay",
        data={
            "paid_at": date.today().isoformat() if paid_at is None else paid_at,
            "reference": reference,
            "method": method,
            "csrf_token": token,
        },
    )


def test_recording_the_batch_paid_pays_every_payment_in_it(finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    response = pay_batch(finance, batch_id)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/batches/{batch_id}"
    for invoice in usd:
        row = invoice_row(admin_engine, invoice["id"])
        assert (row["status"], row["paid_at"], str(row["batch_id"])) == ("paid", date.today(), batch_id)
        (payment,) = payments_of(admin_engine, invoice["id"])
        assert (payment["source"], str(payment["batch_id"]), payment["reference"], payment["amount_minor"]) == (
            "batch",
            batch_id,
            "RUN 2026-47",
            invoice["net_minor"],
        )
    html = finance.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "2 payments recorded for the batch." in flashes(html)
    assert re.search(r"<h1>Batch 1 <span class=\"badge status-paid\">Paid</span>", html)
    assert f'action="/batches/{batch_id}/pay"' not in html


def test_the_batch_payment_run_pays_only_what_is_still_unpaid(finance, world, app_sessions, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    pay_as(app_sessions, world.finance, world.org_a, usd[0]["id"], reference="ACH single")
    assert pay_batch(finance, batch_id).status_code == 303
    assert [payments_of(admin_engine, i["id"])[0]["reference"] for i in usd] == ["ACH single", "RUN 2026-47"]


def test_a_batch_payment_run_with_a_bad_field_is_refused_at_the_field(finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[i["id"] for i in usd]))
    before = money_state(admin_engine, world.org_a)
    for data, field in (
        ({"reference": ""}, "reference"),
        ({"paid_at": (date.today() + timedelta(days=3)).isoformat()}, "paid_at"),
        ({"paid_at": (date.today() - timedelta(days=1)).isoformat()}, "paid_at"),
    ):  # Build was approved today
        response = pay_batch(finance, batch_id, **data)
        assert response.status_code == 422, data
        assert field_error(response.get_data(as_text=True), field), data
    assert money_state(admin_engine, world.org_a) == before


def test_a_second_payment_run_for_a_paid_batch_is_a_conflict(finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    assert pay_batch(finance, batch_id).status_code == 303
    before = money_state(admin_engine, world.org_a)
    assert pay_batch(finance, batch_id, reference="RUN again").status_code == 409
    assert money_state(admin_engine, world.org_a) == before


def test_a_voided_batch_cannot_be_paid(admin, finance, world, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    assert void(admin, batch_id, "Wrong layout.").status_code == 303
    before = money_state(admin_engine, world.org_a)
    assert pay_batch(finance, batch_id).status_code == 409
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "state, message",
    [
        ("paid", "Every payment of batch 1 is recorded already."),
        ("voided", "Batch 1 is void; its payments go into a new export."),
    ],
)
def test_a_refused_payment_run_says_why(admin, finance, admin_engine, usd, state, message):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    if state == "paid":
        assert pay_batch(finance, batch_id).status_code == 303
    else:
        assert void(admin, batch_id, "Wrong layout.").status_code == 303
    response = pay_batch(finance, batch_id, reference="RUN again")
    assert response.status_code == 409
    assert message in html_lib.unescape(response.get_data(as_text=True))


def test_the_admin_who_approved_a_payment_in_the_batch_cannot_record_the_run(
    admin, finance, world, app_sessions, admin_engine
):
    eid = active_engagement(app_sessions, world, title="Garage")
    mids = milestone_ids(admin_engine, eid)
    invoices = [approve(app_sessions, world, mids[0], by=world.admin), approve(app_sessions, world, mids[1])]
    batch_id = batch_id_of(export(finance, invoice_ids=invoices))
    before = money_state(admin_engine, world.org_a)
    response = pay_batch(admin, batch_id)
    assert response.status_code == 403
    assert "Segregation of duties: you approved" in html_lib.unescape(response.get_data(as_text=True))
    assert money_state(admin_engine, world.org_a) == before
    assert pay_batch(finance, batch_id).status_code == 303


def test_the_owner_cannot_record_a_batch_payment(app, login, world, finance, admin_engine, usd):
    batch_id = batch_id_of(export(finance, invoice_ids=[usd[0]["id"]]))
    owner = signed_in(app, login, world.owner)
    before = money_state(admin_engine, world.org_a)
    token = csrf_token(owner, "/")
    response = owner.post(
        f"/batches/{batch_id}/pay",
        data={"paid_at": date.today().isoformat(), "reference": "R", "method": "ach", "csrf_token": token},
    )
    assert response.status_code == 403
    assert money_state(admin_engine, world.org_a) == before


def test_a_batch_made_through_the_services_is_shown_with_its_payments(
    finance, world, app_sessions, admin_engine, usd, eur
):
    batch_id = export_as(app_sessions, world.finance, world.org_a, [eur["id"]], preset="xero")
    html = finance.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "1 payment · €450.00 net · Xero bills" in visible_text(html)
    assert "Contractor Y" in visible_text(table_row(html, eur["invoice_number"]))


def test_a_large_batch_shows_its_payments_fifty_at_a_time_in_its_files_order(
    finance, world, app_sessions, admin_engine
):
    eid = active_engagement(app_sessions, world, title="Fit-out", rows=many_rows(53))
    invoices = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, eid))
    numbers = [invoice_row(admin_engine, i)["invoice_number"] for i in invoices]
    batch = batch_id_of(export(finance, invoice_ids=invoices))
    shown, page = [], finance.get(f"/batches/{batch}").get_data(as_text=True)
    assert "Showing 1–50 of 53." in visible_text(page)
    while True:
        shown += re.findall(r'<a href="/invoices/[0-9a-f-]+">([A-Z0-9]+-\d+)</a>', page)
        later = re.search(r'<a href="([^"]+)" rel="next">', page)
        if not later:
            break
        page = finance.get(html_lib.unescape(later.group(1))).get_data(as_text=True)
    assert shown == numbers  # every one once, in the file's (invoice number) order
    assert "Showing 51–53 of 53." in visible_text(page)
