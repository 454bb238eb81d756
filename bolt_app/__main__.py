"""`python -m bolt_app [run|manifest|check|notion-setup|demo]`: the bot's command line.

Start-up problems (a missing or malformed setting, a token Slack rejects, a Notion
database without the required properties) end the process with one line that names
the setting and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType, ModuleType

from slack_sdk import WebClient

from bolt_app.adapters.notion import NotionError, NotionSchemaError
from bolt_app.adapters.slack import SlackError, build_web_client
from bolt_app.cli import check as cli_check
from bolt_app.cli import demo as cli_demo
from bolt_app.cli import manifest as cli_manifest
from bolt_app.cli import notion_setup as cli_notion_setup
from bolt_app.runtime import envelope_log
from bolt_app.runtime.config import ConfigError, Settings, load_settings
from bolt_app.runtime.health import serve_health
from bolt_app.runtime.logs import configure_logging
from bolt_app.runtime.reconciler import Reconciler
from bolt_app.runtime.socket_mode import SocketRunner, build_app
from bolt_app.services import Services
from storage import StoreError

log = logging.getLogger("bolt_app")

#: Everything but `run`: each module in bolt_app/cli has `add_parser` and `main`.
OPERATOR_COMMANDS: dict[str, ModuleType] = {
    "manifest": cli_manifest,
    "check": cli_check,
    "notion-setup": cli_notion_setup,
    "demo": cli_demo,
}

EXIT_CONFIG = 2
#: How long SIGTERM waits for running jobs before the process leaves anyway.
SHUTDOWN_GRACE_SECONDS = 2.0
#: How often the main thread wakes to run signal handlers while it waits for SIGTERM.
SIGNAL_POLL_SECONDS = 0.5


class StartupError(Exception):
    """A problem the operator must fix before the bot can run; the message says which."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in OPERATOR_COMMANDS:
        return int(OPERATOR_COMMANDS[args.command].main(args))
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"firebreak: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    try:
        return run(settings)
    except (StartupError, ConfigError) as error:  # ConfigError: e.g. LLM_* set, no openai
        print(f"firebreak: {error}", file=sys.stderr)
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bolt_app", description="Firebreak, the Slack incident bot."
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("run", help="run the bot (the default)")
    for module in OPERATOR_COMMANDS.values():
        module.add_parser(commands)
    return parser


def run(settings: Settings) -> int:
    """Connect and serve until SIGTERM or SIGINT, then close the socket and exit 0."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    client = build_web_client(settings.slack_bot_token, settings.slack_api_base_url)
    services = _build_services(settings, client)
    _check_slack_token(services)
    _check_notion_schema(services)
    app = build_app(services, client)
    runner = SocketRunner(app, settings.slack_app_token)
    envelope_log.attach(runner.client, app, services)
    runner.connect()
    health = serve_health(settings.health_port, runner.is_connected, services.store)
    reconciler = Reconciler(services, settings.reconcile_interval_seconds)
    reconciler.start()
    log.info("connected in Socket Mode; waiting for /incident")
    # Poll: a signal the kernel hands to another thread never wakes an unbounded wait, and
    # Python runs signal handlers only on the main thread (SIGTERM was ignored under load).
    while not stop.wait(timeout=SIGNAL_POLL_SECONDS):
        pass
    if health is not None:
        health.stop()
    reconciler.stop(timeout=1.0)
    runner.close()
    finished = services.close(SHUTDOWN_GRACE_SECONDS)
    log.info("stopped")
    if not finished:
        # Unfinished jobs are ensure steps the reconciler of any process re-runs; don't
        # let the interpreter wait for them at exit.
        logging.shutdown()
        os._exit(0)
    return 0


def _build_services(settings: Settings, client: WebClient) -> Services:
    """The services, with an unusable database reported as one line, not a traceback."""
    try:
        return Services.build(settings, client)
    except (ValueError, StoreError) as error:
        raise StartupError(f"DATABASE_URL doesn't work: {error}") from None


def _check_slack_token(services: Services) -> None:
    try:
        services.slack.verify()
    except SlackError as error:
        raise StartupError(f"SLACK_BOT_TOKEN was not accepted by Slack ({error.code})") from None


#: Notion answers that mean the set-up is wrong, not that Notion is down.
_SETUP_STATUSES = {401: "NOTION_TOKEN", 403: "NOTION_TOKEN", 404: "NOTION_POSTMORTEM_DATABASE_ID"}


def _check_notion_schema(services: Services) -> None:
    """A bad token, an unshared database or missing properties are set-up errors; an
    outage is not (the reconciler creates the pages once Notion answers)."""
    try:
        services.notion.schema()
    except NotionSchemaError as error:
        raise StartupError(f"NOTION_POSTMORTEM_DATABASE_ID: {error.reason}") from None
    except NotionError as error:
        variable = _SETUP_STATUSES.get(error.status or 0)
        if variable is not None:
            raise StartupError(f"{variable}: {error.reason}") from None
        log.warning(
            "Notion is not answering yet (%s); pages will be created when it does", error.reason
        )


if __name__ == "__main__":
    sys.exit(main())
