"""A request budget shared by every thread of the process: a token bucket.

Notion allows about 3 requests a second per connection, on average, and answers more with
429 and a `Retry-After` that pauses the work for a second or a minute. Pacing ourselves
below that keeps the background work (the transcript's syncs, for every incident at once)
from spending the budget the interactive work needs, and from being turned away at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pace:
    """At most `per_second` requests a second on average, in bursts of up to `burst`.

    `take()` blocks until the request may go. Thread-safe: waiters are served as the
    bucket refills, so no thread waits longer than its turn.
    """

    def __init__(
        self,
        per_second: float,
        burst: int = 10,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.per_second = per_second
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for one request's turn; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            self._tokens -= 1.0  # reserved now; a deficit is this request's wait
            wait = max(0.0, -self._tokens / self.per_second)
        if wait > 0:
            self._sleep(wait)
        return wait
