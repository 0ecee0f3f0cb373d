"""Task control: context, states and signals, handles, scheduling options, graph export."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from PySide6.QtCore import QObject, QThread

from bgtasks import (
    TaskCancelled,
    TaskHandle,
    TaskState,
    UpstreamFailed,
    current_task,
)


def wait_all(qtbot, handles, timeout=10000):
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=timeout)


# ---------------------------------------------------------------- the task context


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


# ---------------------------------------------------------------- states and signals


def test_state_changes_and_lifecycle_signals_in_order(qtbot, make_manager):
    m = make_manager()
    log = []
    m.task_added.connect(lambda uid, g: log.append(("added", uid)))
    m.task_started.connect(lambda uid, g: log.append(("started", uid)))
    m.task_state_changed.connect(lambda uid, g, s: log.append((s.name, uid)))
    m.task_completed.connect(lambda uid, g, r: log.append(("completed", uid)))
    a = m.add_task(lambda: {"x": 1})
    b = m.add_task(lambda x: x, upstream_task_ids=[a])
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()
    assert [e for e in log if e[1] == a] == [
        ("added", a), ("QUEUED", a), ("RUNNING", a), ("started", a), ("COMPLETED", a), ("completed", a),
    ]  # fmt: skip
    assert [e for e in log if e[1] == b] == [
        ("added", b), ("QUEUED", b), ("RUNNING", b), ("started", b), ("COMPLETED", b), ("completed", b),
    ]  # fmt: skip
    threads = set()
    m.task_state_changed.connect(lambda *a: threads.add(QThread.currentThread()))
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        m.add_task(print)
    assert threads == {QThread.currentThread()}


def test_optional_events_cost_nothing_when_nobody_listens(make_manager):
    m = make_manager()
    assert m._scheduler._watched == frozenset()
    slot = lambda uid, g: None  # noqa: E731
    m.task_started.connect(slot)
    assert m._scheduler._watched == frozenset({4})
    m.task_started.disconnect(slot)
    assert m._scheduler._watched == frozenset()


def test_info_is_a_frozen_snapshot(qtbot, make_manager):
    m = make_manager(start_processing=True)

    def bad():
        raise ValueError("nope")

    h = m.submit(bad, name="the bad one", group="g", priority=3)
    wait_all(qtbot, [h])
    info = m.info(h.uid)
    assert (info.uid, info.name, info.group, info.state, info.priority) == (
        h.uid, "the bad one", "g", TaskState.FAILED, 3,
    )  # fmt: skip
    assert info.error == "nope" and "ValueError: nope" in info.traceback
    assert info.created <= info.started <= info.ended
    assert info.runtime == pytest.approx(info.ended - info.started)
    assert info.attempts == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.state = TaskState.COMPLETED  # type: ignore[misc]


def test_registry_queries_and_removal(qtbot, make_manager):
    m = make_manager()
    removed = []
    m.task_removed.connect(lambda uid, g: removed.append(uid))
    a = [m.add_task(print, group="a") for _ in range(3)]
    b = [m.add_task(print, group="b") for _ in range(2)]
    m.stop_task(b[0])
    assert [i.uid for i in m.tasks(group="a")] == a
    assert [i.uid for i in m.tasks(state=TaskState.CANCELLED)] == [b[0]]
    counts = m.state_counts()
    assert counts[TaskState.QUEUED] == 4 and counts[TaskState.CANCELLED] == 1
    with qtbot.waitSignals([m.task_group_finished] * 2, timeout=10000):
        m.start_processing()
    with qtbot.waitSignal(m.task_removed, timeout=10000):
        assert m.clear_finished() == 5
    qtbot.waitUntil(lambda: len(removed) == 5, timeout=10000)
    assert sorted(removed) == sorted(a + b)
    assert m.tasks() == []


# ---------------------------------------------------------------- handles


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
    b = m.submit(lambda: 2, upstream_task_ids=[a.uid])
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
        from bgtasks import BackgroundTaskManager, current_task

        app = QCoreApplication([])
        m = BackgroundTaskManager(start_processing=True)

        async def wait_for(h):
            return await h

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
            await asyncio.to_thread(h._done.wait, 10)
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


# ---------------------------------------------------------------- scheduling options


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


def test_retries_with_backoff_only_for_chosen_exceptions(qtbot, make_manager):
    m = make_manager(start_processing=True)
    attempts = []

    def flaky():
        attempts.append(threading.get_ident())
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "third time"

    h = m.submit(flaky, retries=3, retry_on=ConnectionError, backoff=0.01)
    assert h.result(timeout=10) == "third time"
    assert len(attempts) == 3 and h.info().attempts == 3

    def wrong():
        raise KeyError("not retried")

    h2 = m.submit(wrong, retries=3, retry_on=ConnectionError, backoff=0.01)
    assert isinstance(h2.exception(timeout=10), KeyError)
    assert h2.info().attempts == 1

    def always():
        raise ConnectionError("down")

    h3 = m.submit(always, retries=2, retry_on=(ConnectionError,), backoff=0.001)
    assert isinstance(h3.exception(timeout=10), ConnectionError)
    assert h3.info().attempts == 3


def test_timeout_stops_the_task_and_fails_it_with_timeout_error(qtbot, make_manager):
    m = make_manager(start_processing=True)
    failed = []
    m.task_failed.connect(lambda uid, g, msg, tb: failed.append(msg))
    h = m.submit(lambda: current_task().sleep(60), timeout=0.05)
    exc = h.exception(timeout=10)
    assert isinstance(exc, TimeoutError)
    assert str(exc) == f"task {h.uid} timed out after 0.05 s"
    qtbot.waitUntil(lambda: bool(failed), timeout=10000)
    assert failed == [f"task {h.uid} timed out after 0.05 s"]


def test_retry_reruns_a_failed_task_and_its_failed_upstream(qtbot, make_manager):
    m = make_manager(start_processing=True)
    fail = [True]

    def up():
        if fail[0]:
            raise OSError("disk not ready")
        return {"data": 1}

    a = m.submit(up)
    b = m.submit(lambda data: data + 1, upstream_task_ids=[a.uid])
    wait_all(qtbot, [a, b])
    assert m.task_state(b.uid) is TaskState.FAILED
    fail[0] = False
    completed = []
    m.task_completed.connect(lambda uid, g, r: completed.append((uid, r)))
    m.retry(b.uid)
    qtbot.waitUntil(lambda: len(completed) == 2, timeout=10000)
    assert completed == [(a.uid, {"data": 1}), (b.uid, 2)]
    with pytest.raises(
        ValueError,
        match=f"task {b.uid} is COMPLETED: only failed or cancelled tasks can be retried",
    ):
        m.retry(b.uid)


def test_key_dedupe_attaches_and_cancel_needs_every_requester(qtbot, make_manager):
    m = make_manager(start_processing=True)
    gate = threading.Event()
    runs = []

    def load(path):
        runs.append(path)
        gate.wait(10)
        return f"pixels of {path}"

    hs = [m.submit(load, "a.png", key="a.png") for _ in range(5)]
    assert len({h.uid for h in hs}) == 5
    hs[0].cancel()
    hs[1].cancel()
    gate.set()
    wait_all(qtbot, hs)
    assert runs == ["a.png"]
    assert [h.cancelled() for h in hs] == [True, True, False, False, False]
    assert [h.result() for h in hs[2:]] == ["pixels of a.png"] * 3


def test_cancelling_every_requester_cancels_the_shared_work(qtbot, make_manager):
    m = make_manager(start_processing=True)
    started = threading.Event()
    stopped = []

    def load():
        started.set()
        try:
            current_task().sleep(60)
        except TaskCancelled:
            stopped.append(True)
            raise

    hs = [m.submit(load, key="k") for _ in range(3)]
    assert started.wait(10)
    for h in hs:
        h.cancel()
    wait_all(qtbot, hs)
    qtbot.waitUntil(lambda: bool(stopped), timeout=10000)
    assert m._scheduler.counts()["keys"] == 0


def test_key_cache_answers_repeats_and_never_caches_failures(qtbot, make_manager):
    m = make_manager(start_processing=True)
    m.cache_size = 2
    runs = []

    def compute(x):
        runs.append(x)
        if x < 0:
            raise ValueError("negative")
        return x * 10

    assert m.submit(compute, 1, key=1).result(timeout=10) == 10
    assert m.submit(compute, 1, key=1).result(timeout=10) == 10
    assert runs == [1]
    for _ in range(2):
        assert isinstance(m.submit(compute, -1, key=-1).exception(timeout=10), ValueError)
    assert runs == [1, -1, -1]
    m.submit(compute, 2, key=2).result(timeout=10)
    m.submit(compute, 3, key=3).result(timeout=10)  # evicts key 1 (LRU, size 2)
    m.submit(compute, 1, key=1).result(timeout=10)
    assert runs == [1, -1, -1, 2, 3, 1]


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

    hs = [m.submit(io, i, resources={"disk": 1}, priority=-i) for i in range(12)]
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

    h1 = m.submit(running, owner=owner)
    h2 = m.submit(lambda: "queued", owner=owner)
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


# ---------------------------------------------------------------- graph export


def test_to_dot_nodes_labels_colours_and_edges(make_manager):
    m = make_manager()
    a = m.add_task(print, name='load "x"')
    b = m.add_task(print, upstream_task_ids=[a])
    m.stop_task(b, stop_upstream=False)
    dot = m.to_dot()
    assert dot.startswith("digraph tasks {")
    assert f't{a} [label="{a}: load \\"x\\"\\nQUEUED", fillcolor=lightblue];' in dot
    assert f't{b} [label="{b}: print\\nCANCELLED", fillcolor=gray];' in dot
    assert f"t{a} -> t{b};" in dot


def test_to_svg_names_the_missing_program(make_manager, monkeypatch):
    m = make_manager()
    m.add_task(print)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        RuntimeError, match=r"^to_svg\(\) needs the Graphviz program 'dot', which is not on PATH"
    ):
        m.to_svg()


def test_to_svg_with_graphviz(make_manager):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' is not installed")
    m = make_manager()
    m.add_task(print)
    svg = m.to_svg()
    assert "<svg" in svg and "QUEUED" in svg


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m.stop_task(99),
            KeyError,
            "task 99 is unknown: stop_task takes a uid of this manager",
        ),
        (lambda m: m.set_priority(99, 1), KeyError, "task 99 is unknown: set_priority takes a uid"),
        (lambda m: m.info(99), KeyError, "task 99 is unknown: info takes a uid"),
        (lambda m: m.retry(99), KeyError, "task 99 is unknown: retry takes a uid"),
        (
            lambda m: m.submit(print, retries=-1),
            ValueError,
            "retries must be a non-negative integer, got -1",
        ),
        (
            lambda m: m.submit(print, timeout=0),
            ValueError,
            "timeout must be a positive number of seconds, got 0",
        ),
        (lambda m: m.submit(print, key=[1]), TypeError, r"key must be hashable, got \[1\]"),
        (
            lambda m: m.submit(print, resources={"gpu": 1}),
            ValueError,
            r"resource 'gpu' is unknown: set_resource_limit\('gpu', n\) first",
        ),
        (
            lambda m: m.submit(print, retry_on=3),
            TypeError,
            "retry_on must be exception types, got 3",
        ),
        (
            lambda m: m.submit(print, on_upstream_failure="explode"),
            ValueError,
            "on_upstream_failure must be 'fail' or 'cancel', got 'explode'",
        ),
        (lambda m: m.submit(print, owner="me"), TypeError, "owner must be a QObject, got 'me'"),
        (lambda m: m.add_task(print, colour="red"), TypeError, "unknown task option 'colour'"),
        (
            lambda m: m.set_resource_limit("disk", 0),
            ValueError,
            "resource limit must be a positive integer, got 0",
        ),
        (
            lambda m: setattr(m, "cache_size", -1),
            ValueError,
            "cache_size must be a non-negative integer, got -1",
        ),
    ],
)
def test_bad_input_names_the_argument_and_registers_nothing(make_manager, call, error, message):
    m = make_manager()
    with pytest.raises(error, match=message):
        call(m)
    assert m.add_task(print) == 1
    assert [i.uid for i in m.tasks()] == [1]


def test_manual_retry_gets_its_automatic_retries_again(qtbot, make_manager):
    m = make_manager(start_processing=True)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError(f"attempt {len(calls)}")
        return "fourth"

    h = m.submit(flaky, retries=1, retry_on=ConnectionError, backoff=0.001)
    assert str(h.exception(timeout=10)) == "attempt 2"
    m.retry(h.uid)
    qtbot.waitUntil(lambda: m.task_state(h.uid) is TaskState.COMPLETED, timeout=10000)
    assert m.info(h.uid).attempts == 4
    assert len(calls) == 4


def test_set_priority_of_a_keyed_request_moves_its_shared_work(qtbot, make_manager):
    m = make_manager(max_threads=1)
    order = []
    a = m.add_task(order.append, task_args=["a"], key="a")
    b = m.add_task(order.append, task_args=["b"], key="b")
    m.set_priority(b, 10)
    with qtbot.waitSignals([m.task_group_finished], timeout=10000):
        m.start_processing()
    qtbot.waitUntil(lambda: len(order) == 2, timeout=10000)
    assert order == ["b", "a"]
    assert m.info(a).state is TaskState.COMPLETED


def test_a_queued_task_starts_while_another_runs_a_long_task(qtbot, make_manager):
    """Regression: a busy worker was counted as free, so the queued task waited for it."""
    m = make_manager(start_processing=True, max_threads=4)
    started = threading.Event()
    long = m.submit(lambda: (started.set(), current_task().sleep(30)))
    assert started.wait(10)
    quick = m.submit(lambda: "not blocked")
    assert quick.result(timeout=10) == "not blocked"
    long.cancel()


def test_retry_a_chain_whose_head_was_stopped_while_running(qtbot, make_manager):
    """Found by the demo: the retried head was cancelled at once, its dependents hung."""
    m = make_manager(start_processing=True)
    started = threading.Event()
    first = [True]

    def head():
        if first[0]:
            first[0] = False
            started.set()
            current_task().sleep(60)
        return {"n": 1}

    a = m.add_task(head)
    b = m.add_task(lambda n: {"n": n + 1}, upstream_task_ids=[a])
    c = m.add_task(lambda n: n + 1, upstream_task_ids=[b])
    assert started.wait(10)
    m.stop_task(a, stop_downstream=False)
    qtbot.waitUntil(lambda: m.task_state(a) is TaskState.CANCELLED, timeout=10000)
    assert m.task_state(c) is TaskState.CANCELLED
    results = {}
    m.task_completed.connect(lambda uid, g, r: results.__setitem__(uid, r))
    m.retry(c)
    qtbot.waitUntil(lambda: c in results, timeout=10000)
    assert results == {a: {"n": 1}, b: {"n": 2}, c: 3}


def test_a_task_that_cancels_itself_cancels_its_dependents(qtbot, make_manager):
    m = make_manager(start_processing=True)

    def gives_up():
        raise TaskCancelled("nothing to do")

    a = m.add_task(gives_up)
    b = m.add_task(print, upstream_task_ids=[a])
    qtbot.waitUntil(lambda: m.task_state(b) is TaskState.CANCELLED, timeout=10000)
    assert m.task_state(a) is TaskState.CANCELLED


def test_infos_of_many_tasks_at_once(make_manager):
    m = make_manager()
    uids = [m.add_task(print, name=f"t{i}") for i in range(5)]
    got = m.infos([uids[3], uids[0], 999])
    assert list(got) == [uids[3], uids[0]]
    assert got[uids[3]].name == "t3" and got[uids[0]].state is TaskState.QUEUED


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
