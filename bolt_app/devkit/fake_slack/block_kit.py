"""Block Kit as Slack checks it: what a message or a view may hold.

Slack refuses a payload that breaks a layout limit with `invalid_blocks` and says where
in `errors` (`"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"`).
The limits are Slack's Block Kit reference: at most 50 blocks in a message and 100 in
a view; a section's text at most 3,000 characters and at most 10 fields of 2,000; a
header's plain text at most 150; a context at most 10 elements, their text at most
2,000; an input's label at most 2,000; a `plain_text_input`'s `max_length` at most 3,000.
A block type this fake does not know is refused too, so a typo can't pass here and
fail in Slack.
"""

from __future__ import annotations

from typing import Any

from bolt_app.devkit.fake_slack.state import SlackError

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

_TEXT_TYPES = ("plain_text", "mrkdwn")


class _Errors:
    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.found.append(f"{message} [json-pointer:{pointer}]")


def _text(obj: Any, pointer: str, limit: int, errors: _Errors, plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
        errors.add("must be a text object", pointer)
        return
    if plain_only and obj.get("type") != "plain_text":
        errors.add("must be a plain_text object", f"{pointer}/type")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.add("must provide a non-empty string", f"{pointer}/text")
    elif len(text) > limit:
        errors.add(f"must be less than {limit + 1} characters", f"{pointer}/text")


def _section(block: dict[str, Any], at: str, errors: _Errors) -> None:
    if "text" not in block and "fields" not in block:
        errors.add("must provide text or fields", at)
    if "text" in block:
        _text(block["text"], f"{at}/text", 3000, errors)
    fields = block.get("fields", [])
    if len(fields) > 10:
        errors.add("must provide no more than 10 items", f"{at}/fields")
    for i, field in enumerate(fields):
        _text(field, f"{at}/fields/{i}", 2000, errors)


def _header(block: dict[str, Any], at: str, errors: _Errors) -> None:
    _text(block.get("text"), f"{at}/text", 150, errors, plain_only=True)


def _context(block: dict[str, Any], at: str, errors: _Errors) -> None:
    elements = block.get("elements") or []
    if not elements or len(elements) > 10:
        errors.add("must provide 1 to 10 items", f"{at}/elements")
    for i, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            continue
        _text(element, f"{at}/elements/{i}", 2000, errors)


def _input(block: dict[str, Any], at: str, errors: _Errors) -> None:
    _text(block.get("label"), f"{at}/label", 2000, errors, plain_only=True)
    element = block.get("element")
    if not isinstance(element, dict):
        errors.add("must provide an element", f"{at}/element")
        return
    limit = element.get("max_length")
    if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= 3000):
        errors.add("must be between 1 and 3000", f"{at}/element/max_length")


def _nothing(block: dict[str, Any], at: str, errors: _Errors) -> None:
    """Blocks whose contents this fake does not check further."""


_CHECKS = {
    "section": _section,
    "header": _header,
    "context": _context,
    "input": _input,
    "divider": _nothing,
    "actions": _nothing,
    "image": _nothing,
    "rich_text": _nothing,
}


def check_blocks(blocks: list[Any], limit: int) -> None:
    """Raise `invalid_blocks` with Slack's error list when `blocks` break a limit."""
    errors = _Errors()
    if len(blocks) > limit:
        errors.add(f"must provide no more than {limit} items", "/blocks")
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        check = _CHECKS.get(str(kind))
        if check is None:
            errors.add(f"unsupported type: {kind}", f"{at}/type")
            continue
        check(block, at, errors)
    if errors.found:
        raise SlackError(
            "invalid_blocks",
            errors=errors.found,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors.found]},
        )
