"""The in-process rig: the real Bolt app over a real Socket Mode websocket, against fakes.

`running_bot` starts FakeSlack and FakeNotion on random ports, builds the real
`slack_bolt.App` with the real `WebClient` and `notion_client.Client` pointed at them,
connects in Socket Mode, and tears everything down quickly afterwards. `free_port` and
`get_json` serve the tests and benchmarks that ask a bot's `/healthz` and `/metrics`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from slack_bolt import App

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.listeners import replay
from bolt_app.runtime.config import Settings, load_settings
from bolt_app.runtime.reconciler import Reconciler
from bolt_app.runtime.socket_mode import SocketRunner
from bolt_app.runtime.wiring import start_bot
from bolt_app.services import Services
from storage import Incident

NOTION_TOKEN = "ntn_fake_token"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (a bot's `HEALTH_PORT` binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(port: int, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    """The status and JSON body of `GET http://127.0.0.1:<port><path>`, a 503 included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def bot_environment(
    slack: FakeSlack, notion_base_url: str, database_id: str, database_url: str, **extra: str
) -> dict[str, str]:
    """The environment a real deployment would set, pointing at the fakes."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "NOTION_TOKEN": NOTION_TOKEN,
        "NOTION_POSTMORTEM_DATABASE_ID": database_id,
        "DATABASE_URL": database_url,
        "SLACK_API_BASE_URL": slack.base_url,
        "NOTION_API_BASE_URL": notion_base_url,
        "NOTION_TIMEOUT_SECONDS": "5",
        # Unpaced, so the suite stays fast; bench.live and the pacing tests set it.
        "TRANSCRIPT_NOTION_RPS": "0",
        **extra,
    }


@dataclass
class Bot:
    settings: Settings
    services: Services
    app: App
    runner: SocketRunner
    slack: FakeSlack
    notion: FakeNotion
    database_id: str
    data_source_id: str

    def reconciler(self) -> Reconciler:
        return Reconciler(self.services, self.settings.reconcile_interval_seconds, replay.replay)

    def command(self, text: str, *, user_id: str = "U0ALICE", channel_id: str | None = None) -> str:
        """Type `/incident <text>`; returns the envelope id."""
        return self.slack.slash_command(text, user_id=user_id, channel_id=channel_id)

    def ack_text(self, envelope_id: str, timeout: float = 5.0) -> str:
        ack = self.slack.wait_for_ack(envelope_id, timeout=timeout)
        payload: dict[str, Any] = ack.payload or {}
        return str(payload.get("text", ""))

    def replies_to(self, envelope_id: str) -> list[str]:
        """What the user was told through the command's response_url."""
        return [
            str(p.body.get("text", ""))
            for p in self.slack.responses
            if p.envelope_id == envelope_id
        ]

    def wait_reply(self, envelope_id: str, containing: str = "", timeout: float = 10.0) -> str:
        def found() -> str | None:
            return next((t for t in self.replies_to(envelope_id) if containing in t), None)

        return self.slack.wait_for(found, timeout=timeout)

    def incident(self, number: int) -> Incident:
        incident = self.services.store.incident_by_number(number)
        assert incident is not None, f"no incident {number}"
        return incident

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Wait until every job handed off after an ack has finished."""
        self.slack.wait_for(
            lambda: self.services.commands.idle() and self.services.parallel.idle(),
            timeout=timeout,
        )


@contextlib.contextmanager
def running_bot(
    database_url: str,
    *,
    seed: Callable[[FakeNotion, str], None] | None = None,
    schema: dict[str, Any] | None = None,
    **env: str,
) -> Iterator[Bot]:
    """The bot, started on fresh fakes. The postmortem database has `schema` (request
    form; the default postmortem schema if None); `seed(notion, data_source_id)` fills
    it first (what an earlier deployment left there)."""
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user("U0ALICE", "alice", real_name="Alice Adams", display_name="alice")
        slack.add_user("U0BOB", "bob", real_name="Bob Brown", display_name="bob")
        database_id, data_source_id = notion.add_database(properties=schema)
        if seed is not None:
            seed(notion, data_source_id)
        settings = load_settings(
            bot_environment(slack, notion.base_url, database_id, database_url, **env),
            dotenv_path=None,
        )
        with connected(settings) as (services, app, runner):
            slack.wait_connected(1, timeout=10.0)
            yield Bot(settings, services, app, runner, slack, notion, database_id, data_source_id)
            runner.client.auto_reconnect_enabled = False
            slack.drop_sockets()


@contextlib.contextmanager
def connected(settings: Settings) -> Iterator[tuple[Services, App, SocketRunner]]:
    """The bot as `python -m bolt_app` starts it (`runtime.wiring.start_bot`), in-process."""
    bot = start_bot(settings)
    try:
        yield bot.services, bot.app, bot.runner
    finally:
        bot.stop(grace_seconds=5.0)
