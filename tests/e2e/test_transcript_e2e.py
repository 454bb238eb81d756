"""dumpslack through the whole bot: the real App over the websocket, both fakes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from bolt_app.formats.template import TRANSCRIPT_HEADING
from bolt_app.transcript.render import linked_ts_all

#: 2027-09-20 15:33 UTC, after the channel's creation and its joins, as in real Slack where
#: a message's ts is always newer than the channel's earlier ones; a minute apart.
BASE_TS = 1_821_454_400.0


def stamp(minutes: int) -> str:
    """A message ts `minutes` after BASE_TS."""
    return f"{BASE_TS + 60 * minutes:.6f}"


#: 2026-09-21: messages from before the incident was declared.
PAST_TS = 1_790_000_000.0


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600", "NOTION_TIMEOUT_SECONDS": "2"}


def declare(bot: Bot) -> str:
    envelope = bot.command("declare Checkout is down")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    return str(bot.incident(1).channel_id)


@dataclass
class Seeded:
    """What a test put in the channel that belongs in the transcript, in order."""

    top: list[str] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=dict)
    next_ts: float = BASE_TS

    def ts(self) -> str:
        self.next_ts += 60.0
        return f"{self.next_ts:.6f}"

    @property
    def count(self) -> int:
        return len(self.top) + sum(len(r) for r in self.replies.values())


def seed(
    bot: Bot,
    channel: str,
    messages: int,
    threads: int,
    replies: int = 3,
    seeded: Seeded | None = None,
) -> Seeded:
    """`messages` top-level messages, every (messages // threads)-th one with replies,
    plus noise that must not be written: a join, a topic change and the bot's chatter."""
    seeded = seeded or Seeded()
    every = max(1, messages // threads) if threads else 0
    for index in range(messages):
        user = "U0ALICE" if index % 2 else "U0BOB"
        ts = bot.slack.post(channel, user, f"message {index} for <@U0ALICE> *ok*", ts=seeded.ts())
        seeded.top.append(ts)
        if every and index % every == 0 and len(seeded.replies) < threads:
            seeded.replies[ts] = [
                bot.slack.post(
                    channel, "U0BOB", f"reply {r} to {index}", thread_ts=ts, ts=seeded.ts()
                )
                for r in range(replies)
            ]
        if index % 500 == 250:
            bot.slack.post(channel, "U0BOB", "", subtype="channel_join", ts=seeded.ts())
            bot.slack.post(
                channel,
                bot.slack.bot_user_id,
                "bot chatter",
                bot_id=bot.slack.bot_id,
                ts=seeded.ts(),
            )
    return seeded


def dump(bot: Bot, channel: str, timeout: float = 60.0) -> str:
    envelope = bot.command("dumpslack", channel_id=channel)
    reply = bot.wait_reply(envelope, "Transcript", timeout=timeout)
    bot.slack.wait_for(bot.services.dumps.idle, timeout=timeout)
    return reply


def transcript(bot: Bot) -> list[dict[str, Any]]:
    (page,) = bot.notion.pages(bot.data_source_id)
    tree = bot.notion.children_tree(page["id"])
    heading = next(b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING)
    return list(heading["children"])


def threads(blocks: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[str]]]:
    """The transcript as written: top-level message ts in order, and each thread's replies.

    Messages are packed one per line; a block's children are the replies of its last line.
    """
    top: list[str] = []
    replies: dict[str, list[str]] = {}
    for block in blocks:
        lines = linked_ts_all(block)
        top += lines
        children = [ts for child in block.get("children") or [] for ts in linked_ts_all(child)]
        if children:
            replies[lines[-1]] = children
    return top, replies


def assert_complete(bot: Bot, seeded: Seeded) -> list[dict[str, Any]]:
    """Every seeded message exactly once, in order, replies right under their parent."""
    blocks = [b for b in transcript(bot) if b["type"] == "paragraph"]
    top, replies = threads(blocks)
    assert top == seeded.top
    assert replies == {parent: r for parent, r in seeded.replies.items() if r}
    return blocks


def test_a_2000_message_channel_is_written_complete_in_order_and_rendered(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 2000, 100)
    bot.slack.post(
        channel,
        "U0ALICE",
        "see <https://status.example.com|status> ~old~ "
        "`x` _it_ &amp; :fire:\n```select 1```\n&gt; quoted",
        ts=(fancy := seeded.ts()),
    )
    seeded.top.append(fancy)

    reply = dump(bot, channel)

    assert reply.startswith(f"Transcript up to date: {seeded.count:,} new messages · <")
    blocks = assert_complete(bot, seeded)
    first = blocks[0]["paragraph"]["rich_text"]
    assert FakeNotion.plain_text(blocks[0]).split("\n")[0].endswith("bob: message 0 for @alice ok")
    assert next(i for i in first if i["plain_text"] == "ok")["annotations"]["bold"] is True
    last = blocks[-1]["paragraph"]["rich_text"]
    text = FakeNotion.plain_text(blocks[-1])
    assert "alice: see status old x it & :fire:" in text
    link = next(item for item in last if item["plain_text"] == "status")
    assert link["href"] == "https://status.example.com"
    # Lines are packed, so code and quotes are rich text in the line, not child blocks.
    code = next(item for item in last if item["plain_text"] == "select 1")
    assert code["annotations"]["code"] is True
    assert text.endswith("select 1\n> quoted") and not blocks[-1].get("children")
    # Packed: far fewer blocks than messages.
    assert len(blocks) * 5 < seeded.count
    days = [FakeNotion.plain_text(b) for b in transcript(bot) if b["type"] == "heading_3"]
    assert days == ["2027-09-20 Monday", "2027-09-21 Tuesday", "2027-09-22 Wednesday"]
    # One progress message, edited to its final text.
    progress = [m for m in bot.slack.messages(channel) if "Transcript" in m["text"]]
    assert len(progress) == 1 and progress[0]["text"].startswith("Transcript up to date")
    # Notion requests: packed blocks are large, so a request is bound by Notion's size
    # limit more than by its 100 blocks; 2,001 messages still take a handful of appends
    # (plus one for the timeline's "declared" line).
    assert bot.notion.count("blocks.children.append") <= 8


def test_re_dump_writes_nothing_and_an_incremental_dump_writes_exactly_the_new(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 50, 5, replies=2)
    dump(bot, channel)
    writes, appends = bot.notion.write_count(), bot.notion.count("blocks.children.append")
    blocks = len(bot.notion.store.blocks)

    assert dump(bot, channel).startswith("Transcript up to date: 0 new messages")
    assert bot.notion.write_count() == writes

    old_thread = seeded.top[10]
    late = [
        bot.slack.post(channel, "U0ALICE", f"late {i}", thread_ts=old_thread, ts=seeded.ts())
        for i in range(2)
    ]
    seeded.replies[old_thread] += late
    seed(bot, channel, 5, 0, seeded=seeded)

    assert dump(bot, channel).startswith("Transcript up to date: 7 new messages")
    assert_complete(bot, seeded)
    # The 5 new top-level messages extend the last block (one PATCH, no new block);
    # one append goes under the old thread's parent.
    assert bot.notion.count("blocks.children.append") == appends + 1
    assert len(bot.notion.store.blocks) == blocks + 1  # the late replies' paragraph
    entries = bot.services.store.transcript_ts(int(bot.incident(1).id))
    assert all(ts in entries for ts in [*seeded.top, *late])


def test_429_from_history_and_from_notion_are_honoured(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 120, 4)
    bot.slack.inject("conversations.history", status=429, retry_after=1)
    bot.notion.inject("blocks.children.append", status=429, retry_after=1)

    dump(bot, channel)

    assert_complete(bot, seeded)
    assert len(bot.slack.calls_to("conversations.history")) == 2  # the 429, then the page


def test_a_notion_500_is_said_in_the_progress_message_and_the_next_trigger_resumes(
    bot: Bot,
) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 1000, 10)
    bot.notion.set_latency(0.1, "blocks.children.append")
    incident_id = int(bot.incident(1).id)
    envelope = bot.command("dumpslack", channel_id=channel)
    bot.slack.wait_for(
        lambda: len(bot.services.store.transcript_ts(incident_id)) >= 100, timeout=30
    )
    bot.notion.inject("blocks.children.append", status=500, times=None)
    bot.wait_reply(envelope, "Notion", timeout=30)

    def progress_text() -> str:
        return next(
            m["text"] for m in bot.slack.messages(channel) if m["text"].startswith("Transcript")
        )

    bot.slack.wait_for(lambda: progress_text().startswith("Transcript stopped"), timeout=10)
    assert "`/incident dumpslack` resumes" in progress_text()

    bot.notion.clear_faults()
    assert "new messages" in dump(bot, channel)
    assert_complete(bot, seeded)
    assert progress_text().startswith("Transcript up to date")  # the same message, edited
    assert (
        len(
            [
                m
                for m in bot.slack.messages(channel)
                if m["text"].startswith(("Writing", "Transcript"))
            ]
        )
        == 1
    )


def test_a_trigger_during_a_dump_is_answered_busy_and_its_messages_are_included(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 600, 6)
    bot.notion.set_latency(0.2, "blocks.children.append")
    first = bot.command("dumpslack", channel_id=channel)
    incident_id = int(bot.incident(1).id)
    bot.slack.wait_for(lambda: bot.services.store.transcript_ts(incident_id), timeout=30)
    seed(bot, channel, 3, 0, seeded=seeded)

    second = bot.command("dumpslack", channel_id=channel)

    assert bot.wait_reply(second, "already running", timeout=30) == (
        "A dump is already running; new messages will be included."
    )
    bot.wait_reply(first, "Transcript up to date", timeout=60)
    bot.slack.wait_for(bot.services.dumps.idle, timeout=30)
    assert_complete(bot, seeded)
    assert bot.services.store.latest_pending_dump(incident_id) is None


def test_the_shortcut_dumps_and_outside_an_incident_says_so_and_does_nothing(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 3, 1)
    general = bot.slack.add_channel("general", members=["U0ALICE"])
    outside = bot.slack.message_shortcut("dumpslack", channel_id=general)
    assert bot.wait_reply(outside, "incident channel").startswith("This isn't an incident channel")
    assert bot.services.store.incidents_with_pending_dumps() == []

    inside = bot.slack.message_shortcut("dumpslack", channel_id=channel, message_ts=seeded.top[0])
    assert bot.wait_reply(inside, "Transcript up to date").startswith(
        "Transcript up to date: 6 new messages"
    )
    assert_complete(bot, seeded)


def test_pins_and_events_go_to_the_timeline_once(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 3, 0)
    message = bot.slack.message(channel, seeded.top[1])
    pin = {
        "type": "pin_added",
        "user": "U0ALICE",
        "channel_id": channel,
        "item": {"type": "message", "channel": channel, "message": message},
    }
    first = bot.slack.event(pin, event_id="Ev0PIN1")
    # Slack's retry of the same event, and the same message pinned again later: once.
    again = bot.slack.event(pin, event_id="Ev0PIN1", retry_attempt=1, retry_reason="timeout")
    later = bot.slack.event(pin, event_id="Ev0PIN2")
    for envelope in (first, again, later):
        bot.slack.wait_for_ack(envelope)
    incident_id = int(bot.incident(1).id)
    (pinned,) = [e for e in bot.services.store.events(incident_id) if e.kind == "pinned"]
    assert pinned.at.timestamp() == pytest.approx(float(seeded.top[1]), abs=1)

    dump(bot, channel)
    (page,) = bot.notion.pages(bot.data_source_id)
    lines = [
        FakeNotion.plain_text(b)
        for b in bot.notion.children_tree(page["id"])
        if b["type"] == "bulleted_list_item"
    ]
    assert sum("Declared by alice" in line for line in lines) == 1
    assert sum("alice pinned a message by alice: message 1" in line for line in lines) == 1
    writes = bot.notion.write_count()
    dump(bot, channel)
    assert bot.notion.write_count() == writes


def test_a_declare_during_a_10000_message_dump_still_acks_fast(bot: Bot) -> None:
    channel = declare(bot)
    seed(bot, channel, 10_000, 50)
    bot.notion.set_latency(0.05, "blocks.children.append")
    envelope = bot.command("dumpslack", channel_id=channel)
    incident_id = int(bot.incident(1).id)
    bot.slack.wait_for(lambda: bot.services.store.transcript_ts(incident_id), timeout=60)

    latencies = []
    for index in range(5):
        declare_envelope = bot.command(f"declare Side issue {index}")
        latencies.append(bot.slack.wait_for_ack(declare_envelope, timeout=5).latency_s)
    assert not bot.services.dumps.idle()  # the dump was still running throughout

    # The ack never waits for the dump. The bound is loose on purpose: FakeNotion runs in
    # this process and parses each packed append (up to 400 KB) on the same GIL, so on a
    # loaded 2-core machine a median near 0.1 s is noise, not the bot (bench.ack measures
    # ack latency; Slack allows 3 s).
    assert statistics.median(latencies) < 0.3, latencies
    bot.wait_reply(envelope, "Transcript up to date", timeout=120)


def test_a_deleted_transcript_heading_is_recreated_and_the_transcript_rewritten(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 30, 3)
    dump(bot, channel)
    (page,) = bot.notion.pages(bot.data_source_id)
    heading = next(
        b
        for b in bot.notion.children_tree(page["id"])
        if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING
    )
    bot.services.notion._client.blocks.delete(block_id=heading["id"])

    assert dump(bot, channel).startswith(f"Transcript up to date: {seeded.count} new messages")
    assert_complete(bot, seeded)
    lines = [
        FakeNotion.plain_text(b)
        for b in bot.notion.children_tree(page["id"])
        if b["type"] == "bulleted_list_item" and "Declared by" in FakeNotion.plain_text(b)
    ]
    assert len(lines) == 1  # the timeline was not under the heading, and is not rewritten


def test_the_status_hook_dumps_and_the_reconciler_finishes_a_dead_process_request(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 20, 2)
    incident = bot.incident(1)
    transcript = bot.services.transcript

    assert transcript.on_status_change(incident, "active", "done") is False
    assert transcript.on_status_change(incident, "active", "mitigated") is True
    bot.slack.wait_for(
        lambda: (
            bot.services.dumps.idle()
            and bot.services.store.latest_pending_dump(int(incident.id)) is None
        )
    )
    assert_complete(bot, seeded)

    # A request whose process died before dumping: the reconciler's pass finishes it.
    late = bot.slack.post(channel, "U0ALICE", "after the hook", ts=seeded.ts())
    seeded.top.append(late)
    transcript.request(incident, "U0ALICE")
    assert bot.reconciler().resume_dumps() == [int(incident.id)]
    bot.slack.wait_for(
        lambda: (
            bot.services.dumps.idle()
            and bot.services.store.latest_pending_dump(int(incident.id)) is None
        )
    )
    assert_complete(bot, seeded)


def test_an_unanswered_timeline_append_is_adopted_not_repeated(bot: Bot) -> None:
    channel = declare(bot)
    bot.notion.inject("blocks.children.append", status=None, drop_response_after_handling=True)
    envelope = bot.command("dumpslack", channel_id=channel)
    bot.wait_reply(envelope, "Notion", timeout=20)
    bot.notion.clear_faults()

    assert dump(bot, channel).startswith("Transcript up to date: 0 new messages")
    (page,) = bot.notion.pages(bot.data_source_id)
    lines = [
        FakeNotion.plain_text(b)
        for b in bot.notion.children_tree(page["id"])
        if b["type"] == "bulleted_list_item" and "Declared by" in FakeNotion.plain_text(b)
    ]
    assert len(lines) == 1


def test_a_thread_of_150_replies_and_a_long_multibyte_message_fit_notions_limits(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 3, 1, replies=150)
    long_text = "🔥 " * 3000 + "end"
    seeded.top.append(bot.slack.post(channel, "U0ALICE", long_text, ts=seeded.ts()))

    dump(bot, channel)

    blocks = assert_complete(bot, seeded)
    assert FakeNotion.plain_text(blocks[-1]).endswith("alice: " + long_text)


def test_a_failing_bookmark_never_blocks_the_transcript(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, messages=5, threads=1)
    bookmark = bot.slack.bookmarks(channel)[0]
    bot.app.client.bookmarks_remove(channel_id=channel, bookmark_id=bookmark["id"])
    bot.services.store.delete_artifact(int(bot.incident(1).id), "bookmark_postmortem")
    bot.slack.inject("bookmarks.add", error="not_allowed", times=5)
    assert dump(bot, channel).startswith("Transcript up to date: 8 new messages")
    assert_complete(bot, seeded)


def test_a_failed_automatic_dump_is_said_in_the_channel(bot: Bot) -> None:
    channel = declare(bot)
    seed(bot, channel, messages=3, threads=0)
    bot.notion.inject("blocks.children.append", status=500, times=None)
    envelope = bot.command("status mitigated", channel_id=channel)
    bot.ack_text(envelope)
    said = bot.slack.wait_for(
        lambda: [
            m["text"]
            for m in bot.slack.messages(channel)
            if m["text"].startswith("Transcript stopped:")
        ],
        timeout=30,
    )
    assert said[0].endswith("`/incident dumpslack` resumes where it stopped.")
    bot.notion.clear_faults()
    bot.slack.wait_for(bot.services.dumps.idle, timeout=30)
    assert dump(bot, channel).startswith("Transcript up to date: 3 new messages")


def test_a_late_pin_of_an_earlier_message_lands_at_its_own_time(bot: Bot) -> None:
    channel = declare(bot)
    seeded = seed(bot, channel, 3, 0, seeded=Seeded(next_ts=PAST_TS))  # before the declaration
    bot.ack_text(bot.command("severity P1", channel_id=channel))
    bot.wait_idle()
    dump(bot, channel)
    message = bot.slack.message(channel, seeded.top[0])
    bot.slack.event(
        {
            "type": "pin_added",
            "user": "U0ALICE",
            "channel_id": channel,
            "item": {"type": "message", "channel": channel, "message": message},
        }
    )
    incident_id = int(bot.incident(1).id)
    bot.slack.wait_for(
        lambda: any(e.kind == "pinned" for e in bot.services.store.events(incident_id))
    )
    dump(bot, channel)
    (page,) = bot.notion.pages(bot.data_source_id)
    lines = [
        FakeNotion.plain_text(b)
        for b in bot.notion.children_tree(page["id"])
        if b["type"] == "bulleted_list_item" and " UTC · " in FakeNotion.plain_text(b)
    ]
    assert [line.split(" · ", 1)[1].split(":")[0] for line in lines] == [
        "alice pinned a message by bob",
        "Declared by alice",
        "Severity",
    ]
    assert lines == sorted(lines)  # "YYYY-MM-DD HH:MM UTC" sorts as time
