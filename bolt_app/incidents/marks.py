"""Marks: how the bot recognises what one of its own attempts made, and nothing else.

Each attempt at an artefact has a random token (`ensure_artifact` records it before the
create). The create writes it where the artefact can carry it: a message in Slack message
metadata, the postmortem page as the link of its "Incident" label. Adoption after a
failed attempt takes only what carries one of the incident's earlier tokens, so a label
seen before (another deployment, a store that was reset) is never taken over. See
"Adoption" in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from storage import ArtifactAttempt

#: The `event_type` of our messages' metadata; the payload names incident and attempt.
EVENT_TYPE = "firebreak_artifact"


def tokens(earlier: Sequence[ArtifactAttempt]) -> set[str]:
    """The tokens the earlier attempts wrote on what they made."""
    return {attempt.token for attempt in earlier if attempt.token}


def unmarked(earlier: Sequence[ArtifactAttempt]) -> bool:
    """Whether an earlier attempt predates tokens (made by a version before them): its
    artefact can only be recognised the old way, by its label."""
    return any(not attempt.token for attempt in earlier)


def message_metadata(kind: str, label: str, token: str) -> dict[str, Any]:
    """What a message of ours carries, invisible to people."""
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"kind": kind, "incident": label, "attempt": token},
    }


def marked_message(
    messages: Iterable[dict[str, Any]],
    *,
    author: str,
    earlier: Sequence[ArtifactAttempt],
    label: str,
) -> str | None:
    """The ts of the message an earlier attempt posted, if it is among `messages`.

    A message of an unmarked attempt is recognised by its text starting `INC-42:`.
    """
    wanted, legacy = tokens(earlier), unmarked(earlier)
    for message in messages:
        if message.get("user") != author:
            continue
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == EVENT_TYPE and payload.get("attempt") in wanted:
            return str(message["ts"])
        if legacy and not metadata and str(message.get("text", "")).startswith(f"{label}:"):
            return str(message["ts"])
    return None
