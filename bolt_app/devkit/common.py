"""Shared plumbing for the local fakes (FakeSlack, FakeNotion).

The fakes are real HTTP servers so that the real client libraries are exercised
end to end. What they have in common lives here, kept free of any one API's
wire format:

* :class:`Fault` and :class:`FaultPlan` - "the next N calls to X (or every
  call) misbehave like this", plus a fixed per-call latency. Each fake maps a
  fault onto its own wire format (Slack answers HTTP 200 ``ok: false``, Notion
  answers an error object or an HTML gateway page).
* :class:`CallLog` - every request, decoded, so tests assert on what the app
  actually sent rather than on mocks. Generic over the record type, since each
  fake records its own API's shape of a call.
* :func:`wait_for` - tests wait on conditions with deadlines instead of sleeping.
* :class:`BackgroundHTTPServer` - a threaded stdlib HTTP server that starts on a
  random port and stops in well under a second without leaving threads behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar, overload

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

ANY_KEY = "*"


# --------------------------------------------------------------------------- waiting


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Tests use this instead of ``time.sleep`` so they are as fast as the system
    allows and still bounded on a slow, noisy CI machine. On timeout the error
    names the predicate and its last value, which is usually enough to see why.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}; last={last!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One misbehaviour to apply to a single call.

    The fields combine: ``delay`` is applied first, then ``reset`` (drop the
    connection without answering), else ``status``/``error`` decide the answer.
    ``status=None`` with ``error=None`` means "answer normally" (a pure delay).
    ``error`` is the API's error code for the answer; what a fake makes of it
    (Slack's ``error`` field, Notion's ``code``, or a special value) is its own
    business. ``retry_after`` is a float because some APIs (Notion) are tested
    with sub-second waits; each fake renders it on the wire as that API does.

    ``drop_response`` is the fault exactly-once protocols are tested against:
    the request is applied as normal, but its answer is never sent, so the
    client times out not knowing that its write happened. FakeNotion holds the
    connection until the client gives up; FakeSlack resets it after applying.
    """

    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    delay: float | None = None
    reset: bool = False
    drop_response: bool = False
    #: An answer that is not the API's JSON (a proxy's error page), sent as text/plain.
    raw_body: str | None = None

    @property
    def answers_normally(self) -> bool:
        """True when the fault only delays; the real handler still answers."""
        return (
            not self.reset
            and not self.drop_response
            and self.status is None
            and self.error is None
            and self.raw_body is None
        )


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None  # None: every call, never disarms


class FaultPlan:
    """Thread-safe queue of faults per key (an API method, a route, or ``*``).

    Faults armed for a specific key win over ``*``. Each armed fault is used for
    ``times`` calls and then disarms itself, so a test states exactly how many
    calls fail and the retry that follows succeeds. ``times=None`` arms a fault
    for every call (an outage), until :meth:`clear`; faults queued behind it for
    the same key never come up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[_Armed]] = {}
        self._latency: dict[str, float] = {}

    def arm(self, key: str, fault: Fault, times: int | None = 1) -> None:
        """Make the next ``times`` calls matching ``key`` (None: all) suffer ``fault``."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every call)")
        with self._lock:
            self._armed.setdefault(key, []).append(_Armed(fault, times))

    def take(self, key: str) -> Fault | None:
        """Consume and return the fault for this call, if any is armed."""
        with self._lock:
            for candidate in (key, ANY_KEY):
                queue = self._armed.get(candidate)
                if not queue:
                    continue
                head = queue[0]
                if head.remaining is not None:
                    head.remaining -= 1
                    if head.remaining <= 0:
                        queue.pop(0)
                return head.fault
        return None

    def pending(self, key: str = ANY_KEY) -> float:
        """How many calls matching exactly ``key`` are still armed to fail.

        Tests use it to know a request reached the server (its fault was taken).
        A fault armed for every call never runs out: that is ``math.inf``."""
        with self._lock:
            armed = self._armed.get(key, [])
            if any(a.remaining is None for a in armed):
                return math.inf
            return sum(a.remaining or 0 for a in armed)

    def set_latency(self, seconds: float, key: str = ANY_KEY) -> None:
        """Add a fixed latency to every call matching ``key`` (0 removes it)."""
        with self._lock:
            if seconds <= 0:
                self._latency.pop(key, None)
            else:
                self._latency[key] = seconds

    def latency(self, key: str) -> float:
        """The fixed latency for ``key``: its own setting, else the ``*`` one."""
        with self._lock:
            return self._latency.get(key, self._latency.get(ANY_KEY, 0.0))

    def clear(self) -> None:
        """Disarm every fault and latency."""
        with self._lock:
            self._armed.clear()
            self._latency.clear()


# --------------------------------------------------------------------------- call log


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it, after decoding, with the answer it gave."""

    method: str
    params: dict[str, Any]
    at: float
    status: int
    ok: bool | None
    error: str | None
    headers: dict[str, str] = field(default_factory=dict)


def _method_of(call: Call) -> str:
    return call.method


class CallLog(Generic[R]):
    """Append-only, thread-safe record of calls.

    Generic over the record type because each fake records a call in its own
    API's terms: FakeSlack uses :class:`Call`; FakeNotion uses a mutable record
    logged on arrival (so a test can see a request that is still being delayed)
    and completed when answered. ``key`` names the API method a record is for,
    which :meth:`to` and :meth:`count` filter on (default: ``Call.method``).
    """

    @overload
    def __init__(self: CallLog[Call]) -> None: ...

    @overload
    def __init__(self, key: Callable[[R], str | None]) -> None: ...

    def __init__(self, key: Callable[[Any], str | None] = _method_of) -> None:
        self._lock = threading.Lock()
        self._calls: list[R] = []
        self._key = key

    def record(self, call: R) -> R:
        """Append a call and return it (done before the answer is written, so a
        test that reads the log right after its client returns always sees it)."""
        with self._lock:
            self._calls.append(call)
        return call

    @property
    def calls(self) -> list[R]:
        """A snapshot of every call, oldest first."""
        with self._lock:
            return list(self._calls)

    def to(self, method: str) -> list[R]:
        """Calls of one method, oldest first."""
        with self._lock:
            return [c for c in self._calls if self._key(c) == method]

    def count(self, method: str | None = None) -> int:
        """How many calls (of ``method``, or in total)."""
        with self._lock:
            if method is None:
                return len(self._calls)
            return sum(1 for c in self._calls if self._key(c) == method)

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._calls.clear()


# --------------------------------------------------------------------------- sockets


def reset_connection(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of an orderly FIN.

    This is what a crashed proxy or load balancer looks like to a client: the
    request was sent, no response ever comes, the connection is reset.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _QuietThreadingHTTPServer(ThreadingHTTPServer):
    """Threaded server whose request threads are joined on close.

    ``block_on_close`` (the default) makes ``server_close`` join every request
    thread, which is what guarantees "no threads left behind". Handlers must
    therefore never block unboundedly; the fakes sleep on a stop event.
    """

    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log at debug level: clients that hang up early are normal here."""
        log.debug("error while handling a request from %s", client_address, exc_info=True)


class BackgroundHTTPServer:
    """A stdlib HTTP server on 127.0.0.1:<random port>, served from a thread."""

    POLL_INTERVAL = 0.05

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self._server = _QuietThreadingHTTPServer((host, 0), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the OS picked."""
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """The bound host."""
        return str(self._server.server_address[0])

    def start(self, name: str = "fake-http") -> None:
        """Serve in a daemon thread; returns once the socket is listening."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self.POLL_INTERVAL},
            name=name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, then join the serving and request threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=2)
            self._thread = None
        self._server.server_close()


def interruptible_sleep(stop: threading.Event, seconds: float) -> bool:
    """Sleep up to ``seconds`` unless ``stop`` is set; True if it was set.

    Injected delays use this so that ``stop()`` never waits for a slow fake.
    """
    if seconds <= 0:
        return stop.is_set()
    return stop.wait(seconds)


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Answer a stdlib HTTP request with a JSON body and its length.

    The fakes keep their own copy of this (the health server has one too): a fake that
    imported product code could share its mistakes instead of catching them.
    """
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class RateBudget:
    """A rate limit as a budget of requests per window (off until `set`).

    A request over the budget is not applied and gets 429 with `Retry-After`, the
    seconds until the window ends: Notion's limit (about 3 requests a second) and
    Slack's tiers (Tier 3 is about 50 a minute; history for non-Marketplace apps, 1).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budget: int | None = None
        self._window = 1.0
        self._start = 0.0
        self._spent = 0

    def set(self, requests: int | None, window_s: float) -> None:
        with self._lock:
            self._budget, self._window = requests, window_s
            self._start, self._spent = time.monotonic(), 0

    def spend(self) -> Fault | None:
        """None while within the budget; else the 429 to answer with."""
        with self._lock:
            if self._budget is None:
                return None
            now = time.monotonic()
            if now - self._start >= self._window:
                self._start, self._spent = now, 0
            if self._spent < self._budget:
                self._spent += 1
                return None
            return Fault(status=429, retry_after=max(0.0, self._start + self._window - now))
