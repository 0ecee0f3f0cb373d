"""TaskHandle from submit(): results, errors, done callbacks, awaiting on QtAsyncio, shut-down."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from bgtasks import (
    TaskCancelled,
    TaskHandle,
    UpstreamFailed,
)


def test_submit_result_exception_and_done_callback_on_the_manager_thread(qtbot, make_manager):
    m = make_manager(start_processing=True)
    ok = m.submit(lambda a, b=0: a + b, 2, b=3)
    bad = m.submit(lambda: 1 / 0)
    calls = []
    ok.add_done_callback(lambda h: calls.append((h, QThread.currentThread())))
    assert ok.result(timeout=10) == 5
    assert ok.exception() is None
    assert isinstance(bad.exception(timeout=10), ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        bad.result()
    qtbot.waitUntil(lambda: bool(calls), timeout=10000)
    assert calls == [(ok, QThread.currentThread())]
    late = []
    ok.add_done_callback(late.append)  # already done: called at once, on this thread
    assert late == [ok]


def test_result_timeout_and_handle_for_add_task(qtbot, make_manager):
    m = make_manager()  # paused: nothing runs
    uid = m.add_task(lambda: 7)
    h = m.handle(uid)
    assert isinstance(h, TaskHandle) and not h.done()
    with pytest.raises(TimeoutError, match=f"^task {uid} did not end within 0.01 s$"):
        h.result(timeout=0.01)
    m.start_processing()
    assert h.result(timeout=10) == 7


def test_downstream_of_a_failure_has_upstream_failed(qtbot, make_manager):
    m = make_manager(start_processing=False)
    a = m.submit(lambda: 1 / 0)
    b = m.options(upstream_task_ids=[a.uid]).submit(lambda: 2)
    m.start_processing()
    exc = b.exception(timeout=10)
    assert isinstance(exc, UpstreamFailed)
    assert str(exc) == f"task {b.uid} did not run: upstream task {a.uid} failed: division by zero"


def test_done_callback_errors_are_logged_and_do_not_break_delivery(qtbot, make_manager, caplog):
    m = make_manager(start_processing=True)
    h1 = m.submit(lambda: 1)
    h1.add_done_callback(lambda h: 1 / 0)
    got = []
    h1.add_done_callback(got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert "a done-callback raised" in caplog.text


def test_await_handles_on_qtasyncio():
    """In a coroutine on PySide6's QtAsyncio loop: results, errors, and cancelling the awaiter."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import asyncio, os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication, QThread
        import PySide6.QtAsyncio as QtAsyncio
        from bgtasks import BackgroundTaskManager, TaskCancelled, current_task

        app = QCoreApplication([])
        m = BackgroundTaskManager(start_processing=True)

        async def wait_for(h):
            return await h

        def until_ended(h):  # in a thread: blocks until h ends (TimeoutError after 10 s)
            try:
                h.exception(10)
            except TaskCancelled:
                pass

        async def main():
            print(await m.submit(lambda: 6 * 7), QThread.currentThread() is app.thread())
            try:
                await m.submit(lambda: 1 / 0)
            except ZeroDivisionError as exc:
                print("raised", exc)
            h = m.submit(lambda: current_task().sleep(60))
            waiter = asyncio.ensure_future(wait_for(h))
            await asyncio.sleep(0)  # the waiter starts awaiting the handle
            waiter.cancel()
            try:
                await waiter
            except asyncio.CancelledError:
                print("awaiter cancelled")
            await asyncio.to_thread(until_ended, h)
            print("task cancelled", h.cancelled())
            m.shut_down()

        QtAsyncio.run(main(), keep_running=False)
        """
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "42 True",
        "raised division by zero",
        "awaiter cancelled",
        "task cancelled True",
    ]


def test_handles_of_unfinished_tasks_resolve_at_shut_down(qtbot):
    from bgtasks import BackgroundTaskManager

    m = BackgroundTaskManager()  # paused: the task stays queued
    h = m.submit(lambda: "never")
    m.shut_down(timeout=1)
    with pytest.raises(TaskCancelled):
        h.result(timeout=5)
    assert h.cancelled()


def test_a_handle_of_a_task_still_running_at_shut_down_is_cancelled(make_manager):
    m = make_manager(start_processing=True)
    started, release = threading.Event(), threading.Event()

    def stubborn():
        started.set()
        release.wait(10)  # ignores the stop

    h = m.submit(stubborn)
    assert started.wait(10)
    m.shut_down(timeout=0.05)
    assert h.done() and h.cancelled()
    with pytest.raises(TaskCancelled, match=rf"^task {h.uid} was cancelled$"):
        h.result(timeout=1)
    release.set()


def test_the_manager_implements_what_a_handle_needs_of_its_owner(make_manager):
    # TaskHandle(owner) depends only on its owner's protocol (core/_handle.py,
    # HandleOwner); the manager implements every method of it, same parameters.
    import inspect
    import typing

    protocol = typing.get_type_hints(TaskHandle.__init__)["owner"]
    names = [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
    assert sorted(names) == sorted(
        ["task_state", "info", "stop_handle", "handle_will_block", "add_handle_callback"]
    )
    m = make_manager()
    for name in names:
        wanted = list(inspect.signature(getattr(protocol, name)).parameters)[1:]
        assert list(inspect.signature(getattr(m, name)).parameters) == wanted, name


@pytest.mark.parametrize("method", ["result", "exception"])
def test_wait_timeouts_nan_and_wrong_types_are_refused_inf_waits(qtbot, make_manager, method):
    """``result(timeout=nan)`` said the task "did not end within nan s", and
    ``timeout=inf`` raised a bare ``OverflowError`` from the lock."""
    m = make_manager(max_threads=1)
    gate = threading.Event()
    handle = m.submit(gate.wait, 10)
    wait = getattr(handle, method)
    for bad in (float("nan"), "1", True):
        with pytest.raises(
            ValueError, match=f"^timeout must be a number of seconds or None, got {bad!r}$"
        ):
            wait(timeout=bad)
    with pytest.raises(TimeoutError, match=f"^task {handle.uid} did not end within -1 s$"):
        wait(timeout=-1)  # as concurrent.futures: a negative timeout does not wait
    m.start_processing()
    gate.set()
    outcome = wait(timeout=float("inf"))  # no limit, as None
    assert outcome is (True if method == "result" else None)
