"""The database behind a ``DATABASE_URL``: parsing, construction, sessions, transactions.

Two backends, chosen by the URL scheme and read the way ``playhouse.db_url`` reads it:

* ``sqlite:///rel.db`` (relative to the working directory at open time),
  ``sqlite:////abs/path.db`` (absolute), ``sqlite:///:memory:`` (a private, throw-away
  database; see :func:`storage.open_store`).  Several processes may share one file, so
  every connection runs in WAL mode with a busy timeout.
* ``postgresql://user@host:5432/db`` (``postgres://`` too).  A process may hold at most
  :data:`MAX_PG_CONNECTIONS` connections in total: :data:`QUERY_POOL_SIZE` pooled query
  connections here plus :data:`LOCK_POOL_SIZE` lock connections in :mod:`storage.locks`.

Query-string arguments (``?sslmode=require``) are passed on to the driver.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import peewee
import psycopg2
from peewee import Database, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase

from storage.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

Backend = Literal["sqlite", "postgres"]

_SCHEMES: dict[str, Backend] = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
}

MEMORY = ":memory:"

#: Seconds a SQLite connection waits for another writer (several processes share a file).
SQLITE_BUSY_TIMEOUT = 15.0
#: Pooled PostgreSQL query connections per process.
QUERY_POOL_SIZE = 12
#: Dedicated PostgreSQL lock connections per process (see storage.locks).
LOCK_POOL_SIZE = 8
#: The per-process budget: servers often allow only ~100 connections in all.
MAX_PG_CONNECTIONS = 20
#: Seconds a thread waits for a free pooled query connection before failing.
POOL_WAIT_SECONDS = 30
#: Pooled connections older than this are recycled (server restarts, proxies).
POOL_STALE_SECONDS = 300
#: Seconds psycopg2 waits for the server when opening a connection.
PG_CONNECT_TIMEOUT = 10

assert QUERY_POOL_SIZE + LOCK_POOL_SIZE <= MAX_PG_CONNECTIONS

# Transaction-level advisory locks use PostgreSQL's two-int4 key space, which never
# collides with the single-bigint keys store.lock() uses.
ADVISORY_CLASS = 0x46425231  # "FBR1"
ADVISORY_NUMBERING = 1
ADVISORY_MIGRATIONS = 2


@dataclass(frozen=True)
class DatabaseConfig:
    """What a URL says: the backend, the database (a path or a name) and driver kwargs."""

    backend: Backend
    database: str
    connect_params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_memory(self) -> bool:
        return self.backend == "sqlite" and self.database == MEMORY


def parse_url(url: str) -> DatabaseConfig:
    """Read a ``DATABASE_URL``; raise ``ValueError`` for anything we cannot open.

    Relative SQLite paths are made absolute here, against the current working
    directory, so a later ``chdir`` cannot move the database or its lock files.
    """
    scheme = urlparse(url).scheme
    backend = _SCHEMES.get(scheme)
    if backend is None:
        known = ", ".join(f"{name}://" for name in _SCHEMES)
        raise ValueError(
            f"unsupported DATABASE_URL scheme {scheme!r} in {redact_url(url)!r}; use {known}"
        )
    params = parse_db_url(url)
    database = str(params.pop("database") or "")
    if backend == "sqlite":
        if database != MEMORY:
            database = os.path.abspath(database)
        return DatabaseConfig("sqlite", database, params)
    if not database:
        raise ValueError(
            f"DATABASE_URL {redact_url(url)!r} names no database (postgresql://host/dbname)"
        )
    return DatabaseConfig("postgres", database, params)


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, for messages and logs."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def build_database(config: DatabaseConfig) -> Database:
    """Make the (unconnected) peewee database for a config; connections open lazily."""
    if config.backend == "sqlite":
        return _sqlite(config)
    return _postgres(config)


def _sqlite(config: DatabaseConfig) -> SqliteDatabase:
    """Connections for one file shared by several processes and threads.

    WAL mode lets readers run beside the one writer, and it is a property of the file,
    set once by :func:`enable_wal`; ``synchronous=normal`` is the usual durable pairing
    with WAL.  Connections are used from Bolt's worker threads, one per thread.
    """
    params = {"check_same_thread": False, **config.connect_params}
    return SqliteDatabase(
        config.database,
        timeout=SQLITE_BUSY_TIMEOUT,
        pragmas=[
            ("busy_timeout", int(SQLITE_BUSY_TIMEOUT * 1000)),
            ("synchronous", "normal"),
            ("foreign_keys", 1),
            # A deleted message (a secret pasted by mistake) must not linger in free pages.
            ("secure_delete", 1),
        ],
        **params,
    )


def enable_wal(path: str) -> None:
    """Create the SQLite file if needed and switch it to WAL mode (a no-op once done).

    The switch needs an exclusive lock that SQLite does not wait for (the busy timeout
    does not apply), so when several processes open a new file at once, all but one fail
    with "database is locked".  Call it under a cross-process lock, once per process.
    """
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode = wal").fetchone()
    finally:
        conn.close()
    if mode != "wal":
        raise RuntimeError(f"could not put SQLite database {path} in WAL mode (got {mode!r})")


def pg_connect_params(config: DatabaseConfig, application_name: str) -> dict[str, Any]:
    """psycopg2 keyword arguments for one of our PostgreSQL connections."""
    params = dict(config.connect_params)
    params.setdefault("connect_timeout", PG_CONNECT_TIMEOUT)
    params.setdefault("application_name", application_name)
    return params


def _postgres(config: DatabaseConfig) -> PooledPostgresqlDatabase:
    return PooledPostgresqlDatabase(
        config.database,
        max_connections=QUERY_POOL_SIZE,
        timeout=POOL_WAIT_SECONDS,
        stale_timeout=POOL_STALE_SECONDS,
        **pg_connect_params(config, "firebreak"),
    )


class _Depth(threading.local):
    depth = 0
    opened = False


class SessionScope:
    """A reentrant, per-thread connection scope.

    peewee's ``connection_context`` closes the connection when an *inner* context
    exits, so nesting it (a Store method called inside a caller's session) would pull
    the connection from under the outer scope.  This counts depth per thread instead:
    the first entry opens a connection, the last exit returns it to the pool
    (PostgreSQL).  A connection the thread had already opened itself is left alone.

    With ``keep_open`` (SQLite) the thread keeps its connection after the last exit:
    opening a SQLite connection is cheap but closing the last one checkpoints the WAL,
    which made every short write cost about 10 ms instead of well under one.
    """

    def __init__(self, db: Database, *, keep_open: bool = False) -> None:
        self._db = db
        self._keep_open = keep_open
        self._local = _Depth()

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        local = self._local
        with translated_errors():
            if local.depth == 0:
                local.opened = self._db.connect(reuse_if_open=True)
            local.depth += 1
            try:
                yield self._db.connection()
            finally:
                local.depth -= 1
                if local.depth == 0 and local.opened and not self._keep_open:
                    local.opened = False
                    self._db.close()


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn peewee's and the drivers' exceptions into the store's own (`storage.errors`).

    Every Store method runs inside a session, so this one place keeps peewee's types
    from leaking upward. A connection that failed or was refused is "unavailable"; any
    other database error is a plain `StoreError`.
    """
    try:
        yield
    except (
        peewee.OperationalError,
        peewee.InterfaceError,
        psycopg2.OperationalError,
        psycopg2.InterfaceError,
        sqlite3.OperationalError,
    ) as error:
        raise StoreUnavailable(_one_line(error)) from error
    except (peewee.PeeweeException, psycopg2.Error, sqlite3.Error) as error:
        raise StoreError(_one_line(error)) from error


def _one_line(error: BaseException) -> str:
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


@contextmanager
def transaction(db: Database) -> Iterator[Any]:
    """A transaction that may write.

    On SQLite it is ``BEGIN IMMEDIATE``: it takes the write lock up front (waiting up to
    the busy timeout), because a deferred transaction that reads and then writes cannot
    wait for another writer and fails at once with "database is locked". Writers of one
    process first queue on a lock of their own: SQLite's busy handler waits by sleeping
    (1, 2, 5, … 100 ms), so fifty threads declaring at once would otherwise wait tens of
    milliseconds each for a lock that is free again after a fraction of one.
    """
    if isinstance(db, SqliteDatabase):
        with _sqlite_writers(db), db.atomic("IMMEDIATE") as txn:
            yield txn
    else:
        with db.atomic() as txn:
            yield txn


_WRITER_LOCKS: dict[str, threading.RLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _sqlite_writers(db: SqliteDatabase) -> threading.RLock:
    """The in-process writer lock of one SQLite file (re-entrant: atomic() nests)."""
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(str(db.database), threading.RLock())


@contextmanager
def serialized_transaction(db: Database, objid: int) -> Iterator[None]:
    """A write transaction that also excludes every other one using ``objid``.

    PostgreSQL: a transaction-level advisory lock, released at commit or rollback.
    SQLite: ``BEGIN IMMEDIATE`` already serializes all writers.
    """
    with transaction(db):
        if isinstance(db, PostgresqlDatabase):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, objid))
        yield
