"""Self-billing's pages (issue 21, item 4): the agreement section of an admin's contractor page (admins record one;
nobody else may), the contractor's agreement page and its confirmation, and the contractor's answer to each self-billed
invoice (the section the invoice page includes, its accept and reject forms). Bad input answers 4xx with the message
at its field and saves nothing; every page is reached from a link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import render_template
from flask_login import login_user
from kit import signin
from kit.einvoicing import agree
from kit.engagements import owner_query
from kit.self_billing import TERMS, agreements, answer, answers, confirm, issued_invoices, record
from kit.web import HTMX, csrf_token, field_error, flashes, post, signed_in, textarea_value, visible_text

from backoffice.queries.identity import load_signed_in
from backoffice.queries.money import invoice_detail
from backoffice.web.context import SignedIn, db

REJECTION = "The retainage is 5% in our contract, not 10%."


@pytest.fixture
def xena(app, login, world):
    return signed_in(app, login, world.contractor_x_user)


@pytest.fixture
def ada(app, login, world):
    return signed_in(app, login, world.admin)


def contractor_page(world) -> str:
    return f"/admin/contractors/{world.contractor_x}"


def record_path(world) -> str:
    return f"{contractor_page(world)}/self-billing-agreement"


def section_as(app, person, org_id, invoice_id) -> str:
    """The self-billing section of the invoice page as ``person`` sees it: the fragment the invoice page includes,
    rendered in a request signed in as them (a real sign-in, as the cookie's would be)."""
    with app.test_request_context(f"/invoices/{invoice_id}"):
        session = db()
        signin.present(session, person.id)
        identity = load_signed_in(session, person.id, org_id)
        login_user(SignedIn(person.id, identity.actor, identity.memberships))
        return render_template("self_billing/_acceptance.html", i=invoice_detail(session, invoice_id).row)


# --- the agreement on the admin's contractor page ----------------------------------------------------------------


def test_an_admin_records_the_agreement_on_the_contractors_page(ada, admin_engine, world):
    html = ada.get(contractor_page(world)).get_data(as_text=True)
    assert (
        'id="self-billing"' in html
        and f"No self-billing agreement is recorded with Contractor X {world.suffix}" in html
    )
    response = post(
        ada, record_path(world), {"agreed_on": "2026-01-15", "terms": TERMS}, token_from=contractor_page(world)
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"{contractor_page(world)}#self-billing"
    )
    (row,) = agreements(admin_engine, world.org_a)
    assert (str(row["agreed_on"]), row["terms"]) == ("2026-01-15", TERMS)
    html = ada.get(contractor_page(world)).get_data(as_text=True)
    text = visible_text(html)
    assert f"Waiting for Contractor X {world.suffix}'s confirmation" in text
    assert "recorded by Ada Admin" in text and "Record a new agreement" in text
    assert TERMS.splitlines()[0] in text
    assert any("recorded" in f for f in flashes(html))


def test_the_page_says_who_confirmed_the_agreement_and_when(app, login, act_as, world):
    agreement = record(act_as, world)
    confirm(act_as, world.contractor_x_user, world.org_a, agreement.id)
    text = visible_text(signed_in(app, login, world.admin).get(contractor_page(world)).get_data(as_text=True))
    assert "Confirmed by Xena X" in text and "Waiting for" not in text


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"agreed_on": "", "terms": TERMS}, "agreed_on", "Enter the date of the agreement."),
        ({"agreed_on": "2099-12-31", "terms": TERMS}, "agreed_on", "is in the future"),
        ({"agreed_on": "31/12/2025", "terms": TERMS}, "agreed_on", "YYYY-MM-DD"),
        ({"agreed_on": "2026-01-15", "terms": ""}, "terms", "Enter the terms of the agreement."),
        ({"agreed_on": "2026-01-15", "terms": "Terms\x00 with a NUL"}, "terms", "characters that are not allowed"),
        ({"agreed_on": "2026-01-15", "terms": "x" * 20001}, "terms", "under 20000 characters"),
        ({"agreed_on": "2026-01-15\x00", "terms": TERMS}, "agreed_on", "YYYY-MM-DD"),
    ],
)
def test_bad_input_is_refused_at_its_field_and_saves_nothing(ada, admin_engine, world, data, field, words):
    response = post(ada, record_path(world), data, token_from=contractor_page(world))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert words in (field_error(html, field) or "")
    if field == "terms" and "\x00" not in data["terms"]:
        assert textarea_value(html, "terms").strip() == data["terms"].strip()  # what was typed is kept
    assert agreements(admin_engine, world.org_a) == []


@pytest.mark.parametrize("who", ["owner", "finance", "contractor_x_user"])
def test_nobody_but_an_admin_records_an_agreement(app, login, admin_engine, world, who):
    client = signed_in(app, login, getattr(world, who))
    response = post(client, record_path(world), {"agreed_on": "2026-01-15", "terms": TERMS}, token_from="/")
    assert response.status_code == 403
    assert agreements(admin_engine, world.org_a) == []


def test_another_organizations_contractor_is_not_found(app, login, admin_engine, world):
    client = signed_in(app, login, world.admin_b)
    response = post(client, record_path(world), {"agreed_on": "2026-01-15", "terms": TERMS}, token_from="/")
    assert response.status_code == 404
    assert agreements(admin_engine, world.org_a) == []


def test_without_the_csrf_token_nothing_is_recorded(ada, admin_engine, world):
    response = ada.post(record_path(world), data={"agreed_on": "2026-01-15", "terms": TERMS})
    assert response.status_code == 400
    assert agreements(admin_engine, world.org_a) == []


# --- the contractor's agreement page ----------------------------------------------------------------------------------


def test_the_contractor_reaches_its_agreement_from_the_navigation_and_confirms_it(xena, act_as, admin_engine, world):
    home = xena.get("/").get_data(as_text=True)
    assert 'href="/self-billing/agreement"' in home
    assert "No self-billing agreement is recorded yet" in xena.get("/self-billing/agreement").get_data(as_text=True)

    agreement = record(act_as, world)
    home = visible_text(xena.get("/").get_data(as_text=True))
    assert f"Org A {world.suffix} recorded a self-billing agreement with you" in home
    html = xena.get("/self-billing/agreement").get_data(as_text=True)
    text = visible_text(html)
    assert TERMS.splitlines()[0] in text and "Confirm this agreement" in text
    assert f"I agree that Org A {world.suffix} issues invoices on my behalf" in text
    assert "within 14 days of its issue, it counts as accepted" in text

    path = f"/self-billing/agreement/{agreement.id}/confirm"
    response = post(xena, path, {"agree": "yes"}, token_from="/self-billing/agreement")
    assert response.status_code == 303 and response.headers["Location"].endswith("/self-billing/agreement")
    assert agreements(admin_engine, world.org_a)[0]["confirmed_by"] == world.contractor_x_user.id
    text = visible_text(xena.get("/self-billing/agreement").get_data(as_text=True))
    assert "Confirmed by Xena X" in text and "Confirm this agreement" not in text
    assert "recorded a self-billing agreement with you" not in visible_text(xena.get("/").get_data(as_text=True))

    again = post(xena, path, {"agree": "yes"}, token_from="/self-billing/agreement")
    assert again.status_code == 409 and "confirmed this self-billing agreement already" in again.get_data(as_text=True)


def test_confirming_without_ticking_the_box_is_refused_at_the_box(xena, act_as, admin_engine, world):
    agreement = record(act_as, world)
    response = post(xena, f"/self-billing/agreement/{agreement.id}/confirm", {}, token_from="/self-billing/agreement")
    assert response.status_code == 422
    assert "Tick the box" in field_error(response.get_data(as_text=True), "agree")
    assert agreements(admin_engine, world.org_a)[0]["confirmed_by"] is None


def test_another_contractor_neither_sees_nor_confirms_the_agreement(app, login, act_as, admin_engine, world):
    agreement = record(act_as, world, terms="Terms for X only.")
    yuri = signed_in(app, login, world.contractor_y_user)
    assert "Terms for X only." not in yuri.get("/self-billing/agreement").get_data(as_text=True)
    response = post(yuri, f"/self-billing/agreement/{agreement.id}/confirm", {"agree": "yes"}, token_from="/")
    assert response.status_code == 404
    assert post(yuri, "/self-billing/agreement/not-an-id/confirm", {"agree": "yes"}, token_from="/").status_code == 404
    assert agreements(admin_engine, world.org_a)[0]["confirmed_by"] is None


@pytest.mark.parametrize("who", ["admin", "owner", "finance"])
def test_the_agreement_page_is_the_contractors(app, login, world, who):
    client = signed_in(app, login, getattr(world, who))
    assert client.get("/self-billing/agreement").status_code == 403
    assert 'href="/self-billing/agreement"' not in client.get("/").get_data(as_text=True)


# --- the answer to each self-billed invoice --------------------------------------------------------------------------


def test_the_contractors_home_lists_the_invoices_to_answer_with_links_to_them(xena, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    html = xena.get("/").get_data(as_text=True)
    assert "Self-billed invoices to answer" in html
    assert f'href="/invoices/{inv["id"]}#acceptance"' in html
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "accepted")
    assert "Self-billed invoices to answer" not in xena.get("/").get_data(as_text=True)


def test_the_contractor_sees_when_silence_counts_and_accepts(xena, app, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world, ago=timedelta(days=1))
    section = visible_text(section_as(app, world.contractor_x_user, world.org_a, inv["id"]))
    assert "Awaiting the contractor's acceptance" in section
    assert "Silence counts as acceptance on" in section and "(14 days after issue)" in section
    assert "Accept the self-billed invoice" in section and "Reject the self-billed invoice" in section

    response = post(xena, f"/invoices/{inv['id']}/accept", {}, token_from="/invoices/")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/invoices/{inv['id']}#acceptance")
    assert [a["decision"] for a in answers(admin_engine, inv["id"])] == ["accepted"]
    section = visible_text(section_as(app, world.contractor_x_user, world.org_a, inv["id"]))
    assert "Accepted by the contractor Accepted by Xena X" in section and "Reject" not in section


def test_a_rejection_without_a_reason_is_refused_at_the_reason_on_a_page_and_in_place(
    xena, act_as, admin_engine, world
):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    path = f"/invoices/{inv['id']}/reject"
    response = post(xena, path, {"reason": "  "}, token_from="/invoices/")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Say why you reject it" in field_error(html, "reason")
    assert f'href="/invoices/{inv["id"]}"' in html  # back to the invoice
    token = csrf_token(xena, "/invoices/")
    fragment = xena.post(path, data={"reason": ""}, headers={**HTMX, "X-CSRFToken": token})
    assert fragment.status_code == 422
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith("<section") and "Say why you reject it" in field_error(body, "reason")
    nul = post(xena, path, {"reason": "Wrong\x00"}, token_from="/invoices/")
    assert nul.status_code == 422 and "not allowed" in field_error(nul.get_data(as_text=True), "reason")
    assert answers(admin_engine, inv["id"]) == []


def test_a_rejection_in_place_returns_the_section_with_the_reason(xena, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    token = csrf_token(xena, "/invoices/")
    fragment = xena.post(
        f"/invoices/{inv['id']}/reject", data={"reason": REJECTION}, headers={**HTMX, "X-CSRFToken": token}
    )
    assert fragment.status_code == 200
    text = visible_text(fragment.get_data(as_text=True))
    assert "Rejected by the contractor Rejected by Xena X" in text and REJECTION in text
    assert "you can still accept it" in text and "Accept the self-billed invoice" in text
    assert "Reject the self-billed invoice" not in text  # rejected once is enough
    assert [(a["decision"], a["reason"]) for a in answers(admin_engine, inv["id"])] == [("rejected", REJECTION)]


def test_rejecting_an_accepted_invoice_is_a_conflict_said_in_words(xena, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world, ago=timedelta(days=15))
    response = post(xena, f"/invoices/{inv['id']}/reject", {"reason": REJECTION}, token_from="/invoices/")
    assert response.status_code == 409
    text = visible_text(response.get_data(as_text=True))
    assert "accepted already (silence counted as acceptance)" in text
    assert "Accepted by silence on" in text and "no answer within 14 days of its issue" in text
    assert answers(admin_engine, inv["id"]) == []


@pytest.mark.parametrize("who", ["owner", "finance", "admin"])
def test_staff_read_the_answer_and_cannot_give_one(app, login, act_as, admin_engine, world, who):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    answer(act_as, world.contractor_x_user, world.org_a, inv["id"], "rejected", REJECTION)
    person = getattr(world, who)
    section = section_as(app, person, world.org_a, inv["id"])
    text = visible_text(section)
    assert "The contractor's acceptance" in text and "Rejected by Xena X" in text and REJECTION in text
    assert "<form" not in section
    # The agreement line: finance and admins read agreements, a project owner does not.
    assert ("No self-billing agreement is recorded with" in text) == (who != "owner")
    client = signed_in(app, login, person)
    for action in ("accept", "reject"):
        response = post(client, f"/invoices/{inv['id']}/{action}", {"reason": "x"}, token_from="/")
        assert response.status_code == 403
    assert len(answers(admin_engine, inv["id"])) == 1


def test_another_contractors_invoice_is_not_found(app, login, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    yuri = signed_in(app, login, world.contractor_y_user)
    for action in ("accept", "reject"):
        assert post(yuri, f"/invoices/{inv['id']}/{action}", {"reason": "x"}, token_from="/").status_code == 404
        assert post(yuri, f"/invoices/not-an-id/{action}", {"reason": "x"}, token_from="/").status_code == 404
    assert answers(admin_engine, inv["id"]) == []


def test_the_invoice_page_includes_the_section(xena, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    assert 'id="acceptance"' in xena.get(f"/invoices/{inv['id']}").get_data(as_text=True)


def test_the_contractor_reaches_the_invoice_from_its_payments(xena, act_as, admin_engine, world):
    (inv,) = issued_invoices(act_as, admin_engine, world)
    assert f'href="/invoices/{inv["id"]}"' in xena.get("/invoices/").get_data(as_text=True)
    assert owner_query(admin_engine, "select count(*) as n from documents where invoice_id = :i", i=inv["id"])[0]["n"]


def test_finance_reads_the_agreement_on_the_contractors_e_invoicing_page_without_a_form(
    app, login, world, admin_engine
):
    agree(admin_engine, world.org_a, world.contractor_x, world.admin.id)
    client = signed_in(app, login, world.finance)
    html = client.get(f"/contractors/{world.contractor_x}/e-invoicing").get_data(as_text=True)
    assert 'id="self-billing"' in html and "Waiting for" in html
    assert "Record the agreement" not in html and "Record a new agreement" not in html
