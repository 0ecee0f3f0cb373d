"""BackgroundTaskManager with a real thread pool and event loop (pytest-qt, headless)."""

from __future__ import annotations

import gc
import math
import sys
import threading
import time

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, QThreadPool, QTimer

from bgtasks import BackgroundTaskManager, TaskState
from bgtasks.qt import _delivery  # the drain's clock, replaced by a test


class Recorder:
    """Collects the manager's signals with the thread each one arrived on."""

    def __init__(self, manager: BackgroundTaskManager) -> None:
        self.events: list[tuple] = []
        self.threads: set = set()
        manager.task_completed.connect(self._completed)
        manager.task_failed.connect(self._failed)
        manager.task_group_finished.connect(self._group)

    def _completed(self, uid, group, result):
        self.threads.add(QThread.currentThread())
        self.events.append(("completed", uid, group, result))

    def _failed(self, uid, group, message, tb):
        self.threads.add(QThread.currentThread())
        self.events.append(("failed", uid, group, message))

    def _group(self, group):
        self.threads.add(QThread.currentThread())
        self.events.append(("group", group))

    def of(self, kind):
        return [e for e in self.events if e[0] == kind]


def test_signals_arrive_on_the_manager_thread_and_tasks_run_in_workers(qtbot, make_manager):
    m = make_manager(start_processing=True)
    rec = Recorder(m)
    task_threads = []

    def task():
        task_threads.append(threading.current_thread())
        return 42

    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        uid = m.add_task(task, group="g")
    assert rec.events == [("completed", uid, "g", 42), ("group", "g")]
    assert rec.threads == {QThread.currentThread()}
    assert task_threads[0] is not threading.main_thread()


def test_signal_order_is_finish_order(qtbot, make_manager):
    m = make_manager(max_threads=1)
    rec = Recorder(m)
    uids = [m.add_task(lambda i=i: i, priority=i % 7) for i in range(50)]
    expected = sorted(uids, key=lambda u: (-((u - uids[0]) % 7), u))
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    assert [e[1] for e in rec.of("completed")] == expected


def test_chain_passes_dict_results_and_failure_reaches_every_downstream(qtbot, make_manager):
    m = make_manager()
    rec = Recorder(m)
    a = m.add_task(lambda: {"n": 1}, group="chain")
    b = m.add_task(lambda n: {"n": n + 1}, group="chain", upstream_task_ids=[a])
    p = m.add_pass_through_task(group="chain", upstream_task_ids=[b], task_kwargs={"tag": "x"})

    def explode(**kw):
        raise RuntimeError(f"bad {kw['n']}")

    c = m.add_task(explode, group="chain", upstream_task_ids=[p])
    d = m.add_task(lambda **kw: kw, group="other", upstream_task_ids=[c])
    with qtbot.waitSignals([m.task_group_finished, m.task_group_finished], timeout=10000):
        m.start_processing()
    assert rec.of("completed") == [
        ("completed", a, "chain", {"n": 1}),
        ("completed", b, "chain", {"n": 2}),
        ("completed", p, "chain", {"tag": "x", "n": 2}),
    ]
    assert rec.of("failed") == [("failed", c, "chain", "bad 2"), ("failed", d, "other", "bad 2")]
    assert rec.events[-4:] == [
        ("failed", c, "chain", "bad 2"),
        ("group", "chain"),  # c was the last live task of "chain"
        ("failed", d, "other", "bad 2"),
        ("group", "other"),
    ]


def test_failure_message_and_traceback(qtbot, make_manager):
    m = make_manager(start_processing=True)

    def broken():
        raise KeyError("missing")

    with qtbot.waitSignal(m.task_failed, timeout=10000) as blocker:
        uid = m.add_task(broken)
    got_uid, group, message, tb = blocker.args
    assert (got_uid, group, message) == (uid, None, "'missing'")
    assert tb.startswith("Traceback (most recent call last):")
    assert "in broken" in tb and tb.rstrip().endswith("KeyError: 'missing'")


@pytest.mark.parametrize("exc", [SystemExit(1), KeyboardInterrupt()])
def test_system_exit_fails_the_task_and_the_worker_survives(qtbot, make_manager, exc):
    m = make_manager(start_processing=True, max_threads=1)
    rec = Recorder(m)

    def die():
        raise exc

    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        bad = m.add_task(die)
        good = m.add_task(lambda: "alive")
    assert rec.of("failed")[0][1] == bad
    assert rec.of("completed") == [("completed", good, None, "alive")]


def test_tasks_can_add_follow_up_tasks_from_worker_threads(qtbot, make_manager):
    m = make_manager(start_processing=True)
    rec = Recorder(m)

    def parent():
        return {"child": m.add_task(lambda: "child done", group="kids")}

    with qtbot.waitSignal(
        m.task_group_finished, timeout=10000, check_params_cb=lambda g: g == "kids"
    ):
        m.add_task(parent, group="parents")
    child_uid = rec.of("completed")[0][3]["child"]
    assert ("completed", child_uid, "kids", "child done") in rec.events


def test_stop_from_another_thread(qtbot, make_manager):
    m = make_manager()
    rec = Recorder(m)
    uids = [m.add_task(lambda: 1, group="g") for _ in range(20)]
    t = threading.Thread(target=lambda: [m.stop_task(u) for u in uids[:10]])
    t.start()
    t.join(10)
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    assert sorted(e[1] for e in rec.of("completed")) == uids[10:]


def test_stop_running_task_drops_result_and_emits_nothing(qtbot, make_manager):
    m = make_manager(start_processing=True)
    rec = Recorder(m)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return "late"

    uid = m.add_task(slow, group="g")
    assert started.wait(10)
    m.stop_task(uid)
    assert m.task_state(uid) is TaskState.CANCELLING
    release.set()
    qtbot.waitUntil(lambda: m.task_state(uid) is TaskState.CANCELLED, timeout=10000)
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.add_task(lambda: "marker", group="end")
    assert rec.events == [("completed", uid + 1, "end", "marker"), ("group", "end")]


def test_pause_lets_running_tasks_report_and_dispatches_nothing_new(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=1)
    rec = Recorder(m)
    started, release = threading.Event(), threading.Event()

    def first():
        started.set()
        release.wait(10)
        return 1

    a = m.add_task(first)
    b = m.add_task(lambda: 2)
    assert started.wait(10)
    m.pause_processing()
    release.set()
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        pass
    assert rec.of("completed") == [("completed", a, None, 1)]
    assert m.task_state(b) is TaskState.QUEUED
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    assert rec.of("completed")[-1] == ("completed", b, None, 2)


def test_own_pool_and_max_threads_respected_exactly(qtbot, make_manager):
    limit = 3
    m = make_manager(start_processing=True, max_threads=limit)
    assert m.max_threads == limit
    lock = threading.Lock()
    state = {"running": 0, "peak": 0, "global": 0}
    barrier = threading.Barrier(limit, timeout=10)

    def task(i):
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
            state["global"] = max(state["global"], QThreadPool.globalInstance().activeThreadCount())
        if i < limit:
            barrier.wait()
        with lock:
            state["running"] -= 1

    with qtbot.waitSignal(m.task_group_finished, timeout=20000):
        for i in range(40):
            m.add_task(task, task_args=[i], priority=-i)
    assert state["peak"] == limit
    assert state["global"] == 0


def test_results_are_delivered_in_batches_within_the_time_budget(qtbot, make_manager):
    """One wake-up drains many results, and the drain yields to the event loop."""
    n = 300
    m = make_manager(max_threads=1)  # one worker: finish order is uid order
    m.drain_budget = 0.002
    wakes = []

    class CountWakes(QObject):
        # the manager's wake-up is the one custom (user-range) event posted to it
        def eventFilter(self, obj, ev):
            if ev.type() >= QEvent.Type.User:
                wakes.append(1)
            return False

    counter = CountWakes()
    m.installEventFilter(counter)
    all_done = threading.Semaphore(0)
    for _ in range(n):
        m.add_task(all_done.release)
    m.start_processing()
    for _ in range(n):  # every task finished before the event loop runs
        assert all_done.acquire(timeout=10)

    delivered = []
    interleaved = []

    def slot(uid, group, result):
        spin_until = time.perf_counter() + 0.0001  # a slot that does a little work
        while time.perf_counter() < spin_until:
            pass
        delivered.append(uid)

    m.task_completed.connect(slot)
    QTimer.singleShot(0, lambda: interleaved.append(len(delivered)))
    qtbot.waitUntil(lambda: len(delivered) == n, timeout=10000)
    assert len(wakes) < n / 10  # batches, not one wake-up per result
    assert interleaved and 0 < interleaved[0] < n  # the timer ran between two batches
    assert delivered == sorted(delivered)


@pytest.mark.parametrize(
    ("step", "other_work", "second_pass"),
    [
        (1 / 1024, 3 / 1024, 1),  # 4 of the budget's 4 units left after 3: 1 event
        (1 / 8192, 100 / 1024, 4),  # nothing left: an eighth of the budget, 4 events
    ],
)
def test_work_between_two_passes_counts_against_the_second(
    qtbot, make_manager, monkeypatch, step, other_work, second_pass
):
    """A pass that ran out of budget continues from a zero-timer.  What the
    event loop ran before that timer fired (a view's layout, a paint) belongs
    to the same stall, so the next pass gets what is left of the budget, and
    an eighth of it at least: the two add up to one budget, not two."""
    clock = [0.0]  # the drain's clock, stepped by hand: binary fractions, exact
    monkeypatch.setattr(_delivery, "perf_counter", lambda: clock[0])
    m = make_manager(max_threads=1)
    m.drain_budget = 4 / 1024
    first_pass = round(m.drain_budget / step)
    handles = [m.submit(int, i) for i in range(first_pass + second_pass + 20)]
    m.start_processing()
    handles[-1].result(timeout=10)  # every task ended before the event loop runs
    order: list[object] = []

    def layout():  # other work in the turn before the next pass
        clock[0] += other_work
        order.append("layout")
        QTimer.singleShot(0, lambda: order.append("next turn"))

    def slot(uid, group, result):
        clock[0] += step
        order.append(result)
        if result == first_pass - 1:  # the first pass's last event: "layout" is due next
            QTimer.singleShot(0, layout)

    m.task_completed.connect(slot)
    qtbot.waitUntil(lambda: "next turn" in order and len(order) == len(handles) + 2, timeout=10000)
    start = order.index("layout")
    assert order[:start] == list(range(first_pass))
    assert order[start + 1 : order.index("next turn")] == list(
        range(first_pass, first_pass + second_pass)
    )


def test_nested_event_loop_in_a_slot_keeps_order(qtbot, make_manager):
    m = make_manager(max_threads=1)
    order = []

    def slot(uid, group, result):
        order.append(uid)
        if len(order) == 1:
            QCoreApplication.processEvents()  # a nested loop delivers the rest first

    m.task_completed.connect(slot)
    uids = [m.add_task(lambda: 1) for _ in range(50)]
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    assert order == uids


def test_bad_input_errors_name_the_value(make_manager):
    m = make_manager()
    with pytest.raises(TypeError, match="^cbl must be callable, got 'nope'$"):
        m.add_task("nope")
    with pytest.raises(TypeError, match="^cbl must be callable, got None$"):
        m.add_task(None)
    with pytest.raises(TypeError, match="^task_args must be a list or tuple of arguments, got 3$"):
        m.add_task(print, task_args=3)
    with pytest.raises(
        TypeError, match=r"^task_kwargs must be a mapping of names to values, got \(1,\)$"
    ):
        m.add_task(print, task_kwargs=(1,))
    with pytest.raises(ValueError, match="^upstream task 99 is unknown"):
        m.add_pass_through_task(upstream_task_ids=[99])
    with pytest.raises(ValueError, match="^max_threads must be a positive integer, got 0$"):
        BackgroundTaskManager(max_threads=0)
    with pytest.raises(ValueError, match=r"^max_threads must be a positive integer, got 2\.5$"):
        BackgroundTaskManager(max_threads=2.5)
    with pytest.raises(KeyError, match="task 1 is unknown"):
        m.stop_task(1)
    with pytest.raises(
        ValueError, match="^timeout must be a non-negative number of seconds, got -1$"
    ):
        m.shut_down(timeout=-1)
    assert m.add_task(print) == 1  # nothing was half-registered


def test_upstream_ids_are_per_manager(make_manager):
    a = make_manager()
    b = make_manager()
    uid = a.add_task(print)
    b.add_task(print)
    with pytest.raises(ValueError, match=f"^upstream task {uid + 1} is unknown"):
        a.add_task(print, upstream_task_ids=[uid + 1])


def test_next_group_id_is_unique_across_threads(make_manager):
    m = make_manager()
    ids: list[int] = []
    threads = [
        threading.Thread(target=lambda: ids.extend(m.next_group_id() for _ in range(500)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(set(ids)) == 2000


# ---------------------------------------------------------------- shutdown


def test_shut_down_is_bounded_idempotent_and_silent(qtbot):
    m = BackgroundTaskManager(start_processing=True, max_threads=1)
    rec = Recorder(m)
    started, release = threading.Event(), threading.Event()

    def stuck():
        started.set()
        release.wait(30)
        return "ignored"

    m.add_task(stuck)
    queued = m.add_task(lambda: "never")
    assert started.wait(10)
    m.shut_down(timeout=0.05)  # returns although the task is still running
    m.shut_down()
    release.set()
    with pytest.raises(
        RuntimeError, match="^this task manager has been shut down; it accepts no new tasks$"
    ):
        m.add_task(print)
    QCoreApplication.processEvents()  # any stray wake-up is handled here: it must emit nothing
    assert rec.events == []
    assert m.task_state(queued) is TaskState.CANCELLED


def test_shut_down_waits_for_running_tasks_within_timeout(qtbot):
    m = BackgroundTaskManager(start_processing=True)
    finished = threading.Event()
    started = threading.Event()

    def short():
        started.set()
        # not a synchronisation sleep: the task is busy for a moment
        threading.Event().wait(0.05)
        finished.set()

    m.add_task(short)
    assert started.wait(10)
    m.shut_down(timeout=10)
    assert finished.is_set()


def test_about_to_quit_shuts_managers_down(qapp):
    m = BackgroundTaskManager()
    qapp.aboutToQuit.emit()
    with pytest.raises(RuntimeError):
        m.add_task(print)


# ---------------------------------------------------------------- soak


@pytest.mark.slow
def test_soak_hundreds_of_thousands_of_signals(qtbot, make_manager):
    """Would abort the process with PySide6 6.12.0 on Python 3.11 (bool_dealloc)."""
    n = 200_000
    m = make_manager(max_threads=4)
    count = [0]
    groups = [0]

    def done(uid, group, result):
        count[0] += 1

    m.task_completed.connect(done)
    m.task_group_finished.connect(lambda g: groups.__setitem__(0, groups[0] + 1))
    gc.collect()  # garbage of earlier tests holds references to True too
    true_refs = sys.getrefcount(True)
    for i in range(n):
        m.add_task(int, task_args=(i,), group=i % 10)
    m.start_processing()
    qtbot.waitUntil(lambda: groups[0] == 10, timeout=60000)
    assert count[0] == n
    gc.collect()
    # The 6.12.0 bug drops one reference per emit (n of them, then a crash).
    assert abs(sys.getrefcount(True) - true_refs) < n // 20


def test_the_ui_thread_beats_the_gil_gate_while_workers_run(qtbot, make_manager):
    # While a task runs, the manager's thread beats the scheduler's GIL gate
    # (workers give way when the beats stop); with no worker left, it stops
    # beating, and a stopped gate never makes a worker wait.
    manager = make_manager(max_threads=2)
    gate = manager.gil_gate
    assert gate.beat_at == math.inf
    release = threading.Event()
    handle = manager.submit(release.wait, 30)
    with qtbot.waitSignal(manager.task_started, timeout=5000):
        manager.start_processing()
    qtbot.waitUntil(lambda: manager.is_beating, timeout=5000)
    first = gate.beat_at
    assert first != math.inf
    qtbot.waitUntil(lambda: gate.beat_at > first, timeout=5000)  # beating on
    # the task runs on, quietly (no event for 0.25 s): the beat stops, the gate
    # never makes a worker wait, and the next event starts it again
    qtbot.waitUntil(lambda: not manager.is_beating, timeout=5000)
    assert handle.running()
    assert gate.beat_at == math.inf
    assert not gate.starved(time.monotonic() + 1000)
    beating_at_delivery = []
    manager.task_completed.connect(lambda *_: beating_at_delivery.append(manager.is_beating))
    with qtbot.waitSignal(manager.task_completed, timeout=5000):
        release.set()
    assert beating_at_delivery == [True]  # the drain that delivered it started the beat
    qtbot.waitUntil(lambda: not manager.is_beating, timeout=5000)
    assert handle.result(5) is True
    assert gate.beat_at == math.inf


def test_shut_down_stops_the_beat(qtbot, make_manager):
    manager = make_manager(max_threads=1)
    release = threading.Event()
    manager.submit(release.wait, 30)
    with qtbot.waitSignal(manager.task_started, timeout=5000):
        manager.start_processing()
    qtbot.waitUntil(lambda: manager.is_beating, timeout=5000)
    release.set()
    manager.shut_down(timeout=5)
    assert not manager.is_beating
    assert manager.gil_gate.beat_at == math.inf


def test_a_ui_thread_blocked_on_a_result_does_not_hold_the_workers(qtbot, make_manager):
    # The UI thread stopped beating long ago (workers would wait a minute for
    # it), then blocks in result(): the workers must not wait for it.
    manager = make_manager(max_threads=2)
    gate = manager.gil_gate
    gate.park_for = 60.0
    gate.beat()  # from this (the UI) thread
    gate.beat_at -= 10.0
    assert gate.starved(time.monotonic())
    handles = [manager.submit(lambda i=i: i * 2) for i in range(20)]
    manager.start_processing()
    assert [h.result(timeout=20) for h in handles] == [i * 2 for i in range(20)]
    assert gate.beat_at == math.inf
