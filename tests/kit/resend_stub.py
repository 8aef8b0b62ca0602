"""A local stand-in for Resend's HTTP API, for the real ``resend`` SDK pointed at it (``resend.api_url``).

It listens on 127.0.0.1 on a free port, in a daemon thread, and stops when the test's fixture ends.
It records every request (path, headers, JSON body) and answers from a script of responses, then with a
200 and a new email id. Like Resend, it honours ``Idempotency-Key``: a key it has accepted before gets
the same id again and no second delivery.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import resend


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | list | None


@dataclass
class ResendStub:
    url: str
    requests: list[Request] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)  # emails accepted, once per idempotency key
    script: deque = field(default_factory=deque)  # (status, json body) answered before the default 200
    _accepted: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, name: str = "application_error", message: str = "stubbed failure") -> None:
        self.script.append((status, {"statusCode": status, "name": name, "message": message}))

    def answer(self, request: Request) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(request)
            if self.script:
                return self.script.popleft()
            key = request.headers.get("idempotency-key")
            if key and key in self._accepted:
                return 200, {"id": self._accepted[key]}
            email_id = str(uuid.uuid4())
            if key:
                self._accepted[key] = email_id
            self.deliveries.append({"id": email_id, **(request.body or {})})
            return 200, {"id": email_id}


def _handler(stub: ResendStub):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload = stub.answer(
                Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet
            pass

    return Handler


@contextmanager
def resend_stub() -> Iterator[ResendStub]:
    """Run the stub and point the SDK at it; put the SDK back afterwards."""
    stub = ResendStub(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="resend-stub", daemon=True)
    thread.start()
    before = resend.api_url
    resend.api_url = stub.url
    try:
        yield stub
    finally:
        resend.api_url = before
        server.shutdown()
        server.server_close()
