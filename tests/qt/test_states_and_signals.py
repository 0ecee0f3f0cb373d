"""Task states, lifecycle signals, info snapshots and registry queries of the manager."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import QThread

from bgtasks import TaskState, current_task


def wait_all(qtbot, handles, timeout=10000):
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=timeout)


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


OPTIONAL_SIGNALS = (
    "task_added", "task_state_changed", "task_started", "task_status_changed", "task_removed",
)  # fmt: skip


def test_optional_events_cost_nothing_when_nobody_listens(qtbot, make_manager):
    # The scheduler records the events of the optional signals only while a
    # slot is connected to them.  Seen from outside: a task that runs, ends and
    # is forgotten while this thread delivers nothing, then slots are connected
    # and everything is delivered: the slots hear of it exactly the signals
    # that were connected while it ran.
    m = make_manager(start_processing=True)
    delivered = []
    m.task_completed.connect(lambda uid, g, r: delivered.append(uid))
    heard: list[tuple[str, int]] = []
    slots = {}
    for name in OPTIONAL_SIGNALS:
        slots[name] = lambda uid, *_, name=name: heard.append((name, uid))

    def connect(names):
        for name in names:
            getattr(m, name).connect(slots[name])

    def disconnect(names):
        for name in names:
            getattr(m, name).disconnect(slots[name])

    def run_unheard():
        """Run a task that sets a status to its end, and forget it, without delivering."""

        def task():
            current_task().status = "busy"

        handle = m.submit(task)
        handle.result(timeout=10)  # blocks this thread: nothing is delivered meanwhile
        m.clear_finished()  # forgotten: task_removed, if anyone listens
        return handle.uid

    def deliver_everything():
        last = m.submit(lambda: None)  # ends after every event recorded so far
        qtbot.waitUntil(lambda: last.uid in delivered, timeout=10000)

    def signals_heard(uid):
        return sorted({name for name, u in heard if u == uid})

    # nobody listens: nothing recorded
    first = run_unheard()
    connect(OPTIONAL_SIGNALS)
    deliver_everything()
    assert first in delivered
    assert signals_heard(first) == []
    # everything listened to: all five recorded (the test can see them)
    every = run_unheard()
    deliver_everything()
    assert signals_heard(every) == sorted(OPTIONAL_SIGNALS)
    # only task_started listened to: only it recorded
    disconnect(set(OPTIONAL_SIGNALS) - {"task_started"})
    started = run_unheard()
    connect(set(OPTIONAL_SIGNALS) - {"task_started"})
    deliver_everything()
    assert signals_heard(started) == ["task_started"]
    # the last slot disconnected: nothing recorded again
    disconnect(OPTIONAL_SIGNALS)
    last = run_unheard()
    connect(OPTIONAL_SIGNALS)
    deliver_everything()
    assert last in delivered
    assert signals_heard(last) == []


def test_info_is_a_frozen_snapshot(qtbot, make_manager):
    m = make_manager(start_processing=True)

    def bad():
        raise ValueError("nope")

    h = m.options(name="the bad one", group="g", priority=3).submit(bad)
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


def test_infos_of_many_tasks_at_once(make_manager):
    m = make_manager()
    uids = [m.add_task(print, name=f"t{i}") for i in range(5)]
    got = m.infos([uids[3], uids[0], 999])
    assert list(got) == [uids[3], uids[0]]
    assert got[uids[3]].name == "t3" and got[uids[0]].state is TaskState.QUEUED
