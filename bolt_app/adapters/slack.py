"""The Slack adapter: a typed, thin wrapper around slack_sdk's `WebClient`.

Services call these methods with plain values and get plain values back. Slack's
`ok: false` answers become `SlackError` with the error code, so the one error
handler can tell the user what Slack said. Rate limits and 5xx are retried by
slack_sdk's own retry handlers, honouring `Retry-After`, instead of by hand.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bolt_app.core import metrics
from bolt_app.core.errors import FirebreakError

log = logging.getLogger(__name__)

#: Every bot scope the code uses, and why; `manifest` and `check` read this list.
BOT_SCOPES: dict[str, str] = {
    "commands": "the /incident command and the dumpslack shortcut",
    "channels:manage": "create public incident channels, invite, set the topic",
    "groups:write": "create private incident channels, invite, set the topic",
    "channels:read": "find an incident channel after a lost create response; members",
    "groups:read": "find a private incident channel after a lost create response; members",
    "chat:write": "intro, status and progress messages",
    "bookmarks:read": "see whether the Postmortem bookmark is still there",
    "bookmarks:write": "add the Postmortem bookmark",
    "users:read": "authors' display names; check a new commander is a person",
    "channels:history": "read public incident channels for the transcript; find a lost "
    "announcement",
    "groups:history": "read private incident channels for the transcript",
    "pins:read": "pinned messages on the timeline (the pin_added event)",
}

#: Messages per `conversations.history` / `conversations.replies` page (Slack's maximum).
HISTORY_PAGE_SIZE = 999

#: How long one Slack HTTP call may take before slack_sdk gives up.
SLACK_TIMEOUT_SECONDS = 10


#: Our code for an answer that was not Slack's JSON: a proxy's error page such as
#: "upstream connect error or disconnect/reset before headers" (never shown raw).
NOT_JSON = "not_json"

#: Answers that mean "Slack is unwell", not "Slack says no".
TROUBLE_CODES = (
    "connection_error",
    "unknown_error",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    NOT_JSON,
)

#: What a Slack error code looks like; anything else is slack_sdk's words for a body
#: that was not JSON.
_ERROR_CODE = re.compile(r"[a-z0-9_.]+")


class SlackError(FirebreakError):
    """Slack refused or failed a call; `code` is Slack's error string (or ours:
    `connection_error`, `not_json`)."""

    def __init__(self, method: str, code: str) -> None:
        if code in TROUBLE_CODES:
            super().__init__(f"Slack is having trouble right now ({method} failed)")
        else:
            super().__init__(f"Slack said `{code}` to {method}")
        self.method = method
        self.code = code

    @property
    def trouble(self) -> bool:
        """Slack is unwell (a retry later may pass), rather than refusing."""
        return self.code in TROUBLE_CODES


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    creator: str | None = None


def _form(params: dict[str, Any]) -> dict[str, Any]:
    """Form-encode like slack_sdk: booleans as `true`/`false`, no `None` values."""
    return {
        k: (str(v).lower() if isinstance(v, bool) else v)
        for k, v in params.items()
        if v is not None
    }


#: Writes a repeat would make twice (a second intro, message or bookmark).
UNREPEATABLE_WRITES = ("chat.postMessage", "chat.postEphemeral", "bookmarks.add")


class SentOnceRetryHandler(ConnectionErrorRetryHandler):
    """slack_sdk's connection-error retry, except for an unrepeatable write whose request
    went out: its answer was lost, so Slack may have applied it.

    urllib wraps a failure to connect or send in `URLError`; a reset or a close while
    waiting for the answer (`ConnectionResetError`, `RemoteDisconnected`) comes bare.
    The bare kind is not retried for `UNREPEATABLE_WRITES`: the call fails, and the
    artefact's next attempt finds what it made ("Adoption" in docs/ARCHITECTURE.md).
    """

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        sent = not isinstance(error, URLError)
        return not (sent and request.url.rstrip("/").endswith(UNREPEATABLE_WRITES))


def build_web_client(token: str, base_url: str) -> WebClient:
    """A WebClient for `base_url` that retries 429 (after `Retry-After`), 5xx and resets.

    `slack_bolt.App` has no base-URL setting, so this client is passed to `App(client=…)`;
    the Socket Mode handler reuses it for `apps.connections.open`, so one override covers
    both (see "Configuration" in docs/ARCHITECTURE.md).
    """
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=[
            SentOnceRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackGateway:
    """The Slack Web API calls Firebreak makes, one method each."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._bot_user_id: str | None = None
        self._workspace_url: str | None = None
        self._bot_id: str | None = None
        self._names: dict[str, str] = {}
        self._names_lock = threading.Lock()

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call `method` the way slack_sdk's typed helper would, mapping errors to SlackError.

        slack_sdk sends `chat.*` and `views.*` as JSON and everything else form-encoded;
        we keep that, because some methods reject the other encoding.
        """
        as_json = method.startswith(("chat.", "views."))
        try:
            if as_json:
                response = self.client.api_call(method, json=params)
            else:
                response = self.client.api_call(method, params=_form(params))
        except SlackApiError as error:
            code = str(error.response.get("error", "unknown_error"))
            if not _ERROR_CODE.fullmatch(code):  # slack_sdk's "non-JSON format: <body>"
                log.warning("Slack answered %s with something other than JSON", method)
                code = NOT_JSON
            metrics.API_CALLS.labels("slack", method, code).inc()
            raise SlackError(method, code) from error
        except OSError as error:  # URLError, resets and timeouts, after the retry handlers
            metrics.API_CALLS.labels("slack", method, "connection_error").inc()
            raise SlackError(method, "connection_error") from error
        metrics.API_CALLS.labels("slack", method, "ok").inc()
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _pages(self, method: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a cursor-paginated method.

        The last page has no `response_metadata` or an empty cursor (history and replies
        also say `has_more: false`); 429s are retried by the client's retry handler.
        """
        cursor: str | None = None
        while True:
            data = self._call(method, **params, **({"cursor": cursor} if cursor else {}))
            yield data
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or not data.get("has_more", True):
                return

    def verify(self) -> str:
        """Check the token with `auth.test`; returns (and caches) our bot user id."""
        data = self._call("auth.test")
        self._workspace_url = str(data.get("url") or "https://slack.com/")
        self._bot_id = str(data["bot_id"]) if data.get("bot_id") else None
        self._bot_user_id = str(data["user_id"])
        return self._bot_user_id

    @property
    def bot_user_id(self) -> str:
        """Our own user id, from `auth.test`, cached: used to skip our own chatter."""
        return self._bot_user_id if self._bot_user_id is not None else self.verify()

    @property
    def bot_id(self) -> str | None:
        """Our bot id (`B…`), from `auth.test`: bot messages may carry only this."""
        if self._bot_user_id is None:
            self.verify()
        return self._bot_id

    def create_channel(self, name: str, *, private: bool) -> Channel:
        data = self._call("conversations.create", name=name, is_private=private)
        channel = data["channel"]
        return Channel(id=channel["id"], name=channel["name"], creator=channel.get("creator"))

    def find_channel(self, name: str) -> Channel | None:
        """Look a channel up by exact name; only used on the rare recovery path."""
        for channel in self._iter_channels():
            if channel.name == name:
                return channel
        return None

    def find_channels_with_prefix(self, prefix: str) -> list[Channel]:
        """Channels named `prefix` or `prefix-…`, e.g. every `inc-42-*` channel."""
        return [
            c for c in self._iter_channels() if c.name == prefix or c.name.startswith(prefix + "-")
        ]

    def _iter_channels(self) -> Iterator[Channel]:
        for page in self._pages(
            "conversations.list",
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=1000,
        ):
            for channel in page.get("channels", []):
                yield Channel(
                    id=channel["id"], name=channel["name"], creator=channel.get("creator")
                )

    def invite(self, channel: str, users: list[str]) -> None:
        """Invite users; someone already there is not an error worth reporting."""
        try:
            self._call("conversations.invite", channel=channel, users=",".join(users))
        except SlackError as error:
            if error.code != "already_in_channel":
                raise

    def set_topic(self, channel: str, topic: str) -> None:
        self._call("conversations.setTopic", channel=channel, topic=topic)

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Post as the bot; `metadata` (`event_type`, `event_payload`) is invisible to
        people and read back by `recent_messages`, which is how we recognise our posts."""
        data = self._call(
            "chat.postMessage",
            channel=channel,
            text=text,
            **({"blocks": blocks} if blocks else {}),
            **({"metadata": metadata} if metadata else {}),
        )
        return str(data["ts"])

    def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        self._call(
            "chat.update",
            channel=channel,
            ts=ts,
            text=text,
            **({"blocks": blocks} if blocks else {}),
        )

    def list_bookmarks(self, channel: str) -> list[dict[str, Any]]:
        return list(self._call("bookmarks.list", channel_id=channel).get("bookmarks", []))

    def remove_bookmark(self, channel: str, bookmark_id: str) -> None:
        self._call("bookmarks.remove", channel_id=channel, bookmark_id=bookmark_id)

    def add_bookmark(self, channel: str, title: str, link: str) -> str:
        data = self._call("bookmarks.add", channel_id=channel, title=title, type="link", link=link)
        return str(data["bookmark"]["id"])

    def user_info(self, user: str) -> dict[str, Any]:
        return dict(self._call("users.info", user=user)["user"])

    def channel_members(self, channel: str) -> set[str]:
        """Every member of a channel (`conversations.members`, all pages)."""
        return {
            str(member)
            for page in self._pages("conversations.members", channel=channel, limit=1000)
            for member in page.get("members", [])
        }

    def recent_messages(self, channel: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` messages of a channel, newest first (one history page),
        with their metadata."""
        data = self._call(
            "conversations.history", channel=channel, limit=limit, include_all_metadata=True
        )
        return list(data.get("messages", []))

    def user_name(self, user: str) -> str:
        """The name people see: `display_name`, else `real_name`, else the user name.

        Cached for the process: a dump names the same few people thousands of times. An
        unknown user keeps its id, so a deleted account never fails a dump.
        """
        with self._names_lock:
            cached = self._names.get(user)
        if cached is not None:
            return cached
        try:
            info = self.user_info(user)
        except SlackError as error:
            if error.code not in ("user_not_found", "user_not_visible"):
                raise
            info = {}
        profile = info.get("profile") or {}
        name = str(
            profile.get("display_name")
            or info.get("real_name")
            or profile.get("real_name")
            or info.get("name")
            or user
        )
        with self._names_lock:
            self._names[user] = name
        return name

    def history(self, channel: str, oldest: str | None = None) -> Iterator[dict[str, Any]]:
        """Every top-level message of the channel (after `oldest`), newest first."""
        pages = self._pages(
            "conversations.history",
            channel=channel,
            limit=HISTORY_PAGE_SIZE,
            **({"oldest": oldest} if oldest else {}),
        )
        for page in pages:
            yield from page.get("messages", [])

    def replies(
        self, channel: str, thread_ts: str, oldest: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """A thread's replies after `oldest`, oldest first, without the parent.

        Slack may repeat the parent (and, across pages, a message) on every page, so
        messages are de-duplicated by ts.
        """
        seen = {thread_ts}
        pages = self._pages(
            "conversations.replies",
            channel=channel,
            ts=thread_ts,
            limit=HISTORY_PAGE_SIZE,
            **({"oldest": oldest} if oldest else {}),
        )
        for page in pages:
            for message in page.get("messages", []):
                ts = str(message.get("ts"))
                if ts not in seen:
                    seen.add(ts)
                    yield message

    def channel_url(self, channel: str) -> str:
        """`https://<workspace>/archives/<channel>`: opens the channel in Slack."""
        if self._workspace_url is None:
            self.verify()
        base = (self._workspace_url or "https://slack.com/").rstrip("/")
        return f"{base}/archives/{channel}"

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        """A message's permalink, built the way `chat.getPermalink` answers, without a call.

        `https://<workspace>/archives/<channel>/p<ts without the dot>`, plus
        `?thread_ts=…&cid=…` for a reply. A dump links thousands of messages, and the
        transcript recognises its own blocks by the ts in this link (see "Crash safety of
        the transcript" in docs/ARCHITECTURE.md).
        """
        url = f"{self.channel_url(channel)}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            url += f"?thread_ts={thread_ts}&cid={channel}"
        return url
