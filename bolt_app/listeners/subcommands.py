"""The shape of an `/incident` subcommand, shared by the modules that define them.

Each subcommand module (`declare`, `repair`, …) exports a `SUBCOMMANDS` tuple; the
dispatcher in `commands` puts them in one table. What a subcommand does is either
`InIncident` (it runs in an incident's channel, and its handler receives that
`Incident`, resolved once by the dispatcher) or `Anywhere`. The type says which, so no
handler ever gets `None` where it needs an incident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bolt_app.listeners.errors import Reply
from bolt_app.services import Services
from storage import Incident


@dataclass(frozen=True)
class Invocation:
    """One `/incident …` (or the dumpslack shortcut) as typed values."""

    user_id: str
    channel_id: str
    args: str
    trigger_id: str
    response_url: str | None
    #: The typist's Slack handle, from the payload: a name without a users.info call.
    user_name: str | None = None

    @property
    def request_key(self) -> str | None:
        """Slack's id of this request (its trigger), the key of its inbox row."""
        return f"command:{self.trigger_id}" if self.trigger_id else None

    def payload(self) -> dict[str, Any]:
        """What the inbox row keeps, to run it again in another process."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Invocation:
        return cls(**payload)

    @classmethod
    def from_shortcut(cls, body: dict[str, Any]) -> Invocation:
        """A message shortcut (`message_action`): who, where, and its trigger."""
        user = body.get("user") or {}
        return cls(
            user_id=str(user.get("id") or ""),
            channel_id=str((body.get("channel") or {}).get("id") or ""),
            args="",
            trigger_id=str(body.get("trigger_id") or ""),
            response_url=body.get("response_url"),
            user_name=user.get("username") or user.get("name"),
        )

    @classmethod
    def from_body(cls, body: dict[str, Any], args: str) -> Invocation:
        return cls(
            user_id=body["user_id"],
            channel_id=body.get("channel_id", ""),
            args=args,
            trigger_id=body.get("trigger_id", ""),
            response_url=body.get("response_url"),
            user_name=body.get("user_name"),
        )


@dataclass(frozen=True)
class InIncident:
    """Work on the incident whose channel the command was typed in."""

    #: Runs after the ack, on the commands pool.
    run: Callable[[Services, Invocation, Incident, Reply], None]
    #: Stores the request before the ack, idempotently (see `Anywhere.record`).
    record: Callable[[Services, Invocation, Incident], None] | None = None
    #: Changes something: goes through the inbox (see `Anywhere.durable`).
    durable: bool = False


@dataclass(frozen=True)
class Anywhere:
    """Work that needs no incident channel (`declare`, `list`)."""

    #: Runs after the ack, on the commands pool.
    run: Callable[[Services, Invocation, Reply], None]
    #: Stores the request before the ack, idempotently (the handler runs it again and
    #: finds it). Once acked, Slack never redelivers an envelope, so work recorded only
    #: after the ack is lost when the process dies in between; the reconciler can only
    #: finish what the store knows about.
    record: Callable[[Services, Invocation], None] | None = None
    #: Changes something: the dispatcher stores it as an inbox row before the ack, and
    #: `run` must be safe to run again after a crash half-way (see "The inbox").
    durable: bool = False


def no_check(_inv: Invocation) -> str | None:
    return None


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    #: None only for `help`, which the dispatcher answers itself.
    action: InIncident | Anywhere | None
    #: Checks the text before the ack, without I/O; returns the ack text or raises
    #: UsageError, whose message then is the ack.
    prepare: Callable[[Invocation], str | None] = no_check
    #: A modal to open instead, when `prepare` found nothing to run (`declare` alone).
    form: Callable[[Invocation], dict[str, Any]] | None = None
    #: Checks the process may run it at all, before the ack and without I/O; raises a
    #: FirebreakError whose message then is the ack (declares refused at start-up).
    allowed: Callable[[Services], None] = lambda _services: None
