"""What the store returns: plain dataclasses, one per table, never peewee models.

Above `storage/` nothing sees a peewee type: a record is a snapshot of its row when it
was read, so changing one changes nothing in the database (the store's methods do), and
reading one never runs a query. Field names are the columns'; a foreign key is its id
(`artifact.incident_id`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Self

from peewee import Model


def naive_utc(moment: datetime) -> datetime:
    """Naive UTC, the only form stored: both backends then compare and sort alike."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


class Record:
    @classmethod
    def of(cls, row: Model) -> Self:
        """The record of a model instance (every field read from the row as loaded)."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass
class Incident(Record):
    id: int
    number: int
    title: str
    status: str
    severity: str
    commander: str
    reporter: str
    channel_id: str | None
    channel_name: str | None
    private: bool
    request_key: str | None
    declared_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Artifact(Record):
    """Something we made for an incident; a row exists only once the thing exists."""

    id: int
    incident_id: int
    kind: str
    external_id: str
    url: str | None
    data: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ArtifactAttempt(Record):
    """An attempt to create an artifact, recorded before the external call is made."""

    id: int
    incident_id: int
    kind: str
    started_at: datetime
    owner: str
    #: What the attempt wrote on its artefact (None for attempts made before version 5).
    token: str | None = None


@dataclass(frozen=True)
class IncidentEvent(Record):
    """One timeline entry."""

    id: int
    incident_id: int
    kind: str
    actor: str | None
    data: dict[str, Any]
    at: datetime
    request_key: str | None


@dataclass(frozen=True)
class TranscriptWrite(Record):
    """The append in flight for an incident's transcript."""

    id: int
    incident_id: int
    parent_id: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class SlackMessage(Record):
    """A captured message of an incident channel; a deleted one keeps no text."""

    id: int
    incident_id: int
    channel_id: str
    ts: str
    thread_ts: str | None
    user: str | None
    bot_id: str | None
    subtype: str | None
    text: str | None
    extra: dict[str, Any] | None
    deleted: bool
    event_ts: str
    synced_event_ts: str | None
    captured_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class InboxRow(Record):
    """A command stored before its ack; see `storage.inbox`."""

    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    received_at: datetime
    owner: str | None
    lease_until: datetime | None
    attempts: int
    done_at: datetime | None
