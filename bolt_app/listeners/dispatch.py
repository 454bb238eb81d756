"""`dispatch`: the one path from a parsed command to its work, for every subcommand.

Both `/incident <subcommand>` and the dumpslack message shortcut end here. For a
subcommand that works on an incident, this is the one place the incident is resolved
from the channel, before its `record` and its handler run; both receive the same
`Incident`. Outside an incident channel nothing is recorded and the user is told so
(the sentence lives in `NotAnIncidentChannel`).
"""

from __future__ import annotations

from slack_bolt import Ack

from bolt_app.core.errors import NotAnIncidentChannel
from bolt_app.listeners.errors import Reply, report_to
from bolt_app.listeners.subcommands import Anywhere, InIncident, Invocation
from bolt_app.services import Services


def dispatch(
    services: Services,
    action: InIncident | Anywhere,
    inv: Invocation,
    ack: Ack,
    reply: Reply,
    ack_text: str | None = None,
) -> None:
    """Record (before the ack, so it survives this process), ack, then run on the pool."""
    if isinstance(action, InIncident):
        incident = services.incidents.in_channel(inv.channel_id)
        if incident is not None and action.record is not None:
            action.record(services, inv, incident)  # durable before Slack stops redelivering
        _ack(ack, ack_text)
        if incident is None:
            services.commands.submit(_not_an_incident_channel, report_to(reply))
            return
        scoped = action
        services.commands.submit(
            lambda: scoped.run(services, inv, incident, reply), report_to(reply)
        )
        return
    if action.record is not None:
        action.record(services, inv)  # durable before Slack stops redelivering
    _ack(ack, ack_text)
    anywhere = action
    services.commands.submit(lambda: anywhere.run(services, inv, reply), report_to(reply))


def _ack(ack: Ack, text: str | None) -> None:
    if text:
        ack(text=text)
    else:
        ack()


def _not_an_incident_channel() -> None:
    raise NotAnIncidentChannel()
