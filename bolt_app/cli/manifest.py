"""`python -m bolt_app manifest`: the Slack app manifest, as YAML, for "Create an app".

Everything in it comes from the code: the bot scopes are exactly `slack.BOT_SCOPES`,
the command and shortcut are the ones the listeners handle, and Socket Mode is on
(no request URLs). An event is subscribed only when the scope Slack requires for it
is one we ask for, because Slack rejects a manifest whose events lack their scopes;
a listener for a new event therefore adds that scope to `BOT_SCOPES` too.
"""

from __future__ import annotations

import argparse
from typing import Any

from bolt_app.adapters.slack import BOT_SCOPES
from bolt_app.cli import yaml
from bolt_app.listeners.commands import COMMAND
from bolt_app.listeners.dump import CALLBACK_ID as DUMPSLACK_CALLBACK_ID

APP_NAME = "Firebreak"

#: Bot events the listeners can handle -> the scope Slack requires to deliver them.
EVENT_SCOPES: dict[str, str] = {
    "pin_added": "pins:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
}


def bot_events() -> list[str]:
    """The events to subscribe to: those whose required scope we ask for."""
    return [event for event, scope in EVENT_SCOPES.items() if scope in BOT_SCOPES]


def build() -> dict[str, Any]:
    """The manifest as plain data (the schema of api.slack.com's app manifest reference)."""
    settings: dict[str, Any] = {
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": True,
        "token_rotation_enabled": False,
    }
    events = bot_events()
    if events:
        settings = {"event_subscriptions": {"bot_events": events}, **settings}
    return {
        "display_information": {
            "name": APP_NAME,
            "description": "Incident channels, Notion postmortems and Slack transcripts",
        },
        "features": {
            "bot_user": {"display_name": APP_NAME, "always_online": True},
            "slash_commands": [_slash_command()],
            "shortcuts": [_dumpslack_shortcut()],
        },
        "oauth_config": {"scopes": {"bot": sorted(BOT_SCOPES)}},
        "settings": settings,
    }


def _slash_command() -> dict[str, Any]:
    # Escaped, so `/incident commander @alice` arrives as `<@U…|alice>`, with the user id.
    return {
        "command": COMMAND,
        "description": "Declare and run incidents",
        "usage_hint": "declare <title> | status <state> | severity P1 | help",
        "should_escape": True,
    }


def _dumpslack_shortcut() -> dict[str, Any]:
    return {
        "name": "Dump to postmortem",
        "type": "message",
        "callback_id": DUMPSLACK_CALLBACK_ID,
        "description": "Copy this incident channel's discussion into its Notion postmortem",
    }


def render() -> str:
    return yaml.dump(build())


def add_parser(commands: Any) -> None:
    commands.add_parser("manifest", help="print the Slack app manifest (YAML)")


def main(_args: argparse.Namespace) -> int:
    print(render(), end="")
    return 0
