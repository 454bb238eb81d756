"""A tiny YAML emitter for the manifest: mappings, lists, strings, numbers, booleans.

No YAML library ships with the bot, and the manifest only needs block-style YAML of
plain data. A string is written plain when YAML would read it back as the same string,
and double-quoted (JSON escaping, which YAML accepts) otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z/_][A-Za-z0-9 _./,()'@-]*(:[A-Za-z0-9_./-]+)*$")
#: Words YAML 1.1 readers (Slack's included) take for booleans or null.
_RESERVED = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})

INDENT = "  "


def scalar(value: Any) -> str:
    """One scalar as YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and text == text.strip():
        return text
    return json.dumps(text, ensure_ascii=False)


def dump(value: Mapping[str, Any]) -> str:
    """A mapping as block-style YAML, ending with a newline."""
    return "\n".join(_mapping(value, 0)) + "\n"


def _mapping(value: Mapping[str, Any], depth: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * depth
    for key, item in value.items():
        if _is_block(item):
            lines.append(f"{pad}{scalar(key)}:")
            lines += _block(item, depth + 1)
        else:
            lines.append(f"{pad}{scalar(key)}: {_inline(item)}")
    return lines


def _sequence(value: Sequence[Any], depth: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * depth
    for item in value:
        if isinstance(item, Mapping) and item:
            nested = _mapping(item, depth + 1)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines += nested[1:]
        else:
            lines.append(f"{pad}- {_inline(item)}")
    return lines


def _is_block(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple) and bool(value)


def _block(value: Any, depth: int) -> list[str]:
    return _mapping(value, depth) if isinstance(value, Mapping) else _sequence(value, depth)


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return scalar(value)
