"""``auth``, ``apps.connections``, ``users``, ``bookmarks``, ``views``, ``pins``, ``team``."""

from __future__ import annotations

import secrets
from typing import Any

from bolt_app.devkit.fake_slack.api import ApiContext, Params, method, page_by_key
from bolt_app.devkit.fake_slack.block_kit import MAX_VIEW_BLOCKS, check_blocks
from bolt_app.devkit.fake_slack.state import (
    APP_ID,
    JSON,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    WORKSPACE_URL,
    Bookmark,
    Channel,
    SlackError,
)

MAX_BOOKMARKS = 100


# --------------------------------------------------------------------------- auth / apps


@method("auth.test")
def auth_test(ctx: ApiContext, p: Params) -> JSON:
    """Who the bot token belongs to; Bolt calls this when an App is built."""
    return {
        "url": WORKSPACE_URL,
        "team": TEAM_NAME,
        "user": ctx.bot.name,
        "team_id": TEAM_ID,
        "user_id": ctx.bot.id,
        "bot_id": ctx.bot.bot_id,
        "is_enterprise_install": False,
    }


@method("apps.connections.open", accepted=("connections:write",), token="app")
def apps_connections_open(ctx: ApiContext, p: Params) -> JSON:
    """A fresh Socket Mode URL on the fake's websocket server."""
    return {"url": ctx.open_socket_url()}


@method("team.info", accepted=("team:read",))
def team_info(ctx: ApiContext, p: Params) -> JSON:
    """The workspace."""
    return {
        "team": {
            "id": TEAM_ID,
            "name": TEAM_NAME,
            "domain": TEAM_DOMAIN,
            "email_domain": "",
            "url": WORKSPACE_URL,
            "icon": {"image_default": True},
        }
    }


# --------------------------------------------------------------------------- users


@method("users.info", accepted=("users:read",))
def users_info(ctx: ApiContext, p: Params) -> JSON:
    """One user, ``user_not_found``, or ``user_not_visible`` for a hidden one."""
    user_id = p.required("user", error="user_not_found")
    if user_id in ctx.ws.hidden_users:
        raise SlackError("user_not_visible")
    return {"user": ctx.ws.user(user_id).to_api()}


@method("users.list", accepted=("users:read",))
def users_list(ctx: ApiContext, p: Params) -> JSON:
    """All users, cursor-paged."""
    with ctx.ws.lock:
        users = sorted(ctx.ws.users.values(), key=lambda u: u.id)
        page, next_cursor = page_by_key(users, lambda u: u.id, "user", p, 200, 1000)
        return {
            "members": [u.to_api() for u in page],
            "cache_ts": int(ctx.ws.now()),
            "response_metadata": {"next_cursor": next_cursor},
        }


# --------------------------------------------------------------------------- bookmarks


def _bookmark_channel(ctx: ApiContext, p: Params) -> Channel:
    """The channel named by ``channel_id``."""
    return ctx.visible_channel(p.get("channel_id"))


def _find_bookmark(channel: Channel, bookmark_id: str | None) -> Bookmark:
    """A bookmark of the channel or Slack's ``not_found``."""
    found = next((b for b in channel.bookmarks if b.id == bookmark_id), None)
    if found is None:
        raise SlackError("not_found")
    return found


@method("bookmarks.add", accepted=("bookmarks:write",))
def bookmarks_add(ctx: ApiContext, p: Params) -> JSON:
    """Add a ``link`` bookmark (the only type Slack's API accepts)."""
    with ctx.ws.lock:
        channel = ctx.not_archived(_bookmark_channel(ctx, p))
        if p.get("type") != "link":
            raise SlackError("invalid_bookmark_type")
        title = p.required("title")
        link = p.required("link")
        if len(channel.bookmarks) >= MAX_BOOKMARKS:
            raise SlackError("too_many_bookmarks")
        now = int(ctx.ws.now())
        bookmark = Bookmark(
            id=ctx.ws.new_id("Bk"),
            channel_id=channel.id,
            title=title,
            link=link,
            emoji=p.get("emoji"),
            date_created=now,
            created_by=ctx.bot.id,
        )
        channel.bookmarks.append(bookmark)
        return {"bookmark": bookmark.to_api()}


@method("bookmarks.list", accepted=("bookmarks:read",))
def bookmarks_list(ctx: ApiContext, p: Params) -> JSON:
    """Every bookmark of a channel."""
    with ctx.ws.lock:
        channel = _bookmark_channel(ctx, p)
        return {"bookmarks": [b.to_api() for b in channel.bookmarks]}


@method("bookmarks.edit", accepted=("bookmarks:write",))
def bookmarks_edit(ctx: ApiContext, p: Params) -> JSON:
    """Change title, link or emoji of a bookmark."""
    with ctx.ws.lock:
        channel = _bookmark_channel(ctx, p)
        bookmark = _find_bookmark(channel, p.get("bookmark_id"))
        for key in ("title", "link", "emoji"):
            value = p.get(key)
            if value is not None:
                setattr(bookmark, key, value)
        bookmark.date_updated = int(ctx.ws.now())
        return {"bookmark": bookmark.to_api()}


@method("bookmarks.remove", accepted=("bookmarks:write",))
def bookmarks_remove(ctx: ApiContext, p: Params) -> JSON:
    """Remove a bookmark."""
    with ctx.ws.lock:
        channel = _bookmark_channel(ctx, p)
        channel.bookmarks.remove(_find_bookmark(channel, p.get("bookmark_id")))
        return {}


# --------------------------------------------------------------------------- views


def _view_spec(p: Params) -> dict[str, Any]:
    """The ``view`` argument (a JSON string in forms, an object in JSON bodies)."""
    spec = p.decoded("view")
    if not isinstance(spec, dict) or spec.get("type") not in ("modal", "home"):
        raise SlackError("invalid_arguments")
    blocks = spec.get("blocks", [])
    if not isinstance(blocks, list):
        raise SlackError("invalid_arguments")
    check_blocks(blocks, MAX_VIEW_BLOCKS)
    return spec


def render_view(
    ctx: ApiContext, view_id: str, spec: dict[str, Any], root: str, previous: str | None
) -> JSON:
    """A stored view object as ``views.open`` returns it (state starts empty)."""
    return {
        "id": view_id,
        "team_id": TEAM_ID,
        "type": spec.get("type", "modal"),
        "title": spec.get("title"),
        "submit": spec.get("submit"),
        "close": spec.get("close"),
        "blocks": spec.get("blocks", []),
        "private_metadata": spec.get("private_metadata", ""),
        "callback_id": spec.get("callback_id", ""),
        "external_id": spec.get("external_id", ""),
        "state": {"values": {}},
        "hash": f"{int(ctx.ws.now())}.{secrets.token_hex(4)}",
        "clear_on_close": bool(spec.get("clear_on_close", False)),
        "notify_on_close": bool(spec.get("notify_on_close", False)),
        "root_view_id": root,
        "previous_view_id": previous,
        "app_id": APP_ID,
        "app_installed_team_id": TEAM_ID,
        "bot_id": ctx.bot.bot_id,
    }


def _open_view(ctx: ApiContext, p: Params, previous: str | None) -> JSON:
    """Exchange the trigger and store a new view (shared by open and push)."""
    spec = _view_spec(p)
    ctx.triggers.exchange(p.get("trigger_id"))
    with ctx.ws.lock:
        view_id = ctx.ws.new_id("V")
        root = ctx.ws.views[previous]["root_view_id"] if previous in ctx.ws.views else view_id
        view = render_view(ctx, view_id, spec, root, previous)
        ctx.ws.views[view_id] = view
        return {"view": view}


@method("views.open")
def views_open(ctx: ApiContext, p: Params) -> JSON:
    """Open a modal; needs a fresh, unused ``trigger_id`` from an envelope."""
    return _open_view(ctx, p, previous=None)


@method("views.push")
def views_push(ctx: ApiContext, p: Params) -> JSON:
    """Push a view on top of the most recent one."""
    previous = next(reversed(ctx.ws.views), None) if ctx.ws.views else None
    return _open_view(ctx, p, previous=previous)


@method("views.update")
def views_update(ctx: ApiContext, p: Params) -> JSON:
    """Replace a view by ``view_id`` or ``external_id``; a stale ``hash`` conflicts."""
    spec = _view_spec(p)
    with ctx.ws.lock:
        view_id = p.get("view_id")
        external_id = p.get("external_id")
        current = ctx.ws.views.get(view_id or "") or next(
            (v for v in ctx.ws.views.values() if external_id and v["external_id"] == external_id),
            None,
        )
        if current is None:
            raise SlackError("not_found")
        expected = p.get("hash")
        if expected and expected != current["hash"]:
            raise SlackError("hash_conflict")
        view = render_view(
            ctx, current["id"], spec, current["root_view_id"], current["previous_view_id"]
        )
        ctx.ws.views[current["id"]] = view
        return {"view": view}


# --------------------------------------------------------------------------- pins


@method("pins.add", accepted=("pins:write",))
def pins_add(ctx: ApiContext, p: Params) -> JSON:
    """Pin a message of a channel the bot is in."""
    with ctx.ws.lock:
        channel = ctx.member_channel(p.get("channel"))
        message = ctx.ws.message(channel, p.required("timestamp", error="no_item_specified"))
        if message.ts in channel.pins:
            raise SlackError("already_pinned")
        channel.pins[message.ts] = {"created": int(ctx.ws.now()), "created_by": ctx.bot.id}
        return {}


@method("pins.remove", accepted=("pins:write",))
def pins_remove(ctx: ApiContext, p: Params) -> JSON:
    """Unpin a message."""
    with ctx.ws.lock:
        channel = ctx.member_channel(p.get("channel"))
        if channel.pins.pop(p.get("timestamp") or "", None) is None:
            raise SlackError("no_pin")
        return {}


@method("pins.list", accepted=("pins:read",))
def pins_list(ctx: ApiContext, p: Params) -> JSON:
    """Pinned messages of a channel, newest pin first."""
    with ctx.ws.lock:
        channel = ctx.visible_channel(p.get("channel"))
        items = []
        for ts, pin in reversed(channel.pins.items()):
            message = ctx.ws.message(channel, ts)
            items.append(
                {"type": "message", "channel": channel.id, "message": message.to_api(), **pin}
            )
        return {"items": items}
