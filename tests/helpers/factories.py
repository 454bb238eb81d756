"""Build real services against local fakes, for tests that skip the Slack edge."""

from __future__ import annotations

import logging
from typing import Any

from bolt_app.adapters.notion import NotionGateway
from bolt_app.adapters.slack import SlackGateway, build_web_client
from bolt_app.core.clock import utcnow
from bolt_app.formats import slack_blocks as blocks
from bolt_app.formats.template import load_template
from bolt_app.incidents.postmortem import PostmortemService
from bolt_app.incidents.service import Numbering
from storage import Incident, Store

NOTION_TOKEN = "ntn_fake_token"


def build_postmortem_service(
    store: Store,
    notion_url: str,
    database_id: str,
    *,
    timeout_s: float = 5.0,
    slack_url: str = "http://127.0.0.1:9/api/",
    template: str | None = None,
) -> PostmortemService:
    notion = NotionGateway(
        token=NOTION_TOKEN,
        base_url=notion_url,
        database_id=database_id,
        timeout_s=timeout_s,
        logger=logging.getLogger("tests.notion"),
    )
    slack = SlackGateway(build_web_client("xoxb-fake-bot", slack_url))
    return PostmortemService(
        store=store,
        slack=slack,
        notion=notion,
        numbering=Numbering(),
        clock=utcnow,
        template=template or load_template(None),
    )


def declare(
    store: Store, title: str = "Checkout is down", channel_id: str | None = None
) -> Incident:
    incident, _ = store.create_incident(
        title=title,
        severity="P2",
        reporter="U0ALICE",
        commander="U0ALICE",
        private=False,
        request_key=None,
        number_start=1,
        now=utcnow(),
    )
    if channel_id is not None:
        store.set_channel(int(incident.id), channel_id, "inc-1-checkout-is-down", utcnow())
        incident = store.get_incident(int(incident.id)) or incident
    return incident


def form_values(title: str, severity: str = "P3", description: str | None = None) -> dict[str, Any]:
    """A declare form's `view.state.values`, as Slack sends them on submit."""
    return {
        blocks.TITLE_BLOCK: {blocks.TITLE_ACTION: {"type": "plain_text_input", "value": title}},
        blocks.SEVERITY_BLOCK: {
            blocks.SEVERITY_ACTION: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": severity, "emoji": True},
                    "value": severity,
                },
            }
        },
        blocks.DESCRIPTION_BLOCK: {
            blocks.DESCRIPTION_ACTION: {"type": "plain_text_input", "value": description}
        },
    }
