"""The inbox: each command is a row, committed before its ack, written in groups.

The one fact that matters: `Inbox.put` returns only once its row is committed, and
puts that arrive together share one transaction. A single writer thread takes every
row queued while the previous commit ran, inserts them in one statement and commits
once, then wakes each caller. Fifty declares at once are then two or three commits,
not fifty serialized ones (see "The inbox" in docs/ARCHITECTURE.md).

A row is born claimed by the process that acked it (`owner`, `lease_until`); that
process renews its leases while it lives. A lease nobody renews runs out, and any
process may then `claim` the row and run it again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peewee import fn

from storage import models as m
from storage.errors import StoreUnavailable
from storage.records import InboxRow, naive_utc

#: The most rows one commit carries; more wait for the next.
MAX_GROUP = 200

#: How long `put` waits for its group's commit before it gives up.
PUT_TIMEOUT_SECONDS = 30.0

#: A row is tried at most this many times (a crash, a database that went away).
MAX_ATTEMPTS = 5


@dataclass
class _Pending:
    values: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    row: InboxRow | None = None
    fresh: bool = False
    error: BaseException | None = None


class Inbox:
    """The inbox table, and the writer thread that commits its rows in groups."""

    def __init__(
        self,
        session: Callable[[], AbstractContextManager[Any]],
        atomic: Callable[[], AbstractContextManager[Any]],
    ) -> None:
        self._session = session
        self._atomic = atomic
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._start_guard = threading.Lock()
        #: Told the size of each group committed; for metrics and the tests.
        self.committed: Callable[[int], None] | None = None

    # -- writing before the ack --------------------------------------------------------------

    def put(
        self,
        *,
        key: str,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        owner: str,
        lease_seconds: float,
    ) -> tuple[InboxRow, bool]:
        """Store the request; (its committed row, already claimed by `owner`, fresh).

        The same `key` stored before returns the first row, untouched, and fresh False:
        that request is somebody else's to run (or done).
        """
        now = naive_utc(now)
        pending = _Pending(
            {
                "key": key,
                "kind": kind,
                "payload": payload,
                "received_at": now,
                "owner": owner,
                "lease_until": now + timedelta(seconds=lease_seconds),
                "attempts": 1,
            }
        )
        self._ensure_writer()
        self._queue.put(pending)
        if not pending.done.wait(PUT_TIMEOUT_SECONDS):
            raise StoreUnavailable("the inbox's commit did not finish in time")
        if pending.error is not None:
            raise pending.error
        assert pending.row is not None
        return pending.row, pending.fresh

    def _ensure_writer(self) -> None:
        with self._start_guard:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_groups, name="inbox-writer", daemon=True
                )
                self._writer.start()

    def _write_groups(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: Sequence[_Pending]) -> None:
        keys = list(dict.fromkeys(p.values["key"] for p in group))
        first_of = {p.values["key"]: p.values for p in reversed(group)}
        try:
            with self._atomic():
                known = {
                    row.key
                    for row in m.InboxRow.select(m.InboxRow.key).where(m.InboxRow.key.in_(keys))
                }
                fresh = [first_of[k] for k in keys if k not in known]
                if fresh:
                    m.InboxRow.insert_many(fresh).on_conflict_ignore().execute()
                rows = {
                    row.key: InboxRow.of(row)
                    for row in m.InboxRow.select().where(m.InboxRow.key.in_(keys))
                }
        except Exception as error:  # every waiter gets it; the writer thread lives on
            for pending in group:
                pending.error = error
                pending.done.set()
            return
        if self.committed is not None:
            self.committed(len(group))
        for pending in group:
            key = pending.values["key"]
            pending.row = rows[key]
            # Only the first put of a key is fresh, even twice in one group; of two
            # processes inserting it at once, the one whose row it is (the other
            # process's INSERT was ignored: each process has its own owner).
            pending.fresh = (
                key not in known
                and first_of[key] is pending.values
                and pending.row.owner == pending.values["owner"]
            )
            pending.done.set()

    def close(self) -> None:
        """Stop the writer once what is queued is committed."""
        with self._start_guard:
            writer, self._writer = self._writer, None
        if writer is not None and writer.is_alive():
            self._queue.put(None)
            writer.join(timeout=PUT_TIMEOUT_SECONDS)

    # -- running and finishing -----------------------------------------------------------------

    def claim(
        self, row_id: int, owner: str, now: datetime, lease_seconds: float
    ) -> InboxRow | None:
        """Take over a row whose lease ran out; None when it is done or someone holds it.

        One conditional UPDATE, so of several processes claiming at once exactly one wins.
        """
        now = naive_utc(now)
        with self._atomic():
            changed = (
                m.InboxRow.update(
                    owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=m.InboxRow.attempts + 1,
                )
                .where(
                    (m.InboxRow.id == row_id)
                    & m.InboxRow.done_at.is_null()
                    & (m.InboxRow.lease_until < now)
                    & (m.InboxRow.attempts < MAX_ATTEMPTS)
                )
                .execute()
            )
            if not changed:
                return None
            return InboxRow.of(m.InboxRow.get_by_id(row_id))

    def renew(self, owner: str, now: datetime, lease_seconds: float) -> int:
        """Extend every unfinished lease `owner` holds; how many there were."""
        now = naive_utc(now)
        with self._atomic():
            return int(
                m.InboxRow.update(lease_until=now + timedelta(seconds=lease_seconds))
                .where((m.InboxRow.owner == owner) & m.InboxRow.done_at.is_null())
                .execute()
            )

    def release(self, row_id: int, retry_at: datetime) -> None:
        """Give a row up for another try at `retry_at`, by any process (this one too)."""
        retry_at = naive_utc(retry_at)
        with self._atomic():
            m.InboxRow.update(owner=None, lease_until=retry_at).where(
                (m.InboxRow.id == row_id) & m.InboxRow.done_at.is_null()
            ).execute()

    def finish(self, row_id: int, now: datetime) -> None:
        """Its effects are recorded: nobody runs it again."""
        now = naive_utc(now)
        with self._atomic():
            m.InboxRow.update(done_at=now).where(m.InboxRow.id == row_id).execute()

    def due(self, now: datetime, limit: int = 50) -> list[InboxRow]:
        """Unfinished rows whose lease ran out (their process died), oldest first."""
        now = naive_utc(now)
        with self._session():
            query = (
                m.InboxRow.select()
                .where(
                    m.InboxRow.done_at.is_null()
                    & (m.InboxRow.lease_until < now)
                    & (m.InboxRow.attempts < MAX_ATTEMPTS)
                )
                .order_by(m.InboxRow.id)
                .limit(limit)
            )
            return [InboxRow.of(row) for row in query]

    def received_at(self, key: str) -> datetime | None:
        """When the request with this key arrived (its ack's time), if it is stored."""
        with self._session():
            row = m.InboxRow.get_or_none(m.InboxRow.key == key)
            return row.received_at if row is not None else None

    def get(self, row_id: int) -> InboxRow | None:
        with self._session():
            row = m.InboxRow.get_or_none(m.InboxRow.id == row_id)
            return InboxRow.of(row) if row is not None else None

    def depth(self, now: datetime) -> tuple[int, float]:
        """Unfinished rows (given up ones aside) and the age in seconds of the oldest."""
        now = naive_utc(now)
        with self._session():
            count, oldest = (
                m.InboxRow.select(fn.COUNT(m.InboxRow.id), fn.MIN(m.InboxRow.received_at))
                .where(m.InboxRow.done_at.is_null() & (m.InboxRow.attempts < MAX_ATTEMPTS))
                .scalar(as_tuple=True)
            )
        if not count or oldest is None:
            return 0, 0.0
        if isinstance(oldest, str):  # SQLite answers an aggregate of datetimes as text
            oldest = datetime.fromisoformat(oldest)
        return int(count), max(0.0, (now - oldest).total_seconds())
