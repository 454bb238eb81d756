"""`GET /healthz` and `GET /metrics` on HEALTH_PORT, for process managers and Prometheus.

`/metrics` is `bolt_app.core.metrics` in Prometheus' text format. `/healthz` answers 200
while the Socket Mode socket is connected and the database answers a query, 503
otherwise; the JSON body says which part failed, and its `reason` why. A stdlib HTTP
server on a daemon thread: it needs no framework, and it dies with the process, as a
health check should.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bolt_app.core import metrics
from storage import Store, StoreError

log = logging.getLogger(__name__)

Probe = Callable[[], bool]
#: Why a probe fails, asked only when it does.
Reason = Callable[[], str]


class HealthServer:
    """Serves `/healthz` from named probes; every probe must say True for a 200.

    A failing probe with an entry in `reasons` adds its sentence to the body's `reason`.
    """

    def __init__(
        self,
        port: int,
        probes: Mapping[str, Probe],
        host: str = "",
        reasons: Mapping[str, Reason] | None = None,
    ) -> None:
        self._probes = dict(probes)
        self._reasons = dict(reasons or {})
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="healthz", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("serving /healthz on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def status(self) -> tuple[int, dict[str, bool]]:
        results = {name: probe() for name, probe in self._probes.items()}
        return (200 if all(results.values()) else 503), results

    def body(self) -> tuple[int, dict[str, Any]]:
        """The status and the JSON body of `/healthz`."""
        code, results = self.status()
        body: dict[str, Any] = {"ok": code == 200, **results}
        reasons = [
            self._reasons[name]()
            for name, ok in results.items()
            if not ok and name in self._reasons
        ]
        if reasons:
            body["reason"] = "; and ".join(reasons)
        return code, body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, content_type = metrics.exposition()
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path != "/healthz":
                    self._send(404, {"error": "not found; try /healthz or /metrics"})
                    return
                self._send(*health.body())

            def _send(self, code: int, body: dict[str, Any]) -> None:
                send_json(self, code, body)

            def log_message(self, format: str, *args: Any) -> None:
                """Probes come every few seconds: keep them out of the log."""

        return Handler


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Answer a stdlib HTTP request with a JSON body and its length."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def database_answers(store: Store) -> Probe:
    """A probe that runs `SELECT 1` on the store."""

    def probe() -> bool:
        try:
            store.ping()
        except StoreError as error:
            log.warning("health: the database doesn't answer: %s", error)
            return False
        return True

    return probe


def serve_health(
    port: int | None,
    socket_connected: Probe,
    store: Store,
    socket_down: Reason | None = None,
) -> HealthServer | None:
    """Start `/healthz` on `port` (all interfaces), or do nothing when it isn't set.

    `socket_down` says why the socket is not connected (e.g. the app token was refused).
    """
    if port is None:
        return None
    probes = {"socket": socket_connected, "database": database_answers(store)}
    reasons = {"database": lambda: "the database does not answer `SELECT 1`"}
    if socket_down is not None:
        reasons["socket"] = socket_down
    return HealthServer(port, probes, reasons=reasons).start()
