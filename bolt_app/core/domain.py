"""Firebreak's vocabulary: the one place that names statuses, severities and artefacts.

Everything else imports these names instead of typing the strings, so mypy catches a
misspelt status and a new one is added in one place. The enums are `StrEnum`s: each
member *is* its string (`Status.ACTIVE == "active"`), which is what the store keeps and
what people type, so rows, payloads and f-strings need no conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal


class Status(StrEnum):
    """Where an incident stands; the transitions between them are `TRANSITIONS`."""

    ACTIVE = "active"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"
    DONE = "done"
    CANCELED = "canceled"

    @property
    def option(self) -> str:
        """The option of the Notion "Status" property: `Active`, `Mitigated`, …"""
        return self.value.capitalize()


class Severity(StrEnum):
    """How bad it is: P0 is the worst."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


#: Every status and severity, in the order help texts and forms list them.
STATUSES: tuple[Status, ...] = tuple(Status)
SEVERITIES: tuple[Severity, ...] = tuple(Severity)

#: A declare that names no severity gets this one.
DEFAULT_SEVERITY = Severity.P3

#: Closed incidents are left out of `/incident list` and of the reconciler's passes.
CLOSED_STATUSES: tuple[Status, ...] = (Status.DONE, Status.CANCELED)

#: The only place that says which status may follow which.
TRANSITIONS: Mapping[Status, tuple[Status, ...]] = {
    Status.ACTIVE: (Status.MITIGATED, Status.CANCELED),
    Status.MITIGATED: (Status.RESOLVED, Status.ACTIVE, Status.CANCELED),
    Status.RESOLVED: (Status.POSTMORTEM, Status.ACTIVE, Status.CANCELED),
    Status.POSTMORTEM: (Status.DONE, Status.CANCELED),
    Status.DONE: (Status.ACTIVE,),
    Status.CANCELED: (Status.ACTIVE,),
}

#: Statuses that need a reason after them, so the timeline says why.
NEEDS_REASON: tuple[Status, ...] = (Status.CANCELED,)

#: Statuses whose arrival starts a transcript dump.
DUMP_STATUSES: frozenset[Status] = frozenset({Status.MITIGATED, Status.RESOLVED, Status.POSTMORTEM})

#: The longest title we accept. Slack's channel name is cut far shorter (see `naming`);
#: the title itself goes into the page, the topic and the announcement.
MAX_TITLE = 500


class ArtifactKind(StrEnum):
    """What an `Artifact` row records, as stored in `Artifact.kind`."""

    SLACK_CHANNEL = "slack_channel"
    INTRO_MESSAGE = "intro_message"
    NOTION_POSTMORTEM = "notion_postmortem"
    BOOKMARK_POSTMORTEM = "bookmark_postmortem"
    ANNOUNCEMENT = "announcement"
    AI_SUMMARY = "ai_summary"
    #: The page's "Slack transcript" heading block, found once and remembered.
    TRANSCRIPT_HEADING = "transcript_heading"
    #: A dump's progress message in the channel, kept until the dump succeeds.
    TRANSCRIPT_PROGRESS = "transcript_progress"
    #: The channel's history has been read once from its creation into the store.
    HISTORY_READ = "history_read"
    #: The channel message that says Notion refuses the transcript's writes, said once.
    TRANSCRIPT_REFUSAL = "transcript_refusal"


#: What one `ensure_*` step did: found it, made it, adopted an earlier attempt's, or
#: re-added one someone removed (the bookmark).
Outcome = Literal["existing", "created", "adopted", "re-added"]

#: How `/incident repair` words each outcome.
OUTCOME_WORDS: Mapping[Outcome, str] = {
    "existing": "ok",
    "created": "created",
    "adopted": "recovered",
    "re-added": "re-added",
}


def parse_status(raw: str) -> Status | None:
    """`" Mitigated "` -> `Status.MITIGATED`; None for a word that is no status."""
    try:
        return Status(raw.strip().lower())
    except ValueError:
        return None


def parse_severity(raw: str) -> Severity | None:
    """`"p1"` -> `Severity.P1`; None for anything else."""
    try:
        return Severity(raw.strip().upper())
    except ValueError:
        return None
