"""Every use of a private slack_sdk or slack_bolt name, in one module, each with its why.

slack_sdk and slack_bolt are pinned below their next major version (`pyproject.toml`),
but a minor release may still rename what this module touches. The unit test
`tests/unit/test_slack_internals.py` checks each name still exists and behaves as used
here, so an upgrade that breaks one fails that test by name, not the bot at 3 a.m.

What we rely on:

* `SocketModeClient._run_current_session` and `current_session` (slack_sdk's
  websocket-client Socket Mode client): the only place the websocket's
  `run_forever(ping_interval=…)` is called. slack_sdk exposes no `ping_timeout`, and
  without one a silently dead connection is noticed only after about a minute.
* `SocketModeHandler`'s attributes `app`, `app_token`, `client` and its `handle`
  method (slack_bolt's websocket-client adapter): we build the handler around our own
  client instead of letting its constructor start a stock client first.
* `slack_bolt.adapter.socket_mode.internals.run_bolt_app` and `send_response`: how
  Bolt's handler runs the app and acks; the envelope log wraps exactly these two calls
  to time each envelope (Bolt's middleware cannot: it runs before the listener).
* `BaseSocketModeClient.socket_mode_request_listeners`: where Bolt's handler registers
  itself, so the envelope log can take its place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.websocket_client import SocketModeClient

Listener = Callable[[BaseSocketModeClient, SocketModeRequest], None]


class PingTimeoutClient(SocketModeClient):
    """slack_sdk's websocket-client Socket Mode client, plus a `ping_timeout`."""

    ping_timeout: float = 2.0
    #: Called (quickly: it is the receive thread) whenever a new connection starts.
    on_session_start: list[Callable[[], None]]
    #: Called (on the receive thread) when an envelope arrives, before it is queued.
    on_envelope: Callable[[], None] | None = None

    def enqueue_message(self, message: str) -> None:
        """slack_sdk's queueing of a received frame, telling `on_envelope` first (a
        frame without an envelope id, `hello` or `disconnect`, is no envelope)."""
        if self.on_envelope is not None and '"envelope_id"' in message:
            self.on_envelope()
        super().enqueue_message(message)

    def _run_current_session(self) -> None:
        session = self.current_session
        if session is None:
            return
        fresh = id(session) != getattr(self, "_announced_session", None)
        if fresh:
            # slack_sdk runs this every 0.5 s; the hooks run once per new connection.
            self._announced_session = id(session)
            for hook in list(self.on_session_start):
                try:
                    hook()
                except Exception:  # a hook must never stop the connection
                    self.logger.exception("a Socket Mode session-start hook failed")
        try:
            self.logger.info("Starting to receive messages from a new connection")
            session.run_forever(ping_interval=self.ping_interval, ping_timeout=self.ping_timeout)
            self.logger.info("Stopped receiving messages from a connection")
        except Exception as error:  # the monitor thread reconnects a closed session
            self.logger.warning("Socket Mode session failed: %s", error)
            session.close()


class PingTimeoutHandler(SocketModeHandler):
    """Bolt's websocket-client handler, built around `PingTimeoutClient`.

    The parent constructor would start a stock client's threads only for us to replace
    it, so this sets the same three attributes itself.
    """

    def __init__(
        self,
        app: App,
        app_token: str,
        *,
        ping_interval: float,
        ping_timeout: float,
        concurrency: int,
    ) -> None:
        self.app = app
        self.app_token = app_token
        self.client = PingTimeoutClient(
            app_token=app_token,
            logger=app.logger,
            web_client=app.client,
            ping_interval=ping_interval,
            concurrency=concurrency,
        )
        self.client.ping_timeout = ping_timeout
        self.client.on_session_start = []
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]


def run_and_ack(app: App, client: BaseSocketModeClient, req: SocketModeRequest) -> BoltResponse:
    """Run the Bolt app on one envelope and send its ack, exactly as Bolt's handler does."""
    started_wall = time.time()
    response = run_bolt_app(app, req)
    send_response(client, req, response, started_wall)
    return response


def replace_request_listener(client: BaseSocketModeClient, app: App, listener: Listener) -> None:
    """Put `listener` where Bolt's handler for `app` (or an earlier replacement) was.

    Idempotent: attaching twice leaves one listener, so an envelope is never run twice.
    """
    listeners: list[Any] = client.socket_mode_request_listeners
    for old in list(listeners):
        bolt_handler = getattr(getattr(old, "__self__", None), "app", None) is app
        replaced = getattr(old, "replaces_bolt_for", None) is app
        if bolt_handler or replaced:
            listeners.remove(old)
    listener.replaces_bolt_for = app  # type: ignore[attr-defined]
    listeners.append(listener)
