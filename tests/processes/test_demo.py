"""`python -m bolt_app demo`: the whole flow locally, with no accounts and no network."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT


def demo_env(tmp_path: Path) -> dict[str, str]:
    """No tokens at all, and a private TMPDIR (where `--keep` leaves its control file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NOTION_"))}
    return {**env, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}


def wait_for_line(lines: queue.Queue[str], text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            seen.append(lines.get(timeout=remaining))
        except queue.Empty:
            break
        if text in seen[-1]:
            return
    raise AssertionError(f"no {text!r} within {timeout} s:\n{''.join(seen)}")


def test_demo_plays_an_incident_and_prints_what_users_see(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bolt_app", "demo"],
        cwd=tmp_path,
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    out = done.stdout
    assert "ms] @alice: /incident declare Checkout is down" in out
    assert "#inc-1-checkout-is-down" in out
    assert "  topic:     INC-1 · P3 · active" in out
    assert "  bookmark:  Postmortem → https://app.notion.com/p/" in out
    assert "Notion: INC-1: Checkout is down" in out
    assert "  Incident:  INC-1" in out
    for heading in ("## Summary", "## Timeline", "## Slack transcript"):
        assert f"    {heading}\n" in out
    assert "Traceback" not in done.stderr


def test_demo_keep_takes_more_commands_from_demo_say(tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    demo = subprocess.Popen(
        [sys.executable, "-m", "bolt_app", "demo", "--keep"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert demo.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in demo.stdout], daemon=True).start()
    try:
        wait_for_line(lines, "Ctrl-C stops the demo", timeout=45)
        said = subprocess.run(
            [sys.executable, "-m", "bolt_app", "demo", "say", "/incident severity P2"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert said.returncode == 0, said.stderr
        assert "changed severity: P1 → P2" in said.stdout
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=15) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert not (tmp_path / "firebreak-demo.json").exists()


def test_demo_say_without_a_running_demo_says_how_to_start_one(tmp_path: Path) -> None:
    said = subprocess.run(
        [sys.executable, "-m", "bolt_app", "demo", "say", "/incident info"],
        cwd=tmp_path,
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert said.returncode == 1
    assert "python -m bolt_app demo --keep" in said.stderr
