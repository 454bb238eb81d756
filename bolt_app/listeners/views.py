"""Modal submissions: the declare form.

Invalid fields are answered inline (`response_action: errors`) so the form stays open
with the user's text in it; a valid form closes at once and the work runs after the ack.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bolt_app.core.domain import DEFAULT_SEVERITY
from bolt_app.core.errors import FirebreakError, UsageError
from bolt_app.formats import slack_blocks as blocks
from bolt_app.incidents.service import clean_severity, clean_title
from bolt_app.listeners.declare import declare_and_tell
from bolt_app.listeners.dispatch import NO_DATABASE
from bolt_app.listeners.errors import Reply, report_to, via_response_url
from bolt_app.services import Services
from storage import StoreUnavailable

#: The inbox kind of a submitted declare form.
FORM = "form"


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
        return via_response_url(response_url)

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
        try:
            services.incidents.declarable()
        except FirebreakError as error:  # the form stays open, saying why
            ack(response_action="errors", errors={blocks.TITLE_BLOCK: error.user_message})
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
        # An inbox row before the ack, like `/incident declare <title>`: Slack never
        # resends a submission, so a process dying now must not lose it.
        response_url = view.get("private_metadata", "")
        try:
            row = services.inbox.put(
                str(fields["request_key"]), FORM, {"fields": fields, "response_url": response_url}
            )
        except StoreUnavailable:  # the form stays open, with what they typed
            ack(
                response_action="errors",
                errors={blocks.TITLE_BLOCK: NO_DATABASE.format(verb="declared")},
            )
            return
        ack()
        if row is None:
            return  # submitted before: that one is someone's already (or done)
        reply = _replier(client, response_url, user_id)
        declared = row
        services.commands.submit(
            lambda: services.inbox.run(
                declared, lambda: declare_and_tell(services, reply, **fields)
            ),
            report_to(reply),
        )
