"""Firebreak's typed exceptions.

Services raise these; the single error handler in `bolt_app.listeners.errors`
turns them into the sentence the user sees. Each carries that sentence as its
message, so the text lives next to the condition it describes.
"""

from __future__ import annotations


class FirebreakError(Exception):
    """A failure we understand and can explain to the user in one sentence."""

    @property
    def user_message(self) -> str:
        return str(self)

    #: The work did part of its job and running it again later finishes it: an inbox row
    #: that fails so is released for another try instead of being marked done.
    retry_later = False
    #: False for a failure the person was already told about (a retry failing the same
    #: way): the job runner then only logs it.
    worth_saying = True


class UsageError(FirebreakError):
    """The command was malformed; the message says how to write it."""


class NotAnIncidentChannel(FirebreakError):
    """An incident-scoped command ran outside an incident channel."""

    def __init__(self) -> None:
        super().__init__(
            "This isn't an incident channel. Run this in the incident's channel, "
            "or start one with `/incident declare <title>`."
        )


class StillWorking(FirebreakError):
    """Another worker holds the lock for this step; the user can simply try again."""

    def __init__(self, what: str) -> None:
        super().__init__(f"The {what} is still being created; try again in a moment.")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is the one line the operator sees.

    Not a `FirebreakError`: it stops start-up, it is never an answer in Slack.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class DeclaresRefused(FirebreakError):
    """This process declares nothing until the operator fixes its set-up (the reason
    says what and how); everything else keeps working."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Nothing was declared: {reason}.")
