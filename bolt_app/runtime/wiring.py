"""The one place a bot process is put together: `build_services`, then `start_bot`.

`python -m bolt_app`, the in-process test harness, the benchmarks and the demo all build
their bot here, so the tests run what production runs: the start-up checks, the
envelope log, `/healthz` and the reconciler included.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient

from bolt_app.adapters.llm import OpenAIChat
from bolt_app.adapters.notion import NotionError, NotionGateway, NotionSchemaError
from bolt_app.adapters.pace import Pace
from bolt_app.adapters.slack import SlackError, SlackGateway, build_web_client
from bolt_app.core import metrics
from bolt_app.core.clock import Clock, utcnow
from bolt_app.core.jobs import Jobs
from bolt_app.core.naming import Numbering
from bolt_app.core.priority import AckFirst
from bolt_app.formats.template import load_template
from bolt_app.incidents.announcements import Announcer
from bolt_app.incidents.inbox import InboxService
from bolt_app.incidents.lifecycle import LifecycleService
from bolt_app.incidents.postmortem import PostmortemService
from bolt_app.incidents.service import IncidentService
from bolt_app.listeners import replay
from bolt_app.runtime import envelope_log
from bolt_app.runtime.config import Settings, llm_config
from bolt_app.runtime.health import HealthServer, serve_health
from bolt_app.runtime.reconciler import Reconciler
from bolt_app.runtime.reconnect import DEFAULT_BACKOFF, Backoff
from bolt_app.runtime.socket_mode import AppTokenRefused, SocketRunner, build_app
from bolt_app.services import Services
from bolt_app.transcript.capture import CaptureService
from bolt_app.transcript.dump import TranscriptService
from bolt_app.transcript.summary import DraftSummary
from storage import Store, StoreError, open_store

log = logging.getLogger("bolt_app")

#: Threads for work after an ack (declare, status changes, repair). More would finish a
#: burst of declares sooner but slow every ack behind it: acks and set-up share one GIL
#: and one database writer, and each declare is stored before its ack.
COMMAND_WORKERS = 8
#: Threads for transcript dumps (each holds its incident's dump lock while it runs).
DUMP_WORKERS = 2
#: Threads for the parallel halves of a declaration (channel ∥ page).
PARALLEL_WORKERS = 16

#: Notion answers that mean the set-up is wrong, not that Notion is down.
_SETUP_STATUSES = {401: "NOTION_TOKEN", 403: "NOTION_TOKEN", 404: "NOTION_POSTMORTEM_DATABASE_ID"}


class StartupError(Exception):
    """A problem the operator must fix before the bot can run; the message says which."""


#: Requests the transcript's budget lets go at once before pacing starts.
TRANSCRIPT_BURST = 10


def build_services(
    settings: Settings,
    client: WebClient,
    *,
    store: Store | None = None,
    clock: Clock = utcnow,
) -> Services:
    """The adapters and services of one process, sharing one store and one clock."""
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
    # Acks first: the commands' and dumps' jobs start once no envelope waits for its ack.
    acks = AckFirst()
    parallel = Jobs("parallel", PARALLEL_WORKERS)
    dumps = Jobs("dumps", DUMP_WORKERS, before_each=acks.wait_quiet)
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
    # All incidents' transcript syncs share one Notion budget (see "The transcript" in
    # docs/ARCHITECTURE.md); declares and commands never wait on it.
    rps = settings.transcript_notion_rps
    transcript = TranscriptService(
        store=store,
        slack=slack,
        notion=notion.paced(Pace(rps, burst=TRANSCRIPT_BURST) if rps > 0 else None),
        postmortem=postmortem,
        clock=clock,
        jobs=dumps,
        summary=_draft_summary(settings, store, notion, clock, incidents),
        sync_seconds=settings.transcript_sync_seconds,
    )
    # The live transcript: captured messages reach the page; a gap is filled from Slack.
    capture = CaptureService(
        store=store,
        in_channel=incidents.in_channel,
        own_ids=lambda: {i for i in (slack.bot_user_id, slack.bot_id) if i},
        clock=clock,
        changed=transcript.captured,
    )
    transcript.fill_gaps = lambda incident, reach: capture.fill_gaps(incident, slack, reach)
    # Metrics the store can't import: lock waits, and the stored requests not yet done.
    store.lock_waited = lambda name, seconds: metrics.LOCK_WAIT_SECONDS.labels(
        metrics.lock_kind(name)
    ).observe(seconds)
    store.lock_timed_out = lambda name: metrics.LOCK_TIMEOUTS.labels(metrics.lock_kind(name)).inc()
    inbox = InboxService(store, clock)
    metrics.watch_inbox(lambda: _inbox(store, inbox, clock))
    # A change to mitigated, resolved or postmortem starts a dump.
    lifecycle.status_hooks.append(transcript.on_status_change)
    return Services(
        store=store,
        slack=slack,
        notion=notion,
        incidents=incidents,
        postmortem=postmortem,
        lifecycle=lifecycle,
        announcer=announcer,
        commands=Jobs("commands", COMMAND_WORKERS, before_each=acks.wait_quiet),
        inbox=inbox,
        parallel=parallel,
        transcript=transcript,
        capture=capture,
        dumps=dumps,
        acks=acks,
    )


def _inbox(store: Store, inbox: InboxService, clock: Clock) -> tuple[float, float]:
    """The inbox gauges at a scrape: commands not done plus dump requests not done (a
    dump's request is its inbox row); NaN while the database doesn't answer."""
    try:
        commands, commands_age = inbox.depth()
        dumps, dumps_age = store.pending_requests(clock())
    except StoreError:
        return math.nan, math.nan
    return float(commands + dumps), max(commands_age, dumps_age)


def _draft_summary(
    settings: Settings,
    store: Store,
    notion: NotionGateway,
    clock: Clock,
    incidents: IncidentService,
) -> DraftSummary | None:
    """The AI draft when the LLM settings ask for it; ConfigError if they are unusable."""
    config = llm_config(settings)
    if config is None:
        return None
    return DraftSummary(
        store=store, notion=notion, model=OpenAIChat(config), clock=clock, label=incidents.label
    )


@dataclass
class BotProcess:
    """A connected bot: what `start_bot` made, and how to stop it."""

    settings: Settings
    services: Services
    app: App
    runner: SocketRunner
    reconciler: Reconciler
    health: HealthServer | None

    def stop(self, grace_seconds: float) -> bool:
        """Stop serving, then let running jobs finish within `grace_seconds`.

        False if some were still running: they are ensure steps that the reconciler of
        any process re-runs, so the caller may leave without waiting for them.
        """
        if self.health is not None:
            self.health.stop()
        self.reconciler.stop(timeout=1.0)
        self.runner.close()
        self.services.inbox.stop()
        return self.services.close(grace_seconds)


def start_bot(
    settings: Settings, *, store: Store | None = None, backoff: Backoff = DEFAULT_BACKOFF
) -> BotProcess:
    """Build, check and connect a bot; `StartupError` names what the operator must fix.

    `backoff` spaces Socket Mode reconnect attempts (tests pass a short one).
    """
    client = build_web_client(settings.slack_bot_token, settings.slack_api_base_url)
    try:
        services = build_services(settings, client, store=store)
    except (ValueError, StoreError) as error:
        raise StartupError(f"DATABASE_URL doesn't work: {error}") from None
    try:
        _check_slack_token(services)
        if _check_notion_schema(services):
            _check_labels(services)
        app = build_app(services, client)
        runner = SocketRunner(app, settings.slack_app_token, backoff=backoff)
        envelope_log.attach(runner.client, app, services)
        runner.client.on_session_start.append(lambda: _catch_up(services))
        runner.client.on_envelope = services.acks.arrived
        _connect(runner)
    except BaseException:
        services.close(timeout=1.0)
        raise
    health = serve_health(
        settings.health_port, runner.is_connected, services.store, runner.down_reason
    )
    services.inbox.start()
    reconciler = Reconciler(services, settings.reconcile_interval_seconds, replay.replay)
    reconciler.start()
    log.info("connected in Socket Mode; waiting for /incident")
    return BotProcess(settings, services, app, runner, reconciler, health)


def _catch_up(services: Services) -> None:
    """A new Socket Mode connection (start-up or reconnect): events may have been missed,
    so each open incident's transcript fills the gap from Slack's history and syncs."""
    services.transcript.connected()
    for incident in services.incidents.open_incidents():
        if incident.channel_id is not None:
            services.transcript.changes.soon(incident)


def _check_slack_token(services: Services) -> None:
    try:
        services.slack.verify()
    except SlackError as error:
        raise StartupError(f"SLACK_BOT_TOKEN was not accepted by Slack ({error.code})") from None


def _connect(runner: SocketRunner) -> None:
    """A refused app token at start-up is a set-up error; later, the runner retries."""
    try:
        runner.connect()
    except AppTokenRefused as error:
        runner.close()
        raise StartupError(f"SLACK_APP_TOKEN was not accepted by Slack ({error.code})") from None


def _check_notion_schema(services: Services) -> bool:
    """A bad token, an unshared database or missing properties are set-up errors; an
    outage is not (the reconciler creates the pages once Notion answers). True when
    Notion answered."""
    try:
        services.notion.schema()
    except NotionSchemaError as error:
        raise StartupError(f"NOTION_POSTMORTEM_DATABASE_ID: {error.reason}") from None
    except NotionError as error:
        variable = _SETUP_STATUSES.get(error.status or 0)
        if variable is not None:
            raise StartupError(f"{variable}: {error.reason}") from None
        log.warning(
            "Notion is not answering yet (%s); pages will be created when it does", error.reason
        )
        return False
    return True


def _check_labels(services: Services) -> None:
    """Labels at or above the next number in the database (a reset store, another
    deployment): every declare is refused with the fix, and this says it once. The
    bot still runs, for the incidents it has (see "Adoption" in docs/ARCHITECTURE.md)."""
    try:
        taken = services.postmortem.taken_labels()
    except NotionError as error:
        log.warning("couldn't read the postmortem database's labels (%s)", error.reason)
        return
    if taken is not None:
        services.incidents.refusal = taken.user_message
        log.error("declares are refused: %s", taken.user_message)
