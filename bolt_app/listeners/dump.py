"""dumpslack: the message shortcut and `/incident dumpslack` (issue 4).

Both store the dump request before their ack, so it survives this process (design.md
§12: the reconciler of any process finishes it), then hand the dump to the dumps pool,
so the listener threads stay free for other commands. The outcome comes back
ephemerally: "Transcript up to date: …", or "A dump is already running; new messages
will be included" when another worker holds the dump.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bolt_app.core.errors import NotAnIncidentChannel
from bolt_app.listeners.errors import Reply, ephemeral, report_to
from bolt_app.listeners.subcommands import Invocation, Subcommand
from bolt_app.services import Services
from storage import Incident

CALLBACK_ID = "dumpslack"


def _start(services: Services, incident: Incident, reply: Reply) -> None:
    services.transcript.start(incident, say=reply, on_error=report_to(reply))


def _record(services: Services, inv: Invocation) -> None:
    """The dump request, stored before the ack so it survives this process (§12).

    Outside an incident channel nothing is stored; the handler then says so.
    """
    incident = services.store.incident_by_channel(inv.channel_id) if inv.channel_id else None
    if incident is not None:
        services.transcript.request(incident, inv.user_id)


def _dumpslack(
    services: Services, inv: Invocation, incident: Incident | None, reply: Reply
) -> None:
    assert incident is not None  # its request was stored before the ack
    _start(services, incident, reply)


def register(app: App, services: Services) -> None:
    @app.shortcut(CALLBACK_ID)
    def dumpslack_shortcut(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        channel = str((body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        incident = services.store.incident_by_channel(channel) if channel else None
        if incident is not None:
            services.transcript.request(incident, user)  # recorded before the ack (§12)
        ack()
        reply = ephemeral(respond)
        if incident is None:
            reply(NotAnIncidentChannel().user_message)
            return
        _start(services, incident, reply)


SUBCOMMANDS = (
    Subcommand(
        "dumpslack",
        "dumpslack",
        "copy this channel's discussion into the postmortem page (only what's new)",
        _dumpslack,
        needs_incident=True,
        record=_record,
    ),
)
