"""Every use of a private slack_sdk or slack_bolt name, in one module, each with its why.

slack_sdk and slack_bolt are pinned below their next major version (`pyproject.toml`),
but a minor release may still rename what this module touches. The unit test
`tests/unit/test_slack_internals.py` checks each name still exists and behaves as used
here, so an upgrade that breaks one fails that test by name, not the bot at 3 a.m.

What we rely on:

* `SocketModeClient._run_current_session` and `current_session` (slack_sdk's
  websocket-client Socket Mode client): the only place the websocket's
  `run_forever(ping_interval=…)` is called. slack_sdk exposes no `ping_timeout`, and
  without one a silently dead connection is noticed only after about a minute. slack_sdk's
  constructor runs it every 0.5 s (`current_session_runner`, whose `event` `close` sets),
  and its own runs an ended session again on the old URL; ours replaces that session
  instead, through `connect_to_new_endpoint`, waiting on that event for the backoff.
* `connect`, `connect_to_new_endpoint(force)` and `issue_new_wss_url`, replaced: slack_sdk
  retried a refused `apps.connections.open` at once, about twice a second for as long as
  the app token was refused, with several log lines each time. slack_sdk's `disconnect`
  handling (`process_message`, with `force=True`) calls `connect_to_new_endpoint`, and so
  does its monitor `_monitor_current_session` (every `ping_interval`), which we replace
  to keep it quiet while an attempt waits; our `connect`
  keeps what slack_sdk's does with `wss_uri`, `current_session`,
  `default_auto_reconnect_enabled`, `current_app_monitor(_started)`, `enqueue_message`
  and the `on_*_listeners`.
* `message_queue` and `process_message` (slack_sdk's base client): the processor waits on
  the queue with a 1 s timeout and skips a `None`, which `close` puts to wake it.
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

import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.websocket_client import SocketModeClient
from websocket import WebSocketApp, WebSocketBadStatusException

from bolt_app.runtime.reconnect import (
    DEFAULT_BACKOFF,
    Backoff,
    Reconnects,
    describe_slack_error,
    seconds,
)

Listener = Callable[[BaseSocketModeClient, SocketModeRequest], None]

#: How often slack_sdk's session runner calls `_run_current_session` when it returns.
SESSION_TICK = 0.5


class PingTimeoutClient(SocketModeClient):
    """slack_sdk's websocket-client Socket Mode client, plus a `ping_timeout`, and
    reconnects that back off (`runtime.reconnect`) with one log line per attempt."""

    ping_timeout: float = 2.0
    #: Called (quickly: it is the receive thread) whenever a new connection opens.
    on_session_start: list[Callable[[], None]]
    #: Called (on the receive thread) when an envelope arrives, before it is queued.
    on_envelope: Callable[[], None] | None = None

    def __init__(self, *, backoff: Backoff = DEFAULT_BACKOFF, **kwargs: Any) -> None:
        # Set before slack_sdk's constructor starts the threads that read them.
        self.reconnects = Reconnects(backoff)
        self._opened_session: WebSocketApp | None = None
        self._ended_session: WebSocketApp | None = None
        self._refusal: Exception | None = None
        self._session_made = threading.Event()
        super().__init__(**kwargs)

    def enqueue_message(self, message: str) -> None:
        """slack_sdk's queueing of a received frame, telling `on_envelope` first (a
        frame without an envelope id, `hello` or `disconnect`, is no envelope)."""
        if self.on_envelope is not None and '"envelope_id"' in message:
            self.on_envelope()
        super().enqueue_message(message)

    def close(self) -> None:
        """slack_sdk's `close`, without its second of waiting: the message processor
        blocks on the queue for up to 1 s at a time, so it is woken with a `None` (which
        it skips) once `closed` is set, and stops at once."""
        self.closed = True
        self.message_queue.put(None)
        super().close()

    # ---- connecting

    def issue_new_wss_url(self) -> str:
        """`apps.connections.open`, raising whatever it raises (slack_sdk's own sleeps out
        a `ratelimited` holding the connect lock, and logs every failure)."""
        response = self.web_client.apps_connections_open(app_token=self.app_token)
        return str(response["url"])

    def connect_to_new_endpoint(self, force: bool = False) -> None:
        """Every reconnect (a closed session, slack_sdk's monitor, Slack's `disconnect`)
        starts here: at most one attempt at a time, and only once the backoff allows."""
        if not self.connect_operation_lock.acquire(timeout=5):
            return
        try:
            if self.closed or (self.is_connected() and not force):
                return
            if self.reconnects.due():
                self._attempt()
        finally:
            self.connect_operation_lock.release()

    def _attempt(self) -> None:
        number = self.reconnects.attempted()
        try:
            self.wss_uri = self.issue_new_wss_url()
            self.connect()
        except SlackApiError as error:
            code, retry_after = _answer_of(error)
            what = describe_slack_error("apps.connections.open", code)
            self._failed(number, what, at_least=retry_after)
        except Exception as error:  # URLError, a timeout, a reset: Slack is unreachable
            self._failed(number, f"apps.connections.open failed: {_short(error)}")

    def _failed(self, number: int, what: str, at_least: float = 0.0) -> None:
        delay = self.reconnects.failed(what, at_least=at_least)
        self.logger.warning(
            "Socket Mode: %s; retrying in %s (attempt %d)", what, seconds(delay), number
        )

    def connect(self) -> None:
        """slack_sdk's `connect` with our own callbacks: they know whether their session
        ever opened, so a handshake that fails is told once, by the attempt's line."""
        old_session = self.current_session
        if self.wss_uri is None:
            self.wss_uri = self.issue_new_wss_url()
        self.current_session = WebSocketApp(
            self.wss_uri,
            on_open=self._on_open,
            on_message=self._on_message,
            on_error=self._on_error,
            on_close=self._on_close,
        )
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        self._session_made.set()
        if not self.current_app_monitor_started:
            self.current_app_monitor_started = True
            self.current_app_monitor.start()
        if old_session is not None:
            old_session.close()

    def _on_open(self, ws: WebSocketApp) -> None:
        self._opened_session = ws
        failed = self.reconnects.opened()
        if failed:
            self.logger.info("Socket Mode connected again after %d failed attempts", failed)
        self.logger.info("Starting to receive messages from a new connection")
        for hook in list(self.on_session_start):  # before the first frame is read
            try:
                hook()
            except Exception:  # a hook must never stop the connection
                self.logger.exception("a Socket Mode session-start hook failed")
        for listener in self.on_open_listeners:
            listener(ws)

    def _on_message(self, ws: WebSocketApp, message: str) -> None:
        self.enqueue_message(message)
        for listener in self.on_message_listeners:
            listener(ws, message)

    def _on_error(self, ws: WebSocketApp, error: Exception) -> None:
        if ws is self._opened_session:
            self.logger.error("Socket Mode connection failed: %s", _short(error))
        else:
            self._refusal = error
        for listener in self.on_error_listeners:
            listener(ws, error)

    def _on_close(
        self, ws: WebSocketApp, code: int | None = None, message: str | None = None
    ) -> None:
        reconnecting = self.auto_reconnect_enabled and not self.closed
        if ws is self._opened_session and reconnecting:
            self.logger.info("Socket Mode connection closed (code %s); reconnecting", code)
        if reconnecting:
            self.connect_to_new_endpoint()
        for listener in self.on_close_listeners:
            listener(ws)

    def _monitor_current_session(self) -> None:
        """slack_sdk's monitor, every `ping_interval`: replace a closed session. Quiet,
        since each attempt logs itself; slack_sdk's logged every check while waiting."""
        started = self.current_app_monitor_started
        if started and self.auto_reconnect_enabled and not self.is_connected():
            self.connect_to_new_endpoint()

    # ---- the receive thread

    def _run_current_session(self) -> None:
        """slack_sdk runs this every 0.5 s. Its own would run an ended session again on
        its old URL, whose refusal reconnected at once: about two `apps.connections.open`
        a second while the app token was refused. An ended session is replaced instead,
        when the backoff allows. A session is run as soon as it is made (the first by
        `connect`, a later one by a reconnect), not at slack_sdk's next tick."""
        session = self._session_to_run()
        while session is not None:
            self._run_session(session)
            following = self.current_session
            if self.closed or following is None or following is session:
                return
            session = following  # a reconnect made while it ran (its close handler's)

    def _session_to_run(self) -> WebSocketApp | None:
        session = self.current_session
        if session is None:  # before the first `connect`: wait for it, briefly
            self._session_made.wait(SESSION_TICK)
            self._session_made.clear()
            return self.current_session
        if session is not self._ended_session:
            return session
        if self.auto_reconnect_enabled and not self.closed:
            # Wait for the attempt's time rather than slack_sdk's next tick; the
            # runner's event is set by `close`, which ends the wait at once.
            stopping = self.current_session_runner.event
            if not stopping.wait(self.reconnects.wait_left()):
                self.connect_to_new_endpoint()
        following = self.current_session
        return None if following is session else following

    def _run_session(self, session: WebSocketApp) -> None:
        self._refusal = None
        try:
            session.run_forever(ping_interval=self.ping_interval, ping_timeout=self.ping_timeout)
        except Exception as error:  # the next run replaces the session
            self.logger.warning("Socket Mode session failed: %s", _short(error))
            session.close()
        self._ended_session = session
        if session is self._opened_session:
            self.logger.info("Stopped receiving messages from a connection")
        elif session is self.current_session and not self.closed:
            refusal = self._refusal
            reason = _short(refusal) if refusal is not None else "closed before it opened"
            self._failed(
                self.reconnects.attempts, f"the Socket Mode websocket did not open: {reason}"
            )


def _answer_of(error: SlackApiError) -> tuple[str, float]:
    """Slack's error code (or the HTTP status) and its `Retry-After` seconds, if any."""
    response = error.response
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"HTTP {response.status_code}")
    headers = response.headers if isinstance(response.headers, dict) else {}
    retry_after = headers.get("Retry-After") or headers.get("retry-after") or 0
    try:
        return code, float(retry_after)
    except (TypeError, ValueError):
        return code, 0.0


def _short(error: BaseException) -> str:
    """An exception in a few words: a refused handshake's status, else its first line."""
    if isinstance(error, WebSocketBadStatusException):
        return f"handshake status {error.status_code}"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


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
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.app = app
        self.app_token = app_token
        self.client = PingTimeoutClient(
            app_token=app_token,
            logger=app.logger,
            web_client=app.client,
            ping_interval=ping_interval,
            concurrency=concurrency,
            backoff=backoff,
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
