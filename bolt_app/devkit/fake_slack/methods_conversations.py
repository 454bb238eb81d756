"""``conversations.*`` methods of FakeSlack.

Rules mirrored from Slack's docs: channel names are lower-case letters, digits,
hyphens and underscores, at most 80 characters; a bot sees every public channel
but only the private ones it is in; reading history needs membership; replies
are not in ``conversations.history`` unless broadcast; pages are cursor-based
with ``response_metadata.next_cursor``.
"""

from __future__ import annotations

import bisect
import re

from bolt_app.devkit.fake_slack.api import (
    CHANNEL_SCOPES,
    ApiContext,
    Params,
    decode_cursor,
    effective_limit,
    encode_cursor,
    method,
    page_by_key,
)
from bolt_app.devkit.fake_slack.state import JSON, Channel, Message, SlackError, ts_to_us, us_to_ts

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_\-]+$")
MAX_NAME_LENGTH = 80
MAX_TOPIC_LENGTH = 250

READ = CHANNEL_SCOPES["read"]
HISTORY = CHANNEL_SCOPES["history"]
MANAGE = CHANNEL_SCOPES["manage"]


def validate_channel_name(ctx: ApiContext, name: str | None, exclude: Channel | None = None) -> str:
    """Apply Slack's naming rules in the order Slack reports them."""
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > MAX_NAME_LENGTH:
        raise SlackError("invalid_name_maxlength")
    if not CHANNEL_NAME_RE.match(name):
        raise SlackError("invalid_name_specials")
    if not name.strip("-_"):
        raise SlackError("invalid_name_punctuation")
    existing = ctx.ws.channel_named(name)
    if existing is not None and existing is not exclude:
        raise SlackError("name_taken")
    return name


def _channel_body(ctx: ApiContext, channel: Channel) -> JSON:
    """``{"channel": {...}}`` from the bot's point of view."""
    return {"channel": channel.to_api(ctx.bot.id)}


@method("conversations.create", accepted=MANAGE)
def conversations_create(ctx: ApiContext, p: Params) -> JSON:
    """Create a channel; the bot is its creator and first member."""
    is_private = p.flag("is_private")
    ctx.require_scope(MANAGE[1] if is_private else MANAGE[0])
    with ctx.ws.lock:
        name = validate_channel_name(ctx, p.get("name"))
        channel = ctx.ws.create_channel(name, ctx.bot.id, is_private=is_private)
        return _channel_body(ctx, channel)


def _check_invitee(ctx: ApiContext, channel: Channel, user_id: str) -> str | None:
    """The error inviting one user would give, or None if it would work."""
    if user_id == ctx.bot.id:
        return "cant_invite_self"
    if user_id not in ctx.ws.users or ctx.ws.users[user_id].deleted:
        return "user_not_found"
    if user_id in channel.members:
        return "already_in_channel"
    return None


@method("conversations.invite", accepted=MANAGE)
def conversations_invite(ctx: ApiContext, p: Params) -> JSON:
    """Invite users; one failure fails them all unless ``force`` is set."""
    with ctx.ws.lock:
        channel = ctx.not_archived(ctx.member_channel(p.get("channel")))
        ctx.require_channel_scope(channel, "manage")
        users = p.ids("users")
        if not users:
            raise SlackError("no_user")
        failures = [(u, err) for u in users if (err := _check_invitee(ctx, channel, u))]
        errors = [{"user": u, "ok": False, "error": err} for u, err in failures]
        if failures and not p.flag("force"):
            raise SlackError(failures[0][1], errors=errors)
        failed = {u for u, _ in failures}
        for user_id in users:
            if user_id not in failed:
                ctx.ws.join(channel, user_id)
        body = _channel_body(ctx, channel)
        if errors:
            body["errors"] = errors
        return body


@method("conversations.join", accepted=CHANNEL_SCOPES["join"])
def conversations_join(ctx: ApiContext, p: Params) -> JSON:
    """Join a public channel; joining again is ok with a warning."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        if channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        ctx.not_archived(channel)
        joined = ctx.ws.join(channel, ctx.bot.id)
        body = _channel_body(ctx, channel)
        if not joined:
            body["warning"] = "already_in_channel"
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        return body


@method("conversations.leave", accepted=MANAGE)
def conversations_leave(ctx: ApiContext, p: Params) -> JSON:
    """Leave a channel; leaving one the bot isn't in is ok with a flag."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        if not ctx.ws.leave(channel, ctx.bot.id):
            return {"not_in_channel": True}
        return {}


def _set_text_field(ctx: ApiContext, p: Params, kind: str) -> JSON:
    """Shared body of ``setTopic`` / ``setPurpose``."""
    with ctx.ws.lock:
        channel = ctx.not_archived(ctx.member_channel(p.get("channel")))
        ctx.require_channel_scope(channel, "manage")
        value = p.get(kind, "") or ""
        if len(value) > MAX_TOPIC_LENGTH:
            raise SlackError("too_long")
        ctx.ws.set_topic(channel, ctx.bot.id, value, kind=kind)
        return _channel_body(ctx, channel)


@method("conversations.setTopic", accepted=MANAGE)
def conversations_set_topic(ctx: ApiContext, p: Params) -> JSON:
    """Set the topic and post a ``channel_topic`` message."""
    return _set_text_field(ctx, p, "topic")


@method("conversations.setPurpose", accepted=MANAGE)
def conversations_set_purpose(ctx: ApiContext, p: Params) -> JSON:
    """Set the purpose and post a ``channel_purpose`` message."""
    return _set_text_field(ctx, p, "purpose")


@method("conversations.rename", accepted=MANAGE)
def conversations_rename(ctx: ApiContext, p: Params) -> JSON:
    """Rename with the same validation as create; posts ``channel_name``."""
    with ctx.ws.lock:
        channel = ctx.not_archived(ctx.member_channel(p.get("channel")))
        ctx.require_channel_scope(channel, "manage")
        name = validate_channel_name(ctx, p.get("name"), exclude=channel)
        old = channel.name
        if name != old:
            channel.previous_names.insert(0, old)
            channel.name = name
            text = f'renamed the channel from "{old}" to "{name}"'
            extra = {"old_name": old, "name": name}
            ctx.ws.post(channel, ctx.bot.id, text, subtype="channel_name", extra=extra)
        return _channel_body(ctx, channel)


@method("conversations.archive", accepted=MANAGE)
def conversations_archive(ctx: ApiContext, p: Params) -> JSON:
    """Archive a channel the bot is in."""
    with ctx.ws.lock:
        channel = ctx.member_channel(p.get("channel"))
        if channel.is_archived:
            raise SlackError("already_archived")
        ctx.ws.post(channel, ctx.bot.id, "archived the channel", subtype="channel_archive")
        channel.is_archived = True
        return {}


@method("conversations.unarchive", accepted=MANAGE)
def conversations_unarchive(ctx: ApiContext, p: Params) -> JSON:
    """Unarchive a channel."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        if not channel.is_archived:
            raise SlackError("not_archived")
        channel.is_archived = False
        ctx.ws.post(channel, ctx.bot.id, "un-archived the channel", subtype="channel_unarchive")
        return {}


@method("conversations.info", accepted=READ)
def conversations_info(ctx: ApiContext, p: Params) -> JSON:
    """Channel details, optionally with ``num_members``."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        ctx.require_channel_scope(channel, "read")
        body = _channel_body(ctx, channel)
        if p.flag("include_num_members"):
            body["channel"]["num_members"] = len(channel.members)
        return body


def _listable(ctx: ApiContext, p: Params) -> list[Channel]:
    """Channels matching ``types`` (default public) that the bot may see."""
    types = set(p.ids("types") or ["public_channel"])
    if "public_channel" in types:
        ctx.require_scope(READ[0])
    if "private_channel" in types:
        ctx.require_scope(READ[1])
    out = []
    for channel in ctx.ws.channels.values():
        wanted = ("private_channel" if channel.is_private else "public_channel") in types
        if not wanted or (p.flag("exclude_archived") and channel.is_archived):
            continue
        if channel.is_private and ctx.bot.id not in channel.members:
            continue
        out.append(channel)
    return out


@method("conversations.list", accepted=READ)
def conversations_list(ctx: ApiContext, p: Params) -> JSON:
    """List channels with cursor pagination (default 100, max 1000 per page)."""
    with ctx.ws.lock:
        channels = _listable(ctx, p)
        page, next_cursor = page_by_key(channels, lambda c: c.id, "channel", p, 100, 1000)
        return {
            "channels": [c.to_api(ctx.bot.id) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }


@method("conversations.members", accepted=READ)
def conversations_members(ctx: ApiContext, p: Params) -> JSON:
    """Member ids with cursor pagination."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        ctx.require_channel_scope(channel, "read")
        members = sorted(channel.members)
        page, next_cursor = page_by_key(members, lambda u: u, "user", p, 100, 1000)
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}


# --------------------------------------------------------------------------- history


def _bound(p: Params, key: str) -> int | None:
    """``oldest``/``latest`` in microseconds; malformed ones are Slack errors."""
    value = p.get(key)
    if not value:
        return None
    try:
        return ts_to_us(value)
    except ValueError as exc:
        raise SlackError(f"invalid_ts_{key}") from exc


def _window(sorted_us: list[int], p: Params) -> tuple[int, int]:
    """Index range [start, end) of ``sorted_us`` inside oldest/latest."""
    inclusive = p.flag("inclusive")
    oldest, latest = _bound(p, "oldest"), _bound(p, "latest")
    start = 0
    if oldest is not None:
        start = (bisect.bisect_left if inclusive else bisect.bisect_right)(sorted_us, oldest)
    end = len(sorted_us)
    if latest is not None:
        end = (bisect.bisect_right if inclusive else bisect.bisect_left)(sorted_us, latest)
    return start, max(start, end)


def _reading_channel(ctx: ApiContext, p: Params) -> Channel:
    """A channel whose messages the bot may read (member + history scope)."""
    channel = ctx.member_channel(p.get("channel"))
    ctx.require_channel_scope(channel, "history")
    return channel


@method("conversations.history", accepted=HISTORY)
def conversations_history(ctx: ApiContext, p: Params) -> JSON:
    """Top-level messages, newest first, paged by ``next_ts`` cursors."""
    with ctx.ws.lock:
        channel = _reading_channel(ctx, p)
        index = channel.history_us
        start, end = _window(index, p)
        cursor = p.get("cursor")
        if cursor:
            end = min(end, bisect.bisect_right(index, ts_to_us(decode_cursor(cursor, "next_ts"))))
        limit = effective_limit(p, 100, min(ctx.history_limit_cap, ctx.page_cap or 1000))
        first = max(start, end - limit)
        metadata = p.flag("include_all_metadata")
        page = [channel.messages[us].to_api(metadata=metadata) for us in reversed(index[first:end])]
        has_more = first > start
        body: JSON = {
            "messages": page,
            "has_more": has_more,
            "pin_count": len(channel.pins),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if has_more:
            body["response_metadata"] = {
                "next_cursor": encode_cursor("next_ts", us_to_ts(index[first - 1]))
            }
        return body


def _thread_of(ctx: ApiContext, channel: Channel, ts: str | None) -> Message:
    """The parent of the thread ``ts`` belongs to, or ``thread_not_found``."""
    if not ts:
        raise SlackError("thread_not_found")
    try:
        message = ctx.ws.message(channel, ts)
    except SlackError as exc:
        raise SlackError("thread_not_found") from exc
    if message.is_reply and message.thread_ts:
        return ctx.ws.message(channel, message.thread_ts)
    return message


@method("conversations.replies", accepted=HISTORY)
def conversations_replies(ctx: ApiContext, p: Params) -> JSON:
    """A thread: the parent first, then replies oldest first, cursor-paged.

    The parent leads every page by default (``replies_parent_every_page``), so
    a consumer that doesn't de-duplicate by ts is caught in tests.
    """
    with ctx.ws.lock:
        channel = _reading_channel(ctx, p)
        parent = _thread_of(ctx, channel, p.get("ts"))
        replies = parent.reply_us
        start, end = _window(replies, p)
        cursor = p.get("cursor")
        if cursor:
            start = max(
                start, bisect.bisect_left(replies, ts_to_us(decode_cursor(cursor, "next_ts")))
            )
        per_page = max(effective_limit(p, 1000, ctx.page_cap or 1000) - 1, 1)
        stop = min(end, start + per_page)
        metadata = p.flag("include_all_metadata")
        lead = (
            [parent.to_api(metadata=metadata)]
            if (not cursor or ctx.replies_parent_every_page)
            else []
        )
        page = lead + [channel.messages[us].to_api(metadata=metadata) for us in replies[start:stop]]
        has_more = stop < end
        body: JSON = {"messages": page, "has_more": has_more}
        if has_more:
            body["response_metadata"] = {
                "next_cursor": encode_cursor("next_ts", us_to_ts(replies[stop]))
            }
        return body
