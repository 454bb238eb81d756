"""Prometheus metrics of the process, served as text at `/metrics` on HEALTH_PORT.

One registry for the whole process (prometheus-client's model): every bot built in this
process counts into it. Labels never carry ids, text or tokens, so their number stays
small: envelope types, artefact kinds, lock kinds (`transcript`, not `transcript:42`), API
methods and status codes.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)

ENVELOPES = Counter(
    "firebreak_envelopes",
    "Socket Mode envelopes handled, by type and outcome",
    ["type", "outcome"],
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "firebreak_ack_seconds",
    "Seconds from an envelope's arrival to its ack",
    buckets=_FAST,
    registry=REGISTRY,
)
ARTIFACTS = Counter(
    "firebreak_artifacts",
    "External artefacts by kind and outcome (created, adopted, existing, re-added)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
LOCK_WAIT_SECONDS = Histogram(
    "firebreak_lock_wait_seconds",
    "Seconds spent waiting for a lock, by lock kind",
    ["lock"],
    buckets=(*_FAST, 10.0, 30.0),
    registry=REGISTRY,
)
LOCK_TIMEOUTS = Counter(
    "firebreak_lock_timeouts",
    "Waits for a lock that ran out (a try-lock that finds it taken is not counted)",
    ["lock"],
    registry=REGISTRY,
)
API_CALLS = Counter(
    "firebreak_api_calls",
    "Slack and Notion calls by API, method and status (ok, an HTTP status or Slack's error)",
    ["api", "method", "status"],
    registry=REGISTRY,
)
TRANSCRIPT_LAG_SECONDS = Histogram(
    "firebreak_transcript_sync_lag_seconds",
    "Seconds from a message's time to its line being written in the postmortem page",
    buckets=_SLOW,
    registry=REGISTRY,
)
INBOX_DEPTH = Gauge(
    "firebreak_inbox_depth",
    "Requests stored before their ack and not finished yet (dump requests)",
    registry=REGISTRY,
)
INBOX_OLDEST_SECONDS = Gauge(
    "firebreak_inbox_oldest_seconds",
    "Age of the oldest unfinished stored request, in seconds (0 when none)",
    registry=REGISTRY,
)


def watch_inbox(depth: Callable[[], tuple[float, float]]) -> None:
    """Read the inbox at every scrape: `depth()` returns (rows, age of the oldest)."""
    INBOX_DEPTH.set_function(lambda: depth()[0])
    INBOX_OLDEST_SECONDS.set_function(lambda: depth()[1])


def lock_kind(name: str) -> str:
    """A lock's kind for a label: `transcript:42` -> `transcript`."""
    return name.split(":", 1)[0]


def exposition() -> tuple[bytes, str]:
    """The text format Prometheus scrapes, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
