"""Child-process entry points for the storage tests.

Run as ``python -m tests.helpers.storage_workers COMMAND URL ...`` from the repository
root.  The line protocol on stdout/stdin (see :mod:`tests.helpers.children`):

* ``ready``: the worker is set up and waits for a ``go`` line on stdin, so that several
  processes start their work at the same moment;
* ``locked``: the worker holds the lock (``hold``), until stdin says anything or closes;
* ``result <json>``: what the worker did, as its last line.

Errors are not caught: the traceback goes to stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from storage import LockTimeout, Store, open_store

NOW = datetime(2024, 1, 1, 12, 0, 0)
#: How long a worker inside a critical section dawdles, to widen any race window.
CRITICAL_SECTION_DELAY = 0.01


def say(line: str) -> None:
    print(line, flush=True)


def result(value: Any) -> None:
    say("result " + json.dumps(value))


def ready_then_wait_for_go() -> None:
    say("ready")
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected 'go' on stdin, got {line!r}")


def create(store: Store, args: argparse.Namespace) -> None:
    """Many threads declare at once; report the numbers they got."""
    go = threading.Event()

    def declare(index: int) -> int:
        if not go.wait(timeout=30):
            raise TimeoutError("never told to go")
        incident, created = store.create_incident(
            title=f"pid {os.getpid()} thread {index}",
            severity="P3",
            reporter="U_REPORTER",
            commander="U_COMMANDER",
            private=False,
            request_key=None,
            number_start=args.number_start,
            now=NOW,
        )
        assert created
        number: int = incident.number
        return number

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        futures = [pool.submit(declare, index) for index in range(args.threads)]
        ready_then_wait_for_go()
        go.set()
        numbers = [future.result() for future in futures]
    result(sorted(numbers))


def hold(store: Store, args: argparse.Namespace) -> None:
    """Take a lock and keep it until the parent says anything (or kills us)."""
    with store.lock(args.name, timeout=args.timeout):
        say("locked")
        sys.stdin.readline()
    result("released")


def try_lock(store: Store, args: argparse.Namespace) -> None:
    """Try a lock once; report whether it was acquired and how long that took."""
    started = time.monotonic()
    try:
        with store.lock(args.name, timeout=args.timeout):
            outcome = "acquired"
    except LockTimeout:
        outcome = "timeout"
    result({"outcome": outcome, "elapsed": time.monotonic() - started})


def increment(store: Store, args: argparse.Namespace) -> None:
    """Read-delay-write a counter file under the lock, logging entry and exit."""
    counter, journal = Path(args.counter), Path(args.journal)
    ready_then_wait_for_go()
    for _ in range(args.iterations):
        with store.lock(args.name, timeout=30):
            with journal.open("a") as log:
                log.write(f"enter {os.getpid()}\n")
            value = int(counter.read_text() or "0")
            time.sleep(CRITICAL_SECTION_DELAY)
            counter.write_text(str(value + 1))
            with journal.open("a") as log:
                log.write(f"exit {os.getpid()}\n")
    result("done")


def migrate(url: str) -> None:
    """Open and migrate a (new) database at the same moment as the other workers."""
    ready_then_wait_for_go()
    store = open_store(url, migrate=False)
    try:
        result(store.migrate())
    finally:
        store.close()


def inbox_put(store: Store, args: argparse.Namespace) -> None:
    """Many threads put inbox rows at once; report the keys stored fresh."""
    go = threading.Event()

    def put(index: int) -> str | None:
        if not go.wait(timeout=30):
            raise TimeoutError("never told to go")
        key = f"command:{args.prefix}-{index % args.distinct}"
        _row, fresh = store.inbox.put(
            key=key,
            kind="command",
            payload={"i": index},
            now=NOW,
            owner=args.owner,
            lease_seconds=10,
        )
        return key if fresh else None

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        futures = [pool.submit(put, index) for index in range(args.threads)]
        ready_then_wait_for_go()
        go.set()
        fresh = [key for future in futures if (key := future.result()) is not None]
    result(sorted(fresh))


def inbox_claim(store: Store, args: argparse.Namespace) -> None:
    """Many threads claim every due row at once; report the row ids this process won."""
    go = threading.Event()
    later = datetime.fromisoformat(args.now)

    def claim(_index: int) -> list[int]:
        if not go.wait(timeout=30):
            raise TimeoutError("never told to go")
        won = []
        for row in store.inbox.due(later, limit=1000):
            if store.inbox.claim(row.id, args.owner, later, lease_seconds=60) is not None:
                won.append(row.id)
        return won

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        futures = [pool.submit(claim, index) for index in range(args.threads)]
        ready_then_wait_for_go()
        go.set()
        won = [row_id for future in futures for row_id in future.result()]
    result(sorted(won))


def inbox_hold(store: Store, args: argparse.Namespace) -> None:
    """Put one row (claimed by this process), say so, and wait to be killed."""
    row, _fresh = store.inbox.put(
        key=args.key, kind="command", payload={}, now=NOW, owner=args.owner, lease_seconds=10
    )
    say(f"stored {row.id}")
    sys.stdin.readline()


COMMANDS: dict[str, Callable[[Store, argparse.Namespace], None]] = {
    "inbox-put": inbox_put,
    "inbox-claim": inbox_claim,
    "inbox-hold": inbox_hold,
    "create": create,
    "hold": hold,
    "try-lock": try_lock,
    "increment": increment,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="storage_workers")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("create")
    cmd.add_argument("url")
    cmd.add_argument("--threads", type=int, required=True)
    cmd.add_argument("--number-start", type=int, default=1)
    cmd = commands.add_parser("hold")
    cmd.add_argument("url")
    cmd.add_argument("name")
    cmd.add_argument("--timeout", type=float, default=10.0)
    cmd = commands.add_parser("try-lock")
    cmd.add_argument("url")
    cmd.add_argument("name")
    cmd.add_argument("--timeout", type=float, required=True)
    cmd = commands.add_parser("increment")
    cmd.add_argument("url")
    cmd.add_argument("name")
    cmd.add_argument("--counter", required=True)
    cmd.add_argument("--journal", required=True)
    cmd.add_argument("--iterations", type=int, required=True)
    cmd = commands.add_parser("inbox-put")
    cmd.add_argument("url")
    cmd.add_argument("--threads", type=int, required=True)
    cmd.add_argument("--prefix", required=True)
    cmd.add_argument("--distinct", type=int, required=True)
    cmd.add_argument("--owner", required=True)
    cmd = commands.add_parser("inbox-claim")
    cmd.add_argument("url")
    cmd.add_argument("--threads", type=int, required=True)
    cmd.add_argument("--owner", required=True)
    cmd.add_argument("--now", required=True)
    cmd = commands.add_parser("inbox-hold")
    cmd.add_argument("url")
    cmd.add_argument("--key", required=True)
    cmd.add_argument("--owner", required=True)
    cmd = commands.add_parser("migrate")
    cmd.add_argument("url")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.command == "migrate":
        migrate(args.url)
        return
    store = open_store(args.url, migrate=False)
    try:
        COMMANDS[args.command](store, args)
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
