"""The demo's completion billing (issue 20, item 9; services/demo_completion): one engagement half way, one completed.
The issue's done-when: in the demo database, for every completed completion engagement, the sum of its invoices
(advance, task invoices and the final payment, live) equals its contract value to the cent. Read as the owner role
(the ground truth), and as Nina where what she sees matters; the demo is only read here."""

from __future__ import annotations

import html

import pytest
from kit.web import csrf_token
from sqlalchemy import text

from backoffice.services import completion
from backoffice.services.demo_completion import FIT_OUT, SIGNAGE


def rows(admin_engine, sql: str, **params) -> list[dict]:
    with admin_engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


@pytest.fixture(scope="module")
def demo_orgs(demo_data):
    return [demo_data.acme, demo_data.globex]


def _engagement(admin_engine, acme, title: str) -> dict:
    (e,) = rows(
        admin_engine,
        "select e.*, c.legal_name from engagements e join contractors c on c.id = e.contractor_id"
        " where e.org_id = :o and e.title = :t",
        o=acme,
        t=title,
    )
    return e


def _invoices(admin_engine, engagement_id) -> list[dict]:
    return rows(
        admin_engine,
        "select i.kind, i.gross_minor, i.status, i.voided_at, i.raised_by,"
        " array(select m.title from invoice_tasks t join milestones m on m.id = t.milestone_id"
        "       where t.invoice_id = i.id and t.voided_at is null order by m.seq) as tasks"
        " from invoices i where i.engagement_id = :e order by i.number",
        e=engagement_id,
    )


def test_every_completed_completion_engagement_of_the_demo_billed_its_contract_value_to_the_cent(
    admin_engine, demo_orgs
):
    totals = rows(
        admin_engine,
        "select e.title, e.contract_value_minor,"
        " (select coalesce(sum(i.gross_minor), 0) from invoices i where i.engagement_id = e.id"
        "    and i.kind in ('advance', 'completion', 'final') and i.voided_at is null) as invoiced"
        " from engagements e where e.org_id = any(:orgs) and e.billing_mode = 'completion' and e.status = 'completed'"
        " order by e.title",
        orgs=demo_orgs,
    )
    assert [t["title"] for t in totals] == [SIGNAGE]  # the demo has one, and it is counted
    assert [(t["title"], t["invoiced"]) for t in totals] == [(t["title"], t["contract_value_minor"]) for t in totals]


def test_the_completed_engagement_took_its_advance_one_task_invoice_and_the_final_payment_all_paid(
    admin_engine, demo_data
):
    signage = _engagement(admin_engine, demo_data.acme, SIGNAGE)
    assert (signage["legal_name"], signage["status"], signage["contract_value_minor"]) == (
        "Northwind Design Ltd",
        "completed",
        960000,
    )
    assert (signage["advance_bps"], signage["advance_minor"]) == (1000, 96000)
    (nina,) = rows(admin_engine, "select id from users where email = 'nina@northwind.example'")
    invoices = _invoices(admin_engine, signage["id"])
    assert [(i["kind"], i["gross_minor"], i["status"], i["tasks"]) for i in invoices] == [
        ("advance", 96000, "paid", []),
        ("completion", 288000, "paid", ["Signage design"]),  # raised by Nina
        ("final", 576000, "paid", ["Fabrication", "Installation"]),  # the last task's approval
    ]
    assert [i["raised_by"] for i in invoices] == [None, nina["id"], None]
    tasks = rows(admin_engine, "select status from milestones where engagement_id = :e", e=signage["id"])
    assert {t["status"] for t in tasks} == {"approved"}


def test_the_half_way_engagement_has_its_advance_paid_two_tasks_invoiced_and_one_to_invoice(
    admin_engine, demo_data, act_as
):
    fit_out = _engagement(admin_engine, demo_data.acme, FIT_OUT)
    assert (fit_out["legal_name"], fit_out["status"], fit_out["contract_value_minor"]) == (
        "Northwind Design Ltd",
        "active",
        4800000,
    )
    assert (fit_out["advance_bps"], fit_out["advance_minor"]) == (1200, 576000)
    assert fit_out["advance_confirmed_by"] == fit_out["sent_by"]
    tasks = rows(
        admin_engine,
        "select title, amount_minor, status from milestones where engagement_id = :e order by seq",
        e=fit_out["id"],
    )
    assert [(t["title"], t["status"]) for t in tasks] == [
        ("Space plan and finishes", "approved"),
        ("Strip-out and partitions", "approved"),
        ("Ceilings and lighting", "approved"),
        ("Joinery and kitchenette", "submitted"),
        ("Furniture and handover", "planned"),
    ]
    assert sum(t["amount_minor"] for t in tasks) == 4800000 - 576000
    invoices = _invoices(admin_engine, fit_out["id"])
    assert [(i["kind"], i["gross_minor"], i["status"], i["tasks"]) for i in invoices] == [
        ("advance", 576000, "paid", []),
        ("completion", 960000, "exported", ["Space plan and finishes", "Strip-out and partitions"]),
    ]
    (paid_by,) = rows(
        admin_engine,
        "select u.email from payments p join users u on u.id = p.recorded_by"
        " join invoices i on i.id = p.invoice_id where i.engagement_id = :e and i.kind = 'advance'",
        e=fit_out["id"],
    )
    assert paid_by == {"email": "finance@acme.example"}
    # Nina, signed in, can invoice the one approved task no invoice bills yet.
    (nina,) = rows(admin_engine, "select id from users where email = 'nina@northwind.example'")
    session = act_as(nina["id"], demo_data.acme)
    assert [t.title for t in completion.invoiceable_tasks(session, fit_out["id"])] == ["Ceilings and lighting"]


@pytest.mark.parametrize("who", ["owner@acme.example", "finance@acme.example", "nina@northwind.example"])
def test_the_demo_completion_engagements_and_their_invoices_open_for_each_person_who_sees_them(
    app, admin_engine, demo_data, who
):
    """Each person who deals with them opens both engagements and every invoice of theirs; the advance is named."""
    client = app.test_client()
    response = client.post(
        "/login", data={"email": who, "password": demo_data.password, "csrf_token": csrf_token(client, "/login")}
    )
    assert response.status_code == 303
    for title in (FIT_OUT, SIGNAGE):
        engagement = _engagement(admin_engine, demo_data.acme, title)
        page = client.get(f"/engagements/{engagement['id']}")
        assert page.status_code == 200, (who, title)
        assert title in html.unescape(page.get_data(as_text=True))
        for invoice in rows(admin_engine, "select id, kind from invoices where engagement_id = :e", e=engagement["id"]):
            page = client.get(f"/invoices/{invoice['id']}")
            assert page.status_code == 200, (who, title, invoice["kind"])
            if invoice["kind"] == "advance":
                assert "advance" in page.get_data(as_text=True).lower()
