"""Regression tests for four failure modes known from other incident bots.

Sentry's Firetower shipped its postmortem-page protocol with these open bugs: the
bookmark was never retried; the race loser left an orphan page; some failures returned
silently; and pages created early lacked the template. Each test drives the
whole bot and fails if the bug comes back.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from bolt_app.formats.template import TRANSCRIPT_HEADING


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600"}


def channel_of(bot: Bot, number: int = 1) -> str:
    incident = bot.services.store.incident_by_number(number)
    assert incident is not None and incident.channel_id
    return str(incident.channel_id)


def bot_texts(bot: Bot, channel: str) -> list[str]:
    return [m["text"] for m in bot.slack.messages(channel) if m.get("bot_id")]


def test_a_failed_bookmark_is_said_and_retried(bot: Bot) -> None:
    bot.slack.inject("bookmarks.add", error="restricted_action")
    envelope = bot.command("declare bookmark fails")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    channel = channel_of(bot)
    assert (
        "Couldn't bookmark the postmortem page yet: Slack said `restricted_action` to "
        "bookmarks.add. I'll keep trying; `/incident repair` retries now."
    ) in bot_texts(bot, channel)
    assert bot.slack.bookmarks(channel) == []
    bot.reconciler().run_once()
    assert len(bot.slack.bookmarks(channel)) == 1


def test_racing_triggers_leave_no_orphan_page(bot: Bot) -> None:
    bot.notion.set_latency(0.3, "pages.create")
    envelope = bot.command("declare race")
    bot.wait_reply(envelope, "Declared")
    channel = channel_of(bot)
    # While declaration is still creating the page, repair and the reconciler race it.
    repairs = [bot.command("repair", channel_id=channel) for _ in range(5)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: bot.reconciler().run_once(), range(3)))
    for repair in repairs:
        bot.wait_reply(repair, "Bookmark", timeout=30)
    bot.wait_idle(timeout=30)
    assert len(bot.notion.pages(bot.data_source_id, include_archived=True)) == 1
    assert bot.notion.count("pages.create") == 1
    assert len(bot.slack.bookmarks(channel)) == 1


@pytest.mark.parametrize(
    ("fault", "where", "expected"),
    [
        (
            ("slack", "conversations.create"),
            "reply",
            "Slack refused to create INC-1's channel (`restricted_action`)",
        ),
        (("notion", "pages.create"), "channel", "Couldn't create the postmortem page yet: "),
        (("slack", "bookmarks.add"), "channel", "Couldn't bookmark the postmortem page yet: "),
        (
            ("slack", "conversations.setTopic"),
            "reply",
            "Slack said `restricted_action` to conversations.setTopic",
        ),
        (
            ("slack-reset", "conversations.create"),
            "reply",
            "Slack is having trouble, so INC-1's channel isn't made yet",
        ),
    ],
)
def test_no_failure_is_silent(bot: Bot, fault: tuple[str, str], where: str, expected: str) -> None:
    service, method = fault
    if service == "slack":
        bot.slack.inject(method, error="restricted_action")
    elif service == "slack-reset":  # more resets than slack_sdk's retry handler retries
        bot.slack.inject(method, reset=True, times=5)
    else:
        bot.notion.inject(method, status=400, error_code="validation_error")
    envelope = bot.command("declare something breaks")
    bot.slack.wait_for_ack(envelope)  # the work is handed off before the ack
    bot.wait_idle()
    if where == "reply":
        assert any(t.startswith(expected) for t in bot.replies_to(envelope)), bot.replies_to(
            envelope
        )
    else:
        assert any(t.startswith(expected) for t in bot_texts(bot, channel_of(bot)))


@pytest.mark.parametrize("trigger", ["reconciler", "repair"])
def test_a_page_created_early_has_the_template(bot: Bot, trigger: str) -> None:
    bot.notion.inject("pages.create", status=503, times=1)
    envelope = bot.command("declare early page")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    channel = channel_of(bot)
    if trigger == "reconciler":
        bot.reconciler().run_once()
    else:
        bot.wait_reply(bot.command("repair", channel_id=channel), "Bookmark")
    (page,) = bot.notion.pages(bot.data_source_id)
    heads = [
        FakeNotion.plain_text(b)
        for b in bot.notion.children_tree(page["id"])
        if str(b["type"]).startswith("heading_")
    ]
    assert {
        "Summary",
        "Impact",
        "Timeline",
        "Root cause",
        "Action items",
        TRANSCRIPT_HEADING,
    } <= set(heads)
