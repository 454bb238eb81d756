"""`/incident repair` and `/incident doc`: the postmortem page and bookmark on demand."""

from __future__ import annotations

from bolt_app.core.domain import ArtifactKind
from bolt_app.listeners.errors import Reply
from bolt_app.listeners.subcommands import Invocation, Subcommand
from bolt_app.services import Services
from storage import Incident


def _repair(services: Services, _inv: Invocation, incident: Incident | None, reply: Reply) -> None:
    assert incident is not None
    report = services.incidents.repair(incident)
    reply(" · ".join(f"{what}: {outcome}" for what, outcome in report))


def _doc(services: Services, _inv: Invocation, incident: Incident | None, reply: Reply) -> None:
    assert incident is not None
    page = services.store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM)
    label = services.incidents.label(incident)
    if page is None or not page.url:
        reply(f"{label} has no postmortem page yet; `/incident repair` creates it now.")
    else:
        reply(f"{label} postmortem: <{page.url}|{label}: {incident.title}>")


SUBCOMMANDS = (
    Subcommand("doc", "doc", "link to this incident's postmortem page", _doc, needs_incident=True),
    Subcommand(
        "repair",
        "repair",
        "re-run set-up now: page, bookmark (re-added if removed), intro",
        _repair,
        needs_incident=True,
    ),
)
