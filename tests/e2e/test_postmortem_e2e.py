"""The postmortem page and bookmark through the whole bot: declare, outages, repair, reconcile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion, default_postmortem_schema
from bolt_app.devkit.harness import Bot, running_bot
from bolt_app.formats.template import TRANSCRIPT_HEADING
from bolt_app.incidents.postmortem import BOOKMARK_TITLE
from tests.e2e.conftest import MakeBot


@pytest.fixture
def bot_env() -> dict[str, str]:
    # A long interval: these tests run reconcile passes themselves.
    return {"RECONCILE_INTERVAL_SECONDS": "3600"}


def declare(bot: Bot, title: str = "Checkout is down") -> dict[str, Any]:
    envelope = bot.command(f"declare {title}")
    bot.wait_reply(envelope, "Declared")
    bot.wait_idle()
    incident = bot.services.store.incident_by_number(1)
    assert incident is not None and incident.channel_id
    return bot.slack.channel(str(incident.channel_id))


def bot_messages(bot: Bot, channel: str) -> list[str]:
    return [m["text"] for m in bot.slack.messages(channel) if m.get("bot_id")]


def assert_page_with_template(bot: Bot) -> dict[str, Any]:
    pages = bot.notion.pages(bot.data_source_id, include_archived=True)
    assert len(pages) == 1, f"{len(pages)} pages"
    tree = bot.notion.children_tree(pages[0]["id"])
    heads = [FakeNotion.plain_text(b) for b in tree if str(b["type"]).startswith("heading_")]
    assert {"Summary", "Timeline", "Root cause", "Action items", TRANSCRIPT_HEADING} <= set(heads)
    transcript = next(b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING)
    assert transcript[transcript["type"]]["is_toggleable"] is True
    props = pages[0]["properties"]
    assert FakeNotion.property_text(pages[0], "Incident") == "INC-1"
    assert props["Severity"]["select"]["name"] == "P3"
    assert props["Status"]["select"]["name"] == "Active"
    return pages[0]


def assert_bookmarked(bot: Bot, channel: str, page: dict[str, Any]) -> None:
    bookmarks = bot.slack.bookmarks(channel)
    assert [(b["title"], b["link"]) for b in bookmarks] == [(BOOKMARK_TITLE, page["url"])]


def test_declare_makes_a_templated_page_with_properties_and_bookmarks_it(bot: Bot) -> None:
    channel = declare(bot)
    page = assert_page_with_template(bot)
    assert FakeNotion.property_text(page, "Name") == "INC-1: Checkout is down"
    assert page["properties"]["Channel"]["url"].endswith(f"/archives/{channel['id']}")
    text = " ".join(FakeNotion.plain_text(b) for b in bot.notion.children_tree(page["id"]))
    assert "commander @alice" in text and "U0ALICE" not in text
    assert_bookmarked(bot, channel["id"], page)
    assert bot.slack.count("chat.postMessage") == 1  # the intro; no message for the bookmark
    (intro,) = [m for m in bot.slack.messages(channel["id"]) if m.get("bot_id")]
    assert f"<{page['url']}|Postmortem doc>" in str(intro["blocks"])


def test_notion_down_at_declaration_is_said_once_and_healed_by_the_reconciler(bot: Bot) -> None:
    bot.notion.inject("pages.create", status=503, times=None)
    channel = declare(bot)
    messages = bot_messages(bot, channel["id"])
    failures = [m for m in messages if m.startswith("Couldn't create the postmortem page yet")]
    assert len(failures) == 1
    assert "`/incident repair` retries now" in failures[0]
    assert bot.notion.pages(bot.data_source_id) == []
    assert bot.slack.bookmarks(channel["id"]) == []

    assert bot.reconciler().run_once() == []  # still down: nothing healed, nothing said
    assert len(bot_messages(bot, channel["id"])) == len(messages)

    bot.notion.clear_faults()
    assert bot.reconciler().run_once() == ["INC-1"]
    page = assert_page_with_template(bot)
    assert_bookmarked(bot, channel["id"], page)
    assert bot.reconciler().run_once() == []  # complete: nothing more to do
    assert len(bot.notion.pages(bot.data_source_id, include_archived=True)) == 1


def test_a_failed_bookmark_is_retried_by_the_reconciler(bot: Bot) -> None:
    bot.slack.inject("bookmarks.add", error="restricted_action")
    channel = declare(bot)
    page = assert_page_with_template(bot)
    assert bot.slack.bookmarks(channel["id"]) == []

    assert bot.reconciler().run_once() == ["INC-1"]
    assert_bookmarked(bot, channel["id"], page)


def test_repair_brings_back_a_removed_bookmark(bot: Bot) -> None:
    channel = declare(bot)
    page = assert_page_with_template(bot)
    bookmark = bot.slack.bookmarks(channel["id"])[0]
    bot.app.client.bookmarks_remove(channel_id=channel["id"], bookmark_id=bookmark["id"])
    assert bot.slack.bookmarks(channel["id"]) == []

    envelope = bot.command("repair", channel_id=channel["id"])
    reply = bot.wait_reply(envelope, "Bookmark")
    assert reply == ("Channel: ok · Postmortem page: ok · Bookmark: re-added · Intro message: ok")
    assert_bookmarked(bot, channel["id"], page)
    bot.wait_idle()
    again = bot.command("repair", channel_id=channel["id"])
    assert "Bookmark: ok" in bot.wait_reply(again, "Bookmark")
    assert len(bot.slack.bookmarks(channel["id"])) == 1


def test_repair_creates_a_missing_page_with_its_template(bot: Bot) -> None:
    bot.notion.inject("pages.create", status=500, times=1)
    channel = declare(bot)
    envelope = bot.command("repair", channel_id=channel["id"])
    assert "Postmortem page: created · Bookmark: created" in bot.wait_reply(envelope, "Bookmark")
    page = assert_page_with_template(bot)
    assert_bookmarked(bot, channel["id"], page)


def test_doc_links_the_page(bot: Bot) -> None:
    channel = declare(bot)
    page = assert_page_with_template(bot)
    envelope = bot.command("doc", channel_id=channel["id"])
    assert bot.wait_reply(envelope) == f"INC-1 postmortem: <{page['url']}|INC-1: Checkout is down>"


@pytest.mark.parametrize("subcommand", ["repair", "doc"])
def test_incident_commands_outside_an_incident_channel(bot: Bot, subcommand: str) -> None:
    general = bot.slack.add_channel("general", members=["U0ALICE"])
    envelope = bot.command(subcommand, channel_id=general)
    assert bot.wait_reply(envelope).startswith("This isn't an incident channel.")
    assert bot.slack.count("conversations.create") == 0


def test_a_refused_channel_is_said_and_the_declarer_hears_when_it_is_ready(
    make_bot: MakeBot,
) -> None:
    """Slack refuses conversations.create: the declarer hears why at once, the declare's
    inbox row runs again (not said twice), and when the channel exists they hear it."""
    with make_bot(RECONCILE_INTERVAL_SECONDS="0.5") as bot:
        bot.slack.inject("conversations.create", error="restricted_action", times=2)
        envelope = bot.command("declare no permission")
        assert bot.wait_reply(envelope) == (
            "Slack refused to create INC-1's channel (`restricted_action`); "
            "I'll keep trying and tell you here when it's ready."
        )
        ready = bot.wait_reply(envelope, "INC-1 is ready", timeout=30)
        channel = bot.slack.channel_by_name("inc-1-no-permission")
        assert channel is not None and ready == f"INC-1 is ready: <#{channel['id']}>"
        assert len(bot.replies_to(envelope)) == 2
        assert [c["name"] for c in bot.slack.channels() if c["name"].startswith("inc-")] == [
            "inc-1-no-permission"
        ]


UPSTREAM = "upstream connect error or disconnect/reset before headers. reset reason: overflow"


def test_a_slack_answer_that_is_not_json_is_said_as_slack_having_trouble(bot: Bot) -> None:
    """A proxy in front of Slack answers 503 with a text page (past the client's two
    retries): the declarer hears that Slack is having trouble, never the page's words."""
    bot.slack.inject("conversations.create", status=503, raw_body=UPSTREAM, times=3)
    envelope = bot.command("declare upstream trouble")
    assert bot.wait_reply(envelope) == (
        "Slack is having trouble, so INC-1's channel isn't made yet; "
        "I'll keep trying and tell you here when it's ready."
    )
    bot.wait_idle()
    assert bot.slack.count("conversations.create") == 3
    said = " ".join(bot.replies_to(envelope))
    assert "upstream" not in said and "non-JSON" not in said


def test_a_redelivered_declare_makes_one_incident(bot: Bot) -> None:
    body_text = "declare twice delivered"
    first = bot.command(body_text)
    bot.wait_reply(first, "Declared")
    bot.wait_idle()
    envelope = next(e for e in bot.slack.envelopes if e.envelope_id == first)
    bot.slack.push_envelope("slash_commands", envelope.message["payload"])
    bot.wait_idle()
    assert bot.services.store.incident_by_number(2) is None
    assert len([c for c in bot.slack.channels() if c["name"].startswith("inc-")]) == 1


def test_the_running_reconciler_heals_without_a_human(make_bot: MakeBot) -> None:
    with make_bot(RECONCILE_INTERVAL_SECONDS="0.5") as bot:
        bot.notion.inject("pages.create", status=503, times=None)
        channel = declare(bot)
        assert bot.slack.bookmarks(channel["id"]) == []
        bot.notion.clear_faults()
        bot.slack.wait_for(lambda: bot.slack.bookmarks(channel["id"]), timeout=10)
        page = assert_page_with_template(bot)
        assert_bookmarked(bot, channel["id"], page)


@pytest.mark.parametrize("status", [429, 529])
def test_a_long_notion_rate_limit_at_declaration_is_said_once_and_the_page_follows(
    bot: Bot, status: int
) -> None:
    """Notion's Retry-After can be a minute or more: the declare does not wait or fail.
    The channel hears once that the page will follow, and the reconciler makes it."""
    bot.notion.inject("pages.create", status=status, retry_after=90, times=1)
    channel = declare(bot)
    said = [m for m in bot_messages(bot, channel["id"]) if "rate-limiting" in m]
    assert said == ["Notion is rate-limiting us; the page will follow (I'll keep trying)."]
    assert bot.notion.pages(bot.data_source_id) == []
    assert bot.reconciler().run_once() == ["INC-1"]
    page = assert_page_with_template(bot)
    assert_bookmarked(bot, channel["id"], page)
    assert len([m for m in bot_messages(bot, channel["id"]) if "rate-limiting" in m]) == 1


@pytest.mark.parametrize("how", ["archived", "trashed"])
def test_a_page_someone_put_away_is_said_and_never_written_into(bot: Bot, how: str) -> None:
    """Notion's `is_archived` and `in_trash`: `doc` says where the page is, a dump writes
    nothing into it and says why, and `repair` restores a trashed page (Notion allows
    `in_trash: false`) but leaves an archived one to the person who archived it."""
    channel = declare(bot)
    page = assert_page_with_template(bot)
    if how == "archived":
        bot.notion.archive_page(page["id"])
        where = "was archived in Notion"
    else:
        bot.notion.trash_page(page["id"])
        where = "was moved to Notion's trash on "
    doc = bot.command("doc", channel_id=channel["id"])
    assert where in bot.wait_reply(doc, where)
    info = bot.command("info", channel_id=channel["id"])
    said = bot.wait_reply(info, "Transcript")
    assert "Transcript: paused, 0 message(s) written before it was put away" in said
    assert f"Postmortem doc>: the postmortem page {where}" in said
    if how == "trashed":
        assert "`/incident repair` restores it" in said
    bot.slack.post(channel["id"], "U0ALICE", "a line that must not land in a put-away page")
    appends = bot.notion.count("blocks.children.append")
    dump = bot.command("dumpslack", channel_id=channel["id"])
    assert bot.wait_reply(dump, "Nothing was written").startswith(
        f"Nothing was written: the postmortem page {where}"
    )
    bot.wait_idle()
    assert bot.notion.count("blocks.children.append") == appends
    repair = bot.command("repair", channel_id=channel["id"])
    said = bot.wait_reply(repair, "Channel")
    if how == "archived":
        assert f"Postmortem page: the postmortem page {where}" in said
        return
    assert "Postmortem page: restored from Notion's trash" in said
    assert bot.notion.page(page["id"])["in_trash"] is False
    again = bot.command("dumpslack", channel_id=channel["id"])
    assert bot.wait_reply(again, "Transcript up to date").startswith(
        "Transcript up to date: 1 new message"
    )


def test_the_intro_links_the_page_once_it_heals(bot: Bot) -> None:
    """Declared while Notion was down, the intro says the doc is being created; once the
    reconciler makes the page, the same intro message links it (edited, not reposted)."""
    bot.notion.inject("pages.create", status=503, times=1)
    channel = declare(bot)
    (intro,) = [m for m in bot.slack.messages(channel["id"]) if m["text"].startswith("INC-1:")]
    assert "Postmortem doc: being created" in str(intro["blocks"])
    assert bot.reconciler().run_once() == ["INC-1"]
    page = assert_page_with_template(bot)
    (edited,) = [m for m in bot.slack.messages(channel["id"]) if m["text"].startswith("INC-1:")]
    assert edited["ts"] == intro["ts"]
    assert f"<{page['url']}|Postmortem doc>" in str(edited["blocks"])
    assert bot.slack.edit_count(channel["id"], intro["ts"]) == 1
    assert bot.reconciler().run_once() == []  # complete: nothing edited again
    assert bot.slack.edit_count(channel["id"], intro["ts"]) == 1


def test_repair_makes_a_page_that_is_gone_again_and_bookmarks_it(bot: Bot) -> None:
    """The page was deleted for good (or unshared): every request for it is a 404.
    `repair` makes a new page with the template, takes the dead bookmark down and adds
    the new one, relinks the intro, and the next dump writes the whole transcript again."""
    channel = declare(bot)
    old = assert_page_with_template(bot)
    bot.slack.post(channel["id"], "U0ALICE", "rolled back the cache")
    first = bot.command("dumpslack", channel_id=channel["id"])
    bot.wait_reply(first, "Transcript up to date")
    bot.wait_idle()
    bot.notion.delete_page(old["id"])

    doc = bot.command("doc", channel_id=channel["id"])
    assert "is gone from Notion" in bot.wait_reply(doc, "gone")
    repair = bot.command("repair", channel_id=channel["id"])
    said = bot.wait_reply(repair, "Channel")
    assert said == (
        "Channel: ok · Postmortem page: made again (the old one is gone from Notion) · "
        "Bookmark: created · Intro message: ok"
    )
    new = assert_page_with_template(bot)
    assert new["id"] != old["id"]
    assert_bookmarked(bot, channel["id"], new)
    (intro,) = [m for m in bot.slack.messages(channel["id"]) if m["text"].startswith("INC-1:")]
    assert f"<{new['url']}|Postmortem doc>" in str(intro["blocks"])

    again = bot.command("dumpslack", channel_id=channel["id"])
    assert bot.wait_reply(again, "Transcript up to date").startswith(
        "Transcript up to date: 1 new message"
    )
    bot.wait_idle()
    tree = bot.notion.children_tree(new["id"])
    (heading,) = [b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING]
    assert "rolled back the cache" in " ".join(
        FakeNotion.plain_text(b) for b in heading["children"]
    )
    assert bot.reconciler().run_once() == []  # nothing left to heal


def test_status_and_severity_of_notions_own_status_type_through_a_declare(
    tmp_path: Path,
) -> None:
    """A real-world database whose Status and Severity are Notion `status` properties:
    declared, changed and resolved over Socket Mode, each written as a status value."""
    statuses = ["Active", "Mitigated", "Resolved", "Postmortem", "Done", "Canceled"]
    schema = {
        **default_postmortem_schema(),
        "Status": {"status": {"options": [{"name": n} for n in statuses]}},
        "Severity": {"status": {"options": [{"name": f"P{i}"} for i in range(5)]}},
    }
    url = f"sqlite:///{tmp_path / 'status.db'}"
    with running_bot(url, schema=schema, RECONCILE_INTERVAL_SECONDS="3600") as bot:
        channel = declare(bot)
        (page,) = bot.notion.pages(bot.data_source_id)
        props = page["properties"]
        assert (props["Status"]["status"]["name"], props["Severity"]["status"]["name"]) == (
            "Active",
            "P3",
        )
        for text, said in (("severity P1", "severity"), ("status mitigated", "status")):
            envelope = bot.command(text, channel_id=channel["id"])
            bot.ack_text(envelope)
            bot.wait_idle()
            assert not [r for r in bot.replies_to(envelope) if "failed" in r.lower()], said
        props = bot.notion.page(page["id"])["properties"]
        assert (props["Status"]["status"]["name"], props["Severity"]["status"]["name"]) == (
            "Mitigated",
            "P1",
        )
