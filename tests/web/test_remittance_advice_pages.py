"""Remittance advices on the pages (issue 17, item 7): a contractor's users download their own contractor's from its
payments page, from each invoice it paid and from the link of the run's email; finance and admins find them in the
data room and on the invoice. Anyone else (another contractor, an owner, another organization) gets a 404, as if
the advice did not exist: the database's policies decide what a download finds (sql/data_room.sql).

Payments are recorded through the real services and the advices issued by the real worker.
"""

from __future__ import annotations

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import run_jobs
from kit.money import approved_invoices, export, party, pay, today
from kit.web import signed_in

from backoffice.services import payments


def advices(admin_engine, org_id) -> dict:
    rows = owner_query(
        admin_engine, "select * from documents where org_id = :o and kind = 'remittance_advice'", o=org_id
    )
    return {r["contractor_id"]: r for r in rows}


def download(document_id) -> str:
    return f"/documents/{document_id}/download"


def email_link(doc) -> str:
    return f"/documents/remittance-advice/{doc['run_id']}/{doc['contractor_id']}"


@pytest.fixture
def paid(world, act_as, admin_engine, database) -> dict:
    """One AP batch run paying contractor X's two invoices and contractor Y's one, advices issued by the worker:
    {"x": X's advice, "y": Y's advice, "x_invoice": one of X's invoices}."""
    _, xs = approved_invoices(act_as, admin_engine, party(world))
    _, ys = approved_invoices(act_as, admin_engine, party(world, "y"), ("500.00",), title="Fence")
    batch = export(act_as, world.finance, world.org_a, [i["id"] for i in [*xs, *ys]])
    session, actor = sign_in(act_as, world.finance, world.org_a)
    payments.record_batch_payment(session, actor, batch.id, payments.PaymentInput(today(), "ACH run 42", "ach"))
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    docs = advices(admin_engine, world.org_a)
    return {"x": docs[world.contractor_x], "y": docs[world.contractor_y], "x_invoice": xs[0]}


# --- downloads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["contractor_x_user", "finance", "admin"])
def test_its_contractor_finance_and_admins_download_the_advice_as_stored(app, login, world, paid, who):
    doc = paid["x"]
    for path in (download(doc["id"]), email_link(doc)):
        response = signed_in(app, login, getattr(world, who)).get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "application/pdf"
        assert response.get_data() == bytes(doc["content"])
        assert response.headers["Content-Disposition"] == f'attachment; filename="{doc["filename"]}"'
        assert response.headers["X-Content-SHA256"] == doc["sha256"]


@pytest.mark.parametrize("who", ["contractor_y_user", "owner", "admin_b", "contractor_z_user"])
def test_another_contractor_an_owner_or_another_organization_gets_a_404(app, login, world, paid, who):
    client = signed_in(app, login, getattr(world, who))
    for path in (download(paid["x"]["id"]), email_link(paid["x"])):
        response = client.get(path)
        assert response.status_code == 404, path
        assert not response.get_data().startswith(b"%PDF")


def test_a_contractor_downloads_its_own_self_billed_invoice_and_not_another_contractors(
    app, login, world, paid, admin_engine
):
    (own,) = owner_query(
        admin_engine,
        "select * from documents where invoice_id = :i and kind = 'self_billed_invoice'",
        i=paid["x_invoice"]["id"],
    )
    response = signed_in(app, login, world.contractor_x_user).get(download(own["id"]))
    assert response.status_code == 200
    assert response.get_data() == bytes(own["content"])
    assert response.headers["Content-Disposition"] == f'attachment; filename="{own["filename"]}"'
    response = signed_in(app, login, world.contractor_y_user).get(download(own["id"]))
    assert response.status_code == 404
    assert not response.get_data().startswith(b"%PDF")


def test_the_emails_link_says_the_advice_is_coming_until_the_worker_issued_it(app, login, world, act_as, admin_engine):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    pay(act_as, world.finance, world.org_a, inv["id"], reference="ACH 1")  # no worker has run
    (payment,) = owner_query(admin_engine, "select run_id from payments where invoice_id = :i", i=inv["id"])
    path = f"/documents/remittance-advice/{payment['run_id']}/{world.contractor_x}"
    response = signed_in(app, login, world.contractor_x_user).get(path)
    assert response.status_code == 200
    assert "is being issued" in response.get_data(as_text=True)
    assert signed_in(app, login, world.contractor_y_user).get(path).status_code == 404
    other = f"/documents/remittance-advice/{payment['run_id']}/{world.contractor_y}"  # a run that paid Y nothing
    assert signed_in(app, login, world.contractor_y_user).get(other).status_code == 404
    assert signed_in(app, login, world.finance).get(other).status_code == 404


@pytest.mark.parametrize("path", ["/documents/remittance-advice/not-a-run/nobody", "/documents/not-an-id/download"])
def test_a_malformed_link_is_a_404(app, login, world, path):
    assert signed_in(app, login, world.contractor_x_user).get(path).status_code == 404


# --- the pages that link them ---------------------------------------------------------------------------


def test_the_contractors_payments_page_lists_its_own_advices_only(app, login, world, paid):
    html = signed_in(app, login, world.contractor_x_user).get("/invoices/").get_data(as_text=True)
    assert 'class="remittance-advices"' in html
    assert f'href="{download(paid["x"]["id"])}"' in html
    assert paid["x"]["title"] in html
    assert download(paid["y"]["id"]) not in html
    html = signed_in(app, login, world.contractor_y_user).get("/invoices/").get_data(as_text=True)
    assert f'href="{download(paid["y"]["id"])}"' in html and download(paid["x"]["id"]) not in html


@pytest.mark.parametrize(("who", "shown"), [("contractor_x_user", True), ("finance", True), ("owner", False)])
def test_a_paid_invoices_page_links_the_advice_of_the_run_that_paid_it(app, login, world, paid, who, shown):
    html = signed_in(app, login, getattr(world, who)).get(f"/invoices/{paid['x_invoice']['id']}").get_data(as_text=True)
    assert (f'href="{download(paid["x"]["id"])}"' in html) is shown
    assert download(paid["y"]["id"]) not in html


def test_an_unpaid_invoice_and_a_contractor_paid_nothing_show_no_advice(app, login, world, act_as, admin_engine):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    html = signed_in(app, login, world.contractor_x_user).get(f"/invoices/{inv['id']}").get_data(as_text=True)
    assert "remittance-advices" not in html
    html = signed_in(app, login, world.contractor_x_user).get("/invoices/").get_data(as_text=True)
    assert "remittance-advices" not in html


def test_the_data_room_lists_remittance_advices_for_finance(app, login, world, paid):
    html = signed_in(app, login, world.finance).get("/documents/").get_data(as_text=True)
    for doc in (paid["x"], paid["y"]):
        assert f'href="{download(doc["id"])}"' in html
        assert doc["transaction_id"] in html
    assert html.count("<strong>Remittance advice</strong>") == 2
    filtered = signed_in(app, login, world.finance).get(f"/documents/?contractor_id={world.contractor_y}")
    assert download(paid["y"]["id"]) in filtered.get_data(as_text=True)
    assert download(paid["x"]["id"]) not in filtered.get_data(as_text=True)
