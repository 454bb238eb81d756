"""`/incident`: one table of subcommands, one dispatcher.

Each subcommand says whether it needs an incident. The dispatcher resolves the incident
from the channel once (`IncidentService.for_channel`), so "this isn't an incident
channel" is decided in one place, and handlers receive an `Incident`, not a channel id.

A subcommand's `prepare` runs before the ack and only checks the text (no I/O), so bad
input is answered in the ack itself; the real work runs after the ack on our own pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bolt_app import blocks
from bolt_app.artifacts import Kind
from bolt_app.errors import UsageError
from bolt_app.incidents import clean_title
from bolt_app.listeners.errors import Reply, report_to
from bolt_app.services import Services
from bolt_app.slack import Channel
from storage import Incident

log = logging.getLogger(__name__)

PRIVATE_FLAG = "--private"


@dataclass(frozen=True)
class Invocation:
    """One `/incident …` as typed values."""

    user_id: str
    channel_id: str
    args: str
    trigger_id: str
    response_url: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any], args: str) -> Invocation:
        return cls(
            user_id=body["user_id"],
            channel_id=body.get("channel_id", ""),
            args=args,
            trigger_id=body.get("trigger_id", ""),
            response_url=body.get("response_url"),
        )


Handler = Callable[[Services, Invocation, Incident | None, Reply], None]


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    handler: Handler | None
    needs_incident: bool = False
    #: Checks the text before the ack; returns the ack text or raises UsageError.
    prepare: Callable[[Invocation], str | None] = lambda _inv: None


# -- declare -----------------------------------------------------------------------------


def _split_private(args: str) -> tuple[bool, str]:
    words = args.split()
    private = PRIVATE_FLAG in words
    return private, " ".join(w for w in words if w != PRIVATE_FLAG)


def _prepare_declare(inv: Invocation) -> str | None:
    _private, title = _split_private(inv.args)
    if not title:
        return None  # the modal opens instead
    return f"Declaring “{clean_title(title)}”…"


def _declare(services: Services, inv: Invocation, _incident: Incident | None, reply: Reply) -> None:
    private, title = _split_private(inv.args)
    declare_and_tell(
        services,
        reply,
        title=title,
        reporter=inv.user_id,
        severity="P3",
        private=private,
        request_key=f"command:{inv.trigger_id}" if inv.trigger_id else None,
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
) -> None:
    """Record and set up an incident, telling the declarer as soon as its channel exists."""
    incidents = services.incidents
    incident = incidents.record(
        title=title, reporter=reporter, severity=severity, private=private, request_key=request_key
    )
    label = incidents.label(incident)

    def announce(channel: Channel) -> None:
        reply(f"Declared {label}: <#{channel.id}>")

    incidents.set_up(incident, on_channel=announce)


# -- repair and doc ----------------------------------------------------------------------

def _repair(services: Services, _inv: Invocation, incident: Incident | None, reply: Reply
            ) -> None:
    assert incident is not None
    report = services.incidents.repair(incident)
    reply(" · ".join(f"{what}: {outcome}" for what, outcome in report))


def _doc(services: Services, _inv: Invocation, incident: Incident | None, reply: Reply) -> None:
    assert incident is not None
    page = services.store.get_artifact(int(incident.id), Kind.NOTION_POSTMORTEM)
    label = services.incidents.label(incident)
    if page is None or not page.url:
        reply(f"{label} has no postmortem page yet; `/incident repair` creates it now.")
    else:
        reply(f"{label} postmortem: <{page.url}|{label}: {incident.title}>")


# -- the rest ----------------------------------------------------------------------------


def usage_text(unknown: str | None = None) -> str:
    lines = [f"Sorry, I don't know `/incident {unknown}`.", ""] if unknown else []
    lines.append("*/incident* commands:")
    lines += [f"• `/incident {s.usage}` — {s.summary}" for s in SUBCOMMANDS.values()]
    lines.append(
        "Private incidents stay private: a public incident can't be made private "
        "later, because its name and announcement are already out."
    )
    return "\n".join(lines)


SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s
    for s in (
        Subcommand(
            "declare",
            "declare [--private] <title>",
            "start an incident: a channel, a Notion postmortem, a bookmark (no title opens a form)",
            _declare,
            prepare=_prepare_declare,
        ),
        Subcommand("doc", "doc", "link to this incident's postmortem page", _doc,
                   needs_incident=True),
        Subcommand("repair", "repair",
                   "re-run set-up now: page, bookmark (re-added if removed), intro", _repair,
                   needs_incident=True),
        Subcommand("help", "help", "show this list", None),
    )
}


def _parse(text: str) -> tuple[str, str]:
    name, _, args = text.strip().partition(" ")
    return name.lower(), args.strip()


def register(app: App, services: Services) -> None:
    @app.command("/incident")
    def incident_command(
        ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        name, args = _parse(body.get("text", ""))
        sub = SUBCOMMANDS.get(name)
        if sub is None or sub.handler is None:
            ack(text=usage_text(unknown=name if name not in ("", "help") else None))
            return
        inv = Invocation.from_body(body, args)
        try:
            ack_text = sub.prepare(inv)
        except UsageError as error:
            ack(text=error.user_message)
            return
        if sub.name == "declare" and ack_text is None:
            ack()
            client.views_open(
                trigger_id=inv.trigger_id, view=blocks.declare_modal(inv.response_url)
            )
            return
        ack(text=ack_text) if ack_text else ack()
        reply = _ephemeral(respond)
        services.commands.submit(lambda: _run(services, sub, inv, reply), report_to(reply))


def _ephemeral(respond: Respond) -> Reply:
    def reply(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    return reply


def _run(services: Services, sub: Subcommand, inv: Invocation, reply: Reply) -> None:
    assert sub.handler is not None
    incident = services.incidents.for_channel(inv.channel_id) if sub.needs_incident else None
    sub.handler(services, inv, incident, reply)
