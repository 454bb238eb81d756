"""The postmortem template: a Markdown file rendered into Notion blocks.

The template is parsed with markdown-it-py (CommonMark plus strikethrough) and rendered from
its syntax tree, never with regexes over the Markdown, and placeholders such as ``{incident}``
are filled in *after* parsing, in the text of the parsed nodes. A title like
``*Checkout* [down](x)`` therefore shows up as literal text; it cannot add emphasis, links,
list items or headings to the page.

Whatever the template holds, the rendered page has a toggleable "Slack transcript" heading at
the top level: the transcript writer appends the channel's messages as that heading's children.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block, RichText

TRANSCRIPT_HEADING = "Slack transcript"
"""Text of the heading under which the transcript is written (compared case-insensitively)."""

DEFAULT_TEMPLATE = "templates/postmortem.md"
"""The packaged default template, relative to the ``bolt_app`` package."""

MAX_BLOCK_DEPTH = 3
"""Block levels Notion accepts in one request: top-level blocks plus two levels of children.

Deeper Markdown nesting is flattened: items below this level become siblings of their parent
at the deepest level, in document order, so no text is lost.
"""

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
"""Link targets Notion accepts; relative links like ``#impact`` would fail the whole request."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENCODED_PLACEHOLDER = re.compile(r"%7B([A-Za-z_][A-Za-z0-9_]*)%7D", re.IGNORECASE)
_TASK_MARKERS = {"[ ]": False, "[x]": True, "[X]": True}


class TemplateError(ValueError):
    """The template file cannot be read; the message names the file."""


def load_template(path: str | None) -> str:
    """The template's Markdown: the file at ``path``, or the packaged default when None."""
    source = Path(path) if path is not None else default_template_path()
    try:
        return source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TemplateError(f"cannot read the postmortem template {path}: {error}") from error


def default_template_path() -> Path:
    """Where the packaged default template is (package data, see pyproject.toml).

    Resolved beside this module rather than through
    ``importlib.resources.files("bolt_app")``: the latter raises NotADirectoryError whenever
    ``bolt_app`` is imported as a namespace package (an editable install made before
    ``bolt_app/__init__.py`` existed does that), and a missing default template must never be
    the reason the bot cannot start.
    """
    return Path(__file__).parent / DEFAULT_TEMPLATE


def render_template(markdown: str, values: Mapping[str, str]) -> list[Block]:
    """Notion blocks for ``markdown`` with ``{key}`` placeholders filled from ``values``.

    Unknown placeholders and other braces are left as they are. The result always contains a
    top-level toggleable "Slack transcript" heading (see :func:`ensure_transcript_heading`).
    """
    parser = MarkdownIt("commonmark").enable("strikethrough")
    root = SyntaxTreeNode(parser.parse(markdown))
    blocks = _Renderer(values).blocks(root.children, depth=1)
    return ensure_transcript_heading(blocks)


def is_transcript_heading(block: Block) -> bool:
    """True for a toggleable heading whose text is "Slack transcript" (any case, trimmed).

    Works on request-shaped blocks and on blocks read back from Notion alike, so the transcript
    writer can find the heading among the page's children.
    """
    kind = block.get("type")
    if kind not in nb.HEADING_TYPES or not block[kind].get("is_toggleable"):
        return False
    return _is_transcript_title(nb.plain_text(block))


def ensure_transcript_heading(blocks: Sequence[Block]) -> list[Block]:
    """``blocks`` with a top-level toggleable "Slack transcript" heading, added at the end if none.

    The renderer already makes the first matching template heading toggleable; this is the
    guarantee for templates that lack one.
    """
    if any(is_transcript_heading(block) for block in blocks):
        return list(blocks)
    return [*blocks, nb.heading(2, [nb.text(TRANSCRIPT_HEADING)], toggleable=True)]


def _is_transcript_title(title: str) -> bool:
    """Trimmed, case-insensitive: template authors write headings however they like."""
    return title.strip().casefold() == TRANSCRIPT_HEADING.casefold()


def fill_placeholders(value: str, values: Mapping[str, str]) -> str:
    """Replace ``{key}`` for every key in ``values``; anything else stays as written."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), value)


# --- inline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    """Inline formatting in effect while walking nested emphasis/link nodes."""

    bold: bool = False
    italic: bool = False
    strikethrough: bool = False
    code: bool = False
    link: str | None = None

    def text(self, content: str) -> RichText:
        """A rich-text item carrying this style."""
        return nb.text(
            content,
            bold=self.bold,
            italic=self.italic,
            strikethrough=self.strikethrough,
            code=self.code,
            link=self.link,
        )


# --- blocks -----------------------------------------------------------------------------------

_MakeBlock = Callable[[list[RichText]], Block]


class _Renderer:
    """Walks markdown-it's syntax tree and returns Notion blocks, one method per node type."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.transcript_seen = False
        self.handlers: dict[str, Callable[[SyntaxTreeNode, int], list[Block]]] = {
            "heading": self.heading,
            "paragraph": self.paragraph,
            "bullet_list": self.list_block,
            "ordered_list": self.list_block,
            "blockquote": self.blockquote,
            "fence": self.code,
            "code_block": self.code,
            "hr": lambda _node, _depth: [nb.divider()],
            "html_block": self.html_block,
        }

    # block level

    def blocks(self, nodes: Sequence[SyntaxTreeNode], depth: int) -> list[Block]:
        """Blocks for sibling nodes that will sit at ``depth`` (1 = the page's children)."""
        rendered: list[Block] = []
        for node in nodes:
            rendered.extend(self.block(node, depth))
        return rendered

    def block(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """Dispatch on the node type; one table, so a reader sees every construct we map."""
        return self.handlers.get(node.type, self.fallback)(node, depth)

    def heading(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """h1-h3 as they are, h4-h6 as heading_3; the transcript heading becomes toggleable."""
        level = min(int(node.tag[1:]), 3)
        inline = _inline_node(node)
        toggleable = (
            depth == 1 and not self.transcript_seen and _is_transcript_title(_raw_text(inline))
        )
        self.transcript_seen = self.transcript_seen or toggleable

        def make(rich: list[RichText]) -> Block:
            return nb.heading(level, rich, toggleable=toggleable)

        return nb.blocks_with_overflow(make, self.inline(inline))

    def paragraph(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """Paragraphs; one with more than 100 rich-text items continues in the next one."""
        rich = self.inline(_inline_node(node))
        return nb.paragraphs_from_rich(rich) if rich else []

    def list_block(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """A bulleted or numbered list: Notion has no list block, only consecutive items."""
        ordered = node.type == "ordered_list"
        rendered: list[Block] = []
        for item in node.children:
            rendered.extend(self.list_item(item, depth, ordered))
        return rendered

    def list_item(self, node: SyntaxTreeNode, depth: int, ordered: bool) -> list[Block]:
        """A bulleted/numbered item, or a to-do for ``[ ]``/``[x]``; nested blocks as children."""
        lead, rest = _split_lead_paragraph(node.children)
        checked = _task_state(lead)
        rich = self.inline(lead, skip=4 if checked is not None else 0) if lead else []

        def make(batch: list[RichText], children: list[Block] | None) -> Block:
            if checked is not None:
                return nb.to_do(batch, checked=checked, children=children)
            builder = nb.numbered if ordered else nb.bulleted
            return builder(batch, children)

        return self.with_children(make, rich, rest, depth)

    def blockquote(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """A quote: its first paragraph is the quote's text, anything after it its children."""
        lead, rest = _split_lead_paragraph(node.children)
        rich = self.inline(lead) if lead else []
        return self.with_children(nb.quote, rich, rest, depth)

    def with_children(
        self,
        make: Callable[[list[RichText], list[Block] | None], Block],
        rich: list[RichText],
        nested: Sequence[SyntaxTreeNode],
        depth: int,
    ) -> list[Block]:
        """Build a block that may hold children, flattening below :data:`MAX_BLOCK_DEPTH`."""
        can_nest = depth < MAX_BLOCK_DEPTH
        children = self.blocks(nested, depth + 1 if can_nest else depth)
        inline_children = children if can_nest else None
        blocks = nb.blocks_with_overflow(lambda batch: make(batch, inline_children), rich)
        return blocks if can_nest else [*blocks, *children]

    def code(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """Fenced or indented code; the fence's first word picks the language."""
        language = node.info.split()[0] if node.info.strip() else "plain text"
        content = fill_placeholders(node.content.rstrip("\n"), self.values)
        return nb.code_blocks(content, language)

    def html_block(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """HTML comments are notes for template authors and are dropped; other HTML is text."""
        raw = node.content.strip()
        if not raw or raw.startswith("<!--"):
            return []
        return nb.paragraphs_from_rich([nb.text(fill_placeholders(raw, self.values))])

    def fallback(self, node: SyntaxTreeNode, depth: int) -> list[Block]:
        """Constructs we do not map keep their text rather than vanish."""
        if node.children:
            return self.blocks(node.children, depth)
        raw = fill_placeholders(node.content.strip(), self.values)
        return nb.paragraphs_from_rich([nb.text(raw)]) if raw else []

    # inline level

    def inline(self, node: SyntaxTreeNode | None, *, skip: int = 0) -> list[RichText]:
        """Rich text for an ``inline`` node; ``skip`` drops leading characters (a task marker)."""
        if node is None:
            return []
        items: list[RichText] = []
        for index, child in enumerate(node.children):
            if index == 0 and skip and child.type == "text":
                items.extend(self.span_text(child.content[skip:], _Style()))
            else:
                items.extend(self.span(child, _Style()))
        return nb.merge_adjacent(items)

    def span(self, node: SyntaxTreeNode, style: _Style) -> list[RichText]:
        """Rich text for one inline node under ``style``."""
        kind = node.type
        if kind in ("text", "html_inline"):
            return self.span_text(node.content, style)
        if kind == "code_inline":
            return self.span_text(node.content, replace(style, code=True))
        if kind == "softbreak":
            return [style.text(" ")]
        if kind == "hardbreak":
            return [style.text("\n")]
        if kind == "image":
            return self.image(node, style)
        return self.spans(node.children, self.nested_style(node, style))

    def spans(self, nodes: Sequence[SyntaxTreeNode], style: _Style) -> list[RichText]:
        """Rich text for sibling inline nodes, all under the same style."""
        items: list[RichText] = []
        for child in nodes:
            items.extend(self.span(child, style))
        return items

    def nested_style(self, node: SyntaxTreeNode, style: _Style) -> _Style:
        """The style inside a strong/em/s/link node."""
        if node.type == "strong":
            return replace(style, bold=True)
        if node.type == "em":
            return replace(style, italic=True)
        if node.type == "s":
            return replace(style, strikethrough=True)
        if node.type == "link":
            return replace(style, link=self.href(str(node.attrs.get("href", ""))))
        return style

    def image(self, node: SyntaxTreeNode, style: _Style) -> list[RichText]:
        """Images become a link with their alt text: blocks inside a line are not possible."""
        src = self.href(str(node.attrs.get("src", "")))
        label = _raw_text(node) or src or ""
        return self.span_text(label, replace(style, link=src or style.link))

    def span_text(self, content: str, style: _Style) -> list[RichText]:
        """One item for parsed text, placeholders filled now that the structure is fixed."""
        filled = fill_placeholders(content, self.values)
        return [style.text(filled)] if filled else []

    def href(self, raw: str) -> str | None:
        """A link target with placeholders filled, or None if Notion would refuse it."""
        decoded = _ENCODED_PLACEHOLDER.sub(lambda match: "{" + match.group(1) + "}", raw)
        url = fill_placeholders(decoded, self.values).strip()
        if not url or any(char.isspace() for char in url):
            return None
        return url if urlsplit(url).scheme.lower() in LINK_SCHEMES else None


# --- tree helpers -----------------------------------------------------------------------------


def _inline_node(node: SyntaxTreeNode) -> SyntaxTreeNode | None:
    """The ``inline`` child holding a heading's or paragraph's text."""
    return next((child for child in node.children if child.type == "inline"), None)


def _split_lead_paragraph(
    nodes: Sequence[SyntaxTreeNode],
) -> tuple[SyntaxTreeNode | None, Sequence[SyntaxTreeNode]]:
    """A list item's or quote's own text (its first paragraph) and the nodes nested under it."""
    if nodes and nodes[0].type == "paragraph":
        return _inline_node(nodes[0]), nodes[1:]
    return None, nodes


def _task_state(inline: SyntaxTreeNode | None) -> bool | None:
    """True/False for a ``[x]``/``[ ]`` task item, None for an ordinary item.

    Read from the raw parsed text, before placeholders are filled, so a value cannot turn an
    ordinary item into a to-do.
    """
    if inline is None or not inline.children or inline.children[0].type != "text":
        return None
    content = inline.children[0].content
    marker = content[:3]
    if marker not in _TASK_MARKERS or content[3:4] not in (" ", ""):
        return None
    return _TASK_MARKERS[marker]


def _raw_text(node: SyntaxTreeNode | None) -> str:
    """The template's own text under ``node``, placeholders unfilled."""
    if node is None:
        return ""
    if node.type in ("text", "code_inline"):
        return node.content
    return "".join(_raw_text(child) for child in node.children)
