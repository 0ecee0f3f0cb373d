#!/usr/bin/env python3
"""Process tasks against thread tasks: CPU-bound speed-up, overhead per task, cancel latency.

Run from a checkout (see docs/benchmarks-processes.md)::

    .venv/bin/python benchmarks/bench_processes.py            # full run, ~40 s on 2 cores
    .venv/bin/python benchmarks/bench_processes.py --quick    # fewer runs (~15 s)
    .venv/bin/python benchmarks/bench_processes.py --out docs/benchmarks-processes.md

Exit status: 0 when every result was right (targets may still FAIL: they are
printed), 2 when a result was wrong, 1 with ``--strict`` when a target failed.

1. CPU-bound: 64 tasks of pure-Python arithmetic, each a fixed amount of work
   calibrated at start to take ~50 ms alone, submitted at once to one manager
   as thread tasks (``max_threads`` = cores) and as process tasks
   (``executor=ProcessExecutor(cores)``), side by side in one run.  Process
   figures are given cold (a new executor: the time includes starting its
   workers) and warm (workers already started).
2. Overhead: 1,000 trivial tasks (``return i``) each way (warm workers): wall
   time per task.
3. Cancel: a task burning CPU that never looks at ``cancelled`` is cancelled
   with ``handle.cancel()``; figures from the call until the worker process is
   dead (polled in /proc every 0.5 ms) and until ``handle.exception()``
   returns.  Also a cooperative task (in ``current_task().sleep``), which keeps
   its worker, and a worker that ignores SIGTERM (killed after ``grace`` =
   0.2 s).
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from time import perf_counter, sleep  # noqa: E402
from typing import Any  # noqa: E402

from _common import (  # noqa: E402
    Clock,
    Doc,
    arguments,
    commit,
    dispose,
    finish,
    machine,
    verdict,
)
from _common import identity as trivial  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from bgtasks import BackgroundTaskManager, TaskCancelled, current_task  # noqa: E402
from bgtasks.processes import ProcessExecutor  # noqa: E402

CPU_TASKS = 64
TASK_MS = 50.0
TRIVIAL_N = 1000
TIMEOUT_S = 300.0

TARGET_SPEEDUP = 1.7
TARGET_CANCEL_S = 1.0


# ------------------------------------------------------- task functions (sent to workers)


def spin(n: int) -> int:
    """Pure-Python CPU work: n rounds of arithmetic; the same n costs the same in any process."""
    x = 0
    for i in range(n):
        x = (x + i * i) % 1_000_003
    return x


def spin_forever(ignore_sigterm: bool = False) -> None:
    """Publish the pid, then burn CPU without looking at ``cancelled``."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    current_task().status = os.getpid()
    while True:
        pass


def sleep_cooperatively() -> None:
    current_task().status = os.getpid()
    current_task().sleep(600)


# ----------------------------------------------------------------------------- helpers


def calibrate(target_s: float) -> int:
    """Rounds of ``spin`` that take ``target_s`` alone (median of 5, after a warm-up)."""
    n = 20_000
    while True:
        start = perf_counter()
        spin(n)
        took = perf_counter() - start
        if took > 0.02:
            break
        n *= 2
    n = int(n * target_s / took)
    times = []
    for _ in range(5):
        start = perf_counter()
        spin(n)
        times.append(perf_counter() - start)
    return int(n * target_s / statistics.median(times))


def is_dead(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts: it runs no more)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def expect_cancelled(handle: Any) -> None:
    """Wait for the handle; it must end cancelled (``exception()`` raises TaskCancelled)."""
    try:
        handle.exception(timeout=TIMEOUT_S)
    except TaskCancelled:
        return
    raise AssertionError(f"task {handle.uid} did not end cancelled")


def new_manager(threads: int) -> BackgroundTaskManager:
    return BackgroundTaskManager(start_processing=True, max_threads=threads)


def wait_status(manager: BackgroundTaskManager, uid: int) -> int:
    deadline = perf_counter() + TIMEOUT_S
    while manager.info(uid).status is None:
        if perf_counter() > deadline:
            raise TimeoutError(f"task {uid} never started")
        sleep(0.001)
    return manager.info(uid).status


# ------------------------------------------------------------------------ measurements


def run_batch(manager: BackgroundTaskManager, executor: Any, fn: Any, args: list[Any]) -> float:
    """Submit ``fn(a)`` for every a at once; seconds until every result is in (checked)."""
    start = perf_counter()
    handles = [manager.options(executor=executor).submit(fn, a) for a in args]
    results = [h.result(timeout=TIMEOUT_S) for h in handles]
    took = perf_counter() - start
    expected = [fn(a) for a in args] if fn is trivial else None
    if expected is not None and results != expected:
        raise AssertionError("wrong results")
    if fn is spin and len(set(results)) != 1:
        raise AssertionError("spin gave different results for the same input")
    return took


def measure_cpu(cores: int, rounds: int, repeats: int) -> dict[str, Any]:
    args = [rounds] * CPU_TASKS
    out: dict[str, list[float]] = {"thread": [], "cold": [], "warm": []}
    for _ in range(repeats):
        m = new_manager(cores)
        try:
            out["thread"].append(run_batch(m, None, spin, args))
            ex = ProcessExecutor(cores)
            out["cold"].append(run_batch(m, ex, spin, args))
            out["warm"].append(run_batch(m, ex, spin, args))
            if ex.workers_started != cores:
                raise AssertionError(f"started {ex.workers_started} workers, expected {cores}")
        finally:
            dispose(m)
    return {k: statistics.median(v) for k, v in out.items()} | {"runs": out}


def measure_overhead(cores: int, repeats: int) -> dict[str, float]:
    args = list(range(TRIVIAL_N))
    thread, process = [], []
    for _ in range(repeats):
        m = new_manager(cores)
        try:
            ex = ProcessExecutor(cores)
            run_batch(m, ex, trivial, list(range(2 * cores)))  # start the workers
            thread.append(run_batch(m, None, trivial, args) / TRIVIAL_N)
            process.append(run_batch(m, ex, trivial, args) / TRIVIAL_N)
        finally:
            dispose(m)
    return {"thread": statistics.median(thread), "process": statistics.median(process)}


def measure_cancel(n: int) -> dict[str, Any]:
    m = new_manager(2)
    dead, ended, coop, stubborn = [], [], [], []
    try:
        ex = ProcessExecutor(1)
        for _ in range(n):
            h = m.options(executor=ex).submit(spin_forever)
            pid = wait_status(m, h.uid)
            start = perf_counter()
            h.cancel()
            while not is_dead(pid):
                if perf_counter() - start > TIMEOUT_S:
                    raise AssertionError(f"worker {pid} survived the cancel")
                sleep(0.0005)
            dead.append(perf_counter() - start)
            expect_cancelled(h)
            ended.append(perf_counter() - start)
        for _ in range(max(n // 4, 3)):
            h = m.options(executor=ex).submit(sleep_cooperatively)
            pid = wait_status(m, h.uid)
            start = perf_counter()
            h.cancel()
            expect_cancelled(h)
            coop.append(perf_counter() - start)
            if is_dead(pid):
                raise AssertionError("a cooperative task lost its worker")
        ex2 = ProcessExecutor(1, grace=0.2)
        for _ in range(3):
            h = m.options(executor=ex2).submit(spin_forever, True)
            pid = wait_status(m, h.uid)
            start = perf_counter()
            h.cancel()
            expect_cancelled(h)
            stubborn.append(perf_counter() - start)
            if not is_dead(pid):
                raise AssertionError("a worker ignoring SIGTERM survived")
    finally:
        dispose(m)
    return {"dead": dead, "ended": ended, "coop": coop, "stubborn": stubborn}


# ---------------------------------------------------------------------------- report


def build_report(res: dict[str, Any], meta: dict[str, Any]) -> tuple[str, bool]:
    cpu, ovh, can = res["cpu"], res["overhead"], res["cancel"]
    lines = [
        f"Measured {meta['date']} at commit {meta['commit']} on {meta['machine']}; load average "
        f"{meta['load'][0]:.2f} before, {meta['load'][1]:.2f} after; run took "
        f"{meta['elapsed']:.0f} s{' (--quick)' if meta['quick'] else ''}.",
        "",
        "| measurement | thread tasks | process tasks | ratio / figure | target |",
        "|---|---|---|---|---|",
    ]
    row = lines.append
    cold, warm = cpu["thread"] / cpu["cold"], cpu["thread"] / cpu["warm"]
    ok_speed = warm >= TARGET_SPEEDUP
    n_runs = len(cpu["runs"]["thread"])
    row(
        f"| CPU-bound: {CPU_TASKS} tasks of {TASK_MS:.0f} ms ({meta['rounds']:,} rounds), "
        f"warm pool (median of {n_runs}) | {cpu['thread']:.2f} s | {cpu['warm']:.2f} s | "
        f"{warm:.2f}x faster | >= {TARGET_SPEEDUP}x: {verdict(ok_speed)} |"
    )
    row(
        f"| CPU-bound, cold pool (the time includes starting the workers) | "
        f"{cpu['thread']:.2f} s | {cpu['cold']:.2f} s | {cold:.2f}x faster | "
        f"(information; >= {TARGET_SPEEDUP}x: {'yes' if cold >= TARGET_SPEEDUP else 'no'}) |"
    )
    row(
        f"| overhead per trivial task, {TRIVIAL_N:,} at once | {ovh['thread'] * 1e6:,.0f} us | "
        f"{ovh['process'] * 1e6:,.0f} us | {ovh['process'] / ovh['thread']:.1f}x the thread "
        "task | (information) |"
    )
    dead, ended = can["dead"], can["ended"]
    ok_cancel = max(dead) < TARGET_CANCEL_S
    row(
        f"| cancel of a busy task -> worker dead ({len(dead)} cancels) | | "
        f"median {statistics.median(dead) * 1e3:.0f} ms, max {max(dead) * 1e3:.0f} ms | | "
        f"max < {TARGET_CANCEL_S:.0f} s: {verdict(ok_cancel)} |"
    )
    row(
        f"| cancel of a busy task -> `handle.exception()` raises TaskCancelled | | "
        f"median {statistics.median(ended) * 1e3:.0f} ms, max {max(ended) * 1e3:.0f} ms | | "
        "(information) |"
    )
    row(
        f"| cancel of a task in `sleep()` (cooperative, worker kept; {len(can['coop'])}) | | "
        f"median {statistics.median(can['coop']) * 1e3:.0f} ms, "
        f"max {max(can['coop']) * 1e3:.0f} ms | | (information) |"
    )
    row(
        f"| cancel of a worker ignoring SIGTERM, grace 0.2 s ({len(can['stubborn'])}) | | "
        f"median {statistics.median(can['stubborn']) * 1e3:.0f} ms, "
        f"max {max(can['stubborn']) * 1e3:.0f} ms | | (information) |"
    )
    runs = ", ".join(f"{k} " + "/".join(f"{t:.2f}" for t in v) for k, v in cpu["runs"].items())
    lines += ["", f"CPU-bound runs (s): {runs}.", ""]
    return "\n".join(lines), ok_speed and ok_cancel


DOC = Doc("bench_processes", "Process-task benchmarks")


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, quick="fewer runs (smoke run)", out="the table").parse_args(argv)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    cores = os.cpu_count() or 1
    description = machine()
    print(f"# bench_processes: {description}", flush=True)
    clock = Clock()
    rounds = calibrate(TASK_MS / 1000)
    res: dict[str, Any] = {}
    try:
        print("1. CPU-bound", flush=True)
        res["cpu"] = measure_cpu(cores, rounds, 1 if args.quick else 3)
        print("2. overhead", flush=True)
        res["overhead"] = measure_overhead(cores, 1 if args.quick else 3)
        print("3. cancel", flush=True)
        res["cancel"] = measure_cancel(8 if args.quick else 20)
    except AssertionError as exc:
        print(f"WRONG RESULT: {exc}", file=sys.stderr)
        return 2
    meta = clock.meta(commit=commit(), machine=description, quick=args.quick, rounds=rounds)
    report, targets_ok = build_report(res, meta)
    del app
    return finish(args, DOC, report, targets_ok)


if __name__ == "__main__":
    sys.exit(main())
