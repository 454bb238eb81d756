"""Slack messages -> Notion blocks for the transcript ("The transcript" in docs/ARCHITECTURE.md).

Slack's mrkdwn has no maintained Python parser that emits structure (the libraries on
PyPI convert to HTML or Markdown text), so this module tokenises the handful of
constructs Slack sends: `<…>` references, `*bold*`, `_italic_`, `~strike~`, `` `code` ``,
``` fences and `>` quotes. Entities (`&amp; &lt; &gt;`) are unescaped after tokenising,
because a real `<` in Slack text only ever delimits a reference.

Each message is one block, `HH:MM UTC · Name: text`, whose time links to the message's
permalink: that link carries the ts, which is how a resumed dump recognises blocks
that an unanswered append wrote (see "Crash safety of the transcript" in
docs/ARCHITECTURE.md). Code blocks, quotes and overflow become children of the
message's block, ahead of its thread replies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block, RichText

UserName = Callable[[str], str]
"""Resolves a user id to the name people see (cached `users.info`)."""

_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))

_INLINE = re.compile(
    r"<(?P<ref>[^<>\n]+)>"
    r"|`(?P<code>[^`\n]+)`"
    r"|(?<![\w*])\*(?=\S)(?P<bold>[^*\n]+?)(?<=\S)\*(?![\w*])"
    r"|(?<![\w_])_(?=\S)(?P<italic>[^_\n]+?)(?<=\S)_(?![\w_])"
    r"|(?<![\w~])~(?=\S)(?P<strike>[^~\n]+?)(?<=\S)~(?![\w~])"
)
_STYLE_OF = {"bold": "bold", "italic": "italic", "strike": "strikethrough"}
_QUOTE = re.compile(r"^(?:&gt;|>) ?")
_PERMALINK_TS = re.compile(r"/p(\d{7,})(?:\?|$)")
_DATE_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}) ")
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def unescape(value: str) -> str:
    """Slack's three HTML entities back to characters (`&amp;` last, so `&amp;lt;` stays)."""
    for entity, char in _ENTITIES:
        value = value.replace(entity, char)
    return value


# --- inline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    bold: bool = False
    italic: bool = False
    strikethrough: bool = False

    def with_flag(self, flag: str) -> _Style:
        return _Style(**{**self.__dict__, flag: True})

    def text(self, content: str, *, code: bool = False, link: str | None = None) -> RichText:
        return nb.text(
            content,
            bold=self.bold,
            italic=self.italic,
            strikethrough=self.strikethrough,
            code=code,
            link=link,
        )


def inline(text: str, user_name: UserName) -> list[RichText]:
    """Rich text for one run of mrkdwn (no fences or quotes), adjacent items merged."""
    return nb.merge_adjacent(_inline(text, user_name, _Style()))


def _inline(text: str, user_name: UserName, style: _Style) -> list[RichText]:
    items: list[RichText] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            items.append(style.text(unescape(text[position : match.start()])))
        items.extend(_token(match, user_name, style))
        position = match.end()
    if position < len(text):
        items.append(style.text(unescape(text[position:])))
    return [item for item in items if item["text"]["content"]]


def _token(match: re.Match[str], user_name: UserName, style: _Style) -> list[RichText]:
    if match.group("ref") is not None:
        return [_reference(match.group("ref"), user_name, style)]
    if match.group("code") is not None:
        return [style.text(unescape(match.group("code")), code=True)]
    for group, flag in _STYLE_OF.items():
        inner = match.group(group)
        if inner is not None:
            return _inline(inner, user_name, style.with_flag(flag))
    return []  # pragma: no cover - the pattern has no other groups


def _reference(ref: str, user_name: UserName, style: _Style) -> RichText:
    """`<@U…>`, `<#C…|name>`, `<!here>`, `<!subteam^S…|@team>`, `<url|text>`."""
    target, _, label = ref.partition("|")
    if target.startswith("@"):
        return style.text("@" + user_name(target[1:]))
    if target.startswith("#"):
        return style.text("#" + unescape(label or target[1:]))
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        return style.text(unescape(label) or _SPECIAL.get(name, "@" + name))
    url = unescape(target)
    return style.text(unescape(label) or url, link=url if _linkable(url) else None)


def _linkable(url: str) -> bool:
    """Notion links only to http(s) URLs and refuses the whole append for any other, so a
    `mailto:` (Slack's form of an e-mail address) or `slack://` link stays plain text."""
    return url.lower().startswith(("http://", "https://"))


# --- blocks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A piece of a message body: a paragraph, a quote or a code block."""

    kind: str  # "paragraph" | "quote" | "code"
    text: str


def segments(text: str) -> list[Segment]:
    """Split a message body into paragraphs, quotes and ``` code blocks, in order.

    An unclosed fence makes the rest code, as Slack shows it.
    """
    out: list[Segment] = []
    for index, part in enumerate(text.split("```")):
        if index % 2 == 1:
            code = part.strip("\n")
            if code:
                out.append(Segment("code", code))
            continue
        out.extend(_line_segments(part))
    return out


def _line_segments(part: str) -> list[Segment]:
    """Group lines into paragraphs and quotes (a quote line starts with `>`)."""
    out: list[Segment] = []
    for line in part.split("\n"):
        quoted = _QUOTE.match(line)
        kind, content = ("quote", line[quoted.end() :]) if quoted else ("paragraph", line)
        if out and out[-1].kind == kind:
            out[-1] = Segment(kind, out[-1].text + "\n" + content)
        else:
            out.append(Segment(kind, content))
    return [s for s in (Segment(s.kind, s.text.strip("\n")) for s in out) if s.text.strip()]


def _segment_block(segment: Segment, user_name: UserName) -> list[Block]:
    if segment.kind == "code":
        return nb.code_blocks(unescape(segment.text))
    rich = inline(segment.text, user_name)
    if segment.kind == "quote":
        return nb.blocks_with_overflow(nb.quote, rich)
    return nb.paragraphs_from_rich(rich)


def ts_datetime(ts: str) -> datetime:
    """A Slack ts as naive UTC."""
    return datetime.fromtimestamp(float(ts), UTC).replace(tzinfo=None)


def file_links(files: Sequence[dict[str, Any]]) -> list[RichText]:
    """Each file as its name, linked to its permalink, comma-separated."""
    items: list[RichText] = []
    for file in files:
        name = str(file.get("name") or file.get("title") or "file")
        url = str(file.get("permalink") or file.get("url_private") or "")
        if items:
            items.append(nb.text(", "))
        items.append(nb.text(name, link=url if _linkable(url) else None))
    return items


def message_text(message: dict[str, Any]) -> str:
    """What a message says, as mrkdwn: its text, then what an app or a forward attached.

    Alerting tools and workflows often send an empty `text` and put everything in
    `attachments` (pretext, title, text, fields, fallback) or in `blocks`; a forwarded
    message is an attachment too. Each goes on its own line after the text.
    """
    lines = [str(message.get("text") or "").strip()]
    for attachment in message.get("attachments") or []:
        lines += _attachment_lines(attachment)
    if not any(lines):
        lines += _blocks_text(message.get("blocks") or [])
    return "\n".join(line for line in lines if line)


def _attachment_lines(attachment: dict[str, Any]) -> list[str]:
    lines = [str(attachment.get(key) or "").strip() for key in ("pretext", "title", "text")]
    author = str(attachment.get("author_name") or attachment.get("author_subname") or "")
    if attachment.get("is_share") and author and lines[2]:
        lines[2] = f"(forwarded from {author}) {lines[2]}"
    for item in attachment.get("fields") or []:
        title, value = str(item.get("title") or ""), str(item.get("value") or "")
        lines.append(f"{title}: {value}" if title and value else title or value)
    if not any(lines):
        lines.append(str(attachment.get("fallback") or "").strip())
    if not any(lines):
        lines += _blocks_text(attachment.get("message_blocks") or [])
    return lines


def _blocks_text(blocks: Sequence[Any]) -> list[str]:
    """The plain text of Block Kit blocks: sections, rich text, context, headers."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str) and node.get("type") in _TEXT_NODES:
                found.append(node["text"])
            for key in ("text", "elements", "fields", "message", "blocks"):
                walk(node.get(key))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(list(blocks))
    return ["".join(found).strip()] if found else []


#: Block Kit nodes whose `text` is what a person reads.
_TEXT_NODES = frozenset({"plain_text", "mrkdwn", "text", "link", "emoji"})


def thread_placeholder(message: dict[str, Any]) -> str | None:
    """What a thread parent without its own words shows: a huddle, or a deleted parent."""
    subtype = message.get("subtype")
    if subtype == "huddle_thread":
        return "Huddle"
    if subtype == "tombstone":
        return "(message deleted)"
    return None


def message_block(
    message: dict[str, Any],
    *,
    author: str,
    permalink: str,
    user_name: UserName,
    replies: Sequence[Block] = (),
) -> Block:
    """One message as its own block, the layout before lines were packed.

    `HH:MM UTC · Name: text`, then body blocks (code, quotes, overflow) and the replies
    as its children. Transcripts written this way are continued, not rewritten; new
    messages are written with `message_line`.
    """
    parts = segments(thread_placeholder(message) or message_text(message))
    first = inline(parts.pop(0).text, user_name) if parts and parts[0].kind == "paragraph" else []
    header, *overflow = nb.paragraphs_from_rich(_lead(message, author, permalink, first))
    children = [*overflow, *(b for s in parts for b in _segment_block(s, user_name)), *replies]
    return nb.with_children(header, children)


def _lead(
    message: dict[str, Any], author: str, permalink: str, body: list[RichText]
) -> list[RichText]:
    """`HH:MM UTC · Name: ` (the time linked to the message), `body`, then its files."""
    placeholder = thread_placeholder(message) is not None
    items: list[RichText] = [
        nb.text(ts_datetime(str(message["ts"])).strftime("%H:%M UTC"), link=permalink),
        nb.text(" · " if placeholder else f" · {author}: "),
        *body,
    ]
    files = message.get("files") or []
    if files:
        items += ([nb.text(" · ")] if len(items) > 2 else []) + file_links(files)
    return items


def _flat(body: str, user_name: UserName) -> list[RichText]:
    """A body as rich text only: code as code-annotated text, quotes marked with `>`."""
    items: list[RichText] = []
    for index, segment in enumerate(segments(body)):
        if index:
            items.append(nb.text("\n"))
        if segment.kind == "code":
            items.append(nb.text(unescape(segment.text), code=True))
        elif segment.kind == "quote":
            quoted = "\n".join(f"> {line}" for line in segment.text.split("\n"))
            items += inline(quoted, user_name)
        else:
            items += inline(segment.text, user_name)
    return items


def message_line(
    message: dict[str, Any], *, author: str, permalink: str, user_name: UserName
) -> list[RichText]:
    """One transcript line as rich text: `HH:MM UTC · Name: text`, the time linked.

    Lines are packed many to a block, so a line is rich text only: its code is
    code-annotated text and its quotes are marked with `>`, never child blocks.
    """
    placeholder = thread_placeholder(message)
    body = [nb.text(placeholder)] if placeholder else _flat(message_text(message), user_name)
    items = nb.split_rich_text(_lead(message, author, permalink, body))
    if len(items) > nb.MAX_RICH_TEXT_ITEMS - 1:  # room for the line break before it
        items = [*items[: nb.MAX_RICH_TEXT_ITEMS - 2], nb.text("…")]
    return items


def pack_lines(lines: Sequence[list[RichText]]) -> list[list[RichText]]:
    """Lines joined by line breaks into as few paragraphs as Notion's 100 items allow."""
    packs: list[list[RichText]] = []
    for line in lines:
        if packs and len(packs[-1]) + 1 + len(line) <= nb.MAX_RICH_TEXT_ITEMS:
            packs[-1] += [nb.text("\n"), *line]
        else:
            packs.append(list(line))
    return packs


def line_starts(rich: Sequence[RichText]) -> list[tuple[int, str]]:
    """(index, ts) of each line's first item in a packed block: its linked time."""
    starts: list[tuple[int, str]] = []
    for index, item in enumerate(rich):
        url = nb.link_url(item) or (item.get("href") if isinstance(item, dict) else None)
        ts = ts_from_permalink(str(url)) if url else None
        if ts is not None and (index == 0 or _is_break(rich[index - 1])):
            starts.append((index, ts))
    return starts


def _is_break(item: RichText) -> bool:
    """Whether a line ends with this item (Notion may merge a break into the text before)."""
    if not isinstance(item, dict):
        return False
    text = (item.get("text") or {}).get("content") or item.get("plain_text") or ""
    return str(text).endswith("\n")


def linked_ts_all(block: Block) -> list[str]:
    """Every message ts a (packed) transcript block holds, in order."""
    return [ts for _, ts in line_starts(nb.rich_text_of(block))]


def linked_ts(block: Block) -> str | None:
    """The message ts a transcript block was written for, from its permalink, or None."""
    rich = nb.rich_text_of(block)
    if not rich:
        return None
    url = nb.link_url(rich[0]) or (rich[0].get("href") if isinstance(rich[0], dict) else None)
    return ts_from_permalink(str(url)) if url else None


def ts_from_permalink(url: str) -> str | None:
    """`…/p1700000000123456` -> `1700000000.123456` (the ts is the last path segment)."""
    match = _PERMALINK_TS.search(url)
    if match is None:
        return None
    digits = match.group(1)
    return f"{digits[:-6]}.{digits[-6:]}"


# --- date lines -------------------------------------------------------------------------------


def day_key(day: date) -> str:
    """The TranscriptEntry key of a date line: `day:YYYY-MM-DD`."""
    return f"day:{day.isoformat()}"


def date_block(day: date) -> Block:
    """The line that starts a new UTC day in the transcript."""
    return nb.heading(3, [nb.text(f"{day.isoformat()} {day.strftime('%A')}")])


def date_line_day(block: Block) -> str | None:
    """The `day:` key of a date line written by :func:`date_block`, else None."""
    if block.get("type") != "heading_3":
        return None
    match = _DATE_LINE.match(nb.plain_text(block))
    return f"day:{match.group(1)}" if match else None
