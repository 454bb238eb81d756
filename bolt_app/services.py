"""The composition root: builds the adapters and services one bot process uses.

Listeners receive a `Services` and nothing else, so they never construct clients
themselves, and tests can build the whole graph against local fakes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient

from bolt_app.clock import Clock, utcnow
from bolt_app.config import Settings
from bolt_app.incidents import IncidentService, Numbering
from bolt_app.jobs import Jobs
from bolt_app.notion import NotionGateway
from bolt_app.postmortem import PostmortemService
from bolt_app.slack import SlackGateway
from bolt_app.template import load_template
from storage import Store, open_store

#: Threads for work after an ack (declare, status changes, repair).
COMMAND_WORKERS = 16
#: Threads for the parallel halves of a declaration (channel ∥ page).
PARALLEL_WORKERS = 16


@dataclass
class Services:
    settings: Settings
    store: Store
    slack: SlackGateway
    notion: NotionGateway
    incidents: IncidentService
    postmortem: PostmortemService
    commands: Jobs
    parallel: Jobs

    @classmethod
    def build(
        cls,
        settings: Settings,
        client: WebClient,
        *,
        store: Store | None = None,
        clock: Clock = utcnow,
    ) -> Services:
        store = store if store is not None else open_store(settings.database_url)
        slack = SlackGateway(client)
        notion = NotionGateway(
            token=settings.notion_token,
            base_url=settings.notion_api_base_url,
            database_id=settings.notion_postmortem_database_id,
            timeout_s=settings.notion_timeout_seconds,
            logger=logging.getLogger("bolt_app.notion_client"),
        )
        numbering = Numbering(settings.incident_prefix, settings.incident_number_start)
        parallel = Jobs("parallel", PARALLEL_WORKERS)
        postmortem = PostmortemService(
            store=store,
            slack=slack,
            notion=notion,
            numbering=numbering,
            clock=clock,
            template=load_template(settings.postmortem_template),
        )
        incidents = IncidentService(
            store=store,
            slack=slack,
            numbering=numbering,
            clock=clock,
            parallel=parallel.executor,
            pages=postmortem,
        )
        return cls(
            settings=settings,
            store=store,
            slack=slack,
            notion=notion,
            incidents=incidents,
            postmortem=postmortem,
            commands=Jobs("commands", COMMAND_WORKERS),
            parallel=parallel,
        )

    def close(self, timeout: float = 3.0) -> bool:
        """Let running jobs finish briefly, then release the store; False if some didn't."""
        finished = self.commands.shutdown(timeout) and self.parallel.shutdown(timeout)
        if finished:
            self.store.close()
        return finished
