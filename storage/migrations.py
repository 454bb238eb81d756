"""Schema versions, applied at start-up.

:data:`MIGRATIONS` is an ordered list of numbered steps; ``schema_version`` records the
ones applied.  :func:`apply` runs the missing steps in one serialized transaction
(an advisory transaction lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so any
number of processes may start at once: the first applies the steps, the others wait
for it and then find nothing to do.  DDL is transactional on both backends, so a
failed step leaves no half-applied version behind.

To change the schema: edit the model, then append a step that brings an existing
database to it with ``playhouse.migrate``, e.g.::

    def _v2_incident_summary(db: Database) -> None:
        if "summary" in _columns(db, Incident):
            return  # v1 already created the table with the new model
        migrator = SchemaMigrator.from_database(db)
        migrate(migrator.add_column("incident", "summary", Incident.summary))

v1 creates the tables from the *current* models, which is why later steps check for
what v1 may already have made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from peewee import SQL, Database, DateTimeField, IntegerField, TextField, fn
from playhouse.migrate import SchemaMigrator, migrate

from storage.db import ADVISORY_MIGRATIONS, serialized_transaction
from storage.models import (
    MODELS,
    ArtifactAttempt,
    BaseModel,
    DumpRequest,
    InboxRow,
    IncidentEvent,
    SlackEvent,
    SlackMessage,
    TranscriptWrite,
    database_proxy,
)

log = logging.getLogger(__name__)


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    name = TextField()
    # The database's clock: storage never reads the application's clock itself.
    applied_at = DateTimeField(constraints=[SQL("DEFAULT CURRENT_TIMESTAMP")])

    class Meta:
        table_name = "schema_version"


class Migration(NamedTuple):
    version: int
    name: str
    step: Callable[[Database], None]


def _v1_create_tables(db: Database) -> None:
    db.create_tables(MODELS, safe=True)


def _columns(db: Database, model: type[BaseModel]) -> set[str]:
    """Column names a table has now; later steps use it to stay idempotent."""
    return {column.name for column in db.get_columns(model._meta.table_name)}


def _v2_dump_requests(db: Database) -> None:
    """Dump requests and the in-flight transcript append; v1 may have made them."""
    db.create_tables([DumpRequest, TranscriptWrite], safe=True)


def _v3_captured_messages(db: Database) -> None:
    """Messages captured from events, and the event ids already applied."""
    db.create_tables([SlackMessage, SlackEvent], safe=True)


def _v4_inbox(db: Database) -> None:
    """The inbox of commands, and the command key on timeline events."""
    db.create_tables([InboxRow], safe=True)
    if "request_key" not in _columns(db, IncidentEvent):
        migrator = SchemaMigrator.from_database(db)
        # add_column also makes the column's unique index.
        migrate(
            migrator.add_column(
                IncidentEvent._meta.table_name, "request_key", IncidentEvent.request_key
            )
        )


def _v5_attempt_tokens(db: Database) -> None:
    """The token each artefact attempt writes on what it makes, for adoption."""
    if "token" not in _columns(db, ArtifactAttempt):
        migrator = SchemaMigrator.from_database(db)
        migrate(
            migrator.add_column(ArtifactAttempt._meta.table_name, "token", ArtifactAttempt.token)
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create tables", _v1_create_tables),
    Migration(2, "dump requests and transcript writes", _v2_dump_requests),
    Migration(3, "captured messages and applied events", _v3_captured_messages),
    Migration(4, "the command inbox", _v4_inbox),
    Migration(5, "tokens of artefact attempts", _v5_attempt_tokens),
)

#: The schema version this code expects once start-up has migrated.
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(db: Database) -> int:
    """The highest applied version, 0 for an empty database."""
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    version: int | None = SchemaVersion.select(fn.MAX(SchemaVersion.version)).scalar()
    return version or 0


def apply(db: Database) -> list[int]:
    """Apply the missing migrations; return the versions this call applied.

    ``db`` must be the database the models are bound to (``open_store`` binds them):
    ``create_tables`` always goes through the models' own binding.
    """
    if database_proxy.obj is not db:
        raise ValueError("migrations.apply(db): the models are bound to another database")
    applied: list[int] = []
    with serialized_transaction(db, ADVISORY_MIGRATIONS):
        db.create_tables([SchemaVersion], safe=True)
        done = current_version(db)
        for migration in MIGRATIONS:
            if migration.version <= done:
                continue
            log.info("applying migration %d: %s", migration.version, migration.name)
            migration.step(db)
            SchemaVersion.insert(version=migration.version, name=migration.name).execute()
            applied.append(migration.version)
    return applied
