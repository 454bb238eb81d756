"""Settings: every variable is read, and a bad one stops start-up with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bolt_app.core.naming import Numbering
from bolt_app.runtime.config import ConfigError, load_settings, misspelt_settings

GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_APP_TOKEN": "xapp-1",
    "NOTION_TOKEN": "ntn_1",
    "NOTION_POSTMORTEM_DATABASE_ID": "2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6",
}


def settings_with(**changes: str | None) -> dict[str, str]:
    env = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_defaults() -> None:
    settings = load_settings(GOOD, dotenv_path=None)
    assert settings.database_url == "sqlite:///firebreak.db"
    assert settings.slack_api_base_url == "https://slack.com/api/"
    assert settings.notion_api_base_url == "https://api.notion.com"
    assert settings.incident_prefix == "INC"
    numbering = Numbering(settings.incident_prefix, settings.incident_number_start)
    assert numbering.label(42) == "INC-42"
    assert numbering.channel_prefix == "inc"
    assert settings.reconcile_interval_seconds == 60
    assert settings.transcript_sync_seconds == 10
    zero = load_settings(settings_with(TRANSCRIPT_SYNC_SECONDS="0"), dotenv_path=None)
    assert zero.transcript_sync_seconds == 0  # only dumps write
    assert settings.incident_number_start == 1
    assert settings.incident_announce_channel is None


def test_every_setting_is_read() -> None:
    env = settings_with(
        DATABASE_URL="postgresql://postgres@127.0.0.1:5432/x",
        SLACK_API_BASE_URL="http://127.0.0.1:9/api",
        NOTION_API_BASE_URL="http://127.0.0.1:9",
        INCIDENT_PREFIX="sev",
        INCIDENT_NUMBER_START="100",
        INCIDENT_ANNOUNCE_CHANNEL="C0ANNOUNCE",
        RECONCILE_INTERVAL_SECONDS="5",
        LOG_LEVEL="debug",
        LOG_FORMAT="JSON",
        LLM_BASE_URL="http://127.0.0.1:9/v1",
        LLM_API_KEY="k",
        LLM_MODEL="m",
    )
    s = load_settings(env, dotenv_path=None)
    assert s.database_url.startswith("postgresql://")
    assert s.slack_api_base_url == "http://127.0.0.1:9/api/"  # slash added for slack_sdk
    numbering = Numbering(s.incident_prefix, s.incident_number_start)
    assert (s.incident_prefix, numbering.label(7), numbering.channel_prefix) == (
        "SEV",
        "SEV-7",
        "sev",
    )
    assert s.incident_number_start == 100
    assert s.incident_announce_channel == "C0ANNOUNCE"
    assert s.reconcile_interval_seconds == 5
    assert (s.log_level, s.log_format) == ("DEBUG", "json")
    assert (s.llm_base_url, s.llm_api_key, s.llm_model) == ("http://127.0.0.1:9/v1", "k", "m")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SLACK_BOT_TOKEN", None, "SLACK_BOT_TOKEN is missing: expected a Slack bot token"),
        ("SLACK_BOT_TOKEN", "xoxp-user", "SLACK_BOT_TOKEN is malformed"),
        ("SLACK_APP_TOKEN", "xoxb-wrong-kind", "SLACK_APP_TOKEN is malformed"),
        ("NOTION_TOKEN", "abc", "NOTION_TOKEN is malformed"),
        ("NOTION_POSTMORTEM_DATABASE_ID", "  ", "NOTION_POSTMORTEM_DATABASE_ID is missing"),
        (
            "NOTION_POSTMORTEM_DATABASE_ID",
            "not-a-uuid",
            "NOTION_POSTMORTEM_DATABASE_ID is malformed",
        ),
        ("NOTION_API_BASE_URL", "https://api.notion.com/v1", "NOTION_API_BASE_URL is malformed"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL is malformed"),
        ("INCIDENT_PREFIX", "INC-", "INCIDENT_PREFIX is malformed"),
        ("INCIDENT_NUMBER_START", "0", "INCIDENT_NUMBER_START is malformed"),
        ("INCIDENT_ANNOUNCE_CHANNEL", "#general", "INCIDENT_ANNOUNCE_CHANNEL is malformed"),
        ("RECONCILE_INTERVAL_SECONDS", "soon", "RECONCILE_INTERVAL_SECONDS is malformed"),
        ("TRANSCRIPT_SYNC_SECONDS", "-1", "TRANSCRIPT_SYNC_SECONDS is malformed"),
        ("TRANSCRIPT_NOTION_RPS", "fast", "TRANSCRIPT_NOTION_RPS is malformed"),
        ("POSTMORTEM_TEMPLATE", "/no/such/file.md", "POSTMORTEM_TEMPLATE is malformed"),
        ("SLACK_API_BASE_URL", "slack.com/api", "SLACK_API_BASE_URL is malformed"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL is malformed"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str | None, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(settings_with(**{variable: value}), dotenv_path=None)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(expected)


def test_notion_legacy_secret_prefix_is_accepted() -> None:
    assert load_settings(settings_with(NOTION_TOKEN="secret_abc"), dotenv_path=None)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SLACK_BOT_TOKEN=xoxb-from-file\nINCIDENT_PREFIX=OPS\n")
    env = settings_with(SLACK_BOT_TOKEN=None, INCIDENT_PREFIX="SEV")
    s = load_settings(env, dotenv_path=dotenv)
    assert s.slack_bot_token == "xoxb-from-file"
    assert s.incident_prefix == "SEV"


def test_tokens_never_appear_in_repr() -> None:
    s = load_settings(settings_with(LLM_API_KEY="sk-secret"), dotenv_path=None)
    text = repr(s)
    assert "xoxb" not in text and "xapp" not in text and "ntn_" not in text
    assert "sk-secret" not in text


def test_missing_token_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", **settings_with(SLACK_BOT_TOKEN=None)}
    result = subprocess.run(
        [sys.executable, "-m", "bolt_app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SLACK_BOT_TOKEN is missing" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_malformed_database_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(settings_with(DATABASE_URL="mysql://bob:hunter2@db/x"), dotenv_path=None)
    assert "hunter2" not in str(caught.value)
    assert "bob:***@db" in str(caught.value)


def test_a_database_url_without_a_database_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        **settings_with(DATABASE_URL="postgresql://bob:hunter2@127.0.0.1:5432"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bolt_app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("firebreak: DATABASE_URL doesn't work")


@pytest.mark.parametrize(
    "given",
    [
        "2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6",
        "2F1AD7F2-A4B3-4BD3-A7B2-C1D0E9F8A7B6",
        "https://www.notion.so/acme/Postmortems-2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6?v=0123456789abcdef0123456789abcdef",
        "https://app.notion.com/p/2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6",
    ],
)
def test_the_database_id_may_be_given_as_its_link(given: str) -> None:
    settings = load_settings({**GOOD, "NOTION_POSTMORTEM_DATABASE_ID": given}, dotenv_path=None)
    assert settings.notion_postmortem_database_id == "2f1ad7f2-a4b3-4bd3-a7b2-c1d0e9f8a7b6"


def test_a_setting_name_nearly_ours_is_warned_about_with_the_right_one() -> None:
    warnings = misspelt_settings(
        {**GOOD, "INCIDENT_PREFX": "OPS", "SLACK_BOT_TOKN": "xoxb-1", "HOME": "/root"},
        dotenv_path=None,
    )
    assert warnings == [
        "INCIDENT_PREFX is not a Firebreak setting; did you mean INCIDENT_PREFIX?",
        "SLACK_BOT_TOKN is not a Firebreak setting; did you mean SLACK_BOT_TOKEN?",
    ]
