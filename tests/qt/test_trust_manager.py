"""Issue 11: the manager's promises in their corners (Qt layer).

Each test failed on the code before its fix (checked against ece5d39).
"""

from __future__ import annotations

import ast
import gc
import pathlib
import threading
import weakref

import pytest

from bgtasks import BackgroundTaskManager, TaskCancelled, TaskState, current_task

WAIT = 10  # seconds: a bound for waits that end at once when all is well


class Blob:
    """A result whose death can be watched."""


def make_blob():
    return Blob()


def fails_then_waits(release, error, result, progress=None):
    """A function whose first run raises ``error`` (after reporting ``progress``)
    and whose later runs wait for ``release`` and return ``result``."""
    runs = []

    def flaky():
        runs.append(1)
        if len(runs) == 1:
            if progress is not None:
                current_task().report_progress(progress, message="half")
            raise error
        release.wait(WAIT)
        return result

    return flaky


# ---------------------------------------------------------------- 7. nothing kept after delivery


@pytest.mark.parametrize("how", ["submit", "key", "add_task"])
def test_a_delivered_result_is_not_kept(qtbot, make_manager, how):
    # Through handles and keyed work every result stayed alive until 10,000
    # later tasks finished, even with cache_size=0.
    m = make_manager(start_processing=True)
    refs = []
    m.task_completed.connect(lambda uid, group, result: refs.append(weakref.ref(result)))
    with qtbot.waitSignal(m.task_completed, timeout=WAIT * 1000):
        if how == "submit":
            m.submit(make_blob)  # the handle is dropped at once
        elif how == "key":
            m.options(key="blob").submit(make_blob)
        else:
            m.add_task(make_blob)
    qtbot.waitUntil(lambda: refs[0]() is None, timeout=WAIT * 1000)


def test_a_kept_handle_still_has_its_result(qtbot, make_manager):
    m = make_manager(start_processing=True)
    handle = m.submit(make_blob)
    result = handle.result(timeout=WAIT)
    with qtbot.waitSignal(m.task_group_finished, timeout=WAIT * 1000):
        m.add_task(print, group="marker")
    assert handle.result() is result


# ---------------------------------------------------------------- 9. delivery after retry


def test_a_failure_delivered_after_retry_keeps_its_message_and_progress(qtbot, make_manager):
    m = make_manager(start_processing=True)
    release = threading.Event()
    flaky = fails_then_waits(release, ValueError("first run failed"), "second run", progress=0.5)
    failures, progress = [], []
    m.task_failed.connect(lambda uid, group, message, tb: failures.append((uid, message)))
    m.task_progress.connect(lambda uid, group, fraction, message: progress.append(fraction))
    first = m.submit(flaky)
    with pytest.raises(ValueError, match="first run failed"):
        first.result(timeout=WAIT)  # failed, not delivered yet: no event loop ran
    second = m.retry(first.uid)  # resets the task's message and progress
    with qtbot.waitSignal(m.task_failed, timeout=WAIT * 1000):
        pass
    assert failures == [(first.uid, "first run failed")]  # was ""
    assert all(isinstance(f, float) for f in progress)
    release.set()
    assert second.result(timeout=WAIT) == "second run"


# ---------------------------------------------------------------- 10. handles and retry


def test_retry_returns_a_handle_on_the_new_run(qtbot, make_manager):
    m = make_manager(start_processing=True)
    runs = []

    def flaky():
        runs.append(1)
        if len(runs) == 1:
            raise OSError("flaky disk")
        return "read"

    first = m.submit(flaky)
    with pytest.raises(OSError, match="flaky disk"):
        first.result(timeout=WAIT)
    later = []
    second = m.retry(first.uid)
    second.add_done_callback(later.append)
    assert second.result(timeout=WAIT) == "read"
    with pytest.raises(OSError, match="flaky disk"):
        first.result()  # a done future never changes
    assert m.handle(first.uid).result(timeout=WAIT) == "read"
    qtbot.waitUntil(lambda: later == [second], timeout=WAIT * 1000)


def test_done_callbacks_of_a_retried_run_wait_for_that_run(qtbot, make_manager):
    m = make_manager(start_processing=True)
    release = threading.Event()
    first = m.submit(fails_then_waits(release, OSError("first"), "second"))
    with pytest.raises(OSError):
        first.result(timeout=WAIT)
    calls = []
    first.add_done_callback(lambda h: calls.append(("first", h.done())))
    second = m.retry(first.uid)  # before the failure is delivered
    second.add_done_callback(lambda h: calls.append(("second", h.result())))
    with qtbot.waitSignal(m.task_failed, timeout=WAIT * 1000):
        pass
    qtbot.waitUntil(lambda: calls == [("first", True)], timeout=WAIT * 1000)
    release.set()
    qtbot.waitUntil(lambda: calls == [("first", True), ("second", "second")], timeout=WAIT * 1000)


# ---------------------------------------------------------------- 13. one lock guards every field


def test_the_qt_layer_writes_no_task_field():
    # The drain wrote task.result, task.pending and progress_queued without the
    # scheduler's lock; now take_events does that under it.
    qt = pathlib.Path(__file__).parents[2] / "bgtasks" / "qt"
    assert (qt / "_delivery.py").exists()
    writes = [
        f"{path.name}: {node.value.id}.{node.attr} (line {node.lineno})"
        for path in sorted(qt.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("task", "source", "t", "event")
    ]
    assert writes == []


# ---------------------------------------------------------------- 14. shut down


def test_a_task_running_at_shut_down_ends_cancelled(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started, release = threading.Event(), threading.Event()
    handle = m.submit(lambda: (started.set(), release.wait(WAIT)))
    assert started.wait(WAIT)
    m.shut_down(timeout=0)
    assert m.task_state(handle.uid) is TaskState.CANCELLING
    assert handle.cancelled()
    release.set()
    qtbot.waitUntil(lambda: m.task_state(handle.uid) is TaskState.CANCELLED, timeout=WAIT * 1000)
    with pytest.raises(TaskCancelled):
        handle.result()


# ---------------------------------------------------------------- 4. finalizers, through the manager


def test_finalizers_calling_the_manager_under_gc_pressure_never_deadlock(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=4)
    victims = [m.add_task(print, priority=-1) for _ in range(50)]
    m.pause_processing()

    class Cycle:
        def __init__(self, victim):
            self.me = self
            self.victim = victim

        def __del__(self):
            m.stop_task(self.victim)

    def make_garbage(victim):
        Cycle(victim)
        return [object() for _ in range(50)]  # allocations: collections happen anywhere

    old = gc.get_threshold()
    gc.set_threshold(5, 1, 1)
    try:
        handles = [m.submit(make_garbage, v) for v in victims]
        m.start_processing()
        for h in handles:
            h.result(timeout=WAIT)
    finally:
        gc.set_threshold(*old)
    gc.collect()
    qtbot.waitUntil(lambda: all(m.task_state(v).is_terminal for v in victims), timeout=WAIT * 1000)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("uid", [True, 1.0])
def test_stop_task_and_info_refuse_a_uid_that_is_not_an_int(make_manager, uid):
    m = make_manager()
    first = m.add_task(print)
    with pytest.raises(TypeError, match="^stop_task takes a task uid \\(an int\\), got "):
        m.stop_task(uid)
    with pytest.raises(TypeError, match="^info takes a task uid \\(an int\\), got "):
        m.info(uid)
    assert m.task_state(first) is TaskState.QUEUED


def test_tasks_refuses_a_state_name(make_manager):
    m = make_manager()
    m.add_task(print)
    with pytest.raises(TypeError, match=r"\(use TaskState.QUEUED\)$"):
        m.tasks(state="QUEUED")


def test_max_threads_too_large_is_a_clear_error(qtbot):
    with pytest.raises(
        ValueError, match="^max_threads must be at most 2147483647, got 1099511627776$"
    ):
        BackgroundTaskManager(max_threads=2**40)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.shut_down(timeout=float("inf")), "timeout must be a finite number of seconds"),
        (
            lambda m: setattr(m, "progress_interval", float("inf")),
            "progress_interval must be a finite number of seconds",
        ),
        (
            lambda m: m.options(timeout=1e10).submit(print),
            "timeout must be a finite number of seconds",
        ),
        (
            lambda m: m.options(retries=1, backoff=float("inf")).submit(print),
            "backoff must be a finite",
        ),
    ],
)
def test_seconds_no_timer_can_wait_for_are_refused(make_manager, call, message):
    m = make_manager()
    with pytest.raises(ValueError, match=message):
        call(m)
    assert m.tasks() == []
    assert not m.is_shut_down


def test_sleep_accepts_inf_and_refuses_nan(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started = threading.Event()

    def sleeper():
        with pytest.raises(ValueError, match="seconds must be a non-negative number, got nan"):
            current_task().sleep(float("nan"))
        started.set()
        current_task().sleep(float("inf"))  # until stopped

    handle = m.submit(sleeper)
    assert started.wait(WAIT)
    handle.cancel()
    qtbot.waitUntil(lambda: m.task_state(handle.uid) is TaskState.CANCELLED, timeout=WAIT * 1000)


def test_what_the_scheduler_drops_is_released_on_the_managers_thread(qtbot, make_manager):
    # A handle holds its manager: released in a worker, it could be the last
    # reference and destroy the manager there while the UI thread delivered a
    # posted event to it (a segfault under load, issue 11).  Everything the
    # scheduler drops is released on the manager's thread.
    m = make_manager(start_processing=True)
    died = []
    handle = m.submit(make_blob)
    weakref.finalize(handle, lambda: died.append(threading.get_ident()))
    with qtbot.waitSignal(m.task_completed, timeout=WAIT * 1000):
        del handle  # only the task holds it now
    qtbot.waitUntil(lambda: died != [], timeout=WAIT * 1000)
    assert died == [threading.get_ident()]


class _BrokenStr(Exception):
    """An exception whose ``str()`` and ``repr()`` raise."""

    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")


def _raise_broken():
    raise _BrokenStr()


def test_an_exception_whose_str_raises_fails_its_task_and_nothing_else(qtbot, make_manager):
    """The failure's message was ``str(error)``, taken under the scheduler's
    lock: a broken ``__str__`` raised out of ``finish()``, killed the worker
    and left the task running for ever (and, with one thread, every task
    after it queued for ever).  User code never runs under the lock."""
    m = make_manager(start_processing=True, max_threads=1)
    failed, completed = [], []
    m.task_failed.connect(lambda uid, group, message, tb: failed.append((uid, message, tb)))
    m.task_completed.connect(lambda uid, group, result: completed.append((uid, result)))
    handle = m.submit(_raise_broken)
    after = m.add_task(lambda: 42)
    qtbot.waitUntil(lambda: bool(completed), timeout=10000)
    assert completed == [(after, 42)]
    ((uid, message, tb),) = failed
    assert uid == handle.uid and message == "_BrokenStr (str() failed)"
    assert "_raise_broken" in tb and "_BrokenStr" in tb
    assert m.task_state(handle.uid) is TaskState.FAILED
    assert isinstance(handle.exception(timeout=5), _BrokenStr)


@pytest.mark.parametrize("name", ["drain_budget", "shutdown_timeout"])
@pytest.mark.parametrize(
    "value, message",
    [
        (float("nan"), "must be a non-negative number of seconds, got nan"),
        (-1.0, "must be a non-negative number of seconds, got -1.0"),
        (float("inf"), "must be a finite number of seconds of at most"),
        ("4 ms", "must be a non-negative number of seconds, got '4 ms'"),
    ],
)
def test_the_seconds_settings_refuse_what_they_cannot_use(make_manager, name, value, message):
    """A NaN drain budget was taken: no time is ever past NaN, so a flood's
    drain never gave the event loop a turn (the UI froze until the last
    result); an infinite one the same."""
    m = make_manager()
    before = getattr(m, name)
    with pytest.raises(ValueError, match=f"^{name} {message}"):
        setattr(m, name, value)
    assert getattr(m, name) == before
    setattr(m, name, 0.25)
    assert getattr(m, name) == 0.25


@pytest.mark.parametrize("call", ["add_task", "set_priority"])
def test_a_priority_too_large_for_a_float_is_refused_by_name(make_manager, call):
    m = make_manager()
    uid = m.add_task(int)
    huge = 10**400
    with pytest.raises(ValueError, match="^priority must fit in a float, got an int of 1329 bits$"):
        if call == "add_task":
            m.add_task(int, priority=huge)
        else:
            m.set_priority(uid, huge)
    assert [t.uid for t in m.tasks()] == [uid]
    assert m.info(uid).priority == 0
