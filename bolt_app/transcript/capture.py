"""Capture: every message event of an incident channel goes into the store, once.

Slack retries an unacked event up to three times with the same `event_id`, and events
may arrive twice or out of order (a reply before its parent, a deletion before the
message). The store applies each event id once and keeps one row per `(channel, ts)`,
so this module only turns Slack's event shapes into those calls:

* a new message, a reply (`thread_ts` ≠ `ts`), a `thread_broadcast`, a file share, an
  app's `bot_message`: the message itself;
* `message_changed`: its `message`, unless that is a `tombstone` (a thread parent that
  was deleted while it had replies), which is a deletion;
* `message_deleted`: its `deleted_ts` becomes a tombstone, text and extras gone.

Messages of any other channel, #general included, are never stored, and neither are
our own bot's (its state changes belong to the timeline). No message text is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from bolt_app.adapters.slack import SlackGateway
from bolt_app.core.clock import Clock
from bolt_app.core.domain import ArtifactKind
from storage import Incident, SlackMessage, Store

log = logging.getLogger(__name__)

#: How far back a gap fill reads. "new": history after the newest captured message, and
#: the threads there. "threads": also the replies of every older thread the store knows,
#: after their newest captured reply. "full": the whole history, and the replies of every
#: thread whose `latest_reply` moved; the only read that finds a first reply under an old
#: message when no event told us of it.
FillReach = Literal["new", "threads", "full"]

#: Messages a gap fill stores per transaction.
FILL_BATCH = 500

#: Message fields kept beside the text, for rendering what an app or a forward says.
EXTRA_FIELDS = ("attachments", "blocks", "files", "username", "app_id")


class CaptureService:
    """Stores the message events of incident channels as they arrive."""

    def __init__(
        self,
        *,
        store: Store,
        in_channel: Callable[[str], Incident | None],
        own_ids: Callable[[], set[str]],
        clock: Clock,
        changed: Callable[[Incident], None] = lambda _incident: None,
    ) -> None:
        self.store = store
        self.in_channel = in_channel
        self.own_ids = own_ids
        self.clock = clock
        #: Called after a message, an edit or a deletion is stored, so the page follows.
        self.changed = changed

    def record(self, event: dict[str, Any], event_id: str | None) -> bool:
        """Store one `message` event; False if it was ignored or applied before."""
        channel = str(event.get("channel") or "")
        incident = self.in_channel(channel) if channel else None
        if incident is None:
            return False
        subtype = event.get("subtype")
        event_ts = str(event.get("event_ts") or event.get("ts") or "0")
        if subtype == "message_deleted":
            previous = event.get("previous_message") or {}
            return self._changed(
                incident,
                self._delete(
                    incident,
                    channel,
                    str(event.get("deleted_ts") or ""),
                    previous.get("thread_ts"),
                    event_id,
                    event_ts,
                ),
            )
        message = (event.get("message") or {}) if subtype == "message_changed" else event
        if not message.get("ts") or self._is_ours(message):
            return False
        applied = self._store(incident, channel, message, event_id, event_ts)
        if applied:
            log.debug(
                "captured %s of incident %s", message.get("subtype") or "a message", incident.id
            )
        return self._changed(incident, applied)

    def _store(
        self,
        incident: Incident,
        channel: str,
        message: dict[str, Any],
        event_id: str | None,
        event_ts: str,
    ) -> bool:
        """One message as it now is: a tombstone is a deletion, anything else its row."""
        if message.get("subtype") == "tombstone":
            return self._delete(
                incident, channel, str(message["ts"]), message.get("thread_ts"), event_id, event_ts
            )
        return self.store.capture_message(
            event_id=event_id,
            incident_id=int(incident.id),
            channel_id=channel,
            ts=str(message["ts"]),
            fields=message_fields(message),
            event_ts=event_ts,
            now=self.clock(),
        )

    def fill_gaps(self, incident: Incident, slack: SlackGateway, reach: FillReach = "new") -> int:
        """Capture what Slack has that the store lacks; how many messages it applied.

        `reach` says how far back to look (see `FillReach`); until one read from the
        channel's creation has completed (`ArtifactKind.HISTORY_READ`) it is "full".
        Replies are read only for threads whose `latest_reply` is newer than their newest
        captured reply, plus, with "threads", every older thread the store knows. It runs
        at an incident's first sync, after every (re)connection and in dumps; never in a
        live sync in steady state.
        """
        channel = str(incident.channel_id or "")
        if not channel:
            return 0
        incident_id = int(incident.id)
        rows = self.store.captured_messages(incident_id)
        if self.store.get_artifact(incident_id, ArtifactKind.HISTORY_READ) is None:
            reach = "full"
        from_start = reach == "full"
        tops = [r.ts for r in rows if r.thread_ts in (None, r.ts)]
        newest = max(tops, key=float) if tops and not from_start else None
        newest_reply: dict[str, str] = {}
        for row in rows:
            is_reply = row.thread_ts is not None and row.thread_ts != row.ts
            if is_reply and float(row.ts) > float(newest_reply.get(str(row.thread_ts), "0")):
                newest_reply[str(row.thread_ts)] = row.ts
        fill = _Fill(self, incident, channel)
        read: set[str] = set()
        seen: set[str] = set()  # top-level messages Slack still has
        for message in slack.history(channel, oldest=newest):
            fill.add(message)
            ts, latest = str(message.get("ts") or ""), message.get("latest_reply")
            seen.add(ts)
            if ts and message.get("reply_count") and latest is not None:
                read.add(ts)
                after = newest_reply.get(ts)
                if after is None or float(str(latest)) > float(after):
                    for reply in slack.replies(channel, ts, oldest=after):
                        fill.add(reply)
        if reach == "threads":
            for thread_ts in sorted(set(newest_reply) - read, key=float):
                for reply in slack.replies(channel, thread_ts, oldest=newest_reply[thread_ts]):
                    fill.add(reply)
        count = fill.flush()
        if from_start and seen:
            count += self._gone(incident, channel, rows, seen)
        if from_start:
            self.store.save_artifact(
                incident_id, ArtifactKind.HISTORY_READ, "complete", None, self.clock()
            )
        if count:
            log.info("gap fill captured %d message(s) of incident %s", count, incident.id)
        return count

    def _gone(
        self, incident: Incident, channel: str, rows: list[SlackMessage], seen: set[str]
    ) -> int:
        """After a whole-history read: a captured top-level message Slack no longer has
        was deleted while no bot listened, so its text leaves the store (and the page).

        Only messages between the oldest and the newest the read returned: one posted
        while it ran may not have been listed yet, and a workspace's retention hides the
        oldest ones (Slack's free plan shows 90 days), which were not deleted by anyone.
        """
        oldest, newest = min(seen, key=float), max(seen, key=float)
        gone = [
            row
            for row in rows
            if row.thread_ts in (None, row.ts)
            and not row.deleted
            and row.ts not in seen
            and float(oldest) < float(row.ts) < float(newest)
        ]
        for row in gone:
            self._delete(incident, channel, row.ts, None, None, f"{time.time():.6f}")
        if gone:
            log.info("gap fill found %d deleted message(s) of incident %s", len(gone), incident.id)
        return len(gone)

    def _changed(self, incident: Incident, applied: bool) -> bool:
        if applied:
            self.changed(incident)
        return applied

    def _delete(
        self,
        incident: Incident,
        channel: str,
        ts: str,
        thread_ts: Any,
        event_id: str | None,
        event_ts: str,
    ) -> bool:
        if not ts:
            return False
        return self.store.capture_deletion(
            event_id=event_id,
            incident_id=int(incident.id),
            channel_id=channel,
            ts=ts,
            thread_ts=str(thread_ts) if thread_ts else None,
            event_ts=event_ts,
            now=self.clock(),
        )

    def _is_ours(self, message: dict[str, Any]) -> bool:
        ours = self.own_ids()
        return bool({message.get("user"), message.get("bot_id")} & ours)


class _Fill:
    """Messages read from Slack, stored `FILL_BATCH` at a time (one transaction each)."""

    def __init__(self, capture: CaptureService, incident: Incident, channel: str) -> None:
        self.capture = capture
        self.incident = incident
        self.channel = channel
        self.batch: list[tuple[str, dict[str, Any], str]] = []
        self.count = 0

    def add(self, message: dict[str, Any]) -> None:
        if not message.get("ts") or self.capture._is_ours(message):
            return
        if message.get("subtype") == "tombstone":  # a deleted parent: a deletion, in order
            self.flush()
            ts = str(message["ts"])
            self.count += int(
                self.capture._delete(
                    self.incident, self.channel, ts, message.get("thread_ts"), None, ts
                )
            )
            return
        edited = (message.get("edited") or {}).get("ts")
        version = str(edited or message["ts"])
        self.batch.append((str(message["ts"]), message_fields(message), version))
        if len(self.batch) >= FILL_BATCH:
            self.flush()

    def flush(self) -> int:
        """Store what is buffered; how many messages were new or newer, in all."""
        if self.batch:
            self.count += self.capture.store.capture_messages(
                incident_id=int(self.incident.id),
                channel_id=self.channel,
                messages=self.batch,
                now=self.capture.clock(),
            )
            self.batch = []
        return self.count


def message_fields(message: dict[str, Any]) -> dict[str, Any]:
    """The columns of one captured message, from Slack's message object."""
    extra = {key: message[key] for key in EXTRA_FIELDS if message.get(key)}
    profile = message.get("bot_profile") or {}
    if profile.get("name"):
        extra["bot_name"] = profile["name"]
    thread = message.get("thread_ts")
    return {
        "thread_ts": str(thread) if thread else None,
        "user": message.get("user"),
        "bot_id": message.get("bot_id"),
        "subtype": message.get("subtype"),
        "text": str(message.get("text") or ""),
        "extra": extra or None,
    }
