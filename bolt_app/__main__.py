"""`python -m bolt_app [run|manifest|check|notion-setup|demo]`: the bot's command line.

Start-up problems (a missing or malformed setting, a token Slack rejects, a Notion
database without the required properties) end the process with one line that names
the setting and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from bolt_app.cli import check as cli_check
from bolt_app.cli import demo as cli_demo
from bolt_app.cli import manifest as cli_manifest
from bolt_app.cli import notion_setup as cli_notion_setup
from bolt_app.runtime.config import ConfigError, load_settings, misspelt_settings
from bolt_app.runtime.logs import configure_logging
from bolt_app.runtime.process import run
from bolt_app.runtime.wiring import StartupError

log = logging.getLogger("bolt_app")

#: Everything but `run`: each module in bolt_app/cli has `add_parser` and `main`.
OPERATOR_COMMANDS: dict[str, ModuleType] = {
    "manifest": cli_manifest,
    "check": cli_check,
    "notion-setup": cli_notion_setup,
    "demo": cli_demo,
}

EXIT_CONFIG = 2


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
    for line in misspelt_settings():
        log.warning("%s", line)
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


if __name__ == "__main__":
    sys.exit(main())
