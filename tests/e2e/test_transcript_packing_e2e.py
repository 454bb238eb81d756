"""Few blocks: messages are packed one per line, a group ends at a message with replies,
and a late first reply splits its group so that it sits right under its parent."""

from __future__ import annotations

from typing import Any

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from bolt_app.formats.template import TRANSCRIPT_HEADING
from bolt_app.transcript import render
from bolt_app.transcript.render import linked_ts_all
from tests.e2e.test_transcript_e2e import declare, dump, stamp, threads, transcript


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600", "NOTION_TIMEOUT_SECONDS": "2"}


def paragraphs(bot: Bot) -> list[dict[str, Any]]:
    return [b for b in transcript(bot) if b["type"] == "paragraph"]


def test_1000_plain_messages_take_at_most_100_blocks_each_once_in_order(bot: Bot) -> None:
    channel = declare(bot)
    posted = [bot.slack.post(channel, "U0ALICE", f"update {i}", ts=stamp(i)) for i in range(1000)]

    assert "1,000 new messages" in dump(bot, channel)
    blocks = paragraphs(bot)
    assert len(blocks) <= 100
    assert threads(blocks) == (posted, {})


def test_a_late_first_reply_in_the_middle_of_a_group_splits_it(bot: Bot) -> None:
    channel = declare(bot)
    top = [bot.slack.post(channel, "U0ALICE", f"line {i}", ts=stamp(i)) for i in range(5)]
    dump(bot, channel)
    assert len(paragraphs(bot)) == 1  # one group

    reply = bot.slack.post(channel, "U0BOB", "about line 1", thread_ts=top[1], ts=stamp(10))
    assert "1 new message" in dump(bot, channel)
    blocks = paragraphs(bot)
    assert threads(blocks) == (top, {top[1]: [reply]})
    assert [linked_ts_all(b) for b in blocks] == [top[:2], top[2:]]
    assert bot.notion.count("blocks.delete") == 0  # rewritten, never deleted


def test_a_split_keeps_the_replies_of_the_groups_last_line_where_they_are(bot: Bot) -> None:
    channel = declare(bot)
    top = [bot.slack.post(channel, "U0ALICE", f"line {i}", ts=stamp(i)) for i in range(4)]
    last_reply = bot.slack.post(channel, "U0BOB", "re 3", thread_ts=top[3], ts=stamp(5))
    dump(bot, channel)

    first_reply = bot.slack.post(channel, "U0BOB", "re 1", thread_ts=top[1], ts=stamp(11))
    dump(bot, channel)
    blocks = paragraphs(bot)
    assert threads(blocks) == (top, {top[1]: [first_reply], top[3]: [last_reply]})
    assert [linked_ts_all(b) for b in blocks] == [top[:2], top[2:]]
    # A third late thread, in the block that was split before, splits it again.
    zero = bot.slack.post(channel, "U0BOB", "re 0", thread_ts=top[0], ts=stamp(12))
    dump(bot, channel)
    assert threads(paragraphs(bot)) == (
        top,
        {top[0]: [zero], top[1]: [first_reply], top[3]: [last_reply]},
    )


def test_an_old_one_block_per_message_transcript_is_continued(bot: Bot) -> None:
    channel = declare(bot)
    old = [bot.slack.post(channel, "U0ALICE", f"old {i}", ts=stamp(i)) for i in range(3)]
    dump(bot, channel)  # writes the three, packed: undo that into the old layout below
    incident = bot.incident(1)
    store, notion = bot.services.store, bot.services.notion
    (page,) = bot.notion.pages(bot.data_source_id)
    heading = next(
        b
        for b in bot.notion.children_tree(page["id"])
        if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING
    )
    store.clear_transcript(int(incident.id), keep_prefix="event:")
    for child in heading["children"]:
        notion.update_block(str(child["id"]), {"in_trash": True})
    messages = [bot.slack.message(channel, ts) for ts in old]
    blocks = [
        render.message_block(
            m,
            author="alice",
            permalink=bot.services.slack.permalink(channel, str(m["ts"]), None),
            user_name=bot.services.slack.user_name,
        )
        for m in messages
    ]
    ids = notion.append_blocks(str(heading["id"]), blocks)
    store.save_transcript_entries(
        int(incident.id),
        [(ts, bid, None) for ts, bid in zip(old, ids, strict=True)],
        bot.services.incidents.clock(),
    )

    new = [bot.slack.post(channel, "U0BOB", f"new {i}", ts=stamp(10 + i)) for i in range(3)]
    late = bot.slack.post(channel, "U0BOB", "re old 0", thread_ts=old[0], ts=stamp(20))
    assert "4 new messages" in dump(bot, channel)
    blocks_now = paragraphs(bot)
    assert [linked_ts_all(b) for b in blocks_now] == [[old[0]], [old[1]], [old[2]], new]
    assert threads(blocks_now) == ([*old, *new], {old[0]: [late]})


def test_new_lines_and_late_replies_extend_the_last_blocks_instead_of_adding_ones(
    bot: Bot,
) -> None:
    channel = declare(bot)
    top = [bot.slack.post(channel, "U0ALICE", f"line {i}", ts=stamp(i)) for i in range(3)]
    dump(bot, channel)
    first = bot.slack.post(channel, "U0BOB", "re 2", thread_ts=top[2], ts=stamp(5))
    dump(bot, channel)  # a late first reply: a paragraph under the last line
    blocks = len(bot.notion.store.blocks)

    second = bot.slack.post(channel, "U0BOB", "re 2 again", thread_ts=top[2], ts=stamp(6))
    more = bot.slack.post(channel, "U0ALICE", "line 3", ts=stamp(7))
    assert "2 new messages" in dump(bot, channel)
    # The reply joined the thread's paragraph; the new line started a block of its own
    # (the last block now has a thread under it, so it takes no more lines).
    assert len(bot.notion.store.blocks) == blocks + 1
    third = bot.slack.post(channel, "U0ALICE", "line 4", ts=stamp(8))
    assert "1 new message" in dump(bot, channel)
    assert len(bot.notion.store.blocks) == blocks + 1  # it joined "line 3"'s block
    assert threads(paragraphs(bot)) == ([*top, more, third], {top[2]: [first, second]})
    assert bot.notion.count("blocks.delete") == 0
