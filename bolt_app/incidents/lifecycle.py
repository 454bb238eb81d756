"""The incident lifecycle: status, severity, commander and title changes.

The status transitions live in one table, `TRANSITIONS`, and nothing else decides
which change is allowed. A change is validated completely before anything is written,
so a refused one leaves no trace: no topic, no message, no Notion write, no edit.

A successful change, under the incident's state lock so that two changes never
interleave: the row and its `IncidentEvent` in one transaction, then one channel
message. After the lock is released, the rest of the world: the topic, status hooks,
the announcement, the Notion page, each written from the row as it is then, under its
own render lock (no thread holds two locks). Those steps cannot undo the change once
it is made, so their failures are collected and reported together as a
`PartialChange` instead of hiding or aborting the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bolt_app.adapters.notion import NotionGateway, PostmortemFields
from bolt_app.adapters.slack import SlackError, SlackGateway
from bolt_app.core.clock import Clock
from bolt_app.core.domain import (
    NEEDS_REASON,
    STATUSES,
    TRANSITIONS,
    ArtifactKind,
    Status,
    parse_status,
)
from bolt_app.core.errors import FirebreakError, UsageError
from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.slack_text import for_message
from bolt_app.incidents.artifacts import rendering
from bolt_app.incidents.service import IncidentService, clean_severity, clean_title, state_lock
from storage import Incident, IncidentEvent, LockTimeout, Store

log = logging.getLogger(__name__)

#: How long a change waits for another change of the same incident.
CHANGE_LOCK_SECONDS = 15.0

#: (incident, old status, new status); any return value is ignored.
StatusHook = Callable[[Incident, str, str], object]

_USER_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


class TransitionRefused(FirebreakError):
    """A status change the table does not allow; the message lists the allowed ones."""


class NotAllowed(FirebreakError):
    """The person asking may not change this incident (not a member, or a bot)."""


class BusyChanging(FirebreakError):
    """Another change of the same incident holds its lock for too long."""

    def __init__(self) -> None:
        super().__init__(
            "Another change to this incident is still being made; try again in a moment."
        )


class Superseded(FirebreakError):
    """A change run late (its process died) that a newer change of the same thing overtook."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"A newer {what} change was made while this one waited, so this one was not applied."
        )


class PartialChange(FirebreakError):
    """The change was made, but some of its follow-up steps failed; they are retried."""

    retry_later = True


def clean_status(raw: str) -> Status:
    status = parse_status(raw)
    if status is None:
        raise UsageError(f"Status must be one of {', '.join(STATUSES)}, not `{raw.strip()}`.")
    return status


def allowed_from(current: str) -> tuple[Status, ...]:
    status = parse_status(current)
    return TRANSITIONS[status] if status is not None else ()


def check_transition(current: str, new: str, reason: str | None = None) -> None:
    """Raise `TransitionRefused` (or `UsageError` for a missing reason) unless allowed."""
    allowed = allowed_from(current)
    if new not in allowed:
        options = ", ".join(f"`{s}`" for s in allowed) or "nothing"
        already = (
            f"The status is already {current}. "
            if new == current
            else (f"Can't change the status from {current} to {new}. ")
        )
        raise TransitionRefused(f"{already}From {current} it can go to: {options}.")
    require_reason(new, reason)


def require_reason(status: str, reason: str | None) -> None:
    """`canceled` needs a reason, so the timeline says why."""
    if status in NEEDS_REASON and not (reason or "").strip():
        raise UsageError(
            f"Changing the status to {status} needs a reason: "
            f"`/incident status {status} duplicate of INC-40`."
        )


def parse_status_args(args: str) -> tuple[Status, str | None]:
    """`canceled duplicate of INC-40` -> ("canceled", "duplicate of INC-40")."""
    word, _, rest = args.strip().partition(" ")
    if not word:
        raise UsageError(f"Which status? `/incident status <{'|'.join(STATUSES)}>`.")
    return clean_status(word), (" ".join(rest.split()) or None)


def parse_user(raw: str) -> str:
    """`<@U123>` or `<@U123|alice>` -> `U123`; anything else is a usage error."""
    if not raw.strip():
        raise UsageError("Who should take command? `/incident commander @someone`.")
    match = _USER_RE.match(raw.strip())
    if match is None:
        raise UsageError(
            f"Name the commander as a mention: `/incident commander @someone`, not `{raw.strip()}`."
        )
    return match.group(1)


class Announcing(Protocol):
    """The announcement channel, as the lifecycle needs it (see `announcements`)."""

    def refresh(self, incident: Incident) -> None: ...


@dataclass(frozen=True)
class Change:
    """What one change did, for the channel message and the event."""

    what: str
    before: str
    after: str
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


class LifecycleService:
    """Status, severity, commander and title changes, with every place they show up."""

    def __init__(
        self,
        *,
        store: Store,
        slack: SlackGateway,
        notion: NotionGateway | None,
        incidents: IncidentService,
        fields: Callable[[Incident], PostmortemFields],
        clock: Clock,
        announcer: Announcing | None = None,
    ) -> None:
        self.store = store
        self.slack = slack
        self.notion = notion
        self.incidents = incidents
        self.fields = fields
        self.clock = clock
        self.announcer = announcer
        #: Called after every status change with (incident, old, new), in the
        #: change's thread and under its lock, so keep them short (submit long work).
        #: `Services.build` registers `TranscriptService.on_status_change` here, which
        #: starts a dump on mitigated, resolved and postmortem.
        self.status_hooks: list[StatusHook] = []

    # -- who may ---------------------------------------------------------------------------

    def require_member(self, incident: Incident, actor: str) -> None:
        """Only people in the incident channel (and never bots) may change it."""
        if self._is_bot(actor):
            raise NotAllowed("Bots can't change incidents.")
        if actor not in self.slack.channel_members(str(incident.channel_id)):
            raise NotAllowed(f"Join #{incident.channel_name} to change it.")

    def _is_bot(self, user: str) -> bool:
        if user == self.slack.bot_user_id:
            return True
        try:
            info = self.slack.user_info(user)
        except SlackError as error:
            # Someone typed the command, so they exist; one the bot can't look up (from
            # another workspace in a shared channel) is a person, not a bot.
            if error.code in ("user_not_found", "user_not_visible"):
                return False
            raise
        return bool(info.get("is_bot")) or bool(info.get("is_app_user"))

    # -- the four changes ------------------------------------------------------------------

    def change_status(
        self,
        incident: Incident,
        actor: str,
        new: str,
        reason: str | None = None,
        *,
        request_key: str | None = None,
    ) -> Incident:
        new = clean_status(new)

        def plan(current: Incident) -> tuple[Change, dict[str, Any]]:
            old = str(current.status)
            check_transition(old, new, reason)
            data = {"from": old, "to": new, **({"reason": reason} if reason else {})}
            change = Change("status", old, new, "status_changed", data, reason)
            return change, {"status": new}

        return self._change(incident, actor, plan, request_key)

    def change_severity(
        self, incident: Incident, actor: str, severity: str, *, request_key: str | None = None
    ) -> Incident:
        new = clean_severity(severity)

        def plan(current: Incident) -> tuple[Change, dict[str, Any]]:
            old = str(current.severity)
            if old == new:
                raise UsageError(f"The severity is already {new}.")
            change = Change("severity", old, new, "severity_changed", {"from": old, "to": new})
            return change, {"severity": new}

        return self._change(incident, actor, plan, request_key)

    def change_commander(
        self, incident: Incident, actor: str, user: str, *, request_key: str | None = None
    ) -> Incident:
        """Hand over command to `user` (an id), inviting them to the channel."""
        new = user
        if self._made(request_key) is None:
            self._require_person(new)

        def plan(current: Incident) -> tuple[Change, dict[str, Any]]:
            old = str(current.commander)
            if old == new:
                raise UsageError(f"<@{new}> is already the commander.")
            self.slack.invite(str(current.channel_id), [new])
            change = Change(
                "commander", f"<@{old}>", f"<@{new}>", "commander_changed", {"from": old, "to": new}
            )
            return change, {"commander": new}

        return self._change(incident, actor, plan, request_key)

    def change_title(
        self, incident: Incident, actor: str, title: str, *, request_key: str | None = None
    ) -> Incident:
        new = clean_title(title)

        def plan(current: Incident) -> tuple[Change, dict[str, Any]]:
            old = str(current.title)
            if old == new:
                raise UsageError("That is already the title.")
            # Titles are people's text: escaped, so "@here" or "<5ms" can't ping or link.
            change = Change(
                "title",
                f"“{for_message(old)}”",
                f"“{for_message(new)}”",
                "title_changed",
                {"from": old, "to": new},
            )
            return change, {"title": new}

        return self._change(incident, actor, plan, request_key)

    def _require_person(self, user: str) -> None:
        """The new commander must be a real, active, human user of the workspace."""
        try:
            info = self.slack.user_info(user)
        except SlackError as error:
            if error.code == "user_not_found":
                raise UsageError(f"`{user}` isn't a user in this workspace.") from None
            if error.code == "user_not_visible":
                raise UsageError(
                    f"<@{user}> can't be the commander: Firebreak can't see them (someone "
                    "from another workspace, in a shared channel?). Choose someone from "
                    "this workspace."
                ) from None
            raise
        if info.get("deleted") or info.get("is_bot") or info.get("is_app_user"):
            raise UsageError(f"<@{user}> can't be the commander: only active people can.")

    # -- the one way a change is made --------------------------------------------------------

    def _change(
        self,
        incident: Incident,
        actor: str,
        plan: Callable[[Incident], tuple[Change, dict[str, Any]]],
        request_key: str | None,
    ) -> Incident:
        """Check, then write everywhere; `plan` refuses by raising, before any write.

        `request_key` is the command's inbox key: a command run again after a crash
        finds the event it made, changes nothing twice and finishes the follow-ups.
        """
        if self._made(request_key) is None:
            self.require_member(incident, actor)
        try:
            with self.store.lock(state_lock(int(incident.id)), timeout=CHANGE_LOCK_SECONDS):
                current, event = self._apply(incident, actor, plan, request_key)
                # Still under the state lock, so the channel reads the changes in order;
                # one Slack call, and no other lock is taken while this one is held.
                failures = self._announce_in_channel(current, event)
        except LockTimeout:
            raise BusyChanging() from None
        # Outside the state lock: each follow-up renders the row as it is when it writes,
        # under its own lock, so no thread waits for a lock while it holds one.
        failures += self._follow_up(current, event)
        if failures:
            raise PartialChange(
                f"Changed the {event.data['what']} to {event.data['after']}, but "
                + "; ".join(failures)
                + ". I'll try them again in a moment."
            )
        return current

    def _made(self, request_key: str | None) -> IncidentEvent | None:
        return self.store.event_for_request(request_key) if request_key else None

    def _apply(
        self,
        incident: Incident,
        actor: str,
        plan: Callable[[Incident], tuple[Change, dict[str, Any]]],
        request_key: str | None,
    ) -> tuple[Incident, IncidentEvent]:
        """Under the state lock: check against the current row and write it, or find
        that this command already did."""
        current = self.incidents.refresh(incident)
        event = self._made(request_key)
        if event is None:
            change, values = plan(current)
            received = self.store.inbox.received_at(request_key) if request_key else None
            if received is not None:
                self._refuse_if_overtaken(current, change, received)
            data = {**change.data, "what": change.what, "after": change.after}
            data["message"] = change_message(actor, change)
            if received is not None:
                data["received_at"] = received.isoformat()
            current, event = self.store.change_incident(
                int(current.id),
                self.clock(),
                event=change.event,
                actor=actor,
                data=data,
                request_key=request_key,
                **values,
            )
            log.info(
                "%s: %s %s -> %s",
                self.incidents.label(current),
                change.what,
                change.before,
                change.after,
            )
        else:
            log.info(
                "%s: finishing change %s after a restart", self.incidents.label(current), event.id
            )
        return current, event

    def _refuse_if_overtaken(self, current: Incident, change: Change, received: datetime) -> None:
        """A command acked before a change of the same thing that is already applied must
        not undo it: users saw their changes acked in order, and the last one stands."""
        mine = received.isoformat()
        for event in self.store.events(int(current.id)):
            if event.kind == change.event and str(event.data.get("received_at", "")) > mine:
                raise Superseded(change.what)

    def _announce_in_channel(self, incident: Incident, event: IncidentEvent) -> list[str]:
        """The change's channel message, once: the event records that it was posted."""
        if event.data.get("posted"):
            return []
        return _run_steps(
            incident,
            [("couldn't post in the channel", lambda: self._post(str(incident.channel_id), event))],
        )

    def _follow_up(self, incident: Incident, event: IncidentEvent) -> list[str]:
        """Topic, hooks, announcement and Notion, once the row has changed.

        Each may fail without stopping the others: the change is already made, so a
        refused topic must not also skip the dump or the Notion update. Each renders the
        incident as it is now, so running them twice is harmless.
        """
        steps: list[tuple[str, Callable[[], None]]] = [
            ("couldn't set the topic", lambda: self.incidents.write_topic(incident))
        ]
        if event.kind == "status_changed":
            old, new = str(event.data["from"]), str(event.data["to"])
            for hook in self.status_hooks:
                steps.append(("a status hook failed", _bind(hook, incident, old, new)))
        if self.announcer is not None:
            announcer = self.announcer
            steps.append(("couldn't edit the announcement", lambda: announcer.refresh(incident)))
        steps.append(("couldn't update the postmortem page", lambda: self._sync_page(incident)))
        return _run_steps(incident, steps)

    def _post(self, channel: str, event: IncidentEvent) -> None:
        self.slack.post_message(channel, str(event.data["message"]))
        self.store.update_event_data(int(event.id), posted=True)

    def _sync_page(self, incident: Incident) -> None:
        """Rewrite the page's properties and title from the current row, if the page
        exists yet (it is created from the current row, so it will be right)."""
        page = self.store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
        if page is None or self.notion is None:
            return
        with rendering(self.store, "page", int(incident.id)):
            current = self.incidents.refresh(incident)
            self.notion.update_properties(str(page.external_id), self.fields(current))


def _run_steps(incident: Incident, steps: list[tuple[str, Callable[[], None]]]) -> list[str]:
    """Run every step; the failures, as "<description> (<the error's sentence>)"."""
    failures: list[str] = []
    for description, step in steps:
        try:
            step()
        except FirebreakError as error:
            log.warning("%s for incident %s: %s", description, incident.id, error)
            failures.append(f"{description} ({error.user_message})")
    return failures


def _bind(hook: StatusHook, incident: Incident, old: str, new: str) -> Callable[[], None]:
    def call() -> None:
        hook(incident, old, new)

    return call


def change_message(actor: str, change: Change) -> str:
    """ "<@alice> changed status: active → mitigated" (with the reason, if there is one)."""
    text = f"<@{actor}> changed {change.what}: {change.before} → {change.after}"
    return f"{text} ({blocks.escape(change.note)})" if change.note else text


def summary_line(label: str, incident: Incident) -> str:
    """One incident in `/incident list`."""
    return (
        f"• <#{incident.channel_id}> *{label}*: {for_message(str(incident.title))} · "
        f"{incident.severity} · {incident.status} · commander <@{incident.commander}>"
    )
