"""Three `python -m bolt_app` processes on one store: nothing lost, nothing doubled.

Three real bot processes connect to one FakeSlack (which spreads envelopes round-robin
over the connections, like Slack), one FakeNotion and one database. Thirty declares and
thirty dumpslack shortcuts must give incidents numbered exactly 1..30, each with one
Notion page, one "Postmortem" bookmark and a complete transcript. Then, while a second
wave of declares and dumps is in flight, one process is SIGKILLed. What it never acked,
Slack shows its users as an error and never sends again (FakeSlack neither), so they
type it again; what it acked is in the inbox, and the survivors' reconcilers (every
second here) run its rows once their lease runs out, finish the set-ups and the dump
requests it left, and the same checks hold: a retyped declare whose first try was stored
makes no second incident.

Runs on PostgreSQL (with FIREBREAK_TEST_POSTGRES=1) and on SQLite (three processes on
one file, which is supported on one host).

The last test pins down why nothing acked is lost: a declare is an inbox row before its
ack.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bolt_app.core.clock import utcnow
from bolt_app.core.domain import CLOSED_STATUSES, ArtifactKind
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment, running_bot
from bolt_app.incidents.postmortem import BOOKMARK_TITLE
from bolt_app.runtime.reconciler import SETUP_KINDS
from bolt_app.runtime.wiring import COMMAND_WORKERS
from storage import Incident, Store
from tests.helpers.factories import form_values
from tests.helpers.multiprocess import (
    Fleet,
    Seeded,
    Transcript,
    pages_by_incident,
    transcript_of,
)

PROCESSES = 3
FIRST_WAVE = 30
SECOND_WAVE = 10  # new declares while a process dies; the 30 channels get new messages too
USERS = ("U0ALICE", "U0BOB")
#: Generous: three interpreters and the fakes share a loaded 2-core machine.
SETTLE_TIMEOUT = 60.0


@dataclass
class World:
    slack: FakeSlack
    notion: FakeNotion
    database_id: str
    data_source_id: str


@pytest.fixture
def world() -> Iterator[World]:
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user("U0ALICE", "alice", real_name="Alice Adams", display_name="alice")
        slack.add_user("U0BOB", "bob", real_name="Bob Brown", display_name="bob")
        database_id, data_source_id = notion.add_database()
        yield World(slack, notion, database_id, data_source_id)


def declare_all(slack: FakeSlack, first: int, count: int) -> list[str]:
    return [
        slack.slash_command(f"declare Outage {n}", user_id=USERS[n % 2])
        for n in range(first, first + count)
    ]


def wait_answered(slack: FakeSlack, envelopes: list[str], fleet: Fleet) -> None:
    """Every envelope acked, or given up on by Slack (it went to the killed process)."""
    try:
        slack.wait_for(
            lambda: all(slack.ack(e) or slack.gave_up(e) for e in envelopes),
            timeout=SETTLE_TIMEOUT,
            interval=0.05,
        )
    except TimeoutError:
        raise AssertionError(f"envelopes neither acked nor failed\n{fleet.describe()}") from None


def retype(slack: FakeSlack, envelope_id: str) -> str:
    """What a user does when Slack shows an error: the same command again."""
    payload = next(e for e in slack.envelopes if e.envelope_id == envelope_id).message["payload"]
    if "command" in payload:
        return slack.slash_command(str(payload["text"]), user_id=str(payload["user_id"]))
    return slack.message_shortcut(
        "dumpslack",
        channel_id=str(payload["channel"]["id"]),
        message_ts=str(payload["message"]["ts"]),
        user_id=str(payload["user"]["id"]),
    )


def wait_acked(slack: FakeSlack, envelopes: list[str], fleet: Fleet) -> None:
    try:
        slack.wait_for(
            lambda: all(slack.ack(e) for e in envelopes), timeout=SETTLE_TIMEOUT, interval=0.05
        )
    except TimeoutError:
        missing = sum(1 for e in envelopes if slack.ack(e) is None)
        raise AssertionError(f"{missing} envelope(s) never acked\n{fleet.describe()}") from None


def incidents(store: Store) -> list[Incident]:
    return sorted(store.open_incidents(CLOSED_STATUSES), key=lambda i: int(i.number))


def wait_channels(store: Store, count: int, fleet: Fleet) -> dict[int, str]:
    """Incident number -> channel id, once `count` incidents have their channel."""

    def ready() -> dict[int, str] | None:
        found = {int(i.number): str(i.channel_id) for i in incidents(store) if i.channel_id}
        return found if len(found) == count else None

    try:
        return FakeSlack.wait_for(ready, timeout=SETTLE_TIMEOUT, interval=0.1)
    except TimeoutError:
        raise AssertionError(f"not {count} incident channels\n{fleet.describe()}") from None


def seed(slack: FakeSlack, channel: str, seeded: Seeded, tops: int, replies: int) -> str:
    """Post `tops` messages and `replies` replies to the channel's first message (a thread,
    or a late reply to an old thread the second time); returns a message ts to act on."""
    for index in range(tops):
        user = USERS[(len(seeded.top) + index) % 2]
        seeded.top.append(slack.post(channel, user, f"message {len(seeded.top)} in {channel}"))
    parent = seeded.top[0]
    thread = seeded.replies.setdefault(parent, [])
    for _ in range(replies):
        thread.append(slack.post(channel, "U0BOB", f"reply {len(thread)}", thread_ts=parent))
    return seeded.top[-1]


def dump_all(
    slack: FakeSlack, channels: dict[int, str], seeded: dict[int, Seeded], tops: int, replies: int
) -> list[str]:
    envelopes = []
    for number, channel in channels.items():
        ts = seed(slack, channel, seeded.setdefault(number, Seeded()), tops, replies)
        envelopes.append(
            slack.message_shortcut(
                "dumpslack", channel_id=channel, message_ts=ts, user_id=USERS[number % 2]
            )
        )
    return envelopes


def settled(world: World, store: Store, count: int, seeded: dict[int, Seeded]) -> bool:
    """Every incident set up, no dump request pending, every transcript as seeded."""
    found = incidents(store)
    if len(found) != count or store.incidents_with_pending_dumps():
        return False
    if any(store.get_artifact(int(i.id), kind) is None for i in found for kind in SETUP_KINDS):
        return False
    return all(_transcript(world, store, number) == s.expected() for number, s in seeded.items())


def _transcript(world: World, store: Store, number: int) -> Transcript | None:
    incident = store.incident_by_number(number)
    page = (
        store.get_artifact(int(incident.id), ArtifactKind.NOTION_POSTMORTEM) if incident else None
    )
    return transcript_of(world.notion, str(page.external_id)) if page else None


def wait_settled(
    world: World, store: Store, count: int, seeded: dict[int, Seeded], fleet: Fleet
) -> None:
    try:
        world.slack.wait_for(
            lambda: settled(world, store, count, seeded), timeout=SETTLE_TIMEOUT, interval=0.25
        )
    except TimeoutError:
        unlike = [n for n, s in seeded.items() if _transcript(world, store, n) != s.expected()]
        raise AssertionError(
            f"not settled: {len(incidents(store))} of {count} incidents, pending dumps "
            f"{store.incidents_with_pending_dumps()}, transcripts unlike the channel: "
            f"{unlike}\n{fleet.describe()}"
        ) from None


def check_exactly_once(
    world: World, store: Store, count: int, declares: list[str], seeded: dict[int, Seeded]
) -> dict[str, int]:
    """The contract: numbers 1..count, one page and one bookmark each, every declare
    that was acked made its incident (a retyped one, the same incident as its first try),
    every transcript complete with no duplicate."""
    found = incidents(store)
    assert [int(i.number) for i in found] == list(range(1, count + 1))

    titles = {str(i.title) for i in found}
    acked = set(declares)
    typed = {
        str(e.message["payload"]["text"]).removeprefix("declare ")
        for e in world.slack.envelopes
        if e.envelope_id in acked
        and "command" in e.message["payload"]  # a retyped dump is in the list too
        and world.slack.ack(e.envelope_id)
    }
    assert typed <= titles, f"acked declare(s) made no incident: {sorted(typed - titles)}"
    assert len(titles) == count

    pages = pages_by_incident(world.notion, world.data_source_id)
    labels = {f"INC-{n}" for n in range(1, count + 1)}
    orphans = sum(len(ids) for label, ids in pages.items() if label not in labels)
    assert orphans == 0, pages.keys() - labels
    assert {label: len(ids) for label, ids in pages.items()} == dict.fromkeys(labels, 1)

    bookmarks = 0
    for incident in found:
        titles = [b["title"] for b in world.slack.bookmarks(str(incident.channel_id))]
        assert titles.count(BOOKMARK_TITLE) == 1, (incident.number, titles)
        bookmarks += titles.count(BOOKMARK_TITLE)

    for number, expected in seeded.items():
        assert _transcript(world, store, number) == expected.expected(), number
    return {
        "incidents": count,
        "pages": sum(len(ids) for ids in pages.values()),
        "bookmarks": bookmarks,
        "orphans": orphans,
        "messages": sum(s.count for s in seeded.values()),
    }


@pytest.mark.timeout(180)
def test_three_processes_declare_and_dump_exactly_once_even_when_one_is_killed(
    world: World, store_url: str, store: Store, tmp_path: Path
) -> None:
    slack, notion = world.slack, world.notion
    env = bot_environment(
        slack,
        notion.base_url,
        world.database_id,
        store_url,
        RECONCILE_INTERVAL_SECONDS="1",
        NOTION_TIMEOUT_SECONDS="2",
    )
    seeded: dict[int, Seeded] = {}
    with Fleet(env, tmp_path) as fleet:
        fleet.start(PROCESSES)
        try:
            slack.wait_connected(PROCESSES, timeout=SETTLE_TIMEOUT)
        except TimeoutError:
            raise AssertionError(fleet.describe()) from None

        # First wave: 30 declares, then a dump of each new channel.
        declares = declare_all(slack, 1, FIRST_WAVE)
        wait_acked(slack, declares, fleet)
        channels = wait_channels(store, FIRST_WAVE, fleet)
        dumps = dump_all(slack, channels, seeded, tops=3, replies=2)
        wait_acked(slack, dumps, fleet)
        wait_settled(world, store, FIRST_WAVE, seeded, fleet)
        first = check_exactly_once(world, store, FIRST_WAVE, declares, seeded)
        served = {a.connection_id for a in slack.acks}
        assert len(served) == PROCESSES  # the load really was spread

        # Second wave, with Notion slow enough that work is in flight at the kill: dumps
        # first (acked ones are then running when the kill comes), then declares (some
        # still unacked: their users see an error and type them again).
        notion.set_latency(0.2, "pages.create")
        notion.set_latency(0.2, "blocks.children.append")
        wave_dumps = dump_all(slack, channels, seeded, tops=2, replies=1)
        wave_declares = declare_all(slack, FIRST_WAVE + 1, SECOND_WAVE)
        wave = wave_dumps + wave_declares
        slack.wait_for(lambda: sum(1 for e in wave if slack.ack(e)) >= 2 * PROCESSES, timeout=30)
        fleet.bots[0].kill()
        assert len(fleet.alive()) == PROCESSES - 1, fleet.describe()
        # The kill really came mid-run: envelopes unanswered or dumps unfinished.
        unacked = sum(1 for e in wave if slack.ack(e) is None)
        pending = len(store.incidents_with_pending_dumps())
        assert unacked + pending > 0

        wait_answered(slack, wave, fleet)
        failed = [e for e in wave if slack.gave_up(e)]
        retyped = [retype(slack, e) for e in failed]
        assert not any(e.deliveries > 1 for e in slack.envelopes)  # Slack resent nothing
        wait_acked(slack, [e for e in wave if e not in failed] + retyped, fleet)
        total = FIRST_WAVE + SECOND_WAVE
        wait_settled(world, store, total, seeded, fleet)
        second = check_exactly_once(world, store, total, declares + wave_declares + retyped, seeded)
    print(
        f"first wave: {first}; after the kill: {second}; at the kill {unacked} unacked, "
        f"{pending} incident(s) with pending dumps; retyped {len(retyped)}"
    )


def _unexpected(error: BaseException) -> None:
    raise AssertionError(f"a blocking job failed: {error!r}")


@pytest.mark.timeout(60)
def test_a_declare_is_stored_before_its_ack(tmp_path: Path) -> None:
    """Once acked, Slack never resends an envelope, so a process SIGKILLed between the ack
    and the work after it must leave the declare in the store. With every command worker
    busy, nothing after the ack can run; the slash command and the form must each be an
    inbox row all the same, numbered only once a worker runs them."""
    with running_bot(
        f"sqlite:///{tmp_path / 'firebreak.db'}", RECONCILE_INTERVAL_SECONDS="3600"
    ) as bot:
        store = bot.services.store
        release = threading.Event()

        def occupy() -> None:
            release.wait(30)

        for _ in range(COMMAND_WORKERS):
            bot.services.commands.submit(occupy, _unexpected)
        try:
            envelope = bot.command("declare Checkout is down")
            assert bot.ack_text(envelope) == "Declaring “Checkout is down”…"
            assert store.inbox.depth(utcnow())[0] == 1
            assert store.incident_by_number(1) is None  # numbered by the worker, later

            bot.ack_text(bot.command("declare"))  # opens the form; nothing after the ack
            view = bot.slack.wait_for(lambda: bot.slack.views())[-1]
            bot.slack.wait_for_ack(
                bot.slack.view_submission(
                    {"id": view["id"]}, values=form_values("Search is slow", "P1")
                )
            )
            assert store.inbox.depth(utcnow())[0] == 2
        finally:
            release.set()
        bot.slack.wait_for(lambda: store.inbox.depth(utcnow())[0] == 0, timeout=30)
        made = {
            (i.title, i.severity)
            for i in (store.incident_by_number(1), store.incident_by_number(2))
            if i is not None
        }
        assert made == {("Checkout is down", "P3"), ("Search is slow", "P1")}
