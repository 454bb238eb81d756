"""Events: messages of incident channels are captured; `pin_added` goes on the timeline.

A message event and a pin are stored before their ack (inline: the app runs with
`process_before_response`), so an acked event is never lost; if the store fails, the
event stays unacked and Slack retries it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bolt_app.services import Services

log = logging.getLogger(__name__)


def pinned(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(channel, message) of a `pin_added` event; None when a file or nothing was pinned."""
    item = event.get("item") or {}
    channel = str(event.get("channel_id") or item.get("channel") or "")
    message = item.get("message") or {}
    if item.get("type", "message") != "message" or not message.get("ts"):
        return None
    return channel, message


def on_pin_added(services: Services, event: dict[str, Any]) -> None:
    """Record a `pinned` event at the message's own time; other channels are ignored."""
    found = pinned(event)
    if found is None:
        return
    channel, message = found
    incident = services.incidents.in_channel(channel)
    if incident is None:
        return
    services.transcript.record_pin(incident, event.get("user"), message)


def register(app: App, services: Services) -> None:
    @app.event("message")
    def message(event: dict[str, Any], body: dict[str, Any]) -> None:
        services.capture.record(event, body.get("event_id"))

    @app.event("pin_added")
    def pin_added(event: dict[str, Any]) -> None:
        # Before the ack too, like a message: an event acked and then lost is gone.
        on_pin_added(services, event)
