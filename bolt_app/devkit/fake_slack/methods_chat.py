"""``chat.*`` methods of FakeSlack.

Messages posted with the bot token look like a modern app's: ``user`` is the
bot user, ``bot_id`` and ``app_id`` are set, there is no ``subtype`` (except
``thread_broadcast`` for broadcast replies). Ephemeral messages are not part of
the channel's history; they are recorded separately.
"""

from __future__ import annotations

from typing import Any

from bolt_app.devkit.fake_slack.api import ApiContext, Params, method
from bolt_app.devkit.fake_slack.block_kit import MAX_MESSAGE_BLOCKS, check_blocks
from bolt_app.devkit.fake_slack.state import (
    APP_ID,
    JSON,
    TEAM_ID,
    Channel,
    Message,
    SlackError,
    permalink,
)

MAX_TEXT_LENGTH = 40_000
CHAT_WRITE = ("chat:write",)


def bot_profile(ctx: ApiContext) -> JSON:
    """The ``bot_profile`` Slack attaches to an app's messages."""
    return {
        "id": ctx.bot.bot_id,
        "app_id": APP_ID,
        "name": ctx.bot.name,
        "deleted": False,
        "team_id": TEAM_ID,
    }


def _message_content(p: Params) -> tuple[str, list[Any] | None, list[Any] | None]:
    """Text, blocks and attachments, validated like Slack does."""
    text = p.get("text", "") or ""
    blocks = p.decoded("blocks", error="invalid_blocks")
    attachments = p.decoded("attachments", error="invalid_attachments")
    if blocks is not None and not isinstance(blocks, list):
        raise SlackError("invalid_blocks")
    if blocks:
        check_blocks(blocks, MAX_MESSAGE_BLOCKS)
    if attachments is not None and not isinstance(attachments, list):
        raise SlackError("invalid_attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > MAX_TEXT_LENGTH:
        raise SlackError("msg_too_long")
    return text, blocks or None, attachments or None


def _postable_channel(ctx: ApiContext, ref: str | None) -> Channel:
    """Resolve an id or a channel name the bot may post to.

    Public channels accept posts without membership only with ``chat:write.public``.
    """
    if ref and not ref.startswith("C"):
        named = ctx.ws.channel_named(ref)
        ref = named.id if named else ref
    channel = ctx.not_archived(ctx.visible_channel(ref))
    if ctx.bot.id not in channel.members and "chat:write.public" not in ctx.scopes:
        raise SlackError("not_in_channel")
    return channel


@method("chat.postMessage", accepted=CHAT_WRITE)
def chat_post_message(ctx: ApiContext, p: Params) -> JSON:
    """Post as the bot; ``thread_ts`` makes a reply, ``reply_broadcast`` shares it."""
    with ctx.ws.lock:
        channel = _postable_channel(ctx, p.get("channel"))
        text, blocks, attachments = _message_content(p)
        thread_ts = p.get("thread_ts")
        broadcast = bool(thread_ts) and p.flag("reply_broadcast")
        extra: JSON = {"app_id": APP_ID, "bot_profile": bot_profile(ctx)}
        if attachments:
            extra["attachments"] = attachments
        metadata = _metadata(p)
        message = ctx.ws.post(
            channel,
            ctx.bot.id,
            text,
            subtype="thread_broadcast" if broadcast else None,
            thread_ts=thread_ts,
            blocks=blocks,
            bot_id=ctx.bot.bot_id,
            extra=extra,
        )
        message.metadata = metadata
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": message.to_api(metadata=True),
        }


def _metadata(p: Params) -> JSON | None:
    """`metadata`: an object with a string `event_type` and an object `event_payload`.

    Slack answers `invalid_metadata_format` for what is not a JSON object and
    `invalid_metadata_schema` for an object without that shape.
    """
    metadata = p.decoded("metadata", error="invalid_metadata_format")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise SlackError("invalid_metadata_format")
    if (
        not isinstance(metadata.get("event_type"), str)
        or not metadata["event_type"]
        or not isinstance(metadata.get("event_payload", {}), dict)
    ):
        raise SlackError("invalid_metadata_schema")
    return {
        "event_type": metadata["event_type"],
        "event_payload": metadata.get("event_payload", {}),
    }


@method("chat.postEphemeral", accepted=CHAT_WRITE)
def chat_post_ephemeral(ctx: ApiContext, p: Params) -> JSON:
    """Record an ephemeral message for one user; it never enters history."""
    with ctx.ws.lock:
        channel = ctx.not_archived(ctx.visible_channel(p.get("channel")))
        user = ctx.ws.user(p.required("user", error="user_not_found"))
        if user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks, attachments = _message_content(p)
        message_ts = ctx.ws.next_ts(channel)
        ctx.ws.ephemerals.append(
            {
                "channel": channel.id,
                "user": user.id,
                "text": text,
                "blocks": blocks,
                "attachments": attachments,
                "thread_ts": p.get("thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}


def _own_message(ctx: ApiContext, p: Params, error: str) -> tuple[Channel, Message]:
    """A message the bot posted, else ``error`` (Slack's cant_update/cant_delete)."""
    channel = ctx.visible_channel(p.get("channel"))
    message = ctx.ws.message(channel, p.required("ts", error="message_not_found"))
    if message.user != ctx.bot.id:
        raise SlackError(error)
    return channel, message


@method("chat.update", accepted=CHAT_WRITE)
def chat_update(ctx: ApiContext, p: Params) -> JSON:
    """Edit a bot message; the edit count is kept for tests (``edit_count``)."""
    with ctx.ws.lock:
        channel, message = _own_message(ctx, p, "cant_update_message")
        ctx.not_archived(channel)
        text, blocks, attachments = _message_content(p)
        message.text = text
        if blocks is not None:
            message.blocks = blocks
        if attachments is not None:
            message.extra["attachments"] = attachments
        metadata = _metadata(p)  # left as it was when not given
        if metadata is not None:
            message.metadata = metadata
        message.edit_count += 1
        message.edited = {"user": ctx.bot.id, "ts": ctx.ws.next_ts(channel)}
        return {"channel": channel.id, "ts": message.ts, "text": text, "message": message.to_api()}


@method("chat.delete", accepted=CHAT_WRITE)
def chat_delete(ctx: ApiContext, p: Params) -> JSON:
    """Delete a bot message."""
    with ctx.ws.lock:
        channel, message = _own_message(ctx, p, "cant_delete_message")
        ctx.ws.delete_message(channel, message)
        return {"channel": channel.id, "ts": message.ts}


@method("chat.getPermalink")
def chat_get_permalink(ctx: ApiContext, p: Params) -> JSON:
    """``https://fake.slack.test/archives/C…/p<ts>`` (+ thread params for replies)."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        message = ctx.ws.message(channel, p.required("message_ts", error="message_not_found"))
        return {
            "channel": channel.id,
            "permalink": permalink(channel.id, message.ts, message.thread_ts),
        }
