"""The HTTP side of FakeNotion: a threaded server that records calls and applies faults.

The fault plan and the call log are the generic ones from `bolt_app.devkit.common`;
what is Notion's own lives here: the call record (`NotionCall`) and how a fault looks on
Notion's wire (its error envelope, `Retry-After` in whole seconds, a gateway's HTML page).

Every request is recorded when it arrives (so a test can wait for a request that is still
being delayed) and completed with its status when answered. Faults are applied before
the request reaches the API, in the order a gateway and Notion would produce them:
configured latency, then an injected fault (delay, reset, error), then auth and version
checks, then the endpoint itself.

`Fault.drop_response` is the fault the exactly-once protocol is about: the request is
fully applied (the page exists) but no response is ever written; the connection is held
until the client gives up (its timeout) or the server stops.
"""

from __future__ import annotations

import contextlib
import json
import math
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bolt_app.devkit.common import ANY_KEY, CallLog, Fault, FaultPlan, RateBudget, reset_connection
from bolt_app.devkit.fake_notion.api import HANDLERS, ApiRequest, match_route
from bolt_app.devkit.fake_notion.common import JSON, NotionError, body_error, shown
from bolt_app.devkit.fake_notion.workspace import NotionStore

_MAX_BODY_BYTES = 500 * 1000
#: `additional_data.rate_limit_reason` of a 429: the per-connection budget (Notion's
#: workspace-wide one is `public_api_space_request_rate_limit`).
RATE_LIMIT_REASON = "public_api_request_rate_limit"

_JSON_ERRORS = {
    409: ("conflict_error", "Conflict occurred while saving. Please try again."),
    429: ("rate_limited", "You have been rate limited. Please try again in a few minutes."),
    500: ("internal_server_error", "Unexpected error occurred."),
    503: ("service_unavailable", "Notion is unavailable, please try again later."),
    504: ("gateway_timeout", "Notion timed out while completing this request."),
    529: ("service_overload", "Notion is overloaded; please try again later."),
}
#: `error_code` (`Fault.error`) value that makes an injected error answer with an HTML
#: body instead, as a gateway in front of Notion does.
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
    but its response was never sent. Not `common.Call`: Notion is REST, so a call is an
    HTTP method and path plus the route they resolve to (`method` is "PATCH", not
    "blocks.children.append"), and the record is logged on arrival, then completed.
    """

    method: str
    path: str
    route: str | None
    body: Any
    time: float
    query: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    dropped: bool = False

    def answered(self, status: int, *, dropped: bool = False) -> None:
        """Complete the record: the status sent (or that would have been, if dropped)."""
        self.status, self.dropped = status, dropped


class NotionHTTPServer(ThreadingHTTPServer):
    """One thread per connection, daemon threads, and fast, non-blocking close."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: NotionStore,
        log: CallLog[NotionCall],
        faults: FaultPlan,
        tokens: set[str],
    ) -> None:
        super().__init__(address, _Handler)
        self.store, self.log, self.faults, self.tokens = store, log, faults, tokens
        self.rate = RateBudget()
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
        call = self.server.log.record(
            NotionCall(self.command, url.path, route, _decode(raw), time.time(), query)
        )
        key = route or ANY_KEY  # an unroutable request only meets "*" faults and latency
        fault = self.server.faults.take(key) or self.server.rate.spend()
        delay = self.server.faults.latency(key) + ((fault.delay or 0.0) if fault else 0.0)
        if not self._pause(delay) or (fault is not None and fault.reset):
            return self._abort(call)
        if fault is not None and fault.status is not None and not fault.drop_response:
            return self._send_fault(call, fault)
        status, headers, payload = self._answer(routing_error, route, params, raw, query)
        if fault is not None and fault.drop_response:
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
        call.answered(status)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _send_fault(self, call: NotionCall, fault: Fault) -> None:
        """Notion's answer to an injected error; `fault.error` is the `code` to send."""
        status = int(fault.status or 500)
        if fault.error == HTML_ERROR or (status == 502 and fault.error is None):
            body = _HTML_BODY.format(status=status).encode()
            headers = {"Content-Type": "text/html; charset=utf-8"}
        else:
            code, message = _JSON_ERRORS.get(
                status, ("internal_server_error", "Unexpected error occurred.")
            )
            error = NotionError(status, fault.error or code, message)
            envelope = error.body(str(uuid.uuid4()))
            if status == 429:  # which limit: this fake's budget is the connection's
                envelope["additional_data"] = {"rate_limit_reason": RATE_LIMIT_REASON}
            status, headers, body = _json(status, envelope)
        if status in (429, 503, 529):
            headers["Retry-After"] = str(math.ceil(fault.retry_after or 0))
        self._send(call, status, headers, body)

    def _pause(self, seconds: float) -> bool:
        """Sleep without blocking other requests; False if the server is stopping."""
        return seconds <= 0 or not self.server.stopping.wait(seconds)

    def _abort(self, call: NotionCall) -> None:
        """Reset the connection (RST) with no response, like a crashed proxy."""
        call.answered(0)
        reset_connection(self.connection)
        self.close_connection = True

    def _hold(self, call: NotionCall, status: int) -> None:
        """Never answer: wait until the client hangs up or the server stops, then close."""
        call.answered(status, dropped=True)
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
