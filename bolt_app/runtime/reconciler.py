"""Heal unfinished incidents without a human (see "The process model" in docs/ARCHITECTURE.md).

At start-up and every RECONCILE_INTERVAL_SECONDS, each open incident whose set-up is
incomplete has its ensure steps run again. Every step takes its own lock, so several
processes reconciling at once cannot make anything twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bolt_app.core.domain import ArtifactKind
from bolt_app.core.errors import FirebreakError
from bolt_app.services import Services
from storage import InboxRow, Incident

log = logging.getLogger(__name__)

#: Artefacts a fully set-up incident has.
SETUP_KINDS = (
    ArtifactKind.SLACK_CHANNEL,
    ArtifactKind.INTRO_MESSAGE,
    ArtifactKind.NOTION_POSTMORTEM,
    ArtifactKind.BOOKMARK_POSTMORTEM,
)


#: Runs an inbox row another process acked and did not finish (`listeners.replay`).
Replay = Callable[[Services, InboxRow], None]


class Reconciler:
    def __init__(self, services: Services, interval: float, replay: Replay | None = None) -> None:
        self.services = services
        self.interval = interval
        self.replay = replay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current pass; a pass still running past `timeout` is abandoned."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep reconciling; this pass's failure is in the log
                log.exception("reconcile pass failed")
            self._stop.wait(self.interval)

    def incomplete(self) -> list[Incident]:
        store = self.services.store
        return [
            i
            for i in self.services.incidents.open_incidents()
            if any(store.get_artifact(int(i.id), kind) is None for kind in self._kinds(i))
        ]

    def _kinds(self, incident: Incident) -> tuple[str, ...]:
        """SETUP_KINDS, plus the announcement for a public incident when one is configured."""
        announcer = self.services.announcer
        if announcer is not None and announcer.applies(incident):
            return (*SETUP_KINDS, ArtifactKind.ANNOUNCEMENT)
        return SETUP_KINDS

    def run_once(self) -> list[str]:
        """One pass; returns the labels of the incidents it completed.

        Commands whose process died go first: a declare among them makes its incident,
        which this same pass then finds incomplete or the row's own run sets up.
        """
        self.resume_commands()
        healed = []
        for incident in self.incomplete():
            label = self.services.incidents.label(incident)
            try:
                setup = self.services.incidents.set_up(incident, report=False)
            except FirebreakError as error:
                log.warning("reconcile: %s still incomplete: %s", label, error)
                continue
            except Exception:  # a bug in one incident must not stop healing the others
                log.exception("reconcile: %s failed unexpectedly", label)
                continue
            if setup.failure is None:
                healed.append(label)
                log.info("reconcile: healed %s", label)
        self.resume_dumps()
        return healed

    def resume_commands(self) -> list[int]:
        """Claim the inbox rows whose lease ran out and run them; returns their ids."""
        if self.replay is None:
            return []
        resumed = []
        for row in self.services.inbox.claim_due():
            try:
                self.replay(self.services, row)
            except (KeyError, ValueError) as error:  # a row this version can't read
                log.error("reconcile: inbox row %s can't be run: %s", row.id, error)
                self.services.inbox.give_up(row)
                continue
            resumed.append(int(row.id))
        return resumed

    def resume_dumps(self) -> list[int]:
        """Start the dumps whose requests nobody finished (a process died mid-dump).

        They run on the dumps pool; one held by a live dumper answers "busy" and is
        left to it. Returns the incident ids started.
        """
        transcript = self.services.transcript
        started = []
        for incident_id in transcript.pending():
            incident = self.services.store.get_incident(incident_id)
            if incident is None or not incident.channel_id:
                continue
            transcript.start(incident, say=_quiet, on_error=_dump_failed, announce=False)
            started.append(incident_id)
        return started


def _quiet(_text: str) -> None:
    """A resumed dump answers no one; a big one edits its own progress message."""


def _dump_failed(error: BaseException) -> None:
    if isinstance(error, FirebreakError):
        log.warning("reconcile: transcript dump still failing: %s", error.user_message)
    else:
        log.error("reconcile: transcript dump failed unexpectedly", exc_info=error)
