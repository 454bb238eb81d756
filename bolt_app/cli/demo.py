"""`python -m bolt_app demo [--keep]` and `demo say "<command>"`: Firebreak with no accounts.

The demo starts FakeSlack and FakeNotion on 127.0.0.1, a temporary SQLite store and the
real bot over a real Socket Mode websocket (`bolt_app.devkit.harness.running_bot`), plays
a scripted incident (`demo_script`) and prints what users would see (`demo_view`).

With `--keep` it stays up afterwards and listens on a local control port (written to
`CONTROL_FILE`); `demo say "/incident status resolved"` sends one command through it,
as a user typing in the incident channel, and prints the bot's answer.

The fakes are imported only when the demo runs (`bolt_app.devkit.demo.run`), not by every `python -m
bolt_app` start.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from bolt_app.runtime.logs import configure_logging

CONTROL_FILE = Path(tempfile.gettempdir()) / "firebreak-demo.json"
SAY_TIMEOUT = 30.0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo", help="play an incident against local fakes (no accounts)")
    parser.add_argument(
        "--keep", action="store_true", help="stay up afterwards so you can send more commands"
    )
    parser.add_argument(
        "say",
        nargs="*",
        metavar="say TEXT",
        help='with a running `demo --keep`: say "/incident <command>"',
    )


def main(args: argparse.Namespace) -> int:
    words: list[str] = args.say
    if words:
        if words[0] != "say" or len(words) < 2:
            print('usage: python -m bolt_app demo say "/incident <command>"', file=sys.stderr)
            return 2
        return say(" ".join(words[1:]), sys.stdout)
    configure_logging("WARNING", "text")
    from bolt_app.devkit.demo import run  # the fakes, only when the demo really runs

    return run.run(sys.stdout, keep=args.keep, control_file=CONTROL_FILE)


def say(text: str, out: TextIO) -> int:
    """Send one command to a running `demo --keep`; print the answer and the channel's news."""
    try:
        port = int(json.loads(CONTROL_FILE.read_text())["port"])
    except (OSError, ValueError, KeyError):
        print(
            "No demo is running: start one with `python -m bolt_app demo --keep`.", file=sys.stderr
        )
        return 1
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/say",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=SAY_TIMEOUT) as response:
            result = json.loads(response.read())
    except (urllib.error.URLError, OSError) as error:
        print(f"The demo didn't answer ({error}); is `demo --keep` still running?", file=sys.stderr)
        return 1
    if result["answer"]:
        print(f"↳ {result['answer']}", file=out)
    for line in result["channel"]:
        print(line, file=out)
    return 0
