"""Loop tasks: the pure schedule, the loop driver on a fake clock, and loops run by a manager."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from bgtasks import TaskCancelled, TaskState, loops
from bgtasks.loops import LoopPolicy, LoopSchedule, LoopTask

# ---------------------------------------------------------------- the pure schedule


def run_schedule(policy: LoopPolicy, durations: list[float], period: float = 0.1) -> list[float]:
    """Start times of iterations lasting ``durations`` when waits are exact (no real time)."""
    schedule = LoopSchedule(period, policy, start=0.0)
    starts = [0.0]
    for duration in durations:
        start = schedule.next_start(starts[-1] + duration)
        if start is None:
            break
        starts.append(start)
    return starts


def test_schedule_on_time_keeps_the_grid_without_drift():
    schedule = LoopSchedule(0.1, LoopPolicy.IMMEDIATE, start=0.0)
    start = 0.0
    for _ in range(1000):
        # Each iteration ends 90 % into its period: on time.
        following = schedule.next_start(start + 0.09)
        assert following is not None
        start = following
    assert start == 100.0  # 1000 * 0.1; summing 0.1 a thousand times gives 99.9999999999986
    assert schedule.missed == 0


def test_immediate_starts_at_the_late_end_and_shifts_the_phase():
    # seed-semantics.md: period 0.1 s, iteration 2 takes 0.25 s -> next start 0.351.
    starts = run_schedule(LoopPolicy.IMMEDIATE, [0.01, 0.251, 0.01, 0.01])
    assert starts == pytest.approx([0.0, 0.1, 0.351, 0.451, 0.551])


def test_skip_goes_to_the_next_slot_of_the_original_grid():
    schedule = LoopSchedule(0.1, LoopPolicy.SKIP, start=0.0)
    assert schedule.next_start(0.01) == pytest.approx(0.1)
    assert schedule.next_start(0.351) == pytest.approx(0.4)  # 0.2 and 0.3 are left out
    assert schedule.missed == 2
    assert schedule.next_start(0.41) == pytest.approx(0.5)
    assert schedule.missed == 2


def test_skip_resumes_on_a_slot_the_iteration_ended_exactly_on():
    schedule = LoopSchedule(0.1, LoopPolicy.SKIP, start=0.0)
    assert schedule.next_start(0.4) == pytest.approx(0.4)
    assert schedule.missed == 3


def test_an_iteration_ending_exactly_at_the_next_start_has_not_missed_it():
    schedule = LoopSchedule(0.25, LoopPolicy.TERMINATE, start=1.0)
    assert schedule.next_start(1.25) == 1.25
    assert schedule.missed == 0


def test_terminate_ends_at_the_first_missed_start():
    assert run_schedule(LoopPolicy.TERMINATE, [0.01, 0.251, 0.01]) == pytest.approx([0.0, 0.1])
    schedule = LoopSchedule(0.1, LoopPolicy.TERMINATE, start=0.0)
    assert schedule.next_start(0.2001) is None
    assert schedule.missed == 1


@pytest.mark.parametrize(
    ("period", "error", "message"),
    [
        (0, ValueError, "period must be a positive number of seconds, got 0"),
        (-1.5, ValueError, "period must be a positive number of seconds, got -1.5"),
        (float("nan"), ValueError, "period must be a positive number of seconds, got nan"),
        (
            float("inf"),
            ValueError,
            f"period must be a finite number of seconds of at most {threading.TIMEOUT_MAX:.0f}, "
            "got inf",
        ),
        ("0.1", ValueError, "period must be a positive number of seconds, got '0.1'"),
        (True, ValueError, "period must be a positive number of seconds, got True"),
    ],
)
def test_bad_period_is_refused_naming_it(period, error, message):
    with pytest.raises(error) as info:
        LoopSchedule(period, LoopPolicy.SKIP, start=0.0)
    assert str(info.value) == message
    with pytest.raises(error) as info:
        LoopTask(period)
    assert str(info.value) == message


def test_bad_policy_max_iterations_and_clock_are_refused_naming_them():
    with pytest.raises(TypeError, match=r"^policy must be a LoopPolicy, got 'skip'$"):
        LoopTask(0.1, "skip")  # type: ignore[arg-type]
    bad: Any
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError) as info:
            LoopTask(0.1, max_iterations=bad)
        assert str(info.value) == f"max_iterations must be a positive integer or None, got {bad!r}"
    with pytest.raises(TypeError, match=r"^clock must be callable, got 3$"):
        LoopTask(0.1, clock=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the loop on a fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeContext:
    """A task context whose sleep only moves the fake clock; stop and settings by hand."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.cancelled = False
        self.settings: Any = None
        self.pending: list[Any] = []
        self.sleeps: list[float] = []
        self.published: list[Any] = []
        self._status: Any = None

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled("fake stop")

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.cancelled:
            raise TaskCancelled("fake stop")
        self.clock.now += seconds

    def update_settings(self) -> bool:
        if not self.pending:
            return False
        self.settings, self.pending = self.pending[-1], []
        return True

    @property
    def status(self) -> Any:
        return self._status

    @status.setter
    def status(self, value: Any) -> None:
        self._status = value
        self.published.append(value)


class Recorder(LoopTask):
    """Records each hook with the fake time; ``durations[i]`` is how long iteration i takes."""

    def __init__(self, clock: FakeClock, durations=(), **kwargs: Any) -> None:
        super().__init__(kwargs.pop("period", 0.1), clock=clock, **kwargs)
        self.fake = clock
        self.durations = list(durations)
        self.events: list[tuple[Any, ...]] = []
        self.on_iteration = lambda index: None

    def loop_prepare(self) -> None:
        self.events.append(("prepare",))

    def process_new_settings(self, settings: Any) -> None:
        self.events.append(("settings", settings, self.settings))

    def loop_iteration(self) -> None:
        index = self.iterations
        self.events.append(("iteration", index, round(self.fake.now, 9)))
        self.on_iteration(index)
        if index < len(self.durations):
            self.fake.now += self.durations[index]

    def update_status(self) -> None:
        self.events.append(("status",))
        self.status = ("passes", self.iterations)

    def loop_finalize(self) -> None:
        self.events.append(("finalize", self.iterations))

    def loop_result(self) -> Any:
        return ("result", self.iterations)


def starts(loop: Recorder) -> list[float]:
    return [e[2] for e in loop.events if e[0] == "iteration"]


def test_pass_order_and_result_of_a_loop_that_ends_after_max_iterations():
    clock = FakeClock()
    ctx = FakeContext(clock)
    loop = Recorder(clock, durations=[0.02, 0.03, 0.04], max_iterations=3)
    ctx.pending = ["old", "new"]
    assert loop.run(ctx) == ("result", 3)
    assert loop.events == [
        ("prepare",),
        ("settings", "new", "new"),
        ("iteration", 0, 0.0),
        ("status",),
        ("iteration", 1, 0.1),
        ("status",),
        ("iteration", 2, 0.2),
        ("status",),
        ("finalize", 3),
    ]
    assert ctx.sleeps == pytest.approx([0.08, 0.07])  # no wait after the last iteration
    assert ctx.published == [("passes", 1), ("passes", 2), ("passes", 3)]


def test_immediate_policy_in_the_loop():
    clock = FakeClock()
    loop = Recorder(clock, durations=[0.01, 0.251, 0.01, 0.01, 0.01], max_iterations=5)
    loop.run(FakeContext(clock))
    assert starts(loop) == pytest.approx([0.0, 0.1, 0.351, 0.451, 0.551])
    assert loop.missed == 1


def test_skip_policy_in_the_loop():
    clock = FakeClock()
    loop = Recorder(clock, [0.01, 0.251, 0.01, 0.01], max_iterations=4, policy=LoopPolicy.SKIP)
    loop.run(FakeContext(clock))
    assert starts(loop) == pytest.approx([0.0, 0.1, 0.4, 0.5])
    assert loop.missed == 2


def test_terminate_policy_finalizes_and_returns_the_result():
    clock = FakeClock()
    loop = Recorder(clock, [0.01, 0.251, 0.01], policy=LoopPolicy.TERMINATE)
    assert loop.run(FakeContext(clock)) == ("result", 2)
    assert starts(loop) == pytest.approx([0.0, 0.1])
    assert loop.events[-2:] == [("status",), ("finalize", 2)]


def test_late_wake_ups_do_not_shift_the_grid():
    clock = FakeClock()
    ctx = FakeContext(clock)
    real_sleep = ctx.sleep

    def oversleep(seconds: float) -> None:
        real_sleep(seconds)
        clock.now += 0.03  # the OS woke us 30 ms late

    ctx.sleep = oversleep  # type: ignore[method-assign]
    loop = Recorder(clock, durations=[0.01] * 4, max_iterations=4)
    loop.run(ctx)
    assert starts(loop) == pytest.approx([0.0, 0.13, 0.23, 0.33])
    assert ctx.sleeps == pytest.approx([0.09, 0.06, 0.06])


def test_a_stop_during_the_wait_finalizes_and_propagates_task_cancelled():
    clock = FakeClock()
    ctx = FakeContext(clock)
    loop = Recorder(clock)

    def stop_at(index: int) -> None:
        if index == 2:
            ctx.cancelled = True

    loop.on_iteration = stop_at
    with pytest.raises(TaskCancelled):
        loop.run(ctx)
    assert [e[:2] for e in loop.events[-3:]] == [("iteration", 2), ("status",), ("finalize", 3)]


def test_an_error_finalizes_then_propagates_with_its_type():
    clock = FakeClock()
    loop = Recorder(clock)

    def fail_at(index: int) -> None:
        if index == 1:
            raise KeyError("sensor 7")

    loop.on_iteration = fail_at
    with pytest.raises(KeyError, match="sensor 7"):
        loop.run(FakeContext(clock))
    assert loop.events[-2:] == [("iteration", 1, 0.1), ("finalize", 1)]


def test_a_failing_finalize_after_an_error_is_logged_and_the_first_error_kept(caplog):
    class Broken(LoopTask):
        def loop_iteration(self) -> None:
            raise ValueError("first")

        def loop_finalize(self) -> None:
            raise RuntimeError("second")

    clock = FakeClock()
    with caplog.at_level(logging.ERROR, logger="bgtasks.loops"):
        with pytest.raises(ValueError, match="^first$"):
            Broken(clock=clock).run(FakeContext(clock))
    assert "loop_finalize failed" in caplog.text and "RuntimeError: second" in caplog.text


def test_a_failing_finalize_after_a_normal_end_fails_the_run():
    class Broken(LoopTask):
        def loop_finalize(self) -> None:
            raise RuntimeError("cannot park the motor")

    clock = FakeClock()
    with pytest.raises(RuntimeError, match="^cannot park the motor$"):
        Broken(clock=clock, max_iterations=2).run(FakeContext(clock))


def test_stop_loop_in_an_iteration_ends_after_that_pass_without_waiting():
    clock = FakeClock()
    ctx = FakeContext(clock)
    loop = Recorder(clock, durations=[0.01] * 3)
    loop.on_iteration = lambda index: loop.stop_loop() if index == 1 else None
    assert loop.run(ctx) == ("result", 2)
    assert loop.events[-2:] == [("status",), ("finalize", 2)]
    assert ctx.sleeps == pytest.approx([0.09])


def test_stop_loop_in_prepare_runs_no_iteration_but_finalizes():
    class Early(Recorder):
        def loop_prepare(self) -> None:
            super().loop_prepare()
            self.stop_loop()

    clock = FakeClock()
    loop = Early(clock)
    assert loop.run(FakeContext(clock)) == ("result", 0)
    assert loop.events == [("prepare",), ("finalize", 0)]


def test_settings_latest_wins_and_unchanged_status_is_not_republished():
    clock = FakeClock()
    ctx = FakeContext(clock)
    seen = []

    class Tuner(LoopTask):
        def process_new_settings(self, settings: Any) -> None:
            seen.append(settings)

        def loop_iteration(self) -> None:
            if self.iterations == 0:
                ctx.pending = [1, 2, 3]  # posted while iteration 0 runs
            self.status = f"gain {self.settings}"

    loop = Tuner(clock=clock, max_iterations=4, settings=0)
    loop.run(ctx)
    assert seen == [3]
    assert loop.settings == 3
    assert ctx.published == ["gain 0", "gain 3"]


def test_one_instance_runs_one_loop_at_a_time_and_may_run_again():
    clock = FakeClock()
    ctx = FakeContext(clock)

    class Reentrant(LoopTask):
        def loop_iteration(self) -> None:
            self.run(ctx)

    loop = Reentrant(clock=clock)
    with pytest.raises(RuntimeError, match=r"^<Reentrant period=1.0 policy=IMMEDIATE> is already"):
        loop.run(ctx)
    again = Recorder(clock, max_iterations=2)
    assert again.run(ctx) == ("result", 2)
    assert again.run(ctx) == ("result", 2)  # counters restart


def test_scheduled_start_is_only_known_while_running():
    with pytest.raises(RuntimeError, match="^scheduled_start is only known while the loop runs$"):
        LoopTask().scheduled_start  # noqa: B018


# ---------------------------------------------------------------- through a real manager


class Gated(LoopTask):
    """Each iteration records its thread, tells the test it started, and waits for its go."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kwargs.pop("period", 0.001), **kwargs)
        self.threads: set[int] = set()
        self.events: list[Any] = []
        self.started = threading.Semaphore(0)
        self.go = threading.Semaphore(0)
        self.finalized = threading.Event()

    def _note(self, *event: Any) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(event)

    def loop_prepare(self) -> None:
        self._note("prepare")

    def process_new_settings(self, settings: Any) -> None:
        self._note("settings", settings)

    def loop_iteration(self) -> None:
        self._note("iteration", self.iterations, self.settings)
        self.started.release()
        assert self.go.acquire(timeout=10), "the test never let the iteration go"

    def update_status(self) -> None:
        self.status = f"{self.iterations} done"

    def loop_finalize(self) -> None:
        self._note("finalize")
        self.finalized.set()

    def loop_result(self) -> Any:
        return self.iterations


def test_a_submitted_loop_runs_its_hooks_on_one_worker_and_completes(qtbot, make_manager):
    m = make_manager(start_processing=True)
    loop = Gated(max_iterations=3)
    for _ in range(3):
        loop.go.release()
    with qtbot.waitSignal(m.task_completed, timeout=10000) as blocker:
        handle = m.options(group="loops").submit(loop)
    assert blocker.args == [handle.uid, "loops", 3]
    assert handle.result(timeout=5) == 3
    assert loop.events == [
        ("prepare",),
        ("iteration", 0, None),
        ("iteration", 1, None),
        ("iteration", 2, None),
        ("finalize",),
    ]
    assert len(loop.threads) == 1 and threading.get_ident() not in loop.threads
    info = m.info(handle.uid)
    assert info.name == "Gated" and info.status == "3 done"


def test_a_stop_interrupts_the_wait_finalizes_and_ends_cancelled(qtbot, make_manager):
    m = make_manager(start_processing=True)
    loop = Gated(period=3600)  # waits an hour after each iteration unless stopped
    loop.go.release()
    completed = []
    m.task_completed.connect(lambda *a: completed.append(a))
    handle = m.options(group="g").submit(loop)
    assert loop.started.acquire(timeout=10)
    with qtbot.waitSignal(m.task_cancelled, timeout=10000) as blocker:
        assert handle.cancel() is True
    assert blocker.args == [handle.uid, "g"]
    assert loop.finalized.is_set()
    assert [e[0] for e in loop.events] == ["prepare", "iteration", "finalize"]
    assert handle.cancelled() and m.task_state(handle.uid) is TaskState.CANCELLED
    with pytest.raises(TaskCancelled):
        handle.result(timeout=5)
    assert completed == []


def test_an_error_in_an_iteration_fails_the_task_with_its_type(qtbot, make_manager):
    class Failing(Gated):
        def loop_iteration(self) -> None:
            super().loop_iteration()
            if self.iterations == 1:
                raise ZeroDivisionError("sensor returned 0")

    m = make_manager(start_processing=True)
    loop = Failing()
    loop.go.release()
    loop.go.release()
    with qtbot.waitSignal(m.task_failed, timeout=10000) as blocker:
        handle = m.options(group="g").submit(loop)
    uid, group, message, tb = blocker.args
    assert (uid, group, message) == (handle.uid, "g", "sensor returned 0")
    assert "ZeroDivisionError: sensor returned 0" in tb
    assert isinstance(handle.exception(timeout=5), ZeroDivisionError)
    assert [e[0] for e in loop.events] == ["prepare", "iteration", "iteration", "finalize"]


def test_settings_posted_by_the_ui_reach_the_next_pass_latest_wins(qtbot, make_manager):
    m = make_manager(start_processing=True)
    loop = Gated(max_iterations=2, settings="initial")
    handle = m.submit(loop)
    assert loop.started.acquire(timeout=10)  # iteration 0 runs
    m.set_settings(handle.uid, "slow")
    m.set_settings(handle.uid, "fast")
    loop.go.release()
    loop.go.release()
    assert handle.result(timeout=10) == 2
    assert loop.events[1:4] == [
        ("iteration", 0, "initial"),
        ("settings", "fast"),
        ("iteration", 1, "fast"),
    ]


def test_status_changes_reach_info_and_the_status_signal(qtbot, make_manager):
    class Counter(Gated):
        def update_status(self) -> None:
            self.status = "warm" if self.iterations >= 2 else "cold"

        def loop_finalize(self) -> None:
            super().loop_finalize()
            self.status = "parked"

    m = make_manager(start_processing=True)
    statuses = []
    m.task_status_changed.connect(lambda uid, group, status: statuses.append((uid, group, status)))
    loop = Counter(max_iterations=4)
    handle = m.options(group="g").submit(loop)
    assert loop.started.acquire(timeout=10)
    loop.go.release()
    qtbot.waitUntil(lambda: m.info(handle.uid).status == "cold", timeout=10000)
    for _ in range(3):
        loop.go.release()
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        pass
    assert m.info(handle.uid).status == "parked"
    u = handle.uid
    assert statuses == [(u, "g", "cold"), (u, "g", "warm"), (u, "g", "parked")]


def test_terminate_on_a_missed_start_completes_normally(qtbot, make_manager):
    offset = [0.0]

    class Overrun(Gated):
        def loop_iteration(self) -> None:
            super().loop_iteration()
            if self.iterations == 1:
                offset[0] += 5.0  # this iteration "takes" 5 s on the loop's clock

    m = make_manager(start_processing=True)
    loop = Overrun(
        period=0.001,
        policy=LoopPolicy.TERMINATE,
        clock=lambda: time.monotonic() + offset[0],
    )
    for _ in range(5):
        loop.go.release()
    with qtbot.waitSignal(m.task_completed, timeout=10000) as blocker:
        handle = m.options(group="g").submit(loop)
    assert blocker.args == [handle.uid, "g", 2]
    assert loop.missed == 1
    assert [e[0] for e in loop.events] == ["prepare", "iteration", "iteration", "finalize"]


def test_a_timeout_stops_the_loop_finalizes_and_fails_with_timeout_error(qtbot, make_manager):
    m = make_manager(start_processing=True)
    loop = Gated(period=3600)
    loop.go.release()
    with qtbot.waitSignal(m.task_failed, timeout=10000):
        handle = m.options(timeout=0.05).submit(loop)
    assert isinstance(handle.exception(timeout=5), TimeoutError)
    assert loop.finalized.is_set()


def test_the_module_example_runs_as_written():
    doc = loops.__doc__ or ""
    lines = []
    for line in doc.split("Example (runs as written)::\n\n", 1)[1].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    example = textwrap.dedent("\n".join(lines))
    assert "app.exec()" in example
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["100 total 100"]


def test_a_loop_runs_to_its_end_while_the_ui_thread_is_blocked(make_manager):
    m = make_manager(start_processing=True)
    threads = []

    class Quick(LoopTask):
        def loop_iteration(self) -> None:
            threads.append(threading.get_ident())

    handle = m.submit(Quick(period=0.001, max_iterations=20))
    handle.result(timeout=10)  # the UI thread waits here: no event is processed
    assert len(threads) == 20 and threading.get_ident() not in threads


def test_stop_loop_before_the_run_counts_and_a_rerun_starts_afresh():
    clock = FakeClock()
    loop = Recorder(clock, max_iterations=2)
    loop.stop_loop()
    assert loop.run(FakeContext(clock)) == ("result", 0)
    assert loop.run(FakeContext(clock)) == ("result", 2)


def test_a_stop_with_no_wait_left_ends_before_the_next_iteration():
    clock = FakeClock()
    ctx = FakeContext(clock)
    loop = Recorder(clock, durations=[0.01, 0.5, 0.01])  # iteration 1 misses its next start

    def stop_at(index: int) -> None:
        if index == 1:
            ctx.cancelled = True

    loop.on_iteration = stop_at
    with pytest.raises(TaskCancelled):
        loop.run(ctx)
    assert [e[:2] for e in loop.events[-3:]] == [("iteration", 1), ("status",), ("finalize", 2)]
    assert ctx.sleeps == pytest.approx([0.09])  # IMMEDIATE: no wait after the late one
