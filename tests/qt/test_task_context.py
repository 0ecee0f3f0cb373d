"""The task context: current_task(), stop requests, progress, status and settings (Qt layer)."""

from __future__ import annotations

import threading

import pytest

from bgtasks import (
    TaskCancelled,
    TaskState,
    current_task,
)


def wait_all(qtbot, handles, timeout=10000):
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=timeout)


def test_current_task_outside_a_task_is_an_error():
    with pytest.raises(RuntimeError, match=r"^current_task\(\) was called outside a running task$"):
        current_task()


def test_sleep_is_interrupted_by_stop_and_the_task_ends_cancelled(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started = threading.Event()
    after_sleep = []

    def sleeper():
        started.set()
        current_task().sleep(60)
        after_sleep.append(True)  # never reached

    completed = []
    m.task_completed.connect(lambda *a: completed.append(a))
    uid = m.add_task(sleeper, group="g")
    assert started.wait(10)
    with qtbot.waitSignal(m.task_cancelled, timeout=5000) as blocker:
        m.stop_task(uid)
    assert blocker.args == [uid, "g"]
    assert m.task_state(uid) is TaskState.CANCELLED
    assert after_sleep == [] and completed == []


def test_raise_if_cancelled_and_cancelled_flag(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started, go_on = threading.Event(), threading.Event()
    seen = []

    def worker():
        ctx = current_task()
        seen.append(ctx.cancelled)
        started.set()
        go_on.wait(10)
        seen.append(ctx.cancelled)
        ctx.raise_if_cancelled()

    h = m.submit(worker)
    assert started.wait(10)
    assert h.cancel() is True
    assert m.task_state(h.uid) is TaskState.CANCELLING
    go_on.set()
    wait_all(qtbot, [h])
    assert seen == [False, True]
    assert h.cancelled()
    with pytest.raises(TaskCancelled):
        h.result()
    assert h.cancel() is False


def test_a_task_that_ignores_the_stop_still_ends_cancelled(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started, go_on = threading.Event(), threading.Event()

    def stubborn():
        started.set()
        go_on.wait(10)
        return "ignored"

    h = m.submit(stubborn)
    assert started.wait(10)
    h.cancel()
    go_on.set()
    wait_all(qtbot, [h])
    assert m.task_state(h.uid) is TaskState.CANCELLED


def test_progress_is_coalesced_and_the_final_value_comes_before_completion(qtbot, make_manager):
    m = make_manager(start_processing=True)
    m.progress_interval = 0.04
    log = []
    m.task_progress.connect(lambda uid, g, f, msg: log.append(("progress", f, msg)))
    m.task_completed.connect(lambda uid, g, r: log.append(("completed",)))

    def flood():
        ctx = current_task()
        for i in range(1, 200_001):
            ctx.report_progress(i, 200_000, "working" if i < 200_000 else "done")

    with qtbot.waitSignal(m.task_completed, timeout=60000):
        m.add_task(flood)
    info = m.info(1)
    progress = [e for e in log if e[0] == "progress"]
    assert log[-1] == ("completed",)
    assert log[-2] == ("progress", 1.0, "done")
    assert 1 <= len(progress) <= info.runtime * 25 + 2


def test_progress_fraction_and_validation(qtbot, make_manager):
    m = make_manager(start_processing=True)
    errors = []

    def reporter():
        ctx = current_task()
        ctx.report_progress(0.25, message="a quarter")
        for bad in (1.5, -0.1, "x"):
            try:
                ctx.report_progress(bad)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        try:
            ctx.report_progress(1, 0)
        except ValueError as exc:
            errors.append(str(exc))

    h = m.submit(reporter)
    wait_all(qtbot, [h])
    assert errors == [
        "progress must be a fraction between 0 and 1, got 1.5",
        "progress must be a fraction between 0 and 1, got -0.1",
        "progress must be a fraction between 0 and 1, got 'x'",
        "total must be a positive finite number, got 0",
    ]
    info = h.info()
    assert (info.progress, info.message) == (0.25, "a quarter")


def test_status_and_latest_wins_settings_mailbox(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started, posted = threading.Event(), threading.Event()
    seen = []

    def configurable():
        ctx = current_task()
        seen.append(ctx.update_settings())  # nothing posted yet
        ctx.status = "waiting for settings"
        started.set()
        posted.wait(10)
        seen.append((ctx.update_settings(), ctx.settings))
        seen.append(ctx.update_settings())  # already adopted
        ctx.status = "done"

    uid = m.add_task(configurable)
    assert started.wait(10)
    assert m.info(uid).status == "waiting for settings"
    m.set_settings(uid, {"gain": 1})
    m.set_settings(uid, {"gain": 2})  # replaces the first: latest wins
    posted.set()
    wait_all(qtbot, [m.handle(uid)])
    assert seen == [False, (True, {"gain": 2}), False]
    assert m.info(uid).status == "done"


def test_a_task_that_cancels_itself_cancels_its_dependents(qtbot, make_manager):
    m = make_manager(start_processing=True)

    def gives_up():
        raise TaskCancelled("nothing to do")

    a = m.add_task(gives_up)
    b = m.add_task(print, upstream_task_ids=[a])
    qtbot.waitUntil(lambda: m.task_state(b) is TaskState.CANCELLED, timeout=10000)
    assert m.task_state(a) is TaskState.CANCELLED
