"""Automatic retries with backoff and manual retry() of failed tasks and chains."""

from __future__ import annotations

import threading

import pytest

from bgtasks import (
    TaskState,
    current_task,
)


def wait_all(qtbot, handles, timeout=10000):
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=timeout)


def test_retries_with_backoff_only_for_chosen_exceptions(qtbot, make_manager):
    m = make_manager(start_processing=True)
    attempts = []

    def flaky():
        attempts.append(threading.get_ident())
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "third time"

    h = m.options(retries=3, retry_on=ConnectionError, backoff=0.01).submit(flaky)
    assert h.result(timeout=10) == "third time"
    assert len(attempts) == 3 and h.info().attempts == 3

    def wrong():
        raise KeyError("not retried")

    h2 = m.options(retries=3, retry_on=ConnectionError, backoff=0.01).submit(wrong)
    assert isinstance(h2.exception(timeout=10), KeyError)
    assert h2.info().attempts == 1

    def always():
        raise ConnectionError("down")

    h3 = m.options(retries=2, retry_on=(ConnectionError,), backoff=0.001).submit(always)
    assert isinstance(h3.exception(timeout=10), ConnectionError)
    assert h3.info().attempts == 3


def test_retry_reruns_a_failed_task_and_its_failed_upstream(qtbot, make_manager):
    m = make_manager(start_processing=True)
    fail = [True]

    def up():
        if fail[0]:
            raise OSError("disk not ready")
        return {"data": 1}

    a = m.submit(up)
    b = m.options(upstream_task_ids=[a.uid]).submit(lambda data: data + 1)
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


def test_manual_retry_gets_its_automatic_retries_again(qtbot, make_manager):
    m = make_manager(start_processing=True)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError(f"attempt {len(calls)}")
        return "fourth"

    h = m.options(retries=1, retry_on=ConnectionError, backoff=0.001).submit(flaky)
    assert str(h.exception(timeout=10)) == "attempt 2"
    m.retry(h.uid)
    qtbot.waitUntil(lambda: m.task_state(h.uid) is TaskState.COMPLETED, timeout=10000)
    assert m.info(h.uid).attempts == 4
    assert len(calls) == 4


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
