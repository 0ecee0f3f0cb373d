#!/usr/bin/env python3
"""Loop-task timing of bgtasks: how exactly a LoopTask keeps a 10 ms rate through a manager.

Run from a checkout (see docs/benchmarks-loops.md)::

    .venv/bin/python benchmarks/bench_loops.py                # 5 repeats per scenario, ~25 s
    .venv/bin/python benchmarks/bench_loops.py --quick        # 2 repeats, ~10 s
    .venv/bin/python benchmarks/bench_loops.py --out docs/benchmarks-loops.md

Each run submits one loop of 101 iterations at a 10 ms period to a fresh
``BackgroundTaskManager``: iteration k is due at ``t0 + k * 10 ms``, so the
last one is due 1.000 s after the first.  Measured per run: the *end error*
(when the last iteration started, minus 1.000 s) and the *lateness* of every
start (actual start minus due start).  Scenarios:

1. idle UI thread (the event loop waits for ``task_completed``);
2. busy UI thread: a zero-interval timer runs pure Python for 20 ms at a time
   (it holds the GIL, which the worker must win back to wake up);
3. busy workers: two CPU-bound pure-Python tasks beside the loop (same manager);
4. reference, not a LoopTask: a plain task that sleeps ``period`` after each
   iteration ("now + period"), which drifts by its overhead every pass.

Exit status 0 when every loop ran all its iterations (targets may still FAIL:
they are printed), 2 otherwise, 1 with ``--strict`` when a target failed.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from _common import Clock, Doc, Waiter, arguments, commit, finish, machine, spin, verdict  # noqa: E402
from PySide6.QtCore import QCoreApplication, QTimer  # noqa: E402

from bgtasks import BackgroundTaskManager, current_task  # noqa: E402
from bgtasks.loops import LoopPolicy, LoopTask  # noqa: E402

PERIOD = 0.010
ITERATIONS = 101  # starts 0 .. 100 periods: the last is due at 1.000 s
IDEAL = PERIOD * (ITERATIONS - 1)
TARGET_END_MS = 10.0
BUSY_CHUNK = 0.020  # seconds of pure Python per UI timer tick in the busy-UI scenario


@dataclass
class Run:
    starts: list[float] = field(default_factory=list)  # actual, seconds after the first due start
    lateness: list[float] = field(default_factory=list)  # seconds after the due start
    missed: int = 0

    @property
    def end_error(self) -> float:
        return self.starts[-1] - IDEAL


class Timed(LoopTask):
    """Records when each iteration started and how late; ends at the start due at 1.000 s.

    It ends on time, not on a count: with SKIP a late pass leaves slots out,
    with IMMEDIATE it moves the grid (the end error then shows the shift).
    """

    def __init__(self, policy: LoopPolicy) -> None:
        super().__init__(PERIOD, policy)
        self.run_data = Run()
        self._t0 = 0.0

    def loop_iteration(self) -> None:
        now = time.monotonic()
        due = self.scheduled_start
        if self.iterations == 0:
            self._t0 = due
        self.run_data.starts.append(now - self._t0)
        self.run_data.lateness.append(now - due)
        if due - self._t0 >= IDEAL - PERIOD / 2:
            self.stop_loop()

    def loop_finalize(self) -> None:
        self.run_data.missed = self.missed


def naive_loop(data: Run) -> None:
    """What a hand-written loop does: work, then sleep one period ("now + period")."""
    ctx = current_task()
    t0 = time.monotonic()
    for k in range(ITERATIONS):
        now = time.monotonic()
        data.starts.append(now - t0)
        data.lateness.append(now - (t0 + k * PERIOD))
        if k < ITERATIONS - 1:
            ctx.sleep(PERIOD)


def cpu_task(stop: threading.Event) -> None:
    while not stop.is_set():
        spin(0.001)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    policy: LoopPolicy | None = LoopPolicy.IMMEDIATE  # None: the naive reference loop
    busy_ui: bool = False
    cpu_tasks: int = 0
    switch_interval: float | None = None  # sys.setswitchinterval for the run
    target: bool = True  # the 10 ms end target applies


SCENARIOS = [
    Scenario("idle_ui", "idle UI thread"),
    Scenario(
        "busy_ui", f"busy UI thread ({BUSY_CHUNK * 1000:.0f} ms of Python per tick)", busy_ui=True
    ),
    Scenario(
        "busy_ui_1ms",
        "busy UI thread, `sys.setswitchinterval(0.001)`",
        busy_ui=True,
        switch_interval=0.001,
        target=False,
    ),
    Scenario("cpu_immediate", "2 CPU-bound tasks beside it", cpu_tasks=2, target=False),
    Scenario(
        "cpu_skip",
        "2 CPU-bound tasks beside it, policy SKIP",
        policy=LoopPolicy.SKIP,
        cpu_tasks=2,
        target=False,
    ),
    Scenario(
        "naive",
        "reference, not a LoopTask: a task sleeping one period per pass",
        None,
        target=False,
    ),
]


def one_run(scenario: Scenario) -> Run:
    manager = BackgroundTaskManager(start_processing=True, max_threads=4)
    waiter = Waiter()
    busy = QTimer()
    busy.setInterval(0)
    busy.timeout.connect(lambda: spin(BUSY_CHUNK))
    stop_cpu = threading.Event()
    old_interval = sys.getswitchinterval()
    try:
        if scenario.switch_interval is not None:
            sys.setswitchinterval(scenario.switch_interval)
        for _ in range(scenario.cpu_tasks):
            manager.submit(cpu_task, stop_cpu)
        if scenario.policy is None:
            data = Run()
            handle = manager.submit(naive_loop, data)
        else:
            task = Timed(scenario.policy)
            data = task.run_data
            handle = manager.submit(task)
        handle.add_done_callback(lambda _h: waiter.done())
        if scenario.busy_ui:
            busy.start()
        waiter.wait(20)  # a safety net; never reached in a good run
        busy.stop()
        handle.result(timeout=5)
        return data
    finally:
        sys.setswitchinterval(old_interval)
        stop_cpu.set()
        manager.shut_down(timeout=5)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:+.2f}" if seconds < 0 else f"{seconds * 1000:.2f}"


def build_report(results: dict[str, list[Run]], meta: dict[str, Any]) -> tuple[str, bool]:
    lines = [
        f"Measured {meta['date']} at commit {meta['commit']} on {meta['machine']}; "
        f"{meta['repeats']} runs per row, {ITERATIONS} iterations at {PERIOD * 1000:.0f} ms "
        f"(last one due at {IDEAL:.3f} s); load average {meta['load'][0]:.2f} before, "
        f"{meta['load'][1]:.2f} after (the machine is shared); {meta['elapsed']:.1f} s in all.",
        "",
        "| scenario | end error, median (worst) ms | lateness median ms | lateness p99 ms "
        "| lateness max ms | iterations | missed starts | target: end within 10 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets_ok = True
    for sc in SCENARIOS:
        runs = results[sc.key]
        errors = [r.end_error for r in runs]
        worst = max(errors, key=abs)
        late = sorted(x for r in runs for x in r.lateness)
        counts = [len(r.starts) for r in runs]
        p99 = late[min(len(late) - 1, int(0.99 * len(late)))]
        ok = abs(worst) <= TARGET_END_MS / 1000
        targets_ok &= ok or not sc.target
        lines.append(
            f"| {sc.label} | {ms(statistics.median(errors))} ({ms(worst)}) "
            f"| {ms(statistics.median(late))} | {ms(p99)} | {ms(late[-1])} "
            f"| {min(counts)}-{max(counts)} | {sum(r.missed for r in runs)} "
            f"| {verdict(ok) if sc.target else '(information)'} |"
        )
    return "\n".join(lines) + "\n", targets_ok


DOC = Doc("bench_loops", "Loop-task benchmarks")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, quick="2 runs per scenario instead of 5", out="the table")
    args = parser.parse_args(argv)

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    repeats = 2 if args.quick else 5
    description = machine(f"switch interval {sys.getswitchinterval() * 1000:.0f} ms")
    print(f"# bench_loops: {description}", flush=True)
    clock = Clock()
    results: dict[str, list[Run]] = {sc.key: [] for sc in SCENARIOS}
    complete = True
    for i in range(repeats):  # interleaved, so a burst of load hits every scenario alike
        for sc in SCENARIOS:
            data = one_run(sc)
            complete &= bool(data.starts) and data.end_error >= -PERIOD / 2
            results[sc.key].append(data)
            print(f"  run {i + 1} {sc.key}: end error {ms(data.end_error)} ms", flush=True)
    meta = clock.meta(commit=commit(), machine=description, repeats=repeats)
    report, targets_ok = build_report(results, meta)
    del app
    wrong = None if complete else "WRONG: a loop did not run all its iterations"
    return finish(args, DOC, report, targets_ok, wrong)


if __name__ == "__main__":
    sys.exit(main())
