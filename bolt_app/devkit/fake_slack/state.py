"""Workspace state for FakeSlack: users, channels, messages with threads, bookmarks.

Objects are plain dataclasses with a ``to_api()`` that renders the shape Slack's
Web API returns, so the HTTP layer and the test helpers share one source of
truth. Every mutation goes through :class:`Workspace` under one lock; the
server is threaded and tests read state while the app writes it.

Message timestamps are kept as integer microseconds for ordering and rendered
as Slack's ``"1732800000.000100"`` strings. They are strictly increasing per
channel, like Slack's, because the app uses them as identities.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TEAM_ID = "T0FAKE"
TEAM_NAME = "Fake Workspace"
TEAM_DOMAIN = "fake"
APP_ID = "A0FAKE"
WORKSPACE_URL = "https://fake.slack.test/"

JSON = dict[str, Any]


class SlackError(Exception):
    """A Slack API error: answered as HTTP 200 ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# --------------------------------------------------------------------------- timestamps


def ts_to_us(ts: str) -> int:
    """Parse a Slack ts (``"1732800000.000100"``) into integer microseconds."""
    seconds, _, fraction = str(ts).strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a Slack ts: {ts!r}")
    return int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


def us_to_ts(us: int) -> str:
    """Render integer microseconds as a Slack ts string."""
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def permalink(channel_id: str, ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink shape; replies carry ``thread_ts`` and ``cid``."""
    url = f"{WORKSPACE_URL}archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        url += f"?thread_ts={thread_ts}&cid={channel_id}"
    return url


# --------------------------------------------------------------------------- users


@dataclass
class User:
    """A workspace member (human or bot)."""

    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False
    email: str | None = None
    tz: str = "Etc/UTC"

    def profile(self) -> JSON:
        """The ``profile`` sub-object of a user."""
        profile: JSON = {
            "real_name": self.real_name,
            "display_name": self.display_name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.display_name,
            "team": TEAM_ID,
            "image_48": f"https://fake.slack.test/avatars/{self.id}_48.png",
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return profile

    def to_api(self) -> JSON:
        """The user object of ``users.info`` / ``users.list``."""
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1732800000,
            "profile": self.profile(),
        }


# --------------------------------------------------------------------------- messages


@dataclass
class Message:
    """A channel message; a thread parent also tracks its replies' ts."""

    ts: str
    user: str | None
    text: str
    subtype: str | None = None
    thread_ts: str | None = None
    blocks: list[Any] | None = None
    bot_id: str | None = None
    files: list[JSON] | None = None
    extra: JSON = field(default_factory=dict)
    edit_count: int = 0
    edited: JSON | None = None
    reply_us: list[int] = field(default_factory=list)
    reply_users: list[str] = field(default_factory=list)
    #: Message metadata (`event_type`, `event_payload`): history shows it only to
    #: a caller that asks with `include_all_metadata`.
    metadata: JSON | None = None

    @property
    def us(self) -> int:
        """The ts in microseconds."""
        return ts_to_us(self.ts)

    @property
    def is_reply(self) -> bool:
        """True for a message inside a thread (not the parent)."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def in_history(self) -> bool:
        """Replies are not in ``conversations.history`` unless broadcast."""
        return not self.is_reply or self.subtype == "thread_broadcast"

    def to_api(self, *, metadata: bool = False) -> JSON:
        """The message object as ``conversations.history`` renders it (with its
        metadata when asked, as `include_all_metadata` does)."""
        out: JSON = {"type": "message", "ts": self.ts, "text": self.text}
        if metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        if self.user:
            out["user"] = self.user
            out["team"] = TEAM_ID
        for key in ("subtype", "bot_id", "blocks", "files", "thread_ts", "edited"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self._thread_fields())
        out.update(self.extra)
        return out

    def _thread_fields(self) -> JSON:
        """Parent-of-thread bookkeeping fields (empty for other messages)."""
        if self.is_reply or not self.reply_us:
            return {}
        return {
            "thread_ts": self.ts,
            "reply_count": len(self.reply_us),
            "reply_users": list(self.reply_users),
            "reply_users_count": len(self.reply_users),
            "latest_reply": us_to_ts(self.reply_us[-1]),
        }


# --------------------------------------------------------------------------- bookmarks


@dataclass
class Bookmark:
    """A channel bookmark (only the ``link`` type exists in Slack's API)."""

    id: str
    channel_id: str
    title: str
    link: str
    type: str = "link"
    emoji: str | None = None
    date_created: int = 0
    date_updated: int = 0
    created_by: str = ""

    def to_api(self) -> JSON:
        """The bookmark object of ``bookmarks.add`` / ``bookmarks.list``."""
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "entity_id": None,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "rank": "U",
            "last_updated_by_user_id": self.created_by,
            "last_updated_by_team_id": TEAM_ID,
            "shortcut_id": None,
            "app_id": APP_ID,
        }


# --------------------------------------------------------------------------- channels


@dataclass
class Channel:
    """A public or private channel with its timeline, pins and bookmarks."""

    id: str
    name: str
    is_private: bool
    created: int
    creator: str
    topic: JSON = field(default_factory=dict)
    purpose: JSON = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    is_archived: bool = False
    messages: dict[int, Message] = field(default_factory=dict)
    history_us: list[int] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)
    pins: dict[str, JSON] = field(default_factory=dict)
    previous_names: list[str] = field(default_factory=list)

    @property
    def last_us(self) -> int:
        """Largest ts in the channel (0 when empty)."""
        return max(self.messages) if self.messages else 0

    def to_api(self, viewer: str | None = None) -> JSON:
        """The conversation object; ``is_member`` is from ``viewer``'s view."""
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": self.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "parent_conversation": None,
            "is_member": viewer in self.members if viewer else False,
            "topic": dict(self.topic),
            "purpose": dict(self.purpose),
            "previous_names": list(self.previous_names),
        }


def _topic(value: str, creator: str, last_set: int) -> JSON:
    """A topic/purpose sub-object."""
    return {
        "value": value,
        "creator": creator if value else "",
        "last_set": last_set if value else 0,
    }


# --------------------------------------------------------------------------- workspace


class Workspace:
    """All mutable state of the fake, guarded by one re-entrant lock."""

    def __init__(self, bot_user: User, clock: Callable[[], float] | None = None) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.bot = bot_user
        self.users: dict[str, User] = {bot_user.id: bot_user}
        #: Users `users.info` answers `user_not_visible` for (another workspace's people
        #: in a shared channel, say): `FakeSlack.hide_user`.
        self.hidden_users: set[str] = set()
        self.channels: dict[str, Channel] = {}
        self.ephemerals: list[JSON] = []
        self.views: dict[str, JSON] = {}
        self._ids = itertools.count(1)

    # ---- clock and ids

    def now(self) -> float:
        """Current time; the injected clock is resolved at call time."""
        return self._clock() if self._clock is not None else time.time()

    def new_id(self, prefix: str, width: int = 9) -> str:
        """A Slack-looking id (``C000000001``) unique within this fake."""
        return f"{prefix}{next(self._ids):0{width}d}"

    # ---- users

    def add_user(self, user: User) -> User:
        """Insert or replace a user."""
        with self.lock:
            self.users[user.id] = user
            return user

    def user(self, user_id: str) -> User:
        """Look a user up or raise ``user_not_found``."""
        with self.lock:
            found = self.users.get(user_id)
            if found is None:
                raise SlackError("user_not_found")
            return found

    # ---- channels

    def channel(self, channel_id: str) -> Channel:
        """Look a channel up by id or raise ``channel_not_found``."""
        with self.lock:
            found = self.channels.get(channel_id)
            if found is None:
                raise SlackError("channel_not_found")
            return found

    def channel_named(self, name: str) -> Channel | None:
        """Find a channel by name (a leading ``#`` is ignored)."""
        wanted = name.lstrip("#")
        with self.lock:
            return next((c for c in self.channels.values() if c.name == wanted), None)

    def create_channel(
        self,
        name: str,
        creator: str,
        is_private: bool = False,
        members: Iterable[str] = (),
        topic: str = "",
        purpose: str = "",
    ) -> Channel:
        """Create a channel; the creator is a member and its join is posted."""
        with self.lock:
            now = int(self.now())
            channel = Channel(
                id=self.new_id("C"),
                name=name,
                is_private=is_private,
                created=now,
                creator=creator,
                topic=_topic(topic, creator, now),
                purpose=_topic(purpose, creator, now),
            )
            self.channels[channel.id] = channel
            for member in [creator, *members]:
                self.join(channel, member)
            return channel

    def join(self, channel: Channel, user_id: str) -> bool:
        """Add a member and post Slack's ``channel_join`` message; False if already in."""
        with self.lock:
            if user_id in channel.members:
                return False
            channel.members.add(user_id)
            self.post(
                channel, user_id, f"<@{user_id}> has joined the channel", subtype="channel_join"
            )
            return True

    def leave(self, channel: Channel, user_id: str) -> bool:
        """Remove a member and post ``channel_leave``; False if not a member."""
        with self.lock:
            if user_id not in channel.members:
                return False
            channel.members.discard(user_id)
            self.post(
                channel, user_id, f"<@{user_id}> has left the channel", subtype="channel_leave"
            )
            return True

    def set_topic(self, channel: Channel, user_id: str, value: str, kind: str = "topic") -> None:
        """Set topic or purpose and post the matching ``channel_*`` message."""
        with self.lock:
            setattr(channel, kind, _topic(value, user_id, int(self.now())))
            verb = "set the channel topic" if kind == "topic" else "set the channel description"
            self.post(
                channel, user_id, f"{verb}: {value}", subtype=f"channel_{kind}", extra={kind: value}
            )

    # ---- messages

    def next_ts(self, channel: Channel) -> str:
        """A ts now-ish and strictly after every message in the channel."""
        now_us = int(self.now() * 1_000_000)
        return us_to_ts(max(now_us, channel.last_us + 1))

    def post(
        self,
        channel: Channel,
        user: str | None,
        text: str,
        *,
        subtype: str | None = None,
        thread_ts: str | None = None,
        blocks: list[Any] | None = None,
        bot_id: str | None = None,
        files: list[JSON] | None = None,
        ts: str | None = None,
        extra: JSON | None = None,
    ) -> Message:
        """Store a message (or a thread reply) and update thread bookkeeping."""
        with self.lock:
            parent = self._thread_parent(channel, thread_ts) if thread_ts else None
            stamp = ts if ts is not None else self.next_ts(channel)
            us = ts_to_us(stamp)
            if us in channel.messages:
                raise ValueError(f"duplicate ts {stamp} in {channel.id}")
            message = Message(
                ts=us_to_ts(us),
                user=user,
                text=text,
                subtype=subtype,
                thread_ts=parent.ts if parent else None,
                blocks=blocks,
                bot_id=bot_id,
                files=files,
                extra=dict(extra or {}),
            )
            if parent is not None and parent.user:
                message.extra.setdefault("parent_user_id", parent.user)
            channel.messages[us] = message
            if parent is not None:
                self._add_reply(parent, message)
            if message.in_history:
                bisect.insort(channel.history_us, us)
            return message

    def _thread_parent(self, channel: Channel, thread_ts: str) -> Message:
        """The top-level message a reply belongs to (a reply's parent if nested)."""
        try:
            found = channel.messages.get(ts_to_us(thread_ts))
        except ValueError:
            found = None
        if found is None:
            raise SlackError("thread_not_found")
        if found.is_reply and found.thread_ts:
            return channel.messages[ts_to_us(found.thread_ts)]
        return found

    @staticmethod
    def _add_reply(parent: Message, reply: Message) -> None:
        """Record a reply on its parent, as Slack's thread fields expect."""
        bisect.insort(parent.reply_us, reply.us)
        if reply.user and reply.user not in parent.reply_users:
            parent.reply_users.append(reply.user)

    def message(self, channel: Channel, ts: str) -> Message:
        """Look a message up by ts or raise ``message_not_found``."""
        with self.lock:
            try:
                found = channel.messages.get(ts_to_us(ts))
            except ValueError:
                found = None
            if found is None:
                raise SlackError("message_not_found")
            return found

    def delete_message(self, channel: Channel, message: Message) -> None:
        """Remove a message (and from its parent's or the history index)."""
        with self.lock:
            us = message.us
            channel.messages.pop(us, None)
            if us in channel.history_us:
                channel.history_us.remove(us)
            if message.is_reply and message.thread_ts:
                parent = channel.messages.get(ts_to_us(message.thread_ts))
                if parent and us in parent.reply_us:
                    parent.reply_us.remove(us)

    def replies(self, channel: Channel, parent: Message) -> list[Message]:
        """Replies of a thread, oldest first."""
        with self.lock:
            return [channel.messages[us] for us in parent.reply_us if us in channel.messages]
