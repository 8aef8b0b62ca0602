"""One payment authorization's page (/invoices/<id>) and recording its payment (POST /invoices/<id>/pay).

Finance and admins see the amounts, the record and the ledger, and record the payment once: a date
between the approval and today, a reference and a method, or a 422 with the message at the field and
nothing written. Whoever approved the work cannot record its payment while segregation of duties is on.
A contractor sees its own payments (not the fee, not the ledger); another contractor's, or another
organization's, is a 404.
"""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta

import pytest
from kit.money_pages import (
    active_engagement,
    approve,
    approve_milestones,
    approved_engagement,
    export_as,
    invoice_row,
    milestone_ids,
    money_state,
    pay_as,
    payments_of,
)
from kit.web import HTMX, csrf_token, field_error, flashes, signed_in, table_row, visible_text

from backoffice.web import payments as payments_web
from backoffice.web.display import short_day as format_day


def page(invoice_id) -> str:
    return f"/invoices/{invoice_id}"


def pay(client, invoice_id, *, paid_at=None, reference="ACH 20261121-7", method="ach", htmx=False):
    data = {
        "paid_at": date.today().isoformat() if paid_at is None else paid_at,
        "reference": reference,
        "method": method,
    }
    token = csrf_token(client, page(invoice_id))
    if htmx:
        return client.post(f"{page(invoice_id)}/pay", data=data, headers={**HTMX, "X-CSRFToken": token})
    return client.post(f"{page(invoice_id)}/pay", data={**data, "csrf_token": token})


def amounts(html: str) -> dict[str, str]:
    table = re.search(r'<table class="amounts">.*?</table>', html, re.DOTALL)
    assert table, "the amounts table"
    return {
        visible_text(th): visible_text(td)
        for th, td in re.findall(r'<th scope="row">(.*?)</th><td class="num">(.*?)</td>', table.group(0), re.DOTALL)
    }


def has_pay_form(html: str, invoice_id) -> bool:
    return f'action="/invoices/{invoice_id}/pay"' in html


@pytest.fixture
def invoice(world, app_sessions, admin_engine) -> dict:
    """Design, $1,234.55 with 10% retainage and a 2.5% service fee, approved by the project owner through
    the services."""
    eid = active_engagement(app_sessions, world, title="Kitchen renovation", fee="2.5")
    invoice_id = approve(app_sessions, world, milestone_ids(admin_engine, eid)[0])
    return dict(invoice_row(admin_engine, invoice_id))


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


# --- the page --------------------------------------------------------------------------------------


def test_finance_sees_the_amounts_the_record_and_the_ledger(finance, invoice):
    response = finance.get(page(invoice["id"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert amounts(html) == {
        "Gross (approved work)": "$1,234.55",
        "Retainage withheld (10%)": "− $123.46",  # 123.455 rounded half up
        "Net payable to the contractor": "$1,111.09",
        "Service fee (2.5%)": "$30.86",  # 30.86375
        "Total billed (gross + fee)": "$1,265.41",
    }
    assert invoice["invoice_number"] in html and "Authorized" in html
    record = visible_text(html)
    assert "by Omar Owner (approval of revision 1, 0 evidence files)" in record
    assert f"Due {format_day(invoice['due_date'])}" in record
    assert invoice["due_date"] == invoice["issued_on"] + timedelta(days=30)
    assert f'href="/milestones/{invoice["milestone_id"]}#revisions"' in html
    ledger = re.search(r'<table class="striped ledger[^"]*">.*?</table>', html, re.DOTALL)
    assert ledger, "the ledger"
    lines = [visible_text(r) for r in re.findall(r"<tr>(.*?)</tr>", ledger.group(0), re.DOTALL)[1:]]
    assert lines == [
        "authorized work expense $1,234.55",
        "authorized service fee expense $30.86",
        "authorized service fees payable $30.86",
        "authorized retainage payable $123.46",
        "authorized accounts payable $1,111.09",
    ]


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_an_admin_who_did_not_approve_get_the_payment_form(app, login, world, invoice, who):
    html = signed_in(app, login, getattr(world, who)).get(page(invoice["id"])).get_data(as_text=True)
    assert has_pay_form(html, invoice["id"])
    assert "Record payment of $1,111.09" in html
    assert "You authorized this payment" not in html


def test_the_project_owner_sees_the_page_without_the_payment_form(app, login, world, invoice):
    response = signed_in(app, login, world.owner).get(page(invoice["id"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "$1,111.09" in html
    assert not has_pay_form(html, invoice["id"])


def test_an_unknown_or_malformed_invoice_id_is_not_found(finance, invoice):
    assert finance.get(page("00000000-0000-0000-0000-000000000000")).status_code == 404
    assert finance.get(page(invoice["invoice_number"])).status_code == 404


def test_another_organizations_invoice_is_not_found_and_cannot_be_paid(app, login, world, admin_engine, invoice):
    admin_b = signed_in(app, login, world.admin_b)
    assert admin_b.get(page(invoice["id"])).status_code == 404
    before = money_state(admin_engine, world.org_a)
    token = csrf_token(admin_b, "/payments/")
    response = admin_b.post(
        f"{page(invoice['id'])}/pay",
        data={"paid_at": date.today().isoformat(), "reference": "X", "method": "ach", "csrf_token": token},
    )
    assert response.status_code == 404
    assert money_state(admin_engine, world.org_a) == before


# --- recording the payment -------------------------------------------------------------------------


def test_recording_the_payment_redirects_to_the_invoice_now_paid(finance, world, admin_engine, invoice):
    response = pay(finance, invoice["id"], reference="ACH 20261121-7", method="wire")
    assert response.status_code == 303
    assert response.headers["Location"] == page(invoice["id"])
    after = invoice_row(admin_engine, invoice["id"])
    assert (after["status"], after["paid_at"]) == ("paid", date.today())
    (payment,) = payments_of(admin_engine, invoice["id"])
    assert (
        payment["amount_minor"],
        payment["currency"],
        payment["paid_at"],
        payment["reference"],
        payment["method"],
        payment["source"],
        payment["recorded_by"],
    ) == (111109, "USD", date.today(), "ACH 20261121-7", "wire", "manual", world.finance.id)
    html = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Payment of {invoice['invoice_number']} recorded (ACH 20261121-7)." in flashes(html)
    assert (
        f"Paid {format_day(date.today())} · Wire · reference ACH 20261121-7 · recorded by Fiona Finance"
        in visible_text(html)
    )
    assert not has_pay_form(html, invoice["id"])
    ledger = visible_text(re.search(r'<table class="striped ledger[^"]*">.*?</table>', html, re.DOTALL).group(0))
    assert "paid accounts payable $1,111.09" in ledger and "paid cash $1,111.09" in ledger


def test_a_payment_dated_on_the_approval_day_in_the_past_is_accepted(finance, world, app_sessions, admin_engine):
    eid = active_engagement(app_sessions, world, title="Porch")
    (invoice_id, _) = approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, eid), days_ago=5)
    issued = invoice_row(admin_engine, invoice_id)["issued_on"]
    assert issued == date.today() - timedelta(days=5)
    assert pay(finance, invoice_id, paid_at=issued.isoformat()).status_code == 303
    assert payments_of(admin_engine, invoice_id)[0]["paid_at"] == issued


BAD_PAYMENTS = {
    "no date": ({"paid_at": ""}, "paid_at", "date paid"),
    "not a date": ({"paid_at": "21/11/2026"}, "paid_at", ""),
    "future date": ({"paid_at": (date.today() + timedelta(days=1)).isoformat()}, "paid_at", "is in the future"),
    "empty reference": ({"reference": "   "}, "reference", "payment reference"),
    "unknown method": ({"method": "bitcoin"}, "method", "Choose how it was paid."),
}


@pytest.mark.parametrize("case", BAD_PAYMENTS, ids=list(BAD_PAYMENTS))
def test_a_bad_payment_is_refused_at_its_field_and_nothing_is_written(finance, world, admin_engine, invoice, case):
    data, field, words = BAD_PAYMENTS[case]
    before = money_state(admin_engine, world.org_a)
    response = pay(finance, invoice["id"], **data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = field_error(html, field)
    assert message and words in message, message
    assert money_state(admin_engine, world.org_a) == before
    # The form comes back with what was typed, ready to correct.
    assert has_pay_form(html, invoice["id"])
    if field != "reference":
        assert 'value="ACH 20261121-7"' in html


def test_a_payment_dated_before_its_approval_is_refused(finance, world, admin_engine, invoice):
    before = money_state(admin_engine, world.org_a)
    response = pay(finance, invoice["id"], paid_at=(invoice["issued_on"] - timedelta(days=1)).isoformat())
    assert response.status_code == 422
    assert "cannot predate its authorization" in field_error(response.get_data(as_text=True), "paid_at")
    assert money_state(admin_engine, world.org_a) == before


def test_an_htmx_payment_with_a_bad_field_gets_the_form_fragment_back(finance, world, admin_engine, invoice):
    response = pay(finance, invoice["id"], reference="", htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="pay-form"')
    assert "<html" not in html
    assert field_error(html, "reference")


def test_an_htmx_payment_that_succeeds_sends_the_browser_to_the_invoice(finance, admin_engine, invoice):
    response = pay(finance, invoice["id"], htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == page(invoice["id"])
    assert invoice_row(admin_engine, invoice["id"])["status"] == "paid"


def test_a_second_payment_is_a_conflict_saying_it_is_already_paid(app, login, world, admin_engine, finance, invoice):
    admin = signed_in(app, login, world.admin)
    token = csrf_token(admin, page(invoice["id"]))  # the admin's tab was opened before finance paid
    assert pay(finance, invoice["id"], reference="ACH 1").status_code == 303
    before = money_state(admin_engine, world.org_a)
    response = admin.post(
        f"{page(invoice['id'])}/pay",
        data={"paid_at": date.today().isoformat(), "reference": "ACH 2", "method": "ach", "csrf_token": token},
    )
    assert response.status_code == 409
    message = html_lib.unescape(response.get_data(as_text=True))
    assert (
        f"{invoice['invoice_number']} was already paid on {format_day(date.today())} (reference ACH 1), "
        "recorded by Fiona Finance. Nothing was changed."
    ) in message
    assert money_state(admin_engine, world.org_a) == before
    assert len(payments_of(admin_engine, invoice["id"])) == 1


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_cannot_record_a_payment(app, login, world, admin_engine, invoice, who):
    client = signed_in(app, login, getattr(world, who))
    before = money_state(admin_engine, world.org_a)
    token = csrf_token(client, page(invoice["id"]))
    response = client.post(
        f"{page(invoice['id'])}/pay",
        data={"paid_at": date.today().isoformat(), "reference": "ACH 1", "method": "ach", "csrf_token": token},
    )
    assert response.status_code == 403
    assert money_state(admin_engine, world.org_a) == before


# --- segregation of duties -------------------------------------------------------------------------


@pytest.fixture
def approved_by_admin(world, app_sessions, admin_engine) -> dict:
    eid = active_engagement(app_sessions, world, title="Garage")
    return dict(
        invoice_row(admin_engine, approve(app_sessions, world, milestone_ids(admin_engine, eid)[0], by=world.admin))
    )


def test_the_admin_who_approved_cannot_record_the_payment(app, login, world, admin_engine, approved_by_admin):
    admin = signed_in(app, login, world.admin)
    html = admin.get(page(approved_by_admin["id"])).get_data(as_text=True)
    assert "You authorized this payment." in html
    before = money_state(admin_engine, world.org_a)
    response = pay(admin, approved_by_admin["id"])
    assert response.status_code == 403
    refused = re.search(r'<p class="flash flash-error" role="alert">([^<]*)</p>', response.get_data(as_text=True))
    assert refused and html_lib.unescape(refused.group(1)).startswith(
        f"Segregation of duties: you approved {approved_by_admin['invoice_number']}, "
        "so someone else in finance must record the payment."
    )
    assert money_state(admin_engine, world.org_a) == before


def test_finance_records_the_payment_the_admin_approved(finance, admin_engine, approved_by_admin):
    assert pay(finance, approved_by_admin["id"]).status_code == 303
    assert invoice_row(admin_engine, approved_by_admin["id"])["status"] == "paid"


# --- a contractor's view ---------------------------------------------------------------------------


def test_a_contractor_sees_its_own_invoice_without_the_fee_or_the_ledger(app, login, world, invoice):
    contractor = signed_in(app, login, world.contractor_x_user)
    response = contractor.get(page(invoice["id"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert amounts(html) == {
        "Gross (approved work)": "$1,234.55",
        "Retainage withheld (10%)": "− $123.46",
        "Net payable to the contractor": "$1,111.09",
    }
    assert "Service fee" not in html and "$1,265.41" not in html and "$30.86" not in html
    assert "Ledger" not in html and "accounts payable" not in html
    assert not has_pay_form(html, invoice["id"])
    assert 'href="/invoices/"' in html  # the breadcrumb leads to its payments


def test_a_contractor_sees_the_payment_but_not_who_recorded_it(app, login, world, app_sessions, invoice):
    pay_as(app_sessions, world.finance, world.org_a, invoice["id"], reference="ACH 42")
    html = signed_in(app, login, world.contractor_x_user).get(page(invoice["id"])).get_data(as_text=True)
    shown = visible_text(html)
    assert f"Paid {format_day(date.today())} · ACH / bank transfer · reference ACH 42" in shown
    assert "Fiona Finance" not in shown


@pytest.mark.parametrize("who", ["contractor_y_user", "contractor_z_user"])
def test_another_contractors_invoice_is_not_found(app, login, world, invoice, who):
    assert signed_in(app, login, getattr(world, who)).get(page(invoice["id"])).status_code == 404


def test_a_contractors_payments_page_lists_its_own_payments_only(app, login, world, app_sessions, admin_engine):
    _, (x_design, x_build) = approved_engagement(app_sessions, admin_engine, world)
    _, (y_survey,) = approved_engagement(
        app_sessions,
        admin_engine,
        world,
        contractor_id=world.contractor_y,
        rows=(("Survey", "", "500.00", "2030-02-01"),),
        title="Loft conversion",
    )
    pay_as(app_sessions, world.finance, world.org_a, x_design, reference="ACH 7")
    x_numbers = {invoice_row(admin_engine, i)["invoice_number"] for i in (x_design, x_build)}
    y_number = invoice_row(admin_engine, y_survey)["invoice_number"]

    response = signed_in(app, login, world.contractor_x_user).get("/invoices/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert set(re.findall(r"<strong>([A-Z0-9]+-\d{6})</strong>", html)) == x_numbers
    assert y_number not in html and "Loft conversion" not in html
    design = visible_text(table_row(html, invoice_row(admin_engine, x_design)["invoice_number"]))
    assert "Paid" in design and f"paid {format_day(date.today())}" in design
    # Retainage held for X: $123.46 + $200.01 (10% of $2,000.05, rounded half up).
    assert "Retainage held for you: $323.47 ." in visible_text(html)

    y_html = signed_in(app, login, world.contractor_y_user).get("/invoices/").get_data(as_text=True)
    assert re.findall(r"<strong>([A-Z0-9]+-\d{6})</strong>", y_html) == [y_number]


def test_a_contractors_payments_page_goes_back_in_time_a_page_at_a_time(
    app, login, world, app_sessions, admin_engine, monkeypatch
):
    monkeypatch.setattr(payments_web, "MINE_PER_PAGE", 1)
    _, (design, build) = approved_engagement(app_sessions, admin_engine, world)
    newer, older = (invoice_row(admin_engine, i)["invoice_number"] for i in (build, design))  # same day: by number
    client = signed_in(app, login, world.contractor_x_user)
    numbers = lambda html: re.findall(r"<strong>([A-Z0-9]+-\d{6})</strong>", html)  # noqa: E731

    first = client.get("/invoices/").get_data(as_text=True)
    assert numbers(first) == [newer] and "Showing 1–1." in visible_text(first)
    older_link = html_lib.unescape(re.search(r'<a href="([^"]+)" rel="next">Older', first).group(1))
    second = client.get(older_link).get_data(as_text=True)
    assert numbers(second) == [older] and 'rel="next"' not in second
    # The retainage held is the contractor's whole, on every page.
    assert "Retainage held for you: $323.47 ." in visible_text(second)
    newer_link = html_lib.unescape(re.search(r'<a href="([^"]+)" rel="prev">', second).group(1))
    assert numbers(client.get(newer_link).get_data(as_text=True)) == [newer]


def test_a_contractor_without_payments_is_told_none_yet(app, login, world):
    html = signed_in(app, login, world.contractor_y_user).get("/invoices/").get_data(as_text=True)
    assert "No payments yet." in html


@pytest.mark.parametrize("who, target", [("finance", "/payments/"), ("admin", "/payments/"), ("owner", "/retainage/")])
def test_staff_opening_the_contractors_payments_page_are_sent_to_their_own(app, login, world, who, target):
    response = signed_in(app, login, getattr(world, who)).get("/invoices/")
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == target


# --- CSRF ------------------------------------------------------------------------------------------


def test_every_money_form_refuses_a_post_without_a_valid_csrf_token(
    app, login, world, app_sessions, admin_engine, invoice
):
    batch_id = export_as(app_sessions, world.finance, world.org_a, [invoice["id"]])
    admin = signed_in(app, login, world.admin)  # the owner approved: the admin could do each of these with a token
    remittance = f"Invoice number,Amount,Paid date,Reference\n{invoice['invoice_number']},1111.09,{date.today()},R\n"
    paying = {"paid_at": date.today().isoformat(), "reference": "ACH 1", "method": "ach"}
    posts = [
        (f"{page(invoice['id'])}/pay", paying),
        ("/batches/", {"due_by": date.today().isoformat(), "currency": "USD"}),
        (f"/batches/{batch_id}/void", {"reason": "Wrong layout."}),
        (f"/batches/{batch_id}/pay", paying),
        ("/payments/remittance/import", {"csv_text": remittance, "method": "ach"}),
        (f"/engagements/{invoice['engagement_id']}/retainage/release", {"release_reason": "Early."}),
    ]
    before = money_state(admin_engine, world.org_a)
    for path, data in posts:
        assert admin.post(path, data=data).status_code == 400, path
        assert admin.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
        assert admin.post(path, data=data, headers=HTMX).status_code == 400, path  # htmx without X-CSRFToken
    assert money_state(admin_engine, world.org_a) == before
