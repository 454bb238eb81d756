"""Modal submissions: the declare form.

Invalid fields are answered inline (`response_action: errors`) so the form stays open
with the user's text in it; a valid form closes at once and the work runs after the ack.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bolt_app.core.domain import DEFAULT_SEVERITY
from bolt_app.core.errors import UsageError
from bolt_app.formats import slack_blocks as blocks
from bolt_app.incidents.service import clean_severity, clean_title
from bolt_app.listeners.declare import declare_and_tell
from bolt_app.listeners.errors import Reply, report_to
from bolt_app.services import Services


def _value(values: dict[str, Any], block: str, action: str) -> str:
    element = values.get(block, {}).get(action, {})
    selected = element.get("selected_option")
    if selected:
        return str(selected.get("value", ""))
    return str(element.get("value") or "")


def _checked(values: dict[str, Any], block: str, action: str, value: str) -> bool:
    element = values.get(block, {}).get(action, {})
    return any(o.get("value") == value for o in element.get("selected_options") or [])


def _form_errors(title: str, severity: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for block_id, check, raw in (
        (blocks.TITLE_BLOCK, clean_title, title),
        (blocks.SEVERITY_BLOCK, clean_severity, severity),
    ):
        try:
            check(raw)
        except UsageError as error:
            errors[block_id] = error.user_message
    return errors


def _replier(client: WebClient, response_url: str, user_id: str) -> Reply:
    """Answer where the command was typed; without a response URL, in the app's DM."""
    if response_url:
        hook = WebhookClient(response_url)

        def via_response_url(text: str) -> None:
            hook.send(text=text, response_type="ephemeral")

        return via_response_url

    def via_dm(text: str) -> None:
        client.chat_postMessage(channel=user_id, text=text)

    return via_dm


def register(app: App, services: Services) -> None:
    @app.view(blocks.DECLARE_CALLBACK_ID)
    def declare_submitted(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        values = view.get("state", {}).get("values", {})
        title = _value(values, blocks.TITLE_BLOCK, blocks.TITLE_ACTION)
        severity = _value(values, blocks.SEVERITY_BLOCK, blocks.SEVERITY_ACTION) or DEFAULT_SEVERITY
        private = _checked(
            values, blocks.PRIVATE_BLOCK, blocks.PRIVATE_ACTION, blocks.PRIVATE_VALUE
        )
        errors = _form_errors(title, severity)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        user_id = body["user"]["id"]
        description = _value(values, blocks.DESCRIPTION_BLOCK, blocks.DESCRIPTION_ACTION)
        fields: dict[str, Any] = dict(
            title=title,
            reporter=user_id,
            severity=severity,
            private=private,
            request_key=f"view:{view['id']}",
            description=description or None,
            reporter_name=body["user"].get("username") or body["user"].get("name"),
        )
        # Stored before the ack, like `/incident declare <title>`: after the ack Slack
        # never resends the submission, so a process dying now must not lose it. The
        # same fields go to both calls; the second finds the incident by request key.
        services.incidents.record(**fields)
        ack()
        reply = _replier(client, view.get("private_metadata", ""), user_id)

        def declare() -> None:
            declare_and_tell(services, reply, **fields)

        services.commands.submit(declare, report_to(reply))
