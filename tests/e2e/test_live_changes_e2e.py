"""Edits and deletions reach the page within TRANSCRIPT_SYNC_SECONDS, without Slack reads:
the block holding the message's line is rewritten in place."""

from __future__ import annotations

from typing import Any

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from tests.e2e.conftest import MakeBot
from tests.e2e.test_transcript_e2e import declare, dump, transcript

BASE = 1_790_000_000.0
READS = ("conversations.history", "conversations.replies")


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600", "TRANSCRIPT_SYNC_SECONDS": "0.3"}


def stamp(minutes: int) -> str:
    return f"{BASE + 60 * minutes:.6f}"


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


def reads(bot: Bot) -> int:
    return sum(bot.slack.count(method) for method in READS)


def test_an_edit_rewrites_the_line_in_place_within_the_interval(bot: Bot) -> None:
    channel = live(bot)
    first = bot.slack.post(channel, "U0ALICE", "error rate 38%", ts=stamp(1))
    bot.slack.post(channel, "U0BOB", "rolling back", ts=stamp(2))
    dump(bot, channel)
    blocks_before, before = len(transcript(bot)), reads(bot)

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
    dump(bot, channel)
    assert "SECRET" in page_text(bot)
    before = reads(bot)

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
