"""Running an inbox row again, in a process that did not receive it.

The reconciler claims the rows whose process died (`InboxService.claim_due`) and hands
each here. The row holds what the listener parsed, so the same handler runs with the
same values; only the answer goes another way, through the request's response_url,
as the `respond` of the dead process is gone (see "The inbox" in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bolt_app.listeners.commands import SUBCOMMANDS
from bolt_app.listeners.declare import declare_and_tell
from bolt_app.listeners.dispatch import COMMAND
from bolt_app.listeners.errors import Reply, report_to, via_response_url
from bolt_app.listeners.subcommands import InIncident, Invocation
from bolt_app.listeners.views import FORM
from bolt_app.services import Services
from storage import InboxRow

log = logging.getLogger(__name__)


def replay(services: Services, row: InboxRow) -> None:
    """Run `row` on the commands pool, answering its user through its response_url."""
    work, reply = _work(services, row)
    services.commands.submit(lambda: services.inbox.run(row, work), report_to(reply))


def _work(services: Services, row: InboxRow) -> tuple[Callable[[], None], Reply]:
    payload = row.payload
    if row.kind == FORM:
        reply = via_response_url(payload.get("response_url"))
        fields = dict(payload["fields"])
        return lambda: declare_and_tell(services, reply, **fields), reply
    if row.kind != COMMAND:
        raise ValueError(f"inbox row {row.id} has an unknown kind {row.kind!r}")
    inv = Invocation.from_payload(payload["invocation"])
    reply = via_response_url(inv.response_url)
    sub = SUBCOMMANDS[payload["command"]]
    action = sub.action
    if action is None:
        raise ValueError(f"inbox row {row.id} names {sub.name!r}, which runs nothing")
    if not isinstance(action, InIncident):
        anywhere = action
        return lambda: anywhere.run(services, inv, reply), reply
    in_incident = action

    def in_its_incident() -> None:
        incident = services.incidents.in_channel(inv.channel_id)
        if incident is None:  # it was when the command came; nothing to do now
            log.warning("inbox row %s: channel %s has no incident any more", row.id, inv.channel_id)
            return
        in_incident.run(services, inv, incident, reply)

    return in_its_incident, reply
