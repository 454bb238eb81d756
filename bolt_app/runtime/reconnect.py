"""Socket Mode reconnect attempts back off exponentially, and remember why the socket is down.

1 s, 2 s, 4 s … 60 s after failures in a row (less up to a tenth at random, so processes
sharing a token drift apart); the first attempt after an open connection is immediate. A
refused app token backs off like an outage: the bot cannot tell a revoked token from Slack's
auth failing for a while. See "The process model" in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Slack's answers to `apps.connections.open` that mean the app token itself is refused.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})


def backoff_delay(
    failures: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.1,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after `failures` failed attempts in a row: `base` doubled each
    time up to `cap`, less up to `jitter` of it at random (never more than `cap`)."""
    if failures <= 0:
        return 0.0
    delay = min(cap, base * 2.0 ** min(failures - 1, 64))
    return delay * (1.0 - jitter * rand())


@dataclass(frozen=True)
class Backoff:
    """The schedule of `backoff_delay`; tests pass a short one."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.1

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        return backoff_delay(failures, base=self.base, cap=self.cap, jitter=self.jitter, rand=rand)


DEFAULT_BACKOFF = Backoff()


def describe_slack_error(method: str, code: str) -> str:
    """What an `ok: false` answer of `method` means, for a log line and `/healthz`."""
    if code in AUTH_ERRORS:
        return f"Slack refused the app token (`{code}`) at {method}"
    return f"Slack answered `{code}` to {method}"


def seconds(value: float) -> str:
    """`0.4 s` below ten seconds, whole seconds above (rounded up)."""
    return f"{value:.1f} s" if value < 10 else f"{math.ceil(value)} s"


@dataclass(frozen=True)
class Failure:
    """The last failed attempt: what went wrong, and when the next one may start."""

    what: str
    retry_at: float


class Reconnects:
    """Counts connection attempts since the last open connection; thread-safe.

    `attempted` is called when an attempt starts, `failed` when it failed, `opened` when a
    connection opened. An attempt's own delay counts from its start, so a second caller
    (slack_sdk's monitor, a close) cannot start another one while it is in flight.
    """

    def __init__(
        self,
        backoff: Backoff = DEFAULT_BACKOFF,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.backoff = backoff
        self._clock = clock
        self._rand = rand
        self._lock = threading.Lock()
        self._attempts = 0
        self._next_at = 0.0
        self._failure: Failure | None = None

    @property
    def attempts(self) -> int:
        """Attempts since the last open connection."""
        with self._lock:
            return self._attempts

    def due(self) -> bool:
        """Whether an attempt may start now."""
        with self._lock:
            return self._attempts == 0 or self._clock() >= self._next_at

    def wait_left(self) -> float:
        """Seconds until an attempt may start (0 if it may now)."""
        with self._lock:
            if self._attempts == 0:
                return 0.0
            return max(0.0, self._next_at - self._clock())

    def attempted(self) -> int:
        """An attempt starts; returns its number since the last open connection."""
        with self._lock:
            self._attempts += 1
            self._next_at = self._clock() + self.backoff.delay(self._attempts, self._rand)
            return self._attempts

    def failed(self, what: str, *, at_least: float = 0.0) -> float:
        """The attempt under way failed; returns the seconds until the next may start
        (at least `at_least`, e.g. Slack's `Retry-After`)."""
        with self._lock:
            self._attempts = max(self._attempts, 1)  # a failure always waits
            delay = max(self.backoff.delay(self._attempts, self._rand), at_least)
            self._next_at = self._clock() + delay
            self._failure = Failure(what, self._next_at)
            return delay

    def opened(self) -> int:
        """A connection opened: the next attempt may start at once. Returns how many
        attempts failed before this one."""
        with self._lock:
            failed = max(self._attempts - 1, 0) if self._failure is not None else 0
            self._attempts = 0
            self._failure = None
            return failed

    def reason(self) -> str | None:
        """Why the last attempt failed and when the next starts; None after an open."""
        with self._lock:
            failure = self._failure
            now = self._clock()
        if failure is None:
            return None
        left = failure.retry_at - now
        when = f"in {seconds(left)}" if left > 0 else "now"
        return f"{failure.what}; retrying {when}"
