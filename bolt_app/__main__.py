"""`python -m bolt_app [run|manifest]`: the bot's command line.

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
from types import FrameType

from bolt_app.app import SocketRunner, build_app
from bolt_app.config import ConfigError, Settings, load_settings
from bolt_app.logs import configure_logging
from bolt_app.notion import NotionError, NotionSchemaError
from bolt_app.reconciler import Reconciler
from bolt_app.services import Services
from bolt_app.slack import SlackError, build_web_client

log = logging.getLogger("bolt_app")

EXIT_CONFIG = 2
#: How long SIGTERM waits for running jobs before the process leaves anyway.
SHUTDOWN_GRACE_SECONDS = 2.0


class StartupError(Exception):
    """A problem the operator must fix before the bot can run; the message says which."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bolt_app", description="Firebreak, the Slack incident bot."
    )
    parser.add_argument(
        "command", nargs="?", default="run", choices=("run",), help="run the bot (default)"
    )
    parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"firebreak: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    try:
        return run(settings)
    except StartupError as error:
        print(f"firebreak: {error}", file=sys.stderr)
        return EXIT_CONFIG


def run(settings: Settings) -> int:
    """Connect and serve until SIGTERM or SIGINT, then close the socket and exit 0."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    client = build_web_client(settings.slack_bot_token, settings.slack_api_base_url)
    services = Services.build(settings, client)
    _check_slack_token(services)
    _check_notion_schema(services)
    app = build_app(services, client)
    runner = SocketRunner(app, settings.slack_app_token)
    runner.connect()
    reconciler = Reconciler(services, settings.reconcile_interval_seconds)
    reconciler.start()
    log.info("connected in Socket Mode; waiting for /incident")
    stop.wait()
    reconciler.stop()
    runner.close()
    finished = services.close(SHUTDOWN_GRACE_SECONDS)
    log.info("stopped")
    if not finished:
        # Unfinished jobs are ensure steps the reconciler of any process re-runs; don't
        # let the interpreter wait for them at exit.
        logging.shutdown()
        os._exit(0)
    return 0


def _check_slack_token(services: Services) -> None:
    try:
        services.slack.verify()
    except SlackError as error:
        raise StartupError(f"SLACK_BOT_TOKEN was not accepted by Slack ({error.code})") from None


def _check_notion_schema(services: Services) -> None:
    """A database without the required properties is a set-up error; an outage is not."""
    try:
        services.notion.schema()
    except NotionSchemaError as error:
        raise StartupError(f"NOTION_POSTMORTEM_DATABASE_ID: {error.reason}") from None
    except NotionError as error:
        log.warning(
            "Notion is not answering yet (%s); pages will be created when it does", error.reason
        )


if __name__ == "__main__":
    sys.exit(main())
