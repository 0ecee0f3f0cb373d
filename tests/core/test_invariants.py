"""Randomized, seeded invariant tests: every promise of the README, in every corner.

Random DAGs of hundreds (fast set) to thousands (``-m slow``) of tasks mixing
priorities, groups, failures, stops from the UI and from workers, keys,
automatic retries, ``retry()``, handle cancels, adds from workers, resources,
timeouts, ``on_upstream_failure="cancel"``, ``exclusive``, pause/resume,
priority changes and dict results (plain and subclasses), played on
the Qt-free ``Scheduler`` with thread workers (no QApplication); the same scenarios
on the full ``BackgroundTaskManager`` are in ``tests/qt/test_invariants_manager.py``.

Each run is recorded and checked by ``tests/core/_invariants.check_run`` (see its
docstring for the list).  A failure prints the seed and the tasks involved:
``make_scenario(seed, n)`` rebuilds the same scenario (the interleaving of
threads is not reproducible; the scenario is).  The last tests plant faults
in the scheduler and show the checker catches them.
"""

from __future__ import annotations

import pytest
from _invariants import (
    Run,
    Scenario,
    Spec,
    check_run,
    make_scenario,
    report,
    run_core,
)

from bgtasks.core import (
    GROUP_FINISHED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    Scheduler,
)

FAST_CORE_SEEDS = list(range(1, 9))
SLOW_CORE_SEEDS = list(range(1000, 1040))


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
