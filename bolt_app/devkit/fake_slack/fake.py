"""FakeSlack: a local Slack (Web API + Socket Mode) for tests, the demo and benchmarks.

Point the real clients at it::

    with FakeSlack() as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        app = App(client=client)                  # Bolt takes the token from the client
        handler = SocketModeHandler(app, slack.app_token)
        handler.connect()                         # apps.connections.open -> the fake's ws
        slack.wait_connected()
        envelope_id = slack.slash_command("declare Checkout is down", channel_id=cid)
        ack = slack.wait_for_ack(envelope_id)     # ack.payload, ack.latency_s

With slack_sdk's websocket-client adapter, give ``run_forever`` a
``ping_timeout`` (see ``QuickSocketModeClient`` in tests/fakes/test_fake_slack.py):
without one, a session swap can stall the client for ~10 s.

The pieces live in sibling modules: ``slack_state`` (workspace model),
``slack_methods_*`` (one function per Web API method), ``slack_http`` (the HTTP
wire), ``slack_socket`` (the websocket server), ``slack_payloads`` (envelopes).
This class wires them together and offers test helpers to seed and read state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from bolt_app.devkit.common import (
    ANY_KEY,
    BackgroundHTTPServer,
    Call,
    CallLog,
    Fault,
    FaultPlan,
    RateBudget,
    wait_for,
)
from bolt_app.devkit.fake_slack.api import DEFAULT_BOT_SCOPES, ApiContext, TriggerBook, load_methods
from bolt_app.devkit.fake_slack.http import SlackRequestHandler, WebBackend
from bolt_app.devkit.fake_slack.interactive import ResponsePost, ResponseUrls, SocketModeMixin
from bolt_app.devkit.fake_slack.socket_server import Ack, Envelope, SocketModeServer
from bolt_app.devkit.fake_slack.state import APP_ID, JSON, Channel, Message, User, Workspace

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["Ack", "Call", "Envelope", "FakeSlack", "ResponsePost"]


#: The methods Slack's capped tier limits to one request a minute, 15 messages a page.
CAPPED_METHODS = ("conversations.history", "conversations.replies")


class FakeSlack(SocketModeMixin):
    """A Slack workspace on 127.0.0.1 with one app installed (its bot user is created)."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-bot",
        app_token: str = "xapp-fake-app",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_name: str = "firebreak",
        scopes: Iterable[str] | None = None,
        trigger_ttl: float | None = 3.0,
        history_limit_cap: int = 999,
        replies_parent_every_page: bool = True,
        clock: Callable[[], float] | None = None,
        event_retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0),
        event_ack_timeout: float = 3.0,
        message_events: bool = False,
        ws_ping_interval: float | None = 2.0,
        ws_ping_timeout: float | None = 2.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = APP_ID
        self._stop_event = threading.Event()
        bot = User(
            bot_user_id,
            bot_name,
            real_name=bot_name,
            display_name=bot_name,
            is_bot=True,
            bot_id=bot_id,
        )
        self.workspace = Workspace(bot, clock=clock)
        self.faults = FaultPlan()
        self.call_log = CallLog()
        self.revoked_tokens: set[str] = set()
        self.refused_tokens: dict[str, str] = {}
        self._socket = SocketModeServer(
            APP_ID,
            self._stop_event,
            host=host,
            event_retry_delays=event_retry_delays,
            ack_timeout=event_ack_timeout,
            ping_interval=ws_ping_interval,
            ping_timeout=ws_ping_timeout,
        )
        self._triggers = TriggerBook(trigger_ttl)
        self._rates = {method: RateBudget() for method in CAPPED_METHODS}
        self._ctx = ApiContext(
            ws=self.workspace,
            scopes=frozenset(DEFAULT_BOT_SCOPES if scopes is None else scopes),
            triggers=self._triggers,
            open_socket_url=self._socket.issue_url,
            history_limit_cap=history_limit_cap,
            replies_parent_every_page=replies_parent_every_page,
        )
        self._http = BackgroundHTTPServer(self._handler_class(), host=host)
        self.response_urls = ResponseUrls(
            self.workspace, f"http://{self._http.host}:{self._http.port}/response/", bot_id
        )
        self._started = False
        #: Push `message` events (message.channels / message.groups) for what `post`,
        #: `edit_message` and `delete_message` do in channels the bot is in, as Slack
        #: does for an app subscribed to them. Off by default: most tests seed history
        #: and never want thousands of events.
        self.message_events = message_events

    def _handler_class(self) -> type[SlackRequestHandler]:
        """A handler subclass bound to this fake's backend."""
        backend = WebBackend(
            ctx=self._ctx,
            methods=load_methods(),
            bot_token=self.bot_token,
            app_token=self.app_token,
            revoked=self.revoked_tokens,
            refused=self.refused_tokens,
            faults=self.faults,
            calls=self.call_log,
            stop=self._stop_event,
            on_response_url=lambda rid, body: self.response_urls.handle(rid, body),
            rates=self._rates,
        )
        return type("BoundSlackRequestHandler", (SlackRequestHandler,), {"backend": backend})

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        """Start the HTTP and websocket servers (idempotent; a stopped fake stays stopped)."""
        if self._stop_event.is_set():
            raise RuntimeError("this FakeSlack was stopped; create a new one")
        if not self._started:
            self._http.start(name="fake-slack-http")
            self._socket.start()
            self._started = True
            log.info("FakeSlack listening: %s (ws port %d)", self.base_url, self._socket.port)
        return self

    def stop(self) -> None:
        """Stop fast: drop sockets, interrupt delays, join every thread."""
        if not self._started:
            return
        self._stop_event.set()
        self._socket.stop()
        self._http.stop()
        self._started = False

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The Web API port."""
        return self._http.port

    @property
    def ws_port(self) -> int:
        """The Socket Mode websocket port."""
        return self._socket.port

    @property
    def base_url(self) -> str:
        """``WebClient(base_url=...)``: ``http://127.0.0.1:PORT/api/``."""
        return f"http://{self._http.host}:{self.port}/api/"

    # ------------------------------------------------------------------ configuration

    @property
    def scopes(self) -> frozenset[str]:
        """The bot token's granted scopes."""
        return self._ctx.scopes

    def set_scopes(self, scopes: Iterable[str]) -> None:
        """Change the granted scopes (methods outside them answer ``missing_scope``)."""
        self._ctx.scopes = frozenset(scopes)

    def revoke_token(self, token: str | None = None) -> None:
        """Make a token (default: the bot token) answer ``token_revoked``."""
        self.revoked_tokens.add(token or self.bot_token)

    def restore_token(self, token: str | None = None) -> None:
        """Undo :meth:`revoke_token`."""
        self.revoked_tokens.discard(token or self.bot_token)

    def revoke_app_token(self, error: str = "invalid_auth") -> None:
        """Revoke the app-level token while the app runs: ``apps.connections.open``
        answers HTTP 200 ``{"ok": false, "error": error}``, as Slack's does (its docs list
        ``invalid_auth``; ``token_revoked`` is the other likely one), and the websocket
        refuses every handshake, URLs handed out before included. Open connections stay
        up until ``drop_sockets`` or ``send_disconnect``: when Slack closes them is not
        modelled."""
        self.refused_tokens[self.app_token] = error
        self._socket.refusing = True

    def restore_app_token(self) -> None:
        """Undo :meth:`revoke_app_token`."""
        self.refused_tokens.pop(self.app_token, None)
        self._socket.refusing = False

    # ------------------------------------------------------------------ faults and calls

    def inject(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int = 1,
        times: int = 1,
        error: str | None = None,
        delay: float | None = None,
        reset: bool = False,
        drop_response: bool = False,
        raw_body: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"``: any) misbehave.

        Default: HTTP 429 + ``Retry-After`` + ``ratelimited``. ``status=503``: a
        5xx. ``error="token_revoked"``: HTTP 200 ``ok: false``. ``delay=2``: a
        slow but normal answer. ``reset=True``: the connection is reset.
        ``drop_response=True``: the call is applied, then the connection is reset
        before the answer (the write happened; the caller can't know).
        ``raw_body="upstream connect error…"``: that text instead of JSON (with
        ``status``, 503 say), as a proxy in front of Slack answers. Use
        ``"response_url"`` as the method to target response_url POSTs.
        """
        quiet = delay is None and not (reset or drop_response or raw_body is not None)
        if status is None and error is None and quiet:
            status = 429
        fault = Fault(
            status=status,
            error=error,
            retry_after=retry_after,
            delay=delay,
            reset=reset,
            drop_response=drop_response,
            raw_body=raw_body,
        )
        self.faults.arm(method, fault, times)

    def set_latency(self, seconds: float, method: str = ANY_KEY) -> None:
        """Add a fixed latency to every call of ``method`` (threads keep others flowing)."""
        self.faults.set_latency(seconds, method)

    def clear_faults(self) -> None:
        """Disarm every injected fault and latency."""
        self.faults.clear()

    @property
    def calls(self) -> list[Call]:
        """Every Web API / response_url call, oldest first."""
        return self.call_log.calls

    def calls_to(self, method: str) -> list[Call]:
        """Calls of one method, oldest first."""
        return self.call_log.to(method)

    def count(self, method: str | None = None) -> int:
        """How many calls of ``method`` (or in total) were made."""
        return self.call_log.count(method)

    def clear_calls(self) -> None:
        """Forget recorded calls (e.g. after setup)."""
        self.call_log.clear()

    @staticmethod
    def wait_for(
        predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.01
    ) -> T:
        """Poll ``predicate`` until truthy; return its value or raise TimeoutError."""
        return wait_for(predicate, timeout, interval)

    # ------------------------------------------------------------------ seeding state

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str = "",
        display_name: str = "",
        is_bot: bool = False,
        bot_id: str | None = None,
        email: str | None = None,
        deleted: bool = False,
    ) -> str:
        """Add a workspace user; returns its id."""
        user = User(user_id, name, real_name or name, display_name, is_bot, bot_id, deleted, email)
        return self.workspace.add_user(user).id

    def hide_user(self, user_id: str) -> None:
        """Make `users.info` answer `user_not_visible` for this user, as Slack does for
        people the bot can't see (outside a shared channel's own workspace)."""
        with self.workspace.lock:
            self.workspace.hidden_users.add(user_id)

    def add_channel(
        self,
        name: str,
        *,
        members: Iterable[str] = (),
        is_private: bool = False,
        topic: str = "",
        purpose: str = "",
        creator: str | None = None,
        bot_member: bool = True,
    ) -> str:
        """Add a channel (bypassing the API and its name rules); returns its id.

        The bot is a member unless ``bot_member=False``; each member's join is
        posted, as in Slack.
        """
        wanted = list(members)
        if bot_member and self.bot_user_id not in wanted:
            wanted.insert(0, self.bot_user_id)
        first = creator or (wanted[0] if wanted else self.bot_user_id)
        with self.workspace.lock:
            channel = self.workspace.create_channel(
                name, first, is_private=is_private, members=wanted, topic=topic, purpose=purpose
            )
            if first not in wanted:
                self.workspace.leave(channel, first)
            return channel.id

    def post(
        self,
        channel: str,
        user: str | None,
        text: str = "",
        *,
        thread_ts: str | None = None,
        subtype: str | None = None,
        files: list[JSON] | None = None,
        ts: str | None = None,
        blocks: list[Any] | None = None,
        bot_id: str | None = None,
        reply_broadcast: bool = False,
        **fields: Any,
    ) -> str:
        """Put a message straight into a channel (no API call); returns its ts.

        ``files`` entries get Slack's file fields filled in (id, permalink, ...);
        ``subtype="bot_message"`` defaults ``bot_id`` to the app's bot; extra
        keyword arguments are merged into the message object.
        """
        with self.workspace.lock:
            target = self._channel(channel)
            if subtype == "bot_message" and bot_id is None:
                bot_id = self.bot_id
            if reply_broadcast and thread_ts:
                subtype = "thread_broadcast"
            files = [self._file(f, user) for f in files] if files else None
            if files and subtype is None:
                subtype = "file_share"
            message = self.workspace.post(
                target,
                user,
                text,
                subtype=subtype,
                thread_ts=thread_ts,
                blocks=blocks,
                bot_id=bot_id,
                files=files,
                ts=ts,
                extra=fields,
            )
            event = {**message.to_api(), "channel": target.id}
            subscribed = self._subscribed(target)
        if subscribed:
            self.message_event(event, target)
        return message.ts

    def edit_message(self, channel: str, ts: str, text: str) -> None:
        """Edit a message as its author would; pushes `message_changed` when subscribed."""
        with self.workspace.lock:
            target = self._channel(channel)
            message = self.workspace.message(target, ts)
            previous = message.to_api()
            message.text = text
            message.edit_count += 1
            stamp = self._change_stamp(message)
            message.edited = {"user": message.user or self.bot_user_id, "ts": stamp}
            event = _changed_event(target, message, previous, stamp)
            subscribed = self._subscribed(target)
        if subscribed:
            self.message_event(event, target)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message as Slack does: a thread parent with replies becomes a
        `tombstone` (announced by `message_changed`); anything else is removed
        (`message_deleted`)."""
        with self.workspace.lock:
            target = self._channel(channel)
            message = self.workspace.message(target, ts)
            previous = message.to_api()
            stamp = self._change_stamp(message)
            if message.reply_us and not message.is_reply:
                message.subtype, message.user = "tombstone", "USLACKBOT"
                message.text = "This message was deleted."
                message.files = message.blocks = None
                message.extra = {"hidden": True}
                event = _changed_event(target, message, previous, stamp)
            else:
                self.workspace.delete_message(target, message)
                event = {
                    "subtype": "message_deleted",
                    "hidden": True,
                    "channel": target.id,
                    "ts": stamp,
                    "deleted_ts": ts,
                    "previous_message": previous,
                }
            subscribed = self._subscribed(target)
        if subscribed:
            self.message_event(event, target)

    def message_event(self, event: JSON, channel: Channel, *, event_id: str | None = None) -> str:
        """Push one `message` event of `channel` (with `channel_type`); its envelope id."""
        body = {"type": "message", **event}
        body.setdefault("channel_type", "group" if channel.is_private else "channel")
        body.setdefault("event_ts", body.get("ts") or self._now_ts())
        return self.event(body, event_id=event_id)

    def capped_tier(self, window_s: float | None = 60.0, page: int = 15) -> None:
        """Serve history like Slack serves apps distributed outside the Marketplace:
        `conversations.history` and `.replies` each at most once per `window_s` (429
        `ratelimited` with `Retry-After` otherwise) and at most `page` messages a page.
        `window_s=None` lifts it."""
        for budget in self._rates.values():
            budget.set(None if window_s is None else 1, window_s or 1.0)
        self._ctx.page_cap = None if window_s is None else page

    def _subscribed(self, channel: Channel) -> bool:
        return self.message_events and self.bot_user_id in channel.members

    def _now_ts(self) -> str:
        return f"{time.time():.6f}"

    @staticmethod
    def _change_stamp(message: Message) -> str:
        """The ts of an edit or a deletion of `message`: now, but after the message and its
        last edit however they were seeded, since in Slack a change follows its message."""
        latest = float((message.edited or {}).get("ts") or message.ts)
        return f"{max(time.time(), latest + 1.0):.6f}"

    def _file(self, spec: JSON, user: str | None) -> JSON:
        """Fill a file object like Slack's (the transcript links to ``permalink``)."""
        file_id = spec.get("id") or self.workspace.new_id("F")
        name = spec.get("name", "file.txt")
        owner = user or self.bot_user_id
        base = f"https://fake.slack.test/files/{owner}/{file_id}/{name}"
        return {
            "id": file_id,
            "name": name,
            "title": spec.get("title", name),
            "mimetype": spec.get("mimetype", "text/plain"),
            "filetype": spec.get("filetype", name.rsplit(".", 1)[-1]),
            "size": spec.get("size", 0),
            "user": owner,
            "url_private": base,
            "permalink": base,
            **spec,
        }

    # ------------------------------------------------------------------ reading state

    def _channel(self, ref: str) -> Channel:
        """A channel by id or name (``#`` optional); KeyError if unknown."""
        with self.workspace.lock:
            found = self.workspace.channels.get(ref) or self.workspace.channel_named(ref)
            if found is None:
                raise KeyError(f"no channel {ref!r}")
            return found

    def channel(self, ref: str) -> JSON:
        """A channel object (API shape, from the bot's view) by id or name."""
        with self.workspace.lock:
            target = self._channel(ref)
            return {**target.to_api(self.bot_user_id), "num_members": len(target.members)}

    def channel_by_name(self, name: str) -> JSON | None:
        """A channel object by name, or None."""
        with self.workspace.lock:
            found = self.workspace.channel_named(name)
            return self.channel(found.id) if found else None

    def channels(self) -> list[JSON]:
        """Every channel, in creation order."""
        with self.workspace.lock:
            return [self.channel(cid) for cid in self.workspace.channels]

    def messages(self, channel: str, include_replies: bool = False) -> list[JSON]:
        """Messages oldest first; replies only with ``include_replies=True``."""
        with self.workspace.lock:
            target = self._channel(channel)
            ordered = [target.messages[us] for us in sorted(target.messages)]
            return [m.to_api(metadata=True) for m in ordered if include_replies or m.in_history]

    def replies(self, channel: str, thread_ts: str) -> list[JSON]:
        """The replies of a thread (without the parent), oldest first."""
        with self.workspace.lock:
            target = self._channel(channel)
            parent = self.workspace.message(target, thread_ts)
            return [m.to_api(metadata=True) for m in self.workspace.replies(target, parent)]

    def message(self, channel: str, ts: str) -> JSON:
        """One message by ts."""
        with self.workspace.lock:
            return self.workspace.message(self._channel(channel), ts).to_api(metadata=True)

    def edit_count(self, channel: str, ts: str) -> int:
        """How many times ``chat.update`` edited a message."""
        with self.workspace.lock:
            return self.workspace.message(self._channel(channel), ts).edit_count

    def bookmarks(self, channel: str) -> list[JSON]:
        """The channel's bookmarks (API shape)."""
        with self.workspace.lock:
            return [b.to_api() for b in self._channel(channel).bookmarks]

    def topic(self, channel: str) -> str:
        """The channel topic's text."""
        with self.workspace.lock:
            return str(self._channel(channel).topic.get("value", ""))

    def purpose(self, channel: str) -> str:
        """The channel purpose's text."""
        with self.workspace.lock:
            return str(self._channel(channel).purpose.get("value", ""))

    def members(self, channel: str) -> set[str]:
        """The channel's member ids."""
        with self.workspace.lock:
            return set(self._channel(channel).members)

    def pins(self, channel: str) -> list[str]:
        """Timestamps of pinned messages, in pin order."""
        with self.workspace.lock:
            return list(self._channel(channel).pins)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[JSON]:
        """Ephemeral messages (``chat.postEphemeral`` and ephemeral ``response_url`` posts)."""
        with self.workspace.lock:
            channel_id = self._channel(channel).id if channel else None
            return [
                dict(e)
                for e in self.workspace.ephemerals
                if (channel_id is None or e["channel"] == channel_id)
                and (user is None or e["user"] == user)
            ]

    def views(self) -> list[JSON]:
        """Every view opened or updated, by id order."""
        with self.workspace.lock:
            return [dict(v) for v in self.workspace.views.values()]

    def users(self) -> list[JSON]:
        """Every user (API shape)."""
        with self.workspace.lock:
            return [u.to_api() for u in self.workspace.users.values()]


def _changed_event(target: Channel, message: Message, previous: JSON, stamp: str) -> JSON:
    """Slack's `message_changed` event: the message as it is now, and as it was."""
    return {
        "subtype": "message_changed",
        "hidden": True,
        "channel": target.id,
        "ts": stamp,
        "message": message.to_api(),
        "previous_message": previous,
    }
