"""Scheduling options on the manager: priorities, timeouts, resource limits, upstream
failure policy, exclusive groups, owners, free workers."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QObject

from bgtasks import (
    TaskState,
    current_task,
)


def wait_all(qtbot, handles, timeout=10000):
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=timeout)


def test_set_priority_and_group_priority(qtbot, make_manager):
    m = make_manager(max_threads=1)
    order = []
    uids = {}
    for name, group in [("a", "far"), ("b", "far"), ("c", "near"), ("d", "near"), ("e", None)]:
        uids[name] = m.add_task(order.append, task_args=[name], group=group)
    m.set_priority(uids["e"], 5)
    assert m.set_group_priority("near", 10) == 2
    with qtbot.waitSignals([m.task_group_finished] * 3, timeout=10000):
        m.start_processing()
    assert order == ["c", "d", "e", "a", "b"]
    with pytest.raises(ValueError, match=f"task {uids['a']} is COMPLETED: only pending or queued"):
        m.set_priority(uids["a"], 1)


def test_timeout_stops_the_task_and_fails_it_with_timeout_error(qtbot, make_manager):
    m = make_manager(start_processing=True)
    failed = []
    m.task_failed.connect(lambda uid, g, msg, tb: failed.append(msg))
    h = m.options(timeout=0.05).submit(lambda: current_task().sleep(60))
    exc = h.exception(timeout=10)
    assert isinstance(exc, TimeoutError)
    assert str(exc) == f"task {h.uid} timed out after 0.05 s"
    qtbot.waitUntil(lambda: bool(failed), timeout=10000)
    assert failed == [f"task {h.uid} timed out after 0.05 s"]


def test_resource_limits_hold_whatever_max_threads_is(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=8)
    m.set_resource_limit("disk", 2)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    barrier = threading.Barrier(2, timeout=10)

    def io(i):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        if i < 2:
            barrier.wait()
        with lock:
            state["now"] -= 1

    hs = [m.options(resources={"disk": 1}, priority=-i).submit(io, i) for i in range(12)]
    wait_all(qtbot, hs)
    assert state["peak"] == 2
    assert all(h.exception() is None for h in hs)


def test_on_upstream_failure_cancel_policy(qtbot, make_manager):
    m = make_manager()
    log = []
    m.task_failed.connect(lambda uid, g, msg, tb: log.append(("failed", uid)))
    m.task_cancelled.connect(lambda uid, g: log.append(("cancelled", uid)))
    a = m.add_task(lambda: 1 / 0)
    b = m.add_task(print, upstream_task_ids=[a], on_upstream_failure="cancel")
    m.set_group_policy("soft", "cancel")
    c = m.add_task(print, upstream_task_ids=[a], group="soft")
    d = m.add_task(print, upstream_task_ids=[a])
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    qtbot.waitUntil(lambda: len(log) == 4, timeout=10000)
    assert sorted(log) == sorted([("failed", a), ("cancelled", b), ("cancelled", c), ("failed", d)])


def test_exclusive_group_latest_wins(qtbot, make_manager):
    m = make_manager()
    ran = []
    for q in ("a", "ab", "abc"):
        m.add_task(ran.append, task_args=[q], group="search", exclusive=True)
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    assert ran == ["abc"]


def test_owner_destroyed_cancels_its_tasks_and_watchers_still_see_them_end(qtbot, make_manager):
    # Regression (issue 11, #16 and #10): a dead owner's tasks were muted, so a
    # monitor kept them RUNNING/QUEUED for ever and a running task's handle
    # never called its done-callbacks.
    m = make_manager(start_processing=True, max_threads=1)
    owner = QObject()
    started, release = threading.Event(), threading.Event()
    delivered = []
    m.task_completed.connect(lambda u, g, r: delivered.append(("completed", u)))
    m.task_failed.connect(lambda u, g, msg, tb: delivered.append(("failed", u)))
    m.task_cancelled.connect(lambda u, g: delivered.append(("cancelled", u)))

    def running():
        started.set()
        release.wait(10)
        return "for a dead widget"

    h1 = m.options(owner=owner).submit(running)
    h2 = m.options(owner=owner).submit(lambda: "queued")
    called = []
    h1.add_done_callback(called.append)
    assert started.wait(10)
    owner.deleteLater()
    qtbot.waitUntil(lambda: ("cancelled", h2.uid) in delivered, timeout=10000)
    assert m.task_state(h1.uid) is TaskState.CANCELLING
    release.set()
    qtbot.waitUntil(lambda: called == [h1], timeout=10000)
    assert delivered == [("cancelled", h2.uid), ("cancelled", h1.uid)]
    assert h1.cancelled() and h2.cancelled()


def test_a_queued_task_starts_while_another_runs_a_long_task(qtbot, make_manager):
    """Regression: a busy worker was counted as free, so the queued task waited for it."""
    m = make_manager(start_processing=True, max_threads=4)
    started = threading.Event()
    long = m.submit(lambda: (started.set(), current_task().sleep(30)))
    assert started.wait(10)
    quick = m.submit(lambda: "not blocked")
    assert quick.result(timeout=10) == "not blocked"
    long.cancel()
