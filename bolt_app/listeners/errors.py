"""The single place where failures become what the user reads.

Bolt's error handler and the background job runner both call `describe`, so a typed
`FirebreakError` always reaches the user as its own sentence, and anything unexpected
becomes "Something went wrong (ref …)" with the same ref in the log for the operator.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, Respond
from slack_bolt.response import BoltResponse
from slack_sdk.webhook import WebhookClient

from bolt_app.core.errors import FirebreakError

log = logging.getLogger(__name__)

Reply = Callable[[str], None]


def describe(error: BaseException) -> str:
    """The user's sentence for `error`; unknown errors are logged with a short ref."""
    if isinstance(error, FirebreakError):
        log.info("refused: %s", error.user_message)
        return error.user_message
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error (ref %s)", ref, exc_info=error)
    return f"Something went wrong (ref {ref}). The team can find it in the bot's log."


def ephemeral(respond: Respond) -> Reply:
    """A `Reply` that answers through the payload's response_url, only to its user."""

    def reply(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    return reply


def via_response_url(response_url: str | None) -> Reply:
    """A `Reply` through a payload's response_url, for work run without its `respond`
    (a row another process took over): Slack keeps the URL valid for 30 minutes."""
    if not response_url:
        return _unanswerable
    hook = WebhookClient(response_url)

    def reply(text: str) -> None:
        hook.send(text=text, response_type="ephemeral", replace_original=False)

    return reply


def _unanswerable(text: str) -> None:
    log.warning("no response_url to answer a resumed request (%d characters)", len(text))


def report_to(reply: Reply) -> Callable[[BaseException], None]:
    """An `on_error` for background jobs that answers through `reply` (once: a retry
    failing the way the person was already told is only logged)."""

    def report(error: BaseException) -> None:
        message = describe(error)
        if getattr(error, "worth_saying", True):
            reply(message)

    return report


def register(app: App) -> None:
    @app.error
    def handle_error(error: Exception, body: dict[str, Any], respond: Any) -> BoltResponse | None:
        message = describe(error)
        if body.get("response_url"):
            respond(text=message, response_type="ephemeral", replace_original=False)
        return None
