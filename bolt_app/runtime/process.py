"""`run`: serve until SIGTERM or SIGINT, then stop within a short grace and exit 0.

The main thread only waits for a signal: Python runs signal handlers on the main thread
alone, and a signal the kernel hands to another thread never wakes an unbounded wait,
so it polls (SIGTERM was once ignored under load).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from bolt_app.runtime.config import Settings
from bolt_app.runtime.wiring import start_bot

log = logging.getLogger("bolt_app")

#: How long SIGTERM waits for running jobs before the process leaves anyway.
SHUTDOWN_GRACE_SECONDS = 2.0
#: How often the main thread wakes to run signal handlers while it waits for SIGTERM.
SIGNAL_POLL_SECONDS = 0.5


def run(settings: Settings) -> int:
    """Connect and serve until SIGTERM or SIGINT, then close the socket and exit 0."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bot = start_bot(settings)
    while not stop.wait(timeout=SIGNAL_POLL_SECONDS):
        pass
    finished = bot.stop(SHUTDOWN_GRACE_SECONDS)
    log.info("stopped")
    if not finished:
        # Unfinished jobs are ensure steps the reconciler of any process re-runs; don't
        # let the interpreter wait for them at exit.
        logging.shutdown()
        os._exit(0)
    return 0
