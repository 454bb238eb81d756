"""Small typed builders for Notion rich text and blocks, and Notion's size limits.

Notion rejects a whole request with ``400 validation_error`` when a single rich-text item is
too long or a block has too many items, so every builder here runs its rich text through
:func:`split_rich_text`: code that builds blocks with these helpers cannot produce an item that
Notion refuses. The template renderer and the transcript renderer both build on this module.

Limits (https://developers.notion.com/reference/request-limits):

* ``text.content`` and ``text.link.url``: at most 2,000 characters each. Notion measures
  strings the way JavaScript does, in UTF-16 code units, so an emoji outside the BMP costs 2.
* At most 100 rich-text items in any one array (one block's ``rich_text``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

RichText = dict[str, Any]
"""One Notion rich-text item, request-shaped (``{"type": "text", "text": {...}, ...}``)."""

Block = dict[str, Any]
"""One Notion block, request-shaped (``{"object": "block", "type": t, t: {...}}``)."""

MAX_TEXT_UNITS = 2000
"""Longest ``text.content`` Notion accepts, in UTF-16 code units."""

MAX_URL_UNITS = 2000
"""Longest ``text.link.url`` Notion accepts, in UTF-16 code units."""

MAX_RICH_TEXT_ITEMS = 100
"""Most rich-text items Notion accepts in one block."""

WORD_BOUNDARY_WINDOW = 200
"""How far back (in characters) from a hard cut we look for whitespace to cut at instead."""

MAX_CLUSTER = 16
"""Longest run of joined code points (e.g. a ZWJ family emoji) that a cut keeps together."""

ANNOTATION_FLAGS = ("bold", "italic", "strikethrough", "code")

HEADING_TYPES = ("heading_1", "heading_2", "heading_3")

_ZWJ = "\u200d"

# Notion's code-block languages: the enum its validator lists for ``code.language``.
NOTION_CODE_LANGUAGES = frozenset(
    {
        "abap", "abc", "agda", "arduino", "ascii art", "assembly", "bash", "basic", "bnf",
        "c", "c#", "c++", "clojure", "coffeescript", "coq", "css", "dart", "dhall", "diff",
        "docker", "ebnf", "elixir", "elm", "erlang", "f#", "flow", "fortran", "gherkin",
        "glsl", "go", "graphql", "groovy", "haskell", "hcl", "html", "idris", "java",
        "javascript", "json", "julia", "kotlin", "latex", "less", "lisp", "livescript",
        "llvm ir", "lua", "makefile", "markdown", "markup", "matlab", "mathematica",
        "mermaid", "nix", "notion formula", "objective-c", "ocaml", "pascal", "perl", "php",
        "plain text", "powershell", "prolog", "protobuf", "purescript", "python", "r",
        "racket", "reason", "ruby", "rust", "sass", "scala", "scheme", "scss", "shell",
        "smalltalk", "solidity", "sql", "swift", "toml", "typescript", "vb.net", "verilog",
        "vhdl", "visual basic", "webassembly", "xml", "yaml", "java/c/c++/c#",
    }
)  # fmt: skip

# Common Markdown fence labels that are not Notion names.
_LANGUAGE_ALIASES = {
    "py": "python", "python3": "python", "js": "javascript", "jsx": "javascript",
    "mjs": "javascript", "node": "javascript", "ts": "typescript", "tsx": "typescript",
    "sh": "shell", "zsh": "shell", "console": "shell", "shell-session": "shell",
    "yml": "yaml", "md": "markdown", "dockerfile": "docker", "cs": "c#", "csharp": "c#",
    "cpp": "c++", "cc": "c++", "cxx": "c++", "hpp": "c++", "h": "c", "rb": "ruby",
    "rs": "rust", "kt": "kotlin", "kts": "kotlin", "golang": "go", "ps1": "powershell",
    "pwsh": "powershell", "tf": "hcl", "terraform": "hcl", "proto": "protobuf",
    "text": "plain text", "txt": "plain text", "plaintext": "plain text",
    "plain": "plain text", "jsonc": "json", "json5": "json", "objc": "objective-c",
    "fsharp": "f#", "make": "makefile", "tex": "latex", "vb": "visual basic",
    "wasm": "webassembly", "patch": "diff", "psql": "sql", "postgresql": "sql",
    "mysql": "sql", "gql": "graphql", "htm": "html", "svg": "xml",
}  # fmt: skip


# --- measuring -------------------------------------------------------------------------------


def utf16_len(value: str) -> int:
    """Length of ``value`` as Notion (a JavaScript backend) measures it: UTF-16 code units."""
    return len(value.encode("utf-16-le")) // 2


def _units(char: str) -> int:
    """UTF-16 code units of one code point: 2 for anything outside the BMP (emoji), else 1."""
    return 2 if ord(char) > 0xFFFF else 1


# --- rich text -------------------------------------------------------------------------------


def text(
    content: str,
    *,
    bold: bool = False,
    italic: bool = False,
    strikethrough: bool = False,
    code: bool = False,
    link: str | None = None,
) -> RichText:
    """One rich-text item. Not length-checked here: block builders split it when they use it."""
    body: dict[str, Any] = {"content": content}
    if link:
        body["link"] = {"url": link}
    annotations = {"bold": bold, "italic": italic, "strikethrough": strikethrough, "code": code}
    return {"type": "text", "text": body, "annotations": annotations}


def link_url(item: RichText) -> str | None:
    """The link of a text item, or None: hides the ``text.link.url`` nesting from callers."""
    if item.get("type") != "text":
        return None
    link = item["text"].get("link")
    return link.get("url") if isinstance(link, dict) else None


def item_plain_text(item: RichText) -> str:
    """The visible text of one rich-text item, request- or response-shaped."""
    if "plain_text" in item:
        return str(item["plain_text"])
    if item.get("type") == "text":
        return str(item["text"].get("content", ""))
    return ""


def split_text(value: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """Cut ``value`` into pieces of at most ``limit`` UTF-16 units that join back to ``value``.

    Each cut prefers the last whitespace within :data:`WORD_BOUNDARY_WINDOW` characters of the
    hard limit, so words stay whole in Notion's search and copy-paste; the whitespace stays at
    the end of the earlier piece. Cuts fall between code points (never inside an emoji's
    surrogate pair) and avoid separating a combining mark or a zero-width joiner from its base.
    """
    pieces: list[str] = []
    rest = value
    while utf16_len(rest) > limit:
        cut = _word_cut(rest, _hard_cut(rest, limit))
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    return pieces


def _hard_cut(value: str, limit: int) -> int:
    """Largest code-point index whose prefix fits in ``limit`` UTF-16 units, kept off joiners."""
    used = 0
    cut = 0
    for index, char in enumerate(value):
        used += _units(char)
        if used > limit:
            break
        cut = index + 1
    return _back_off_joiners(value, cut)


def _back_off_joiners(value: str, cut: int) -> int:
    """Move a cut left while it would split a combining mark, variation selector or ZWJ off.

    The back-off is bounded by :data:`MAX_CLUSTER` code points: past that the text is a
    pathological run of marks, and keeping pieces large matters more than a perfect glyph.
    """
    cut = max(cut, 1)  # always make progress, whatever the limit
    if cut >= len(value):
        return len(value)
    for candidate in range(cut, max(0, cut - MAX_CLUSTER), -1):
        if not (_binds_left(value[candidate]) or value[candidate - 1] == _ZWJ):
            return candidate
    return cut


def _binds_left(char: str) -> bool:
    """True for code points that render as part of the preceding character."""
    return (
        char == _ZWJ
        or unicodedata.combining(char) != 0
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin-tone modifiers
    )


def _word_cut(value: str, cut: int) -> int:
    """Prefer a cut just after the last whitespace in the window before ``cut``."""
    window_start = max(1, cut - WORD_BOUNDARY_WINDOW)
    for index in range(cut - 1, window_start - 1, -1):
        if value[index].isspace():
            return index + 1
    return cut


def split_rich_text(items: Iterable[RichText]) -> list[RichText]:
    """Make rich text acceptable to Notion item by item, keeping annotations and links.

    * ``text.content`` longer than 2,000 UTF-16 units becomes several items (see
      :func:`split_text`), each a copy of the original with its own piece of the text.
    * A link longer than 2,000 units is dropped (its text stays): Notion would reject the
      whole request for it.
    * Empty text items are dropped: they show nothing and count against the 100-item limit.

    Non-text items (mentions, equations) pass through unchanged. The item count is not
    limited here; see :func:`paragraphs_from_rich` and :func:`blocks_with_overflow`.
    """
    result: list[RichText] = []
    for item in items:
        if item.get("type") != "text":
            result.append(item)
            continue
        item = _without_long_link(item)
        for piece in split_text(item["text"].get("content", "")):
            if piece:
                result.append(_with_content(item, piece))
    return result


def _without_long_link(item: RichText) -> RichText:
    """Drop a link Notion would refuse; the text of the item is kept."""
    url = link_url(item)
    if url is None or utf16_len(url) <= MAX_URL_UNITS:
        return item
    body = {key: value for key, value in item["text"].items() if key != "link"}
    return {**item, "text": body}


def _with_content(item: RichText, content: str) -> RichText:
    """A copy of ``item`` with other content; annotations and link are shared, not copied."""
    return {**item, "text": {**item["text"], "content": content}}


def merge_adjacent(items: Iterable[RichText]) -> list[RichText]:
    """Join neighbouring text items that look the same (annotations and link).

    Parsers emit one item per source token (a soft line break makes two), and every item
    counts against Notion's 100-item limit, so merging first keeps ordinary text in one block.
    """
    merged: list[RichText] = []
    for item in items:
        if merged and _same_style(merged[-1], item):
            previous = merged[-1]
            content = previous["text"]["content"] + item["text"]["content"]
            merged[-1] = _with_content(previous, content)
        else:
            merged.append(item)
    return merged


def _same_style(left: RichText, right: RichText) -> bool:
    """Two plain text items that would render identically side by side."""
    if left.get("type") != "text" or right.get("type") != "text":
        return False
    same_look = left.get("annotations") == right.get("annotations")
    return same_look and link_url(left) == link_url(right)


def _batches(items: Sequence[RichText]) -> list[list[RichText]]:
    """Cut a rich-text list into runs of at most 100 items (Notion's per-block limit)."""
    size = MAX_RICH_TEXT_ITEMS
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# --- blocks ----------------------------------------------------------------------------------


def _block(kind: str, body: dict[str, Any]) -> Block:
    """The envelope every block shares: Notion reads ``type`` and the body under that key."""
    return {"object": "block", "type": kind, kind: body}


def _rich_body(rich: Iterable[RichText], children: Sequence[Block] | None = None) -> dict[str, Any]:
    """A block body with safe rich text and, when given, inline children."""
    body: dict[str, Any] = {"rich_text": split_rich_text(rich)}
    if children:
        body["children"] = list(children)
    return body


def paragraph(rich: Iterable[RichText], children: Sequence[Block] | None = None) -> Block:
    """A paragraph block."""
    return _block("paragraph", _rich_body(rich, children))


def heading(
    level: int,
    rich: Iterable[RichText],
    *,
    toggleable: bool = False,
    children: Sequence[Block] | None = None,
) -> Block:
    """A ``heading_1``..``heading_3`` block; Notion has no deeper headings.

    Notion only lets a heading hold children when it is toggleable, so children without
    ``toggleable=True`` are refused here rather than by Notion at request time.
    """
    if level not in (1, 2, 3):
        raise ValueError(f"Notion headings are levels 1-3, not {level}")
    if children and not toggleable:
        raise ValueError("a heading needs toggleable=True to hold children")
    body = _rich_body(rich, children)
    body["is_toggleable"] = toggleable
    return _block(f"heading_{level}", body)


def bulleted(rich: Iterable[RichText], children: Sequence[Block] | None = None) -> Block:
    """A bulleted list item."""
    return _block("bulleted_list_item", _rich_body(rich, children))


def numbered(rich: Iterable[RichText], children: Sequence[Block] | None = None) -> Block:
    """A numbered list item; Notion numbers consecutive items itself."""
    return _block("numbered_list_item", _rich_body(rich, children))


def to_do(
    rich: Iterable[RichText], checked: bool = False, children: Sequence[Block] | None = None
) -> Block:
    """A checkbox item."""
    body = _rich_body(rich, children)
    body["checked"] = checked
    return _block("to_do", body)


def quote(rich: Iterable[RichText], children: Sequence[Block] | None = None) -> Block:
    """A quote block."""
    return _block("quote", _rich_body(rich, children))


def toggle(rich: Iterable[RichText], children: Sequence[Block] | None = None) -> Block:
    """A toggle (collapsible) block."""
    return _block("toggle", _rich_body(rich, children))


def callout(rich: Iterable[RichText], emoji: str, children: Sequence[Block] | None = None) -> Block:
    """A callout with an emoji icon (used for the clearly labelled AI draft summary)."""
    body = _rich_body(rich, children)
    body["icon"] = {"type": "emoji", "emoji": emoji}
    return _block("callout", body)


def code_language(hint: str | None) -> str:
    """Map a Markdown fence label to Notion's language name; unknown labels are plain text.

    Notion validates ``code.language`` against a fixed enum and rejects the whole request for
    a label like ``ts`` or ``text``, so anything we do not recognise degrades to plain text.
    """
    name = (hint or "").strip().lower()
    name = _LANGUAGE_ALIASES.get(name, name)
    return name if name in NOTION_CODE_LANGUAGES else "plain text"


def code_block(content: str, language: str = "plain text") -> Block:
    """A code block; its text is split at 2,000 units like any other rich text."""
    return _code_from_rich([text(content)], language)


def code_blocks(content: str, language: str = "plain text") -> list[Block]:
    """Code of any length: one code block per 100 rich-text items (200k+ characters each)."""

    def make(rich: list[RichText]) -> Block:
        return _code_from_rich(rich, language)

    return blocks_with_overflow(make, [text(content)], overflow=make)


def _code_from_rich(rich: Iterable[RichText], language: str) -> Block:
    """A code block from ready rich text, with the language mapped to Notion's enum."""
    body = _rich_body(rich)
    body["language"] = code_language(language)
    return _block("code", body)


def divider() -> Block:
    """A horizontal rule."""
    return _block("divider", {})


def paragraphs_from_rich(items: Iterable[RichText]) -> list[Block]:
    """Paragraph blocks for rich text of any length: 100 items per block, in order."""
    return blocks_with_overflow(paragraph, items)


def blocks_with_overflow(
    make: Callable[[list[RichText]], Block],
    items: Iterable[RichText],
    *,
    overflow: Callable[[list[RichText]], Block] | None = None,
) -> list[Block]:
    """``make(first 100 items)`` followed by blocks for the rest, 100 items each.

    Notion allows 100 rich-text items per block; rather than lose text, the surplus continues
    in following blocks built by ``overflow`` (plain paragraphs unless told otherwise, e.g. a
    code block continues as another code block). Empty rich text gives one empty block.
    """
    batches = _batches(split_rich_text(items)) or [[]]
    follow = overflow or paragraph
    return [make(batches[0]), *(follow(batch) for batch in batches[1:])]


def rich_text_of(block: Block) -> list[RichText]:
    """The rich text of a block of any type that has one (else an empty list)."""
    body = block.get(str(block.get("type")), {})
    rich = body.get("rich_text", []) if isinstance(body, dict) else []
    return list(rich)


def plain_text(block: Block) -> str:
    """The visible text of a block, for request- and response-shaped blocks alike."""
    return "".join(item_plain_text(item) for item in rich_text_of(block))


def children_of(block: Block) -> list[Block]:
    """Inline children of a request-shaped block (empty when it has none)."""
    body = block.get(str(block.get("type")), {})
    children = body.get("children", []) if isinstance(body, dict) else []
    return list(children)


def request_item(item: RichText) -> RichText:
    """A rich-text item as Notion answered it, in the form a request sends back."""
    if item.get("type") != "text":
        return item
    body = item.get("text") or {}
    out: RichText = {"type": "text", "text": {"content": body.get("content", "")}}
    if body.get("link"):
        out["text"]["link"] = body["link"]
    if item.get("annotations"):
        out["annotations"] = item["annotations"]
    return out


def plain_copy(block: Block) -> Block:
    """The same words as a bare paragraph: no annotations, no links but each line's first.

    What is left to write when Notion refuses a block: a refused message still appears,
    as text, instead of holding back the rest of its batch. The first item of each line
    keeps its link, which in a transcript is the message's own permalink (always https):
    a resumed dump recognises its blocks by it.
    """
    kind = str(block["type"])
    body = block.get(kind) or {}
    rich: list[RichText] = []
    plain = ""
    line_start = True
    for item in body.get("rich_text", []):
        content = str((item.get("text") or {}).get("content", ""))
        url = link_url(item)
        if line_start and url:
            if plain:
                rich.append(text(plain))
                plain = ""
            rich.append(text(content, link=url))
        else:
            plain += content
        line_start = content.endswith("\n")
    if plain or not rich:
        rich.append(text(plain or " "))
    rich = split_rich_text(rich)
    if len(rich) > MAX_RICH_TEXT_ITEMS:
        rich = [*rich[: MAX_RICH_TEXT_ITEMS - 1], text("…")]
    children = [plain_copy(child) for child in body.get("children") or []]
    return paragraph(rich, children or None)


def with_children(block: Block, children: Sequence[Block] | None) -> Block:
    """A copy of ``block`` whose inline children are replaced (or removed when empty)."""
    kind = str(block["type"])
    body = {key: value for key, value in block[kind].items() if key != "children"}
    if children:
        body["children"] = list(children)
    return {**block, kind: body}
