"""Issue 11: the core's promises in their corners, without Qt.

Each test here failed on the code before the fix it names (checked against
ece5d39): events delivered twice, a retried task running before its upstream,
recursion on long chains, deadlocks from finalizers, parked counts, stale heap
entries, dict subclasses, exclusive tasks, retention, bad input, timers.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections import OrderedDict, defaultdict

import pytest

from bgtasks import TaskState
from bgtasks.core import (
    TASK_ADDED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_PROGRESS,
    Scheduler,
    run_worker,
)

PENDING, QUEUED, RUNNING = TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING
COMPLETED, FAILED, CANCELLED = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED
WAIT = 10  # seconds: a bound for waits that end at once when all is well


class Inline:
    """A scheduler whose workers run in the test's thread, on demand."""

    def __init__(self, max_workers: int = 1, **kw) -> None:
        self.slots = 0
        self.wakes = 0
        self.s = Scheduler(max_workers, self._spawn, self._wake, **kw)

    def _spawn(self, n: int) -> None:
        self.slots += n

    def _wake(self) -> None:
        self.wakes += 1

    def run(self) -> None:
        while self.slots:
            self.slots -= 1
            run_worker(self.s)

    def drain(self) -> list[tuple]:
        """Take until empty, and again while the scheduler asks for the owner (a wake),
        as the manager's drain does."""
        out: list[tuple] = []
        while True:
            wakes = self.wakes
            while batch := self.s.take_events():
                out.extend(batch)
            if self.wakes == wakes:
                return out


class Threads:
    """A scheduler whose workers are real threads."""

    def __init__(self, max_workers: int = 4) -> None:
        self.threads: list[threading.Thread] = []
        self.s = Scheduler(max_workers, self._spawn, lambda: None)
        self.s.start()

    def _spawn(self, n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=run_worker, args=(self.s,), daemon=True)
            self.threads.append(t)
            t.start()

    def close(self) -> None:
        # A regression that deadlocks a worker keeps the lock for ever: the
        # test has failed already, and closing must not hang the suite.
        if self.s._lock.acquire(timeout=WAIT):
            self.s._lock.release()
            self.s.close()


@pytest.fixture
def threads():
    h = Threads()
    yield h
    h.close()


def noop(**kwargs):
    return None


def wait_until(predicate, timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it holds (as qtbot.waitUntil does, without Qt)."""
    import time

    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.001)
    return True


def boom(**kwargs):
    raise ValueError("boom")


# ---------------------------------------------------------------- 1. delivered twice


def test_an_empty_take_never_hands_out_the_live_outbox():
    # The drain took an empty list that *was* the outbox; a worker appending
    # right after got its events delivered from it, then again from the outbox.
    s = Scheduler(1, lambda n: None, lambda: None)
    s.watch([TASK_ADDED])
    events = s.take_events()
    assert events == []
    uid = s.add(noop)  # a worker adds right after the empty take
    assert events == []
    assert [(e[0], e[1]) for e in s.take_events()] == [(TASK_ADDED, uid)]


# ---------------------------------------------------------------- 2. retry after a stop


def test_retry_of_a_stopped_task_waits_for_every_upstream_again():
    # The stopped task stayed in its live upstreams' downstream lists; retry()
    # wired it again, so the first upstream's completion counted twice.
    s = Scheduler(2, lambda n: None, lambda: None)
    s.start()
    a1 = s.add(noop, priority=2)
    a2 = s.add(noop, priority=1)
    b = s.add(noop, upstream_task_ids=[a1, a2])
    s.stop(b, stop_upstream=False)
    assert s.state(b) is CANCELLED
    s.retry(b)
    assert s.state(b) is PENDING
    first = s.claim()
    assert first is not None and first.uid == a1
    s.finish(first, True, None, claim_next=False)
    assert s.state(b) is PENDING  # was QUEUED: it would run before a2 completed
    second = s.claim()
    assert second is not None and second.uid == a2
    s.finish(second, True, None, claim_next=False)
    assert s.state(b) is QUEUED


# ---------------------------------------------------------------- 3. long chains


def chain(s: Scheduler, n: int, head=noop) -> list[int]:
    uids = [s.add(head)]
    for _ in range(n - 1):
        uids.append(s.add(noop, upstream_task_ids=[uids[-1]]))
    return uids


@pytest.mark.parametrize("length", [3_000])
def test_stopping_the_head_of_a_long_chain_stops_all_of_it(length):
    h = Inline()
    uids = chain(h.s, length)
    h.s.stop(uids[0])  # RecursionError at ~500 before
    assert {h.s.state(u) for u in uids} == {CANCELLED}
    cancelled = [e[1].uid for e in h.drain() if e[0] == TASK_CANCELLED]
    assert cancelled == uids  # each once, in chain order


def test_a_running_head_stopped_from_a_worker_stops_its_long_chain(threads):
    started, release = threading.Event(), threading.Event()

    def head():
        started.set()
        release.wait(WAIT)

    uids = chain(threads.s, 3_000, head)
    assert started.wait(WAIT)
    done = threading.Event()

    def stopper():
        threads.s.stop(uids[0])
        done.set()

    # From a worker thread, as a task would: a RecursionError there cost a worker slot.
    threads.s.add(stopper)
    assert done.wait(WAIT)
    assert {threads.s.state(u) for u in uids[1:]} == {CANCELLED}
    release.set()


def test_retry_of_a_long_failed_chain_runs_it_all_again():
    h = Inline()
    h.s.start()
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first time")

    uids = chain(h.s, 1_500, flaky)
    h.run()
    assert {h.s.state(u) for u in uids} == {FAILED}
    h.drain()
    h.s.retry(uids[-1])  # revives the whole chain: RecursionError at ~1,200 before
    h.run()
    assert {h.s.state(u) for u in uids} == {COMPLETED}
    completed = [e[1] for e in h.drain() if e[0] == TASK_COMPLETED]
    assert completed == uids


def test_a_long_chain_of_keyed_tasks_fails_without_recursion():
    h = Inline()
    h.s.start()
    uids = [h.s.add(boom, opts=h.s.make_options(key="k0"))]
    for i in range(1, 1_500):
        uids.append(h.s.add(noop, upstream_task_ids=[uids[-1]], opts=h.s.make_options(key=f"k{i}")))
    h.run()
    assert {h.s.state(u) for u in uids} == {FAILED}
    assert {h.s.info(u).error for u in uids} == {"boom"}


# ---------------------------------------------------------------- 4. finalizers


def test_a_finalizer_that_calls_the_scheduler_never_deadlocks_a_worker(threads):
    # The task's arguments died under the scheduler's (non-reentrant) lock; a
    # weakref.finalize calling stop() there deadlocked the worker.
    s = threads.s
    s.pause()
    victim = s.add(noop)

    class Payload:
        pass

    payload = Payload()
    weakref.finalize(payload, s.stop, victim)
    uid = s.add(lambda p: "done", task_args=[payload])
    del payload  # only the task holds it now
    s.start()
    for t in threads.threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads.threads), "a worker deadlocked"
    assert s.state(uid) is COMPLETED
    assert s.state(victim) in (CANCELLED, COMPLETED)


def test_a_finalizer_run_by_the_collector_under_the_lock_is_deferred():
    # Cyclic garbage collected while the scheduler holds its lock: the
    # finalizer's call waits for the lock to be released instead of deadlocking.
    s = Scheduler(1, lambda n: None, lambda: None)
    victim = s.add(noop)
    seen = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            seen.append(s.stop(victim))

    finished = threading.Event()

    def body():
        gc.disable()
        try:
            Cycle()  # garbage, found by the next collection
            with s._lock:
                gc.collect()  # as if an allocation under the lock triggered it
            s.add(noop)  # any call releases the lock: the deferred stop runs
        finally:
            gc.enable()
            finished.set()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    assert finished.wait(WAIT), "deadlocked: a finalizer re-entered the scheduler's lock"
    assert seen == [False]  # deferred: it could not say yet
    assert s.state(victim) is CANCELLED


def test_results_dropped_at_delivery_die_outside_the_lock():
    h = Inline()
    h.s.start()
    inside = []

    class Result:
        def __del__(self):
            inside.append(h.s._lock._is_owned())

    h.s.add(Result)
    h.run()
    assert h.drain()
    assert inside == [False]


# ---------------------------------------------------------------- 5. keyed work being cancelled


def test_a_keyed_request_never_joins_work_that_is_being_cancelled(threads):
    s = threads.s
    started, release = threading.Event(), threading.Event()
    runs = []

    def decode():
        runs.append(1)
        if len(runs) == 1:
            started.set()
            release.wait(WAIT)
        return "pixels"

    first = s.add(decode, opts=s.make_options(key="img"))
    assert started.wait(WAIT)
    s.stop(first)  # the last requester gives up: the shared work is CANCELLING
    second = s.add(decode, opts=s.make_options(key="img"))  # scrolled back
    release.set()
    for t in threads.threads:
        t.join(WAIT)
    assert s.state(first) is CANCELLED
    assert s.state(second) is COMPLETED  # was CANCELLED with the old work
    assert len(runs) == 2


# ---------------------------------------------------------------- 6. parked counts


def park(s: Scheduler, n: int) -> tuple[threading.Event, list[int]]:
    """A task holds the only "disk"; ``n`` more wait for it, parked.  Set the
    returned event to free the disk."""
    s.set_resource_limit("disk", 1)
    started, release = threading.Event(), threading.Event()
    s.add(lambda: (started.set(), release.wait(WAIT)), opts=s.make_options(resources={"disk": 1}))
    assert started.wait(WAIT)
    parked = [s.add(noop, opts=s.make_options(resources={"disk": 1})) for _ in range(n)]
    # the workers spawned for them parked them and retired
    assert wait_until(lambda: s._n_parked == n and s.counts()["workers"] == 1)
    return release, parked


def test_cancelling_a_parked_task_leaves_no_ready_work_waiting(threads):
    s = threads.s
    release, parked = park(s, 2)
    s.stop(parked[0])
    ran = threading.Event()
    s.add(ran.set)  # free work: a worker must take it now, not after the disk frees
    try:
        assert ran.wait(WAIT), "ready work waited for an unrelated resource"
    finally:
        release.set()


def test_set_priority_of_a_parked_task_keeps_the_counts(threads):
    s = threads.s
    release, (parked,) = park(s, 1)
    for p in range(5):
        s.set_priority(parked, p)  # was a new heap entry each: a worker parked it twice
    try:
        for _ in range(3):
            ran = threading.Event()
            s.add(ran.set)
            assert ran.wait(WAIT), "ready work waited for an unrelated resource"
    finally:
        release.set()
    for t in threads.threads:
        t.join(WAIT)
    assert s.state(parked) is COMPLETED
    assert s._n_parked == 0 and s._n_ready == 0


# ---------------------------------------------------------------- 8. heap entries


def test_set_priority_does_not_grow_the_ready_heap():
    s = Scheduler(1, lambda n: None, lambda: None)  # paused: everything stays queued
    n = 5_000
    for _ in range(n):
        s.add(noop, group="g")
    for _ in range(200):
        s.set_group_priority("g", 3)  # the same priority: nothing to push
    assert len(s._ready) == 2 * n  # one entry each, and the one for the first change
    for i in range(200):
        s.set_group_priority("g", i % 7)
    assert len(s._ready) <= 2 * n + 1024  # stale entries are compacted
    s.start()
    order = []
    while (t := s.claim()) is not None:
        order.append(t.uid)
        s.finish(t, True, None, claim_next=False)
    assert sorted(order) == list(range(1, n + 1))  # each exactly once


# ---------------------------------------------------------------- 9. delivery after retry


def test_a_failure_delivered_after_retry_keeps_its_message():
    h = Inline()
    h.s.start()
    uid = h.s.add(boom)
    h.run()
    h.s.retry(uid)  # before the failure was delivered
    failed = [e for e in h.drain() if e[0] == TASK_FAILED]
    assert [(e[1].uid, e[2]) for e in failed] == [(uid, "boom")]
    assert "ValueError: boom" in failed[0][3]


def test_progress_delivered_after_retry_is_never_none():
    h = Inline()
    h.s.start()
    from bgtasks import current_task

    def half_then_fail():
        current_task().report_progress(0.5)
        raise ValueError("boom")

    uid = h.s.add(half_then_fail)
    h.run()
    h.s.retry(uid)
    progress = [e for e in h.drain() if e[0] == TASK_PROGRESS]
    assert all(e[3] is not None for e in progress)


# ---------------------------------------------------------------- 11. exclusive


def test_exclusive_never_cancels_the_new_tasks_own_upstream():
    h = Inline()
    older = h.s.add(noop, group="g")
    a = h.s.add(lambda: {"x": 1}, group="g")
    b = h.s.add(lambda x: {"x": x + 1}, group="g", upstream_task_ids=[a])
    c = h.s.add(lambda x: x + 1, group="g", upstream_task_ids=[b], exclusive=True)
    assert h.s.state(older) is CANCELLED
    assert [h.s.state(u) for u in (a, b, c)] == [QUEUED, PENDING, PENDING]
    h.s.start()
    h.run()
    assert [h.s.state(u) for u in (a, b, c)] == [COMPLETED, COMPLETED, COMPLETED]
    assert [e[3] for e in h.drain() if e[0] == TASK_COMPLETED] == [{"x": 1}, {"x": 2}, 3]


# ---------------------------------------------------------------- 12. dict subclasses


class Mine(dict):
    pass


@pytest.mark.parametrize(
    "make",
    [lambda: OrderedDict(x=1), lambda: defaultdict(int, x=1), lambda: Mine(x=1)],
    ids=["OrderedDict", "defaultdict", "subclass"],
)
def test_dict_subclass_results_merge_downstream(make):
    h = Inline()
    a = h.s.add(make)
    got = []
    h.s.add(lambda x: got.append(x), upstream_task_ids=[a])
    h.s.start()
    h.run()
    assert got == [1]
    events = h.drain()
    assert type(events[0][3]) is type(make())  # the signal carries the original object


def test_dict_subclass_results_merge_into_tasks_added_after_completion():
    h = Inline()
    h.s.start()
    a = h.s.add(lambda: OrderedDict(x=1))
    h.run()
    got = []
    h.s.add(lambda x: got.append(x), upstream_task_ids=[a])  # before delivery
    h.run()
    assert got == [1]


# ---------------------------------------------------------------- 14. after close


def test_a_task_running_at_close_ends_cancelled(threads):
    s = threads.s
    started, release = threading.Event(), threading.Event()
    uid = s.add(lambda: (started.set(), release.wait(WAIT)))
    assert started.wait(WAIT)
    s.close()
    assert s.state(uid) is TaskState.CANCELLING
    release.set()
    for t in threads.threads:
        t.join(WAIT)
    assert s.state(uid) is CANCELLED  # stayed CANCELLING for ever


# ---------------------------------------------------------------- 15. keep_finished


def test_keep_finished_holds_once_delivery_catches_up():
    h = Inline(keep_finished=100)
    h.s.start()
    for _ in range(3_000):
        h.s.add(noop)
    h.run()
    assert len(h.s._tasks) == 3_000  # nothing forgotten before its end is delivered
    h.drain()
    assert len(h.s._tasks) == 100  # was 3,000 until one more task ended


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("uid", [True, 1.0, "1", None])
def test_uids_of_the_wrong_type_are_refused(uid):
    s = Scheduler(1, lambda n: None, lambda: None)
    s.add(noop)
    for call, what in [(s.stop, "stop_task"), (s.info, "info"), (s.state, "task_state")]:
        with pytest.raises(TypeError, match=f"^{what} takes a task uid \\(an int\\), got "):
            call(uid)
    assert s.state(1) is QUEUED  # uid 1 was not touched


def test_a_state_filter_that_is_not_a_state_is_refused():
    s = Scheduler(1, lambda n: None, lambda: None)
    with pytest.raises(
        TypeError,
        match=r"^state must be a TaskState or None, got 'RUNNING' \(use TaskState.RUNNING\)$",
    ):
        s.infos(state="RUNNING")


def test_a_group_whose_eq_raises_registers_nothing():
    class Touchy:
        def __hash__(self):
            return 1

        def __eq__(self, other):
            raise RuntimeError("no comparing")

    s = Scheduler(1, lambda n: None, lambda: None)
    s.add(noop, group=Touchy())
    with pytest.raises(RuntimeError, match="no comparing"):
        s.add(noop, group=Touchy())
    assert [i.uid for i in s.infos()] == [1]
    assert s.counts()["live"] == 1


def test_max_threads_out_of_range():
    with pytest.raises(
        ValueError, match=r"^max_threads must be at most 2147483647, got 1099511627776$"
    ):
        Scheduler(2**40, lambda n: None, lambda: None)


# ---------------------------------------------------------------- timers


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("timeout", float("inf"), "timeout must be a finite number of seconds of at most"),
        ("timeout", 1e10, "timeout must be a finite number of seconds of at most"),
        ("backoff", float("inf"), "backoff must be a finite number of seconds of at most"),
        ("timeout", float("nan"), "timeout must be a positive number of seconds, got nan"),
    ],
)
def test_timer_values_a_thread_cannot_wait_for_are_refused(option, value, message):
    s = Scheduler(1, lambda n: None, lambda: None)
    with pytest.raises(ValueError, match=message):
        s.make_options(**{option: value})


def test_the_timer_thread_survives_an_error(threads, caplog):
    s = threads.s
    real_tick = s.tick
    raised = []

    def tick_once_broken():
        if not raised:
            raised.append(1)
            raise RuntimeError("broken tick")
        real_tick()

    s.tick = tick_once_broken
    from bgtasks import current_task

    def wait_for_stop():
        current_task().sleep(WAIT)

    first = s.add(wait_for_stop, opts=s.make_options(timeout=0.01))
    second = s.add(wait_for_stop, opts=s.make_options(timeout=0.01))
    for t in threads.threads:
        t.join(WAIT + 5)
    assert raised == [1]
    assert "the timer thread caught an error" in caplog.text
    assert s.state(second) is FAILED  # the timer still fired after the error
    assert s.state(first) is FAILED
    assert "timed out" in s.info(second).error


def test_a_smaller_cache_or_registry_limit_applies_at_once():
    h = Inline()
    h.s.start()
    h.s.configure(cache_size=10)
    for i in range(10):
        h.s.add(noop, opts=h.s.make_options(key=i))
    h.run()
    h.drain()
    assert h.s.counts()["cached"] == 10
    h.s.configure(cache_size=2, keep_finished=3)
    assert h.s.counts()["cached"] == 2
    assert len(h.s._tasks) == 3  # shared works count too
