"""One log line per Socket Mode envelope: type, subcommand, incident, duration, outcome.

Bolt's global middleware cannot time a request: its `next()` only sets a flag, and the
listeners run after every middleware has returned. So this wraps the Socket Mode
handler itself: it runs Bolt and sends the ack exactly as Bolt's handler does, then
logs. The incident is looked up after the ack, so the log costs the user nothing.
Payload text and tokens never reach the log: only the subcommand's name (when it is
one we know), callback ids and event types.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt import App
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bolt_app.core import metrics
from bolt_app.listeners.commands import SUBCOMMANDS
from bolt_app.runtime.slack_internals import Listener, replace_request_listener, run_and_ack
from bolt_app.services import Services
from storage import StoreError

log = logging.getLogger("bolt_app.envelopes")


def attach(client: BaseSocketModeClient, app: App, services: Services) -> None:
    """Replace Bolt's request listener on `client` with the logging one (idempotent)."""
    replace_request_listener(client, app, logged_handler(app, services))


def logged_handler(app: App, services: Services) -> Listener:
    def handle(client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        started = time.monotonic()
        try:
            response = run_and_ack(app, client, req)
        finally:
            services.acks.acked()
        seconds = time.monotonic() - started
        duration_ms = round(seconds * 1000, 1)
        outcome = "acked" if response.status == 200 else f"failed ({response.status})"
        metrics.ACK_SECONDS.observe(seconds)
        metrics.ENVELOPES.labels(req.type, "acked" if response.status == 200 else "failed").inc()
        _log(
            describe(req.type, req.payload or {}),
            _incident(services, req.payload or {}),
            duration_ms,
            outcome,
        )

    return handle


def describe(envelope_type: str, payload: dict[str, Any]) -> dict[str, str]:
    """What the envelope asked for, without its text: `type` and `subcommand`."""
    if envelope_type == "slash_commands":
        name = str(payload.get("text", "")).strip().partition(" ")[0].lower()
        sub = name if name in SUBCOMMANDS else ("help" if not name else "unknown")
        return {"type": str(payload.get("command", "command")), "subcommand": sub}
    if envelope_type == "interactive":
        kind = str(payload.get("type", "interactive"))
        callback = payload.get("callback_id") or (payload.get("view") or {}).get("callback_id")
        if kind == "block_actions":
            callback = ",".join(str(a.get("action_id")) for a in payload.get("actions", []))
        return {"type": kind, "subcommand": str(callback or "-")}
    if envelope_type == "events_api":
        event = payload.get("event") or {}
        return {"type": "event", "subcommand": str(event.get("type", "-"))}
    return {"type": envelope_type, "subcommand": "-"}


def _channel(payload: dict[str, Any]) -> str | None:
    event = payload.get("event") or {}
    container = payload.get("channel")
    candidates = (
        payload.get("channel_id"),
        container.get("id") if isinstance(container, dict) else container,
        event.get("channel_id"),
        event.get("channel"),
    )
    return next((c for c in candidates if isinstance(c, str) and c), None)


def _incident(services: Services, payload: dict[str, Any]) -> str:
    """The incident label of the envelope's channel, `-` for none.

    A database that doesn't answer only costs this field (`?`): the envelope was already
    handled, and the failure shows in the command's own reply and in /healthz.
    """
    channel = _channel(payload)
    if channel is None:
        return "-"
    try:
        incident = services.incidents.in_channel(channel)
    except StoreError:
        return "?"
    return services.incidents.label(incident) if incident is not None else "-"


def _log(what: dict[str, str], incident: str, duration_ms: float, outcome: str) -> None:
    log.info(
        "envelope %s %s incident=%s %.1f ms %s",
        what["type"],
        what["subcommand"],
        incident,
        duration_ms,
        outcome,
        extra={
            "envelope_type": what["type"],
            "subcommand": what["subcommand"],
            "incident": incident,
            "duration_ms": duration_ms,
            "outcome": outcome,
        },
    )
