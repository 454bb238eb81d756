"""The live transcript under load: message events → visible in Notion, and what it costs.

1,000 messages are posted as Slack events at about 50 a second over 100 threads; 10% are
then edited and 2% deleted. FakeNotion adds 300 ms to every call and allows 3 requests
a second. The bot runs in this process with the fakes (so its RSS includes theirs).
Prints, for the live sync alone (no dump is triggered):

* event → visible in the page, p50 and p99 (target p99 ≤ TRANSCRIPT_SYNC_SECONDS + 5 s);
* Notion writes, and blocks per 1,000 messages (target ≤ 100);
* Slack history and replies calls after the first sync's gap fill (target 0);
* peak RSS.

    .venv/bin/python -m bench.live [--messages 1000] [--sync-seconds 10] [--notion-rps 2.5]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import threading
import time
from pathlib import Path

from bolt_app.devkit.fake_notion import FakeNotion
from bolt_app.devkit.harness import Bot, running_bot
from bolt_app.formats.template import TRANSCRIPT_HEADING
from bolt_app.transcript.render import linked_ts_all

NOTION_LATENCY = 0.3
NOTION_PER_SECOND = 3
RATE = 50.0  # messages a second
THREADS = 100
READS = ("conversations.history", "conversations.replies")


def visible(bot: Bot) -> set[str]:
    """Every message ts the page's transcript shows, replies included."""
    pages = bot.notion.pages(bot.data_source_id)
    if not pages:
        return set()
    tree = bot.notion.children_tree(str(pages[0]["id"]))
    heading = next((b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING), None)
    found: set[str] = set()
    for block in (heading or {}).get("children") or []:
        found.update(linked_ts_all(block))
        for child in block.get("children") or []:
            found.update(linked_ts_all(child))
    return found


def layout(bot: Bot) -> tuple[int, int, int]:
    """Top-level transcript blocks, reply paragraphs, and threads with replies."""
    pages = bot.notion.pages(bot.data_source_id)
    tree = bot.notion.children_tree(str(pages[0]["id"]))
    heading = next(b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING)
    blocks = heading.get("children") or []
    with_replies = [b for b in blocks if b.get("children")]
    return len(blocks), sum(len(b["children"]) for b in with_replies), len(with_replies)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sync-seconds", type=float, default=10.0)
    parser.add_argument("--notion-rps", type=float, default=2.5, help="TRANSCRIPT_NOTION_RPS")
    args = parser.parse_args()
    rng = random.Random(7)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_bot(
            f"sqlite:///{Path(tmp) / 'live.db'}",
            TRANSCRIPT_SYNC_SECONDS=str(args.sync_seconds),
            TRANSCRIPT_NOTION_RPS=str(args.notion_rps),
            RECONCILE_INTERVAL_SECONDS="3600",
        ) as bot,
    ):
        bot.slack.message_events = True
        bot.wait_reply(bot.command("declare Live bench"), "Declared")
        bot.wait_idle()
        channel = str(bot.incident(1).channel_id)
        first = bot.slack.post(channel, "U0ALICE", "the first message")
        bot.slack.wait_for(lambda: first in visible(bot), timeout=60)
        bot.notion.set_latency(NOTION_LATENCY)
        bot.notion.rate_limit(NOTION_PER_SECOND, 1.0)
        bot.slack.clear_calls()
        bot.notion.reset_calls()
        blocks_before = len(bot.notion.store.blocks)

        posted: dict[str, float] = {}
        seen: dict[str, float] = {}
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                now = time.monotonic()
                for ts in visible(bot) - seen.keys():
                    seen[ts] = now
                done.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        parents: list[str] = []
        started = time.monotonic()
        for index in range(args.messages):
            thread = rng.choice(parents) if parents and index % 3 == 0 else None
            ts = bot.slack.post(channel, "U0BOB", f"update {index}", thread_ts=thread)
            posted[ts] = time.monotonic()
            if thread is None and len(parents) < THREADS:
                parents.append(ts)
            lag = started + (index + 1) / RATE - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        stamps = list(posted)
        for ts in rng.sample(stamps, len(stamps) // 10):
            bot.slack.edit_message(channel, ts, "edited")
        deleted = set(rng.sample([t for t in stamps if t not in parents], len(stamps) // 50))
        for ts in deleted:
            bot.slack.delete_message(channel, ts)
        deadline = time.monotonic() + args.sync_seconds + 120
        wanted = set(stamps) - deleted
        while not wanted <= seen.keys() and time.monotonic() < deadline:
            time.sleep(0.5)
        done.set()
        watcher.join(5)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lags = [seen[ts] - posted[ts] for ts in wanted if ts in seen]
        blocks = len(bot.notion.store.blocks) - blocks_before
        reads = sum(bot.slack.count(method) for method in READS)
        missing = len(wanted - seen.keys())
        print(
            f"live transcript: {args.messages:,} messages as events at {RATE:.0f}/s over "
            f"{THREADS} threads, {len(stamps) // 10} edited, {len(deleted)} deleted; "
            f"Notion +{NOTION_LATENCY * 1000:.0f} ms a call, {NOTION_PER_SECOND} requests/s"
        )
        print(
            f"  event → visible           p50 {percentile(lags, 0.5):.1f} s, "
            f"p99 {percentile(lags, 0.99):.1f} s, max {max(lags):.1f} s "
            f"(target p99 ≤ {args.sync_seconds + 5:.0f} s); {missing} never seen"
        )
        print(
            f"  Notion writes             {bot.notion.write_count()} (appends and PATCHes, "
            f"for {args.messages:,} messages and {len(stamps) // 10 + len(deleted)} changes)"
        )
        top, children, threads = layout(bot)
        print(
            f"  Notion blocks created     {blocks:,} "
            f"({blocks * 1000 / max(args.messages, 1):.0f} per 1,000 messages; target ≤ 100): "
            f"{top} top-level, {children} reply paragraphs under {threads} threads; "
            f"this layout needs at least 2 a thread (its parent ends a block, its replies "
            f"are that block's child), so {2 * threads} here"
        )
        print(f"  Slack history + replies   {reads} after the first sync (target 0)")
        print(f"  peak RSS                  {peak_mb:.0f} MB (bot and fakes in one process)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
