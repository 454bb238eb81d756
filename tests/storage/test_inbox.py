"""The inbox table: group-committed puts, one winner per claim, leases that outlive a kill.

On SQLite and PostgreSQL, with real threads and real processes (`tests.helpers.children`).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest

from storage import Store
from storage.inbox import MAX_ATTEMPTS
from tests.helpers.children import Children
from tests.helpers.storage_workers import NOW

LEASE = 10.0


def put(store: Store, key: str, owner: str = "me", now: datetime = NOW) -> tuple[int, bool]:
    row, fresh = store.inbox.put(
        key=key, kind="command", payload={"key": key}, now=now, owner=owner, lease_seconds=LEASE
    )
    return row.id, fresh


def test_a_put_is_committed_claimed_and_read_back(store: Store) -> None:
    row_id, fresh = put(store, "command:T1")
    assert fresh
    row = store.inbox.get(row_id)
    assert row is not None
    assert (row.key, row.kind, row.payload, row.owner) == (
        "command:T1",
        "command",
        {"key": "command:T1"},
        "me",
    )
    assert row.lease_until == NOW + timedelta(seconds=LEASE)
    assert (row.attempts, row.done_at) == (1, None)
    assert store.inbox.depth(NOW + timedelta(seconds=3)) == (1, 3.0)


def test_the_same_key_twice_is_one_row_and_the_second_is_not_fresh(store: Store) -> None:
    first, fresh = put(store, "command:T1")
    second, again = put(store, "command:T1", owner="other")
    assert (first, fresh) == (second, True) or (second, again) == (first, False)
    assert not again
    row = store.inbox.get(first)
    assert row is not None and row.owner == "me"


def test_concurrent_puts_share_commits(store: Store) -> None:
    groups: list[int] = []
    store.inbox.committed = groups.append
    go = threading.Event()
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        go.wait(10)
        outcome = put(store, f"command:T{index}")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(30)
    assert len({row_id for row_id, _ in results}) == 50
    assert all(fresh for _, fresh in results)
    assert sum(groups) == 50
    assert len(groups) < 50  # some commits carried several rows
    assert store.inbox.depth(NOW)[0] == 50


def test_a_live_lease_is_not_due_an_expired_one_is_claimed_once(store: Store) -> None:
    row_id, _ = put(store, "command:T1")
    assert store.inbox.due(NOW + timedelta(seconds=LEASE - 1)) == []
    assert store.inbox.claim(row_id, "other", NOW + timedelta(seconds=1), LEASE) is None
    later = NOW + timedelta(seconds=LEASE + 1)
    assert [r.id for r in store.inbox.due(later)] == [row_id]
    claimed = store.inbox.claim(row_id, "other", later, LEASE)
    assert claimed is not None and (claimed.owner, claimed.attempts) == ("other", 2)
    assert store.inbox.claim(row_id, "third", later, LEASE) is None  # "other" holds it now


def test_renewing_keeps_a_row_and_finishing_ends_it(store: Store) -> None:
    row_id, _ = put(store, "command:T1")
    renewed_at = NOW + timedelta(seconds=LEASE - 1)
    assert store.inbox.renew("me", renewed_at, LEASE) == 1
    assert store.inbox.due(NOW + timedelta(seconds=LEASE + 1)) == []
    store.inbox.finish(row_id, renewed_at)
    assert store.inbox.due(NOW + timedelta(days=1)) == []
    assert store.inbox.depth(NOW) == (0, 0.0)
    assert store.inbox.renew("me", renewed_at, LEASE) == 0


def test_a_row_is_given_up_after_max_attempts(store: Store) -> None:
    row_id, _ = put(store, "command:T1")
    at = NOW
    for attempt in range(2, MAX_ATTEMPTS + 1):
        at += timedelta(seconds=LEASE + 1)
        claimed = store.inbox.claim(row_id, f"p{attempt}", at, LEASE)
        assert claimed is not None and claimed.attempts == attempt
    at += timedelta(seconds=LEASE + 1)
    assert store.inbox.claim(row_id, "last", at, LEASE) is None
    assert store.inbox.due(at) == []


@pytest.mark.timeout(90)
def test_puts_from_processes_and_threads_store_each_key_once(store: Store, store_url: str) -> None:
    with Children() as children:
        for index in range(3):
            children.start(
                "inbox-put",
                store_url,
                "--threads",
                "20",
                "--prefix",
                "same",
                "--distinct",
                "15",
                "--owner",
                f"p{index}",
            )
        children.all_ready()
        children.go()
        fresh: list[str] = []
        for child in children.started:
            fresh += json.loads(child.expect("result ", timeout=60))
            child.finish()
    assert sorted(fresh) == sorted(f"command:same-{i}" for i in range(15))
    assert store.inbox.depth(NOW)[0] == 15


@pytest.mark.timeout(90)
def test_processes_claiming_at_once_take_each_due_row_once(store: Store, store_url: str) -> None:
    rows = [put(store, f"command:T{i}", owner="dead")[0] for i in range(30)]
    later = (NOW + timedelta(seconds=LEASE + 1)).isoformat()
    with Children() as children:
        for index in range(3):
            children.start(
                "inbox-claim", store_url, "--threads", "6", "--owner", f"p{index}", "--now", later
            )
        children.all_ready()
        children.go()
        won: list[int] = []
        for child in children.started:
            won += json.loads(child.expect("result ", timeout=60))
            child.finish()
    assert sorted(won) == sorted(rows)  # every row once, none twice


@pytest.mark.timeout(60)
def test_the_row_of_a_killed_process_is_claimed_after_its_lease(
    store: Store, store_url: str
) -> None:
    with Children() as children:
        child = children.start("inbox-hold", store_url, "--key", "command:T1", "--owner", "dead")
        row_id = int(child.expect("stored "))
        child.kill()
    assert store.inbox.due(NOW + timedelta(seconds=LEASE - 1)) == []
    later = NOW + timedelta(seconds=LEASE + 1)
    claimed = store.inbox.claim(row_id, "survivor", later, LEASE)
    assert claimed is not None and claimed.payload == {}
