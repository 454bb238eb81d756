"""Captured messages: once per event id and per (channel, ts), in any order, on both stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from storage import Store, open_store
from tests.helpers.factories import declare
from tests.storage.test_storage import run_together

T0 = datetime(2024, 5, 1, 9, 30)
CHANNEL = "C0INC"


def fields(text: str, **more: object) -> dict[str, object]:
    return {"user": "U0ALICE", "text": text, **more}


def capture(
    store: Store,
    incident_id: int,
    ts: str,
    text: str,
    *,
    event_id: str | None,
    event_ts: str | None = None,
    **more: object,
) -> bool:
    return store.capture_message(
        event_id=event_id,
        incident_id=incident_id,
        channel_id=CHANNEL,
        ts=ts,
        fields=fields(text, **more),
        event_ts=event_ts or ts,
        now=T0,
    )


def texts(store: Store, incident_id: int) -> list[tuple[str, str | None, bool]]:
    return [(m.ts, m.text, m.deleted) for m in store.captured_messages(incident_id)]


def test_an_event_applies_once_and_a_message_is_one_row(store: Store) -> None:
    incident = declare(store, channel_id=CHANNEL)
    assert capture(store, incident.id, "100.000001", "hello", event_id="Ev1")
    assert not capture(store, incident.id, "100.000001", "hello", event_id="Ev1")  # retry
    assert capture(store, incident.id, "100.000001", "hello", event_id="Ev2")  # a duplicate
    assert texts(store, incident.id) == [("100.000001", "hello", False)]


def test_an_older_edit_never_overwrites_a_newer_one(store: Store) -> None:
    incident = declare(store, channel_id=CHANNEL)
    capture(store, incident.id, "100.000001", "first", event_id="Ev1")
    capture(store, incident.id, "100.000001", "third", event_id="Ev3", event_ts="102.0")
    capture(store, incident.id, "100.000001", "second", event_id="Ev2", event_ts="101.0")
    assert texts(store, incident.id) == [("100.000001", "third", False)]


def test_a_deletion_is_final_even_when_it_comes_first(store: Store) -> None:
    incident = declare(store, channel_id=CHANNEL)
    for ts in ("100.000001", "100.000002"):
        capture(store, incident.id, ts, "secret", event_id=f"new-{ts}", extra={"files": [1]})
    gone = dict(incident_id=incident.id, channel_id=CHANNEL, thread_ts=None, now=T0)
    assert store.capture_deletion(event_id="Del1", ts="100.000001", event_ts="101.0", **gone)
    assert not store.capture_deletion(event_id="Del1", ts="100.000001", event_ts="101.0", **gone)
    # A deletion before its message, then the late message and an edit: still gone.
    assert store.capture_deletion(event_id="Del3", ts="100.000003", event_ts="103.0", **gone)
    capture(store, incident.id, "100.000003", "late secret", event_id="new-3")
    capture(store, incident.id, "100.000001", "edited", event_id="Ed1", event_ts="105.0")
    rows = store.captured_messages(incident.id)
    assert [(r.ts, r.text, r.deleted, r.extra) for r in rows] == [
        ("100.000001", None, True, None),
        ("100.000002", "secret", False, {"files": [1]}),
        ("100.000003", None, True, None),
    ]


def test_a_reply_before_its_parent_keeps_both(store: Store) -> None:
    incident = declare(store, channel_id=CHANNEL)
    capture(store, incident.id, "100.000002", "reply", event_id="Ev2", thread_ts="100.000001")
    capture(store, incident.id, "100.000001", "parent", event_id="Ev1", thread_ts="100.000001")
    rows = store.captured_messages(incident.id)
    assert [(r.ts, r.thread_ts, r.text) for r in rows] == [
        ("100.000001", "100.000001", "parent"),
        ("100.000002", "100.000001", "reply"),
    ]


@pytest.mark.timeout(60)
def test_concurrent_duplicates_from_threads_give_one_row(store: Store) -> None:
    incident = declare(store, channel_id=CHANNEL)
    applied = run_together(
        8, lambda i: capture(store, incident.id, "100.000001", "hi", event_id=f"Ev{i % 2}")
    )
    assert sorted(applied) == [False] * 6 + [True] * 2
    assert texts(store, incident.id) == [("100.000001", "hi", False)]


def test_sqlite_overwrites_a_deleted_secret_on_disk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'firebreak.db'}"
    secret = "hunter2-the-pasted-password-" * 20
    store = open_store(url)
    try:
        incident = declare(store, channel_id=CHANNEL)
        capture(store, incident.id, "100.000001", secret, event_id="Ev1")
        store.capture_deletion(
            event_id="Del1",
            incident_id=incident.id,
            channel_id=CHANNEL,
            ts="100.000001",
            thread_ts=None,
            event_ts="101.0",
            now=T0,
        )
    finally:
        store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("firebreak.db*") if p.is_file())
    assert b"hunter2-the-pasted-password" not in stored
