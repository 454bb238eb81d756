"""The exactly-once protocol for external artefacts, written once.

See "The exactly-once protocol" in docs/ARCHITECTURE.md.

Every artefact of an incident (its channel, postmortem page, bookmark, intro message)
is made through `ensure_artifact`:

1. fast path: if the `Artifact` row exists, return it, without a lock;
2. take `store.lock("<kind>:<incident id>")`, held across the external call, and look again;
3. only if an earlier attempt left no row, ask `find` to adopt what that attempt made
   (after waiting until its request can no longer land: "Settling after a crash");
4. record this attempt with a random token, then `create` (which writes the token on
   what it makes, where the artefact can carry one), then save the row.

`find` is given the earlier attempts, so it adopts only what carries one of their
tokens: a page or message with the same label from another deployment, or from before
the store was reset, is never taken over ("Adoption" in docs/ARCHITECTURE.md).

A row exists only once the artefact exists, so there are no placeholders to clean up,
and the only wait is for the lock itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bolt_app.core import metrics
from bolt_app.core.clock import Clock
from bolt_app.core.domain import Outcome
from bolt_app.core.errors import FirebreakError, StillWorking
from storage import Artifact, ArtifactAttempt, LockTimeout, Store

log = logging.getLogger(__name__)

#: How long a trigger waits for another worker that is creating the same artefact.
LOCK_WAIT_SECONDS = 30.0

OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Made:
    """What a `create` or `find` callback made or found."""

    external_id: str
    url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ensured:
    artifact: Artifact
    #: "existing", "created" or "adopted": what this call did, for repair's answer.
    outcome: Outcome


def ensure_artifact(
    store: Store,
    incident_id: int,
    kind: str,
    *,
    create: Callable[[str], Made],
    find: Callable[[Sequence[ArtifactAttempt]], Made | None],
    clock: Clock,
    settle_seconds: float = 0.0,
    lock_wait: float = LOCK_WAIT_SECONDS,
    what: str = "artefact",
) -> Ensured:
    """Return the incident's `kind` artefact, creating it at most once across processes.

    `settle_seconds` is how long after an attempt started its request could still land
    (the HTTP timeout): adoption waits that long past the latest earlier attempt, so a
    request from a process that died cannot make a second artefact after we looked.
    """
    existing = store.get_artifact(incident_id, kind)
    if existing is not None:
        metrics.ARTIFACTS.labels(kind, "existing").inc()
        return Ensured(existing, "existing")
    with holding(store, f"{kind}:{incident_id}", what, lock_wait):
        return _ensure_locked(store, incident_id, kind, create, find, clock, settle_seconds)


@contextmanager
def holding(store: Store, name: str, what: str, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """`store.lock(name)`, where a wait past `wait` tells the user the `what` is still
    being made (`StillWorking`) instead of surfacing as an unexplained error."""
    try:
        with store.lock(name, timeout=wait):
            yield
    except LockTimeout:
        raise StillWorking(what) from None


#: How long a render of the state (topic, announcement, page properties) waits for the
#: one before it. Each holds its lock only for one read of the row and one write.
RENDER_LOCK_SECONDS = 10.0


def render_lock(what: str, incident_id: int) -> str:
    """The lock of one rendering of an incident's state: the row is read and written out
    under it, so of two renders the later always shows the later row."""
    return f"render-{what}:{incident_id}"


class StillRendering(FirebreakError):
    """Another write of the same rendering held its lock too long (Slack or Notion slow)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"another update of the {what} is still being written")


@contextmanager
def rendering(store: Store, what: str, incident_id: int) -> Iterator[None]:
    """Hold `render_lock`; a wait past `RENDER_LOCK_SECONDS` is `StillRendering`."""
    try:
        with store.lock(render_lock(what, incident_id), timeout=RENDER_LOCK_SECONDS):
            yield
    except LockTimeout:
        raise StillRendering(what) from None


def _ensure_locked(
    store: Store,
    incident_id: int,
    kind: str,
    create: Callable[[str], Made],
    find: Callable[[Sequence[ArtifactAttempt]], Made | None],
    clock: Clock,
    settle_seconds: float,
) -> Ensured:
    existing = store.get_artifact(incident_id, kind)
    if existing is not None:
        metrics.ARTIFACTS.labels(kind, "existing").inc()
        return Ensured(existing, "existing")
    found: Made | None = None
    earlier = store.attempts(incident_id, kind)
    if earlier:
        in_flight = [a.started_at for a in earlier if a.token not in _ANSWERED]
        if in_flight:
            wait_until_settled(max(in_flight) + timedelta(seconds=settle_seconds), clock)
        found = find(earlier)
    token = uuid.uuid4().hex
    store.record_attempt(incident_id, kind, clock(), OWNER, token)
    if found is not None:
        made = found
    else:
        try:
            made = create(token)
        except BaseException:
            _answered(token)
            raise
    artifact = store.save_artifact(
        incident_id, kind, made.external_id, made.url, clock(), made.data
    )
    outcome: Outcome = "adopted" if found is not None else "created"
    log.info("%s for incident %s %s: %s", kind, incident_id, outcome, made.external_id)
    metrics.ARTIFACTS.labels(kind, outcome).inc()
    return Ensured(artifact, outcome)


#: Tokens of this process's attempts whose create failed: the call came back (an error,
#: a reset, our own timeout), so nothing of theirs is still on the wire and adopting
#: after them needs no settle wait. Bounded, since only failures are kept.
_ANSWERED: set[str] = set()
_ANSWERED_MAX = 10_000
_answered_lock = threading.Lock()


def _answered(token: str) -> None:
    with _answered_lock:
        if len(_ANSWERED) >= _ANSWERED_MAX:
            _ANSWERED.clear()  # only costs settle waits
        _ANSWERED.add(token)


def wait_until_settled(deadline: datetime, clock: Clock) -> None:
    """Sleep until an earlier attempt's in-flight request can no longer land.

    This is a wait for the outside world, not a poll: nothing we could check would
    tell us sooner whether a dead process's request is still on the wire.
    """
    remaining = (deadline - clock()).total_seconds()
    if remaining > 0:
        log.info("waiting %.1fs for an earlier attempt's request to settle", remaining)
        time.sleep(remaining)
