"""Work after the ack, on our own bounded thread pools.

Bolt runs listeners on a small executor and acks only from inside them, so a listener
that did its work inline would hold a thread and delay the acks queued behind it. Our
listeners ack, then hand the work here. Failures are never dropped: each job carries an
`on_error` callback that tells the user (see `listeners.errors`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

log = logging.getLogger(__name__)


def _report(on_error: Callable[[BaseException], None], error: Exception) -> None:
    """Hand a failure to its reporter; if even that fails, the log is all that is left."""
    try:
        on_error(error)
    except Exception:
        log.exception("could not report a failed job (original error: %r)", error)


class Jobs:
    """A named, bounded pool; `submit` runs `fn` and routes any exception to `on_error`."""

    def __init__(
        self, name: str, workers: int, before_each: Callable[[], None] | None = None
    ) -> None:
        self.name = name
        #: Run before each job starts (`priority.AckFirst.wait_quiet`: acks go first).
        self.before_each = before_each
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._pool

    def submit(self, fn: Callable[[], None], on_error: Callable[[BaseException], None]) -> None:
        def run() -> None:
            try:
                if self.before_each is not None:
                    self.before_each()
                fn()
            except Exception as error:
                _report(on_error, error)

        future = self._pool.submit(run)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    def shutdown(self, timeout: float) -> bool:
        """Stop taking work and wait up to `timeout` for running jobs; True if all ended.

        Unfinished work is not lost: every step is an ensure step the reconciler reruns.
        """
        with self._lock:
            pending = set(self._pending)
        self._pool.shutdown(wait=False, cancel_futures=True)
        _done, not_done = wait(pending, timeout=timeout)
        if not_done:
            log.warning("%s: %d job(s) still running at shutdown", self.name, len(not_done))
        return not not_done
