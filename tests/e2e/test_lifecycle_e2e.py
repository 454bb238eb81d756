"""The incident lifecycle end to end: real Bolt over Socket Mode, real clients, local fakes.

The bot here has an announcement channel, so every test also checks that the one
announcement message is edited in place (or, for refusals and private incidents, not
touched at all).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bolt_app.core.clock import utcnow
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import Bot, bot_environment, connected
from bolt_app.formats import slack_blocks as blocks
from bolt_app.runtime.config import load_settings
from storage import Incident
from storage.models import ArtifactAttempt, DumpRequest

ALICE, BOB, CAROL, OTHER_BOT = "U0ALICE", "U0BOB", "U0CAROL", "U0OTHERBOT"


@dataclass
class Rig:
    bot: Bot
    announce: str

    @property
    def slack(self) -> FakeSlack:
        return self.bot.slack

    def announcements(self) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(self.announce) if m.get("bot_id")]

    def bot_messages(self, channel: str) -> list[str]:
        return [str(m["text"]) for m in self.slack.messages(channel) if m.get("bot_id")]

    def declare(self, text: str, user_id: str = ALICE) -> Incident:
        envelope = self.bot.command(f"declare {text}", user_id=user_id)
        reply = self.bot.wait_reply(envelope, "Declared")
        self.bot.wait_idle()
        number = int(reply.split("-", 1)[1].split(":", 1)[0])
        return self.bot.incident(number)

    def run(self, text: str, channel: str, user_id: str = ALICE) -> str:
        """Type a command that answers after the ack; returns the envelope id."""
        envelope = self.bot.command(text, user_id=user_id, channel_id=channel)
        self.bot.ack_text(envelope)
        return envelope


@contextlib.contextmanager
def announcing_bot(database_url: str, *, bot_in_announce: bool = True) -> Iterator[Rig]:
    """`running_bot`, plus an announcement channel that must exist before settings load."""
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user(ALICE, "alice", real_name="Alice Adams", display_name="alice")
        slack.add_user(BOB, "bob", real_name="Bob Brown", display_name="bob")
        slack.add_user(CAROL, "carol", real_name="Carol Cole", display_name="carol")
        slack.add_user(OTHER_BOT, "otherbot", is_bot=True, bot_id="B0OTHER")
        announce = slack.add_channel(
            "incidents", members=[ALICE, BOB, CAROL], bot_member=bot_in_announce
        )
        database_id, data_source_id = notion.add_database()
        env = bot_environment(
            slack,
            notion.base_url,
            database_id,
            database_url,
            INCIDENT_ANNOUNCE_CHANNEL=announce,
            RECONCILE_INTERVAL_SECONDS="3600",
        )
        settings = load_settings(env, dotenv_path=None)
        with connected(settings) as (services, app, runner):
            slack.wait_connected(1, timeout=10.0)
            bot = Bot(settings, services, app, runner, slack, notion, database_id, data_source_id)
            yield Rig(bot, announce)
            runner.client.auto_reconnect_enabled = False
            slack.drop_sockets()


@pytest.fixture
def rig(bot_database_url: str) -> Iterator[Rig]:
    with announcing_bot(bot_database_url) as rig:
        yield rig


def notion_page(rig: Rig) -> dict[str, Any]:
    pages = rig.bot.notion.pages(rig.bot.data_source_id)
    assert len(pages) == 1
    return pages[0]


# (command, channel message, topic, Notion status, Notion severity, Notion title)
JOURNEY = [
    (
        "severity P1",
        "<@U0ALICE> changed severity: P3 → P1",
        "INC-1 · P1 · active · commander <@U0ALICE>",
        "Active",
        "P1",
        "INC-1: Checkout is down",
    ),
    (
        "commander <@U0BOB|bob>",
        "<@U0ALICE> changed commander: <@U0ALICE> → <@U0BOB>",
        "INC-1 · P1 · active · commander <@U0BOB>",
        "Active",
        "P1",
        "INC-1: Checkout is down",
    ),
    (
        "title Checkout is slow",
        "<@U0ALICE> changed title: “Checkout is down” → “Checkout is slow”",
        "INC-1 · P1 · active · commander <@U0BOB>",
        "Active",
        "P1",
        "INC-1: Checkout is slow",
    ),
    (
        "status mitigated",
        "<@U0ALICE> changed status: active → mitigated",
        "INC-1 · P1 · mitigated · commander <@U0BOB>",
        "Mitigated",
        "P1",
        "INC-1: Checkout is slow",
    ),
    (
        "status resolved",
        "<@U0ALICE> changed status: mitigated → resolved",
        "INC-1 · P1 · resolved · commander <@U0BOB>",
        "Resolved",
        "P1",
        "INC-1: Checkout is slow",
    ),
    (
        "status postmortem",
        "<@U0ALICE> changed status: resolved → postmortem",
        "INC-1 · P1 · postmortem · commander <@U0BOB>",
        "Postmortem",
        "P1",
        "INC-1: Checkout is slow",
    ),
    (
        "status done",
        "<@U0ALICE> changed status: postmortem → done",
        "INC-1 · P1 · done · commander <@U0BOB>",
        "Done",
        "P1",
        "INC-1: Checkout is slow",
    ),
]


def test_the_whole_journey(store_url: str) -> None:
    with announcing_bot(store_url) as rig:
        hook_calls: list[tuple[int, str, str]] = []
        rig.bot.services.lifecycle.status_hooks.append(
            lambda incident, old, new: hook_calls.append((int(incident.number), old, new))
        )
        incident = rig.declare("Checkout is down")
        channel = str(incident.channel_id)
        [announcement] = rig.announcements()
        assert announcement["text"].startswith(
            f"INC-1: Checkout is down · P3 · active · commander <@U0ALICE> · <#{channel}>"
        )
        intro = rig.bot_messages(channel)

        for step, (command, message, topic, status, severity, title) in enumerate(JOURNEY, 1):
            rig.run(command, channel)
            rig.slack.wait_for(lambda m=message: m in rig.bot_messages(channel))  # type: ignore[misc]
            rig.bot.wait_idle()
            assert rig.bot_messages(channel) == intro + [c[1] for c in JOURNEY[:step]]
            assert rig.slack.topic(channel) == topic
            page = notion_page(rig)
            assert FakeNotion.property_text(page, "Status") == status
            assert FakeNotion.property_text(page, "Severity") == severity
            assert FakeNotion.property_text(page, "Name") == title
            assert rig.slack.edit_count(rig.announce, announcement["ts"]) == step, command

        assert BOB in rig.slack.members(channel)
        [edited] = rig.announcements()
        assert edited["ts"] == announcement["ts"]
        assert edited["text"].startswith("INC-1: Checkout is slow · P1 · done · commander <@U0BOB>")
        events = rig.bot.services.store.events(int(incident.id))
        assert [e.kind for e in events] == [
            "declared",
            "severity_changed",
            "commander_changed",
            "title_changed",
            "status_changed",
            "status_changed",
            "status_changed",
            "status_changed",
        ]
        assert [e.actor for e in events[1:]] == [ALICE] * 7
        assert events[4].data.items() >= {"from": "active", "to": "mitigated"}.items()
        assert hook_calls == [
            (1, "active", "mitigated"),
            (1, "mitigated", "resolved"),
            (1, "resolved", "postmortem"),
            (1, "postmortem", "done"),
        ]
        final = rig.bot.incident(1)
        assert (final.status, final.severity, final.commander, final.title) == (
            "done",
            "P1",
            BOB,
            "Checkout is slow",
        )
        # mitigated, resolved and postmortem each started a transcript dump.
        rig.slack.wait_for(rig.bot.services.dumps.idle, timeout=20)
        with rig.bot.services.store.session():
            requests = DumpRequest.select().where(DumpRequest.incident == incident.id).count()
        assert requests == 3


def test_cancel_with_a_reason_and_reopen(rig: Rig) -> None:
    channel = str(rig.declare("Duplicate alert").channel_id)
    rig.run("status canceled duplicate of INC-40", channel)
    rig.slack.wait_for(lambda: any("canceled" in m for m in rig.bot_messages(channel)))
    rig.run("status active", channel)
    rig.slack.wait_for(lambda: any("canceled → active" in m for m in rig.bot_messages(channel)))
    rig.bot.wait_idle()
    assert rig.bot_messages(channel)[-2:] == [
        "<@U0ALICE> changed status: active → canceled (duplicate of INC-40)",
        "<@U0ALICE> changed status: canceled → active",
    ]
    events = rig.bot.services.store.events(1)
    assert (
        events[1].data.items()
        >= {"from": "active", "to": "canceled", "reason": "duplicate of INC-40"}.items()
    )
    assert rig.slack.topic(channel) == "INC-1 · P3 · active · commander <@U0ALICE>"


@dataclass(frozen=True)
class Snapshot:
    topic: str
    messages: list[str]
    notion_writes: int
    announcement_edits: int
    events: int
    row: tuple[str, str, str, str]


def snapshot(rig: Rig, incident: Incident) -> Snapshot:
    channel = str(incident.channel_id)
    [announcement] = rig.announcements()
    row = rig.bot.incident(int(incident.number))
    return Snapshot(
        topic=rig.slack.topic(channel),
        messages=rig.bot_messages(channel),
        notion_writes=rig.bot.notion.write_count(),
        announcement_edits=rig.slack.edit_count(rig.announce, announcement["ts"]),
        events=len(rig.bot.services.store.events(int(incident.id))),
        row=(str(row.status), str(row.severity), str(row.commander), str(row.title)),
    )


# (command, who, where ("incident" or "general"), answered in the ack?, answer starts with)
BAD_INPUT = [
    (
        "status fixed",
        ALICE,
        "incident",
        True,
        "Status must be one of active, mitigated, resolved, postmortem, done, canceled, "
        "not `fixed`.",
    ),
    ("status", ALICE, "incident", True, "Which status?"),
    (
        "status done",
        ALICE,
        "incident",
        False,
        "Can't change the status from active to done. From active it can go to: `mitigated`, "
        "`canceled`.",
    ),
    ("status active", ALICE, "incident", False, "The status is already active."),
    ("status canceled", ALICE, "incident", True, "Changing the status to canceled needs a reason"),
    (
        "severity P9",
        ALICE,
        "incident",
        True,
        "Severity must be one of P0, P1, P2, P3, P4, not `P9`.",
    ),
    ("severity P3", ALICE, "incident", False, "The severity is already P3."),
    (
        "commander <@U0NOBODY>",
        ALICE,
        "incident",
        False,
        "`U0NOBODY` isn't a user in this workspace.",
    ),
    ("commander <@U0OTHERBOT>", ALICE, "incident", False, "<@U0OTHERBOT> can't be the commander"),
    ("commander bob", ALICE, "incident", True, "Name the commander as a mention"),
    ("title   ", ALICE, "incident", True, "What should the title be?"),
    ("status mitigated", ALICE, "general", False, "This isn't an incident channel."),
    ("severity P1", ALICE, "general", False, "This isn't an incident channel."),
    ("info", ALICE, "general", False, "This isn't an incident channel."),
    ("status mitigated", CAROL, "incident", False, "Join #inc-1-checkout-is-down to change it."),
    (
        "title Something else",
        CAROL,
        "incident",
        False,
        "Join #inc-1-checkout-is-down to change it.",
    ),
    ("status mitigated", OTHER_BOT, "incident", False, "Bots can't change incidents."),
]


def test_bad_input_gets_a_clear_answer_and_changes_nothing(rig: Rig) -> None:
    incident = rig.declare("Checkout is down")
    channel = str(incident.channel_id)
    rig.slack.add_channel("general", members=[ALICE, CAROL])
    general = str(rig.slack.channel_by_name("general")["id"])  # type: ignore[index]
    with rig.slack.workspace.lock:  # the other bot sits in the channel, as bots do
        rig.slack.workspace.join(rig.slack.workspace.channels[channel], OTHER_BOT)
    before = snapshot(rig, incident)
    for command, who, where, in_ack, answer in BAD_INPUT:
        envelope = rig.bot.command(
            command, user_id=who, channel_id=channel if where == "incident" else general
        )
        ack = rig.bot.ack_text(envelope)
        said = ack if in_ack else rig.bot.wait_reply(envelope)
        assert said.startswith(answer), (command, said)
        rig.bot.wait_idle()
        assert snapshot(rig, incident) == before, command
    assert not [e for e in rig.slack.ephemerals() if e.get("response_type") == "in_channel"]


def test_info_and_list(rig: Rig) -> None:
    first = rig.declare("Checkout is down")
    second = rig.declare("Search is slow", user_id=BOB)
    envelope = rig.run("info", str(first.channel_id))
    info = rig.bot.wait_reply(envelope)
    assert info.startswith(
        "*INC-1: Checkout is down*\nStatus: active · Severity: P3 · "
        "Commander: <@U0ALICE>\nDeclared: <!date^"
    )
    assert "by <@U0ALICE>" in info and "<http" in info and "Postmortem doc>" in info
    assert info.endswith("Transcript: not dumped yet")

    envelope = rig.run("list", "D0CAROLDM", user_id=CAROL)
    listed = rig.bot.wait_reply(envelope).splitlines()
    assert listed[0] == "*Open incidents*"
    assert listed[1].startswith(f"• <#{second.channel_id}> *INC-2*: Search is slow · P3")
    assert listed[2].startswith(f"• <#{first.channel_id}> *INC-1*: Checkout is down · P3")
    assert len(listed) == 3


def test_private_incidents_are_not_announced_and_listed_only_to_members(rig: Rig) -> None:
    public = rig.declare("Checkout is down")
    private = rig.declare("--private Payroll leak")
    assert private.private and not public.private
    assert rig.slack.channel(str(private.channel_id))["is_private"] is True
    assert [a["text"].split(" ·")[0] for a in rig.announcements()] == ["INC-1: Checkout is down"]

    # A change to a private incident edits no announcement either.
    rig.run("severity P1", str(private.channel_id))
    rig.slack.wait_for(lambda: rig.bot.incident(2).severity == "P1")
    rig.bot.wait_idle()
    assert rig.slack.edit_count(rig.announce, rig.announcements()[0]["ts"]) == 0

    def listed(user: str) -> list[str]:
        reply = rig.bot.wait_reply(rig.run("list", "D0DM", user_id=user))
        return [line.split("*")[1] for line in reply.splitlines()[1:]]

    assert listed(ALICE) == ["INC-2", "INC-1"]
    assert listed(BOB) == ["INC-1"]
    # The reconciler does not count a private incident's announcement as missing.
    assert rig.bot.reconciler().incomplete() == []
    assert len(rig.announcements()) == 1


def test_the_modal_declares_a_private_incident(rig: Rig) -> None:
    envelope = rig.bot.command("declare")
    assert rig.bot.ack_text(envelope) == ""
    view = rig.slack.wait_for(lambda: rig.slack.views())[-1]
    private_block = next(b for b in view["blocks"] if b["block_id"] == blocks.PRIVATE_BLOCK)
    assert private_block["element"]["type"] == "checkboxes"
    option = private_block["element"]["options"][0]
    values = {
        blocks.TITLE_BLOCK: {
            blocks.TITLE_ACTION: {"type": "plain_text_input", "value": "Payroll leak"}
        },
        blocks.SEVERITY_BLOCK: {
            blocks.SEVERITY_ACTION: {
                "type": "static_select",
                "selected_option": {"text": blocks.plain("P1"), "value": "P1"},
            }
        },
        blocks.PRIVATE_BLOCK: {
            blocks.PRIVATE_ACTION: {"type": "checkboxes", "selected_options": [option]}
        },
    }
    submitted = rig.slack.view_submission({"id": view["id"]}, values=values)
    rig.slack.wait_for_ack(submitted)
    rig.slack.wait_for(lambda: rig.bot.services.store.incident_by_number(1))
    rig.bot.wait_idle()
    incident = rig.bot.incident(1)
    assert (incident.private, incident.severity) == (True, "P1")
    assert rig.slack.channel(str(incident.channel_id))["is_private"] is True
    assert rig.announcements() == []


def test_a_failed_follow_up_is_said_and_the_change_stands(rig: Rig) -> None:
    channel = str(rig.declare("Checkout is down").channel_id)
    rig.bot.notion.inject("pages.update", status=500, times=3)  # more than updates retry
    envelope = rig.run("severity P1", channel)
    said = rig.bot.wait_reply(envelope, "couldn't update the postmortem page")
    assert said.startswith("Changed the severity to P1, but couldn't update the postmortem page")
    rig.bot.wait_idle()
    assert rig.bot.incident(1).severity == "P1"
    assert rig.slack.topic(channel).startswith("INC-1 · P1 · active")
    [announcement] = rig.announcements()
    assert " · P1 · " in announcement["text"]
    # The next change writes the page again, so it catches up.
    rig.run("status mitigated", channel)
    rig.slack.wait_for(lambda: FakeNotion.property_text(notion_page(rig), "Status") == "Mitigated")
    assert FakeNotion.property_text(notion_page(rig), "Severity") == "P1"


def test_a_failed_announcement_never_blocks_declaring_and_is_healed(
    bot_database_url: str,
) -> None:
    with announcing_bot(bot_database_url, bot_in_announce=False) as rig:
        incident = rig.declare("Checkout is down")
        channel = str(incident.channel_id)
        assert rig.slack.bookmarks(channel) and rig.announcements() == []
        reconciler = rig.bot.reconciler()
        assert [i.number for i in reconciler.incomplete()] == [1]
        with rig.slack.workspace.lock:
            rig.slack.workspace.join(
                rig.slack.workspace.channels[rig.announce], rig.slack.bot_user_id
            )
        # The next pass comes a while later: the failed attempt's request has settled,
        # so adopt-or-post does not wait out the Slack timeout.
        with rig.bot.services.store.atomic():
            ArtifactAttempt.update(started_at=utcnow() - timedelta(minutes=1)).execute()
        reconciler.run_once()
        [announcement] = rig.announcements()
        assert announcement["text"].startswith("INC-1: Checkout is down · P3 · active")
        assert reconciler.incomplete() == []
        reconciler.run_once()
        assert len(rig.announcements()) == 1


def test_a_refused_channel_message_still_updates_notion_and_starts_the_dump(rig: Rig) -> None:
    channel = str(rig.declare("Checkout is down").channel_id)
    rig.bot.wait_idle()
    rig.slack.inject("chat.postMessage", error="not_in_channel")
    envelope = rig.run("status mitigated", channel)
    said = rig.bot.wait_reply(envelope, "couldn't post in the channel")
    assert said.startswith("Changed the status to mitigated, but couldn't post in the channel")
    rig.slack.wait_for(lambda: FakeNotion.property_text(notion_page(rig), "Status") == "Mitigated")
    assert rig.slack.topic(channel).startswith("INC-1 · P3 · mitigated")
    incident = rig.bot.incident(1)
    assert incident.status == "mitigated"
    with rig.bot.services.store.session():
        assert DumpRequest.select().where(DumpRequest.incident == incident.id).count() == 1


def test_a_title_cannot_ping_the_channel(rig: Rig) -> None:
    channel = str(rig.declare("Checkout is down").channel_id)
    rig.run("title <!here> latency <5ms", channel)
    rig.bot.wait_idle()
    texts = [m["text"] for m in rig.slack.messages(channel) if "changed title" in m["text"]]
    assert texts == [
        "<@U0ALICE> changed title: “Checkout is down” → “&lt;!here&gt; latency &lt;5ms”"
    ]


def test_a_set_up_from_an_old_copy_writes_the_topic_from_the_current_row(rig: Rig) -> None:
    stale = rig.declare("Checkout is down")  # what a slow reconciler pass read first
    channel = str(stale.channel_id)
    rig.run("status mitigated", channel)
    rig.bot.wait_idle()
    rig.slack.wait_for(lambda: " · mitigated" in rig.slack.topic(channel))

    rig.bot.services.incidents.set_up(stale, report=False)  # its pass goes on, much later
    assert rig.slack.topic(channel).startswith("INC-1 · P3 · mitigated")
    assert FakeNotion.property_text(notion_page(rig), "Status") == "Mitigated"
    [announcement] = rig.announcements()
    assert "mitigated" in announcement["text"].lower()


def test_a_change_run_late_never_undoes_a_newer_one(rig: Rig) -> None:
    """A severity change acked by a process that died is run by another process once its
    lease runs out; by then the user made a newer severity change. The newer one stands,
    and the late one's user is told why it was not applied."""
    incident = rig.declare("Checkout is down")
    channel = str(incident.channel_id)
    store = rig.bot.services.store
    earlier = utcnow() - timedelta(seconds=30)
    response_url = rig.slack.response_urls.new(None, channel, ALICE)
    store.inbox.put(
        key="command:T0LATE",
        kind="command",
        payload={
            "command": "severity",
            "invocation": {
                "user_id": ALICE,
                "channel_id": channel,
                "args": "P2",
                "trigger_id": "T0LATE",
                "response_url": response_url,
                "user_name": "alice",
            },
        },
        now=earlier,
        owner="dead-host:1:0",
        lease_seconds=10,
    )
    rig.run("severity P1", channel)
    rig.bot.wait_idle()
    assert rig.bot.incident(1).severity == "P1"

    assert rig.bot.reconciler().resume_commands() != []
    rig.bot.wait_idle()
    assert rig.bot.incident(1).severity == "P1"
    assert rig.slack.topic(channel) == "INC-1 · P1 · active · commander <@U0ALICE>"
    told = rig.slack.wait_for(
        lambda: [p for p in rig.slack.responses if "newer severity change" in str(p.body)]
    )
    assert "was not applied" in str(told[0].body.get("text"))
    assert store.inbox.depth(utcnow())[0] == 0


def test_someone_slack_does_not_let_the_bot_see_gets_a_clear_answer(rig: Rig) -> None:
    """`users.info` answers `user_not_visible` for people outside a shared channel's
    workspace: as the one typing, they are a person; as the new commander, refused."""
    incident = rig.declare("Checkout is down")
    channel = str(incident.channel_id)
    rig.slack.add_user("U0GUEST", "guest", real_name="Gus Guest")
    workspace = rig.slack.workspace
    workspace.join(workspace.channel(channel), "U0GUEST")
    rig.slack.hide_user("U0GUEST")
    rig.run("severity P1", channel, user_id="U0GUEST")
    rig.bot.wait_idle()
    assert rig.bot.incident(1).severity == "P1"
    envelope = rig.run("commander <@U0GUEST|guest>", channel)
    reply = rig.bot.wait_reply(envelope, "can't be the commander")
    assert "Firebreak can't see them" in reply
    assert rig.bot.incident(1).commander == ALICE
