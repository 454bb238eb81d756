"""Store queries, incident numbering, URLs and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.pool import PooledPostgresqlDatabase

from bolt_app.core.domain import CLOSED_STATUSES, parse_severity, parse_status
from storage import NotFound, Store, StoreError, migrations, open_store
from storage.db import QUERY_POOL_SIZE, parse_url
from storage.models import Artifact, Incident, IncidentEvent, TranscriptEntry
from tests.helpers.children import Children

T0 = datetime(2024, 5, 1, 9, 30)


def declare(store: Store, **overrides: Any) -> tuple[Incident, bool]:
    values: dict[str, Any] = {
        "title": "Checkout is down",
        "severity": "P2",
        "reporter": "U_REPORTER",
        "commander": "U_COMMANDER",
        "private": False,
        "request_key": None,
        "number_start": 1,
        "now": T0,
    }
    values.update(overrides)
    return store.create_incident(**values)


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count, timeout=30)

    def start(index: int) -> Any:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


# -- URLs ----------------------------------------------------------------------------------


def test_sqlite_relative_path_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("sqlite:///rel.db").database == str(tmp_path / "rel.db")
    with open_store("sqlite:///rel.db") as store:
        assert store.backend == "sqlite"
        assert store.db.database == str(tmp_path / "rel.db")
        with store.lock("some-name", timeout=1):
            pass
    assert (tmp_path / "rel.db").is_file()
    assert (tmp_path / "rel.db.locks").is_dir()


def test_sqlite_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = tmp_path / "abs.db"
    url = f"sqlite:///{target}"
    assert url.startswith("sqlite:////")
    with open_store(url) as store:
        assert store.db.database == str(target)
        declare(store)
    assert target.is_file()
    assert not list(elsewhere.iterdir())


def test_sqlite_memory_store_is_shared_by_threads_and_removed_on_close() -> None:
    store = open_store("sqlite:///:memory:")
    try:
        incident, _ = declare(store)
        seen = run_together(3, lambda _: store.get_incident(incident.id))
        assert [found.number for found in seen] == [1, 1, 1]
        directory = Path(store.db.database).parent
        assert directory.is_dir()
    finally:
        store.close()
    assert not directory.exists()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_url(scheme: str) -> None:
    url = f"{scheme}://alice:s3cret@db.example.com:6543/firebreak?sslmode=require"
    config = parse_url(url)
    assert config.backend == "postgres"
    assert config.database == "firebreak"
    assert config.connect_params == {
        "user": "alice",
        "password": "s3cret",
        "host": "db.example.com",
        "port": 6543,
        "sslmode": "require",
    }
    store = open_store(url, migrate=False)  # connects lazily: no server needed
    try:
        assert store.backend == "postgres"
        assert isinstance(store.db, PooledPostgresqlDatabase)
        assert store.db.database == "firebreak"
        assert store.db._max_connections == QUERY_POOL_SIZE
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/firebreak", "unsupported DATABASE_URL scheme 'mysql'"),
        ("firebreak.db", "unsupported DATABASE_URL scheme ''"),
        ("postgresql://db.example.com/", "names no database"),
    ],
    ids=["other-scheme", "no-scheme", "no-database"],
)
def test_bad_urls_are_rejected(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


# -- incidents -----------------------------------------------------------------------------


def test_create_and_look_up_incident(store: Store) -> None:
    incident, created = declare(store, private=True)
    assert created
    assert (incident.number, incident.status, incident.severity) == (1, "active", "P2")
    assert incident.private is True
    assert incident.declared_at == incident.updated_at == T0

    fetched = store.get_incident(incident.id)
    assert fetched is not None
    assert (fetched.title, fetched.reporter, fetched.commander) == (
        "Checkout is down",
        "U_REPORTER",
        "U_COMMANDER",
    )
    assert fetched.private is True
    assert fetched.channel_id is None
    by_number = store.incident_by_number(1)
    assert by_number is not None and by_number.id == incident.id
    assert store.get_incident(incident.id + 1000) is None
    assert store.incident_by_number(2) is None
    assert store.incident_by_channel("C_NONE") is None


def test_set_channel(store: Store) -> None:
    first, _ = declare(store)
    second, _ = declare(store)
    store.set_channel(first.id, "C123", "inc-1-checkout-is-down", T0 + timedelta(seconds=2))

    found = store.incident_by_channel("C123")
    assert found is not None and found.id == first.id
    assert found.channel_name == "inc-1-checkout-is-down"
    assert found.updated_at == T0 + timedelta(seconds=2)
    with pytest.raises(StoreError):
        store.set_channel(second.id, "C123", "inc-2", T0)
    with pytest.raises(NotFound):
        store.set_channel(first.id + 1000, "C999", "nope", T0)


def test_numbers_honour_number_start(store: Store) -> None:
    assert declare(store, number_start=1000)[0].number == 1000
    assert declare(store, number_start=1000)[0].number == 1001
    assert declare(store, number_start=1)[0].number == 1002  # never reuses or goes back
    assert declare(store, number_start=2000)[0].number == 2000  # a raised start wins


def test_failed_insert_leaves_no_gap(store: Store) -> None:
    assert declare(store)[0].number == 1
    with pytest.raises(StoreError):
        declare(store, title=None)  # NOT NULL fails after the number was allocated
    assert declare(store)[0].number == 2


def test_rolled_back_declare_leaves_no_gap(store: Store) -> None:
    assert declare(store)[0].number == 1
    with pytest.raises(RuntimeError, match="declare failed later"), store.atomic():
        assert declare(store)[0].number == 2
        raise RuntimeError("declare failed later")
    assert store.incident_by_number(2) is None
    assert declare(store)[0].number == 2


def test_request_key_is_idempotent(store: Store) -> None:
    first, created = declare(store, request_key="view-submission-1")
    again, created_again = declare(store, request_key="view-submission-1", title="other")
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.title == "Checkout is down"
    other, _ = declare(store, request_key="view-submission-2")
    assert other.number == 2


@pytest.mark.timeout(60)
def test_request_key_idempotent_under_concurrent_threads(store: Store) -> None:
    results = run_together(8, lambda _: declare(store, request_key="same-click"))
    assert len({incident.id for incident, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    with store.session():
        assert Incident.select().count() == 1


@pytest.mark.timeout(90)
def test_numbers_are_gapless_across_processes_and_threads(store: Store, store_url: str) -> None:
    with Children() as children:
        for _ in range(4):
            children.start("create", store_url, "--threads", "25")
        children.all_ready()
        children.go()
        numbers: list[int] = []
        for child in children.started:
            numbers += json.loads(child.expect("result ", timeout=60))
            child.finish()
    assert sorted(numbers) == list(range(1, 101))
    with store.session():
        stored = [incident.number for incident in Incident.select().order_by(Incident.number)]
    assert stored == list(range(1, 101))


def test_update_incident(store: Store) -> None:
    incident, _ = declare(store)
    later = T0 + timedelta(minutes=5)
    updated = store.update_incident(
        incident.id, later, status="mitigated", severity="P1", commander="U_ALICE", title="New"
    )
    assert (updated.status, updated.severity, updated.commander, updated.title) == (
        "mitigated",
        "P1",
        "U_ALICE",
        "New",
    )
    assert (updated.declared_at, updated.updated_at) == (T0, later)
    fetched = store.get_incident(incident.id)
    assert fetched is not None and fetched.status == "mitigated"

    with pytest.raises(ValueError, match="cannot change number"):
        store.update_incident(incident.id, later, number=7)
    # Which words a status or severity may be is the domain's, checked before the store.
    assert parse_status("exploded") is None and parse_severity("P9") is None
    with pytest.raises(NotFound):
        store.update_incident(incident.id + 1000, later, status="resolved")


def test_open_incidents_newest_first(store: Store) -> None:
    ids = [declare(store)[0].id for _ in range(4)]
    store.update_incident(ids[0], T0, status="done")
    store.update_incident(ids[2], T0, status="canceled")
    store.update_incident(ids[3], T0, status="postmortem")
    assert [incident.id for incident in store.open_incidents(CLOSED_STATUSES)] == [ids[3], ids[1]]


def test_aware_datetimes_are_stored_as_naive_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    incident, _ = declare(store, now=datetime(2024, 5, 1, 11, 30, tzinfo=plus_two))
    fetched = store.get_incident(incident.id)
    assert fetched is not None and fetched.declared_at == T0
    event = store.add_event(incident.id, "note", None, {}, datetime(2024, 5, 1, 9, 30, tzinfo=UTC))
    assert store.events(incident.id)[0].at == T0 == event.at


# -- artifacts -----------------------------------------------------------------------------


def test_save_artifact_inserts_then_replaces(store: Store) -> None:
    incident, _ = declare(store)
    later = T0 + timedelta(hours=1)
    assert store.get_artifact(incident.id, "bookmark_postmortem") is None

    url = "https://notion.so/p"
    first = store.save_artifact(incident.id, "bookmark_postmortem", "Bk1", url, T0, {"title": "PM"})
    assert (first.external_id, first.url, first.data) == ("Bk1", url, {"title": "PM"})
    second = store.save_artifact(incident.id, "bookmark_postmortem", "Bk2", None, later)
    assert second.id == first.id
    assert (second.external_id, second.url, second.data) == ("Bk2", None, None)
    assert (second.created_at, second.updated_at) == (T0, later)
    with store.session():
        assert Artifact.select().count() == 1

    store.save_artifact(incident.id, "slack_channel", "C1", None, T0)
    found = store.get_artifact(incident.id, "slack_channel")
    assert found is not None and found.incident_id == incident.id
    store.delete_artifact(incident.id, "bookmark_postmortem")
    assert store.get_artifact(incident.id, "bookmark_postmortem") is None
    assert store.get_artifact(incident.id, "slack_channel") is not None


def test_artifact_needs_an_existing_incident(store: Store) -> None:
    with pytest.raises(StoreError):
        store.save_artifact(12345, "slack_channel", "C1", None, T0)


def test_attempts_oldest_first(store: Store) -> None:
    incident, _ = declare(store)
    store.record_attempt(incident.id, "notion_postmortem", T0 + timedelta(seconds=5), "b:2")
    store.record_attempt(incident.id, "notion_postmortem", T0, "a:1")
    store.record_attempt(incident.id, "slack_channel", T0, "c:3")
    attempts = store.attempts(incident.id, "notion_postmortem")
    assert [(a.owner, a.started_at) for a in attempts] == [
        ("a:1", T0),
        ("b:2", T0 + timedelta(seconds=5)),
    ]
    assert store.attempts(incident.id, "bookmark_postmortem") == []


def test_forget_page_drops_the_page_and_what_was_written_into_it(store: Store) -> None:
    """A page that is gone: its row, the rows that lived in it and the transcript's
    entries go in one transaction; a page replaced meanwhile is left alone."""
    incident, _ = declare(store)
    other, _ = declare(store, title="other", request_key="other")
    for target in (incident, other):
        store.save_artifact(target.id, "notion_postmortem", f"page-{target.id}", "u", T0)
        store.save_artifact(target.id, "transcript_heading", "h", None, T0)
        store.save_transcript_entries(target.id, [("1.0", "b1", None), ("event:1", "b2", None)], T0)
    store.save_artifact(incident.id, "slack_channel", "C1", None, T0)

    assert not store.forget_page(incident.id, "notion_postmortem", "a-newer-page", ["x"])
    assert store.get_artifact(incident.id, "notion_postmortem") is not None

    assert store.forget_page(
        incident.id, "notion_postmortem", f"page-{incident.id}", ["transcript_heading"]
    )
    assert store.get_artifact(incident.id, "notion_postmortem") is None
    assert store.get_artifact(incident.id, "transcript_heading") is None
    assert store.get_artifact(incident.id, "slack_channel") is not None
    assert store.transcript_rows(incident.id) == []
    assert len(store.transcript_rows(other.id)) == 2, "another incident's page is untouched"
    assert store.get_artifact(other.id, "notion_postmortem") is not None


# -- timeline and transcript ---------------------------------------------------------------


def test_events_in_time_order_with_json_data(store: Store) -> None:
    incident, _ = declare(store)
    data = {"from": "active", "to": "mitigated", "note": "naïve ☃", "nested": {"n": [1, 2]}}
    store.add_event(incident.id, "status_changed", "U1", data, T0 + timedelta(minutes=1))
    store.add_event(incident.id, "declared", "U2", {}, T0)
    store.add_event(incident.id, "note", None, {"text": "same time, later id"}, T0)
    events = store.events(incident.id)
    assert [(e.kind, e.actor) for e in events] == [
        ("declared", "U2"),
        ("note", None),
        ("status_changed", "U1"),
    ]
    assert events[2].data == data
    with store.session():
        assert IncidentEvent.get_by_id(events[0].id).data == {}


def test_transcript_entries_are_recorded_once(store: Store) -> None:
    incident, _ = declare(store)
    other, _ = declare(store)
    entries = [(f"1700000000.{i:06d}", f"block-{i}", None) for i in range(450)]
    store.save_transcript_entries(incident.id, entries, T0)
    store.save_transcript_entries(
        incident.id, [("1700000000.000001", "block-new", None), ("1700000001.5", "b-r", "1.0")], T0
    )
    store.save_transcript_entries(other.id, [("1700000000.000001", "other-block", None)], T0)

    recorded = store.transcript_ts(incident.id)
    assert len(recorded) == 451
    assert recorded["1700000000.000001"] == "block-1"  # the first write wins
    assert recorded["1700000001.5"] == "b-r"
    assert store.transcript_ts(other.id) == {"1700000000.000001": "other-block"}
    with store.session():
        reply = TranscriptEntry.get(TranscriptEntry.message_ts == "1700000001.5")
    assert reply.thread_ts == "1.0"


def test_transcript_entries_are_saved_in_one_transaction(store: Store) -> None:
    incident, _ = declare(store)
    second_has_no_block: list[Any] = [("1.1", "block-1", None), ("1.2", None, None)]
    with pytest.raises(StoreError):
        store.save_transcript_entries(incident.id, second_has_no_block, T0)
    assert store.transcript_ts(incident.id) == {}


# -- sessions and transactions -------------------------------------------------------------


def test_session_is_reentrant_and_per_thread(store: Store) -> None:
    assert store.db.is_closed()
    with store.session() as outer:
        with store.session() as inner:
            assert inner is outer
        declare(store)  # a Store method's own session nests inside ours
        assert not store.db.is_closed()
        other_thread = run_together(1, lambda _: _session_connection(store))[0]
        assert other_thread is not outer
    # PostgreSQL returns the connection to the pool; SQLite keeps the thread's connection,
    # because closing the last one checkpoints the WAL on every short write.
    assert store.db.is_closed() == (store.backend == "postgres")


def _session_connection(store: Store) -> object:
    with store.session() as conn:
        return conn


def test_atomic_rolls_back_on_error(store: Store) -> None:
    incident, _ = declare(store)
    with pytest.raises(RuntimeError), store.atomic():
        store.add_event(incident.id, "note", None, {}, T0)
        store.save_artifact(incident.id, "slack_channel", "C1", None, T0)
        raise RuntimeError("boom")
    assert store.events(incident.id) == []
    assert store.get_artifact(incident.id, "slack_channel") is None
    assert store.db.is_closed() == (store.backend == "postgres")


@pytest.mark.timeout(60)
def test_many_threads_share_a_bounded_pool(store: Store) -> None:
    incident, _ = declare(store)

    def work(index: int) -> int:
        for step in range(5):
            store.add_event(incident.id, "note", None, {"i": index, "step": step}, T0)
        return len(store.events(incident.id))

    run_together(30, work)
    assert len(store.events(incident.id)) == 150
    if isinstance(store.db, PooledPostgresqlDatabase):
        assert len(store.db._connections) <= QUERY_POOL_SIZE  # idle, back in the pool
        assert store.db._in_use == {}


# -- migrations ----------------------------------------------------------------------------


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == []
    assert store.migrate() == []
    with store.session():
        assert migrations.current_version(store.db) == migrations.MIGRATIONS[-1].version
        rows = list(migrations.SchemaVersion.select().order_by(migrations.SchemaVersion.version))
        assert [(row.version, row.name) for row in rows] == [
            (m.version, m.name) for m in migrations.MIGRATIONS
        ]
        assert rows[0].applied_at is not None
        for table in ("incident", "artifact", "artifact_attempt", "incident_event"):
            assert store.db.table_exists(table)


def test_migrate_fresh_database(empty_db_url: str) -> None:
    store = open_store(empty_db_url, migrate=False)
    try:
        with store.session():
            assert migrations.current_version(store.db) == 0
            assert not store.db.table_exists("incident")
        assert store.migrate() == [m.version for m in migrations.MIGRATIONS]
        assert store.migrate() == []
        assert declare(store)[0].number == 1
    finally:
        store.close()


@pytest.mark.timeout(90)
def test_concurrent_migrations_in_three_processes(empty_db_url: str) -> None:
    with Children() as children:
        for _ in range(3):
            children.start("migrate", empty_db_url)
        children.all_ready()
        children.go()
        applied = [json.loads(child.expect("result ", timeout=60)) for child in children.started]
        for child in children.started:
            child.finish()
    assert sorted(applied) == [[], [], [m.version for m in migrations.MIGRATIONS]]
    with open_store(empty_db_url, migrate=False) as store:
        assert store.migrate() == []
        assert declare(store)[0].number == 1


def test_apply_needs_the_bound_database(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        other = peewee.SqliteDatabase(os.fspath(tmp_path / "b.db"))
        with pytest.raises(ValueError, match="bound to another database"):
            migrations.apply(other)
        assert store.migrate() == []


def test_a_repeated_declare_within_the_window_returns_the_first_even_when_concurrent(
    store: Store,
) -> None:
    since = T0 - timedelta(minutes=2)
    results = run_together(
        8,
        lambda i: declare(
            store,
            title="checkout IS down" if i % 2 else "Checkout is down",
            request_key=f"command:{i}",
            repeat_since=since,
        ),
    )
    assert sorted(created for _incident, created in results) == [False] * 7 + [True]
    assert {incident.number for incident, _created in results} == {1}
    # Older than the window, another reporter, or another title: a new incident.
    later = T0 + timedelta(minutes=3)
    assert declare(store, request_key="a", now=later, repeat_since=later - timedelta(minutes=2))[1]
    assert declare(store, request_key="b", reporter="U_OTHER", repeat_since=since)[1]
    assert declare(store, request_key="c", title="Checkout is slow", repeat_since=since)[1]
