"""`/incident`: one table of subcommands, one dispatcher.

Subcommands are defined in their own modules (`declare`, `repair`, …), each exporting
`SUBCOMMANDS`; this module joins them into one table. `dispatch` resolves the incident
from the channel once for the subcommands that need one (the dumpslack shortcut goes
through it too), so "this isn't an incident channel" is decided in one place.

A subcommand's `prepare` runs before the ack and only checks the text (no I/O), so bad
input is answered in the ack itself; the real work runs after the ack on our own pool.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bolt_app.core.errors import FirebreakError
from bolt_app.listeners import declare, dump, lifecycle, repair
from bolt_app.listeners.dispatch import dispatch
from bolt_app.listeners.errors import ephemeral
from bolt_app.listeners.subcommands import Invocation, Subcommand
from bolt_app.services import Services
from bolt_app.transcript.render import unescape

#: The slash command, as registered in the Slack app manifest.
COMMAND = "/incident"

HELP = Subcommand("help", "help", "show this list", None)

SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s
    for s in (
        *declare.SUBCOMMANDS,
        *lifecycle.SUBCOMMANDS,
        *repair.SUBCOMMANDS,
        *dump.SUBCOMMANDS,
        HELP,
    )
}


def usage_text(unknown: str | None = None) -> str:
    lines = [f"Sorry, I don't know `/incident {unknown}`.", ""] if unknown else []
    lines.append("*/incident* commands:")
    lines += [f"• `/incident {s.usage}` — {s.summary}" for s in SUBCOMMANDS.values()]
    lines.append(
        "Private incidents stay private: a public incident can't be made private "
        "later, because its name and announcement are already out."
    )
    return "\n".join(lines)


def _parse(text: str) -> tuple[str, str]:
    """Split `/incident <name> <args>`; Slack sends `&`, `<`, `>` as entities, so a title
    like "Search & browse" is stored as typed."""
    name, _, args = text.strip().partition(" ")
    return name.lower(), unescape(args.strip())


def register(app: App, services: Services) -> None:
    @app.command(COMMAND)
    def incident_command(
        ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        name, args = _parse(body.get("text", ""))
        sub = SUBCOMMANDS.get(name)
        if sub is None or sub.action is None:
            ack(text=usage_text(unknown=name if name not in ("", "help") else None))
            return
        inv = Invocation.from_body(body, args)
        try:
            ack_text = sub.prepare(inv)
            sub.allowed(services)
        except FirebreakError as error:  # a usage error, or declares refused
            ack(text=error.user_message)
            return
        if ack_text is None and sub.form is not None:
            ack()
            client.views_open(trigger_id=inv.trigger_id, view=sub.form(inv))
            return
        dispatch(services, sub.name, sub.action, inv, ack, ephemeral(respond), ack_text)
