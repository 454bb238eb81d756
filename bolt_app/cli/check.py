"""`python -m bolt_app check`: is this deployment ready to run? One line per check.

Each check prints ✓ or ✗ (or ! for something the bot copes with), and every ✗ comes
with the fix. The exit status is 1 when any check failed, so a deploy script can run it.
Checks only read: nothing is created in Slack, Notion or the database, and the Socket
Mode URL is asked for but never connected to.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bolt_app.adapters.notion import (
    OPTIONAL_PROPERTIES,
    NotionError,
    NotionGateway,
    PostmortemSchema,
)
from bolt_app.adapters.slack import BOT_SCOPES, SLACK_TIMEOUT_SECONDS
from bolt_app.cli import manifest
from bolt_app.core.naming import Numbering
from bolt_app.incidents.postmortem import LabelsTaken
from bolt_app.runtime.config import ConfigError, Settings, load_settings, misspelt_settings
from storage import LATEST_SCHEMA_VERSION, DatabaseConfig, StoreError, open_store, parse_url

OK, FAILED, WARNING = "✓", "✗", "!"

#: How Notion's UI names the property types we ask for.
_TYPE_NAMES = {"select": "Select", "date": "Date", "url": "URL"}


@dataclass(frozen=True)
class Result:
    mark: str
    what: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        first = f"{self.mark} {self.what}: {self.detail}"
        return [first, f"    fix: {self.fix}"] if self.fix else [first]


def _ok(what: str, detail: str) -> Result:
    return Result(OK, what, detail)


def _failed(what: str, detail: str, fix: str) -> Result:
    return Result(FAILED, what, detail, fix)


def add_parser(commands: Any) -> None:
    commands.add_parser(
        "check", help="verify tokens, scopes, Socket Mode, the Notion database and the store"
    )


def main(_args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        print("\n".join(_failed("settings", str(error), "set it in .env").lines()))
        return 1
    for line in misspelt_settings():
        print(f"warning: {line}")
    return report(settings, sys.stdout)


def report(settings: Settings, out: TextIO) -> int:
    """Run every check, print its line(s) as it finishes; 1 if any failed, else 0."""
    failed = False
    for result in run_checks(settings):
        print("\n".join(result.lines()), file=out, flush=True)
        failed = failed or result.mark == FAILED
    return 1 if failed else 0


def run_checks(settings: Settings) -> Iterator[Result]:
    checks: tuple[Callable[[Settings], Iterator[Result]], ...] = (
        _slack_checks,
        _socket_mode_check,
        _notion_checks,
        _database_checks,
        _labels_check,
    )
    for check in checks:
        yield from check(settings)


# --- Slack ------------------------------------------------------------------------------


def _slack_checks(settings: Settings) -> Iterator[Result]:
    """`auth.test`, and the scopes Slack says the token has (`x-oauth-scopes`)."""
    client = WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_base_url,
        timeout=SLACK_TIMEOUT_SECONDS,
    )
    try:
        response = client.auth_test()
    except SlackApiError as error:
        yield _failed(
            "Slack bot token",
            f"Slack said `{error.response.get('error', 'unknown_error')}` to auth.test",
            "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into"
            " SLACK_BOT_TOKEN; install the app to the workspace if there is none",
        )
        return
    yield _ok("Slack bot token", f"accepted: @{response.get('user')} in {response.get('team')}")
    granted = {s.strip() for s in response.headers.get("x-oauth-scopes", "").split(",")}
    missing = sorted(set(BOT_SCOPES) - granted)
    if missing:
        names = ", ".join(missing)
        yield _failed(
            "Slack bot scopes",
            f"missing {names}" + (f" (for: {BOT_SCOPES[missing[0]]})" if len(missing) == 1 else ""),
            f"add the {names} scope{'s' if len(missing) > 1 else ''} under OAuth & Permissions"
            " (or update the app from `python -m bolt_app manifest`) and reinstall the app",
        )
    else:
        yield _ok("Slack bot scopes", f"all {len(BOT_SCOPES)} granted")
    yield _events_check(granted)


def _events_check(granted: set[str]) -> Result:
    """The events the bot needs, and whether the token's scopes let Slack deliver them.

    Slack has no API to read an app's event subscriptions, so this says which to have.
    """
    events = manifest.bot_events()
    blocked = [e for e in events if manifest.EVENT_SCOPES[e] not in granted]
    if blocked:
        return _failed(
            "Slack events",
            f"Slack can't deliver {', '.join(blocked)} without their scopes",
            "grant the scopes above and reinstall the app",
        )
    return _ok("Slack events", f"subscribe to {', '.join(events)} (the manifest does)")


def _socket_mode_check(settings: Settings) -> Iterator[Result]:
    """`apps.connections.open` with the app token; the URL it returns is not used."""
    client = WebClient(base_url=settings.slack_api_base_url, timeout=SLACK_TIMEOUT_SECONDS)
    try:
        client.apps_connections_open(app_token=settings.slack_app_token)
    except SlackApiError as error:
        yield _failed(
            "Socket Mode",
            f"Slack said `{error.response.get('error', 'unknown_error')}` to apps.connections.open",
            "turn on Socket Mode in the app's settings and put an app-level token with the"
            " connections:write scope (Basic Information → App-Level Tokens) in SLACK_APP_TOKEN",
        )
        return
    yield _ok("Socket Mode", "the app token can open a connection")


# --- Notion -----------------------------------------------------------------------------


def _gateway(settings: Settings) -> NotionGateway:
    return NotionGateway(
        token=settings.notion_token,
        base_url=settings.notion_api_base_url,
        database_id=settings.notion_postmortem_database_id,
        timeout_s=settings.notion_timeout_seconds,
    )


def _notion_checks(settings: Settings) -> Iterator[Result]:
    gateway = _gateway(settings)
    try:
        schema = gateway.schema()
    except NotionError as error:
        yield _failed("Notion postmortem database", error.reason, _notion_fix(error))
        return
    finally:
        gateway.close()
    yield _ok(
        "Notion postmortem database",
        f'readable; pages get "{schema.title}" and "{schema.incident}"',
    )
    yield from _optional_properties(schema)


def _notion_fix(error: NotionError) -> str:
    if error.code == "unauthorized":
        return "copy the integration's Internal Integration Secret into NOTION_TOKEN"
    if error.status == 404 or error.code == "object_not_found":
        return (
            "open the database in Notion, ••• → Connections, add the integration; and check"
            " NOTION_POSTMORTEM_DATABASE_ID (or create one with `python -m bolt_app"
            " notion-setup --parent <page id>`)"
        )
    if error.status is not None and 400 <= error.status < 500:
        return "fix the database's properties as the message says (see the README's Notion set-up)"
    return "check NOTION_API_BASE_URL and the network, then run check again"


def _optional_properties(schema: PostmortemSchema) -> Iterator[Result]:
    """Missing optional properties only mean fewer fields are filled in: a warning; so
    does one the bot can't write (its fix in the line)."""
    for warning in schema.warnings:  # each says its own fix
        yield Result(WARNING, "Notion postmortem database", warning)
    for field, (name, notion_type) in OPTIONAL_PROPERTIES.items():
        kind = _TYPE_NAMES.get(notion_type, notion_type)
        if getattr(schema, field) is None and not any(f'"{name}"' in w for w in schema.warnings):
            yield Result(
                WARNING,
                f'Notion property "{name}"',
                f"missing or not a {kind} property, so Firebreak leaves it empty",
                f'add a {kind} property named "{name}" to fill it in',
            )


def _labels_check(settings: Settings) -> Iterator[Result]:
    """The labels in the database against the store's next number: the bot refuses to
    declare over a label that is there already (a reset store, another deployment)."""
    numbering = Numbering(settings.incident_prefix, settings.incident_number_start)
    gateway = _gateway(settings)
    try:
        numbers = gateway.label_numbers(numbering.prefix)
        upcoming = _next_number(settings.database_url, numbering.start)
    except (NotionError, StoreError, OSError, ValueError):
        return  # said by the Notion and database checks above
    finally:
        gateway.close()
    what = "incident numbers"
    taken = LabelsTaken.among(numbering, numbers, upcoming)
    if taken is not None:
        yield _failed(
            what,
            f"the next declare would be {numbering.label(upcoming)}, and {taken.user_message}",
            "do one of those; until then Firebreak refuses to declare (other commands work)",
        )
    else:
        yield _ok(what, f"the next declare is {numbering.label(upcoming)}, unused in Notion")


def _next_number(url: str, start: int) -> int:
    """The store's next number; `start` for a database the bot hasn't made yet."""
    config = parse_url(url)
    if _no_file_yet(config):
        return start
    store = open_store(url, migrate=False)
    try:
        return store.next_number(start) if store.schema_version() > 0 else start
    finally:
        store.close()


# --- database ---------------------------------------------------------------------------


def _database_checks(settings: Settings) -> Iterator[Result]:
    config = parse_url(settings.database_url)
    if _no_file_yet(config):
        yield _missing_sqlite_file(config.database)
        return
    try:
        version = _schema_version(settings.database_url)
    except (StoreError, OSError, ValueError) as error:
        yield _failed(
            "DATABASE_URL",
            f"the database doesn't answer ({type(error).__name__}: {_first_line(error)})",
            "check the URL, that the server runs and that the user may connect",
        )
        return
    yield from _migration_result(version)


def _no_file_yet(config: DatabaseConfig) -> bool:
    """A SQLite file the bot hasn't created yet (it does at its first start)."""
    return (
        config.backend == "sqlite" and not config.is_memory and not os.path.exists(config.database)
    )


def _schema_version(url: str) -> int:
    store = open_store(url, migrate=False)
    try:
        return store.schema_version()
    finally:
        store.close()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def _missing_sqlite_file(path: str) -> Result:
    """Not an error before the first start; an unwritable folder is."""
    folder = os.path.dirname(path) or "."
    if not os.access(folder, os.W_OK):
        return _failed(
            "DATABASE_URL",
            f"{folder} doesn't exist or isn't writable",
            "create the folder or point DATABASE_URL elsewhere",
        )
    return Result(WARNING, "DATABASE_URL", f"{path} doesn't exist yet; the bot creates it at start")


def _migration_result(version: int) -> Iterator[Result]:
    latest = LATEST_SCHEMA_VERSION
    what = "database schema"
    if version == latest:
        yield _ok(what, f"answers; migrations applied (version {version})")
    elif version > latest:
        yield _failed(
            what,
            f"version {version} is newer than this code knows ({latest})",
            "upgrade Firebreak to the version that migrated this database",
        )
    else:
        yield Result(
            WARNING, what, f"at version {version} of {latest}; the bot applies the rest at start"
        )
