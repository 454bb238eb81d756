"""The announcement channel: one message per public incident, always current.

With `INCIDENT_ANNOUNCE_CHANNEL` set, each public incident gets one message there at
declaration (label, title, severity, status, commander, channel link). The message is
an artefact like any other (`ArtifactKind.ANNOUNCEMENT`, its ts as the external id), made
exactly once through `ensure_artifact`, and every later change edits that same message
with `chat.update`, so the channel shows the current state without noise.

Private incidents are never announced: their name alone may say too much.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bolt_app.adapters.slack import SLACK_TIMEOUT_SECONDS, SlackGateway
from bolt_app.core.clock import Clock
from bolt_app.core.domain import ArtifactKind
from bolt_app.core.naming import Numbering
from bolt_app.formats import slack_blocks as blocks
from bolt_app.incidents import marks
from bolt_app.incidents.artifacts import Ensured, Made, ensure_artifact, rendering
from storage import ArtifactAttempt, Incident, Store

log = logging.getLogger(__name__)

#: How far back a lost announcement is looked for; adoption happens within minutes
#: of the failed attempt (the reconciler's next pass), so one history page is plenty.
ADOPT_SCAN_MESSAGES = 100


class Announcer:
    """Posts and edits the announcement of each public incident in one channel."""

    def __init__(
        self,
        *,
        store: Store,
        slack: SlackGateway,
        numbering: Numbering,
        clock: Clock,
        channel_id: str,
    ) -> None:
        self.store = store
        self.slack = slack
        self.numbering = numbering
        self.clock = clock
        self.channel_id = channel_id

    def applies(self, incident: Incident) -> bool:
        """Public incidents with a channel are announced; private ones never."""
        return not incident.private and incident.channel_id is not None

    def ensure(self, incident: Incident) -> Ensured | None:
        """The incident's announcement, posted once; None for a private incident."""
        if not self.applies(incident):
            return None
        incident_id = int(incident.id)
        return ensure_artifact(
            self.store,
            incident_id,
            ArtifactKind.ANNOUNCEMENT,
            create=lambda token: self._post(incident_id, token),
            find=lambda earlier: self._find(incident, earlier),
            clock=self.clock,
            settle_seconds=SLACK_TIMEOUT_SECONDS,
            what="announcement",
        )

    def refresh(self, incident: Incident) -> None:
        """Make the announcement show the incident as it is now (post it if missing).

        A freshly posted one is already current. Otherwise it is edited from the row as
        read now, so a change racing the first post is still shown: the post happens
        under the artefact lock, which `ensure` waits for before we edit.
        """
        ensured = self.ensure(incident)
        if ensured is None or ensured.outcome == "created":
            return
        # Read and written under the announcement's render lock (taken after `ensure`
        # let go of its own): of two edits, the later one shows the later row.
        with rendering(self.store, "announcement", int(incident.id)):
            text, body = self._render(self._current(int(incident.id)))
            self.slack.update_message(
                self.channel_id, str(ensured.artifact.external_id), text, body
            )

    def _post(self, incident_id: int, token: str) -> Made:
        incident = self._current(incident_id)
        text, body = self._render(incident)
        mark = marks.message_metadata(
            "announcement", self.numbering.label(int(incident.number)), token
        )
        return Made(self.slack.post_message(self.channel_id, text, body, mark))

    def _find(self, incident: Incident, earlier: Sequence[ArtifactAttempt]) -> Made | None:
        """After a failed attempt: adopt the announcement it posted, recognised by the
        token in its metadata, so another deployment's `INC-42` in the same channel is
        never taken for ours."""
        ts = marks.marked_message(
            self.slack.recent_messages(self.channel_id, ADOPT_SCAN_MESSAGES),
            author=self.slack.bot_user_id,
            earlier=earlier,
            label=self.numbering.label(int(incident.number)),
        )
        return Made(ts) if ts is not None else None

    def _current(self, incident_id: int) -> Incident:
        incident = self.store.get_incident(incident_id)
        assert incident is not None, f"incident {incident_id} vanished"
        return incident

    def _render(self, incident: Incident) -> tuple[str, list[blocks.Block]]:
        return blocks.announcement(
            self.numbering.label(int(incident.number)),
            str(incident.title),
            str(incident.severity),
            str(incident.status),
            str(incident.commander),
            str(incident.channel_id),
        )
