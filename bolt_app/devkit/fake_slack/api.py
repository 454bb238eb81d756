"""The Web API surface of FakeSlack: method registry, parameters, auth and scopes.

Each Slack method is a small function registered with :func:`method`. It gets an
:class:`ApiContext` (the workspace plus who is calling) and :class:`Params` (the
decoded request, whatever its encoding) and returns the success body without
``ok``; it raises :class:`SlackError` for Slack's ``ok: false`` answers.

Scopes: ``accepted`` is what the method accepts (sent back in
``x-accepted-oauth-scopes``). For conversation methods Slack needs the public
or private flavour depending on the channel, so those handlers call
:meth:`ApiContext.require_channel_scope` once they know the channel.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bolt_app.devkit.fake_slack.state import JSON, Channel, SlackError, User, Workspace

# Scopes a fresh FakeSlack grants its bot token: everything Firebreak may need.
DEFAULT_BOT_SCOPES: tuple[str, ...] = (
    "app_mentions:read",
    "bookmarks:read",
    "bookmarks:write",
    "channels:history",
    "channels:join",
    "channels:manage",
    "channels:read",
    "chat:write",
    "commands",
    "groups:history",
    "groups:read",
    "groups:write",
    "pins:read",
    "pins:write",
    "team:read",
    "users:read",
)

# kind -> (scope for public channels, scope for private channels)
CHANNEL_SCOPES: dict[str, tuple[str, str]] = {
    "read": ("channels:read", "groups:read"),
    "history": ("channels:history", "groups:history"),
    "manage": ("channels:manage", "groups:write"),
    "join": ("channels:join", "channels:join"),
}

Handler = Callable[["ApiContext", "Params"], JSON]


@dataclass(frozen=True)
class MethodSpec:
    """A registered Web API method."""

    name: str
    handler: Handler
    accepted: tuple[str, ...] = ()
    token: str = "bot"  # "bot" or "app"


METHODS: dict[str, MethodSpec] = {}


def method(
    name: str, *, accepted: Iterable[str] = (), token: str = "bot"
) -> Callable[[Handler], Handler]:
    """Register a handler for a Slack method name."""

    def register(handler: Handler) -> Handler:
        METHODS[name] = MethodSpec(name, handler, tuple(accepted), token)
        return handler

    return register


def load_methods() -> dict[str, MethodSpec]:
    """Import the method modules (which register themselves) and return the table."""
    from bolt_app.devkit.fake_slack import methods_chat, methods_conversations, methods_misc

    del methods_chat, methods_conversations, methods_misc
    return METHODS


# --------------------------------------------------------------------------- params


class Params:
    """Typed access to request parameters from a form, JSON or multipart body.

    Form bodies carry everything as strings (``blocks`` as a JSON string,
    ``users`` as ``"U1,U2"``); JSON bodies carry native values. Accessors accept
    both so handlers don't care which encoding the client chose.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, key: str, default: str | None = None) -> str | None:
        """A parameter as a string (JSON scalars are converted)."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)

    def required(self, key: str, error: str = "invalid_arguments") -> str:
        """A non-empty string parameter, else ``error``."""
        value = self.get(key)
        if not value:
            raise SlackError(error)
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        """Slack's booleans: ``true``/``1`` (any case) or a JSON bool."""
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes")

    def number(self, key: str, default: int) -> int:
        """An integer parameter; malformed values fall back to ``default``."""
        value = self.data.get(key)
        try:
            return int(value) if value not in (None, "") else default
        except (TypeError, ValueError):
            return default

    def decoded(self, key: str, error: str = "invalid_arguments") -> Any:
        """A JSON parameter that may arrive as a JSON string (form bodies)."""
        value = self.data.get(key)
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except ValueError as exc:
                raise SlackError(error) from exc
        return value

    def ids(self, key: str) -> list[str]:
        """A comma-separated list (or a JSON list) of ids."""
        value = self.data.get(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]


# --------------------------------------------------------------------------- cursors


def encode_cursor(kind: str, value: str) -> str:
    """Slack-style opaque cursor: base64 of ``kind:value`` (e.g. ``next_ts:...``)."""
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(cursor: str, kind: str) -> str:
    """Decode a cursor made by :func:`encode_cursor` or raise ``invalid_cursor``."""
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SlackError("invalid_cursor") from exc
    prefix, _, value = decoded.partition(":")
    if prefix != kind or not value:
        raise SlackError("invalid_cursor")
    return value


def effective_limit(p: Params, default: int, maximum: int) -> int:
    """Slack treats a missing or non-positive ``limit`` as the default and caps it."""
    limit = p.number("limit", default)
    return min(limit if limit > 0 else default, maximum)


def page_by_key(
    items: list[Any],
    key: Callable[[Any], str],
    kind: str,
    p: Params,
    default_limit: int,
    max_limit: int,
) -> tuple[list[Any], str]:
    """One cursor page over ``items`` (already ordered); returns (page, next_cursor)."""
    limit = effective_limit(p, default_limit, max_limit)
    start = 0
    cursor = p.get("cursor")
    if cursor:
        wanted = decode_cursor(cursor, kind)
        keys = [key(item) for item in items]
        if wanted not in keys:
            raise SlackError("invalid_cursor")
        start = keys.index(wanted)
    page = items[start : start + limit]
    rest = items[start + limit :]
    return page, encode_cursor(kind, key(rest[0])) if rest else ""


# --------------------------------------------------------------------------- triggers


class TriggerBook:
    """Trigger ids issued with envelopes; ``views.open`` exchanges them once.

    Slack lets a trigger be used once within 3 seconds; the fake enforces the
    same (``ttl=None`` disables expiry) so a slow ack-then-open path fails in
    tests the way it would in production.
    """

    def __init__(self, ttl: float | None = 3.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}
        self._used: set[str] = set()

    def issue(self) -> str:
        """A new trigger id shaped like Slack's (``123.456.hex``)."""
        trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._lock:
            self._issued[trigger] = time.monotonic()
        return trigger

    def exchange(self, trigger_id: str | None) -> None:
        """Use a trigger or raise Slack's error for it."""
        with self._lock:
            if not trigger_id or trigger_id not in self._issued:
                raise SlackError("invalid_trigger_id")
            if trigger_id in self._used:
                raise SlackError("exchanged_trigger_id")
            age = time.monotonic() - self._issued[trigger_id]
            if self.ttl is not None and age > self.ttl:
                raise SlackError("expired_trigger_id")
            self._used.add(trigger_id)


# --------------------------------------------------------------------------- context


@dataclass
class ApiContext:
    """What a method handler may use: state, settings, and the caller's grants."""

    ws: Workspace
    scopes: frozenset[str]
    triggers: TriggerBook
    open_socket_url: Callable[[], str]
    history_limit_cap: int = 999
    #: Slack's capped tier: at most this many messages a page of history or replies.
    page_cap: int | None = None
    replies_parent_every_page: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bot(self) -> User:
        """The bot user the bot token belongs to."""
        return self.ws.bot

    def require_scope(self, *accepted: str) -> None:
        """Raise Slack's ``missing_scope`` unless one of ``accepted`` is granted."""
        if accepted and not self.scopes.intersection(accepted):
            raise SlackError(
                "missing_scope", needed=accepted[0], provided=",".join(sorted(self.scopes))
            )

    def require_channel_scope(self, channel: Channel, kind: str) -> None:
        """The public or private flavour of a scope, by the channel's type."""
        public, private = CHANNEL_SCOPES[kind]
        self.require_scope(private if channel.is_private else public)

    def visible_channel(self, channel_id: str | None) -> Channel:
        """A channel the bot can see: any public one, private ones it is in."""
        if not channel_id:
            raise SlackError("channel_not_found")
        channel = self.ws.channel(channel_id)
        if channel.is_private and self.bot.id not in channel.members:
            raise SlackError("channel_not_found")
        return channel

    def member_channel(self, channel_id: str | None) -> Channel:
        """A channel the bot is a member of, else ``not_in_channel``."""
        channel = self.visible_channel(channel_id)
        if self.bot.id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    @staticmethod
    def not_archived(channel: Channel) -> Channel:
        """Writes to archived channels fail with ``is_archived``."""
        if channel.is_archived:
            raise SlackError("is_archived")
        return channel
