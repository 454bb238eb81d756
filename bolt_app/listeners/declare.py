"""`/incident declare [--private] [--new] <title>`, and the form it opens without a title.

The same person declaring the same title again within `REPEAT_DECLARE_WINDOW` is told
about the incident they already have (Slack showed them an error, so they typed it
again); `--new` declares a second one anyway.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bolt_app.adapters.slack import Channel, SlackError
from bolt_app.core.domain import DEFAULT_SEVERITY
from bolt_app.core.errors import FirebreakError
from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.slack_text import for_message, readable
from bolt_app.incidents.service import REPEAT_DECLARE_WINDOW, clean_title, is_repeat
from bolt_app.listeners.errors import Reply
from bolt_app.listeners.subcommands import Anywhere, Invocation, Subcommand
from bolt_app.services import Services

PRIVATE_FLAG = "--private"
NEW_FLAG = "--new"


def _split_private(args: str) -> tuple[bool, str]:
    """(private, title) of the command's text; flags are left out of the title."""
    words = args.split()
    private = PRIVATE_FLAG in words
    return private, " ".join(w for w in words if w not in (PRIVATE_FLAG, NEW_FLAG))


def _repeat_within(inv: Invocation) -> timedelta | None:
    return None if NEW_FLAG in inv.args.split() else REPEAT_DECLARE_WINDOW


def _prepare(inv: Invocation) -> str | None:
    _private, title = _split_private(inv.args)
    if not title:
        return None  # the form opens instead
    return f"Declaring “{for_message(clean_title(title))}”…"


def _form(inv: Invocation) -> dict[str, Any]:
    return blocks.declare_modal(inv.response_url)


def _declare(services: Services, inv: Invocation, reply: Reply) -> None:
    private, title = _split_private(inv.args)
    declare_and_tell(
        services,
        reply,
        title=title,
        reporter=inv.user_id,
        severity=DEFAULT_SEVERITY,
        private=private,
        request_key=inv.request_key,
        reporter_name=inv.user_name,
        repeat_within=_repeat_within(inv),
    )


def declare_and_tell(
    services: Services,
    reply: Reply,
    *,
    title: str,
    reporter: str,
    severity: str,
    private: bool,
    request_key: str | None,
    description: str | None = None,
    reporter_name: str | None = None,
    repeat_within: timedelta | None = REPEAT_DECLARE_WINDOW,
) -> None:
    """Record and set up an incident, telling the declarer as soon as its channel exists.

    This runs after the ack, as the declare's inbox row: the number is allocated here,
    off the ack's path, and a second run (another process took the row over) finds
    the incident by its request key.

    A repeat (see the module) is set up too, since the first attempt may have died
    half-way, and the answer names the incident they already have.
    """
    incidents = services.incidents
    incident = incidents.record(
        title=title,
        reporter=reporter,
        severity=severity,
        private=private,
        request_key=request_key,
        description=description,
        reporter_name=reporter_name,
        repeat_within=repeat_within,
    )
    label = incidents.label(incident)
    repeat = is_repeat(incident, request_key)
    # The channel was tried before this run: this is a retry after a failure the
    # declarer was told about (or after a crash), so the answer is the follow-up, even
    # if the reconciler made the channel in between.
    retried = incidents.channel_attempted(incident)

    def tell(channel: Channel) -> None:
        if repeat:
            reply(
                f"You declared {label} a moment ago: <#{channel.id}>. "
                f"To declare another anyway: "
                f"`/incident declare {NEW_FLAG} {readable(str(incident.title))}`"
            )
        elif retried:
            reply(f"{label} is ready: <#{channel.id}>")
        else:
            reply(f"Declared {label}: <#{channel.id}>")

    try:
        incidents.set_up(incident, on_channel=tell)
    except SlackError as error:
        if incidents.refresh(incident).channel_id is not None:
            raise
        raise ChannelNotMade(label, error, told=retried) from error


class ChannelNotMade(FirebreakError):
    """Slack did not create the incident's channel; the declare's row runs again soon."""

    retry_later = True

    def __init__(self, label: str, error: SlackError, *, told: bool = False) -> None:
        self.worth_saying = not told
        if error.trouble:
            why = f"Slack is having trouble, so {label}'s channel isn't made yet"
        else:
            why = f"Slack refused to create {label}'s channel (`{error.code}`)"
        super().__init__(f"{why}; I'll keep trying and tell you here when it's ready.")


SUBCOMMANDS = (
    Subcommand(
        "declare",
        "declare [--private] [--new] <title>",
        "start an incident: a channel, a Notion postmortem, a bookmark (no title opens a form)",
        Anywhere(_declare, durable=True),
        prepare=_prepare,
        form=_form,
        allowed=lambda services: services.incidents.declarable(),
    ),
)
