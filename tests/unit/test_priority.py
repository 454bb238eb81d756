"""Acks first: a job waits while envelopes wait for their ack, but never for long."""

from __future__ import annotations

import threading

from bolt_app.core.jobs import Jobs
from bolt_app.core.priority import AckFirst


def test_a_job_starts_once_the_envelopes_in_flight_are_acked() -> None:
    acks = AckFirst(max_defer=30.0)
    jobs = Jobs("test", 1, before_each=acks.wait_quiet)
    started = threading.Event()
    acks.arrived()
    acks.arrived()
    jobs.submit(started.set, lambda error: None)
    acks.acked()
    assert not started.wait(0.2)  # one still waits for its ack
    acks.acked()
    assert started.wait(10)
    jobs.shutdown(5)


def test_a_job_waits_at_most_max_defer() -> None:
    acks = AckFirst(max_defer=0.05)
    jobs = Jobs("test", 1, before_each=acks.wait_quiet)
    started = threading.Event()
    acks.arrived()  # never acked: a lost envelope must not stop the work
    jobs.submit(started.set, lambda error: None)
    assert started.wait(10)
    jobs.shutdown(5)


def test_more_acks_than_arrivals_never_go_below_zero() -> None:
    acks = AckFirst(max_defer=30.0)
    acks.acked()
    acks.arrived()
    acks.acked()
    done = threading.Event()
    threading.Thread(target=lambda: (acks.wait_quiet(), done.set())).start()
    assert done.wait(10)
