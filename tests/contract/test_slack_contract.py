"""Slack's documented payloads and responses against the bot's parsers and FakeSlack.

Each fixture is written from Slack's API reference (slash commands, shortcuts, view
submissions, the Events API, conversations.*, bookmarks.list, users.info). The bot's
parsers must read them; FakeSlack's answers must have their shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.slack_text import readable
from bolt_app.listeners import views
from bolt_app.listeners.commands import _parse
from bolt_app.listeners.events import pinned
from bolt_app.listeners.subcommands import Invocation
from bolt_app.transcript.capture import message_fields
from tests.contract.shapes import assert_matches, fixture
from tests.helpers.factories import form_values

ALICE, BOB = "U0ALICE", "U0BOB"

# -- the bot reads the documented shapes ------------------------------------------------------


def test_a_slash_command_payload() -> None:
    body = fixture("slack/slash_command")
    name, args = _parse(body["text"])
    inv = Invocation.from_body(body, args)
    assert (name, inv.user_id, inv.channel_id, inv.user_name) == (
        "declare",
        "U2147483697",
        "C2147483705",
        "steve",
    )
    assert inv.request_key == "command:13345224609.738474920.8088930838d88f008e0"
    assert inv.response_url == body["response_url"]
    assert readable(args) == "Checkout down for @bob & payments"


def test_a_message_shortcut_payload() -> None:
    inv = Invocation.from_shortcut(fixture("slack/message_shortcut"))
    assert (inv.user_id, inv.channel_id, inv.user_name) == ("U2147483697", "C2147483705", "steve")
    assert inv.trigger_id.startswith("944799105734.") and inv.response_url


def test_a_view_submission_payload() -> None:
    values = fixture("slack/view_submission")["view"]["state"]["values"]
    assert views._value(values, blocks.TITLE_BLOCK, blocks.TITLE_ACTION) == "Search is slow"
    assert views._value(values, blocks.SEVERITY_BLOCK, blocks.SEVERITY_ACTION) == "P1"
    assert views._checked(values, blocks.PRIVATE_BLOCK, blocks.PRIVATE_ACTION, blocks.PRIVATE_VALUE)
    assert views._value(values, blocks.DESCRIPTION_BLOCK, blocks.DESCRIPTION_ACTION)


def test_a_pin_added_event() -> None:
    found = pinned(fixture("slack/event_pin_added")["event"])
    assert found is not None
    channel, message = found
    assert (channel, message["ts"]) == ("C2147483705", "1360782400.498405")


def test_message_events_and_history_messages_become_captured_rows() -> None:
    events = fixture("slack/event_messages")
    assert message_fields(events["posted"])["text"] == "seeing 502s from the edge"
    reply = message_fields(events["reply"])
    assert (reply["thread_ts"], reply["user"]) == ("1355517523.000005", "U024BE7LH")
    assert message_fields(events["changed"]["message"])["text"] == "seeing 503s from the edge"
    _plain, parent, alert, upload, huddle = fixture("slack/conversations_history")["messages"]
    assert message_fields(parent)["thread_ts"] == parent["ts"]
    alert_row = message_fields(alert)
    assert (alert_row["subtype"], alert_row["bot_id"]) == ("bot_message", "B0ALERTS")
    assert alert_row["extra"]["attachments"][0]["title"].startswith("Triggered")
    assert message_fields(upload)["extra"]["files"][0]["name"] == "error.log"
    assert message_fields(huddle)["subtype"] == "huddle_thread"


# -- FakeSlack answers in the documented shapes -------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(message_events=True) as fake:
        fake.add_user(ALICE, "alice", real_name="Alice Adams", display_name="alice")
        fake.add_user(BOB, "bob", real_name="Bob Brown", display_name="bob")
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.base_url)


def _payload(slack: FakeSlack, envelope_id: str) -> dict[str, Any]:
    return next(e for e in slack.envelopes if e.envelope_id == envelope_id).message["payload"]


def test_fake_interaction_payloads(slack: FakeSlack) -> None:
    channel = slack.add_channel("inc-42-checkout-down", members=[ALICE])
    command = _payload(slack, slack.slash_command("declare x", channel_id=channel))
    # Slack sends the form-encoded booleans of a slash command as strings.
    assert_matches(command, fixture("slack/slash_command"))
    ts = slack.post(channel, ALICE, "the DB failover finished")
    shortcut = _payload(
        slack, slack.message_shortcut("dumpslack", channel_id=channel, message_ts=ts)
    )
    assert_matches(
        shortcut,
        fixture("slack/message_shortcut"),
        frozenset({"$.message.client_msg_id"}),
    )
    values = form_values("Search is slow", "P1", description="p99 over 2 s")
    values[blocks.PRIVATE_BLOCK] = {
        blocks.PRIVATE_ACTION: {
            "type": "checkboxes",
            "selected_options": [{"text": blocks.plain("Private"), "value": "private"}],
        }
    }
    submitted = _payload(slack, slack.view_submission({"id": "V1"}, values=values))
    assert_matches(submitted, fixture("slack/view_submission"), _VIEW_NOT_MODELLED)


#: A submission of a view the test never opened carries no chrome of the view.
_VIEW_NOT_MODELLED = frozenset(
    {
        "$.view.title",
        "$.view.clear_on_close",
        "$.view.notify_on_close",
        "$.view.close",
        "$.view.submit",
        "$.view.app_installed_team_id",
    }
)


def test_fake_message_events(slack: FakeSlack) -> None:
    channel = slack.add_channel("inc-42-checkout-down", members=[ALICE])
    ts = slack.post(channel, ALICE, "seeing 502s from the edge")
    slack.post(channel, BOB, "same here", thread_ts=ts)
    slack.edit_message(channel, ts, "seeing 503s from the edge")
    # A parent with replies leaves a tombstone when deleted; a plain message is deleted.
    slack.delete_message(channel, slack.post(channel, ALICE, "typo"))
    events = [e.message["payload"]["event"] for e in slack.envelopes if e.type == "events_api"]
    documented = fixture("slack/event_messages")
    posted, reply, _typo = (e for e in events if "subtype" not in e)
    assert_matches(posted, documented["posted"], frozenset({"$.client_msg_id", "$.blocks"}))
    assert_matches(reply, documented["reply"])
    changed = next(e for e in events if e.get("subtype") == "message_changed")
    assert_matches(changed, documented["changed"])
    deleted = next(e for e in events if e.get("subtype") == "message_deleted")
    assert_matches(deleted, documented["deleted"])
    envelope = next(e for e in slack.envelopes if e.type == "events_api").message["payload"]
    pin = fixture("slack/event_pin_added")
    assert_matches(
        {k: v for k, v in envelope.items() if k != "event"},
        {k: v for k, v in pin.items() if k != "event"},
    )


def test_fake_web_api_answers(slack: FakeSlack, client: WebClient) -> None:
    created = client.conversations_create(name="inc-42-checkout-down").data
    assert_matches(created, fixture("slack/conversations_create"), _CREATE_NOT_MODELLED)
    channel = str(created["channel"]["id"])
    client.conversations_invite(channel=channel, users=ALICE)
    parent = slack.post(channel, ALICE, "who is on the DB?")
    slack.post(channel, BOB, "me, failing over now", thread_ts=parent)
    slack.post(channel, ALICE, "seeing 502s from the edge")
    history = client.conversations_history(channel=channel, limit=2).data
    documented = fixture("slack/conversations_history")
    assert_matches(
        {k: v for k, v in history.items() if k != "messages"},
        {k: v for k, v in documented.items() if k != "messages"},
    )
    newest, thread_parent = history["messages"][:2]
    assert_matches(newest, documented["messages"][0], frozenset({"$.client_msg_id"}))
    assert_matches(
        thread_parent, documented["messages"][1], frozenset({"$.is_locked", "$.subscribed"})
    )
    replies = client.conversations_replies(channel=channel, ts=parent).data
    assert_matches(replies, fixture("slack/conversations_replies"), _REPLIES_NOT_MODELLED)
    client.bookmarks_add(
        channel_id=channel, title="Postmortem", type="link", link="https://x.example"
    )
    bookmarks = client.bookmarks_list(channel_id=channel).data
    assert_matches(bookmarks, fixture("slack/bookmarks_list"))
    user = client.users_info(user=BOB).data
    assert_matches(user, fixture("slack/users_info"), _USER_NOT_MODELLED)


_CREATE_NOT_MODELLED = frozenset({"$.channel.updated"})
#: The fake sends no `response_metadata` on a last page (the bot's paging never needs it).
_REPLIES_NOT_MODELLED = frozenset(
    {"$.messages[0].is_locked", "$.messages[0].subscribed", "$.response_metadata"}
)
_USER_NOT_MODELLED = frozenset(
    {
        "$.user.color",
        "$.user.tz_label",
        "$.user.tz_offset",
        "$.user.profile.avatar_hash",
        "$.user.profile.status_text",
        "$.user.profile.status_emoji",
        "$.user.is_primary_owner",
        "$.user.is_restricted",
        "$.user.is_ultra_restricted",
    }
)
