"""Adoption takes only what this incident's own attempt made, never an old page or message
with the same label; and labels the database has already are refused before they're used.

Through the whole bot: real Socket Mode, the real clients, FakeSlack and FakeNotion.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bolt_app.adapters.notion import MARK_BASE
from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot, running_bot
from bolt_app.incidents import marks
from tests.e2e.conftest import MakeBot

HUMAN_TEXT = "What we learned in March: the retry storm came from the checkout cache."


@pytest.fixture
def bot_env() -> dict[str, str]:
    # The tests run reconcile passes themselves; a short timeout keeps the settle short.
    return {"RECONCILE_INTERVAL_SECONDS": "3600", "NOTION_TIMEOUT_SECONDS": "1"}


def old_postmortem(notion: FakeNotion, data_source_id: str, number: int) -> str:
    """A page people wrote for an earlier deployment's INC-<number>."""
    return notion.add_page(
        data_source_id=data_source_id,
        properties={
            "Name": {"title": [{"text": {"content": f"INC-{number}: March outage"}}]},
            "Incident": {"rich_text": [{"text": {"content": f"INC-{number}"}}]},
            "Status": {"select": {"name": "Resolved"}},
        },
        children=[
            {
                "type": "paragraph",
                "paragraph": {"rich_text": [{"type": "text", "text": {"content": HUMAN_TEXT}}]},
            }
        ],
    )


def snapshot(bot: Bot, page_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    page = copy.deepcopy(bot.notion.page(page_id))
    return page, copy.deepcopy(bot.notion.children_tree(page_id))


def test_an_old_page_with_the_same_label_is_never_taken_over(bot: Bot) -> None:
    """Last March's INC-1 appears (another deployment shares the database) and INC-1's
    create is answered too late: the next attempt adopts the page *it* made, which
    carries its mark, and leaves the human-written one exactly as it was."""
    old = old_postmortem(bot.notion, bot.data_source_id, 1)
    before = snapshot(bot, old)
    bot.notion.inject("pages.create", drop_response_after_handling=True)
    envelope = bot.command("declare Checkout is down")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    incident = bot.incident(1)
    assert incident.channel_id
    assert bot.services.postmortem.page_url(incident) is None, "the create was never answered"

    assert bot.reconciler().run_once() == ["INC-1"]
    pages = bot.notion.pages(bot.data_source_id, include_archived=True)
    assert len(pages) == 2, "one new page, and no third"
    (ours,) = [p for p in pages if p["id"] != old]
    assert bot.services.postmortem.page_url(incident) == ours["url"], "our own page adopted"
    label = ours["properties"]["Incident"]["rich_text"][0]
    assert label["plain_text"] == "INC-1" and str(label["href"]).startswith(MARK_BASE)
    assert snapshot(bot, old) == before, "the old page was touched"
    links = [b["link"] for b in bot.slack.bookmarks(str(incident.channel_id))]
    assert links == [ours["url"]]

    # Its dumps go to our page too, never into the human-written one.
    bot.slack.post(str(incident.channel_id), "U0ALICE", "rolled back the cache")
    dump = bot.command("dumpslack", channel_id=str(incident.channel_id))
    bot.wait_reply(dump, "Transcript up to date")
    bot.wait_idle()
    assert snapshot(bot, old) == before


def test_an_intro_is_recognised_by_its_metadata_not_its_text(bot: Bot) -> None:
    """The intro's `chat.postMessage` lands but its answer is lost: the next attempt finds
    it by the attempt's token in its message metadata, not by its text; a message of
    ours with the same text but another token is not taken for it."""
    bot.slack.inject("chat.postMessage", drop_response=True, times=1)
    envelope = bot.command("declare Checkout is down")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    channel = str(bot.incident(1).channel_id)
    (posted,) = [m for m in bot.slack.messages(channel) if m["text"].startswith("INC-1:")]
    assert posted["metadata"]["event_type"] == marks.EVENT_TYPE
    assert posted["metadata"]["event_payload"]["kind"] == "intro"

    # Newer, with the same text: another deployment's bot user would look the same.
    lookalike = {"event_type": marks.EVENT_TYPE, "event_payload": {"attempt": "not-ours"}}
    bot.app.client.chat_postMessage(channel=channel, text=posted["text"], metadata=lookalike)

    assert bot.reconciler().run_once() == ["INC-1"]
    intros = [m for m in bot.slack.messages(channel) if m["text"].startswith("INC-1:")]
    assert len(intros) == 2, "adopted, not posted again"
    adopted = bot.services.store.get_artifact(bot.incident(1).id, ArtifactKind.INTRO_MESSAGE)
    assert adopted is not None and adopted.external_id == posted["ts"]


def test_declares_over_labels_notion_has_already_are_refused(
    tmp_path: Path, make_bot: MakeBot
) -> None:
    """A store that was reset beside a database holding INC-1…INC-3: no declare makes a
    second INC-1; each is told why and what fixes it (the form too), and
    `INCIDENT_NUMBER_START=4` (what the line says) lets declares through."""

    def seed(notion: FakeNotion, data_source_id: str) -> None:
        for number in (1, 2, 3):
            old_postmortem(notion, data_source_id, number)

    line = (
        "Nothing was declared: the Notion database already has INC-1…INC-3; point "
        "DATABASE_URL at the old store or set INCIDENT_NUMBER_START=4."
    )
    url = f"sqlite:///{tmp_path / 'reset.db'}"
    with running_bot(url, seed=seed, RECONCILE_INTERVAL_SECONDS="3600") as bot:
        envelope = bot.command("declare Checkout is down")
        assert bot.ack_text(envelope) == line
        form = bot.command("declare")
        assert bot.ack_text(form) == line, "no form opened only to be refused"
        assert bot.services.store.incident_by_number(1) is None
        assert len(bot.notion.pages(bot.data_source_id)) == 3
        assert bot.slack.count("conversations.create") == 0

    with running_bot(
        url, seed=seed, RECONCILE_INTERVAL_SECONDS="3600", INCIDENT_NUMBER_START="4"
    ) as bot:
        envelope = bot.command("declare Checkout is down")
        assert "INC-4" in bot.wait_reply(envelope, "Declared")
        bot.wait_idle()
        assert len(bot.notion.pages(bot.data_source_id)) == 4
