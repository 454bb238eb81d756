"""Declare → bookmark time against the critical path, with slow fakes.

FakeSlack adds 100 ms to every call and FakeNotion 300 ms. The critical path of a
declaration is `max(conversations.create, pages.create) + bookmarks.add` = 400 ms: the
channel and the page are made in parallel and the bookmark needs both. Everything else
(invite, topic, intro) must stay off that path. Target: median ratio ≤ 1.2.

    .venv/bin/python -m bench.declare [--declares 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bolt_app.devkit.harness import Bot, running_bot

SLACK_LATENCY = 0.1
NOTION_LATENCY = 0.3


def declare_to_bookmark(bot: Bot, number: int) -> float:
    """Seconds from pushing the envelope to the bookmark existing in the channel."""
    started = time.perf_counter()
    bot.command(f"declare bench incident {number}")

    def bookmarked() -> bool:
        incident = bot.services.store.incident_by_number(number)
        return bool(
            incident and incident.channel_id and bot.slack.bookmarks(str(incident.channel_id))
        )

    bot.slack.wait_for(bookmarked, timeout=30, interval=0.002)
    elapsed = time.perf_counter() - started
    bot.wait_idle(timeout=30)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declares", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_bot(
            f"sqlite:///{Path(tmp) / 'bench.db'}", RECONCILE_INTERVAL_SECONDS="3600"
        ) as bot,
    ):
        bot.services.notion.schema()  # resolved once per process, at start-up
        bot.services.slack.verify()
        bot.slack.set_latency(SLACK_LATENCY)
        bot.notion.set_latency(NOTION_LATENCY)
        times = [declare_to_bookmark(bot, n) for n in range(1, args.declares + 1)]
    bound = max(SLACK_LATENCY, NOTION_LATENCY) + SLACK_LATENCY
    median = statistics.median(times)
    print(f"declares: {args.declares}, one after another")
    print(
        f"declare → bookmark median: {median * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
    )
    print(
        f"critical path: max(conversations.create, pages.create) + bookmarks.add "
        f"= {bound * 1000:.0f} ms"
    )
    print(f"ratio: {median / bound:.2f}  (target ≤ 1.2)")


if __name__ == "__main__":
    main()
