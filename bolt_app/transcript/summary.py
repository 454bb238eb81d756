"""The optional "Draft summary (AI)" callout in the postmortem page.

With `LLM_BASE_URL`, `LLM_API_KEY` and `LLM_MODEL` all set, a dump that wrote new
messages asks an OpenAI-compatible chat-completions endpoint for a short summary of the
transcript and puts it in one clearly labelled callout: right under the page's "Summary"
heading, or at the top of the page without one. Later dumps update that same callout in
place (`PATCH /v1/blocks/{id}`); it is made through `ensure_artifact`, so there is never a
second one.

Rules this module keeps:

* `openai` is an optional extra (`pip install 'firebreak[ai]'`), imported only when the
  settings ask for it; set but missing is a start-up error (`ConfigError`).
* Private incidents are never sent: `refresh` returns before any call.
* Only the rendered transcript text goes out (read back from the page, trimmed to
  MAX_TRANSCRIPT_CHARS), plus the incident's label, title, status and severity. No token.
* A failure (the endpoint, or Notion while writing the callout) never fails the dump: it
  is logged, and the page keeps the previous draft, if any. No failure note is written:
  a note would replace a good earlier draft with noise, and would itself need cleaning up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bolt_app.adapters.llm import ChatModel
from bolt_app.adapters.notion import NotionError, NotionGateway
from bolt_app.core.clock import Clock
from bolt_app.core.domain import ArtifactKind
from bolt_app.core.errors import FirebreakError
from bolt_app.formats import notion_blocks as nb
from bolt_app.formats.notion_blocks import Block, RichText
from bolt_app.formats.slack_text import readable
from bolt_app.incidents.artifacts import Made, ensure_artifact
from bolt_app.transcript.render import date_line_day
from storage import Incident, Store

log = logging.getLogger(__name__)

LABEL = "Draft summary (AI)"
SUMMARY_HEADING = "Summary"
EMOJI = "🤖"
#: Transcript characters sent to the model (about 12k tokens): head and tail are kept.
MAX_TRANSCRIPT_CHARS = 48_000
#: Share of the budget given to the start of the incident; the rest goes to its end.
HEAD_SHARE = 0.3
#: Threads whose replies are read back for the prompt (each costs one Notion request).
MAX_THREADS_READ = 25
#: The model's answer is cut to this many characters before it goes into the page.
MAX_SUMMARY_CHARS = 4_000
SYSTEM_PROMPT = (
    "You draft the summary section of a blameless incident postmortem. From the Slack "
    "transcript of the incident channel, write at most 150 words of plain text (no Markdown): "
    "what happened, who or what was affected, what was done, and the current state. "
    "State only what the transcript supports; say so when something is unclear."
)


# --- the prompt -------------------------------------------------------------------------------


def trim(lines: Sequence[str], budget: int = MAX_TRANSCRIPT_CHARS) -> str:
    """The lines joined, or their head and tail with a marker when they pass `budget`.

    The start says what broke and the end how it was fixed, so both are kept.
    """
    text = "\n".join(lines)
    if len(text) <= budget:
        return text
    head_budget = int(budget * HEAD_SHARE)
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > head_budget:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > budget - head_budget:
            break
        tail.append(line)
        used += len(line) + 1
    omitted = len(lines) - len(head) - len(tail)
    return "\n".join([*head, f"[… {omitted} lines omitted …]", *reversed(tail)])


def prompt(label: str, incident: Incident, transcript: str) -> str:
    return (
        f"Incident {label}: {readable(str(incident.title))}\n"
        f"Status: {incident.status}; severity: {incident.severity}\n\n"
        f"Slack transcript (times are UTC; replies are indented):\n{transcript}"
    )


# --- the callout ------------------------------------------------------------------------------


def callout(summary: str, model: str, when: str) -> Block:
    """The labelled callout: the label in bold, who wrote it and when, then the draft."""
    rich: list[RichText] = [
        nb.text(LABEL, bold=True),
        nb.text(
            f" · {model} · {when} · a draft from the Slack transcript; check it "
            "before relying on it.\n\n",
            italic=True,
        ),
        nb.text(summary[:MAX_SUMMARY_CHARS]),
    ]
    return nb.callout(nb.split_rich_text(rich)[: nb.MAX_RICH_TEXT_ITEMS], EMOJI)


def is_summary_callout(block: Block) -> bool:
    return block.get("type") == "callout" and nb.plain_text(block).startswith(LABEL)


def _summary_heading(top: Sequence[Block]) -> Block | None:
    return next(
        (
            b
            for b in top
            if str(b.get("type")) in nb.HEADING_TYPES
            and nb.plain_text(b).strip() == SUMMARY_HEADING
        ),
        None,
    )


def _is_gone(error: NotionError) -> bool:
    """The block was deleted (404) or archived (400 "…archived…"): make a new one."""
    return error.status == 404 or (error.status == 400 and "archived" in (error.detail or ""))


class DraftSummary:
    """Writes and refreshes the page's AI draft summary; see the module docstring."""

    def __init__(
        self,
        *,
        store: Store,
        notion: NotionGateway,
        model: ChatModel,
        clock: Clock,
        label: Callable[[Incident], str],
    ) -> None:
        self.store = store
        self.notion = notion
        self.model = model
        self.clock = clock
        self.label = label

    def refresh(self, incident: Incident, page_id: str, transcript_id: str) -> bool:
        """Summarise the transcript under `transcript_id` into the page; never raises ours.

        Returns whether the callout was written. Private incidents: False, with no call.
        """
        if incident.private:
            return False
        try:
            lines = self.read_transcript(transcript_id)
            if not lines:
                return False
            text = self.model.complete(
                SYSTEM_PROMPT, prompt(self.label(incident), incident, trim(lines))
            )
            self._write(incident, page_id, callout(text, self.model.model, self._now()))
        except FirebreakError as error:
            log.warning(
                "AI draft summary of incident %s skipped (the dump is fine): %s",
                incident.id,
                error.user_message,
            )
            return False
        log.info("AI draft summary of incident %s written", incident.id)
        return True

    def _now(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M UTC")

    # reading

    def read_transcript(self, transcript_id: str) -> list[str]:
        """The transcript's lines as the page shows them, replies indented.

        Replies are read for the last MAX_THREADS_READ threads only: one request each.
        """
        top = list(self.notion.list_children(transcript_id))
        threads = [b for b in top if b.get("has_children") and date_line_day(b) is None]
        read = {str(b["id"]) for b in threads[-MAX_THREADS_READ:]}
        lines: list[str] = []
        for block in top:
            lines.append(nb.plain_text(block))
            if str(block["id"]) in read:
                lines += [
                    "    " + nb.plain_text(c) for c in self.notion.list_children(str(block["id"]))
                ]
        return [line for line in lines if line.strip()]

    # writing

    def _write(self, incident: Incident, page_id: str, block: Block) -> None:
        """Update the recorded callout in place, or make it (exactly once) if there is none."""
        incident_id = int(incident.id)
        known = self.store.get_artifact(incident_id, ArtifactKind.AI_SUMMARY)
        if known is not None:
            try:
                self.notion.update_block(str(known.external_id), {"callout": block["callout"]})
                return
            except NotionError as error:
                if not _is_gone(error):
                    raise
                log.info(
                    "AI draft summary of incident %s was deleted; adding it again", incident_id
                )
                self.store.delete_artifact(incident_id, ArtifactKind.AI_SUMMARY)
        ensure_artifact(
            self.store,
            incident_id,
            ArtifactKind.AI_SUMMARY,
            create=lambda _token: Made(self._insert(page_id, block)),
            find=lambda _earlier: self._find(page_id, block),
            clock=self.clock,
            settle_seconds=self.notion.timeout_s,
            what="AI draft summary",
        )

    def _insert(self, page_id: str, block: Block) -> str:
        heading = _summary_heading(list(self.notion.list_children(page_id)))
        if heading is None:
            return self.notion.prepend_block(page_id, block)
        (block_id,) = self.notion.append_blocks(page_id, [block], after=str(heading["id"]))
        return block_id

    def _find(self, page_id: str, block: Block) -> Made | None:
        """Adopt the callout an unanswered insert made, bringing its text up to date."""
        found = next((b for b in self.notion.list_children(page_id) if is_summary_callout(b)), None)
        if found is None:
            return None
        self.notion.update_block(str(found["id"]), {"callout": block["callout"]})
        return Made(str(found["id"]))
