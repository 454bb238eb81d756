"""Socket Mode side of FakeSlack: a real websocket server speaking Slack's protocol.

On connect the server sends ``hello``; envelopes go to one open connection at a
time, round-robin, like Slack spreading load over an app's connections; acks
(``{"envelope_id": ..., "payload": ...}``) are recorded with their latency.
Envelopes pushed while nothing is connected wait in a queue and go out on the
next connection, so a reconnect loses nothing in tests.

Like Slack, only Events API envelopes are ever sent again: one not acked within
``ack_timeout`` (3 s), or in flight on a connection that died, comes back as a new
envelope with the same payload and ``retry_attempt`` 1, 2, 3 (``retry_reason``
``timeout``), after ``event_retry_delays`` (Slack: about 0 s, 1 min and 5 min; tests
pass short ones). An unacked slash command, shortcut or form submission is never
resent: the user sees an error in Slack and types it again.

A connection gets envelopes only once it has answered a first ping, and, like
Slack, the server keeps pinging and closes connections that stop answering. The
websocket-client adapter can abandon a connected session without closing it
while it swaps sessions; such a connection never receives envelopes.

Faults: :meth:`SocketModeServer.send_disconnect` sends Slack's ``disconnect``
message (the client is expected to open a new connection and close this one);
:meth:`SocketModeServer.drop_sockets` kills every TCP connection without a
websocket close frame, which is what a network failure looks like.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from bolt_app.devkit.common import interruptible_sleep, wait_for
from bolt_app.devkit.fake_slack.state import JSON

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ack:
    """An acknowledgement received for an envelope."""

    envelope_id: str
    payload: JSON | None
    latency_s: float
    connection_id: int


@dataclass
class Envelope:
    """An envelope pushed by the fake, and where/when it went out."""

    envelope_id: str
    type: str
    message: JSON
    created_at: float
    sent_at: float | None = None
    connection_id: int | None = None
    deliveries: int = 0
    #: For an Events API retry, the envelope it retries (the first one), and which try.
    retry_of: str | None = None
    retry_attempt: int = 0
    #: Whether its retry is already scheduled (a timeout and a drop schedule one, not two).
    retried: bool = False


@dataclass
class _Link:
    """One open websocket connection."""

    id: int
    conn: ServerConnection
    ready: bool = False
    draining: bool = False
    opened_at: float = field(default_factory=time.perf_counter)
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: JSON) -> None:
        """Send one JSON text frame (frames from several threads never interleave)."""
        with self.send_lock:
            self.conn.send(json.dumps(message))


class SocketModeServer:
    """The websocket endpoint ``apps.connections.open`` hands out."""

    def __init__(
        self,
        app_id: str,
        stop: threading.Event,
        host: str = "127.0.0.1",
        event_retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0),
        ack_timeout: float = 3.0,
        ping_interval: float | None = 2.0,
        ping_timeout: float | None = 2.0,
    ) -> None:
        self.app_id = app_id
        self.event_retry_delays = event_retry_delays
        self.ack_timeout = ack_timeout
        #: Drop acks on arrival, as if lost on the wire (`SocketModeMixin.lose_acks`).
        self.losing_acks = False
        #: Refuse every handshake, as for an app whose token was revoked.
        self.refusing = False
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.liveness_timeout = 5.0
        self._stop = stop
        self._host = host
        self._lock = threading.Lock()
        self._links: dict[int, _Link] = {}
        self._next_link = 0
        self._rr = 0
        self._tickets: set[str] = set()
        self._queue: deque[Envelope] = deque()
        self._envelopes: dict[str, Envelope] = {}
        self._acks: dict[str, Ack] = {}
        self._ack_log: list[Ack] = []
        self.connections_total = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0
        self._timer_wake = threading.Condition()
        self._timer_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind a random port and serve in a background thread."""
        self._server = serve(
            self._handle,
            self._host,
            0,
            process_request=self._check_ticket,
            compression=None,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=1,
            logger=logging.getLogger(f"{__name__}.websockets"),
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-slack-ws", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Abort every connection, close the listener, join the threads."""
        self.drop_sockets()
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        """The websocket port."""
        assert self._server is not None, "start() first"
        return int(self._server.socket.getsockname()[1])

    def issue_url(self) -> str:
        """A one-off URL with a fresh ticket (what ``apps.connections.open`` returns)."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://{self._host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    def _check_ticket(self, conn: ServerConnection, request: Request) -> Response | None:
        """Refuse handshakes whose ticket this fake did not issue, and all while refusing."""
        parts = urlsplit(request.path)
        ticket = parse_qs(parts.query).get("ticket", [""])[0]
        with self._lock:
            known = ticket in self._tickets and not self.refusing
        if not parts.path.startswith("/link") or not known:
            return conn.respond(401, "invalid ticket\n")
        return None

    # ------------------------------------------------------------------ connections

    def _handle(self, conn: ServerConnection) -> None:
        """Serve one connection: hello, queued envelopes, then read acks."""
        link = self._open_link(conn)
        try:
            link.send(self._hello(link))
            if not self._answers_ping(link):
                log.debug("socket mode connection %d never answered a ping; closing", link.id)
                return
            self._mark_ready(link)
            for raw in conn:
                self._on_message(link, raw)
        except (ConnectionClosed, OSError):
            pass
        finally:
            with self._lock:
                self._links.pop(link.id, None)
            log.debug("socket mode connection %d closed", link.id)
            if not self._stop.is_set():
                self._retry_lost(link.id)

    def _retry_lost(self, link_id: int) -> None:
        """Retry the events in flight on a closed connection; nothing else comes back."""
        with self._lock:
            lost = [
                item
                for item in self._envelopes.values()
                if item.connection_id == link_id and item.envelope_id not in self._acks
            ]
        for item in lost:
            self._retry(item)

    def _retry(self, item: Envelope) -> None:
        """Schedule the next try of an unacked Events API envelope, if Slack would."""
        if item.type != "events_api":
            return
        with self._lock:
            if item.retried or item.envelope_id in self._acks:
                return
            item.retried = True
        attempt = item.retry_attempt + 1
        if attempt > len(self.event_retry_delays):
            log.debug("socket mode: event envelope %s not acked; no retries left", item.envelope_id)
            return
        delay = self.event_retry_delays[attempt - 1]
        message = {
            **item.message,
            "envelope_id": secrets.token_hex(16),
            "retry_attempt": attempt,
            "retry_reason": "timeout",
        }

        def send() -> None:
            retry = Envelope(
                message["envelope_id"],
                item.type,
                message,
                time.perf_counter(),
                retry_of=item.retry_of or item.envelope_id,
                retry_attempt=attempt,
            )
            with self._lock:
                self._envelopes[retry.envelope_id] = retry
            log.debug("socket mode: retry %d of event envelope %s", attempt, retry.retry_of)
            self._deliver(retry)

        self._later(delay, send)

    def _watch_ack(self, item: Envelope) -> None:
        """Retry an event that stays unacked for ``ack_timeout``, as Slack does."""
        self._later(self.ack_timeout, lambda: self._retry(item))

    def _later(self, delay: float, call: Callable[[], None]) -> None:
        """Run ``call`` after ``delay`` on the one timer thread (thousands of events
        in a benchmark must not each hold a sleeping thread)."""
        with self._timer_wake:
            self._sequence += 1
            heapq.heappush(self._timers, (time.monotonic() + delay, self._sequence, call))
            if self._timer_thread is None:
                self._timer_thread = threading.Thread(
                    target=self._run_timers, name="fake-slack-timers", daemon=True
                )
                self._timer_thread.start()
            self._timer_wake.notify()

    def _run_timers(self) -> None:
        while not self._stop.is_set():
            with self._timer_wake:
                if not self._timers:
                    self._timer_wake.wait(0.5)
                    continue
                due, _, call = self._timers[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._timer_wake.wait(min(wait, 0.5))
                    continue
                heapq.heappop(self._timers)
            call()

    def _open_link(self, conn: ServerConnection) -> _Link:
        with self._lock:
            self._next_link += 1
            self.connections_total += 1
            link = _Link(self._next_link, conn)
            self._links[link.id] = link
        log.debug("socket mode connection %d opened", link.id)
        return link

    def _hello(self, link: _Link) -> JSON:
        """Slack's ``hello`` message."""
        with self._lock:
            count = len(self._links)
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": f"applink-fake-{link.id}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _answers_ping(self, link: _Link) -> bool:
        """True once the client proves it reads this connection (a pong comes back).

        The websocket-client adapter can connect a session and then abandon it
        without closing it while it swaps sessions (at start-up or on refresh).
        Such a socket is open but unread; routing envelopes there would lose
        them until keepalive noticed. Live clients answer within milliseconds.
        """
        pong = link.conn.ping(ack_on_close=True)
        while not pong.wait(0.05):
            if self._stop.is_set():
                return False
            if time.perf_counter() - link.opened_at > self.liveness_timeout:
                link.conn.close(code=1011, reason="no pong")
                return False
        return link.conn.protocol.state is State.OPEN

    def _mark_ready(self, link: _Link) -> None:
        """Let envelopes flow to this link, starting with any queued ones."""
        with self._lock:
            link.ready = True
            pending = list(self._queue)
            self._queue.clear()
        for item in pending:
            self._deliver(item)

    @property
    def connection_count(self) -> int:
        """Open connections (including ones told to disconnect but still open)."""
        with self._lock:
            return len(self._links)

    def wait_connected(self, n: int = 1, timeout: float = 5.0) -> int:
        """Block until at least ``n`` connections have said hello."""

        def ready_count() -> int:
            with self._lock:
                ready = sum(1 for link in self._links.values() if link.ready and not link.draining)
            return ready if ready >= n else 0

        return wait_for(ready_count, timeout, message=f"{n} socket mode connection(s)")

    # ------------------------------------------------------------------ envelopes

    def push(self, message: JSON) -> str:
        """Deliver an envelope to one connection, or queue it until one opens."""
        item = Envelope(message["envelope_id"], message["type"], message, time.perf_counter())
        with self._lock:
            self._envelopes[item.envelope_id] = item
        self._deliver(item)
        return item.envelope_id

    def _pick(self) -> _Link | None:
        """Next ready connection, round-robin; None if there is none."""
        with self._lock:
            links = [
                link for _, link in sorted(self._links.items()) if link.ready and not link.draining
            ]
            if not links:
                return None
            self._rr += 1
            return links[self._rr % len(links)]

    def _deliver(self, item: Envelope) -> None:
        """Try connections until one takes the envelope; queue it otherwise."""
        for _ in range(4):
            link = self._pick()
            if link is None:
                break
            with self._lock:
                if item.envelope_id in self._acks:
                    return  # acked meanwhile (e.g. over the client's new connection)
                item.sent_at = time.perf_counter()
                item.connection_id = link.id
                item.deliveries += 1
            try:
                link.send(item.message)
                if item.type == "events_api" and self.event_retry_delays:
                    self._watch_ack(item)
                return
            except (ConnectionClosed, OSError):
                with self._lock:
                    self._links.pop(link.id, None)
        with self._lock:
            item.sent_at = None
            item.connection_id = None
            self._queue.append(item)

    def _on_message(self, link: _Link, raw: str | bytes) -> None:
        """Record an ack; anything else from the client is logged and ignored."""
        received = time.perf_counter()
        try:
            message: Any = json.loads(raw)
        except ValueError:
            log.warning("socket mode: non-JSON frame from client: %r", raw)
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not envelope_id:
            log.debug("socket mode: ignoring client frame %r", message)
            return
        if self.losing_acks:
            log.debug("socket mode: losing the ack of %s", envelope_id)
            return
        with self._lock:
            item = self._envelopes.get(envelope_id)
            sent = item.sent_at if item and item.sent_at is not None else received
            ack = Ack(envelope_id, message.get("payload"), received - sent, link.id)
            self._acks.setdefault(envelope_id, ack)
            self._ack_log.append(ack)

    @property
    def envelopes(self) -> list[Envelope]:
        """Every envelope pushed so far."""
        with self._lock:
            return list(self._envelopes.values())

    @property
    def acks(self) -> list[Ack]:
        """Every ack received, in arrival order (duplicates included)."""
        with self._lock:
            return list(self._ack_log)

    def ack(self, envelope_id: str) -> Ack | None:
        """The first ack for an envelope, or for one of its retries (an event), if any."""
        with self._lock:
            return self._ack_unlocked(envelope_id)

    def _ack_unlocked(self, envelope_id: str) -> Ack | None:
        first = self._acks.get(envelope_id)
        if first is not None:
            return first
        return next(
            (
                self._acks[item.envelope_id]
                for item in self._envelopes.values()
                if item.retry_of == envelope_id and item.envelope_id in self._acks
            ),
            None,
        )

    def gave_up(self, envelope_id: str) -> bool:
        """Sent, never acked, and its connection closed (see `SocketModeMixin.gave_up`)."""
        with self._lock:
            item = self._envelopes.get(envelope_id)
            return (
                item is not None
                and self._ack_unlocked(envelope_id) is None
                and item.connection_id is not None
                and item.connection_id not in self._links
            )

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Block until the envelope is acked."""
        return wait_for(
            lambda: self.ack(envelope_id),
            timeout,
            interval=0.002,
            message=f"ack of envelope {envelope_id}",
        )

    # ------------------------------------------------------------------ faults

    def send_disconnect(
        self,
        reason: str = "refresh_requested",
        *,
        connection_id: int | None = None,
        close_after: float | None = None,
    ) -> int:
        """Send Slack's ``disconnect`` message; returns how many links got it.

        Those links get no more envelopes. The client should reconnect and close
        them; ``close_after`` makes the server close them itself after a while.
        """
        with self._lock:
            targets = [
                link
                for link in self._links.values()
                if not link.draining and (connection_id is None or link.id == connection_id)
            ]
            for link in targets:
                link.draining = True
        for link in targets:
            message = {
                "type": "disconnect",
                "reason": reason,
                "debug_info": {"host": f"applink-fake-{link.id}"},
            }
            try:
                link.send(message)
            except (ConnectionClosed, OSError):
                continue
            if close_after is not None:
                threading.Thread(
                    target=self._close_later, args=(link, close_after), daemon=True
                ).start()
        return len(targets)

    def _close_later(self, link: _Link, delay: float) -> None:
        if not interruptible_sleep(self._stop, delay):
            link.conn.close()

    def drop_sockets(self) -> int:
        """Kill every connection at the TCP level, without a close frame."""
        with self._lock:
            links = list(self._links.values())
        for link in links:
            with contextlib.suppress(OSError):
                link.conn.socket.shutdown(socket.SHUT_RDWR)
        return len(links)
