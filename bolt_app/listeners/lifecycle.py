"""`/incident status|severity|commander|title|info|list`: driving an incident.

Each `prepare` checks the words before the ack, without I/O, so `severity P9` or an
unknown status is answered in the ack itself. Everything that needs Slack or the store
(who may change it, whether the commander is a person, the transition table against
the current status) runs after the ack in `LifecycleService`, whose typed errors reach
the user through `listeners.errors`. Each change is an inbox row, stored before the ack
and keyed by its trigger: run again after a crash, it finds its own timeline event.
"""

from __future__ import annotations

import logging

from bolt_app.core.domain import STATUSES
from bolt_app.core.errors import UsageError
from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.slack_text import for_message
from bolt_app.incidents.lifecycle import parse_status_args, parse_user, require_reason, summary_line
from bolt_app.incidents.service import clean_severity, clean_title
from bolt_app.listeners.errors import Reply
from bolt_app.listeners.subcommands import Anywhere, InIncident, Invocation, Subcommand
from bolt_app.services import Services
from storage import Incident

log = logging.getLogger(__name__)

# -- checks before the ack ---------------------------------------------------------------------


def _check_status(inv: Invocation) -> str | None:
    require_reason(*parse_status_args(inv.args))
    return None


def _check_severity(inv: Invocation) -> str | None:
    if not inv.args:
        raise UsageError("Which severity? `/incident severity P1`.")
    clean_severity(inv.args)
    return None


def _check_commander(inv: Invocation) -> str | None:
    parse_user(inv.args)
    return None


def _check_title(inv: Invocation) -> str | None:
    if not inv.args.strip():
        raise UsageError("What should the title be? `/incident title Checkout is slow`.")
    clean_title(inv.args)
    return None


# -- handlers, after the ack --------------------------------------------------------------------


def _status(services: Services, inv: Invocation, incident: Incident, _reply: Reply) -> None:
    status, reason = parse_status_args(inv.args)
    services.lifecycle.change_status(
        incident, inv.user_id, status, reason, request_key=inv.request_key
    )


def _severity(services: Services, inv: Invocation, incident: Incident, _reply: Reply) -> None:
    services.lifecycle.change_severity(incident, inv.user_id, inv.args, request_key=inv.request_key)


def _commander(services: Services, inv: Invocation, incident: Incident, _reply: Reply) -> None:
    services.lifecycle.change_commander(
        incident, inv.user_id, parse_user(inv.args), request_key=inv.request_key
    )


def _title(services: Services, inv: Invocation, incident: Incident, _reply: Reply) -> None:
    services.lifecycle.change_title(incident, inv.user_id, inv.args, request_key=inv.request_key)


def _info(services: Services, _inv: Invocation, incident: Incident, reply: Reply) -> None:
    reply(info_text(services, incident))


def info_text(services: Services, incident: Incident) -> str:
    """The `/incident info` card, as mrkdwn lines."""
    label = services.incidents.label(incident)
    url = services.postmortem.page_url(incident)
    doc = f"<{url}|Postmortem doc>" if url else "not created yet (`/incident repair` creates it)"
    written = services.transcript.written_count(incident)
    transcript = f"{written} message(s) written to the doc" if written else "not dumped yet"
    where = services.postmortem.away(incident) if url else None
    if where is not None:  # what was written is in a page people can't see: say so
        transcript = f"paused, {written} message(s) written before it was put away"
        doc = f"<{url}|Postmortem doc>: {where}"
    return "\n".join(
        [
            f"*{label}: {for_message(str(incident.title))}*",
            f"Status: {incident.status} · Severity: {incident.severity} · "
            f"Commander: <@{incident.commander}>",
            f"Declared: {blocks.date(incident.declared_at)} by <@{incident.reporter}>"
            + (" · private" if incident.private else ""),
            f"Doc: {doc}",
            f"Transcript: {transcript}",
        ]
    )


def _list(services: Services, inv: Invocation, reply: Reply) -> None:
    """Open incidents, newest first; a private one only to the people in its channel."""
    lines = [
        summary_line(services.incidents.label(incident), incident)
        for incident in services.incidents.listed_for(inv.user_id)
    ]
    reply("*Open incidents*\n" + "\n".join(lines) if lines else "No open incidents.")


SUBCOMMANDS = (
    Subcommand(
        "status",
        f"status <{'|'.join(STATUSES)}> [reason]",
        "change the status (canceled needs a reason)",
        InIncident(_status, durable=True),
        prepare=_check_status,
    ),
    Subcommand(
        "severity",
        "severity <P0..P4>",
        "change the severity",
        InIncident(_severity, durable=True),
        prepare=_check_severity,
    ),
    Subcommand(
        "commander",
        "commander <@user>",
        "hand over command (invites them)",
        InIncident(_commander, durable=True),
        prepare=_check_commander,
    ),
    Subcommand(
        "title",
        "title <text>",
        "rename the incident",
        InIncident(_title, durable=True),
        prepare=_check_title,
    ),
    Subcommand("info", "info", "this incident's status, people and doc", InIncident(_info)),
    Subcommand("list", "list", "open incidents (run it anywhere)", Anywhere(_list)),
)
