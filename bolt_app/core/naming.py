"""Incident channel names: `inc-42-checkout-is-down`.

Slack channel names are lower-case letters, digits, hyphens and underscores, at most
80 characters. We keep to ASCII letters, digits and hyphens so names are easy to type
mid-outage, and fall back to the bare `inc-42` when a title has nothing typeable.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_CHANNEL_NAME = 80
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """Lower-case ASCII words joined by hyphens; accents are folded (`Café` → `cafe`)."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", folded.lower()).strip("-")


def channel_name(channel_prefix: str, number: int, title: str, attempt: int = 1) -> str:
    """The channel name for an incident; `attempt` > 1 adds `-2`, `-3` after `name_taken`.

    The slug is cut, at a word boundary where possible, so that the whole name
    including any suffix stays within Slack's 80 characters.
    """
    base = f"{channel_prefix}-{number}"
    suffix = f"-{attempt}" if attempt > 1 else ""
    room = MAX_CHANNEL_NAME - len(base) - len(suffix) - 1
    slug = _cut(slugify(title), room)
    return f"{base}-{slug}{suffix}" if slug else f"{base}{suffix}"


def _cut(slug: str, room: int) -> str:
    if len(slug) <= room:
        return slug
    cut = slug[:room]
    if slug[room] != "-" and "-" in cut:
        cut = cut[: cut.rindex("-")]
    return cut.strip("-")


@dataclass(frozen=True)
class Numbering:
    """How incidents are labelled: `INC-42`, channels `inc-42-…`."""

    prefix: str = "INC"
    start: int = 1

    def label(self, number: int) -> str:
        return f"{self.prefix}-{number}"

    @property
    def channel_prefix(self) -> str:
        return self.prefix.lower()
