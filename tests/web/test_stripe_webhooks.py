"""POST /webhooks/stripe (issue 17, item 4): a verified event is stored once by its id and applied by a job; a
bad, missing or stale signature is a 400 and stores nothing. Events are the local fake's, signed with the SDK's
own signer; the job asks the fake how the account stands now."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import stripe
from kit.engagements import owner_query
from kit.jobs import jobs, run_jobs
from kit.money import set_org
from kit.stripe import SECRET, connect
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backoffice.jobs import runtime


@pytest.fixture
def account(world, act_as, admin_engine, configured):
    """Contractor X's connected account (onboarding not finished): its id."""
    set_org(admin_engine, world.org_a, stripe_rail_enabled=True)
    return connect(act_as, world, configured)


def post(client, event: dict, *, secret: str = SECRET, timestamp: int | None = None, header: str | None = None):
    payload = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    headers = {"Content-Type": "application/json"}
    if header != "missing":
        headers["Stripe-Signature"] = header or signature
    return client.post("/webhooks/stripe", data=payload, headers=headers)


def stored(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine, "select event_id, type, applied_at, outcome from rail_events where org_id = :o", o=org_id
    )


def readiness(admin_engine, contractor_id) -> tuple:
    (row,) = owner_query(
        admin_engine,
        "select transfers_active, payouts_enabled from payout_accounts where contractor_id = :c",
        c=contractor_id,
    )
    return row["transfers_active"], row["payouts_enabled"]


def test_an_account_update_is_stored_once_and_applied_by_a_job(app, world, admin_engine, database, configured, account):
    configured.make_ready(account)
    (event,) = configured.events("account.updated")
    client = app.test_client()
    first = post(client, event)
    assert (first.status_code, first.get_data(as_text=True)) == (200, "stored\n")
    again = post(client, event)
    assert (again.status_code, again.get_data(as_text=True)) == (200, "repeat\n")
    assert [e["event_id"] for e in stored(admin_engine, world.org_a)] == [event["id"]]
    assert len(jobs(admin_engine, task="apply_rail_event", org_ids=[world.org_a])) == 1
    assert readiness(admin_engine, world.contractor_x) == (False, False)

    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert readiness(admin_engine, world.contractor_x) == (True, True)
    (row,) = stored(admin_engine, world.org_a)
    assert row["applied_at"] is not None and row["outcome"] == "account.updated: ready to be paid"


def test_events_out_of_order_end_on_what_stripe_says_now(app, world, admin_engine, database, configured, account):
    configured.restrict(account, ("external_account",))
    configured.make_ready(account)
    older, newer = configured.events("account.updated")
    client = app.test_client()
    assert post(client, newer).status_code == 200
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert post(client, older).status_code == 200
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert readiness(admin_engine, world.contractor_x) == (True, True)
    outcomes = sorted(r["outcome"] for r in stored(admin_engine, world.org_a))
    assert outcomes == ["account.updated: ready to be paid", "account.updated: ready to be paid (unchanged)"]


@pytest.mark.parametrize("case", ["wrong secret", "missing", "stale", "tampered"])
def test_a_bad_missing_or_stale_signature_is_refused_and_nothing_is_stored(
    app, world, admin_engine, configured, account, case
):
    configured.make_ready(account)
    (event,) = configured.events("account.updated")
    client = app.test_client()
    if case == "wrong secret":
        response = post(client, event, secret="whsec_someone_else")
    elif case == "missing":
        response = post(client, event, header="missing")
    elif case == "stale":
        response = post(client, event, timestamp=int(time.time()) - 301)
    else:
        signature = stripe.WebhookSignature.generate_signature_header(json.dumps(event), SECRET)
        response = post(client, {**event, "type": "account.application.deauthorized"}, header=signature)
    assert response.status_code == 400
    assert stored(admin_engine, world.org_a) == []
    assert jobs(admin_engine, task="apply_rail_event", org_ids=[world.org_a]) == []


def test_an_event_about_no_account_here_is_answered_and_not_kept(app, world, admin_engine, configured, account):
    event = configured.emit("account.updated", {"id": "acct_elsewhere", "object": "account"}, account="acct_elsewhere")
    response = post(app.test_client(), event)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "unknown\n")
    assert owner_query(admin_engine, "select count(*) as n from rail_events where account = 'acct_elsewhere'") == [
        {"n": 0}
    ]


def test_without_a_signing_secret_the_endpoint_says_what_to_set(app, world):
    response = app.test_client().post("/webhooks/stripe", data="{}", headers={"Stripe-Signature": "t=1,v1=x"})
    assert response.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in response.get_data(as_text=True)


def test_the_web_role_cannot_read_or_write_rail_events(world, act_as):
    session = act_as(world.admin.id, world.org_a)
    with pytest.raises(DBAPIError) as refused:
        session.execute(text("select count(*) from rail_events"))
    session.rollback()
    assert refused.value.orig.sqlstate == "42501"


@pytest.mark.parametrize("failed", [False, True], ids=["paid", "failed"])
def test_a_payout_to_the_bank_is_told_to_the_contractor_once(
    app, world, admin_engine, database, configured, account, failed
):
    event = configured.emit_payout(account, 1_234_567, failed=failed, failure_code="account_closed")
    client = app.test_client()
    assert post(client, event).get_data(as_text=True) == "stored\n"
    assert post(client, event).get_data(as_text=True) == "repeat\n"
    run_jobs(database, admin_engine, org_ids=[world.org_a])  # applies the event, which queues the notice
    run_jobs(database, admin_engine, org_ids=[world.org_a])  # sends it
    told = owner_query(
        admin_engine,
        "select n.user_id, n.title, n.body, n.url from notifications n where n.org_id = :o and n.event = :e",
        o=world.org_a,
        e=event["type"],
    )
    assert [(n["user_id"], n["url"]) for n in told] == [(world.contractor_x_user.id, "/invoices/")]
    if failed:
        assert told[0]["title"] == "A payout of $12,345.67 to your bank failed"
        assert "the bank account has been closed" in told[0]["body"]
    else:
        assert told[0]["title"] == "$12,345.67 paid out to your bank"
    (row,) = stored(admin_engine, world.org_a)
    assert row["outcome"] == f"{event['type']}: the contractor is told"


@pytest.mark.parametrize(
    "shape",
    [
        {"type": "v2.core.account[requirements].updated"},
        {"id": "not-an-event"},
        {"type": None},
        {"account": "acct_<script>"},
    ],
    ids=["v2 type", "odd id", "no type", "odd account"],
)
def test_a_signed_event_of_another_shape_is_answered_and_not_kept(app, world, admin_engine, configured, account, shape):
    configured.make_ready(account)
    (event,) = configured.events("account.updated")
    response = post(app.test_client(), {**event, **shape})
    assert response.status_code == 200 and response.get_data(as_text=True) in ("ignored\n", "unknown\n")
    assert stored(admin_engine, world.org_a) == []


def test_a_payout_event_put_in_without_stripe_is_not_told(world, act_as, admin_engine, database, configured, account):
    """rail_event_receive() stores what the web role gives it (any SQL at all could call it): the job reads the
    event back from Stripe and tells nobody what Stripe did not say."""
    genuine = configured.emit_payout(account, 5_000)
    forged = {**genuine, "id": "evt_forged", "data": {"object": {**genuine["data"]["object"], "amount": 999_999}}}
    tampered = {**genuine, "data": {"object": {**genuine["data"]["object"], "amount": 999_999}}}
    session = act_as(world.contractor_y_user.id, world.org_a)  # a signed-in person of the organization, by raw SQL
    for event in (forged, tampered):
        session.execute(
            text("select rail_event_receive('stripe', :id, :type, :account, cast(:payload as jsonb))"),
            {"id": event["id"], "type": event["type"], "account": account, "payload": json.dumps(event)},
        )
    session.commit()
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    outcomes = {r["event_id"]: r["outcome"] for r in stored(admin_engine, world.org_a)}
    assert outcomes == {
        "evt_forged": "payout.paid: Stripe has no such event for this account; not told",
        genuine["id"]: "payout.paid: what was received differs from Stripe's copy; not told",
    }
    told = "select count(*) as n from notifications where org_id = :o and event = 'payout.paid'"
    assert owner_query(admin_engine, told, o=world.org_a) == [{"n": 0}]


def test_a_worker_reads_only_its_own_organizations_rail_events(app, world, admin_engine, database, configured, account):
    """The worker role under another organization's context sees none of this one's events or payout accounts."""
    configured.make_ready(account)
    (event,) = configured.events("account.updated")
    assert post(app.test_client(), event).get_data(as_text=True) == "stored\n"
    runtime.configure(database.worker_url, dataclasses.replace(app.config["BACKOFFICE_SETTINGS"]))
    for org, expected in ((world.org_a, 1), (world.org_b, 0)):
        with runtime.worker_session(org) as session:
            counts = [
                session.execute(text(f"select count(*) from {t}")).scalar_one()
                for t in ("rail_events", "payout_accounts")
            ]
            assert counts == [expected, expected], org
