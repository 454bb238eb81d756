"""No thread waits for a lock while it holds another, so a burst can't starve the lock pool.

One `python -m bolt_app` on PostgreSQL (20 connections: 12 for queries, 8 for locks), with
an announcement channel, takes 30 dumps, 30 status changes, 30 repairs and 30 declares
at once over 10 incidents. Every one completes (its inbox row or dump request done,
its user answered) well before the reconciler's first pass could have helped, no lock
is waited for more than 5 s, and no wait runs out: the process's own `/metrics` say so
(`firebreak_lock_wait_seconds`, `firebreak_lock_timeouts_total`). Before try-locks
waited for a lock connection, a dump found every connection busy, said "a dump is
already running" while none ran, and its request waited 60 s for the reconciler.
"""

from __future__ import annotations

import itertools
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bolt_app.core.clock import utcnow
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment, free_port
from storage import Store, open_store
from tests.helpers.multiprocess import Fleet

ALICE = "U0ALICE"
INCIDENTS = 10
EACH = 30
MAX_WAIT = 5.0
TIMEOUT = 120.0
SETTLE_SECONDS = 40.0
#: What a user reads when a lock wait ran out or something broke.
TROUBLE = ("still being", "Another change", "Something went wrong", "try again")


def _lock_metrics(port: int) -> tuple[dict[str, tuple[float, float]], float]:
    """{lock kind: (waits, waits within MAX_WAIT)}, and how many waits ran out."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    waits: dict[str, list[float]] = {}
    timeouts = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            kind = sample.labels.get("lock", "")
            if sample.name == "firebreak_lock_wait_seconds_count":
                waits.setdefault(kind, [0.0, 0.0])[0] = sample.value
            elif (
                sample.name == "firebreak_lock_wait_seconds_bucket"
                and float(sample.labels["le"]) == MAX_WAIT
            ):
                waits.setdefault(kind, [0.0, 0.0])[1] = sample.value
            elif sample.name == "firebreak_lock_timeouts_total":
                timeouts += sample.value
    return {kind: (total, fast) for kind, (total, fast) in waits.items()}, timeouts


@pytest.mark.timeout(240)
def test_a_burst_of_every_kind_of_command_never_waits_long_for_a_lock(
    postgres_db_url: str, tmp_path: Path
) -> None:
    open_store(postgres_db_url).close()
    port = free_port()
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user(ALICE, "alice", real_name="Alice Adams", display_name="alice")
        announce = slack.add_channel("incidents", members=[ALICE])
        database_id, _ = notion.add_database()
        env = bot_environment(
            slack,
            notion.base_url,
            database_id,
            postgres_db_url,
            HEALTH_PORT=str(port),
            INCIDENT_ANNOUNCE_CHANNEL=announce,
        )
        store: Store = open_store(postgres_db_url, migrate=False)
        try:
            with Fleet(env, tmp_path) as fleet:
                fleet.start(1)
                slack.wait_connected(1, timeout=60)
                for n in range(INCIDENTS):
                    slack.wait_for_ack(slack.slash_command(f"declare Outage {n}"), timeout=10)

                def channels() -> list[str] | None:
                    found = [store.incident_by_number(n + 1) for n in range(INCIDENTS)]
                    ids = [str(i.channel_id) for i in found if i is not None and i.channel_id]
                    return ids if len(ids) == INCIDENTS else None

                chans = slack.wait_for(channels, timeout=TIMEOUT)
                for channel in chans:
                    slack.post(channel, ALICE, "what we saw")

                # Slow answers keep each lock held a while, as a loaded Slack and Notion do.
                slack.set_latency(0.02)
                notion.set_latency(0.05)
                # The burst: every kind at once, interleaved across the 10 incidents.
                statuses = itertools.cycle(("mitigated", "resolved", "postmortem"))
                sent: list[str] = []
                for i in range(EACH):
                    channel = chans[i % INCIDENTS]
                    sent.append(slack.slash_command("dumpslack", channel_id=channel))
                    sent.append(slack.slash_command(f"status {next(statuses)}", channel_id=channel))
                    sent.append(slack.slash_command("repair", channel_id=channel))
                    sent.append(slack.slash_command(f"declare Burst {i}"))

                def settled() -> bool:
                    return (
                        all(slack.ack(e) for e in sent)
                        and store.inbox.depth(utcnow())[0] == 0
                        and not store.incidents_with_pending_dumps()
                        and len(store.open_incidents(())) == INCIDENTS + EACH
                        and len(_dump_answers(slack)) == EACH
                    )

                try:
                    # Well before the reconciler's first pass (60 s): nothing is left to it.
                    slack.wait_for(settled, timeout=SETTLE_SECONDS, interval=0.25)
                except TimeoutError:
                    raise AssertionError(fleet.describe()) from None
                waits, timeouts = _lock_metrics(port)
                log = fleet.bots[0].output()
        finally:
            store.close()

    answers = [str(r.body.get("text", "")) for r in slack.responses]
    troubled = [a for a in answers if any(words in a for words in TROUBLE)]
    assert troubled == [], troubled
    slow = {kind: total - fast for kind, (total, fast) in waits.items() if total > fast}
    assert slow == {}, f"lock waits over {MAX_WAIT} s: {slow}"
    assert timeouts == 0
    assert "LockTimeout" not in log
    declared = [a for a in answers if a.startswith("Declared INC-")]
    assert len(declared) == INCIDENTS + EACH
    assert len(_dump_answers(slack)) == EACH
    print(
        f"{len(sent)} commands over {INCIDENTS} incidents; lock waits by kind: "
        + ", ".join(f"{kind} {int(total)}" for kind, (total, _fast) in sorted(waits.items()))
    )


def _dump_answers(slack: FakeSlack) -> list[str]:
    """What the dumpslack commands were told: done, or another dump is running."""
    answers = (str(r.body.get("text", "")) for r in slack.responses)
    return [a for a in answers if a.startswith(("Transcript", "A dump is already running"))]
