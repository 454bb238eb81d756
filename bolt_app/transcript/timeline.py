"""The page's "Timeline" section, written from `IncidentEvent` rows.

Events are written once each: a written event is recorded as a `TranscriptEntry` keyed
`event:<id>`, the same bookkeeping as transcript messages, so a dump with no new events
sends nothing. Lines are kept in time order: a new event goes right after the written
event that precedes it (usually the last line of the section, which ends at the next
heading of the same or a higher level).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bolt_app.adapters.notion import NotionGateway
from bolt_app.core.clock import Clock
from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block, RichText
from bolt_app.transcript.render import UserName, ts_datetime
from storage import Incident, IncidentEvent, Store

log = logging.getLogger(__name__)

TIMELINE_HEADING = "Timeline"

#: Event kinds that are bookkeeping, not history, and stay out of the page.
HIDDEN_KINDS = frozenset({"dumped"})


#: TranscriptEntry keys of written events start with this.
EVENT_PREFIX = "event:"


def event_key(event: IncidentEvent) -> str:
    return f"{EVENT_PREFIX}{event.id}"


def record_pin(
    store: Store,
    incident: Incident,
    *,
    user: str | None,
    message: dict[str, Any],
    permalink: str,
    clock: Clock,
) -> IncidentEvent | None:
    """A `pinned` event at the pinned message's own time, with its permalink; None when
    this message was pinned before (a redelivered `pin_added`, or a pin again after an
    unpin): one line per pinned message."""
    ts = str(message.get("ts") or "")
    at = ts_datetime(ts) if ts else clock()
    data = {
        "ts": ts,
        "text": str(message.get("text") or "")[:500],
        "permalink": permalink,
        "author": message.get("user"),
    }
    key = f"pin:{incident.id}:{ts}"
    return store.add_event_once(int(incident.id), "pinned", user, data, at, key=key)


def describe(event: IncidentEvent, user_name: UserName) -> list[RichText]:
    """One timeline line: `YYYY-MM-DD HH:MM UTC · what happened`."""
    data: dict[str, Any] = dict(event.data or {})
    who = user_name(str(event.actor)) if event.actor else "Firebreak"
    when = nb.text(event.at.strftime("%Y-%m-%d %H:%M UTC") + " · ")
    kind = str(event.kind)
    if kind == "declared":
        return [when, nb.text(f"Declared by {who}: {data.get('title', '')}")]
    if kind == "pinned":
        author = user_name(str(data["author"])) if data.get("author") else "someone"
        link = str(data.get("permalink") or "") or None
        return [
            when,
            nb.text(f"{who} pinned a message by {author}: "),
            nb.text(str(data.get("text") or "message"), link=link),
        ]
    if kind == "commander_changed":
        return [
            when,
            nb.text(
                f"Commander: {user_name(str(data.get('from')))} → "
                f"{user_name(str(data.get('to')))} (by {who})"
            ),
        ]
    if kind.endswith("_changed"):
        what = kind.removesuffix("_changed").capitalize()
        reason = f": {data['reason']}" if data.get("reason") else ""
        return [when, nb.text(f"{what}: {data.get('from')} → {data.get('to')} (by {who}){reason}")]
    return [when, nb.text(f"{kind.replace('_', ' ').capitalize()} by {who}")]


def find_section(top: Sequence[Block]) -> tuple[int, int] | None:
    """(heading index, index of the section's last block) of "Timeline", or None."""
    for index, block in enumerate(top):
        kind = str(block.get("type"))
        if kind in nb.HEADING_TYPES and nb.plain_text(block).strip() == TIMELINE_HEADING:
            level = int(kind[-1])
            end = index
            for later in range(index + 1, len(top)):
                later_kind = str(top[later].get("type"))
                if later_kind in nb.HEADING_TYPES and int(later_kind[-1]) <= level:
                    break
                end = later
            return index, end
    return None


class Timeline:
    """Appends the events not yet written under the page's Timeline heading."""

    def __init__(self, store: Store, notion: NotionGateway, clock: Clock) -> None:
        self.store = store
        self.notion = notion
        self.clock = clock

    def pending(self, incident: Incident, written: set[str]) -> list[IncidentEvent]:
        return [
            e
            for e in self.store.events(int(incident.id))
            if str(e.kind) not in HIDDEN_KINDS and event_key(e) not in written
        ]

    def adopt(
        self, incident: Incident, top: Sequence[Block], written: set[str], user_name: UserName
    ) -> int:
        """Record pending events an unanswered append already wrote (matched by their text).

        Timeline lines have no permalink to carry an id, but each is rendered from its
        event alone, so the same event renders to the same line.
        """
        section = find_section(top)
        if section is None:
            return 0
        lines = {
            nb.plain_text(b): str(b["id"])
            for b in top[section[0] + 1 : section[1] + 1]
            if b.get("type") == "bulleted_list_item"
        }
        found = []
        for event in self.pending(incident, written):
            text = "".join(nb.item_plain_text(i) for i in describe(event, user_name))
            if text in lines:
                found.append((event_key(event), lines[text], None))
        self.store.save_transcript_entries(int(incident.id), found, self.clock())
        return len(found)

    def sync(
        self,
        incident: Incident,
        page_id: str,
        top: Sequence[Block],
        written: set[str],
        user_name: UserName,
    ) -> int:
        """Write the pending events in time order; returns how many. None pending: no request.

        A pending event goes right after the latest written event that precedes it, so a
        message pinned late still lands at its own time. Usually every pending event is
        newer than all written ones: then it is one append at the end of the section.
        """
        events = self.pending(incident, written)
        if not events:
            return 0
        section = find_section(top)
        if section is None:
            blocks = [nb.heading(2, [nb.text(TIMELINE_HEADING)])]
            blocks += [nb.bulleted(describe(e, user_name)) for e in events]
            self._append(incident, page_id, blocks, None, events)
        else:
            for anchor, group in self._groups(incident, top, section, set(map(event_key, events))):
                blocks = [nb.bulleted(describe(e, user_name)) for e in group]
                self._append(incident, page_id, blocks, anchor, group)
        log.info("timeline of incident %s: %d new event(s)", incident.id, len(events))
        return len(events)

    def _groups(
        self, incident: Incident, top: Sequence[Block], section: tuple[int, int], pending: set[str]
    ) -> list[tuple[str, list[IncidentEvent]]]:
        """Runs of consecutive pending events (in time order), each with the block to
        append it after: the written event just before the run, or where the lines start."""
        recorded = self.store.transcript_ts(int(incident.id))
        events = [e for e in self.store.events(int(incident.id)) if str(e.kind) not in HIDDEN_KINDS]
        anchor = _start_anchor(
            top, section, {recorded[k] for k in recorded if k.startswith(EVENT_PREFIX)}
        )
        groups: list[tuple[str, list[IncidentEvent]]] = []
        for event in events:
            key = event_key(event)
            if key in pending:
                if not groups or groups[-1][0] != anchor:
                    groups.append((anchor, []))
                groups[-1][1].append(event)
            elif key in recorded:
                anchor = recorded[key]
        return groups

    def _append(
        self,
        incident: Incident,
        page_id: str,
        blocks: list[Block],
        anchor: str | None,
        events: Sequence[IncidentEvent],
    ) -> None:
        """One append, marked in flight, then its events recorded (like transcript batches)."""
        self.store.begin_transcript_write(int(incident.id), page_id, self.clock())
        ids = self.notion.append_blocks(page_id, blocks, after=anchor)
        ids = ids[len(ids) - len(events) :]
        self.store.save_transcript_entries(
            int(incident.id),
            [(event_key(e), block_id, None) for e, block_id in zip(events, ids, strict=True)],
            self.clock(),
        )
        self.store.end_transcript_write(int(incident.id), self.clock())


def _start_anchor(top: Sequence[Block], section: tuple[int, int], event_blocks: set[str]) -> str:
    """The block after which the section's event lines start: the one before the first
    written line, or the section's last block when none is written yet."""
    for index in range(section[0] + 1, section[1] + 1):
        if str(top[index]["id"]) in event_blocks:
            return str(top[index - 1]["id"])
    return str(top[section[1]]["id"])
