"""Transcripts across real processes: SIGKILL mid-dump and mid-live-sync, and concurrent
triggers and live syncs in several processes.

Real child processes (tests/helpers/transcript_workers.py) run the real services against
FakeSlack and FakeNotion in this process, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bolt_app.core.clock import utcnow
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.formats.template import TRANSCRIPT_HEADING
from bolt_app.transcript.capture import message_fields
from bolt_app.transcript.dump import ChannelProgress, TranscriptService
from bolt_app.transcript.render import linked_ts_all
from storage import Incident, Store
from tests.helpers.children import Child
from tests.helpers.factories import build_postmortem_service, declare

WORKER = "tests.helpers.transcript_workers"
BASE_TS = 1_790_000_000.0


@dataclass
class World:
    slack: FakeSlack
    notion: FakeNotion
    database_id: str
    data_source_id: str
    channel: str


@pytest.fixture
def world() -> Iterator[World]:
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user("U0ALICE", "alice", real_name="Alice Adams", display_name="alice")
        slack.add_user("U0BOB", "bob", real_name="Bob Brown")
        channel = slack.add_channel("inc-1-checkout-is-down", members=["U0ALICE", "U0BOB"])
        database_id, data_source_id = notion.add_database()
        yield World(slack, notion, database_id, data_source_id, channel)


def seed(world: World, messages: int, threads: int) -> dict[str, list[str]]:
    """Top-level ts -> reply ts, in order."""
    expected: dict[str, list[str]] = {}
    ts = BASE_TS
    every = messages // threads
    for index in range(messages):
        ts += 10
        top = world.slack.post(world.channel, "U0ALICE", f"message {index}", ts=f"{ts:.6f}")
        expected[top] = []
        if index % every == 0:
            for reply in range(3):
                ts += 1
                expected[top].append(
                    world.slack.post(
                        world.channel, "U0BOB", f"reply {reply}", thread_ts=top, ts=f"{ts:.6f}"
                    )
                )
    return expected


def transcript_service(store: Store, world: World) -> TranscriptService:
    postmortem = build_postmortem_service(
        store,
        world.notion.base_url,
        world.database_id,
        timeout_s=2.0,
        slack_url=world.slack.base_url,
    )
    return TranscriptService(
        store=store,
        slack=postmortem.slack,
        notion=postmortem.notion,
        postmortem=postmortem,
        clock=postmortem.clock,
    )


def assert_complete_once(world: World, expected: dict[str, list[str]]) -> None:
    (page,) = world.notion.pages(world.data_source_id, include_archived=True)
    tree = world.notion.children_tree(page["id"])
    (heading,) = [b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING]
    blocks = [b for b in heading["children"] if b["type"] == "paragraph"]
    top: list[str] = []
    replies: dict[str, list[str]] = {}
    for block in blocks:  # packed: one message per line; children reply to the last one
        lines = linked_ts_all(block)
        top += lines
        children = [ts for child in block.get("children") or [] for ts in linked_ts_all(child)]
        if children:
            replies[lines[-1]] = children
    assert top == list(expected)
    assert replies == {ts: r for ts, r in expected.items() if r}


def landed_unrecorded(world: World, store: Store, incident: Incident) -> int:
    """Transcript blocks in Notion whose message ts the store doesn't know yet."""
    pages = world.notion.pages(world.data_source_id)
    if not pages:
        return 0
    tree = world.notion.children_tree(pages[0]["id"])
    heading = next(b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING)
    recorded = store.transcript_ts(int(incident.id))
    lines = [ts for b in heading["children"] for ts in linked_ts_all(b)]
    return sum(1 for ts in lines if ts not in recorded)


def worker(store_url: str, world: World, *args: str, module: str = WORKER) -> Child:
    """A worker process on incident 1 of `world`'s fakes and the store at `store_url`."""
    return Child(
        store_url,
        world.slack.base_url,
        world.notion.base_url,
        world.database_id,
        "1",
        *args,
        module=module,
    )


def incident_with_channel(store: Store, world: World) -> Incident:
    return declare(store, channel_id=world.channel)


@pytest.mark.timeout(90)
def test_a_dump_killed_mid_way_is_completed_by_the_next_without_duplicates(
    store: Store, store_url: str, world: World
) -> None:
    expected = seed(world, 4000, 40)  # several appends, even packed
    incident = incident_with_channel(store, world)
    world.notion.set_latency(0.3, "blocks.children.append")
    child = worker(store_url, world, "1")
    try:
        child.expect("ready")
        child.send("go")
        world.notion.wait_for(lambda: len(store.transcript_ts(int(incident.id))) >= 200, timeout=60)
        # The next append lands at Notion but is never answered; kill while it hangs.
        world.notion.inject(
            "blocks.children.append", status=None, drop_response_after_handling=True
        )
        world.notion.wait_for(lambda: landed_unrecorded(world, store, incident) > 0, timeout=30)
        child.kill()  # SIGKILL: no cleanup runs
    finally:
        child.close()
    assert landed_unrecorded(world, store, incident) > 0
    assert store.unfinished_transcript_write(int(incident.id)) is not None
    assert store.latest_pending_dump(int(incident.id)) is not None

    world.notion.clear_faults()  # the drop may still be armed if the kill came first
    service = transcript_service(store, world)
    quiet = ChannelProgress(service.slack, store, incident, utcnow, post_new=False)
    result = service.dump(incident, quiet)  # as the reconciler resumes it

    assert_complete_once(world, expected)
    (progress,) = [
        m
        for m in world.slack.messages(world.channel)
        if m["text"].startswith(("Writing", "Transcript"))
    ]
    assert progress["text"].startswith("Transcript up to date")  # the dead one's message
    assert 0 < result.written < sum(1 + len(r) for r in expected.values())
    assert store.latest_pending_dump(int(incident.id)) is None


@pytest.mark.timeout(90)
def test_10_triggers_across_2_processes_give_one_complete_transcript(
    store: Store, store_url: str, world: World
) -> None:
    expected = seed(world, 600, 20)
    incident = incident_with_channel(store, world)
    world.notion.set_latency(0.05, "blocks.children.append")
    children = [worker(store_url, world, "5") for _ in range(2)]
    try:
        for child in children:
            child.expect("ready")
        for child in children:
            child.send("go")
        outcomes = [child.expect("result") for child in children for _ in range(5)]
        for child in children:
            child.expect("finished")
            child.finish()
    finally:
        for child in children:
            child.close()

    assert_complete_once(world, expected)
    written = [int(o) for o in outcomes if o != "busy"]
    assert sum(written) == sum(1 + len(r) for r in expected.values())
    assert store.latest_pending_dump(int(incident.id)) is None
    assert len(world.notion.pages(world.data_source_id, include_archived=True)) == 1


def live_worker(store_url: str, world: World) -> Child:
    return worker(store_url, world, module="tests.helpers.live_workers")


def post_and_capture(
    store: Store, world: World, incident: Incident, ts: float, text: str, thread: str | None
) -> str:
    """A message in Slack and, as capture would store its event, in the store."""
    message = world.slack.message(
        world.channel,
        world.slack.post(world.channel, "U0ALICE", text, thread_ts=thread, ts=f"{ts:.6f}"),
    )
    store.capture_message(
        event_id=f"Ev{ts:.0f}",
        incident_id=int(incident.id),
        channel_id=world.channel,
        ts=str(message["ts"]),
        fields=message_fields(message),
        event_ts=str(message["ts"]),
        now=utcnow(),
    )
    return str(message["ts"])


@pytest.mark.timeout(120)
def test_live_syncs_in_several_processes_with_a_sigkill_mid_sync_write_each_message_once(
    store: Store, store_url: str, world: World
) -> None:
    incident = incident_with_channel(store, world)
    world.notion.set_latency(0.1)  # every sync spends most of its time in a request
    expected: dict[str, list[str]] = {}
    ts = BASE_TS

    def post_batch(count: int) -> None:
        nonlocal ts
        for index in range(count):
            ts += 10
            parents = list(expected)
            if parents and index % 4 == 3:  # a late reply, often in the middle of a group
                parent = parents[(index * 7) % len(parents)]
                expected[parent].append(
                    post_and_capture(store, world, incident, ts, f"re {index}", parent)
                )
            else:
                expected[post_and_capture(store, world, incident, ts, f"m {index}", None)] = []

    first = live_worker(store_url, world)
    later = [live_worker(store_url, world) for _ in range(2)]
    try:
        first.expect("ready")
        first.send("go")
        post_batch(40)
        world.notion.wait_for(lambda: len(store.transcript_ts(int(incident.id))) > 10, timeout=30)
        # Its next write lands at Notion but is never answered: kill it while it hangs.
        for route in ("blocks.children.append", "blocks.update"):
            world.notion.inject(route, status=None, drop_response_after_handling=True)
        post_batch(20)
        world.notion.wait_for(lambda: landed_unrecorded(world, store, incident) > 0, timeout=30)
        first.kill()  # SIGKILL, a write in flight: its lock dies with it
        assert store.unfinished_transcript_write(int(incident.id)) is not None
        world.notion.clear_faults()
        post_batch(40)
        for child in later:  # two processes take over, side by side
            child.expect("ready")
            child.send("go")
        post_batch(60)
        world.notion.wait_for(
            lambda: (
                {
                    *expected,
                    *(r for rs in expected.values() for r in rs),
                }
                <= set(store.transcript_ts(int(incident.id)))
            ),
            timeout=60,
        )
        for child in later:
            child.send("stop")
        for child in later:
            child.expect("stopped")
    finally:
        for child in [first, *later]:
            child.close()

    assert_complete_once(world, expected)
    assert store.unfinished_transcript_write(int(incident.id)) is None
