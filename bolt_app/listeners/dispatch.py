"""`dispatch`: the one path from a parsed command to its work, for every subcommand.

Both `/incident <subcommand>` and the dumpslack message shortcut end here. For a
subcommand that works on an incident, this is the one place the incident is resolved
from the channel, before its `record` and its handler run; both receive the same
`Incident`. Outside an incident channel nothing is recorded and the user is told so
(the sentence lives in `NotAnIncidentChannel`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

from slack_bolt import Ack

from bolt_app.core.errors import NotAnIncidentChannel
from bolt_app.listeners.errors import Reply, report_to
from bolt_app.listeners.subcommands import Anywhere, InIncident, Invocation
from bolt_app.services import Services
from storage import StoreUnavailable

#: The inbox kind of an `/incident` subcommand (or the shortcut) run as a row.
COMMAND = "command"

#: The ack when the database does not answer: said at once, since nothing was stored.
NO_DATABASE = (
    "Firebreak can't reach its database right now; nothing was {verb}. Try again in a minute."
)


def dispatch(
    services: Services,
    name: str,
    action: InIncident | Anywhere,
    inv: Invocation,
    ack: Ack,
    reply: Reply,
    ack_text: str | None = None,
) -> None:
    """Record (before the ack, so it survives this process), ack, then run on the pool.

    A durable action is one inbox row, committed before the ack; the work runs as that
    row, so another process finishes it if this one dies (see "The inbox"). When the
    database does not answer, the ack itself says so: nothing was stored, so nothing
    will happen, and the user should know that now rather than wait for it.
    """
    try:
        _dispatch(services, name, action, inv, ack, reply, ack_text)
    except StoreUnavailable:
        verb = "declared" if name == "declare" else "recorded"
        _ack(ack, NO_DATABASE.format(verb=verb))


def _dispatch(
    services: Services,
    name: str,
    action: InIncident | Anywhere,
    inv: Invocation,
    ack: Ack,
    reply: Reply,
    ack_text: str | None,
) -> None:
    work: Callable[[], None]
    if isinstance(action, InIncident):
        incident = services.incidents.in_channel(inv.channel_id)
        if incident is None:
            _ack(ack, ack_text)
            services.commands.submit(_not_an_incident_channel, report_to(reply))
            return
        if action.record is not None:
            action.record(services, inv, incident)  # durable before Slack stops redelivering
        work = partial(action.run, services, inv, incident, reply)
    else:
        if action.record is not None:
            action.record(services, inv)  # durable before Slack stops redelivering
        work = partial(action.run, services, inv, reply)
    if not action.durable:
        _ack(ack, ack_text)
        services.commands.submit(work, report_to(reply))
        return
    row = services.inbox.put(
        inv.request_key or f"command:{uuid.uuid4().hex}",
        COMMAND,
        {"command": name, "invocation": inv.payload()},
    )
    _ack(ack, ack_text)
    if row is None:
        return  # stored before: that request is someone's already (or done)
    services.commands.submit(lambda: services.inbox.run(row, work), report_to(reply))


def _ack(ack: Ack, text: str | None) -> None:
    if text:
        ack(text=text)
    else:
        ack()


def _not_an_incident_channel() -> None:
    raise NotAnIncidentChannel()
