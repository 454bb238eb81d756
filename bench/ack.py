"""Ack latency of `/incident declare`: envelope sent → ack received, N concurrent declares.

Runs the real bot in-process over a real Socket Mode websocket against FakeSlack and
FakeNotion (zero added latency) and prints the median and p99. Target: p99 < 100 ms.

    .venv/bin/python -m bench.ack [--declares 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bolt_app.fakes.harness import running_bot


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declares", type=int, default=50)
    parser.add_argument("--database-url", default=None,
                        help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        with running_bot(url) as bot:
            warm = bot.command("help")  # the first envelope after connect pays a set-up cost
            bot.slack.wait_for_ack(warm, timeout=10)
            envelopes = [bot.command(f"declare bench incident {i}") for i in range(args.declares)]
            latencies = [bot.slack.wait_for_ack(e, timeout=30).latency_s * 1000 for e in envelopes]
            bot.wait_idle(timeout=120)
            channels = sum(1 for c in bot.slack.channels() if c["name"].startswith("inc-"))
    print(f"declares: {args.declares} sent at once, {channels} channels created")
    print(f"ack latency median: {statistics.median(latencies):.1f} ms")
    print(f"ack latency p99:    {percentile(latencies, 0.99):.1f} ms  (target < 100 ms)")
    print(f"ack latency max:    {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
