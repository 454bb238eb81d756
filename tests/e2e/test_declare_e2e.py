"""`/incident declare` end to end: real Bolt, real Socket Mode, real clients, local fakes."""

from __future__ import annotations

from typing import Any

import pytest

from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.harness import Bot, running_bot
from bolt_app.formats import slack_blocks as blocks
from bolt_app.incidents.postmortem import BOOKMARK_TITLE
from tests.helpers.factories import form_values


def test_declare_creates_channel_invite_topic_intro_and_bookmark(bot: Bot) -> None:
    general = bot.slack.add_channel("general", members=["U0ALICE"])
    envelope = bot.command("declare Checkout is down", channel_id=general)

    assert bot.ack_text(envelope) == "Declaring “Checkout is down”…"
    reply = bot.wait_reply(envelope, "Declared INC-1")
    channel = bot.slack.wait_for(lambda: bot.slack.channel_by_name("inc-1-checkout-is-down"))
    assert reply == f"Declared INC-1: <#{channel['id']}>"
    bot.wait_idle()

    assert "U0ALICE" in bot.slack.members(channel["id"])
    assert bot.slack.topic(channel["id"]) == "INC-1 · P3 · active · commander <@U0ALICE>"
    intro = [m for m in bot.slack.messages(channel["id"]) if m.get("bot_id")]
    assert len(intro) == 1 and "INC-1: Checkout is down" in intro[0]["text"]

    incident = bot.incident(1)
    assert (incident.title, incident.status, incident.severity) == (
        "Checkout is down",
        "active",
        "P3",
    )
    assert (incident.reporter, incident.commander) == ("U0ALICE", "U0ALICE")
    assert incident.channel_id == channel["id"]
    assert [e.kind for e in bot.services.store.events(int(incident.id))] == ["declared"]

    pages = bot.notion.pages(bot.data_source_id)
    assert len(pages) == 1
    page = bot.services.store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
    assert page is not None and page.url == pages[0]["url"]
    bookmarks = bot.slack.bookmarks(channel["id"])
    assert [(b["title"], b["link"]) for b in bookmarks] == [(BOOKMARK_TITLE, page.url)]


def test_declare_from_a_dm_answers_the_declarer(bot: Bot) -> None:
    envelope = bot.command("declare db failover", channel_id="D0ALICEDM")
    assert bot.wait_reply(envelope, "Declared INC-1")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("declare    ", None),  # opens the modal instead
        ("frobnicate", "Sorry, I don't know `/incident frobnicate`."),
        ("", "*/incident* commands:"),
        ("help", "*/incident* commands:"),
        ("declare " + "x" * 501, "That title is 501 characters"),
        ("declare " + "x" * 5000, "That title is 5,000 characters"),
    ],
)
def test_bad_or_helpful_input_is_answered_in_the_ack(
    bot: Bot, text: str, answer: str | None
) -> None:
    envelope = bot.command(text)
    ack = bot.ack_text(envelope)
    if answer is None:
        assert ack == ""
        bot.slack.wait_for(lambda: bot.slack.views())
    else:
        assert ack.startswith(answer)
    bot.wait_idle()
    assert bot.services.store.incident_by_number(1) is None
    assert bot.slack.count("conversations.create") == 0


def test_emoji_only_title_gets_the_bare_channel_name(bot: Bot) -> None:
    envelope = bot.command("declare 🔥🔥🔥")
    bot.wait_reply(envelope, "Declared INC-1")
    assert bot.slack.channel_by_name("inc-1") is not None
    assert bot.incident(1).title == "🔥🔥🔥"


def test_500_character_title_is_kept_and_cut_only_for_the_channel(bot: Bot) -> None:
    title = ("word " * 100).strip()[:500]
    envelope = bot.command(f"declare {title}")
    bot.wait_reply(envelope, "Declared INC-1")
    incident = bot.incident(1)
    assert incident.title == title
    assert incident.channel_name is not None and len(incident.channel_name) <= 80


def test_name_taken_gets_a_suffix(bot: Bot) -> None:
    bot.slack.add_channel("inc-1-db", creator="U0BOB", bot_member=False)
    envelope = bot.command("declare db")
    bot.wait_reply(envelope, "Declared INC-1")
    assert bot.incident(1).channel_name == "inc-1-db-2"


def test_429_on_create_is_retried_without_delaying_the_ack(bot: Bot) -> None:
    bot.slack.inject("conversations.create", status=429, retry_after=1, times=1)
    envelope = bot.command("declare rate limited")
    ack = bot.slack.wait_for_ack(envelope, timeout=5)
    assert ack.latency_s < 1.0
    bot.wait_reply(envelope, "Declared INC-1")
    statuses = [c.status for c in bot.slack.calls_to("conversations.create")]
    assert statuses == [429, 200]


def test_dropped_socket_reconnects_and_the_next_envelope_is_handled(bot: Bot) -> None:
    before = bot.slack.connections_total
    bot.slack.drop_sockets()
    bot.slack.wait_for(
        lambda: bot.slack.connections_total > before and bot.slack.connection_count == 1, timeout=10
    )
    envelope = bot.command("help")
    assert bot.ack_text(envelope).startswith("*/incident* commands:")


def test_disconnect_refresh_reconnects(bot: Bot) -> None:
    before = bot.slack.connections_total
    bot.slack.send_disconnect("refresh_requested")
    bot.slack.wait_for(lambda: bot.slack.connections_total > before, timeout=10)
    envelope = bot.command("help")
    assert bot.ack_text(envelope, timeout=10).startswith("*/incident* commands:")


def open_form(bot: Bot) -> dict[str, Any]:
    envelope = bot.command("declare")
    assert bot.ack_text(envelope) == ""
    view: dict[str, Any] = bot.slack.wait_for(lambda: bot.slack.views())[-1]
    assert view["callback_id"] == blocks.DECLARE_CALLBACK_ID
    return view


@pytest.mark.parametrize(
    ("title", "severity", "errors"),
    [
        ("   ", "P3", {blocks.TITLE_BLOCK: "An incident needs a title"}),
        ("fine", "P9", {blocks.SEVERITY_BLOCK: "Severity must be one of P0, P1, P2, P3, P4"}),
        (
            "x" * 600,
            "P9",
            {
                blocks.TITLE_BLOCK: "That title is 600 characters",
                blocks.SEVERITY_BLOCK: "Severity must be one of",
            },
        ),
    ],
)
def test_the_form_refuses_bad_fields_inline(
    bot: Bot, title: str, severity: str, errors: dict[str, str]
) -> None:
    view = open_form(bot)
    envelope = bot.slack.view_submission({"id": view["id"]}, values=form_values(title, severity))
    ack = bot.slack.wait_for_ack(envelope)
    assert ack.payload is not None and ack.payload["response_action"] == "errors"
    assert set(ack.payload["errors"]) == set(errors)
    for block_id, start in errors.items():
        assert ack.payload["errors"][block_id].startswith(start)
    bot.wait_idle()
    assert bot.services.store.incident_by_number(1) is None


def test_the_form_declares_with_its_severity_and_answers_where_it_was_opened(bot: Bot) -> None:
    view = open_form(bot)
    envelope = bot.slack.view_submission(
        {"id": view["id"]}, values=form_values("Search is slow", "P1")
    )
    assert bot.slack.wait_for_ack(envelope).payload in (None, {})
    reply = bot.slack.wait_for(
        lambda: [p for p in bot.slack.responses if "Declared INC-1" in str(p.body.get("text"))]
    )
    assert len(reply) == 1
    bot.wait_idle()
    incident = bot.incident(1)
    assert (incident.title, incident.severity) == ("Search is slow", "P1")
    assert bot.slack.topic(str(incident.channel_id)).startswith("INC-1 · P1 · active")
    # A second submit of the same form is the same incident, not a second one.
    again = bot.slack.view_submission(
        {"id": view["id"]}, values=form_values("Search is slow", "P1")
    )
    bot.slack.wait_for_ack(again)
    bot.wait_idle()
    assert bot.services.store.incident_by_number(2) is None


def test_slack_entities_in_a_title_are_stored_as_typed(bot: Bot) -> None:
    envelope = bot.command("declare Search &amp; browse &lt;slow&gt;")
    # The ack is mrkdwn: Slack shows "Search & browse <slow>".
    assert bot.ack_text(envelope) == "Declaring “Search &amp; browse &lt;slow&gt;”…"
    bot.wait_reply(envelope, "Declared INC-1")
    assert bot.incident(1).title == "Search & browse <slow>"
    assert bot.slack.channel_by_name("inc-1-search-browse-slow") is not None


def test_mentions_channels_and_links_typed_in_a_title_read_right_everywhere(bot: Bot) -> None:
    """`should_escape: true` sends a title with Slack markup (FakeSlack escapes what the
    user types as Slack does): the channel name gets the readable words (a link's host,
    no scheme), Notion's title the readable text, and Slack's own messages keep the
    person a real mention."""
    bot.slack.add_channel("general", members=["U0ALICE"])
    envelope = bot.slack.typed_command(
        "declare Checkout down for @bob, see https://status.example.com in #general"
    )
    payload = next(e for e in bot.slack.envelopes if e.envelope_id == envelope).message
    assert "<@U0BOB|bob>" in payload["payload"]["text"]
    bot.wait_reply(envelope, "Declared INC-1")
    bot.wait_idle()
    channel = bot.slack.channel_by_name(
        "inc-1-checkout-down-for-bob-see-status-example-com-in-general"
    )
    assert channel is not None
    page = bot.notion.pages(bot.data_source_id)[0]
    readable = "Checkout down for @bob, see https://status.example.com in #general"
    assert FakeNotion.property_text(page, "Name") == f"INC-1: {readable}"
    intro = next(m for m in bot.slack.messages(channel["id"]) if m.get("bot_id"))
    assert "<@U0BOB|bob>" in intro["text"] and "<https://status.example.com>" in intro["text"]
    assert intro["blocks"][0]["text"]["text"] == f"INC-1: {readable}"  # plain_text header


def test_what_the_declarer_describes_in_the_form_is_kept(bot: Bot) -> None:
    view = open_form(bot)
    envelope = bot.slack.view_submission(
        {"id": view["id"]}, values=form_values("Search is slow", "P2", "p95 is 4 s <since 9:00>")
    )
    bot.slack.wait_for_ack(envelope)
    bot.wait_idle()
    incident = bot.incident(1)
    declared = bot.services.store.events(int(incident.id))[0]
    assert declared.data["description"] == "p95 is 4 s <since 9:00>"
    (intro,) = [m for m in bot.slack.messages(str(incident.channel_id)) if m.get("bot_id")]
    assert "p95 is 4 s &lt;since 9:00&gt;" in str(intro["blocks"])


def test_the_same_declare_typed_again_is_answered_not_duplicated(bot: Bot) -> None:
    first = bot.command("declare Checkout is down")
    bot.wait_reply(first, "Declared INC-1")
    again = bot.command("declare  checkout   is DOWN")  # the same title, once cleaned
    said = bot.wait_reply(again, "a moment ago")
    channel = str(bot.incident(1).channel_id)
    assert said.startswith(f"You declared INC-1 a moment ago: <#{channel}>")
    assert "/incident declare --new Checkout is down" in said
    bot.wait_idle()
    assert bot.services.store.incident_by_number(2) is None
    assert len([c for c in bot.slack.channels() if c["name"].startswith("inc-")]) == 1
    assert len(bot.notion.pages(bot.data_source_id)) == 1


def test_new_declares_again_and_someone_else_or_another_title_is_never_a_repeat(
    bot: Bot,
) -> None:
    bot.wait_reply(bot.command("declare Checkout is down"), "Declared INC-1")
    bot.wait_reply(bot.command("declare --new Checkout is down"), "Declared INC-2")
    bot.wait_reply(bot.command("declare Checkout is down", user_id="U0BOB"), "Declared INC-3")
    bot.wait_reply(bot.command("declare Checkout is slow"), "Declared INC-4")
    bot.wait_idle()
    assert bot.incident(2).title == "Checkout is down"  # the flag is not in the title


def test_a_long_title_and_a_pasted_log_still_get_their_intro(bot: Bot) -> None:
    """Escaping makes text longer (`<` is `&lt;`), and Block Kit refuses a section over
    3,000 characters or a header over 150 (FakeSlack as Slack: `invalid_blocks`). The
    intro is posted all the same, cut with "…" where it must be."""
    assert blocks.declare_modal(None)["blocks"][2]["element"]["max_length"] == 500
    title = "Search & browse " * 31  # 496 characters, each "&" five when escaped
    log = "<error> & <trace> " * 28  # 504 characters of a pasted log, 896 escaped
    bot.ack_text(bot.command("declare"))
    view = bot.slack.wait_for(lambda: bot.slack.views())[-1]
    bot.slack.wait_for_ack(
        bot.slack.view_submission(
            {"id": view["id"]}, values=form_values(title, "P2", description=log * 5)
        )
    )
    channel = bot.slack.wait_for(
        lambda: next((c for c in bot.slack.channels() if c["name"].startswith("inc-1")), None)
    )
    bot.wait_idle()
    intro = bot.slack.wait_for(
        lambda: next((m for m in bot.slack.messages(channel["id"]) if m.get("bot_id")), None)
    )
    header = intro["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    seen = next(b for b in intro["blocks"] if "What the declarer sees" in str(b))
    assert len(seen["text"]["text"]) <= 3000 and seen["text"]["text"].endswith("…")
    assert "&lt;error&gt;" in seen["text"]["text"]


@pytest.mark.timeout(90)
def test_a_database_that_does_not_answer_is_said_in_the_ack_and_nothing_is_half_made(
    postgres_db_url: str,
) -> None:
    """PostgreSQL refuses every connection (a real outage, not a mock): the declare is
    answered in its ack, nothing is created in Slack, and once the database is back the
    same command works."""
    import psycopg2
    from psycopg2 import sql

    from tests.conftest import _admin_connection

    name = postgres_db_url.rsplit("/", 1)[1]
    away = f"{name}_away"
    admin = _admin_connection()

    def rename(old: str, new: str) -> None:
        """Cut every session and hide the database (superusers ignore CONNECTION LIMIT)."""
        with admin.cursor() as cur:
            for _ in range(50):
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (old,),
                )
                try:
                    cur.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(old), sql.Identifier(new)
                        )
                    )
                    return
                except psycopg2.errors.ObjectInUse:
                    continue  # the bot reconnected in between; cut again
            raise AssertionError(f"could not rename {old}")

    def outage(on: bool) -> None:
        if on:
            rename(name, away)
        else:
            with admin.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (away,))
                if cur.fetchone():
                    rename(away, name)

    try:
        with running_bot(postgres_db_url, RECONCILE_INTERVAL_SECONDS="3600") as bot:
            outage(True)
            envelope = bot.command("declare Checkout is down")
            assert bot.ack_text(envelope, timeout=20) == (
                "Firebreak can't reach its database right now; nothing was declared. "
                "Try again in a minute."
            )
            assert [c for c in bot.slack.channels() if c["name"].startswith("inc-")] == []
            outage(False)
            again = bot.command("declare Checkout is down")
            bot.wait_reply(again, "Declared INC-1", timeout=30)
    finally:
        outage(False)
        admin.close()
