"""Randomized, seeded invariant tests: every promise of the README, in every corner.

Random DAGs of hundreds (fast set) to thousands (``-m slow``) of tasks mixing
priorities, groups, failures, stops from the UI and from workers, keys,
automatic retries, ``retry()``, handle cancels, adds from workers, resources,
timeouts, ``on_upstream_failure="cancel"``, ``exclusive``, pause/resume,
priority changes and dict results (plain and subclasses), played on

1. the Qt-free ``Scheduler`` with thread workers (no QApplication), and
2. the full ``BackgroundTaskManager`` (pytest-qt; waits with ``waitUntil``).

Each run is recorded and checked by ``tests/_invariants.check_run`` (see its
docstring for the list).  A failure prints the seed and the tasks involved:
``make_scenario(seed, n)`` rebuilds the same scenario (the interleaving of
threads is not reproducible; the scenario is).  The last tests plant faults
in the scheduler and show the checker catches them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _invariants import (
    LIMITS,
    Driver,
    Log,
    Run,
    Scenario,
    Spec,
    check_run,
    dump_threads,
    final_state,
    make_fn,
    make_scenario,
    report,
    run_core,
    task_options,
)

from bgtasks.core import (
    GROUP_FINISHED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    Scheduler,
)

FAST_CORE_SEEDS = list(range(1, 9))
FAST_MANAGER_SEEDS = [101, 102, 103]
SLOW_CORE_SEEDS = list(range(1000, 1040))
SLOW_MANAGER_SEEDS = list(range(2000, 2012))


def _assert_ok(run: Run) -> None:
    problems = check_run(run)
    assert not problems, report(run, problems)


@pytest.fixture(autouse=True)
def _slow_only_when_asked(request):
    """``@pytest.mark.slow`` tests here run only when ``-m`` selects them (``pytest -m slow``)."""
    if request.node.get_closest_marker("slow") and "slow" not in (
        request.config.getoption("markexpr") or ""
    ):
        pytest.skip("soak seeds: run with -m slow")


# ---------------------------------------------------------------- level 1: the Qt-free core


@pytest.mark.parametrize("seed", FAST_CORE_SEEDS)
def test_core_random_dag(seed):
    _assert_ok(run_core(make_scenario(seed, n=500), timeout=30))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_CORE_SEEDS)
def test_core_random_dag_soak(seed):
    _assert_ok(run_core(make_scenario(seed, n=3000), timeout=120))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7001, 7002])
def test_core_long_chain_stop_head_and_retry_tail(seed):
    """A chain of 1500 in the mix (deeper than the recursion limit): head stopped, tail retried."""
    _assert_ok(run_core(make_scenario(seed, n=2500, chain=1500), timeout=120))


# ---------------------------------------------------------------- level 2: the manager


class ManagerLevel:
    """The full BackgroundTaskManager; the test's thread (Qt's) is the UI thread."""

    name = "manager"

    def __init__(self, scenario: Scenario, log: Log, manager: Any) -> None:
        self.scenario = scenario
        self.log = log
        self.m = manager
        manager.keep_finished = 100_000
        for name, limit in LIMITS.items():
            manager.set_resource_limit(name, limit)

    def connect(self, driver: Driver) -> None:
        m = self.m
        m.task_added.connect(lambda uid, group: driver.on_event("added", uid, group))
        m.task_state_changed.connect(lambda uid, group, st: driver.on_event("state", uid, st))
        m.task_completed.connect(
            lambda uid, group, result: driver.on_event("completed", uid, group, result)
        )
        m.task_failed.connect(
            lambda uid, group, msg, tb: driver.on_event("failed", uid, group, msg)
        )
        m.task_cancelled.connect(lambda uid, group: driver.on_event("cancelled", uid, group))
        m.task_group_finished.connect(lambda group: driver.on_event("group", group))

    def add(self, spec: Spec, thread: str) -> int | None:
        log, m = self.log, self.m
        ups = [log.uid_of[j] for j in spec.ups if j in log.uid_of]
        if len(ups) != len(spec.ups):
            log.note(f"scenario error: {spec.describe()} added before its upstream tasks")
        begin = log.seq()
        options = task_options(spec)
        if spec.exclusive:
            options["exclusive"] = True
        handle = None
        try:
            if spec.kind == "pass":
                uid = m.add_pass_through_task(spec.priority, spec.group, ups, spec.own, **options)
                if spec.handle and thread == "ui":  # before the UI thread can deliver its end
                    handle = m.handle(uid)
            elif spec.handle:
                handle = m.submit(
                    make_fn(spec, self, log), priority=spec.priority, group=spec.group,
                    upstream_task_ids=ups, **options, **spec.own,
                )  # fmt: skip
                uid = handle.uid
            else:
                uid = m.add_task(make_fn(spec, self, log), spec.priority, spec.group, ups,
                                 None, spec.own, **options)  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            log.note(f"add of {spec.describe()} ({thread}) raised {exc!r}")
            return None
        log.added(spec, uid, ups, begin, handle, thread)
        return uid

    def stop(self, uid: int, up: bool, down: bool) -> None:
        self.m.stop_task(uid, up, down)

    def stop_group(self, group: Any, up: bool, down: bool) -> None:
        self.m.stop_task_group(group, up, down)

    def stop_all(self) -> None:
        self.m.stop_all_tasks()

    def retry(self, uid: int) -> None:
        self.m.retry(uid)

    def set_priority(self, uid: int, p: float) -> None:
        self.m.set_priority(uid, p)

    def set_group_priority(self, group: Any, p: float) -> None:
        self.m.set_group_priority(group, p)

    def pause(self) -> None:
        self.m.pause_processing()

    def resume(self) -> None:
        self.m.start_processing()

    def live(self) -> int:
        counts = self.m.state_counts()
        return sum(n for state, n in counts.items() if not state.is_terminal)


def run_manager(qtbot, make_manager, scenario: Scenario, timeout: float = 30.0) -> Run:
    """Play ``scenario`` on a BackgroundTaskManager; returns the recorded run."""
    log = Log(scenario.max_workers, LIMITS)
    manager = make_manager(max_threads=scenario.max_workers)
    level = ManagerLevel(scenario, log, manager)
    driver = Driver(scenario, level, log)
    level.connect(driver)
    run = Run(scenario, log, "manager")
    for i in scenario.ui_order[: scenario.initial]:
        level.add(scenario.specs[i], thread="ui")
    manager.start_processing()
    deadline = time.monotonic() + timeout

    def settled() -> bool:
        driver.poll()
        return driver.done() and level.live() == 0

    try:
        qtbot.waitUntil(settled, timeout=int(timeout * 1000))
        # A barrier: events are delivered in order, so once this group's end is
        # delivered every earlier event was.
        sentinel = ("sentinel", scenario.seed)
        run.sentinel_group = sentinel
        manager.add_task(lambda: None, group=sentinel)
        left = max(1.0, deadline - time.monotonic())
        qtbot.waitUntil(
            lambda: any(r[1] == "group" and r[2] == sentinel for r in log.stream),
            timeout=int(left * 1000),
        )
    except TimeoutError:
        stacks = dump_threads()
        log.note(
            f"hang: not drained within {timeout} s; state_counts={manager.state_counts()}, "
            f"ops left={len(driver.ops)}\n{stacks}"
        )
    run.final = final_state(manager._scheduler)
    return run


@pytest.mark.parametrize("seed", FAST_MANAGER_SEEDS)
def test_manager_random_dag(qtbot, make_manager, seed):
    _assert_ok(run_manager(qtbot, make_manager, make_scenario(seed, n=300)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_MANAGER_SEEDS)
def test_manager_random_dag_soak(qtbot, make_manager, seed):
    _assert_ok(run_manager(qtbot, make_manager, make_scenario(seed, n=2000), timeout=120))


# ---------------------------------------------------------------- the checker catches planted faults


def _small(specs: list[Spec], max_workers: int = 2, ops=None) -> Scenario:
    return Scenario(0, specs, len(specs), [s.i for s in specs], list(ops or []), max_workers)


def test_checker_passes_a_clean_small_run():
    specs = [Spec(0, result="dict"), Spec(1, ups=[0], own={"o1": 1, "shared": "own"}, group="g")]
    run = run_core(_small(specs), timeout=10)
    assert check_run(run) == []
    assert run.log.starts[1]["kwargs"] == {"r0": 0, "shared": "s0", "o1": 1}


def test_checker_reports_an_event_delivered_twice(monkeypatch):
    original = Scheduler.take_events
    planted = []

    def take_events(self):
        events = original(self)
        for event in events:
            if event[0] == TASK_COMPLETED and not planted:
                planted.append(event)
                return events + [event]
        return events

    monkeypatch.setattr(Scheduler, "take_events", take_events)
    run = run_core(_small([Spec(i, group="g") for i in range(5)]), timeout=10)
    problems = check_run(run)
    assert planted
    assert any("ended twice" in p for p in problems), problems


def test_checker_reports_a_downstream_task_queued_before_its_upstream_completed(monkeypatch):
    original = Scheduler._wire_upstream

    def wire_upstream(self, task):
        original(self, task)
        if task.state.name == "PENDING" and task.waiting:  # planted: don't wait
            task.waiting = 0
            self._queue(task)

    monkeypatch.setattr(Scheduler, "_wire_upstream", wire_upstream)
    specs = [Spec(0, behaviour="slow", slow_steps=30, result="dict"), Spec(1, ups=[0])]
    run = run_core(_small(specs), timeout=10)
    problems = check_run(run)
    assert any("started while its upstream task" in p for p in problems), problems
    assert any("completed after it" in p for p in problems), problems
    assert any("lack key 'r0'" in p for p in problems), problems


def test_checker_reports_a_group_finished_twice(monkeypatch):
    original = Scheduler.take_events

    def take_events(self):
        events = original(self)
        return events + [e for e in events if e[0] == GROUP_FINISHED]

    monkeypatch.setattr(Scheduler, "take_events", take_events)
    run = run_core(_small([Spec(0, group="g"), Spec(1, group="g")]), timeout=10)
    assert any("task_group_finished('g') not due" in p for p in check_run(run))


def test_checker_reports_a_lost_end_and_a_missing_group_finish(monkeypatch):
    original = Scheduler.take_events

    def take_events(self):
        return [e for e in original(self) if e[0] != TASK_CANCELLED]

    monkeypatch.setattr(Scheduler, "take_events", take_events)
    specs = [Spec(0, group="g"), Spec(1, group="g", behaviour="slow", slow_steps=200)]
    run = run_core(_small(specs, ops=[(1, ("stop", 1, False, False))]), timeout=10)
    problems = check_run(run)
    assert any(p.startswith("task 2 never ended") for p in problems), problems
    # the group's finish came while the task it never heard the end of was live
    assert any("task_group_finished('g') not due: live tasks [2]" in p for p in problems), problems


def test_checker_reports_more_functions_running_than_max_threads(monkeypatch):
    original = Scheduler._spawn_count

    def spawn_count(self):
        n = original(self)
        if n:  # planted: one worker too many
            self._active += 1
            return n + 1
        return n

    monkeypatch.setattr(Scheduler, "_spawn_count", spawn_count)
    specs = [Spec(i, behaviour="slow", slow_steps=20) for i in range(4)]
    run = run_core(_small(specs, max_workers=1), timeout=10)
    assert any("ran at once, max_threads=1" in p for p in check_run(run))


def test_checker_reports_an_own_kwarg_winning_over_an_upstream_dict(monkeypatch):
    original = Scheduler._complete

    def complete(self, task, value, *rest):
        saved = [(c, dict(c.kwargs)) for c in task.downstream
                 if c.state.name == "PENDING" and c.kwargs is not None]  # fmt: skip
        original(self, task, value, *rest)
        for child, before in saved:  # planted: the task's own "shared" wins (lock still held)
            if child.kwargs is not None and "shared" in before:
                child.kwargs["shared"] = before["shared"]

    monkeypatch.setattr(Scheduler, "_complete", complete)
    specs = [Spec(0, behaviour="slow", slow_steps=5, result="dict"),
             Spec(1, ups=[0], own={"shared": "own"})]  # fmt: skip
    run = run_core(_small(specs), timeout=10)
    problems = check_run(run)
    assert any("shared='own', want the value of upstream task 1's dict" in p for p in problems), (
        problems
    )


def test_checker_reports_a_handle_that_disagrees(monkeypatch):
    import bgtasks.core as core

    original = core.Scheduler._resolve_one

    def resolve_one(self, handle, task):
        if task.state.name == "COMPLETED" and not handle.done():
            handle._resolve(task.state, "something else", None)  # planted
            return
        original(self, handle, task)

    monkeypatch.setattr(core.Scheduler, "_resolve_one", resolve_one)
    run = run_core(_small([Spec(0, result="int", handle=True)]), timeout=10)
    assert any("handle of task 1 says ('completed', 'something else')" in p for p in check_run(run))


def test_checker_reports_a_hang_with_the_threads_stacks(monkeypatch):
    monkeypatch.setattr(Scheduler, "finish", lambda self, task, *a, **k: None)  # planted: lost
    run = run_core(_small([Spec(0)]), timeout=0.3)
    problems = check_run(run)
    assert any(p.startswith("hang: not drained within 0.3 s") for p in problems), problems


def test_checker_reports_an_exclusive_task_cancelling_its_own_upstream(monkeypatch):
    def cancel_older(self, task):  # planted: the seed's behaviour, upstream included
        members = self._groups.get(task.group, {})
        for t in [
            t for t in members.values() if t is not task and t.state.name in ("PENDING", "QUEUED")
        ]:
            self._cancel(t)

    monkeypatch.setattr(Scheduler, "_cancel_older", cancel_older)
    specs = [Spec(0, group="g"), Spec(1, group="g", ups=[0], exclusive=True)]
    scn = Scenario(0, specs, 2, [0, 1], [], 1)
    run = run_core(scn, timeout=10)
    assert any("cancelled its own upstream task 1" in p for p in check_run(run))


# ---------------------------------------------------------------- minimal reproducers the fuzzer found


def test_exclusive_does_not_cancel_its_upstream_reached_through_a_keyed_request():
    specs = [
        Spec(0, group="g", result="dict"),  # uid 1
        Spec(1, key=("k", 0), ups=[0]),  # uid 2 (its shared work: uid 3)
        Spec(2, group="g", ups=[1], exclusive=True),  # uid 4, added before start
    ]
    run = run_core(Scenario(0, specs, 3, [0, 1, 2], [], 1), timeout=10)
    _assert_ok(run)
    assert [r[1] for r in run.log.stream if r[1] in ("completed", "cancelled")] == ["completed"] * 3
