"""The executor contract: tasks that run elsewhere keep the manager's API; status signals."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QThread

from bgtasks import Executor, TaskCancelled, TaskState, current_task


def add(a, b=0, **kw):
    return {"sum": a + b + kw.get("x", 0)}


class Recorder(Executor):
    """Runs calls inline in the worker thread, recording what it was given."""

    def __init__(self, slots=None):
        self.slots = slots
        self.calls = []
        self.checked = []
        self.shut = []
        self.lock = threading.Lock()

    def check(self, fn, args, kwargs):
        self.checked.append((fn, args, dict(kwargs)))
        if fn is refused:
            raise TypeError("cannot run refused here: it is refused")

    def run(self, fn, args, kwargs, context):
        with self.lock:
            self.calls.append((fn, args, dict(kwargs), context.uid, context.priority,
                               threading.current_thread()))  # fmt: skip
        return fn(*args, **kwargs)

    def shut_down(self, timeout):
        self.shut.append(timeout)


def refused():
    return 1


def test_executor_gets_merged_kwargs_and_priority_in_a_worker_thread(qtbot, make_manager):
    m = make_manager(start_processing=True)
    ex = Recorder()
    m.set_executor("rec", ex)
    up = m.submit(dict, x=3)
    down = m.options(executor="rec", priority=7, upstream_task_ids=[up.uid]).submit(add, 10)
    assert down.result(timeout=10) == {"sum": 13}  # 10 + the upstream's x
    (fn, args, kwargs, uid, prio, thread), = ex.calls  # fmt: skip
    assert (fn, args, kwargs, uid, prio) == (add, (10,), {"x": 3}, down.uid, 7)
    assert thread is not threading.main_thread()
    assert m.info(down.uid).name == "add"


def test_a_refused_call_raises_at_submit_and_registers_nothing(make_manager):
    m = make_manager()
    ex = Recorder()
    m.set_executor("rec", ex)
    before = m.state_counts()
    with pytest.raises(TypeError, match=r"^cannot run refused here: it is refused$"):
        m.options(executor="rec").submit(refused)
    assert m.state_counts() == before
    assert m.tasks() == []


def test_unknown_executor_names_and_bad_registrations_are_refused(make_manager):
    m = make_manager()
    with pytest.raises(ValueError, match=r"^unknown executor 'gpu': use 'thread', 'process', "):
        m.options(executor="gpu").submit(add, 1)
    with pytest.raises(TypeError, match=r"^executor must be a name or a bgtasks.Executor, got 3$"):
        m.options(executor=3).submit(add, 1)
    with pytest.raises(TypeError, match=r"^executor must be a bgtasks.Executor, got 'x'$"):
        m.set_executor("rec", "x")
    with pytest.raises(ValueError, match=r"^executor name must be a non-empty string other"):
        m.set_executor("thread", Recorder())
    assert m.tasks() == []
    ex = Recorder()
    m.set_executor("rec", ex)
    m.options(executor="rec").submit(add, 1)
    with pytest.raises(ValueError, match=r"^executor 'rec' is already in use; set it before"):
        m.set_executor("rec", Recorder())


def test_thread_is_the_default_executor(qtbot, make_manager):
    m = make_manager(start_processing=True)
    assert m.options(executor="thread").submit(add, 1, 1).result(timeout=10) == {"sum": 2}


def test_slots_bound_how_many_of_an_executors_tasks_run_at_once(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=4)
    ex = Recorder(slots=1)
    m.set_executor("one", ex)
    gate = threading.Event()
    running = []
    peak = []
    lock = threading.Lock()

    def held(i):
        with lock:
            running.append(i)
            peak.append(len(running))
        gate.wait(10)
        with lock:
            running.remove(i)
        return i

    handles = [m.options(executor="one").submit(held, i) for i in range(3)]
    free = m.submit(add, 5)  # a thread task is not held back by the executor's slots
    assert free.result(timeout=10) == {"sum": 5}
    qtbot.waitUntil(lambda: m.task_state(handles[0].uid) is TaskState.RUNNING)
    assert [m.task_state(h.uid) for h in handles[1:]] == [TaskState.QUEUED] * 2
    gate.set()
    assert [h.result(timeout=10) for h in handles] == [0, 1, 2]
    assert max(peak) == 1


def test_an_executor_instance_can_be_passed_directly_and_is_shut_down_once(qtbot, make_manager):
    m = make_manager(start_processing=True)
    ex = Recorder()
    assert m.options(executor=ex).submit(add, 2).result(timeout=10) == {"sum": 2}
    m.shut_down(timeout=2)
    m.shut_down(timeout=2)
    assert len(ex.shut) == 1 and 0 <= ex.shut[0] <= 2


def test_cancel_reaches_the_executor_through_the_context(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started = threading.Event()

    class Waiting(Recorder):
        def run(self, fn, args, kwargs, context):
            started.set()
            context.sleep(60)  # a real backend polls its remote work and context.cancelled

    h = m.options(executor=Waiting()).submit(add, 1)
    assert started.wait(10)
    with qtbot.waitSignal(m.task_cancelled, timeout=10000):
        h.cancel()
    with pytest.raises(TaskCancelled, match=rf"^task {h.uid} was cancelled$"):
        h.result(timeout=1)


def test_status_changes_are_signalled_once_per_new_value_on_the_manager_thread(qtbot, make_manager):
    m = make_manager(start_processing=True)
    seen = []
    m.task_status_changed.connect(
        lambda uid, group, status: seen.append((uid, group, status, QThread.currentThread()))
    )

    def publish():
        ctx = current_task()
        for status in ("a", "a", "b", [1], [1], "b"):
            ctx.status = status
        return ctx.status

    h = m.options(group="g").submit(publish)
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        pass
    assert h.result(timeout=1) == "b"
    main = QThread.currentThread()
    assert seen == [(h.uid, "g", s, main) for s in ("a", "b", [1], "b")]
    assert m.info(h.uid).status == "b"


def test_a_process_worker_does_not_load_qt():
    """``import bgtasks`` is lazy: a worker process that needs only current_task
    starts without PySide6 (a third of its start-up time)."""
    import subprocess
    import sys

    code = (
        "import sys, bgtasks, bgtasks.executors._process_worker\n"
        "from bgtasks import current_task, TaskCancelled\n"
        "print('PySide6' in sys.modules)\n"
        "bgtasks.BackgroundTaskManager\n"
        "print('PySide6' in sys.modules, set(bgtasks.__all__) <= set(dir(bgtasks)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.split("\n")[:2] == ["False", "True True"]


def test_a_refused_submit_does_not_claim_the_executor_name(make_manager):
    m = make_manager()
    with pytest.raises(
        TypeError, match=r"^cannot run <lambda> in a worker process: it is a lambda"
    ):
        m.options(executor="process").submit(lambda: 1)
    mine = Recorder()
    m.set_executor("process", mine)  # still free: the refused call used nothing
    m.options(executor="process").submit(add, 1)
    assert [c[1] for c in mine.checked] == [(1,)]


class SlotsReadSlowly(Recorder):
    """One slot; the first submitting thread's second read of ``slots`` (the value the
    manager sets as the slot limit, under its executor lock) waits until ``go``."""

    def __init__(self):
        super().__init__(slots=1)
        self.inside, self.go = threading.Event(), threading.Event()
        self.reads: dict[threading.Thread, int] = {}
        self.first: threading.Thread | None = None

    @property
    def slots(self):
        me = threading.current_thread()
        with self.lock:
            self.first = self.first or me
            reads = self.reads[me] = self.reads.get(me, 0) + 1
        if me is self.first and reads == 2:
            self.inside.set()
            self.go.wait(10)
        return self.slot_count

    @slots.setter
    def slots(self, value):
        self.slot_count = value


def test_first_submits_from_two_threads_both_get_the_slot_limit(qtbot, make_manager):
    m = make_manager(start_processing=True)
    ex = SlotsReadSlowly()
    m.set_executor("one", ex)
    inside, go = ex.inside, ex.go
    results, errors = [], []

    def submit(i):
        try:
            results.append(m.options(executor="one").submit(add, i))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    first = threading.Thread(target=submit, args=(1,))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=submit, args=(2,))
    second.start()
    time.sleep(0.05)  # time for it to name the slot resource, were the limit not set yet
    go.set()
    first.join(10)
    second.join(10)
    assert errors == []
    assert sorted(h.result(timeout=10)["sum"] for h in results) == [1, 2]
