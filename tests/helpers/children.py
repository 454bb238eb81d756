"""Start storage workers as real child processes and talk to them line by line.

Children are fresh interpreters (``subprocess``, never ``fork``: pytest may be running
threads).  Their stdout is read by a thread into a queue, so every wait has a deadline.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
WORKER_MODULE = "tests.helpers.storage_workers"


class Child:
    """One worker process."""

    def __init__(self, *args: str, module: str = WORKER_MODULE) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [
            threading.Thread(target=self._pump_stdout, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, prefix: str, timeout: float = 30.0) -> str:
        """Wait for the next stdout line starting with ``prefix``; return the rest."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"worker ended before {prefix!r}: {self.describe()}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise AssertionError(f"no {prefix!r} line within {timeout} s: {self.describe()}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> None:
        """Wait for a clean exit; fail with the worker's stderr otherwise."""
        code = self.proc.wait(timeout=timeout)
        self._join_pumps()
        if code != 0:
            raise AssertionError(f"worker failed: {self.describe()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup code runs in the child."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def _join_pumps(self) -> None:
        """The pipes reach EOF once the child is gone; wait so no line is lost."""
        for pump in self._pumps:
            pump.join(timeout=5)

    def describe(self) -> str:
        stderr = "\n".join(self._stderr[-30:])
        return f"{' '.join(self.args)} (exit {self.proc.poll()})\n{stderr}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._join_pumps()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Children:
    """A group of workers; ``with Children() as kids`` kills any left running."""

    def __init__(self) -> None:
        self.started: list[Child] = []

    def start(self, *args: str) -> Child:
        child = Child(*args)
        self.started.append(child)
        return child

    def all_ready(self, timeout: float = 30.0) -> None:
        for child in self.started:
            child.expect("ready", timeout=timeout)

    def go(self) -> None:
        for child in self.started:
            child.send("go")

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in self.started:
            child.close()
