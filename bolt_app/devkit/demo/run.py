"""The demo's running part: the fakes, the bot, the script, and `--keep`'s control port."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from bolt_app.devkit.demo import view
from bolt_app.devkit.demo.script import Demo, play
from bolt_app.devkit.harness import running_bot


def run(out: TextIO, *, keep: bool, control_file: Path) -> int:
    """Play the demo; with `keep`, serve `demo say` on a port written to `control_file`."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="firebreak-demo-") as folder:
        url = f"sqlite:///{folder}/demo.db"
        with running_bot(url, RECONCILE_INTERVAL_SECONDS="3600") as bot:
            demo = play(bot, out)
            show_results(demo)
            demo.say(f"\nDone in {time.monotonic() - began:.1f} s.")
            if keep:
                serve_until_interrupted(demo, control_file)
            _quiet_teardown()
    return 0


def _quiet_teardown() -> None:
    """Closing the fake socket makes the Socket Mode client log an error: expected here."""
    for name in ("bolt_app.bolt", "websocket", "slack_sdk"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def show_results(demo: Demo) -> None:
    bot = demo.bot
    demo.say("\nWhat the team sees now:\n")
    demo.say("\n".join(view.channel_view(bot.slack, demo.channel)))
    demo.say()
    for page in bot.notion.pages(bot.data_source_id):
        demo.say("\n".join(view.page_view(bot.notion, page)))


# -- --keep and `say` ----------------------------------------------------------------------


def serve_until_interrupted(demo: Demo, control_file: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _control_handler(demo))
    control_file.write_text(json.dumps({"port": server.server_address[1], "pid": os.getpid()}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    demo.say(
        "\nThe fakes and the bot keep running. In another terminal, for example:\n"
        '  python -m bolt_app demo say "/incident info"\n'
        '  python -m bolt_app demo say "/incident status active"\n'
        '  python -m bolt_app demo say "/incident declare Search is slow"\n'
        f"Slack Web API: {demo.bot.slack.base_url}   Notion API: {demo.bot.notion.base_url}\n"
        "Ctrl-C stops the demo."
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        demo.say("\nstopping")
    finally:
        server.shutdown()
        control_file.unlink(missing_ok=True)


def _control_handler(demo: Demo) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()  # one command at a time, so each answer is its own

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            text = json.loads(self.rfile.read(length) or b"{}").get("text", "")
            with lock:
                seen = view.bot_message_count(demo.bot.slack, demo.channel)
                answer = view.readable(
                    demo.bot.slack, demo.command(text.removeprefix("/incident").strip()) or ""
                )
                said = view.bot_messages(demo.bot.slack, demo.channel, seen)
            body = json.dumps({"answer": answer, "channel": said}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo's own output is what matters."""

    return Handler
