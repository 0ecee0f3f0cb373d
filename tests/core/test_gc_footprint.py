"""What a task costs the garbage collector: the objects it must traverse.

A flood of queued tasks survives into the oldest generation, and every full
collection walks what is there; each tracked object a pending task adds is
walked again by each of those collections (issue 14: "records of atomic values").
"""

from __future__ import annotations

import gc

from bgtasks.core import Scheduler


def trivial(i: int) -> int:
    return i


def _tracked_per_task(s: Scheduler, n: int, **add: object) -> float:
    gc.collect()
    before = len(gc.get_objects())
    for i in range(n):
        s.add(trivial, task_args=(i,), **add)  # type: ignore[arg-type]
    gc.collect()
    return (len(gc.get_objects()) - before) / n


def test_a_queued_task_is_one_object_for_the_collector() -> None:
    # The task record only: its ready-heap entry is (-priority, uid), atomic
    # values the collector untracks, and its arguments tuple of ints is too.
    s = Scheduler(1, lambda n: None, lambda: None)
    s.pause()
    try:
        per_task = _tracked_per_task(s, 2000)
    finally:
        s.close()
    assert 0.99 <= per_task <= 1.02, per_task


def test_a_reprioritised_task_adds_no_tracked_heap_entry() -> None:
    s = Scheduler(1, lambda n: None, lambda: None)
    s.pause()
    try:
        uids = [s.add(trivial, task_args=(i,)) for i in range(2000)]
        gc.collect()
        before = len(gc.get_objects())
        for uid in uids:
            s.set_priority(uid, 5)
        gc.collect()
        assert len(gc.get_objects()) - before <= 20
    finally:
        s.close()
