"""Socket Mode pushes and ``response_url`` handling for FakeSlack.

:class:`SocketModeMixin` is the part of FakeSlack's API that plays the Slack
user: it pushes slash commands, shortcuts, view submissions, block actions and
events over the websocket, each with a fresh ``trigger_id`` and (where Slack
gives one) a ``response_url``; it exposes the acks and the connection faults.

:class:`ResponseUrls` serves those ``response_url``s: posts are recorded, and
shown the way Slack shows them (``in_channel`` as a channel message, otherwise
as an ephemeral message to the user who acted).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from bolt_app.devkit.fake_slack import payloads
from bolt_app.devkit.fake_slack.api import TriggerBook
from bolt_app.devkit.fake_slack.socket_server import Ack, Envelope, SocketModeServer
from bolt_app.devkit.fake_slack.state import JSON, TEAM_ID, SlackError, User, Workspace

RESPONSE_URL_MAX_USES = 5  # Slack: a response_url works up to 5 times in 30 minutes


#: What Slack turns into markup in a typed slash command (`should_escape: true`).
_MENTION = re.compile(r"(?<![\w<])([@#])([a-z0-9][a-z0-9._-]*)")
_WEB_ADDRESS = re.compile(r"(?<!<)https?://[^\s<>,]+[^\s<>,.]")


@dataclass(frozen=True)
class ResponsePost:
    """A POST to a ``response_url`` the fake handed out."""

    response_id: str
    envelope_id: str | None
    channel_id: str | None
    user_id: str | None
    body: JSON
    at: float


@dataclass
class _Target:
    envelope_id: str | None
    channel_id: str | None
    user_id: str | None
    uses: int = 0


class ResponseUrls:
    """The ``/response/<id>`` endpoints of one FakeSlack."""

    def __init__(self, workspace: Workspace, base: str, bot_id: str) -> None:
        self.workspace = workspace
        self.base = base
        self.bot_id = bot_id
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        self._posts: list[ResponsePost] = []

    def new(self, envelope_id: str | None, channel_id: str | None, user_id: str | None) -> str:
        """Register a response_url for an envelope and return it."""
        response_id = self.workspace.new_id("R", 12)
        with self._lock:
            self._targets[response_id] = _Target(envelope_id, channel_id, user_id)
        return f"{self.base}{response_id}"

    @property
    def posts(self) -> list[ResponsePost]:
        """Every POST received, oldest first."""
        with self._lock:
            return list(self._posts)

    def handle(self, response_id: str, body: JSON) -> tuple[int, JSON]:
        """Record a POST and make it visible like Slack would."""
        with self._lock:
            target = self._targets.get(response_id)
            if target is None:
                return 404, {"ok": False, "error": "invalid_url"}
            if target.uses >= RESPONSE_URL_MAX_USES:
                return 404, {"ok": False, "error": "used_url"}
            target.uses += 1
            post = ResponsePost(
                response_id,
                target.envelope_id,
                target.channel_id,
                target.user_id,
                dict(body),
                time.time(),
            )
            self._posts.append(post)
        self._show(target, body)
        return 200, {"ok": True}

    def _show(self, target: _Target, body: JSON) -> None:
        """``in_channel`` responses become channel messages; others are ephemeral."""
        with self.workspace.lock:
            channel = self.workspace.channels.get(target.channel_id or "")
            if channel is None:
                return
            text = str(body.get("text", ""))
            bot = self.workspace.bot
            if body.get("response_type") == "in_channel":
                self.workspace.post(
                    channel, bot.id, text, blocks=body.get("blocks"), bot_id=self.bot_id
                )
                return
            self.workspace.ephemerals.append(
                {
                    "channel": channel.id,
                    "user": target.user_id,
                    "text": text,
                    "blocks": body.get("blocks"),
                    "attachments": body.get("attachments"),
                    "thread_ts": body.get("thread_ts"),
                    "message_ts": self.workspace.next_ts(channel),
                    "source": "response_url",
                }
            )


class SocketModeMixin:
    """Socket Mode half of FakeSlack's public API (see the module docstring)."""

    workspace: Workspace
    bot_user_id: str
    bot_id: str
    app_id: str
    response_urls: ResponseUrls
    _socket: SocketModeServer
    _triggers: TriggerBook

    @property
    def responses(self) -> list[ResponsePost]:
        """Every POST to a ``response_url``, oldest first."""
        return self.response_urls.posts

    @property
    def connection_count(self) -> int:
        """Open Socket Mode connections."""
        return self._socket.connection_count

    @property
    def connections_total(self) -> int:
        """Socket Mode connections accepted since start (reconnects count)."""
        return self._socket.connections_total

    def wait_connected(self, n: int = 1, timeout: float = 5.0) -> int:
        """Block until ``n`` connections are greeted and answer pings; returns the count."""
        return self._socket.wait_connected(n, timeout)

    def push_envelope(
        self, kind: str, payload: JSON, accepts_response_payload: bool = False
    ) -> str:
        """Push any envelope; returns its envelope_id."""
        envelope_id = payloads.new_envelope_id()
        return self._socket.push(
            payloads.envelope(kind, payload, accepts_response_payload, envelope_id)
        )

    def _actor(self, user_id: str) -> User:
        """The acting user; unknown ids are added so payloads stay well-formed."""
        with self.workspace.lock:
            if user_id not in self.workspace.users:
                self.workspace.add_user(User(user_id, user_id.lower(), user_id.lower()))
            return self.workspace.users[user_id]

    def _channel_ref(self, channel_id: str | None, channel_name: str | None) -> tuple[str, str]:
        """(id, name) for a payload; the name comes from state when known."""
        cid = channel_id or ""
        with self.workspace.lock:
            known = self.workspace.channels.get(cid)
        return cid, channel_name or (known.name if known else "directmessage")

    def slash_command(
        self,
        text: str = "",
        command: str = "/incident",
        *,
        user_id: str = "U0ALICE",
        channel_id: str | None = None,
        channel_name: str | None = None,
    ) -> str:
        """Push a ``slash_commands`` envelope (a fresh trigger_id and response_url)."""
        envelope_id = payloads.new_envelope_id()
        cid, cname = self._channel_ref(channel_id, channel_name)
        payload = payloads.slash_command(
            command=command,
            text=text,
            user=self._actor(user_id),
            channel_id=cid,
            channel_name=cname,
            response_url=self.response_urls.new(envelope_id, cid, user_id),
            trigger_id=self._triggers.issue(),
        )
        return self._socket.push(payloads.envelope("slash_commands", payload, True, envelope_id))

    def typed_command(self, typed: str, **kwargs: Any) -> str:
        """`slash_command` with the text as a person types it, escaped as Slack escapes
        it for an app with `should_escape: true`: `&`, `<`, `>` as entities, `@name` of a
        workspace user as `<@U…|name>`, `#name` of a channel as `<#C…|name>`, a web
        address as `<https://…>`."""
        return self.slash_command(self.escaped(typed), **kwargs)

    def escaped(self, typed: str) -> str:
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        with self.workspace.lock:
            users = {u.name: u.id for u in self.workspace.users.values()}
            channels = {c.name: c.id for c in self.workspace.channels.values()}

        def mention(match: re.Match[str]) -> str:
            sigil, name = match.group(1), match.group(2)
            found = (users if sigil == "@" else channels).get(name)
            if found is None:
                return match.group(0)
            return f"<{sigil}{found}|{name}>"

        text = _MENTION.sub(mention, text)
        return _WEB_ADDRESS.sub(lambda m: f"<{m.group(0)}>", text)

    def message_shortcut(
        self,
        callback_id: str,
        *,
        user_id: str = "U0ALICE",
        channel_id: str,
        message_ts: str | None = None,
        channel_name: str | None = None,
        message: JSON | None = None,
    ) -> str:
        """Push a message shortcut on a message (taken from state when it exists)."""
        envelope_id = payloads.new_envelope_id()
        cid, cname = self._channel_ref(channel_id, channel_name)
        if message is None:
            message = self._message_or_stub(cid, message_ts, user_id)
        payload = payloads.message_action(
            callback_id=callback_id,
            user=self._actor(user_id),
            channel_id=cid,
            channel_name=cname,
            message=message,
            response_url=self.response_urls.new(envelope_id, cid, user_id),
            trigger_id=self._triggers.issue(),
        )
        return self._socket.push(payloads.envelope("interactive", payload, False, envelope_id))

    def _message_or_stub(self, channel_id: str, ts: str | None, user_id: str) -> JSON:
        """The stored message, or a minimal one if the test didn't seed it."""
        with self.workspace.lock:
            channel = self.workspace.channels.get(channel_id)
            if ts and channel is not None:
                with contextlib.suppress(SlackError):
                    return self.workspace.message(channel, ts).to_api()
        return {"type": "message", "ts": ts or f"{time.time():.6f}", "text": "", "user": user_id}

    def view_submission(
        self,
        view: JSON,
        *,
        user_id: str = "U0ALICE",
        values: JSON | None = None,
    ) -> str:
        """Push a ``view_submission``; ``view`` may be partial or a stored view's id.

        Fields missing from ``view`` are taken from the view stored by
        ``views.open`` with the same ``id`` (if any), then from defaults;
        ``values`` fills ``view.state.values``.
        """
        envelope_id = payloads.new_envelope_id()
        full = self._full_view(view, values)
        payload = payloads.view_submission(
            view=full, user=self._actor(user_id), trigger_id=self._triggers.issue()
        )
        return self._socket.push(payloads.envelope("interactive", payload, True, envelope_id))

    def _full_view(self, view: JSON, values: JSON | None) -> JSON:
        """Merge a partial view over the stored one and Slack's defaults."""
        with self.workspace.lock:
            stored = self.workspace.views.get(str(view.get("id", "")), {})
        merged: JSON = {
            "id": view.get("id") or self.workspace.new_id("V"),
            "team_id": TEAM_ID,
            "type": "modal",
            "callback_id": "",
            "private_metadata": "",
            "blocks": [],
            "hash": f"{int(time.time())}.fake",
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "previous_view_id": None,
            "root_view_id": None,
            "external_id": "",
            **stored,
            **view,
        }
        state = dict(merged.get("state") or {"values": {}})
        if values is not None:
            state["values"] = values
        merged["state"] = state
        merged["root_view_id"] = merged["root_view_id"] or merged["id"]
        return merged

    def block_action(
        self,
        action_id: str,
        *,
        value: str | None = None,
        user_id: str = "U0ALICE",
        channel_id: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        block_id: str | None = None,
    ) -> str:
        """Push a button click on a message (``channel_id`` + ``message_ts``) or a view."""
        envelope_id = payloads.new_envelope_id()
        extra: JSON = {}
        if view_id:
            container: JSON = {"type": "view", "view_id": view_id}
            extra["view"] = self._full_view({"id": view_id}, None)
        else:
            cid, cname = self._channel_ref(channel_id, None)
            message = self._message_or_stub(cid, message_ts, user_id)
            container = {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": cid,
                "is_ephemeral": False,
            }
            extra.update(
                channel={"id": cid, "name": cname},
                message=message,
                response_url=self.response_urls.new(envelope_id, cid, user_id),
            )
        payload = payloads.block_actions(
            action=payloads.button_action(action_id, value, block_id),
            user=self._actor(user_id),
            trigger_id=self._triggers.issue(),
            container=container,
            extra=extra,
        )
        return self._socket.push(payloads.envelope("interactive", payload, False, envelope_id))

    def event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Push an ``events_api`` envelope wrapping ``event`` (``event_ts`` defaulted).

        Slack retries an event it got no ack for with the same ``event_id`` and
        ``retry_attempt`` 1-3 (``retry_reason`` such as ``timeout``); pass them to play a
        retry, or the same event twice.
        """
        now = time.time()
        body = {"event_ts": f"{now:.6f}", **event}
        payload = payloads.event_callback(
            body, self.bot_user_id, event_id or payloads.new_event_id(), int(now)
        )
        envelope = payloads.envelope("events_api", payload, False, payloads.new_envelope_id())
        envelope["retry_attempt"], envelope["retry_reason"] = retry_attempt, retry_reason
        return self._socket.push(envelope)

    @property
    def acks(self) -> list[Ack]:
        """Every ack received, in arrival order."""
        return self._socket.acks

    def ack(self, envelope_id: str) -> Ack | None:
        """The ack of an envelope, if it arrived."""
        return self._socket.ack(envelope_id)

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Block until an envelope is acked; returns the :class:`Ack`."""
        return self._socket.wait_for_ack(envelope_id, timeout)

    def lose_acks(self, losing: bool = True) -> None:
        """Drop every ack on arrival until called with False: the bot did its part,
        Slack never heard it (for a command, the user then sees an error)."""
        self._socket.losing_acks = losing

    def gave_up(self, envelope_id: str) -> bool:
        """Whether Slack showed the user an error for this envelope: it went out, was never
        acked, and its connection is gone (a command is then never sent again)."""
        return self._socket.gave_up(envelope_id)

    @property
    def envelopes(self) -> list[Envelope]:
        """Every envelope pushed so far."""
        return self._socket.envelopes

    def send_disconnect(
        self,
        reason: str = "refresh_requested",
        *,
        connection_id: int | None = None,
        close_after: float | None = None,
    ) -> int:
        """Send Slack's ``disconnect`` (reason: refresh_requested | warning | link_disabled)."""
        return self._socket.send_disconnect(
            reason, connection_id=connection_id, close_after=close_after
        )

    def drop_sockets(self) -> int:
        """Abruptly kill every Socket Mode connection (no close frame)."""
        return self._socket.drop_sockets()
