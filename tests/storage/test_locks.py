"""store.lock(): exclusion across threads and processes, timeouts, crash release, budget."""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from storage import LockTimeout, Store
from storage.db import LOCK_POOL_SIZE, MAX_PG_CONNECTIONS, QUERY_POOL_SIZE
from storage.locks import THREAD_LOCKS, lock_key
from tests.helpers.children import Child, Children

#: Slack on top of a timeout for a noisy 2-core machine.
SLACK = 1.5
T0 = datetime(2024, 5, 1, 9, 30)


# Run a test on one backend only (overrides the fixtures' parametrization).
only_postgres = pytest.mark.parametrize(
    "empty_db_url",
    [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
only_sqlite = pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)


def pg_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run a query on a separate connection (the observer is not one of ours)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


OUR_CONNECTIONS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


class Holder:
    """A thread that holds something until told to let go."""

    def __init__(self, enter: Callable[[], AbstractContextManager[Any]]) -> None:
        self.entered = threading.Event()
        self.leave = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(enter,), daemon=True)
        self._thread.start()

    def _run(self, enter: Callable[[], AbstractContextManager[Any]]) -> None:
        try:
            with enter():
                self.entered.set()
                self.leave.wait(timeout=60)
        except BaseException as exc:  # reported by wait_entered()/stop()
            self.error = exc
            self.entered.set()

    def wait_entered(self, timeout: float = 20) -> None:
        assert self.entered.wait(timeout), "holder never got in"
        assert self.error is None, self.error

    def stop(self) -> None:
        self.leave.set()
        self._thread.join(timeout=20)
        assert not self._thread.is_alive()
        assert self.error is None, self.error


@contextmanager
def holders(*enters: Callable[[], AbstractContextManager[Any]]) -> Iterator[list[Holder]]:
    started = [Holder(enter) for enter in enters]
    try:
        for holder in started:
            holder.wait_entered()
        yield started
    finally:
        for holder in started:
            holder.stop()


def held_by_child(children: Children, url: str, name: str) -> Child:
    child = children.start("hold", url, name)
    child.expect("locked")
    return child


def child_try_lock(url: str, name: str, timeout: float) -> dict[str, Any]:
    with Children() as children:
        child = children.start("try-lock", url, name, "--timeout", str(timeout))
        outcome: dict[str, Any] = json.loads(child.expect("result "))
        child.finish()
    return outcome


# -- basics --------------------------------------------------------------------------------


def test_lock_key_is_a_stable_signed_64_bit_hash() -> None:
    assert lock_key("notion_postmortem:42") == lock_key("notion_postmortem:42")
    assert lock_key("notion_postmortem:42") != lock_key("notion_postmortem:43")
    assert lock_key("firebreak") == -3316928858935320496  # never changes across releases
    keys = [lock_key(f"k{i}") for i in range(1000)]
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert any(key < 0 for key in keys)


def test_lock_timeout_carries_name_and_timeout() -> None:
    error = LockTimeout("notion_postmortem:7", 2.5)
    assert (error.name, error.timeout) == ("notion_postmortem:7", 2.5)
    assert str(error) == "could not acquire lock 'notion_postmortem:7' within 2.5 s"
    assert isinstance(error, Exception)
    copy = pickle.loads(pickle.dumps(error))  # crosses process boundaries intact
    assert (copy.name, copy.timeout, str(copy)) == (error.name, error.timeout, str(error))


def test_lock_is_released_and_reacquired(store: Store) -> None:
    for _ in range(3):
        with store.lock("cycle", timeout=1):
            pass
    assert len(THREAD_LOCKS) == 0


def test_lock_is_not_reentrant(store: Store) -> None:
    with store.lock("outer", timeout=1), pytest.raises(LockTimeout), store.lock("outer", 0.1):
        pytest.fail("took a lock this thread already holds")


# -- mutual exclusion ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_threads_exclude_each_other(store: Store) -> None:
    counter = {"value": 0, "inside": 0, "max_inside": 0}
    guard = threading.Lock()
    barrier = threading.Barrier(8, timeout=30)

    def work(_: int) -> None:
        barrier.wait()
        for _ in range(15):
            with store.lock("counter", timeout=30):
                with guard:
                    counter["inside"] += 1
                    counter["max_inside"] = max(counter["max_inside"], counter["inside"])
                value = counter["value"]
                time.sleep(0.001)  # yield inside the critical section
                counter["value"] = value + 1
                with guard:
                    counter["inside"] -= 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    assert counter["value"] == 8 * 15
    assert counter["max_inside"] == 1


@pytest.mark.timeout(90)
def test_processes_exclude_each_other(store_url: str, tmp_path: Path) -> None:
    counter, journal = tmp_path / "counter", tmp_path / "journal"
    counter.write_text("0")
    with Children() as children:
        for _ in range(3):
            children.start(
                "increment",
                store_url,
                "shared-counter",
                "--counter",
                str(counter),
                "--journal",
                str(journal),
                "--iterations",
                "6",
            )
        children.all_ready()
        children.go()
        for child in children.started:
            assert child.expect("result ", timeout=60) == '"done"'
            child.finish()
    assert counter.read_text() == "18"
    lines = journal.read_text().splitlines()
    assert len(lines) == 36
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter ")
        assert leave == enter.replace("enter", "exit")  # nobody else got in between
    assert len({line.split()[1] for line in lines}) == 3


def test_different_names_do_not_block_each_other(store: Store, store_url: str) -> None:
    with holders(lambda: store.lock("a", timeout=5)):
        started = time.monotonic()
        with store.lock("b", timeout=0.5):
            assert time.monotonic() - started < 0.5
    with Children() as children:
        child = held_by_child(children, store_url, "c")
        with store.lock("d", timeout=1):
            pass
        child.send("done")
        child.finish()


# -- timeouts ------------------------------------------------------------------------------


def test_timeout_while_another_thread_holds(store: Store) -> None:
    with holders(lambda: store.lock("busy", timeout=5)):
        started = time.monotonic()
        with pytest.raises(LockTimeout) as raised, store.lock("busy", timeout=0.3):
            pytest.fail("acquired a held lock")
        elapsed = time.monotonic() - started
    assert (raised.value.name, raised.value.timeout) == ("busy", 0.3)
    assert 0.3 <= elapsed < 0.3 + SLACK
    with store.lock("busy", timeout=1):
        pass


@pytest.mark.timeout(60)
def test_timeout_while_another_process_holds(store: Store, store_url: str) -> None:
    with Children() as children:
        child = held_by_child(children, store_url, "busy")
        started = time.monotonic()
        with pytest.raises(LockTimeout), store.lock("busy", timeout=0.5):
            pytest.fail("acquired a lock another process holds")
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 0.5 + SLACK
        child.send("release")
        assert child.expect("result ") == '"released"'
        child.finish()
    with store.lock("busy", timeout=1):
        pass


def test_zero_timeout_still_tries_once(store: Store) -> None:
    with store.lock("instant", timeout=0):
        pass
    with (
        holders(lambda: store.lock("instant", timeout=5)),
        pytest.raises(LockTimeout),
        store.lock("instant", timeout=0),
    ):
        pytest.fail("took a held lock")


# -- release -------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_lock_is_released_when_the_holder_is_killed(store: Store, store_url: str) -> None:
    with Children() as children:
        child = held_by_child(children, store_url, "crash")
        child.kill()
        started = time.monotonic()
        with store.lock("crash", timeout=1.0):
            assert time.monotonic() - started < 1.0


@pytest.mark.timeout(60)
def test_nothing_is_left_held_after_an_exception(store: Store, store_url: str) -> None:
    # More often than there are lock connections, so a leaked one would show.
    for _ in range(LOCK_POOL_SIZE + 1):
        with pytest.raises(RuntimeError, match="inside"), store.lock("fragile", timeout=1):
            raise RuntimeError("inside the critical section")

    # Another process first: a second lock in this process would mask a leaked file
    # lock, because POSIX record locks belong to the process.
    assert child_try_lock(store_url, "fragile", 1.0)["outcome"] == "acquired"
    if store.backend == "postgres":
        # Only this test's database: other test runs may hold advisory locks elsewhere.
        advisory = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert pg_rows(store_url, advisory) == [(0,)]
        stuck = OUR_CONNECTIONS + " AND state LIKE 'idle in transaction%'"
        assert pg_rows(store_url, stuck) == [(0,)]
    assert len(THREAD_LOCKS) == 0
    assert run_in_thread(lambda: _acquire(store, "fragile", 0.5)) == "acquired"


def _acquire(store: Store, name: str, timeout: float) -> str:
    with store.lock(name, timeout=timeout):
        return "acquired"


def run_in_thread(work: Callable[[], Any]) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result(timeout=30)


# -- backend specifics ---------------------------------------------------------------


@only_sqlite
def test_sqlite_uses_one_lock_file_per_name(store: Store) -> None:
    lock_dir = Path(f"{store.db.database}.locks")
    before = set(lock_dir.glob("*.lock"))
    with store.lock("x", timeout=1), store.lock("y", timeout=1):
        pass
    with store.lock("x", timeout=1):
        pass
    assert len(set(lock_dir.glob("*.lock")) - before) == 2


@only_postgres
def test_lock_is_held_outside_any_transaction(store: Store, store_url: str) -> None:
    with store.lock("no-transaction", timeout=1):
        rows = pg_rows(
            store_url,
            """SELECT a.state, a.application_name FROM pg_locks l
               JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted
                 AND a.datname = current_database()""",
        )
    assert rows == [("idle", "firebreak-lock")]


@only_postgres
@pytest.mark.timeout(60)
def test_waiting_for_a_lock_connection_counts_against_the_timeout(store: Store) -> None:
    names = [f"pool-{i}" for i in range(LOCK_POOL_SIZE)]
    with holders(*(_lock_factory(store, name) for name in names)) as held:
        started = time.monotonic()
        with pytest.raises(LockTimeout), store.lock("one-too-many", timeout=0.3):
            pytest.fail("more lock connections than the budget")
        assert 0.3 <= time.monotonic() - started < 0.3 + SLACK
        held[0].stop()
        with store.lock("one-too-many", timeout=5):
            pass


@only_postgres
@pytest.mark.timeout(60)
def test_connection_budget_is_exactly_twenty(store: Store, store_url: str) -> None:
    locks = [_lock_factory(store, f"budget-{i}") for i in range(LOCK_POOL_SIZE)]
    sessions = [store.session for _ in range(QUERY_POOL_SIZE)]
    with holders(*locks, *sessions) as held:
        assert pg_rows(store_url, OUR_CONNECTIONS) == [(MAX_PG_CONNECTIONS,)]
        late = Holder(store.session)  # the pool is empty: this one must wait, not fail
        assert not late.entered.wait(0.3)
        held[-1].stop()
        late.wait_entered()
        late.stop()
        assert pg_rows(store_url, OUR_CONNECTIONS) == [(MAX_PG_CONNECTIONS,)]


@only_postgres
@pytest.mark.timeout(90)
def test_thirty_threads_never_exceed_the_budget(store: Store, store_url: str) -> None:
    incident, _ = store.create_incident(
        title="budget",
        severity="P3",
        reporter="U1",
        commander="U2",
        private=False,
        request_key=None,
        number_start=1,
        now=T0,
    )
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        conn = psycopg2.connect(store_url)
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(OUR_CONNECTIONS)
                    (count,) = cur.fetchone() or (0,)
                    peak[0] = max(peak[0], count)
                    stop.wait(0.005)
        finally:
            conn.close()

    barrier = threading.Barrier(30, timeout=30)

    def work(index: int) -> None:
        barrier.wait()
        for round_ in range(3):
            with store.lock(f"thread-{index}-{round_}", timeout=30):
                store.add_event(incident.id, "note", None, {"i": index}, T0)
                time.sleep(0.01)  # hold it a little, to overlap with the others
            store.events(incident.id)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            list(pool.map(work, range(30)))
    finally:
        stop.set()
        sampler.join(timeout=10)
    assert len(store.events(incident.id)) == 90
    assert 0 < peak[0] <= MAX_PG_CONNECTIONS


@only_postgres
def test_a_broken_idle_lock_connection_is_replaced(store: Store, store_url: str) -> None:
    with store.lock("before", timeout=1):
        pass
    terminated = pg_rows(
        store_url,
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'firebreak-lock'""",
    )
    assert terminated == [(True,)]
    with store.lock("after", timeout=5):
        pass


def _lock_factory(store: Store, name: str) -> Callable[[], AbstractContextManager[None]]:
    return lambda: store.lock(name, timeout=10)


@pytest.mark.timeout(60)
def test_a_try_lock_waits_for_a_connection_instead_of_calling_a_free_lock_taken(
    store: Store,
) -> None:
    """With every lock connection holding some other lock, a try-lock (timeout 0) of a
    free name must not answer "taken": that made a dump say "a dump is running" while
    none ran, and its request waited for the reconciler. It waits for a connection."""
    release = threading.Event()
    holding = threading.Barrier(LOCK_POOL_SIZE + 1)

    def hold(index: int) -> None:
        with store.lock(f"busy:{index}", timeout=10):
            holding.wait(10)
            release.wait(10)

    with ThreadPoolExecutor(LOCK_POOL_SIZE) as pool:
        held = [pool.submit(hold, i) for i in range(LOCK_POOL_SIZE)]
        holding.wait(10)  # every connection holds a lock now
        threading.Timer(0.3, release.set).start()
        with store.lock("free", timeout=0):
            pass  # taken once a connection is back, not refused
        for future in held:
            future.result(10)
