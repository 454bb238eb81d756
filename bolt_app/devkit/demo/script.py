"""The scripted incident the demo plays, step by step, against the real bot.

Steps that need a command or listener that isn't in this build are skipped, so the
demo runs at every stage of the project and grows with it. Each step waits for what
the user would wait for (a reply, the bot's pool going idle), never for a fixed time.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TextIO

from bolt_app.core.jobs import Jobs
from bolt_app.devkit.demo import view
from bolt_app.devkit.harness import Bot
from bolt_app.listeners.commands import SUBCOMMANDS

TITLE = "Checkout is down"
CONVERSATION = (
    ("U0ALICE", "Checkout returns *502* for everyone since 14:02 UTC", None),
    ("U0BOB", "Payments dashboard: error rate 38%, started with deploy `web-4812`", None),
    ("U0ALICE", "Rolling back web-4812 now", 1),
    ("U0BOB", "Rollback done, error rate back under 1%", 1),
    ("U0CAROL", "Customers on the status page are confirming recovery", None),
)
PEOPLE = (
    ("U0ALICE", "alice", "Alice Adams"),
    ("U0BOB", "bob", "Bob Brown"),
    ("U0CAROL", "carol", "Carol Chen"),
)
#: Commands the demo runs, in order, when the build has them. Mitigated starts a dump by
#: itself; the `dumpslack` after it then finds only what was said since.
LIFECYCLE = (
    "severity P1",
    "status mitigated",
    "dumpslack",
    "status resolved",
    "status postmortem",
    "status done",
)


@dataclass
class Demo:
    bot: Bot
    out: TextIO
    started: float = field(default_factory=time.monotonic)
    channel: str = ""
    seen_messages: int = 0

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def step(self, title: str, run: Callable[[], str | None]) -> None:
        """Run one step and print it with its duration and what it answered."""
        began = time.monotonic()
        answer = run()
        ms = (time.monotonic() - began) * 1000
        self.say(f"[{ms:7.0f} ms] {title}")
        if answer:
            shown = view.readable(self.bot.slack, answer)
            self.say(f"             ↳ {view.clip(shown, view.WIDTH - 15)}")
        self._new_bot_messages()

    def _new_bot_messages(self) -> None:
        if not self.channel:
            return
        for line in view.bot_messages(self.bot.slack, self.channel, self.seen_messages):
            self.say(f"             {line}")
        self.seen_messages = view.bot_message_count(self.bot.slack, self.channel)

    # -- what the steps do -----------------------------------------------------------------

    def command(self, text: str) -> str | None:
        """Type `/incident <text>` in the incident channel; the ack or the first reply."""
        envelope = self.bot.command(text, channel_id=self.channel or None)
        ack = self.bot.ack_text(envelope)
        self.wait_idle()
        replies = self.bot.replies_to(envelope)
        return replies[-1] if replies else ack

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Every pool of the bot (commands, set-up, dumps, …) has finished its work.

        Pools are checked in the order `Services` lists them, upstream first (a command
        job hands a dump to the dumps pool before it ends), and twice in a row, so work
        passed from one pool to the next is never missed in between.
        """
        pools = [p for p in vars(self.bot.services).values() if isinstance(p, Jobs)]
        streak = [0]

        def settled() -> bool:
            streak[0] = streak[0] + 1 if all(p.idle() for p in pools) else 0
            return streak[0] >= 2

        self.bot.slack.wait_for(settled, timeout=timeout)


def play(bot: Bot, out: TextIO) -> Demo:
    demo = Demo(bot, out)
    for user_id, name, real_name in PEOPLE:
        if not any(u.get("id") == user_id for u in bot.slack.users()):
            bot.slack.add_user(user_id, name, real_name=real_name, display_name=name)
    demo.say("Firebreak demo: a local Slack and Notion, the real bot, no network.\n")
    demo.step(f"@alice: /incident declare {TITLE}", lambda: _declare(demo))
    demo.say()
    demo.say("\n".join(view.channel_view(bot.slack, demo.channel)))
    demo.say()
    demo.step("@bob and @carol join; the team talks (a thread included)", lambda: _talk(demo))
    if _has_pin_listener():
        demo.step("@alice pins @bob's message about the deploy", lambda: _pin(demo))
    for text in LIFECYCLE:
        if text.split()[0] in SUBCOMMANDS:
            demo.step(f"/incident {text}", partial(demo.command, text))
    return demo


def _declare(demo: Demo) -> str | None:
    envelope = demo.bot.command(f"declare {TITLE}", user_id="U0ALICE")
    reply = demo.bot.wait_reply(envelope, "Declared")
    demo.wait_idle()
    demo.channel = str(demo.bot.incident(1).channel_id)
    return reply


def _talk(demo: Demo) -> str:
    slack, posted = demo.bot.slack, list[str]()
    for user_id, _name, _real in PEOPLE:
        slack.workspace.join(slack.workspace.channel(demo.channel), user_id)
    for user, text, parent in CONVERSATION:
        thread = posted[parent] if parent is not None else None
        posted.append(str(slack.post(demo.channel, user, text, thread_ts=thread)))
    return f"{len(CONVERSATION)} messages, 2 of them replies in a thread"


def _has_pin_listener() -> bool:
    return importlib.util.find_spec("bolt_app.listeners.events") is not None


def _pin(demo: Demo) -> str:
    slack = demo.bot.slack
    message = next(m for m in slack.messages(demo.channel) if "web-4812" in m.get("text", ""))
    slack.event(
        {
            "type": "pin_added",
            "user": "U0ALICE",
            "channel_id": demo.channel,
            "item": {"type": "message", "channel": demo.channel, "message": _pinned(message)},
        }
    )
    demo.wait_idle()
    return "on the timeline"


def _pinned(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k in ("type", "user", "text", "ts", "thread_ts")}
