"""`Services`: everything a listener may call, in one typed container.

Listeners receive a `Services` and nothing else, so they never construct clients
themselves. It is built in one place, `bolt_app.runtime.wiring.build_services`, for the
bot, the in-process harness, the benchmarks and the demo alike. Listeners use the
services (`incidents`, `lifecycle`, `postmortem`, `transcript`) and the pools; the store
and the gateways are here for the runtime (reconciler, health, envelope log).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bolt_app.adapters.notion import NotionGateway
from bolt_app.adapters.slack import SlackGateway
from bolt_app.core.jobs import Jobs
from bolt_app.core.priority import AckFirst
from bolt_app.incidents.announcements import Announcer
from bolt_app.incidents.inbox import InboxService
from bolt_app.incidents.lifecycle import LifecycleService
from bolt_app.incidents.postmortem import PostmortemService
from bolt_app.incidents.service import IncidentService
from bolt_app.transcript.capture import CaptureService
from bolt_app.transcript.dump import TranscriptService
from storage import Store


@dataclass
class Services:
    store: Store
    slack: SlackGateway
    notion: NotionGateway
    incidents: IncidentService
    postmortem: PostmortemService
    lifecycle: LifecycleService
    #: None unless INCIDENT_ANNOUNCE_CHANNEL is set.
    announcer: Announcer | None
    commands: Jobs
    #: Commands stored before their ack, run once (see "The inbox").
    inbox: InboxService
    parallel: Jobs
    transcript: TranscriptService
    #: Message events of incident channels, into the store.
    capture: CaptureService
    #: Transcript dumps: long, so on their own small pool, never starving commands.
    dumps: Jobs
    #: Envelopes waiting for their ack; the pools start jobs once there are none.
    acks: AckFirst

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
