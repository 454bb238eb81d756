"""FakeSlack against the real clients: slack_sdk's WebClient, its Socket Mode client
(websocket-client adapter) and a small Bolt app.

These tests pin the wire formats the app's end-to-end tests rely on. Nothing here
sleeps to wait for something: every wait is a condition with a deadline.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.socket_mode import websocket_client as bolt_websocket_client
from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.socket_mode.websocket_client import SocketModeClient
from slack_sdk.webhook import WebhookClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from bolt_app.devkit.common import Fault, FaultPlan, wait_for
from bolt_app.devkit.fake_slack import FakeSlack

pytestmark = pytest.mark.timeout(60)

QUICK = FixedValueRetryIntervalCalculator(0.05)  # retry at once: these tests count calls, not time
RECONNECT_TIMEOUT = 15.0  # the fake's keepalive kills orphaned connections within ~5 s


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U0ALICE", "alice", real_name="Alice Archer", display_name="alice")
        fake.add_user("U0BOB", "bob", real_name="Bob Baker", display_name="bobby")
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.base_url)


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    """Run a WebClient call that must fail; return Slack's error body."""
    with pytest.raises(SlackApiError) as info:
        call()
    data = info.value.response.data
    assert isinstance(data, dict)
    return data


def post_raw(url: str, body: bytes, content_type: str, token: str | None) -> dict[str, Any]:
    """POST without slack_sdk, to check both body encodings are accepted."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        decoded = json.loads(response.read())
    assert isinstance(decoded, dict)
    return decoded


class QuickSocketModeClient(SocketModeClient):
    """The websocket-client adapter with a websocket ``ping_timeout``.

    The SDK passes none to ``run_forever``, whose select loop then waits up to
    10 s after the client closes a session from another thread, which it does
    on a refresh and, under load, right at start-up (its monitor replaces the
    first session): see "The process model" in docs/ARCHITECTURE.md. A short timeout
    bounds that stall.
    """

    PING_TIMEOUT = 0.5

    def _run_current_session(self) -> None:
        session = self.current_session
        if session is None:
            return
        try:
            session.run_forever(ping_interval=self.ping_interval, ping_timeout=self.PING_TIMEOUT)
        except Exception:
            self.logger.exception("socket mode session failed")
            session.close()


def ack_everything(client: SocketModeClient, request: SocketModeRequest) -> None:
    client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))


@contextmanager
def socket_client(
    slack: FakeSlack,
    listener: Callable[[SocketModeClient, SocketModeRequest], None] = ack_everything,
    cls: type[SocketModeClient] = QuickSocketModeClient,
) -> Iterator[SocketModeClient]:
    """A connected Socket Mode client, torn down fast (server-side close first)."""
    web = WebClient(token=slack.bot_token, base_url=slack.base_url)
    sm = cls(
        app_token=slack.app_token, web_client=web, auto_reconnect_enabled=True, ping_interval=1
    )
    sm.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    sm.connect()
    try:
        slack.wait_connected(timeout=10)
        yield sm
    finally:
        sm.default_auto_reconnect_enabled = False
        sm.auto_reconnect_enabled = False
        slack.drop_sockets()
        sm.close()


# --------------------------------------------------------------------------- common helpers


def test_wait_for_returns_the_truthy_value_or_names_what_timed_out() -> None:
    values = iter([None, 0, "ready"])
    assert wait_for(lambda: next(values), timeout=1, interval=0.001) == "ready"
    with pytest.raises(TimeoutError, match="the thing"):
        wait_for(lambda: None, timeout=0.05, interval=0.01, message="the thing")


def test_fault_plan_prefers_the_method_then_star_and_counts_down() -> None:
    plan = FaultPlan()
    plan.arm("*", Fault(status=503), times=1)
    plan.arm("a.b", Fault(status=429), times=2)
    assert [plan.take("a.b"), plan.take("a.b")] == [Fault(status=429)] * 2
    assert plan.take("a.b") == Fault(status=503)
    assert plan.take("a.b") is None
    plan.set_latency(0.5)
    plan.set_latency(0.1, "x.y")
    assert (plan.latency("x.y"), plan.latency("other")) == (0.1, 0.5)


# --------------------------------------------------------------------------- auth


def test_auth_test_names_the_bot_and_every_answer_has_scope_headers(
    slack: FakeSlack, client: WebClient
) -> None:
    response = client.auth_test()
    assert response["user_id"] == "U0BOT"
    assert response["bot_id"] == "B0BOT"
    assert response["team_id"] == "T0FAKE"
    assert "chat:write" in response.headers["x-oauth-scopes"].split(",")
    assert "x-accepted-oauth-scopes" in response.headers
    call = slack.calls_to("auth.test")[0]
    assert call.headers["authorization"] == "Bearer xoxb-fake-bot"


def test_tokens_are_checked_like_slack(slack: FakeSlack) -> None:
    assert error_of(WebClient(base_url=slack.base_url).auth_test)["error"] == "not_authed"
    bogus = WebClient(token="xoxb-nope", base_url=slack.base_url)
    assert error_of(bogus.auth_test)["error"] == "invalid_auth"
    app_level = WebClient(token=slack.app_token, base_url=slack.base_url)
    assert error_of(app_level.auth_test)["error"] == "not_allowed_token_type"
    bot = WebClient(token=slack.bot_token, base_url=slack.base_url)
    opened = error_of(lambda: bot.apps_connections_open(app_token=slack.bot_token))
    assert opened["error"] == "not_allowed_token_type"
    slack.revoke_token()
    assert error_of(bot.auth_test)["error"] == "token_revoked"
    slack.restore_token()
    assert bot.auth_test()["ok"]


def test_unknown_method_and_restricted_scopes(slack: FakeSlack, client: WebClient) -> None:
    assert error_of(lambda: client.api_call("conversations.nope"))["error"] == "unknown_method"
    slack.set_scopes(["channels:read"])
    body = error_of(lambda: client.chat_postMessage(channel="C1", text="hi"))
    assert body["error"] == "missing_scope"
    assert body["needed"] == "chat:write"
    assert body["provided"] == "channels:read"


def test_apps_connections_open_needs_the_app_token_in_the_header(
    slack: FakeSlack, client: WebClient
) -> None:
    url = client.apps_connections_open(app_token=slack.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{slack.ws_port}/link/?ticket=")
    form = f"token={slack.app_token}".encode()
    body = post_raw(
        slack.base_url + "apps.connections.open", form, "application/x-www-form-urlencoded", None
    )
    assert body == {"ok": False, "error": "not_authed"}


# --------------------------------------------------------------------------- channels


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("Incident", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("inc#42", "invalid_name_specials"),
        ("a" * 81, "invalid_name_maxlength"),
        ("--__", "invalid_name_punctuation"),
    ],
)
def test_channel_names_are_validated(client: WebClient, name: str, error: str) -> None:
    assert error_of(lambda: client.conversations_create(name=name))["error"] == error


def test_create_returns_a_full_channel_and_the_bot_is_in_it(
    slack: FakeSlack, client: WebClient
) -> None:
    channel = client.conversations_create(name="inc-42-" + "x" * 73, is_private=True)["channel"]
    assert channel["id"].startswith("C")
    assert channel["is_private"] is True
    assert channel["creator"] == "U0BOT"
    assert channel["is_member"] is True
    assert isinstance(channel["created"], int)
    assert slack.members(channel["id"]) == {"U0BOT"}
    assert slack.channel_by_name(channel["name"])["id"] == channel["id"]  # type: ignore[index]
    taken = error_of(lambda: client.conversations_create(name=channel["name"]))
    assert taken["error"] == "name_taken"


def test_invite_rules(slack: FakeSlack, client: WebClient) -> None:
    cid = client.conversations_create(name="inc-1")["channel"]["id"]
    assert client.conversations_invite(channel=cid, users="U0ALICE,U0BOB")["ok"]
    assert slack.members(cid) == {"U0BOT", "U0ALICE", "U0BOB"}
    assert (
        error_of(lambda: client.conversations_invite(channel=cid, users="U0ALICE"))["error"]
        == "already_in_channel"
    )
    assert (
        error_of(lambda: client.conversations_invite(channel=cid, users=["U0NOBODY"]))["error"]
        == "user_not_found"
    )
    assert (
        error_of(lambda: client.conversations_invite(channel=cid, users="U0BOT"))["error"]
        == "cant_invite_self"
    )
    outside = slack.add_channel("elsewhere", members=["U0ALICE"], bot_member=False)
    assert (
        error_of(lambda: client.conversations_invite(channel=outside, users="U0BOB"))["error"]
        == "not_in_channel"
    )
    joins = [m for m in slack.messages(cid) if m.get("subtype") == "channel_join"]
    assert {m["user"] for m in joins} == {"U0BOT", "U0ALICE", "U0BOB"}


def test_topic_info_join_and_private_visibility(slack: FakeSlack, client: WebClient) -> None:
    cid = slack.add_channel("inc-7", members=["U0ALICE"])
    channel = client.conversations_setTopic(channel=cid, topic="P1 | active")["channel"]
    assert channel["topic"]["value"] == "P1 | active"
    assert slack.topic(cid) == "P1 | active"
    assert slack.messages(cid)[-1]["subtype"] == "channel_topic"
    info = client.conversations_info(channel=cid, include_num_members=True)["channel"]
    assert info["num_members"] == 2
    public = slack.add_channel("random", members=["U0ALICE"], bot_member=False)
    assert client.conversations_join(channel=public)["channel"]["is_member"] is True
    again = client.conversations_join(channel=public)
    assert again["warning"] == "already_in_channel"
    secret = slack.add_channel("secret", members=["U0ALICE"], is_private=True, bot_member=False)
    assert (
        error_of(lambda: client.conversations_info(channel=secret))["error"] == "channel_not_found"
    )


def test_list_and_members_paginate_with_cursors(slack: FakeSlack, client: WebClient) -> None:
    for i in range(5):
        slack.add_channel(f"chan-{i}")
    hidden = slack.add_channel("hidden", is_private=True, bot_member=False)
    pages = [client.conversations_list(limit=2, types="public_channel,private_channel")]
    while cursor := pages[-1]["response_metadata"]["next_cursor"]:
        pages.append(
            client.conversations_list(
                limit=2, types="public_channel,private_channel", cursor=cursor
            )
        )
    names = [c["name"] for page in pages for c in page["channels"]]
    assert names == [f"chan-{i}" for i in range(5)]
    assert hidden not in {c["id"] for page in pages for c in page["channels"]}
    cid = slack.add_channel("crowd", members=["U0ALICE", "U0BOB"])
    first = client.conversations_members(channel=cid, limit=2)
    second = client.conversations_members(
        channel=cid, limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    assert sorted(first["members"] + second["members"]) == ["U0ALICE", "U0BOB", "U0BOT"]
    assert second["response_metadata"]["next_cursor"] == ""
    assert (
        error_of(lambda: client.conversations_members(channel=cid, cursor="bogus"))["error"]
        == "invalid_cursor"
    )


# --------------------------------------------------------------------------- history


def seed_history(slack: FakeSlack) -> tuple[str, list[str], str]:
    """A channel with 6 top-level messages, a thread of 3 replies and a broadcast."""
    cid = slack.add_channel("inc-9", members=["U0ALICE", "U0BOB"])
    stamps = [slack.post(cid, "U0ALICE", f"message {i}") for i in range(5)]
    parent = stamps[1]
    for i in range(3):
        slack.post(cid, "U0BOB", f"reply {i}", thread_ts=parent)
    broadcast = slack.post(cid, "U0ALICE", "shared reply", thread_ts=parent, reply_broadcast=True)
    stamps.append(slack.post(cid, None, "deploy done", subtype="bot_message", username="ci"))
    stamps.append(
        slack.post(cid, "U0BOB", "", files=[{"name": "graph.png", "mimetype": "image/png"}])
    )
    return cid, stamps, broadcast


def test_history_is_newest_first_paginated_and_without_replies(
    slack: FakeSlack, client: WebClient
) -> None:
    cid, stamps, broadcast = seed_history(slack)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.conversations_history(channel=cid, limit=3, cursor=cursor)
        seen.extend(page["messages"])
        if not page["has_more"]:
            assert "response_metadata" not in page
            break
        cursor = page["response_metadata"]["next_cursor"]
    ts_seen = [m["ts"] for m in seen]
    assert ts_seen == sorted(ts_seen, reverse=True)
    assert set(stamps) | {broadcast} <= set(ts_seen)
    assert all(
        m.get("subtype") != "channel_join" or m["text"].endswith("joined the channel") for m in seen
    )
    assert not any(m["text"].startswith("reply") for m in seen)
    by_ts = {m["ts"]: m for m in seen}
    parent = by_ts[stamps[1]]
    assert parent["thread_ts"] == stamps[1]
    assert parent["reply_count"] == 4
    assert parent["latest_reply"] == broadcast
    assert by_ts[broadcast]["subtype"] == "thread_broadcast"
    assert by_ts[stamps[5]]["subtype"] == "bot_message"
    assert by_ts[stamps[5]]["bot_id"] == "B0BOT"
    shared = by_ts[stamps[6]]
    assert shared["subtype"] == "file_share"
    assert shared["files"][0]["name"] == "graph.png"
    assert shared["files"][0]["permalink"].startswith("https://fake.slack.test/files/")


def test_history_time_window(slack: FakeSlack, client: WebClient) -> None:
    cid = slack.add_channel("window")
    stamps = [slack.post(cid, "U0ALICE", str(i), ts=f"1732800000.00010{i}") for i in range(5)]
    inside = client.conversations_history(channel=cid, oldest=stamps[1], latest=stamps[3])
    assert [m["ts"] for m in inside["messages"]] == [stamps[2]]
    inclusive = client.conversations_history(
        channel=cid, oldest=stamps[1], latest=stamps[3], inclusive=True
    )
    assert [m["ts"] for m in inclusive["messages"]] == [stamps[3], stamps[2], stamps[1]]
    assert (
        error_of(lambda: client.conversations_history(channel=cid, oldest="yesterday"))["error"]
        == "invalid_ts_oldest"
    )


def test_replies_parent_first_then_oldest_first_with_cursor(
    slack: FakeSlack, client: WebClient
) -> None:
    cid, stamps, _ = seed_history(slack)
    first = client.conversations_replies(channel=cid, ts=stamps[1], limit=3)
    assert first["messages"][0]["ts"] == stamps[1]
    assert [m["text"] for m in first["messages"][1:]] == ["reply 0", "reply 1"]
    assert all(m["thread_ts"] == stamps[1] for m in first["messages"])
    assert first["messages"][1]["parent_user_id"] == "U0ALICE"
    second = client.conversations_replies(
        channel=cid, ts=stamps[1], limit=3, cursor=first["response_metadata"]["next_cursor"]
    )
    assert second["messages"][0]["ts"] == stamps[1]  # the parent leads every page
    assert [m["text"] for m in second["messages"][1:]] == ["reply 2", "shared reply"]
    assert second["has_more"] is False
    assert (
        error_of(lambda: client.conversations_replies(channel=cid, ts="1.000001"))["error"]
        == "thread_not_found"
    )


def test_reading_needs_membership(slack: FakeSlack, client: WebClient) -> None:
    cid = slack.add_channel("not-mine", members=["U0ALICE"], bot_member=False)
    assert error_of(lambda: client.conversations_history(channel=cid))["error"] == "not_in_channel"


# --------------------------------------------------------------------------- chat


def test_post_update_and_permalink(slack: FakeSlack, client: WebClient) -> None:
    cid = slack.add_channel("inc-3", members=["U0ALICE"])
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Declared*"}}]
    posted = client.chat_postMessage(channel=cid, text="Declared", blocks=blocks)
    assert posted["channel"] == cid
    assert posted["message"]["user"] == "U0BOT"
    assert posted["message"]["bot_id"] == "B0BOT"
    assert "subtype" not in posted["message"]
    reply = client.chat_postMessage(channel=cid, text="thread", thread_ts=posted["ts"])
    assert reply["message"]["thread_ts"] == posted["ts"]
    assert client.chat_postMessage(channel="inc-3", text="by name")["channel"] == cid
    updated = client.chat_update(channel=cid, ts=posted["ts"], text="Mitigated")
    assert updated["text"] == "Mitigated"
    client.chat_update(channel=cid, ts=posted["ts"], text="Resolved")
    assert slack.edit_count(cid, posted["ts"]) == 2
    assert slack.message(cid, posted["ts"])["edited"]["user"] == "U0BOT"
    human = slack.post(cid, "U0ALICE", "mine")
    assert (
        error_of(lambda: client.chat_update(channel=cid, ts=human, text="x"))["error"]
        == "cant_update_message"
    )
    assert (
        error_of(lambda: client.chat_update(channel=cid, ts="1.000002", text="x"))["error"]
        == "message_not_found"
    )
    link = client.chat_getPermalink(channel=cid, message_ts=posted["ts"])["permalink"]
    assert link == f"https://fake.slack.test/archives/{cid}/p{posted['ts'].replace('.', '')}"
    thread_link = client.chat_getPermalink(channel=cid, message_ts=reply["ts"])["permalink"]
    assert thread_link.endswith(f"?thread_ts={posted['ts']}&cid={cid}")
    with pytest.warns(UserWarning, match="text"):  # slack_sdk warns before sending
        assert error_of(lambda: client.chat_postMessage(channel=cid, text=""))["error"] == "no_text"


def test_post_needs_membership_and_ephemerals_stay_out_of_history(
    slack: FakeSlack, client: WebClient
) -> None:
    outside = slack.add_channel("outside", members=["U0ALICE"], bot_member=False)
    assert (
        error_of(lambda: client.chat_postMessage(channel=outside, text="hi"))["error"]
        == "not_in_channel"
    )
    cid = slack.add_channel("inc-4", members=["U0ALICE"])
    sent = client.chat_postEphemeral(channel=cid, user="U0ALICE", text="only you")
    assert sent["message_ts"]
    assert slack.ephemerals(cid, user="U0ALICE")[0]["text"] == "only you"
    assert "only you" not in [m["text"] for m in slack.messages(cid)]
    assert (
        error_of(lambda: client.chat_postEphemeral(channel=cid, user="U0BOB", text="x"))["error"]
        == "user_not_in_channel"
    )


def test_form_and_json_bodies_are_both_accepted(slack: FakeSlack) -> None:
    cid = slack.add_channel("inc-5")
    blocks = json.dumps([{"type": "divider"}])
    form = urllib.parse.urlencode({"channel": cid, "text": "form", "blocks": blocks}).encode()
    assert post_raw(
        slack.base_url + "chat.postMessage",
        form,
        "application/x-www-form-urlencoded",
        slack.bot_token,
    )["ok"]
    body = json.dumps({"name": "via-json", "is_private": True}).encode()
    created = post_raw(
        slack.base_url + "conversations.create", body, "application/json", slack.bot_token
    )
    assert created["channel"]["is_private"] is True
    assert slack.messages(cid)[-1]["blocks"] == [{"type": "divider"}]
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == blocks


# --------------------------------------------------------------------------- bookmarks, users, ...


def test_bookmarks_roundtrip(slack: FakeSlack, client: WebClient) -> None:
    cid = slack.add_channel("inc-6")
    added = client.bookmarks_add(
        channel_id=cid, title="Postmortem", type="link", link="https://notion.test/p1"
    )
    bookmark = added["bookmark"]
    assert bookmark["id"].startswith("Bk")
    assert (bookmark["title"], bookmark["link"], bookmark["type"], bookmark["channel_id"]) == (
        "Postmortem",
        "https://notion.test/p1",
        "link",
        cid,
    )
    assert isinstance(bookmark["date_created"], int)
    assert client.bookmarks_list(channel_id=cid)["bookmarks"] == [bookmark]
    edited = client.bookmarks_edit(channel_id=cid, bookmark_id=bookmark["id"], title="PM")[
        "bookmark"
    ]
    assert edited["title"] == "PM"
    assert slack.bookmarks(cid)[0]["title"] == "PM"
    client.bookmarks_remove(channel_id=cid, bookmark_id=bookmark["id"])
    assert slack.bookmarks(cid) == []
    assert (
        error_of(lambda: client.bookmarks_remove(channel_id=cid, bookmark_id=bookmark["id"]))[
            "error"
        ]
        == "not_found"
    )
    assert (
        error_of(
            lambda: client.bookmarks_add(
                channel_id=cid, title="x", type="file", link="https://x.test"
            )
        )["error"]
        == "invalid_bookmark_type"
    )


def test_users_info_and_list(client: WebClient) -> None:
    user = client.users_info(user="U0BOB")["user"]
    assert (user["id"], user["name"], user["real_name"], user["is_bot"]) == (
        "U0BOB",
        "bob",
        "Bob Baker",
        False,
    )
    assert user["profile"]["display_name"] == "bobby"
    assert user["profile"]["real_name"] == "Bob Baker"
    assert client.users_info(user="U0BOT")["user"]["is_bot"] is True
    assert error_of(lambda: client.users_info(user="U0GHOST"))["error"] == "user_not_found"
    ids = {m["id"] for m in client.users_list()["members"]}
    assert ids == {"U0BOT", "U0ALICE", "U0BOB"}


def test_views_need_a_fresh_trigger_and_hash_conflicts(slack: FakeSlack, client: WebClient) -> None:
    trigger = slack._triggers.issue()
    modal = {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": "Declare"},
        "blocks": [],
    }
    view = client.views_open(trigger_id=trigger, view=modal)["view"]
    assert view["id"].startswith("V")
    assert view["callback_id"] == "declare"
    assert (
        error_of(lambda: client.views_open(trigger_id=trigger, view=modal))["error"]
        == "exchanged_trigger_id"
    )
    assert (
        error_of(lambda: client.views_open(trigger_id="1.2.3", view=modal))["error"]
        == "invalid_trigger_id"
    )
    updated = client.views_update(view_id=view["id"], view=modal, hash=view["hash"])["view"]
    assert updated["id"] == view["id"]
    conflict = error_of(
        lambda: client.views_update(view_id=view["id"], view=modal, hash=view["hash"])
    )
    assert conflict["error"] == "hash_conflict"


def test_response_url_posts_are_recorded_and_shown(slack: FakeSlack) -> None:
    cid = slack.add_channel("inc-8", members=["U0ALICE"])
    slack.slash_command("status", channel_id=cid)  # queued: nothing is connected
    url = slack.envelopes[0].message["payload"]["response_url"]
    webhook = WebhookClient(url)
    assert webhook.send(text="working on it").status_code == 200
    assert webhook.send(text="Declared INC-8", response_type="in_channel").body == '{"ok": true}'
    assert [r.body["text"] for r in slack.responses] == ["working on it", "Declared INC-8"]
    assert slack.responses[0].channel_id == cid
    assert slack.ephemerals(cid, user="U0ALICE")[0]["text"] == "working on it"
    assert slack.messages(cid)[-1]["text"] == "Declared INC-8"


# --------------------------------------------------------------------------- faults


def test_rate_limit_is_retried_after_retry_after(slack: FakeSlack) -> None:
    client = WebClient(
        token=slack.bot_token,
        base_url=slack.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.inject("conversations.history", retry_after=1)
    cid = slack.add_channel("limited")
    started = time.monotonic()
    assert client.conversations_history(channel=cid)["ok"]
    assert time.monotonic() - started >= 1.0
    statuses = [c.status for c in slack.calls_to("conversations.history")]
    assert statuses == [429, 200]
    assert slack.calls_to("conversations.history")[0].error == "ratelimited"


def test_rate_limit_without_retry_handler_surfaces_429(slack: FakeSlack, client: WebClient) -> None:
    slack.inject("*", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.auth_test()
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"


def test_server_errors_and_resets(slack: FakeSlack) -> None:
    retrying = WebClient(
        token=slack.bot_token,
        base_url=slack.base_url,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK)],
    )
    slack.inject("auth.test", status=503)
    assert retrying.auth_test()["ok"]
    assert [c.status for c in slack.calls_to("auth.test")] == [503, 200]
    plain = WebClient(  # like the default handlers: connection errors only
        token=slack.bot_token,
        base_url=slack.base_url,
        retry_handlers=[ConnectionErrorRetryHandler(interval_calculator=QUICK)],
    )
    slack.inject("users.list", reset=True)
    assert plain.users_list()["ok"]
    assert [c.error for c in slack.calls_to("users.list")] == ["connection_reset", None]
    slack.inject("users.info", status=500, times=2)
    with pytest.raises(SlackApiError) as info:
        retrying.users_info(user="U0ALICE")
    assert info.value.response.status_code == 500


def test_injected_slack_error_is_http_200(slack: FakeSlack, client: WebClient) -> None:
    slack.inject("chat.postMessage", error="token_revoked", times=2)
    cid = slack.add_channel("revoked")
    for _ in range(2):
        assert (
            error_of(lambda: client.chat_postMessage(channel=cid, text="x"))["error"]
            == "token_revoked"
        )
    assert client.chat_postMessage(channel=cid, text="x")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 200, 200]


def test_latency_and_delays_do_not_block_other_requests(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.set_latency(0.3)
    results: list[float] = []

    def timed_call() -> None:
        started = time.monotonic()
        client.auth_test()
        results.append(time.monotonic() - started)

    threads = [threading.Thread(target=timed_call) for _ in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 6 and min(results) >= 0.3
    assert time.monotonic() - started < 1.5  # concurrent, not 6 × 0.3 s
    slack.clear_faults()
    slack.inject("users.list", delay=1.5)
    slow = threading.Thread(target=lambda: client.users_list())
    slow.start()
    wait_for(lambda: slack.faults.pending("users.list") == 0, timeout=5)
    started = time.monotonic()
    assert client.auth_test()["ok"]
    assert time.monotonic() - started < 1.0
    slack.clear_faults()
    slow.join(10)


def test_stop_is_fast_even_with_a_delayed_request_in_flight() -> None:
    fake = FakeSlack().start()
    client = WebClient(token=fake.bot_token, base_url=fake.base_url, retry_handlers=[])
    fake.inject("auth.test", delay=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.auth_test()
        except Exception as exc:  # the connection is reset by stop()
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: fake.faults.pending("auth.test") == 0, timeout=5)  # the request is in
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    caller.join(5)
    assert errors
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-slack")]


# --------------------------------------------------------------------------- socket mode


def test_socket_mode_client_gets_hello_and_acks_envelopes(slack: FakeSlack) -> None:
    received: list[SocketModeRequest] = []

    def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        ack_everything(client, request)

    with socket_client(slack, listener):
        cid = slack.add_channel("inc-10", members=["U0ALICE"])
        envelope_id = slack.slash_command("declare Checkout is down", channel_id=cid)
        ack = slack.wait_for_ack(envelope_id)
        assert ack.payload is None and 0 <= ack.latency_s < 3
        request = received[0]
        assert request.type == "slash_commands"
        assert request.accepts_response_payload is True
        payload = request.payload
        assert payload["command"] == "/incident"
        assert payload["text"] == "declare Checkout is down"
        assert (payload["channel_id"], payload["channel_name"]) == (cid, "inc-10")
        assert (payload["user_id"], payload["user_name"]) == ("U0ALICE", "alice")
        assert payload["is_enterprise_install"] == "false"
        assert payload["response_url"].startswith(f"http://127.0.0.1:{slack.port}/response/")
        assert payload["trigger_id"].count(".") == 2
    assert slack.count("apps.connections.open") >= 1


def test_hello_round_robin_queue_and_tickets(slack: FakeSlack, client: WebClient) -> None:
    queued = slack.slash_command("before anyone connected")
    urls = [client.apps_connections_open(app_token=slack.app_token)["url"] for _ in range(2)]
    with ws_connect(urls[0]) as first:
        hello = json.loads(first.recv(timeout=5))
        assert hello["type"] == "hello"
        assert hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": "A0FAKE"}
        assert "host" in hello["debug_info"]
        assert json.loads(first.recv(timeout=5))["envelope_id"] == queued
        with ws_connect(urls[1]) as second:
            assert json.loads(second.recv(timeout=5))["num_connections"] == 2
            slack.wait_connected(2)
            ids = [
                slack.event({"type": "app_mention", "user": "U0ALICE", "text": "hi"})
                for _ in range(4)
            ]
            got = [json.loads(sock.recv(timeout=5)) for sock in (first, second, first, second)]
            assert sorted(e["envelope_id"] for e in got) == sorted(ids)
            envelope = got[0]
            assert envelope["type"] == "events_api"
            assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
            assert envelope["payload"]["type"] == "event_callback"
            assert envelope["payload"]["event"]["event_ts"]
            assert envelope["payload"]["event_id"].startswith("Ev")
            second.send(json.dumps({"envelope_id": got[1]["envelope_id"], "payload": {"x": 1}}))
            assert slack.wait_for_ack(got[1]["envelope_id"]).payload == {"x": 1}
    with pytest.raises(InvalidStatus):
        ws_connect(f"ws://127.0.0.1:{slack.ws_port}/link/?ticket=forged").close()


def test_disconnect_message_makes_the_client_reconnect(slack: FakeSlack) -> None:
    with socket_client(slack):
        opened = slack.count("apps.connections.open")
        before = slack.connections_total
        assert slack.send_disconnect("refresh_requested") == 1
        slack.wait_for(lambda: slack.connections_total > before, timeout=RECONNECT_TIMEOUT)
        assert slack.count("apps.connections.open") > opened
        envelope_id = slack.slash_command("after refresh")
        assert slack.wait_for_ack(envelope_id, timeout=RECONNECT_TIMEOUT)


def test_dropped_socket_makes_the_client_reconnect(slack: FakeSlack) -> None:
    with socket_client(slack):
        before = slack.connections_total
        started = time.monotonic()
        assert slack.drop_sockets() == 1
        slack.wait_for(
            lambda: slack.connections_total > before and slack.wait_connected(),
            timeout=RECONNECT_TIMEOUT,
        )
        assert time.monotonic() - started < 10
        envelope_id = slack.slash_command("after drop")
        assert slack.wait_for_ack(envelope_id, timeout=RECONNECT_TIMEOUT)


def test_bolt_app_routes_every_envelope_kind(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bolt_websocket_client, "SocketModeClient", QuickSocketModeClient)
    app = App(client=WebClient(token=slack.bot_token, base_url=slack.base_url))
    seen: dict[str, Any] = {}

    @app.command("/incident")
    def command(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        ack("hi")
        respond(f"got {command['text']}")

    @app.shortcut("dumpslack")
    def shortcut(ack: Ack, shortcut: dict[str, Any]) -> None:
        ack()
        seen["shortcut"] = shortcut

    @app.view("declare")
    def view(ack: Ack, view: dict[str, Any]) -> None:
        ack(response_action="errors", errors={"title": "too short"})
        seen["view"] = view

    @app.action("approve")
    def action(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        seen["action"] = body

    @app.event("pin_added")
    def pinned(event: dict[str, Any]) -> None:
        seen["event"] = event

    handler = SocketModeHandler(app, slack.app_token, ping_interval=1)
    handler.connect()
    try:
        slack.wait_connected(timeout=10)
        cid = slack.add_channel("inc-11", members=["U0ALICE"])
        ts = slack.post(cid, "U0ALICE", "the database is on fire")
        command_id = slack.slash_command("help", channel_id=cid)
        assert slack.wait_for_ack(command_id).payload == {"text": "hi"}
        slack.wait_for(lambda: slack.responses)
        assert slack.responses[0].body["text"] == "got help"
        assert slack.wait_for_ack(
            slack.message_shortcut("dumpslack", channel_id=cid, message_ts=ts)
        )
        slack.wait_for(lambda: "shortcut" in seen)
        assert seen["shortcut"]["message"]["text"] == "the database is on fire"
        assert seen["shortcut"]["channel"] == {"id": cid, "name": "inc-11"}
        values = {"title": {"title": {"type": "plain_text_input", "value": "x"}}}
        view_id = slack.view_submission({"callback_id": "declare"}, values=values)
        assert slack.wait_for_ack(view_id).payload == {
            "response_action": "errors",
            "errors": {"title": "too short"},
        }
        assert seen["view"]["state"]["values"] == values
        assert slack.wait_for_ack(slack.block_action("approve", channel_id=cid, message_ts=ts))
        slack.wait_for(lambda: "action" in seen)
        assert seen["action"]["actions"][0]["action_id"] == "approve"
        pin = {
            "type": "pin_added",
            "user": "U0ALICE",
            "channel_id": cid,
            "item": {"type": "message", "message": {"ts": ts}},
        }
        assert slack.wait_for_ack(slack.event(pin))
        slack.wait_for(lambda: "event" in seen)
        assert seen["event"]["channel_id"] == cid
    finally:
        handler.client.default_auto_reconnect_enabled = False
        handler.client.auto_reconnect_enabled = False
        slack.drop_sockets()
        handler.close()


def _frames(sock: Any, seconds: float) -> list[dict[str, Any]]:
    """Every envelope that arrives within `seconds`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append(json.loads(sock.recv(timeout=left)))
        except TimeoutError:
            break
    return got


def test_only_events_api_envelopes_are_retried_like_slack() -> None:
    """Slack retries an unacked event three times (retry_attempt 1-3, the same event_id in
    a new envelope); an unacked slash command is never sent again, nor on reconnect."""
    with FakeSlack(event_retry_delays=(0.0, 0.2, 0.4), event_ack_timeout=0.3) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        with ws_connect(client.apps_connections_open(app_token=slack.app_token)["url"]) as sock:
            assert json.loads(sock.recv(timeout=5))["type"] == "hello"
            slack.wait_connected(1)
            command = slack.slash_command("declare never acked")
            event = slack.event({"type": "pin_added", "user": "U0ALICE"}, event_id="Ev0RETRY")
            got = _frames(sock, 3.0)
        assert [e["envelope_id"] for e in got if e["type"] == "slash_commands"] == [command]
        events = [e for e in got if e["type"] == "events_api"]
        assert [(e["retry_attempt"], e["retry_reason"]) for e in events] == [
            (0, ""),
            (1, "timeout"),
            (2, "timeout"),
            (3, "timeout"),
        ]
        assert {e["payload"]["event_id"] for e in events} == {"Ev0RETRY"}
        assert len({e["envelope_id"] for e in events}) == 4
        assert events[0]["envelope_id"] == event
        slack.wait_for(lambda: slack.gave_up(command))  # once the server saw the close
        with ws_connect(client.apps_connections_open(app_token=slack.app_token)["url"]) as sock:
            assert json.loads(sock.recv(timeout=5))["type"] == "hello"
            assert _frames(sock, 1.0) == []  # nothing comes back on a new connection


def test_an_event_lost_with_its_connection_is_retried_on_the_next() -> None:
    with FakeSlack(event_retry_delays=(0.0, 60.0, 300.0), event_ack_timeout=60.0) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        with ws_connect(client.apps_connections_open(app_token=slack.app_token)["url"]) as sock:
            sock.recv(timeout=5)
            slack.wait_connected(1)
            slack.slash_command("lost with the connection")
            event = slack.event({"type": "pin_added", "user": "U0ALICE"}, event_id="Ev0LOST")
            assert len(_frames(sock, 0.5)) == 2
        with ws_connect(client.apps_connections_open(app_token=slack.app_token)["url"]) as sock:
            sock.recv(timeout=5)
            again = _frames(sock, 2.0)
            assert [(e["type"], e["retry_attempt"]) for e in again] == [("events_api", 1)]
            assert again[0]["payload"]["event_id"] == "Ev0LOST"
            sock.send(json.dumps({"envelope_id": again[0]["envelope_id"]}))
            assert slack.wait_for_ack(event).envelope_id == again[0]["envelope_id"]


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "/blocks/0/text/text",
        ),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
            "/blocks/0/text/text",
        ),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 2001}]}],
            "/blocks/0/elements/0/text",
        ),
        ([{"type": "divider"}] * 51, "/blocks"),
        ([{"type": "sectoin"}], "/blocks/0/type"),
    ],
)
def test_block_kit_limits_are_refused_with_the_path(
    slack: FakeSlack, client: WebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    channel = slack.add_channel("limits", members=["U0ALICE"])
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=channel, text="t", blocks=blocks)
    assert refused.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in e for e in refused.value.response["errors"])
    client.chat_postMessage(channel=channel, text="t", blocks=[{"type": "divider"}] * 50)


def test_message_metadata_is_kept_shown_on_request_and_checked(
    slack: FakeSlack, client: WebClient
) -> None:
    """Slack keeps a message's metadata, shows it in history only with
    `include_all_metadata`, and refuses metadata without its documented shape."""
    channel = slack.add_channel("meta", members=["U0ALICE"])
    metadata = {"event_type": "firebreak_artifact", "event_payload": {"attempt": "a1"}}
    ts = client.chat_postMessage(channel=channel, text="hi", metadata=metadata)["ts"]
    (plain,) = [
        m for m in client.conversations_history(channel=channel)["messages"] if m["ts"] == ts
    ]
    assert "metadata" not in plain
    history = client.conversations_history(channel=channel, include_all_metadata=True)
    (full,) = [m for m in history["messages"] if m["ts"] == ts]
    assert full["metadata"] == metadata
    client.chat_update(channel=channel, ts=ts, text="edited")  # no metadata: kept
    assert slack.message(channel, ts)["metadata"] == metadata
    for bad, error in (
        ([1], "invalid_metadata_format"),
        ({"event_payload": {}}, "invalid_metadata_schema"),
    ):
        with pytest.raises(SlackApiError) as refused:
            client.api_call(
                "chat.postMessage", json={"channel": channel, "text": "x", "metadata": bad}
            )
        assert refused.value.response["error"] == error
