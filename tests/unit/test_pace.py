"""The transcript's shared Notion budget: a token bucket, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from bolt_app.adapters.pace import Pace


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_a_burst_goes_at_once_then_requests_are_spaced_to_the_rate() -> None:
    time = FakeTime()
    pace = Pace(2.0, burst=3, clock=time.clock, sleep=time.sleep)
    waits = [pace.take() for _ in range(7)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == [0.5, 0.5, 0.5, 0.5]  # then one every half second: 2 a second
    assert time.now == 2.0


def test_an_idle_bucket_refills_only_up_to_its_burst() -> None:
    time = FakeTime()
    pace = Pace(1.0, burst=2, clock=time.clock, sleep=time.sleep)
    time.now = 100.0
    assert [pace.take(), pace.take(), pace.take()] == [0.0, 0.0, 1.0]


def test_threads_share_one_budget() -> None:
    time = FakeTime()
    pace = Pace(5.0, burst=1, clock=lambda: 0.0, sleep=time.sleep)
    waited: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            wait = pace.take()
            with lock:
                waited.append(wait)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    # 20 requests at 5 a second with a clock that never moves: each reserved its own turn.
    assert sorted(waited) == pytest.approx([i / 5 for i in range(20)])
