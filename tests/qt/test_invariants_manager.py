"""Randomized, seeded invariant tests on the full ``BackgroundTaskManager`` (pytest-qt;
waits with ``waitUntil``): the scenarios of ``tests/core/test_invariants.py`` (random DAGs
and the checker, ``tests/core/_invariants.py``) played on the Qt layer."""

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
    task_options,
)

FAST_MANAGER_SEEDS = [101, 102, 103]
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
                handle = m.options(
                    priority=spec.priority, group=spec.group, upstream_task_ids=ups, **options
                ).submit(make_fn(spec, self, log), **spec.own)
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
    # The one private read of this folder, on purpose: the core's checker
    # (tests/core/_invariants.py) looks at the scheduler's own bookkeeping
    # (parked, ready, resources in use, live groups) after the Qt layer drove
    # it; no public API shows those, the core's included.
    run.final = final_state(manager._scheduler)
    return run


@pytest.mark.parametrize("seed", FAST_MANAGER_SEEDS)
def test_manager_random_dag(qtbot, make_manager, seed):
    _assert_ok(run_manager(qtbot, make_manager, make_scenario(seed, n=300)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_MANAGER_SEEDS)
def test_manager_random_dag_soak(qtbot, make_manager, seed):
    _assert_ok(run_manager(qtbot, make_manager, make_scenario(seed, n=2000), timeout=120))
