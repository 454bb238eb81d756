"""``store.lock(name, timeout)``: one holder per name across threads *and* processes.

Two layers (see "Locks and the connection budget" in docs/ARCHITECTURE.md):

1. An in-process ``threading.Lock`` per name, so only one thread per process competes
   for the cross-process lock.  POSIX record locks belong to the process, not the
   thread, and a PostgreSQL session lock is reentrant per connection; neither excludes
   a second thread of the same process on its own.
2. A cross-process lock that the operating system or the server drops when the holder
   dies, so a crashed process never leaves a lock behind:

   * PostgreSQL: a session-level advisory lock on a dedicated autocommit connection,
     held outside any transaction, so no open transaction or row lock waits on Slack or
     Notion while the lock is held.  At most :data:`storage.db.LOCK_POOL_SIZE` such
     connections per process; waiting for one counts against the timeout.
   * SQLite: ``fcntl.lockf`` on one lock file per name in ``<database>.locks/``.  One
     file per name because closing *any* descriptor of a file drops all of the
     process's locks on it.  Lock files are never deleted: deleting a file another
     process is waiting on would let two processes "hold" the same name.

Locks are not reentrant: taking a name the same thread already holds waits for the
timeout and raises :class:`LockTimeout`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import psycopg2
import psycopg2.errors

log = logging.getLogger(__name__)

#: Longest pause between two attempts at a contended SQLite lock file.
FILE_LOCK_MAX_BACKOFF = 0.02

Release = Callable[[], None]


class LockTimeout(Exception):
    """Raised when ``timeout`` seconds pass without acquiring the lock ``name``."""

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(name, timeout)
        self.name = name
        self.timeout = timeout

    def __str__(self) -> str:
        return f"could not acquire lock {self.name!r} within {self.timeout:g} s"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (PostgreSQL's ``bigint`` key space)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Deadline:
    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + timeout

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


class ProcessLocks(Protocol):
    """The cross-process half of a lock."""

    #: Identifies the shared resource, so two stores on one database share thread locks.
    scope: str

    def acquire(self, name: str, deadline: _Deadline) -> Release | None:
        """Take ``name`` before the deadline; return how to release it, or None."""

    def close(self) -> None:
        """Drop idle resources; locks still held are released by their holders."""


class _ThreadLocks:
    """Process-wide registry of per-name thread locks, dropped when nobody uses them."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def reference(self, key: tuple[str, str]) -> Iterator[threading.Lock]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            yield lock
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


THREAD_LOCKS = _ThreadLocks()


class LockManager:
    """Combines the thread layer and a cross-process backend into ``lock()``."""

    def __init__(self, backend: ProcessLocks) -> None:
        self.backend = backend

    @contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        deadline = _Deadline(timeout)
        with THREAD_LOCKS.reference((self.backend.scope, name)) as thread_lock:
            if not thread_lock.acquire(timeout=deadline.remaining()):
                raise LockTimeout(name, timeout)
            try:
                release = self.backend.acquire(name, deadline)
                if release is None:
                    raise LockTimeout(name, timeout)
                try:
                    yield
                finally:
                    release()
            finally:
                thread_lock.release()

    def close(self) -> None:
        self.backend.close()


class FileLocks:
    """SQLite's cross-process layer: ``fcntl.lockf`` on one file per lock name."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.scope = f"file:{os.path.realpath(directory)}"

    def path(self, name: str) -> str:
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).hexdigest()
        return os.path.join(self.directory, f"{digest}.lock")

    def acquire(self, name: str, deadline: _Deadline) -> Release | None:
        fd = os.open(self.path(name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            acquired = self._wait(fd, deadline)
        except BaseException:
            os.close(fd)
            raise
        if not acquired:
            os.close(fd)
            return None
        return lambda: self._release(fd)

    @staticmethod
    def _wait(fd: int, deadline: _Deadline) -> bool:
        """Poll with a short backoff: ``lockf`` has no blocking wait with a timeout."""
        backoff = 0.001
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            remaining = deadline.remaining()
            if remaining <= 0:
                return False
            time.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, FILE_LOCK_MAX_BACKOFF)

    @staticmethod
    def _release(fd: int) -> None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing to close: descriptors live only while their lock is held."""


#: How long a try-lock waits for one of the lock connections when all are in use.
TRY_LOCK_SLOT_SECONDS = 5.0


class AdvisoryLocks:
    """PostgreSQL's cross-process layer: session advisory locks on a bounded pool.

    The wait happens on the server (``pg_advisory_lock`` under ``lock_timeout``), so a
    waiter wakes as soon as the holder unlocks or its backend exits, without polling.
    """

    def __init__(self, connect_params: dict[str, Any], max_connections: int) -> None:
        self._connect_params = connect_params
        self._slots = threading.BoundedSemaphore(max_connections)
        self._idle: list[Any] = []
        self._idle_guard = threading.Lock()
        self._closed = False
        where = [str(connect_params.get(key, "")) for key in ("host", "port", "dbname")]
        self.scope = "pg:" + ":".join(where)

    def acquire(self, name: str, deadline: _Deadline) -> Release | None:
        # A try-lock (timeout 0) asks "does someone hold it?": a pool busy with other
        # locks is no answer, so it may wait a moment for a connection (a dump told
        # "a dump is running" while nobody held its lock would wait for the reconciler).
        wait = deadline.remaining() if deadline.remaining() > 0 else TRY_LOCK_SLOT_SECONDS
        if not self._slots.acquire(timeout=wait):
            return None
        key = lock_key(name)
        try:
            conn = self._lock_on_some_connection(key, deadline)
        except BaseException:
            self._slots.release()
            raise
        if conn is None:
            self._slots.release()
            return None
        return lambda: self._release(conn, key)

    def _lock_on_some_connection(self, key: int, deadline: _Deadline) -> Any | None:
        """Lock on an idle connection; if that one turns out dead, once more on a new one."""
        conn, reused = self._checkout()
        try:
            return self._lock_on(conn, key, deadline)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            if not reused:
                raise
            log.info("idle lock connection was broken, retrying on a new one", exc_info=True)
        return self._lock_on(self._new_connection(), key, deadline)

    def _lock_on(self, conn: Any, key: int, deadline: _Deadline) -> Any | None:
        """Return ``conn`` holding the lock, or None (conn back in the pool) on timeout."""
        try:
            locked = self._lock(conn, key, deadline)
        except BaseException:
            self._discard(conn)
            raise
        if locked:
            return conn
        self._checkin(conn)
        return None

    @staticmethod
    def _lock(conn: Any, key: int, deadline: _Deadline) -> bool:
        with conn.cursor() as cur:
            millis = math.ceil(deadline.remaining() * 1000)
            if millis <= 0:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                return bool(cur.fetchone()[0])
            # lock_timeout = 0 would mean "wait forever", hence the branch above.
            cur.execute("SELECT set_config('lock_timeout', %s, false)", (f"{millis}ms",))
            try:
                cur.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg2.errors.LockNotAvailable:
                return False
            return True

    def _release(self, conn: Any, key: int) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
                unlocked = bool(cur.fetchone()[0])
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            # The session is gone, and the server dropped its locks with it.
            log.warning("lock connection broke while held; discarding it", exc_info=True)
            self._discard(conn)
        else:
            if unlocked:
                self._checkin(conn)
            else:
                log.warning("advisory lock %s was not held at release; discarding connection", key)
                self._discard(conn)
        finally:
            self._slots.release()

    def _checkout(self) -> tuple[Any, bool]:
        with self._idle_guard:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, True
        return self._new_connection(), False

    def _checkin(self, conn: Any) -> None:
        with self._idle_guard:
            if not self._closed and not conn.closed:
                self._idle.append(conn)
                return
        self._discard(conn)

    def _new_connection(self) -> Any:
        conn = psycopg2.connect(**self._connect_params)
        conn.autocommit = True
        return conn

    @staticmethod
    def _discard(conn: Any) -> None:
        try:
            conn.close()
        except psycopg2.Error:
            log.debug("closing a broken lock connection failed", exc_info=True)

    def close(self) -> None:
        with self._idle_guard:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)
