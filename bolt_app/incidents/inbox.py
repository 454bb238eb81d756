"""Commands as inbox rows: committed before the ack, run once, taken over if their process dies.

A listener `put`s the request (one group-committed row) and only then acks, so an acked
command is never lost: Slack does not send a slash command, shortcut or form again once
it was acked, nor when it was not. The acking process runs the row at once; while it
lives, `Leases` renews its claim. If it dies, the lease runs out and the reconciler of
any process claims the row (one conditional UPDATE, so one process wins) and runs it
again. Running again is safe because each kind's effects are idempotent: a declare finds
its incident by request key, a change finds its timeline event by the same key, the
set-up steps are `ensure_artifact`s (see "The inbox" in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bolt_app.core.clock import Clock
from bolt_app.core.errors import FirebreakError
from storage import INBOX_MAX_ATTEMPTS, InboxRow, Store, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

#: How long a row stays its runner's without a renewal. A process killed mid-command
#: has its rows run elsewhere this long after its last renewal (plus a reconcile pass).
LEASE_SECONDS = 10.0

#: How soon a row whose work did only part of its job is tried again.
RETRY_SECONDS = 5.0

#: How often a live process renews its leases: several renewals per lease, so a slow
#: database or a busy interpreter doesn't lose one.
RENEW_SECONDS = 2.5


class InboxService:
    """The inbox of one process: `put` before the ack, `run` after it, `due` for others'."""

    def __init__(self, store: Store, clock: Clock, lease_seconds: float = LEASE_SECONDS) -> None:
        self.store = store
        self.clock = clock
        self.lease_seconds = lease_seconds
        #: Unique per process start, so a reused pid never inherits a dead one's rows.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def put(self, key: str, kind: str, payload: dict[str, Any]) -> InboxRow | None:
        """Store the request before the ack; None when the key was stored before.

        A key seen before is somebody's already: this process must not run it too.
        """
        row, fresh = self.store.inbox.put(
            key=key,
            kind=kind,
            payload=payload,
            now=self.clock(),
            owner=self.owner,
            lease_seconds=self.lease_seconds,
        )
        return row if fresh else None

    def run(self, row: InboxRow, work: Callable[[], None]) -> None:
        """Run the row's work and mark it done.

        Done means its effects are recorded, whether the work succeeded or refused (the
        user was told either way). A store that did not answer leaves it open (the lease
        runs out), and work that did part of its job (`retry_later`, a change whose topic
        or page could not be written) is released to run again in `RETRY_SECONDS`.
        """
        try:
            work()
        except StoreUnavailable:
            raise
        except FirebreakError as error:
            if error.retry_later and row.attempts < INBOX_MAX_ATTEMPTS:
                self._release(row)
            else:
                self._finish(row)
            raise
        except Exception:
            self._finish(row)
            raise
        self._finish(row)

    def _release(self, row: InboxRow) -> None:
        retry_at = self.clock() + timedelta(seconds=RETRY_SECONDS)
        try:
            self.store.inbox.release(int(row.id), retry_at)
        except StoreError as error:  # the lease runs out instead; the retry only waits longer
            log.warning("inbox row %s could not be released for a retry: %s", row.id, error)

    def give_up(self, row: InboxRow) -> None:
        """A row this version can't run: marked done so no pass tries it again."""
        self._finish(row)

    def _finish(self, row: InboxRow) -> None:
        try:
            self.store.inbox.finish(int(row.id), self.clock())
        except StoreError as error:  # the lease runs out; running it again is safe
            log.warning("inbox row %s ran but could not be marked done: %s", row.id, error)

    def claim_due(self) -> list[InboxRow]:
        """Rows whose process died, now claimed by this one; run each with `run`."""
        now = self.clock()
        claimed = []
        for row in self.store.inbox.due(now):
            mine = self.store.inbox.claim(int(row.id), self.owner, now, self.lease_seconds)
            if mine is not None:
                log.info(
                    "inbox: took over %s row %s (attempt %d)", mine.kind, mine.id, mine.attempts
                )
                claimed.append(mine)
        return claimed

    def depth(self) -> tuple[int, float]:
        """Unfinished rows and the age of the oldest, for the metrics."""
        return self.store.inbox.depth(self.clock())

    # -- leases ----------------------------------------------------------------------------

    def start(self) -> None:
        """Renew this process's leases every `RENEW_SECONDS` until `stop`."""
        self._renewer = threading.Thread(target=self._renew_loop, name="inbox-leases", daemon=True)
        self._renewer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=RENEW_SECONDS * 2)

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self.store.inbox.renew(self.owner, self.clock(), self.lease_seconds)
            except StoreError as error:  # next time; a lost lease only means a re-run
                log.warning("inbox: could not renew leases: %s", error)
