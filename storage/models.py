"""The schema ("Data model" in docs/ARCHITECTURE.md) as peewee models.

Models are bound to :data:`database_proxy`, which :func:`storage.open_store` points at
the real database, so one process talks to one store at a time.  Datetimes are naive
UTC.  Foreign keys are plain ids on the row (``artifact.incident_id``); reading
``artifact.incident`` runs a query.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeVar, overload

import peewee
from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database_proxy = DatabaseProxy()


_J = TypeVar("_J", bound="dict[str, Any] | None")


class JSONTextField(TextField, Generic[_J]):
    """A JSON object stored as text; reads back as a ``dict`` (``None`` if nullable).

    Text rather than a native JSON type so the column reads the same on SQLite and
    PostgreSQL, and no driver-specific adapters are involved.  The ``TYPE_CHECKING``
    block only tells type checkers what ``model.data`` holds, as peewee's stubs do for
    the built-in fields.
    """

    if TYPE_CHECKING:

        @overload
        def __new__(
            cls, *args: Any, null: Literal[True], **kwargs: Any
        ) -> JSONTextField[dict[str, Any] | None]: ...
        @overload
        def __new__(
            cls, *args: Any, null: Literal[False] = ..., **kwargs: Any
        ) -> JSONTextField[dict[str, Any]]: ...
        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...
        @overload
        def __get__(self, instance: None, owner: Any) -> Self: ...
        @overload
        def __get__(self, instance: object, owner: Any) -> _J: ...
        def __get__(self, instance: object | None, owner: Any) -> Any: ...
        def __set__(self, instance: object, value: _J) -> None: ...

    def db_value(self, value: dict[str, Any] | None) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def python_value(self, value: str | None) -> dict[str, Any] | None:
        if value is None:
            return None
        loaded: dict[str, Any] = json.loads(value)
        return loaded


class BaseModel(Model):
    # Set by peewee's metaclass on every model; declared so type checkers know it.
    DoesNotExist: ClassVar[type[peewee.DoesNotExist]]

    class Meta:
        database = database_proxy
        legacy_table_names = False


class Incident(BaseModel):
    id = AutoField()
    number = IntegerField(unique=True)
    title = TextField()
    status = CharField(max_length=16, default="active")
    severity = CharField(max_length=4)
    commander = CharField(max_length=64)
    reporter = CharField(max_length=64)
    channel_id = CharField(max_length=64, null=True, unique=True)
    channel_name = CharField(max_length=128, null=True)
    private = BooleanField(default=False)
    request_key = CharField(max_length=255, null=True, unique=True)
    declared_at = DateTimeField()
    updated_at = DateTimeField()


class Artifact(BaseModel):
    """Something we made for an incident.  A row exists only once the thing exists."""

    id = AutoField()
    incident = ForeignKeyField(Incident, backref="artifacts", on_delete="CASCADE")
    incident_id: int  # the column behind ``incident``, read without a query
    kind = CharField(max_length=64)
    external_id = TextField()
    url = TextField(null=True)
    data = JSONTextField(null=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        indexes = ((("incident", "kind"), True),)


class ArtifactAttempt(BaseModel):
    """An attempt to create an artifact, recorded *before* the external call is made."""

    id = AutoField()
    incident = ForeignKeyField(Incident, backref="attempts", on_delete="CASCADE")
    incident_id: int  # the column behind ``incident``, read without a query
    kind = CharField(max_length=64)
    started_at = DateTimeField()
    owner = CharField(max_length=255)
    #: Random, written on what the attempt makes (a page's label link, a message's
    #: metadata) so adoption recognises this attempt's artefact and no one else's.
    token = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("incident", "kind"), False),)


class IncidentEvent(BaseModel):
    """One timeline entry."""

    id = AutoField()
    incident = ForeignKeyField(Incident, backref="events", on_delete="CASCADE")
    incident_id: int  # the column behind ``incident``, read without a query
    kind = CharField(max_length=64)
    actor = CharField(max_length=64, null=True)
    data = JSONTextField(default=dict)
    at = DateTimeField()
    #: The inbox key of the command that made this event (v4): a command run again
    #: after a crash finds its change already made instead of making it twice.
    request_key = CharField(max_length=255, null=True, unique=True)

    class Meta:
        indexes = ((("incident", "at"), False),)


class TranscriptEntry(BaseModel):
    """A Slack message already written to the postmortem page, and its Notion block."""

    id = AutoField()
    incident = ForeignKeyField(Incident, backref="transcript", on_delete="CASCADE")
    incident_id: int  # the column behind ``incident``, read without a query
    message_ts = CharField(max_length=32)
    thread_ts = CharField(max_length=32, null=True)
    notion_block_id = CharField(max_length=64)
    created_at = DateTimeField()

    class Meta:
        indexes = ((("incident", "message_ts"), True),)


class DumpRequest(BaseModel):
    """A transcript dump someone asked for, recorded before the ack.

    See "Durable before the ack" in docs/ARCHITECTURE.md.

    ``done_at`` is set once a dump that started after the request has finished, so a
    request left pending by a process that died is finished by the reconciler.
    """

    id = AutoField()
    incident = ForeignKeyField(Incident, backref="dump_requests", on_delete="CASCADE")
    incident_id: int  # the column behind ``incident``, read without a query
    requested_by = CharField(max_length=64, null=True)
    requested_at = DateTimeField()
    done_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("incident", "done_at"), False),)


class TranscriptWrite(BaseModel):
    """The append in flight for an incident's transcript, if any (one row per incident).

    Set just before a Notion append and cleared once its entries are recorded: a row
    still open at the next dump means an append may have landed unanswered, so that
    dump first adopts, by message ts, what is already under ``parent_id``.
    """

    id = AutoField()
    incident = ForeignKeyField(Incident, on_delete="CASCADE", unique=True)
    incident_id: int  # the column behind ``incident``, read without a query
    parent_id = CharField(max_length=64)
    started_at = DateTimeField()
    finished_at = DateTimeField(null=True)


class SlackMessage(BaseModel):
    """A message of an incident channel as captured from its events: the transcript's truth.

    One row per ``(channel_id, ts)``, whatever order its events arrive in. ``event_ts``
    is the newest event applied, so an older edit never overwrites a newer one. A
    deleted message keeps only its tombstone: ``deleted`` set, ``text`` and ``extra``
    gone (on SQLite, ``secure_delete`` overwrites the freed bytes too).
    """

    id = AutoField()
    incident = ForeignKeyField(Incident, backref="messages", on_delete="CASCADE")
    incident_id: int  # the column behind ``incident``, read without a query
    channel_id = CharField(max_length=64)
    ts = CharField(max_length=32)
    thread_ts = CharField(max_length=32, null=True)
    user = CharField(max_length=64, null=True)
    bot_id = CharField(max_length=64, null=True)
    subtype = CharField(max_length=64, null=True)
    text = TextField(null=True)
    #: What else the transcript may show: attachments, blocks, files, the app's name.
    extra = JSONTextField(null=True)
    deleted = BooleanField(default=False)
    event_ts = CharField(max_length=32)
    #: The `event_ts` the page shows (`deleted` once the page shows a deletion); None
    #: until the transcript rewrites the message after an edit or a deletion.
    synced_event_ts = CharField(max_length=32, null=True)
    captured_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        indexes = (
            (("channel_id", "ts"), True),
            (("incident", "ts"), False),
        )


class SlackEvent(BaseModel):
    """An Events API event already applied, by its ``event_id``: Slack retries unacked
    events (``retry_attempt`` 1-3), and each must take effect once."""

    event_id = CharField(max_length=64, primary_key=True)
    received_at = DateTimeField()


class InboxRow(BaseModel):
    """A command envelope, stored and committed before its ack (the inbox).

    ``key`` is Slack's own id of the request (``command:<trigger_id>``,
    ``view:<view id>``), so a second write of the same request finds the first row.
    ``owner`` and ``lease_until`` say which process runs it; a lease its owner stopped
    renewing (the process died) lets any other process claim the row. ``done_at`` is
    set once its effects are recorded.
    """

    id = AutoField()
    key = CharField(max_length=255, unique=True)
    kind = CharField(max_length=32)
    payload = JSONTextField(default=dict)
    received_at = DateTimeField()
    owner = CharField(max_length=255, null=True)
    lease_until = DateTimeField(null=True)
    attempts = IntegerField(default=0)
    done_at = DateTimeField(null=True)

    class Meta:
        table_name = "inbox"
        indexes = ((("done_at", "lease_until"), False),)


MODELS: tuple[type[BaseModel], ...] = (
    Incident,
    Artifact,
    ArtifactAttempt,
    IncidentEvent,
    TranscriptEntry,
    DumpRequest,
    TranscriptWrite,
    SlackMessage,
    SlackEvent,
    InboxRow,
)
