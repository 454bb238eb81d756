"""The announcement is an artefact: posted once, adopted after a lost response, edited in place.

These run `Announcer` against FakeSlack through the real WebClient, on both stores.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bolt_app.adapters.slack import SlackGateway, build_web_client
from bolt_app.core.clock import Clock, utcnow
from bolt_app.core.domain import ArtifactKind
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.incidents.announcements import Announcer
from bolt_app.incidents.artifacts import OWNER
from bolt_app.incidents.service import Numbering
from storage import Incident, Store


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def announcer(store: Store, slack: FakeSlack, channel: str, clock: Clock = utcnow) -> Announcer:
    gateway = SlackGateway(build_web_client(slack.bot_token, slack.base_url))
    return Announcer(
        store=store, slack=gateway, numbering=Numbering(), clock=clock, channel_id=channel
    )


def incident(store: Store, *, private: bool = False, channel: str = "C0INCIDENT") -> Incident:
    made, _ = store.create_incident(
        title="Checkout is down",
        severity="P2",
        reporter="U0ALICE",
        commander="U0ALICE",
        private=private,
        request_key=None,
        number_start=1,
        now=utcnow(),
    )
    store.set_channel(int(made.id), channel, "inc-1-checkout-is-down", utcnow())
    fresh = store.get_incident(int(made.id))
    assert fresh is not None
    return fresh


def bot_messages(slack: FakeSlack, channel: str) -> list[dict[str, object]]:
    return [m for m in slack.messages(channel) if m.get("bot_id")]


def test_concurrent_triggers_post_one_announcement(store: Store, slack: FakeSlack) -> None:
    channel = slack.add_channel("incidents")
    target = incident(store)
    service = announcer(store, slack, channel)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def trigger() -> None:
        barrier.wait()
        ensured = service.ensure(target)
        assert ensured is not None
        outcomes.append(ensured.outcome)

    threads = [threading.Thread(target=trigger) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["created"] + ["existing"] * 5
    [message] = bot_messages(slack, channel)
    assert message["text"] == (
        "INC-1: Checkout is down · P2 · active · commander <@U0ALICE> · <#C0INCIDENT>"
    )
    artifact = store.get_artifact(int(target.id), ArtifactKind.ANNOUNCEMENT)
    assert artifact is not None and artifact.external_id == message["ts"]


def test_refresh_edits_the_same_message(store: Store, slack: FakeSlack) -> None:
    channel = slack.add_channel("incidents")
    target = incident(store)
    service = announcer(store, slack, channel)
    service.refresh(target)  # posts it: already current, no edit
    [posted] = bot_messages(slack, channel)
    store.update_incident(int(target.id), utcnow(), status="mitigated", severity="P1")
    service.refresh(target)
    [edited] = bot_messages(slack, channel)
    assert edited["ts"] == posted["ts"]
    assert slack.edit_count(channel, str(posted["ts"])) == 1
    assert str(edited["text"]).startswith("INC-1: Checkout is down · P1 · mitigated ·")


def test_a_lost_post_is_adopted_not_repeated(store: Store, slack: FakeSlack) -> None:
    """A process posted, then died before saving the row: the next attempt adopts it."""
    channel = slack.add_channel("incidents")
    slack.add_user("U0ALICE", "alice")
    target = incident(store)
    slack.post(channel, "U0ALICE", "INC-1: an impostor's message")
    lost_ts = slack.post(
        channel, slack.bot_user_id, "INC-1: Checkout is down · P2 · active", subtype="bot_message"
    )
    slack.post(channel, slack.bot_user_id, "INC-10: another incident", subtype="bot_message")
    store.record_attempt(int(target.id), ArtifactKind.ANNOUNCEMENT, utcnow(), OWNER)
    # The earlier attempt's request could have landed up to the Slack timeout later;
    # this clock is past that, so adoption does not wait.
    later = announcer(store, slack, channel, clock=lambda: utcnow() + timedelta(minutes=5))
    ensured = later.ensure(target)
    assert ensured is not None
    assert (ensured.outcome, ensured.artifact.external_id) == ("adopted", lost_ts)
    assert slack.count("chat.postMessage") == 0


def test_private_incidents_are_never_announced(store: Store, slack: FakeSlack) -> None:
    channel = slack.add_channel("incidents")
    target = incident(store, private=True)
    service = announcer(store, slack, channel)
    assert service.ensure(target) is None
    service.refresh(target)
    assert bot_messages(slack, channel) == []
    assert slack.count() == 0
