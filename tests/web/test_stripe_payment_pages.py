"""Paying by Stripe from the pages (issue 17, item 3): finance selects payments in the queue (or opens one invoice)
and reviews what would be sent, with the count and total per currency and what cannot go and why; confirming sends
exactly those. A refused payment is on hold with Stripe's reason and finance releases it; nobody else reaches any of
it. The worker's side (the transfer itself) is tests/integration/test_stripe_payouts.py."""

from __future__ import annotations

import re

import pytest
from kit.engagements import owner_query
from kit.jobs import run_jobs
from kit.money import approved_invoices, party, set_org
from kit.web import flashes, post, signed_in, visible_text


def attempts(admin_engine, org_id) -> list[dict]:
    return owner_query(admin_engine, "select * from payout_attempts where org_id = :o", o=org_id)


def test_the_queue_offers_stripe_only_when_the_rail_is_on_and_configured(app, login, world, act_as, admin_engine):
    approved_invoices(act_as, admin_engine, party(world))
    finance = signed_in(app, login, world.finance)
    assert "Pay selected by Stripe" not in finance.get("/payments/").get_data(as_text=True)
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)  # on, but the server has no keys
    assert "Pay selected by Stripe" not in finance.get("/payments/").get_data(as_text=True)


def test_finance_reviews_the_selection_with_totals_and_reasons_then_sends_exactly_it(
    app, login, world, act_as, admin_engine, database, ready, configured
):
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    _, (y, _) = approved_invoices(act_as, admin_engine, party(world, "y"))
    finance = signed_in(app, login, world.finance)
    queue = finance.get("/payments/").get_data(as_text=True)
    assert "Pay selected by Stripe" in queue

    review = post(
        finance, "/payments/stripe/review", {"invoice_id": [a["id"], b["id"], y["id"]]}, token_from="/payments/"
    )
    html = review.get_data(as_text=True)
    assert review.status_code == 200
    total = a["net_minor"] + b["net_minor"]
    assert "Send 2 payments by Stripe" in html
    assert "USD · 2 payments" in html and f"${total / 100:,.2f}" in html
    blocked = visible_text(re.search(r'<ul class="problems">(.*?)</ul>', html, re.DOTALL).group(1))
    assert y["invoice_number"] in blocked and "has not connected a Stripe payout account" in blocked
    assert attempts(admin_engine, world.org_a) == []  # reviewing writes nothing

    sent = post(finance, "/payments/stripe/send", {"invoice_id": [a["id"], b["id"]]}, token_from="/payments/")
    assert sent.status_code == 303
    page = finance.get(sent.headers["Location"]).get_data(as_text=True)
    assert f"Sent 2 payments to Stripe (${total / 100:,.2f})" in " ".join(flashes(page))
    assert {r["invoice_id"] for r in attempts(admin_engine, world.org_a)} == {a["id"], b["id"]}

    invoice_page = finance.get(f"/invoices/{a['id']}").get_data(as_text=True)
    assert "Stripe is paying this invoice" in invoice_page
    assert f'action="/invoices/{a["id"]}/pay"' not in invoice_page  # no recording it by hand meanwhile
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    paid = finance.get(f"/invoices/{a['id']}").get_data(as_text=True)
    (transfer,) = [t for t in configured.transfers() if t["metadata"]["invoice_id"] == str(a["id"])]
    assert f"Stripe transfer · reference {transfer['id']}" in visible_text(paid)

    contractor = signed_in(app, login, world.contractor_x_user)
    theirs = visible_text(contractor.get(f"/invoices/{a['id']}").get_data(as_text=True))
    assert f"Stripe transfer · reference {transfer['id']}" in theirs and "recorded by" not in theirs


def test_one_invoice_is_paid_from_its_page_and_a_refusal_is_held_and_released(
    app, login, world, act_as, admin_engine, database, ready, configured
):
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world))
    finance = signed_in(app, login, world.finance)
    html = finance.get(f"/invoices/{a['id']}").get_data(as_text=True)
    assert f"Pay ${a['net_minor'] / 100:,.2f} by Stripe" in html
    review = finance.get(f"/payments/stripe/review?invoice_id={a['id']}").get_data(as_text=True)
    assert "Send 1 payment by Stripe" in review and 'data-confirm="Send 1 payment by Stripe' in review

    configured.set_balance("usd", 0)
    sent = post(finance, "/payments/stripe/send", {"invoice_id": a["id"]}, token_from=f"/invoices/{a['id']}")
    assert sent.headers["Location"].endswith(f"/invoices/{a['id']}")
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    held = finance.get(f"/invoices/{a['id']}").get_data(as_text=True)
    assert "On hold" in held and "Stripe refused the transfer: the platform&#39;s Stripe balance is too low" in held
    assert "Release the hold" in held

    owner = signed_in(app, login, world.owner)
    refused = post(owner, f"/invoices/{a['id']}/release-hold", {}, token_from=f"/invoices/{a['id']}")
    assert refused.status_code == 403
    released = post(finance, f"/invoices/{a['id']}/release-hold", {}, token_from=f"/invoices/{a['id']}")
    assert released.status_code == 303
    after = finance.get(f"/invoices/{a['id']}").get_data(as_text=True)
    assert "is authorized again" in " ".join(flashes(after))
    assert f"Pay ${a['net_minor'] / 100:,.2f} by Stripe" in after
    (row,) = owner_query(admin_engine, "select status from invoices where id = :i", i=a["id"])
    assert row["status"] == "approved"


@pytest.mark.parametrize("who", ["owner", "contractor_x_user"])
def test_only_finance_and_admins_review_or_send(app, login, world, act_as, admin_engine, ready, who):
    _, (a, _) = approved_invoices(act_as, admin_engine, party(world))
    browser = signed_in(app, login, getattr(world, who))
    assert browser.get(f"/payments/stripe/review?invoice_id={a['id']}").status_code == 403
    token_page = "/" if who == "owner" else "/invoices/"
    assert post(browser, "/payments/stripe/send", {"invoice_id": a["id"]}, token_from=token_page).status_code == 403
    assert attempts(admin_engine, world.org_a) == []


@pytest.mark.parametrize(
    "ids",
    [[], ["not-an-id"], ["\x00"], ["00000000-0000-0000-0000-000000000000"]],
    ids=["nothing", "garbage", "nul", "unknown"],
)
def test_a_send_of_nothing_sendable_says_so_and_writes_nothing(app, login, world, admin_engine, ready, ids):
    finance = signed_in(app, login, world.finance)
    response = post(finance, "/payments/stripe/send", {"invoice_id": ids}, token_from="/payments/")
    assert response.status_code == 303
    page = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert any("sent" in f.lower() for f in flashes(page)), flashes(page)
    assert attempts(admin_engine, world.org_a) == []
    review = post(finance, "/payments/stripe/review", {"invoice_id": ids}, token_from="/payments/")
    assert review.status_code == 303
    told = " ".join(flashes(finance.get(review.headers["Location"]).get_data(as_text=True)))
    assert "Nothing was sent" in told or "nothing was sent" in told


AUTO_PAY = "select auto_pay_enabled, auto_pay_by from organizations where id = :o"


def test_an_admin_turns_automatic_payment_on_in_their_own_name(app, login, world, admin_engine, ready):
    admin = signed_in(app, login, world.admin)
    form = admin.get("/admin/settings").get_data(as_text=True)
    assert "Pay automatically on the due date, by Stripe" in form
    (org,) = owner_query(admin_engine, "select * from organizations where id = :o", o=world.org_a)
    data = {
        "name": org["name"],
        "default_currency": org["default_currency"],
        "default_retainage": "10",
        "payment_terms_days": str(org["payment_terms_days"]),
        "partial_policy": org["partial_policy"],
        "evidence_max_files": str(org["evidence_max_files"]),
        "evidence_max_file_mb": str(org["evidence_max_file_mb"]),
        "evidence_max_submission_mb": str(org["evidence_max_submission_mb"]),
        "invoice_prefix": org["invoice_prefix"],
        "segregation_of_duties": "y",
        "review_sla_days": str(org["review_sla_days"]),
        "locale": org["locale"],
        "stripe_rail_enabled": "y",
        "auto_pay_enabled": "y",
    }
    assert post(admin, "/admin/settings", data).status_code == 303
    (org,) = owner_query(
        admin_engine, "select auto_pay_enabled, auto_pay_by from organizations where id = :o", o=world.org_a
    )
    assert (org["auto_pay_enabled"], org["auto_pay_by"]) == (True, world.admin.id)
    assert f"(now: {world.admin.name})" in admin.get("/admin/settings").get_data(as_text=True)
    data.pop("auto_pay_enabled")
    assert post(admin, "/admin/settings", data).status_code == 303
    (org,) = owner_query(
        admin_engine, "select auto_pay_enabled, auto_pay_by from organizations where id = :o", o=world.org_a
    )
    assert (org["auto_pay_enabled"], org["auto_pay_by"]) == (False, None)
