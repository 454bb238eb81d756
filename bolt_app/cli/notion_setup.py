"""`python -m bolt_app notion-setup --parent <page id>`: create the postmortem database.

The database gets exactly the properties the bot fills in (`bolt_app.adapters.notion`): the
title, "Incident" (text; how a page is found again), "Severity", "Status", "Declared"
and "Channel". It is created under a page the integration can edit, and its id is
printed for NOTION_POSTMORTEM_DATABASE_ID. Only NOTION_TOKEN (and NOTION_API_BASE_URL)
need to be set: the database id is what this command makes.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from typing import Any

import httpx
from notion_client import Client
from notion_client.errors import HTTPResponseError, NotionClientErrorBase

from bolt_app.adapters.notion import (
    INCIDENT_PROPERTY,
    STATUS_OPTIONS,
    retry_after_header,
    translate_error,
)
from bolt_app.core.domain import SEVERITIES
from bolt_app.runtime.config import ConfigError, load_notion_access

DATABASE_TITLE = "Postmortems"
TIMEOUT_MS = 30_000
_ID = re.compile(r"([0-9a-f]{32})(?:[?#].*)?$")
_SEVERITY_COLORS = ("red", "orange", "yellow", "blue", "gray")
_STATUS_COLORS = ("red", "yellow", "blue", "purple", "green", "gray")
_PARENT_MISSING = (
    "the parent page doesn't exist or isn't shared with the integration"
    " (open the page, ••• → Connections, add the integration)"
)


def database_properties() -> dict[str, Any]:
    """`initial_data_source.properties` of the postmortem database (Notion-Version 2025-09-03)."""
    return {
        "Name": {"title": {}},
        INCIDENT_PROPERTY: {"rich_text": {}},
        "Severity": {"select": {"options": _options(SEVERITIES, _SEVERITY_COLORS)}},
        "Status": {"select": {"options": _options(STATUS_OPTIONS.values(), _STATUS_COLORS)}},
        "Declared": {"date": {}},
        "Channel": {"url": {}},
    }


def _options(names: Any, colors: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"name": name, "color": color} for name, color in zip(names, colors, strict=True)]


def page_id(raw: str) -> str:
    """The page id in a bare id, a dashed id or a page URL (`…/Incidents-<32 hex>`)."""
    match = _ID.search(raw.strip().replace("-", "").lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a Notion page id or page URL")
    return match.group(1)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "notion-setup", help="create the Notion postmortem database under a page"
    )
    parser.add_argument(
        "--parent",
        required=True,
        type=page_id,
        metavar="PAGE_ID",
        help="the page (id or URL) to create it under; share the page with the integration",
    )
    parser.add_argument("--title", default=DATABASE_TITLE, help="the database's title")


#: Tries of the create when Notion answers 529 (overloaded: nothing was created).
OVERLOAD_TRIES = 3
#: The longest Retry-After this command waits out.
MAX_OVERLOAD_WAIT = 60.0


def _create(client: Client, args: argparse.Namespace) -> Any:
    """`databases.create`; notion-client retries a 429 itself but not a 529, which like a
    429 means Notion did nothing and asks to wait `Retry-After`."""
    for attempt in range(1, OVERLOAD_TRIES + 1):
        try:
            return client.databases.create(
                parent={"type": "page_id", "page_id": args.parent},
                title=[{"type": "text", "text": {"content": args.title}}],
                initial_data_source={"properties": database_properties()},
            )
        except HTTPResponseError as error:
            if error.status != 529 or attempt == OVERLOAD_TRIES:
                raise
            wait = min(retry_after_header(error.headers) or 1.0, MAX_OVERLOAD_WAIT)
            print(f"firebreak: Notion is overloaded; trying again in {wait:.0f} s", file=sys.stderr)
            time.sleep(wait)
    raise AssertionError("unreachable")


def main(args: argparse.Namespace) -> int:
    try:
        token, base_url = load_notion_access()
    except ConfigError as error:
        print(f"firebreak: {error}", file=sys.stderr)
        return 2
    client = Client(
        auth=token,
        base_url=base_url.rstrip("/"),
        timeout_ms=TIMEOUT_MS,
        logger=logging.getLogger("bolt_app.notion_client"),
    )
    try:
        database: Any = _create(client, args)
    except (NotionClientErrorBase, httpx.TransportError) as error:
        reason = translate_error(error, missing=_PARENT_MISSING).reason
        print(f"firebreak: couldn't create the database: {reason}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"Created the postmortem database {database.get('url', '')}")
    print("Add this line to .env, then run `python -m bolt_app check`:")
    print(f"NOTION_POSTMORTEM_DATABASE_ID={database['id']}")
    return 0
