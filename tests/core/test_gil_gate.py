"""The GIL gate: workers wait for a starving UI thread (no Qt here)."""

from __future__ import annotations

import math
import threading
import time

import pytest

from bgtasks.core import Scheduler, run_worker
from bgtasks.core._gil_gate import GilGate


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SignallingEvent(threading.Event):
    """An Event that says when someone starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_nobody_beating_never_starves() -> None:
    clock = Clock()
    gate = GilGate(clock=clock)
    assert gate.beat_at == math.inf
    assert not gate.starved(clock.now + 1000.0)
    assert gate.give_way() is True  # returns at once
    assert gate.parks == 0


def test_starved_after_stale_after_without_a_beat() -> None:
    clock = Clock()
    gate = GilGate(stale_after=0.003, clock=clock)
    gate.beat()
    assert gate.beat_at == 100.0
    assert not gate.starved(100.002)
    assert gate.starved(100.0031)
    clock.now = 100.010
    gate.beat()
    assert not gate.starved(100.012)


def test_a_parked_worker_resumes_at_the_next_beat() -> None:
    clock = Clock()
    gate = GilGate(stale_after=0.003, park_for=60.0, clock=clock)
    gate.beat()
    clock.now += 0.010  # starved
    event = gate._event = SignallingEvent()
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(gate.give_way()))
    worker.start()
    assert event.waiting.wait(10)
    assert result == []  # parked
    gate.beat()
    worker.join(10)
    assert result == [True]
    assert (gate.parks, gate.parks_ended_by_beat) == (1, 1)


def test_stop_releases_parked_workers_and_ends_parking() -> None:
    clock = Clock()
    gate = GilGate(park_for=60.0, clock=clock)
    gate.beat()
    clock.now += 1.0
    event = gate._event = SignallingEvent()
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(gate.give_way()))
    worker.start()
    assert event.waiting.wait(10)
    gate.stop()
    worker.join(10)
    assert result == [True]
    assert gate.beat_at == math.inf
    assert not gate.starved(clock.now + 1.0)


def test_parks_that_no_beat_ends_are_spaced_out_until_a_beat() -> None:
    # A UI thread blocked elsewhere never beats: each unanswered park doubles
    # the time before the next one (up to max_backoff), so workers keep going.
    clock = Clock()
    gate = GilGate(stale_after=0.003, park_for=0.001, max_backoff=0.004, clock=clock)
    gate.beat()
    clock.now += 1.0
    assert gate.give_way() is False  # a real 1 ms wait: no beat came
    assert not gate.starved(clock.now + 0.0009)
    assert gate.starved(clock.now + 0.0011)
    clock.now += 0.0011
    assert gate.give_way() is False
    assert not gate.starved(clock.now + 0.0019)  # doubled: 2 ms
    assert gate.starved(clock.now + 0.0021)
    clock.now += 0.0021
    assert gate.give_way() is False
    clock.now += 0.0041
    assert gate.give_way() is False
    assert gate.starved(clock.now + 0.0041)  # capped at max_backoff
    assert gate.parks == 4 and gate.parks_ended_by_beat == 0
    gate.beat()  # the UI thread is back: parking is immediate again
    assert gate.starved(clock.now + 0.0031)


def scheduler_with_threads() -> tuple[Scheduler, list[threading.Thread]]:
    """A one-worker scheduler whose workers are plain threads (no Qt), and them."""
    threads: list[threading.Thread] = []

    def spawn(count: int) -> None:
        for _ in range(count):
            t = threading.Thread(target=run_worker, args=(scheduler,), daemon=True)
            threads.append(t)
            t.start()

    scheduler = Scheduler(1, spawn, lambda: None)
    return scheduler, threads


@pytest.mark.timeout(30)
def test_a_worker_waits_for_the_beat_before_its_next_task() -> None:
    ran = threading.Event()
    scheduler, threads = scheduler_with_threads()
    gate = scheduler.gate
    gate.park_for = 60.0
    gate.beat()
    gate.beat_at -= 10.0  # the UI thread has not had the GIL for 10 s
    event = gate._event = SignallingEvent()
    scheduler.start()
    scheduler.add(ran.set)
    assert event.waiting.wait(10)  # the worker parked before running the task
    assert not ran.is_set()
    gate.beat()
    assert ran.wait(10)
    assert gate.parks_ended_by_beat == 1
    scheduler.close()
    for t in threads:
        t.join(10)


@pytest.mark.timeout(30)
def test_a_task_reporting_progress_gives_way_inside_its_loop() -> None:
    from bgtasks.core import current

    reported = threading.Event()
    scheduler, threads = scheduler_with_threads()
    gate = scheduler.gate

    def task() -> None:
        sched, me = current()
        gate.stale_after = 0.003  # the UI thread stops beating now
        gate.beat_at = time.monotonic() - 10.0
        sched.report_progress(me, 0.1, "first")  # queued for the UI
        sched.report_progress(me, 0.2, "second")  # held: the loop's yield point
        reported.set()

    gate.park_for = 60.0
    gate.stale_after = 1000.0  # not before the task runs, however slow the machine
    gate.beat()
    event = gate._event = SignallingEvent()
    scheduler.start()
    scheduler.add(task)
    assert event.waiting.wait(10)  # parked inside report_progress
    assert not reported.is_set()
    gate.beat()
    assert reported.wait(10)
    scheduler.close()
    for t in threads:
        t.join(10)
