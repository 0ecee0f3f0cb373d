#!/usr/bin/env python3
"""Throughput, UI stalls and memory of bgtasks against a raw QThreadPool baseline.

Run from a checkout (see docs/benchmarks.md)::

    .venv/bin/python benchmarks/bench_core.py            # full run, ~6 minutes on 2 cores
    .venv/bin/python benchmarks/bench_core.py --quick    # 1k and 5k only, a smoke run (~25 s)
    .venv/bin/python benchmarks/bench_core.py --out docs/benchmarks.md   # also rewrite the tables

Exit status: 0 when every result was right (targets may still FAIL: they are
printed), 2 when a result was wrong, 1 with ``--strict`` when a target failed.

Both systems run the same trivial tasks (``return {"x": i}``) in the same
process, one fresh manager / pool per measurement, and every measurement is
checked for correctness (each task reported exactly once with its own result,
chain order and merged kwargs, the fan-in result).

Timing: from the first submit (bgtasks: ``start_processing()`` right before
the submitting loop, so both systems pay for submission) until the last signal
has arrived on the UI thread.  UI stall: the largest gap between ticks of a
1 ms timer on the UI thread, from the moment the submitting loop returned until
the last signal.

The baseline is what an application would write by hand: its own
``QThreadPool``, one ``QRunnable`` per task and one queued Qt signal per task
back to the UI thread.  It drives dependencies from the UI thread: a chain's
next link is submitted when the previous link's signal arrives, priorities go
to ``pool.start(runnable, priority)``, and a fan-in counts the N-1 results on
the UI thread and then runs the final merge task.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from time import perf_counter  # noqa: E402
from typing import Any  # noqa: E402

from _common import (  # noqa: E402
    Clock,
    Doc,
    StallMeter,
    Verdicts,
    Waiter,
    arguments,
    finish,
    machine,
    trivial,
)
from PySide6.QtCore import (  # noqa: E402
    QCoreApplication,
    QObject,
    QRunnable,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)

from bgtasks import BackgroundTaskManager  # noqa: E402
from bgtasks.core import Scheduler, run_worker  # noqa: E402

WORKLOADS = ("flat", "priorities", "chains", "chains_rising", "fan_in")
CHAIN = 10
TIMEOUT_S = 300.0  # per measurement; a run that exceeds it is reported as a failure

# Targets (shared/design/performance.md).
TARGET_RATIO = 3.0
TARGET_EXPONENT = 1.15
TARGET_STALL_MS = 16.0
TARGET_ADD_US = 10.0
TARGET_BYTES = 1536  # 1.5 KiB
TARGET_OF_CEILING = 0.40  # flat 20k/8 against the ceiling (issue 15)
TARGET_RUNNING_ADD_US = 3.0  # add_task in a running manager (issue 15)


# --------------------------------------------------------------------------- task functions
# Module-level and shared by both systems, so both run exactly the same Python code
# (``trivial`` comes from _common).


def link(i: int, **kw: Any) -> dict[str, Any]:
    # A chain link: ``kw`` holds the upstream link's result.  "up" lets the
    # benchmark check that the merge really carried the previous link's value.
    return {"x": i, "up": kw.get("x")}


def part(i: int) -> dict[str, int]:
    # A fan-in input: a distinct key per task, so the merged result has N-1 keys.
    return {f"k{i}": i}


def merge_all(results: list[dict[str, int]]) -> dict[str, int]:
    # The baseline's final fan-in task.
    out: dict[str, int] = {}
    for r in results:
        out.update(r)
    return out


# --------------------------------------------------------------------------- measurement


@dataclass
class Run:
    """One measurement: wall time, UI stall, and what arrived on the UI thread."""

    system: str
    workload: str
    n: int
    threads: int
    expected: int  # signals to wait for
    received: list[tuple[Any, Any]] = field(default_factory=list)  # (id, result), arrival order
    failures: list[str] = field(default_factory=list)
    t0: float = 0.0
    t_submitted: float = 0.0
    t_end: float = 0.0
    # Largest gap between consecutive 1 ms timer ticks, from the moment the
    # submitting loop returned until the last signal arrived.
    stall_ms: float = 0.0
    timed_out: bool = False
    ok: bool = False
    why: str = ""
    waiter: Waiter | None = None

    @property
    def seconds(self) -> float:
        return self.t_end - self.t0

    @property
    def finished(self) -> bool:
        """Every expected signal arrived (the result may still be wrong: see ``ok``)."""
        return bool(self.t_end) and not self.timed_out and not self.failures

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.finished and self.seconds > 0 else 0.0

    def arrived(self, key: Any, result: Any) -> None:
        self.received.append((key, result))
        if len(self.received) >= self.expected and not self.t_end:
            self.t_end = perf_counter()
            if self.waiter is not None:
                self.waiter.done()

    def failed(self, key: Any, message: str) -> None:
        self.failures.append(f"{key}: {message}")
        self.t_end = perf_counter()
        if self.waiter is not None:
            self.waiter.done()


class Agg:
    """The repeats of one (system, workload, N, threads): median time, worst stall."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def why(self) -> str:
        return next((r.why for r in self.runs if not r.ok), "")

    @property
    def seconds(self) -> float:
        """Median over the runs that finished; nan if none did."""
        done = [r.seconds for r in self.runs if r.finished]
        return statistics.median(done) if done else math.nan

    @property
    def rate(self) -> float:
        seconds = self.seconds
        return self.runs[0].n / seconds if seconds > 0 else 0.0

    @property
    def rates(self) -> list[float]:
        return sorted(r.rate for r in self.runs)

    @property
    def stall_ms(self) -> float:
        return max(r.stall_ms for r in self.runs)

    @property
    def stall_median_ms(self) -> float:
        return statistics.median(r.stall_ms for r in self.runs)


def running_add_us(a: Agg) -> float:
    """Median µs per ``add_task`` of the submitting loop (``start_processing()`` first, so the
    workers run meanwhile): add_task in a running manager."""
    times = [(r.t_submitted - r.t0) / r.n * 1e6 for r in a.runs if r.finished]
    return statistics.median(times) if times else math.nan


def pair_ratio(b: Agg, r: Agg) -> float:
    """Median of bgtasks/baseline over the repeats, each run against the baseline run just
    before it: the machine is shared, and this keeps a change of load from skewing the ratio."""
    ratios = [x.rate / y.rate for x, y in zip(b.runs, r.runs, strict=True) if x.rate and y.rate]
    return statistics.median(ratios) if ratios else 0.0


def drive(run: Run, submit: Callable[[], None], ticker: StallMeter) -> None:
    """Time ``submit()`` plus the event loop until ``run`` has every signal."""
    run.waiter = Waiter()
    run.t0 = perf_counter()
    submit()
    run.t_submitted = perf_counter()
    ticker.start()
    run.timed_out = not run.waiter.wait(TIMEOUT_S)
    ticker.stop()
    if run.timed_out:
        run.t_end = perf_counter()
    run.stall_ms = ticker.stall_ms(run.t_submitted, run.t_end)
    run.waiter = None


# --------------------------------------------------------------------------- workloads
# Task i of every workload is trivial(i) / link(i) / part(i).  "priorities" gives task i the
# priority priorities_for(n)[i]; "chains_rising" gives link i the priority i (so each link
# outranks its upstream link, and later chains outrank earlier ones).


def priorities_for(n: int) -> list[int]:
    prios = list(range(n))
    random.Random(n).shuffle(prios)  # distinct, in no particular order
    return prios


# --------------------------------------------------------------------------- bgtasks


def run_bgtasks(workload: str, n: int, threads: int, ticker: StallMeter) -> Run:
    run = Run("bgtasks", workload, n, threads, expected=n)
    m = BackgroundTaskManager(max_threads=threads)
    uids: list[int] = []
    if workload == "fan_in":
        run.expected = 1
        final: list[int] = []

        def on_done(uid: int, group: Any, result: Any) -> None:
            if uid == final[0]:
                run.arrived(uid, result)

    else:

        def on_done(uid: int, group: Any, result: Any) -> None:
            run.arrived(uid, result)

    m.task_completed.connect(on_done)
    m.task_failed.connect(lambda uid, group, msg, tb: run.failed(uid, msg))
    add = m.add_task

    if workload == "flat":

        def submit() -> None:
            m.start_processing()
            for i in range(n):
                uids.append(add(trivial, task_args=(i,)))

    elif workload == "priorities":
        prios = priorities_for(n)

        def submit() -> None:
            m.start_processing()
            for i in range(n):
                uids.append(add(trivial, priority=prios[i], task_args=(i,)))

    elif workload in ("chains", "chains_rising"):
        rising = workload == "chains_rising"

        def submit() -> None:
            m.start_processing()
            prev = 0
            for i in range(n):
                up = (prev,) if i % CHAIN else None
                prio = i if rising else None
                prev = add(link, priority=prio, upstream_task_ids=up, task_args=(i,))
                uids.append(prev)

    elif workload == "fan_in":

        def submit() -> None:
            m.start_processing()
            for i in range(n - 1):
                uids.append(add(part, task_args=(i,)))
            final.append(m.add_pass_through_task(upstream_task_ids=uids))

    else:
        raise ValueError(workload)

    try:
        drive(run, submit, ticker)
    finally:
        m.shut_down(timeout=5)
    verify(run, uids, final[0] if workload == "fan_in" else None)
    m.deleteLater()
    return run


# --------------------------------------------------------------------------- baseline


class Relay(QObject):
    """Lives on the UI thread; workers emit through it (one queued signal per task)."""

    done = Signal(int, object)
    error = Signal(int, str)


class Job(QRunnable):
    def __init__(self, relay: Relay, key: int, fn: Callable[..., Any], args: tuple, kwargs: dict):
        super().__init__()
        self.setAutoDelete(True)
        self.relay = relay
        self.key = key
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> None:
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - report, never kill the pool thread
            self.relay.error.emit(self.key, repr(exc))
        else:
            self.relay.done.emit(self.key, result)


class Receiver(QObject):
    """The baseline's UI-thread slot; ``handler(key, result)`` does the workload's bookkeeping."""

    def __init__(self, handler: Callable[[int, Any], None], run: Run) -> None:
        super().__init__()
        self.handler = handler
        self.run = run

    @Slot(int, object)
    def on_done(self, key: int, result: Any) -> None:
        self.handler(key, result)

    @Slot(int, str)
    def on_error(self, key: int, message: str) -> None:
        self.run.failed(key, message)


def run_baseline(workload: str, n: int, threads: int, ticker: StallMeter) -> Run:
    run = Run("baseline", workload, n, threads, expected=n)
    pool = QThreadPool()
    pool.setMaxThreadCount(threads)
    relay = Relay()
    start = pool.start
    keys: list[int] = []

    if workload in ("flat", "priorities"):
        prios = priorities_for(n) if workload == "priorities" else None
        handler = run.arrived

        def submit() -> None:
            for i in range(n):
                keys.append(i)
                if prios is None:
                    start(Job(relay, i, trivial, (i,), {}))
                else:
                    start(Job(relay, i, trivial, (i,), {}), prios[i])

    elif workload in ("chains", "chains_rising"):
        rising = workload == "chains_rising"

        def handler(key: int, result: Any) -> None:
            run.arrived(key, result)
            nxt = key + 1
            if nxt % CHAIN and nxt < n:  # submit the next link with the upstream result merged
                start(Job(relay, nxt, link, (nxt,), result), nxt if rising else 0)

        def submit() -> None:
            for i in range(0, n, CHAIN):
                start(Job(relay, i, link, (i,), {}), i if rising else 0)

        keys.extend(range(n))

    elif workload == "fan_in":
        run.expected = 1
        parts: list[dict[str, int]] = []
        final_key = n - 1

        def handler(key: int, result: Any) -> None:
            if key == final_key:
                run.arrived(key, result)
                return
            parts.append(result)
            if len(parts) == n - 1:  # every input is in: run the merge task
                start(Job(relay, final_key, merge_all, (parts,), {}))

        def submit() -> None:
            for i in range(n - 1):
                keys.append(i)
                start(Job(relay, i, part, (i,), {}))

    else:
        raise ValueError(workload)

    receiver = Receiver(handler, run)
    relay.done.connect(receiver.on_done, Qt.ConnectionType.QueuedConnection)
    relay.error.connect(receiver.on_error, Qt.ConnectionType.QueuedConnection)
    try:
        drive(run, submit, ticker)
    finally:
        pool.clear()
        pool.waitForDone(5000)
    QCoreApplication.processEvents()  # drop any signal still queued
    verify(run, keys, final_key if workload == "fan_in" else None)
    receiver.deleteLater()
    relay.deleteLater()
    return run


# --------------------------------------------------------------------------- ceiling


class Emitter(QObject):
    """The ceiling's signal: shaped like ``task_completed(uid, group, result)``."""

    done = Signal(int, object, object)


def run_ceiling(workload: str, n: int, threads: int, ticker: StallMeter) -> Run:
    """No scheduler at all: the UI thread calls each task function itself, in dependency
    order, and emits one ``task_completed``-shaped signal per task to a connected slot.

    What is left is the cost of the task functions and of the signal, so it bounds what any
    system that reports each task by a Qt signal on the UI thread can reach.  It blocks the
    UI for the whole run (its stall is the run time), and ``threads`` is not used.
    """
    run = Run("ceiling", workload, n, threads, expected=n)
    emitter = Emitter()
    keys = list(range(n))
    if workload == "fan_in":
        run.expected = 1
        parts: list[dict[str, int]] = []
        final_key = n - 1

        def on_done(key: int, group: Any, result: Any) -> None:
            if key == final_key:
                run.arrived(key, result)
            else:
                parts.append(result)

    else:

        def on_done(key: int, group: Any, result: Any) -> None:
            run.arrived(key, result)

    emitter.done.connect(on_done)
    emit = emitter.done.emit

    def submit() -> None:
        if workload in ("flat", "priorities"):
            # priorities: the same tasks in priority order (highest first)
            order = (
                sorted(range(n), key=priorities_for(n).__getitem__, reverse=True)
                if workload == "priorities"
                else range(n)
            )
            for i in order:
                emit(i, None, trivial(i))
        elif workload in ("chains", "chains_rising"):
            upstream: dict[str, int] = {}
            for i in range(n):
                upstream = link(i, **upstream) if i % CHAIN else link(i)
                emit(i, None, upstream)
        else:
            for i in range(n - 1):
                emit(i, None, part(i))
            emit(n - 1, None, merge_all(parts))

    drive(run, submit, ticker)
    verify(run, keys, n - 1 if workload == "fan_in" else None)
    emitter.deleteLater()
    return run


# --------------------------------------------------------------------------- correctness


def verify(run: Run, ids: list[int], final_id: int | None) -> None:
    """Set ``run.ok``/``run.why``: each task reported once, with its own correctly merged result."""
    n = run.n
    if run.timed_out:
        got = f"{len(run.received)}/{run.expected}"
        run.why = f"timed out after {TIMEOUT_S:.0f} s with {got} signals"
        return
    if run.failures:
        run.why = f"{len(run.failures)} task(s) failed, first: {run.failures[0]}"
        return
    if run.workload == "fan_in":
        if len(run.received) != 1 or run.received[0][0] != final_id:
            run.why = f"fan-in: expected one final signal, got {len(run.received)}"
            return
        result = run.received[0][1]
        if not isinstance(result, dict) or len(result) != n - 1:
            size = len(result) if isinstance(result, dict) else repr(result)
            run.why = f"fan-in result has {size} keys, expected {n - 1}"
            return
        for i in range(n - 1):
            if result.get(f"k{i}") != i:
                run.why = f"fan-in result: k{i} = {result.get(f'k{i}')!r}, expected {i}"
                return
        run.ok = True
        return
    if len(run.received) != n:
        run.why = f"{len(run.received)} signals for {n} tasks"
        return
    index = {task_id: i for i, task_id in enumerate(ids)}
    if len(index) != n:
        run.why = f"{n - len(index)} duplicate task ids"
        return
    seen = [0] * n
    arrival = [0] * n
    chains = run.workload.startswith("chains")
    for pos, (task_id, result) in enumerate(run.received):
        i = index.get(task_id)
        if i is None:
            run.why = f"signal for unknown task {task_id!r}"
            return
        seen[i] += 1
        arrival[i] = pos
        if chains:
            want_up = i - 1 if i % CHAIN else None
            if result != {"x": i, "up": want_up}:
                run.why = f"chain link {i}: result {result!r}, expected x={i} up={want_up}"
                return
        elif result != {"x": i}:
            run.why = f"task {i}: result {result!r}"
            return
    if any(c != 1 for c in seen):
        run.why = f"{sum(1 for c in seen if c != 1)} tasks not reported exactly once"
        return
    if chains:
        for i in range(n):
            if i % CHAIN and arrival[i] < arrival[i - 1]:
                run.why = f"chain link {i} reported before its upstream link {i - 1}"
                return
    run.ok = True


def check_priority_order(ticker: StallMeter) -> str:
    """One thread, tasks added while paused: they must run by priority, FIFO among equals."""
    n = 2000
    run = Run("bgtasks", "priority-order", n, 1, expected=n)
    m = BackgroundTaskManager(max_threads=1)
    m.task_completed.connect(lambda uid, group, result: run.arrived(uid, result))
    m.task_failed.connect(lambda uid, group, msg, tb: run.failed(uid, msg))
    rnd = random.Random(7)
    prios = [rnd.randrange(50) for _ in range(n)]
    uids = [m.add_task(trivial, priority=prios[i], task_args=(i,)) for i in range(n)]
    try:
        drive(run, m.start_processing, ticker)
    finally:
        m.shut_down(timeout=5)
    m.deleteLater()
    verify(run, uids, None)
    if not run.ok:
        return f"FAILED: {run.why}"
    order = [result["x"] for _, result in run.received]
    want = sorted(range(n), key=lambda i: (-prios[i], i))
    if order != want:
        first = next(k for k in range(n) if order[k] != want[k])
        return f"FAILED: position {first} ran task {order[first]}, expected {want[first]}"
    return f"ok ({n} tasks, 50 levels, 1 thread: strict priority order, FIFO among equals)"


# ------------------------------------------------------------------- paused: add_task, memory


def measure_add_us(n: int, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` microseconds per add_task while paused, for a few call shapes."""
    shapes: dict[str, Callable[[BackgroundTaskManager, int], None]] = {
        "add_task(fn, task_args=(i,))": lambda m, i: m.add_task(trivial, task_args=(i,)),
        "... priority=i": lambda m, i: m.add_task(trivial, priority=i, task_args=(i,)),
        "... upstream_task_ids=(previous,)": None,  # chain, filled below
    }
    out: dict[str, float] = {}
    for name, shape in shapes.items():
        best = math.inf
        for _ in range(repeats):
            m = BackgroundTaskManager(max_threads=8)
            gc.collect()
            if shape is None:
                add = m.add_task
                t = perf_counter()
                prev = None
                for i in range(n):
                    up = (prev,) if i % CHAIN else None
                    prev = add(link, upstream_task_ids=up, task_args=(i,))
                dt = perf_counter() - t
            else:
                t = perf_counter()
                for i in range(n):
                    shape(m, i)
                dt = perf_counter() - t
            m.shut_down(timeout=5)
            m.deleteLater()
            best = min(best, dt)
        out[name] = best / n * 1e6
    return out


def measure_bytes(n: int) -> dict[str, float]:
    """tracemalloc bytes per pending (paused) task.

    "total": everything the loop ``uids.append(m.add_task(trivial, task_args=(i,)))``
    allocates and keeps: the args tuple and int the caller passes, the uid and its
    list slot, and everything bgtasks keeps per task (Task record, kwargs dict,
    task table and group entries, ready-heap entry).  "bgtasks only": the same
    with the args tuples built (and kept) before the measurement starts.
    Qt allocates nothing per task while paused; tracemalloc sees Python memory only.
    """
    out: dict[str, float] = {}
    for label in ("total", "bgtasks only"):
        m = BackgroundTaskManager(max_threads=8)
        gc.collect()
        prebuilt = [(i,) for i in range(n)] if label == "bgtasks only" else None
        uids: list[int] = []
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        add = m.add_task
        if prebuilt is None:
            for i in range(n):
                uids.append(add(trivial, task_args=(i,)))
        else:
            for args in prebuilt:
                uids.append(add(trivial, task_args=args))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out[label] = (after - before) / n
        m.shut_down(timeout=5)
        m.deleteLater()
        del uids, prebuilt
    return out


def measure_paths(n: int, repeats: int = 3) -> dict[str, float]:
    """Where a task's time goes: µs per task on each path, one thread, the collector off,
    best of ``repeats``.  The Qt-free scheduler (``bgtasks.core``) is driven by hand: its
    ``add``, a worker's claim-run-finish loop (``run_worker``), the owner's ``take_events``;
    then the manager's ``add_task`` (the Qt layer's checks and options on top of ``add``)
    and the cost the ceiling pays too, one ``emit`` of a ``task_completed``-shaped signal."""
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, math.inf), seconds / n * 1e6)

    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            s = Scheduler(1, lambda k: None, lambda: None)
            s.pause()
            t = perf_counter()
            for i in range(n):
                s.add(trivial, task_args=(i,))
            keep("Scheduler.add", perf_counter() - t)
            s.start()
            t = perf_counter()
            run_worker(s)
            keep("claim + run + finish (run_worker)", perf_counter() - t)
            t = perf_counter()
            while s.take_events():
                pass
            keep("take_events", perf_counter() - t)
            s.close()
            m = BackgroundTaskManager(max_threads=8)
            add = m.add_task
            t = perf_counter()
            for i in range(n):
                add(trivial, task_args=(i,))
            keep("BackgroundTaskManager.add_task (paused)", perf_counter() - t)
            m.shut_down(timeout=5)
            m.deleteLater()
            emitter = Emitter()
            emitter.done.connect(lambda uid, group, result: None)
            emit = emitter.done.emit
            t = perf_counter()
            for i in range(n):
                emit(i, None, i)
            keep("Signal.emit to a Python slot", perf_counter() - t)
            emitter.deleteLater()
    finally:
        if enabled:
            gc.enable()
    return best


# --------------------------------------------------------------------------- report


def exponent(t_small: float, t_big: float, n_small: int, n_big: int) -> float:
    if t_small <= 0 or t_big <= 0:
        return math.nan
    return math.log(t_big / t_small) / math.log(n_big / n_small)


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}" if r else "—"


Results = dict[tuple[str, str, int, int], Agg]
Key = tuple[str, int]  # (workload, threads)
Check = Callable[[float], bool]


def rate_cell(a: Agg) -> str:
    if not a.rate:
        return "—"
    lo, hi = a.rates[0], a.rates[-1]
    spread = f" ({lo / 1000:,.0f}–{hi / 1000:,.0f}k)" if len(a.runs) > 1 else ""
    return f"{a.rate:,.0f}{spread}"


def stall_cell(a: Agg) -> str:
    if len(a.runs) > 1:
        return f"{a.stall_ms:.1f} ({a.stall_median_ms:.1f})"
    return f"{a.stall_ms:.1f}"


def throughput_table(results: Results, extra: dict) -> list[str]:
    lines = [
        f"Run on {extra['date']}: {extra['machine']}. "
        f"{extra['repeats']} repeat(s) per measurement, "
        f"the two systems back to back in each; the whole run took {extra['elapsed']:.0f} s"
        f"{' (--quick)' if extra['quick'] else ''}. Load average (1 min) {extra['load'][0]:.2f} "
        f"before, {extra['load'][1]:.2f} after.",
        "",
        "### Throughput and UI stall",
        "",
        "| workload | N | threads | bgtasks tasks/s | baseline tasks/s | ratio | "
        "bgtasks stall ms | baseline stall ms | ceiling tasks/s | bgtasks of ceiling | verified |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for wl in WORKLOADS:
        for threads in extra["threads"]:
            for n in extra["sizes"]:
                b = results[("bgtasks", wl, n, threads)]
                r = results[("baseline", wl, n, threads)]
                c = results[("ceiling", wl, n, threads)]
                ratio = pair_ratio(b, r)
                ver = (
                    "ok"
                    if b.ok and r.ok and c.ok
                    else "; ".join(
                        f"{name}: {x.why}"
                        for name, x in (("bgtasks", b), ("baseline", r), ("ceiling", c))
                        if not x.ok
                    )
                )
                lines.append(
                    f"| {wl} | {n:,} | {threads} | {rate_cell(b)} | {rate_cell(r)} | "
                    f"{ratio:.2f} | {stall_cell(b)} | {stall_cell(r)} | {rate_cell(c)} | "
                    f"{pair_ratio(b, c):.0%} | {ver} |"
                )
    return lines


def growth_sizes(sizes: list[int]) -> tuple[int, int]:
    return (5_000, 50_000) if 50_000 in sizes else (sizes[0], sizes[-1])


def growth_table(results: Results, extra: dict) -> tuple[list[str], dict[Key, float], set[Key]]:
    """The growth table, bgtasks' exponents, and where bgtasks gave a wrong result at either N."""
    small, big = growth_sizes(extra["sizes"])
    lines = [
        "",
        f"### Growth of the run time between {small:,} and {big:,} tasks",
        "",
        f"Exponent = log(t{big // 1000}k / t{small // 1000}k) / log({big // small}), "
        "from the median run times; 1.0 is linear.",
        "",
        "| workload | threads | bgtasks | baseline |",
        "|---|---:|---:|---:|",
    ]
    exps: dict[Key, float] = {}
    wrong_growth: set[Key] = set()
    for wl in WORKLOADS:
        for threads in extra["threads"]:
            row = []
            for system in ("bgtasks", "baseline"):
                a = results[(system, wl, small, threads)]
                z = results[(system, wl, big, threads)]
                e = exponent(a.seconds, z.seconds, small, big)
                row.append(f"{e:.2f}" + ("" if a.ok and z.ok else " (wrong results)"))
                if system == "bgtasks":
                    exps[(wl, threads)] = e
                    if not (a.ok and z.ok):
                        wrong_growth.add((wl, threads))
            lines.append(f"| {wl} | {threads} | {row[0]} | {row[1]} |")
    return lines, exps, wrong_growth


def paused_and_correctness(results: Results, extra: dict) -> list[str]:
    lines = [
        "",
        f"### bgtasks while paused ({extra['paused_n']:,} tasks)",
        "",
        "| measure | value |",
        "|---|---:|",
    ]
    for name, us in extra["add_us"].items():
        lines.append(f"| us per `{name}` (best of 3) | {us:.2f} |")
    for name, b in extra["bytes"].items():
        lines.append(f"| bytes per pending task, {name} (tracemalloc) | {b:,.0f} |")
    lines += [
        "",
        "### Where a task's time goes (one thread, collector off, best of 3)",
        "",
        "| path | us per task |",
        "|---|---:|",
    ]
    for name, us in extra["paths"].items():
        lines.append(f"| {name} | {us:.2f} |")
    runs = [r for a in results.values() for r in a.runs]
    lines += [
        "",
        "### Correctness",
        "",
        f"- {sum(1 for r in runs if r.ok)}/{len(runs)} runs verified: every task reported "
        "exactly once with its own result; every chain link reported after its upstream link, "
        "having received that link's result as kwargs; the fan-in result holds all N-1 keys "
        "with the right values; no task_failed.",
    ]
    for r in runs:
        if not r.ok:
            lines.append(f"- FAILED: {r.system} {r.workload} N={r.n} threads={r.threads}: {r.why}")
    lines.append(f"- Priority order (bgtasks): {extra['prio_check']}")
    return lines


def worst(d: dict[Key, float], lowest: bool) -> str:
    k = (min if lowest else max)(d, key=lambda k: d[k])
    return f"{d[k]:.2f} ({k[0]}, {k[1]} threads)"


def passes(d: dict[Key, float], ok: Check, wrong: set[Key]) -> bool:
    return all(ok(v) and k not in wrong for k, v in d.items())


def below(d: dict[Key, float], ok: Check, wrong: set[Key]) -> str:
    bad = [
        f"{wl}/{threads}: {v:.2f}{' (wrong result)' if (wl, threads) in wrong else ''}"
        for (wl, threads), v in d.items()
        if not ok(v) or (wl, threads) in wrong
    ]
    return "; failing: " + ", ".join(bad) if bad else ""


def targets_table(
    results: Results, extra: dict, exps: dict[Key, float], wrong_growth: set[Key]
) -> tuple[list[str], bool]:
    """The targets table, and whether every target passed (and every result was right)."""
    sizes: list[int] = extra["sizes"]
    small, big = growth_sizes(sizes)
    at = 20_000 if 20_000 in sizes else sizes[-1]
    note = "" if at == 20_000 else " (--quick: at 5k, not 20k)"
    runs = [r for a in results.values() for r in a.runs]
    verdict = Verdicts(all(r.ok for r in runs) and extra["prio_check"].startswith("ok"))
    ratios: dict[Key, float] = {}
    stalls: dict[Key, float] = {}
    wrong: set[Key] = set()  # bgtasks gave a wrong result: no measurement counts
    for wl in WORKLOADS:
        for threads in extra["threads"]:
            b = results[("bgtasks", wl, at, threads)]
            r = results[("baseline", wl, at, threads)]
            ratios[(wl, threads)] = pair_ratio(b, r)
            stalls[(wl, threads)] = b.stall_ms if b.rate else math.inf
            if not b.ok:
                wrong.add((wl, threads))
    ratio_ok: Check = lambda v: v >= TARGET_RATIO  # noqa: E731
    exp_ok: Check = lambda v: v <= TARGET_EXPONENT  # noqa: E731
    stall_ok: Check = lambda v: v <= TARGET_STALL_MS  # noqa: E731
    add_us = next(iter(extra["add_us"].values()))
    per_task = extra["bytes"]["total"]
    flat = results[("bgtasks", "flat", at, 8)]
    of_ceiling = pair_ratio(flat, results[("ceiling", "flat", at, 8)])
    running_add = running_add_us(flat)
    lines = [
        "",
        "### Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| throughput >= {TARGET_RATIO:g}x the baseline on every workload at {at // 1000}k"
        f"{note}, 8 and 2 threads | lowest ratio {worst(ratios, True)}"
        f"{below(ratios, ratio_ok, wrong)} | {verdict(passes(ratios, ratio_ok, wrong))} |",
        f"| run time grows no faster than N^{TARGET_EXPONENT} between {small // 1000}k and "
        f"{big // 1000}k | highest exponent {worst(exps, False)}"
        f"{below(exps, exp_ok, wrong_growth)} | "
        f"{verdict(passes(exps, exp_ok, wrong_growth))} |",
        f"| worst UI stall <= {TARGET_STALL_MS:g} ms at {at // 1000}k{note} | "
        f"worst {worst(stalls, False)} ms{below(stalls, stall_ok, wrong)} | "
        f"{verdict(passes(stalls, stall_ok, wrong))} |",
        f"| add_task <= {TARGET_ADD_US:g} us while paused | {add_us:.2f} us | "
        f"{verdict(add_us <= TARGET_ADD_US)} |",
        f"| <= 1.5 KiB ({TARGET_BYTES} B) per pending task | {per_task:,.0f} B, caller's args "
        f"included | {verdict(per_task <= TARGET_BYTES)} |",
        f"| flat at >= {TARGET_OF_CEILING:.0%} of the ceiling at {at // 1000}k{note}, 8 threads | "
        f"{of_ceiling:.0%} | {verdict(flat.ok and of_ceiling >= TARGET_OF_CEILING)} |",
        f"| add_task <= {TARGET_RUNNING_ADD_US:g} us in a running manager (flat, 8 threads: the "
        f"submitting loop while workers run) | {running_add:.2f} us | "
        f"{verdict(running_add <= TARGET_RUNNING_ADD_US)} |",
    ]
    return lines, verdict.all_pass


def build_report(results: Results, extra: dict) -> tuple[str, bool]:
    """The markdown tables, and whether every target passed."""
    growth, exps, wrong_growth = growth_table(results, extra)
    targets, all_pass = targets_table(results, extra, exps, wrong_growth)
    lines = [
        *throughput_table(results, extra),
        *growth,
        *paused_and_correctness(results, extra),
        *targets,
    ]
    return "\n".join(lines) + "\n", all_pass


DOC = Doc("bench_core", "Benchmarks")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="1k and 5k tasks only (smoke run)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per measurement (median time, worst stall)"
    )
    parser.add_argument(
        "--cpus",
        type=int,
        metavar="N",
        help="pin the process (both systems) to the first N CPUs, e.g. 1 to see the baseline "
        "without cross-core GIL hand-offs",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.cpus is not None:
        cpus = sorted(os.sched_getaffinity(0))
        if not 1 <= args.cpus <= len(cpus):
            parser.error(f"--cpus must be between 1 and {len(cpus)}, got {args.cpus}")
        os.sched_setaffinity(0, cpus[: args.cpus])  # before any thread starts: all inherit it
    return args


def measure_paused(extra: dict[str, Any], ticker: StallMeter) -> None:
    """The priority-order check and the paused measurements, into ``extra`` (and printed)."""
    extra["prio_check"] = check_priority_order(ticker)
    print(f"priority order: {extra['prio_check']}", flush=True)
    extra["add_us"] = measure_add_us(extra["paused_n"])
    for name, us in extra["add_us"].items():
        print(f"paused {name}: {us:.2f} us/task", flush=True)
    extra["bytes"] = measure_bytes(extra["paused_n"])
    for name, b in extra["bytes"].items():
        print(f"bytes per pending task ({name}): {b:,.0f}", flush=True)
    extra["paths"] = measure_paths(extra["paused_n"])
    for name, us in extra["paths"].items():
        print(f"path {name}: {us:.2f} us/task", flush=True)


def print_row(wl: str, n: int, threads: int, b: Agg, r: Agg, c: Agg) -> None:
    ver = "ok" if b.ok and r.ok and c.ok else " / ".join(x.why for x in (b, r, c) if not x.ok)
    print(
        f"{wl:<14}{n:>7}{threads:>4}  "
        f"{' '.join(f'{x / 1000:.0f}k' for x in b.rates):<28}"
        f"{' '.join(f'{x / 1000:.1f}k' for x in r.rates):<28}"
        f"{pair_ratio(b, r):>6.2f}{b.stall_ms:>10.1f}{r.stall_ms:>11.1f}"
        f"{c.rate / 1000:>9.0f}k{pair_ratio(b, c):>8.0%}  {ver}",
        flush=True,
    )


#: Each measurement runs the three back to back (the order of a repeat).
SYSTEMS: tuple[tuple[str, Callable[[str, int, int, StallMeter], Run]], ...] = (
    ("baseline", run_baseline),
    ("bgtasks", run_bgtasks),
    ("ceiling", run_ceiling),
)


def measure_all(extra: dict[str, Any], ticker: StallMeter) -> Results:
    """Every (workload, threads, N), both systems, ``extra["repeats"]`` times (printed)."""
    results: Results = {}
    print(
        f"{'workload':<14}{'N':>7}{'thr':>4}  {'bgtasks tasks/s':<28}{'baseline tasks/s':<28}"
        f"{'ratio':>6}{'stall bg':>10}{'stall base':>11}{'ceiling':>10}{'of ceil':>8}  verified",
        flush=True,
    )
    for wl in WORKLOADS:
        for threads in extra["threads"]:
            for n in extra["sizes"]:
                for system, _ in SYSTEMS:
                    results[(system, wl, n, threads)] = Agg()
            # Repeats outermost and the two systems back to back, so that a change in the
            # machine's load (it is shared) falls on every N and on both systems alike.
            for _ in range(extra["repeats"]):
                for n in extra["sizes"]:
                    for system, fn in SYSTEMS:
                        gc.collect()
                        results[(system, wl, n, threads)].runs.append(fn(wl, n, threads, ticker))
                        QCoreApplication.processEvents()
            for n in extra["sizes"]:
                b = results[("bgtasks", wl, n, threads)]
                r, c = results[("baseline", wl, n, threads)], results[("ceiling", wl, n, threads)]
                print_row(wl, n, threads, b, r, c)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    clock = Clock()
    pinned = [f"pinned to {args.cpus} CPU(s)"] if args.cpus else []
    extra: dict[str, Any] = {
        "sizes": [1_000, 5_000] if args.quick else [1_000, 5_000, 20_000, 50_000],
        "threads": [8, 2],
        "machine": machine(*pinned, qpa=True),
        "repeats": args.repeats,
        "quick": args.quick,
        "paused_n": 20_000,
    }
    print(f"# bench_core: {extra['machine']}", flush=True)
    ticker = StallMeter()
    measure_paused(extra, ticker)
    results = measure_all(extra, ticker)
    extra.update(clock.meta())
    report, all_pass = build_report(results, extra)
    correct = all(r.ok for agg in results.values() for r in agg.runs) and extra[
        "prio_check"
    ].startswith("ok")
    wrong = None if correct else "WRONG RESULTS: see Correctness above"
    del app
    return finish(args, DOC, report, all_pass, wrong)


if __name__ == "__main__":
    sys.exit(main())
