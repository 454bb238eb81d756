"""Firebreak's storage: incidents, artifacts, timeline and transcript, plus locks.

This package wraps peewee so that nothing above it sees a peewee type or exception:
`storage.store` holds the `Store`, `storage.records` the plain dataclasses it returns,
`storage.errors` its exceptions. This module only
re-exports what callers use.
"""

from storage.db import DatabaseConfig, parse_url, redact_url
from storage.errors import NotFound, StoreError, StoreUnavailable
from storage.inbox import MAX_ATTEMPTS as INBOX_MAX_ATTEMPTS
from storage.locks import LockTimeout
from storage.migrations import LATEST_VERSION as LATEST_SCHEMA_VERSION
from storage.records import (
    Artifact,
    ArtifactAttempt,
    InboxRow,
    Incident,
    IncidentEvent,
    SlackMessage,
    TranscriptWrite,
)
from storage.store import Store, open_store

__all__ = [
    "INBOX_MAX_ATTEMPTS",
    "LATEST_SCHEMA_VERSION",
    "Artifact",
    "ArtifactAttempt",
    "DatabaseConfig",
    "InboxRow",
    "Incident",
    "IncidentEvent",
    "LockTimeout",
    "NotFound",
    "SlackMessage",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TranscriptWrite",
    "open_store",
    "parse_url",
    "redact_url",
]
