"""Importing a remittance file (/payments/remittance): finance uploads the CSV their bank sent, every row
is checked against the invoice it names and shown; only a file whose every row is right can be imported,
and then all of it is recorded at once. A file with any bad row records nothing."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from kit.money_pages import (
    active_engagement,
    approve,
    approve_milestones,
    invoice_row,
    milestone_ids,
    money_state,
    pay_as,
    payments_of,
)
from kit.web import csrf_token, field_error, flashes, signed_in, table_row, textarea_value, visible_text

from backoffice.services.payments import MAX_REMITTANCE_BYTES

HEADER = "Invoice number,Amount,Paid date,Reference\n"


@pytest.fixture
def finance(app, login, world):
    return signed_in(app, login, world.finance)


@pytest.fixture
def due(world, app_sessions, admin_engine) -> list[dict]:
    """Kitchen renovation's two authorized payments: nets $1,111.09 and $1,800.04."""
    eid = active_engagement(app_sessions, world, title="Kitchen renovation")
    return [
        dict(invoice_row(admin_engine, i))
        for i in approve_milestones(app_sessions, admin_engine, milestone_ids(admin_engine, eid))
    ]


def remittance(due, *, today=None, amounts=("1111.09", '"1,800.04"'), references=("ACH 881", "ACH 882")) -> bytes:
    today = today or date.today().isoformat()
    # strict=False: a shorter `due` (one invoice) takes only the first amount and reference
    lines = [f"{i['invoice_number']},{a},{today},{r}\n" for i, a, r in zip(due, amounts, references, strict=False)]
    return (HEADER + "".join(lines)).encode()


def upload(client, content: bytes | None, *, method="wire", filename="remittance.csv"):
    token = csrf_token(client, "/payments/remittance")
    data = {"method": method, "csrf_token": token}
    if content is not None:
        data["file"] = (io.BytesIO(content), filename)
    return client.post("/payments/remittance", data=data, content_type="multipart/form-data")


def import_confirmed(client, csv_text: str, method: str):
    token = csrf_token(client, "/payments/remittance")
    return client.post(
        "/payments/remittance/import", data={"csv_text": csv_text, "method": method, "csrf_token": token}
    )


def check_column(html: str, invoice_number: str) -> str:
    """What the preview says about the row of this invoice."""
    cells = re.findall(r"<td>(.*?)</td>", table_row(html, invoice_number), re.DOTALL)
    return visible_text(cells[-1])


# --- access --------------------------------------------------------------------------------------------


def test_finance_sees_the_upload_form(finance):
    response = finance.get("/payments/remittance")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'type="file" name="file"' in html and 'enctype="multipart/form-data"' in html


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_cannot_import_payments(app, login, world, admin_engine, due, who):
    client = signed_in(app, login, getattr(world, who))
    assert client.get("/payments/remittance").status_code == 403
    before = money_state(admin_engine, world.org_a)
    token = csrf_token(client, "/")
    assert (
        client.post(
            "/payments/remittance/import",
            data={"csv_text": remittance(due).decode(), "method": "ach", "csrf_token": token},
        ).status_code
        == 403
    )
    assert money_state(admin_engine, world.org_a) == before


# --- check, then import --------------------------------------------------------------------------------


def test_a_good_file_is_previewed_row_by_row_and_nothing_is_paid_yet(finance, world, admin_engine, due):
    before = money_state(admin_engine, world.org_a)
    response = upload(finance, remittance(due))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Ready to import 2 payments" in html
    for invoice in due:
        assert check_column(html, invoice["invoice_number"]) == "OK"
    assert "Totals: $2,911.13 ." in visible_text(html)
    assert textarea_value(html, "csv_text") == remittance(due).decode()
    assert 'name="method" value="wire"' in html
    assert money_state(admin_engine, world.org_a) == before


def test_importing_the_checked_file_records_every_payment(finance, world, admin_engine, due):
    html = upload(finance, remittance(due)).get_data(as_text=True)
    response = import_confirmed(finance, textarea_value(html, "csv_text"), "wire")
    assert response.status_code == 303
    assert response.headers["Location"] == "/payments/?status=paid"
    for invoice, reference in zip(due, ("ACH 881", "ACH 882"), strict=True):
        row = invoice_row(admin_engine, invoice["id"])
        assert (row["status"], row["paid_at"]) == ("paid", date.today())
        (payment,) = payments_of(admin_engine, invoice["id"])
        assert (
            payment["source"],
            payment["method"],
            payment["reference"],
            payment["amount_minor"],
            payment["recorded_by"],
        ) == ("remittance", "wire", reference, invoice["net_minor"], world.finance.id)
    page = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 payments recorded from the remittance file." in flashes(page)


def test_a_file_with_a_byte_order_mark_and_other_header_names_is_read(finance, due):
    content = (
        "\ufeffBill No.,Amount paid,Payment date,Transaction ID\n"
        + "".join(
            f"{i['invoice_number']},{a},{date.today().isoformat()},T{n}\n"
            for n, (i, a) in enumerate(zip(due, ("1,111.09", "1800.04"), strict=True))
        )
    ).encode()
    content = content.replace(b",1,111.09,", b',"1,111.09",')
    response = upload(finance, content)
    assert response.status_code == 200
    assert "Ready to import 2 payments" in response.get_data(as_text=True)


# --- refused files -------------------------------------------------------------------------------------


def test_a_file_with_one_bad_row_lists_the_problem_and_pays_nothing(finance, world, admin_engine, due):
    before = money_state(admin_engine, world.org_a)
    response = upload(finance, remittance(due, amounts=("1111.09", "1800.00")))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing can be imported yet" in html
    assert "1 of 2 rows need fixing. Correct the file and check it again; nothing was recorded." in flashes(html)
    assert check_column(html, due[0]["invoice_number"]) == "OK"
    assert check_column(html, due[1]["invoice_number"]) == "Amount $1,800.00 does not match the net payable $1,800.04."
    assert 'action="/payments/remittance/import"' not in html
    assert money_state(admin_engine, world.org_a) == before


def bad_rows(due) -> dict:
    """A file's second row ({t}: today) and what the preview says about it."""
    n = due[1]["invoice_number"]
    tomorrow = date.today() + timedelta(days=1)
    return {
        "unknown invoice": ("ZZZZ-999999,1800.04,{t},R", "No invoice ZZZZ-999999 in this organization."),
        "no invoice number": (",1800.04,{t},R", "No invoice number."),
        "amount with a comma for decimals": (f'{n},"1800,04",{{t}},R', "Use a point before the decimals"),
        "too many decimals": (f"{n},1800.041,{{t}},R", "USD amounts have at most 2 decimals"),
        "paid tomorrow": (f"{n},1800.04,{tomorrow.isoformat()},R", "is in the future"),
        "date not ISO": (f"{n},1800.04,{date.today():%d/%m/%Y},R", "date paid"),
        "no reference": (f"{n},1800.04,{{t}},", "payment reference"),
        "the same invoice twice": (
            f"{due[0]['invoice_number']},1111.09,{{t}},R2",
            "is also on line 2: an invoice is paid once.",
        ),
    }


BAD_ROWS = (
    "unknown invoice",
    "no invoice number",
    "amount with a comma for decimals",
    "too many decimals",
    "paid tomorrow",
    "date not ISO",
    "no reference",
    "the same invoice twice",
)


@pytest.mark.parametrize("case", BAD_ROWS)
def test_every_kind_of_bad_row_is_named_and_nothing_is_paid(finance, world, admin_engine, due, case):
    today = date.today().isoformat()
    row, words = bad_rows(due)[case]
    content = (HEADER + f"{due[0]['invoice_number']},1111.09,{today},R1\n" + row.format(t=today) + "\n").encode()
    before = money_state(admin_engine, world.org_a)
    response = upload(finance, content)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    problems = re.findall(r'<tr class="row-problem">(.*?)</tr>', html, re.DOTALL)
    assert len(problems) == 1, problems
    assert words in visible_text(problems[0])
    assert money_state(admin_engine, world.org_a) == before


def test_a_row_for_a_payment_already_paid_is_refused(finance, world, app_sessions, admin_engine, due):
    pay_as(app_sessions, world.finance, world.org_a, due[1]["id"], reference="ACH 1")
    before = money_state(admin_engine, world.org_a)
    response = upload(finance, remittance(due))
    assert response.status_code == 422
    assert check_column(response.get_data(as_text=True), due[1]["invoice_number"]).startswith(
        f"{due[1]['invoice_number']} was already paid on"
    )
    assert money_state(admin_engine, world.org_a) == before


def test_another_organizations_invoice_number_is_not_found(app, login, world, admin_engine, due):
    admin_b = signed_in(app, login, world.admin_b)
    response = upload(admin_b, remittance(due[:1]))
    assert response.status_code == 422
    assert f"No invoice {due[0]['invoice_number']} in this organization." in visible_text(
        response.get_data(as_text=True)
    )
    assert payments_of(admin_engine, due[0]["id"]) == []


def test_rows_the_uploader_approved_are_refused_by_segregation_of_duties(app, login, world, app_sessions, admin_engine):
    eid = active_engagement(app_sessions, world, title="Garage")
    invoice = invoice_row(
        admin_engine, approve(app_sessions, world, milestone_ids(admin_engine, eid)[0], by=world.admin)
    )
    admin = signed_in(app, login, world.admin)
    response = upload(admin, (HEADER + f"{invoice['invoice_number']},1111.09,{date.today().isoformat()},R\n").encode())
    assert response.status_code == 422
    assert "Segregation of duties: you approved this payment" in check_column(
        response.get_data(as_text=True), invoice["invoice_number"]
    )


def test_without_a_file_the_upload_is_refused_at_the_file(finance, world, admin_engine, due):
    before = money_state(admin_engine, world.org_a)
    for content in (None, b""):
        response = upload(finance, content)
        assert response.status_code == 422
        assert field_error(response.get_data(as_text=True), "file") == "Choose the remittance CSV file to check."
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "content, words",
    [
        (b"Invoice,Amount\nINV-000001,10.00\n", "The header row has no “paid date” column."),
        (HEADER.encode(), "The file has a header but no payments."),
        (
            "Invoice number,Amount,Paid date,Reference\nINV-000001,10.00,2026-01-01,Zürich\n".encode("latin-1"),
            "not UTF-8",
        ),
        (b"\n", "The file is empty."),
    ],
)
def test_a_file_that_is_not_a_remittance_says_what_is_wrong(finance, world, admin_engine, due, content, words):
    before = money_state(admin_engine, world.org_a)
    response = upload(finance, content)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert any(words in f for f in flashes(html)), flashes(html)
    assert 'action="/payments/remittance/import"' not in html
    assert money_state(admin_engine, world.org_a) == before


@pytest.mark.parametrize(
    "size, words",
    [
        (MAX_REMITTANCE_BYTES, "The file is not a readable CSV"),  # within the limit: read (one 2 MB field is no CSV)
        (MAX_REMITTANCE_BYTES + 1, "The file is larger than 2 MB; split it."),
    ],
)
def test_a_file_at_the_size_limit_is_checked_and_one_over_it_is_refused_with_the_remittance_message(
    finance, size, words
):
    response = upload(finance, b"x" * size)
    assert response.status_code == 422
    assert any(words in f for f in flashes(response.get_data(as_text=True)))


def test_an_import_whose_file_changed_after_the_check_records_nothing(finance, world, admin_engine, due):
    html = upload(finance, remittance(due)).get_data(as_text=True)
    tampered = textarea_value(html, "csv_text").replace('"1,800.04"', "18000.04")
    before = money_state(admin_engine, world.org_a)
    response = import_confirmed(finance, tampered, "wire")
    assert response.status_code == 422
    message = field_error(response.get_data(as_text=True), "file")
    assert message and message.startswith("Nothing was imported. line 3: Amount $18,000.04 does not match")
    assert money_state(admin_engine, world.org_a) == before


def test_an_import_after_one_of_its_payments_was_recorded_meanwhile_records_nothing(
    finance, world, app_sessions, admin_engine, due
):
    html = upload(finance, remittance(due)).get_data(as_text=True)
    pay_as(app_sessions, world.finance, world.org_a, due[0]["id"], reference="ACH single")
    before = money_state(admin_engine, world.org_a)
    response = import_confirmed(finance, textarea_value(html, "csv_text"), "wire")
    assert response.status_code == 422
    assert "was already paid on" in field_error(response.get_data(as_text=True), "file")
    assert money_state(admin_engine, world.org_a) == before
    assert payments_of(admin_engine, due[1]["id"]) == []


def test_an_import_with_an_unknown_method_records_nothing(finance, world, admin_engine, due):
    html = upload(finance, remittance(due)).get_data(as_text=True)
    before = money_state(admin_engine, world.org_a)
    response = import_confirmed(finance, textarea_value(html, "csv_text"), "cash-in-envelope")
    assert response.status_code == 422
    assert "Choose how these payments were made." in field_error(response.get_data(as_text=True), "file")
    assert money_state(admin_engine, world.org_a) == before


def test_the_upload_without_a_csrf_token_is_refused(finance, world, admin_engine, due):
    before = money_state(admin_engine, world.org_a)
    response = finance.post(
        "/payments/remittance",
        data={"method": "ach", "file": (io.BytesIO(remittance(due)), "r.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    response = finance.post("/payments/remittance/import", data={"csv_text": remittance(due).decode(), "method": "ach"})
    assert response.status_code == 400
    assert money_state(admin_engine, world.org_a) == before
