"""dumpslack: the channel's discussion, written into the postmortem page.

See "The transcript" in docs/ARCHITECTURE.md.

The store is the transcript's source of truth (capture puts every message event of the
channel there); Notion only shows it. A sync renders the captured messages not yet in
the page and appends them under the page's toggleable "Slack transcript" heading, packed
many lines to a block, at most 100 top-level blocks per request with thread replies as
their parent's children. A live sync runs within TRANSCRIPT_SYNC_SECONDS of a change; a
dump is a sync that first fills the store's gaps from Slack (`_fill`). Each batch's
blocks are recorded in `TranscriptEntry` right after its append, so a sync with nothing
new sends no write to Notion.

Exactly-once across crashes: `TranscriptWrite` is set before every append and cleared
after its entries are saved. A dump that finds it still set waits until that append can
no longer land (its start plus the Notion timeout), lists the blocks under its parent
and adopts those whose permalink ts is not yet recorded, before writing anything.

One dumper per incident (`store.lock("transcript:<id>")`). Requests are rows
(`DumpRequest`) written before the trigger is acked; a dumper keeps going until no
request is pending, so a trigger that finds the lock taken is never lost, and the
reconciler finishes requests a dead process left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bolt_app.adapters.notion import NotionError, NotionGateway, plan_chunks
from bolt_app.adapters.slack import SlackGateway
from bolt_app.core import metrics
from bolt_app.core.clock import Clock
from bolt_app.core.domain import DUMP_STATUSES, ArtifactKind
from bolt_app.core.errors import FirebreakError, StillWorking
from bolt_app.core.jobs import Jobs
from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block, RichText
from bolt_app.formats.template import TRANSCRIPT_HEADING, is_transcript_heading
from bolt_app.incidents.artifacts import wait_until_settled
from bolt_app.incidents.postmortem import TRANSCRIPT_LOCK, PageAway, PostmortemService
from bolt_app.transcript import render
from bolt_app.transcript.capture import FillReach
from bolt_app.transcript.changes import ChangeSync, as_message
from bolt_app.transcript.summary import DraftSummary
from bolt_app.transcript.timeline import EVENT_PREFIX, Timeline, record_pin
from storage import Incident, LockTimeout, SlackMessage, Store

log = logging.getLogger(__name__)

#: Subtypes that are people (or other apps) talking; anything else is housekeeping.
KEPT_SUBTYPES = frozenset({None, "file_share", "me_message", "thread_broadcast", "bot_message"})
#: Thread parents with no words of their own, kept for their replies: a huddle's thread,
#: and a parent deleted while it had replies.
THREAD_PARENT_SUBTYPES = frozenset({"huddle_thread", "tombstone"})
#: Artifact kind of the transcript heading's block id (to notice it was recreated).
HEADING_KIND = ArtifactKind.TRANSCRIPT_HEADING
#: Artifact kind of a big dump's progress message, kept until that dump succeeds.
PROGRESS_KIND = ArtifactKind.TRANSCRIPT_PROGRESS
#: Lock name prefix; one dumper per incident.
LOCK_PREFIX = TRANSCRIPT_LOCK

#: A dump of more new messages than this shows its progress in the channel.
PROGRESS_THRESHOLD = 200
#: Seconds between progress edits.
PROGRESS_INTERVAL = 2.0

#: Notion's words quoted in the channel are cut at this many characters.
MAX_REFUSAL_WORDS = 300
#: Artifact kind of the channel message that says Notion refuses the transcript.
REFUSAL_KIND = ArtifactKind.TRANSCRIPT_REFUSAL

BUSY_TEXT = "A dump is already running; new messages will be included."


class Progress(Protocol):
    """Where a dump reports how far it got (a Slack message, or nowhere)."""

    def start(self, total: int) -> None: ...
    def advance(self, done: int, total: int) -> None: ...
    def finish(self, written: int, url: str, refused: Sequence[str] = ()) -> None: ...
    def fail(self, error: BaseException) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, done: int, total: int) -> None:
        pass

    def finish(self, written: int, url: str, refused: Sequence[str] = ()) -> None:
        pass

    def fail(self, error: BaseException) -> None:
        pass


class ChannelProgress:
    """One channel message for a big dump, edited with `chat.update` as it goes.

    Only dumps of more than PROGRESS_THRESHOLD new messages post one; edits are at most
    one per PROGRESS_INTERVAL seconds (chat.update is rate limited too), plus the last.
    The message is recorded as an artifact (PROGRESS_KIND) until its dump succeeds, so a
    dump that resumes after a failure or a crash, even a quiet one (`post_new=False`, the
    reconciler's), carries on editing the same message instead of leaving it stale.
    """

    def __init__(
        self,
        slack: SlackGateway,
        store: Store,
        incident: Incident,
        clock: Clock,
        *,
        post_new: bool = True,
        say_failure: bool = False,
    ) -> None:
        self.slack = slack
        #: Post a failure even without a progress message: a dump nobody asked for by
        #: hand (a status change's) has no one else to tell.
        self.say_failure = say_failure
        self.store = store
        self.incident_id = int(incident.id)
        self.channel = str(incident.channel_id or "")
        self.clock = clock
        self.post_new = post_new
        self.ts: str | None = None
        self._last_edit = 0.0

    def start(self, total: int) -> None:
        if self.ts is None:
            earlier = self.store.get_artifact(self.incident_id, PROGRESS_KIND)
            if earlier is not None:
                self.ts = str(earlier.external_id)
                self._edit(progress_text(0, total))
            elif total > PROGRESS_THRESHOLD and self.post_new:
                self.ts = self.slack.post_message(self.channel, progress_text(0, total))
                self.store.save_artifact(
                    self.incident_id, PROGRESS_KIND, self.ts, None, self.clock()
                )
                self._last_edit = time.monotonic()

    def advance(self, done: int, total: int) -> None:
        if time.monotonic() - self._last_edit >= PROGRESS_INTERVAL:
            self._edit(progress_text(done, total))

    def finish(self, written: int, url: str, refused: Sequence[str] = ()) -> None:
        if self.ts is not None:
            self._edit(done_text(written, url, refused))
            self.store.delete_artifact(self.incident_id, PROGRESS_KIND)
            self.ts = None

    def fail(self, error: BaseException) -> None:
        # A refusal has its own channel message (`_say_refused`), said once.
        if (
            self.ts is None
            and self.say_failure
            and self.channel
            and not isinstance(error, TranscriptRefused)
        ):
            self.slack.post_message(self.channel, failure_text(error))
        self._edit(failure_text(error))

    def _edit(self, text: str) -> None:
        if self.ts is not None:
            self.slack.update_message(self.channel, self.ts, text)
            self._last_edit = time.monotonic()


def progress_text(done: int, total: int) -> str:
    return f"Writing transcript… {done:,} / {total:,} messages"


def done_text(written: int, url: str, refused: Sequence[str] = ()) -> str:
    noun = "message" if written == 1 else "messages"
    link = f" · <{url}|Postmortem>" if url else ""
    text = f"Transcript up to date: {written:,} new {noun}{link}"
    if refused:
        count = len(refused)
        text += (
            f". Notion refused {count} block{'s' if count > 1 else ''}, written as plain text "
            f"instead (Notion said: {refused[0]})"
        )
    return text


def failure_text(error: BaseException) -> str:
    reason = getattr(error, "user_message", None) or "an unexpected error (see the bot's log)"
    return (
        f"Transcript stopped: {reason}. What was written is kept; "
        "`/incident dumpslack` resumes where it stopped."
    )


class TranscriptRefused(FirebreakError):
    """Notion refuses the transcript's writes whatever they hold: a 4xx other than 409 or
    429 even for a block written as plain text, such as the workspace's block limit.
    Trying again won't help until someone acts, so the channel is told once."""

    def __init__(self, error: NotionError) -> None:
        words = (error.detail or error.reason).strip()
        if len(words) > MAX_REFUSAL_WORDS:
            words = words[: MAX_REFUSAL_WORDS - 1] + "…"
        super().__init__(f"Notion refuses to add to the postmortem page (Notion said: {words})")


def _is_final(error: NotionError) -> bool:
    """A refusal that will not pass on its own: a 4xx other than 409 (a conflict) or 429."""
    return error.status is not None and 400 <= error.status < 500 and error.status not in (409, 429)


def refusal_text(error: TranscriptRefused) -> str:
    return (
        f"The transcript can't be written: {error.user_message}. Messages are kept in the "
        "store; once Notion accepts writes again the next sync or `/incident dumpslack` "
        "writes them."
    )


RESUMED_TEXT = "Notion accepts the transcript's writes again; the postmortem page is up to date."


class DumpBusy(FirebreakError):
    """Another worker is dumping this incident; it will include the new messages."""

    def __init__(self) -> None:
        super().__init__(BUSY_TEXT)


@dataclass
class DumpResult:
    written: int = 0
    events: int = 0
    url: str = ""
    #: Notion's words for each block it refused (those messages were written as text).
    refused: tuple[str, ...] = ()


@dataclass
class _Unit:
    """One top-level block to append, and the entries it records.

    A block holds a date line, or consecutive top-level messages packed one per line
    (`keys`); the last of them may have a thread, whose replies (`replies`) are packed
    the same way as the block's children.
    """

    keys: list[str]
    block: Block
    replies: list[str] = field(default_factory=list)

    @property
    def thread(self) -> str | None:
        return self.keys[-1] if self.replies else None

    @property
    def messages(self) -> int:
        return (0 if self.keys[0].startswith("day:") else len(self.keys)) + len(self.replies)


@dataclass
class _Tail:
    """The transcript's last block, as this process wrote it: a packed group of lines
    with no thread under it. The next sync's first lines extend it (one PATCH) instead of
    starting a new block, while it has room; a deleted block's capacity never comes back.

    Kept in memory only, and used only while the store agrees nothing changed it since:
    its lines are still the block's and still the newest top-level ones, and no line was
    rewritten since (`synced`, each line's `synced_event_ts`). Any doubt means a new block.
    """

    block_id: str
    keys: list[str]
    rich: list[RichText]
    synced: dict[str, str | None]


@dataclass
class _ThreadTail:
    """A thread's last reply paragraph, as this process wrote it (see `_Tail`): the
    thread's next replies extend it with one PATCH instead of adding a paragraph."""

    parent_block: str
    child_id: str
    keys: list[str]
    rich: list[RichText]
    synced: dict[str, str | None]


class _Group:
    """Consecutive top-level lines waiting to become one block (or a few, past 100 items).

    A group ends at a message with replies, a date line, or the end of the plan, so a
    thread's replies always sit right under their parent's line.
    """

    def __init__(self, units: list[_Unit]) -> None:
        self.units = units
        self.keys: list[list[str]] = []  # the keys of each line (a seeded one has several)
        self.lines: list[list[RichText]] = []

    def add(self, key: str, line: list[RichText]) -> None:
        self.keys.append([key])
        self.lines.append(line)

    def seed(self, tail: _Tail) -> None:
        """Start with the page's last block, so new lines extend it (see `_Tail`)."""
        self.keys.append(list(tail.keys))
        self.lines.append(list(tail.rich))

    def close(
        self,
        replies: Sequence[dict[str, Any]] = (),
        reply_lines: Sequence[list[RichText]] = (),
    ) -> None:
        if not self.keys:
            return
        packs = render.pack_lines(self.lines)
        sizes = _pack_sizes(self.lines)
        start = 0
        for index, (pack, size) in enumerate(zip(packs, sizes, strict=True)):
            keys = [key for line in self.keys[start : start + size] for key in line]
            start += size
            last = index == len(packs) - 1
            children = [nb.paragraph(p) for p in render.pack_lines(reply_lines)] if last else []
            block = nb.paragraph(pack, children or None)
            self.units.append(_Unit(keys, block, [str(r["ts"]) for r in replies] if last else []))
        self.keys, self.lines = [], []


def _pack_sizes(lines: Sequence[list[RichText]]) -> list[int]:
    """How many lines each paragraph of `render.pack_lines(lines)` holds."""
    sizes: list[int] = []
    used = 0
    for line in lines:
        if sizes and used + 1 + len(line) <= nb.MAX_RICH_TEXT_ITEMS:
            sizes[-1] += 1
            used += 1 + len(line)
        else:
            sizes.append(1)
            used = len(line)
    return sizes


class _PlanBuilder:
    """Turns messages, oldest first, into a `_Plan`: date lines, packed groups, late replies."""

    def __init__(
        self,
        recorded: dict[str, str],
        line: Callable[[dict[str, Any]], list[RichText]],
        tail: _Tail | None = None,
    ) -> None:
        self.recorded = recorded
        self.line = line
        self.units: list[_Unit] = []
        self.group = _Group(self.units)
        self.tail = tail
        if tail is not None:
            self.group.seed(tail)
        self.late_replies: dict[str, list[dict[str, Any]]] = {}
        self.days: set[str] = set()
        self.count = 0

    def late(self, ts: str, replies: list[dict[str, Any]]) -> None:
        """New replies to a message already written."""
        if replies:
            self.late_replies[ts] = replies
            self.count += len(replies)

    def message(self, message: dict[str, Any], replies: list[dict[str, Any]]) -> None:
        """A new top-level message, with its thread's replies (all new)."""
        ts = str(message["ts"])
        day = render.day_key(render.ts_datetime(ts).date())
        if day not in self.recorded and day not in self.days:
            self.days.add(day)
            self.group.close()
            self.units.append(_Unit([day], render.date_block(render.ts_datetime(ts).date())))
        self.group.add(ts, self.line(message))
        if replies:
            self.group.close(replies, [self.line(r) for r in replies])
        self.count += 1 + len(replies)

    def done(self) -> _Plan:
        self.group.close()
        return _Plan(self.units, self.late_replies, self.count, tail=self.tail)


@dataclass
class _Plan:
    units: list[_Unit]
    late: dict[str, list[dict[str, Any]]]  # parent ts -> its new replies
    messages: int
    #: ts -> event_ts of messages edited before they were first written: their line
    #: already shows that version, so `ChangeSync` needn't rewrite it.
    edited: dict[str, str] = field(default_factory=dict)
    #: The page's last block, which the first unit extends when its keys start with its.
    tail: _Tail | None = None
    #: The captured messages the plan was made from, by ts.
    captured: dict[str, SlackMessage] = field(default_factory=dict)


def _ignore(_text: str) -> None:
    """A hook-started dump has no one to answer; its progress message speaks for it."""


def _log_failure(error: BaseException) -> None:
    log.warning(
        "transcript dump failed (it stays requested; the reconciler retries): %s",
        getattr(error, "user_message", repr(error)),
    )


def _is_refusal(error: NotionError) -> bool:
    """Notion read the request and refused it (400): nothing of it was written."""
    return error.status == 400


def _is_kept(message: dict[str, Any], bot_user: str, bot_id: str | None) -> bool:
    """People's and other apps' messages, files and replies, and the parents of huddle
    threads and of threads whose parent was deleted; not joins, topics or our own
    messages (our state changes are on the timeline)."""
    if message.get("user") == bot_user or (bot_id and message.get("bot_id") == bot_id):
        return False
    subtype = message.get("subtype")
    if subtype in THREAD_PARENT_SUBTYPES:
        return bool(message.get("reply_count"))
    if subtype not in KEPT_SUBTYPES:
        return False
    return bool(message.get("user") or message.get("bot_id"))


class TranscriptService:
    def __init__(
        self,
        *,
        store: Store,
        slack: SlackGateway,
        notion: NotionGateway,
        postmortem: PostmortemService,
        clock: Clock,
        jobs: Jobs | None = None,
        summary: DraftSummary | None = None,
        sync_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.slack = slack
        self.notion = notion
        self.postmortem = postmortem
        self.clock = clock
        self.timeline = Timeline(store, notion, clock)
        #: The optional AI draft summary (None unless the LLM_* settings are set).
        self.summary = summary
        #: Edits and deletions of messages already in the page (see `changes`).
        self.changes = ChangeSync(
            store=store,
            notion=notion,
            line=self._line,
            lock_name=lambda incident_id: f"{LOCK_PREFIX}:{incident_id}",
            jobs=jobs,
            interval=sync_seconds,
            on_due=self._sync_live,
            before=lambda incident: self.ready(incident, live=True),
            after=self._dump_if_asked,
        )
        #: Fills the store from Slack's history (`CaptureService.fill_gaps`); set by wiring.
        self.fill_gaps: Callable[[Incident, FillReach], int] | None = None
        #: Incident -> the connection generation since which its capture is known whole.
        self._gap_free: dict[int, int] = {}
        #: Incident -> the page's last block as this process wrote it (see `_Tail`).
        self._tails: dict[int, _Tail] = {}
        #: (incident, thread ts) -> the thread's last reply paragraph (see `_ThreadTail`).
        self._thread_tails: dict[tuple[int, str], _ThreadTail] = {}
        #: Incident -> the connection generation in which an event of it was captured.
        self._heard: dict[int, int] = {}
        self._generation = 0
        self._gap_lock = threading.Lock()

    # -- requests and the one dumper -------------------------------------------------------

    # -- the live transcript ------------------------------------------------------------------

    def connected(self) -> None:
        """A new Socket Mode connection: events may have been missed, so every incident's
        next live sync fills the gap from Slack's history first."""
        with self._gap_lock:
            self._generation += 1

    def _dump_if_asked(self, incident: Incident) -> None:
        """A dump asked for while a live sync held the transcript was told "a dump is
        already running"; the live sync does not finish dump requests, so start it now."""
        if self.store.latest_pending_dump(int(incident.id)) is not None:
            self.start(incident, say=_ignore, on_error=_log_failure, announce=False)

    def _sync_live(self, incident: Incident) -> None:
        """Bring the page in line with the captured messages (the transcript lock is held)."""
        self._dump_once(incident, NoProgress(), live=True)

    def captured(self, incident: Incident) -> None:
        """Capture stored an event of `incident`'s channel: events reach this process, so
        after one gap fill its capture of the incident is whole; the page follows soon."""
        with self._gap_lock:
            self._heard[int(incident.id)] = self._generation
        self.changes.soon(incident)

    def _fill(self, incident: Incident, *, dump: bool) -> None:
        """Capture what Slack has and the store lacks, before a sync writes.

        A live sync reads Slack only when this process's capture may have a hole: the
        incident's first sync here, or its first since a (re)connection. That fill also
        re-reads the threads the store knows ("threads"), since a reply posted during the
        hole may be under any of them. A dump ("sync now") reads what is newer than the
        newest captured message ("new"); in steady state, while events arrive, that is all
        it reads. A dump without events seen in this connection (the app isn't subscribed,
        or they go to another process) reads the whole history ("full"), as only that
        finds a first reply under an old message.
        """
        if self.fill_gaps is None:
            return
        incident_id = int(incident.id)
        with self._gap_lock:
            generation = self._generation
            filled = self._gap_free.get(incident_id) == generation
            heard = self._heard.get(incident_id) == generation
        if filled and not dump:
            return
        reach: FillReach = "threads" if not dump else "new" if filled and heard else "full"
        self.fill_gaps(incident, reach)
        with self._gap_lock:
            self._gap_free[incident_id] = generation

    def written_count(self, incident: Incident) -> int:
        """How many messages (and timeline lines) are already in the page."""
        return len(self.store.transcript_ts(int(incident.id)))

    def record_pin(self, incident: Incident, user: str | None, message: dict[str, Any]) -> None:
        """Put a pinned message on the timeline, at the message's own time."""
        channel = str(incident.channel_id)
        ts = str(message["ts"])
        thread = message.get("thread_ts")
        permalink = message.get("permalink") or self.slack.permalink(
            channel, ts, str(thread) if thread else None
        )
        recorded = record_pin(
            self.store,
            incident,
            user=user,
            message=message,
            permalink=str(permalink),
            clock=self.clock,
        )
        if recorded is not None:
            log.info("pinned message %s recorded on incident %s's timeline", ts, incident.id)

    def request(self, incident: Incident, requested_by: str | None) -> int:
        """Record that a dump is wanted; call before acking the trigger."""
        return self.store.request_dump(int(incident.id), requested_by, self.clock())

    def on_status_change(self, incident: Incident, old: str, new: str) -> bool:
        """The lifecycle's hook: a change to mitigated, resolved or postmortem dumps.

        Records the request (so the dump survives this process), then dumps on the dumps
        pool; returns whether a dump was requested. Progress and failures of a big dump
        show in the channel's progress message.
        """
        if new not in DUMP_STATUSES or new == old:
            return False
        self.request(incident, None)
        self.start(incident, say=_ignore, on_error=_log_failure, say_failure=True)
        return True

    def start(
        self,
        incident: Incident,
        *,
        say: Callable[[str], None],
        on_error: Callable[[BaseException], None],
        announce: bool = True,
        say_failure: bool = False,
    ) -> None:
        """Dump on the dumps pool (inline without one); `say` gets the one-line outcome.

        `announce=False` (the reconciler's retries) posts no new progress message, so a
        dump that keeps failing doesn't post one every pass; it still edits the message
        of the dump it resumes.
        """
        progress = ChannelProgress(
            self.slack, self.store, incident, self.clock, post_new=announce, say_failure=say_failure
        )

        def run() -> None:
            try:
                result = self.dump(incident, progress)
            except DumpBusy as busy:
                say(busy.user_message)
                return
            say(done_text(result.written, result.url, result.refused))

        if self.jobs is None:
            try:
                run()
            except Exception as error:  # the same contract as Jobs.submit
                on_error(error)
        else:
            self.jobs.submit(run, on_error)

    def pending(self) -> list[int]:
        """Incidents with a dump request nobody finished (e.g. its process died)."""
        return self.store.incidents_with_pending_dumps()

    def ready(self, incident: Incident, *, live: bool = False) -> None:
        """The page (and, for a dump, the bookmark) exist: called before the transcript
        lock is taken, because making them waits for their own locks, and no thread may
        wait for a lock while it holds one ("Locks and the connection budget")."""
        page = self.postmortem.ensure_page(incident).artifact
        if live:  # a live sync costs no Slack call and no page read
            return
        where = self.postmortem.away(incident)
        if where is not None:  # a person put the page away: never write into it silently
            raise PageAway(where)
        try:
            self.postmortem.ensure_bookmark(incident, page)
        except FirebreakError as error:  # never blocks the transcript; reconcile retries it
            log.warning("bookmark for incident %s still failing: %s", incident.id, error)

    def dump(self, incident: Incident, progress: Progress | None = None) -> DumpResult:
        """Bring the transcript up to date, until no request is pending.

        Raises DumpBusy when another worker holds the incident's dump lock: that worker
        re-checks the pending requests before it lets go, so nothing is lost.
        """
        self.ready(incident)
        lock = f"{LOCK_PREFIX}:{incident.id}"
        result: DumpResult | None = None
        while True:
            try:
                with self.store.lock(lock, timeout=0.0):
                    result = self._drain(incident, progress or NoProgress(), result)
            except LockTimeout:
                if result is None:
                    raise DumpBusy() from None
                return result  # our dump is done; the new holder takes the newer requests
            # A trigger that came after our last look and found the lock taken.
            if self.store.latest_pending_dump(int(incident.id)) is None:
                return result

    def _drain(
        self, incident: Incident, progress: Progress, total: DumpResult | None
    ) -> DumpResult:
        """Dump once, then again while requests arrived during the dump."""
        incident_id = int(incident.id)
        total = total or DumpResult()
        while True:
            up_to = self.store.latest_pending_dump(incident_id)
            try:
                once = self._dump_once(incident, progress)
            except Exception as error:  # said in the progress message, then re-raised
                progress.fail(error)
                raise
            total = DumpResult(
                total.written + once.written,
                total.events + once.events,
                once.url,
                total.refused + once.refused,
            )
            if up_to is not None:
                self.store.finish_dump_requests(incident_id, up_to, self.clock())
            if self.store.latest_pending_dump(incident_id) is None:
                break
        progress.finish(total.written, total.url, total.refused)
        return total

    # -- one pass ----------------------------------------------------------------------------

    def _dump_once(
        self, incident: Incident, progress: Progress, *, live: bool = False
    ) -> DumpResult:
        """One pass; a refusal that won't pass on its own is said once in the channel."""
        incident = self.store.get_incident(int(incident.id)) or incident
        try:
            result = self._pass(incident, progress, live=live)
        except TranscriptRefused as refusal:
            self._say_refused(incident, refusal)
            raise
        except NotionError as error:
            if not _is_final(error):
                raise
            final = TranscriptRefused(error)
            self._say_refused(incident, final)
            raise final from error
        self._say_resumed(incident)
        return result

    def _say_refused(self, incident: Incident, refusal: TranscriptRefused) -> None:
        """Post the refusal in the channel the first time; later ones edit that message."""
        channel = str(incident.channel_id or "")
        said = self.store.get_artifact(int(incident.id), REFUSAL_KIND)
        if said is not None:
            self.slack.update_message(channel, str(said.external_id), refusal_text(refusal))
            return
        ts = self.slack.post_message(channel, refusal_text(refusal))
        self.store.save_artifact(int(incident.id), REFUSAL_KIND, ts, None, self.clock())
        log.warning("Notion refuses incident %s's transcript; said in its channel", incident.id)

    def _say_resumed(self, incident: Incident) -> None:
        said = self.store.get_artifact(int(incident.id), REFUSAL_KIND)
        if said is not None:
            channel = str(incident.channel_id or "")
            self.slack.update_message(channel, str(said.external_id), RESUMED_TEXT)
            self.store.delete_artifact(int(incident.id), REFUSAL_KIND)

    def _pass(self, incident: Incident, progress: Progress, *, live: bool) -> DumpResult:
        channel = str(incident.channel_id or "")
        if not channel:
            raise FirebreakError("The incident has no channel yet; try again in a moment.")
        self._fill(incident, dump=not live)
        # Made by `ready` before the transcript lock was taken: no lock is waited for here.
        page = self.store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
        if page is None:
            raise StillWorking("postmortem page")
        self._settle_unfinished_write(int(incident.id))
        top = list(self.notion.list_children(str(page.external_id)))
        heading_id = self._heading(incident, str(page.external_id), top)
        self._adopt_unfinished(incident, str(page.external_id), heading_id, top)
        recorded = self._recorded(int(incident.id))
        # Edits and deletions of lines already written first: they only rewrite blocks,
        # which Notion allows even when it refuses new ones (the workspace's block limit).
        self.changes.sync(incident)
        plan = self._plan_from_store(incident, channel, recorded)
        progress.start(plan.messages)
        refused: list[str] = []
        done, last = self._write_units(
            incident, heading_id, plan.units, progress, plan.messages, refused, plan.tail
        )
        self._write_late(incident, channel, heading_id, plan, progress, done, refused)
        if last is None and plan.tail is not None and plan.units:
            last = (plan.units[0], plan.tail.block_id)  # the extended block is still last
        if plan.late.keys() & set(last[0].keys if last else ()):
            last = None  # a thread now hangs under it (or it was split)
        if plan.edited:
            self.store.mark_synced(int(incident.id), plan.edited)
        self._keep_tail(int(incident.id), last, plan)
        if live and plan.messages:
            self._observe_lag(int(incident.id), recorded)
        events = self.timeline.sync(
            incident, str(page.external_id), top, set(recorded.keys()), self.slack.user_name
        )
        if plan.messages and self.summary is not None and not live:  # never raises
            self.summary.refresh(incident, str(page.external_id), heading_id)
        log.info(
            "dump of incident %s: %d new message(s), %d event(s)",
            incident.id,
            plan.messages,
            events,
        )
        return DumpResult(plan.messages, events, str(page.url or ""), tuple(refused))

    # -- the heading -------------------------------------------------------------------------

    def _heading(self, incident: Incident, page_id: str, top: Sequence[Block]) -> str:
        """The transcript heading's id: found by its text, or created if a user deleted it.

        If it is not the heading we wrote under before, the old transcript went with the
        old heading, so the entries are forgotten and everything is written again.
        """
        incident_id = int(incident.id)
        found = next((b for b in top if is_transcript_heading(b)), None)
        if found is None:
            heading = nb.heading(2, [nb.text(TRANSCRIPT_HEADING)], toggleable=True)
            self.store.begin_transcript_write(incident_id, page_id, self.clock())
            (heading_id,) = self.notion.append_blocks(page_id, [heading])
            self.store.end_transcript_write(incident_id, self.clock())
        else:
            heading_id = str(found["id"])
        known = self.store.get_artifact(incident_id, HEADING_KIND)
        if known is not None and known.external_id != heading_id:
            log.warning("transcript heading of incident %s was replaced; rewriting", incident_id)
            self.store.clear_transcript(incident_id, keep_prefix=EVENT_PREFIX)
        if known is None or known.external_id != heading_id:
            self.store.save_artifact(incident_id, HEADING_KIND, heading_id, None, self.clock())
        return heading_id

    # -- crash recovery ----------------------------------------------------------------------

    def _settle_unfinished_write(self, incident_id: int) -> None:
        """Wait until an unanswered append of a dead dumper can no longer land.

        See "Settling after a crash" in docs/ARCHITECTURE.md.
        """
        write = self.store.unfinished_transcript_write(incident_id)
        if write is None:
            return
        wait_until_settled(write.started_at + timedelta(seconds=self.notion.timeout_s), self.clock)

    def _adopt_unfinished(
        self, incident: Incident, page_id: str, heading_id: str, top: Sequence[Block]
    ) -> None:
        """Record, by permalink ts, blocks an unanswered append wrote; then clear the mark.

        The mark names the append's parent: the heading (messages), a message block (late
        replies) or the page (the heading itself, found by its text, or timeline lines).
        """
        incident_id = int(incident.id)
        write = self.store.unfinished_transcript_write(incident_id)
        if write is None:
            return
        recorded = self.store.transcript_ts(incident_id)
        parent = str(write.parent_id)
        entries: list[tuple[str, str, str | None]] = []
        if parent == page_id:
            self.timeline.adopt(incident, top, set(recorded), self.slack.user_name)
        elif parent == heading_id:
            for block in self.notion.list_children(heading_id):
                day = render.date_line_day(block)
                keys = [day] if day is not None else render.linked_ts_all(block)
                fresh = [key for key in keys if key not in recorded]
                entries += [(key, str(block["id"]), None) for key in fresh]
                if fresh and block.get("has_children") and day is None:
                    entries += self._adopt_replies(str(block["id"]), keys[-1], recorded)
        else:
            # Late replies: their thread is the last line of the block they went under.
            lines = [
                ts
                for ts, bid, thread_ts in self.store.transcript_rows(incident_id)
                if bid == parent and thread_ts is None and _is_ts(ts)
            ]
            thread = max(lines, key=float) if lines else None
            if thread is not None:
                entries += self._adopt_replies(parent, thread, recorded)
        self.store.save_transcript_entries(incident_id, entries, self.clock())
        self.store.end_transcript_write(incident_id, self.clock())
        log.info("adopted %d transcript block(s) of an unanswered append", len(entries))

    def _adopt_replies(
        self, block_id: str, thread_ts: str, recorded: dict[str, str]
    ) -> list[tuple[str, str, str | None]]:
        found: list[tuple[str, str, str | None]] = []
        for child in self.notion.list_children(block_id):
            for ts in render.linked_ts_all(child):
                if ts not in recorded:
                    found.append((ts, block_id, thread_ts))
        return found

    # -- reading and planning ----------------------------------------------------------------

    def _recorded(self, incident_id: int) -> dict[str, str]:
        return self.store.transcript_ts(incident_id)

    def _plan_from_store(self, incident: Incident, channel: str, recorded: dict[str, str]) -> _Plan:
        """What to write, from the captured messages: new lines in order, and late replies.

        A reply is written under its thread, a broadcast once (in its thread), and a
        huddle's or a deleted parent's thread only for its replies (`_is_kept`).
        """
        bot_user, bot_id = self.slack.bot_user_id, self.slack.bot_id
        rows = self.store.captured_messages(int(incident.id))
        replies: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row.thread_ts and row.thread_ts != row.ts and not row.deleted:
                replies.setdefault(row.thread_ts, []).append(as_message(row))
        tail = self._valid_tail(int(incident.id), rows)
        plan = _PlanBuilder(recorded, lambda m: self._line(channel, m), tail)
        for row in rows:
            if row.thread_ts and row.thread_ts != row.ts:
                continue  # a reply (a broadcast shows once, in its thread)
            message = as_message(row)
            thread = [
                r
                for r in replies.get(row.ts, [])
                if str(r["ts"]) not in recorded and _is_kept(r, bot_user, bot_id)
            ]
            message["reply_count"] = len(replies.get(row.ts, []))
            if not _is_kept(message, bot_user, bot_id):
                continue
            if row.ts in recorded:
                plan.late(row.ts, thread)
            else:
                plan.message(message, thread)
        done = plan.done()
        done.captured = {row.ts: row for row in rows}
        done.edited = {
            row.ts: row.event_ts
            for row in rows
            if row.ts not in recorded and not row.deleted and row.event_ts != row.ts
        }
        return done

    def _observe_lag(self, incident_id: int, before: dict[str, str]) -> None:
        """How long each message a live sync just wrote waited since it was posted."""
        now = self.clock().timestamp()
        for key in self._recorded(incident_id).keys() - before.keys():
            if _is_ts(key):
                metrics.TRANSCRIPT_LAG_SECONDS.observe(max(0.0, now - float(key)))

    def _valid_tail(self, incident_id: int, rows: Sequence[SlackMessage]) -> _Tail | None:
        """This process's `_Tail` of the incident, if the store says nothing changed it."""
        with self._gap_lock:
            tail = self._tails.pop(incident_id, None)
        if tail is None:
            return None
        entries = self.store.transcript_rows(incident_id)
        in_block = {ts for ts, block, _thread in entries if block == tail.block_id}
        tops = [ts for ts, _block, thread in entries if thread is None and _is_ts(ts)]
        synced = {row.ts: row.synced_event_ts for row in rows if row.ts in in_block}
        if (
            in_block != set(tail.keys)
            or not tops
            or max(tops, key=float) != tail.keys[-1]
            or synced != tail.synced
        ):
            return None
        return tail

    def _keep_tail(self, incident_id: int, last: tuple[_Unit, str] | None, plan: _Plan) -> None:
        """Remember the block just appended (or extended) last, if it has no thread."""
        if last is None:
            return
        unit, block_id = last
        if unit.replies or unit.keys[0].startswith("day:"):
            return
        rich = [nb.request_item(item) for item in nb.rich_text_of(unit.block)]
        tail = _Tail(block_id, list(unit.keys), rich, _synced(plan, unit.keys))
        with self._gap_lock:
            self._tails[incident_id] = tail

    def _line(self, channel: str, message: dict[str, Any]) -> list[RichText]:
        ts = str(message["ts"])
        thread = message.get("thread_ts")
        return render.message_line(
            message,
            author=self._author(message),
            permalink=self.slack.permalink(channel, ts, str(thread) if thread else None),
            user_name=self.slack.user_name,
        )

    def _author(self, message: dict[str, Any]) -> str:
        """A person by their Slack name; an app by the name it posts under."""
        if message.get("bot_id") or message.get("subtype") == "bot_message":
            profile = message.get("bot_profile") or {}
            return str(message.get("username") or profile.get("name") or "an app")
        user = str(message.get("user") or "")
        return self.slack.user_name(user) if user else "?"

    # -- writing -----------------------------------------------------------------------------

    def _append_plain(
        self,
        incident_id: int,
        parent_id: str,
        block: Block,
        key: str,
        error: NotionError,
        refused: list[str],
    ) -> list[str]:
        """Write a block Notion refused as plain text; its refusal is logged once."""
        log.warning(
            "Notion refused the block of %s in incident %s (%s); writing it as plain text",
            key,
            incident_id,
            error.reason,
        )
        refused.append(error.reason)
        self.store.begin_transcript_write(incident_id, parent_id, self.clock())
        try:
            return self.notion.append_blocks(parent_id, [nb.plain_copy(block)])
        except NotionError as again:
            if not _is_final(again):
                raise
            self.store.end_transcript_write(incident_id, self.clock())
            raise TranscriptRefused(again) from again

    def _write_units(
        self,
        incident: Incident,
        heading_id: str,
        units: list[_Unit],
        progress: Progress,
        total: int,
        refused: list[str],
        tail: _Tail | None = None,
    ) -> tuple[int, tuple[_Unit, str] | None]:
        """Append top-level blocks in as few requests as Notion's limits allow; how many
        messages they hold, and the last unit appended with its block id.

        A first unit that starts with the lines of the page's last block (`tail`)
        extends that block instead.

        A batch Notion refuses is written again block by block, and a block it refuses
        on its own goes in as plain text, so one bad message never blocks the rest.
        """
        done = 0
        incident_id = int(incident.id)
        tail = self._extend_tail(incident_id, heading_id, units, tail)
        if tail is not None:
            done += units[0].messages - len(tail.keys)
            units = units[1:]
        last: tuple[_Unit, str] | None = None
        for batch in _batches(units):
            ids = self._append_isolating(
                incident_id,
                heading_id,
                [u.block for u in batch],
                [",".join(u.keys) for u in batch],
                refused,
            )
            entries: list[tuple[str, str, str | None]] = []
            for unit, block_id in zip(batch, ids, strict=True):
                entries += [(key, block_id, None) for key in unit.keys]
                entries += [(reply, block_id, unit.thread) for reply in unit.replies]
            self.store.save_transcript_entries(incident_id, entries, self.clock())
            self.store.end_transcript_write(incident_id, self.clock())
            done += sum(u.messages for u in batch)
            progress.advance(done, total)
            last = (batch[-1], ids[-1])
        return done, last

    def _extend_tail(
        self, incident_id: int, heading_id: str, units: list[_Unit], tail: _Tail | None
    ) -> _Tail | None:
        """Write the first unit into the page's last block when it starts with its lines.

        One PATCH of the block's text (and one append for the replies of its new last
        line, if any); returns `tail` when units[0] was that block, else None.
        """
        if tail is None or not units or units[0].keys[: len(tail.keys)] != tail.keys:
            return None
        unit = units[0]
        new = unit.keys[len(tail.keys) :]
        if not new:
            return tail  # nothing joined it (a date line or a thread came first)
        rich = nb.rich_text_of(unit.block)
        self.store.begin_transcript_write(incident_id, heading_id, self.clock())
        self.notion.update_block(tail.block_id, {"paragraph": {"rich_text": rich}})
        lines: list[tuple[str, str, str | None]] = [(key, tail.block_id, None) for key in new]
        self.store.save_transcript_entries(incident_id, lines, self.clock())
        self.store.end_transcript_write(incident_id, self.clock())
        children = unit.block["paragraph"].get("children") or []
        if children:  # the new last line's thread, once that line is saved as the block's
            self.store.begin_transcript_write(incident_id, tail.block_id, self.clock())
            self.notion.append_blocks(tail.block_id, children)
            replies: list[tuple[str, str, str | None]] = [
                (reply, tail.block_id, unit.thread) for reply in unit.replies
            ]
            self.store.save_transcript_entries(incident_id, replies, self.clock())
            self.store.end_transcript_write(incident_id, self.clock())
        return tail

    def _append_isolating(
        self,
        incident_id: int,
        parent_id: str,
        blocks: list[Block],
        keys: list[str],
        refused: list[str],
    ) -> list[str]:
        """Append `blocks`, isolating any Notion refuses; the new blocks' ids, in order.

        A refusal (400) is known to have written nothing, so it closes the in-flight
        marker at once: the next append, or the next dump, has nothing to settle.
        """
        self.store.begin_transcript_write(incident_id, parent_id, self.clock())
        try:
            return self.notion.append_blocks(parent_id, blocks)
        except NotionError as error:
            if not _is_refusal(error):
                raise
            self.store.end_transcript_write(incident_id, self.clock())
            if len(blocks) == 1:
                return self._append_plain(
                    incident_id, parent_id, blocks[0], keys[0], error, refused
                )
        ids: list[str] = []
        for block, key in zip(blocks, keys, strict=True):
            self.store.begin_transcript_write(incident_id, parent_id, self.clock())
            try:
                ids += self.notion.append_blocks(parent_id, [block])
            except NotionError as error:
                if not _is_refusal(error):
                    raise
                self.store.end_transcript_write(incident_id, self.clock())
                ids += self._append_plain(incident_id, parent_id, block, key, error, refused)
        return ids

    def _write_late(
        self,
        incident: Incident,
        channel: str,
        heading_id: str,
        plan: _Plan,
        progress: Progress,
        done: int,
        refused: list[str],
    ) -> None:
        """New replies to threads already written go right under their parent's line.

        A parent in the middle of a packed group is first made the last line of its block
        (`_end_block_at`), so the replies, the block's children, sit under it.
        """
        incident_id = int(incident.id)
        late, total, captured = plan.late, plan.messages, plan.captured
        if not late:
            return
        written = self.store.transcript_rows(incident_id)
        for parent_ts in sorted(late, key=float):
            replies = late[parent_ts]
            block_id = self._end_block_at(incident_id, heading_id, parent_ts, channel, captured)
            keys = [[str(r["ts"])] for r in replies]  # the keys of each line
            lines = [self._line(channel, r) for r in replies]
            tail = self._valid_thread_tail(incident_id, parent_ts, block_id, written, captured)
            if tail is not None:  # the thread's last paragraph takes what fits (one PATCH)
                keys, lines = [list(tail.keys), *keys], [tail.rich, *lines]
            packs, sizes = render.pack_lines(lines), _pack_sizes(lines)
            ids: list[str] = []
            if tail is not None and sizes[0] > 1:
                self.store.begin_transcript_write(incident_id, block_id, self.clock())
                self.notion.update_block(tail.child_id, {"paragraph": {"rich_text": packs[0]}})
            if tail is not None:
                ids.append(tail.child_id)
            appended = packs[1:] if tail is not None else packs
            if appended:
                ids += self._append_isolating(
                    incident_id,
                    block_id,
                    [nb.paragraph(pack) for pack in appended],
                    [f"replies to {parent_ts}"] * len(appended),
                    refused,
                )
            self.store.save_transcript_entries(
                incident_id,
                [(str(r["ts"]), block_id, parent_ts) for r in replies],
                self.clock(),
            )
            self.store.end_transcript_write(incident_id, self.clock())
            last_keys = [key for line in keys[len(keys) - sizes[-1] :] for key in line]
            with self._gap_lock:
                self._thread_tails[(incident_id, parent_ts)] = _ThreadTail(
                    block_id, ids[-1], last_keys, packs[-1], _synced(plan, last_keys)
                )
            done += len(replies)
            progress.advance(done, total)

    def _valid_thread_tail(
        self,
        incident_id: int,
        parent_ts: str,
        block_id: str,
        written: Sequence[tuple[str, str, str | None]],
        captured: dict[str, SlackMessage],
    ) -> _ThreadTail | None:
        """This process's last reply paragraph of a thread, if the store says it is
        still the thread's last and unchanged (the same rules as `_Tail`)."""
        with self._gap_lock:
            tail = self._thread_tails.pop((incident_id, parent_ts), None)
        if tail is None or tail.parent_block != block_id:
            return None
        replies = [ts for ts, _block, thread in written if thread == parent_ts]
        since = {ts for ts in replies if float(ts) >= float(tail.keys[0])}
        synced = {
            k: row.synced_event_ts if row else None for k in tail.keys for row in [captured.get(k)]
        }
        if since != set(tail.keys) or synced != tail.synced:
            return None
        return tail

    def _end_block_at(
        self,
        incident_id: int,
        heading_id: str,
        parent_ts: str,
        channel: str,
        captured: dict[str, SlackMessage],
    ) -> str:
        """The id of a block whose last line is `parent_ts`, splitting its group if need be.

        Blocks are rewritten (PATCH), never deleted: a deleted block's capacity is never
        given back. The new block is written before the old one is cut, so a crash in
        between can show the moved lines twice, but never loses one. The two halves are
        rendered from the store (so a split costs two writes, no read) unless a line
        isn't captured or a half no longer fits one block; then the block is read.
        """
        rows = self.store.transcript_rows(incident_id)
        block_id = next(b for ts, b, thread in rows if ts == parent_ts and thread is None)
        lines = sorted(
            (ts for ts, b, thread in rows if b == block_id and thread is None and _is_ts(ts)),
            key=float,
        )
        if not lines or lines[-1] == parent_ts:
            return block_id
        before = [ts for ts in lines if float(ts) <= float(parent_ts)]
        after = [ts for ts in lines if float(ts) > float(parent_ts)]
        halves = self._render_halves(captured, channel, before, after)
        has_children = any(b == block_id and thread is not None for _ts, b, thread in rows)
        if halves is None:
            block = self.notion.retrieve_block(block_id)
            rich = [nb.request_item(item) for item in nb.rich_text_of(block)]
            cut = next(i for i, ts in render.line_starts(rich) if float(ts) > float(parent_ts))
            halves = _without_break(rich[:cut]), rich[cut:]
            has_children = bool(block.get("has_children"))
        head, tail = halves
        self.store.begin_transcript_write(incident_id, heading_id, self.clock())
        if not has_children:
            # The block keeps the lines up to the parent; the rest follow in a new block.
            (moved,) = self.notion.append_blocks(heading_id, [nb.paragraph(tail)], after=block_id)
            self.store.move_transcript_entries(incident_id, after, moved)
            self.notion.update_block(block_id, {"paragraph": {"rich_text": head}})
            kept = block_id
        else:
            # Its children are the replies of its last line: it keeps the lines after the
            # parent, and the lines up to the parent go into a new block just before it.
            known = self._previous_in_store(rows, block_id)
            previous = known or self._previous_sibling(heading_id, block_id)
            new = nb.paragraph(head)
            if previous is None:
                kept = self.notion.prepend_block(heading_id, new)
            else:
                (kept,) = self.notion.append_blocks(heading_id, [new], after=previous)
            self.store.move_transcript_entries(incident_id, before, kept)
            self.notion.update_block(block_id, {"paragraph": {"rich_text": tail}})
        self.store.end_transcript_write(incident_id, self.clock())
        with self._gap_lock:
            self._tails.pop(incident_id, None)
        log.info("split a transcript block of incident %s for a late thread", incident_id)
        return kept

    def _render_halves(
        self, rows: dict[str, SlackMessage], channel: str, before: list[str], after: list[str]
    ) -> tuple[list[RichText], list[RichText]] | None:
        """Both halves of a split block as the store says they read; None if it can't."""
        if any(ts not in rows for ts in (*before, *after)):
            return None
        halves = []
        for keys in (before, after):
            packs = render.pack_lines([self._line(channel, as_message(rows[k])) for k in keys])
            if len(packs) != 1:
                return None
            halves.append(packs[0])
        return halves[0], halves[1]

    @staticmethod
    def _previous_in_store(rows: Sequence[tuple[str, str, str | None]], block_id: str) -> str:
        """The block just before `block_id` under the heading, by the entries' order;
        "" when the store can't tell (it is the first one known: ask Notion)."""
        starts: dict[str, float] = {}
        for key, block, thread in rows:
            if thread is not None or key.startswith(EVENT_PREFIX):
                continue
            if key.startswith("day:"):
                day = datetime.fromisoformat(key[4:]).replace(tzinfo=UTC)
                start = day.timestamp() - 0.5  # a date line comes before its day's lines
            else:
                start = float(key)
            starts[block] = min(start, starts.get(block, start))
        if block_id not in starts:
            return ""
        order = sorted(starts, key=lambda b: starts[b])
        index = order.index(block_id)
        return order[index - 1] if index else ""

    def _previous_sibling(self, parent_id: str, block_id: str) -> str | None:
        previous: str | None = None
        for child in self.notion.list_children(parent_id):
            if str(child["id"]) == block_id:
                return previous
            previous = str(child["id"])
        raise FirebreakError("A transcript block is missing from the page; run the dump again.")


def _synced(plan: _Plan, keys: Sequence[str]) -> dict[str, str | None]:
    """The `synced_event_ts` each of `keys` has once the pass ends (a tail's snapshot)."""
    return {
        key: plan.edited.get(key, row.synced_event_ts if row else None)
        for key in keys
        for row in [plan.captured.get(key)]
    }


def _is_ts(key: str) -> bool:
    """A message's key (a Slack ts), not a date line's or a timeline event's."""
    return not key.startswith(("day:", EVENT_PREFIX))


def _without_break(items: list[RichText]) -> list[RichText]:
    """`items` without the line break that ended them."""
    if not items:
        return items
    last = items[-1]
    content = str((last.get("text") or {}).get("content", ""))
    if content == "\n":
        return items[:-1]
    if content.endswith("\n"):
        trimmed = {**last, "text": {**last["text"], "content": content[:-1]}}
        return [*items[:-1], trimmed]
    return items


def _batches(units: list[_Unit]) -> Iterator[list[_Unit]]:
    """Units grouped as Notion's per-request limits group their blocks (≤ 100 top level)."""
    start = 0
    for chunk in plan_chunks([u.block for u in units]):
        yield units[start : start + len(chunk)]
        start += len(chunk)
