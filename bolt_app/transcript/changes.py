"""Edits and deletions reach the page within `TRANSCRIPT_SYNC_SECONDS`, without Slack reads.

Capture stores every edit and deletion of an incident channel's messages. For a message
already in the page, the block that holds its line is rewritten in place (PATCH): never
deleted and made again, since a deleted block's capacity is never given back. A deleted
message's line becomes "(message deleted)", so its text is gone from the page as it is
from the store. Each row remembers the version the page shows (`synced_event_ts`), so a
change is written once; one that fails stays due and the next sync or dump writes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bolt_app.adapters.notion import NotionGateway
from bolt_app.core.jobs import Jobs
from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block, RichText
from bolt_app.transcript import render
from storage import Incident, LockTimeout, SlackMessage, Store

log = logging.getLogger(__name__)

#: `synced_event_ts` of a message whose deletion the page shows.
DELETED = "deleted"

#: Renders one line: (channel, message as Slack shapes it) -> rich text.
LineRenderer = Callable[[str, dict[str, Any]], list[RichText]]


class ChangeSync:
    """Rewrites the lines of edited and deleted messages; one run per incident at a time."""

    def __init__(
        self,
        *,
        store: Store,
        notion: NotionGateway,
        line: LineRenderer,
        lock_name: Callable[[int], str],
        jobs: Jobs | None,
        interval: float,
        on_due: Callable[[Incident], object] | None = None,
        before: Callable[[Incident], object] | None = None,
        after: Callable[[Incident], object] | None = None,
    ) -> None:
        self.store = store
        #: What a due sync runs, under the incident's transcript lock (default: `sync`).
        self.on_due = on_due or self.sync
        #: What it runs first, before that lock (what may wait for other locks).
        self.before = before
        #: What it runs once it let go of the lock (a dump asked for meanwhile).
        self.after = after
        self.notion = notion
        self.line = line
        self.lock_name = lock_name
        self.jobs = jobs
        self.interval = interval
        self._pending: dict[int, threading.Timer] = {}
        self._lock = threading.Lock()

    # -- when -----------------------------------------------------------------------------

    def soon(self, incident: Incident) -> None:
        """Sync `incident` within the interval; changes in between share one sync."""
        if self.interval <= 0 or self.jobs is None:
            return  # only dumps write (they end with a sync)
        incident_id = int(incident.id)
        with self._lock:
            if incident_id in self._pending:
                return
            timer = threading.Timer(self.interval, self._due, args=(incident,))
            timer.daemon = True
            self._pending[incident_id] = timer
        timer.start()

    def _due(self, incident: Incident) -> None:
        with self._lock:
            self._pending.pop(int(incident.id), None)
        jobs = self.jobs
        if jobs is None:
            return
        try:
            jobs.submit(lambda: self._run(incident), _log_failure)
        except RuntimeError:  # the pool is shutting down; the next dump syncs
            log.info("transcript changes of incident %s left for the next dump", incident.id)

    def _run(self, incident: Incident) -> None:
        if self.before is not None:
            self.before(incident)
        try:
            with self.store.lock(self.lock_name(int(incident.id)), timeout=0):
                self.on_due(incident)
        except LockTimeout:  # a dump holds the transcript; look again after it
            self.soon(incident)
            return
        if self.after is not None:
            self.after(incident)

    # -- what -----------------------------------------------------------------------------

    def sync(self, incident: Incident) -> int:
        """Rewrite every line whose message changed since the page last showed it.

        The caller holds the incident's transcript lock. Returns how many changed.
        """
        incident_id = int(incident.id)
        entries = {
            ts: (block, thread) for ts, block, thread in self.store.transcript_rows(incident_id)
        }
        due = [
            row
            for row in self.store.captured_messages(incident_id)
            if row.ts in entries and _stale(row)
        ]
        if not due:
            return 0
        channel = str(incident.channel_id or "")
        by_block: dict[str, list[SlackMessage]] = {}
        for row in due:
            by_block.setdefault(entries[row.ts][0], []).append(row)
        for block_id, rows in by_block.items():
            top = {r.ts: r for r in rows if entries[r.ts][1] is None}
            replies = {r.ts: r for r in rows if entries[r.ts][1] is not None}
            if top:
                self._rewrite(self.notion.retrieve_block(block_id), channel, top)
            if replies:
                for child in self.notion.list_children(block_id):
                    here = {ts: replies[ts] for ts in render.linked_ts_all(child) if ts in replies}
                    if here:
                        self._rewrite(child, channel, here)
        self.store.mark_synced(
            incident_id, {r.ts: DELETED if r.deleted else r.event_ts for r in due}
        )
        log.info("rewrote %d changed message(s) of incident %s", len(due), incident_id)
        return len(due)

    def _rewrite(self, block: Block, channel: str, rows: dict[str, SlackMessage]) -> None:
        rich = [nb.request_item(item) for item in nb.rich_text_of(block)]
        starts = render.line_starts(rich)
        out: list[RichText] = list(rich[: starts[0][0]]) if starts else list(rich)
        for index, (start, ts) in enumerate(starts):
            end = starts[index + 1][0] if index + 1 < len(starts) else len(rich)
            if ts not in rows:
                out += rich[start:end]
                continue
            line = self.line(channel, as_message(rows[ts]))
            room = nb.MAX_RICH_TEXT_ITEMS - (len(out) + len(rich) - end) - 1
            if len(line) > room:
                line = [*line[: max(room - 1, 2)], nb.text("…")]
            out += line + ([nb.text("\n")] if end < len(rich) else [])
        kind = str(block.get("type", "paragraph"))
        self.notion.update_block(str(block["id"]), {kind: {"rich_text": out}})


def _stale(row: SlackMessage) -> bool:
    """Whether the page shows an older version of the message than the store."""
    if row.deleted:
        return row.synced_event_ts != DELETED
    shown = row.synced_event_ts if row.synced_event_ts not in (None, DELETED) else row.ts
    return Decimal(row.event_ts) > Decimal(str(shown))


def as_message(row: SlackMessage) -> dict[str, Any]:
    """A captured row in the shape of a Slack message, for the line renderer."""
    if row.deleted:
        return {"ts": row.ts, "thread_ts": row.thread_ts, "subtype": "tombstone"}
    extra = dict(row.extra or {})
    bot_name = extra.pop("bot_name", None)
    message: dict[str, Any] = {
        "ts": row.ts,
        "text": row.text or "",
        **{
            k: v
            for k, v in (
                ("thread_ts", row.thread_ts),
                ("user", row.user),
                ("bot_id", row.bot_id),
                ("subtype", row.subtype),
            )
            if v
        },
        **extra,
    }
    if bot_name:
        message["bot_profile"] = {"name": bot_name}
    return message


def _log_failure(error: BaseException) -> None:
    log.warning(
        "transcript change sync failed (the next sync or dump retries): %s",
        getattr(error, "user_message", repr(error)),
    )
