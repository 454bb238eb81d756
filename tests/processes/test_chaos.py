"""Chaos: three bot processes on PostgreSQL, SIGKILLed at random, with Slack and Notion failing.

A seeded random workload (declares, status and severity changes, messages, dumps) runs
against three `python -m bolt_app` processes sharing one PostgreSQL database. Every few
seconds one process is SIGKILLed and a replacement started; Slack and Notion answer 429s
and 5xx now and then, and go down for a moment. Users behave as users do: a command
Slack showed an error for (its process died before the ack) is typed again; the next
change of an incident waits until the last one shows in its channel's topic.

At the end, for every incident: numbers 1..N without gaps; one page, one bookmark, one
intro and one announcement; the state of its last acked change in the store, the topic,
the Notion properties and the announcement; every message exactly once in its
transcript.

The seed is printed; `FIREBREAK_CHAOS_SEED=<seed>` replays a run's choices (the timing
of threads and kills still varies).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bolt_app.core.clock import utcnow
from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment
from bolt_app.formats.slack_blocks import announcement, topic
from bolt_app.incidents.postmortem import BOOKMARK_TITLE
from bolt_app.runtime.reconciler import SETUP_KINDS
from storage import Incident, Store, open_store
from tests.helpers.multiprocess import Fleet, Seeded, pages_by_incident, transcript_of

PROCESSES = 3
INCIDENTS = 6
CHAOS_SECONDS = 35.0
SETTLE_SECONDS = 120.0
#: How often the workload looks around and acts.
PACE_SECONDS = 0.1
USERS = ("U0ALICE", "U0BOB")
#: Each incident walks these, one acked change at a time.
PATH = (
    "severity P2",
    "status mitigated",
    "severity P1",
    "status resolved",
    "severity P4",
)
STATUS_WORD = {"active": "Active", "mitigated": "Mitigated", "resolved": "Resolved"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@dataclass
class Expected:
    """What one incident should show once everything settled."""

    number: int
    title: str
    user: str
    status: str = "active"
    severity: str = "P3"
    step: int = 0
    #: The envelope of the change in flight, and what it sets.
    pending: tuple[str, str, str] | None = None
    seeded: Seeded = field(default_factory=Seeded)


class Chaos:
    def __init__(self, seed: int, slack: FakeSlack, notion: FakeNotion, fleet: Fleet) -> None:
        self.rng = random.Random(seed)
        self.slack, self.notion, self.fleet = slack, notion, fleet
        self.kills = 0
        self.faults = 0
        self.retyped = 0

    def kill_one(self) -> None:
        alive = self.fleet.alive()
        if len(alive) > 1:
            victim = self.rng.choice(alive)
            victim.kill()
            self.kills += 1
        self.fleet.start(1)

    def fault(self) -> None:
        """A 429, a 5xx or a short outage, on Slack or on Notion."""
        self.faults += 1
        kind = self.rng.choice(("slack-429", "slack-503", "notion-429", "notion-503", "outage"))
        if kind == "slack-429":
            self.slack.inject(
                self.rng.choice(("chat.postMessage", "conversations.setTopic", "chat.update")),
                retry_after=1,
            )
        elif kind == "slack-503":
            self.slack.inject(
                self.rng.choice(("conversations.create", "bookmarks.add", "chat.postMessage")),
                status=503,
            )
        elif kind == "notion-429":
            self.notion.inject(
                self.rng.choice(("pages.create", "pages.update", "blocks.children.append")),
                status=429,
                retry_after=1,
            )
        elif kind == "notion-503":
            self.notion.inject(
                self.rng.choice(("pages.update", "blocks.children.append")), status=503
            )
        else:  # both answer 503 to everything for a few calls
            self.slack.inject("*", status=503, times=5)
            self.notion.inject("*", status=503, times=5)


@pytest.fixture
def postgres_store(postgres_db_url: str) -> Iterator[tuple[str, Store]]:
    open_store(postgres_db_url).close()
    store = open_store(postgres_db_url, migrate=False)
    try:
        yield postgres_db_url, store
    finally:
        store.close()


def _seed() -> int:
    raw = os.environ.get("FIREBREAK_CHAOS_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1, 2**31)


def test_chaos_three_processes_kills_and_faults_leave_every_incident_whole(
    postgres_store: tuple[str, Store], tmp_path: Path
) -> None:
    url, store = postgres_store
    seed = _seed()
    print(f"\nchaos seed {seed} (replay: FIREBREAK_CHAOS_SEED={seed})")
    with (
        FakeSlack(message_events=True, event_retry_delays=(0.5, 2.0, 5.0)) as slack,
        FakeNotion() as notion,
    ):
        for user in USERS:
            slack.add_user(user, user.lower()[3:], real_name=user, display_name=user[3:])
        announce = slack.add_channel("incidents", members=list(USERS))
        database_id, data_source_id = notion.add_database()
        env = bot_environment(
            slack,
            notion.base_url,
            database_id,
            url,
            RECONCILE_INTERVAL_SECONDS="1",
            NOTION_TIMEOUT_SECONDS="2",
            INCIDENT_ANNOUNCE_CHANNEL=announce,
        )
        with Fleet(env, tmp_path) as fleet:
            fleet.start(PROCESSES)
            slack.wait_connected(PROCESSES, timeout=60)
            chaos = Chaos(seed, slack, notion, fleet)
            try:
                expected = _run(chaos, store)
                _settle(chaos, store, expected)
            except (AssertionError, TimeoutError) as error:
                raise AssertionError(f"seed {seed}: {error}\n{fleet.describe()}") from None
        _check(slack, notion, store, data_source_id, announce, expected, seed)
    changes = sum(w.step for w in expected.values())
    messages = sum(w.seeded.count for w in expected.values())
    print(
        f"chaos seed {seed}: {chaos.kills} kills, {chaos.faults} faults, "
        f"{chaos.retyped} changes retyped; {len(expected)} "
        f"incidents, {changes} acked changes, {messages} messages: all whole"
    )


def _send(slack: FakeSlack, text: str, user: str, channel: str | None = None) -> str:
    return slack.slash_command(text, user_id=user, channel_id=channel)


def _run(chaos: Chaos, store: Store) -> dict[int, Expected]:
    """The workload, with kills and faults, for CHAOS_SECONDS."""
    slack, rng = chaos.slack, chaos.rng
    declares: dict[str, tuple[str, str]] = {}  # envelope -> (text, user)
    for n in range(INCIDENTS):
        user = USERS[n % 2]
        declares[_send(slack, f"declare Chaos {n}", user)] = (f"declare Chaos {n}", user)
    expected: dict[int, Expected] = {}
    pace = threading.Event()  # never set: `wait` only paces the loop
    started = time.monotonic()
    next_kill = started + rng.uniform(4, 6)
    while time.monotonic() - started < CHAOS_SECONDS or any(e.pending for e in expected.values()):
        now = time.monotonic()
        if now - started > CHAOS_SECONDS + SETTLE_SECONDS:
            stuck = {w.number: (PATH[w.step], w.pending) for w in expected.values() if w.pending}
            raise AssertionError(f"acked changes that never showed in the topic: {stuck}")
        if now >= next_kill and now - started < CHAOS_SECONDS:
            chaos.kill_one()
            next_kill = now + rng.uniform(4, 6)
        if rng.random() < 0.05 and now - started < CHAOS_SECONDS:
            chaos.fault()
        for envelope, (text, user) in list(declares.items()):
            if slack.gave_up(envelope):  # Slack showed an error: type it again
                del declares[envelope]
                declares[_send(slack, text, user)] = (text, user)
        for incident in store.open_incidents(()):
            # The declarer acts once they are in the channel, as after clicking the link
            # (set-up invites them before it posts the intro).
            ready = store.get_artifact(int(incident.id), ArtifactKind.INTRO_MESSAGE)
            if ready and int(incident.number) not in expected:
                expected[int(incident.number)] = Expected(
                    int(incident.number), str(incident.title), str(incident.reporter)
                )
        for want in expected.values():
            _advance(chaos, store, want, allow_new=now - started < CHAOS_SECONDS)
        pace.wait(PACE_SECONDS)  # the workload's pace, not a wait for a condition
    return expected


def _advance(chaos: Chaos, store: Store, want: Expected, *, allow_new: bool) -> None:
    """Post, dump, or make the incident's next change once the last one shows."""
    slack, rng = chaos.slack, chaos.rng
    incident = store.incident_by_number(want.number)
    assert incident is not None
    channel = str(incident.channel_id)
    if want.pending is not None:
        envelope, field_name, value = want.pending
        applied = getattr(incident, field_name) == value
        # Slack showed an error, or the bot answered that the change failed (a change
        # that works says nothing to its typist): the user types it again.
        refused = not applied and _answered(slack, envelope)
        if slack.gave_up(envelope) or refused:
            text = PATH[want.step]
            want.pending = (_send(slack, text, want.user, channel), field_name, value)
            chaos.retyped += 1
            return
        shown = slack.topic(channel) == _topic(incident)
        if slack.ack(envelope) and applied and shown:
            want.pending = None
            setattr(want, field_name, value)
            want.step += 1
        return
    if not allow_new:
        return
    roll = rng.random()
    if roll < 0.4:
        user = USERS[len(want.seeded.top) % 2]
        ts = slack.post(channel, user, f"chaos message {len(want.seeded.top)}")
        want.seeded.top.append(ts)
    elif roll < 0.5 and want.seeded.top:
        parent = want.seeded.top[0]
        thread = want.seeded.replies.setdefault(parent, [])
        thread.append(slack.post(channel, USERS[1], f"reply {len(thread)}", thread_ts=parent))
    elif roll < 0.6:
        _send(slack, "dumpslack", want.user, channel)
    elif roll < 0.75 and want.step < len(PATH):
        text = PATH[want.step]
        word, _, value = text.partition(" ")
        want.pending = (_send(slack, text, want.user, channel), word, value)


def _answered(slack: FakeSlack, envelope: str) -> bool:
    """Whether the command got a reply through its response_url (a failure's sentence;
    "I'll try them again" of a half-done change is not one: it is finished later)."""
    return any(
        p.envelope_id == envelope and "try them again" not in str(p.body.get("text", ""))
        for p in slack.responses
    )


def _topic(incident: Incident) -> str:
    return topic(f"INC-{incident.number}", incident.severity, incident.status, incident.commander)


def _settle(chaos: Chaos, store: Store, expected: dict[int, Expected]) -> None:
    """No more chaos: every process alive, faults cleared, then a last dump of each."""
    slack, notion = chaos.slack, chaos.notion
    slack.clear_faults()
    notion.clear_faults()
    if len(chaos.fleet.alive()) < PROCESSES:
        chaos.fleet.start(PROCESSES - len(chaos.fleet.alive()))
    slack.wait_connected(PROCESSES, timeout=60)

    def setup_done() -> bool:
        found = store.open_incidents(())
        return len(found) == len(expected) and all(
            store.get_artifact(int(i.id), kind) is not None
            for i in found
            for kind in (*SETUP_KINDS, ArtifactKind.ANNOUNCEMENT)
        )

    slack.wait_for(setup_done, timeout=SETTLE_SECONDS, interval=0.5)
    for want in expected.values():
        incident = store.incident_by_number(want.number)
        assert incident is not None
        envelope = _send(slack, "dumpslack", want.user, str(incident.channel_id))
        slack.wait_for_ack(envelope, timeout=30)

    def settled() -> bool:
        return (
            store.inbox.depth(utcnow())[0] == 0
            and not store.incidents_with_pending_dumps()
            and all(_transcript(notion, store, w) == w.seeded.expected() for w in expected.values())
        )

    slack.wait_for(settled, timeout=SETTLE_SECONDS, interval=0.5)


def _transcript(notion: FakeNotion, store: Store, want: Expected) -> object:
    incident = store.incident_by_number(want.number)
    page = (
        store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM) if incident else None
    )
    return transcript_of(notion, str(page.external_id)) if page else None


def _check(
    slack: FakeSlack,
    notion: FakeNotion,
    store: Store,
    data_source_id: str,
    announce: str,
    expected: dict[int, Expected],
    seed: int,
) -> None:
    found = sorted(store.open_incidents(()), key=lambda i: int(i.number))
    assert [int(i.number) for i in found] == list(range(1, INCIDENTS + 1)), seed
    assert sorted(str(i.title) for i in found) == sorted(f"Chaos {n}" for n in range(INCIDENTS))
    pages = pages_by_incident(notion, data_source_id)
    assert {label: len(ids) for label, ids in pages.items()} == {
        f"INC-{n}": 1 for n in range(1, INCIDENTS + 1)
    }, seed
    announcements = [m for m in slack.messages(announce) if m.get("user") == slack.bot_user_id]
    for incident in found:
        want = expected[int(incident.number)]
        label, channel = f"INC-{incident.number}", str(incident.channel_id)
        assert (incident.status, incident.severity) == (want.status, want.severity), (seed, label)
        assert slack.topic(channel) == _topic(incident), (seed, label)
        titles = [b["title"] for b in slack.bookmarks(channel)]
        assert titles.count(BOOKMARK_TITLE) == 1, (seed, label, titles)
        intros = [
            m
            for m in slack.messages(channel)
            if m.get("user") == slack.bot_user_id and str(m.get("text", "")).startswith(f"{label}:")
        ]
        assert len(intros) == 1, (seed, label, len(intros))
        posted = [m for m in announcements if str(m.get("text", "")).startswith(f"{label}:")]
        assert len(posted) == 1, (seed, label, len(posted))
        text, _ = announcement(
            label,
            str(incident.title),
            str(incident.severity),
            str(incident.status),
            str(incident.commander),
            channel,
        )
        assert posted[0]["text"] == text, (seed, label)
        page = notion.page(pages[label][0])
        assert page["properties"]["Status"]["select"]["name"] == STATUS_WORD[want.status]
        assert page["properties"]["Severity"]["select"]["name"] == want.severity
        assert _transcript(notion, store, want) == want.seeded.expected(), (seed, label)
