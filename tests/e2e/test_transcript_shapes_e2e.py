"""Real Slack history shapes in a dump: huddles, deleted parents, apps, forwards, links,
and replies with code or quotes (which must never make a third level of nesting)."""

from __future__ import annotations

from typing import Any

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from bolt_app.transcript.render import line_starts, linked_ts_all
from tests.e2e.test_transcript_e2e import declare, dump, stamp, threads, transcript


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600", "NOTION_TIMEOUT_SECONDS": "2"}


def block_of(bot: Bot, ts: str) -> dict[str, Any]:
    """The transcript block holding message `ts` (messages are packed one per line)."""
    return next(b for b in transcript(bot) if ts in linked_ts_all(b))


def line_items(block: dict[str, Any], ts: str) -> list[dict[str, Any]]:
    rich = block["paragraph"]["rich_text"]
    starts = line_starts(rich)
    index = [t for _, t in starts].index(ts)
    end = starts[index + 1][0] if index + 1 < len(starts) else len(rich)
    return list(rich[starts[index][0] : end])


def line(bot: Bot, ts: str) -> str:
    """Message `ts`'s line as the page shows it."""
    return "".join(i["plain_text"] for i in line_items(block_of(bot, ts), ts)).rstrip("\n")


def top_level(bot: Bot) -> list[str]:
    return threads([b for b in transcript(bot) if b["type"] == "paragraph"])[0]


def test_huddle_threads_and_threads_under_a_deleted_parent_keep_every_reply(bot: Bot) -> None:
    channel = declare(bot)
    huddle = bot.slack.post(channel, "USLACKBOT", "", subtype="huddle_thread", ts=stamp(1))
    huddle_replies = [
        bot.slack.post(channel, "U0ALICE", f"huddle note {i}", thread_ts=huddle, ts=stamp(2 + i))
        for i in range(4)
    ]
    parent = bot.slack.post(channel, "U0BOB", "a parent soon deleted", ts=stamp(10))
    orphan = bot.slack.post(channel, "U0ALICE", "an orphaned reply", thread_ts=parent, ts=stamp(11))
    bot.slack.delete_message(channel, parent)  # has a reply: Slack leaves a tombstone

    assert "Transcript up to date: 7 new messages" in dump(bot, channel)
    top, replies = threads([b for b in transcript(bot) if b["type"] == "paragraph"])
    assert top == [huddle, parent]
    assert line(bot, huddle).endswith(" · Huddle")
    assert replies[huddle] == huddle_replies
    assert line(bot, parent).endswith(" · (message deleted)")
    assert "soon deleted" not in FakeNotion.plain_text(block_of(bot, parent))
    assert replies[parent] == [orphan]


def test_apps_alerts_and_forwarded_messages_are_written_with_what_they_attach(bot: Bot) -> None:
    channel = declare(bot)
    alert = bot.slack.post(
        channel,
        None,
        "",
        subtype="bot_message",
        bot_id="B0PAGER",
        username="PagerDuty",
        ts=stamp(1),
        attachments=[
            {
                "pretext": "Triggered",
                "title": "High error rate on checkout",
                "fields": [{"title": "Service", "value": "checkout", "short": True}],
                "fallback": "High error rate",
            }
        ],
    )
    workflow = bot.slack.post(
        channel,
        None,
        "",
        subtype="bot_message",
        bot_id="B0FLOW",
        ts=stamp(2),
        bot_profile={"name": "Status workflow"},
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Status page updated"}}],
    )
    forward = bot.slack.post(
        channel,
        "U0BOB",
        "",
        ts=stamp(3),
        attachments=[
            {"is_share": True, "author_name": "Dana", "text": "DB failover started", "ts": "1.0"}
        ],
    )

    assert "3 new messages" in dump(bot, channel)
    assert line(bot, alert).endswith(
        " · PagerDuty: Triggered\nHigh error rate on checkout\nService: checkout"
    )
    assert line(bot, workflow).endswith(" · Status workflow: Status page updated")
    assert line(bot, forward).endswith(" · bob: (forwarded from Dana) DB failover started")


def test_an_email_address_is_plain_text_and_replies_with_code_and_quotes_stay_two_deep(
    bot: Bot,
) -> None:
    channel = declare(bot)
    mail = bot.slack.post(
        channel, "U0ALICE", "mail <mailto:oncall@acme.io|oncall@acme.io> now", ts=stamp(1)
    )
    parent = bot.slack.post(channel, "U0BOB", "what does the log say?", ts=stamp(2))
    reply = bot.slack.post(
        channel,
        "U0ALICE",
        "this:\n```Traceback (most recent call last)```\n> and the docs say\n> retry",
        thread_ts=parent,
        ts=stamp(3),
    )

    assert "3 new messages" in dump(bot, channel)
    assert line(bot, mail).endswith("mail oncall@acme.io now")
    assert all(
        not (item.get("href") or "").startswith("mailto:")
        for item in block_of(bot, mail)["paragraph"]["rich_text"]
    )
    (reply_block,) = block_of(bot, parent)["children"]
    assert linked_ts_all(reply_block) == [reply]
    assert "children" not in reply_block or not reply_block["children"]
    text = FakeNotion.plain_text(reply_block)
    assert "Traceback (most recent call last)" in text and "> and the docs say\n> retry" in text
    code = [i for i in reply_block["paragraph"]["rich_text"] if i["annotations"]["code"]]
    assert [i["plain_text"] for i in code] == ["Traceback (most recent call last)"]


def test_a_block_notion_refuses_is_written_as_text_and_the_rest_of_its_batch_goes_in(
    bot: Bot,
) -> None:
    channel = declare(bot)
    before = bot.slack.post(channel, "U0ALICE", "first, fine", ts=stamp(1))
    bad = bot.slack.post(
        channel, "U0BOB", "see <https://poison.example/x|*the dashboard*>", ts=stamp(2)
    )
    after = bot.slack.post(channel, "U0ALICE", "third, fine", ts=stamp(3))
    bot.notion.refuse_blocks_containing("poison.example")

    reply = dump(bot, channel, timeout=20)
    assert reply.startswith("Transcript up to date: 3 new messages")
    assert "Notion refused 1 block, written as plain text instead (Notion said:" in reply
    assert top_level(bot) == [before, bad, after]
    assert line(bot, bad).endswith("· bob: see *the dashboard*")
    assert line(bot, after).endswith("third, fine")
    # The refused block went in as plain text: only its first time keeps its link.
    assert line_items(block_of(bot, bad), bad)[0]["href"]
    # The refusal is known to have written nothing: no in-flight write is left to settle.
    assert bot.services.store.unfinished_transcript_write(int(bot.incident(1).id)) is None
    bot.notion.refuse_blocks_containing()
    assert "0 new messages" in dump(bot, channel, timeout=5)


def test_notion_rate_limits_pause_a_dump_and_it_resumes_with_nothing_lost(bot: Bot) -> None:
    channel = declare(bot)
    posted = [bot.slack.post(channel, "U0ALICE", f"line {i}", ts=stamp(i)) for i in range(5)]
    # More 429s than notion-client retries by itself (2), then a 529 it never retries.
    bot.notion.inject("blocks.children.append", status=429, retry_after=1, times=3)
    bot.notion.inject("blocks.children.append", status=529, retry_after=1, times=1)

    assert dump(bot, channel, timeout=30).startswith("Transcript up to date: 5 new messages")
    assert top_level(bot) == posted


@pytest.mark.timeout(90)
def test_the_capped_history_tier_is_paged_through_not_failed(bot: Bot) -> None:
    channel = declare(bot)
    top = [bot.slack.post(channel, "U0ALICE", f"line {i}", ts=stamp(i)) for i in range(40)]
    replies = [
        bot.slack.post(channel, "U0BOB", f"reply {i}", thread_ts=top[0], ts=stamp(100 + i))
        for i in range(20)
    ]
    bot.slack.clear_calls()
    bot.slack.capped_tier(window_s=0.5)  # one call per 0.5 s per method, 15 per page

    assert dump(bot, channel, timeout=80).startswith("Transcript up to date: 60 new messages")
    written, threads_written = threads([b for b in transcript(bot) if b["type"] == "paragraph"])
    assert written == top and threads_written == {top[0]: replies}
    history = [c for c in bot.slack.calls if c.method == "conversations.history"]
    assert len([c for c in history if c.ok]) >= 3  # 15 a page
    assert any(c.status == 429 for c in bot.slack.calls)  # and the limit was met
