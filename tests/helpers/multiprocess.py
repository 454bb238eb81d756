"""Several `python -m bolt_app` processes against one FakeSlack, one FakeNotion, one store.

`Fleet` starts real bot processes (fresh interpreters, as an operator would run them) and
`Seeded` / `transcript_of` say what each incident's Notion transcript should hold and what
it does hold, for tests/processes/test_multiprocess.py.

Each bot's output goes to a file, never to a pipe nobody reads: a bot that logs a line per
envelope would otherwise block on a full pipe and look like a hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from bolt_app.devkit.fake_notion.fake import FakeNotion
from bolt_app.formats.template import TRANSCRIPT_HEADING
from bolt_app.transcript.render import linked_ts_all

ROOT = Path(__file__).resolve().parents[2]

#: What a transcript holds: (top-level ts, [reply ts, ...]) in page order.
Transcript = list[tuple[str, list[str]]]


@dataclass
class BotProcess:
    """One running `python -m bolt_app`, its output in `log_path`."""

    index: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def kill(self) -> None:
        """SIGKILL: no cleanup code runs, sockets and locks go with the process."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def output(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.log_file.close()


class Fleet:
    """N bot processes sharing one environment; `with Fleet(...) as fleet` kills leftovers."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env}
        self.workdir = workdir
        self.bots: list[BotProcess] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            index = len(self.bots)
            log_path = self.workdir / f"bot-{index}.log"
            log_file = log_path.open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bolt_app"],
                cwd=self.workdir,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            self.bots.append(BotProcess(index, proc, log_path, log_file))

    def alive(self) -> list[BotProcess]:
        return [bot for bot in self.bots if bot.proc.poll() is None]

    def describe(self) -> str:
        """Each bot's exit status and last lines, for a failing assertion's message."""
        parts = []
        for bot in self.bots:
            tail = "\n".join(bot.output().splitlines()[-15:])
            parts.append(f"--- bot {bot.index} (exit {bot.proc.poll()})\n{tail}")
        return "\n".join(parts)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for bot in self.bots:
            bot.close()


@dataclass
class Seeded:
    """What the test posted in one incident channel that belongs in its transcript."""

    top: list[str] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=dict)

    def expected(self) -> Transcript:
        return [(ts, self.replies.get(ts, [])) for ts in self.top]

    @property
    def count(self) -> int:
        return len(self.top) + sum(len(r) for r in self.replies.values())


def transcript_of(notion: FakeNotion, page_id: str) -> Transcript | None:
    """The message blocks under the page's "Slack transcript" heading (None: no heading).

    Returns each top-level message's ts and its nested replies' ts, read from the
    permalink each block links to, so a message written twice shows up twice.
    """
    tree = notion.children_tree(page_id)
    headings = [b for b in tree if FakeNotion.plain_text(b) == TRANSCRIPT_HEADING]
    if not headings:
        return None
    assert len(headings) == 1, f"{len(headings)} transcript headings on {page_id}"
    messages: list[tuple[str, list[str]]] = []
    for block in headings[0]["children"]:
        if block["type"] != "paragraph":
            continue
        # Packed: one message per line; the block's children reply to its last line.
        lines = linked_ts_all(block)
        children = [ts for child in block.get("children", []) for ts in linked_ts_all(child)]
        messages += [(ts, []) for ts in lines[:-1]] + [(lines[-1], children)]
    return messages


def pages_by_incident(notion: FakeNotion, data_source_id: str) -> dict[str, list[str]]:
    """Every page of the postmortem database, archived included, by its Incident label."""
    found: dict[str, list[str]] = {}
    for page in notion.pages(data_source_id, include_archived=True):
        label = FakeNotion.property_text(page, "Incident") or ""
        found.setdefault(label, []).append(str(page["id"]))
    return found
