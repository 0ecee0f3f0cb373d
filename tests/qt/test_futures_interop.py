"""TaskHandle is a concurrent.futures.Future: wait/as_completed (on any thread, the
manager's included), asyncio on QtAsyncio and qasync, and manager.executor()."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading
import typing

import pytest
from PySide6.QtCore import QThread

from bgtasks import ManagerExecutor, TaskCancelled, TaskHandle, current_task


def test_a_handle_is_a_generic_future(make_manager):
    m = make_manager()
    h = m.submit(lambda: 1)
    assert isinstance(h, concurrent.futures.Future)
    alias = TaskHandle[int]
    assert typing.get_origin(alias) is TaskHandle and typing.get_args(alias) == (int,)
    assert not h.done() and not h.cancelled()


def test_only_the_manager_resolves_a_handle(make_manager):
    m = make_manager()
    h = m.submit(lambda: 1)
    for call, name in [
        (lambda: h.set_result(2), "set_result()"),
        (lambda: h.set_exception(ValueError()), "set_exception()"),
        (h.set_running_or_notify_cancel, "set_running_or_notify_cancel()"),
    ]:
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value) == (
            f"{name} on the handle of task {h.uid}: only its manager resolves a "
            "TaskHandle; to stop the task call cancel()"
        )
    assert not h.done()
    m.start_processing()
    assert h.result(timeout=10) == 1


def test_wait_and_as_completed_on_the_managers_own_thread(make_manager):
    # The test thread is the manager's: it blocks in wait() and delivers nothing
    # meanwhile, so the handles must be resolved by the workers themselves.
    m = make_manager(start_processing=True, max_threads=2)
    assert QThread.currentThread() is m.thread()
    release = threading.Event()
    fast = m.submit(lambda: "fast")
    slow = m.submit(lambda: release.wait(10) and "slow")
    done, not_done = concurrent.futures.wait(
        [fast, slow], timeout=10, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert done == {fast} and not_done == {slow}
    bad = m.submit(lambda: 1 / 0)
    done, not_done = concurrent.futures.wait(
        [slow, bad], timeout=10, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert done == {bad} and not_done == {slow}
    release.set()
    order = [h.result() for h in concurrent.futures.as_completed([slow], timeout=10)]
    assert order == ["slow"]
    done, not_done = concurrent.futures.wait([fast, slow, bad], timeout=10)
    assert done == {fast, slow, bad} and not not_done


def test_as_completed_from_another_thread_in_the_order_tasks_end(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=3)
    gates = [threading.Event() for _ in range(3)]
    handles = [m.submit(lambda i=i: gates[i].wait(10) and i) for i in range(3)]
    seen: list[int] = []
    finished = threading.Event()

    def consume() -> None:
        for h in concurrent.futures.as_completed(handles, timeout=10):
            seen.append(h.result())
            if len(seen) < 3:
                gates[[2, 0, 1][len(seen)]].set()  # the next to end
        finished.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    gates[2].set()
    assert finished.wait(10)
    consumer.join()
    assert seen == [2, 0, 1]


def test_wait_sees_a_cancelled_task_as_done(make_manager):
    m = make_manager()  # paused: the task stays queued
    h = m.submit(lambda: "never")
    other = m.submit(lambda: "later")
    assert h.cancel() is True
    done, not_done = concurrent.futures.wait(
        [h, other], timeout=10, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert done == {h} and not_done == {other}
    assert h.cancelled() and h.done()
    with pytest.raises(TaskCancelled, match=rf"^task {h.uid} was cancelled$"):
        h.result()
    assert h.cancel() is False


def test_executor_view_submit_map_and_shutdown(make_manager):
    m = make_manager(start_processing=True)
    ex = m.executor()
    assert isinstance(ex, concurrent.futures.Executor) and isinstance(ex, ManagerExecutor)
    h = ex.submit(lambda a, b: (a * b, current_task() is not None), 6, b=7)
    assert isinstance(h, TaskHandle)
    assert h.result(timeout=10) == (42, True)
    assert list(ex.map(pow, [2, 3, 4], [2, 2, 2], timeout=10)) == [4, 9, 16]
    ex.shutdown()
    with pytest.raises(RuntimeError) as info:
        ex.submit(print)
    assert str(info.value) == (
        f"cannot submit {print!r}: this executor view was shut down "
        "(the manager was not; manager.executor() gives a new view)"
    )
    ex.shutdown()  # idempotent
    # the manager and its other views go on
    assert not m.is_shut_down
    assert m.submit(lambda: "still").result(timeout=10) == "still"
    with m.executor() as again:
        assert again.submit(lambda: 5).result(timeout=10) == 5


def test_executor_shutdown_waits_for_its_tasks_on_the_managers_thread(make_manager):
    m = make_manager(start_processing=True)
    started, release = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        release.wait(10)
        return "waited for"

    ex = m.executor()
    h = ex.submit(work)
    releaser = threading.Thread(target=lambda: started.wait(10) and release.set())
    releaser.start()
    ex.shutdown(wait=True)  # on the manager's thread: must not deadlock
    releaser.join()
    assert h.done() and h.result() == "waited for"


def test_executor_shutdown_cancels_only_its_tasks_not_started(make_manager):
    m = make_manager(start_processing=True, max_threads=1)
    started, release = threading.Event(), threading.Event()

    def blocker() -> str:
        started.set()
        release.wait(10)
        return "ran"

    ex = m.executor()
    running = ex.submit(blocker)
    assert started.wait(10)
    queued = [ex.submit(lambda i=i: i) for i in range(3)]
    outsider = m.submit(lambda: "not the view's")  # queued too, behind them
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(q.cancelled() for q in queued)
    assert not running.done() and running.running()
    release.set()
    assert running.result(timeout=10) == "ran"
    assert outsider.result(timeout=10) == "not the view's"


ASYNC_SCRIPT = """
import asyncio, logging, os, sys, threading
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication, QThread
from bgtasks import BackgroundTaskManager, TaskCancelled, current_task

errors = []
class Collect(logging.Handler):
    def emit(self, record):
        errors.append(record)
logging.getLogger("bgtasks").addHandler(Collect(logging.ERROR))

app = QCoreApplication([])
m = BackgroundTaskManager(start_processing=True)
main_thread = threading.get_ident()

def until_ended(h):  # in a thread: blocks until h ends
    try:
        h.exception(10)
    except TaskCancelled:
        pass

def where(a, b):
    return a + b, threading.get_ident() != main_thread, current_task() is not None

async def main():
    loop = asyncio.get_running_loop()
    print("await", await m.submit(lambda: 6 * 7), QThread.currentThread() is app.thread())
    print("wrap_future", await asyncio.wrap_future(m.submit(lambda: "wrapped")))
    try:
        await m.submit(lambda: 1 / 0)
    except ZeroDivisionError as exc:
        print("raised", exc)
    print("run_in_executor", await loop.run_in_executor(m.executor(), where, 2, 3))
    h = m.submit(lambda: current_task().sleep(60))
    wrapped = asyncio.wrap_future(h)
    await asyncio.sleep(0)
    wrapped.cancel()
    await asyncio.to_thread(until_ended, h)
    print("wrapper cancelled: task cancelled", h.cancelled())
    h = m.submit(lambda: current_task().sleep(60))
    async def wait_for(h):
        return await h
    waiter = asyncio.ensure_future(wait_for(h))
    await asyncio.sleep(0)
    waiter.cancel()
    try:
        await waiter
    except asyncio.CancelledError:
        pass
    await asyncio.to_thread(until_ended, h)
    print("awaiter cancelled: task cancelled", h.cancelled())
    print("errors logged", len(errors))
    m.shut_down()

LOOP
"""

LOOPS = {
    "qtasyncio": """
import PySide6.QtAsyncio as QtAsyncio
QtAsyncio.run(main(), keep_running=False)
""",
    "qasync": """
import qasync
loop = qasync.QEventLoop(app)
loop.run_until_complete(main())
loop.close()
""",
}


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_asyncio_on_the_managers_thread(kind):
    if kind == "qasync":
        pytest.importorskip("qasync")
    code = textwrap.dedent(ASYNC_SCRIPT).replace("LOOP", LOOPS[kind])
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "await 42 True",
        "wrap_future wrapped",
        "raised division by zero",
        "run_in_executor (5, True, True)",
        "wrapper cancelled: task cancelled True",
        "awaiter cancelled: task cancelled True",
        "errors logged 0",
    ], proc.stderr
