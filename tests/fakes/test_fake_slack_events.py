"""FakeSlack's message events: what Slack sends an app subscribed to message.channels and
message.groups, in Slack's shapes, only for channels the bot is in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bolt_app.devkit.fake_slack import FakeSlack

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U0ALICE", "alice")
        fake.add_user("U0BOB", "bob")
        yield fake


def events(slack: FakeSlack) -> list[dict[str, Any]]:
    return [e.message["payload"]["event"] for e in slack.envelopes if e.type == "events_api"]


def test_nothing_is_sent_unless_subscribed_and_never_for_channels_without_the_bot(
    slack: FakeSlack,
) -> None:
    incident = slack.add_channel("inc-1", members=["U0ALICE", slack.bot_user_id])
    other = slack.add_channel("random", members=["U0ALICE"], bot_member=False)
    slack.post(incident, "U0ALICE", "before the subscription")
    slack.message_events = True
    slack.post(other, "U0ALICE", "the bot isn't here")
    assert events(slack) == []
    private = slack.add_channel("inc-2", members=[slack.bot_user_id], is_private=True)
    ts = slack.post(private, "U0ALICE", "hello")
    (event,) = events(slack)
    assert {k: event[k] for k in ("type", "channel", "channel_type", "user", "text", "ts")} == {
        "type": "message",
        "channel": private,
        "channel_type": "group",
        "user": "U0ALICE",
        "text": "hello",
        "ts": ts,
    }
    assert event["event_ts"] == ts and "subtype" not in event


def test_edits_deletions_and_deleted_thread_parents_have_slacks_shapes(slack: FakeSlack) -> None:
    cid = slack.add_channel("inc-1", members=["U0ALICE", slack.bot_user_id])
    slack.message_events = True
    lone = slack.post(cid, "U0ALICE", "typo")
    parent = slack.post(cid, "U0ALICE", "is search down?")
    reply = slack.post(cid, "U0BOB", "yes", thread_ts=parent)
    slack.edit_message(cid, lone, "fixed")
    slack.delete_message(cid, lone)
    slack.delete_message(cid, parent)
    changed, deleted, tombstone = events(slack)[3:]

    assert changed["subtype"] == "message_changed" and changed["hidden"] is True
    assert (changed["message"]["text"], changed["previous_message"]["text"]) == ("fixed", "typo")
    assert changed["message"]["edited"]["user"] == "U0ALICE"
    assert (deleted["subtype"], deleted["deleted_ts"]) == ("message_deleted", lone)
    assert deleted["previous_message"]["text"] == "fixed"
    assert tombstone["subtype"] == "message_changed"
    assert tombstone["message"]["subtype"] == "tombstone"
    assert tombstone["message"]["ts"] == parent
    assert tombstone["message"]["reply_count"] == 1
    assert [m["ts"] for m in slack.replies(cid, parent)] == [reply]  # replies stay


def test_an_event_can_be_replayed_as_slacks_retry(slack: FakeSlack) -> None:
    first = slack.event({"type": "pin_added"}, event_id="Ev0SAME")
    again = slack.event(
        {"type": "pin_added"}, event_id="Ev0SAME", retry_attempt=1, retry_reason="timeout"
    )
    sent = {e.envelope_id: e.message for e in slack.envelopes}
    assert sent[first]["payload"]["event_id"] == sent[again]["payload"]["event_id"] == "Ev0SAME"
    assert (sent[first]["retry_attempt"], sent[again]["retry_attempt"]) == (0, 1)
    assert sent[again]["retry_reason"] == "timeout"


def test_the_capped_tier_serves_15_a_page_and_one_call_a_window(slack: FakeSlack) -> None:
    cid = slack.add_channel("inc-1", members=["U0ALICE"])
    for i in range(20):
        slack.post(cid, "U0ALICE", f"line {i}")
    slack.capped_tier(window_s=30.0)
    client = WebClient(token=slack.bot_token, base_url=slack.base_url)
    first = client.conversations_history(channel=cid, limit=999)
    assert len(first["messages"]) == 15 and first["has_more"] is True
    with pytest.raises(SlackApiError) as limited:
        client.conversations_history(channel=cid, limit=999)
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    slack.capped_tier(window_s=None)
    assert len(client.conversations_history(channel=cid, limit=999)["messages"]) > 15
