"""Task keys: dedupe of shared work, cancelling requesters, the result cache."""

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


def test_key_dedupe_attaches_and_cancel_needs_every_requester(qtbot, make_manager):
    m = make_manager(start_processing=True)
    gate = threading.Event()
    runs = []

    def load(path):
        runs.append(path)
        gate.wait(10)
        return f"pixels of {path}"

    hs = [m.options(key="a.png").submit(load, "a.png") for _ in range(5)]
    assert len({h.uid for h in hs}) == 5
    hs[0].cancel()
    hs[1].cancel()
    gate.set()
    wait_all(qtbot, hs)
    assert runs == ["a.png"]
    assert [h.cancelled() for h in hs] == [True, True, False, False, False]
    assert [h.result() for h in hs[2:]] == ["pixels of a.png"] * 3


def test_cancelling_every_requester_cancels_the_shared_work(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=1)  # one worker: see the end below
    started = threading.Event()
    stopped = []

    def load():
        started.set()
        try:
            current_task().sleep(60)
        except TaskCancelled:
            stopped.append(True)
            raise

    hs = [m.options(key="k").submit(load) for _ in range(3)]
    assert started.wait(10)
    for h in hs:
        h.cancel()
    wait_all(qtbot, hs)
    qtbot.waitUntil(lambda: bool(stopped), timeout=10000)
    # The one worker runs this only after it recorded the shared work's end.
    assert m.submit(lambda: "after").result(timeout=10) == "after"
    # The ended work is no longer the key's: a new request runs afresh (one
    # still attached to the cancelled work would end cancelled at once).
    again = m.options(key="k").submit(lambda: "fresh")
    assert again.result(timeout=10) == "fresh"


def test_key_cache_answers_repeats_and_never_caches_failures(qtbot, make_manager):
    m = make_manager(start_processing=True)
    m.cache_size = 2
    runs = []

    def compute(x):
        runs.append(x)
        if x < 0:
            raise ValueError("negative")
        return x * 10

    assert m.options(key=1).submit(compute, 1).result(timeout=10) == 10
    assert m.options(key=1).submit(compute, 1).result(timeout=10) == 10
    assert runs == [1]
    for _ in range(2):
        assert isinstance(m.options(key=-1).submit(compute, -1).exception(timeout=10), ValueError)
    assert runs == [1, -1, -1]
    m.options(key=2).submit(compute, 2).result(timeout=10)
    m.options(key=3).submit(compute, 3).result(timeout=10)  # evicts key 1 (LRU, size 2)
    m.options(key=1).submit(compute, 1).result(timeout=10)
    assert runs == [1, -1, -1, 2, 3, 1]


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


class _ClashingKey:
    """Every instance hashes alike, and comparing two of them raises."""

    def __hash__(self):
        return 1

    def __eq__(self, other):
        if isinstance(other, _ClashingKey) and other is not self:
            raise RuntimeError("cannot compare keys")
        return other is self


def test_a_key_whose_comparison_raises_is_refused_with_nothing_registered(make_manager):
    """The key was looked up after the request was registered: the refused
    call left a task that could never run (pending for ever)."""
    m = make_manager()
    first = m.options(key=_ClashingKey()).submit(int)
    before = [(t.uid, t.state) for t in m.tasks()]
    with pytest.raises(RuntimeError, match="^cannot compare keys$"):
        m.options(key=_ClashingKey()).submit(int)
    assert [(t.uid, t.state) for t in m.tasks()] == before == [(first.uid, TaskState.PENDING)]
    m.cache_size = 4  # the result cache is looked up first, by the same key
    with pytest.raises(RuntimeError, match="^cannot compare keys$"):
        m.options(key=_ClashingKey()).submit(int)
    assert [(t.uid, t.state) for t in m.tasks()] == before
