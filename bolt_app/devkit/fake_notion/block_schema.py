"""Request validation and response shapes for rich text and blocks.

Requests are checked against Notion's documented limits before anything is stored, so a
request is applied whole or not at all, as Notion does. Limits (developers.notion.com,
"Request limits" and "Append block children"):

* 100 elements in any `children` array and 100 items in any rich-text array;
* 2,000 characters per `text.content` and per `text.link.url` (counted in UTF-16 units);
* two levels of nesting per request: top-level blocks and their children may carry
  `children`, grandchildren may not;
* 1,000 blocks per request counting nested ones (enforced by the caller via `BlockCount`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from bolt_app.devkit.fake_notion.common import (
    JSON,
    body_error,
    js_length,
    not_present,
    shown,
    too_long,
    undefined,
    validation_error,
)

MAX_ARRAY = 100
MAX_TEXT = 2000
MAX_URL = 2000
MAX_EQUATION = 1000
MAX_NESTING = 2
MAX_BLOCKS_PER_REQUEST = 1000

COLORS = frozenset(
    ["default"]
    + [
        f"{base}{suffix}"
        for base in ("gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")
        for suffix in ("", "_background")
    ]
)
HEADINGS = frozenset({"heading_1", "heading_2", "heading_3"})
NESTABLE = frozenset(
    {"paragraph", "bulleted_list_item", "numbered_list_item", "to_do", "toggle", "quote", "callout"}
)
RICH_TEXT_BLOCKS = NESTABLE | HEADINGS | {"code"}
SUPPORTED_BLOCKS = RICH_TEXT_BLOCKS | {"divider", "bookmark"}
#: Real Notion block types this fake does not model; rejected with a message that says so.
UNMODELLED_BLOCKS = frozenset(
    {
        "audio", "breadcrumb", "child_database", "child_page", "column", "column_list",
        "embed", "equation", "file", "image", "link_preview", "link_to_page", "pdf",
        "synced_block", "table", "table_of_contents", "table_row", "template", "video",
    }
)  # fmt: skip
#: The `language` values Notion's code block accepts.
CODE_LANGUAGES = frozenset(
    (
        "abap", "agda", "arduino", "ascii art", "assembly", "bash", "basic", "bnf", "c", "c#",
        "c++", "clojure", "coffeescript", "coq", "css", "dart", "dhall", "diff", "docker",
        "ebnf", "elixir", "elm", "erlang", "f#", "flow", "fortran", "gherkin", "glsl", "go",
        "graphql", "groovy", "haskell", "hcl", "html", "idris", "java", "javascript", "json",
        "julia", "kotlin", "latex", "less", "lisp", "livescript", "llvm ir", "lua", "makefile",
        "markdown", "markup", "matlab", "mathematica", "mermaid", "nix", "notion formula",
        "objective-c", "ocaml", "pascal", "perl", "php", "plain text", "powershell", "prolog",
        "protobuf", "purescript", "python", "r", "racket", "reason", "ruby", "rust", "sass",
        "scala", "scheme", "scss", "shell", "smalltalk", "solidity", "sql", "swift", "toml",
        "typescript", "vb.net", "verilog", "vhdl", "visual basic", "webassembly", "xml", "yaml",
        "java/c/c++/c#",
    )
)  # fmt: skip
DEFAULT_CALLOUT_ICON: JSON = {"type": "emoji", "emoji": "💡"}
#: Notion links rich text only to web pages: any other scheme (mailto:, slack:) is refused.
_URL_SCHEME = re.compile(r"^https?://\S+$", re.IGNORECASE)
_ANNOTATION_FLAGS = ("bold", "italic", "strikethrough", "underline", "code")


@dataclass
class BlockSpec:
    """A validated block from a request: its type, response-form payload and children."""

    type: str
    content: JSON
    children: list[BlockSpec] = field(default_factory=list)


@dataclass
class BlockCount:
    """Counts blocks across one request, for the 1,000-blocks-per-request limit."""

    total: int = 0

    def check(self) -> None:
        if self.total > MAX_BLOCKS_PER_REQUEST:
            raise body_error(
                f"request contains {self.total} block elements, which is more than the "
                f"limit of `{MAX_BLOCKS_PER_REQUEST}` per request."
            )


# --------------------------------------------------------------------------- rich text


def parse_rich_text(items: Any, path: str) -> list[JSON]:
    """Validate a rich-text array and return it as Notion would echo it back."""
    if not isinstance(items, list):
        raise body_error(f"{path} should be an array, instead was `{shown(items)}`.")
    if len(items) > MAX_ARRAY:
        raise too_long(f"{path}.length", MAX_ARRAY, len(items))
    return [_rich_item(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _rich_item(item: Any, path: str) -> JSON:
    if not isinstance(item, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(item)}`.")
    kind = item.get("type") or next((k for k in ("text", "mention", "equation") if k in item), None)
    annotations = _annotations(item.get("annotations"), f"{path}.annotations")
    if kind == "text":
        return _text_item(item.get("text"), f"{path}.text", annotations)
    if kind == "mention":
        return _mention_item(item.get("mention"), f"{path}.mention", annotations)
    if kind == "equation":
        return _equation_item(item.get("equation"), f"{path}.equation", annotations)
    raise body_error(f"{path}.text should be defined, instead was `undefined`.")


def _annotations(raw: Any, path: str) -> JSON:
    result: JSON = {flag: False for flag in _ANNOTATION_FLAGS}
    result["color"] = "default"
    if raw is None:
        return result
    if not isinstance(raw, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(raw)}`.")
    for flag in _ANNOTATION_FLAGS:
        if flag in raw:
            if not isinstance(raw[flag], bool):
                raise body_error(
                    f"{path}.{flag} should be a boolean, instead was `{shown(raw[flag])}`."
                )
            result[flag] = raw[flag]
    if "color" in raw:
        result["color"] = check_color(raw["color"], f"{path}.color")
    return result


def _text_item(text: Any, path: str, annotations: JSON) -> JSON:
    if not isinstance(text, dict):
        raise undefined(path)
    content = text.get("content")
    if not isinstance(content, str):
        raise body_error(f"{path}.content should be a string, instead was `{shown(content)}`.")
    if js_length(content) > MAX_TEXT:
        raise too_long(f"{path}.content.length", MAX_TEXT, js_length(content))
    link = _link(text.get("link"), f"{path}.link")
    return {
        "type": "text",
        "text": {"content": content, "link": link},
        "annotations": annotations,
        "plain_text": content,
        "href": link["url"] if link else None,
    }


def _link(raw: Any, path: str) -> JSON | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise body_error(f"{path}.url should be a string, instead was `{shown(raw)}`.")
    url = check_url(raw["url"], f"{path}.url")
    return {"url": url}


def check_url(url: str, path: str) -> str:
    """A URL within Notion's 2,000-character limit, http or https, as links require."""
    if js_length(url) > MAX_URL:
        raise too_long(f"{path}.length", MAX_URL, js_length(url))
    if not _URL_SCHEME.match(url):
        raise validation_error("Invalid URL for link.")
    return url


def _mention_item(raw: Any, path: str, annotations: JSON) -> JSON:
    if not isinstance(raw, dict):
        raise undefined(path)
    kind = raw.get("type") or next(iter(raw), None)
    target = raw.get(kind) if isinstance(kind, str) else None
    if kind not in ("user", "page", "database", "date", "link_preview") or not isinstance(
        target, dict
    ):
        raise body_error(f"{path} should be a supported mention, instead was `{shown(raw)}`.")
    plain, href = _mention_text(kind, target)
    return {
        "type": "mention",
        "mention": {"type": kind, kind: copy.deepcopy(target)},
        "annotations": annotations,
        "plain_text": plain,
        "href": href,
    }


def _mention_text(kind: str, target: JSON) -> tuple[str, str | None]:
    if kind == "user":
        return f"@{target.get('name') or 'Unknown user'}", None
    if kind == "date":
        return str(target.get("start", "")), None
    if kind == "link_preview":
        return str(target.get("url", "")), str(target.get("url", "")) or None
    object_id = str(target.get("id", "")).replace("-", "")
    return "Untitled", f"https://www.notion.so/{object_id}"


def _equation_item(raw: Any, path: str, annotations: JSON) -> JSON:
    expression = raw.get("expression") if isinstance(raw, dict) else None
    if not isinstance(expression, str):
        raise undefined(f"{path}.expression")
    if js_length(expression) > MAX_EQUATION:
        raise too_long(f"{path}.expression.length", MAX_EQUATION, js_length(expression))
    return {
        "type": "equation",
        "equation": {"expression": expression},
        "annotations": annotations,
        "plain_text": expression,
        "href": None,
    }


def check_color(raw: Any, path: str) -> str:
    """One of Notion's API colours (`default`, `red`, `red_background`, ...)."""
    if raw not in COLORS:
        raise body_error(f"{path} should be a valid color, instead was `{shown(raw)}`.")
    return str(raw)


def plain_text_of(rich_text: list[JSON]) -> str:
    """The concatenated `plain_text` of a response-form rich-text array."""
    return "".join(str(item.get("plain_text", "")) for item in rich_text)


# --------------------------------------------------------------------------- blocks


def parse_children(raw: Any, path: str, depth: int, count: BlockCount) -> list[BlockSpec]:
    """Validate a `children` array at `depth` (0 = the request's top level)."""
    if raw is None:
        raise undefined(path)
    if not isinstance(raw, list):
        raise body_error(f"{path} should be an array, instead was `{shown(raw)}`.")
    if len(raw) > MAX_ARRAY:
        raise too_long(f"{path}.length", MAX_ARRAY, len(raw))
    specs = [_parse_block(item, f"{path}[{i}]", depth, count) for i, item in enumerate(raw)]
    count.check()
    return specs


def _parse_block(raw: Any, path: str, depth: int, count: BlockCount) -> BlockSpec:
    if not isinstance(raw, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(raw)}`.")
    count.total += 1
    kind = _block_type(raw, path)
    if "children" in raw:
        raise not_present(f"{path}.children", raw["children"])
    payload = raw.get(kind)
    if not isinstance(payload, dict):
        raise undefined(f"{path}.{kind}")
    content = build_content(kind, payload, f"{path}.{kind}")
    nested = payload.get("children")
    if nested is None:
        return BlockSpec(kind, content)
    if depth >= MAX_NESTING or not can_have_children(kind, content):
        raise not_present(f"{path}.{kind}.children", nested)
    return BlockSpec(
        kind, content, parse_children(nested, f"{path}.{kind}.children", depth + 1, count)
    )


def _block_type(raw: JSON, path: str) -> str:
    declared = raw.get("type")
    known = SUPPORTED_BLOCKS | UNMODELLED_BLOCKS
    kind = declared if declared is not None else next((k for k in raw if k in known), None)
    if kind in SUPPORTED_BLOCKS:
        return str(kind)
    if kind in UNMODELLED_BLOCKS:
        raise body_error(f"{path}.type `{kind}` is a Notion block type FakeNotion does not model.")
    if kind is None:
        raise undefined(f"{path}.type")
    raise body_error(
        f"{path}.type should be one of {', '.join(f'`{t}`' for t in sorted(SUPPORTED_BLOCKS))}, "
        f"instead was `{shown(kind)}`."
    )


def can_have_children(kind: str, content: JSON) -> bool:
    """Whether a block of this type may hold children: headings only when toggleable."""
    if kind in HEADINGS:
        return bool(content.get("is_toggleable"))
    return kind in NESTABLE


def build_content(kind: str, payload: JSON, path: str) -> JSON:
    """Validate a request payload for `kind` and return the response-form payload."""
    if kind == "divider":
        return {}
    if kind == "bookmark":
        return _bookmark(payload, path)
    content: JSON = {"rich_text": _required_rich_text(payload, path)}
    if kind == "code":
        content["caption"] = parse_rich_text(payload.get("caption", []), f"{path}.caption")
        content["language"] = _language(payload.get("language"), f"{path}.language")
        return content
    default_color = "gray_background" if kind == "callout" else "default"
    content["color"] = check_color(payload.get("color", default_color), f"{path}.color")
    _add_extras(kind, payload, path, content)
    return content


def _add_extras(kind: str, payload: JSON, path: str, content: JSON) -> None:
    if kind in HEADINGS:
        content["is_toggleable"] = _bool(
            payload.get("is_toggleable", False), f"{path}.is_toggleable"
        )
    elif kind == "to_do":
        content["checked"] = _bool(payload.get("checked", False), f"{path}.checked")
    elif kind == "callout":
        content["icon"] = parse_icon(payload.get("icon"), f"{path}.icon") or copy.deepcopy(
            DEFAULT_CALLOUT_ICON
        )


def _required_rich_text(payload: JSON, path: str) -> list[JSON]:
    if "rich_text" not in payload:
        raise undefined(f"{path}.rich_text")
    return parse_rich_text(payload["rich_text"], f"{path}.rich_text")


def _bookmark(payload: JSON, path: str) -> JSON:
    url = payload.get("url")
    if not isinstance(url, str):
        raise undefined(f"{path}.url")
    if js_length(url) > MAX_URL:
        raise too_long(f"{path}.url.length", MAX_URL, js_length(url))
    caption = parse_rich_text(payload.get("caption", []), f"{path}.caption")
    return {"caption": caption, "url": url}


def _language(raw: Any, path: str) -> str:
    if raw is None:
        raise undefined(path)
    if raw not in CODE_LANGUAGES:
        raise body_error(f"{path} should be a supported language, instead was `{shown(raw)}`.")
    return str(raw)


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise body_error(f"{path} should be a boolean, instead was `{shown(raw)}`.")
    return raw


def parse_icon(raw: Any, path: str) -> JSON | None:
    """An emoji or external icon in response form; None when no icon was given."""
    if raw is None:
        return None
    if isinstance(raw, dict) and isinstance(raw.get("emoji"), str):
        return {"type": "emoji", "emoji": raw["emoji"]}
    external = raw.get("external") if isinstance(raw, dict) else None
    if isinstance(external, dict) and isinstance(external.get("url"), str):
        return {"type": "external", "external": {"url": external["url"]}}
    raise body_error(f"{path} should be an emoji or external icon, instead was `{shown(raw)}`.")


def update_content(kind: str, current: JSON, payload: Any, path: str) -> JSON:
    """Apply a `PATCH /v1/blocks/{id}` payload: given fields replace, others are kept."""
    if not isinstance(payload, dict):
        raise body_error(f"{path} should be an object, instead was `{shown(payload)}`.")
    if "children" in payload:
        raise not_present(f"{path}.children", payload["children"])
    merged = copy.deepcopy(current)
    if kind == "divider":
        return merged
    validated = build_content(kind, {**_as_request(kind, current), **payload}, path)
    for key in payload:
        if key in validated:
            merged[key] = validated[key]
    return merged


def _as_request(kind: str, current: JSON) -> JSON:
    """Enough of the stored payload to re-validate a partial update of it."""
    request = {k: v for k, v in current.items() if k not in ("rich_text", "caption")}
    if "rich_text" in current:
        request["rich_text"] = []
    if kind == "callout":
        request["icon"] = current.get("icon")
    return request
