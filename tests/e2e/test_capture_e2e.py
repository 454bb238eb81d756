"""Message events of incident channels reach the store through Socket Mode, once each.

FakeSlack pushes `message` events as Slack does for an app subscribed to
`message.channels` and `message.groups`; the real Bolt app acks them after storing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bolt_app.devkit.harness import Bot
from tests.e2e.conftest import MakeBot


@pytest.fixture
def channel(bot: Bot) -> str:
    bot.slack.message_events = True
    bot.slack.add_user("U0CAROL", "carol")
    bot.wait_reply(bot.command("declare Checkout is down"), "Declared INC-1")
    bot.wait_idle()
    cid = str(bot.incident(1).channel_id)
    with bot.slack.workspace.lock:
        for user in ("U0BOB", "U0CAROL"):
            bot.slack.workspace.join(bot.slack.workspace.channels[cid], user)
    return cid


def captured(bot: Bot) -> list[tuple[str, str | None, bool]]:
    rows = bot.services.store.captured_messages(int(bot.incident(1).id))
    return [(r.ts, r.text, r.deleted) for r in rows]


def wait_captured(bot: Bot, count: int) -> list[Any]:
    incident = int(bot.incident(1).id)
    return bot.slack.wait_for(
        lambda: (
            (rows := bot.services.store.captured_messages(incident)) and len(rows) == count and rows
        ),
        timeout=10,
    )


def acked_all(bot: Bot) -> None:
    events = [e.envelope_id for e in bot.slack.envelopes if e.type == "events_api"]
    for envelope_id in events:
        bot.slack.wait_for_ack(envelope_id, timeout=10)


def test_messages_edits_deletions_replies_and_broadcasts_are_captured(
    bot: Bot, channel: str
) -> None:
    general = bot.slack.add_channel("general", members=["U0ALICE", bot.slack.bot_user_id])
    bot.slack.post(general, "U0ALICE", "lunch?")
    first = bot.slack.post(channel, "U0ALICE", "Checkout returns 502")
    second = bot.slack.post(channel, "U0BOB", "Rolling back web-4812")
    reply = bot.slack.post(channel, "U0CAROL", "rollback done", thread_ts=second)
    broadcast = bot.slack.post(
        channel, "U0BOB", "error rate back to 1%", thread_ts=second, reply_broadcast=True
    )
    bot.slack.edit_message(channel, first, "Checkout returns 502 for everyone")
    bot.slack.delete_message(channel, reply)
    acked_all(bot)

    rows = wait_captured(bot, 4)
    by_ts = {r.ts: r for r in rows}
    assert by_ts[first].text == "Checkout returns 502 for everyone"
    assert by_ts[second].text == "Rolling back web-4812"
    assert (by_ts[reply].deleted, by_ts[reply].text) == (True, None)
    assert (by_ts[broadcast].subtype, by_ts[broadcast].thread_ts) == ("thread_broadcast", second)
    assert {r.channel_id for r in rows} == {channel}  # #general is never stored


def test_an_apps_alert_is_captured_and_our_own_messages_are_not(bot: Bot, channel: str) -> None:
    alert = bot.slack.post(
        channel,
        None,
        "",
        subtype="bot_message",
        bot_id="B0PAGER",
        username="PagerDuty",
        attachments=[{"title": "High error rate", "text": "checkout 5xx > 20%"}],
    )
    bot.slack.post(channel, bot.slack.bot_user_id, "a message by Firebreak itself")
    acked_all(bot)

    (row,) = wait_captured(bot, 1)
    assert (row.ts, row.subtype, row.bot_id) == (alert, "bot_message", "B0PAGER")
    assert row.extra == {
        "attachments": [{"title": "High error rate", "text": "checkout 5xx > 20%"}],
        "username": "PagerDuty",
    }


def test_a_retried_or_repeated_event_applies_once(bot: Bot, channel: str) -> None:
    ts = bot.slack.post(channel, "U0ALICE", "first words")
    target = bot.slack.workspace.channels[channel]
    message = bot.slack.message(channel, ts)
    edit: dict[str, Any] = {
        "subtype": "message_changed",
        "channel": channel,
        "ts": f"{float(ts) + 0.001:.6f}",  # an edit soon after the message
        "message": {**message, "text": "an old edit"},
    }
    bot.slack.message_event(edit, target, event_id="Ev0EDIT1")
    bot.slack.wait_for(lambda: captured(bot) == [(ts, "an old edit", False)], timeout=10)
    bot.slack.edit_message(channel, ts, "the newest text")
    bot.slack.wait_for(lambda: captured(bot) == [(ts, "the newest text", False)], timeout=10)
    # Slack's retry of the first edit: same event id, retry_attempt 1.
    retry = bot.slack.event(
        {"type": "message", **edit}, event_id="Ev0EDIT1", retry_attempt=1, retry_reason="timeout"
    )
    bot.slack.wait_for_ack(retry, timeout=10)
    acked_all(bot)
    assert captured(bot) == [(ts, "the newest text", False)]


def test_a_reply_before_its_parent_and_a_deleted_parent_keep_the_thread(
    bot: Bot, channel: str
) -> None:
    target = bot.slack.workspace.channels[channel]
    parent_ts, reply_ts = "1700000100.000100", "1700000100.000200"
    reply = {"user": "U0BOB", "text": "I see it too", "ts": reply_ts, "thread_ts": parent_ts}
    bot.slack.message_event({**reply, "channel": channel}, target)
    parent = {"user": "U0ALICE", "text": "is search down?", "ts": parent_ts, "thread_ts": parent_ts}
    bot.slack.message_event({**parent, "channel": channel}, target)
    wait_captured(bot, 2)

    thread = bot.slack.post(channel, "U0ALICE", "the parent")
    kept = bot.slack.post(channel, "U0BOB", "a reply", thread_ts=thread)
    bot.slack.delete_message(channel, thread)  # has a reply: becomes a tombstone
    acked_all(bot)
    bot.slack.wait_for(lambda: (thread, None, True) in captured(bot), timeout=10)
    assert (kept, "a reply", False) in captured(bot)
    assert (reply_ts, "I see it too", False) in captured(bot)
    assert (parent_ts, "is search down?", False) in captured(bot)


def test_a_deleted_secret_is_gone_from_the_sqlite_file_after_a_clean_stop(
    make_bot: MakeBot, bot_database_url: str
) -> None:
    secret = "AKIA-the-pasted-secret-" * 10
    with make_bot() as bot:
        bot.slack.message_events = True
        bot.wait_reply(bot.command("declare Keys leaked"), "Declared INC-1")
        bot.wait_idle()
        cid = str(bot.incident(1).channel_id)
        ts = bot.slack.post(cid, "U0ALICE", secret)
        wait_captured(bot, 1)
        bot.slack.delete_message(cid, ts)
        bot.slack.wait_for(lambda: captured(bot) == [(ts, None, True)], timeout=10)
    folder = Path(bot_database_url.removeprefix("sqlite:///")).parent
    stored = b"".join(p.read_bytes() for p in folder.glob("firebreak.db*") if p.is_file())
    assert b"AKIA-the-pasted-secret" not in stored
