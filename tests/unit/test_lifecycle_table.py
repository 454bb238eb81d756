"""The status transition table: every pair, allowed or refused, with the message."""

from __future__ import annotations

import itertools

import pytest

from bolt_app.core.domain import STATUSES, TRANSITIONS
from bolt_app.core.errors import UsageError
from bolt_app.incidents.lifecycle import (
    TransitionRefused,
    check_transition,
    clean_status,
    parse_status_args,
    parse_user,
)

# The contract, spelled out independently of TRANSITIONS.
ALLOWED = {
    ("active", "mitigated"),
    ("mitigated", "resolved"),
    ("resolved", "postmortem"),
    ("postmortem", "done"),
    ("active", "canceled"),
    ("mitigated", "canceled"),
    ("resolved", "canceled"),
    ("postmortem", "canceled"),
    ("mitigated", "active"),
    ("resolved", "active"),
    ("done", "active"),
    ("canceled", "active"),
}

REFUSED_MESSAGES = {
    "active": "From active it can go to: `mitigated`, `canceled`.",
    "mitigated": "From mitigated it can go to: `resolved`, `active`, `canceled`.",
    "resolved": "From resolved it can go to: `postmortem`, `active`, `canceled`.",
    "postmortem": "From postmortem it can go to: `done`, `canceled`.",
    "done": "From done it can go to: `active`.",
    "canceled": "From canceled it can go to: `active`.",
}


def test_the_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize(("current", "new"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair(current: str, new: str) -> None:
    reason = "duplicate of INC-40"
    if (current, new) in ALLOWED:
        check_transition(current, new, reason)
        return
    with pytest.raises(TransitionRefused) as refused:
        check_transition(current, new, reason)
    start = (
        f"The status is already {current}."
        if current == new
        else f"Can't change the status from {current} to {new}."
    )
    assert refused.value.user_message == f"{start} {REFUSED_MESSAGES[current]}"


@pytest.mark.parametrize("current", ["active", "mitigated", "resolved", "postmortem"])
def test_canceling_needs_a_reason(current: str) -> None:
    with pytest.raises(UsageError, match="needs a reason: `/incident status canceled dupl"):
        check_transition(current, "canceled", "  ")


def test_parsing_status_and_reason() -> None:
    assert parse_status_args("Canceled  duplicate   of INC-40") == (
        "canceled",
        "duplicate of INC-40",
    )
    assert parse_status_args("mitigated") == ("mitigated", None)
    with pytest.raises(UsageError, match="Status must be one of active, mitigated"):
        clean_status("fixed")


@pytest.mark.parametrize(
    ("raw", "user"), [("<@U0BOB>", "U0BOB"), ("<@U0BOB|bob>", "U0BOB"), (" <@W123> ", "W123")]
)
def test_parse_user(raw: str, user: str) -> None:
    assert parse_user(raw) == user


@pytest.mark.parametrize("raw", ["bob", "@bob", "<#C123>", "<@U0BOB> <@U0ALICE>"])
def test_parse_user_refuses_non_mentions(raw: str) -> None:
    with pytest.raises(UsageError, match="Name the commander as a mention"):
        parse_user(raw)


def test_commander_without_anyone() -> None:
    with pytest.raises(UsageError, match="Who should take command"):
        parse_user("  ")
