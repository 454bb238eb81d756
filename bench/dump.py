"""Benchmark a transcript dump: 10,000 messages, 500 threads of 1-20 replies.

    .venv/bin/python bench/dump.py [--messages 10000] [--threads 500]

Runs the real TranscriptService (real WebClient and notion-client) against FakeSlack and
FakeNotion at zero latency, the fakes in a child process so the RSS is the bot's own, and
prints Slack and Notion request counts against the minimum for that nesting, the wall
time, the peak RSS and the write count of a second, no-op dump.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bolt_app.adapters.notion import MAX_REQUEST_BYTES
from bolt_app.adapters.slack import HISTORY_PAGE_SIZE, build_web_client
from bolt_app.core.clock import utcnow
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.runtime.config import load_settings
from bolt_app.runtime.wiring import build_services
from bolt_app.services import Services

USERS = [f"U{index:04d}" for index in range(20)]
BASE_TS = 1_790_000_000.0


#: Slack's published rate for conversations.history and .replies (Tier 3), per minute.
TIER3_PER_MINUTE = 50
#: Slack's tier for commercially distributed non-Marketplace apps: 1 call a minute,
#: 15 messages a page.
CAPPED_PAGE = 15
#: Notion's average rate limit, requests per second.
NOTION_PER_SECOND = 3


def seed(slack: FakeSlack, channel: str, messages: int, threads: int) -> tuple[int, int]:
    """Post the channel; returns (top-level messages, replies)."""
    rng = random.Random(4)
    parents = set(rng.sample(range(messages), threads))
    ts, replies = BASE_TS, 0
    for index in range(messages):
        ts += 7
        user = USERS[index % len(USERS)]
        top = slack.post(
            channel,
            user,
            f"message {index}: *status* for <@{USERS[0]}> <https://example.com/{index}|link>",
            ts=f"{ts:.6f}",
        )
        if index in parents:
            for reply in range(rng.randint(1, 20)):
                ts += 1
                slack.post(
                    channel,
                    USERS[reply % len(USERS)],
                    f"reply {reply}",
                    thread_ts=top,
                    ts=f"{ts:.6f}",
                )
                replies += 1
    return messages, replies


def build(
    bot_token: str, app_token: str, slack_url: str, notion_url: str, database_id: str, db_url: str
) -> Services:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": bot_token,
            "SLACK_APP_TOKEN": app_token,
            "NOTION_TOKEN": "ntn_fake_token",
            "NOTION_POSTMORTEM_DATABASE_ID": database_id,
            "DATABASE_URL": db_url,
            "SLACK_API_BASE_URL": slack_url,
            "NOTION_API_BASE_URL": notion_url,
        },
        dotenv_path=None,
    )
    client = build_web_client(settings.slack_bot_token, settings.slack_api_base_url)
    return build_services(settings, client)


def serve_fakes(messages: int, threads: int, conn: Connection) -> None:
    """The fakes, in their own process, so the peak RSS measured is the bot's alone."""
    logging.basicConfig(level=logging.WARNING)
    with FakeSlack() as slack, FakeNotion() as notion:
        for user in USERS:
            slack.add_user(user, user.lower(), real_name=f"User {user}")
        channel = slack.add_channel("inc-1-bench", members=USERS)
        top, replies = seed(slack, channel, messages, threads)
        database_id, _ = notion.add_database()
        conn.send(
            (
                slack.bot_token,
                slack.app_token,
                slack.base_url,
                notion.base_url,
                database_id,
                channel,
                top,
                replies,
            )
        )
        blocks_before = 0
        while (command := conn.recv()) != "stop":
            if command == "reset":
                slack.clear_calls()
                notion.reset_calls()
                blocks_before = len(notion.store.blocks)
                conn.send(None)
            else:
                conn.send(
                    {
                        "appends": notion.count("blocks.children.append"),
                        "notion": len(notion.calls),
                        "notion_writes": notion.write_count(),
                        "history": slack.count("conversations.history"),
                        "replies": slack.count("conversations.replies"),
                        "users": slack.count("users.info"),
                        "slack": slack.count(),
                        "blocks": len(notion.store.blocks) - blocks_before,
                        "append_bytes": sum(
                            len(json.dumps(c.body, separators=(",", ":")).encode())
                            for c in notion.calls_to("blocks.children.append")
                        ),
                    }
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parent, child = multiprocessing.get_context("spawn").Pipe()
    fakes = multiprocessing.get_context("spawn").Process(
        target=serve_fakes, args=(args.messages, args.threads, child), daemon=True
    )
    fakes.start()
    bot_token, app_token, slack_url, notion_url, database_id, channel, top, replies = parent.recv()
    with tempfile.TemporaryDirectory() as tmp:
        services = build(
            bot_token, app_token, slack_url, notion_url, database_id, f"sqlite:///{tmp}/bench.db"
        )
        store = services.store
        incident, _ = store.create_incident(
            title="Bench",
            severity="P3",
            reporter=USERS[0],
            commander=USERS[0],
            private=False,
            request_key=None,
            number_start=1,
            now=utcnow(),
        )
        store.set_channel(int(incident.id), channel, "inc-1-bench", utcnow())
        incident = store.get_incident(int(incident.id)) or incident
        parent.send("reset")
        parent.recv()

        started = time.perf_counter()
        result = services.transcript.dump(incident)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        parent.send("counts")
        first = parent.recv()

        entries = store.transcript_rows(int(incident.id))
        parent.send("reset")
        parent.recv()
        second = services.transcript.dump(incident)
        parent.send("counts")
        noop = parent.recv()
        services.close()
    parent.send("stop")
    fakes.join(10)

    days = sum(1 for ts, _, _ in entries if ts.startswith("day:"))
    top_blocks = len({block for ts, block, thread in entries if thread is None})
    # Packed blocks are big: a request holds at most 100 top-level blocks, 1,000 blocks in
    # all, or about MAX_REQUEST_BYTES of JSON, whichever comes first.
    minimum_appends = max(
        math.ceil(top_blocks / 100), math.ceil(first["append_bytes"] / MAX_REQUEST_BYTES)
    )
    minimum_appends += 1 if result.events else 0  # the timeline's new events
    minimum_history = math.ceil((top + 1) / HISTORY_PAGE_SIZE)  # + the channel's joins
    print(
        f"dump of {top:,} messages + {replies:,} replies in {args.threads} threads "
        f"({result.written:,} written, {days} date lines)"
    )
    print(f"  wall time                 {wall:.2f} s (fakes at zero latency)")
    print(
        f"  Notion appends            {first['appends']} (minimum {minimum_appends}: "
        f"{top_blocks:,} top-level blocks, {first['append_bytes'] / 1e6:.1f} MB; "
        f"ratio {first['appends'] / minimum_appends:.3f})"
    )
    print(
        f"  Notion requests, all      {first['notion']} (the appends, plus schema, page "
        "create and one page listing)"
    )
    print(f"  Slack history pages       {first['history']} (minimum {minimum_history})")
    print(
        f"  Slack replies calls       {first['replies']} (minimum {args.threads}: one per thread)"
    )
    print(f"  Slack users.info          {first['users']} (distinct authors: {len(USERS)})")
    print(f"  Slack requests, all       {first['slack']}")
    written = top + replies
    reads = first["history"] + first["replies"]
    print(
        f"  Notion blocks created     {first['blocks']:,} "
        f"({first['blocks'] * 1000 / max(written, 1):,.0f} per 1,000 messages; target ≤ 100)"
    )
    print(
        f"  at Slack's Tier 3         {reads / TIER3_PER_MINUTE:.1f} min for the "
        f"{reads} history and replies calls ({TIER3_PER_MINUTE} a minute)"
    )
    capped = math.ceil(top / CAPPED_PAGE) + max(args.threads, math.ceil(replies / CAPPED_PAGE))
    print(
        f"  at the capped tier        {capped / 60:.1f} h ({capped:,} calls of at most "
        f"{CAPPED_PAGE} messages, one a minute)"
    )
    print(
        f"  at Notion's 3 requests/s  {first['notion'] / NOTION_PER_SECOND:.0f} s for the "
        f"{first['notion']} Notion requests"
    )
    print(f"  peak RSS of the bot       {peak_mb:.0f} MB (the fakes run in another process)")
    print(
        f"  no-op dump                {noop['notion_writes']} Notion writes, "
        f"{noop['notion']} Notion reads, {noop['slack']} Slack requests "
        f"({second.written} new messages)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
