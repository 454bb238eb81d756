"""Builders for the payloads Slack pushes over Socket Mode.

Shapes follow Slack's docs for slash commands (the form fields, as strings),
interaction payloads (``message_action``, ``view_submission``,
``block_actions``) and Events API callbacks; Bolt routes on exactly these
fields, so a wrong shape shows up as "no listener matched" in tests.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from bolt_app.devkit.fake_slack.state import APP_ID, JSON, TEAM_DOMAIN, TEAM_ID, User

VERIFICATION_TOKEN = "fake-verification-token"  # Slack's deprecated verification token field


def new_envelope_id() -> str:
    """Slack's envelope ids are UUIDs."""
    return str(uuid.uuid4())


def new_event_id() -> str:
    """Events API ids look like ``Ev0123ABCD``."""
    return "Ev" + secrets.token_hex(5).upper()


def team() -> JSON:
    """The ``team`` object of interaction payloads."""
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def user_ref(user: User) -> JSON:
    """The ``user`` object of interaction payloads."""
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID}


def envelope(kind: str, payload: JSON, accepts_response_payload: bool, envelope_id: str) -> JSON:
    """A Socket Mode envelope; only Events API envelopes carry retry fields."""
    out: JSON = {
        "envelope_id": envelope_id,
        "payload": payload,
        "type": kind,
        "accepts_response_payload": accepts_response_payload,
    }
    if kind == "events_api":
        out["retry_attempt"] = 0
        out["retry_reason"] = ""
    return out


def slash_command(
    *,
    command: str,
    text: str,
    user: User,
    channel_id: str,
    channel_name: str,
    response_url: str,
    trigger_id: str,
) -> JSON:
    """The form fields of a slash command, as Slack sends them (all strings)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _interaction(kind: str, user: User, trigger_id: str) -> JSON:
    """Fields every interaction payload has."""
    return {
        "type": kind,
        "token": VERIFICATION_TOKEN,
        "team": team(),
        "user": user_ref(user),
        "api_app_id": APP_ID,
        "trigger_id": trigger_id,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_action(
    *,
    callback_id: str,
    user: User,
    channel_id: str,
    channel_name: str,
    message: JSON,
    response_url: str,
    trigger_id: str,
) -> JSON:
    """A message shortcut (``type: message_action``)."""
    payload = _interaction("message_action", user, trigger_id)
    payload.update(
        {
            "action_ts": f"{time.time():.6f}",
            "callback_id": callback_id,
            "channel": {"id": channel_id, "name": channel_name},
            "message_ts": message["ts"],
            "message": message,
            "response_url": response_url,
        }
    )
    return payload


def view_submission(*, view: JSON, user: User, trigger_id: str) -> JSON:
    """A modal submission (``type: view_submission``)."""
    payload = _interaction("view_submission", user, trigger_id)
    payload.update({"view": view, "response_urls": []})
    return payload


def block_actions(
    *,
    action: JSON,
    user: User,
    trigger_id: str,
    container: JSON,
    extra: JSON,
) -> JSON:
    """A Block Kit interaction (``type: block_actions``) with one action."""
    payload = _interaction("block_actions", user, trigger_id)
    payload.update({"container": container, "actions": [action], "state": {"values": {}}})
    payload.update(extra)
    return payload


def button_action(action_id: str, value: str | None, block_id: str | None) -> JSON:
    """One ``actions[]`` entry for a button click."""
    return {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id or secrets.token_hex(3),
        "text": {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "action_ts": f"{time.time():.6f}",
    }


def event_callback(event: JSON, bot_user_id: str, event_id: str, event_time: int) -> JSON:
    """An Events API ``event_callback`` wrapping one event."""
    authorization: dict[str, Any] = {
        "enterprise_id": None,
        "team_id": TEAM_ID,
        "user_id": bot_user_id,
        "is_bot": True,
        "is_enterprise_install": False,
    }
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [authorization],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_hex(16),
    }
