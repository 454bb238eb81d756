"""The one clock Firebreak reads.

Services take a `Clock` so tests can pass their own; it is always called at the
moment of use, never bound as a default value, so freezegun and injected clocks
both work ("Time and clocks" in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Naive UTC, as the store keeps it on both backends."""
    return datetime.now(UTC).replace(tzinfo=None)
