"""The scheduling core, without Qt: tasks are run synchronously by run_worker."""

from __future__ import annotations

import ast
import pathlib
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgtasks import IllegalTransition, TaskState
from bgtasks.core import (
    GROUP_FINISHED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    Scheduler,
    run_worker,
)


class Harness:
    """A scheduler whose workers run in the test's thread, on demand."""

    def __init__(self, max_workers: int = 1) -> None:
        self.slots = 0  # workers the scheduler asked for and the test has not run yet
        self.wakes = 0
        self.s = Scheduler(max_workers, self._spawn, self._wake)

    def _spawn(self, n: int) -> None:
        self.slots += n

    def _wake(self) -> None:
        self.wakes += 1

    def run(self) -> None:
        while self.slots:
            self.slots -= 1
            run_worker(self.s)

    def events(self, cancelled: bool = False) -> list[tuple]:
        """The seed's view of the outbox (stops are silent), or with ``cancelled`` too."""
        out = []
        events = []
        # As the manager's drain: take until empty (a take marks the batch
        # before it delivered).
        while batch := self.s.take_events():
            events.extend(batch)
        for event in events:
            kind, item = event[0], event[1] if len(event) > 1 else None
            if kind == TASK_COMPLETED:  # (kind, uid, group, result)
                out.append(("completed", item, event[3]))
            elif kind == TASK_FAILED:
                out.append(("failed", item.uid, item.message))
            elif kind == GROUP_FINISHED:
                out.append(("group", item))
            elif kind == TASK_CANCELLED and cancelled:
                out.append(("cancelled", item.uid))
        return out


@pytest.fixture
def h() -> Harness:
    return Harness()


def recorder(log: list, name: object):
    def task(**kwargs):
        log.append(name)
        return kwargs or None

    return task


def boom(**kwargs):
    raise ValueError("boom")


# ---------------------------------------------------------------- design rules


def test_core_modules_do_not_import_qt():
    pkg = pathlib.Path(__file__).parents[2] / "bgtasks"
    names = [f"core/{p.name}" for p in (pkg / "core").glob("*.py")]
    assert "core/_scheduler.py" in names
    for name in names:
        tree = ast.parse((pkg / name).read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any("PySide" in m or "Qt" in m for m in imported), (name, imported)


# ---------------------------------------------------------------- priority


def test_priority_higher_first_fifo_among_equals_none_is_zero(h):
    log: list = []
    for name, prio in [("a", None), ("b", 5), ("c", 0), ("d", 5), ("e", -1), ("f", 0.5)]:
        h.s.add(recorder(log, name), priority=prio)
    h.s.start()
    h.run()
    assert log == ["b", "d", "f", "a", "c", "e"]


def test_events_come_in_finish_order(h):
    uids = [h.s.add(lambda i=i: i, priority=i) for i in range(5)]
    h.s.start()
    h.run()
    assert h.events() == [
        ("completed", u, i) for u, i in reversed(list(zip(uids, range(5), strict=True)))
    ] + [("group", None)]


# ---------------------------------------------------------------- upstream results


def test_dict_results_merge_into_downstream_kwargs_upstream_wins(h):
    got = {}
    a = h.s.add(lambda: {"x": 1, "shared": "from a"})
    b = h.s.add(lambda: "not a dict")
    c = h.s.add(lambda: {})
    d = h.s.add(
        lambda **kw: got.update(kw),
        upstream_task_ids=[a, b, c],
        task_kwargs={"shared": "own", "own": 2},
    )
    h.s.start()
    h.run()
    assert got == {"x": 1, "shared": "from a", "own": 2}
    assert [e[1] for e in h.events() if e[0] == "completed"] == [a, b, c, d]


def test_task_kwargs_are_copied_not_mutated(h):
    own = {"k": 1}
    a = h.s.add(lambda: {"k": 2})
    h.s.add(lambda **kw: kw, upstream_task_ids=[a], task_kwargs=own)
    h.s.start()
    h.run()
    assert own == {"k": 1}


def test_pass_through_returns_merged_kwargs(h):
    ups = [h.s.add(lambda i=i: {f"k{i}": i}) for i in range(3)]
    p = h.s.add(None, upstream_task_ids=ups, task_kwargs={"base": True, "k0": "overridden"})
    h.s.start()
    h.run()
    result = {e[1]: e[2] for e in h.events() if e[0] == "completed"}[p]
    assert result == {"base": True, "k0": 0, "k1": 1, "k2": 2}


def test_task_args_and_kwargs_reach_the_callable(h):
    h.s.add(lambda a, b, c=0: (a, b, c), task_args=[1, 2], task_kwargs={"c": 3})
    h.s.add(lambda *a: a, task_args=(4,))
    h.s.start()
    h.run()
    assert [e[2] for e in h.events() if e[0] == "completed"] == [(1, 2, 3), (4,)]


def test_downstream_waits_for_all_upstream(h):
    log: list = []
    a = h.s.add(recorder(log, "a"), priority=0)
    b = h.s.add(recorder(log, "b"), priority=-5)
    h.s.add(recorder(log, "c"), priority=100, upstream_task_ids=[a, b])
    h.s.add(recorder(log, "d"), priority=1)
    h.s.start()
    h.run()
    assert log == ["d", "a", "b", "c"]


# ---------------------------------------------------------------- failure


def test_failure_fails_every_downstream_with_original_message_and_never_runs_them(h):
    log: list = []
    up = h.s.add(recorder(log, "up"))
    bad = h.s.add(boom, upstream_task_ids=[up], group="g")
    sibling = h.s.add(recorder(log, "sibling"), upstream_task_ids=[up])
    child = h.s.add(recorder(log, "child"), upstream_task_ids=[bad], group="g2")
    grandchild = h.s.add(recorder(log, "grandchild"), upstream_task_ids=[child, sibling])
    h.s.start()
    h.run()
    ev = h.events()
    failed = [e for e in ev if e[0] == "failed"]
    assert failed == [
        ("failed", bad, "boom"),
        ("failed", child, "boom"),
        ("failed", grandchild, "boom"),
    ]
    assert log == ["up", "sibling"]
    assert ("group", "g") in ev and ("group", "g2") in ev
    for uid in (bad, child, grandchild):
        assert h.s.state(uid) is TaskState.FAILED


def test_failed_downstream_gets_the_same_traceback():
    h = Harness()
    bad = h.s.add(boom)
    child = h.s.add(lambda: None, upstream_task_ids=[bad])
    h.s.start()
    h.run()
    tasks = {e[1].uid: e[1] for e in h.s.take_events() if e[0] == TASK_FAILED}
    assert "ValueError: boom" in tasks[bad].traceback
    assert tasks[child].traceback == tasks[bad].traceback


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit(), Exception()])
def test_anything_raised_fails_the_task_and_the_worker_goes_on(h, exc):
    def raiser():
        raise exc

    bad = h.s.add(raiser)
    good = h.s.add(lambda: "still here")
    h.s.start()
    h.run()
    ev = h.events()
    assert ev[0] == ("failed", bad, str(exc) or type(exc).__name__)
    assert ev[1] == ("completed", good, "still here")


# ---------------------------------------------------------------- stop


def test_stopped_queued_task_never_runs_and_emits_nothing(h):
    log: list = []
    a = h.s.add(recorder(log, "a"))
    h.s.add(recorder(log, "b"))
    h.s.stop(a)
    h.s.start()
    h.run()
    assert log == ["b"]
    assert [e for e in h.events() if e[0] != "group"] == [("completed", 2, None)]
    assert h.s.state(a) is TaskState.CANCELLED


def test_regression_default_priority_stop_still_runs(h):
    """ShotGrid: with the default priority a stopped pending task still ran and reported."""
    log: list = []
    up = h.s.add(recorder(log, "up"))
    down = h.s.add(recorder(log, "down"), upstream_task_ids=[up])
    h.s.stop(down, stop_upstream=False)
    h.s.start()
    h.run()
    assert log == ["up"]
    assert h.events() == [("completed", up, None), ("group", None)]


def test_regression_downstream_of_failed_task_never_runs(h):
    """ShotGrid: downstream tasks of a failed task reported failure, then ran anyway."""
    log: list = []
    bad = h.s.add(boom)
    h.s.add(recorder(log, "down"), upstream_task_ids=[bad])
    h.s.start()
    h.run()
    assert log == []
    assert [e[0] for e in h.events()] == ["failed", "failed", "group"]


def test_stop_running_task_drops_its_result():
    h = Harness()
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return {"x": 1}

    a = h.s.add(slow, group="g")
    down = h.s.add(lambda **kw: kw, upstream_task_ids=[a], group="g")
    h.s.start()
    worker = threading.Thread(target=h.run)
    worker.start()
    assert started.wait(10)
    h.s.stop(a)
    assert h.s.state(a) is TaskState.CANCELLING
    assert h.s.state(down) is TaskState.CANCELLED
    release.set()
    worker.join(10)
    assert h.s.state(a) is TaskState.CANCELLED
    assert h.events() == []


def test_stop_walks_upstream_and_downstream_by_default(h):
    a = h.s.add(lambda: None)
    b = h.s.add(lambda: None, upstream_task_ids=[a])
    c = h.s.add(lambda: None, upstream_task_ids=[b])
    other = h.s.add(lambda: None)
    h.s.stop(b)
    assert [h.s.state(u) for u in (a, b, c, other)] == [
        TaskState.CANCELLED,
        TaskState.CANCELLED,
        TaskState.CANCELLED,
        TaskState.QUEUED,
    ]


def test_stop_without_upstream_keeps_upstream(h):
    a = h.s.add(lambda: None)
    b = h.s.add(lambda: None, upstream_task_ids=[a])
    h.s.stop(b, stop_upstream=False, stop_downstream=False)
    assert h.s.state(a) is TaskState.QUEUED
    assert h.s.state(b) is TaskState.CANCELLED


def test_dependents_of_a_stopped_task_are_stopped_even_without_stop_downstream(h):
    a = h.s.add(lambda: None)
    b = h.s.add(lambda: None, upstream_task_ids=[a])
    h.s.stop(a, stop_downstream=False)
    assert h.s.state(b) is TaskState.CANCELLED
    h.s.start()
    h.run()
    assert h.events() == []


def test_stop_task_group_and_stop_all(h):
    g1 = [h.s.add(lambda: 1, group="one") for _ in range(3)]
    g2 = [h.s.add(lambda: 2, group="two") for _ in range(2)]
    h.s.stop_group("one")
    assert {h.s.state(u) for u in g1} == {TaskState.CANCELLED}
    assert {h.s.state(u) for u in g2} == {TaskState.QUEUED}
    h.s.stop_group("never used")  # no tasks: nothing to do
    h.s.stop_all()
    assert {h.s.state(u) for u in g2} == {TaskState.CANCELLED}
    h.s.start()
    h.run()
    assert h.events() == []


def test_unknown_uid_in_stop_is_a_key_error(h):
    with pytest.raises(KeyError, match="task 7 is unknown: stop_task takes a uid of this manager"):
        h.s.stop(7)


def test_stopping_an_ended_task_is_harmless(h):
    a = h.s.add(lambda: 1)
    h.s.start()
    h.run()
    h.events()
    h.s.stop(a)
    assert h.s.state(a) is TaskState.COMPLETED


# ---------------------------------------------------------------- groups


def test_group_finished_after_its_last_task_and_only_once(h):
    h.s.add(lambda: 1, group="g")
    h.s.add(lambda: 2, group="g")
    h.s.add(lambda: 3, group="h")
    h.s.start()
    h.run()
    assert [e[0] if e[0] != "group" else e for e in h.events()] == [
        "completed",
        "completed",
        ("group", "g"),
        "completed",
        ("group", "h"),
    ]


def test_group_finished_never_because_only_stops(h):
    a = h.s.add(lambda: 1, group="g")
    h.s.add(lambda: 1, group="g")
    h.s.stop_group("g")
    h.s.stop(a)
    h.s.start()
    h.run()
    assert h.events() == []


def test_group_with_completions_finishes_when_a_stop_empties_it(h):
    a = h.s.add(lambda: 1, group="g", priority=1)
    b = h.s.add(lambda: 1, group="g")
    h.s.start()
    h.slots = 0
    task = h.s.claim()  # the worker takes a
    assert task.uid == a
    h.s.finish(task, True, 1)  # and b: it now runs b next
    h.s.stop(b)
    assert h.events() == [("completed", a, 1)]
    h.s.finish(h.s._tasks[b], True, 1)  # b's result is dropped
    assert h.events() == [("group", "g")]


def test_a_group_can_finish_again_after_new_tasks(h):
    h.s.start()
    h.s.add(lambda: 1, group="g")
    h.run()
    h.s.add(lambda: 1, group="g")
    h.run()
    assert [e for e in h.events() if e[0] == "group"] == [("group", "g"), ("group", "g")]


def test_none_and_ints_are_groups_too(h):
    gid = h.s.next_group_id()
    assert h.s.next_group_id() == gid + 1
    h.s.add(lambda: 1, group=gid)
    h.s.add(lambda: 1)
    h.s.start()
    h.run()
    assert [e for e in h.events() if e[0] == "group"] == [("group", gid), ("group", None)]


# ---------------------------------------------------------------- pause


def test_pause_stops_new_dispatch_only(h):
    log: list = []
    h.s.add(recorder(log, "a"))
    h.s.add(recorder(log, "b"))
    h.s.start()
    h.slots = 0
    task = h.s.claim()
    h.s.pause()
    assert h.s.finish(task, True, None) is None  # the running task reports, nothing new starts
    assert h.events() == [("completed", task.uid, None)]
    h.s.start()
    assert h.slots == 1
    h.run()
    assert [e[0] for e in h.events()] == ["completed", "group"]


def test_nothing_runs_before_start(h):
    h.s.add(lambda: 1)
    assert h.slots == 0
    h.s.start()
    assert h.slots == 1


# ---------------------------------------------------------------- upstream that already ended


def test_upstream_completed_and_delivered_counts_as_satisfied(h):
    a = h.s.add(lambda: {"x": 1})
    h.s.start()
    h.run()
    h.events()
    b = h.s.add(lambda **kw: kw, upstream_task_ids=[a])
    h.run()
    assert h.events()[0] == ("completed", b, {})  # the delivered result is not merged again


def test_upstream_completed_not_yet_delivered_still_merges(h):
    a = h.s.add(lambda: {"x": 1})
    h.s.start()
    h.run()
    b = h.s.add(lambda **kw: kw, upstream_task_ids=[a])
    h.run()
    assert h.events()[-2] == ("completed", b, {"x": 1})


def test_upstream_failed_earlier_fails_new_task_at_once(h):
    bad = h.s.add(boom)
    h.s.start()
    h.run()
    h.events()
    c = h.s.add(lambda: 1, upstream_task_ids=[bad])
    assert h.events() == [("failed", c, "boom"), ("group", None)]


def test_upstream_stopped_earlier_stops_new_task(h):
    a = h.s.add(lambda: 1)
    h.s.stop(a)
    c = h.s.add(lambda: 1, upstream_task_ids=[a])
    assert h.s.state(c) is TaskState.CANCELLED


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fn": 42}, TypeError, "cbl must be callable, got 42"),
        ({"task_args": 5}, TypeError, "task_args must be a list or tuple of arguments, got 5"),
        (
            {"task_args": "ab"},
            TypeError,
            "task_args must be a list or tuple of arguments, got 'ab'",
        ),
        (
            {"task_kwargs": [1]},
            TypeError,
            r"task_kwargs must be a mapping of names to values, got \[1\]",
        ),
        ({"task_kwargs": {1: 2}}, TypeError, "task_kwargs keys must be strings, got 1"),
        ({"group": []}, TypeError, r"group must be hashable, got \[\]"),
        ({"priority": "high"}, TypeError, "priority must be a number or None, got 'high'"),
        ({"priority": float("nan")}, TypeError, "priority must be a number or None, got nan"),
        (
            {"upstream_task_ids": 1},
            TypeError,
            "upstream_task_ids must be a list of task ids, got 1",
        ),
        (
            {"upstream_task_ids": [17]},
            ValueError,
            "upstream task 17 is unknown: upstream_task_ids must name tasks of this manager",
        ),
        (
            {"upstream_task_ids": ["1"]},
            ValueError,
            "upstream task '1' is unknown: upstream_task_ids must name tasks of this manager",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_registers_nothing(h, kwargs, error, message):
    first = h.s.add(lambda: 0)
    kwargs = {"fn": lambda: 1, **kwargs}
    with pytest.raises(error, match=f"^{message}$"):
        h.s.add(**kwargs)
    assert h.s.add(lambda: 2) == first + 1  # no uid was spent on the refused call
    h.s.start()
    h.run()
    assert [e[1] for e in h.events() if e[0] == "completed"] == [first, first + 1]


def test_max_workers_must_be_positive():
    with pytest.raises(ValueError, match="max_threads must be a positive integer, got 0"):
        Scheduler(0, print, print)


# ---------------------------------------------------------------- states


def test_illegal_transition_raises_and_changes_nothing(h):
    uid = h.s.add(lambda: 1)
    task = h.s._tasks[uid]
    with pytest.raises(
        IllegalTransition, match=f"task {uid}: illegal transition QUEUED -> COMPLETED"
    ):
        h.s._move(task, TaskState.COMPLETED)
    assert task.state is TaskState.QUEUED


def test_terminal_states():
    assert {s for s in TaskState if s.is_terminal} == {
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.CANCELLED,
    }


# ---------------------------------------------------------------- wake-ups and closing


def test_one_wake_for_many_results_until_the_outbox_is_drained(h):
    for _ in range(100):
        h.s.add(lambda: 1)
    h.s.start()
    h.run()
    assert h.wakes == 1
    assert len(h.s.take_events()) == 101
    assert h.s.take_events() == []  # re-arms
    h.s.add(lambda: 1)
    h.run()
    assert h.wakes == 2


def test_close_drops_everything_and_refuses_new_tasks(h):
    h.s.add(lambda: 1)
    h.s.start()
    h.run()
    h.s.add(lambda: 1)
    assert h.s.close() is True
    assert h.s.close() is False
    assert h.s.take_events() == []
    with pytest.raises(
        RuntimeError, match="this task manager has been shut down; it accepts no new tasks"
    ):
        h.s.add(lambda: 1)


def test_worker_count_never_exceeds_max_workers_with_real_threads():
    limit = 3
    lock = threading.Lock()
    running = peak = 0
    gate = threading.Barrier(limit, timeout=10)
    threads: list[threading.Thread] = []

    def spawn(n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=run_worker, args=(s,))
            t.start()
            threads.append(t)

    def task(i: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if i < limit:
            gate.wait()  # the first `limit` tasks prove `limit` ran at once
        with lock:
            running -= 1

    s = Scheduler(limit, spawn, lambda: None)
    for i in range(50):
        s.add(task, task_args=[i], priority=-i)
    s.start()
    while threads:
        threads.pop().join(10)
    assert peak == limit
    assert len([e for e in s.take_events() if e[0] == TASK_COMPLETED]) == 50


# ---------------------------------------------------------------- randomized DAG


@st.composite
def dags(draw):
    n = draw(st.integers(1, 25))
    tasks = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        tasks.append(
            {
                "ups": ups,
                "group": draw(st.sampled_from(["a", "b", None, 7])),
                "priority": draw(st.sampled_from([None, -1, 0, 2])),
                "fails": draw(st.booleans()) and draw(st.booleans()),
            }
        )
    # Operations interleaved with the work: claim a task, finish an in-flight one, stop one.
    ops = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("claim"), st.integers(0, 10)),
                st.tuples(st.just("finish"), st.integers(0, 10)),
                st.tuples(st.just("stop"), st.integers(0, n - 1), st.booleans(), st.booleans()),
                st.tuples(st.just("stop_group"), st.sampled_from(["a", "b", None, 7])),
            ),
            max_size=60,
        )
    )
    return tasks, ops


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_random_dag_every_task_ends_once_every_group_finishes_once(dag):
    spec, ops = dag
    slots = [0]
    s = Scheduler(3, lambda n: slots.__setitem__(0, slots[0] + n), lambda: None)
    ran: list[int] = []
    uids = []
    for i, t in enumerate(spec):
        uids.append(
            s.add(
                lambda i=i: ran.append(i) or {f"k{i}": i},
                priority=t["priority"],
                group=t["group"],
                upstream_task_ids=[uids[u] for u in t["ups"]],
            )
        )
    index = {uid: i for i, uid in enumerate(uids)}
    s.start()
    inflight = []
    events = []

    def finish(task):
        i = index[task.uid]
        # every upstream completed before a task runs
        for u in spec[i]["ups"]:
            assert s.state(uids[u]) is TaskState.COMPLETED
        task.fn()
        if spec[i]["fails"]:
            nxt = s.finish(task, False, None, ValueError(f"fail {i}"), "tb")
        else:
            nxt = s.finish(task, True, {f"k{i}": i})
        if nxt is not None:
            inflight.append(nxt)
        else:
            pass

    def claim():
        if slots[0]:
            slots[0] -= 1
            task = s.claim()
            if task is not None:
                inflight.append(task)

    for op in ops:
        if op[0] == "claim":
            claim()
        elif op[0] == "finish" and inflight:
            finish(inflight.pop(op[1] % len(inflight)))
        elif op[0] == "stop":
            s.stop(uids[op[1]], op[2], op[3])
        elif op[0] == "stop_group":
            s.stop_group(op[1])
        events.extend(s.take_events())
    while inflight or slots[0]:
        if inflight:
            finish(inflight.pop())
        else:
            claim()
        events.extend(s.take_events())
    events.extend(s.take_events())

    ended: dict[int, str] = {}
    group_events: list = []
    for kind, item, *_ in events:
        if kind == GROUP_FINISHED:
            group_events.append(item)
            continue
        uid = item if kind == TASK_COMPLETED else item.uid  # completed: (kind, uid, ...)
        assert uid not in ended, "a task ended twice"
        ended[uid] = {TASK_COMPLETED: "completed", TASK_FAILED: "failed"}.get(kind, "cancelled")
    for uid in uids:
        state = s.state(uid)
        assert state.name.lower() == ended[uid], (uid, state)
    assert len(ran) == len(set(ran)), "a task ran twice"
    # a task that failed on purpose ran; a task whose upstream failed never ran
    for uid, how in ended.items():
        i = index[uid]
        if how == "completed":
            assert i in ran
    # groups: exactly one finish per group that had a completion or failure
    reported_groups = {
        spec[index[uid]]["group"] for uid, how in ended.items() if how != "cancelled"
    }
    assert sorted(map(repr, group_events)) == sorted(map(repr, reported_groups))
    # a group's finish comes after each of its tasks' events
    position = {}
    for pos, (kind, item, *_) in enumerate(events):
        if kind == GROUP_FINISHED:
            position[repr(item)] = pos
    for pos, (kind, item, *rest) in enumerate(events):
        group = rest[0] if kind == TASK_COMPLETED else getattr(item, "group", None)
        if kind != GROUP_FINISHED and repr(group) in position:
            assert pos < position[repr(group)]
    assert s.counts()["live"] == 0


def test_regression_failure_reaching_a_task_twice_through_a_diamond(h):
    """Found by the randomized DAG test: a -> b -> d and a -> d failed d twice."""
    a = h.s.add(boom)
    b = h.s.add(lambda: 1, upstream_task_ids=[a])
    d = h.s.add(lambda: 1, upstream_task_ids=[a, b])
    h.s.start()
    h.run()
    assert [e for e in h.events() if e[0] == "failed"] == [
        ("failed", a, "boom"),
        ("failed", b, "boom"),
        ("failed", d, "boom"),
    ]


def test_state_of_unknown_uid_is_a_key_error(h):
    with pytest.raises(KeyError, match="task 3 is unknown: task_state takes a uid of this manager"):
        h.s.state(3)


def test_finished_tasks_are_kept_within_keep_finished(h):
    h.s.keep_finished = 3
    uids = [h.s.add(lambda: 1) for _ in range(6)]
    for uid in uids[:5]:
        h.s.stop(uid)
    assert len(h.s.infos()) == 6  # nothing is forgotten before its end is delivered
    h.events()
    h.s.stop(uids[5])
    assert [i.uid for i in h.s.infos()] == uids[-3:]
    with pytest.raises(
        KeyError, match="task 1 was forgotten: it finished more than keep_finished tasks ago"
    ):
        h.s.state(uids[0])
    late = h.s.add(lambda: 1, upstream_task_ids=[uids[1]])
    assert h.s.state(late) is TaskState.CANCELLED  # a forgotten cancelled upstream still cancels


def test_regression_fan_in_keeps_results_of_upstream_finished_long_ago(h):
    """bench_core found it: upstream results were forgotten after keep_finished tasks."""
    h.s.keep_finished = 100
    ups = [h.s.add(lambda i=i: {f"k{i}": i}) for i in range(1000)]
    h.s.start()
    h.run()
    fan = h.s.add(None, upstream_task_ids=ups)
    h.run()
    result = [e for e in h.events() if e[0] == "completed" and e[1] == fan][0][2]
    assert len(result) == 1000


def test_regression_downstream_of_a_forgotten_failure_fails(h):
    h.s.keep_finished = 1
    bad = h.s.add(boom)
    h.s.start()
    h.run()
    h.events()
    for _ in range(3):
        h.s.add(lambda: 1)
        h.run()
        h.events()
    late = h.s.add(lambda: 1, upstream_task_ids=[bad])
    assert h.s.state(late) is TaskState.FAILED
    assert h.events()[0] == ("failed", late, "boom")


def test_a_forgotten_completed_upstream_counts_as_satisfied(h):
    h.s.keep_finished = 0
    h.s.start()
    done = h.s.add(lambda: {"x": 1})
    h.run()
    h.events()
    h.s.add(lambda: 2)  # its end trims the registry
    h.run()
    h.events()
    with pytest.raises(KeyError, match="was forgotten"):
        h.s.state(done)
    late = h.s.add(lambda **kw: kw, upstream_task_ids=[done])
    h.run()
    assert h.events()[0] == ("completed", late, {})


def test_short_tasks_shrink_the_worker_target_and_blocked_workers_widen_it(monkeypatch):
    """Short tasks need no more threads than cores; blocked ones get every worker."""
    from bgtasks.core import _ready, _scheduler, _timers

    for module in (_ready, _timers):  # the timer thread stays out of this test
        monkeypatch.setattr(module, "WIDEN_AFTER", 600)
    monkeypatch.setattr(
        _scheduler, "SHORT_TASK", 600
    )  # every task is short, however slow the machine
    spawned = []
    s = Scheduler(8, spawned.append, lambda: None)
    s._floor = 2
    s.start()
    for _ in range(20):
        s.add(lambda: None)
    assert sum(spawned) == 8  # no history yet: the full width
    workers = [s.claim() for _ in range(8)]
    for task in workers:
        s.finish(task, True, None)  # each ran for well under SHORT_TASK
    assert s._target == 2
    assert s.counts()["workers"] <= 2
    # ready tasks, and no task finishes within WIDEN_AFTER: the workers are blocked
    with s._lock:
        s._widen_mark = s._finish_count
        s._add_timer(0, "widen", None)
    s.tick()
    assert s._target == 8
    s.close()


def test_a_take_hands_over_a_bounded_batch_in_order_and_the_owner_takes_until_none():
    """One take under the lock does a bounded amount of work (a flood of 20,000 took
    10-11 ms in one take): at most TAKE_LIMIT events; the rest, in order, next time."""
    from bgtasks.core._fields import TAKE_LIMIT

    h = Harness()
    n = 2 * TAKE_LIMIT + 5
    uids = [h.s.add(lambda i: i, task_args=(i,)) for i in range(n)]
    h.s.start()
    h.run()
    sizes, order = [], []
    while batch := h.s.take_events():
        sizes.append(len(batch))
        order += [e[1] for e in batch if e[0] == TASK_COMPLETED]
    # the completions, and the end of their group (None)
    assert sizes[:2] == [TAKE_LIMIT, TAKE_LIMIT] and sum(sizes) == n + 1 and len(sizes) == 3
    assert order == uids
    assert h.s.take_events() == []  # and it re-arms: the next event wakes the owner
    wakes = h.wakes
    h.s.add(lambda: 1)
    h.run()
    assert h.wakes == wakes + 1


def test_forgetting_after_a_flood_goes_in_bounded_steps_until_keep_finished_holds():
    """Delivery catching up with a flood leaves many finished tasks to forget: each take
    forgets at most TRIM_LIMIT, and wakes the owner again until keep_finished holds."""
    from bgtasks.core._fields import TAKE_LIMIT, TRIM_LIMIT

    h = Harness()
    h.s.configure(keep_finished=10)
    n = 3 * TAKE_LIMIT
    # Keyed requests: each is two finished tasks (the request and its shared work,
    # which has no event), so the tasks to forget outgrow what the takes hand over.
    for i in range(n):
        h.s.add(lambda i: i, task_args=(i,), opts=h.s.make_options(key=("k", i)))
    h.s.start()
    h.run()  # every end waits for its delivery: nothing forgotten yet
    assert len(h.s._finished) >= n
    wakes = h.wakes
    takes = 0
    while len(h.s._finished) > 10:
        before = len(h.s._finished)
        h.s.take_events()
        takes += 1
        assert before - len(h.s._finished) <= TRIM_LIMIT
        assert takes < 20
    assert len(h.s._finished) == 10
    assert h.wakes > wakes  # the owner was called back for the rest of the forgetting
    assert h.s.take_events() == []


def test_a_completion_forgotten_by_clear_finished_before_its_take_is_still_delivered(h):
    """clear_finished() may forget a task whose completion the owner has not
    taken yet: the event carries the uid, the group and the result, so it is
    delivered all the same, and the take that follows finds no record to mark."""
    uid = h.s.add(lambda: {"x": 1}, group="g")
    h.s.start()
    h.run()
    assert h.s.clear_finished() == 1
    events = h.events()
    assert ("completed", uid, {"x": 1}) in events
    assert ("group", "g") in events
    assert h.s.take_events() == []  # marking the batch delivered found nothing to mark
