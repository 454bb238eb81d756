"""`python -m bolt_app manifest`: the Slack app manifest, derived from the code."""

from __future__ import annotations

import subprocess
import sys

from bolt_app.adapters.slack import BOT_SCOPES
from bolt_app.cli import manifest, yaml
from tests.conftest import ROOT


def test_scopes_are_exactly_the_adapters() -> None:
    assert manifest.build()["oauth_config"]["scopes"]["bot"] == sorted(BOT_SCOPES)


def test_socket_mode_command_shortcut_and_interactivity() -> None:
    built = manifest.build()
    settings, features = built["settings"], built["features"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"] == {"is_enabled": True}
    assert "request_url" not in str(built)  # Socket Mode needs no public URL
    assert [c["command"] for c in features["slash_commands"]] == ["/incident"]
    (shortcut,) = features["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", "dumpslack")


def test_events_are_subscribed_only_with_the_scope_slack_requires() -> None:
    events = manifest.build()["settings"].get("event_subscriptions", {}).get("bot_events", [])
    assert events == manifest.bot_events()
    for event in events:
        assert manifest.EVENT_SCOPES[event] in BOT_SCOPES


def test_yaml_emitter_writes_block_style_and_quotes_what_yaml_would_misread() -> None:
    text = yaml.dump(
        {
            "a": {"list": ["x", {"k": "v", "num": 1}], "empty": []},
            "b": "yes",
            "c": "a: b",
            "d": True,
        }
    )
    assert text == (
        "a:\n"
        "  list:\n"
        "    - x\n"
        "    - k: v\n"
        "      num: 1\n"
        "  empty: []\n"
        'b: "yes"\n'
        'c: "a: b"\n'
        "d: true\n"
    )
    assert yaml.scalar("chat:write") == "chat:write"
    assert yaml.scalar("#general") == '"#general"'
    assert yaml.scalar("") == '""'


def test_the_command_prints_the_manifest() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bolt_app", "manifest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == manifest.render()
    for scope in BOT_SCOPES:
        assert f"      - {scope}\n" in done.stdout
    assert "socket_mode_enabled: true" in done.stdout
