"""The composition root: builds the adapters and services one bot process uses.

Listeners receive a `Services` and nothing else, so they never construct clients
themselves, and tests can build the whole graph against local fakes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from slack_sdk import WebClient

from bolt_app.adapters.notion import NotionGateway
from bolt_app.adapters.slack import SlackGateway
from bolt_app.core.clock import Clock, utcnow
from bolt_app.core.jobs import Jobs
from bolt_app.formats.template import load_template
from bolt_app.incidents.announcements import Announcer
from bolt_app.incidents.lifecycle import LifecycleService
from bolt_app.incidents.postmortem import PostmortemService
from bolt_app.incidents.service import IncidentService, Numbering
from bolt_app.runtime.config import Settings
from bolt_app.transcript.dump import TranscriptService
from bolt_app.transcript.summary import build_summary
from storage import Store, open_store

#: Threads for work after an ack (declare, status changes, repair). More would finish a
#: burst of declares sooner but slow every ack behind it: acks and set-up share one GIL
#: and one database writer, and each declare is stored before its ack.
COMMAND_WORKERS = 8
#: Threads for transcript dumps (each holds its incident's dump lock while it runs).
DUMP_WORKERS = 2
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
    lifecycle: LifecycleService
    #: None unless INCIDENT_ANNOUNCE_CHANNEL is set.
    announcer: Announcer | None
    commands: Jobs
    parallel: Jobs
    transcript: TranscriptService
    #: Transcript dumps: long, so on their own small pool, never starving commands.
    dumps: Jobs

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
        dumps = Jobs("dumps", DUMP_WORKERS)
        postmortem = PostmortemService(
            store=store,
            slack=slack,
            notion=notion,
            numbering=numbering,
            clock=clock,
            template=load_template(settings.postmortem_template),
        )
        announcer = (
            Announcer(
                store=store,
                slack=slack,
                numbering=numbering,
                clock=clock,
                channel_id=settings.incident_announce_channel,
            )
            if settings.incident_announce_channel
            else None
        )
        incidents = IncidentService(
            store=store,
            slack=slack,
            numbering=numbering,
            clock=clock,
            parallel=parallel.executor,
            pages=postmortem,
            announcer=announcer,
        )
        lifecycle = LifecycleService(
            store=store,
            slack=slack,
            notion=notion,
            incidents=incidents,
            fields=postmortem.fields,
            clock=clock,
            announcer=announcer,
        )
        services = cls(
            settings=settings,
            store=store,
            slack=slack,
            notion=notion,
            incidents=incidents,
            postmortem=postmortem,
            lifecycle=lifecycle,
            announcer=announcer,
            commands=Jobs("commands", COMMAND_WORKERS),
            parallel=parallel,
            transcript=TranscriptService(
                store=store,
                slack=slack,
                notion=notion,
                postmortem=postmortem,
                clock=clock,
                jobs=dumps,
                summary=build_summary(
                    settings, store=store, notion=notion, clock=clock, label=incidents.label
                ),
            ),
            dumps=dumps,
        )
        lifecycle.status_hooks.append(services.transcript.on_status_change)
        return services

    def close(self, timeout: float = 3.0) -> bool:
        """Stop every pool, let running jobs finish within `timeout` in all, then release
        the store; False if some jobs were still running (the store is then left open)."""
        deadline = time.monotonic() + timeout
        finished = [
            pool.shutdown(max(0.0, deadline - time.monotonic()))
            for pool in (self.commands, self.parallel, self.dumps)
        ]
        if all(finished):
            self.store.close()
        return all(finished)
