"""The Stripe reconciliation page (issue 17, item 5): finance and admins see the latest run and its findings, or
that everything matches; "Check now" queues a run for the organization; nobody else sees the page."""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest
from kit.engagements import owner_query
from kit.jobs import jobs
from kit.money import approved_invoices, party, set_org
from kit.web import csrf_token, flashes, signed_in, table_row, visible_text
from sqlalchemy import text

PAGE = "/payments/reconciliation"


@pytest.fixture
def configured(app):
    """The server has a Stripe key (nothing here calls Stripe: the worker does)."""
    settings = app.config["BACKOFFICE_SETTINGS"]
    app.config["BACKOFFICE_SETTINGS"] = dataclasses.replace(settings, stripe_secret_key="sk_test_pages")
    yield
    app.config["BACKOFFICE_SETTINGS"] = settings


def plant_run(admin_engine, org_id, *, findings=(), transfers=3, payments=2, requested=False) -> uuid.UUID:
    """A run as the worker keeps it, written as the owner role; ``findings``: (kind, words, invoice id) each."""
    run_id = uuid.uuid4()
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into rail_reconciliations (org_id, id, rail, requested, started_at, window_from, window_to,"
                " transfers_compared, payments_compared, findings) values (:o, :r, 'stripe', :q, now(),"
                " now() - interval '35 days', now(), :t, :p, :n)"
            ),
            {"o": org_id, "r": run_id, "q": requested, "t": transfers, "p": payments, "n": len(findings)},
        )
        for seq, (kind, words, invoice_id) in enumerate(findings, start=1):
            conn.execute(
                text(
                    "insert into rail_reconciliation_findings (org_id, reconciliation_id, seq, kind, transfer_id,"
                    " invoice_id, currency, stripe_amount_minor, recorded_amount_minor, words)"
                    " values (:o, :r, :s, :k, 'tr_1Seen', :i, 'USD', 45600, 45000, :w)"
                ),
                {"o": org_id, "r": run_id, "s": seq, "k": kind, "i": invoice_id, "w": words},
            )
    return run_id


@pytest.mark.parametrize("who", ["finance", "admin"])
def test_finance_and_admins_see_that_everything_matches(app, login, world, admin_engine, who):
    plant_run(admin_engine, world.org_a, transfers=3, payments=1)
    response = signed_in(app, login, getattr(world, who)).get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Everything matches: 3 transfers, 1 payment." in visible_text(html)
    assert "The daily check" in html


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_owners_and_contractors_cannot_see_the_page_or_ask_for_a_check(app, login, world, admin_engine, who):
    plant_run(admin_engine, world.org_a)
    client = signed_in(app, login, getattr(world, who))
    assert client.get(PAGE).status_code == 403
    token = csrf_token(client, "/")
    assert client.post(f"{PAGE}/check", data={"csrf_token": token}).status_code == 403


def test_findings_are_listed_in_words_with_a_link_to_their_invoice(app, login, world, act_as, admin_engine):
    _, (inv, _) = approved_invoices(act_as, admin_engine, party(world))
    words = f"Stripe made transfer tr_1Seen of $456.00 for {inv['invoice_number']}, but no payment here records it."
    plant_run(admin_engine, world.org_a, findings=[("transfer_without_payment", words, inv["id"])])
    html = signed_in(app, login, world.finance).get(PAGE).get_data(as_text=True)
    row = table_row(html, "tr_1Seen")
    assert "Transfer without its payment" in row and words in row
    assert f'<a href="/invoices/{inv["id"]}">{inv["invoice_number"]}</a>' in row
    assert "$456.00" in row and "$450.00" in row
    assert "1 finding among 3 transfers and 2 payments" in visible_text(html)
    assert "Everything matches" not in html


def test_only_the_latest_run_is_shown_and_another_organizations_is_not(app, login, world, admin_engine):
    plant_run(admin_engine, world.org_a, findings=[("attempt_in_flight", "An old finding.", None)])
    with admin_engine.begin() as conn:
        conn.execute(
            text("update rail_reconciliations set started_at = now() - interval '1 day' where org_id = :o"),
            {"o": world.org_a},
        )
    plant_run(admin_engine, world.org_a, transfers=5, payments=5)
    plant_run(admin_engine, world.org_b, findings=[("attempt_in_flight", "Org B own finding.", None)])
    html = signed_in(app, login, world.finance).get(PAGE).get_data(as_text=True)
    assert "Everything matches: 5 transfers, 5 payments." in visible_text(html)
    assert "An old finding." not in html and "Org B own finding." not in html
    b = signed_in(app, login, world.admin_b).get(PAGE).get_data(as_text=True)
    assert "Org B own finding." in b and "5 transfers" not in b


def test_with_no_run_yet_the_page_says_when_one_runs(app, login, world):
    html = signed_in(app, login, world.finance).get(PAGE).get_data(as_text=True)
    assert "No reconciliation has run yet." in html


def test_check_now_queues_a_run_for_the_organization_and_says_so(app, login, world, admin_engine, configured):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    client = signed_in(app, login, world.finance)
    page = client.get(PAGE).get_data(as_text=True)
    assert re.search(r'<form method="post" action="/payments/reconciliation/check"', page)
    response = client.post(f"{PAGE}/check", data={"csrf_token": csrf_token(client, PAGE)})
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    html = client.get(PAGE).get_data(as_text=True)
    assert flashes(html) == ["Checking with Stripe now: the result shows on this page in a minute or two."]
    assert "is waiting for the worker" in html
    (job,) = jobs(admin_engine, task="reconcile_stripe", org_ids=[world.org_a])
    assert job["args"] == {"org_id": str(world.org_a)}
    again = client.post(f"{PAGE}/check", data={"csrf_token": csrf_token(client, PAGE)}, follow_redirects=True)
    assert any("has not run yet" in m for m in flashes(again.get_data(as_text=True)))
    assert len(jobs(admin_engine, task="reconcile_stripe", org_ids=[world.org_a])) == 1


def test_without_the_rail_the_page_says_why_and_offers_no_check(app, login, world, admin_engine, configured):
    client = signed_in(app, login, world.admin)
    html = client.get(PAGE).get_data(as_text=True)
    assert "Paying through Stripe is off for this organization" in html
    assert "/payments/reconciliation/check" not in html
    response = client.post(f"{PAGE}/check", data={"csrf_token": csrf_token(client, PAGE)}, follow_redirects=True)
    assert any(
        m.startswith("Nothing was queued: Paying through Stripe is off")
        for m in flashes(response.get_data(as_text=True))
    )
    assert jobs(admin_engine, task="reconcile_stripe", org_ids=[world.org_a]) == []


def test_check_now_needs_its_csrf_token(app, login, world, admin_engine, configured):
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    assert signed_in(app, login, world.finance).post(f"{PAGE}/check").status_code == 400
    assert (
        owner_query(
            admin_engine,
            "select 1 from audit_events where action = 'reconciliation.requested' and org_id = :o",
            o=world.org_a,
        )
        == []
    )


def test_the_payment_queue_links_to_the_reconciliation(app, login, world):
    html = signed_in(app, login, world.finance).get("/payments/").get_data(as_text=True)
    actions = re.search(r'<p class="actions-row">.*?</p>', html, re.DOTALL).group(0)
    assert f'<a href="{PAGE}" role="button" class="secondary outline small">Stripe reconciliation</a>' in actions
