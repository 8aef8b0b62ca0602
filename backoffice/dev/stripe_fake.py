"""A local, stateful fake of the Stripe Connect endpoints the back office will call, for the real ``stripe`` SDK.

Why: stripe-mock cannot be installed here, and stripe-mock is stateless anyway (it never remembers an account,
a balance or an idempotency key). Tests and the offline demo instead point the real SDK at this server, so the
SDK's own request encoding, retries, idempotency keys, response parsing and exception classes are exercised,
and only Stripe's side is imitated.

What it fakes (on 127.0.0.1 only, state in memory, one lock around it):

- ``POST /v1/accounts``, ``GET /v1/accounts[/{id}]``, ``POST /v1/accounts/{id}``: Express accounts that start
  with ``transfers`` inactive and requirements due, until onboarding completes.
- ``POST /v1/account_links`` and the hosted onboarding page it points to (``/connect/onboarding/<token>``):
  one-time, expiring links; "Complete onboarding" makes the account ready, sends ``account.updated`` and
  redirects (303) to the link's ``return_url``.
- ``POST /v1/transfers``, ``GET /v1/transfers[/{id}]``, ``POST /v1/transfers/{id}``, reversals
  (``POST``/``GET /v1/transfers/{id}/reversals``) and ``GET /v1/balance``: transfers debit the platform's
  available balance; reversals credit it back.
- ``GET /v1/events[/{id}]`` and signed webhooks (``Stripe-Signature``, made by the SDK's own
  ``stripe.WebhookSignature.generate_signature_header``), sent from one background thread in order.
- Idempotency as Stripe documents it: a POST's status and body are saved under its ``Idempotency-Key`` and
  replayed (``Idempotent-Replayed: true``) for the same endpoint and parameters; other parameters or another
  endpoint get a 400 ``idempotency_error`` (the SDK raises ``stripe.IdempotencyError``, which is *not* an
  ``InvalidRequestError``). Refusals that happen once the request runs (``balance_insufficient``,
  ``insufficient_capabilities_for_transfer``) are saved too, so retrying them with the same key gets the same
  error even after the balance is topped up; validation errors (unknown or missing parameters, unknown ids)
  are not saved. Requests run one at a time under the lock, so concurrent requests with one key never race
  (real Stripe may answer the loser with a 409 ``idempotency_key_in_use``, which the SDK retries).
- Error bodies and statuses as Stripe sends them: 401 for a key that is not ``sk_test_...``, 403
  ``account_invalid`` for an unknown account id, 404 ``resource_missing``, 400 ``parameter_unknown`` /
  ``parameter_missing`` / ``parameter_invalid_integer``, so mistakes in the caller's parameters surface here.

Test controls (plain methods): ``set_balance``, ``make_ready``, ``restrict``, ``fail_next`` (500, 429,
timeout, insufficient funds, account not ready), ``accept_then_drop`` (applied, then the connection dies),
``expire_account_links``, ``emit``/``emit_payout``, ``deliver``/``redeliver``/``flush``, and read-only copies
of ``accounts()``, ``transfers()``, ``events()``, ``deliveries()``. ``save``/``load`` write and read what Stripe
would remember across a restart; ``SavedStripeFake`` keeps it in a file after every change (the offline demo).

Pointing the SDK at it (tests restore these afterwards)::

    stripe.api_key = "sk_test_fake"
    stripe.api_base = fake.url
    stripe.connect_api_base = fake.url  # only OAuth uses it; the fake has no OAuth endpoints
    stripe.max_network_retries = 0  # or more, to exercise the SDK's retries against fail_next
    stripe.default_http_client = stripe.RequestsClient(timeout=0.5)  # a short client timeout, for "timeout"

or without global state: ``fake.client()`` is a ``stripe.StripeClient`` whose base addresses are the fake.

What it does not fake: charges, payment intents and customers; payouts themselves (``emit_payout`` only sends
the ``payout.paid``/``payout.failed`` events a connected account's payout would); connected accounts'
own balances and requests made on their behalf (the ``Stripe-Account`` header is refused except on
``/v1/events``); OAuth; pending balances becoming available; idempotency keys expiring after 24 hours;
Stripe's webhook retries over three days (use ``redeliver``); API versions (one response shape); and
``expand`` (accepted, ignored).

Run it by hand: ``python -m backoffice.dev.stripe_fake --help``.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import queue
import re
import secrets
import string
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import stripe

DEFAULT_WEBHOOK_SECRET = "whsec_test_fake"
DEFAULT_API_KEY = "sk_test_fake"
STATE_VERSION = 1  # the layout of the file StripeFake.save writes
LINK_LIFETIME_SECONDS = 300  # Stripe's account links expire a few minutes after they are made
FAULT_KINDS = ("500", "429", "timeout", "insufficient_funds", "account_not_ready")
_TRANSPORT_FAULTS = frozenset({"500", "429", "timeout"})
_BUSINESS_FAULTS = frozenset({"insufficient_funds", "account_not_ready"})

# What a new US Express account must still provide before Stripe enables transfers.
ONBOARDING_REQUIREMENTS = (
    "business_type",
    "external_account",
    "individual.first_name",
    "individual.last_name",
    "individual.verification.document",
    "tos_acceptance.date",
    "tos_acceptance.ip",
)

NOT_READY_MESSAGE = (
    "Your destination account needs to have at least one of the following capabilities enabled: "
    "transfers, crypto_transfers, legacy_payments"
)
INSUFFICIENT_MESSAGE = (
    "You have insufficient available funds in your Stripe account. Try adding funds directly to your available "
    "balance by creating Charges using the 4000000000000077 test card. See: "
    "https://stripe.com/docs/testing#available-balance"
)
_DEFAULT_CURRENCY = {"US": "usd", "CA": "cad", "GB": "gbp", "AU": "aud", "JP": "jpy", "CH": "chf"}
_EURO_COUNTRIES = {"AT", "BE", "DE", "EE", "ES", "FI", "FR", "GR", "IE", "IT", "LT", "LU", "LV", "NL", "PT", "SI", "SK"}
_ALNUM = string.ascii_letters + string.digits


def _new_id(prefix: str) -> str:
    return f"{prefix}_1{''.join(secrets.choice(_ALNUM) for _ in range(15))}"


def _now() -> int:
    return int(time.time())


class _Refusal(Exception):
    """An error answer, shaped as Stripe's: ``{"error": {"type", "code", "message", "param"}}`` (null keys left
    out, as Stripe does). ``saved``: the request had started to run, so its idempotency key keeps this answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = False,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.saved = saved
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"type": self.type, "code": self.code, "message": self.message, "param": self.param}
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        return {"error": {k: v for k, v in error.items() if v is not None}}


def _missing(name: str) -> _Refusal:
    return _Refusal(400, f"Missing required param: {name}.", code="parameter_missing", param=name)


def _no_such(kind: str, object_id: str, param: str = "id") -> _Refusal:
    return _Refusal(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def _mask(api_key: str) -> str:
    return api_key[:8] + "*" * max(len(api_key) - 12, 0) + api_key[-4:]


# --- request parameters ------------------------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(raw: str) -> dict:
    """Stripe's form encoding to nested dicts and lists: ``metadata[k]=v``, ``capabilities[transfers][requested]=
    true``, ``expand[0]=x`` or ``expand[]=x``, ``created[gte]=1``. Values stay strings, as on the wire."""
    params: dict = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))] if match else [key]
        node = params
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = parts[-1] if parts[-1] != "" else str(len(node))
        node[last] = value
    return _listify(params)


def _listify(node, *, under_metadata: bool = False):
    """Dicts keyed 0..n-1 become lists, except under ``metadata``, whose keys are the caller's own."""
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, under_metadata=under_metadata or k == "metadata") for k, v in node.items()}
    if not under_metadata and out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _allow(params: dict, names: Iterable[str]) -> None:
    allowed = {*names, "expand"}
    for name in params:
        if name not in allowed:
            raise _Refusal(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def _int(params: dict, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise _Refusal(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise _Refusal(
            400, f"This value must be greater than or equal to {minimum}.", code="parameter_invalid_integer", param=name
        )
    return value


def _str(params: dict, name: str, *, required: bool = False) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(raw, str):
        raise _Refusal(400, f"Invalid string: {raw!r}", param=name)
    return raw


def _currency(params: dict) -> str:
    currency = _str(params, "currency", required=True).lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise _Refusal(400, f"Invalid currency: {currency}.", param="currency")
    return currency


def _url(params: dict, name: str) -> str:
    url = _str(params, name, required=True)
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise _Refusal(400, "Not a valid URL", code="url_invalid", param=name)
    return url


def _metadata(value, current: dict) -> dict:
    """Stripe's metadata rules: ``metadata[k]=`` removes k, ``metadata=`` removes all; at most 50 keys of 40
    characters, values of 500."""
    if value is None:
        return dict(current)
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise _Refusal(400, "Invalid object", param="metadata")
    result = dict(current)
    for key, item in value.items():
        if not isinstance(item, str):
            raise _Refusal(400, "Invalid metadata value: nested objects are not allowed", param=f"metadata[{key}]")
        if len(key) > 40:
            raise _Refusal(400, "Metadata keys can have up to 40 characters.", param=f"metadata[{key}]")
        if len(item) > 500:
            raise _Refusal(400, "Metadata values can have up to 500 characters.", param=f"metadata[{key}]")
        if item == "":
            result.pop(key, None)
        else:
            result[key] = item
    if len(result) > 50:
        raise _Refusal(400, "You can have up to 50 metadata keys.", param="metadata")
    return result


def _changed(before: dict, after: dict) -> dict:
    """Stripe's ``previous_attributes``: the old values of the top-level fields that changed."""
    return {key: before.get(key) for key in after if before.get(key) != after.get(key)}


# --- test controls' records --------------------------------------------------------------------------------------


@dataclass
class _Fault:
    prefix: str
    kind: str  # one of FAULT_KINDS, or "drop" (accept_then_drop)
    remaining: int
    method: str | None
    timeout_seconds: float

    def matches(self, method: str, path: str, kinds: Iterable[str]) -> bool:
        return (
            self.remaining > 0
            and self.kind in kinds
            and path.startswith(self.prefix)
            and (self.method is None or self.method == method)
        )


@dataclass(frozen=True)
class Delivery:
    """One attempt to POST an event to the webhook URL. ``status`` is the receiver's HTTP status (None when no
    answer came: ``error`` says why)."""

    event_id: str
    event_type: str
    url: str
    status: int | None
    error: str | None
    payload: str
    signature: str
    at: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Saved:
    endpoint: tuple[str, str]
    params: dict
    status: int
    body: bytes
    request_id: str


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


def _json_reply(status: int, obj: dict, request_id: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj, indent=2).encode(), headers={"Request-Id": request_id, **(headers or {})})


# --- the fake ----------------------------------------------------------------------------------------------------


class StripeFake:
    """The server and its state. ``start()``/``stop()``, or ``with StripeFake() as fake:``. ``port=0``: a free
    port; ``url`` once started. ``webhook_url``: where events are POSTed, signed with ``webhook_secret``, from a
    background thread (``auto_deliver=False``: only recorded, for tests that call ``deliver`` themselves).
    ``log``: a function given one line per request (the command line prints them)."""

    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        *,
        port: int = 0,
        auto_deliver: bool = True,
        webhook_timeout: float = 5.0,
        log: Callable[[str], None] | None = None,
    ):
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.auto_deliver = auto_deliver
        self.webhook_timeout = webhook_timeout
        self._port = port
        self._log = log
        self._lock = threading.RLock()
        self._accounts: dict[str, dict] = {}
        self._transfers: dict[str, dict] = {}
        self._events: list[dict] = []
        self._links: dict[str, dict] = {}
        self._balances: dict[str, int] = {"usd": 0}
        self._idempotency: dict[tuple[str, str], _Saved] = {}
        self._faults: list[_Fault] = []
        self._deliveries: list[Delivery] = []
        self._outbox: queue.Queue = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # lifecycle

    def start(self) -> StripeFake:
        if self._server is not None:
            raise RuntimeError("the Stripe fake is already running")
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.fake = self
        self._server = server
        self._stopping.clear()
        serving = threading.Thread(target=server.serve_forever, args=(0.05,), name="stripe-fake", daemon=True)
        sending = threading.Thread(target=self._send_loop, name="stripe-fake-webhooks", daemon=True)
        self._threads = [serving, sending]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and sending; a request held by a "timeout" fault is let go at once. Events still waiting
        to be sent are dropped (``flush()`` first to wait for them)."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> StripeFake:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Stripe fake is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client(self, api_key: str = DEFAULT_API_KEY, **options) -> stripe.StripeClient:
        """A ``stripe.StripeClient`` that talks to this fake, leaving the SDK's global settings alone."""
        return stripe.StripeClient(api_key, base_addresses={"api": self.url, "connect": self.url}, **options)

    # test controls

    def set_balance(self, currency: str, amount: int) -> None:
        """The platform's available balance in ``currency`` (smallest unit: cents), which transfers draw on."""
        with self._lock:
            self._balances[currency.lower()] = amount

    def balance(self, currency: str = "usd") -> int:
        with self._lock:
            return self._balances.get(currency.lower(), 0)

    def make_ready(self, account_id: str) -> dict:
        """As if the account finished onboarding and Stripe verified it: ``transfers`` active, payouts enabled,
        nothing due. Sends ``account.updated``. Returns the account."""
        with self._lock:
            account = self._account_or_raise(account_id)
            before = copy.deepcopy(account)
            capabilities = {name: "active" for name in account["capabilities"]} | {"transfers": "active"}
            account.update(
                capabilities=capabilities,
                charges_enabled=capabilities.get("card_payments") == "active",
                payouts_enabled=True,
                details_submitted=True,
                requirements=_requirements(()),
                tos_acceptance={"date": _now(), "ip": "127.0.0.1", "user_agent": "stripe-fake"},
            )
            self._emit("account.updated", account, account=account_id, previous_attributes=_changed(before, account))
            return copy.deepcopy(account)

    def restrict(self, account_id: str, currently_due: Iterable[str] = ("individual.verification.document",)) -> dict:
        """As if Stripe asked the account for more information: ``transfers`` inactive, payouts disabled, the given
        requirements past due. Sends ``account.updated``. Returns the account."""
        with self._lock:
            account = self._account_or_raise(account_id)
            before = copy.deepcopy(account)
            account.update(
                capabilities={name: "inactive" for name in account["capabilities"]} | {"transfers": "inactive"},
                charges_enabled=False,
                payouts_enabled=False,
                requirements=_requirements(tuple(currently_due)),
            )
            self._emit("account.updated", account, account=account_id, previous_attributes=_changed(before, account))
            return copy.deepcopy(account)

    def fail_next(
        self, path_prefix: str, kind: str, times: int = 1, *, method: str | None = None, timeout_seconds: float = 3.0
    ) -> None:
        """The next ``times`` requests whose path starts with ``path_prefix`` (and whose method is ``method``, if
        given) fail, before they are applied and without touching their idempotency key:

        - ``"500"``: 500 ``api_error`` (the SDK retries it when ``stripe.max_network_retries`` > 0, else raises
          ``stripe.APIError``);
        - ``"429"``: 429 ``rate_limit`` with ``Stripe-Should-Retry: true`` (retried, else ``stripe.RateLimitError``;
          the header is what makes the SDK retry a 429);
        - ``"timeout"``: no answer for ``timeout_seconds``, then the connection is closed (set a shorter client
          timeout: ``stripe.default_http_client = stripe.RequestsClient(timeout=0.5)``; the SDK raises
          ``stripe.APIConnectionError``, or retries);
        - ``"insufficient_funds"`` / ``"account_not_ready"``: the next transfers created (``POST /v1/transfers``)
          are refused with ``balance_insufficient`` / ``insufficient_capabilities_for_transfer`` whatever the
          balance and account say; like the real refusals, these are saved under the idempotency key.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        with self._lock:
            self._faults.append(_Fault(path_prefix, kind, times, method and method.upper(), timeout_seconds))

    def accept_then_drop(self, path_prefix: str, times: int = 1, *, method: str | None = None) -> None:
        """The next ``times`` matching requests are applied (and saved under their idempotency key) but the
        connection is closed without an answer, as if the network died after Stripe accepted them. The SDK
        raises ``stripe.APIConnectionError`` or retries with the same ``Idempotency-Key`` and gets the saved
        answer."""
        with self._lock:
            self._faults.append(_Fault(path_prefix, "drop", times, method and method.upper(), 0))

    def expire_account_links(self) -> None:
        """Every account link made so far is expired: its page shows the expired page."""
        with self._lock:
            for link in self._links.values():
                link["expires_at"] = _now() - 1

    def accounts(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._accounts.values()))

    def transfers(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._transfers.values()))

    def events(self, event_type: str | None = None) -> list[dict]:
        with self._lock:
            return copy.deepcopy([e for e in self._events if event_type is None or e["type"] == event_type])

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def emit(
        self, event_type: str, data_object: dict, account: str | None = None, previous_attributes: dict | None = None
    ) -> dict:
        """Records an event (``evt_...``) about ``data_object`` and, with a webhook URL, sends it in the background.
        ``account``: the connected account a Connect event is about (``account.updated``, ``payout.paid``, ...)."""
        event = self._emit(event_type, data_object, account=account, previous_attributes=previous_attributes)
        return copy.deepcopy(event)

    def emit_payout(
        self,
        account_id: str,
        amount: int,
        currency: str = "usd",
        *,
        failed: bool = False,
        failure_code: str = "account_closed",
    ) -> dict:
        """The event a connected account's bank payout sends: ``payout.paid``, or ``payout.failed`` with
        ``failure_code``. The fake keeps no payouts; this is only the event."""
        now = _now()
        payout = {
            "id": _new_id("po"),
            "object": "payout",
            "amount": amount,
            "arrival_date": now,
            "automatic": True,
            "balance_transaction": _new_id("txn"),
            "created": now,
            "currency": currency,
            "description": "STRIPE PAYOUT",
            "destination": _new_id("ba"),
            "failure_balance_transaction": _new_id("txn") if failed else None,
            "failure_code": failure_code if failed else None,
            "failure_message": f"The payout failed ({failure_code}) (test fake)." if failed else None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "source_type": "card",
            "statement_descriptor": None,
            "status": "failed" if failed else "paid",
            "type": "bank_account",
        }
        return self.emit("payout.failed" if failed else "payout.paid", payout, account=account_id)

    # webhooks

    def deliver(self, events, *, out_of_order: bool = False) -> list[Delivery]:
        """POSTs the given events (event dicts, ids, or a list of them) to the webhook URL now, in this thread,
        freshly signed; ``out_of_order=True`` sends them newest first. Returns the deliveries (also recorded)."""
        if not self.webhook_url:
            raise RuntimeError("the fake has no webhook_url to deliver to")
        if isinstance(events, str | dict):
            events = [events]
        with self._lock:
            order = {e["id"]: n for n, e in enumerate(self._events)}
            chosen = [self._event_or_raise(e if isinstance(e, str) else e["id"]) for e in events]
        chosen.sort(key=lambda e: order[e["id"]], reverse=out_of_order)
        return [self._post_event(event) for event in chosen]

    def redeliver(self, event_id: str) -> Delivery:
        """Sends one recorded event again (Stripe's "Resend" button)."""
        return self.deliver(event_id)[0]

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every event emitted so far has been sent (or failed to be). False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def _emit(
        self,
        event_type: str,
        data_object: dict,
        *,
        account: str | None = None,
        previous_attributes: dict | None = None,
        request: dict | None = None,
    ) -> dict:
        event = {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": stripe.api_version,
            "created": _now(),
            "data": {"object": copy.deepcopy(data_object)},
            "livemode": False,
            "pending_webhooks": 1 if self.webhook_url else 0,
            "request": request or {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        if previous_attributes:
            event["data"]["previous_attributes"] = copy.deepcopy(previous_attributes)
        if account:
            event["account"] = account
        with self._lock:
            self._events.append(event)
            if self.webhook_url and self.auto_deliver and not self._stopping.is_set():
                with self._idle:
                    self._pending += 1
                self._outbox.put(event)
        return event

    def _send_loop(self) -> None:
        while True:
            event = self._outbox.get()
            if event is None:
                return
            try:
                if not self._stopping.is_set():
                    self._post_event(event)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _post_event(self, event: dict) -> Delivery:
        """One POST of ``event`` to the webhook URL, signed as Stripe signs (``t=<ts>,v1=<HMAC-SHA256 of
        "<ts>.<payload>">``) by the SDK's public ``WebhookSignature.generate_signature_header``. Never raises."""
        payload = json.dumps(event, indent=2)
        signature = stripe.WebhookSignature.generate_signature_header(payload, self.webhook_secret)
        request = urllib.request.Request(
            self.webhook_url,
            data=payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )
        status, error = None, None
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout) as response:
                status = response.status
        except urllib.error.HTTPError as e:
            status, error = e.code, f"HTTP {e.code}"
        except Exception as e:  # refused, timed out, reset: recorded, never raised
            error = f"{type(e).__name__}: {e}"
        delivery = Delivery(
            event["id"], event["type"], self.webhook_url, status, error, payload, signature, time.time()
        )
        with self._lock:
            self._deliveries.append(delivery)
        return delivery

    # HTTP

    def _dispatch(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        """The answer to one request, or None to close the connection without one."""
        if path.startswith("/connect/onboarding/"):
            return self._onboarding(method, path.removeprefix("/connect/onboarding/"), body)
        request_id = _new_id("req")
        if not path.startswith("/v1/"):
            return _json_reply(404, _unrecognized(method, path).body(), request_id)
        try:
            api_key = self._authenticate(headers)
        except _Refusal as refusal:
            return _json_reply(refusal.status, refusal.body(), request_id)
        with self._lock:
            fault = self._take_fault(method, path, _TRANSPORT_FAULTS)
        if fault is not None:
            if fault.kind == "timeout":
                self._stopping.wait(fault.timeout_seconds)
                return None
            if fault.kind == "429":
                refusal = _Refusal(
                    429,
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    code="rate_limit",
                    headers={"Stripe-Should-Retry": "true"},
                )
            else:
                refusal = _Refusal(500, "An unknown error occurred (injected by the test fake).", type="api_error")
            return _json_reply(refusal.status, refusal.body(), request_id, refusal.headers)
        params = parse_form(query if method in ("GET", "DELETE") else body.decode("utf-8", "replace"))
        try:
            reply = self._api(method, path, params, headers, api_key, request_id)
        except _Refusal as refusal:
            reply = _json_reply(refusal.status, refusal.body(), request_id, refusal.headers)
        except Exception as e:  # a bug in the fake: answered as Stripe answers its own, not a dead connection
            refusal = _Refusal(500, f"The Stripe fake failed: {type(e).__name__}: {e}", type="api_error")
            reply = _json_reply(500, refusal.body(), request_id)
        with self._lock:
            if self._take_fault(method, path, {"drop"}) is not None:
                return None
        return reply

    def _authenticate(self, headers: dict[str, str]) -> str:
        authorization = headers.get("authorization", "")
        if not authorization:
            raise _Refusal(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        scheme, _, api_key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not api_key.startswith("sk_test_") or len(api_key) <= len("sk_test_"):
            raise _Refusal(401, f"Invalid API Key provided: {_mask(api_key or authorization)}")
        return api_key

    def _take_fault(self, method: str, path: str, kinds: Iterable[str]) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, path, kinds):
                fault.remaining -= 1
                return fault
        return None

    def _api(
        self, method: str, path: str, params: dict, headers: dict[str, str], api_key: str, request_id: str
    ) -> _Reply:
        handler, args = self._route(method, path)
        on_behalf_of = headers.get("stripe-account")
        if on_behalf_of and handler not in (self._list_events, self._get_event):
            raise _Refusal(
                400,
                "The Stripe fake does not model requests made on behalf of a connected account (the Stripe-Account "
                f"header) on {method} {path}.",
            )
        key = headers.get("idempotency-key") if method == "POST" else None
        if key is not None and len(key) > 255:
            raise _Refusal(400, "Idempotency keys can be up to 255 characters long.", type="idempotency_error")
        endpoint = (method, path)
        with self._lock:
            saved = self._idempotency.get((api_key, key)) if key else None
            if saved is not None:
                if saved.endpoint != endpoint:
                    raise _Refusal(
                        400,
                        "Keys for idempotent requests can only be used for the same endpoint they were first used for "
                        f"('{' '.join(saved.endpoint)}' vs '{method} {path}'). Try using a key other than '{key}' if "
                        "you meant to execute a different request.",
                        type="idempotency_error",
                    )
                if saved.params != params:
                    raise _Refusal(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first used "
                        f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                replayed = {"Idempotent-Replayed": "true", "Original-Request": saved.request_id}
                return _Reply(saved.status, saved.body, headers={"Request-Id": request_id, **replayed})
            context = {"request_id": request_id, "idempotency_key": key, "path": path, "account": on_behalf_of}
            try:
                status, obj = 200, handler(context, params, **args)
            except _Refusal as refusal:
                if key and refusal.saved:
                    reply = _json_reply(refusal.status, refusal.body(), request_id)
                    self._idempotency[(api_key, key)] = _Saved(endpoint, params, refusal.status, reply.body, request_id)
                raise
            reply = _json_reply(status, obj, request_id, {"Idempotency-Key": key} if key else None)
            if key:
                self._idempotency[(api_key, key)] = _Saved(endpoint, params, status, reply.body, request_id)
            return reply

    def _route(self, method: str, path: str):
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return getattr(self, name), match.groupdict()
        raise _unrecognized(method, path)

    # accounts

    def _account_or_raise(self, account_id: str) -> dict:
        account = self._accounts.get(account_id)
        if account is None:
            raise KeyError(f"no account {account_id!r} in the Stripe fake")
        return account

    def _account_for(self, context: dict, account_id: str) -> dict:
        account = self._accounts.get(account_id)
        if account is None:  # what Stripe answers for an account that is not yours, or does not exist
            raise _Refusal(
                403,
                f"The provided key does not have access to account '{account_id}' (or that account does not exist). "
                "Application access may have been revoked.",
                code="account_invalid",
            )
        return account

    def _create_account(self, context: dict, params: dict) -> dict:
        _allow(
            params,
            (
                "type",
                "country",
                "email",
                "capabilities",
                "metadata",
                "business_type",
                "business_profile",
                "default_currency",
                "settings",
                "controller",
            ),
        )
        account_type = _str(params, "type")
        if account_type is None:
            dashboard = (params.get("controller") or {}).get("stripe_dashboard") or {}
            account_type = {"express": "express", "full": "standard", "none": "custom"}.get(dashboard.get("type"))
            account_type = account_type or "standard"
        if account_type not in ("express", "standard", "custom"):
            raise _Refusal(400, "Invalid type: must be one of custom, express, or standard", param="type")
        country = (_str(params, "country") or "US").upper()
        account_id = _new_id("acct")
        currency = _str(params, "default_currency") or (
            "eur" if country in _EURO_COUNTRIES else _DEFAULT_CURRENCY.get(country, "usd")
        )
        account = {
            "id": account_id,
            "object": "account",
            "business_profile": params.get("business_profile") or {"mcc": None, "name": None, "url": None},
            "business_type": _str(params, "business_type"),
            "capabilities": _requested_capabilities(params.get("capabilities"), {}),
            "charges_enabled": False,
            "country": country,
            "created": _now(),
            "default_currency": currency,
            "details_submitted": False,
            "email": _str(params, "email"),
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/accounts/{account_id}/external_accounts",
            },
            "future_requirements": _requirements(()),
            "metadata": _metadata(params.get("metadata"), {}),
            "payouts_enabled": False,
            "requirements": _requirements(ONBOARDING_REQUIREMENTS),
            "settings": {"payouts": {"schedule": {"delay_days": 2, "interval": "daily"}}},
            "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
            "type": account_type,
        }
        self._accounts[account_id] = account
        return account

    def _get_account(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ())
        return self._account_for(context, id)

    def _list_accounts(self, context: dict, params: dict) -> dict:
        _allow(params, ("limit", "starting_after", "ending_before", "created"))
        return _paginate(list(self._accounts.values()), params, "/v1/accounts", "account", lambda a: True)

    def _update_account(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ("metadata", "email", "business_profile", "business_type", "capabilities", "settings"))
        account = self._account_for(context, id)
        before = copy.deepcopy(account)
        account["metadata"] = _metadata(params.get("metadata"), account["metadata"])
        if "email" in params:
            account["email"] = _str(params, "email")
        if "business_type" in params:
            account["business_type"] = _str(params, "business_type")
        if isinstance(params.get("business_profile"), dict):
            account["business_profile"] = {**account["business_profile"], **params["business_profile"]}
        account["capabilities"] = _requested_capabilities(params.get("capabilities"), account["capabilities"])
        changes = _changed(before, account)
        if changes:
            self._emit("account.updated", account, account=id, previous_attributes=changes, request=_request(context))
        return account

    def _create_account_link(self, context: dict, params: dict) -> dict:
        _allow(params, ("account", "refresh_url", "return_url", "type", "collect", "collection_options"))
        account_id = _str(params, "account", required=True)
        if account_id not in self._accounts:
            raise _no_such("account", account_id, param="account")
        link_type = _str(params, "type", required=True)
        if link_type not in ("account_onboarding", "account_update"):
            raise _Refusal(400, "Invalid type: must be one of account_onboarding or account_update", param="type")
        refresh_url, return_url = _url(params, "refresh_url"), _url(params, "return_url")
        token = secrets.token_urlsafe(24)
        created = _now()
        self._links[token] = {
            "account": account_id,
            "type": link_type,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "expires_at": created + LINK_LIFETIME_SECONDS,
            "state": "new",  # new -> visited (the page was shown once) -> done
            "session": None,
        }
        return {
            "object": "account_link",
            "created": created,
            "expires_at": created + LINK_LIFETIME_SECONDS,
            "url": f"{self.url}/connect/onboarding/{token}",
        }

    # transfers

    def _transfer_for(self, transfer_id: str, param: str = "id") -> dict:
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            raise _no_such("transfer", transfer_id, param=param)
        return transfer

    def _create_transfer(self, context: dict, params: dict) -> dict:
        _allow(params, ("amount", "currency", "destination", "transfer_group", "metadata", "description"))
        amount = _int(params, "amount", required=True, minimum=1)
        currency = _currency(params)
        destination = _str(params, "destination", required=True)
        metadata = _metadata(params.get("metadata"), {})
        account = self._accounts.get(destination)
        if account is None:
            raise _Refusal(400, f"No such destination: '{destination}'", code="resource_missing", param="destination")
        fault = self._take_fault("POST", context["path"], _BUSINESS_FAULTS)
        if (fault and fault.kind == "account_not_ready") or account["capabilities"].get("transfers") != "active":
            raise _Refusal(
                400, NOT_READY_MESSAGE, code="insufficient_capabilities_for_transfer", param="destination", saved=True
            )
        if (fault and fault.kind == "insufficient_funds") or self._balances.get(currency, 0) < amount:
            raise _Refusal(400, INSUFFICIENT_MESSAGE, code="balance_insufficient", saved=True)
        self._balances[currency] -= amount
        transfer_id = _new_id("tr")
        transfer = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": _new_id("txn"),
            "created": _now(),
            "currency": currency,
            "description": _str(params, "description"),
            "destination": destination,
            "destination_payment": _new_id("py"),
            "livemode": False,
            "metadata": metadata,
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{transfer_id}/reversals",
            },
            "reversed": False,
            "source_transaction": None,
            "source_type": "card",
            "transfer_group": _str(params, "transfer_group"),
        }
        self._transfers[transfer_id] = transfer
        self._emit("transfer.created", transfer, request=_request(context))
        return transfer

    def _get_transfer(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ())
        return self._transfer_for(id)

    def _update_transfer(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ("metadata", "description"))
        transfer = self._transfer_for(id)
        before = copy.deepcopy(transfer)
        transfer["metadata"] = _metadata(params.get("metadata"), transfer["metadata"])
        if "description" in params:
            transfer["description"] = _str(params, "description")
        changes = _changed(before, transfer)
        if changes:
            self._emit("transfer.updated", transfer, previous_attributes=changes, request=_request(context))
        return transfer

    def _list_transfers(self, context: dict, params: dict) -> dict:
        _allow(params, ("limit", "starting_after", "ending_before", "created", "destination", "transfer_group"))
        destination, group = _str(params, "destination"), _str(params, "transfer_group")
        created = _created_filter(params.get("created"))

        def wanted(transfer: dict) -> bool:
            return (
                (destination is None or transfer["destination"] == destination)
                and (group is None or transfer["transfer_group"] == group)
                and created(transfer["created"])
            )

        return _paginate(list(self._transfers.values()), params, "/v1/transfers", "transfer", wanted)

    def _create_reversal(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ("amount", "description", "metadata", "refund_application_fee"))
        transfer = self._transfer_for(id)
        remaining = transfer["amount"] - transfer["amount_reversed"]
        if remaining == 0:
            raise _Refusal(400, f"Transfer {id} is already fully reversed.", param="amount")
        amount = _int(params, "amount", minimum=1) or remaining
        if amount > remaining:
            raise _Refusal(
                400,
                f"You cannot reverse more than the amount that remains on the transfer ({remaining}).",
                param="amount",
            )
        before = copy.deepcopy(transfer)
        reversal = {
            "id": _new_id("trr"),
            "object": "transfer_reversal",
            "amount": amount,
            "balance_transaction": _new_id("txn"),
            "created": _now(),
            "currency": transfer["currency"],
            "destination_payment_refund": _new_id("pyr"),
            "metadata": _metadata(params.get("metadata"), {}),
            "source_refund": None,
            "transfer": id,
        }
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        transfer["reversals"]["data"].insert(0, reversal)
        transfer["reversals"]["total_count"] += 1
        self._balances[transfer["currency"]] = self._balances.get(transfer["currency"], 0) + amount
        self._emit(
            "transfer.reversed", transfer, previous_attributes=_changed(before, transfer), request=_request(context)
        )
        return reversal

    def _list_reversals(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ("limit", "starting_after", "ending_before"))
        reversals = list(reversed(self._transfer_for(id)["reversals"]["data"]))  # oldest first, as stored
        return _paginate(reversals, params, f"/v1/transfers/{id}/reversals", "transfer_reversal", lambda r: True)

    def _get_balance(self, context: dict, params: dict) -> dict:
        _allow(params, ())
        currencies = sorted(self._balances)
        return {
            "object": "balance",
            "available": [
                {"amount": self._balances[c], "currency": c, "source_types": {"card": self._balances[c]}}
                for c in currencies
            ],
            "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
            "livemode": False,
            "pending": [{"amount": 0, "currency": c, "source_types": {"card": 0}} for c in currencies],
        }

    # events

    def _event_or_raise(self, event_id: str) -> dict:
        for event in self._events:
            if event["id"] == event_id:
                return event
        raise KeyError(f"no event {event_id!r} in the Stripe fake")

    def _list_events(self, context: dict, params: dict) -> dict:
        _allow(params, ("limit", "starting_after", "ending_before", "created", "type", "types"))
        account, event_type = context["account"], _str(params, "type")
        types = params.get("types") if isinstance(params.get("types"), list) else None
        created = _created_filter(params.get("created"))

        def wanted(event: dict) -> bool:
            return (
                event.get("account") == account
                and (event_type is None or _type_matches(event["type"], event_type))
                and (types is None or event["type"] in types)
                and created(event["created"])
            )

        return _paginate(self._events, params, "/v1/events", "event", wanted)

    def _get_event(self, context: dict, params: dict, id: str) -> dict:
        _allow(params, ())
        for event in self._events:
            if event["id"] == id and event.get("account") == context["account"]:
                return event
        raise _no_such("event", id)

    # what Stripe remembers, on disk (the offline demo: ``backoffice serve --stripe-fake``)

    def save(self, path) -> None:
        """Writes what Stripe would remember across a restart to ``path`` (JSON, written aside and renamed into
        place, so a crash leaves the old file or the new one): accounts, account links, transfers, balances,
        events and idempotency keys. Faults, deliveries and events not yet sent are not kept."""
        path = Path(path)
        with self._lock:
            state = {
                "version": STATE_VERSION,
                "accounts": self._accounts,
                "links": self._links,
                "transfers": self._transfers,
                "balances": self._balances,
                "events": self._events,
                "idempotency": [
                    {
                        "api_key": api_key,
                        "key": key,
                        "endpoint": list(saved.endpoint),
                        "params": saved.params,
                        "status": saved.status,
                        "body": saved.body.decode(),
                        "request_id": saved.request_id,
                    }
                    for (api_key, key), saved in self._idempotency.items()
                ],
            }
            aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            aside.write_text(json.dumps(state))
            aside.replace(path)

    def load(self, path) -> bool:
        """Restores what ``save`` wrote to ``path``, replacing the state in memory. False when there is no such
        file; ValueError when it is not one ``save`` wrote."""
        path = Path(path)
        if not path.exists():
            return False
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"{path} is not a saved state of this Stripe fake (version {STATE_VERSION})")
        with self._lock:
            self._accounts = state["accounts"]
            self._links = state["links"]
            self._transfers = state["transfers"]
            self._balances = state["balances"]
            self._events = state["events"]
            self._idempotency = {
                (saved["api_key"], saved["key"]): _Saved(
                    tuple(saved["endpoint"]),
                    saved["params"],
                    saved["status"],
                    saved["body"].encode(),
                    saved["request_id"],
                )
                for saved in state["idempotency"]
            }
        return True

    # the hosted onboarding page

    def _onboarding(self, method: str, token: str, body: bytes) -> _Reply:
        with self._lock:
            link = self._links.get(token)
            if link is None:
                return _page(404, "Stripe (test fake): unknown link", "<p>This onboarding link does not exist.</p>")
            fresh = _now() <= link["expires_at"]
            account = self._accounts[link["account"]]
            if method == "GET":
                if link["state"] != "new" or not fresh:
                    return _expired(link)
                link["state"], link["session"] = "visited", secrets.token_urlsafe(16)
                due = "".join(
                    f"<li><code>{html.escape(r)}</code></li>" for r in account["requirements"]["currently_due"]
                )
                return _page(
                    200,
                    f"Stripe (test fake): onboarding for {account['id']}",
                    f"<p>Email: {html.escape(account['email'] or '-')}</p>"
                    f"<p>Stripe would ask for:</p><ul>{due or '<li>nothing</li>'}</ul>"
                    f'<form method="post" action="/connect/onboarding/{html.escape(token)}">'
                    f'<input type="hidden" name="session" value="{html.escape(link["session"])}">'
                    '<button type="submit" name="action" value="complete">Complete onboarding</button> '
                    '<button type="submit" name="action" value="leave">Leave without finishing</button>'
                    "</form>",
                )
            if method != "POST":
                return _page(405, "Stripe (test fake)", "<p>Method not allowed.</p>")
            form = parse_form(body.decode("utf-8", "replace"))
            if link["state"] != "visited" or form.get("session") != link["session"] or not fresh:
                return _expired(link)
            link["state"] = "done"
            if form.get("action") == "complete":
                self.make_ready(account["id"])
            return _Reply(303, b"", "text/plain", {"Location": link["return_url"]})


class SavedStripeFake(StripeFake):
    """A ``StripeFake`` whose state lives in ``state_file`` as well as in memory: loaded at ``start()`` when the
    file exists, and saved after every change (an API request that is not a GET, the onboarding page, the test
    controls), before the answer goes back, so what a caller was told Stripe did survives a restart of the fake.
    For the offline demo, whose database outlives any one run; tests want the plain ``StripeFake``."""

    def __init__(self, state_file, webhook_url: str | None = None, webhook_secret: str = DEFAULT_WEBHOOK_SECRET, **kw):
        super().__init__(webhook_url, webhook_secret, **kw)
        self.state_file = Path(state_file)
        self.restored = False  # whether start() found a saved state

    def start(self) -> SavedStripeFake:
        self.restored = self.load(self.state_file)
        return super().start()

    def _dispatch(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        reply = super()._dispatch(method, path, query, headers, body)
        if method != "GET" or path.startswith("/connect/onboarding/"):  # a page shown once changes the link
            self.save(self.state_file)
        return reply

    def set_balance(self, currency: str, amount: int) -> None:
        super().set_balance(currency, amount)
        self.save(self.state_file)

    def make_ready(self, account_id: str) -> dict:
        account = super().make_ready(account_id)
        self.save(self.state_file)
        return account

    def restrict(self, account_id: str, currently_due: Iterable[str] = ("individual.verification.document",)) -> dict:
        account = super().restrict(account_id, currently_due)
        self.save(self.state_file)
        return account

    def expire_account_links(self) -> None:
        super().expire_account_links()
        self.save(self.state_file)

    def emit(
        self, event_type: str, data_object: dict, account: str | None = None, previous_attributes: dict | None = None
    ) -> dict:
        event = super().emit(event_type, data_object, account, previous_attributes)
        self.save(self.state_file)
        return event


def _request(context: dict) -> dict:
    return {"id": context["request_id"], "idempotency_key": context["idempotency_key"]}


def _requirements(due: tuple[str, ...]) -> dict:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


def _requested_capabilities(requested, current: dict) -> dict:
    if requested is None:
        return dict(current)
    if not isinstance(requested, dict):
        raise _Refusal(400, "Invalid object", param="capabilities")
    capabilities = dict(current)
    for name, options in requested.items():
        if not isinstance(options, dict) or options.get("requested") not in ("true", "false"):
            raise _Refusal(400, "Invalid boolean", param=f"capabilities[{name}][requested]")
        if options["requested"] == "true":
            capabilities.setdefault(name, "inactive")
        else:
            capabilities.pop(name, None)
    return capabilities


def _created_filter(value) -> Callable[[int], bool]:
    """``created=<ts>`` or ``created[gt|gte|lt|lte]=<ts>``."""
    if value is None:
        return lambda ts: True
    if isinstance(value, str):
        exact = _int({"created": value}, "created")
        return lambda ts: ts == exact
    if not isinstance(value, dict):
        raise _Refusal(400, "Invalid object", param="created")
    _allow(value, ("gt", "gte", "lt", "lte"))
    bounds = {op: _int(value, op) for op in value}
    tests = {
        "gt": lambda ts, b: ts > b,
        "gte": lambda ts, b: ts >= b,
        "lt": lambda ts, b: ts < b,
        "lte": lambda ts, b: ts <= b,
    }
    return lambda ts: all(tests[op](ts, bound) for op, bound in bounds.items())


def _type_matches(event_type: str, pattern: str) -> bool:
    return event_type == pattern or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))


def _paginate(items: list[dict], params: dict, url: str, kind: str, wanted: Callable[[dict], bool]) -> dict:
    """A Stripe list: newest first, ``limit`` (1-100, default 10) items after ``starting_after`` or before
    ``ending_before``, and ``has_more``, so the SDK's ``auto_paging_iter`` walks it."""
    limit = _int(params, "limit", minimum=1)
    limit = 10 if limit is None else limit
    if limit > 100:
        raise _Refusal(400, "This value must be less than or equal to 100.", param="limit")
    newest_first = list(reversed(items))
    ids = [item["id"] for item in newest_first]
    after, before = _str(params, "starting_after"), _str(params, "ending_before")
    if after is not None:
        if after not in ids:
            raise _no_such(kind.replace("_", " "), after, param="starting_after")
        candidates = [i for i in newest_first[ids.index(after) + 1 :] if wanted(i)]
        page, has_more = candidates[:limit], len(candidates) > limit
    elif before is not None:
        if before not in ids:
            raise _no_such(kind.replace("_", " "), before, param="ending_before")
        candidates = [i for i in newest_first[: ids.index(before)] if wanted(i)]
        page, has_more = candidates[-limit:], len(candidates) > limit
    else:
        candidates = [i for i in newest_first if wanted(i)]
        page, has_more = candidates[:limit], len(candidates) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def _unrecognized(method: str, path: str) -> _Refusal:
    return _Refusal(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
    )


def _page(status: int, title: str, body: str) -> _Reply:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return _Reply(status, document.encode(), "text/html; charset=utf-8")


def _expired(link: dict) -> _Reply:
    """Stripe sends the browser of a used or expired link to its ``refresh_url``; the fake shows where."""
    refresh = html.escape(link["refresh_url"])
    return _page(
        200,
        "Stripe (test fake): this link has expired",
        "<p>Account links work once and expire after a few minutes. Stripe would now send you to the "
        f'refresh URL, where the platform makes a new link: <a href="{refresh}">{refresh}</a></p>',
    )


_ROUTES = [
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("POST", r"/v1/accounts", "_create_account"),
        ("GET", r"/v1/accounts", "_list_accounts"),
        ("GET", r"/v1/accounts/(?P<id>[^/]+)", "_get_account"),
        ("POST", r"/v1/accounts/(?P<id>[^/]+)", "_update_account"),
        ("POST", r"/v1/account_links", "_create_account_link"),
        ("POST", r"/v1/transfers", "_create_transfer"),
        ("GET", r"/v1/transfers", "_list_transfers"),
        ("GET", r"/v1/transfers/(?P<id>[^/]+)", "_get_transfer"),
        ("POST", r"/v1/transfers/(?P<id>[^/]+)", "_update_transfer"),
        ("POST", r"/v1/transfers/(?P<id>[^/]+)/reversals", "_create_reversal"),
        ("GET", r"/v1/transfers/(?P<id>[^/]+)/reversals", "_list_reversals"),
        ("GET", r"/v1/balance", "_get_balance"),
        ("GET", r"/v1/events", "_list_events"),
        ("GET", r"/v1/events/(?P<id>[^/]+)", "_get_event"),
    )
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of concurrent clients (tests use 20) must not wait for SYN retries
    fake: StripeFake


class _Handler(BaseHTTPRequestHandler):
    server_version = "stripe-fake"
    sys_version = ""
    timeout = 10  # a client that connects and sends nothing cannot hold stop() (which joins these threads) for long
    server: _Server

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_DELETE(self):
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = fake._dispatch(method, split.path, split.query, headers, body)
        if reply is None:  # the connection dies without an answer
            self.close_connection = True
            if fake._log:
                fake._log(f"{method} {split.path} -> (connection dropped)")
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (its own timeout) before the answer
            self.close_connection = True
        if fake._log:
            fake._log(f"{method} {split.path} -> {reply.status}")

    def log_message(self, format, *args):  # requests are logged through StripeFake(log=...) instead
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backoffice.dev.stripe_fake",
        description="A local fake of Stripe's Connect API (accounts, account links, transfers, balance, webhooks) "
        "for the real stripe SDK. Listens on 127.0.0.1 only; state lives in memory until Ctrl+C.",
    )
    parser.add_argument("--port", type=int, default=12111, help="port on 127.0.0.1 (default 12111; 0: any free)")
    parser.add_argument("--webhook-url", help="POST every event here, signed (e.g. the app's webhook endpoint)")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET, help="signing secret (whsec_...)")
    parser.add_argument(
        "--balance-usd", type=int, default=1_000_000, help="platform's available USD balance in cents (default 1000000)"
    )
    args = parser.parse_args(argv)
    fake = StripeFake(
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        port=args.port,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    fake.set_balance("usd", args.balance_usd)
    fake.start()
    print(f"Stripe fake listening on {fake.url} (Ctrl+C to stop)")
    print(f"Webhooks: {args.webhook_url or 'not sent (no --webhook-url); still listed at GET /v1/events'}")
    print("Set these for the app:")
    print(f"  export STRIPE_API_BASE={fake.url}")
    print(f"  export STRIPE_SECRET_KEY={DEFAULT_API_KEY}")
    print(f"  export STRIPE_WEBHOOK_SECRET={args.webhook_secret}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
