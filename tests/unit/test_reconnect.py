"""The Socket Mode reconnect schedule (`runtime.reconnect`): pure time logic, on a fake clock."""

from __future__ import annotations

import pytest

from bolt_app.runtime.reconnect import (
    AUTH_ERRORS,
    DEFAULT_BACKOFF,
    Backoff,
    Reconnects,
    backoff_delay,
    describe_slack_error,
    seconds,
)


def test_the_delay_doubles_from_one_second_up_to_a_minute() -> None:
    no_jitter = [backoff_delay(n, base=1.0, cap=60.0, rand=lambda: 0.0) for n in range(0, 10)]
    assert no_jitter == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff_delay(10_000, base=1.0, cap=60.0, rand=lambda: 0.0) == 60.0
    assert Backoff(base=1.0, cap=60.0, jitter=0.1) == DEFAULT_BACKOFF


def test_jitter_takes_off_at_most_a_tenth_and_never_exceeds_the_cap() -> None:
    most = backoff_delay(3, base=1.0, cap=60.0, rand=lambda: 0.999999)
    assert 3.6 <= most < 4.0
    assert backoff_delay(30, base=1.0, cap=60.0, rand=lambda: 0.0) == 60.0
    assert 54.0 <= backoff_delay(30, base=1.0, cap=60.0, rand=lambda: 1.0) <= 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def reconnects(clock: Clock, base: float = 1.0, cap: float = 60.0) -> Reconnects:
    return Reconnects(Backoff(base, cap), clock=clock, rand=lambda: 0.0)


def test_the_first_attempt_after_an_open_connection_is_immediate(clock: Clock) -> None:
    state = reconnects(clock)
    assert state.due() and state.wait_left() == 0.0
    assert state.attempted() == 1
    # In flight: a second caller (slack_sdk's monitor, a close) must not start another.
    assert not state.due()
    assert state.opened() == 0
    assert state.due() and state.reason() is None


def test_failures_in_a_row_wait_1_2_4_s_and_say_why(clock: Clock) -> None:
    state = reconnects(clock)
    waits = []
    for _ in range(4):
        assert state.due()
        state.attempted()
        waits.append(state.failed("Slack refused the app token (`invalid_auth`) at x"))
        assert not state.due()
        assert state.wait_left() == waits[-1]
        clock.now += waits[-1] / 2
        assert not state.due()
        assert state.reason() == (
            f"Slack refused the app token (`invalid_auth`) at x; retrying in {waits[-1] / 2:.1f} s"
        )
        clock.now += waits[-1] / 2
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert state.reason() == "Slack refused the app token (`invalid_auth`) at x; retrying now"
    state.attempted()
    assert state.opened() == 4
    assert state.reason() is None and state.attempts == 0


def test_retry_after_is_the_least_wait(clock: Clock) -> None:
    state = reconnects(clock)
    state.attempted()
    assert state.failed("Slack answered `ratelimited` to x", at_least=30.0) == 30.0
    clock.now += 29.0
    assert not state.due()
    assert state.reason() == "Slack answered `ratelimited` to x; retrying in 1.0 s"


def test_the_delay_never_exceeds_the_cap(clock: Clock) -> None:
    state = reconnects(clock, base=1.0, cap=5.0)
    delays = []
    for _ in range(6):
        state.attempted()
        delays.append(state.failed("down"))
        clock.now += delays[-1]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_refused_tokens_are_named_and_other_answers_quoted() -> None:
    assert {"invalid_auth", "not_authed", "token_revoked", "account_inactive"} == AUTH_ERRORS
    for code in AUTH_ERRORS:
        assert describe_slack_error("apps.connections.open", code) == (
            f"Slack refused the app token (`{code}`) at apps.connections.open"
        )
    assert describe_slack_error("apps.connections.open", "internal_error") == (
        "Slack answered `internal_error` to apps.connections.open"
    )
    assert [seconds(v) for v in (0.04, 2.0, 9.94, 10.0, 31.2, 60.0)] == [
        "0.0 s",
        "2.0 s",
        "9.9 s",
        "10 s",
        "32 s",
        "60 s",
    ]
