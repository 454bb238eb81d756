"""`/healthz` and the per-envelope log line: in-process against the fakes, and in `run`."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import Bot, bot_environment, free_port, get_json
from bolt_app.runtime import envelope_log
from bolt_app.runtime.config import ConfigError, load_settings
from bolt_app.runtime.health import HealthServer, database_answers, serve_health
from storage import open_store
from tests.conftest import ROOT


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"RECONCILE_INTERVAL_SECONDS": "3600"}


def test_health_port_is_optional_and_checked() -> None:
    base = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
        "NOTION_TOKEN": "ntn_1",
        "NOTION_POSTMORTEM_DATABASE_ID": "2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6",
    }
    assert load_settings(base, dotenv_path=None).health_port is None
    assert load_settings({**base, "HEALTH_PORT": "8080"}, dotenv_path=None).health_port == 8080
    with pytest.raises(ConfigError, match="HEALTH_PORT is malformed"):
        load_settings({**base, "HEALTH_PORT": "99999"}, dotenv_path=None)


def test_healthz_is_200_only_while_every_probe_passes() -> None:
    state = {"socket": True}
    server = HealthServer(
        0, {"socket": lambda: state["socket"], "database": lambda: True}, host="127.0.0.1"
    ).start()
    try:
        assert get_json(server.port) == (200, {"ok": True, "socket": True, "database": True})
        state["socket"] = False
        assert get_json(server.port) == (503, {"ok": False, "socket": False, "database": True})
        assert get_json(server.port, "/other")[0] == 404
    finally:
        server.stop()


def test_database_probe_fails_when_the_database_does_not_answer(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'firebreak.db'}")
    try:
        probe = database_answers(store)
        assert probe() is True
        store.db.close()
        store.db.init(str(tmp_path / "missing-folder" / "firebreak.db"))
        assert probe() is False
    finally:
        store.close()


def test_healthz_follows_the_real_socket(bot: Bot) -> None:
    health = serve_health(free_port(), bot.runner.is_connected, bot.services.store)
    assert health is not None
    try:
        assert get_json(health.port)[0] == 200
        bot.runner.client.auto_reconnect_enabled = False
        bot.slack.drop_sockets()
        bot.slack.wait_for(lambda: get_json(health.port)[0] == 503, timeout=10)
        assert get_json(health.port)[1]["socket"] is False
    finally:
        health.stop()


def test_one_log_line_per_envelope_with_subcommand_incident_and_outcome(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    envelope_log.attach(bot.runner.client, bot.app, bot.services)
    caplog.set_level(logging.INFO, logger="bolt_app.envelopes")
    bot.wait_reply(bot.command("declare Checkout is down"), "Declared")
    bot.wait_idle()
    channel = str(bot.incident(1).channel_id)
    bot.ack_text(bot.command("doc", channel_id=channel))
    bot.ack_text(bot.command("frobnicate"))

    def lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "bolt_app.envelopes"]

    bot.slack.wait_for(lambda: len(lines()) == 3, timeout=10)
    fields = ("envelope_type", "subcommand", "incident", "outcome")
    # Each line is written after its own ack, so two quick envelopes may log out of order.
    got = sorted(tuple(getattr(r, f) for f in fields) for r in lines())
    assert got == [
        ("/incident", "declare", "-", "acked"),
        ("/incident", "doc", "INC-1", "acked"),
        ("/incident", "unknown", "-", "acked"),
    ]
    assert all(vars(r)["duration_ms"] >= 0 for r in lines())
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in lines())
    assert "Checkout" not in text and "xoxb-" not in text


def test_run_serves_healthz_and_logs_envelopes_as_json(tmp_path: Path) -> None:
    port = free_port()
    with FakeSlack() as slack, FakeNotion() as notion:
        slack.add_user("U0ALICE", "alice")
        database_id, _ = notion.add_database()
        env = bot_environment(
            slack,
            notion.base_url,
            database_id,
            "sqlite:///firebreak.db",
            HEALTH_PORT=str(port),
            LOG_FORMAT="json",
        )
        env |= {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
        bot = subprocess.Popen(
            [sys.executable, "-m", "bolt_app"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            slack.wait_connected(1, timeout=30)
            assert slack.wait_for(lambda: _status(port) == 200, timeout=10)
            envelope = slack.slash_command("declare Checkout is down", user_id="U0ALICE")
            slack.wait_for_ack(envelope, timeout=10)
            bot.send_signal(signal.SIGTERM)
            code = _wait(bot, timeout=20)
        finally:
            if bot.poll() is None:
                bot.kill()
            output = bot.communicate()[0]
    assert code == 0, output
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (line,) = [r for r in records if r["logger"] == "bolt_app.envelopes"]
    assert (line["envelope_type"], line["subcommand"], line["outcome"]) == (
        "/incident",
        "declare",
        "acked",
    )
    assert isinstance(line["duration_ms"], float)
    assert "xoxb-" not in output and "xapp-" not in output and "ntn_" not in output


def _wait(process: subprocess.Popen[str], timeout: float) -> int | None:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _status(port: int) -> int | None:
    try:
        return get_json(port)[0]
    except OSError:
        return None


def test_metrics_are_served_in_prometheus_text_format(bot: Bot) -> None:
    health = serve_health(free_port(), bot.runner.is_connected, bot.services.store)
    assert health is not None
    try:
        bot.wait_reply(bot.command("declare Checkout is down"), "Declared INC-1")
        bot.wait_idle()
        bot.command("dumpslack", channel_id=str(bot.incident(1).channel_id))
        with urllib.request.urlopen(f"http://127.0.0.1:{health.port}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
    finally:
        health.stop()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("firebreak_envelopes_total", type="slash_commands", outcome="acked") >= 1
    assert value("firebreak_ack_seconds_count") >= 1
    assert value("firebreak_artifacts_total", kind="slack_channel", outcome="created") >= 1
    assert (
        value("firebreak_api_calls_total", api="slack", method="conversations.create", status="ok")
        >= 1
    )
    assert any(
        name == "firebreak_api_calls_total" and dict(labels)["api"] == "notion"
        for name, labels in samples
    )
    assert value("firebreak_lock_wait_seconds_count", lock="slack_channel") >= 1
    assert ("firebreak_inbox_depth", ()) in samples and (
        "firebreak_inbox_oldest_seconds",
        (),
    ) in samples
    assert "firebreak_transcript_sync_lag_seconds" in text
    assert "xoxb-" not in text and "Checkout" not in text  # no tokens, no text
