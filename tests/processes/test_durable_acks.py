"""An acked command survives a SIGKILL at any point after its ack; an unacked one is typed again.

Real `python -m bolt_app` processes, one FakeSlack, one FakeNotion, one store (SQLite and
PostgreSQL). Slack never resends a slash command, acked or not (FakeSlack neither), so:

- a change the bot acked must be finished by another process when the acking one dies,
  whether it died before the work began or half-way (row changed and message posted,
  topic not yet set), with each effect exactly once;
- a declare whose ack never reached Slack is typed again by its user, and gives exactly
  one incident, whether or not the first try was already stored.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bolt_app.core.clock import utcnow
from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment
from bolt_app.formats.slack_blocks import topic
from storage import Incident, Store
from tests.helpers.multiprocess import Fleet

ALICE, BOB = "U0ALICE", "U0BOB"
TIMEOUT = 60.0

#: (command typed in the incident's channel, what the change message says)
CHANGES = (
    ("status mitigated", "changed status: active → mitigated"),
    ("severity P1", "changed severity: P3 → P1"),
    ("title Checkout is slow", "changed title:"),
    (f"commander <@{BOB}>", "changed commander:"),
)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSlack, FakeNotion, str, str]]:
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user(ALICE, "alice", real_name="Alice Adams", display_name="alice")
        slack.add_user(BOB, "bob", real_name="Bob Brown", display_name="bob")
        database_id, data_source_id = notion.add_database()
        yield slack, notion, database_id, data_source_id


def _env(slack: FakeSlack, notion: FakeNotion, database_id: str, url: str) -> dict[str, str]:
    return bot_environment(slack, notion.base_url, database_id, url, RECONCILE_INTERVAL_SECONDS="1")


def _start(fleet: Fleet, slack: FakeSlack) -> None:
    fleet.start(1)
    try:
        slack.wait_connected(1, timeout=TIMEOUT)
    except TimeoutError:
        raise AssertionError(fleet.describe()) from None


def _declared(slack: FakeSlack, store: Store, count: int) -> list[Incident]:
    for n in range(count):
        slack.wait_for_ack(slack.slash_command(f"declare Outage {n}", user_id=ALICE), timeout=10)

    def ready() -> list[Incident] | None:
        found = [store.incident_by_number(n + 1) for n in range(count)]
        done = [
            i
            for i in found
            if i is not None and store.get_artifact(int(i.id), ArtifactKind.INTRO_MESSAGE)
        ]
        return done if len(done) == count else None

    return FakeSlack.wait_for(ready, timeout=TIMEOUT, interval=0.1)


def _change_messages(slack: FakeSlack, channel: str, words: str) -> int:
    return sum(1 for m in slack.messages(channel) if words in str(m.get("text", "")))


@pytest.mark.timeout(150)
def test_acked_changes_survive_a_kill_before_and_during_their_work(
    fakes: tuple[FakeSlack, FakeNotion, str, str], store_url: str, store: Store, tmp_path: Path
) -> None:
    slack, notion, database_id, data_source_id = fakes
    with Fleet(_env(slack, notion, database_id, store_url), tmp_path) as fleet:
        _start(fleet, slack)
        incidents = _declared(slack, store, 2 * len(CHANGES))
        during, before = incidents[: len(CHANGES)], incidents[len(CHANGES) :]

        # Half-way: the row is changed and the message posted, the topic never answers.
        slack.set_latency(60, "conversations.setTopic")
        for incident, (text, _words) in zip(during, CHANGES, strict=True):
            slack.wait_for_ack(
                slack.slash_command(text, user_id=ALICE, channel_id=str(incident.channel_id)),
                timeout=10,
            )

        def posted() -> bool:
            events = [store.events(int(i.id))[-1] for i in during]
            return all(e.data.get("posted") for e in events)

        slack.wait_for(posted, timeout=TIMEOUT)

        # Before the work: the membership check never answers.
        slack.set_latency(60, "conversations.members")
        for incident, (text, _words) in zip(before, CHANGES, strict=True):
            slack.wait_for_ack(
                slack.slash_command(text, user_id=ALICE, channel_id=str(incident.channel_id)),
                timeout=10,
            )
        assert all(len(store.events(int(i.id))) == 1 for i in before)  # nothing done yet

        fleet.bots[0].kill()
        slack.clear_faults()
        _start(fleet, slack)  # a replacement; its reconciler takes the rows over

        def finished() -> bool:
            return store.inbox.depth(utcnow())[0] == 0 and all(
                slack.topic(str(i.channel_id)) == _topic(store, i) for i in incidents
            )

        try:
            slack.wait_for(finished, timeout=TIMEOUT, interval=0.2)
        except TimeoutError:
            raise AssertionError(fleet.describe()) from None

    for group in (during, before):
        first, second, third, fourth = (store.incident_by_number(int(i.number)) for i in group)
        assert first is not None and first.status == "mitigated"
        assert second is not None and second.severity == "P1"
        assert third is not None and third.title == "Checkout is slow"
        assert fourth is not None and fourth.commander == BOB
        for incident, (_text, words) in zip(group, CHANGES, strict=True):
            channel = str(incident.channel_id)
            assert _change_messages(slack, channel, words) == 1, (incident.number, words)
            assert len(store.events(int(incident.id))) == 2  # declared, and the change once
    pages = {FakeNotion.property_text(p, "Incident"): p for p in notion.pages(data_source_id)}
    for group in (during, before):
        props = pages[f"INC-{group[0].number}"]["properties"]
        assert props["Status"]["select"]["name"] == "Mitigated"
        props = pages[f"INC-{group[1].number}"]["properties"]
        assert props["Severity"]["select"]["name"] == "P1"


def _topic(store: Store, incident: Incident) -> str:
    current = store.get_incident(int(incident.id))
    assert current is not None
    return topic(f"INC-{current.number}", current.severity, current.status, current.commander)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stored", [True, False], ids=["stored-ack-lost", "killed-before-ack"])
def test_a_declare_slack_never_saw_acked_is_typed_again_and_made_once(
    fakes: tuple[FakeSlack, FakeNotion, str, str],
    store_url: str,
    store: Store,
    tmp_path: Path,
    stored: bool,
) -> None:
    """The first process either stored the declare and acked it, the ack lost on the
    way (`stored`), or was killed before it read the envelope. Slack shows the user an
    error either way; they type it again, and a replacement process answers."""
    slack, notion, database_id, _ = fakes
    with Fleet(_env(slack, notion, database_id, store_url), tmp_path) as fleet:
        _start(fleet, slack)
        first_bot = fleet.bots[0]
        if stored:
            slack.lose_acks()
        else:
            os.kill(first_bot.proc.pid, signal.SIGSTOP)  # it never reads the envelope
        first = slack.slash_command("declare Checkout is down", user_id=ALICE)
        if stored:
            slack.wait_for(lambda: store.inbox.depth(utcnow())[0] == 1, timeout=TIMEOUT)
        else:
            slack.wait_for(
                lambda: any(e.sent_at for e in slack.envelopes if e.envelope_id == first),
                timeout=TIMEOUT,
            )
        first_bot.kill()
        slack.lose_acks(False)
        # The user sees Slack's error once the connection is gone; Slack sends nothing.
        slack.wait_for(lambda: slack.gave_up(first), timeout=TIMEOUT)

        _start(fleet, slack)
        again = slack.slash_command("declare Checkout is down", user_id=ALICE)
        slack.wait_for_ack(again, timeout=10)

        def answered() -> str | None:
            texts = [str(p.body.get("text", "")) for p in slack.responses]
            return next((t for t in texts if "INC-1" in t), None)

        reply = slack.wait_for(answered, timeout=TIMEOUT)
        # The retyped declare's answer, or the first try's (run again by the new process).
        assert reply.startswith(
            ("Declared INC-1", "You declared INC-1 a moment ago", "INC-1 is ready")
        )
        try:
            slack.wait_for(lambda: store.inbox.depth(utcnow())[0] == 0, timeout=TIMEOUT)
        except TimeoutError:
            raise AssertionError(fleet.describe()) from None

    assert store.incident_by_number(1) is not None
    assert store.incident_by_number(2) is None
    assert [c["name"] for c in slack.channels() if c["name"].startswith("inc-")] == [
        "inc-1-checkout-is-down"
    ]
    assert not any(e.deliveries > 1 for e in slack.envelopes)
