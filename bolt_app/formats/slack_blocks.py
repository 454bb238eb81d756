"""Block Kit builders: small functions, one per piece of UI.

Payloads are assembled from these helpers rather than written as large dict literals,
so each message reads like the layout it produces.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bolt_app.core.domain import DEFAULT_SEVERITY, MAX_TITLE, SEVERITIES
from bolt_app.formats.slack_text import for_message, readable

Block = dict[str, Any]

DECLARE_CALLBACK_ID = "declare_incident"
TITLE_BLOCK, TITLE_ACTION = "title", "title_input"
SEVERITY_BLOCK, SEVERITY_ACTION = "severity", "severity_select"
DESCRIPTION_BLOCK, DESCRIPTION_ACTION = "description", "description_input"
PRIVATE_BLOCK, PRIVATE_ACTION, PRIVATE_VALUE = "private", "private_checkbox", "private"


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


#: Block Kit's limits (Slack refuses the whole message with `invalid_blocks` past them).
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
CONTEXT_TEXT_MAX = 2000
#: The form's description: its escaped form (`&` becomes `&amp;`, five characters) and
#: its heading still fit a section.
DESCRIPTION_MAX = 500


#: What must not be cut in two in mrkdwn: an entity, a mention, a link, a date.
_UNCUTTABLE = re.compile(r"&(?:amp|lt|gt);|<[^<>]*>")


def fit(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with "…", never inside an `&amp;` entity or a
    `<…>` mention or link (a cut one would show raw or make Slack refuse the message)."""
    if len(text) <= limit:
        return text
    end = limit - 1
    for match in _UNCUTTABLE.finditer(text, max(0, end - 2000), end + 2000):
        if match.start() < end < match.end():
            end = match.start()
            break
    return text[:end] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(fit(text, SECTION_TEXT_MAX))}


def fields(*pairs: tuple[str, str]) -> Block:
    return {
        "type": "section",
        "fields": [mrkdwn(fit(f"*{name}*\n{value}", FIELD_TEXT_MAX)) for name, value in pairs],
    }


def header(text: str) -> Block:
    return {"type": "header", "text": plain(fit(text, HEADER_TEXT_MAX))}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(fit(text, CONTEXT_TEXT_MAX))]}


def option(value: str, text: str | None = None) -> dict[str, Any]:
    return {"text": plain(text or value), "value": value}


def input_block(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False
) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "element": element,
        "optional": optional,
    }


def escape(text: str) -> str:
    """Escape Slack's three control characters, so a title can't mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def date(moment: datetime) -> str:
    """`<!date^…>`: shown in the reader's own time zone, UTC as the fallback."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def announcement(
    label: str, title: str, severity: str, status: str, commander: str, channel_id: str
) -> tuple[str, list[Block]]:
    """The announcement-channel message: one per incident, edited in place on changes.

    The text starts with `"<label>:"` so the message can be recognised again after a
    lost post response.
    """
    text = (
        f"{label}: {for_message(title)} · {severity} · {status} · commander <@{commander}> · "
        f"<#{channel_id}>"
    )
    body = [
        section(f"*{label}: {for_message(title)}*"),
        fields(
            ("Severity", severity),
            ("Status", status),
            ("Commander", f"<@{commander}>"),
            ("Channel", f"<#{channel_id}>"),
        ),
    ]
    return text, body


def topic(label: str, severity: str, status: str, commander: str) -> str:
    """The channel topic always holds the label, severity and status words."""
    return f"{label} · {severity} · {status} · commander <@{commander}>"


def intro_message(
    label: str,
    title: str,
    severity: str,
    commander: str,
    doc_url: str | None,
    description: str | None = None,
) -> tuple[str, list[Block]]:
    """The first message in an incident channel: what, who, and how to drive the bot."""
    doc = f"<{doc_url}|Postmortem doc>" if doc_url else "Postmortem doc: being created"
    seen = [section(f"*What the declarer sees*\n{escape(description)}")] if description else []
    blocks = [
        header(f"{label}: {readable(title)}"),
        fields(
            ("Severity", severity),
            ("Status", "active"),
            ("Commander", f"<@{commander}>"),
            ("Doc", doc),
        ),
        *seen,
        context(
            "Drive this incident with `/incident` here: `status mitigated`, "
            "`severity P1`, `commander @someone`, `info`. `/incident help` lists them all."
        ),
    ]
    return f"{label}: {for_message(title)} · {severity} · commander <@{commander}>", blocks


def declare_modal(response_url: str | None) -> dict[str, Any]:
    """The modal `/incident declare` opens when it has no title."""
    title_input = {
        "type": "plain_text_input",
        "action_id": TITLE_ACTION,
        "max_length": MAX_TITLE,
        "placeholder": plain("Checkout is down"),
    }
    severity_select = {
        "type": "static_select",
        "action_id": SEVERITY_ACTION,
        "options": [option(s) for s in SEVERITIES],
        "initial_option": option(DEFAULT_SEVERITY),
    }
    description_input = {
        "type": "plain_text_input",
        "action_id": DESCRIPTION_ACTION,
        "multiline": True,
        "max_length": DESCRIPTION_MAX,
    }
    private_checkbox = {
        "type": "checkboxes",
        "action_id": PRIVATE_ACTION,
        "options": [
            {
                "text": plain("Private"),
                "value": PRIVATE_VALUE,
                "description": plain(
                    "A private channel, no announcement. Can't be made private later."
                ),
            }
        ],
    }
    return {
        "type": "modal",
        "callback_id": DECLARE_CALLBACK_ID,
        "private_metadata": response_url or "",
        "title": plain("Declare an incident"),
        "submit": plain("Declare"),
        "close": plain("Cancel"),
        "blocks": [
            input_block(TITLE_BLOCK, "Title", title_input),
            input_block(SEVERITY_BLOCK, "Severity", severity_select),
            input_block(DESCRIPTION_BLOCK, "What do you see?", description_input, optional=True),
            input_block(PRIVATE_BLOCK, "Visibility", private_checkbox, optional=True),
        ],
    }
