"""Incident services: declare an incident and bring its Slack side into being.

Declaring means "record the incident, then run its ensure steps": the channel and the
postmortem page are made in parallel, the bookmark as soon as both exist, and every
step goes through `ensure_artifact`, so a retry, a second process or the reconciler
can run them again without making anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bolt_app.adapters.slack import SLACK_TIMEOUT_SECONDS, Channel, SlackError, SlackGateway
from bolt_app.core.clock import Clock
from bolt_app.core.domain import (
    CLOSED_STATUSES,
    DEFAULT_SEVERITY,
    MAX_TITLE,
    OUTCOME_WORDS,
    SEVERITIES,
    ArtifactKind,
    Severity,
    parse_severity,
)
from bolt_app.core.errors import DeclaresRefused, FirebreakError, UsageError
from bolt_app.core.naming import Numbering, channel_name
from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.slack_text import sluggable
from bolt_app.incidents import marks
from bolt_app.incidents.artifacts import Ensured, Made, ensure_artifact, rendering
from storage import Artifact, ArtifactAttempt, Incident, Store

log = logging.getLogger(__name__)

#: How many `-2`, `-3`… suffixes we try after `name_taken` before giving up.
MAX_NAME_ATTEMPTS = 20


def declared_data(store: Store, incident: Incident) -> dict[str, Any]:
    """The `declared` event's data: the form's description, the declarer's handle."""
    for event in store.events(int(incident.id)):
        if event.kind == "declared":
            return dict(event.data or {})
    return {}


#: Lock of an incident's state: a change holds it while it checks and writes the row,
#: and takes no other lock meanwhile (see "Locks and the connection budget").
STATE_LOCK_PREFIX = "lifecycle"


def state_lock(incident_id: int) -> str:
    return f"{STATE_LOCK_PREFIX}:{incident_id}"


#: How far back an adopt looks for an intro a killed attempt posted: it is among the
#: channel's first messages, and a channel this young has few.
INTRO_SCAN_MESSAGES = 200


#: A declare of the same title by the same person this soon after theirs is a repeat.
REPEAT_DECLARE_WINDOW = timedelta(minutes=2)


def is_repeat(incident: Incident, request_key: str | None) -> bool:
    """Whether `record` returned an earlier declare's incident for this request."""
    return incident.request_key != request_key


def clean_title(raw: str) -> str:
    """Validate a title; the error says what to do instead."""
    title = " ".join(raw.split())
    if not title:
        raise UsageError("An incident needs a title: `/incident declare Checkout is down`.")
    if len(title) > MAX_TITLE:
        raise UsageError(
            f"That title is {len(title):,} characters; keep it under {MAX_TITLE} "
            "and put the details in the channel."
        )
    return title


def clean_severity(raw: str) -> Severity:
    severity = parse_severity(raw)
    if severity is None:
        raise UsageError(f"Severity must be one of {', '.join(SEVERITIES)}, not `{raw}`.")
    return severity


@dataclass(frozen=True)
class Setup:
    """The outcome of running an incident's ensure steps."""

    channel: Artifact
    page: Artifact | None
    failure: PostmortemFailure | None


@dataclass(frozen=True)
class PostmortemFailure:
    """A postmortem step that failed during set-up, said once in the channel."""

    #: What we couldn't do, as in "Couldn't <step> yet".
    step: str
    error: FirebreakError


class PageSteps:
    """The postmortem side of set-up; `None` until Notion is configured for a service."""

    def ensure_page(self, incident: Incident) -> Ensured:  # pragma: no cover - interface
        raise NotImplementedError

    def ensure_bookmark(
        self, incident: Incident, page: Artifact, *, verify: bool = False
    ) -> Ensured:  # pragma: no cover - interface
        raise NotImplementedError

    def report_failure(
        self, incident: Incident, failure: PostmortemFailure
    ) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def link_channel(self, incident: Incident, page: Artifact) -> None:  # pragma: no cover
        raise NotImplementedError

    def away(self, incident: Incident) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def restore(
        self, incident: Incident, page: Ensured
    ) -> tuple[str | None, Ensured]:  # pragma: no cover - interface
        raise NotImplementedError


class AnnounceStep(Protocol):
    """The announcement-channel side of set-up (`announcements.Announcer`)."""

    def ensure(self, incident: Incident) -> Ensured | None: ...  # pragma: no cover


class IncidentService:
    """Declare incidents and run their Slack ensure steps."""

    def __init__(
        self,
        *,
        store: Store,
        slack: SlackGateway,
        numbering: Numbering,
        clock: Clock,
        parallel: Executor,
        pages: PageSteps | None = None,
        announcer: AnnounceStep | None = None,
    ) -> None:
        self.store = store
        self.slack = slack
        self.numbering = numbering
        self.clock = clock
        self.parallel = parallel
        self.pages = pages
        self.announcer = announcer
        #: Why this process may not declare (start-up found it), or None.
        self.refusal: str | None = None

    def declarable(self) -> None:
        """Raise `DeclaresRefused` while start-up found a reason not to declare."""
        if self.refusal is not None:
            raise DeclaresRefused(self.refusal)

    # -- reading ---------------------------------------------------------------------------

    def in_channel(self, channel_id: str) -> Incident | None:
        """The incident whose channel this is, if any: how every entry point finds it."""
        return self.store.incident_by_channel(channel_id) if channel_id else None

    def open_incidents(self) -> list[Incident]:
        """Incidents not yet done or canceled, newest first."""
        return self.store.open_incidents(CLOSED_STATUSES)

    def listed_for(self, user: str) -> list[Incident]:
        """What `/incident list` shows `user`: open incidents that have a channel, newest
        first; a private one only when `user` is in its channel."""
        return [
            incident
            for incident in self.open_incidents()
            if incident.channel_id is not None  # still being set up: nothing to link to
            and (not incident.private or self._is_member(incident, user))
        ]

    def _is_member(self, incident: Incident, user: str) -> bool:
        """Whether `user` may see a private incident; if Slack can't say, they may not."""
        try:
            return user in self.slack.channel_members(str(incident.channel_id))
        except SlackError as error:  # e.g. the bot was removed from the channel
            log.warning("can't list members of %s: %s", incident.channel_id, error.code)
            return False

    def label(self, incident: Incident) -> str:
        return self.numbering.label(int(incident.number))

    # -- declaring -------------------------------------------------------------------------

    def record(
        self,
        *,
        title: str,
        reporter: str,
        severity: str = DEFAULT_SEVERITY,
        private: bool = False,
        request_key: str | None = None,
        description: str | None = None,
        reporter_name: str | None = None,
        repeat_within: timedelta | None = None,
    ) -> Incident:
        """Store a new incident (gapless number) and its `declared` event.

        `request_key` (the Slack trigger id) makes a redelivered command return the
        incident it already made instead of declaring a second one. The form's
        `description` is kept in the event, and the intro message shows it; so is the
        declarer's Slack handle, which names the commander in the postmortem template
        without a `users.info` call on the page's critical path. With `repeat_within`,
        the same reporter's declare of the same title that recent is returned instead
        (`is_repeat` tells it apart): Slack showed them an error and they typed it again.
        """
        title, severity = clean_title(title), clean_severity(severity)
        now = self.clock()
        incident, created = self.store.create_incident(
            title=title,
            severity=severity,
            reporter=reporter,
            commander=reporter,
            private=private,
            request_key=request_key,
            number_start=self.numbering.start,
            now=now,
            repeat_since=now - repeat_within if repeat_within is not None else None,
        )
        if created:
            data = {"title": title, "severity": severity}
            if description and description.strip():
                data["description"] = description.strip()
            if reporter_name:
                data["reporter_name"] = reporter_name
            self.store.add_event(int(incident.id), "declared", reporter, data, now)
            log.info("declared %s (incident %s)", self.label(incident), incident.id)
        return incident

    def set_up(
        self,
        incident: Incident,
        on_channel: Callable[[Channel], None] | None = None,
        *,
        report: bool = True,
    ) -> Setup:
        """Run every ensure step: channel ∥ page, then bookmark, then the channel's furniture.

        `on_channel` runs on the parallel pool as soon as the channel exists, so the
        declarer hears about it before the slower steps finish, and telling them never
        delays the bookmark. With `report`, a postmortem failure is
        said in the channel; the reconciler passes False so it says it only once.
        A public incident's announcement is posted on the parallel pool as well, off
        the bookmark's path.
        """
        page_future = self._start_page(incident)
        channel_art = self.ensure_channel(incident).artifact
        channel = Channel(id=str(channel_art.external_id), name=str(incident.channel_name))
        told = self.parallel.submit(on_channel, channel) if on_channel is not None else None
        furniture = self.parallel.submit(self._furnish, incident, channel.id)
        announced = self.parallel.submit(self._announce, incident)
        page, failure = self._finish_page(incident, page_future)
        furniture.result()
        announced.result()
        if told is not None:
            told.result()
        self.ensure_intro(incident, page.url if page is not None else None)
        if report and failure is not None and self.pages is not None:
            self.pages.report_failure(incident, failure)
        return Setup(channel=channel_art, page=page, failure=failure)

    def _announce(self, incident: Incident) -> None:
        """Announce a public incident; off the bookmark's path, and retried by reconcile."""
        if self.announcer is None:
            return
        try:
            self.announcer.ensure(incident)
        except FirebreakError as error:  # the reconciler retries a missing announcement
            log.warning("announcement of incident %s failed: %s", incident.id, error)

    def _start_page(self, incident: Incident) -> Future[Ensured] | None:
        if self.pages is None:
            return None
        return self.parallel.submit(self.pages.ensure_page, incident)

    def _finish_page(
        self, incident: Incident, future: Future[Ensured] | None
    ) -> tuple[Artifact | None, PostmortemFailure | None]:
        """Wait for the page and bookmark it; neither failure blocks the incident.

        A failure is returned, not raised: set-up says it in the channel once, and the
        reconciler retries the step.
        """
        if future is None or self.pages is None:
            return None, None
        try:
            page = future.result().artifact
        except FirebreakError as error:
            log.warning("postmortem page for incident %s failed: %s", incident.id, error)
            return None, PostmortemFailure("create the postmortem page", error)
        fresh = self.refresh(incident)
        try:
            bookmark = self.pages.ensure_bookmark(fresh, page)
        except FirebreakError as error:
            log.warning("postmortem bookmark for incident %s failed: %s", incident.id, error)
            return page, PostmortemFailure("bookmark the postmortem page", error)
        if bookmark.outcome != "existing":
            try:
                self.pages.link_channel(fresh, page)
            except FirebreakError as error:  # the next change writes the properties again
                log.warning(
                    "could not link the channel in incident %s's page: %s", incident.id, error
                )
        return page, None

    def repair(self, incident: Incident) -> list[tuple[str, str]]:
        """Run every ensure step now, re-adding a removed bookmark; say what each found.

        Unlike set-up, the bookmark is always checked against the channel's list, so a
        bookmark a user removed comes back.
        """
        report = [("Channel", OUTCOME_WORDS[self.ensure_channel(incident).outcome])]
        page_url: str | None = None
        if self.pages is not None:
            try:
                page = self.pages.ensure_page(incident)
                said = None
                if page.outcome == "existing":
                    said, page = self.pages.restore(incident, page)
                page_url = page.artifact.url
                report.append(("Postmortem page", said or OUTCOME_WORDS[page.outcome]))
                bookmark = self.pages.ensure_bookmark(
                    self.refresh(incident), page.artifact, verify=True
                )
                report.append(("Bookmark", OUTCOME_WORDS[bookmark.outcome]))
            except FirebreakError as error:
                report.append(("Postmortem page", f"failed: {error.user_message}"))
        intro = self.ensure_intro(incident, page_url)
        report.append(("Intro message", OUTCOME_WORDS[intro.outcome]))
        return report

    def channel_attempted(self, incident: Incident) -> bool:
        """Whether a create of the incident's channel was tried before (and failed, if
        the incident has no channel yet)."""
        return bool(self.store.attempts(int(incident.id), ArtifactKind.SLACK_CHANNEL))

    def refresh(self, incident: Incident) -> Incident:
        fresh = self.store.get_incident(int(incident.id))
        return fresh if fresh is not None else incident

    # -- the channel -----------------------------------------------------------------------

    def ensure_channel(self, incident: Incident) -> Ensured:
        """The incident's channel, created once; recorded before anyone is invited."""
        ensured = ensure_artifact(
            self.store,
            int(incident.id),
            ArtifactKind.SLACK_CHANNEL,
            create=lambda _token: self._create_channel(incident),
            find=lambda _earlier: self._find_own_channel(incident),
            clock=self.clock,
            what="incident channel",
        )
        if incident.channel_id is None:
            art = ensured.artifact
            self.store.set_channel(
                int(incident.id),
                str(art.external_id),
                str((art.data or {}).get("name", "")),
                self.clock(),
            )
            incident.channel_id = art.external_id
            incident.channel_name = (art.data or {}).get("name")
        return ensured

    def _create_channel(self, incident: Incident) -> Made:
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            name = channel_name(
                self.numbering.channel_prefix,
                int(incident.number),
                sluggable(str(incident.title)),
                attempt,
            )
            try:
                channel = self.slack.create_channel(name, private=bool(incident.private))
            except SlackError as error:
                if error.code != "name_taken":
                    raise
                mine = self._unclaimed_own_channel(name)
                if mine is None:
                    continue
                channel = mine
            return Made(channel.id, None, {"name": channel.name})
        raise UsageError(f"Every channel name up to `{name}` is taken; rename or archive some.")

    def _unclaimed_own_channel(self, name: str) -> Channel | None:
        """A channel we made whose create response was lost (a retried create, say)."""
        channel = self.slack.find_channel(name)
        if channel is None or channel.creator != self.slack.bot_user_id:
            return None
        if self.store.incident_by_channel(channel.id) is not None:
            return None
        return channel

    def _find_own_channel(self, incident: Incident) -> Made | None:
        """After a crash: adopt a channel an earlier attempt made for this incident number."""
        prefix = f"{self.numbering.channel_prefix}-{incident.number}"
        for channel in self.slack.find_channels_with_prefix(prefix):
            if channel.creator == self.slack.bot_user_id and (
                self.store.incident_by_channel(channel.id) is None
            ):
                return Made(channel.id, None, {"name": channel.name})
        return None

    def _furnish(self, incident: Incident, channel_id: str) -> None:
        """Invite the commander and set the topic: both idempotent, so safe to repeat.

        Set-up (the reconciler's, above all) may run long after its copy of the incident
        was read, so both use the row as it is now (`write_topic`).
        """
        commander = str(self.refresh(incident).commander)
        if commander != self.slack.bot_user_id:
            self.slack.invite(channel_id, [commander])
        self.write_topic(incident)

    def write_topic(self, incident: Incident) -> None:
        """Set the channel topic from the current row, under the topic's render lock."""
        with rendering(self.store, "topic", int(incident.id)):
            current = self.refresh(incident)
            if current.channel_id:
                self.slack.set_topic(str(current.channel_id), self.topic(current))

    def topic(self, incident: Incident) -> str:
        return blocks.topic(
            self.label(incident),
            str(incident.severity),
            str(incident.status),
            str(incident.commander),
        )

    def _description(self, incident: Incident) -> str | None:
        """What the declarer wrote in the form, from the `declared` event."""
        return declared_data(self.store, incident).get("description")

    def ensure_intro(self, incident: Incident, doc_url: str | None) -> Ensured:
        """Post the intro message once; its ts is recorded like any artefact.

        An intro posted before the page existed ("Postmortem doc: being created") is
        edited to link the page once it does (the intro records the link it shows).
        """
        channel_id = str(incident.channel_id)

        def post(token: str) -> Made:
            text, body = self._intro(incident, doc_url)
            mark = marks.message_metadata("intro", self.label(incident), token)
            ts = self.slack.post_message(channel_id, text, body, mark)
            return Made(ts, None, {"doc": doc_url})

        ensured = ensure_artifact(
            self.store,
            int(incident.id),
            ArtifactKind.INTRO_MESSAGE,
            create=post,
            find=lambda earlier: self._find_intro(incident, channel_id, earlier),
            clock=self.clock,
            settle_seconds=SLACK_TIMEOUT_SECONDS,
            what="intro message",
        )
        shown = (ensured.artifact.data or {}).get("doc")
        if doc_url is not None and ensured.outcome == "existing" and shown != doc_url:
            self._link_intro(incident, str(ensured.artifact.external_id), doc_url)
        return ensured

    def _intro(self, incident: Incident, doc_url: str | None) -> tuple[str, list[Any]]:
        current = self.refresh(incident)  # the state as it is now, not as declared
        return blocks.intro_message(
            self.label(current),
            str(current.title),
            str(current.severity),
            str(current.commander),
            doc_url,
            self._description(incident),
        )

    def _link_intro(self, incident: Incident, ts: str, doc_url: str) -> None:
        """Edit an intro that still says the page is being created to link it."""
        with rendering(self.store, "intro", int(incident.id)):
            text, body = self._intro(incident, doc_url)
            self.slack.update_message(str(incident.channel_id), ts, text, body)
            self.store.save_artifact(
                int(incident.id),
                ArtifactKind.INTRO_MESSAGE,
                ts,
                None,
                self.clock(),
                {"doc": doc_url},
            )
        log.info("linked the postmortem page in incident %s's intro", incident.id)

    def _find_intro(
        self, incident: Incident, channel_id: str, earlier: Sequence[ArtifactAttempt]
    ) -> Made | None:
        """After a failed or killed attempt: the intro that attempt posted, recognised by
        the token in its metadata (see `marks`)."""
        ts = marks.marked_message(
            self.slack.recent_messages(channel_id, INTRO_SCAN_MESSAGES),
            author=self.slack.bot_user_id,
            earlier=earlier,
            label=self.label(incident),
        )
        return Made(ts) if ts is not None else None
