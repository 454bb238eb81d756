"""A refused app token: reconnects back off, one log line each, `/healthz` says why.

The bot is `start_bot`'s, as `python -m bolt_app` runs it, against FakeSlack, with a short
backoff (0.2 s doubling to 0.8 s) instead of 1 s to 60 s. Before the fix, slack_sdk called
`apps.connections.open` about every 0.45 s, with about thirty log lines a second.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bolt_app.devkit.common import Call
from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment, free_port, get_json
from bolt_app.runtime.config import load_settings
from bolt_app.runtime.health import HealthServer
from bolt_app.runtime.reconnect import Backoff
from bolt_app.runtime.wiring import BotProcess, start_bot

pytestmark = pytest.mark.timeout(60)

BACKOFF = Backoff(base=0.2, cap=0.8)
SOCKET_LOGGERS = ("bolt_app.bolt", "websocket", "slack_sdk")
REASON = re.compile(
    r"Slack refused the app token \(`invalid_auth`\) at apps\.connections\.open;"
    r" retrying (in \d+\.\d s|now)"
)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSlack, FakeNotion]]:
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user("U0ALICE", "alice")
        yield slack, notion


@pytest.fixture
def quiet_like_production(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """INFO, with the client libraries at WARNING, as `configure_logging` sets them."""
    for name in ("slack_sdk", "websocket"):
        caplog.set_level(logging.WARNING, logger=name)
    caplog.set_level(logging.INFO)  # last: it also sets the capturing handler's level
    return caplog


@contextmanager
def running(
    slack: FakeSlack, notion: FakeNotion, tmp_path: Path
) -> Iterator[tuple[BotProcess, int]]:
    port = free_port()
    database_id, _ = notion.add_database()
    env = bot_environment(
        slack,
        notion.base_url,
        database_id,
        f"sqlite:///{tmp_path / 'firebreak.db'}",
        HEALTH_PORT=str(port),
        RECONCILE_INTERVAL_SECONDS="3600",
    )
    bot = start_bot(load_settings(env, dotenv_path=None), backoff=BACKOFF)
    try:
        slack.wait_connected(1, timeout=10)
        slack.wait_for(lambda: get_json(port)[0] == 200, timeout=5)
        yield bot, port
    finally:
        bot.runner.client.auto_reconnect_enabled = False
        bot.stop(grace_seconds=2.0)


def opens_since(slack: FakeSlack, before: int) -> list[Call]:
    return slack.calls_to("apps.connections.open")[before:]


def at_least(n: int, calls: list[Call]) -> list[Call] | None:
    return calls if len(calls) >= n else None


def attempt_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Socket Mode: ")]


def socket_lines(caplog: pytest.LogCaptureFixture, since: float) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(SOCKET_LOGGERS) and r.created >= since
    ]


def assert_backs_off(calls: list[Call]) -> None:
    """Gaps of 0.2, 0.4, 0.8 s, less up to a tenth (slack_sdk's loop: about 0.45 s each)."""
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    minimum = [0.17, 0.35, 0.7][: len(gaps)]
    assert all(gap >= least for gap, least in zip(gaps, minimum, strict=True)), gaps


def assert_recovers(slack: FakeSlack, port: int, caplog: pytest.LogCaptureFixture) -> None:
    slack.restore_app_token()
    slack.wait_for(lambda: get_json(port)[0] == 200, timeout=5)
    assert "reason" not in get_json(port)[1]
    assert slack.wait_for_ack(slack.slash_command("help", user_id="U0ALICE"), timeout=5)
    assert any("connected again after" in r.getMessage() for r in caplog.records)


def test_a_revoked_app_token_backs_off_and_healthz_says_why(
    fakes: tuple[FakeSlack, FakeNotion],
    tmp_path: Path,
    quiet_like_production: pytest.LogCaptureFixture,
) -> None:
    slack, notion = fakes
    caplog = quiet_like_production
    with running(slack, notion, tmp_path) as (bot, port):
        sessions: list[int] = []
        bot.runner.client.on_session_start.append(lambda: sessions.append(1))
        # With a good token, Slack's refresh is followed at once, by one new connection.
        before = slack.count("apps.connections.open")
        connections = slack.connections_total
        slack.send_disconnect("refresh_requested")
        slack.wait_for(lambda: slack.connections_total > connections and len(sessions) >= 1)
        assert slack.wait_for_ack(slack.slash_command("help", user_id="U0ALICE"), timeout=5)
        # One for the refresh; on a starved machine a missed pong (2 s) may add another.
        assert before + 1 <= slack.count("apps.connections.open") <= before + 3

        # A connection dropped while the token is revoked.
        before = slack.count("apps.connections.open")
        slack.revoke_app_token()
        slack.drop_sockets()
        calls = slack.wait_for(lambda: at_least(4, opens_since(slack, before)), timeout=10)
        assert {(c.ok, c.error) for c in calls} == {(False, "invalid_auth")}
        assert_backs_off(calls[:4])

        code, body = get_json(port)
        assert (code, body["ok"], body["socket"], body["database"]) == (503, False, False, True)
        assert REASON.fullmatch(str(body["reason"])), body

        # One line per attempt from the first attempt on (the drop logs its own before).
        slack.wait_for(lambda: len(attempt_lines(caplog)) >= 4)
        lines = socket_lines(caplog, calls[0].at)
        attempts = attempt_lines(caplog)
        assert len(attempts) <= len(opens_since(slack, before))
        assert [m for m in lines if m not in attempts] in (
            [],
            ["Stopped receiving messages from a connection"],
        )
        assert all("`invalid_auth`" in m and "(attempt " in m for m in attempts), attempts
        assert not any(slack.app_token in r.getMessage() for r in caplog.records)
        caught_up = len(sessions)
        assert_recovers(slack, port, caplog)
        assert len(sessions) > caught_up  # the new connection caught up on what it missed

        # Slack's refresh (`disconnect`) while revoked: the refresh's own attempt fails,
        # and once Slack closes the old connection the attempts back off as before.
        before = slack.count("apps.connections.open")
        slack.revoke_app_token()
        slack.send_disconnect(close_after=0.2)
        calls = slack.wait_for(lambda: at_least(3, opens_since(slack, before)), timeout=10)
        assert {c.error for c in calls} == {"invalid_auth"}
        assert_backs_off(calls[:3])
        code, body = get_json(port)
        assert code == 503 and REASON.fullmatch(str(body["reason"])), body


def test_healthz_gives_the_reason_of_failing_probes_only() -> None:
    state = {"socket": True, "database": True}
    server = HealthServer(
        0,
        {"socket": lambda: state["socket"], "database": lambda: state["database"]},
        host="127.0.0.1",
        reasons={"socket": lambda: "the token was refused", "database": lambda: "no answer"},
    ).start()
    try:
        assert get_json(server.port) == (200, {"ok": True, "socket": True, "database": True})
        state["socket"] = False
        assert get_json(server.port)[1]["reason"] == "the token was refused"
        state["database"] = False
        assert get_json(server.port)[1]["reason"] == "the token was refused; and no answer"
        state["socket"] = True
        assert get_json(server.port) == (
            503,
            {"ok": False, "socket": True, "database": False, "reason": "no answer"},
        )
    finally:
        server.stop()
