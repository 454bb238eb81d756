"""dumpslack: the message shortcut and `/incident dumpslack`, one path through `dispatch`.

Both store the dump request before their ack, so it survives this process (the
reconciler of any process finishes it), then hand the dump to the dumps pool,
so the listener threads stay free for other commands. The outcome comes back
ephemerally: "Transcript up to date: …", or "A dump is already running; new messages
will be included" when another worker holds the dump.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bolt_app.listeners.dispatch import dispatch
from bolt_app.listeners.errors import Reply, ephemeral, report_to
from bolt_app.listeners.subcommands import InIncident, Invocation, Subcommand
from bolt_app.services import Services
from storage import Incident

CALLBACK_ID = "dumpslack"


def _record(services: Services, inv: Invocation, incident: Incident) -> None:
    """The dump request, stored before the ack so it survives this process: the
    reconciler of any process finishes it (see "Durable before the ack")."""
    services.transcript.request(incident, inv.user_id)


def _dumpslack(services: Services, _inv: Invocation, incident: Incident, reply: Reply) -> None:
    services.transcript.start(incident, say=reply, on_error=report_to(reply))


DUMPSLACK = InIncident(_dumpslack, record=_record)


def register(app: App, services: Services) -> None:
    @app.shortcut(CALLBACK_ID)
    def dumpslack_shortcut(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        inv = Invocation.from_shortcut(body)
        dispatch(services, "dumpslack", DUMPSLACK, inv, ack, ephemeral(respond))


SUBCOMMANDS = (
    Subcommand(
        "dumpslack",
        "dumpslack",
        "copy this channel's discussion into the postmortem page (only what's new)",
        DUMPSLACK,
    ),
)
