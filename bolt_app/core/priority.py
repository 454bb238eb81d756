"""Acks first: background jobs wait to start while envelopes wait for their ack.

The one fact: with one interpreter lock, work competes with acks for the CPU. Fifty
declares' set-ups started as each was acked (about ten Slack and Notion calls each)
made the last of the fifty acks wait 300-400 ms; with no work beside them the same fifty
are acked within about 60 ms. So a job of the commands and dumps pools starts only once
no envelope is waiting for its ack, or after `MAX_DEFER_SECONDS` at most: a steady
stream of events can delay work a little, never stop it (see "The process model" in
docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import threading

#: The longest a job waits for the envelopes in flight to be acked.
MAX_DEFER_SECONDS = 0.5


class AckFirst:
    """Counts envelopes between their arrival and their ack; jobs `wait_quiet` first."""

    def __init__(self, max_defer: float = MAX_DEFER_SECONDS) -> None:
        self.max_defer = max_defer
        self._in_flight = 0
        self._quiet = threading.Condition()

    def arrived(self) -> None:
        with self._quiet:
            self._in_flight += 1

    def acked(self) -> None:
        with self._quiet:
            self._in_flight = max(0, self._in_flight - 1)
            if self._in_flight == 0:
                self._quiet.notify_all()

    def wait_quiet(self) -> None:
        """Return once nothing waits for its ack, or after `max_defer`."""
        with self._quiet:
            self._quiet.wait_for(lambda: self._in_flight == 0, timeout=self.max_defer)
