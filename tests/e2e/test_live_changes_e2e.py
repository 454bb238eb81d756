"""Edits and deletions reach the page within TRANSCRIPT_SYNC_SECONDS, without Slack reads:
the block holding the message's line is rewritten in place."""

from __future__ import annotations

from typing import Any

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from bolt_app.transcript.render import linked_ts_all
from tests.e2e.conftest import MakeBot
from tests.e2e.test_transcript_e2e import declare, dump, stamp, threads, transcript

READS = ("conversations.history", "conversations.replies")


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600", "TRANSCRIPT_SYNC_SECONDS": "0.3"}


def page_text(bot: Bot) -> str:
    def walk(blocks: list[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for block in blocks:
            out.append(FakeNotion.plain_text(block))
            out += walk(block.get("children") or [])
        return out

    return "\n".join(walk(transcript(bot)))


def live(bot: Bot) -> str:
    bot.slack.message_events = True
    channel = declare(bot)
    return channel


def steady(bot: Bot, channel: str, *messages: str) -> int:
    """Wait until the live sync wrote `messages` (its first sync fills the gap from
    Slack's history once); returns the Slack reads so far, the steady state's start."""
    bot.slack.wait_for(lambda: set(messages) <= set(top_level(bot)), timeout=10)
    return reads(bot)


def top_level(bot: Bot) -> list[str]:
    return [ts for b in transcript(bot) for ts in linked_ts_all(b)]


def reads(bot: Bot) -> int:
    return sum(bot.slack.count(method) for method in READS)


def test_an_edit_rewrites_the_line_in_place_within_the_interval(bot: Bot) -> None:
    channel = live(bot)
    first = bot.slack.post(channel, "U0ALICE", "error rate 38%", ts=stamp(1))
    second = bot.slack.post(channel, "U0BOB", "rolling back", ts=stamp(2))
    before = steady(bot, channel, first, second)
    blocks_before = len(transcript(bot))

    bot.slack.edit_message(channel, first, "error rate 38% on checkout only")
    bot.slack.wait_for(lambda: "error rate 38% on checkout only" in page_text(bot), timeout=10)
    assert "rolling back" in page_text(bot)
    assert len(transcript(bot)) == blocks_before  # rewritten, no new block
    assert reads(bot) == before  # no Slack reads for it


def test_a_deleted_secret_leaves_the_page_within_the_interval(bot: Bot) -> None:
    channel = live(bot)
    bot.slack.post(channel, "U0ALICE", "looking at it", ts=stamp(1))
    secret = bot.slack.post(channel, "U0BOB", "token is xoxp-123-SECRET", ts=stamp(2))
    parent = bot.slack.post(channel, "U0ALICE", "thread", ts=stamp(3))
    reply = bot.slack.post(channel, "U0BOB", "the key AKIA-SECRET-2", thread_ts=parent, ts=stamp(4))
    before = steady(bot, channel, secret, parent)
    bot.slack.wait_for(lambda: "AKIA-SECRET-2" in page_text(bot), timeout=10)

    bot.slack.delete_message(channel, secret)
    bot.slack.delete_message(channel, reply)
    bot.slack.wait_for(lambda: "SECRET" not in page_text(bot), timeout=10)
    text = page_text(bot)
    assert text.count("(message deleted)") == 2 and "looking at it" in text
    assert reads(bot) == before


def test_with_no_interval_only_a_dump_writes_the_change(
    make_bot: MakeBot,
) -> None:
    with make_bot(TRANSCRIPT_SYNC_SECONDS="0") as bot:
        channel = live(bot)
        ts = bot.slack.post(channel, "U0ALICE", "first words", ts=stamp(1))
        dump(bot, channel)
        bot.slack.edit_message(channel, ts, "better words")
        bot.slack.wait_for(
            lambda: bot.services.store.captured_messages(int(bot.incident(1).id)), timeout=10
        )
        assert "first words" in page_text(bot)
        dump(bot, channel)
        assert "better words" in page_text(bot) and "first words" not in page_text(bot)


def test_messages_replies_broadcasts_and_alerts_appear_live_without_a_dump(bot: Bot) -> None:
    channel = live(bot)
    first = bot.slack.post(channel, "U0ALICE", "checkout 502s", ts=stamp(1))
    steady(bot, channel, first)
    parent = bot.slack.post(channel, "U0BOB", "deploy web-4812 at 14:00", ts=stamp(2))
    alert = bot.slack.post(
        channel,
        None,
        "",
        subtype="bot_message",
        bot_id="B0PAGER",
        username="PagerDuty",
        attachments=[{"title": "High error rate"}],
        ts=stamp(3),
    )
    reply = bot.slack.post(channel, "U0ALICE", "rolling it back", thread_ts=parent, ts=stamp(4))
    broadcast = bot.slack.post(
        channel, "U0ALICE", "rolled back", thread_ts=parent, reply_broadcast=True, ts=stamp(5)
    )
    late = bot.slack.post(channel, "U0BOB", "re: 502s", thread_ts=first, ts=stamp(6))

    def written() -> bool:
        top, replies = threads([b for b in transcript(bot) if b["type"] == "paragraph"])
        return top == [first, parent, alert] and replies == {
            first: [late],
            parent: [reply, broadcast],
        }

    bot.slack.wait_for(written, timeout=10)
    assert "PagerDuty: High error rate" in page_text(bot)


@pytest.mark.timeout(120)
def test_200_messages_flow_live_with_no_history_or_replies_calls(bot: Bot) -> None:
    channel = live(bot)
    steady_ts = bot.slack.post(channel, "U0ALICE", "start", ts=stamp(0))
    steady_from = steady(bot, channel, steady_ts)
    posted = []
    for i in range(200):
        parent = posted[-1] if i % 10 == 9 else None
        posted.append(
            bot.slack.post(channel, "U0BOB", f"update {i}", thread_ts=parent, ts=stamp(1 + i))
        )

    def shown() -> int:
        top, replies = threads([b for b in transcript(bot) if b["type"] == "paragraph"])
        return len(top) + sum(len(r) for r in replies.values())

    # Wait for the store to record every message: a split for a late first reply writes
    # the moved lines' new block before it cuts the old one (never losing a line to a
    # crash), so the page shows them twice for a moment, and a count alone would catch
    # that moment. (The entries also hold date lines and timeline events: ask the page.)
    incident_id = int(bot.incident(1).id)
    wanted = {steady_ts, *posted}
    bot.slack.wait_for(
        lambda: wanted <= set(bot.services.store.transcript_ts(incident_id)), timeout=60
    )
    assert shown() == 201
    assert reads(bot) == steady_from  # zero conversations.history / .replies calls


def test_messages_missed_while_disconnected_appear_after_the_reconnect(bot: Bot) -> None:
    channel = live(bot)
    steady(bot, channel, bot.slack.post(channel, "U0ALICE", "before"))
    bot.slack.message_events = False  # as if the events were never delivered
    missed = [bot.slack.post(channel, "U0BOB", f"missed {i}") for i in range(3)]
    bot.slack.message_events = True
    bot.slack.drop_sockets()  # the client reconnects; a new session fills the gap
    bot.slack.wait_for(lambda: set(missed) <= set(top_level(bot)), timeout=20)


def test_a_block_cap_refusal_is_said_once_and_what_waited_follows_once_lifted(bot: Bot) -> None:
    channel = live(bot)
    before = bot.slack.post(channel, "U0ALICE", "before the cap", ts=stamp(0))
    steady(bot, channel, before)
    bot.slack.wait_for(bot.services.dumps.idle)  # its timeline lines are written too
    bot.notion.block_cap(0)  # the workspace's lifetime block limit is used up

    def said() -> list[dict[str, Any]]:
        return [m for m in bot.slack.messages(channel) if "can't be written" in m["text"]]

    # New lines still go into the last block (an edit creates no block)...
    more = bot.slack.post(channel, "U0BOB", "under the cap", ts=stamp(1))
    bot.slack.wait_for(lambda: more in top_level(bot), timeout=10)
    assert not said()
    # ...but a reply needs a block of its own: refused, and said in the channel.
    reply = bot.slack.post(channel, "U0BOB", "a reply", thread_ts=more, ts=stamp(2))
    bot.slack.wait_for(said, timeout=10)
    assert "block limit" in said()[0]["text"]  # Notion's own words
    # Edits still work under the cap: the line is rewritten in place.
    bot.slack.edit_message(channel, before, "before the cap (edited)")
    bot.slack.wait_for(lambda: "before the cap (edited)" in page_text(bot), timeout=10)
    # Later triggers meet the same refusal: the one message is edited, none is added.
    bot.slack.wait_for(bot.services.dumps.idle)  # the live syncs are done
    bot.wait_reply(bot.command("dumpslack", channel_id=channel), "Notion refuses")
    bot.wait_idle()
    assert len(said()) == 1

    bot.notion.block_cap(None)
    assert dump(bot, channel).startswith("Transcript up to date: 1 new message")
    assert threads([b for b in transcript(bot) if b["type"] == "paragraph"]) == (
        [before, more],
        {more: [reply]},
    )
    assert not said()  # the message now says the page is up to date again


def test_a_message_deleted_while_no_event_came_leaves_the_page_at_the_next_full_read(
    bot: Bot,
) -> None:
    channel = live(bot)
    kept = bot.slack.post(channel, "U0ALICE", "kept", ts=stamp(0))
    secret = bot.slack.post(channel, "U0BOB", "password hunter2", ts=stamp(1))
    last = bot.slack.post(channel, "U0ALICE", "also kept", ts=stamp(2))
    steady(bot, channel, kept, secret, last)
    bot.slack.message_events = False  # its deletion event never reaches the bot
    bot.slack.delete_message(channel, secret)
    before = reads(bot)
    bot.slack.drop_sockets()  # a new connection: no event of it heard since
    bot.slack.wait_for(lambda: reads(bot) > before, timeout=10)  # its gap fill ran
    bot.slack.wait_for(bot.services.dumps.idle)
    assert "hunter2" in page_text(bot)  # the gap fill after a reconnect reads new ones only

    dump(bot, channel)  # reads the whole history: the message is gone from it
    assert "hunter2" not in page_text(bot)
    assert "(message deleted)" in page_text(bot)
    (row,) = [r for r in bot.services.store.captured_messages(1) if r.ts == secret]
    assert row.deleted and not row.text
