"""`python -m bolt_app` as a real process: it declares, and SIGTERM ends it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment
from tests.conftest import ROOT


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSlack, FakeNotion]]:
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user("U0ALICE", "alice")
        yield slack, notion


def run_until_exit(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bolt_app` with `env`, for a start-up that should end by itself."""
    return subprocess.run(
        [sys.executable, "-m", "bolt_app"],
        cwd=cwd,
        env={**env, "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_bot(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "bolt_app"],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.timeout(60)
def test_declare_then_sigterm_exits_0(fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path) -> None:
    slack, notion = fakes
    database_id, data_source_id = notion.add_database()
    env = bot_environment(slack, notion.base_url, database_id, "sqlite:///firebreak.db")
    bot = start_bot(env, tmp_path)
    try:
        slack.wait_connected(1, timeout=30)
        envelope = slack.slash_command("declare Checkout is down", user_id="U0ALICE")
        assert slack.wait_for_ack(envelope, timeout=10).payload == {
            "text": "Declaring “Checkout is down”…"
        }
        channel = slack.wait_for(
            lambda: slack.channel_by_name("inc-1-checkout-is-down"), timeout=10
        )
        slack.wait_for(lambda: slack.bookmarks(channel["id"]), timeout=10)
        assert len(notion.pages(data_source_id)) == 1
        assert (tmp_path / "firebreak.db").exists()  # sqlite:///rel.db is relative to cwd

        started = time.monotonic()
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        slack.wait_for(lambda: slack.connection_count == 0, timeout=5)
    finally:
        if bot.poll() is None:
            bot.kill()
        output = bot.communicate()[0]
    assert "xoxb-" not in output and "xapp-" not in output and "ntn_" not in output


def test_rejected_bot_token_exits_2_with_one_line(
    fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path
) -> None:
    slack, notion = fakes
    database_id, _ = notion.add_database()
    slack.revoke_token(slack.bot_token)
    env = bot_environment(slack, notion.base_url, database_id, "sqlite:///firebreak.db")
    result = run_until_exit(env, tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("firebreak: SLACK_BOT_TOKEN was not accepted by Slack")
    )
    assert "Traceback" not in result.stderr


def test_a_refused_app_token_at_start_up_exits_2_with_one_line(
    fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path
) -> None:
    """Refused before the bot ever connected: a set-up error, not something to retry."""
    slack, notion = fakes
    database_id, _ = notion.add_database()
    slack.revoke_app_token("invalid_auth")
    env = bot_environment(slack, notion.base_url, database_id, "sqlite:///firebreak.db")
    result = run_until_exit(env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "firebreak: SLACK_APP_TOKEN was not accepted by Slack (invalid_auth)"
    )
    assert "Traceback" not in result.stderr and "xapp-" not in result.stderr
    assert slack.count("apps.connections.open") == 1


def test_database_without_incident_property_exits_2(
    fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path
) -> None:
    slack, notion = fakes
    database_id, _ = notion.add_database(properties={"Name": {"title": {}}})
    env = bot_environment(slack, notion.base_url, database_id, "sqlite:///firebreak.db")
    result = run_until_exit(env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "NOTION_POSTMORTEM_DATABASE_ID" in result.stderr
    assert "Incident" in result.stderr
    assert "Traceback" not in result.stderr


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(60)
def test_a_dropped_connection_is_replaced_in_seconds_without_spinning(
    fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path
) -> None:
    slack, notion = fakes
    database_id, _ = notion.add_database()
    env = bot_environment(slack, notion.base_url, database_id, "sqlite:///firebreak.db")
    bot = start_bot(env, tmp_path)
    try:
        slack.wait_connected(1, timeout=30)
        slack.wait_for_ack(slack.slash_command("help"), timeout=10)
        before_connections = slack.connections_total
        cpu_before = cpu_seconds(bot.pid)
        dropped = time.monotonic()
        slack.drop_sockets()
        slack.wait_for(lambda: slack.connections_total > before_connections, timeout=10)
        reconnected = time.monotonic() - dropped
        envelope = slack.slash_command("help")
        slack.wait_for_ack(envelope, timeout=10)
        elapsed = time.monotonic() - dropped
        cpu_used = cpu_seconds(bot.pid) - cpu_before
    finally:
        bot.kill()
        bot.communicate()
    print(f"reconnected in {reconnected:.2f} s; {cpu_used:.2f} CPU-s over {elapsed:.2f} s")
    assert reconnected < 5.0
    # A spinning receive loop would burn about one CPU-second per second.
    assert cpu_used < 0.5 * elapsed + 0.2, (cpu_used, elapsed)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("ntn_wrong_token", "firebreak: NOTION_TOKEN: "),
        (None, "firebreak: NOTION_POSTMORTEM_DATABASE_ID: "),
    ],
)
def test_a_notion_set_up_error_exits_2_with_one_line(
    fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path, token: str | None, expected: str
) -> None:
    slack, notion = fakes
    database_id = "0" * 32 if token is None else notion.add_database()[0]
    env = bot_environment(slack, notion.base_url, database_id, "sqlite:///firebreak.db")
    if token is not None:
        env["NOTION_TOKEN"] = token
    result = run_until_exit(env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(expected)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTION_POSTMORTEM_DATABASE_ID", "not-a-uuid"),
        ("NOTION_API_BASE_URL", "https://api.notion.com/v1"),
    ],
)
def test_a_malformed_notion_setting_exits_2_at_start_up_with_one_line(
    fakes: tuple[FakeSlack, FakeNotion], tmp_path: Path, name: str, value: str
) -> None:
    """Refused before connecting, not by a failing declare every minute afterwards."""
    slack, notion = fakes
    env = bot_environment(slack, notion.base_url, notion.add_database()[0], "sqlite:///f.db")
    env[name] = value
    result = run_until_exit(env, tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"firebreak: {name} is malformed")
    assert slack.count("apps.connections.open") == 0
