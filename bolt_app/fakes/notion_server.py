"""The HTTP side of FakeNotion: a threaded server, the call log, and fault injection.

Every request is recorded when it arrives (so a test can wait for a request that is still
being delayed) and completed with its status when answered. Faults are applied before
the request reaches the API, in the order a gateway and Notion would produce them:
configured latency, then an injected fault (delay, reset, error), then auth and version
checks, then the endpoint itself.

`drop_response_after_handling` is the fault the exactly-once protocol is about: the
request is fully applied (the page exists) but no response is ever written; the
connection is held until the client gives up (its timeout) or the server stops.

The recorder/fault helpers are deliberately small and shaped like the generic ones in
`bolt_app.fakes.common` (inject / set_latency / calls / wait_for) so they can be merged.
"""

from __future__ import annotations

import contextlib
import json
import math
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from bolt_app.fakes.notion_api import HANDLERS, ApiRequest, match_route
from bolt_app.fakes.notion_common import JSON, NotionError, body_error, shown
from bolt_app.fakes.notion_store import NotionStore

T = TypeVar("T")

_MAX_BODY_BYTES = 500 * 1000
_JSON_ERRORS = {
    409: ("conflict_error", "Conflict occurred while saving. Please try again."),
    429: ("rate_limited", "You have been rate limited. Please try again in a few minutes."),
    500: ("internal_server_error", "Unexpected error occurred."),
    503: ("service_unavailable", "Notion is unavailable, please try again later."),
    504: ("gateway_timeout", "Notion timed out while completing this request."),
}
#: `error_code` value that makes an injected error answer with an HTML body instead.
HTML_ERROR = "html"
_HTML_BODY = (
    "<html><head><title>{status} Bad Gateway</title></head><body>"
    "<center><h1>{status} Bad Gateway</h1></center><hr><center>cloudflare</center>"
    "</body></html>"
)


@dataclass
class NotionCall:
    """One request as the fake saw it. `status` is None until it is answered.

    `status` is 0 for a reset connection; `dropped` is True when the request was applied
    but its response was never sent.
    """

    method: str
    path: str
    route: str | None
    body: Any
    time: float
    query: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    dropped: bool = False


@dataclass
class _Fault:
    route: str
    status: int | None
    retry_after: float
    remaining: int | None
    error_code: str | None
    delay: float | None
    reset: bool
    drop: bool


class CallLog:
    """Thread-safe record of calls, with a condition that wakes `wait_for` on changes."""

    def __init__(self) -> None:
        self._calls: list[NotionCall] = []
        self._changed = threading.Condition()

    def start(self, call: NotionCall) -> NotionCall:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()
        return call

    def finish(self, call: NotionCall, status: int, *, dropped: bool = False) -> None:
        with self._changed:
            call.status, call.dropped = status, dropped
            self._changed.notify_all()

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def snapshot(self) -> list[NotionCall]:
        with self._changed:
            return list(self._calls)

    def clear(self) -> None:
        with self._changed:
            self._calls.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Return the first truthy `predicate()` result, or raise TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout:.2f}s")
            with self._changed:
                self._changed.wait(min(remaining, 0.05))


class FaultBox:
    """Injected faults (consumed in order, per route or "*") and fixed latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._latency: dict[str, float] = {}

    def inject(
        self,
        route: str,
        *,
        status: int | None = 429,
        retry_after: float = 1,
        times: int | None = 1,
        error_code: str | None = None,
        delay: float | None = None,
        reset: bool = False,
        drop_response_after_handling: bool = False,
    ) -> None:
        fault = _Fault(
            route,
            status,
            retry_after,
            times,
            error_code,
            delay,
            reset,
            drop_response_after_handling,
        )
        with self._lock:
            self._faults.append(fault)

    def take(self, route: str | None) -> _Fault | None:
        """The oldest live fault for this route (else for "*"), with one use consumed."""
        with self._lock:
            for key in (route, "*"):
                for fault in self._faults:
                    if fault.route == key and fault.remaining != 0:
                        if fault.remaining is not None:
                            fault.remaining -= 1
                        return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._latency.clear()

    def set_latency(self, seconds: float, route: str = "*") -> None:
        with self._lock:
            self._latency[route] = seconds

    def latency(self, route: str | None) -> float:
        with self._lock:
            return self._latency.get(route or "", self._latency.get("*", 0.0))


class NotionHTTPServer(ThreadingHTTPServer):
    """One thread per connection, daemon threads, and fast, non-blocking close."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: NotionStore,
        log: CallLog,
        faults: FaultBox,
        tokens: set[str],
    ) -> None:
        super().__init__(address, _Handler)
        self.store, self.log, self.faults, self.tokens = store, log, faults, tokens
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(conn)

    def close_connections(self) -> None:
        """Unblock keep-alive and held connections so their threads exit at once."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: NotionHTTPServer

    def setup(self) -> None:
        """Track the connection, and disable Nagle: http.server writes headers and body
        separately, which with delayed ACKs costs ~40 ms per call otherwise."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr lines; the call log is the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    # ------------------------------------------------------------------ pipeline

    def _serve(self) -> None:
        url = urlsplit(self.path)
        raw = self._read_body()
        route, params, routing_error = _resolve(self.command, url.path)
        query = dict(parse_qsl(url.query))
        call = self.server.log.start(
            NotionCall(self.command, url.path, route, _decode(raw), time.time(), query)
        )
        fault = self.server.faults.take(route)
        delay = self.server.faults.latency(route) + ((fault.delay or 0.0) if fault else 0.0)
        if not self._pause(delay) or (fault is not None and fault.reset):
            return self._abort(call)
        if fault is not None and fault.status is not None and not fault.drop:
            return self._send_fault(call, fault)
        status, headers, payload = self._answer(routing_error, route, params, raw, query)
        if fault is not None and fault.drop:
            return self._hold(call, status)
        self._send(call, status, headers, payload)

    def _answer(
        self,
        routing_error: NotionError | None,
        route: str | None,
        params: dict[str, str],
        raw: bytes,
        query: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            if routing_error is not None:
                raise routing_error
            self._check_headers(raw)
            result = HANDLERS[str(route)](
                self.server.store, ApiRequest(params, _parse_body(self.command, raw), query)
            )
        except NotionError as error:
            return _json(error.status, error.body(str(uuid.uuid4())))
        finally:
            self.server.log.notify()
        return _json(200, {**result, "request_id": str(uuid.uuid4())})

    def _check_headers(self, raw: bytes) -> None:
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if token is None or token not in self.server.tokens:
            raise NotionError(401, "unauthorized", "API token is invalid.")
        if not self.headers.get("Notion-Version"):
            raise NotionError(
                400,
                "missing_version",
                "Notion-Version header failed validation: Notion-Version header should be "
                "defined, instead was `undefined`.",
            )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # ------------------------------------------------------------------ responses

    def _send(self, call: NotionCall, status: int, headers: dict[str, str], payload: bytes) -> None:
        # Logged before the first byte goes out, so a client that has its answer can
        # always see the call's status in the log.
        self.server.log.finish(call, status)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _send_fault(self, call: NotionCall, fault: _Fault) -> None:
        status = int(fault.status or 500)
        if fault.error_code == HTML_ERROR or (status == 502 and fault.error_code is None):
            body = _HTML_BODY.format(status=status).encode()
            headers = {"Content-Type": "text/html; charset=utf-8"}
        else:
            code, message = _JSON_ERRORS.get(
                status, ("internal_server_error", "Unexpected error occurred.")
            )
            error = NotionError(status, fault.error_code or code, message)
            status, headers, body = _json(status, error.body(str(uuid.uuid4())))
        if status in (429, 503):
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
        self._send(call, status, headers, body)

    def _pause(self, seconds: float) -> bool:
        """Sleep without blocking other requests; False if the server is stopping."""
        return seconds <= 0 or not self.server.stopping.wait(seconds)

    def _abort(self, call: NotionCall) -> None:
        """Reset the connection (RST) with no response, like a crashed proxy."""
        self.server.log.finish(call, 0)
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _hold(self, call: NotionCall, status: int) -> None:
        """Never answer: wait until the client hangs up or the server stops, then close."""
        self.server.log.finish(call, status, dropped=True)
        while not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                break
        self.close_connection = True


def _resolve(method: str, path: str) -> tuple[str | None, dict[str, str], NotionError | None]:
    """Route name and params, or the routing error to answer with after faults/auth."""
    try:
        route, params = match_route(method, path)
    except NotionError as error:
        return None, {}, error
    return route, params, None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _parse_body(method: str, raw: bytes) -> JSON:
    """The request body as a JSON object; Notion's errors for bad JSON or a huge payload."""
    if method in ("GET", "DELETE") or not raw:
        return {}
    if len(raw) > _MAX_BODY_BYTES:
        raise body_error(f"request body size {len(raw)} bytes is larger than the 500KB limit.")
    try:
        body = json.loads(raw)
    except ValueError:
        raise NotionError(400, "invalid_json", "Error parsing JSON body.") from None
    if not isinstance(body, dict):
        raise body_error(f"body should be an object, instead was `{shown(body)}`.")
    return body


def _json(status: int, payload: JSON) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8"}, body
