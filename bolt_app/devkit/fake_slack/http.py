"""HTTP wire of FakeSlack: decode a request, authorize, apply faults, answer.

Slack's conventions reproduced here:

* every method is ``POST /api/<method>``, form-encoded, JSON or multipart;
  the token comes as ``Authorization: Bearer`` (or a ``token`` parameter);
* errors are HTTP 200 ``{"ok": false, "error": ...}``; rate limits are HTTP 429
  with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``;
* every answer carries ``x-oauth-scopes`` and ``x-accepted-oauth-scopes``.

``POST /response/<id>`` is the ``response_url`` endpoint Bolt's ``respond()`` uses.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs

from bolt_app.devkit.common import Call as CallRecord
from bolt_app.devkit.common import (
    CallLog,
    Fault,
    FaultPlan,
    RateBudget,
    interruptible_sleep,
    reset_connection,
)
from bolt_app.devkit.fake_slack.api import ApiContext, MethodSpec, Params
from bolt_app.devkit.fake_slack.state import JSON, SlackError

log = logging.getLogger(__name__)

RESPONSE_URL_KEY = "response_url"
APP_TOKEN_SCOPES = "connections:write"


@dataclass
class Answer:
    """An HTTP answer before it is written."""

    status: int
    body: JSON
    headers: dict[str, str]
    #: Sent instead of `body` as text/plain: what a proxy in front of Slack answers.
    raw: str | None = None


@dataclass
class WebBackend:
    """Everything the request handler needs, owned by FakeSlack."""

    ctx: ApiContext
    methods: dict[str, MethodSpec]
    bot_token: str
    app_token: str
    revoked: set[str]
    #: Tokens refused with a given error (`FakeSlack.revoke_app_token`), as token -> error.
    refused: dict[str, str]
    faults: FaultPlan
    calls: CallLog
    stop: threading.Event
    on_response_url: Callable[[str, JSON], tuple[int, JSON]]
    #: Per-method budgets (Slack's rate-limit tiers), none by default.
    rates: dict[str, RateBudget] = field(default_factory=dict)


# --------------------------------------------------------------------------- decoding


def _first_values(pairs: dict[str, list[str]]) -> dict[str, Any]:
    """parse_qs gives lists; Slack parameters are single-valued."""
    return {key: values[0] if len(values) == 1 else values for key, values in pairs.items()}


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode multipart/form-data (used by slack_sdk for file uploads)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        out[name] = data if part.get_filename() else data.decode("utf-8", "replace")
    return out


def decode_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Merge query-string and body parameters, whatever the body encoding."""
    params = _first_values(parse_qs(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return params
    if kind == "application/json":
        decoded = json.loads(body.decode("utf-8"))
        if not isinstance(decoded, dict):
            raise ValueError("JSON body is not an object")
        params.update(decoded)
    elif kind == "multipart/form-data":
        params.update(_parse_multipart(content_type, body))
    else:
        params.update(_first_values(parse_qs(body.decode("utf-8"), keep_blank_values=True)))
    return params


def _bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header."""
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


# --------------------------------------------------------------------------- the handler


class SlackRequestHandler(BaseHTTPRequestHandler):
    """One request; subclassed per FakeSlack with ``backend`` bound."""

    backend: ClassVar[WebBackend]
    server_version = "FakeSlack/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads

    def log_message(self, format: str, *args: Any) -> None:
        """Route the stdlib access log to debug logging."""
        log.debug(format, *args)

    def do_POST(self) -> None:
        """Slack's Web API is POST for every method."""
        self._route()

    def do_GET(self) -> None:
        """GET works too (query-string parameters), as on slack.com."""
        self._route()

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._read_body()
        if path.startswith("/api/"):
            self._serve(path[len("/api/") :], query, body, self._api_answer)
        elif path.startswith("/response/"):
            self._serve(RESPONSE_URL_KEY, query, body, self._response_url_answer(path))
        else:
            self._write(Answer(404, {"ok": False, "error": "not_found"}, {}))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(
        self,
        key: str,
        query: str,
        body: bytes,
        answer: Callable[[dict[str, Any]], Answer],
    ) -> None:
        """Decode, wait (latency/delay), apply a fault or answer, record, write."""
        try:
            params = decode_params(self.headers.get("Content-Type", ""), body, query)
        except (ValueError, UnicodeDecodeError):
            params = {}
            result: Answer | None = Answer(200, {"ok": False, "error": "invalid_json"}, {})
        else:
            result = None
        backend = self.backend
        fault = backend.faults.take(key)
        if fault is None and key in backend.rates:
            fault = backend.rates[key].spend()
        delay = fault.delay if fault is not None and fault.delay else 0.0
        wait = backend.faults.latency(key) + delay
        if interruptible_sleep(backend.stop, wait):
            self._reset(key, params)
            return
        if fault is not None and fault.reset:
            self._reset(key, params)
            return
        if fault is not None and fault.drop_response:
            answer(params)  # applied, and the answer lost on the wire
            self._reset(key, params)
            return
        if result is None:
            result = (
                self._faulted(fault) if fault and not fault.answers_normally else answer(params)
            )
        self._record(key, params, result)
        self._write(result)

    # ---- answers

    def _api_answer(self, params: dict[str, Any]) -> Answer:
        """Run a Web API method, turning SlackError into ``ok: false``."""
        name = self.path.partition("?")[0][len("/api/") :]
        spec = self.backend.methods.get(name)
        headers = {"x-oauth-scopes": ",".join(sorted(self.backend.ctx.scopes))}
        if spec is None:
            return Answer(
                200, {"ok": False, "error": "unknown_method", "req_method": name}, headers
            )
        headers["x-accepted-oauth-scopes"] = ",".join(spec.accepted)
        try:
            self._authorize(spec, params, headers)
            if spec.token == "bot":
                self.backend.ctx.require_scope(*spec.accepted)
            body = spec.handler(self.backend.ctx, Params(params))
        except SlackError as exc:
            return Answer(200, {"ok": False, "error": exc.error, **exc.extra}, headers)
        return Answer(200, {"ok": True, **body}, headers)

    def _authorize(self, spec: MethodSpec, params: dict[str, Any], headers: dict[str, str]) -> None:
        """Token checks in Slack's order: present, not revoked, known, right type."""
        header_token = _bearer(self.headers.get("Authorization"))
        body_token = params.pop("token", None)
        token = header_token or (str(body_token) if body_token else None)
        backend = self.backend
        if not token:
            raise SlackError("not_authed")
        if token in backend.revoked:
            raise SlackError("token_revoked")
        if token in backend.refused:
            raise SlackError(backend.refused[token])
        if token == backend.app_token:
            headers["x-oauth-scopes"] = APP_TOKEN_SCOPES
            if spec.token != "app":
                raise SlackError("not_allowed_token_type")
            if header_token is None:
                raise SlackError("not_authed")  # Slack: the app token must be in the header
            return
        if token != backend.bot_token:
            raise SlackError("invalid_auth")
        if spec.token != "bot":
            raise SlackError("not_allowed_token_type")

    def _response_url_answer(self, path: str) -> Callable[[dict[str, Any]], Answer]:
        response_id = path[len("/response/") :].strip("/")

        def answer(params: dict[str, Any]) -> Answer:
            status, body = self.backend.on_response_url(response_id, params)
            return Answer(status, body, {})

        return answer

    @staticmethod
    def _faulted(fault: Fault) -> Answer:
        """The wire answer of an injected fault."""
        status = fault.status if fault.status is not None else 200
        if fault.raw_body is not None:
            return Answer(status, {"ok": False, "error": "not_json"}, {}, raw=fault.raw_body)
        if status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else 1
            body = {"ok": False, "error": fault.error or "ratelimited"}
            # Slack sends whole seconds, at least 1.
            return Answer(429, body, {"Retry-After": str(max(1, math.ceil(retry_after)))})
        if status >= 500:
            return Answer(status, {"ok": False, "error": fault.error or "internal_error"}, {})
        return Answer(status, {"ok": False, "error": fault.error or "fatal_error"}, {})

    # ---- output

    def _record(self, key: str, params: dict[str, Any], answer: Answer) -> None:
        ok = answer.body.get("ok")
        self.backend.calls.record(
            CallRecord(
                method=key,
                params=params,
                at=time.time(),
                status=answer.status,
                ok=ok if isinstance(ok, bool) else None,
                error=answer.body.get("error") if ok is False else None,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
        )

    def _reset(self, key: str, params: dict[str, Any]) -> None:
        """Drop the connection without an answer (a TCP reset)."""
        self.backend.calls.record(
            CallRecord(
                method=key,
                params=params,
                at=time.time(),
                status=0,
                ok=None,
                error="connection_reset",
            )
        )
        self.close_connection = True
        reset_connection(self.connection)

    def _write(self, answer: Answer) -> None:
        raw = answer.raw is not None
        data = answer.raw.encode() if answer.raw is not None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        kind = "text/plain" if raw else "application/json; charset=utf-8"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-slack-req-id", secrets.token_hex(16))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
