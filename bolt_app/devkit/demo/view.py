"""What a user would see during the demo, read back from the fakes' state.

The demo prints these views rather than the bot's logs: the channel (name, topic,
members, bookmarks, the bot's messages) and the Notion page (title, properties, an
outline of its headings, the timeline and the transcript lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack

WIDTH = 96
PROPERTIES = ("Incident", "Severity", "Status", "Declared", "Channel")
#: Sections whose content the outline shows in full (the rest: headings only).
DETAILED = ("timeline", "slack transcript")


_MENTION = re.compile(r"<([@#])([A-Z0-9]+)(?:\|([^>]*))?>")


def clip(text: str, width: int = WIDTH) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def readable(slack: FakeSlack, text: str) -> str:
    """`<@U0ALICE>` → `@alice` and `<#C…>` → `#name`, as Slack's client shows them."""

    def name(match: re.Match[str]) -> str:
        sigil, ref, label = match.groups()
        if label:
            return f"{sigil}{label}"
        if sigil == "@":
            return _user_name(slack, ref)
        found = next((c for c in slack.channels() if c.get("id") == ref), None)
        return f"#{found['name']}" if found else f"#{ref}"

    return _MENTION.sub(name, text)


def channel_view(slack: FakeSlack, channel_id: str) -> list[str]:
    channel = slack.channel(channel_id)
    names = sorted(_user_name(slack, u) for u in slack.members(channel_id))
    lines = [
        f"#{channel['name']}",
        f"  topic:     {clip(readable(slack, slack.topic(channel_id)), WIDTH - 13)}",
        f"  members:   {', '.join(names)}",
    ]
    lines += [f"  bookmark:  {b['title']} → {b['link']}" for b in slack.bookmarks(channel_id)]
    return lines


def bot_messages(slack: FakeSlack, channel_id: str, seen: int = 0) -> list[str]:
    """The bot's messages in the channel, from the `seen`-th on."""
    mine = [m for m in slack.messages(channel_id) if m.get("bot_id")]
    return [
        f"firebreak: {clip(readable(slack, str(m.get('text', ''))), WIDTH - 11)}"
        for m in mine[seen:]
    ]


def bot_message_count(slack: FakeSlack, channel_id: str) -> int:
    return sum(1 for m in slack.messages(channel_id) if m.get("bot_id"))


def _user_name(slack: FakeSlack, user_id: str) -> str:
    user = next((u for u in slack.users() if u.get("id") == user_id), None)
    return f"@{user['name']}" if user else user_id


def page_view(notion: FakeNotion, page: dict[str, Any]) -> list[str]:
    title = FakeNotion.property_text(page, "Name") or "(untitled)"
    lines = [f"Notion: {title}", f"  {page.get('url', '')}"]
    for name in PROPERTIES:
        value = FakeNotion.property_text(page, name)
        if value:
            lines.append(f"  {name + ':':<10} {value}")
    lines.append("  outline:")
    lines += [f"    {line}" for line in outline(notion.children_tree(str(page["id"])))]
    return lines


def outline(tree: list[dict[str, Any]]) -> list[str]:
    """Headings, with the timeline's and the transcript's content beneath them."""
    lines: list[str] = []
    detailed = False
    for block in tree:
        kind = str(block.get("type"))
        text = FakeNotion.plain_text(block)
        if kind.startswith("heading_"):
            level = int(kind[-1])
            lines.append(f"{'#' * level} {text}")
            detailed = text.strip().casefold() in DETAILED
            lines += _nested(block.get("children") or [], 1) if detailed else []
        elif detailed and text.strip():
            # A transcript block packs one message per line.
            lines += [f"  {clip(part, WIDTH - 8)}" for part in text.split("\n") if part.strip()]
            lines += _nested(block.get("children") or [], 2)
    return lines


def _nested(children: list[dict[str, Any]], depth: int) -> list[str]:
    return list(_walk(children, depth))


def _walk(children: list[dict[str, Any]], depth: int) -> Iterator[str]:
    for child in children:
        for part in FakeNotion.plain_text(child).split("\n"):
            if part.strip():
                yield f"{'  ' * depth}{clip(part, WIDTH - 4 - 2 * depth)}"
        yield from _walk(child.get("children") or [], depth + 1)
