"""Bulk work on the payment queue (issue 22, item 5): the selection's controls sit above the table; finance ticks
payments, or selects every payment the filter matches (read again by the server when the action runs, and run only if
it is the count and total the person confirmed), and exports them as one AP batch or holds them with one reason. Each
question names the count and total; a refusal comes back at the controls, 4xx, with nothing changed."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date

import pytest
from kit.money_pages import active_engagement, approve_milestones, invoice_row, milestone_ids, money_state
from kit.web import csrf_token, flashes, signed_in, visible_text
from sqlalchemy import text


@pytest.fixture
def queue(world, app_sessions, admin_engine) -> dict:
    """Contractor X's kitchen (USD, net $1,111.09 + $1,800.04 = $2,911.13) and contractor Y's loft (EUR, net
    €450.00): three authorized payments, each with 10% retainage withheld."""
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
    design, build = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, kitchen), days_ago=3)
    (survey,) = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, loft))
    return {"design": design, "build": build, "survey": survey}


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def confirm_of(html: str, label: str) -> str:
    button = re.search(rf"<button\b([^>]*)>{re.escape(label)}</button>", html)
    assert button, f"no button {label!r}"
    asked = re.search(r'data-confirm="([^"]+)"', button.group(1))
    assert asked, f"{label!r} asks nothing"
    return html_lib.unescape(asked.group(1))


def hidden(html: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name}"
    return html_lib.unescape(found.group(1))


def selection_of(html: str) -> str:
    found = re.search(r'<p class="bulk-selection"[^>]*>(.*?)</p>', html, re.S)
    assert found, "the selection's line"
    return visible_text(found.group(1))


def bulk(client, **fields):
    data = {"csrf_token": csrf_token(client, "/payments/"), **fields}
    return client.post("/payments/selection", data=data)


def statuses(admin_engine, queue) -> dict[str, str]:
    return {name: invoice_row(admin_engine, i)["status"] for name, i in queue.items()}


def live_holds(admin_engine, queue) -> list:
    """The queue's payments a live hold stops, in invoice-number order."""
    with admin_engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "select h.invoice_id from holds h join invoices i on i.id = h.invoice_id"
                    " where h.released_at is null and h.invoice_id = any(:ids) order by i.number"
                ),
                {"ids": list(queue.values())},
            ).scalars()
        )


# --- the controls ----------------------------------------------------------------------------------------


def test_the_selection_controls_and_actions_come_before_the_table(finance, queue):
    html = page(finance, "/payments/")
    controls, table = html.index('class="bulk-bar"'), html.index("<table")
    assert controls < table
    assert html.index(">Export selected</button>") < table and html.index(">Hold selected</button>") < table


def test_the_header_box_selects_every_row_of_the_page_and_each_row_carries_its_net_for_the_live_total(finance, queue):
    html = page(finance, "/payments/")
    assert re.search(r'<input type="checkbox" data-select-page aria-label="Select all payments on this page"', html)
    design = invoice_row_html(html, queue["design"])
    assert 'data-currency="USD"' in design and 'data-net-minor="111109"' in design
    assert 'data-symbol="$"' in design and 'data-exp="2"' in design


def invoice_row_html(html: str, invoice_id) -> str:
    found = re.search(rf'<input type="checkbox" name="invoice_id" value="{invoice_id}"[^>]*>', html)
    assert found, "the row's checkbox"
    return found.group(0)


def test_every_payment_that_matches_the_filter_is_selected_with_its_count_and_total_per_currency(finance, queue):
    html = page(finance, "/payments/?select=matching")
    assert selection_of(html).startswith("All 3 matching payments selected, €450.00 and $2,911.13 total.")
    assert hidden(html, "scope") == "matching"
    assert confirm_of(html, "Export selected") == (
        "Export all 3 matching payments, €450.00 and $2,911.13, to a new AP batch?"
    )


def test_a_filter_narrows_the_matching_selection_and_its_question(finance, world, queue):
    html = page(finance, f"/payments/?contractor_id={world.contractor_x}&select=matching")
    assert selection_of(html).startswith("All 2 matching payments selected, $2,911.13 total.")
    assert confirm_of(html, "Export selected") == "Export all 2 matching payments, $2,911.13, to a new AP batch?"
    assert confirm_of(html, "Hold selected") == "Hold all 2 matching payments, $2,911.13, until the hold is released?"


def test_ticked_rows_ask_a_question_the_page_completes_with_their_total(finance, queue):
    html = page(finance, "/payments/")
    assert confirm_of(html, "Export selected") == "Export the selected payments to a new AP batch?"
    assert 'data-confirm-verb="Export" data-confirm-end="to a new AP batch?"' in html


# --- actions -----------------------------------------------------------------------------------------------


def test_exporting_every_matching_payment_exports_exactly_the_rows_of_the_filter(finance, world, admin_engine, queue):
    html = page(finance, f"/payments/?contractor_id={world.contractor_x}&select=matching")
    response = bulk(
        finance,
        action="export",
        scope="matching",
        matching=hidden(html, "matching"),
        status="open",
        contractor_id=str(world.contractor_x),
        preset="",
    )
    assert response.status_code == 303, response.status_code
    batch_page = page(finance, response.headers["Location"])
    assert "Batch 1: 2 payments, $2,911.13. Download the file below" in " ".join(flashes(batch_page))
    assert statuses(admin_engine, queue) == {"design": "exported", "build": "exported", "survey": "approved"}
    assert (
        invoice_row(admin_engine, queue["design"])["batch_id"] == invoice_row(admin_engine, queue["build"])["batch_id"]
    )


def test_exporting_the_ticked_rows_exports_those_and_no_other(finance, admin_engine, queue):
    response = bulk(finance, action="export", invoice_id=[str(queue["build"])], preset="")
    assert response.status_code == 303, response.status_code
    assert "Batch 1: 1 payment, $1,800.04" in " ".join(flashes(page(finance, response.headers["Location"])))
    assert statuses(admin_engine, queue) == {"design": "approved", "build": "exported", "survey": "approved"}


def test_a_matching_selection_that_changed_since_it_was_confirmed_is_refused_and_shown_again(
    finance, world, admin_engine, queue
):
    before = money_state(admin_engine, world.org_a)
    # What the person saw: one payment, $1,111.09; the filter now matches two.
    response = bulk(
        finance, action="export", scope="matching", matching="1:USD=111109", contractor_id=str(world.contractor_x)
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "changed since they were selected: now 2 payments, $2,911.13. Nothing changed" in html
    assert hidden(html, "matching") == "2:USD=291113"  # to confirm again, with the new total in the question
    assert confirm_of(html, "Export selected") == "Export all 2 matching payments, $2,911.13, to a new AP batch?"
    assert money_state(admin_engine, world.org_a) == before


def test_exporting_every_matching_payment_in_two_currencies_is_refused_at_the_controls(
    finance, world, admin_engine, queue
):
    before = money_state(admin_engine, world.org_a)
    html = page(finance, "/payments/?select=matching")
    response = bulk(finance, action="export", scope="matching", matching=hidden(html, "matching"), status="open")
    assert response.status_code == 422
    refused = response.get_data(as_text=True)
    assert re.search(r'<p class="flash flash-error" role="alert" id="bulk-error">A batch is in one currency', refused)
    assert refused.index('id="bulk-error"') < refused.index("<table")
    assert money_state(admin_engine, world.org_a) == before


def test_exporting_nothing_is_refused_with_a_message_at_the_controls(finance, world, admin_engine, queue):
    before = money_state(admin_engine, world.org_a)
    response = bulk(finance, action="export", preset="")
    assert response.status_code == 422
    assert "Nothing is selected." in response.get_data(as_text=True)
    assert money_state(admin_engine, world.org_a) == before


def test_a_held_payment_among_the_ticked_is_refused_and_nothing_is_exported(finance, world, admin_engine, queue):
    assert (
        bulk(finance, action="hold", invoice_id=[str(queue["design"])], reason="Lien waiver missing").status_code == 303
    )
    before = money_state(admin_engine, world.org_a)
    response = bulk(finance, action="export", invoice_id=[str(queue["design"]), str(queue["build"])])
    assert response.status_code == 422
    assert "cannot be exported now" in response.get_data(as_text=True)
    assert money_state(admin_engine, world.org_a) == before


def test_the_matching_selection_leaves_out_what_a_hold_stops(finance, world, queue):
    bulk(finance, action="hold", invoice_id=[str(queue["design"])], reason="Lien waiver missing")
    html = page(finance, f"/payments/?contractor_id={world.contractor_x}&select=matching")
    assert selection_of(html).startswith("All 1 matching payment selected, $1,800.04 total.")


def test_holding_the_ticked_payments_holds_each_with_the_reason_and_says_the_total(finance, admin_engine, queue):
    response = bulk(
        finance, action="hold", invoice_id=[str(queue["design"]), str(queue["build"])], reason="Lien waiver missing"
    )
    assert response.status_code == 303
    assert "Held 2 payments, $2,911.13: nothing held is exported or paid." in flashes(
        page(finance, response.headers["Location"])
    )
    assert live_holds(admin_engine, queue) == [queue["design"], queue["build"]]


def test_a_hold_without_a_reason_holds_nothing(finance, world, admin_engine, queue):
    response = bulk(finance, action="hold", invoice_id=[str(queue["design"])], reason="  ")
    assert response.status_code == 422
    assert live_holds(admin_engine, queue) == []


def test_holding_a_payment_held_already_holds_none_of_the_selection(finance, admin_engine, queue):
    bulk(finance, action="hold", invoice_id=[str(queue["build"])], reason="First")
    response = bulk(finance, action="hold", invoice_id=[str(queue["design"]), str(queue["build"])], reason="Second")
    assert response.status_code == 409
    assert "is on hold already; nothing was held." in response.get_data(as_text=True)
    assert live_holds(admin_engine, queue) == [queue["build"]]


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "shred", "invoice_id": "x"},
        {"action": "export", "invoice_id": "not-an-id"},
        {"action": "export", "scope": "matching", "matching": "\x00", "status": "\x00", "currency": "\x00"},
        {"action": "hold", "invoice_id": "\x00", "reason": "\x00"},
    ],
    ids=["unknown action", "malformed id", "nul bytes in the filter", "nul bytes in a hold"],
)
def test_malformed_requests_are_refused_with_a_4xx_and_change_nothing(finance, world, admin_engine, queue, fields):
    before = money_state(admin_engine, world.org_a)
    response = bulk(finance, **fields)
    assert 400 <= response.status_code < 500, response.status_code
    assert money_state(admin_engine, world.org_a) == before and live_holds(admin_engine, queue) == []


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_cannot_reach_the_bulk_actions(app, login, world, admin_engine, queue, who):
    client = signed_in(app, login, getattr(world, who))
    before = money_state(admin_engine, world.org_a)
    response = client.post(
        "/payments/selection",
        data={"csrf_token": csrf_token(client, "/"), "action": "export", "invoice_id": [str(queue["design"])]},
    )
    assert response.status_code == 403
    assert money_state(admin_engine, world.org_a) == before


def test_another_organizations_finance_cannot_export_these_payments(app, login, world, admin_engine, queue):
    client = signed_in(app, login, world.admin_b)
    before = money_state(admin_engine, world.org_a)
    response = client.post(
        "/payments/selection",
        data={"csrf_token": csrf_token(client, "/payments/"), "action": "export", "invoice_id": [str(queue["design"])]},
    )
    assert response.status_code == 404
    html = page(client, "/payments/?select=matching")
    assert "No payment that matches the filter can be selected" in html or "Nothing is waiting for payment." in html
    assert money_state(admin_engine, world.org_a) == before


# --- batches -----------------------------------------------------------------------------------------------


def test_recording_a_batch_as_paid_and_voiding_it_ask_with_the_batch_amounts(app, login, world, finance, queue):
    response = bulk(finance, action="export", invoice_id=[str(queue["design"]), str(queue["build"])])
    assert response.status_code == 303
    batch = response.headers["Location"]
    assert confirm_of(page(finance, batch), "Record batch as paid") == (
        "Record all 2 unpaid payments of batch 1, $2,911.13 net, as paid?"
    )
    admin = signed_in(app, login, world.admin)
    assert confirm_of(page(admin, batch), "Void batch 1") == (
        "Void batch 1 (2 payments, $2,911.13 net)? Its payments return to the queue."
    )


def test_the_batch_tables_label_each_cell_for_phones(finance, queue):
    response = bulk(finance, action="export", invoice_id=[str(queue["design"])])
    batch_page = page(finance, response.headers["Location"])
    assert '<table class="striped payments stack">' in batch_page
    assert '<td class="num" data-label="Net payable">$1,111.09</td>' in batch_page
    listing = page(finance, "/batches/")
    assert '<table class="striped batches stack">' in listing and '<td class="num" data-label="Total (net)">' in listing


# --- recording a payment run ---------------------------------------------------------------------------------


def test_recording_the_ticked_payments_pays_each_in_one_run_and_says_the_total(finance, admin_engine, queue):
    html = page(finance, "/payments/")
    assert confirm_of(html, "Record selected as paid") == "Record the selected payments as paid?"
    response = bulk(
        finance,
        action="record",
        invoice_id=[str(queue["design"]), str(queue["build"])],
        paid_at=date.today().isoformat(),
        reference="ACH 4410",
        method="ach",
    )
    assert response.status_code == 303, response.status_code
    assert "Recorded 2 payments, $2,911.13 as paid (ACH 4410)." in flashes(page(finance, response.headers["Location"]))
    assert statuses(admin_engine, queue) == {"design": "paid", "build": "paid", "survey": "approved"}
    with admin_engine.connect() as conn:
        runs = conn.execute(
            text("select count(distinct run_id), sum(amount_minor) from payments where invoice_id = any(:ids)"),
            {"ids": [queue["design"], queue["build"]]},
        ).one()
    assert tuple(runs) == (1, 291113)


def test_recording_without_a_reference_records_nothing(finance, world, admin_engine, queue):
    before = money_state(admin_engine, world.org_a)
    response = bulk(
        finance, action="record", invoice_id=[str(queue["design"])], paid_at=date.today().isoformat(), reference=""
    )
    assert response.status_code == 422
    assert 'id="bulk-error"' in response.get_data(as_text=True)
    assert money_state(admin_engine, world.org_a) == before


def test_recording_every_matching_payment_asks_with_their_total(finance, world, queue):
    html = page(finance, f"/payments/?contractor_id={world.contractor_x}&select=matching")
    assert confirm_of(html, "Record selected as paid") == "Record all 2 matching payments, $2,911.13, as paid?"


# --- exactly once ------------------------------------------------------------------------------------------


def test_the_same_matching_export_sent_twice_makes_one_batch(finance, world, admin_engine, queue):
    html = page(finance, f"/payments/?contractor_id={world.contractor_x}&select=matching")
    fields = {"action": "export", "scope": "matching", "matching": hidden(html, "matching")}
    fields["contractor_id"] = str(world.contractor_x)
    assert bulk(finance, **fields).status_code == 303
    before = money_state(admin_engine, world.org_a)
    again = bulk(finance, **fields)
    assert again.status_code == 422
    assert "No payment that can be selected matches the filter; nothing changed." in again.get_data(as_text=True)
    assert money_state(admin_engine, world.org_a) == before
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from ap_export_batches where org_id = :o"), {"o": world.org_a}).scalar()
            == 1
        )


def test_the_same_payment_run_recorded_twice_pays_once(finance, world, admin_engine, queue):
    fields = {"action": "record", "invoice_id": [str(queue["design"])], "reference": "ACH 1", "method": "ach"}
    fields["paid_at"] = date.today().isoformat()
    assert bulk(finance, **fields).status_code == 303
    before = money_state(admin_engine, world.org_a)
    again = bulk(finance, **fields)
    assert again.status_code == 409
    assert money_state(admin_engine, world.org_a) == before


# --- Stripe ------------------------------------------------------------------------------------------------


def test_paying_every_matching_payment_by_stripe_opens_the_review_of_exactly_those(
    finance, world, admin_engine, queue, ready, configured
):
    html = page(finance, f"/payments/?contractor_id={world.contractor_x}&select=matching")
    response = bulk(
        finance,
        action="stripe",
        scope="matching",
        matching=hidden(html, "matching"),
        contractor_id=str(world.contractor_x),
    )
    assert response.status_code == 200
    review = response.get_data(as_text=True)
    assert "Send 2 payments by Stripe" in review and "$2,911.13" in review
    assert sorted(re.findall(r'name="invoice_id" value="([0-9a-f-]{36})"', review)) == sorted(
        [str(queue["design"]), str(queue["build"])]
    )
    with admin_engine.connect() as conn:
        assert (
            conn.execute(text("select count(*) from payout_attempts where org_id = :o"), {"o": world.org_a}).scalar()
            == 0
        )
