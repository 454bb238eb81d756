"""What people type, as Slack escapes it, turned into the form each place can show.

The app's manifest sets `should_escape: true`, so a slash command's text arrives with
markup: `@bob` as `<@U024BE7LH|bob>`, `#general` as `<#C024BE7LR|general>`, a link as
`<https://status.example.com>` or `<https://…|label>`, `@here` as `<!here>`. A title
keeps that markup as typed, and each place renders it its own way:

- `for_message`: Slack messages. A person or channel stays a real mention and a link a link;
  everything else is escaped, so `<!here>` or `<!channel>` in a title can never ping.
- `readable`: where Slack markup would show raw (a Notion title, a plain_text header):
  `@bob`, `#general`, the link's label or its URL.
- `sluggable`: for a channel name, like `readable` but a link gives its label or its host,
  never its scheme: `status.example.com`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: One piece of Slack markup: `<@U…|name>`, `<#C…|name>`, `<!here>`, `<https://…|label>`.
TOKEN = re.compile(r"<([@#!][^<>|]*|[a-z][a-z0-9+.-]*:[^<>|\s]*)(?:\|([^<>]*))?>")

_USER = re.compile(r"@[UW][A-Z0-9]+")
_CHANNEL = re.compile(r"#[CG][A-Z0-9]+")
_LINK = re.compile(r"(?:https?|mailto):\S+")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _readable_token(target: str, label: str | None) -> str:
    if target.startswith("@"):
        return f"@{label}" if label else target
    if target.startswith("#"):
        return f"#{label}" if label else target
    if target.startswith("!"):  # <!here>, <!subteam^S1|@team>, <!date^…|fallback>
        if label:
            return label
        return "@" + target[1:].split("^", 1)[0]
    return label or target.removeprefix("mailto:")


def readable(text: str) -> str:
    """Markup as a person would read it without Slack: `@bob`, `#general`, the link."""
    return TOKEN.sub(lambda m: _readable_token(m.group(1), m.group(2)), text)


def sluggable(text: str) -> str:
    """`readable`, but a link without a label gives only its host: names carry no scheme."""

    def one(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if _LINK.fullmatch(target) and not label:
            host = urlsplit(target).hostname if not target.startswith("mailto:") else None
            return host or target.removeprefix("mailto:")
        return _readable_token(target, label)

    return TOKEN.sub(one, text)


def for_message(text: str) -> str:
    """For a Slack message: mentions of people and channels and links kept, the rest
    escaped (a special mention such as `<!here>` is shown as text, never sent)."""
    out: list[str] = []
    at = 0
    for match in TOKEN.finditer(text):
        out.append(_escape(text[at : match.start()]))
        target = match.group(1)
        keep = _USER.fullmatch(target) or _CHANNEL.fullmatch(target) or _LINK.fullmatch(target)
        inner = match.group(0)[1:-1].replace("&", "&amp;")
        out.append(f"<{inner}>" if keep else _escape(match.group(0)))
        at = match.end()
    out.append(_escape(text[at:]))
    return "".join(out)
