"""`/incident repair` and `/incident doc`: the postmortem page and bookmark on demand."""

from __future__ import annotations

from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.slack_text import readable
from bolt_app.listeners.errors import Reply
from bolt_app.listeners.subcommands import InIncident, Invocation, Subcommand
from bolt_app.services import Services
from storage import Incident


def _repair(services: Services, _inv: Invocation, incident: Incident, reply: Reply) -> None:
    report = services.incidents.repair(incident)
    reply(" · ".join(f"{what}: {outcome}" for what, outcome in report))


def _doc(services: Services, _inv: Invocation, incident: Incident, reply: Reply) -> None:
    url = services.postmortem.page_url(incident)
    label = services.incidents.label(incident)
    away = services.postmortem.away(incident) if url is not None else None
    if away is not None:
        reply(f"{label}: {away}. <{url}|The page>")
    elif url is None:
        reply(f"{label} has no postmortem page yet; `/incident repair` creates it now.")
    else:
        name = blocks.escape(readable(str(incident.title)))
        reply(f"{label} postmortem: <{url}|{label}: {name}>")


SUBCOMMANDS = (
    Subcommand("doc", "doc", "link to this incident's postmortem page", InIncident(_doc)),
    Subcommand(
        "repair",
        "repair",
        "re-run set-up now: page, bookmark (re-added if removed), intro",
        InIncident(_repair, durable=True),
    ),
)
