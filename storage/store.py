"""The `Store`: every query Firebreak runs, each in its own short session.

``open_store(DATABASE_URL)`` returns a :class:`Store`.  Every Store method is
self-contained: it opens a per-thread session (a pooled connection on PostgreSQL,
returned when the method ends) and a short transaction where it writes, so callers on
Bolt's worker threads never hold a connection between calls.  The time is always
passed in (``now``/``at``), from the caller's injectable clock, as naive UTC; an aware
datetime is converted to UTC.  Failures leave as the exceptions of `storage.errors`.

The store checks which columns a call may change, not which words a status or a
severity may be: those are the domain's (`bolt_app.core.domain`), and storage never
imports the bot.

The models are bound to one process-wide proxy, so a process uses one open store at a
time; opening another rebinds the models to it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar, cast

from peewee import Database, IntegrityError, Model, fn

from storage import migrations
from storage import models as m
from storage.db import (
    ADVISORY_NUMBERING,
    LOCK_POOL_SIZE,
    SQLITE_BUSY_TIMEOUT,
    Backend,
    DatabaseConfig,
    SessionScope,
    build_database,
    enable_wal,
    parse_url,
    pg_connect_params,
    serialized_transaction,
    transaction,
    translated_errors,
)
from storage.errors import NotFound, StoreError
from storage.inbox import Inbox
from storage.locks import AdvisoryLocks, FileLocks, LockManager, LockTimeout, ProcessLocks
from storage.models import database_proxy
from storage.records import (
    Artifact,
    ArtifactAttempt,
    Incident,
    IncidentEvent,
    Record,
    SlackMessage,
    TranscriptWrite,
)
from storage.records import naive_utc as _utc

R = TypeVar("R", bound=Record)

log = logging.getLogger(__name__)

#: Incident columns update_incident() may change.
UPDATABLE_FIELDS = frozenset({"status", "severity", "commander", "title"})
#: Message columns capture_message() sets from an event.
MESSAGE_FIELDS = frozenset({"thread_ts", "user", "bot_id", "subtype", "text", "extra"})
#: Messages per multi-row INSERT: 13 columns each stays under SQLite's oldest limit of
#: 999 bound variables a statement.
CAPTURE_CHUNK = 70
#: Serializes first-time setup of a SQLite file between processes.
SQLITE_SETUP_LOCK = "firebreak:sqlite-setup"
#: Rows per INSERT when saving transcript entries (well under SQLite's variable limit).
TRANSCRIPT_BATCH = 200


def _maybe(record: type[R], row: Model | None) -> R | None:
    return None if row is None else record.of(row)


class Store:
    """The database, its sessions, locks and every query the bot runs."""

    def __init__(
        self,
        config: DatabaseConfig,
        db: Database,
        locks: LockManager,
        temp_dir: str | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.backend: Backend = config.backend
        self._locks = locks
        self._temp_dir = temp_dir
        self._session = SessionScope(db, keep_open=self.backend == "sqlite")
        #: Told (lock name, seconds waited) each time a lock is taken; for metrics.
        self.lock_waited: Callable[[str, float], None] | None = None
        #: Told the lock's name when a wait for it ran out (try-locks aside); for metrics.
        self.lock_timed_out: Callable[[str], None] | None = None
        #: Commands stored before their ack (`storage.inbox`).
        self.inbox = Inbox(self.session, self.atomic)

    # -- connection scope, transactions, locks -------------------------------------------

    def session(self) -> AbstractContextManager[Any]:
        """A reentrant per-thread connection scope; yields the DB-API connection."""
        return self._session()

    @contextmanager
    def atomic(self) -> Iterator[Any]:
        """A write transaction (a savepoint when nested), inside a session."""
        with self.session(), transaction(self.db) as txn:
            yield txn

    @contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        """Hold ``name`` exclusively across threads and processes; see storage.locks.

        Raises :class:`LockTimeout` after ``timeout`` seconds, and
        :class:`StoreUnavailable` when the lock connection fails.  Not reentrant.  Take it
        outside any session or transaction: no connection or row lock should wait on a
        holder that is busy with Slack or Notion, and a thread holding a pooled
        connection while it waits for a lock can starve the pool.
        """
        started = time.monotonic()
        try:
            with translated_errors(), self._locks.lock(name, timeout):
                if self.lock_waited is not None:
                    self.lock_waited(name, time.monotonic() - started)
                yield
        except LockTimeout:
            if self.lock_timed_out is not None and timeout > 0:  # a try-lock is not a wait
                self.lock_timed_out(name)
            raise

    def migrate(self) -> list[int]:
        """Apply missing schema migrations; safe when several processes start at once."""
        with self.session():
            return migrations.apply(self.db)

    def ping(self) -> None:
        """Run ``SELECT 1``; raises :class:`StoreUnavailable` when the database doesn't answer."""
        with self.session():
            self.db.execute_sql("SELECT 1")

    def schema_version(self) -> int:
        """The newest migration applied to this database (0 for none)."""
        with self.session():
            return migrations.current_version(self.db)

    def close(self) -> None:
        """Close pooled connections and lock connections (and a :memory: store's files).

        On SQLite the write-ahead log is checkpointed and truncated first: it still holds
        old page images, a deleted message's text among them, which must not outlive a
        clean stop. A checkpoint that fails (another process reading) only leaves the
        log for SQLite's own next checkpoint.
        """
        if self.backend == "sqlite":
            try:
                with self.session():
                    self.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except StoreError as error:
                log.warning("could not checkpoint the SQLite log at close: %s", error)
        self.inbox.close()
        self._locks.close()
        close_all = getattr(self.db, "close_all", None)
        if close_all is not None:
            close_all()
        elif not self.db.is_closed():
            self.db.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- incidents -----------------------------------------------------------------------

    def create_incident(
        self,
        *,
        title: str,
        severity: str,
        reporter: str,
        commander: str,
        private: bool,
        request_key: str | None,
        number_start: int,
        now: datetime,
        repeat_since: datetime | None = None,
    ) -> tuple[Incident, bool]:
        """Record a new incident with the next gapless number; (incident, created).

        The number is allocated inside the insert's own transaction, which is
        serialized against every other allocation, so a failed insert leaves no gap
        and concurrent declares never collide.  The next number is ``max + 1``, or
        ``number_start`` when that is higher (no incidents yet, or the start raised).
        A second call with the same ``request_key`` returns the first incident. With
        ``repeat_since``, so does a declare by the same reporter of the same title (case
        aside) since then: the user typed it again after Slack showed an error. Both are
        checked under the numbering lock, so two at once never make two incidents.
        """
        now = _utc(now)
        with self.session():
            try:
                with serialized_transaction(self.db, ADVISORY_NUMBERING):
                    existing = self._by_request_key(request_key)
                    if existing is None and repeat_since is not None:
                        existing = self._repeated(reporter, title, _utc(repeat_since))
                    if existing is not None:
                        return existing, False
                    row = m.Incident.create(
                        number=self._next_number(number_start),
                        title=title,
                        severity=severity,
                        reporter=reporter,
                        commander=commander,
                        private=private,
                        request_key=request_key,
                        declared_at=now,
                        updated_at=now,
                    )
                    return Incident.of(row), True
            except IntegrityError:
                # Only reachable if a writer bypassed the serialization above.
                existing = self._by_request_key(request_key)
                if existing is None:
                    raise
                return existing, False

    @staticmethod
    def _repeated(reporter: str, title: str, since: datetime) -> Incident | None:
        query = (
            m.Incident.select()
            .where((m.Incident.reporter == reporter) & (m.Incident.declared_at >= since))
            .order_by(m.Incident.number.desc())
        )
        wanted = title.casefold()
        return next((Incident.of(row) for row in query if row.title.casefold() == wanted), None)

    @staticmethod
    def _by_request_key(request_key: str | None) -> Incident | None:
        if request_key is None:
            return None
        return _maybe(Incident, m.Incident.get_or_none(m.Incident.request_key == request_key))

    def next_number(self, number_start: int) -> int:
        """The number the next declare would get (start-up compares it with Notion's labels)."""
        with self.session():
            return self._next_number(number_start)

    @staticmethod
    def _next_number(number_start: int) -> int:
        highest: int | None = m.Incident.select(fn.MAX(m.Incident.number)).scalar()
        return number_start if highest is None else max(highest + 1, number_start)

    def get_incident(self, incident_id: int) -> Incident | None:
        with self.session():
            return _maybe(Incident, m.Incident.get_or_none(m.Incident.id == incident_id))

    def incident_by_channel(self, channel_id: str) -> Incident | None:
        with self.session():
            return _maybe(Incident, m.Incident.get_or_none(m.Incident.channel_id == channel_id))

    def incident_by_number(self, number: int) -> Incident | None:
        with self.session():
            return _maybe(Incident, m.Incident.get_or_none(m.Incident.number == number))

    def set_channel(
        self, incident_id: int, channel_id: str, channel_name: str, now: datetime
    ) -> None:
        """Record the incident's Slack channel (unique: one incident per channel)."""
        with self.atomic():
            self._update(
                incident_id, channel_id=channel_id, channel_name=channel_name, updated_at=_utc(now)
            )

    def update_incident(self, incident_id: int, now: datetime, **fields: Any) -> Incident:
        """Change status, severity, commander or title; return the updated incident.

        Only checks which columns change; which values and transitions are allowed is
        the domain's business.  Raises :class:`NotFound` for an unknown id.
        """
        _check_updatable("update_incident", fields)
        with self.atomic():
            self._update(incident_id, **fields, updated_at=_utc(now))
            return Incident.of(m.Incident.get_by_id(incident_id))

    def change_incident(
        self,
        incident_id: int,
        now: datetime,
        *,
        event: str,
        actor: str | None,
        data: dict[str, Any],
        request_key: str | None,
        **fields: Any,
    ) -> tuple[Incident, IncidentEvent]:
        """`update_incident` and its timeline event in one transaction.

        With `request_key` (the command's inbox key) the event names the command that
        made it: a command run again after a crash finds its change with
        `event_for_request` instead of making it twice, and the column's unique index
        refuses a second event for the same command (a `StoreError`).
        """
        _check_updatable("change_incident", fields)
        now = _utc(now)
        with self.atomic():
            self._update(incident_id, **fields, updated_at=now)
            row = m.IncidentEvent.create(
                incident=incident_id,
                kind=event,
                actor=actor,
                data=data,
                at=now,
                request_key=request_key,
            )
            return Incident.of(m.Incident.get_by_id(incident_id)), IncidentEvent.of(row)

    def event_for_request(self, request_key: str) -> IncidentEvent | None:
        """The timeline event a command made, if it got that far."""
        with self.session():
            row = m.IncidentEvent.get_or_none(m.IncidentEvent.request_key == request_key)
            return _maybe(IncidentEvent, row)

    def update_event_data(self, event_id: int, **data: Any) -> None:
        """Add keys to an event's data (a follow-up step recording that it happened)."""
        with self.atomic():
            row = m.IncidentEvent.get_by_id(event_id)
            row.data = {**row.data, **data}
            row.save()

    @staticmethod
    def _update(incident_id: int, **values: Any) -> None:
        changed = m.Incident.update(**values).where(m.Incident.id == incident_id).execute()
        if not changed:
            raise NotFound(f"incident {incident_id} does not exist")

    def open_incidents(self, closed_statuses: Sequence[str]) -> list[Incident]:
        """Incidents whose status is not one of ``closed_statuses``, newest first."""
        with self.session():
            query = (
                m.Incident.select()
                .where(m.Incident.status.not_in(list(closed_statuses)))
                .order_by(m.Incident.number.desc())
            )
            return [Incident.of(row) for row in query]

    # -- artifacts -----------------------------------------------------------------------

    def get_artifact(self, incident_id: int, kind: str) -> Artifact | None:
        with self.session():
            row = m.Artifact.get_or_none(
                (m.Artifact.incident == incident_id) & (m.Artifact.kind == kind)
            )
            return _maybe(Artifact, row)

    def save_artifact(
        self,
        incident_id: int,
        kind: str,
        external_id: str,
        url: str | None,
        now: datetime,
        data: dict[str, Any] | None = None,
    ) -> Artifact:
        """Insert or replace the (incident, kind) artifact; ``created_at`` is kept.

        Replacing matters for repair: a re-added bookmark gets a new id.
        """
        now = _utc(now)
        upsert = m.Artifact.insert(
            incident=incident_id,
            kind=kind,
            external_id=external_id,
            url=url,
            data=data,
            created_at=now,
            updated_at=now,
        ).on_conflict(
            conflict_target=[m.Artifact.incident, m.Artifact.kind],
            preserve=[
                m.Artifact.external_id,
                m.Artifact.url,
                m.Artifact.data,
                m.Artifact.updated_at,
            ],
        )
        with self.atomic():
            upsert.execute()
            row = m.Artifact.get((m.Artifact.incident == incident_id) & (m.Artifact.kind == kind))
            return Artifact.of(row)

    def delete_artifact(self, incident_id: int, kind: str) -> None:
        with self.atomic():
            m.Artifact.delete().where(
                (m.Artifact.incident == incident_id) & (m.Artifact.kind == kind)
            ).execute()

    def record_attempt(
        self, incident_id: int, kind: str, now: datetime, owner: str, token: str | None = None
    ) -> ArtifactAttempt:
        """Note that ``owner`` (e.g. "host:pid") is about to create an artifact, which it
        marks with ``token``."""
        with self.atomic():
            row = m.ArtifactAttempt.create(
                incident=incident_id, kind=kind, started_at=_utc(now), owner=owner, token=token
            )
            return ArtifactAttempt.of(row)

    def attempts(self, incident_id: int, kind: str) -> list[ArtifactAttempt]:
        """Earlier attempts, oldest first."""
        with self.session():
            query = (
                m.ArtifactAttempt.select()
                .where(
                    (m.ArtifactAttempt.incident == incident_id) & (m.ArtifactAttempt.kind == kind)
                )
                .order_by(m.ArtifactAttempt.started_at, m.ArtifactAttempt.id)
            )
            return [ArtifactAttempt.of(row) for row in query]

    # -- timeline ------------------------------------------------------------------------

    def add_event(
        self, incident_id: int, kind: str, actor: str | None, data: dict[str, Any], at: datetime
    ) -> IncidentEvent:
        with self.atomic():
            row = m.IncidentEvent.create(
                incident=incident_id, kind=kind, actor=actor, data=data, at=_utc(at)
            )
            return IncidentEvent.of(row)

    def add_event_once(
        self,
        incident_id: int,
        kind: str,
        actor: str | None,
        data: dict[str, Any],
        at: datetime,
        *,
        key: str,
    ) -> IncidentEvent | None:
        """`add_event`, unless an event with this `key` exists (then None): a pin of the
        same message, or the same pin redelivered, is one timeline line."""
        with self.atomic():
            inserted = (
                m.IncidentEvent.insert(
                    incident=incident_id,
                    kind=kind,
                    actor=actor,
                    data=data,
                    at=_utc(at),
                    request_key=key,
                )
                .on_conflict_ignore()
                .as_rowcount()
                .execute()
            )
            if not inserted:
                return None
            return IncidentEvent.of(m.IncidentEvent.get(m.IncidentEvent.request_key == key))

    def events(self, incident_id: int) -> list[IncidentEvent]:
        """The timeline in order (ties broken by insertion order)."""
        with self.session():
            query = (
                m.IncidentEvent.select()
                .where(m.IncidentEvent.incident == incident_id)
                .order_by(m.IncidentEvent.at, m.IncidentEvent.id)
            )
            return [IncidentEvent.of(row) for row in query]

    # -- transcript ----------------------------------------------------------------------

    def transcript_ts(self, incident_id: int) -> dict[str, str]:
        """message_ts -> notion_block_id for everything already written."""
        with self.session():
            query = m.TranscriptEntry.select(
                m.TranscriptEntry.message_ts, m.TranscriptEntry.notion_block_id
            ).where(m.TranscriptEntry.incident == incident_id)
            return {entry.message_ts: entry.notion_block_id for entry in query}

    def save_transcript_entries(
        self,
        incident_id: int,
        entries: Sequence[tuple[str, str, str | None]],
        now: datetime,
    ) -> None:
        """Record (message_ts, notion_block_id, thread_ts) rows in one transaction.

        Entries already recorded are ignored, so a resumed dump may save a batch twice;
        any other error (a missing block id) rolls the whole call back.
        """
        now = _utc(now)
        rows = [
            {
                "incident": incident_id,
                "message_ts": message_ts,
                "notion_block_id": block_id,
                "thread_ts": thread_ts,
                "created_at": now,
            }
            for message_ts, block_id, thread_ts in entries
        ]
        with self.atomic():
            for start in range(0, len(rows), TRANSCRIPT_BATCH):
                batch = rows[start : start + TRANSCRIPT_BATCH]
                m.TranscriptEntry.insert_many(batch).on_conflict(
                    action="NOTHING",
                    conflict_target=[m.TranscriptEntry.incident, m.TranscriptEntry.message_ts],
                ).execute()

    def move_transcript_entries(self, incident_id: int, keys: Sequence[str], block_id: str) -> None:
        """Point the entries of ``keys`` at another block (a packed group was split)."""
        with self.atomic():
            m.TranscriptEntry.update(notion_block_id=block_id).where(
                (m.TranscriptEntry.incident == incident_id)
                & (m.TranscriptEntry.message_ts.in_(list(keys)))
            ).execute()

    def transcript_rows(self, incident_id: int) -> list[tuple[str, str, str | None]]:
        """(message_ts, notion_block_id, thread_ts) of everything already written."""
        with self.session():
            query = m.TranscriptEntry.select(
                m.TranscriptEntry.message_ts,
                m.TranscriptEntry.notion_block_id,
                m.TranscriptEntry.thread_ts,
            ).where(m.TranscriptEntry.incident == incident_id)
            return [(e.message_ts, e.notion_block_id, e.thread_ts) for e in query]

    def clear_transcript(self, incident_id: int, keep_prefix: str | None = None) -> None:
        """Forget what was written, e.g. after a user deleted the transcript heading.

        Entries whose key starts with ``keep_prefix`` (the timeline's ``event:``) stay.
        """
        query = m.TranscriptEntry.delete().where(m.TranscriptEntry.incident == incident_id)
        if keep_prefix:
            query = query.where(~m.TranscriptEntry.message_ts.startswith(keep_prefix))
        with self.atomic():
            query.execute()

    # -- transcript writes in flight -----------------------------------------------------

    def begin_transcript_write(self, incident_id: int, parent_id: str, now: datetime) -> None:
        """Note, before a Notion append under ``parent_id``, that it may land unanswered."""
        upsert = m.TranscriptWrite.insert(
            incident=incident_id, parent_id=parent_id, started_at=_utc(now), finished_at=None
        ).on_conflict(
            conflict_target=[m.TranscriptWrite.incident],
            preserve=[
                m.TranscriptWrite.parent_id,
                m.TranscriptWrite.started_at,
                m.TranscriptWrite.finished_at,
            ],
        )
        with self.atomic():
            upsert.execute()

    def end_transcript_write(self, incident_id: int, now: datetime) -> None:
        """The append was answered and its entries recorded."""
        with self.atomic():
            m.TranscriptWrite.update(finished_at=_utc(now)).where(
                m.TranscriptWrite.incident == incident_id
            ).execute()

    def unfinished_transcript_write(self, incident_id: int) -> TranscriptWrite | None:
        with self.session():
            row = m.TranscriptWrite.get_or_none(
                (m.TranscriptWrite.incident == incident_id)
                & m.TranscriptWrite.finished_at.is_null()
            )
            return _maybe(TranscriptWrite, row)

    # -- dump requests -------------------------------------------------------------------

    def request_dump(self, incident_id: int, requested_by: str | None, now: datetime) -> int:
        """Record a dump request (before the trigger is acked); returns its id."""
        with self.atomic():
            request: m.DumpRequest = m.DumpRequest.create(
                incident=incident_id, requested_by=requested_by, requested_at=_utc(now)
            )
            return int(request.id)

    def latest_pending_dump(self, incident_id: int) -> int | None:
        """The newest pending request's id, or None when every request is done."""
        with self.session():
            latest: int | None = (
                m.DumpRequest.select(fn.MAX(m.DumpRequest.id))
                .where((m.DumpRequest.incident == incident_id) & m.DumpRequest.done_at.is_null())
                .scalar()
            )
            return latest

    def finish_dump_requests(self, incident_id: int, up_to: int, now: datetime) -> None:
        """Mark requests up to id ``up_to`` done: a dump that started after them finished."""
        with self.atomic():
            m.DumpRequest.update(done_at=_utc(now)).where(
                (m.DumpRequest.incident == incident_id)
                & (m.DumpRequest.id <= up_to)
                & m.DumpRequest.done_at.is_null()
            ).execute()

    def pending_requests(self, now: datetime) -> tuple[int, float]:
        """Unfinished dump requests, and the age in seconds of the oldest (0 when none)."""
        with self.session():
            query = m.DumpRequest.select(
                fn.COUNT(m.DumpRequest.id), fn.MIN(m.DumpRequest.requested_at)
            ).where(m.DumpRequest.done_at.is_null())
            count, oldest = query.scalar(as_tuple=True)
        if not count or oldest is None:
            return 0, 0.0
        if isinstance(oldest, str):  # SQLite answers an aggregate of datetimes as text
            oldest = datetime.fromisoformat(oldest)
        return int(count), max(0.0, (_utc(now) - _utc(oldest)).total_seconds())

    def incidents_with_pending_dumps(self) -> list[int]:
        with self.session():
            query = (
                m.DumpRequest.select(m.DumpRequest.incident)
                .where(m.DumpRequest.done_at.is_null())
                .distinct()
            )
            return sorted(int(row.incident_id) for row in query)

    # -- captured messages -------------------------------------------------------------

    def capture_message(
        self,
        *,
        event_id: str | None,
        incident_id: int,
        channel_id: str,
        ts: str,
        fields: dict[str, Any],
        event_ts: str,
        now: datetime,
    ) -> bool:
        """Apply a new or changed message; False when the event was applied before.

        ``fields`` are the message's ``thread_ts``, ``user``, ``bot_id``, ``subtype``,
        ``text`` and ``extra``. Events may come twice or out of order: a change older
        than the one stored is ignored, and a deleted message stays deleted.
        """
        _check_fields(fields)
        now = _utc(now)
        with self.atomic():
            if not self._claim_event(event_id, now):
                return False
            row = {"incident": incident_id, "channel_id": channel_id, "ts": ts}
            if self._insert_message({**row, **fields}, event_ts, now):
                return True
            current = self._message(channel_id, ts)
            if not current.deleted and Decimal(event_ts) >= Decimal(current.event_ts):
                m.SlackMessage.update(event_ts=event_ts, updated_at=now, **fields).where(
                    m.SlackMessage.id == current.id
                ).execute()
            return True

    def capture_messages(
        self,
        *,
        incident_id: int,
        channel_id: str,
        messages: Sequence[tuple[str, dict[str, Any], str]],
        now: datetime,
    ) -> int:
        """`capture_message` for many messages read from Slack (no event ids), in one
        transaction: a gap fill of 10,000 messages is a few dozen commits, not 10,000.
        Each item is ``(ts, fields, event_ts)``; returns how many rows were new or newer.
        """
        for _ts, fields, _event_ts in messages:
            _check_fields(fields)
        now = _utc(now)
        changed = 0
        with self.atomic():
            for start in range(0, len(messages), CAPTURE_CHUNK):
                changed += self._capture_chunk(
                    incident_id, channel_id, messages[start : start + CAPTURE_CHUNK], now
                )
        return changed

    @staticmethod
    def _capture_chunk(
        incident_id: int,
        channel_id: str,
        messages: Sequence[tuple[str, dict[str, Any], str]],
        now: datetime,
    ) -> int:
        """One SELECT of what exists, one multi-row INSERT of the rest, an UPDATE for
        each message newer than its row (an edit made while no event came)."""
        known = {
            row.ts: row
            for row in m.SlackMessage.select(
                m.SlackMessage.id,
                m.SlackMessage.ts,
                m.SlackMessage.event_ts,
                m.SlackMessage.deleted,
            ).where(
                (m.SlackMessage.channel_id == channel_id)
                & (m.SlackMessage.ts.in_([ts for ts, _f, _e in messages]))
            )
        }
        fresh = {
            ts: {
                "incident": incident_id,
                "channel_id": channel_id,
                "ts": ts,
                **fields,
                "event_ts": event_ts,
                "deleted": False,
                "captured_at": now,
                "updated_at": now,
            }
            for ts, fields, event_ts in messages
            if ts not in known
        }
        inserted = 0
        if fresh:
            # Every row names the same columns, so one statement can carry them all.
            rows = [{**dict.fromkeys(MESSAGE_FIELDS), **row} for row in fresh.values()]
            inserted = m.SlackMessage.insert_many(rows).on_conflict_ignore().as_rowcount().execute()
        updated = 0
        for ts, fields, event_ts in messages:
            current = known.get(ts)
            if current is None or current.deleted:
                continue
            if Decimal(event_ts) > Decimal(current.event_ts):
                m.SlackMessage.update(event_ts=event_ts, updated_at=now, **fields).where(
                    m.SlackMessage.id == current.id
                ).execute()
                updated += 1
        return int(inserted) + updated

    def capture_deletion(
        self,
        *,
        event_id: str | None,
        incident_id: int,
        channel_id: str,
        ts: str,
        thread_ts: str | None,
        event_ts: str,
        now: datetime,
    ) -> bool:
        """Leave only a tombstone of a message; False when the event was applied before.

        A deletion that arrives before its message still leaves the tombstone, so the
        late message can't bring the text back.
        """
        now = _utc(now)
        gone = {"text": None, "extra": None, "deleted": True}
        with self.atomic():
            if not self._claim_event(event_id, now):
                return False
            row = {"incident": incident_id, "channel_id": channel_id, "ts": ts}
            if not self._insert_message({**row, "thread_ts": thread_ts, **gone}, event_ts, now):
                m.SlackMessage.update(event_ts=event_ts, updated_at=now, **gone).where(
                    (m.SlackMessage.channel_id == channel_id) & (m.SlackMessage.ts == ts)
                ).execute()
            return True

    @staticmethod
    def _insert_message(values: dict[str, Any], event_ts: str, now: datetime) -> bool:
        """Insert a message row unless ``(channel_id, ts)`` exists; True if inserted.

        ``ON CONFLICT DO NOTHING``: a concurrent capture of the same message (a duplicate
        event on another process) waits for the first and then inserts nothing.
        """
        inserted: int = (
            m.SlackMessage.insert(**values, event_ts=event_ts, captured_at=now, updated_at=now)
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        return inserted > 0

    @staticmethod
    def _message(channel_id: str, ts: str) -> m.SlackMessage:
        row: m.SlackMessage = m.SlackMessage.get(
            (m.SlackMessage.channel_id == channel_id) & (m.SlackMessage.ts == ts)
        )
        return row

    @staticmethod
    def _claim_event(event_id: str | None, now: datetime) -> bool:
        """Record ``event_id`` as applied, in the caller's transaction; False if it was.

        Claimed in the same transaction as its effect, so a crash can't leave one
        without the other.
        """
        if event_id is None:
            return True
        inserted: int = (
            m.SlackEvent.insert(event_id=event_id, received_at=now)
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        return inserted > 0

    def forget_page(self, incident_id: int, kind: str, page_id: str, also: Sequence[str]) -> bool:
        """Forget a page that is gone, in one transaction: its ``kind`` artifact row (only
        if it still is ``page_id``), the artifact rows ``also`` that lived in it, and
        everything written into it, so its replacement gets the whole transcript.

        False (and nothing changed) when the row no longer names ``page_id``: another
        worker replaced the page first.
        """
        with self.atomic():
            deleted = (
                m.Artifact.delete()
                .where(
                    (m.Artifact.incident == incident_id)
                    & (m.Artifact.kind == kind)
                    & (m.Artifact.external_id == page_id)
                )
                .execute()
            )
            if not deleted:
                return False
            m.Artifact.delete().where(
                (m.Artifact.incident == incident_id) & (m.Artifact.kind.in_(list(also)))
            ).execute()
            m.TranscriptEntry.delete().where(m.TranscriptEntry.incident == incident_id).execute()
            m.TranscriptWrite.delete().where(m.TranscriptWrite.incident == incident_id).execute()
            m.SlackMessage.update(synced_event_ts=None).where(
                m.SlackMessage.incident == incident_id
            ).execute()
            return True

    def mark_synced(self, incident_id: int, versions: dict[str, str]) -> None:
        """Note which version (`event_ts`, or "deleted") of each message the page shows."""
        with self.atomic():
            for ts, version in versions.items():
                m.SlackMessage.update(synced_event_ts=version).where(
                    (m.SlackMessage.incident == incident_id) & (m.SlackMessage.ts == ts)
                ).execute()

    def captured_messages(self, incident_id: int) -> list[SlackMessage]:
        """Every captured message of the incident, tombstones included, oldest first."""
        with self.session():
            # Plain dicts, not model instances: a dump reads tens of thousands of rows.
            query = (
                m.SlackMessage.select()
                .where(m.SlackMessage.incident == incident_id)
                .order_by(m.SlackMessage.ts)
                .dicts()
            )
            return [SlackMessage(**_message_record(cast(dict[str, Any], row))) for row in query]


def _check_updatable(method: str, fields: dict[str, Any]) -> None:
    """Only `UPDATABLE_FIELDS` change after a declare; a typo is a bug, said at once."""
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"{method} cannot change {', '.join(sorted(unknown))}")


def _check_fields(fields: dict[str, Any]) -> None:
    """A captured message's columns are only `MESSAGE_FIELDS`."""
    unknown = set(fields) - MESSAGE_FIELDS
    if unknown:
        raise ValueError(f"a captured message cannot set {', '.join(sorted(unknown))}")


def _message_record(row: dict[str, Any]) -> dict[str, Any]:
    """A `slack_message` row as `SlackMessage`'s fields (the foreign key is `incident`)."""
    row["incident_id"] = row.pop("incident")
    return row


def _process_locks(config: DatabaseConfig) -> ProcessLocks:
    if config.backend == "sqlite":
        return FileLocks(f"{config.database}.locks")
    params = {"dbname": config.database, **pg_connect_params(config, "firebreak-lock")}
    return AdvisoryLocks(params, max_connections=LOCK_POOL_SIZE)


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store a ``DATABASE_URL`` names and bind the models to it.

    ``sqlite:///:memory:`` gives a private database in a temporary directory, removed
    by ``close()``: a real file, so that every thread's connection sees the same data
    and the file locks work as they do in production.
    """
    config = parse_url(url)
    with translated_errors():
        return _open(config, migrate=migrate)


def _open(config: DatabaseConfig, *, migrate: bool) -> Store:
    temp_dir = None
    if config.is_memory:
        temp_dir = tempfile.mkdtemp(prefix="firebreak-store-")
        config = replace(config, database=f"{temp_dir}/firebreak.db")
    db = build_database(config)
    database_proxy.initialize(db)
    store = Store(config, db, LockManager(_process_locks(config)), temp_dir)
    try:
        if store.backend == "sqlite":
            with store.lock(SQLITE_SETUP_LOCK, timeout=SQLITE_BUSY_TIMEOUT):
                enable_wal(config.database)
        if migrate:
            store.migrate()
    except BaseException:
        store.close()
        raise
    log.debug("opened %s store %s", store.backend, config.database)
    return store
