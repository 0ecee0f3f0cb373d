#!/usr/bin/env python3
"""Task-control benchmarks of bgtasks: progress flood, cancel latency, dedupe, idle cost.

Run from a checkout (see docs/benchmarks-control.md)::

    .venv/bin/python benchmarks/bench_control.py            # full run, ~15-20 s on 2 cores
    .venv/bin/python benchmarks/bench_control.py --quick    # smaller and fewer runs (~5 s)
    .venv/bin/python benchmarks/bench_control.py --out docs/benchmarks-control.md

Exit status: 0 when every result was right (targets may still FAIL: they are
printed), 2 when a result was wrong, 1 with ``--strict`` when a target failed.

Every measurement runs in this one process with a fresh ``BackgroundTaskManager``
(shut down afterwards) and is checked for correctness:

1. Progress flood: 8 tasks on 8 threads, each calling
   ``current_task().report_progress(i, N)`` for i = 1..N.  Worst UI stall (largest
   gap between ticks of a 1 ms timer on the UI thread), ``task_progress``
   deliveries per task per second, final progress 1.0 delivered before
   ``task_completed``; cost per call against the same loop without reporting, and
   a GIL reference: the same 8 tasks spinning in pure Python as long.
2. Cancel latency: a task waiting in ``current_task().sleep(60)``; time from
   ``stop_task(uid)`` to the task's state being CANCELLED and to ``task_cancelled``.
3. Dedupe: 10k keyed requests over 100 keys while processing (1 ms functions), with
   ``cache_size = 100`` set before the first wave (the target); how often the
   function ran, whether every request got its own result, and a second wave
   served from the cache.  For information: the default ``cache_size = 0``
   (in-flight sharing only), and the cache enabled only after a wave.
4. Throughput with the control features idle: 20k trivial flat tasks on 8
   threads, against bench_core.py's flat workload and against the core before the
   control features (an older commit of bgtasks loaded from git as a separate
   package, same process), all interleaved.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import argparse  # noqa: E402
import collections  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import itertools  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from time import perf_counter  # noqa: E402
from types import ModuleType, SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import _common  # noqa: E402
from _common import (  # noqa: E402
    HERE,
    REPO,
    Clock,
    Doc,
    StallMeter,
    Waiter,
    arguments,
    dispose,
    finish,
    machine,
    spin,
    trivial,
)
from PySide6.QtCore import QCoreApplication, QEvent, QObject  # noqa: E402

import bgtasks  # noqa: E402
from bgtasks import BackgroundTaskManager, TaskCancelled, TaskState, current_task  # noqa: E402

# Targets (from the task-control issue).
TARGET_STALL_MS = 16.0
TARGET_PROGRESS_RATE = 25.0  # task_progress deliveries per task per second
TARGET_CANCEL_MS = 50.0
TARGET_DEDUPE_RUNS = 100
TARGET_THROUGHPUT_RATIO = 0.90  # within 10 % of the core

#: The last commit before the task-control features (the "core" of the throughput issue).
CORE_REF = "48d2093"

THREADS = 8
FLOOD_TASKS = 8
DEDUPE_REQUESTS = 10_000
DEDUPE_KEYS = 100
FLAT_N = 20_000
TIMEOUT_S = 120.0  # per wait; exceeding it is a wrong result


# --------------------------------------------------------------------------- helpers


class WakeCounter(QObject):
    """Counts the custom events posted to the manager: each one is a wake-up of the UI thread
    that makes the manager take the scheduler's events (observed, not changed)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() >= QEvent.Type.User:
            self.count += 1
        return False


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------- task functions


def report_loop(n: int) -> int:
    for i in range(1, n + 1):
        current_task().report_progress(i, n)
    return n


def plain_loop(n: int) -> int:
    for i in range(1, n + 1):  # noqa: B007 - the same loop, without reporting
        pass
    return n


# --------------------------------------------------------------------------- 1. progress flood


@dataclass
class Batch:
    """One run of k tasks on a fresh manager, as seen from the UI thread."""

    label: str
    seconds: float = 0.0
    stall_ms: float = 0.0
    user_s: float = 0.0  # process CPU time in user mode during the run (all threads)
    sys_s: float = 0.0  # ... and in the kernel
    wakes: int = 0  # events posted to the manager (its wake-ups on the UI thread)
    ok: bool = False
    why: str = ""
    started: dict[int, float] = field(default_factory=dict)
    completed: dict[int, tuple[int, float, Any]] = field(default_factory=dict)  # seq, t, result
    progress: dict[int, list[tuple[int, float, float]]] = field(default_factory=dict)

    def rate(self, uid: int) -> float:
        """task_progress deliveries per second over the task's life (started -> completed)."""
        life = self.completed[uid][1] - self.started[uid]
        return len(self.progress.get(uid, ())) / life if life > 0 else float("inf")

    def per_second(self, uid: int, final: bool = True) -> int:
        """Most deliveries of the task within any one second (a sliding window [t, t + 1 s)).

        ``final=False`` leaves out the last delivery, the one the manager sends as the
        task ends (it always delivers the latest value before ``task_completed``).
        """
        times = [t for _, t, _ in self.progress.get(uid, ())]
        if not final:
            times = times[:-1]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def steady_rate(self, uid: int) -> float:
        """Deliveries per second while progress flows: (n - 1) / (last - first) over the
        task's throttled deliveries (the end-of-task one left out).  Only its two ends carry
        the jitter of slot times, unlike a count in a 1 s window."""
        times = [t for _, t, _ in self.progress.get(uid, ())][:-1]
        if len(times) < 3 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def min_gap_ms(self, uid: int) -> float:
        """Shortest time between two deliveries, the final (end-of-task) one excluded."""
        times = [t for _, t, _ in self.progress.get(uid, ())][:-1]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        return 1000.0 * min(gaps) if gaps else float("nan")


def run_batch(
    label: str, fn: Callable[..., Any], arg: Any, k: int, ticker: StallMeter, progress: bool
) -> Batch:
    b = Batch(label)
    m = BackgroundTaskManager(max_threads=THREADS)
    seq = itertools.count()
    waiter = Waiter()
    failures: list[str] = []

    def on_started(uid: int, group: Any) -> None:
        b.started[uid] = perf_counter()

    def on_progress(uid: int, group: Any, fraction: float, message: str) -> None:
        b.progress.setdefault(uid, []).append((next(seq), perf_counter(), fraction))

    def on_completed(uid: int, group: Any, result: Any) -> None:
        if uid in b.completed:
            failures.append(f"task {uid} completed twice")
        b.completed[uid] = (next(seq), perf_counter(), result)
        if len(b.completed) >= k:
            waiter.done()

    def on_failed(uid: int, group: Any, message: str, tb: str) -> None:
        failures.append(f"task {uid} failed: {message}")
        waiter.done()

    m.task_started.connect(on_started)
    m.task_completed.connect(on_completed)
    m.task_failed.connect(on_failed)
    if progress:
        m.task_progress.connect(on_progress)
    wakes = WakeCounter()
    m.installEventFilter(wakes)
    gc.collect()
    cpu0 = os.times()
    t0 = perf_counter()
    m.start_processing()
    uids = [m.add_task(fn, task_args=(arg,)) for _ in range(k)]
    t_sub = perf_counter()
    ticker.start()
    waiter.wait(TIMEOUT_S)
    t_end = max((c[1] for c in b.completed.values()), default=perf_counter())
    cpu1 = os.times()
    ticker.stop()
    m.removeEventFilter(wakes)
    b.wakes = wakes.count
    b.user_s, b.sys_s = cpu1.user - cpu0.user, cpu1.system - cpu0.system
    b.seconds = t_end - t0
    b.stall_ms = ticker.stall_ms(t_sub, t_end)
    dispose(m, collect=True)
    # correctness
    if waiter.timed_out:
        b.why = f"timed out with {len(b.completed)}/{k} tasks completed"
    elif failures:
        b.why = failures[0]
    elif sorted(b.completed) != sorted(uids):
        b.why = "task_completed for the wrong tasks"
    elif any(c[2] != arg for c in b.completed.values()):
        b.why = "a task returned a wrong result"
    elif any(uid not in b.started for uid in uids):
        b.why = "a task had no task_started"
    elif progress:
        for uid in uids:
            got = b.progress.get(uid)
            if not got:
                b.why = f"task {uid}: no task_progress"
                break
            fractions = [f for _, _, f in got]
            if fractions[-1] != 1.0:
                b.why = f"task {uid}: last delivered progress {fractions[-1]!r}, not 1.0"
                break
            if got[-1][0] > b.completed[uid][0]:
                b.why = f"task {uid}: its last task_progress arrived after task_completed"
                break
            if any(y < x for x, y in zip(fractions, fractions[1:], strict=False)):
                b.why = f"task {uid}: delivered progress went backwards"
                break
            if any(s > b.completed[uid][0] for s, _, _ in got):
                b.why = f"task {uid}: task_progress after task_completed"
                break
        else:
            b.ok = True
    else:
        b.ok = True
    return b


def measure_flood(n: int, repeats: int, ticker: StallMeter) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n, "reports": [], "plain": []}
    for r in range(repeats):
        out["reports"].append(run_batch("report", report_loop, n, FLOOD_TASKS, ticker, True))
        out["plain"].append(run_batch("plain", plain_loop, n, FLOOD_TASKS, ticker, False))
        b = out["reports"][-1]
        print(
            f"  flood run {r + 1}: {b.seconds:.2f} s, stall {b.stall_ms:.1f} ms, "
            f"at most {max(b.per_second(u) for u in b.completed) if b.ok else 0} progress "
            f"signals per task in 1 s, {max(b.rate(u) for u in b.completed) if b.ok else 0:.1f}/s "
            "over a task's life, "
            f"CPU {b.user_s:.2f} s user + {b.sys_s:.2f} s kernel, {b.wakes / b.seconds:.0f} "
            f"manager wake-ups/s, plain loop {out['plain'][-1].seconds * 1000:.0f} ms, "
            f"{'ok' if b.ok else b.why}",
            flush=True,
        )
    # GIL reference: 8 tasks running pure Python for as long as a flood run took.
    spin_s = min(5.0, median([b.seconds for b in out["reports"]]))
    out["spin"] = run_batch("spin", spin, spin_s, FLOOD_TASKS, ticker, False)
    out["spin_s"] = spin_s
    print(
        f"  GIL reference ({spin_s:.2f} s of pure-Python spinning on 8 threads): "
        f"stall {out['spin'].stall_ms:.1f} ms",
        flush=True,
    )
    # Uncontended cost: one task alone.
    one = run_batch("report x1", report_loop, n, 1, ticker, True)
    one_plain = run_batch("plain x1", plain_loop, n, 1, ticker, False)
    out["one"], out["one_plain"] = one, one_plain
    return out


# --------------------------------------------------------------------------- 2. cancel latency


@dataclass
class CancelRun:
    state_ms: float = float("nan")
    signal_ms: float = float("nan")
    woke_ms: float = float("nan")
    ok: bool = False
    why: str = ""


def sleeper(ready: threading.Event, woke: list[float]) -> str:
    ready.set()
    try:
        current_task().sleep(60)
    except TaskCancelled:
        woke.append(perf_counter())
        raise
    return "slept 60 s"


def measure_cancel_once() -> CancelRun:
    run = CancelRun()
    m = BackgroundTaskManager(max_threads=THREADS)
    waiter = Waiter()
    got: list[tuple[str, int, float]] = []
    m.task_cancelled.connect(
        lambda uid, g: (got.append(("cancelled", uid, perf_counter())), waiter.done())
    )
    m.task_completed.connect(
        lambda uid, g, r: (got.append(("completed", uid, perf_counter())), waiter.done())
    )
    m.task_failed.connect(
        lambda uid, g, msg, tb: (got.append(("failed", uid, perf_counter())), waiter.done())
    )
    ready = threading.Event()
    woke: list[float] = []
    m.start_processing()
    uid = m.add_task(sleeper, task_args=(ready, woke))
    try:
        if not ready.wait(10):
            run.why = "the task did not start"
            return run
        time.sleep(0.005)  # let it enter sleep()
        if m.task_state(uid) is not TaskState.RUNNING:
            run.why = f"state {m.task_state(uid).name} before the stop, not RUNNING"
            return run
        t0 = perf_counter()
        m.stop_task(uid)
        deadline = t0 + 10
        state = m.task_state(uid)
        while state is not TaskState.CANCELLED and perf_counter() < deadline:
            time.sleep(0.0001)  # releases the GIL for the worker
            state = m.task_state(uid)
        t_state = perf_counter()
        if state is not TaskState.CANCELLED:
            run.why = f"state {state.name} 10 s after stop_task"
            return run
        waiter.wait(10)
        if len(got) != 1 or got[0][:2] != ("cancelled", uid):
            run.why = f"expected one task_cancelled({uid}), got {got!r}"
            return run
        if not woke:
            run.why = "the task's sleep() did not raise TaskCancelled"
            return run
        QCoreApplication.processEvents()
        if len(got) != 1:
            run.why = f"more signals after task_cancelled: {got!r}"
            return run
        run.state_ms = 1000 * (t_state - t0)
        run.signal_ms = 1000 * (got[0][2] - t0)
        run.woke_ms = 1000 * (woke[0] - t0)
        run.ok = True
        return run
    finally:
        dispose(m, collect=True)


def measure_cancel(repeats: int) -> list[CancelRun]:
    runs = [measure_cancel_once() for _ in range(repeats)]
    good = [r for r in runs if r.ok]
    print(
        f"  cancel x{repeats}: signal median {median([r.signal_ms for r in good]):.2f} ms, "
        f"max {max((r.signal_ms for r in good), default=float('nan')):.2f} ms; state median "
        f"{median([r.state_ms for r in good]):.2f} ms; "
        f"{'ok' if len(good) == len(runs) else next(r.why for r in runs if not r.ok)}",
        flush=True,
    )
    return runs


# --------------------------------------------------------------------------- 3. dedupe


class KeyedWork:
    """The keyed function: ~1 ms of work, counting its runs per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: collections.Counter[int] = collections.Counter()
        self.active: collections.Counter[int] = collections.Counter()
        self.overlaps = 0  # a key's function started while it was already running

    def make(self) -> Callable[[int], dict[str, int]]:
        def keyed(k: int) -> dict[str, int]:
            with self.lock:
                self.runs[k] += 1
                self.active[k] += 1
                if self.active[k] > 1:
                    self.overlaps += 1
            time.sleep(0.001)
            with self.lock:
                self.active[k] -= 1
            return {"key": k}

        return keyed

    def total(self) -> int:
        with self.lock:
            return sum(self.runs.values())


@dataclass
class Wave:
    label: str
    runs: int = 0
    submit_s: float = 0.0
    seconds: float = 0.0
    ok: bool = False
    why: str = ""


class DedupeManager:
    """One manager whose signals go to the current wave's bookkeeping."""

    def __init__(self) -> None:
        self.m = BackgroundTaskManager(max_threads=THREADS)
        self.work = KeyedWork()
        self.fn = self.work.make()
        self.got: dict[int, list[Any]] = {}
        self.failures: list[str] = []
        self.expected = 0
        self.waiter = Waiter()
        self.m.task_completed.connect(self._completed)
        self.m.task_failed.connect(self._failed)
        self.m.task_cancelled.connect(lambda uid, g: self._failed(uid, g, "cancelled", ""))
        self.m.start_processing()

    def _completed(self, uid: int, group: Any, result: Any) -> None:
        self.got.setdefault(uid, []).append(result)
        if len(self.got) >= self.expected:
            self.waiter.done()

    def _failed(self, uid: int, group: Any, message: str, tb: str) -> None:
        self.failures.append(f"task {uid}: {message}")
        self.waiter.done()

    def wave(self, label: str, n: int = DEDUPE_REQUESTS, keys: int = DEDUPE_KEYS) -> Wave:
        w = Wave(label)
        self.got, self.failures, self.expected, self.waiter = {}, [], n, Waiter()
        runs_before = self.work.total()
        add, fn = self.m.add_task, self.fn
        expect: dict[int, int] = {}
        gc.collect()
        t0 = perf_counter()
        for i in range(n):
            k = i % keys
            expect[add(fn, task_args=(k,), key=k)] = k
        w.submit_s = perf_counter() - t0
        self.waiter.wait(TIMEOUT_S)
        w.seconds = perf_counter() - t0
        QCoreApplication.processEvents()  # anything stray arrives now
        w.runs = self.work.total() - runs_before
        if self.waiter.timed_out:
            w.why = f"timed out with {len(self.got)}/{n} results"
        elif self.failures:
            w.why = f"{len(self.failures)} request(s) did not complete, first: {self.failures[0]}"
        elif self.work.overlaps:
            w.why = f"a key's function ran twice at the same time ({self.work.overlaps} times)"
        elif len(expect) != n:
            w.why = "duplicate uids"
        elif set(self.got) != set(expect):
            w.why = f"task_completed for {len(set(self.got) - set(expect))} unknown uid(s)"
        elif any(len(v) != 1 for v in self.got.values()):
            w.why = "a request got more than one task_completed"
        elif any(self.got[u][0] != {"key": k} for u, k in expect.items()):
            w.why = "a request got another key's result"
        else:
            w.ok = True
        print(
            f"  dedupe {label}: {w.runs} function runs for {n:,} requests, submit "
            f"{w.submit_s * 1000:.0f} ms, all results in {w.seconds * 1000:.0f} ms, "
            f"{'ok' if w.ok else w.why}",
            flush=True,
        )
        return w


def measure_dedupe() -> dict[str, Wave]:
    """The target first: ``cache_size`` set before the first wave, as an application that
    wants repeated requests deduplicated configures it.  Then, for information, the default
    ``cache_size = 0`` (in-flight sharing only) on a fresh manager, and the cache enabled
    only after that first wave."""
    out: dict[str, Wave] = {}
    d = DedupeManager()
    try:
        d.m.cache_size = DEDUPE_KEYS
        out["T1"] = d.wave(f"cache_size={DEDUPE_KEYS} before the first wave, wave 1")
        out["T2"] = d.wave(f"cache_size={DEDUPE_KEYS} before the first wave, wave 2")
    finally:
        dispose(d.m, collect=True)
    d = DedupeManager()
    try:
        out["I1"] = d.wave("cache_size=0 (default), information")
        d.m.cache_size = DEDUPE_KEYS
        out["I2"] = d.wave(f"cache_size={DEDUPE_KEYS} set after that wave, information")
    finally:
        dispose(d.m, collect=True)
    return out


# --------------------------------------------------------------------------- 4. throughput


@dataclass
class Flat:
    rate: float = 0.0
    stall_ms: float = 0.0
    cpu_us: float = float("nan")  # process CPU time (all threads) per task
    ok: bool = False
    why: str = ""


def run_flat(mod: ModuleType, n: int, ticker: StallMeter) -> Flat:
    """bench_core's method: start_processing() then the add_task loop; until the last signal."""
    f = Flat()
    m = mod.BackgroundTaskManager(max_threads=THREADS)
    received: list[tuple[int, Any]] = []
    failures: list[str] = []
    waiter = Waiter()

    def on_done(uid: int, group: Any, result: Any) -> None:
        received.append((uid, result))
        if len(received) >= n:
            waiter.done()

    def on_failed(uid: int, group: Any, message: str, tb: str) -> None:
        failures.append(message)
        waiter.done()

    m.task_completed.connect(on_done)
    m.task_failed.connect(on_failed)
    add = m.add_task
    uids: list[int] = []
    gc.collect()
    c0 = time.process_time()
    t0 = perf_counter()
    m.start_processing()
    for i in range(n):
        uids.append(add(trivial, task_args=(i,)))
    t_sub = perf_counter()
    ticker.start()
    waiter.wait(TIMEOUT_S)
    t_end = perf_counter()
    f.cpu_us = (time.process_time() - c0) / n * 1e6
    ticker.stop()
    dispose(m, collect=True)
    f.stall_ms = ticker.stall_ms(t_sub, t_end)
    index = {uid: i for i, uid in enumerate(uids)}
    if waiter.timed_out:
        f.why = f"timed out with {len(received)}/{n}"
    elif failures:
        f.why = f"task_failed: {failures[0]}"
    elif len(received) != n or len({u for u, _ in received}) != n:
        f.why = "not every task reported exactly once"
    elif any(index.get(u) is None or r != {"x": index[u]} for u, r in received):
        f.why = "a wrong result"
    else:
        f.ok = True
        f.rate = n / (t_end - t0)
    return f


def load_core(ref: str, tmp: str) -> tuple[ModuleType | None, str]:
    """bgtasks as of git ``ref``, imported as a separate package; (module, description)."""
    try:
        sha = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--verify", "--short", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        files = subprocess.run(
            ["git", "-C", REPO, "ls-tree", "--name-only", sha, "bgtasks/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        name = "bgtasks_core_" + re.sub(r"\W", "_", sha)
        pkg = os.path.join(tmp, name)
        os.makedirs(pkg, exist_ok=True)
        for path in files:
            if path.endswith(".py"):
                data = subprocess.run(
                    ["git", "-C", REPO, "show", f"{sha}:{path}"], capture_output=True, check=True
                ).stdout
                with open(os.path.join(pkg, os.path.basename(path)), "wb") as fh:
                    fh.write(data)
        sys.path.insert(0, tmp)
        try:
            mod = importlib.import_module(name)
        finally:
            sys.path.remove(tmp)
        return mod, f"bgtasks at {sha} (git {ref})"
    except (OSError, subprocess.CalledProcessError, ImportError) as exc:
        return None, f"core at {ref} unavailable: {exc}"


def load_bench_core() -> tuple[ModuleType | None, str]:
    path = os.path.join(HERE, "bench_core.py")
    if not os.path.exists(path):
        return None, "benchmarks/bench_core.py not found"
    sys.path.insert(0, HERE)
    try:
        return importlib.import_module("bench_core"), "bench_core.run_bgtasks('flat', 20000, 8)"
    except Exception as exc:  # noqa: BLE001 - a broken neighbour must not stop this benchmark
        return None, f"bench_core.py did not import: {exc!r}"
    finally:
        sys.path.remove(HERE)


def measure_throughput(
    n: int, repeats: int, ticker: StallMeter, core: ModuleType | None, bench_core: ModuleType | None
) -> dict[str, list[Flat]]:
    systems: list[tuple[str, Callable[[], Flat]]] = [
        ("current", lambda: run_flat(bgtasks, n, ticker))
    ]
    if core is not None:
        systems.append(("core", lambda: run_flat(core, n, ticker)))
    if bench_core is not None:
        bc_ticker = StallMeter()

        def via_bench_core() -> Flat:
            gc.collect()
            c0 = time.process_time()
            try:
                r = bench_core.run_bgtasks("flat", n, THREADS, bc_ticker)
            except Exception as exc:  # noqa: BLE001
                return Flat(why=f"bench_core.run_bgtasks raised {exc!r}")
            cpu = (time.process_time() - c0) / n * 1e6  # includes its shut-down and checks
            return Flat(rate=r.rate, stall_ms=r.stall_ms, cpu_us=cpu, ok=r.ok, why=r.why)

        systems.append(("bench_core", via_bench_core))
    out: dict[str, list[Flat]] = {name: [] for name, _ in systems}
    # Repeats outermost and the systems back to back, so that a change in the machine's load
    # (it is shared) falls on every system alike; the order rotates each repeat.
    for r in range(repeats):
        order = systems[r % len(systems) :] + systems[: r % len(systems)]
        for name, fn in order:
            out[name].append(fn())
            QCoreApplication.processEvents()
        print(
            "  flat 20k/8 repeat {}: {}".format(
                r + 1,
                ", ".join(
                    f"{name} {out[name][-1].rate / 1000:.1f}k/s"
                    if out[name][-1].ok
                    else f"{name} WRONG: {out[name][-1].why}"
                    for name, _ in systems
                ),
            ),
            flush=True,
        )
    return out


# --------------------------------------------------------------------------- report


def fmt_ms(x: float) -> str:
    return f"{x:.2f} ms"


class Report:
    """The markdown of a run, section by section.

    ``correct``: every result was right; ``target``: the verdict cells of the targets table
    (``target.all_pass``: every target met).
    """

    def __init__(self, res: dict[str, Any], meta: dict[str, Any]) -> None:
        self.res, self.meta = res, meta
        self.lines: list[str] = []
        self.correct = True
        self.target = _common.Verdicts()
        self.flood = flood_figures(res["flood"])
        self.correct &= self.flood.ok
        cgood = [r for r in res["cancel"] if r.ok]
        self.cancel_ok = len(cgood) == len(res["cancel"])
        self.correct &= self.cancel_ok
        self.sig = [r.signal_ms for r in cgood]
        self.correct &= all(x.ok for x in res["dedupe"].values())
        self.correct &= all(f.ok for runs in res["throughput"].values() for f in runs)

    def w(self, text: str) -> None:
        self.lines.append(text)

    def row(self, *cells: object) -> None:
        self.w("| " + " | ".join(str(c) for c in cells) + " |")

    def pass_row(self, label: str, ok: bool, passed: str = "yes") -> None:
        """A target that holds or does not: ``passed`` or "NO", and the verdict."""
        self.row(label, passed if ok else "NO", self.target(ok))

    def med_rate(self, name: str) -> float:
        runs = self.res["throughput"].get(name, [])
        return median([f.rate for f in runs]) if runs and all(f.ok for f in runs) else 0.0

    def med_cpu(self, name: str) -> float:
        return median([f.cpu_us for f in self.res["throughput"].get(name, [])])

    def text(self) -> str:
        meta = self.meta
        quick = " (--quick)" if meta["quick"] else ""
        self.w(
            f"Measured {meta['date']} on {meta['machine']}; the run took {meta['elapsed']:.0f} s"
            f"{quick}; load average {meta['load'][0]:.2f} before, {meta['load'][1]:.2f} after "
            "(the 2 cores are shared with other work)."
        )
        self.w("")
        self.flood_table()
        self.flood_deliveries()
        self.cancel_table()
        self.dedupe_table()
        self.throughput_table()
        self.flood_targets()
        self.other_targets()
        return "\n".join(self.lines) + "\n"

    def flood_table(self) -> None:
        row, f, fl = self.row, self.flood, self.res["flood"]
        reps = f.reps
        self.w(
            f"### 1. Progress flood: {FLOOD_TASKS} tasks x {f.n:,} `report_progress` calls, "
            f"{THREADS} threads ({len(reps)} runs)"
        )
        self.w("")
        row("measure", "value")
        row("---", "---:")
        row(
            "run time with reporting (median; each run)",
            f"{f.t_rep:.2f} s; {', '.join(f'{b.seconds:.2f}' for b in reps)}",
        )
        row(
            "process CPU time per run, user + kernel (each run)",
            ", ".join(f"{b.user_s:.2f} + {b.sys_s:.2f} s" for b in reps),
        )
        row(
            "manager wake-ups (events posted to it) per second on the UI thread (each run)",
            ", ".join(f"{b.wakes / b.seconds:,.0f}" for b in reps),
        )
        row(
            "`task_progress` signals per second, all 8 tasks together (each run)",
            ", ".join(f"{sum(map(len, b.progress.values())) / b.seconds:.0f}" for b in reps),
        )
        row("run time of the same loop without reporting (median)", f"{f.t_plain * 1000:.0f} ms")
        row(
            "overhead per `current_task().report_progress()` call, 8 tasks",
            f"{f.per_call:.2f} us",
        )
        row("overhead per call, 1 task alone", f"{f.one_call:.2f} us")
        row(
            "worst UI stall while the tasks run (worst of runs; each run)",
            f"{f.stall:.1f} ms; {', '.join(f'{b.stall_ms:.1f}' for b in reps)}",
        )
        row(
            f"GIL reference: worst UI stall with the 8 tasks spinning in pure Python for "
            f"{fl['spin_s']:.2f} s each, no reporting",
            f"{fl['spin'].stall_ms:.1f} ms",
        )

    def flood_deliveries(self) -> None:
        row, f, nan = self.row, self.flood, float("nan")
        row(
            "`task_progress` deliveries per second of one task while its progress flows: "
            "(n - 1) / (last - first), the end-of-task delivery left out (max over tasks and "
            "runs; median)",
            f"{max(f.steady, default=nan):.2f}; {median(f.steady):.2f}",
        )
        row(
            "`task_progress` deliveries of one task within any 1 s, the end-of-task delivery "
            "left out (max over tasks and runs)",
            max(f.throttled, default=0),
        )
        row("the same, the end-of-task delivery counted", max(f.windows, default=0))
        row(
            "deliveries per second over a task's life, started to completed (max; median)",
            f"{max(f.rates, default=nan):.1f}; {median(f.rates):.1f}",
        )
        row(
            "deliveries per task (min-max)",
            f"{min(f.counts, default=0)}-{max(f.counts, default=0)}",
        )
        row(
            "shortest gap between two deliveries of a task, end-of-task one left out",
            f"{min(f.gaps, default=nan):.1f} ms",
        )
        row(
            "every task: last delivered progress 1.0, before `task_completed`, never backwards",
            "yes" if f.ok else "NO: " + f.why,
        )
        self.w("")

    def cancel_table(self) -> None:
        row, w, nan = self.row, self.w, float("nan")
        cr: list[CancelRun] = self.res["cancel"]
        cgood = [r for r in cr if r.ok]
        sig = self.sig
        st = [r.state_ms for r in cgood]
        wk = [r.woke_ms for r in cgood]
        w(
            "### 2. Cancel latency: a task in `current_task().sleep(60)`, `stop_task(uid)` "
            f"({len(cr)} runs)"
        )
        w("")
        row("from `stop_task(uid)` to", "median", "max")
        row("---", "---:", "---:")
        row(
            "`sleep()` raising `TaskCancelled` in the task",
            fmt_ms(median(wk)),
            fmt_ms(max(wk, default=nan)),
        )
        row("`task_state(uid)` is CANCELLED", fmt_ms(median(st)), fmt_ms(max(st, default=nan)))
        row(
            "`task_cancelled` on the UI thread",
            fmt_ms(median(sig)),
            fmt_ms(max(sig, default=nan)),
        )
        w("")
        cancel_why = "yes" if self.cancel_ok else "NO: " + next(r.why for r in cr if not r.ok)
        w(
            "Checked in every run: exactly one signal, `task_cancelled` for that uid, state "
            f"CANCELLED, the task saw `TaskCancelled`: {cancel_why}."
        )
        w("")

    def dedupe_table(self) -> None:
        row, w = self.row, self.w
        w(
            f"### 3. Dedupe: {DEDUPE_REQUESTS:,} `add_task(fn, task_args=(k,), key=k)` requests, "
            f"k = i % {DEDUPE_KEYS}, while processing; `fn` sleeps 1 ms"
        )
        w("")
        row(
            "wave",
            "role",
            "function runs",
            "submit",
            "all results in",
            "every request its own right result, no key run twice at once",
        )
        row("---", "---", "---:", "---:", "---:", "---")
        names = {
            "T1": f"1: fresh manager, `cache_size = {DEDUPE_KEYS}` set before this first wave",
            "T2": f"2: same manager, the same {DEDUPE_REQUESTS:,} requests again",
            "I1": "1': fresh manager, `cache_size = 0` (the default): in-flight sharing only",
            "I2": f"2': same manager, `cache_size = {DEDUPE_KEYS}` set only after wave 1'",
        }
        roles = {"T1": "target", "T2": "target", "I1": "information", "I2": "information"}
        for key, wave in self.res["dedupe"].items():
            ok = "yes" if wave.ok else "NO: " + wave.why
            row(
                names[key],
                roles[key],
                wave.runs,
                f"{wave.submit_s * 1e3:.0f} ms",
                f"{wave.seconds * 1e3:.0f} ms",
                ok,
            )
        w("")

    def throughput_table(self) -> None:
        row, w, meta = self.row, self.w, self.meta
        tp: dict[str, list[Flat]] = self.res["throughput"]
        w(
            f"### 4. Throughput with the control features idle: {FLAT_N:,} flat trivial tasks, "
            f"{THREADS} threads ({len(tp['current'])} runs each, interleaved)"
        )
        w("")
        row("system", "tasks/s (median)", "each run", "CPU per task (median)", "worst stall")
        row("---", "---:", "---", "---:", "---:")
        descr = {
            "current": "bgtasks now (this script's loop)",
            "bench_core": f"bgtasks now, via {meta['bench_core']}",
            "core": f"core before the control features: {meta['core']}",
        }
        for name, runs in tp.items():
            row(
                descr[name],
                f"{self.med_rate(name):,.0f}",
                ", ".join(f"{f.rate / 1000:.1f}k" for f in runs),
                f"{self.med_cpu(name):.1f} us",
                f"{max(f.stall_ms for f in runs):.1f} ms",
            )
        if "core" not in tp:
            row("core before the control features", f"not measured: {meta['core']}", "", "", "")
        if "bench_core" not in tp:
            row("bench_core.py", f"not run: {meta['bench_core']}", "", "", "")
        w("")

    def flood_targets(self) -> None:
        row, f, target = self.row, self.flood, self.target
        self.w("### Targets")
        self.w("")
        row("target", "measured", "verdict")
        row("---", "---", "---")
        row(
            f"progress flood: worst UI stall <= {TARGET_STALL_MS:g} ms",
            f"{f.stall:.1f} ms (GIL reference {self.res['flood']['spin'].stall_ms:.1f} ms)",
            target(f.good == f.reps and f.stall <= TARGET_STALL_MS),
        )
        max_steady = max(f.steady, default=float("inf"))
        row(
            f"progress flood: <= {TARGET_PROGRESS_RATE:g} `task_progress` per task per second "
            "(rate while progress flows, end-of-task delivery left out)",
            f"max {max_steady:.2f}/s (most in any 1 s window: {max(f.throttled, default=0)}, "
            f"{max(f.windows, default=0)} with the end-of-task delivery)",
            target(bool(f.steady) and max_steady <= TARGET_PROGRESS_RATE),
        )
        self.pass_row(
            "progress flood: final progress 1.0 of every task, before its `task_completed`",
            f.ok,
            "all tasks",
        )

    def other_targets(self) -> None:
        row, target, sig = self.row, self.target, self.sig
        max_sig = max(sig, default=float("inf"))
        row(
            f"cancel: `stop_task` -> `task_cancelled` < {TARGET_CANCEL_MS:g} ms (every run)",
            f"median {median(sig):.2f} ms, max {max_sig:.2f} ms",
            target(self.cancel_ok and max_sig < TARGET_CANCEL_MS),
        )
        dd: dict[str, Wave] = self.res["dedupe"]
        t1, t2, i1, i2 = dd["T1"], dd["T2"], dd["I1"], dd["I2"]
        row(
            f"dedupe: {DEDUPE_REQUESTS:,} requests over {DEDUPE_KEYS} keys run the function "
            f"exactly {TARGET_DEDUPE_RUNS} times, each request gets its own right result "
            f"(`cache_size = {DEDUPE_KEYS}` set before the first wave)",
            f"{t1.runs} runs" + ("" if t1.ok else "; " + t1.why),
            target(t1.ok and t1.runs == TARGET_DEDUPE_RUNS),
        )
        row(
            "dedupe: a second wave of the same requests runs 0 functions (served from the cache)",
            f"{t2.runs} runs" + ("" if t2.ok else "; " + t2.why),
            target(t2.ok and t2.runs == 0),
        )
        row(
            "dedupe, cache off (`cache_size = 0`, the default): in-flight sharing only",
            f"{i1.runs} runs; with the cache enabled only after that wave, the next wave: "
            f"{i2.runs} runs",
            "information",
        )
        self.throughput_targets()
        self.pass_row("every result right (all checks above)", self.correct)

    def throughput_targets(self) -> None:
        row, target, med_rate = self.row, self.target, self.med_rate
        cur = med_rate("current")
        if med_rate("core"):
            ratio = cur / med_rate("core")
            cpu_cur, cpu_core = self.med_cpu("current"), self.med_cpu("core")
            row(
                "throughput within 10 % of the core (flat 20k/8)",
                f"{cur:,.0f} vs {med_rate('core'):,.0f} tasks/s: {ratio:.2f}x (CPU per task "
                f"{cpu_cur:.1f} vs {cpu_core:.1f} us, {100 * (cpu_cur / cpu_core - 1):+.0f} %)",
                target(ratio >= TARGET_THROUGHPUT_RATIO),
            )
        if med_rate("bench_core"):
            # A cross-check of the method (the same code): a verdict only without the core.
            ratio = cur / med_rate("bench_core")
            check = "cross-check" if med_rate("core") else target(ratio >= TARGET_THROUGHPUT_RATIO)
            row(
                "throughput: this script vs bench_core.py's flat 20k/8 (same code, same process)",
                f"{cur:,.0f} vs {med_rate('bench_core'):,.0f} tasks/s: {ratio:.2f}x",
                check,
            )


def flood_figures(fl: dict[str, Any]) -> SimpleNamespace:
    """The progress-flood figures the report shows, from ``measure_flood``'s runs."""
    reps: list[Batch] = fl["reports"]
    plains: list[Batch] = fl["plain"]
    n = fl["n"]
    good = [b for b in reps if b.ok]
    refs_ok = all(b.ok for b in plains) and all(fl[k].ok for k in ("spin", "one", "one_plain"))
    per_task = [(b, u) for b in good for u in b.completed]
    t_rep = median([b.seconds for b in reps])
    t_plain = median([b.seconds for b in plains])
    return SimpleNamespace(
        n=n,
        reps=reps,
        good=good,
        ok=len(good) == len(reps) and refs_ok,
        why=next((b.why for b in reps if not b.ok), "a reference run was wrong"),
        stall=max((b.stall_ms for b in reps), default=float("nan")),
        rates=[b.rate(u) for b, u in per_task],
        windows=[b.per_second(u) for b, u in per_task],
        throttled=[b.per_second(u, final=False) for b, u in per_task],
        steady=[b.steady_rate(u) for b, u in per_task],
        gaps=[b.min_gap_ms(u) for b, u in per_task],
        counts=[len(b.progress[u]) for b, u in per_task],
        t_rep=t_rep,
        t_plain=t_plain,
        per_call=(t_rep - t_plain) / (FLOOD_TASKS * n) * 1e6,
        one_call=(fl["one"].seconds - fl["one_plain"].seconds) / n * 1e6,
    )


def build_report(res: dict[str, Any], meta: dict[str, Any]) -> tuple[str, bool, bool]:
    """(markdown, every result right, every target met)."""
    report = Report(res, meta)
    text = report.text()
    return text, report.correct, report.target.all_pass


DOC = Doc("bench_control", "Task-control benchmarks")


# --------------------------------------------------------------------------- main


def measure_all(args: argparse.Namespace, ticker: StallMeter) -> tuple[dict[str, Any], dict]:
    """The four measurements (printed as they go), and what the report says of the cores."""
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_control_") as tmp:
        core, core_descr = load_core(args.core_ref, tmp)
        bench_core, bench_core_descr = load_bench_core()
        print("1. progress flood", flush=True)
        res["flood"] = measure_flood(
            20_000 if args.quick else 100_000, 2 if args.quick else 3, ticker
        )
        print("2. cancel latency", flush=True)
        res["cancel"] = measure_cancel(5 if args.quick else 20)
        print("3. dedupe", flush=True)
        res["dedupe"] = measure_dedupe()
        print("4. throughput, features idle", flush=True)
        res["throughput"] = measure_throughput(
            FLAT_N, 3 if args.quick else 9, ticker, core, bench_core
        )
    return res, {"core": core_descr, "bench_core": bench_core_descr}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, quick="smaller and fewer runs (smoke run)")
    parser.add_argument(
        "--core-ref",
        default=CORE_REF,
        help=f"git commit of the core to compare throughput with (default {CORE_REF})",
    )
    args = parser.parse_args(argv)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    clock = Clock()
    description = machine(qpa=True)
    print(f"# bench_control: {description}", flush=True)
    res, cores = measure_all(args, StallMeter())
    meta = clock.meta(machine=description, quick=args.quick, **cores)
    report, correct, targets_ok = build_report(res, meta)
    del app
    wrong = None if correct else "WRONG RESULTS: see the tables above"
    return finish(args, DOC, report, targets_ok, wrong)


if __name__ == "__main__":
    sys.exit(main())
