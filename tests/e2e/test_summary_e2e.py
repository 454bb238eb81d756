"""The optional AI draft summary through the whole bot: real App, FakeSlack, FakeNotion and a
fake OpenAI-compatible endpoint reached by the real `openai` client (issues 4 and 5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bolt_app.adapters.llm import LlmConfig, OpenAIChat
from bolt_app.core.clock import utcnow
from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_llm import FakeLLM
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot
from bolt_app.transcript.summary import LABEL, DraftSummary
from tests.e2e.conftest import MakeBot

API_KEY = "sk-fake-llm-key"
REPLY = "Checkout failed for 20 minutes; a rollback fixed it."


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(REPLY) as fake:
        yield fake


@pytest.fixture
def bot_env(llm: FakeLLM) -> dict[str, str]:
    return {
        "RECONCILE_INTERVAL_SECONDS": "3600",
        "NOTION_TIMEOUT_SECONDS": "2",
        "LLM_BASE_URL": llm.base_url,
        "LLM_API_KEY": API_KEY,
        "LLM_MODEL": "fake-model",
    }


def declare(bot: Bot, title: str = "Checkout is down") -> str:
    envelope = bot.command(f"declare {title}")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    return str(bot.incident(1).channel_id)


def talk(bot: Bot, channel: str, *lines: str) -> None:
    for line in lines:
        bot.slack.post(channel, "U0ALICE", line)


def dump(bot: Bot, channel: str) -> str:
    envelope = bot.command("dumpslack", channel_id=channel)
    reply = bot.wait_reply(envelope, "Transcript", timeout=30)
    bot.slack.wait_for(bot.services.dumps.idle, timeout=30)
    return reply


def top_blocks(bot: Bot) -> list[dict[str, Any]]:
    (page,) = bot.notion.pages(bot.data_source_id)
    return bot.notion.children_tree(page["id"])


def callouts(bot: Bot) -> list[dict[str, Any]]:
    return [
        b
        for b in top_blocks(bot)
        if b["type"] == "callout" and FakeNotion.plain_text(b).startswith(LABEL)
    ]


def test_the_callout_goes_under_summary_is_updated_in_place_and_a_no_op_dump_calls_nothing(
    bot: Bot, llm: FakeLLM
) -> None:
    channel = declare(bot)
    talk(bot, channel, "checkout returns 500s", "rolling back deploy 42")

    assert dump(bot, channel).startswith("Transcript up to date: 2 new messages")

    (callout,) = callouts(bot)
    assert REPLY in FakeNotion.plain_text(callout)
    titles = [FakeNotion.plain_text(b) for b in top_blocks(bot)]
    assert titles[titles.index("Summary") + 1].startswith(LABEL)
    (request,) = llm.requests
    assert request.body["model"] == "fake-model"
    assert request.authorization == f"Bearer {API_KEY}"
    assert "alice: checkout returns 500s" in request.user_text
    assert "Checkout is down" in request.user_text
    for secret in (bot.settings.slack_bot_token, bot.settings.notion_token, API_KEY):
        assert secret not in str(request.body)

    writes = bot.notion.write_count()
    assert dump(bot, channel).startswith("Transcript up to date: 0 new messages")
    assert llm.count() == 1 and bot.notion.write_count() == writes

    llm.reply = "Resolved by rolling back deploy 42."
    talk(bot, channel, "all green again")
    dump(bot, channel)
    (updated,) = callouts(bot)
    assert updated["id"] == callout["id"]
    assert "Resolved by rolling back deploy 42." in FakeNotion.plain_text(updated)
    assert "alice: all green again" in llm.requests[-1].user_text


def test_a_private_incident_never_reaches_the_endpoint(bot: Bot, llm: FakeLLM) -> None:
    channel = declare(bot, "--private Payroll data exposed")
    assert bot.incident(1).private
    talk(bot, channel, "secret stuff", "more secret stuff")

    assert dump(bot, channel).startswith("Transcript up to date: 2 new messages")

    assert llm.count() == 0
    assert callouts(bot) == []

    # The lifecycle's dump (status mitigated) with a new message: still nothing sent.
    talk(bot, channel, "even more secret stuff")
    bot.command("status mitigated", channel_id=channel, user_id="U0ALICE")
    incident_id = int(bot.incident(1).id)
    bot.slack.wait_for(
        lambda: (
            len(
                [
                    k
                    for k in bot.services.store.transcript_ts(incident_id)
                    if not k.startswith(("event:", "day:"))
                ]
            )
            == 3
        ),
        timeout=30,
    )
    bot.slack.wait_for(bot.services.dumps.idle, timeout=30)
    assert bot.incident(1).status == "mitigated"
    assert llm.count() == 0
    assert callouts(bot) == []


def test_a_failing_endpoint_never_fails_the_dump_and_the_next_dump_writes_the_callout(
    bot: Bot, llm: FakeLLM
) -> None:
    channel = declare(bot)
    talk(bot, channel, "checkout returns 500s")
    llm.status = 500

    assert dump(bot, channel).startswith("Transcript up to date: 1 new message")
    assert llm.count() == 2  # the client's one retry, then the dump carries on
    assert callouts(bot) == []

    llm.status = 200
    talk(bot, channel, "rolled back")
    dump(bot, channel)
    (callout,) = callouts(bot)
    assert REPLY in FakeNotion.plain_text(callout)


def test_a_timeout_never_fails_the_dump(bot: Bot, llm: FakeLLM) -> None:
    """The real client with a short timeout (the built one waits 30 s) against a slow fake."""
    services = bot.services
    config = LlmConfig(
        base_url=llm.base_url, model="fake-model", api_key=API_KEY, timeout_s=0.5, max_retries=0
    )
    services.transcript.summary = DraftSummary(
        store=services.store,
        notion=services.notion,
        model=OpenAIChat(config),
        clock=utcnow,
        label=services.incidents.label,
    )
    channel = declare(bot)
    talk(bot, channel, "checkout returns 500s")
    llm.delay = 5.0

    assert dump(bot, channel).startswith("Transcript up to date: 1 new message")
    assert llm.count() == 1
    assert callouts(bot) == []


def test_a_deleted_callout_comes_back_once(bot: Bot, llm: FakeLLM) -> None:
    channel = declare(bot)
    talk(bot, channel, "first")
    dump(bot, channel)
    (callout,) = callouts(bot)
    bot.services.notion.update_block(callout["id"], {"in_trash": True})

    talk(bot, channel, "second")
    dump(bot, channel)

    (again,) = callouts(bot)
    assert again["id"] != callout["id"]


def test_without_a_summary_heading_the_callout_goes_to_the_top(
    tmp_path: Path, make_bot: MakeBot
) -> None:
    template = tmp_path / "template.md"
    template.write_text("## Impact\n\nWho was affected.\n\n## Slack transcript\n")
    with make_bot(POSTMORTEM_TEMPLATE=str(template)) as bot:
        channel = declare(bot)
        talk(bot, channel, "checkout returns 500s")
        dump(bot, channel)
        first = top_blocks(bot)[0]
        assert first["type"] == "callout" and REPLY in FakeNotion.plain_text(first)


def test_an_unanswered_callout_insert_is_adopted_not_repeated(bot: Bot, llm: FakeLLM) -> None:
    """The insert lands but its answer never comes (a crash, a timeout): the next refresh
    adopts that callout through the attempt record instead of adding a second one."""
    channel = declare(bot)
    talk(bot, channel, "checkout returns 500s")
    llm.status = 500
    dump(bot, channel)  # the transcript is written; no callout yet
    llm.status = 200
    incident = bot.incident(1)
    store = bot.services.store
    page_id = str(store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM).external_id)
    heading_id = str(
        store.get_artifact(int(incident.id), ArtifactKind.TRANSCRIPT_HEADING).external_id
    )
    summary = bot.services.transcript.summary
    assert summary is not None

    bot.notion.inject("blocks.children.append", drop_response_after_handling=True)
    assert summary.refresh(incident, page_id, heading_id) is False
    (landed,) = callouts(bot)
    assert store.get_artifact(int(incident.id), ArtifactKind.AI_SUMMARY) is None

    llm.reply = "Adopted, then updated."
    assert summary.refresh(incident, page_id, heading_id) is True
    (adopted,) = callouts(bot)
    assert adopted["id"] == landed["id"]
    assert "Adopted, then updated." in FakeNotion.plain_text(adopted)


def test_a_notion_failure_while_updating_the_callout_never_fails_the_dump(
    bot: Bot, llm: FakeLLM
) -> None:
    channel = declare(bot)
    talk(bot, channel, "first")
    dump(bot, channel)
    bot.notion.inject("blocks.update", status=500, times=3)  # more than updates are retried
    llm.reply = "A newer draft."

    # A reply: appended under its parent, so the one failing update is the callout's
    # (a new top-level line would extend the transcript's last block with an update).
    first = bot.slack.messages(channel)[-1]["ts"]
    bot.slack.post(channel, "U0ALICE", "second", thread_ts=first)
    assert dump(bot, channel).startswith("Transcript up to date: 1 new message")

    (callout,) = callouts(bot)
    assert REPLY in FakeNotion.plain_text(callout)  # the earlier draft is kept
