"""The local Stripe fake (backoffice/dev/stripe_fake.py), driven through the real ``stripe`` SDK.

No database: these tests only ask for the fixtures below. Each test gets its own fake on a free port, and
the SDK's global settings it changes are put back afterwards (``sdk``). Webhooks go to a tiny werkzeug
server (``receiver``) that verifies each one with ``stripe.Webhook.construct_event``, as the app will.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from backoffice.dev.stripe_fake import StripeFake, parse_form

SECRET = "whsec_test_receiver"
KEY = "sk_test_fake"
ROOT = Path(__file__).resolve().parents[2]


# --- fixtures -----------------------------------------------------------------------------------------------------

_GLOBALS = ("api_key", "api_base", "connect_api_base", "max_network_retries", "default_http_client", "enable_telemetry")


@pytest.fixture
def sdk(monkeypatch):
    """The SDK's global settings, restored afterwards. Telemetry off: it would write ~/.config/stripe. Retries
    back off 10 ms instead of 0.5 s or more, so the retry tests stay fast."""
    saved = {name: getattr(stripe, name) for name in _GLOBALS}
    stripe.enable_telemetry = False
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.02)
    try:
        yield
    finally:
        client = stripe.default_http_client
        for name, value in saved.items():
            setattr(stripe, name, value)
        if client is not None and client is not saved["default_http_client"]:
            client.close()


def point_sdk_at(fake: StripeFake, *, retries: int = 0, timeout: float = 5.0) -> None:
    stripe.api_key = KEY
    stripe.api_base = fake.url
    stripe.connect_api_base = fake.url
    stripe.max_network_retries = retries
    stripe.default_http_client = stripe.RequestsClient(timeout=timeout)


@dataclass
class Receiver:
    """A local webhook endpoint: it verifies each POST's signature as the app will, and answers ``status``."""

    url: str = ""
    secret: str = SECRET
    status: int = 200
    events: list = field(default_factory=list)  # verified stripe.Event objects, in arrival order
    rejected: list = field(default_factory=list)  # bodies whose signature did not verify
    visits: list = field(default_factory=list)  # GETs: the browser coming back to return_url
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.events) + len(self.rejected) >= count, timeout=timeout)


@pytest.fixture
def receiver():
    box = Receiver()

    @Request.application
    def app(request: Request) -> Response:
        if request.method == "GET":
            box.visits.append(request.path)
            return Response("back in the app")
        payload = request.get_data(as_text=True)
        try:
            event = stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature"), box.secret)
        except stripe.SignatureVerificationError:
            with box.changed:
                box.rejected.append(payload)
                box.changed.notify_all()
            return Response("bad signature", status=400)
        with box.changed:
            box.events.append(event)
            box.changed.notify_all()
        return Response("", status=box.status)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    box.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def fake(sdk):
    with StripeFake() as running:
        point_sdk_at(running)
        yield running


@pytest.fixture
def hooked(sdk, receiver):
    """A fake that sends its events to ``receiver``."""
    with StripeFake(webhook_url=f"{receiver.url}/webhooks", webhook_secret=SECRET) as running:
        point_sdk_at(running)
        yield running


def new_account(email: str = "contractor@example.com", **extra) -> stripe.Account:
    return stripe.Account.create(
        type="express",
        country="US",
        email=email,
        capabilities={"transfers": {"requested": True}},
        metadata={"contractor_id": "c-42"},
        **extra,
    )


def ready_account(fake: StripeFake) -> str:
    account = new_account()
    fake.make_ready(account.id)
    return account.id


def pay(destination: str, amount: int = 1000, **options) -> stripe.Transfer:
    return stripe.Transfer.create(amount=amount, currency="usd", destination=destination, **options)


# --- accounts and onboarding --------------------------------------------------------------------------------------


def test_a_new_express_account_starts_unable_to_receive_transfers(fake):
    account = new_account()

    assert account.id.startswith("acct_")
    assert (account.type, account.country, account.email) == ("express", "US", "contractor@example.com")
    assert account.capabilities.transfers == "inactive"
    assert not account.charges_enabled and not account.payouts_enabled and not account.details_submitted
    assert {"external_account", "individual.verification.document", "tos_acceptance.date"} <= set(
        account.requirements.currently_due
    )
    assert account.metadata.to_dict() == {"contractor_id": "c-42"}
    assert stripe.Account.retrieve(account.id).id == account.id

    fake.set_balance("usd", 10_000)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        pay(account.id)
    assert refused.value.code == "insufficient_capabilities_for_transfer"
    assert refused.value.http_status == 400
    assert fake.transfers() == [] and fake.balance("usd") == 10_000


def test_an_account_that_does_not_exist_is_a_permission_error_as_on_stripe(fake):
    with pytest.raises(stripe.PermissionError) as refused:
        stripe.Account.retrieve("acct_1DoesNotExist00")
    assert refused.value.error.code == "account_invalid"  # the SDK keeps no .code on a PermissionError


def test_updating_an_account_merges_its_metadata_and_an_empty_value_removes_a_key(fake):
    account = new_account()
    stripe.Account.modify(account.id, metadata={"org": "o-1", "contractor_id": ""})

    assert stripe.Account.retrieve(account.id).metadata.to_dict() == {"org": "o-1"}
    updated = fake.events("account.updated")[-1]
    assert updated["account"] == account.id
    assert updated["data"]["previous_attributes"] == {"metadata": {"contractor_id": "c-42"}}


def test_onboarding_through_the_hosted_page_makes_the_account_ready_and_sends_a_signed_account_updated(
    hooked, receiver
):
    account = new_account()
    link = stripe.AccountLink.create(
        account=account.id,
        refresh_url=f"{receiver.url}/stripe/refresh",
        return_url=f"{receiver.url}/stripe/return",
        type="account_onboarding",
    )
    assert link.object == "account_link" and link.expires_at > time.time()
    assert link.url.startswith(f"{hooked.url}/connect/onboarding/")

    browser = requests.Session()
    page = browser.get(link.url, timeout=5)
    assert page.status_code == 200
    assert f"Stripe (test fake): onboarding for {account.id}" in page.text
    assert "Complete onboarding" in page.text
    session = re.search(r'name="session" value="([^"]+)"', page.text).group(1)

    submitted = browser.post(link.url, data={"session": session, "action": "complete"}, allow_redirects=False)
    assert submitted.status_code == 303
    assert submitted.headers["Location"] == f"{receiver.url}/stripe/return"
    back = browser.get(submitted.headers["Location"], timeout=5)
    assert back.status_code == 200 and receiver.visits == ["/stripe/return"]

    ready = stripe.Account.retrieve(account.id)
    assert ready.payouts_enabled and ready.details_submitted
    assert ready.capabilities.transfers == "active"
    assert ready.requirements.currently_due == []

    assert hooked.flush()
    assert receiver.wait_for(1) and receiver.rejected == []
    [event] = [e for e in receiver.events if e.type == "account.updated"]
    assert event.id.startswith("evt_") and event.account == account.id
    assert event.data.object.id == account.id and event.data.object.payouts_enabled is True
    assert event.data.previous_attributes.capabilities.transfers == "inactive"
    # The same delivery verifies by hand, and not with another secret.
    delivery = hooked.deliveries()[-1]
    assert stripe.Webhook.construct_event(delivery.payload, delivery.signature, SECRET).id == event.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, delivery.signature, "whsec_test_other")

    # An account link works once.
    again = browser.get(link.url, timeout=5)
    assert "this link has expired" in again.text and f"{receiver.url}/stripe/refresh" in again.text


def test_leaving_onboarding_unfinished_returns_to_the_app_with_the_account_still_not_ready(fake):
    account = new_account()
    link = stripe.AccountLink.create(
        account=account.id,
        refresh_url="http://app.test/r",
        return_url="http://app.test/back",
        type="account_onboarding",
    )
    page = requests.get(link.url, timeout=5)
    session = re.search(r'name="session" value="([^"]+)"', page.text).group(1)

    left = requests.post(link.url, data={"session": session, "action": "leave"}, allow_redirects=False, timeout=5)

    assert (left.status_code, left.headers["Location"]) == (303, "http://app.test/back")
    assert stripe.Account.retrieve(account.id).capabilities.transfers == "inactive"


def test_an_expired_account_link_shows_the_expired_page(fake):
    account = new_account()
    link = stripe.AccountLink.create(
        account=account.id,
        refresh_url="http://app.test/r",
        return_url="http://app.test/back",
        type="account_onboarding",
    )
    fake.expire_account_links()

    page = requests.get(link.url, timeout=5)

    assert "this link has expired" in page.text and "http://app.test/r" in page.text
    assert "Complete onboarding" not in page.text


# --- transfers and idempotency ------------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_parameters_return_the_same_transfer_once(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)

    first = pay(destination, 1_200, idempotency_key="payment-1", metadata={"payment_id": "p-1"}, transfer_group="b-1")
    second = pay(destination, 1_200, idempotency_key="payment-1", metadata={"payment_id": "p-1"}, transfer_group="b-1")

    assert first.id == second.id and first.id.startswith("tr_")
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert (first.amount, first.currency, first.destination) == (1_200, "usd", destination)
    assert first.reversed is False and first.amount_reversed == 0 and first.reversals.data == []
    assert first.metadata.to_dict() == {"payment_id": "p-1"} and first.transfer_group == "b-1"
    assert len(fake.transfers()) == 1
    assert fake.balance("usd") == 3_800
    assert stripe.Transfer.retrieve(first.id).amount == 1_200


def test_the_same_idempotency_key_with_another_amount_is_an_idempotency_error(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)
    pay(destination, 1_000, idempotency_key="payment-1")

    # Stripe answers 400 idempotency_error; the SDK raises IdempotencyError, which is not an InvalidRequestError.
    with pytest.raises(stripe.IdempotencyError) as refused:
        pay(destination, 1_001, idempotency_key="payment-1")

    assert refused.value.http_status == 400
    assert refused.value.json_body["error"]["type"] == "idempotency_error"
    assert "same parameters" in refused.value.user_message
    assert len(fake.transfers()) == 1 and fake.balance("usd") == 4_000


def test_twenty_threads_with_one_idempotency_key_make_exactly_one_transfer(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 100_000)
    start = threading.Barrier(20)

    def attempt(_):
        start.wait()
        return pay(destination, 2_500, idempotency_key="payment-concurrent").id

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(attempt, range(20)))

    assert len(set(ids)) == 1
    assert [t["id"] for t in fake.transfers()] == ids[:1]
    assert fake.balance("usd") == 97_500


def test_insufficient_balance_is_refused_and_the_refusal_stays_with_its_key_as_on_stripe(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 999)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        pay(destination, 1_000, idempotency_key="payment-1")
    assert refused.value.code == "balance_insufficient" and refused.value.http_status == 400

    # Stripe saves the answer of a request that ran: the same key replays the refusal even once funds are there.
    fake.set_balance("usd", 5_000)
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        pay(destination, 1_000, idempotency_key="payment-1")
    assert replayed.value.code == "balance_insufficient"
    assert pay(destination, 1_000, idempotency_key="payment-1-retry").amount == 1_000
    assert len(fake.transfers()) == 1


def test_an_unknown_destination_is_refused_with_resource_missing(fake):
    fake.set_balance("usd", 5_000)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        pay("acct_1NoSuchAccount00")

    assert (refused.value.code, refused.value.param) == ("resource_missing", "destination")


def test_an_unknown_parameter_is_refused_as_stripe_refuses_it(fake):
    destination = ready_account(fake)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe.Transfer.create(amount=1, currency="usd", destination=destination, metdata={"typo": "1"})

    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "metdata")


@pytest.mark.parametrize(
    ("kind", "code"),
    [("insufficient_funds", "balance_insufficient"), ("account_not_ready", "insufficient_capabilities_for_transfer")],
)
def test_an_injected_refusal_refuses_the_next_transfer_only(fake, kind, code):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)
    fake.fail_next("/v1/transfers", kind)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        pay(destination)

    assert refused.value.code == code
    assert pay(destination).amount == 1_000
    assert len(fake.transfers()) == 1


@pytest.mark.parametrize("kind", ["500", "429"])
def test_an_injected_server_error_or_rate_limit_is_retried_by_the_sdk(fake, kind):
    stripe.max_network_retries = 2
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)
    fake.fail_next("/v1/transfers", kind, times=2)

    transfer = pay(destination, idempotency_key="payment-1")

    assert [t["id"] for t in fake.transfers()] == [transfer.id]
    assert fake.balance("usd") == 4_000


@pytest.mark.parametrize(("kind", "error"), [("500", stripe.APIError), ("429", stripe.RateLimitError)])
def test_without_retries_an_injected_failure_raises_the_sdks_exception(fake, kind, error):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)
    fake.fail_next("/v1/transfers", kind)

    with pytest.raises(error):
        pay(destination, idempotency_key="payment-1")

    assert fake.transfers() == []
    # The failure happened before the transfer ran, so the key is still free.
    assert pay(destination, idempotency_key="payment-1").amount == 1_000


def test_a_held_response_is_a_connection_error_with_a_short_client_timeout_and_a_retry_gets_through(fake):
    stripe.default_http_client = stripe.RequestsClient(timeout=0.3)
    fake.set_balance("usd", 1_234)
    fake.fail_next("/v1/balance", "timeout", timeout_seconds=2)

    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        stripe.Balance.retrieve()
    assert time.monotonic() - started < 1.5

    stripe.max_network_retries = 1
    fake.fail_next("/v1/balance", "timeout", timeout_seconds=2)
    assert stripe.Balance.retrieve().available[0].amount == 1_234


def test_a_transfer_accepted_then_dropped_is_returned_again_by_a_retry_with_the_same_key(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)

    # Without retries the caller sees a connection error, though Stripe made the transfer.
    fake.accept_then_drop("/v1/transfers")
    with pytest.raises(stripe.APIConnectionError):
        pay(destination, idempotency_key="payment-1")
    [made] = fake.transfers()
    assert pay(destination, idempotency_key="payment-1").id == made["id"]

    # With retries the SDK sends the same Idempotency-Key again and gets the saved transfer.
    stripe.max_network_retries = 2
    fake.accept_then_drop("/v1/transfers")
    second = pay(destination, idempotency_key="payment-2")
    assert [t["id"] for t in fake.transfers()] == [made["id"], second.id]
    assert fake.balance("usd") == 3_000


def test_listing_pages_through_250_transfers_newest_first_with_filters(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 1_000_000)
    made = [pay(destination, 100 + n, transfer_group="batch-a" if n % 5 == 0 else None).id for n in range(250)]
    newest_first = list(reversed(made))

    page = stripe.Transfer.list(limit=100)
    assert page.object == "list" and page.url == "/v1/transfers" and page.has_more is True
    assert [t.id for t in page.data] == newest_first[:100]
    assert [t.id for t in stripe.Transfer.list(limit=100).auto_paging_iter()] == newest_first
    assert [t.id for t in stripe.Transfer.list(limit=7, transfer_group="batch-a").auto_paging_iter()] == [
        t for t in newest_first if made.index(t) % 5 == 0
    ]

    after = stripe.Transfer.list(limit=3, starting_after=newest_first[9])
    assert [t.id for t in after.data] == newest_first[10:13]
    before = stripe.Transfer.list(limit=3, ending_before=newest_first[9])
    assert [t.id for t in before.data] == newest_first[6:9] and before.has_more is True

    now = int(time.time())
    assert stripe.Transfer.list(created={"gte": now + 60}).data == []
    assert len(list(stripe.Transfer.list(limit=100, created={"lte": now + 1}).auto_paging_iter())) == 250
    assert stripe.Transfer.list(destination=destination, limit=1).data[0].id == newest_first[0]


def test_a_reversal_updates_the_transfer_and_the_balance_and_sends_transfer_reversed(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)
    transfer = pay(destination, 1_000)

    partial = stripe.Transfer.create_reversal(transfer.id, amount=400)
    assert partial.object == "transfer_reversal" and partial.id.startswith("trr_")
    assert (partial.amount, partial.transfer) == (400, transfer.id)
    halfway = stripe.Transfer.retrieve(transfer.id)
    assert (halfway.amount_reversed, halfway.reversed) == (400, False)
    assert fake.balance("usd") == 4_400

    rest = stripe.Transfer.create_reversal(transfer.id)  # no amount: what remains
    assert rest.amount == 600
    done = stripe.Transfer.retrieve(transfer.id)
    assert (done.amount_reversed, done.reversed) == (1_000, True)
    assert [r.id for r in done.reversals.data] == [rest.id, partial.id]
    assert [r.id for r in stripe.Transfer.list_reversals(transfer.id).data] == [rest.id, partial.id]
    assert stripe.Balance.retrieve().available[0].amount == 5_000

    with pytest.raises(stripe.InvalidRequestError):
        stripe.Transfer.create_reversal(transfer.id, amount=1)

    reversed_events = fake.events("transfer.reversed")
    assert [e["data"]["object"]["amount_reversed"] for e in reversed_events] == [400, 1_000]
    assert reversed_events[-1]["data"]["previous_attributes"]["reversed"] is False
    assert "account" not in reversed_events[-1]  # a platform event, not a connected account's


def test_the_balance_lists_what_is_available_per_currency(fake):
    fake.set_balance("usd", 12_345)
    fake.set_balance("EUR", 500)

    balance = stripe.Balance.retrieve()

    assert balance.object == "balance"
    assert {(b.currency, b.amount) for b in balance.available} == {("usd", 12_345), ("eur", 500)}
    assert {b.amount for b in balance.pending} == {0}


# --- authentication -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sk_live_abcdefghijkl", "pk_test_abcdefghijkl", "rk_test_abcdefghijkl"])
def test_a_key_that_is_not_a_test_secret_key_is_an_authentication_error(fake, key):
    stripe.api_key = key

    with pytest.raises(stripe.AuthenticationError) as refused:
        stripe.Balance.retrieve()

    assert refused.value.http_status == 401
    assert "abcdefghijkl" not in refused.value.user_message  # the key is masked, as Stripe masks it


def test_a_request_without_a_key_is_refused_with_a_stripe_shaped_401(fake):
    answer = requests.get(f"{fake.url}/v1/balance", timeout=5)

    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert "You did not provide an API key" in answer.json()["error"]["message"]


# --- webhooks -----------------------------------------------------------------------------------------------------


def test_events_reach_the_receiver_signed_and_in_the_order_they_happened(hooked, receiver):
    destination = ready_account(hooked)
    hooked.set_balance("usd", 5_000)
    transfer = pay(destination, 1_000, idempotency_key="payment-1")
    stripe.Transfer.create_reversal(transfer.id, amount=100)

    assert hooked.flush()
    assert receiver.wait_for(3) and receiver.rejected == []
    assert [e.type for e in receiver.events] == ["account.updated", "transfer.created", "transfer.reversed"]
    created = receiver.events[1]
    assert created.data.object.id == transfer.id
    assert created.request.idempotency_key == "payment-1"
    assert all(d.ok for d in hooked.deliveries())
    assert [e.id for e in receiver.events] == [e["id"] for e in hooked.events()]


def test_a_receiver_with_another_secret_rejects_the_signature(hooked, receiver):
    receiver.secret = "whsec_test_not_the_one"
    hooked.emit("account.updated", {"id": "acct_1Example00000000", "object": "account"}, account="acct_1Example")

    assert hooked.flush() and receiver.wait_for(1)
    assert receiver.events == [] and len(receiver.rejected) == 1
    assert hooked.deliveries()[0].status == 400


def test_payout_events_carry_the_connected_account(hooked, receiver):
    destination = new_account().id

    hooked.emit_payout(destination, 1_000, failed=True, failure_code="account_closed")
    hooked.emit_payout(destination, 2_000)

    assert hooked.flush() and receiver.wait_for(2)
    failed, paid = receiver.events
    assert (failed.type, failed.account, failed.data.object.failure_code) == (
        "payout.failed",
        destination,
        "account_closed",
    )
    assert (paid.type, paid.account, paid.data.object.status) == ("payout.paid", destination, "paid")


def test_a_failed_delivery_is_recorded_not_raised_and_can_be_redelivered(sdk, receiver):
    with StripeFake(webhook_url=url_where_nothing_listens(), webhook_secret=SECRET) as fake:
        point_sdk_at(fake)
        account = new_account()  # the request itself is not held up by the dead receiver
        event = fake.emit("account.updated", stripe.Account.retrieve(account.id).to_dict(), account=account.id)
        assert fake.flush()
        [failed] = fake.deliveries()
        assert failed.status is None and failed.error and not failed.ok

        fake.webhook_url = f"{receiver.url}/webhooks"
        redelivered = fake.redeliver(event["id"])

    assert redelivered.ok and [e.id for e in receiver.events] == [event["id"]]


def test_deliver_can_send_events_out_of_order(sdk, receiver):
    with StripeFake(webhook_url=f"{receiver.url}/webhooks", webhook_secret=SECRET, auto_deliver=False) as fake:
        point_sdk_at(fake)
        account = new_account()
        first = fake.emit("account.updated", {"id": account.id, "object": "account"}, account=account.id)
        second = fake.emit("payout.paid", {"id": "po_1Example", "object": "payout"}, account=account.id)
        assert fake.flush() and receiver.events == []  # auto_deliver=False: recorded only

        fake.deliver([first, second], out_of_order=True)

    assert [e.id for e in receiver.events] == [second["id"], first["id"]]


def test_events_can_be_listed_through_the_api(fake):
    destination = ready_account(fake)
    fake.set_balance("usd", 5_000)
    transfer = pay(destination)

    platform_events = stripe.Event.list(type="transfer.*")
    assert [e.data.object.id for e in platform_events.data] == [transfer.id]
    assert stripe.Event.retrieve(platform_events.data[0].id).type == "transfer.created"
    # A connected account's events are listed on its behalf, as on Stripe.
    connected = stripe.Event.list(stripe_account=destination)
    assert {e.type for e in connected.data} == {"account.updated"}


# --- other ways in ------------------------------------------------------------------------------------------------


def test_a_stripe_client_talks_to_the_fake_without_global_settings(sdk):
    with StripeFake() as fake:
        fake.set_balance("usd", 777)
        client = fake.client(http_client=stripe.RequestsClient(timeout=5))

        assert client.v1.balance.retrieve().available[0].amount == 777
        account = client.v1.accounts.create(
            params={"type": "express", "capabilities": {"transfers": {"requested": True}}}
        )
        assert [a["id"] for a in fake.accounts()] == [account.id]


def test_nested_form_parameters_parse_as_stripe_reads_them():
    parsed = parse_form(
        "capabilities[transfers][requested]=true&metadata[0]=zero&metadata[k]=v&expand[0]=a&expand[1]=b"
        "&created[gte]=5&items[]=x&items[]=y"
    )

    assert parsed == {
        "capabilities": {"transfers": {"requested": "true"}},
        "metadata": {"0": "zero", "k": "v"},
        "expand": ["a", "b"],
        "created": {"gte": "5"},
        "items": ["x", "y"],
    }


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "backoffice.dev.stripe_fake", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_the_command_line_explains_itself():
    process = _cli("--help")
    out, _ = process.communicate(timeout=30)

    assert process.returncode == 0
    for option in ("--port", "--webhook-url", "--webhook-secret", "--balance-usd"):
        assert option in out


def test_the_command_line_serves_on_localhost_until_interrupted(sdk):
    process = _cli("--port", "0", "--balance-usd", "4321")
    try:
        first = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first).group(0)
        rest = "".join(process.stdout.readline() for _ in range(5))
        assert f"STRIPE_API_BASE={url}" in rest and "STRIPE_SECRET_KEY=sk_test_fake" in rest
        assert "STRIPE_WEBHOOK_SECRET=whsec_test_fake" in rest

        client = stripe.StripeClient(KEY, base_addresses={"api": url}, http_client=stripe.RequestsClient(timeout=5))
        assert client.v1.balance.retrieve().available[0].amount == 4321
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0


def url_where_nothing_listens() -> str:
    """A URL on a port of 127.0.0.1 that was free a moment ago, so that connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhooks"
