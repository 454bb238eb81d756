"""The postmortem page and its channel bookmark, each made exactly once.

See "The exactly-once protocol" in docs/ARCHITECTURE.md.

The page is created with the template already in it, in the same `pages.create` call,
whichever trigger gets there first (declaration, reconciler, repair or a dump), so no
page is ever left without its sections. The bookmark is checked and re-added on every
repair, so a bookmark a user removed comes back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime

from bolt_app.adapters.notion import (
    RATE_LIMITED,
    NotionError,
    NotionGateway,
    PageState,
    PostmortemFields,
)
from bolt_app.adapters.slack import SlackGateway
from bolt_app.core.clock import Clock
from bolt_app.core.domain import ArtifactKind
from bolt_app.core.errors import FirebreakError
from bolt_app.core.naming import Numbering, channel_name
from bolt_app.formats.slack_text import readable, sluggable
from bolt_app.formats.template import render_template
from bolt_app.incidents import marks
from bolt_app.incidents.artifacts import Ensured, Made, ensure_artifact, holding, rendering
from bolt_app.incidents.service import PageSteps, PostmortemFailure, declared_data
from storage import Artifact, ArtifactAttempt, Incident, Store

log = logging.getLogger(__name__)

BOOKMARK_TITLE = "Postmortem"


#: What to tell people about a page someone put away in Notion (`{when}`: its last edit).
PAGE_AWAY: dict[PageState, str] = {
    "trashed": "the postmortem page was moved to Notion's trash{when}; `/incident repair` "
    "restores it",
    "archived": "the postmortem page was archived in Notion{when}: unarchive it there and "
    "the transcript carries on",
    "gone": "the postmortem page is gone from Notion (deleted, or no longer shared with "
    "the integration); `/incident repair` makes a new one",
}

#: The lock a transcript writer holds (`<lock>:<incident id>`); forgetting a page takes it.
TRANSCRIPT_LOCK = "transcript"

#: Rows that lived in a page that is gone, forgotten with it (`PostmortemService.restore`).
IN_THE_PAGE = (
    ArtifactKind.TRANSCRIPT_HEADING,
    ArtifactKind.AI_SUMMARY,
    ArtifactKind.TRANSCRIPT_REFUSAL,
)


def away_text(state: PageState, edited: datetime | None) -> str | None:
    """The sentence for a page in `state`; None for a live page."""
    text = PAGE_AWAY.get(state)
    if text is None:
        return None
    when = f" on {edited:%Y-%m-%d at %H:%M} UTC" if edited is not None else ""
    return text.format(when=when)


class PageAway(FirebreakError):
    """The page is in Notion's trash, archived or gone: nothing is written into it."""

    def __init__(self, where: str) -> None:
        super().__init__(f"Nothing was written: {where}.")


class LabelsTaken(FirebreakError):
    """The Notion database has labels this store would hand out again.

    A reset store, or a second deployment on the same database: declaring now would make
    a second `INC-1` beside the first. Found at start-up and by `check`; every declare
    is refused with this sentence until the operator fixes it (see "Adoption").
    """

    def __init__(self, numbering: Numbering, numbers: Sequence[int]) -> None:
        low, high = min(numbers), max(numbers)
        have = numbering.label(low)
        if high != low:
            have += f"…{numbering.label(high)}"
        super().__init__(
            f"the Notion database already has {have}; point DATABASE_URL at the old store "
            f"or set INCIDENT_NUMBER_START={high + 1}"
        )

    @classmethod
    def among(
        cls, numbering: Numbering, numbers: Sequence[int], upcoming: int
    ) -> LabelsTaken | None:
        """The refusal if a label in `numbers` is at or above the `upcoming` number."""
        if any(number >= upcoming for number in numbers):
            return cls(numbering, numbers)
        return None


class PostmortemService(PageSteps):
    """`ensure_page` and `ensure_bookmark` for one deployment's Notion database."""

    def __init__(
        self,
        *,
        store: Store,
        slack: SlackGateway,
        notion: NotionGateway,
        numbering: Numbering,
        clock: Clock,
        template: str,
    ) -> None:
        self.store = store
        self.slack = slack
        self.notion = notion
        self.numbering = numbering
        self.clock = clock
        self.template = template

    # -- the page --------------------------------------------------------------------------

    def ensure_page(self, incident: Incident) -> Ensured:
        """The incident's page; an earlier attempt's page is adopted, never duplicated."""
        label = self.numbering.label(int(incident.number))
        return ensure_artifact(
            self.store,
            int(incident.id),
            ArtifactKind.NOTION_POSTMORTEM,
            create=lambda token: self._create_page(incident, token),
            find=lambda earlier: self._adopt_page(incident, label, earlier),
            clock=self.clock,
            settle_seconds=self.notion.timeout_s,
            what="postmortem page",
        )

    def taken_labels(self) -> LabelsTaken | None:
        """Whether the database already has a label at or above the store's next number.

        Labels first, then the number: an incident declared between the two reads has its
        row (so its number) before its page, so our own pages never count as taken.
        """
        numbers = self.notion.label_numbers(self.numbering.prefix)
        upcoming = self.store.next_number(self.numbering.start)
        return LabelsTaken.among(self.numbering, numbers, upcoming)

    def away(self, incident: Incident) -> str | None:
        """Where a person put the page, as a sentence; None while it is live or not made.

        One `GET /v1/pages/{id}`: `repair`, `doc`, `info` and a dump ask before they trust it.
        """
        page = self.store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
        if page is None:
            return None
        return away_text(*self.notion.page_status(str(page.external_id)))

    def restore(self, incident: Incident, page: Ensured) -> tuple[str | None, Ensured]:
        """`repair`'s look at a page someone put away: what to say, and the page to go on
        with. A page in the trash is restored (`in_trash: false`); a page that is gone is
        made again with its template, re-bookmarked and its transcript written afresh;
        an archived one is said (a person archived it on purpose: unarchiving is theirs).
        Nothing to say for a live page."""
        state, edited = self.notion.page_status(str(page.artifact.external_id))
        if state == "trashed":
            self.notion.restore_page(str(page.artifact.external_id))
            log.info("restored incident %s's postmortem page from Notion's trash", incident.id)
            return "restored from Notion's trash", page
        if state == "gone":
            return "made again (the old one is gone from Notion)", self._recreate(incident, page)
        return away_text(state, edited), page

    def _recreate(self, incident: Incident, gone: Ensured) -> Ensured:
        """A new page for one that is gone: forget the old one and what was written into
        it (under the transcript's lock, so no dump writes meanwhile), make the new one
        as any page is made, and take the old bookmark down. One lock at a time."""
        incident_id, old = int(incident.id), gone.artifact
        with holding(self.store, f"{TRANSCRIPT_LOCK}:{incident_id}", "transcript"):
            forgot = self.store.forget_page(
                incident_id, ArtifactKind.NOTION_POSTMORTEM, str(old.external_id), IN_THE_PAGE
            )
        if forgot:
            log.info(
                "incident %s's postmortem page is gone from Notion; making it again", incident_id
            )
        made = self.ensure_page(incident)
        self._drop_bookmark(incident, str(old.url or ""))
        return made

    def _drop_bookmark(self, incident: Incident, url: str) -> None:
        """Take down the bookmark of a page that is gone, so `ensure_bookmark` adds the new."""
        if not incident.channel_id or not url:
            return
        channel = str(incident.channel_id)
        with holding(
            self.store, f"{ArtifactKind.BOOKMARK_POSTMORTEM}:{incident.id}", "postmortem bookmark"
        ):
            for bookmark in self.slack.list_bookmarks(channel):
                if bookmark.get("link") == url:
                    self.slack.remove_bookmark(channel, str(bookmark["id"]))
            row = self.store.get_artifact(int(incident.id), ArtifactKind.BOOKMARK_POSTMORTEM)
            if row is not None and row.url == url:
                self.store.delete_artifact(int(incident.id), ArtifactKind.BOOKMARK_POSTMORTEM)

    def page_url(self, incident: Incident) -> str | None:
        """The postmortem page's link, or None while it doesn't exist yet."""
        page = self.store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
        return page.url if page is not None and page.url else None

    def fields(self, incident: Incident) -> PostmortemFields:
        label = self.numbering.label(int(incident.number))
        return PostmortemFields(
            label=label,
            title=f"{label}: {readable(str(incident.title))}",
            severity=str(incident.severity),
            status=str(incident.status),
            declared_at=incident.declared_at,
            channel_url=self.slack.channel_url(str(incident.channel_id))
            if incident.channel_id
            else None,
        )

    def _create_page(self, incident: Incident, token: str) -> Made:
        blocks = render_template(self.template, self._placeholders(incident))
        fields = dataclasses.replace(self.fields(incident), mark=token)
        page = self.notion.create_postmortem(fields, blocks)
        return Made(page.id, page.url)

    def link_channel(self, incident: Incident, page: Artifact) -> None:
        """Fill the page's properties now that the channel exists (its "Channel" url).

        The page is created in parallel with the channel, so it starts without it. Written
        from the current row under the page's render lock, like every properties update.
        """
        with rendering(self.store, "page", int(incident.id)):
            current = self.store.get_incident(int(incident.id)) or incident
            self.notion.update_properties(str(page.external_id), self.fields(current))

    def _adopt_page(
        self, incident: Incident, label: str, earlier: Sequence[ArtifactAttempt]
    ) -> Made | None:
        """Adopt the page an earlier attempt made (it carries that attempt's mark),
        finishing its template if cut short. Another page with the same label, an old
        incident's postmortem say, is never touched."""
        legacy = [a.started_at for a in earlier if not a.token]
        page = self.notion.find_postmortem(
            label, marks.tokens(earlier), unmarked_since=min(legacy) if legacy else None
        )
        if page is None:
            return None
        blocks = render_template(self.template, self._placeholders(incident))
        self.notion.resume_template(page.id, blocks)
        return Made(page.id, page.url)

    def _placeholders(self, incident: Incident) -> dict[str, str]:
        name = incident.channel_name or channel_name(
            self.numbering.channel_prefix, int(incident.number), sluggable(str(incident.title))
        )
        return {
            "incident": self.numbering.label(int(incident.number)),
            "title": readable(str(incident.title)),
            "severity": str(incident.severity),
            "status": str(incident.status),
            "commander": self._commander_name(incident),
            "channel": f"#{name}",
            "declared_at": incident.declared_at.strftime("%Y-%m-%d %H:%M UTC"),
        }

    def _commander_name(self, incident: Incident) -> str:
        """`@alice` for the declarer (their handle from the payload), else the user id."""
        name = declared_data(self.store, incident).get("reporter_name")
        if name and incident.commander == incident.reporter:
            return f"@{name}"
        return str(incident.commander)

    # -- the bookmark ----------------------------------------------------------------------

    def ensure_bookmark(
        self, incident: Incident, page: Artifact, *, verify: bool = False
    ) -> Ensured:
        """Bookmark the page in the channel once; with `verify`, re-add one a user removed."""
        channel, url = str(incident.channel_id), str(page.url)
        ensured = ensure_artifact(
            self.store,
            int(incident.id),
            ArtifactKind.BOOKMARK_POSTMORTEM,
            create=lambda _token: Made(self.slack.add_bookmark(channel, BOOKMARK_TITLE, url), url),
            find=lambda _earlier: self._find_bookmark(channel, url),
            clock=self.clock,
            what="postmortem bookmark",
        )
        if verify and ensured.outcome == "existing":
            return self._verify_bookmark(incident, channel, url, ensured)
        return ensured

    def _find_bookmark(self, channel: str, url: str) -> Made | None:
        for bookmark in self.slack.list_bookmarks(channel):
            if bookmark.get("link") == url:
                return Made(str(bookmark["id"]), url)
        return None

    def _verify_bookmark(
        self, incident: Incident, channel: str, url: str, ensured: Ensured
    ) -> Ensured:
        """Repair's path: always list, and re-add under the lock if the bookmark is gone."""
        with holding(
            self.store, f"{ArtifactKind.BOOKMARK_POSTMORTEM}:{incident.id}", "postmortem bookmark"
        ):
            if self._find_bookmark(channel, url) is not None:
                return ensured
            bookmark_id = self.slack.add_bookmark(channel, BOOKMARK_TITLE, url)
            artifact = self.store.save_artifact(
                int(incident.id), ArtifactKind.BOOKMARK_POSTMORTEM, bookmark_id, url, self.clock()
            )
        log.info("re-added the postmortem bookmark of incident %s", incident.id)
        return Ensured(artifact, "re-added")

    def report_failure(self, incident: Incident, failure: PostmortemFailure) -> None:
        """Say in the channel what failed; the reconciler and `/incident repair` retry it.

        A rate limit is no failure of ours or the user's: Notion asked us to wait (for a
        minute or more, sometimes), so the page simply comes later.
        """
        error = failure.error
        if isinstance(error, NotionError) and error.status in RATE_LIMITED:
            text = "Notion is rate-limiting us; the page will follow (I'll keep trying)."
        else:
            text = (
                f"Couldn't {failure.step} yet: {error.user_message}. "
                "I'll keep trying; `/incident repair` retries now."
            )
        self.slack.post_message(str(incident.channel_id), text)
