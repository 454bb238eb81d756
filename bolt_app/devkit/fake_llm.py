"""FakeLLM: a local OpenAI-compatible chat-completions endpoint for tests and the demo.

Answers `POST <base>/chat/completions` (the `openai` client appends that path to its
`base_url`) with a `chat.completion` object in the real shape (`id`, `object`, `created`,
`model`, `choices[{index, message{role, content}, finish_reason}]`, `usage`). Records
every request, so a test can check what was sent and that nothing was. Faults: an HTTP
status with an error body, or a delay longer than the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, TypeVar

from bolt_app.devkit.common import BackgroundHTTPServer, interruptible_sleep, send_json

T = TypeVar("T")
PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class LlmRequest:
    """One request as received: its JSON body and Authorization header."""

    body: dict[str, Any]
    authorization: str

    @property
    def user_text(self) -> str:
        """The content of the user messages (what the bot sent about the incident)."""
        return "\n".join(
            str(m.get("content", ""))
            for m in self.body.get("messages", [])
            if m.get("role") == "user"
        )


class FakeLLM:
    def __init__(self, reply: str = "Checkout failed for 20 minutes; a rollback fixed it.") -> None:
        self.reply = reply
        self.status = 200
        self.delay = 0.0
        self._requests: list[LlmRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = BackgroundHTTPServer(_handler(self))

    # lifecycle

    def __enter__(self) -> FakeLLM:
        self._server.start("fake-llm")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._server.stop()

    @property
    def base_url(self) -> str:
        """What `LLM_BASE_URL` should be set to."""
        return f"http://{self._server.host}:{self._server.port}/v1"

    # what happened

    @property
    def requests(self) -> list[LlmRequest]:
        with self._lock:
            return list(self._requests)

    def count(self) -> int:
        with self._lock:
            return len(self._requests)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("FakeLLM: condition not met in time")
            self._stop.wait(0.01)

    # serving

    def _answer(self, request: LlmRequest) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._requests.append(request)
        if interruptible_sleep(self._stop, self.delay):
            return 503, _error("shutting down")
        if self.status != 200:
            return self.status, _error(f"injected HTTP {self.status}")
        return 200, completion(str(request.body.get("model", "")), self.reply)


def completion(model: str, content: str) -> dict[str, Any]:
    """A non-streaming `chat.completion` object."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if self.path.split("?")[0] != PATH:
                self._send(404, _error(f"no route {self.path}"))
                return
            body = json.loads(raw or b"{}")
            status, answer = fake._answer(
                LlmRequest(body, str(self.headers.get("Authorization") or ""))
            )
            self._send(status, answer)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            send_json(self, status, body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the recorded requests instead."""

    return Handler
