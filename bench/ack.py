"""Ack latency of `/incident declare`: envelope sent → ack received, N concurrent declares.

Sends N declares at once over a real Socket Mode websocket and prints the median and
p99 of the time from each envelope leaving FakeSlack to its ack arriving back.
Target: p99 < 100 ms (Slack allows 3 s).

By default the bot runs in this process (the in-process harness), sharing the GIL with
FakeSlack and FakeNotion, which inflates the figures. `--subprocess` runs the bot as
`python -m bolt_app`, as in production, with only the fakes in this process.

    .venv/bin/python -m bench.ack [--declares 50] [--subprocess] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment, running_bot


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def in_process(tmp: str, database_url: str | None) -> Iterator[FakeSlack]:
    with running_bot(database_url or f"sqlite:///{Path(tmp) / 'bench.db'}") as bot:
        yield bot.slack


@contextmanager
def as_subprocess(tmp: str, database_url: str | None) -> Iterator[FakeSlack]:
    with FakeSlack() as slack, FakeNotion() as notion:
        database_id, _ = notion.add_database()
        env = bot_environment(
            slack, notion.base_url, database_id, database_url or "sqlite:///bench.db"
        )
        env.update(PATH=os.environ.get("PATH", ""), PYTHONPATH=os.getcwd())
        bot = subprocess.Popen(
            [sys.executable, "-m", "bolt_app"],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            slack.wait_connected(1, timeout=30)
            yield slack
        finally:
            bot.terminate()
            bot.wait(timeout=10)


def measure(slack: FakeSlack, declares: int) -> list[float]:
    slack.wait_for_ack(slack.slash_command("help"), timeout=10)  # first envelope warms up
    envelopes = [slack.slash_command(f"declare bench incident {i}") for i in range(declares)]
    latencies = [slack.wait_for_ack(e, timeout=30).latency_s * 1000 for e in envelopes]
    slack.wait_for(
        lambda: sum(1 for c in slack.channels() if c["name"].startswith("inc-")) == declares,
        timeout=120,
    )
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declares", type=int, default=50)
    parser.add_argument(
        "--subprocess",
        action="store_true",
        help="run the bot as python -m bolt_app (production-like)",
    )
    parser.add_argument(
        "--database-url",
        help="an empty database to use, e.g. postgresql://postgres@127.0.0.1/bench "
        "(default: a new SQLite file)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        harness = as_subprocess if args.subprocess else in_process
        with harness(tmp, args.database_url) as slack:
            latencies = measure(slack, args.declares)
    where = "bot as a subprocess" if args.subprocess else "bot in-process with the fakes"
    store = "PostgreSQL" if (args.database_url or "").startswith("postgres") else "SQLite"
    print(f"declares: {args.declares} sent at once ({where}, {store}), all channels created")
    print(f"ack latency p50: {statistics.median(latencies):.1f} ms")
    print(f"ack latency p99: {percentile(latencies, 0.99):.1f} ms  (target < 100 ms)")
    print(f"ack latency max: {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
