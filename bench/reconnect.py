"""Reconnects while the app token is refused: `apps.connections.open` calls and log lines.

Runs `python -m bolt_app` as production does, against FakeSlack and FakeNotion, revokes
the app token (Slack answers `invalid_auth`), drops the socket and counts, over a window,
the calls to `apps.connections.open` and the lines the bot logged; then prints what
`/healthz` said, restores the token and times the bot's recovery. Target: backoff (about
4 calls in 12 s with 1 s doubling to 60 s), one line per attempt, a `reason` in `/healthz`.

    .venv/bin/python -m bench.reconnect [--seconds 12]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.devkit.fake_slack.fake import FakeSlack
from bolt_app.devkit.harness import bot_environment, free_port, get_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="the window (12)")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack, FakeNotion() as notion:
        database_id, _ = notion.add_database()
        env = bot_environment(
            slack, notion.base_url, database_id, "sqlite:///bench.db", HEALTH_PORT=str(port)
        )
        env.update(PATH=os.environ.get("PATH", ""), PYTHONPATH=os.getcwd())
        bot = subprocess.Popen(
            [sys.executable, "-m", "bolt_app"],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        assert bot.stdout is not None
        output = bot.stdout
        threading.Thread(target=lambda: lines.extend(output), daemon=True).start()
        try:
            slack.wait_connected(1, timeout=30)
            slack.wait_for(lambda: get_json(port)[0] == 200, timeout=10)
            calls, logged = slack.count("apps.connections.open"), len(lines)
            slack.revoke_app_token()
            slack.drop_sockets()
            time.sleep(args.seconds)  # the window measured, not a wait for a condition
            calls = slack.count("apps.connections.open") - calls
            logged = len(lines) - logged
            print(f"apps.connections.open calls in {args.seconds:.0f} s while refused: {calls}")
            print(f"log lines in that window: {logged}")
            print(f"/healthz: {get_json(port)}")
            slack.restore_app_token()
            restored = time.monotonic()
            slack.wait_for(lambda: get_json(port)[0] == 200, timeout=90)
            print(f"healthy again {time.monotonic() - restored:.1f} s after the token is back")
        finally:
            bot.send_signal(signal.SIGTERM)
            bot.wait(timeout=20)
        leaked = slack.app_token in "".join(lines) or slack.bot_token in "".join(lines)
        print(f"a token in the log: {leaked}")


if __name__ == "__main__":
    main()
