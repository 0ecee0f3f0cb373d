"""What a task costs the garbage collector: the objects it must traverse.

A flood of queued tasks survives into the oldest generation, and every full
collection walks what is there; each tracked object a pending task adds is
walked again by each of those collections (issue 14: "records of atomic values").
"""

from __future__ import annotations

import gc

from bgtasks import TaskState
from bgtasks.core import TASK_ADDED, TASK_COMPLETED, TASK_STATE, Scheduler


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


def test_a_watched_task_in_a_plain_group_is_still_one_object_for_the_collector() -> None:
    # A monitor watches added and state events: a flood queues one added and
    # one queued event per task before the owner takes them.  They carry the
    # uid, the group and the state's value, not the record, so the collector
    # untracks them (24,000 of them, holding the record, made a gen-1
    # collection take 7-14 ms in a flood under a TaskMonitor).
    s = Scheduler(1, lambda n: None, lambda: None)
    s.watch([TASK_ADDED, TASK_STATE])
    s.start()
    s.pause()  # (started once: tasks are queued, not only pending)
    try:
        per_task = _tracked_per_task(s, 2000, group=7)
        assert 0.99 <= per_task <= 1.02, per_task
        events = s.take_events()
        assert {e[0] for e in events} == {TASK_ADDED, TASK_STATE}
        assert {(e[0], e[2]) for e in events} == {(TASK_ADDED, 7), (TASK_STATE, 7)}
        assert {e[3] for e in events if e[0] == TASK_STATE} == {TaskState.QUEUED.value}
    finally:
        s.close()


def test_a_completed_task_waiting_for_delivery_adds_no_tracked_object() -> None:
    # Completed events wait in the outbox until the owner takes them (10,000
    # of them in a flood under a monitor); each held the record, so the
    # collector traversed them all at every gen-1 collection.  They carry the
    # uid, the group and the result now: with an atomic result, untracked.
    s = Scheduler(1, lambda n: None, lambda: None)
    for i in range(2000):
        s.add(trivial, task_args=(i,))
    s.start()
    gc.collect()
    before = len(gc.get_objects())
    task = s.claim()
    while task is not None:  # as a worker does
        task = s.finish(task, True, task.args[0])  # type: ignore[index]
    gc.collect()
    added = len(gc.get_objects()) - before
    try:
        assert added <= 20, added
        events = [e for e in s.take_events() if e[0] == TASK_COMPLETED]
        assert [e[3] for e in events] == list(range(2000))
    finally:
        s.close()


class _Payload:
    """A value whose death a weak reference tells."""


def _forget_one_failed_task(hold_record: bool) -> tuple[object, object]:
    """A task fails with a payload in its error, is delivered and forgotten (keep_finished=0);
    returns weak references to the payload and, when ``hold_record``, the record itself."""
    import weakref

    from bgtasks.core import run_worker

    s = Scheduler(1, lambda n: None, lambda: None, keep_finished=0)
    box = [_Payload()]
    ref = weakref.ref(box[0])

    def fail() -> None:
        raise ValueError(box.pop())  # the error is all that holds the payload now

    uid = s.add(fail)
    record = s._tasks[uid] if hold_record else None
    s.start()
    run_worker(s)
    assert s.state(uid) is TaskState.FAILED and ref() is not None  # its error holds it
    while s.take_events():
        pass
    s.take_events()  # the delivered batch is released: the record may be forgotten now
    s.add(trivial, task_args=(0,))  # ... which the next end does
    run_worker(s)
    while s.take_events():
        pass
    s.close()
    return ref, record


def test_a_forgotten_record_nobody_holds_takes_its_extras_with_it() -> None:
    ref, _ = _forget_one_failed_task(hold_record=False)
    gc.collect()
    assert ref() is None


def test_a_forgotten_record_still_held_elsewhere_lets_go_of_its_extras() -> None:
    # Held by someone (here the test): its error, handles, settings... go at once.
    ref, record = _forget_one_failed_task(hold_record=True)
    gc.collect()
    assert ref() is None
    assert record is not None and vars(record) == {}


def test_taking_from_a_backlog_copies_no_more_than_it_takes() -> None:
    # A flood leaves tens of thousands of events in the outbox; the owner takes
    # them TAKE_LIMIT at a time.  Each take used to copy the rest into a new
    # list: a young container of up to 86,000 items, which every young
    # collection then walked (gen-1 collections of 1.5-2.2 ms in a monitor
    # flood).  The backlog stays one list, shortened in place.
    from bgtasks.core._fields import TAKE_LIMIT

    s = Scheduler(1, lambda n: None, lambda: None)
    s.watch([TASK_ADDED])
    s.pause()
    try:
        for i in range(3 * TAKE_LIMIT + 10):
            s.add(trivial, task_args=(i,))
        outbox = s._outbox
        gc.collect()
        seen: list[int] = []
        while batch := s.take_events():
            assert len(batch) <= TAKE_LIMIT
            big = [o for o in gc.get_objects(0) if isinstance(o, list) and len(o) > TAKE_LIMIT]
            assert all(o is outbox or o is seen for o in big), [len(o) for o in big]
            seen.extend(e[1] for e in batch)
        assert seen == sorted(seen) and len(seen) == 3 * TAKE_LIMIT + 10  # in order, all
        assert s._outbox is outbox and outbox == []
    finally:
        s.close()
